//! The entitlement layer over a real loopback socket: a host's router of a few routes behind
//! `EntitlementLayer`, served by `axum::serve` on 127.0.0.1:0 and asked by a tiny hyper
//! HTTP/1 client. Each handler counts its calls, so a test sees whether it ran.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::{get, post};
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_http::layer::{EntitlementLayerBuilder, FAIL_HEADER, TENANT_HEADER};
use govern_http::{EntitlementLayer, Route, Unmapped};
use govern_runtime::{Runtime, RuntimeBuilder, RuntimeHandle};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

/// 2026-01-01T00:00:00Z: the month's reports reset 31 days later.
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).expect("a tenant id")
}

fn builder() -> RuntimeBuilder {
    capture_logs();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/plans/pricing.toml");
    let catalog = govern_plans::load(std::path::Path::new(path)).expect("the pricing catalog");
    Runtime::builder().epoch(T0).catalog(catalog)
}

thread_local! {
    /// What this thread logged: a test's runtime, server and client run on its thread (a
    /// current-thread runtime), so these are its warnings.
    static LOG: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes to this thread's [`LOG`].
struct ThreadLog;

impl std::io::Write for ThreadLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.with(|log| log.borrow_mut().extend_from_slice(bytes));
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once and before any test logs, a global subscriber of warnings writing to each
/// thread's own log. (A per-test `set_default` would race other tests' threads on tracing's
/// global cache of which call sites are enabled.)
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(|| ThreadLog)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    });
}

/// The lines this thread logged so far.
fn logged() -> Vec<String> {
    let bytes = LOG.with(|log| log.borrow().clone());
    String::from_utf8(bytes).expect("UTF-8").lines().map(str::to_owned).collect()
}

/// Provisions `id` and puts it on `starter` (report_builder with 10 reports a month,
/// export_pdf, api_access; 5 requests per second; no forecast).
async fn on_starter(h: &RuntimeHandle, id: &str) -> TenantId {
    let t = tenant(id);
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    h.provision_tenant(&t, quota, "onboarding").await.expect("provisioned");
    let sub = h.subscription(&t, &ResourceId::new("sub-1").expect("a resource id"));
    sub.start_trial("starter", 14, "signed up").await.expect("a trial");
    sub.activate(None, "paid").await.expect("active");
    t
}

/// The host's routes, each counting its calls.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn host(calls: &Calls) -> Router {
    let counted = |calls: &Calls| {
        let calls = calls.clone();
        move || async move {
            calls.0.fetch_add(1, Ordering::SeqCst);
            "done"
        }
    };
    Router::new()
        .route("/v1/reports/generate", post(counted(calls)))
        .route("/v1/reports/{id}", get(counted(calls)))
        .route("/v1/forecast", get(counted(calls)))
        .route("/v1/teleport", post(counted(calls)))
        .route("/v1/api/ping", get(counted(calls)))
        .route("/v1/pdf/{id}", get(counted(calls)))
        .route("/health", get(counted(calls)))
}

/// The host's map of routes to features.
fn routes(h: &RuntimeHandle) -> EntitlementLayerBuilder {
    EntitlementLayer::builder(h.clone())
        .route(Route::post("/v1/reports/generate", "report_builder"))
        .route(Route::get("/v1/reports/{id}", "report_builder"))
        .route(Route::get("/v1/forecast", "forecast"))
        .route(Route::post("/v1/teleport", "teleport"))
        .route(Route::get("/v1/api/*", "api_access").action("call"))
        .route(Route::get("/v1/pdf/{id}", "export_pdf").fail_open())
        .route(Route::get("/v1/slow/{id}", "report_builder"))
}

/// Serves `app` on a loopback port until the test ends.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A response as the client saw it.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
    }
}

/// One request on a fresh HTTP/1 connection.
async fn send(addr: SocketAddr, method: Method, path: &str, tenant: Option<&str>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connected");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("a handshake");
    tokio::spawn(connection);
    let mut request = Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(t) = tenant {
        request = request.header(TENANT_HEADER, t);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).expect("a request"))
        .await
        .expect("a response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body").to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}

#[tokio::test]
async fn an_allowed_request_reaches_its_handler_and_says_what_allowed_it() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;

    let reply = send(addr, Method::POST, "/v1/reports/generate", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], b"done");
    assert_eq!(reply.header("x-govern-decided-by"), Some("plan_feature:report_builder"));
    assert_eq!(reply.header("x-govern-fail"), None);
    let reply = send(addr, Method::GET, "/v1/reports/42", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(calls.count(), 2, "both handlers ran");
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_feature_no_plan_offers_is_403_not_entitled_and_the_handler_does_not_run() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;

    let reply = send(addr, Method::POST, "/v1/teleport", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "not_entitled");
    assert_eq!(error["status"], 403);
    assert_eq!(error["decided_by"], "default");
    assert!(error.get("retry_after").is_none());
    assert_eq!(reply.header("retry-after"), None);
    assert_eq!(calls.count(), 0);
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_feature_of_a_higher_plan_is_402_plan_upgrade_required() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;

    let reply = send(addr, Method::GET, "/v1/forecast", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    let error = &reply.json()["error"];
    assert_eq!(
        (error["code"].as_str(), error["status"].as_u64()),
        (Some("plan_upgrade_required"), Some(402))
    );
    assert_eq!(calls.count(), 0);
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn over_the_plans_rate_is_429_with_the_refusals_retry_after() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;

    // Starter's burst of 5 requests per second, spent in-process; the 6th, over HTTP, is
    // refused unless a fifth of a second has passed since the first (one loopback request
    // takes far less).
    for _ in 0..5 {
        assert!(h.check(&acme, "api_access", "call", 1).expect("a decision").is_allowed());
    }
    let reply = send(addr, Method::GET, "/v1/api/ping", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["decided_by"], "limit:requests_per_second");
    assert_eq!(error["retry_after"], 1, "the refusal's retry_after_secs");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(calls.count(), 0);
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn an_exhausted_quota_is_429_with_the_time_until_it_resets() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    h.record_usage(&acme, "reports", 10, "e1", h.now()).await.expect("usage recorded");
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;

    let said = || {
        let decision = h.check(&acme, "report_builder", "create", 1).expect("a decision");
        let refusal = decision.refusal().expect("refused").clone();
        assert_eq!(refusal.code, "quota_exceeded");
        refusal.retry_after_secs.expect("a retry-after")
    };
    let before = said();
    let reply = send(addr, Method::POST, "/v1/reports/generate", Some(acme.as_str())).await;
    let after = said();
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "quota_exceeded");
    let seconds: u64 = reply.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert_eq!(error["retry_after"], seconds);
    // What the runtime said just before and just after (the month ends 31 days after T0).
    assert!((after..=before).contains(&seconds), "{after} <= {seconds} <= {before}");
    assert!(before <= 31 * 86_400 && after > 30 * 86_400);
    assert_eq!(calls.count(), 0);
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn an_unmapped_route_passes_untouched_or_is_denied_when_configured() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let calls = Calls::default();
    let passing = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;
    let denying =
        serve(host(&calls).layer(routes(&h).unmapped(Unmapped::Deny).build().expect("a layer")))
            .await;

    // No tenant needed, nothing checked, no header added.
    let reply = send(passing, Method::GET, "/health", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!((reply.header("x-govern-decided-by"), reply.header("x-govern-fail")), (None, None));
    assert_eq!(calls.count(), 1);
    // A method the map does not name is unmapped too (the host's router answers 405).
    let reply = send(passing, Method::DELETE, "/v1/forecast", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);

    let reply = send(denying, Method::GET, "/health", Some("acme")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let error = &reply.json()["error"];
    assert_eq!(
        (error["code"].as_str(), error["decided_by"].as_str()),
        (Some("not_entitled"), Some("route:unmapped"))
    );
    assert_eq!(calls.count(), 1, "the denied request did not reach its handler");
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_missing_tenant_is_401_a_malformed_one_400_and_an_unknown_one_403() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;

    let reply = send(addr, Method::GET, "/v1/reports/1", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"]["code"], "unauthorized");
    let reply = send(addr, Method::GET, "/v1/reports/1", Some("not a tenant id!")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], "invalid_tenant");
    let reply = send(addr, Method::GET, "/v1/reports/1", Some("nobody")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let error = &reply.json()["error"];
    assert_eq!(
        (error["code"].as_str(), error["decided_by"].as_str()),
        (Some("not_entitled"), Some("tenant:unknown"))
    );
    assert_eq!(calls.count(), 0);

    // A host's closure instead of the header (here: the tenant is the path's first segment).
    let by_path = routes(&h)
        .route(Route::get("/{tenant}/reports/{id}", "report_builder"))
        .tenant_from(|parts| {
            let first = parts.uri.path().trim_start_matches('/').split('/').next()?;
            TenantId::new(first).ok()
        })
        .build()
        .expect("a layer");
    let acme = on_starter(&h, "acme").await;
    let app =
        Router::new().route("/{tenant}/reports/{id}", get(|| async { "mine" })).layer(by_path);
    let addr = serve(app).await;
    let reply = send(addr, Method::GET, &format!("/{acme}/reports/1"), None).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"mine"[..]));
    let reply = send(addr, Method::GET, "/~/reports/1", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "the closure found none");
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_shut_down_runtime_fails_closed_except_on_a_route_set_to_fail_open() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;
    rt.shutdown().await.expect("a clean shutdown");

    let reply = send(addr, Method::GET, "/v1/reports/1", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("x-govern-fail"), Some("closed"));
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "entitlement_unavailable");
    assert_eq!(error["status"], 503);
    assert_eq!(error["fail"], "closed");
    assert_eq!(error["reason"], "shutting_down");
    assert_eq!(calls.count(), 0, "failing closed, the handler did not run");

    // `/v1/pdf/{id}` fails open: the handler runs and the response says so.
    let reply = send(addr, Method::GET, "/v1/pdf/7", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(FAIL_HEADER.as_str()), Some("open"));
    assert_eq!(reply.header("x-govern-decided-by"), None);
    assert_eq!(calls.count(), 1);
    // Three more refused at once: answered the same, not logged again (one a second at most).
    for _ in 0..3 {
        let reply = send(addr, Method::GET, "/v1/reports/1", Some(acme.as_str())).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    // Both are logged as warnings, once each, with the tenant, the feature and the reason.
    let said: Vec<String> = logged().into_iter().filter(|l| l.contains("entitlement")).collect();
    assert_eq!(said.len(), 2, "{said:#?}");
    assert!(said[0].contains("WARN") && said[0].contains("failing closed"), "{}", said[0]);
    assert!(said[1].contains("WARN") && said[1].contains("failing open"), "{}", said[1]);
    for line in &said {
        assert!(
            line.contains("tenant_id=acme") && line.contains("reason=\"shutting_down\""),
            "{line}"
        );
    }
    assert!(said[1].contains("feature=export_pdf"), "{}", said[1]);
}

#[tokio::test]
async fn a_pattern_that_is_not_one_is_refused_when_the_layer_is_built() {
    use govern_http::layer::{LayerError, PatternError};
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    for (pattern, error) in [
        ("v1/reports", PatternError::NotAbsolute),
        ("/v1/*/export", PatternError::MisplacedWildcard),
        ("/v1/{}/export", PatternError::BadParam { segment: "{}".into() }),
    ] {
        match routes(&h).route(Route::get(pattern, "report_builder")).build() {
            Err(LayerError::Pattern { pattern: p, error: e }) => {
                assert_eq!((p.as_str(), e), (pattern, error))
            }
            other => panic!("{pattern}: {other:?}"),
        }
    }
    rt.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn without_a_catalog_the_runtime_cannot_answer_and_the_layer_fails_closed() {
    capture_logs();
    let rt = Runtime::builder().epoch(T0).start().await.expect("a runtime");
    let h = rt.handle();
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;
    let reply = send(addr, Method::GET, "/v1/reports/1", Some("acme")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"]["reason"], "no_catalog");
    assert_eq!(calls.count(), 0);
    rt.shutdown().await.expect("a clean shutdown");
}

/// A durable store over memory whose `fdatasync` can be made to fail (poisoning the ledger).
struct FailingSync {
    inner: govern_ledger::MemoryStore,
    fail: Arc<AtomicBool>,
}

impl govern_ledger::LedgerStore for FailingSync {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), govern_ledger::StoreError> {
        self.inner.append(seq, record)
    }
    fn sync(&mut self) -> Result<(), govern_ledger::StoreError> {
        govern_ledger::sync_by_phases(self)
    }
    fn is_durable(&self) -> bool {
        true
    }
    fn begin_sync(&mut self) -> Result<govern_ledger::SyncJob, govern_ledger::StoreError> {
        let fail = Arc::clone(&self.fail);
        Ok(govern_ledger::SyncJob::new(self.inner.len(), move || {
            if fail.load(Ordering::SeqCst) {
                Err(govern_ledger::StoreError::Io("injected fdatasync failure".into()))
            } else {
                Ok(())
            }
        }))
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, govern_ledger::StoreError> {
        self.inner.read(seq, out)
    }
}

#[tokio::test]
async fn a_poisoned_ledger_fails_closed() {
    let fail = Arc::new(AtomicBool::new(false));
    let store = FailingSync { inner: govern_ledger::MemoryStore::new(), fail: Arc::clone(&fail) };
    let rt = builder().store(Box::new(store)).start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    let calls = Calls::default();
    let addr = serve(host(&calls).layer(routes(&h).build().expect("a layer"))).await;
    assert_eq!(
        send(addr, Method::GET, "/v1/reports/1", Some(acme.as_str())).await.status,
        StatusCode::OK
    );

    fail.store(true, Ordering::SeqCst);
    let sub = h.subscription(&acme, &ResourceId::new("sub-1").expect("a resource id"));
    let refused = sub.pause("holiday").await.expect_err("the ledger is poisoned");
    assert_eq!(refused.code(), "ledger_unavailable");
    let reply = send(addr, Method::GET, "/v1/reports/1", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"]["reason"], "ledger_unavailable");
    assert_eq!(calls.count(), 1, "only the request before the failure ran");
    assert!(rt.shutdown().await.is_err(), "shutdown reports the failure");
}

#[tokio::test]
async fn past_the_in_flight_bound_a_request_fails_closed_or_open_as_its_route_says() {
    let rt = builder().start().await.expect("a runtime");
    let h = rt.handle();
    let acme = on_starter(&h, "acme").await;
    let calls = Calls::default();
    // `/v1/slow/{id}` holds its request until released, after saying it entered.
    let (entered_tx, mut entered) = mpsc::channel::<()>(1);
    let release = Arc::new(Notify::new());
    let slow = {
        let release = Arc::clone(&release);
        let calls = calls.clone();
        move || async move {
            calls.0.fetch_add(1, Ordering::SeqCst);
            entered_tx.send(()).await.expect("the test listens");
            release.notified().await;
            "slow"
        }
    };
    let layer = routes(&h).in_flight_max(1).build().expect("a layer");
    let app = host(&calls).route("/v1/slow/{id}", get(slow)).layer(layer.clone());
    let addr = serve(app).await;

    let first = tokio::spawn({
        let acme = acme.clone();
        async move { send(addr, Method::GET, "/v1/slow/1", Some(acme.as_str())).await }
    });
    entered.recv().await.expect("the first request entered its handler");
    assert_eq!(layer.in_flight(), 1);

    // The bound is reached: a fail-closed route answers 503 ...
    let reply = send(addr, Method::POST, "/v1/reports/generate", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"]["reason"], "overloaded");
    assert_eq!(reply.header("x-govern-fail"), Some("closed"));
    // ... a fail-open one runs, and says so.
    let reply = send(addr, Method::GET, "/v1/pdf/1", Some(acme.as_str())).await;
    assert_eq!((reply.status, reply.header("x-govern-fail")), (StatusCode::OK, Some("open")));
    assert_eq!(calls.count(), 2, "the held request and the fail-open one");

    release.notify_one();
    let reply = first.await.expect("the first request");
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"slow"[..]));
    assert_eq!(layer.in_flight(), 0, "the response head released its place");
    let reply = send(addr, Method::POST, "/v1/reports/generate", Some(acme.as_str())).await;
    assert_eq!(reply.status, StatusCode::OK, "below the bound again");
    rt.shutdown().await.expect("a clean shutdown");
}
