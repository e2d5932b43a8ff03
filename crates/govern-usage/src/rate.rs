//! GCRA rate limits per (tenant, key), decided by the `governor` crate on a clock we set to
//! `now` before every check, so a decision is a function of the state and `now`.
//!
//! `governor` keeps one theoretical arrival time (TAT) per key in a state store; we give it our
//! own store (a plain hash map: the pure core is single-threaded) so that the number of keys
//! is bounded and idle keys can be dropped exactly: a key whose TAT is not after `now` decides
//! as an absent key does.

use crate::UsageError;
use crate::event::check_id;
use foldhash::fast::RandomState;
use govern_governors::{TenantId, Timestamp};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use std::cell::{Cell, RefCell};
#[allow(clippy::disallowed_types, reason = "lookup only; pruning is order-independent")]
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

/// The most distinct [`RateQuota`]s (in practice: plans times limits) one [`RateLimits`] holds.
pub const RATE_QUOTAS_MAX: usize = 64;
/// The most live keys (keys whose bucket is not full again) over all quotas.
pub const RATE_KEYS_MAX: usize = 1 << 20;
/// The longest period of a rate quota: one day.
pub const RATE_PERIOD_MS_MAX: u64 = 24 * 60 * 60 * 1_000;
/// The largest burst times emission interval, in ns (about 11.6 days): keeps `governor`'s
/// arithmetic far from overflow.
const RATE_TAU_NS_MAX: u64 = 1_000_000_000_000_000;
/// Times are capped here (year 2286) before they become nanoseconds, so that no sum overflows.
const CLOCK_MS_MAX: u64 = 10_000_000_000_000;
const NS_PER_MS: u64 = 1_000_000;

/// A rate: `rate` requests per `period_ms`, of which up to `burst` may come at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateQuota {
    /// Requests per period.
    rate: u32,
    /// The period in ms.
    period_ms: u64,
    /// Requests allowed back to back.
    burst: u32,
    /// The emission interval: `period_ms / rate`, in ns.
    interval_ns: u64,
}

impl RateQuota {
    /// `rate` requests per `period_ms`, bursts of up to `burst`.
    ///
    /// # Errors
    /// [`UsageError::BadRateQuota`] for a zero rate, burst or period, a period over
    /// [`RATE_PERIOD_MS_MAX`], a rate finer than one request per ns, or a burst whose span
    /// is absurdly long.
    pub fn new(rate: u32, period_ms: u64, burst: u32) -> Result<Self, UsageError> {
        if rate == 0 || burst == 0 {
            return Err(UsageError::BadRateQuota("rate and burst must be greater than zero"));
        }
        if period_ms == 0 || period_ms > RATE_PERIOD_MS_MAX {
            return Err(UsageError::BadRateQuota("the period must be from 1 ms to one day"));
        }
        let interval_ns = period_ms * NS_PER_MS / u64::from(rate);
        if interval_ns == 0 {
            return Err(UsageError::BadRateQuota("more than one request per nanosecond"));
        }
        if interval_ns.saturating_mul(u64::from(burst)) > RATE_TAU_NS_MAX {
            return Err(UsageError::BadRateQuota("the burst takes too long to refill"));
        }
        Ok(Self { rate, period_ms, burst, interval_ns })
    }

    /// `rate` requests per second, bursts of `burst`.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn per_second(rate: u32, burst: u32) -> Result<Self, UsageError> {
        Self::new(rate, 1_000, burst)
    }

    /// Requests per period.
    #[must_use]
    pub const fn rate(&self) -> u32 {
        self.rate
    }

    /// The period in ms.
    #[must_use]
    pub const fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// Requests allowed back to back.
    #[must_use]
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    fn governor_quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(Duration::from_nanos(self.interval_ns))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// What is limited: a tenant and a key of its own (an API route, a feature, `requests`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// The tenant.
    tenant: TenantId,
    /// The key within the tenant.
    key: String,
}

impl RateKey {
    /// The key `key` of `tenant`.
    ///
    /// # Errors
    /// An id error for `key` (empty, too long, control characters).
    pub fn new(tenant: TenantId, key: &str) -> Result<Self, UsageError> {
        check_id("rate key", key)?;
        Ok(Self { tenant, key: key.to_owned() })
    }

    /// The tenant.
    #[must_use]
    pub const fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The key within the tenant.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// How long to wait before the next request can conform, rounded up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter {
    /// In milliseconds, rounded up.
    pub ms: u64,
    /// In whole seconds, rounded up (HTTP `Retry-After`).
    pub secs: u64,
}

impl RetryAfter {
    fn from_nanos(ns: u64) -> Self {
        Self { ms: ns.div_ceil(NS_PER_MS), secs: ns.div_ceil(1_000 * NS_PER_MS) }
    }
}

/// The answer to a rate-limit check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// The request conforms; it was counted.
    Allowed,
    /// The request does not conform; it was not counted.
    Refused(RetryAfter),
}

/// A clock that reads what it was last set to: `governor` asks it for "now".
#[derive(Debug, Default)]
struct SetClock(Cell<Nanos>);

impl Clock for SetClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        self.0.get()
    }
}

/// The TATs of one quota's keys, absolute ns since the epoch (every limiter starts at 0).
#[allow(clippy::disallowed_types, reason = "lookup only; pruning is order-independent")]
type Tats = HashMap<RateKey, Nanos, RandomState>;

/// The state store handed to `governor` for one check: a borrow of one quota's TATs.
#[derive(Debug)]
struct StoreRef<'a>(&'a RefCell<Tats>);

impl StateStore for StoreRef<'_> {
    type Key = RateKey;

    fn measure_and_replace<T, F, E>(&self, key: &RateKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // No other borrow is alive: `f` is governor's arithmetic and does not reach the store.
        let mut map = self.0.borrow_mut();
        match map.get_mut(key) {
            Some(tat) => {
                let (out, next) = f(Some(*tat))?;
                *tat = next;
                Ok(out)
            }
            None => {
                let (out, next) = f(None)?;
                map.insert(key.clone(), next);
                Ok(out)
            }
        }
    }
}

/// A limiter over one quota's TATs, built for one check (building one is two multiplications).
type Limiter<'a> = RateLimiter<RateKey, StoreRef<'a>, SetClock, NoOpMiddleware<Nanos>>;

/// GCRA rate limits for many (tenant, key) pairs, each under the quota it is checked with.
/// A key checked under two quotas (a plan change) has a state under each.
#[derive(Debug)]
pub struct RateLimits {
    /// The TATs of each distinct quota's keys. A `RefCell` because `governor` updates a store
    /// through a shared reference; the pure core is single-threaded.
    #[allow(clippy::disallowed_types, reason = "lookup only; pruning is order-independent")]
    quotas: HashMap<RateQuota, RefCell<Tats>, RandomState>,
    /// Keys held over all quotas.
    keys: usize,
    /// The most keys held, at most [`RATE_KEYS_MAX`].
    keys_max: usize,
    /// No key is idle before this time (ns), so pruning earlier finds nothing.
    next_prune_ns: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimits {
    /// No limits yet, room for [`RATE_KEYS_MAX`] keys.
    #[must_use]
    pub fn new() -> Self {
        Self::with_keys_max(RATE_KEYS_MAX)
    }

    /// No limits yet, room for `keys_max` keys (at least 1, at most [`RATE_KEYS_MAX`]).
    #[must_use]
    pub fn with_keys_max(keys_max: usize) -> Self {
        Self {
            #[allow(
                clippy::disallowed_types,
                reason = "lookup only; pruning is order-independent"
            )]
            quotas: HashMap::default(),
            keys: 0,
            keys_max: keys_max.clamp(1, RATE_KEYS_MAX),
            next_prune_ns: 0,
        }
    }

    /// Keys held over all quotas.
    #[must_use]
    pub const fn keys(&self) -> usize {
        self.keys
    }

    /// Checks one request of `key` under `quota` at `now`, and counts it when it conforms.
    ///
    /// # Errors
    /// [`UsageError::TooManyRateQuotas`], or [`UsageError::TooManyRateKeys`] when a new key
    /// does not fit and no key is idle; nothing changes.
    pub fn check(
        &mut self,
        key: &RateKey,
        quota: RateQuota,
        now: Timestamp,
    ) -> Result<RateDecision, UsageError> {
        let now_ns = Nanos::from(now.as_ms().min(CLOCK_MS_MAX) * NS_PER_MS);
        if !self.quotas.contains_key(&quota) && self.quotas.len() >= RATE_QUOTAS_MAX {
            return Err(UsageError::TooManyRateQuotas(RATE_QUOTAS_MAX));
        }
        if self.keys >= self.keys_max && !self.holds(&quota, key) {
            self.prune(now_ns);
            if self.keys >= self.keys_max {
                return Err(UsageError::TooManyRateKeys(self.keys_max));
            }
        }
        let tats = self.quotas.entry(quota).or_default();
        let held = tats.get_mut().len();
        let limiter: Limiter<'_> =
            RateLimiter::new(quota.governor_quota(), StoreRef(tats), SetClock::default());
        limiter.clock().0.set(now_ns);
        let checked = limiter.check_key(key);
        let decision = match checked {
            Ok(()) => RateDecision::Allowed,
            Err(not_until) => {
                let wait = Nanos::from(not_until.wait_time_from(now_ns));
                RateDecision::Refused(RetryAfter::from_nanos(wait.as_u64()))
            }
        };
        self.keys += tats.get_mut().len() - held;
        Ok(decision)
    }

    fn holds(&self, quota: &RateQuota, key: &RateKey) -> bool {
        self.quotas.get(quota).is_some_and(|t| t.borrow().contains_key(key))
    }

    /// Drops every key whose TAT is not after `now_ns` (it decides as an absent key), and
    /// remembers when the next key becomes idle.
    fn prune(&mut self, now_ns: Nanos) {
        if now_ns.as_u64() < self.next_prune_ns {
            return;
        }
        let mut next = u64::MAX;
        let mut keys = 0;
        for tats in self.quotas.values_mut() {
            let map = tats.get_mut();
            map.retain(|_, tat| tat.as_u64() > now_ns.as_u64());
            keys += map.len();
            next = map.values().map(|t| t.as_u64()).fold(next, u64::min);
        }
        self.keys = keys;
        self.next_prune_ns = next;
    }
}

#[cfg(test)]
mod tests;
