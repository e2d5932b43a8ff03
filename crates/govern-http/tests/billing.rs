//! Invoices, the billing run and the payment webhook over a real loopback socket: who may do
//! what, the receipted invoice, the billing run, and deliveries accepted, duplicate and
//! refused (signature, size), each leaving the ledger as it says.

#![allow(clippy::unwrap_used, reason = "tests")]

mod support {
    pub(crate) mod http;
}

use std::net::SocketAddr;
use std::sync::Arc;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_http::keys::Scope;
use govern_http::{AppState, KeyStore, billing};
use govern_runtime::Runtime;
use hyper::Method;
use serde_json::{Value, json};
use support::http::{Reply, request};

/// 2026-01-10T00:00:00Z and 2026-02-02T00:00:00Z.
const JAN_10: Timestamp = Timestamp(1_767_225_600_000 + 9 * 86_400_000);
const FEB_02: Timestamp = Timestamp(1_767_225_600_000 + 32 * 86_400_000);
const SECRET: &[u8] = b"whsec_http_test";

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

fn pricing() -> govern_plans::Catalog {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans/pricing.toml");
    govern_plans::load(&path).unwrap()
}

struct Served {
    runtime: Runtime,
    addr: SocketAddr,
    operator: String,
    acme_key: String,
    globex_key: String,
    _dir: tempfile::TempDir,
}

/// January: acme and globex on starter, acme with 15 005 API calls. Then the runtime is
/// reopened at February 2 and served, with a webhook secret.
async fn served() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let rt =
        Runtime::builder().epoch(JAN_10).data_dir(&data).catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let quota = ResourceQuota { storage_gb: 10, compute_units: 2, bandwidth_mbps: 100 };
    for t in ["acme", "globex"] {
        h.provision_tenant(&tenant(t), quota, "contract").await.unwrap();
        let sub = h.subscription(&tenant(t), &ResourceId::new("sub-1").unwrap());
        sub.start_trial("starter", 14, "signed up").await.unwrap();
        sub.activate(None, "paid").await.unwrap();
    }
    h.record_usage(&tenant("acme"), "api_calls", 15_005, "jan", h.now()).await.unwrap();
    rt.shutdown().await.unwrap();

    let runtime =
        Runtime::builder().epoch(FEB_02).data_dir(&data).catalog(pricing()).start().await.unwrap();
    let keys = KeyStore::open_in(dir.path()).unwrap();
    let (_, operator) = keys.create(Scope::Operator, "ops").unwrap();
    let (_, acme_key) = keys.create(Scope::Tenant(tenant("acme")), "acme").unwrap();
    let (_, globex_key) = keys.create(Scope::Tenant(tenant("globex")), "globex").unwrap();
    let state = AppState { runtime: runtime.handle(), keys: Arc::new(keys) };
    let verifier = Arc::new(govern_webhooks::Verifier::new(&[SECRET]).unwrap());
    let app = axum::Router::new().merge(billing::routes(Some(verifier))).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served { runtime, addr, operator, acme_key, globex_key, _dir: dir }
}

impl Served {
    async fn call(&self, method: Method, path: &str, key: Option<&str>) -> Reply {
        let auth = key.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        request(self.addr, method, path, &headers, None).await.unwrap()
    }

    async fn deliver(&self, event: &Value, signature: &str) -> Reply {
        request(
            self.addr,
            Method::POST,
            "/v1/webhooks/payments",
            &[("stripe-signature", signature)],
            Some(event),
        )
        .await
        .unwrap()
    }

    fn sign(&self, event: &Value) -> String {
        let now = self.runtime.handle().now().as_ms() / 1000;
        govern_webhooks::sign(SECRET, now, event.to_string().as_bytes())
    }
}

fn code(r: &Reply) -> String {
    r.json().unwrap()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_are_read_by_their_tenant_and_closed_by_an_operator() {
    let s = served().await;
    let path = "/v1/tenants/acme/invoices/2026-01";
    // Who may read: acme's key and the operator; nobody else.
    assert_eq!(s.call(Method::GET, path, None).await.status, 401);
    assert_eq!(s.call(Method::GET, path, Some("gk_00000000_00")).await.status, 401);
    let other = s.call(Method::GET, path, Some(&s.globex_key)).await;
    assert_eq!((other.status, code(&other)), (403, "forbidden".into()));
    let preview = s.call(Method::GET, path, Some(&s.acme_key)).await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    assert_eq!(preview.header("content-type"), Some("application/json"));
    let preview = preview.json().unwrap();
    assert_eq!(
        (preview["status"].as_str(), preview["total"].as_str()),
        (Some("preview"), Some("34.00"))
    );
    // Closing needs an operator; a tenant's own key is not enough.
    let close = "/v1/tenants/acme/invoices/2026-01/close";
    let head = s.runtime.handle().head();
    let refused = s.call(Method::POST, close, Some(&s.acme_key)).await;
    assert_eq!((refused.status, code(&refused)), (403, "forbidden".into()));
    assert_eq!(s.runtime.handle().head(), head, "nothing written");
    let closed = s.call(Method::POST, close, Some(&s.operator)).await;
    assert_eq!(closed.status, 200, "{}", closed.text());
    let closed = closed.json().unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["payment"], "invoice-2026-01");
    assert_eq!(
        closed["lines"][1],
        json!({"kind":"overage","meter":"api_calls","quantity":5005,"unit_price":"0.001","amount":"5.00","description":"api_calls: 5005 units at 0.001 USD"})
    );
    let read = s.call(Method::GET, path, Some(&s.acme_key)).await.json().unwrap();
    assert_eq!(
        (read["status"].clone(), read["receipt"].clone()),
        (json!("closed"), closed["receipt"].clone())
    );
    // An open month, a bad month.
    let open =
        s.call(Method::POST, "/v1/tenants/acme/invoices/2026-02/close", Some(&s.operator)).await;
    assert_eq!((open.status, code(&open)), (409, "period_open".into()));
    let bad = s.call(Method::GET, "/v1/tenants/acme/invoices/2026-1", Some(&s.acme_key)).await;
    assert_eq!((bad.status, code(&bad)), (422, "bad_period".into()));
    let unknown =
        s.call(Method::GET, "/v1/tenants/initech/invoices/2026-01", Some(&s.operator)).await;
    assert_eq!((unknown.status, code(&unknown)), (404, "unknown_tenant".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_billing_run_closes_every_tenant_once() {
    let s = served().await;
    let tenant_run = s.call(Method::POST, "/v1/billing-runs/2026-01", Some(&s.acme_key)).await;
    assert_eq!(tenant_run.status, 403);
    let run = s.call(Method::POST, "/v1/billing-runs/2026-01", Some(&s.operator)).await;
    assert_eq!(run.status, 200, "{}", run.text());
    let run = run.json().unwrap();
    assert_eq!(
        (run["closed"].clone(), run["already_closed"].clone()),
        (json!(2), json!(0)),
        "{run}"
    );
    let totals: Vec<&str> =
        run["invoices"].as_array().unwrap().iter().map(|i| i["total"].as_str().unwrap()).collect();
    assert_eq!(totals, ["34.00", "29.00"]);
    let head = s.runtime.handle().head();
    let again =
        s.call(Method::POST, "/v1/billing-runs/2026-01", Some(&s.operator)).await.json().unwrap();
    assert_eq!((again["closed"].clone(), again["already_closed"].clone()), (json!(0), json!(2)));
    assert_eq!(s.runtime.handle().head(), head, "a second run writes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_authenticated_by_its_signature_alone() {
    let s = served().await;
    s.call(Method::POST, "/v1/tenants/acme/invoices/2026-01/close", Some(&s.operator)).await;
    let h = s.runtime.handle();
    h.command(govern_runtime::RawCommand {
        tenant: tenant("acme"),
        kind: govern_governors::GovernorKind::Billing,
        resource: ResourceId::new("invoice-2026-01").unwrap(),
        name: "authorize_payment".into(),
        args: [("transaction_id".to_owned(), "pi_9".to_owned())].into_iter().collect(),
        reason: "card confirmed".into(),
        metadata: Vec::new(),
    })
    .await
    .unwrap();
    let event = json!({"id":"evt_9","type":"payment_intent.succeeded","created":1769990400,
        "data":{"object":{"id":"pi_9","amount":3400,"currency":"usd",
        "metadata":{"govern_tenant":"acme","govern_resource":"invoice-2026-01"}}}});
    let head = h.head();
    // No signature, a forged one, a stale one: 400, nothing written.
    let none =
        request(s.addr, Method::POST, "/v1/webhooks/payments", &[], Some(&event)).await.unwrap();
    assert_eq!((none.status, code(&none)), (400, "bad_signature".into()));
    let forged = govern_webhooks::sign(
        b"whsec_forged",
        h.now().as_ms() / 1000,
        event.to_string().as_bytes(),
    );
    let r = s.deliver(&event, &forged).await;
    assert_eq!((r.status, code(&r)), (400, "bad_signature".into()));
    let stale =
        govern_webhooks::sign(SECRET, h.now().as_ms() / 1000 - 3_600, event.to_string().as_bytes());
    assert_eq!(s.deliver(&event, &stale).await.status, 400);
    assert_eq!(h.head(), head, "nothing written");
    // An API key does not stand in for a signature.
    let keyed = request(
        s.addr,
        Method::POST,
        "/v1/webhooks/payments",
        &[("authorization", &format!("Bearer {}", s.operator))],
        Some(&event),
    )
    .await
    .unwrap();
    assert_eq!(keyed.status, 400);
    // Signed: accepted, settling the invoice's payment; again: duplicate, nothing run.
    let first = s.deliver(&event, &s.sign(&event)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json().unwrap();
    assert_eq!(first["outcome"], "accepted", "{first}");
    let again = s.deliver(&event, &s.sign(&event)).await.json().unwrap();
    assert_eq!(again["outcome"], "duplicate", "{again}");
    assert_eq!(again["command_receipt"], first["command_receipt"]);
    // Too big: 413 before anything is read into the runtime.
    let big = json!({"id":"evt_big","pad":"x".repeat(billing::WEBHOOK_BODY_BYTES_MAX)});
    let r = s.deliver(&big, &s.sign(&big)).await;
    assert_eq!((r.status, code(&r)), (413, "payload_too_large".into()));
}
