//! Figures, run only with `GOVERN_HTTP_LOAD=1` (docs/benchmarks.md, "Issue 13: the HTTP API on
//! loopback"): checks and usage events per second through the served router, with the
//! clients in the same process on keep-alive connections over loopback, and each request's
//! latency (p50, p99). Every answer is checked (200, and for usage every event counted), so a
//! figure is never one of errors.
//!
//! ```sh
//! GOVERN_HTTP_LOAD=1 cargo test --release -p govern-http --test api load -- --nocapture
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId};
use govern_http::keys::Scope;
use govern_http::{AppState, KeyStore, Limits};
use govern_runtime::Runtime;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::support::serve;

/// Concurrent clients, each on its own keep-alive connection.
const CLIENTS: usize = 32;
/// Tenants the clients are spread over (client `i` acts for tenant `i % TENANTS`).
const TENANTS: usize = 4;
/// Requests per client in a case.
const REQUESTS: usize = 2_000;

/// A case's figures.
struct Figures {
    requests: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// `CLIENTS` clients send `REQUESTS` requests each (`body(client, i)`), one at a time on their
/// connection; every answer must be 200 and pass `check`.
async fn run(
    addr: std::net::SocketAddr,
    keys: &Arc<Vec<String>>,
    path: &'static str,
    body: fn(usize, usize) -> String,
    check: fn(&serde_json::Value),
) -> Figures {
    let began = tokio::time::Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let keys = Arc::clone(keys);
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let tenant = c % TENANTS;
            let uri = path.replace("{tenant}", &format!("t{tenant}"));
            let auth = format!("Bearer {}", keys[tenant]);
            let mut latencies = Vec::with_capacity(REQUESTS);
            for i in 0..REQUESTS {
                let request = hyper::Request::post(&uri)
                    .header("host", "x")
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body(c, i))))
                    .expect("request");
                let sent = tokio::time::Instant::now();
                sender.ready().await.expect("ready");
                let response = sender.send_request(request).await.expect("response");
                let status = response.status();
                let bytes = response.into_body().collect().await.expect("body").to_bytes();
                latencies.push(sent.elapsed());
                let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                assert_eq!(status, 200, "{json}");
                check(&json);
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(CLIENTS * REQUESTS);
    for client in clients {
        all.extend(client.await.expect("client"));
    }
    let elapsed = began.elapsed();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Figures { requests: all.len(), elapsed, p50: at(0.50), p99: at(0.99) }
}

#[allow(clippy::print_stdout, reason = "the figures are this test's output")]
fn report(case: &str, per_request: usize, f: &Figures) {
    let secs = f.elapsed.as_secs_f64();
    println!(
        "{{\"case\":\"{case}\",\"clients\":{CLIENTS},\"requests\":{},\"requests_per_s\":{:.0},\"items_per_s\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
        f.requests,
        f.requests as f64 / secs,
        (f.requests * per_request) as f64 / secs,
        f.p50.as_micros(),
        f.p99.as_micros(),
    );
}

/// Usage events per request in the batched case.
const BATCH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_and_usage_per_second_over_loopback() {
    if std::env::var_os("GOVERN_HTTP_LOAD").is_none() {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/plans/pricing.toml");
    let mut catalog = govern_plans::load(std::path::Path::new(path)).expect("catalog");
    // No rate limit: the figures are the edge's and the decision's, not a 429's.
    for plan in catalog.plans.values_mut() {
        plan.limits.retain(|meter, _| meter.as_str() != "requests_per_second");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::builder()
        .data_dir(dir.path().join("ledger"))
        .catalog(catalog)
        .start()
        .await
        .expect("runtime");
    let handle = runtime.handle();
    let store = KeyStore::open_in(dir.path()).expect("keys");
    let mut keys = Vec::new();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    for t in 0..TENANTS {
        let tenant = TenantId::new(&format!("t{t}")).expect("id");
        handle.provision_tenant(&tenant, quota, "load").await.expect("provision");
        let sub = handle.subscription(&tenant, &ResourceId::new("sub-1").expect("id"));
        sub.start_trial("pricing-enterprise", 14, "load").await.expect("trial");
        sub.activate(None, "load").await.expect("activate");
        keys.push(store.create(Scope::Tenant(tenant), "load").expect("key").1);
    }
    let keys = Arc::new(keys);
    let state = AppState { runtime: handle.clone(), keys: Arc::new(store) };
    let limits = Limits::default();
    let (addr, stop, served) = serve(govern_http::router_with(state, &limits), limits).await;

    let check = run(
        addr,
        &keys,
        "/v1/tenants/{tenant}/check",
        |_, _| r#"{"feature":"report_builder","action":"create"}"#.to_owned(),
        |json| assert_eq!(json["allowed"], true),
    )
    .await;
    report("check", 1, &check);
    let one = run(
        addr,
        &keys,
        "/v1/tenants/{tenant}/usage",
        |c, i| {
            format!(r#"{{"events":[{{"meter":"ai_tokens","quantity":1,"event_id":"a{c}-{i}"}}]}}"#)
        },
        |json| assert_eq!(json["counted"], 1),
    )
    .await;
    report("usage, 1 event a request", 1, &one);
    let batched = run(
        addr,
        &keys,
        "/v1/tenants/{tenant}/usage",
        |c, i| {
            let events: Vec<String> = (0..BATCH)
                .map(|e| {
                    format!(r#"{{"meter":"ai_tokens","quantity":1,"event_id":"b{c}-{i}-{e}"}}"#)
                })
                .collect();
            format!(r#"{{"events":[{}]}}"#, events.join(","))
        },
        |json| assert_eq!(json["counted"], BATCH),
    )
    .await;
    report(&format!("usage, {BATCH} events a request"), BATCH, &batched);

    stop.send(()).expect("serving");
    served.await.expect("task").expect("serve");
    runtime.shutdown().await.expect("shutdown");
}
