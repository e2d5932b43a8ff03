//! The HTTP edge of a node among several (docs/scaling.md): a tenant's requests
//! (`/v1/tenants/{tenant}...`) go to the router of the runtime of its shard when this node
//! holds the shard, and are redirected to the owner otherwise: `307 Temporary Redirect` with
//! `Location` on the owner's address (method and body kept) and the `wrong_node` error as
//! the body, for clients that do not follow redirects; while no node holds the shard, 421
//! `wrong_node` with `Retry-After`. `/health`, `/ready` and `/v1/cluster` (the shard map) are
//! the node's own; other routes are not served by a node.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use govern_runtime::Refusal;
use tower::ServiceExt as _;

use crate::ApiError;

/// The router of one shard's runtime ([`crate::router_with`]), as a node keeps it.
pub type ShardRouter = Router;

/// Where a tenant's request goes.
#[derive(Debug)]
pub enum Routed {
    /// This node runs the tenant's shard: the router over that shard's runtime.
    Here(Router),
    /// It does not: the refusal names the owner, as far as this node knows.
    Elsewhere(Refusal),
    /// The path's tenant is not a tenant id: why.
    BadTenant(String),
}

/// What a node's edge asks of the node.
pub trait Shards: Send + Sync + 'static {
    /// Where the requests of `tenant` (as written in the path) go.
    fn route(&self, tenant: &str) -> Routed;
    /// Whether the node takes requests (it joined and is not stopping).
    fn ready(&self) -> bool;
    /// The shard map as this node knows it: `GET /v1/cluster`.
    fn map(&self) -> serde_json::Value;
}

/// The router of a node's edge over `shards`.
pub fn node_router(shards: Arc<dyn Shards>) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/v1/cluster", get(map))
        .fallback(dispatch)
        .with_state(shards)
}

async fn ready(
    State(shards): State<Arc<dyn Shards>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if shards.ready() {
        Ok(axum::Json(serde_json::json!({ "status": "ready" })))
    } else {
        Err(ApiError::unavailable("shutting_down", "the node is not taking requests"))
    }
}

async fn map(State(shards): State<Arc<dyn Shards>>) -> axum::Json<serde_json::Value> {
    axum::Json(shards.map())
}

/// The tenant a path names: `/v1/tenants/{tenant}` or below it.
fn tenant_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    let tenant = rest.split('/').next()?;
    (!tenant.is_empty()).then_some(tenant)
}

async fn dispatch(State(shards): State<Arc<dyn Shards>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some(tenant) = tenant_of(&path) else {
        return ApiError::not_found(
            "no_route",
            format!("no route {path} on a node (a node serves /v1/tenants/{{tenant}}/...)"),
        )
        .into_response();
    };
    match shards.route(tenant) {
        Routed::Here(router) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Routed::BadTenant(why) => {
            ApiError::bad_request("bad_request", format!("tenant: {why}")).into_response()
        }
        Routed::Elsewhere(refusal) => {
            let location = match &refusal {
                Refusal::WrongNode { address: Some(address), .. } if !address.is_empty() => {
                    let target = request
                        .uri()
                        .path_and_query()
                        .map_or(path.as_str(), axum::http::uri::PathAndQuery::as_str);
                    HeaderValue::from_str(&format!("http://{address}{target}")).ok()
                }
                _ => None,
            };
            let mut response = ApiError::from(refusal).into_response();
            if let Some(location) = location {
                *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tenant_of;

    #[test]
    fn the_tenant_is_the_segment_after_tenants() {
        assert_eq!(tenant_of("/v1/tenants/acme"), Some("acme"));
        assert_eq!(tenant_of("/v1/tenants/acme/commands"), Some("acme"));
        assert_eq!(tenant_of("/v1/tenants/"), None);
        assert_eq!(tenant_of("/v1/tenants"), None);
        assert_eq!(tenant_of("/v1/billing/runs"), None);
    }
}
