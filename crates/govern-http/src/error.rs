//! One error shape for every route: `{"error": {"code", "status", "message", ...}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use govern_runtime::{CommandError, Refusal};
use serde::Serialize;

/// An error answered as JSON with a stable `code` (one of the runtime's error codes, or the
/// edge's own: `unauthorized`, `forbidden`, `bad_request`, `not_found`, `payload_too_large`,
/// `timeout`, ...), the HTTP status, a message a person reads, and, for a 429 or 503 that
/// knows when to come back, `retry_after` in seconds (also sent as `Retry-After`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// A stable machine-readable code.
    pub code: String,
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds to wait before retrying, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// What decided a refusal (a grant, plan feature, rule or limit), when it was a decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

impl ApiError {
    /// An error with this status, code and message.
    #[must_use]
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            status: status.as_u16(),
            message: message.into(),
            retry_after: None,
            decided_by: None,
        }
    }

    /// 400.
    #[must_use]
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no key, or a key that is not (or no longer) valid.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid key that does not reach this.
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    #[must_use]
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 503.
    #[must_use]
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// A runtime error as the edge answers it: its own code, status
    /// ([`CommandError::http_status`]) and message, and its retry-after rounded up to seconds.
    #[must_use]
    pub fn from_command(error: &CommandError) -> Self {
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut api = Self::new(status, error.code(), error.to_string());
        if let CommandError::Refused(refusal) = error {
            api.retry_after = refusal.retry_after_ms().map(|ms| ms.div_ceil(1000));
        }
        api
    }
}

/// A policy refusal as the edge answers it: its code, its status (402, 403 or 429), its
/// message, what decided it, and `Retry-After` exactly as it says (the check route and the
/// entitlement layer alike).
impl From<&govern_policy::Refusal> for ApiError {
    fn from(r: &govern_policy::Refusal) -> Self {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
        let mut error = Self::new(status, r.code, r.message.as_ref());
        error.retry_after = r.retry_after_secs;
        error.decided_by = Some(r.decided_by.to_string());
        error
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::from_command(&CommandError::Refused(refusal))
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        Self::from_command(&error)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a ApiError,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(Body { error: &self })).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
