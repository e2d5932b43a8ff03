//! A billing period's usage events of one meter become one quantity.

use std::collections::BTreeSet;

use govern_plans::Aggregation;

use crate::{EVENTS_MAX, PricingError};

/// One usage event: a quantity and an id (the event's own id, or what a unique count counts,
/// such as a user id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// How much.
    pub quantity: u64,
    /// Its id.
    pub id: &'a str,
}

fn bounded(events: &[Event<'_>]) -> Result<(), PricingError> {
    if events.len() > EVENTS_MAX {
        return Err(PricingError::TooManyEvents(events.len()));
    }
    Ok(())
}

/// The number of events.
///
/// # Errors
/// More than [`EVENTS_MAX`] events.
pub fn count(events: &[Event<'_>]) -> Result<u64, PricingError> {
    bounded(events)?;
    u64::try_from(events.len()).map_err(|_| PricingError::TooManyEvents(events.len()))
}

/// The sum of the events' quantities.
///
/// # Errors
/// More than [`EVENTS_MAX`] events, or a sum past `u64::MAX`.
pub fn sum(events: &[Event<'_>]) -> Result<u64, PricingError> {
    bounded(events)?;
    events.iter().try_fold(0_u64, |acc, e| {
        acc.checked_add(e.quantity).ok_or_else(|| PricingError::Overflow { what: "sum".into() })
    })
}

/// The largest quantity of one event; 0 with no event.
///
/// # Errors
/// More than [`EVENTS_MAX`] events.
pub fn max(events: &[Event<'_>]) -> Result<u64, PricingError> {
    bounded(events)?;
    Ok(events.iter().map(|e| e.quantity).max().unwrap_or(0))
}

/// The number of distinct ids.
///
/// # Errors
/// More than [`EVENTS_MAX`] events.
pub fn unique_count(events: &[Event<'_>]) -> Result<u64, PricingError> {
    bounded(events)?;
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id).collect();
    u64::try_from(ids.len()).map_err(|_| PricingError::TooManyEvents(events.len()))
}

/// The events aggregated as `aggregation` says.
///
/// # Errors
/// More than [`EVENTS_MAX`] events, or a sum past `u64::MAX`.
pub fn aggregate(aggregation: Aggregation, events: &[Event<'_>]) -> Result<u64, PricingError> {
    match aggregation {
        Aggregation::Sum => sum(events),
        Aggregation::Count => count(events),
        Aggregation::Max => max(events),
        Aggregation::UniqueCount => unique_count(events),
    }
}
