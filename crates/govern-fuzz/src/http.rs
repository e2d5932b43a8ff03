//! Target `http`: the request bodies (and query strings, and path parameters) `govern serve`'s
//! routes parse, sent through the real router in process (`tower::ServiceExt::oneshot`, no
//! socket) to a real runtime in memory: the pricing catalog, tenant `acme` with subscription
//! `sub-1` on `starter`, a tenant key and an operator key, webhooks configured. The input's
//! first byte picks the route ([`ROUTES`]), the rest is the body (or query, or path
//! parameter); webhook bodies are signed, so they reach the event parser and the runtime.
//!
//! Properties: no panic; at most the router's body limit plus one byte; no answer is a 500;
//! every answer is JSON, and every error answer has the one error shape (`{"error": {...}}`).
//!
//! The runtime is shared by every input of a process, so inputs that are accepted change it
//! (and its in-memory ledger grows with them); a crash is replayed from its input alone.

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_http::keys::Scope;
use govern_http::{AppState, KeyStore, Limits};
use govern_runtime::Runtime;
use tower::ServiceExt as _;

/// How a route is driven: method, path (`{}` replaced by the percent-encoded input for a
/// path parameter, `?` followed by it for a query), which key, where the input goes.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The method.
    pub method: &'static str,
    /// The path.
    pub path: &'static str,
    /// The operator's key rather than acme's.
    pub operator: bool,
    /// Where the input goes.
    pub input: Input,
}

/// Where a route takes the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The JSON body.
    Json,
    /// The body, signed with the first webhook secret at the runtime's now.
    Signed,
    /// The query string.
    Query,
    /// The path parameter in place of `{}`.
    Path,
}

/// The routes, by the input's first byte (modulo their number).
pub const ROUTES: [Route; 9] = [
    Route {
        method: "POST",
        path: "/v1/tenants/acme/commands",
        operator: false,
        input: Input::Json,
    },
    Route { method: "POST", path: "/v1/tenants/acme/check", operator: false, input: Input::Json },
    Route { method: "POST", path: "/v1/tenants/acme/usage", operator: false, input: Input::Json },
    Route {
        method: "POST",
        path: "/v1/tenants/acme/plan-change:simulate",
        operator: false,
        input: Input::Json,
    },
    Route {
        method: "POST",
        path: "/v1/tenants/acme/plan-change:apply",
        operator: false,
        input: Input::Json,
    },
    Route { method: "POST", path: "/v1/webhooks/payments", operator: false, input: Input::Signed },
    Route {
        method: "GET",
        path: "/v1/tenants/acme/receipts",
        operator: false,
        input: Input::Query,
    },
    Route { method: "GET", path: "/v1/tenants", operator: true, input: Input::Query },
    Route {
        method: "GET",
        path: "/v1/tenants/acme/invoices/{}",
        operator: false,
        input: Input::Path,
    },
];

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

/// The catalog the runtime runs with.
const PRICING: &str = include_str!("../../../examples/plans/pricing.toml");

/// What every input of a process shares.
struct Harness {
    tokio: tokio::runtime::Runtime,
    router: axum::Router,
    tenant_key: String,
    operator_key: String,
    handle: govern_runtime::RuntimeHandle,
    /// Kept running (and its key directory kept) for the process's life.
    _runtime: Mutex<Runtime>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| match start() {
        Ok(h) => h,
        Err(e) => panic!("the http target's runtime did not start: {e}"),
    })
}

fn start() -> Result<Harness, String> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let catalog = govern_plans::validate(PRICING, "pricing.toml")
        .map_err(|p| format!("{} problems in pricing.toml", p.len()))?;
    let acme = TenantId::new("acme").map_err(|e| e.to_string())?;
    let sub = ResourceId::new("sub-1").map_err(|e| e.to_string())?;
    let (runtime, handle) = tokio.block_on(async {
        let runtime = Runtime::builder()
            .epoch(T0)
            .catalog(catalog)
            .start()
            .await
            .map_err(|e| e.to_string())?;
        let handle = runtime.handle();
        let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
        handle.provision_tenant(&acme, quota, "fuzz").await.map_err(|e| e.to_string())?;
        let s = handle.subscription(&acme, &sub);
        s.start_trial("starter", 14, "fuzz").await.map_err(|e| e.to_string())?;
        s.activate(None, "fuzz").await.map_err(|e| e.to_string())?;
        Ok::<_, String>((runtime, handle))
    })?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let keys = KeyStore::open_in(dir.path()).map_err(|e| e.to_string())?;
    let (_, operator_key) = keys.create(Scope::Operator, "ops").map_err(|e| e.to_string())?;
    let (_, tenant_key) = keys.create(Scope::Tenant(acme), "acme").map_err(|e| e.to_string())?;
    let verifier =
        govern_webhooks::Verifier::new(&crate::webhook::SECRETS).map_err(|e| e.to_string())?;
    let state = AppState { runtime: handle.clone(), keys: Arc::new(keys) };
    let router =
        govern_http::router_with_webhooks(state, &Limits::default(), Some(Arc::new(verifier)));
    Ok(Harness {
        tokio,
        router,
        tenant_key,
        operator_key,
        handle,
        _runtime: Mutex::new(runtime),
        _dir: dir,
    })
}

/// `bytes` percent-encoded but for unreserved characters and `=`, `&`.
fn percent(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request an input stands for.
fn request(h: &Harness, data: &[u8]) -> Option<Request<Body>> {
    let (&pick, rest) = data.split_first()?;
    let route = ROUTES[usize::from(pick) % ROUTES.len()];
    let key = if route.operator { &h.operator_key } else { &h.tenant_key };
    let uri = match route.input {
        Input::Query => format!("{}?{}", route.path, percent(rest, b"=&")),
        Input::Path => route.path.replace("{}", &percent(rest, b"")),
        Input::Json | Input::Signed => route.path.to_owned(),
    };
    let mut builder = Request::builder()
        .method(Method::from_bytes(route.method.as_bytes()).ok()?)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    if route.input == Input::Signed {
        let now = h.handle.now().0 / 1_000;
        let signed = govern_webhooks::sign(crate::webhook::SECRETS[0], now, rest);
        builder = builder.header("stripe-signature", signed);
    }
    let body = match route.input {
        Input::Json | Input::Signed => Body::from(rest.to_vec()),
        Input::Query | Input::Path => Body::empty(),
    };
    builder.body(body).ok()
}

/// What the router answers to the request `data` stands for: its status and its body as
/// JSON (`None`: the input stands for no request, or is over the bound).
///
/// # Panics
/// When the answer's body cannot be read, or is not JSON.
#[must_use]
pub fn answer(data: &[u8]) -> Option<(StatusCode, serde_json::Value)> {
    if data.len() > Limits::default().body_bytes_max + 2 {
        return None;
    }
    let h = harness();
    let request = request(h, data)?;
    let (status, body) = h.tokio.block_on(async {
        let Ok(response) = h.router.clone().oneshot(request).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        (status, body)
    });
    let Ok(body) = body else { panic!("the answer's body could not be read ({status})") };
    match serde_json::from_slice(&body) {
        Ok(json) => Some((status, json)),
        Err(_) => panic!(
            "{status} answered with a body that is not JSON: {}",
            String::from_utf8_lossy(&body)
        ),
    }
}

/// The target's body.
///
/// # Panics
/// When a property fails.
pub fn run(data: &[u8]) {
    let Some((status, json)) = answer(data) else { return };
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500: {json}");
    if !status.is_success() {
        assert!(json["error"].is_object(), "{status} without the error shape: {json}");
    }
}

/// One input per route: a body each handler accepts (or, for reads, a query or parameter
/// it takes), for the `http` corpus.
#[must_use]
pub fn seeds() -> Vec<crate::seeds::Seed> {
    let t = T0.0 / 1_000;
    let inputs: [(&str, u8, String); 10] = [
        ("command", 0, r#"{"kind":"subscription","resource":"sub-2","name":"start_trial","args":{"plan":"starter","trial_days":14},"reason":"signed up"}"#.into()),
        ("check", 1, r#"{"feature":"report_builder","action":"create","quantity":2}"#.into()),
        ("usage", 2, r#"{"events":[{"meter":"reports","quantity":3,"event_id":"e-1"},{"meter":"ai_tokens","quantity":1000,"event_id":"e-2","at_ms":1767225600000}]}"#.into()),
        ("simulate", 3, r#"{"to":"pro","subscription":"sub-1"}"#.into()),
        ("apply", 4, r#"{"to":"pro","subscription":"sub-1","reason":"grew"}"#.into()),
        ("command-billing", 0, r#"{"kind":"billing","resource":"inv-1","name":"request_payment","args":{"amount":"19.00","currency":"EUR","method":"card"},"reason":"monthly"}"#.into()),
        ("webhook", 5, format!(r#"{{"id":"evt_1","object":"event","type":"invoice.paid","created":{t},"livemode":false,"data":{{"object":{{"id":"in_1","amount_paid":1900,"currency":"usd","metadata":{{"govern_tenant":"acme","govern_resource":"sub-1"}}}}}}}}"#)),
        ("receipts", 6, "after=0&limit=10".into()),
        ("tenants", 7, "limit=5&after=a".into()),
        ("invoice", 8, "2026-01".into()),
    ];
    inputs
        .into_iter()
        .map(|(name, route, body)| {
            let mut bytes = vec![route];
            bytes.extend_from_slice(body.as_bytes());
            crate::seeds::Seed { target: "http", name: name.into(), bytes }
        })
        .collect()
}
