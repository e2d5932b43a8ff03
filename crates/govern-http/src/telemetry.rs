//! `GET /metrics` and the routes' own metrics (`docs/metrics.md`, `docs/http.md`).
//!
//! The route renders whatever the host's recorder holds, through the function the host gives
//! ([`Render`]; `govern serve` gives the Prometheus exporter's `PrometheusHandle::render`),
//! so this crate depends on the `metrics` facade only, never on an exporter. It needs an
//! operator key, as every other operator route: the text names no tenant unless the host
//! opted into tenant labels, but it tells command volumes, refusal rates and the ledger's
//! pace, which are an operator's business. A Prometheus scrape sends the key as a bearer
//! token (`authorization: { credentials_file: ... }` in its scrape config).
//!
//! With metrics on, `record` times every request: `govern_http_requests_total` and
//! `govern_http_request_duration_seconds` by the route's pattern (`/v1/tenants/{tenant}`,
//! never the tenant's id; `unmatched` for a path no route has), method and status class.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{ApiError, AppState, Authenticated};

/// Renders the host's recorder in the Prometheus text exposition format.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Requests answered, by `route`, `method` and `status` (`2xx`, `4xx`, ...).
pub const HTTP_REQUESTS_TOTAL: &str = "govern_http_requests_total";
/// Seconds from a request's arrival at the router to its response, by `route` and `method`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "govern_http_request_duration_seconds";

/// The exposition format's media type (version 0.0.4, the text format every scraper reads).
const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` route over `render`.
pub(crate) fn routes(render: Render) -> Router<AppState> {
    Router::new().route("/metrics", get(move |auth| metrics_route(auth, Arc::clone(&render))))
}

/// `GET /metrics`: an operator key (401 without a valid key, 403 for a tenant's key).
async fn metrics_route(auth: Authenticated, render: Render) -> Result<Response, ApiError> {
    auth.operator()?;
    let mut response = render().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EXPOSITION_CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Gives the routes' metrics their unit and help text.
pub(crate) fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        metrics::Unit::Count,
        "HTTP requests answered, by route pattern, method and status class."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Seconds from a request's arrival at the router to its response, by route pattern and method."
    );
}

/// Middleware: times each request and counts it by route pattern, method and status class.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    #[allow(
        clippy::disallowed_methods,
        reason = "a request's latency for people reading metrics is real elapsed time; it decides nothing"
    )]
    let started = Instant::now();
    // The pattern, not the path: a path carries tenant ids and anything a client sends.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// A bounded label for the method: the standard ones by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
