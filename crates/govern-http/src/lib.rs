//! The HTTP edge of govern (`docs/http.md`).
//!
//! - [`router`]: an axum [`Router`] a host mounts, over a running runtime's
//!   [`RuntimeHandle`]: health and readiness, and (every other route) API-key authenticated
//!   JSON endpoints with one error shape ([`ApiError`]).
//! - [`page`]: the status page (`GET /`) and its data (`GET /v1/status`, operators only).
//! - [`keys`]: API keys, stored hashed in a file beside the ledger, created and revoked with
//!   `govern keys`; a tenant's key reaches only its tenant, an operator's every tenant.
//! - [`serve()`]: serves a router on a TCP listener with bounded connections, a header-read
//!   timeout and a graceful shutdown; [`limits`]: every bound, named.
//! - [`layer`]: [`EntitlementLayer`], a tower layer a host puts on its own routes: each mapped
//!   request is checked with the runtime's `check` before its handler runs (402/403/429 as
//!   the refusal says; 503 or passed on, per route, when the runtime cannot answer).
//!
//! Nothing here decides: every answer is the runtime's (its governors, its `check`), turned
//! into HTTP.

mod api;
mod auth;
pub mod billing;
mod error;
pub mod keys;
pub mod layer;
pub mod limits;
pub mod node;
pub mod openapi;
pub mod page;
pub mod plan_change;
pub mod serve;
pub mod telemetry;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use govern_runtime::RuntimeHandle;

pub use auth::Authenticated;
pub use error::ApiError;
pub use keys::{Caller, KeyStore};
pub use layer::{EntitlementLayer, FailMode, Route, Unmapped};
pub use limits::Limits;
pub use serve::{Stopped, serve, serve_with};

/// What every route shares: the runtime and the key store.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The running runtime.
    pub runtime: RuntimeHandle,
    /// The API keys callers present.
    pub keys: Arc<KeyStore>,
}

/// The router a host mounts (or `govern serve` serves), with the default [`Limits`].
pub fn router(state: AppState) -> Router {
    router_with(state, &Limits::default())
}

/// The router, with `limits`' body size and request timeout: a body over
/// `limits.body_bytes_max` is answered 413 `payload_too_large`, a request not answered within
/// `limits.request_timeout` 408 `request_timeout`; a path no route has 404 `no_route`, a
/// method a path does not take 405 `method_not_allowed`, all in the one error shape. Without
/// a webhook secret, the webhook route answers 503 `webhooks_not_configured`.
pub fn router_with(state: AppState, limits: &Limits) -> Router {
    router_with_webhooks(state, limits, None)
}

/// [`router_with`], taking payment-provider webhooks signed with `verifier`'s secrets at
/// `POST /v1/webhooks/payments`.
pub fn router_with_webhooks(
    state: AppState,
    limits: &Limits,
    verifier: Option<Arc<govern_webhooks::Verifier>>,
) -> Router {
    router_with_metrics(state, limits, verifier, None)
}

/// [`router_with_webhooks`], with `GET /metrics` answering `render`'s text (an operator
/// key) and every request counted and timed by route pattern ([`telemetry`]) when `render`
/// is given. Without it there is no `/metrics` route (a host may mount its own there).
pub fn router_with_metrics(
    state: AppState,
    limits: &Limits,
    verifier: Option<Arc<govern_webhooks::Verifier>>,
    render: Option<telemetry::Render>,
) -> Router {
    let measured = render.is_some();
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi::document))
        .merge(api::routes())
        .merge(billing::routes(verifier))
        .merge(plan_change::routes())
        .merge(page::routes());
    if let Some(render) = render {
        telemetry::describe();
        router = router.merge(telemetry::routes(render));
    }
    let router = router
        .fallback(api::no_route)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(axum::middleware::from_fn_with_state(limits.request_timeout, api::request_timeout))
        // Outside the timeout: a timed-out request is measured with its 408.
        .layer(axum::middleware::from_fn_with_state(state.runtime.clone(), api::sla::measure));
    // Outermost, so that a timed-out request is counted with its 408.
    let router =
        if measured { router.layer(axum::middleware::from_fn(telemetry::record)) } else { router };
    router.with_state(state)
}

/// Alive: the process answers. Never authenticated.
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready: the runtime takes commands (not shutting down, ledger not poisoned). 503 otherwise,
/// with the reason. Never authenticated.
async fn ready(State(state): State<AppState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let ledger = state.runtime.ledger_status();
    if ledger.poisoned {
        return Err(ApiError::unavailable("ledger_unavailable", "the ledger's store failed"));
    }
    if state.runtime.is_down() {
        return Err(ApiError::unavailable("shutting_down", "the runtime is shutting down"));
    }
    Ok(axum::Json(serde_json::json!({
        "status": "ready",
        "receipts": ledger.receipts,
        "durable": ledger.durable,
    })))
}
