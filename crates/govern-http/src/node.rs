//! The HTTP edge of a node among several (docs/scaling.md): a tenant's requests
//! (`/v1/tenants/{tenant}...`) go to the router of the runtime of its shard when this node
//! holds the shard. Otherwise the caller's API key is checked first (401, or 403 for a key
//! that does not reach the tenant: nothing about the cluster is told to a caller without a
//! key), then the request is redirected to the owner: `307 Temporary Redirect` with
//! `Location` on the owner's advertised base URL (method and body kept) and the `wrong_node`
//! error as the body, for clients that do not follow redirects; while no node holds the
//! shard, 421 `wrong_node` with `Retry-After`. A client following the redirect must send its
//! key again (most HTTP clients drop `Authorization` on a redirect to another host or port).
//! `/health` and `/ready` are the node's own; `/v1/cluster` (the shard map) takes an operator
//! key; the routes over every tenant are not served by a node.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use govern_governors::TenantId;
use govern_runtime::Refusal;
use tower::ServiceExt as _;

use crate::auth::authenticate;
use crate::{ApiError, KeyStore};

/// The router of one shard's runtime ([`crate::router_with`]), as a node keeps it.
pub type ShardRouter = Router;

/// Where a tenant's request goes.
#[derive(Debug)]
pub enum Routed {
    /// This node runs the tenant's shard: the router over that shard's runtime.
    Here(Router),
    /// It does not: the refusal names the owner, as far as this node knows.
    Elsewhere(Refusal),
}

/// What a node's edge asks of the node.
pub trait Shards: Send + Sync + 'static {
    /// Where the requests of `tenant` go.
    fn route(&self, tenant: &TenantId) -> Routed;
    /// Whether the node takes requests (it joined and is not stopping).
    fn ready(&self) -> bool;
    /// The shard map as this node knows it: `GET /v1/cluster`.
    fn map(&self) -> serde_json::Value;
}

/// What the edge's routes share.
#[derive(Clone)]
struct Edge {
    shards: Arc<dyn Shards>,
    keys: Arc<KeyStore>,
}

/// The router of a node's edge over `shards`, checking callers' keys against `keys` (the
/// same key file as every shard's router).
pub fn node_router(shards: Arc<dyn Shards>, keys: Arc<KeyStore>) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/v1/cluster", get(map))
        .fallback(dispatch)
        .with_state(Edge { shards, keys })
}

async fn ready(State(edge): State<Edge>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if edge.shards.ready() {
        Ok(axum::Json(serde_json::json!({ "status": "ready" })))
    } else {
        Err(ApiError::unavailable("shutting_down", "the node is not taking requests"))
    }
}

async fn map(
    State(edge): State<Edge>,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let caller = authenticate(&headers, "/v1/cluster", &edge.keys)?;
    if !caller.is_operator() {
        return Err(ApiError::forbidden("this route needs an operator key"));
    }
    Ok(axum::Json(edge.shards.map()))
}

/// The tenant a path names: `/v1/tenants/{tenant}` or below it.
fn tenant_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    let tenant = rest.split('/').next()?;
    (!tenant.is_empty()).then_some(tenant)
}

/// The URL a request for `target` (path and query) goes to on a node advertised as
/// `address`: a base URL (`https://n2.internal:8443`), or `host:port` taken as `http://`.
fn location(address: &str, target: &str) -> Option<HeaderValue> {
    let base = address.trim_end_matches('/');
    let url = if base.contains("://") {
        format!("{base}{target}")
    } else {
        format!("http://{base}{target}")
    };
    HeaderValue::from_str(&url).ok()
}

async fn dispatch(State(edge): State<Edge>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some(tenant) = tenant_of(&path) else {
        return ApiError::not_found(
            "no_route",
            format!("no route {path} on a node (a node serves /v1/tenants/{{tenant}}/...)"),
        )
        .into_response();
    };
    let tenant = match TenantId::new(tenant) {
        Ok(t) => t,
        Err(e) => {
            return ApiError::bad_request("bad_request", format!("tenant: {e}")).into_response();
        }
    };
    match edge.shards.route(&tenant) {
        Routed::Here(router) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Routed::Elsewhere(refusal) => {
            // Who owns what is told only to a caller whose key reaches the tenant.
            let caller = match authenticate(request.headers(), &path, &edge.keys) {
                Ok(caller) => caller,
                Err(e) => return e.into_response(),
            };
            if !caller.reaches(&tenant) {
                return ApiError::forbidden(format!("this key does not reach tenant {tenant}"))
                    .into_response();
            }
            let target = request
                .uri()
                .path_and_query()
                .map_or(path.as_str(), axum::http::uri::PathAndQuery::as_str);
            let to = match &refusal {
                Refusal::WrongNode { address: Some(address), .. } if !address.is_empty() => {
                    location(address, target)
                }
                _ => None,
            };
            let mut response = ApiError::from(refusal).into_response();
            match to {
                Some(to) => {
                    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                    response.headers_mut().insert(header::LOCATION, to);
                }
                None => {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
                }
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{location, tenant_of};

    #[test]
    fn a_location_is_the_advertised_base_and_the_target() {
        let at = |a, t| location(a, t).map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_eq!(
            at("10.0.0.2:8080", "/v1/tenants/a?x=1").as_deref(),
            Some("http://10.0.0.2:8080/v1/tenants/a?x=1")
        );
        assert_eq!(
            at("https://n2.internal/", "/v1/tenants/a").as_deref(),
            Some("https://n2.internal/v1/tenants/a")
        );
        assert_eq!(at("bad\nhost", "/x"), None, "no header injection");
    }

    #[test]
    fn the_tenant_is_the_segment_after_tenants() {
        assert_eq!(tenant_of("/v1/tenants/acme"), Some("acme"));
        assert_eq!(tenant_of("/v1/tenants/acme/commands"), Some("acme"));
        assert_eq!(tenant_of("/v1/tenants/"), None);
        assert_eq!(tenant_of("/v1/tenants"), None);
        assert_eq!(tenant_of("/v1/billing/runs"), None);
    }
}
