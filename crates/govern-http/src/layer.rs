//! The entitlement layer: a tower [`Layer`] a host puts on its own axum routes (or its whole
//! app) so that each mapped request is checked with [`RuntimeHandle::check`] before its
//! handler runs (`docs/http.md`, "The entitlement layer").
//!
//! A request's route (method, path pattern) names a feature, an action (by default from the
//! method) and a quantity; its tenant comes from a header or a closure. Allowed → the inner
//! service runs and the response says what allowed it (`x-govern-decided-by`). Refused → the
//! refusal's status (402, 403, 429), our JSON error shape and `Retry-After` exactly as the
//! refusal says. The runtime cannot answer (shutting down, no catalog, ledger poisoned, this
//! layer's in-flight bound reached) → 503 `entitlement_unavailable` (fail closed, the
//! default), or, on a route set to fail open, the inner service runs and the response says
//! `x-govern-fail: open`.

mod answer;
mod future;
mod route;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::request::Parts;
use axum::http::{HeaderName, Request, Response};
use axum::response::IntoResponse;
use govern_governors::TenantId;
use govern_policy::Decision;
use govern_runtime::{Refusal, RuntimeHandle};
use tower::{Layer, Service};

use crate::ApiError;
pub use answer::{DECIDED_BY_HEADER, FAIL_HEADER};
use answer::{Unavailable, refusal, unavailable, unknown_tenant, unmapped};
pub use future::ResponseFuture;
use future::{InFlight, Mark, State};
use route::Compiled;
pub use route::{FailMode, PatternError, Route, default_action};

/// The layer's bounds.
pub mod limits {
    /// Requests the layer lets into the inner service at once, unless configured otherwise
    /// ([`super::EntitlementLayerBuilder::in_flight_max`]); one more cannot be answered
    /// (overload: 503, or passed on where a route fails open).
    pub const IN_FLIGHT_MAX: usize = 1_024;
    /// Routes in one layer's map (matched in order, one by one).
    pub const ROUTES_MAX: usize = 1_024;
    pub use super::route::{PATTERN_LEN_MAX, PATTERN_SEGMENTS_MAX};
    /// The entitlement layer logs "cannot answer" at most once per this many milliseconds per fail
    /// mode; the next warning carries how many were not logged (`suppressed`).
    pub const UNAVAILABLE_WARN_EVERY_MS: u64 = 1_000;
}

/// The header that names the tenant, unless configured otherwise.
pub const TENANT_HEADER: HeaderName = HeaderName::from_static("x-govern-tenant");
/// What a request no route maps gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Unmapped {
    /// Passed on untouched: not checked, not counted, no header added.
    #[default]
    Pass,
    /// 403 `not_entitled` (decided by `route:unmapped`).
    Deny,
}

/// A layer that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A route's pattern is not one.
    #[error("route pattern {pattern:?}: {error}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        #[source]
        error: PatternError,
    },
    /// More than [`limits::ROUTES_MAX`] routes.
    #[error("a layer maps at most {max} routes")]
    TooManyRoutes {
        /// The bound.
        max: usize,
    },
}

/// Finds a request's tenant.
type TenantFn = dyn Fn(&Parts) -> Option<TenantId> + Send + Sync;

#[derive(Clone)]
enum TenantSource {
    /// A header holding the tenant id.
    Header(HeaderName),
    /// The host's closure (its session, its key, its path): `None` is no tenant.
    With(Arc<TenantFn>),
}

impl std::fmt::Debug for TenantSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Header(name) => write!(f, "Header({name})"),
            Self::With(_) => f.write_str("With(..)"),
        }
    }
}

/// Configures an [`EntitlementLayer`]; from [`EntitlementLayer::builder`].
#[derive(Debug)]
pub struct EntitlementLayerBuilder {
    runtime: RuntimeHandle,
    routes: Vec<Route>,
    unmapped: Unmapped,
    tenant: TenantSource,
    fail: FailMode,
    in_flight_max: usize,
}

impl EntitlementLayerBuilder {
    /// Maps a route; the first route (in the order given) whose method and pattern match a
    /// request is its route.
    #[must_use]
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// What a request no route maps gets (default [`Unmapped::Pass`]).
    #[must_use]
    pub const fn unmapped(mut self, unmapped: Unmapped) -> Self {
        self.unmapped = unmapped;
        self
    }

    /// The header naming the tenant (default [`TENANT_HEADER`]).
    #[must_use]
    pub fn tenant_header(mut self, name: HeaderName) -> Self {
        self.tenant = TenantSource::Header(name);
        self
    }

    /// Finds the tenant with the host's closure instead of a header; `None` answers 401.
    #[must_use]
    pub fn tenant_from(
        mut self,
        find: impl Fn(&Parts) -> Option<TenantId> + Send + Sync + 'static,
    ) -> Self {
        self.tenant = TenantSource::With(Arc::new(find));
        self
    }

    /// What mapped routes get when the runtime cannot answer, unless a route says otherwise
    /// (default [`FailMode::Closed`]).
    #[must_use]
    pub const fn fail_mode(mut self, fail: FailMode) -> Self {
        self.fail = fail;
        self
    }

    /// Mapped requests in the inner service at once (default [`limits::IN_FLIGHT_MAX`]; at
    /// least 1). Counted from the check until the inner service's response (its head, not
    /// its streamed body).
    #[must_use]
    pub fn in_flight_max(mut self, max: usize) -> Self {
        self.in_flight_max = max.max(1);
        self
    }

    /// The layer.
    ///
    /// # Errors
    /// A pattern that is not one; more than [`limits::ROUTES_MAX`] routes.
    pub fn build(self) -> Result<EntitlementLayer, LayerError> {
        if self.routes.len() > limits::ROUTES_MAX {
            return Err(LayerError::TooManyRoutes { max: limits::ROUTES_MAX });
        }
        let routes = self
            .routes
            .into_iter()
            .map(|route| {
                let pattern = route.pattern.clone();
                Compiled::new(route).map_err(|error| LayerError::Pattern { pattern, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EntitlementLayer {
            shared: Arc::new(Shared {
                warned: Default::default(),
                runtime: self.runtime,
                routes,
                unmapped: self.unmapped,
                tenant: self.tenant,
                fail: self.fail,
                in_flight_max: self.in_flight_max,
                in_flight: Arc::new(AtomicUsize::new(0)),
            }),
        })
    }
}

/// The tower layer: `router.layer(layer)`. Cheap to clone (one `Arc`); every service it
/// makes shares its route map and its in-flight count.
#[derive(Clone, Debug)]
pub struct EntitlementLayer {
    shared: Arc<Shared>,
}

impl EntitlementLayer {
    /// A layer over `runtime`'s checks, with no routes yet, the tenant in [`TENANT_HEADER`],
    /// unmapped routes passed on and failing closed.
    #[must_use]
    pub fn builder(runtime: RuntimeHandle) -> EntitlementLayerBuilder {
        EntitlementLayerBuilder {
            runtime,
            routes: Vec::new(),
            unmapped: Unmapped::Pass,
            tenant: TenantSource::Header(TENANT_HEADER),
            fail: FailMode::Closed,
            in_flight_max: limits::IN_FLIGHT_MAX,
        }
    }

    /// Mapped requests in the inner service now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }
}

impl<S> Layer<S> for EntitlementLayer {
    type Service = EntitlementService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EntitlementService { inner, shared: Arc::clone(&self.shared) }
    }
}

#[derive(Debug)]
struct Shared {
    runtime: RuntimeHandle,
    routes: Vec<Compiled>,
    unmapped: Unmapped,
    tenant: TenantSource,
    fail: FailMode,
    in_flight_max: usize,
    /// Mapped requests between their check and their inner response.
    in_flight: Arc<AtomicUsize>,
    /// Per fail mode (closed, open): when the last "cannot answer" warning was logged (runtime
    /// clock, ms; 0: never) and how many were not logged since.
    warned: [(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64); 2],
}

/// The service [`EntitlementLayer`] wraps around an inner one.
#[derive(Clone, Debug)]
pub struct EntitlementService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// The layer's verdict on one request.
enum Verdict {
    /// To the inner service.
    Pass(Mark, Option<InFlight>),
    /// Answered here.
    Answer(Response<Body>),
}

impl Shared {
    fn decide<B>(&self, request: Request<B>) -> (Request<B>, Verdict) {
        let path = request.uri().path();
        let Some(compiled) = self.routes.iter().find(|r| r.matches(request.method(), path)) else {
            let verdict = match self.unmapped {
                Unmapped::Pass => Verdict::Pass(Mark::Untouched, None),
                Unmapped::Deny => Verdict::Answer(unmapped(&request)),
            };
            return (request, verdict);
        };
        let route = &compiled.route;
        let (request, tenant) = self.tenant(request);
        let tenant = match tenant {
            Ok(tenant) => tenant,
            Err(error) => return (request, Verdict::Answer(error.into_response())),
        };
        let Some(guard) = InFlight::enter(&self.in_flight, self.in_flight_max) else {
            let why = Unavailable::Overloaded { max: self.in_flight_max };
            return (request, self.cannot_answer(route, &tenant, &why, None));
        };
        let action = route.action.as_deref().unwrap_or_else(|| default_action(request.method()));
        let verdict = match self.runtime.check(&tenant, &route.feature, action, route.quantity) {
            Ok(Decision::Allowed { decided_by }) => {
                Verdict::Pass(Mark::DecidedBy(compiled.decided_by(&decided_by)), Some(guard))
            }
            Ok(Decision::Refused(refused)) => Verdict::Answer(refusal(&refused)),
            Err(Refusal::UnknownTenant(tenant)) => Verdict::Answer(unknown_tenant(&tenant)),
            Err(other) => {
                self.cannot_answer(route, &tenant, &Unavailable::Runtime(other), Some(guard))
            }
        };
        (request, verdict)
    }

    /// The request's tenant: 401 when it names none, 400 when the name is not a tenant id.
    fn tenant<B>(&self, request: Request<B>) -> (Request<B>, Result<TenantId, ApiError>) {
        match &self.tenant {
            TenantSource::Header(name) => {
                let found = match request.headers().get(name) {
                    None => {
                        Err(ApiError::unauthorized(format!("the request names no tenant ({name})")))
                    }
                    Some(value) => {
                        value.to_str().ok().and_then(|v| TenantId::new(v.trim()).ok()).ok_or_else(
                            || {
                                ApiError::bad_request(
                                    "invalid_tenant",
                                    format!("{name} is not a tenant id"),
                                )
                            },
                        )
                    }
                };
                (request, found)
            }
            TenantSource::With(find) => {
                let (parts, body) = request.into_parts();
                let found = find(&parts)
                    .ok_or_else(|| ApiError::unauthorized("the request names no tenant"));
                (Request::from_parts(parts, body), found)
            }
        }
    }

    /// 503 (fail closed) or on to the inner service (fail open), as the route says; logged.
    fn cannot_answer(
        &self,
        route: &Route,
        tenant: &TenantId,
        why: &Unavailable,
        guard: Option<InFlight>,
    ) -> Verdict {
        let reason = why.reason();
        let mode = route.fail.unwrap_or(self.fail);
        // At most one warning a second per mode (a runtime that cannot answer would otherwise
        // log every request); the next one says how many were not logged.
        let (last, quiet) = &self.warned[usize::from(mode == FailMode::Open)];
        let now = self.runtime.now().as_ms().max(1);
        let then = last.load(Ordering::Relaxed);
        let log = (then == 0 || now.saturating_sub(then) >= limits::UNAVAILABLE_WARN_EVERY_MS)
            && last.compare_exchange(then, now, Ordering::Relaxed, Ordering::Relaxed).is_ok();
        let suppressed = if log { quiet.swap(0, Ordering::Relaxed) } else { 0 };
        if !log {
            quiet.fetch_add(1, Ordering::Relaxed);
        }
        match mode {
            FailMode::Closed => {
                if log {
                    tracing::warn!(tenant_id = %tenant, feature = %route.feature, reason, suppressed, "entitlement check unavailable: failing closed");
                }
                Verdict::Answer(unavailable(why))
            }
            FailMode::Open => {
                if log {
                    tracing::warn!(tenant_id = %tenant, feature = %route.feature, reason, suppressed, "entitlement check unavailable: failing open");
                }
                Verdict::Pass(Mark::FailedOpen, guard)
            }
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for EntitlementService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (request, verdict) = self.shared.decide(request);
        let state = match verdict {
            Verdict::Answer(response) => State::Answered { response: Some(response) },
            Verdict::Pass(mark, in_flight) => {
                // The service that was polled ready is the one called (tower's contract).
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                State::Inner { future: inner.call(request), mark, in_flight }
            }
        };
        ResponseFuture { state }
    }
}
