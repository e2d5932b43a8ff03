//! The JSON API (`docs/http.md`): a tenant's commands, checks, usage and receipts, and the
//! tenants; the fallbacks (404 `no_route`, 405 `method_not_allowed`) and the request
//! timeout, all in the one error shape.

mod checks;
mod commands;
pub(crate) mod extract;
mod reads;
pub(crate) mod sla;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

use crate::{ApiError, AppState};

/// The API's routes (every one takes an API key).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", get(reads::tenants))
        .route("/v1/tenants/{tenant}", get(reads::tenant))
        .route("/v1/tenants/{tenant}/commands", post(commands::send))
        .route("/v1/tenants/{tenant}/check", post(checks::check))
        .route("/v1/tenants/{tenant}/usage", post(checks::usage))
        .route("/v1/tenants/{tenant}/receipts", get(reads::receipts))
        .route("/v1/tenants/{tenant}/sla", get(sla::sla))
}

/// 404 for a path no route has.
pub(crate) async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found("no_route", format!("no route {}", uri.path()))
}

/// 405 for a path some route has, with another method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not a method of {}", uri.path()),
    )
}

/// A request (body included: handlers read it inside) not answered within the timeout is
/// answered 408 `request_timeout`; the handler is dropped (a command already sent to the
/// runtime runs to its end, and its receipt, if any, says so).
pub(crate) async fn request_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, timeout_ms = timeout.as_millis() as u64, "request timed out");
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the request was not done within {} ms", timeout.as_millis()),
            )
            .into_response()
        }
    }
}
