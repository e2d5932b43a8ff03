//! What the entitlement layer adds to a request, in-process: a trivial inner service called
//! bare and through `EntitlementLayer` (allowed, refused 403, unmapped), one thread. The
//! inner future is ready at once, so each call is polled once with a no-op waker: nothing
//! of an executor is in the figure. Allowed checks are counted by the runtime (receipted in
//! windows), as in production; the catalog sets no rate, so every allowed check stays allowed.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::http::{Request, Response};
use criterion::{Criterion, criterion_group, criterion_main};
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_http::layer::TENANT_HEADER;
use govern_http::{EntitlementLayer, Route};
use govern_runtime::Runtime;
use tower::{Layer, Service, ServiceExt};

/// One plan, no rate limit: allowed checks stay allowed however many the bench makes.
const CATALOG: &str = r#"
version = "bench"

[refusals.feature_not_in_plan]
status = 402
message = "Your plan does not include this feature."

[features.reports]
description = "Reports."

[features.forecast]
description = "Forecasts."

[plans.basic]
name = "Basic"
price = { amount = "10.00", currency = "USD", interval = "month" }
features = ["reports"]

[plans.plus]
name = "Plus"
price = { amount = "20.00", currency = "USD", interval = "month" }
features = ["reports", "forecast"]
"#;

/// Calls `service` once; its future must be ready on the first poll.
fn call<S>(service: &mut S, request: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("the inner service is ready at once"),
    }
}

/// `ServiceExt::oneshot` on a clone of `service` (a readiness poll, then the call); ready at
/// the first poll.
fn oneshot<S>(service: &S, request: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = pin!(service.clone().oneshot(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("the inner service is ready at once"),
    }
}

fn request(path: &str, tenant: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(t) = tenant {
        request = request.header(TENANT_HEADER, t);
    }
    request.body(Body::empty()).unwrap()
}

fn layer(c: &mut Criterion) {
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.toml");
    std::fs::write(&path, CATALOG).unwrap();
    let catalog = govern_plans::load(&path).unwrap();
    let acme = TenantId::new("acme").unwrap();
    let runtime = tokio.block_on(async {
        let rt = Runtime::builder()
            .epoch(Timestamp(1_767_225_600_000))
            .catalog(catalog)
            .start()
            .await
            .unwrap();
        let h = rt.handle();
        let quota = ResourceQuota { storage_gb: 1, compute_units: 1, bandwidth_mbps: 1 };
        h.provision_tenant(&acme, quota, "bench").await.unwrap();
        let sub = h.subscription(&acme, &ResourceId::new("sub").unwrap());
        sub.start_trial("basic", 14, "bench").await.unwrap();
        sub.activate(None, "bench").await.unwrap();
        rt
    });
    // `check` queues its audit records on the runtime's actors: it runs inside the runtime.
    let entered = tokio.enter();

    let inner = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let entitlements = EntitlementLayer::builder(runtime.handle())
        .route(Route::get("/v1/boardroom", "boardroom"))
        .route(Route::get("/v1/nlq/*", "nlq"))
        .route(Route::get("/v1/forecast", "forecast"))
        .route(Route::get("/v1/reports/{id}", "reports"))
        .build()
        .unwrap();
    let mut bare = inner;
    let mut layered = entitlements.layer(inner);
    assert_eq!(call(&mut layered, request("/v1/reports/7", Some("acme"))).status(), 200);
    assert_eq!(call(&mut layered, request("/v1/forecast", Some("acme"))).status(), 402);

    let mut group = c.benchmark_group("layer");
    let handle = runtime.handle();
    group.bench_function("check_alone", |b| {
        b.iter(|| black_box(handle.check(&acme, black_box("reports"), "read", 1).unwrap()));
    });
    group.bench_function("bare", |b| {
        b.iter(|| black_box(call(&mut bare, request(black_box("/v1/reports/7"), Some("acme")))));
    });
    group.bench_function("allowed", |b| {
        b.iter(|| black_box(call(&mut layered, request(black_box("/v1/reports/7"), Some("acme")))));
    });
    group.bench_function("refused_402", |b| {
        b.iter(|| black_box(call(&mut layered, request(black_box("/v1/forecast"), Some("acme")))));
    });
    group.bench_function("unmapped", |b| {
        b.iter(|| black_box(call(&mut layered, request(black_box("/health"), None))));
    });
    group.finish();

    // The same through `oneshot` (a clone and a readiness poll per call), as tower callers do.
    let mut group = c.benchmark_group("layer_oneshot");
    group.bench_function("bare", |b| {
        b.iter(|| black_box(oneshot(&bare, request(black_box("/v1/reports/7"), Some("acme")))));
    });
    group.bench_function("allowed", |b| {
        b.iter(|| black_box(oneshot(&layered, request(black_box("/v1/reports/7"), Some("acme")))));
    });
    group.finish();
    drop(entered);
    tokio.block_on(async move { runtime.shutdown().await.unwrap() });
}

criterion_group!(benches, layer);
criterion_main!(benches);
