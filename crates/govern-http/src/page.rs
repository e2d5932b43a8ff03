//! The status page (`docs/http.md`, "The status page"): `GET /` serves a static shell (HTML,
//! a script and a stylesheet compiled into the binary, no external assets) that asks for an
//! operator key and renders `GET /v1/status`, the runtime's state as JSON for operators:
//! tenants and their states, each tenant's governors, quota usage against its plans' limits,
//! the last receipts with their hashes, the ledger head and the last signed checkpoint.
//!
//! The shell carries no data, so it needs no key; the data route needs an operator key. The
//! script builds every node with `textContent` (never `innerHTML`), and the shell is served
//! with a Content-Security-Policy that allows only its own script and stylesheet.

mod status;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use status::{
    STATUS_GOVERNORS_PER_TENANT_MAX, STATUS_RECEIPTS_MAX, STATUS_TENANT_RECEIPTS_SCANNED_MAX,
    STATUS_TENANTS_MAX, Status,
};

use crate::{ApiError, AppState, Authenticated};

/// The page's HTML shell.
const PAGE_HTML: &str = include_str!("page.html");
/// The page's script: reads the key, fetches `/v1/status`, renders it.
const PAGE_JS: &str = include_str!("page.js");
/// The page's stylesheet.
const PAGE_CSS: &str = include_str!("page.css");

/// What the shell may load: its own script, stylesheet and data, nothing inline, nothing
/// from elsewhere, and no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The page's routes: the shell and its assets (no key), and its data (an operator key).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", PAGE_HTML) }))
        .route("/page.js", get(|| async { asset("text/javascript; charset=utf-8", PAGE_JS) }))
        .route("/page.css", get(|| async { asset("text/css; charset=utf-8", PAGE_CSS) }))
        .route("/v1/status", get(status_route))
}

/// A static asset with its type and the page's security headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /v1/status`: an operator key (401 without a valid key, 403 for a tenant's key).
/// Built off the executor (it reads receipts, perhaps from disk, and the checkpoint file).
async fn status_route(
    auth: Authenticated,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    auth.operator()?;
    let runtime = state.runtime.clone();
    let status =
        tokio::task::spawn_blocking(move || status::build(&runtime)).await.map_err(|e| {
            let message = format!("the status was not built: {e}");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
        })??;
    let mut response = axum::Json(status).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests;
