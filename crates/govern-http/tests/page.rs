//! The status page: `GET /v1/status` over a real socket (keys, content, bounds), and the page
//! itself driven in headless Chromium through chromedriver after a scenario's commands, with
//! a screenshot kept in `target/test-artefacts/status-page.png`.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the browser test says so and
//! passes, unless `GOVERN_REQUIRE_BROWSER=1` (CI sets it), when it fails.

mod support {
    pub(crate) mod http;
    pub(crate) mod webdriver;
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use govern_governors::tenant::{Command as TenantCommand, ResourceQuota};
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_http::keys::Scope;
use govern_http::page::{
    STATUS_GOVERNORS_PER_TENANT_MAX, STATUS_RECEIPTS_MAX, STATUS_TENANT_RECEIPTS_SCANNED_MAX,
    STATUS_TENANTS_MAX,
};
use govern_http::{AppState, KeyStore, router};
use govern_runtime::ledger::CommitOptions;
use govern_runtime::{Runtime, RuntimeBuilder};
use hyper::Method;
use serde_json::{Value, json};
use support::http::{Reply, request};
use support::webdriver::{Driver, IMPLICIT_WAIT_MS};

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

/// How long the page may take to show what it is waited for.
const PAGE_WAIT: Duration = Duration::from_secs(20);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).expect("tenant id")
}

fn resource(id: &str) -> ResourceId {
    ResourceId::new(id).expect("resource id")
}

fn quota() -> ResourceQuota {
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 }
}

fn pricing() -> govern_plans::Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans/pricing.toml");
    govern_plans::load(&path).expect("examples/plans/pricing.toml loads")
}

/// A runtime served by `router()` on loopback, with an operator key and a tenant key.
struct Served {
    runtime: Runtime,
    addr: SocketAddr,
    operator: String,
    tenant_key: String,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn start(builder: RuntimeBuilder) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = builder.epoch(T0).catalog(pricing()).start().await.expect("runtime starts");
        let keys = KeyStore::open_in(dir.path()).expect("key store");
        let (_, operator) = keys.create(Scope::Operator, "page test").expect("operator key");
        let (_, tenant_key) =
            keys.create(Scope::Tenant(tenant("acme")), "acme's key").expect("tenant key");
        let state = AppState { runtime: runtime.handle(), keys: Arc::new(keys) };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Self { runtime, addr, operator, tenant_key, _dir: dir }
    }

    async fn status(&self, key: Option<&str>) -> Reply {
        let auth = key.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        request(self.addr, Method::GET, "/v1/status", &headers, None).await.expect("GET /v1/status")
    }
}

/// The scenario: `acme` provisioned and active on `starter` (reports: 10 a month) with 7
/// reports used; `globex` provisioned, on a `pro` trial, then suspended.
async fn scenario(served: &Served) {
    let h = served.runtime.handle();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    h.provision_tenant(&acme, quota(), "contract signed").await.expect("acme provisioned");
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("starter", 14, "signed up").await.expect("trial");
    sub.activate(None, "paid").await.expect("active");
    h.record_usage(&acme, "reports", 7, "report-batch-1", h.now()).await.expect("usage");
    h.provision_tenant(&globex, quota(), "contract signed").await.expect("globex provisioned");
    h.subscription(&globex, &resource("sub-1"))
        .start_trial("pro", 14, "signed up")
        .await
        .expect("globex trial");
    h.tenant(&globex).send(TenantCommand::SuspendTenant, "unpaid").await.expect("suspended");
}

fn data_dir_builder(dir: &Path) -> RuntimeBuilder {
    // A checkpoint after every commit, so that the page has one to show.
    let commit = CommitOptions { checkpoint_every: Duration::ZERO, ..CommitOptions::default() };
    Runtime::builder().data_dir(dir).group_commit(commit)
}

fn find<'a>(list: &'a Value, field: &str, value: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|v| v[field] == value))
        .unwrap_or_else(|| panic!("no {field} = {value} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_needs_an_operator_key_and_says_what_the_runtime_says() {
    let data = tempfile::tempdir().expect("temp dir");
    let served = Served::start(data_dir_builder(data.path())).await;
    scenario(&served).await;

    // The shell needs no key and loads nothing but its own assets.
    let page = request(served.addr, Method::GET, "/", &[], None).await.expect("GET /");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").expect("a content security policy");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    for asset in ["/page.js", "/page.css"] {
        let r = request(served.addr, Method::GET, asset, &[], None).await.expect("asset");
        assert_eq!(r.status, 200, "{asset}");
    }

    // No key, a wrong key: 401; a tenant's key: 403; each with the one error shape.
    let none = served.status(None).await;
    assert_eq!(
        (none.status, none.json().expect("json")["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    let wrong = served.status(Some("gk_nope_0000")).await;
    assert_eq!(wrong.status, 401);
    let tenant_key = served.status(Some(&served.tenant_key)).await;
    assert_eq!(tenant_key.status, 403);
    assert_eq!(tenant_key.json().expect("json")["error"]["code"], "forbidden");

    let reply = served.status(Some(&served.operator)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let s = reply.json().expect("json");
    let h = served.runtime.handle();
    let head = h.head();

    assert_eq!(s["tenants_total"], 2);
    let acme = find(&s["tenants"], "tenant", "acme");
    assert_eq!(acme["state"], "active");
    assert_eq!(acme["plans"], json!(["starter"]));
    assert_eq!(find(&s["tenants"], "tenant", "globex")["state"], "suspended");
    let sub = find(&acme["governors"], "resource", "sub-1");
    assert_eq!((&sub["kind"], &sub["state"]), (&json!("subscription"), &json!("active")));
    assert_eq!(find(&acme["governors"], "resource", "reports")["kind"], "quota");
    let reports = find(&acme["meters"], "meter", "reports");
    assert_eq!((&reports["value"], &reports["limit"]), (&json!(7), &json!(10)));
    assert_eq!(reports["reset"], "monthly");
    // The provisioned quota's meters are shown against it.
    assert_eq!(find(&acme["meters"], "meter", "storage_gb")["limit"], 100);

    // The last receipts, newest first, the first one the ledger's head.
    let receipts = s["receipts"].as_array().expect("receipts");
    assert!(!receipts.is_empty() && receipts.len() <= STATUS_RECEIPTS_MAX);
    assert_eq!(receipts[0]["seq"], head.next_seq - 1);
    assert_eq!(receipts[0]["hash"], head.last_hash.to_string());
    assert_eq!(
        (&receipts[0]["tenant"], &receipts[0]["to"]),
        (&json!("globex"), &json!("suspended"))
    );
    let seqs: Vec<u64> = receipts.iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    assert_eq!(s["ledger"]["next_seq"], head.next_seq);
    assert_eq!(s["ledger"]["head_hash"], head.last_hash.to_string());

    // A checkpoint the runtime's key signed, of no more receipts than there are.
    let checkpoint = h.last_checkpoint().expect("the checkpoint verifies").expect("one signed");
    assert!(checkpoint.checkpoint.size <= head.next_seq);
    let shown = &s["checkpoint"];
    assert!(shown["size"].as_u64().is_some_and(|n| n >= 1 && n <= head.next_seq), "{shown}");
    assert_eq!(shown["root"].as_str().map(str::len), Some(64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_is_bounded_and_says_so() {
    let served = Served::start(Runtime::builder()).await;
    let h = served.runtime.handle();
    // One tenant more than are shown.
    for i in 0..=STATUS_TENANTS_MAX {
        h.provision_tenant(&tenant(&format!("t{i:03}")), quota(), "bulk")
            .await
            .expect("provisioned");
    }
    // t000: more governors than are shown (each subscription one receipt, the tenant's two
    // first).
    let t0 = tenant("t000");
    for i in 0..=STATUS_GOVERNORS_PER_TENANT_MAX {
        let sub = h.subscription(&t0, &resource(&format!("sub-{i:03}")));
        sub.start_trial("starter", 14, "signed up").await.expect("trial");
    }
    // t001: more receipts than are read for its governors.
    let t1 = tenant("t001");
    let old = h.subscription(&t1, &resource("old"));
    old.start_trial("starter", 14, "signed up").await.expect("trial");
    let sub = h.subscription(&t1, &resource("busy"));
    sub.start_trial("starter", 14, "signed up").await.expect("trial");
    sub.activate(None, "paid").await.expect("active");
    for _ in 0..STATUS_TENANT_RECEIPTS_SCANNED_MAX / 2 {
        sub.suspend("unpaid").await.expect("suspended");
        sub.send(govern_governors::subscription::Command::Resume, "paid").await.expect("resumed");
    }
    let reply = served.status(Some(&served.operator)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let s = reply.json().expect("json");
    assert_eq!(s["tenants_total"], STATUS_TENANTS_MAX + 1);
    assert_eq!(s["tenants"].as_array().map(Vec::len), Some(STATUS_TENANTS_MAX));
    assert_eq!(s["receipts"].as_array().map(Vec::len), Some(STATUS_RECEIPTS_MAX));
    assert_eq!(s["bounds"]["tenants_max"], STATUS_TENANTS_MAX);

    // The governors that moved last are shown: the subscriptions, not the tenant governor.
    let t0 = find(&s["tenants"], "tenant", "t000");
    let shown = t0["governors"].as_array().expect("governors");
    assert_eq!(shown.len(), STATUS_GOVERNORS_PER_TENANT_MAX);
    assert_eq!(t0["governors_total"], STATUS_GOVERNORS_PER_TENANT_MAX + 2);
    assert!(shown.iter().all(|g| g["kind"] == "subscription"), "{shown:?}");
    assert_eq!(t0["governors_partial"], false);

    // Past the receipts read, the governors are those of its recent receipts, and it says so.
    let t1 = find(&s["tenants"], "tenant", "t001");
    assert_eq!(t1["governors_partial"], true);
    assert_eq!(find(&t1["governors"], "resource", "busy")["state"], "active");
    assert_eq!(t1["governors"].as_array().map(Vec::len), Some(1));
}

/// Where the test keeps its artefacts: `$CARGO_TARGET_DIR/test-artefacts`, or the workspace's
/// `target/test-artefacts`.
fn artefacts_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("Cargo.lock").exists())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")))
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), |t| workspace.join(PathBuf::from(t)));
    target.join("test-artefacts")
}

/// Whether the browser test can run here; panics when it must and cannot.
fn browser_available() -> bool {
    let missing: Vec<&str> =
        [CHROMIUM, CHROMEDRIVER].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("GOVERN_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "GOVERN_REQUIRE_BROWSER=1 but {missing:?} missing (apt-get install chromium chromium-driver)"
    );
    eprintln!(
        "status page browser test skipped: {missing:?} missing (apt-get install chromium chromium-driver; GOVERN_REQUIRE_BROWSER=1 makes this a failure)"
    );
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_the_tenants_governors_quotas_and_receipts_in_chromium() {
    if !browser_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let served = Served::start(data_dir_builder(data.path())).await;
    scenario(&served).await;
    let head = served.runtime.handle().head();
    let head_hash = head.last_hash.to_string();

    let driver = Driver::start(Path::new(CHROMEDRIVER)).await.expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("profile dir");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,2000",
        &format!("--user-data-dir={}", profile.path().display()),
    ];
    let b = driver
        .session(json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "timeouts": { "implicit": IMPLICIT_WAIT_MS },
        }))
        .await
        .expect("a browser session");
    let url = format!("http://{}/", served.addr);

    // A wrong key is refused and said so; the form is back.
    b.goto(&url).await.expect("page opens");
    b.type_into(&b.find("#key").await.expect("key field"), "gk_wrong_key").await.expect("typed");
    b.click(&b.find("#submit").await.expect("submit")).await.expect("submitted");
    let refused = b
        .wait_text("#message", PAGE_WAIT, |t| t.contains("refused"))
        .await
        .expect("a refusal shown");
    assert!(refused.contains("401") && refused.contains("not valid"), "{refused}");

    // The operator's key shows the runtime.
    b.type_into(&b.find("#key").await.expect("key field"), &served.operator).await.expect("typed");
    b.click(&b.find("#submit").await.expect("submit")).await.expect("submitted");
    b.wait_text(r#"#tenants tr[data-tenant="globex"]"#, PAGE_WAIT, |t| !t.is_empty())
        .await
        .expect("the tenants table");
    assert_eq!(b.find_all("#tenants tbody tr").await.expect("rows").len(), 2);
    let state = |t: &str| format!(r#"#tenants tr[data-tenant="{t}"] .state"#);
    assert_eq!(b.wait_text(&state("acme"), PAGE_WAIT, |_| true).await.as_deref(), Ok("active"));
    assert_eq!(
        b.wait_text(&state("globex"), PAGE_WAIT, |_| true).await.as_deref(),
        Ok("suspended")
    );
    let acme = r#".tenant[data-tenant="acme"]"#;
    let sub = b
        .wait_text(&format!(r#"{acme} tr[data-governor="subscription/sub-1"]"#), PAGE_WAIT, |_| {
            true
        })
        .await
        .expect("acme's subscription");
    assert!(sub.starts_with("subscription sub-1 active"), "{sub}");
    let bar = b
        .wait_text(
            &format!(r#"{acme} .meter[data-meter="reports"] .meter-text"#),
            PAGE_WAIT,
            |_| true,
        )
        .await
        .expect("acme's reports quota");
    assert_eq!(bar, "7 / 10 · 70%");

    // The newest receipt is the ledger's head: its hash shortened, in full on hover.
    let hash = b.find("#receipts tbody tr:first-child .hash").await.expect("the last receipt");
    assert_eq!(b.text(&hash).await.expect("text"), format!("{}…", &head_hash[..12]));
    assert_eq!(b.attribute(&hash, "title").await.expect("title"), Some(head_hash.clone()));
    let seq = b.find("#receipts tbody tr:first-child").await.expect("row");
    assert!(
        b.text(&seq).await.expect("text").starts_with(&format!("{} globex", head.next_seq - 1))
    );

    // The checkpoint after the last commit is signed just after it is acknowledged: Refresh
    // until the page shows it (bounded).
    let covered = format!("size {}", head.next_seq);
    let refreshed = tokio::time::timeout(PAGE_WAIT, async {
        loop {
            b.click(&b.find("#refresh").await.expect("refresh")).await.expect("clicked");
            let shown = b.wait_text("#checkpoint", PAGE_WAIT, |_| true).await.expect("checkpoint");
            if shown.starts_with(&covered) {
                return shown;
            }
        }
    })
    .await
    .expect("the last checkpoint shown");
    assert!(refreshed.contains(" · root "), "{refreshed}");

    let png = b.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let dir = artefacts_dir();
    std::fs::create_dir_all(&dir).expect("artefacts dir");
    let path = dir.join("status-page.png");
    std::fs::write(&path, &png).expect("screenshot written");
    eprintln!("status page screenshot: {}", path.display());
    b.quit().await.expect("session ends");
}
