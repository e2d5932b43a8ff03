//! The HTTP edge of govern (`docs/http.md`).
//!
//! - [`router`]: an axum [`Router`] a host mounts, over a running runtime's
//!   [`RuntimeHandle`]: health and readiness, and (every other route) API-key authenticated
//!   JSON endpoints with one error shape ([`ApiError`]).
//! - [`keys`]: API keys, stored hashed in a file beside the ledger, created and revoked with
//!   `govern keys`; a tenant's key reaches only its tenant, an operator's every tenant.
//! - [`layer`]: [`EntitlementLayer`], a tower layer a host puts on its own routes: each mapped
//!   request is checked with the runtime's `check` before its handler runs (402/403/429 as
//!   the refusal says; 503 or passed on, per route, when the runtime cannot answer).
//!
//! Nothing here decides: every answer is the runtime's (its governors, its `check`), turned
//! into HTTP.

mod auth;
mod error;
pub mod keys;
pub mod layer;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use govern_runtime::RuntimeHandle;

pub use auth::Authenticated;
pub use error::ApiError;
pub use keys::{Caller, KeyStore};
pub use layer::{EntitlementLayer, FailMode, Route, Unmapped};

/// What every route shares: the runtime and the key store.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The running runtime.
    pub runtime: RuntimeHandle,
    /// The API keys callers present.
    pub keys: Arc<KeyStore>,
}

/// The router a host mounts (or `govern serve` serves).
pub fn router(state: AppState) -> Router {
    Router::new().route("/health", get(health)).route("/ready", get(ready)).with_state(state)
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
