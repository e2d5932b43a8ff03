//! `GET /openapi.json`: the API's OpenAPI 3.1 description, written by hand beside the routes
//! (`openapi.json`) and held to them by `tests/openapi.rs` (every path and method it names
//! answers; every route the sources declare is in it).

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Serves [`DOCUMENT`]. Never authenticated: it says what the API is, not what it holds.
pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
