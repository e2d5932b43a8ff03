//! `POST /v1/tenants/{tenant}/check` (may the tenant do this now?) and
//! `POST /v1/tenants/{tenant}/usage` (what it used): the runtime's `check` and
//! `record_usage_batch`.

use axum::extract::State;
use govern_governors::Timestamp;
use govern_policy::Decision;
use govern_runtime::UsageRecorded;
use govern_usage::{UsageError, UsageEvent};
use serde::{Deserialize, Serialize};

use super::extract::{Json, TenantCaller};
use crate::limits::USAGE_EVENTS_PER_REQUEST_MAX;
use crate::{ApiError, AppState};

/// A check as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckBody {
    /// The feature (`report_builder`).
    feature: String,
    /// The action (`create`, `read`, ...).
    action: String,
    /// Units asked for (default 1).
    #[serde(default = "one")]
    quantity: u64,
}

const fn one() -> u64 {
    1
}

/// An allowed check.
#[derive(Debug, Serialize)]
pub(crate) struct Allowed {
    /// Always true (a refusal is an error response).
    allowed: bool,
    /// What allowed it (`plan_feature:F`, `grant:ID (kind)`, `rule:ID@vN`).
    decided_by: String,
}

/// 200 `{"allowed":true,"decided_by":…}`, or the refusal (402/403/429); the runtime's own
/// refusals (unknown tenant 404, no catalog 501, shutting down 503) as theirs.
pub(crate) async fn check(
    State(state): State<AppState>,
    who: TenantCaller,
    Json(body): Json<CheckBody>,
) -> Result<axum::Json<Allowed>, ApiError> {
    match state.runtime.check(&who.tenant, &body.feature, &body.action, body.quantity)? {
        Decision::Allowed { decided_by } => {
            Ok(axum::Json(Allowed { allowed: true, decided_by: decided_by.to_string() }))
        }
        Decision::Refused(r) => Err(ApiError::from(&r)),
    }
}

/// A batch of usage events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageBody {
    /// At most [`USAGE_EVENTS_PER_REQUEST_MAX`].
    events: Vec<EventBody>,
}

/// One usage event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventBody {
    /// The meter (`reports`, `api_calls`, `storage_gb`, ...).
    meter: String,
    /// Units used, more than zero.
    quantity: u64,
    /// The deduplication key: an event sent again with this id is not counted again.
    event_id: String,
    /// When it happened, in milliseconds since the Unix epoch (default: now).
    #[serde(default, alias = "at")]
    at_ms: Option<u64>,
}

/// What became of one event.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum EventResult {
    /// Counted, and durable.
    Counted {
        /// The event's id.
        event_id: String,
        /// The meter's value in its period after the event.
        value: u64,
        /// The plan's limit (`null`: unlimited).
        limit: Option<u64>,
        /// The period's key.
        period: u64,
        /// Thresholds crossed upwards (`warning`, `throttle`, `exceeded`).
        crossed: Vec<&'static str>,
        /// The meter's quota state after the event.
        quota: &'static str,
    },
    /// Already counted: nothing changed.
    Duplicate {
        /// The event's id.
        event_id: String,
    },
    /// Not counted, and why.
    Refused {
        /// The event's id.
        event_id: String,
        /// Always `bad_usage`.
        code: &'static str,
        /// Why.
        message: String,
    },
}

/// The answer to a batch: one result per event, in order.
#[derive(Debug, Serialize)]
pub(crate) struct UsageAnswer {
    /// Events counted.
    counted: usize,
    /// Events already counted before.
    duplicates: usize,
    /// Events refused.
    refused: usize,
    /// One per event, in order.
    results: Vec<EventResult>,
}

fn refused(event_id: String, e: &UsageError) -> EventResult {
    EventResult::Refused { event_id, code: "bad_usage", message: e.to_string() }
}

/// Records the events (each counted once, acknowledged when durable): 200 with a result per
/// event; the call as a whole refused (unknown tenant, no catalog, ...) in the error shape.
pub(crate) async fn usage(
    State(state): State<AppState>,
    who: TenantCaller,
    Json(body): Json<UsageBody>,
) -> Result<axum::Json<UsageAnswer>, ApiError> {
    if body.events.len() > USAGE_EVENTS_PER_REQUEST_MAX {
        return Err(ApiError::bad_request(
            "bad_request",
            format!(
                "{} events: at most {USAGE_EVENTS_PER_REQUEST_MAX} in one request",
                body.events.len()
            ),
        ));
    }
    let now = state.runtime.now();
    // Events that are malformed are answered here; the others go to the runtime together.
    let mut slots: Vec<Result<String, EventResult>> = Vec::with_capacity(body.events.len());
    let mut events = Vec::with_capacity(body.events.len());
    for e in body.events {
        let at = e.at_ms.map_or(now, Timestamp);
        match UsageEvent::new(&e.meter, e.quantity, &e.event_id, at) {
            Ok(event) => {
                events.push(event);
                slots.push(Ok(e.event_id));
            }
            Err(err) => slots.push(Err(refused(e.event_id, &err))),
        }
    }
    let mut recorded = if events.is_empty() {
        Vec::new()
    } else {
        state.runtime.record_usage_batch(&who.tenant, events).await?
    }
    .into_iter();
    let results: Vec<EventResult> = slots
        .into_iter()
        .map(|slot| match slot {
            Err(done) => done,
            Ok(event_id) => match recorded.next() {
                Some(Ok(UsageRecorded::Counted { value, limit, period, crossed, quota })) => {
                    EventResult::Counted { event_id, value, limit, period, crossed, quota }
                }
                Some(Ok(UsageRecorded::Duplicate)) => EventResult::Duplicate { event_id },
                Some(Err(e)) => refused(event_id, &e),
                // The runtime answers one result per event, of the kinds above.
                Some(Ok(_)) | None => EventResult::Refused {
                    event_id,
                    code: "bad_usage",
                    message: "the runtime gave no result this build knows for this event".into(),
                },
            },
        })
        .collect();
    let count = |f: fn(&EventResult) -> bool| results.iter().filter(|r| f(r)).count();
    Ok(axum::Json(UsageAnswer {
        counted: count(|r| matches!(r, EventResult::Counted { .. })),
        duplicates: count(|r| matches!(r, EventResult::Duplicate { .. })),
        refused: count(|r| matches!(r, EventResult::Refused { .. })),
        results,
    }))
}
