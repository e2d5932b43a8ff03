//! A tenant's SLA (`GET /v1/tenants/{tenant}/sla`: compliance against its plans' envelope,
//! the last minute's figures, the trend), and the measuring of the tenant routes themselves
//! into the runtime's SLA monitor ([`measure`]).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use govern_governors::TenantId;
use govern_plans::sla::{Figures, Status};
use govern_runtime::{RuntimeHandle, SlaError};
use serde_json::{Value, json};

use super::extract::TenantCaller;
use crate::{ApiError, AppState};

/// A decimal as JSON: a string, exact (the monitor's figures are normalized: `12.5`).
fn decimal(d: Option<impl std::fmt::Display>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

fn figures(f: &Figures) -> Value {
    json!({
        "start_ms": f.start_ms,
        "window_ms": f.window_ms,
        "requests": f.requests,
        "errors": f.errors,
        "throughput_rps": decimal(Some(f.throughput_rps)),
        "p99_latency_ms": decimal(f.p99_latency_ms),
        "error_rate": decimal(f.error_rate),
    })
}

/// The status as the route answers it (`docs/http.md`, "SLA").
pub(crate) fn status_json(tenant: &TenantId, s: &Status) -> Value {
    let violations: Vec<Value> = s
        .violations
        .iter()
        .map(|v| {
            json!({
                "dimension": v.dimension.name(),
                "measured": decimal(v.measured),
                "promised": decimal(Some(v.promised)),
                "since_ms": v.since_ms,
            })
        })
        .collect();
    json!({
        "tenant": tenant.as_str(),
        "compliance": s.compliance.name(),
        "promise": {
            "throughput_rps": s.promise.throughput_rps,
            "p99_latency_ms": s.promise.p99_latency_ms,
            "error_rate_max": decimal(Some(s.promise.error_rate_max)),
        },
        "violations": violations,
        "window": figures(&s.window),
        "filling": figures(&s.filling),
        "trend": {
            "p99_latency": s.trend.p99_latency.name(),
            "error_rate": s.trend.error_rate.name(),
            "windows": s.trend.windows.iter().map(figures).collect::<Vec<_>>(),
        },
    })
}

impl From<SlaError> for ApiError {
    fn from(e: SlaError) -> Self {
        match e {
            SlaError::Refused(r) => Self::from(r),
            SlaError::NoEnvelope(_) => Self::not_found("no_envelope", e.to_string()),
            SlaError::TenantsFull { .. } => Self::unavailable("sla_tenants_full", e.to_string()),
            _ => Self::bad_request("bad_request", e.to_string()),
        }
    }
}

/// The tenant's SLA status; 404 `unknown_tenant` or `no_envelope`.
pub(crate) async fn sla(
    State(state): State<AppState>,
    who: TenantCaller,
) -> Result<axum::Json<Value>, ApiError> {
    let status = state.runtime.sla_status(&who.tenant).await?;
    Ok(axum::Json(status_json(&who.tenant, &status)))
}

/// The tenant of a tenant route's path (`/v1/tenants/{tenant}` and below).
fn path_tenant(path: &str) -> Option<TenantId> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    let id = rest.split('/').next()?;
    TenantId::new(id).ok()
}

/// Measures every tenant route's request into the tenant's SLA monitor: its latency and
/// whether it succeeded (status below 500). Requests refused 401 or 403 are not the tenant's
/// and are not counted; a tenant the monitor does not take (unknown, no envelope) is
/// skipped.
pub(crate) async fn measure(
    State(runtime): State<RuntimeHandle>,
    request: Request,
    next: Next,
) -> Response {
    let tenant = path_tenant(request.uri().path());
    // tokio's clock: monotonic, and paused in tests like the runtime's.
    let started = tokio::time::Instant::now();
    let response = next.run(request).await;
    if let Some(tenant) = tenant {
        let status = response.status().as_u16();
        if status != 401 && status != 403 {
            let latency: Duration = started.elapsed();
            if let Err(e) = runtime.sla_record(&tenant, latency, status < 500) {
                tracing::debug!(tenant_id = %tenant, error = %e, "request not measured");
            }
        }
    }
    response
}
