//! Usage counters per meter with reset periods and thresholds, deduplicated, rebuildable from
//! batches.

mod batch;
mod meter;

pub use batch::{BATCH_EVENTS_MAX, BatchEvent, UsageBatch};
pub use meter::{MeterConfig, MeterValue, Threshold, Thresholds};

use crate::dedup::Dedup;
use crate::event::EVENT_FUTURE_SKEW_MS;
use crate::period::PeriodKey;
use crate::{MeterId, UsageError, UsageEvent};
use foldhash::fast::RandomState;
use govern_governors::Timestamp;
use meter::Meter;
#[allow(clippy::disallowed_types, reason = "lookup only; `snapshot` sorts before it returns")]
use std::collections::HashMap;

/// The most meters one [`Meters`] holds.
pub const METERS_MAX: usize = 256;

/// What recording an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The event was counted.
    Counted(Recorded),
    /// The event's id was already recorded inside the window: nothing changed.
    Duplicate,
}

/// A counted event (or applied batch): the meter's new value and what it crossed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The meter's value after the event, in its current period (or window).
    pub value: u64,
    /// The period the event was counted in: the period of `now`.
    pub period: PeriodKey,
    /// The thresholds crossed upwards by this event, lowest first, each reported once per
    /// period (for a rolling window: again only after usage fell back under it).
    pub crossed: &'static [Threshold],
    /// The previous period, when this event was the first of a new one.
    pub rollover: Option<Rollover>,
}

/// A calendar period that ended: the counter started again from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rollover {
    /// The period that ended.
    pub period: PeriodKey,
    /// Its final value.
    pub value: u64,
}

/// The usage counters of one tenant: meters, and the event ids already counted.
#[derive(Clone, Debug, Default)]
pub struct Meters {
    /// The meters, by id (hashed: a lookup per event).
    #[allow(clippy::disallowed_types, reason = "lookup only; `snapshot` sorts before it returns")]
    meters: HashMap<MeterId, Meter, RandomState>,
    /// The event ids counted inside the window.
    dedup: Dedup,
}

impl Meters {
    /// No meters, the default deduplication window and capacity.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// No meters, deduplicating with `dedup`.
    #[must_use]
    pub fn with_dedup(dedup: Dedup) -> Self {
        #[allow(clippy::disallowed_types, reason = "lookup only; `snapshot` sorts")]
        let meters = HashMap::default();
        Self { meters, dedup }
    }

    /// Defines `meter`, or changes its configuration. A meter whose reset changes starts
    /// again from zero; one whose limit or thresholds change keeps its count, and thresholds
    /// it no longer reaches are reported again when crossed.
    ///
    /// # Errors
    /// [`UsageError::BadMeterConfig`] or [`UsageError::TooManyMeters`].
    pub fn define(&mut self, meter: MeterId, config: MeterConfig) -> Result<(), UsageError> {
        if let Some(problem) = config.problem() {
            return Err(UsageError::BadMeterConfig { meter: meter.to_string(), problem });
        }
        if let Some(m) = self.meters.get_mut(&meter) {
            m.reconfigure(config);
            return Ok(());
        }
        if self.meters.len() >= METERS_MAX {
            return Err(UsageError::TooManyMeters(METERS_MAX));
        }
        self.meters.insert(meter, Meter::new(config));
        Ok(())
    }

    /// Records `event` at `now`: counted in the period of `now`, unless its id was already
    /// counted inside the window, that is at an `at` no more than the window before `now`
    /// ([`Outcome::Duplicate`], nothing changes).
    ///
    /// # Errors
    /// [`UsageError::ZeroQuantity`], [`UsageError::EventInFuture`],
    /// [`UsageError::EventTooOld`], [`UsageError::UnknownMeter`] or
    /// [`UsageError::CounterOverflow`]; an error changes nothing.
    pub fn record(&mut self, event: UsageEvent, now: Timestamp) -> Result<Outcome, UsageError> {
        if event.quantity == 0 {
            return Err(UsageError::ZeroQuantity);
        }
        if event.at > now.plus_ms(EVENT_FUTURE_SKEW_MS) {
            return Err(UsageError::EventInFuture {
                at: event.at,
                now,
                skew_ms: EVENT_FUTURE_SKEW_MS,
            });
        }
        let window_ms = self.dedup.window_ms();
        if event.at.plus_ms(window_ms) < now {
            return Err(UsageError::EventTooOld { at: event.at, now, window_ms });
        }
        let Some(meter) = self.meters.get_mut(&event.meter) else {
            return Err(UsageError::UnknownMeter(event.meter.to_string()));
        };
        let hash = self.dedup.hash(&event.event_id);
        let found = self.dedup.lookup(hash, &event.event_id);
        if self.dedup.is_duplicate_at(found, now) {
            return Ok(Outcome::Duplicate);
        }
        let key = meter.config().reset.key(now);
        if !meter.can_add(key, event.quantity) {
            return Err(UsageError::CounterOverflow(event.meter.to_string()));
        }
        let recorded = meter.add(key, event.quantity);
        self.dedup.expire(now);
        self.dedup.remember_at(found, event.event_id, event.at, hash);
        Ok(Outcome::Counted(recorded))
    }

    /// Applies a receipted batch, as recording its events did: the way counters and the
    /// deduplication memory are rebuilt after a restart. Batches of one meter must come in
    /// the order they were made.
    ///
    /// # Errors
    /// [`UsageError::UnknownMeter`], [`UsageError::BadBatch`] (inconsistent, or an id in it
    /// already counted: the batch was applied before), [`UsageError::StaleBatch`] or
    /// [`UsageError::CounterOverflow`]; an error changes nothing.
    pub fn apply_batch(&mut self, batch: &UsageBatch) -> Result<Recorded, UsageError> {
        let bad = |problem| UsageError::BadBatch { meter: batch.meter.to_string(), problem };
        batch.check().map_err(bad)?;
        let Some(meter) = self.meters.get_mut(&batch.meter) else {
            return Err(UsageError::UnknownMeter(batch.meter.to_string()));
        };
        let current = meter.period();
        if current.is_some_and(|c| batch.period < c) {
            return Err(UsageError::StaleBatch {
                meter: batch.meter.to_string(),
                batch: batch.period,
                current: current.unwrap_or(batch.period),
            });
        }
        // The same event (id and time) counted already: this batch was applied before. An id
        // remembered at an earlier time is an id reused after its window, as recording allows.
        if batch.events.iter().any(|e| self.dedup.at(&e.id) == Some(e.at)) {
            return Err(bad("an event id in it is already counted"));
        }
        if !meter.can_add(batch.period, batch.total) {
            return Err(UsageError::CounterOverflow(batch.meter.to_string()));
        }
        let recorded = meter.add(batch.period, batch.total);
        for e in &batch.events {
            self.dedup.remember(e.id.clone(), e.at);
        }
        Ok(recorded)
    }

    /// The value of `meter` at `now` (rolled over or slid to `now`, without changing it);
    /// `None` for an unknown meter.
    #[must_use]
    pub fn value(&self, meter: &MeterId, now: Timestamp) -> Option<MeterValue> {
        self.meters.get(meter).map(|m| m.value_at(now))
    }

    /// The value of the meter named `meter` at `now` (as [`Self::value`], by name: no id is
    /// built, nothing is allocated); `None` for an unknown meter.
    #[must_use]
    pub fn value_of(&self, meter: &str, now: Timestamp) -> Option<MeterValue> {
        self.meters.get(meter).map(|m| m.value_at(now))
    }

    /// Every meter's value at `now`, by meter id.
    #[must_use]
    pub fn snapshot(&self, now: Timestamp) -> Vec<(MeterId, MeterValue)> {
        let mut all: Vec<_> =
            self.meters.iter().map(|(id, m)| (id.clone(), m.value_at(now))).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The deduplication memory.
    #[must_use]
    pub const fn dedup(&self) -> &Dedup {
        &self.dedup
    }
}

#[cfg(test)]
mod tests;
