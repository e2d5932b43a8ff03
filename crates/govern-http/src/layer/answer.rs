//! What the entitlement layer answers itself: a refusal as the runtime decided it, an unknown
//! tenant, an unmapped route (where denied), and 503 when the runtime cannot answer.

use axum::body::Body;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use govern_governors::TenantId;
use govern_policy::Refusal as Refused;
use govern_runtime::Refusal;
use serde::Serialize;

use crate::ApiError;

/// On an allowed request's response: what allowed it (`plan_feature:F`, `grant:ID (kind)`,
/// `rule:ID@vN`).
pub const DECIDED_BY_HEADER: HeaderName = HeaderName::from_static("x-govern-decided-by");
/// On a response the runtime could not decide: `closed` (503) or `open` (passed on).
pub const FAIL_HEADER: HeaderName = HeaderName::from_static("x-govern-fail");

/// Why the runtime could not answer a check.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// The layer's in-flight bound is reached.
    Overloaded { max: usize },
    /// `check` refused (shutting down, no catalog, ...).
    Runtime(Refusal),
}

impl Unavailable {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Overloaded { .. } => "overloaded",
            Self::Runtime(refusal) => refusal.code(),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Overloaded { max } => {
                format!("the entitlement layer is at its limit of {max} requests in flight")
            }
            Self::Runtime(refusal) => refusal.to_string(),
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Runtime(refusal) => refusal.retry_after_ms().map(|ms| ms.div_ceil(1000)),
            Self::Overloaded { .. } => None,
        }
    }
}

/// A refusal as the runtime decided it: its status, code, message, `retry_after` and what
/// decided it; `Retry-After` (seconds) exactly as it says.
pub(crate) fn refusal(refused: &Refused) -> Response<Body> {
    ApiError::from(refused).into_response()
}

/// An unknown tenant is a decision: no grant, plan or rule can allow it (403 `not_entitled`).
pub(crate) fn unknown_tenant(tenant: &TenantId) -> Response<Body> {
    let mut error = ApiError::new(
        StatusCode::FORBIDDEN,
        govern_policy::code::NOT_ENTITLED,
        format!("tenant {tenant} is unknown"),
    );
    error.decided_by = Some("tenant:unknown".to_owned());
    error.into_response()
}

/// A request no route maps, where the layer denies those.
pub(crate) fn unmapped<B>(request: &Request<B>) -> Response<Body> {
    let mut error = ApiError::new(
        StatusCode::FORBIDDEN,
        govern_policy::code::NOT_ENTITLED,
        format!("no entitlement covers {} {}", request.method(), request.uri().path()),
    );
    error.decided_by = Some("route:unmapped".to_owned());
    error.into_response()
}

/// The 503 body: our error shape, the runtime's reason, and `"fail": "closed"`.
#[derive(Serialize)]
struct UnavailableBody<'a> {
    error: UnavailableError<'a>,
}

#[derive(Serialize)]
struct UnavailableError<'a> {
    #[serde(flatten)]
    error: &'a ApiError,
    /// Why the runtime could not answer: `overloaded`, `ledger_unavailable`, or the runtime's
    /// refusal code (`shutting_down`, `no_catalog`, ...).
    reason: &'static str,
    fail: &'static str,
}

pub(crate) fn unavailable(why: &Unavailable) -> Response<Body> {
    let mut error = ApiError::unavailable("entitlement_unavailable", why.message());
    error.retry_after = why.retry_after_secs();
    let body = UnavailableBody {
        error: UnavailableError { error: &error, reason: why.reason(), fail: "closed" },
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(FAIL_HEADER, HeaderValue::from_static("closed"));
    if let Some(seconds) = error.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
