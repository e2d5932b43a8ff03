//! A receipted batch of counted events of one meter in one period: what the runtime writes
//! instead of one receipt per event, and replays into [`super::Meters::apply_batch`].

use super::Recorded;
use crate::period::PeriodKey;
use crate::{EventId, MeterId, UsageError, UsageEvent};
use govern_governors::Timestamp;
use serde::{Deserialize, Serialize};

/// The most events in one batch: a full batch is closed and a new one started.
pub const BATCH_EVENTS_MAX: usize = 4_096;

/// One event of a batch: its id and time, enough to remember it for deduplication after a
/// replay (quantities are summed into the batch's total).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEvent {
    /// The event's id.
    pub id: EventId,
    /// The event's `at`.
    #[serde(rename = "at_ms", with = "crate::event::ts")]
    pub at: Timestamp,
}

/// Counted events of one meter in one period (for a rolling window: one bucket).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBatch {
    /// The meter.
    pub meter: MeterId,
    /// The period the events were counted in ([`Recorded::period`]).
    pub period: PeriodKey,
    /// The sum of the events' quantities.
    pub total: u64,
    /// How many events: `events.len()`, kept to check the record.
    pub count: u32,
    /// The events in the order they were counted; an id appears twice only at two times
    /// (reused after its deduplication window).
    pub events: Vec<BatchEvent>,
}

impl UsageBatch {
    /// An empty batch for `meter` in `period`.
    #[must_use]
    pub fn new(meter: MeterId, period: PeriodKey) -> Self {
        Self { meter, period, total: 0, count: 0, events: Vec::new() }
    }

    /// Whether `recorded` (the outcome of counting an event of `meter`) belongs in this batch
    /// and it has room for it.
    #[must_use]
    pub fn accepts(&self, meter: &MeterId, recorded: &Recorded) -> bool {
        &self.meter == meter
            && self.period == recorded.period
            && self.events.len() < BATCH_EVENTS_MAX
    }

    /// Adds a counted event.
    ///
    /// # Errors
    /// [`UsageError::BadBatch`] when the batch is full, the meter differs, or the total would
    /// overflow; the batch is unchanged.
    pub fn push(&mut self, event: &UsageEvent) -> Result<(), UsageError> {
        let bad = |problem| UsageError::BadBatch { meter: self.meter.to_string(), problem };
        if event.meter != self.meter {
            return Err(bad("the event is for another meter"));
        }
        if self.events.len() >= BATCH_EVENTS_MAX {
            return Err(bad("the batch is full"));
        }
        let Some(total) = self.total.checked_add(event.quantity) else {
            return Err(bad("the total would overflow"));
        };
        self.total = total;
        self.count += 1;
        self.events.push(BatchEvent { id: event.event_id.clone(), at: event.at });
        Ok(())
    }

    /// What is wrong with this batch as a record, if anything.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.events.is_empty() {
            return Err("the batch is empty");
        }
        if self.events.len() > BATCH_EVENTS_MAX {
            return Err("the batch has more than BATCH_EVENTS_MAX events");
        }
        if usize::try_from(self.count).ok() != Some(self.events.len()) {
            return Err("count differs from the number of events");
        }
        if self.total < u64::from(self.count) {
            return Err("the total is less than one unit per event");
        }
        let mut ids: Vec<(&EventId, Timestamp)> =
            self.events.iter().map(|e| (&e.id, e.at)).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("an event appears twice");
        }
        Ok(())
    }
}
