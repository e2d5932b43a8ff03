//! GCRA: bursts, refusals with exact retry-after, refill, idle keys, bad quotas.

use super::{RateDecision, RateKey, RateLimits, RateQuota, RetryAfter};
use crate::UsageError;
use govern_governors::{TenantId, Timestamp};

fn key(tenant: &str, k: &str) -> RateKey {
    RateKey::new(TenantId::new(tenant).unwrap(), k).unwrap()
}

const T0: u64 = 1_767_225_600_000;

#[test]
fn a_burst_passes_then_the_next_is_refused_with_the_exact_retry_after() {
    let mut limits = RateLimits::new();
    // 10 per second (one every 100 ms), bursts of 5.
    let q = RateQuota::per_second(10, 5).unwrap();
    let k = key("acme", "api");
    for i in 0..5 {
        assert_eq!(limits.check(&k, q, Timestamp(T0)).unwrap(), RateDecision::Allowed, "{i}");
    }
    assert_eq!(
        limits.check(&k, q, Timestamp(T0)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: 100, secs: 1 })
    );
    // 40 ms later: 60 ms to go.
    assert_eq!(
        limits.check(&k, q, Timestamp(T0 + 40)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: 60, secs: 1 })
    );
    // Exactly at the retry-after: allowed, and the next is refused for a full interval.
    assert_eq!(limits.check(&k, q, Timestamp(T0 + 100)).unwrap(), RateDecision::Allowed);
    assert_eq!(
        limits.check(&k, q, Timestamp(T0 + 100)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: 100, secs: 1 })
    );
    // Refusals are not counted: after a full refill, a whole burst again.
    for _ in 0..5 {
        assert_eq!(limits.check(&k, q, Timestamp(T0 + 10_000)).unwrap(), RateDecision::Allowed);
    }
    assert!(matches!(
        limits.check(&k, q, Timestamp(T0 + 10_000)).unwrap(),
        RateDecision::Refused(_)
    ));
}

#[test]
fn slow_rates_round_the_retry_after_up_to_whole_seconds() {
    let mut limits = RateLimits::new();
    // 2 per minute: one every 30 s, no burst beyond 1.
    let q = RateQuota::new(2, 60_000, 1).unwrap();
    let k = key("acme", "export");
    assert_eq!(limits.check(&k, q, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert_eq!(
        limits.check(&k, q, Timestamp(T0 + 1)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: 29_999, secs: 30 })
    );
    assert_eq!(
        limits.check(&k, q, Timestamp(T0 + 29_001)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: 999, secs: 1 })
    );
    // 3 per second: the interval is 333 333 333 ns; the ms figure is rounded up.
    let q3 = RateQuota::per_second(3, 1).unwrap();
    assert_eq!(limits.check(&k, q3, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert_eq!(
        limits.check(&k, q3, Timestamp(T0)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: 334, secs: 1 })
    );
}

#[test]
fn keys_and_tenants_are_independent() {
    let mut limits = RateLimits::new();
    let q = RateQuota::per_second(1, 1).unwrap();
    assert_eq!(limits.check(&key("a", "x"), q, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert_eq!(limits.check(&key("b", "x"), q, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert_eq!(limits.check(&key("a", "y"), q, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert!(matches!(
        limits.check(&key("a", "x"), q, Timestamp(T0)).unwrap(),
        RateDecision::Refused(_)
    ));
    assert_eq!(limits.keys(), 3);
}

#[test]
fn the_same_calls_give_the_same_answers() {
    let run = || {
        let mut limits = RateLimits::new();
        let q = RateQuota::per_second(7, 3).unwrap();
        let k = key("acme", "api");
        (0..200u64)
            .map(|i| limits.check(&k, q, Timestamp(T0 + i * 37 % 1_000)).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn time_going_back_refuses_rather_than_panics() {
    let mut limits = RateLimits::new();
    let q = RateQuota::per_second(1, 1).unwrap();
    let k = key("acme", "api");
    assert_eq!(limits.check(&k, q, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert_eq!(
        limits.check(&k, q, Timestamp(T0 - 500)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: 1_500, secs: 2 })
    );
    // The ends of time.
    assert_eq!(
        limits.check(&k, q, Timestamp(0)).unwrap(),
        RateDecision::Refused(RetryAfter { ms: T0 + 1_000, secs: T0 / 1_000 + 1 })
    );
    assert_eq!(limits.check(&k, q, Timestamp(u64::MAX)).unwrap(), RateDecision::Allowed);
    assert!(matches!(limits.check(&k, q, Timestamp(u64::MAX)).unwrap(), RateDecision::Refused(_)));
}

#[test]
fn bad_quotas_and_keys_are_typed_errors() {
    assert!(matches!(RateQuota::per_second(0, 1), Err(UsageError::BadRateQuota(_))));
    assert!(matches!(RateQuota::per_second(1, 0), Err(UsageError::BadRateQuota(_))));
    assert!(matches!(RateQuota::new(1, 0, 1), Err(UsageError::BadRateQuota(_))));
    assert!(matches!(
        RateQuota::new(1, super::RATE_PERIOD_MS_MAX + 1, 1),
        Err(UsageError::BadRateQuota(_))
    ));
    assert!(matches!(RateQuota::new(u32::MAX, 1, 1), Err(UsageError::BadRateQuota(_))));
    assert!(matches!(
        RateQuota::new(1, super::RATE_PERIOD_MS_MAX, u32::MAX),
        Err(UsageError::BadRateQuota(_))
    ));
    let t = TenantId::new("acme").unwrap();
    assert_eq!(RateKey::new(t.clone(), ""), Err(UsageError::EmptyId { what: "rate key" }));
    assert!(matches!(
        RateKey::new(t, &"k".repeat(129)),
        Err(UsageError::IdTooLong { len: 129, .. })
    ));
}

#[test]
fn too_many_quotas_is_an_error_that_changes_nothing() {
    let mut limits = RateLimits::new();
    let k = key("acme", "api");
    for rate in 1..=super::RATE_QUOTAS_MAX as u32 {
        let q = RateQuota::per_second(rate, 1).unwrap();
        assert_eq!(limits.check(&k, q, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    }
    let extra = RateQuota::per_second(1_000, 1).unwrap();
    assert_eq!(limits.check(&k, extra, Timestamp(T0)), Err(UsageError::TooManyRateQuotas(64)));
    assert_eq!(limits.keys(), 64);
}

#[test]
fn idle_keys_are_pruned_exactly_when_the_key_table_is_full() {
    let mut limits = RateLimits::with_keys_max(3);
    let q = RateQuota::per_second(1, 1).unwrap();
    let slow = RateQuota::new(1, 10_000, 1).unwrap();
    // Three keys: two live for 1 s, one (under another quota) for 10 s.
    assert_eq!(limits.check(&key("a", "k1"), q, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert_eq!(
        limits.check(&key("a", "k2"), q, Timestamp(T0 + 500)).unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(limits.check(&key("a", "k3"), slow, Timestamp(T0)).unwrap(), RateDecision::Allowed);
    assert_eq!(limits.keys(), 3);
    // A fourth while all are live: refused, nothing changes.
    assert_eq!(
        limits.check(&key("a", "k4"), q, Timestamp(T0 + 999)),
        Err(UsageError::TooManyRateKeys(3))
    );
    assert_eq!(limits.keys(), 3);
    // Existing keys are still checked.
    assert!(matches!(
        limits.check(&key("a", "k1"), q, Timestamp(T0 + 999)).unwrap(),
        RateDecision::Refused(_)
    ));
    // At T0 + 1 000, k1's TAT is not after now: it is dropped (exactly: it would decide as new).
    assert_eq!(
        limits.check(&key("a", "k4"), q, Timestamp(T0 + 1_000)).unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(limits.keys(), 3);
    // k1 comes back as a new key: no room until k2 is idle at T0 + 1 500.
    assert_eq!(
        limits.check(&key("a", "k1"), q, Timestamp(T0 + 1_499)),
        Err(UsageError::TooManyRateKeys(3))
    );
    assert_eq!(
        limits.check(&key("a", "k1"), q, Timestamp(T0 + 1_500)).unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(limits.keys(), 3);
}

proptest::proptest! {
    /// Any quota, keys and times: no panic; a refusal's retry-after is exact to the ms (one
    /// ms earlier is still refused, at the retry-after the request conforms), and the same
    /// inputs give the same answers.
    #[test]
    fn retry_after_is_exact_and_nothing_panics(
        rate in 1u32..2_000,
        period_ms in 1u64..100_000,
        burst in 1u32..50,
        steps in proptest::collection::vec((0usize..3, 0u64..500), 1..200),
        start in proptest::prelude::any::<u64>(),
    ) {
        let Ok(q) = RateQuota::new(rate, period_ms, burst) else { return Ok(()) };
        let keys = [key("a", "x"), key("a", "y"), key("b", "x")];
        let run = |probe: bool| {
            let mut limits = RateLimits::new();
            let mut now = start % 10_000_000_000_000;
            let mut out = Vec::new();
            for (k, dt) in &steps {
                now += dt;
                let d = limits.check(&keys[*k], q, Timestamp(now)).unwrap();
                if let (true, RateDecision::Refused(r)) = (probe, d) {
                    assert!(r.ms >= 1 && r.secs * 1_000 >= r.ms && r.secs * 1_000 < r.ms + 1_000);
                    let early = limits.check(&keys[*k], q, Timestamp(now + r.ms - 1)).unwrap();
                    assert!(matches!(early, RateDecision::Refused(_)), "{early:?} at {} ms", r.ms - 1);
                    let on_time = limits.check(&keys[*k], q, Timestamp(now + r.ms)).unwrap();
                    assert_eq!(on_time, RateDecision::Allowed, "at the retry-after of {r:?}");
                    now += r.ms;
                }
                out.push(d);
            }
            out
        };
        proptest::prop_assert_eq!(run(false), run(false));
        let _ = run(true);
    }
}
