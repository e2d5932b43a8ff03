//! Invoices, the billing run and the payment provider's webhook (`docs/http.md`, "Billing").
//!
//! - `GET /v1/tenants/{tenant}/invoices/{period}`: the month's invoice, receipted (`closed`)
//!   or a preview (tenant or operator key).
//! - `POST /v1/tenants/{tenant}/invoices/{period}/close`: closes the month (operator key).
//! - `POST /v1/billing-runs/{period}`: closes the month for every tenant (operator key).
//! - `POST /v1/webhooks/payments`: a provider's delivery, authenticated by its
//!   `Stripe-Signature` alone (no API key), answered once its receipt is durable.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use govern_governors::billing::PaymentMethod;
use govern_runtime::{InvoiceDoc, WebhookError};
use govern_webhooks::Verifier;
use serde::Serialize;

use crate::api::extract::{Body, OperatorCaller, Params, TenantCaller, tenant_id};
use crate::{ApiError, AppState};

/// The webhook signature header (Stripe's format: `t=<unix seconds>,v1=<hex>`).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// The largest webhook body taken, in bytes (the event parser's own bound).
pub const WEBHOOK_BODY_BYTES_MAX: usize = govern_webhooks::event::EVENT_BODY_LEN_MAX;

/// Tenants closed at a time by `POST /v1/billing-runs/{period}`.
pub const BILLING_RUN_CONCURRENCY: usize = 64;

/// The routes of this module; `verifier` is `None` when no webhook secret is configured (the
/// webhook route then answers 503 `webhooks_not_configured`).
pub fn routes(verifier: Option<Arc<Verifier>>) -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/invoices/{period}", get(invoice))
        .route("/v1/tenants/{tenant}/invoices/{period}/close", post(close))
        .route("/v1/billing-runs/{period}", post(billing_run))
        .route(
            "/v1/webhooks/payments",
            post(move |state: State<AppState>, headers: HeaderMap, Body(body): Body| {
                webhook(state, verifier.clone(), headers, body)
            })
            .layer(DefaultBodyLimit::max(WEBHOOK_BODY_BYTES_MAX)),
        )
}

async fn invoice(
    State(state): State<AppState>,
    caller: TenantCaller,
    Params((_, period)): Params<(String, String)>,
) -> Result<axum::Json<InvoiceDoc>, ApiError> {
    let tenant = &caller.tenant;
    Ok(axum::Json(state.runtime.invoice(tenant, &period)?.doc(tenant)))
}

async fn close(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    Params((tenant, period)): Params<(String, String)>,
) -> Result<axum::Json<InvoiceDoc>, ApiError> {
    let tenant = tenant_id(&tenant)?;
    let closed = state.runtime.close_period(&tenant, &period, PaymentMethod::Card).await?;
    Ok(axum::Json(closed.doc()))
}

/// The billing run's answer.
#[derive(Debug, Serialize)]
struct RunJson {
    period: String,
    /// Tenants whose month this run closed (or completed).
    closed: usize,
    /// Tenants whose month was closed before.
    already_closed: usize,
    /// Tenants with nothing to invoice.
    not_invoiceable: usize,
    /// Tenants whose close failed: (tenant, error code).
    failed: Vec<(String, String)>,
    invoices: Vec<InvoiceDoc>,
}

async fn billing_run(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    Params(period): Params<String>,
) -> Result<axum::Json<RunJson>, ApiError> {
    govern_runtime::BillingPeriod::month(&period)?;
    let results =
        state.runtime.close_period_all(&period, PaymentMethod::Card, BILLING_RUN_CONCURRENCY).await;
    let mut run = RunJson {
        period,
        closed: 0,
        already_closed: 0,
        not_invoiceable: 0,
        failed: Vec::new(),
        invoices: Vec::new(),
    };
    for (tenant, result) in results {
        match result {
            Ok(c) => {
                if c.closed_now {
                    run.closed += 1;
                } else {
                    run.already_closed += 1;
                }
                run.invoices.push(c.doc());
            }
            Err(e) if e.code() == "not_invoiceable" => run.not_invoiceable += 1,
            Err(e) if e.code() == "period_open" => return Err(e.into()),
            Err(e) => run.failed.push((tenant.to_string(), e.code().to_owned())),
        }
    }
    Ok(axum::Json(run))
}

/// A delivery's answer.
#[derive(Debug, Serialize)]
struct DeliveryJson {
    event_id: String,
    event_type: String,
    tenant: String,
    /// `accepted`, `duplicate` or `rejected`.
    outcome: &'static str,
    detail: String,
    /// The `record_webhook` receipt.
    receipt: u64,
    /// The mapped command's receipt (the first delivery's, for a duplicate).
    command_receipt: Option<u64>,
}

async fn webhook(
    State(state): State<AppState>,
    verifier: Option<Arc<Verifier>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<DeliveryJson>, ApiError> {
    let Some(verifier) = verifier else {
        return Err(ApiError::unavailable(
            "webhooks_not_configured",
            "no webhook secret is configured (govern serve --webhook-secret-file)",
        ));
    };
    let signature =
        headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            ApiError::bad_request("bad_signature", "a Stripe-Signature header is required")
        })?;
    match state.runtime.deliver_webhook(&verifier, signature, &body).await {
        Ok(d) => Ok(axum::Json(DeliveryJson {
            event_id: d.event_id,
            event_type: d.event_type,
            tenant: d.tenant.to_string(),
            outcome: d.outcome.name(),
            detail: d.detail,
            receipt: d.record.seq,
            command_receipt: d.command.map(|c| c.seq),
        })),
        Err(e) => {
            let message = e.to_string();
            Err(match e {
                WebhookError::Signature(_) | WebhookError::Event(_) => {
                    ApiError::bad_request(e.code(), message)
                }
                WebhookError::NoTenant { .. } => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), message)
                }
                WebhookError::Unavailable(r) => r.into(),
                _ => ApiError::unavailable(e.code(), message),
            })
        }
    }
}
