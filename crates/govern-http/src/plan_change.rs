//! Plan changes (`docs/http.md`, "Plan changes"; `docs/plans.md`, "Plan changes"):
//!
//! - `POST /v1/tenants/{tenant}/plan-change:simulate`: the dry run (the catalog's path, the
//!   cooldown, the five gates, each with its verdict, reason and data); changes nothing.
//! - `POST /v1/tenants/{tenant}/plan-change:apply`: the dry run, then the receipted
//!   `change_plan` when nothing refuses; a refusal is answered with the status and code of the
//!   reason that decides (the path 422/409/403, a gate 409, the cooldown the catalog's status
//!   with `Retry-After`), every reason in the message and the dry run.
//!
//! Both take `{"to": PLAN, "subscription": ID?, "reason": TEXT?}` (the tenant's only
//! subscription by default) and the tenant's or the operator's key.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use govern_governors::ResourceId;
use govern_plans::Simulation;
use govern_runtime::{PlanChangeError, PlanChangeRefusal, Refusal, RuntimeHandle, simulation_json};
use serde::Deserialize;

use crate::api::extract::{Json, TenantCaller};
use crate::{ApiError, AppState};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/plan-change:simulate", post(simulate))
        .route("/v1/tenants/{tenant}/plan-change:apply", post(apply))
}

/// A plan change as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanChangeBody {
    /// The plan to move to.
    to: String,
    /// The subscription (resource id); default: the tenant's only one.
    subscription: Option<String>,
    /// The reason recorded on the receipt (apply; default `plan change`).
    reason: Option<String>,
}

fn error(e: PlanChangeError) -> ApiError {
    match e {
        PlanChangeError::NoCatalog => ApiError::from(Refusal::NoCatalog),
        PlanChangeError::Runtime(r) => ApiError::from(r),
        PlanChangeError::Command(c) => ApiError::from(c),
        e @ PlanChangeError::WhichSubscription { .. } => {
            ApiError::bad_request("which_subscription", e.to_string())
        }
        e @ (PlanChangeError::NotActive { .. } | PlanChangeError::NoPlan(_)) => {
            ApiError::new(StatusCode::CONFLICT, "not_active", e.to_string())
        }
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

fn subscription(
    runtime: &RuntimeHandle,
    who: &TenantCaller,
    body: &PlanChangeBody,
) -> Result<ResourceId, ApiError> {
    match &body.subscription {
        Some(s) => ResourceId::new(s)
            .map_err(|e| ApiError::bad_request("bad_request", format!("subscription `{s}`: {e}"))),
        None => runtime.sole_subscription(&who.tenant).map_err(error),
    }
}

/// 200 with the dry run (`allowed` says whether apply would go through).
async fn simulate(
    State(state): State<AppState>,
    who: TenantCaller,
    Json(body): Json<PlanChangeBody>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let sub = subscription(&state.runtime, &who, &body)?;
    let s = state.runtime.simulate_plan_change(&who.tenant, &sub, &body.to).await.map_err(error)?;
    Ok(axum::Json(simulation_json(&s)))
}

/// 200 with the dry run and `receipt` (the `change_plan` receipt's sequence number), or the
/// refusal that decides (`PlanChangeRefusal`: its status, code and `decided_by`; a cooldown's
/// `Retry-After` and `retry_after_ms`) with `{"error": …, "simulation": …}`.
async fn apply(
    State(state): State<AppState>,
    who: TenantCaller,
    Json(body): Json<PlanChangeBody>,
) -> Result<Response, ApiError> {
    let sub = subscription(&state.runtime, &who, &body)?;
    let reason = body.reason.as_deref().unwrap_or("plan change");
    match state.runtime.apply_plan_change(&who.tenant, &sub, &body.to, reason).await {
        Ok(applied) => {
            let mut v = simulation_json(&applied.simulation);
            v["receipt"] = applied.accepted.seq.into();
            Ok(axum::Json(v).into_response())
        }
        Err(PlanChangeError::Refused { reasons, refusal, simulation }) => {
            Ok(refused(&reasons, &refusal, &simulation))
        }
        Err(e) => Err(error(e)),
    }
}

/// A refused change: the deciding refusal's status, the error shape (`retry_after` in seconds
/// and the `Retry-After` header for a cooldown), `retry_after_ms` and the dry run.
fn refused(reasons: &[String], refusal: &PlanChangeRefusal, simulation: &Simulation) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::CONFLICT);
    let mut error = ApiError::new(status, &refusal.code, reasons.join("; "));
    error.retry_after = refusal.retry_after_secs();
    error.decided_by = Some(refusal.decided_by.clone());
    let mut body = serde_json::json!({ "error": error, "simulation": simulation_json(simulation) });
    if let Some(ms) = refusal.retry_after_ms {
        body["retry_after_ms"] = ms.into();
    }
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = error.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
