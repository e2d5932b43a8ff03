//! The read routes: a tenant's receipts as a change feed (`GET /v1/tenants/{tenant}/receipts`),
//! a tenant's state (`GET /v1/tenants/{tenant}`), and every tenant (`GET /v1/tenants`,
//! operator keys only).

use axum::extract::State;
use govern_governors::{StateSpec as _, TenantId};
use govern_receipt::ReceiptJson;
use serde::{Deserialize, Serialize};

use super::extract::{OperatorCaller, Query, TenantCaller, tenant_id};
use crate::limits::{RECEIPTS_PAGE_DEFAULT, RECEIPTS_PAGE_MAX, TENANTS_PAGE_MAX};
use crate::{ApiError, AppState};

/// `?after=SEQ&limit=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    /// The `next` of the previous page (absent: from the start).
    after: Option<u64>,
    /// 1 to [`RECEIPTS_PAGE_MAX`] (default [`RECEIPTS_PAGE_DEFAULT`]).
    limit: Option<usize>,
}

/// One page of a tenant's receipts.
#[derive(Debug, Serialize)]
pub(crate) struct ReceiptsPage {
    /// The tenant.
    tenant: String,
    /// The receipts (the JSON view of docs/receipts.md), in sequence order.
    receipts: Vec<ReceiptJson>,
    /// Pass as `after` for the next page (`null`: nothing read yet).
    next: Option<u64>,
    /// Nothing follows this page for now: ask again later from `next`.
    caught_up: bool,
}

fn unknown(tenant: &TenantId) -> ApiError {
    ApiError::from(govern_runtime::Refusal::UnknownTenant(tenant.clone()))
}

fn limit(asked: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match asked.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(ApiError::bad_request("bad_request", format!("limit {n}: between 1 and {max}"))),
    }
}

/// The receipts after `after`, at most `limit`: only those the runtime may show (durable),
/// never another tenant's. 404 for a tenant never provisioned.
pub(crate) async fn receipts(
    State(state): State<AppState>,
    who: TenantCaller,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<ReceiptsPage>, ApiError> {
    let limit = limit(q.limit, RECEIPTS_PAGE_DEFAULT, RECEIPTS_PAGE_MAX)?;
    if state.runtime.tenant_state(&who.tenant).is_none() {
        return Err(unknown(&who.tenant));
    }
    let page = state
        .runtime
        .receipts_since(&who.tenant, q.after, limit)
        .map_err(|e| ApiError::unavailable("ledger_unavailable", e.to_string()))?;
    Ok(axum::Json(ReceiptsPage {
        tenant: who.tenant.as_str().to_owned(),
        receipts: page.receipts.iter().map(ReceiptJson::from).collect(),
        next: page.cursor,
        caught_up: page.caught_up,
    }))
}

/// A tenant and its state.
#[derive(Debug, Serialize)]
pub(crate) struct TenantView {
    /// The id.
    tenant: String,
    /// Its tenant governor's state (`provisioning`, `active`, `suspended`, ...).
    state: &'static str,
}

/// The tenant's state; 404 for a tenant never provisioned.
pub(crate) async fn tenant(
    State(state): State<AppState>,
    who: TenantCaller,
) -> Result<axum::Json<TenantView>, ApiError> {
    let s = state.runtime.tenant_state(&who.tenant).ok_or_else(|| unknown(&who.tenant))?;
    Ok(axum::Json(TenantView { tenant: who.tenant.as_str().to_owned(), state: s.name() }))
}

/// `?after=TENANT&limit=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantsQuery {
    /// The `next` of the previous page (absent: from the first tenant).
    after: Option<String>,
    /// 1 to [`TENANTS_PAGE_MAX`] (the default).
    limit: Option<usize>,
}

/// A page of tenants.
#[derive(Debug, Serialize)]
pub(crate) struct TenantsPage {
    /// Sorted by id.
    tenants: Vec<TenantView>,
    /// Pass as `after` for the next page; `null` when this is the last.
    next: Option<String>,
}

/// Every tenant ever provisioned and its state, sorted, a page at a time. Operator keys
/// only (403 otherwise, logged).
pub(crate) async fn tenants(
    State(state): State<AppState>,
    _: OperatorCaller,
    Query(q): Query<TenantsQuery>,
) -> Result<axum::Json<TenantsPage>, ApiError> {
    let limit = limit(q.limit, TENANTS_PAGE_MAX, TENANTS_PAGE_MAX)?;
    let after = q.after.as_deref().map(tenant_id).transpose()?;
    let all = state.runtime.tenants();
    let start = after.map_or(0, |a| all.partition_point(|(t, _)| *t <= a));
    let rest = all.get(start..).unwrap_or_default();
    let page: Vec<TenantView> = rest
        .iter()
        .take(limit)
        .map(|(t, s)| TenantView { tenant: t.as_str().to_owned(), state: s.name() })
        .collect();
    let next = (rest.len() > limit).then(|| page.last().map(|v| v.tenant.clone())).flatten();
    Ok(axum::Json(TenantsPage { tenants: page, next }))
}
