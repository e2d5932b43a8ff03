//! What the API tests share: a runtime with the pricing catalog and two tenants on `starter`,
//! keys of every kind, the router served on a loopback socket, and a small HTTP/1 client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_http::keys::Scope;
use govern_http::{AppState, KeyStore, Limits, Stopped};
use govern_runtime::{Runtime, RuntimeHandle};
use http_body_util::{BodyExt as _, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// 2026-01-01T00:00:00Z.
pub(crate) const T0: Timestamp = Timestamp(1_767_225_600_000);

/// Every request of a test is answered within this, or the test fails (a hung server).
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(10);

pub(crate) fn tenant(id: &str) -> TenantId {
    TenantId::new(id).expect("tenant id")
}

/// The keys of a test: an operator's, acme's, globex's, and one of acme's, revoked.
#[derive(Debug)]
pub(crate) struct Keys {
    pub(crate) operator: String,
    pub(crate) acme: String,
    pub(crate) globex: String,
    pub(crate) revoked: String,
}

/// A served router over a running runtime.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) runtime: Option<Runtime>,
    pub(crate) handle: RuntimeHandle,
    pub(crate) keys: Keys,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<Stopped>>>,
    _dir: tempfile::TempDir,
    /// This test thread's metrics recorder (a Prometheus one, as `govern serve` installs
    /// globally): the runtime registers with it at start, and `/metrics` renders it.
    _metrics: metrics::LocalRecorderGuard<'static>,
}

fn pricing() -> govern_plans::Catalog {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/plans/pricing.toml");
    govern_plans::load(std::path::Path::new(path)).expect("the pricing catalog")
}

impl Server {
    /// acme and globex, provisioned, active, each with subscription `sub-1` on `starter`;
    /// served with `limits`.
    pub(crate) async fn start(limits: Limits) -> Self {
        // Leaked: one small recorder per test, alive as long as anything may record into it.
        let recorder: &'static metrics_exporter_prometheus::PrometheusRecorder = Box::leak(
            Box::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()),
        );
        let guard = metrics::set_default_local_recorder(recorder);
        let prometheus = recorder.handle();
        let render: govern_http::telemetry::Render = Arc::new(move || prometheus.render());
        let runtime =
            Runtime::builder().epoch(T0).catalog(pricing()).start().await.expect("runtime");
        let handle = runtime.handle();
        let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
        for t in ["acme", "globex"] {
            let t = tenant(t);
            handle.provision_tenant(&t, quota, "onboarding").await.expect("provision");
            let sub = handle.subscription(&t, &ResourceId::new("sub-1").expect("id"));
            sub.start_trial("starter", 14, "signed up").await.expect("trial");
            sub.activate(None, "paid").await.expect("activate");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::open_in(dir.path()).expect("key store");
        let (_, operator) = store.create(Scope::Operator, "ops").expect("key");
        let (_, acme) = store.create(Scope::Tenant(tenant("acme")), "acme").expect("key");
        let (_, globex) = store.create(Scope::Tenant(tenant("globex")), "globex").expect("key");
        let (old, revoked) = store.create(Scope::Tenant(tenant("acme")), "old").expect("key");
        store.revoke(&old.id).expect("revoke");
        let keys = Keys { operator, acme, globex, revoked };
        let state = AppState { runtime: handle.clone(), keys: Arc::new(store) };
        let router = govern_http::router_with_metrics(state, &limits, None, Some(render));
        let (addr, stop, served) = serve(router, limits).await;
        Self {
            addr,
            runtime: Some(runtime),
            handle,
            keys,
            stop: Some(stop),
            served: Some(served),
            _dir: dir,
            _metrics: guard,
        }
    }

    /// A request to this server.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        call(self.addr, method, path, key, body, &[]).await
    }

    /// Stops serving, then the runtime.
    pub(crate) async fn stop(mut self) -> Stopped {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.served.take().expect("served until stopped");
        let stopped = served.await.expect("serve task").expect("serve");
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown().await.expect("shutdown");
        }
        stopped
    }
}

/// Serves `router` on a fresh loopback port until the sender is used (or dropped).
pub(crate) async fn serve(
    router: axum::Router,
    limits: Limits,
) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<std::io::Result<Stopped>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(govern_http::serve_with(listener, router, limits, async {
        let _ = stopped.await;
    }));
    (addr, stop, served)
}

/// A response: status, headers, and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) json: serde_json::Value,
    /// The body as text (lossy), for the answers that are not JSON.
    pub(crate) text: String,
}

impl Answer {
    /// The error body's code (`""` when there is none).
    pub(crate) fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or_default()
    }

    /// Asserts the error shape: this status, this code, the status repeated, a message.
    pub(crate) fn is_error(&self, status: u16, code: &str) {
        assert_eq!((self.status.as_u16(), self.code()), (status, code), "{self:?}");
        assert_eq!(self.json["error"]["status"], status, "{self:?}");
        assert!(self.json["error"]["message"].is_string(), "{self:?}");
    }
}

/// One request on a new connection (`Connection: close`), with a JSON body if given.
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    tokio::time::timeout(ANSWER_WITHIN, async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("connection", "close");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
        let response = sender.send_request(request.body(body).expect("request")).await;
        let response = response.expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer { status, headers, json, text }
    })
    .await
    .expect("answered in time")
}
