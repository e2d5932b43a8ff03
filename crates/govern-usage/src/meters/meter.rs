//! One meter: its configuration, its counter in the current period (or rolling window) and
//! the thresholds already reported.

use super::{Recorded, Rollover};
use crate::period::{PeriodKey, Reset};
use govern_governors::Timestamp;
use govern_governors::quota::{EXCEEDED_BPS, THROTTLE_BPS, WARNING_BPS};
use serde::{Deserialize, Serialize};

/// The highest threshold a meter may set, in basis points of its limit (100 x the limit).
const THRESHOLD_BPS_MAX: u64 = 1_000_000;

/// A share of the limit that, once reached, is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// 75 % by default: warn the tenant.
    Warning,
    /// 90 % by default: throttle.
    Throttle,
    /// 100 % by default: the quota is exceeded.
    Exceeded,
}

impl Threshold {
    /// Every threshold, lowest first.
    pub const ALL: [Self; 3] = [Self::Warning, Self::Throttle, Self::Exceeded];

    /// The stable name used in receipts and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Throttle => "throttle",
            Self::Exceeded => "exceeded",
        }
    }
}

/// A meter's thresholds in basis points of its limit (10 000 = 100 %), strictly increasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Thresholds {
    /// Warning, 7 500 by default.
    pub warning_bps: u64,
    /// Throttle, 9 000 by default.
    pub throttle_bps: u64,
    /// Exceeded, 10 000 by default.
    pub exceeded_bps: u64,
}

impl Default for Thresholds {
    /// The quota governor's 75 / 90 / 100 %.
    fn default() -> Self {
        Self { warning_bps: WARNING_BPS, throttle_bps: THROTTLE_BPS, exceeded_bps: EXCEEDED_BPS }
    }
}

impl Thresholds {
    fn bps(self) -> [u64; 3] {
        [self.warning_bps, self.throttle_bps, self.exceeded_bps]
    }

    fn problem(self) -> Option<&'static str> {
        let [w, t, e] = self.bps();
        if w == 0 {
            Some("the warning threshold must be above 0")
        } else if !(w < t && t < e) {
            Some("thresholds must increase: warning < throttle < exceeded")
        } else if e > THRESHOLD_BPS_MAX {
            Some("the exceeded threshold may be at most 100 times the limit")
        } else {
            None
        }
    }
}

/// How a meter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MeterConfig {
    /// When the counter starts again.
    pub reset: Reset,
    /// The quota, greater than zero; no thresholds without one.
    pub limit: Option<u64>,
    /// Where crossings are reported.
    pub thresholds: Thresholds,
}

impl MeterConfig {
    /// A meter that resets as `reset`, against `limit`, with the default thresholds.
    #[must_use]
    pub fn new(reset: Reset, limit: Option<u64>) -> Self {
        Self { reset, limit, thresholds: Thresholds::default() }
    }

    pub(crate) fn problem(&self) -> Option<&'static str> {
        if self.limit == Some(0) {
            return Some("a limit must be greater than zero");
        }
        self.reset.problem().or_else(|| self.thresholds.problem())
    }
}

/// A meter's value at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterValue {
    /// Units counted in the current period or window.
    pub value: u64,
    /// The current period; `None` before the first event.
    pub period: Option<PeriodKey>,
    /// The limit, if any.
    pub limit: Option<u64>,
    /// The highest threshold the value reaches, if any.
    pub level: Option<Threshold>,
}

/// One meter's state.
#[derive(Clone, Debug)]
pub(crate) struct Meter {
    /// How it counts.
    config: MeterConfig,
    /// The current period (for a rolling window: the newest bucket); `None` before the first
    /// event.
    period: Option<PeriodKey>,
    /// Units in the current period (for a rolling window: the sum of `ring`).
    value: u64,
    /// A rolling window's buckets, bucket `k` at `k % len`; empty for calendar resets.
    ring: Vec<u64>,
    /// How many thresholds (lowest first) were reported in this period.
    reported: usize,
    /// The least value reaching each threshold (`u128`: it may be out of a counter's reach),
    /// so that a count needs no division; `None` without a limit.
    reach: Option<[u128; 3]>,
}

/// The least values reaching each threshold of `config`: `usage_bps(v, limit) >= t` exactly
/// when `v * 10 000 >= t * limit`, that is `v >= ceil(t * limit / 10 000)`.
fn reach(config: &MeterConfig) -> Option<[u128; 3]> {
    let limit = u128::from(config.limit?);
    Some(
        config.thresholds.bps().map(|t| (u128::from(t) * limit).div_ceil(u128::from(EXCEEDED_BPS))),
    )
}

impl Meter {
    pub(crate) fn new(config: MeterConfig) -> Self {
        let buckets = match config.reset {
            Reset::Rolling { buckets, .. } => buckets as usize,
            Reset::Never | Reset::Daily | Reset::Monthly => 0,
        };
        Self {
            config,
            period: None,
            value: 0,
            ring: vec![0; buckets],
            reported: 0,
            reach: reach(&config),
        }
    }

    pub(crate) const fn config(&self) -> &MeterConfig {
        &self.config
    }

    pub(crate) const fn period(&self) -> Option<PeriodKey> {
        self.period
    }

    pub(crate) fn reconfigure(&mut self, config: MeterConfig) {
        if config.reset != self.config.reset {
            *self = Self::new(config);
        } else {
            self.config = config;
            self.reach = reach(&config);
            self.reported = self.reported.min(self.level(self.value));
        }
    }

    /// How many thresholds `value` reaches.
    fn level(&self, value: u64) -> usize {
        let Some(reach) = &self.reach else { return 0 };
        reach.iter().take_while(|&&r| u128::from(value) >= r).count()
    }

    /// The value once moved to period `key` (a key before the current one counts as the
    /// current one: time does not go back).
    fn value_in(&self, key: PeriodKey) -> u64 {
        let Some(current) = self.period else { return 0 };
        if key <= current {
            return self.value;
        }
        if self.ring.is_empty() {
            return 0;
        }
        let n = self.ring.len() as u64;
        let steps = key.0 - current.0;
        if steps >= n {
            return 0;
        }
        let leaving: u64 = (1..=steps).map(|i| self.ring[self.slot(current.0 + i)]).sum();
        self.value.saturating_sub(leaving)
    }

    fn slot(&self, key: u64) -> usize {
        // `ring` is not empty here and its length fits in a u64: the cast back is lossless.
        (key % (self.ring.len().max(1) as u64)) as usize
    }

    pub(crate) fn value_at(&self, now: Timestamp) -> MeterValue {
        let key = self.config.reset.key(now);
        let value = self.value_in(key);
        let level = self.level(value).checked_sub(1).and_then(|i| Threshold::ALL.get(i)).copied();
        MeterValue {
            value,
            period: self.period.map(|p| p.max(key)),
            limit: self.config.limit,
            level,
        }
    }

    /// Whether `quantity` fits in the counter once moved to `key`.
    pub(crate) fn can_add(&self, key: PeriodKey, quantity: u64) -> bool {
        self.value_in(key).checked_add(quantity).is_some()
    }

    /// Moves to `key` (rolling over or sliding) and adds `quantity`; the caller checked
    /// [`Self::can_add`].
    pub(crate) fn add(&mut self, key: PeriodKey, quantity: u64) -> Recorded {
        let rollover = self.advance(key);
        let period = self.period.unwrap_or(key);
        self.value = self.value.saturating_add(quantity);
        if !self.ring.is_empty() {
            let slot = self.slot(period.0);
            self.ring[slot] = self.ring[slot].saturating_add(quantity);
        }
        let before = self.reported;
        self.reported = before.max(self.level(self.value));
        Recorded {
            value: self.value,
            period,
            crossed: Threshold::ALL.get(before..self.reported).unwrap_or(&[]),
            rollover,
        }
    }

    fn advance(&mut self, key: PeriodKey) -> Option<Rollover> {
        let Some(current) = self.period else {
            self.period = Some(key);
            return None;
        };
        if key <= current {
            return None;
        }
        self.period = Some(key);
        if self.ring.is_empty() {
            let ended = Rollover { period: current, value: self.value };
            self.value = 0;
            self.reported = 0;
            return Some(ended);
        }
        let n = self.ring.len() as u64;
        if key.0 - current.0 >= n {
            self.ring.iter_mut().for_each(|b| *b = 0);
            self.value = 0;
        } else {
            for k in current.0 + 1..=key.0 {
                let slot = self.slot(k);
                self.value = self.value.saturating_sub(self.ring[slot]);
                self.ring[slot] = 0;
            }
        }
        self.reported = self.reported.min(self.level(self.value));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{Meter, MeterConfig, Thresholds};
    use crate::Reset;
    use govern_governors::quota::usage_bps;
    use proptest::prelude::*;

    proptest! {
        /// The precomputed reach gives the level the quota governor's `usage_bps` gives.
        #[test]
        fn levels_agree_with_usage_bps(
            value in any::<u64>(),
            limit in 1u64..=u64::MAX,
            w in 1u64..400_000,
            dt in 1u64..300_000,
            de in 1u64..300_000,
        ) {
            let thresholds = Thresholds { warning_bps: w, throttle_bps: w + dt, exceeded_bps: w + dt + de };
            let m = Meter::new(MeterConfig { reset: Reset::Never, limit: Some(limit), thresholds });
            let bps = usage_bps(value, limit);
            let expected = [w, w + dt, w + dt + de].iter().take_while(|&&t| bps >= t).count();
            prop_assert_eq!(m.level(value), expected);
            // And at the edges of the limit itself.
            for v in [limit - 1, limit, limit.saturating_add(1)] {
                let bps = usage_bps(v, limit);
                let expected = [w, w + dt, w + dt + de].iter().take_while(|&&t| bps >= t).count();
                prop_assert_eq!(m.level(v), expected);
            }
        }
    }
}
