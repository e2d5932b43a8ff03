//! The monitor on virtual time: violations and recoveries on each dimension, no flapping on
//! one bad bucket, no data, late samples, long gaps, restored violations, the trend; the
//! histogram's p99 within its bound of the exact one and windows sliding exactly (properties).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;

const PROMISE: Promise = Promise {
    throughput_rps: 10,
    p99_latency_ms: 100,
    error_rate_max: Decimal::from_parts(1, 0, 0, false, 2),
};
/// Some time well past the epoch, bucket-aligned.
const T0: u64 = 1_767_225_600_000;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Fills bucket `b` (counted from `T0`) with `n` requests of `latency_ms`, `errors` of them
/// failed; returns the edges made.
fn fill(m: &mut Monitor, b: u64, n: u64, latency_ms: u64, errors: u64) -> Vec<Edge> {
    let mut edges = Vec::new();
    for i in 0..n {
        let at = T0 + b * BUCKET_MS + i * (BUCKET_MS / n.max(1));
        edges.extend(m.record(at, latency_ms * 1_000, i >= errors, &PROMISE).unwrap());
    }
    edges
}

/// Judges every bucket before bucket `b`.
fn at(m: &mut Monitor, b: u64) -> Vec<Edge> {
    m.advance(T0 + b * BUCKET_MS, &PROMISE)
}

fn events(edges: &[Edge]) -> Vec<(&'static str, &'static str)> {
    edges.iter().map(|e| (e.event.name(), e.dimension.name())).collect()
}

#[test]
fn latency_over_for_three_buckets_is_a_violation_and_three_within_a_recovery() {
    let mut m = Monitor::new();
    let mut edges = Vec::new();
    for b in 0..3 {
        edges.extend(fill(&mut m, b, 20, 150, 0));
    }
    // Two buckets judged over: not yet.
    assert!(edges.is_empty(), "{edges:?}");
    let edges = at(&mut m, 3);
    assert_eq!(events(&edges), [("violated", "p99_latency")]);
    let e = &edges[0];
    assert_eq!(
        (e.measured, e.promised),
        (Some(dec("163.839")), dec("100")),
        "150 ms in the bucket up to 163.839 ms"
    );
    assert_eq!((e.window_start_ms, e.window_ms), (T0, 30_000));
    let s = m.status(&PROMISE);
    assert_eq!(s.compliance, Compliance::Violating);
    assert_eq!(s.violations.len(), 1);
    assert_eq!(s.violations[0].dimension, Dimension::P99Latency);
    assert_eq!(s.violations[0].since_ms, T0 + 30_000);
    // Within for two buckets: still violating; the third recovers.
    let mut edges = Vec::new();
    for b in 3..6 {
        edges.extend(fill(&mut m, b, 20, 20, 0));
    }
    assert!(edges.is_empty(), "{edges:?}");
    let edges = at(&mut m, 6);
    assert_eq!(events(&edges), [("recovered", "p99_latency")]);
    assert_eq!(edges[0].measured, Some(dec("20.479")));
    assert_eq!(m.status(&PROMISE).compliance, Compliance::Compliant);
}

#[test]
fn errors_over_the_rate_are_a_violation() {
    let mut m = Monitor::new();
    for b in 0..3 {
        // 2 of 50: 4 % > 1 %.
        fill(&mut m, b, 50, 5, 2);
    }
    let edges = at(&mut m, 3);
    assert_eq!(events(&edges), [("violated", "error_rate")]);
    assert_eq!((edges[0].measured, edges[0].promised), (Some(dec("0.04")), dec("0.01")));
    // Exactly at the rate (1 of 100) is within.
    for b in 3..6 {
        fill(&mut m, b, 100, 5, 1);
    }
    assert_eq!(events(&at(&mut m, 6)), [("recovered", "error_rate")]);
}

#[test]
fn throughput_above_the_plan_is_a_violation() {
    let mut m = Monitor::new();
    // 101 requests in 10 s is 10.1/s > 10/s; 100 is exactly the promise.
    fill(&mut m, 0, 100, 5, 0);
    assert!(at(&mut m, 1).is_empty());
    for b in 1..4 {
        fill(&mut m, b, 101, 5, 0);
    }
    let edges = at(&mut m, 4);
    assert_eq!(events(&edges), [("violated", "throughput")]);
    assert_eq!((edges[0].measured, edges[0].promised), (Some(dec("10.1")), dec("10")));
    let s = m.status(&PROMISE);
    assert_eq!(s.window.requests, 403);
    assert_eq!(s.window.throughput_rps, dec("6.717"));
}

#[test]
fn one_bad_bucket_or_two_never_flap() {
    let mut m = Monitor::new();
    let mut edges = Vec::new();
    // Bad, good, bad, bad, good, ...: never three bad in a row.
    for (b, latency) in [500, 5, 500, 500, 5, 500, 5, 5, 500, 500, 5].into_iter().enumerate() {
        edges.extend(fill(&mut m, b as u64, 20, latency, 0));
    }
    edges.extend(at(&mut m, 11));
    assert!(edges.is_empty(), "{edges:?}");
    assert_eq!(m.status(&PROMISE).compliance, Compliance::Compliant);
}

#[test]
fn few_requests_do_not_judge_latency_or_errors_and_no_requests_is_no_data() {
    let mut m = Monitor::new();
    assert_eq!(m.status(&PROMISE).compliance, Compliance::NoData);
    for b in 0..5 {
        // 9 slow failures a bucket: under SAMPLES_MIN.
        fill(&mut m, b, SAMPLES_MIN - 1, 900, SAMPLES_MIN - 1);
    }
    assert!(at(&mut m, 5).is_empty());
    let s = m.status(&PROMISE);
    assert_eq!(s.compliance, Compliance::Compliant);
    assert_eq!(s.window.error_rate, Some(Decimal::ONE));
    // A minute later the window is empty.
    assert!(at(&mut m, 11).is_empty());
    let s = m.status(&PROMISE);
    assert_eq!(s.compliance, Compliance::NoData);
    assert_eq!((s.window.requests, s.window.p99_latency_ms), (0, None));
}

#[test]
fn late_samples_and_bad_reports_are_refused() {
    let mut m = Monitor::new();
    fill(&mut m, 2, 1, 5, 0);
    let late = m.record(T0 + BUCKET_MS, 1, true, &PROMISE).unwrap_err();
    assert_eq!(
        late,
        SlaError::Late { at_ms: T0 + BUCKET_MS, current_start_ms: T0 + 2 * BUCKET_MS }
    );
    let mut bad = Aggregate::default();
    bad.latency.record(5);
    bad.errors = 2;
    assert_eq!(
        m.report(T0 + 2 * BUCKET_MS, &bad, &PROMISE).unwrap_err(),
        SlaError::ErrorsExceedRequests { errors: 2, requests: 1 }
    );
    // A good report counts like samples.
    let mut agg = Aggregate::default();
    for _ in 0..30 {
        agg.record(2_000, false);
    }
    for b in 3..6 {
        m.report(T0 + b * BUCKET_MS, &agg, &PROMISE).unwrap();
    }
    assert_eq!(events(&at(&mut m, 6)), [("violated", "error_rate")]);
}

#[test]
fn a_long_gap_recovers_and_empties_the_trend_in_bounded_steps() {
    let mut m = Monitor::new();
    let mut edges = Vec::new();
    for b in 0..12 {
        edges.extend(fill(&mut m, b, 20, 500, 0));
    }
    edges.extend(at(&mut m, 12));
    assert_eq!(events(&edges), [("violated", "p99_latency")]);
    assert_eq!(m.status(&PROMISE).trend.windows.len(), 2);
    // A year later: recovered by quiet, at the third empty bucket after the data.
    let later = 12 + 365 * 8_640;
    let edges = at(&mut m, later);
    assert_eq!(events(&edges), [("recovered", "p99_latency")]);
    assert_eq!((edges[0].measured, edges[0].window_start_ms), (None, T0 + 12 * BUCKET_MS));
    let s = m.status(&PROMISE);
    assert_eq!(s.compliance, Compliance::NoData);
    assert_eq!(s.trend.windows.len(), TREND_WINDOWS);
    let last = s.trend.windows.last().unwrap();
    assert_eq!(last.requests, 0);
    assert!(last.start_ms + WINDOW_MS <= T0 + later * BUCKET_MS);
    assert!(last.start_ms + 2 * WINDOW_MS > T0 + later * BUCKET_MS);
}

#[test]
fn a_restored_violation_recovers_as_an_edge() {
    let mut m = Monitor::new();
    m.restore(Violation {
        dimension: Dimension::ErrorRate,
        measured: Some(dec("0.5")),
        promised: dec("0.01"),
        since_ms: T0,
    });
    assert_eq!(m.status(&PROMISE).compliance, Compliance::Violating);
    fill(&mut m, 0, 20, 5, 0);
    assert_eq!(events(&at(&mut m, 3)), [("recovered", "error_rate")]);
}

#[test]
fn the_trend_compares_the_last_two_minute_windows() {
    let mut m = Monitor::new();
    for b in 0..6 {
        fill(&mut m, b, 20, 40, 0);
    }
    for b in 6..12 {
        fill(&mut m, b, 20, 80, 1);
    }
    at(&mut m, 12);
    let t = m.status(&PROMISE).trend;
    assert_eq!(t.windows.len(), 2);
    assert_eq!(t.windows[0].start_ms, T0);
    assert_eq!(t.windows[1].start_ms, T0 + WINDOW_MS);
    assert_eq!((t.p99_latency, t.error_rate), (Direction::Worsening, Direction::Worsening));
    // 81 ms is in 80 ms's histogram bucket.
    for b in 12..18 {
        fill(&mut m, b, 20, 81, 0);
    }
    at(&mut m, 18);
    let t = m.status(&PROMISE).trend;
    assert_eq!((t.p99_latency, t.error_rate), (Direction::Steady, Direction::Improving));
}

#[test]
fn promises_of_several_plans_take_the_most_generous_of_each() {
    let e = |rps, p99, rate: &str| Envelope {
        throughput_rps: rps,
        p99_latency_ms: p99,
        connections: 1,
        queue_depth: 1,
        error_rate_max: dec(rate),
    };
    let p = Promise::of(&[e(10, 200, "0.02"), e(50, 300, "0.01")]).unwrap();
    assert_eq!((p.throughput_rps, p.p99_latency_ms, p.error_rate_max), (50, 200, dec("0.01")));
    assert_eq!(Promise::of(&[]), None);
}

/// The nearest-rank p99 of `v`.
fn exact_p99(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    let rank = (v.len() * 99).div_ceil(100).max(1);
    v[rank - 1]
}

proptest! {
    #[test]
    fn the_p99_is_never_below_the_exact_one_nor_an_eighth_above(
        latencies in prop::collection::vec(0..=LATENCY_US_MAX, 1..2_000),
    ) {
        let mut h = LatencyHistogram::new();
        for &l in &latencies {
            h.record(l);
        }
        let mut v = latencies.clone();
        let exact = exact_p99(&mut v);
        let estimate = h.p99_us().unwrap();
        prop_assert!(estimate >= exact, "{estimate} < {exact}");
        prop_assert!(
            u128::from(estimate) * u128::from(P99_ERROR_DENOMINATOR)
                < u128::from(exact) * u128::from(P99_ERROR_DENOMINATOR + P99_ERROR_NUMERATOR)
                || estimate == exact,
            "{estimate} vs {exact}"
        );
    }

    #[test]
    fn the_window_holds_exactly_the_samples_of_the_last_six_judged_buckets(
        offsets in prop::collection::vec((0..600_000_u64, any::<bool>()), 1..300),
        now in 0..700_000_u64,
    ) {
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        let mut m = Monitor::new();
        let mut counted = Vec::new();
        for &(off, ok) in &sorted {
            if off > now {
                break;
            }
            m.record(T0 + off, 1_000, ok, &PROMISE).unwrap();
            counted.push((off, ok));
        }
        m.advance(T0 + now, &PROMISE);
        let s = m.status(&PROMISE);
        if counted.is_empty() {
            prop_assert_eq!(s.window.requests, 0);
        } else {
            let current = (T0 + now) / BUCKET_MS;
            let in_window = |off: u64| {
                let b = (T0 + off) / BUCKET_MS;
                b < current && b + WINDOW_BUCKETS as u64 >= current
            };
            let n = counted.iter().filter(|(off, _)| in_window(*off)).count() as u64;
            let errors = counted.iter().filter(|(off, ok)| in_window(*off) && !ok).count() as u64;
            prop_assert_eq!((s.window.requests, s.window.errors), (n, errors));
            prop_assert_eq!(s.window.start_ms, current * BUCKET_MS - WINDOW_MS);
            // Each trend window holds exactly its minute's samples.
            for w in &s.trend.windows {
                let n = counted
                    .iter()
                    .filter(|(off, _)| (w.start_ms..w.start_ms + WINDOW_MS).contains(&(T0 + off)))
                    .count() as u64;
                prop_assert_eq!(w.requests, n);
                prop_assert_eq!(w.start_ms % WINDOW_MS, 0);
            }
        }
    }
}
