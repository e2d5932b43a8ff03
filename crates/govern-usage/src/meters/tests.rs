//! Meters: periods, thresholds once per period, duplicates, errors, batches and replay.

use super::{MeterConfig, Meters, Outcome, Recorded, Rollover, Threshold, Thresholds, UsageBatch};
use crate::{Dedup, EventId, MeterId, PeriodKey, Reset, UsageError, UsageEvent};
use govern_governors::days_from_civil;
use govern_governors::{DAY_MS, Timestamp};
use proptest::prelude::*;

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn ms(y: u64, m: u64, d: u64) -> u64 {
    days_from_civil(y, m, d).expect("a date from 1970") * DAY_MS
}

fn meter(name: &str) -> MeterId {
    MeterId::new(name).unwrap()
}

fn ev(meter: &str, q: u64, id: &str, at: u64) -> UsageEvent {
    UsageEvent::new(meter, q, id, Timestamp(at)).unwrap()
}

fn meters(reset: Reset, limit: Option<u64>) -> Meters {
    let mut m = Meters::new();
    m.define(meter("calls"), MeterConfig::new(reset, limit)).unwrap();
    m
}

fn counted(o: Outcome) -> Recorded {
    match o {
        Outcome::Counted(r) => r,
        Outcome::Duplicate => panic!("a duplicate"),
    }
}

#[test]
fn thresholds_are_reported_once_per_period_and_again_after_rollover() {
    let mut m = meters(Reset::Daily, Some(100));
    let day = T0 / DAY_MS;
    let r = counted(m.record(ev("calls", 74, "a", T0), Timestamp(T0)).unwrap());
    assert_eq!((r.value, r.period, r.crossed, r.rollover), (74, PeriodKey(day), &[][..], None));
    let r = counted(m.record(ev("calls", 1, "b", T0), Timestamp(T0)).unwrap());
    assert_eq!((r.value, r.crossed), (75, &[Threshold::Warning][..]));
    let r = counted(m.record(ev("calls", 1, "c", T0), Timestamp(T0)).unwrap());
    assert_eq!((r.value, r.crossed), (76, &[][..]));
    // One event over 90 % and 100 % at once reports both, lowest first.
    let r = counted(m.record(ev("calls", 30, "d", T0), Timestamp(T0)).unwrap());
    assert_eq!((r.value, r.crossed), (106, &[Threshold::Throttle, Threshold::Exceeded][..]));
    let r = counted(m.record(ev("calls", 30, "e", T0), Timestamp(T0)).unwrap());
    assert_eq!((r.value, r.crossed), (136, &[][..]));
    // The last millisecond of the day is the same period.
    let last = T0 + DAY_MS - 1;
    let r = counted(m.record(ev("calls", 1, "f", last), Timestamp(last)).unwrap());
    assert_eq!((r.value, r.period, r.rollover), (137, PeriodKey(day), None));
    // UTC midnight: a new period, the old one reported, thresholds armed again.
    let next = T0 + DAY_MS;
    let r = counted(m.record(ev("calls", 80, "g", next), Timestamp(next)).unwrap());
    assert_eq!(r.value, 80);
    assert_eq!(r.period, PeriodKey(day + 1));
    assert_eq!(r.rollover, Some(Rollover { period: PeriodKey(day), value: 137 }));
    assert_eq!(r.crossed, &[Threshold::Warning][..]);
}

#[test]
fn monthly_meters_roll_over_at_the_end_of_february_in_a_leap_year() {
    let mut m = meters(Reset::Monthly, Some(10));
    let feb = ms(2024, 2, 1);
    let last = ms(2024, 3, 1) - 1; // 2024-02-29T23:59:59.999Z
    counted(m.record(ev("calls", 3, "a", feb), Timestamp(feb)).unwrap());
    let r = counted(m.record(ev("calls", 4, "b", last), Timestamp(last)).unwrap());
    assert_eq!((r.value, r.rollover), (7, None));
    let mar = ms(2024, 3, 1);
    let r = counted(m.record(ev("calls", 1, "c", mar), Timestamp(mar)).unwrap());
    assert_eq!(r.value, 1);
    assert_eq!(r.rollover, Some(Rollover { period: Reset::Monthly.key(Timestamp(feb)), value: 7 }));
    assert_eq!(Reset::Monthly.start(r.period), Timestamp(mar));
    // Reading a month later (no event) shows zero without changing anything.
    let apr = ms(2024, 4, 1);
    let v = m.value(&meter("calls"), Timestamp(apr)).unwrap();
    assert_eq!((v.value, v.period), (0, Some(Reset::Monthly.key(Timestamp(apr)))));
    assert_eq!(m.value(&meter("calls"), Timestamp(mar)).unwrap().value, 1);
}

#[test]
fn never_resetting_meters_keep_counting() {
    let mut m = meters(Reset::Never, None);
    counted(m.record(ev("calls", 5, "a", T0), Timestamp(T0)).unwrap());
    let later = T0 + 400 * DAY_MS;
    let r = counted(m.record(ev("calls", 5, "b", later), Timestamp(later)).unwrap());
    assert_eq!((r.value, r.period, r.rollover, r.crossed), (10, PeriodKey(0), None, &[][..]));
}

#[test]
fn rolling_windows_slide_bucket_by_bucket_and_rearm_thresholds() {
    // One minute in six 10 s buckets, limit 10.
    let mut m = meters(Reset::Rolling { window_ms: 60_000, buckets: 6 }, Some(10));
    let t = T0;
    let r = counted(m.record(ev("calls", 8, "a", t), Timestamp(t)).unwrap());
    assert_eq!((r.value, r.crossed), (8, &[Threshold::Warning][..]));
    let r = counted(m.record(ev("calls", 2, "b", t + 10_000), Timestamp(t + 10_000)).unwrap());
    assert_eq!((r.value, r.crossed), (10, &[Threshold::Throttle, Threshold::Exceeded][..]));
    // Still inside the window one ms before the first bucket leaves.
    assert_eq!(m.value(&meter("calls"), Timestamp(t + 59_999)).unwrap().value, 10);
    // The first bucket leaves at t + 60 s: 2 remain; the level fell, so crossing again is
    // reported again.
    let v = m.value(&meter("calls"), Timestamp(t + 60_000)).unwrap();
    assert_eq!((v.value, v.level), (2, None));
    let r = counted(m.record(ev("calls", 6, "c", t + 60_000), Timestamp(t + 60_000)).unwrap());
    assert_eq!((r.value, r.crossed, r.rollover), (8, &[Threshold::Warning][..], None));
    // Far later everything has left.
    let r =
        counted(m.record(ev("calls", 1, "d", t + 3_600_000), Timestamp(t + 3_600_000)).unwrap());
    assert_eq!(r.value, 1);
}

#[test]
fn a_duplicate_changes_nothing() {
    let mut m = meters(Reset::Daily, Some(100));
    counted(m.record(ev("calls", 80, "a", T0), Timestamp(T0)).unwrap());
    assert_eq!(m.record(ev("calls", 80, "a", T0), Timestamp(T0 + 5)).unwrap(), Outcome::Duplicate);
    // Even with another quantity, and even in the next period.
    assert_eq!(
        m.record(ev("calls", 1, "a", T0), Timestamp(T0 + DAY_MS)).unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(m.value(&meter("calls"), Timestamp(T0)).unwrap().value, 80);
    assert_eq!(m.dedup().len(), 1);
}

#[test]
fn bad_events_are_typed_errors_that_change_nothing() {
    let mut m = meters(Reset::Daily, Some(100));
    let now = Timestamp(T0);
    let skew = crate::EVENT_FUTURE_SKEW_MS;
    assert_eq!(
        m.record(ev("calls", 1, "f", T0 + skew + 1), now),
        Err(UsageError::EventInFuture { at: Timestamp(T0 + skew + 1), now, skew_ms: skew })
    );
    counted(m.record(ev("calls", 1, "edge", T0 + skew), now).unwrap());
    let window = crate::DEDUP_WINDOW_MS;
    assert_eq!(
        m.record(ev("calls", 1, "old", T0 - window - 1), now),
        Err(UsageError::EventTooOld { at: Timestamp(T0 - window - 1), now, window_ms: window })
    );
    counted(m.record(ev("calls", 1, "oldest", T0 - window), now).unwrap());
    let mut zero = ev("calls", 1, "z", T0);
    zero.quantity = 0;
    assert_eq!(m.record(zero, now), Err(UsageError::ZeroQuantity));
    assert_eq!(
        m.record(ev("storage", 1, "s", T0), now),
        Err(UsageError::UnknownMeter("storage".into()))
    );
    assert_eq!(
        m.record(ev("calls", u64::MAX, "big", T0), now),
        Err(UsageError::CounterOverflow("calls".into()))
    );
    assert_eq!(m.value(&meter("calls"), now).unwrap().value, 2);
    assert_eq!(m.dedup().len(), 2);
    // The refused ids were not remembered.
    counted(m.record(ev("calls", 1, "big", T0), now).unwrap());
}

#[test]
fn bad_ids_and_quantities_are_typed_errors() {
    let at = Timestamp(T0);
    assert_eq!(UsageEvent::new("", 1, "a", at), Err(UsageError::EmptyId { what: "meter id" }));
    assert_eq!(UsageEvent::new("m", 1, "", at), Err(UsageError::EmptyId { what: "event id" }));
    assert_eq!(
        UsageEvent::new("m", 1, &"x".repeat(129), at),
        Err(UsageError::IdTooLong { what: "event id", len: 129, max: 128 })
    );
    assert!(UsageEvent::new("m", 1, &"x".repeat(128), at).is_ok());
    assert_eq!(
        UsageEvent::new("m", 1, "a\nb", at),
        Err(UsageError::IdControlChar { what: "event id" })
    );
    assert_eq!(UsageEvent::new("m", 0, "a", at), Err(UsageError::ZeroQuantity));
    assert_eq!(crate::quantity_from_i64(-3), Err(UsageError::NegativeQuantity(-3)));
    assert_eq!(crate::quantity_from_i64(0), Err(UsageError::ZeroQuantity));
    assert_eq!(crate::quantity_from_i64(7), Ok(7));
    assert_eq!(crate::quantity_from_str("12"), Ok(12));
    assert_eq!(crate::quantity_from_str("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(crate::quantity_from_str("-3"), Err(UsageError::NegativeQuantity(-3)));
    assert_eq!(crate::quantity_from_str("0"), Err(UsageError::ZeroQuantity));
    assert_eq!(crate::quantity_from_str("1.5"), Err(UsageError::NotWholeQuantity("1.5".into())));
    assert_eq!(crate::quantity_from_str("1e3"), Err(UsageError::NotWholeQuantity("1e3".into())));
}

#[test]
fn bad_meter_configs_are_refused() {
    let mut m = Meters::new();
    let bad = |problem| Err(UsageError::BadMeterConfig { meter: "m".into(), problem });
    assert_eq!(
        m.define(meter("m"), MeterConfig::new(Reset::Daily, Some(0))),
        bad("a limit must be greater than zero")
    );
    let mut c = MeterConfig::new(Reset::Daily, Some(10));
    c.thresholds = Thresholds { warning_bps: 9_000, throttle_bps: 9_000, exceeded_bps: 10_000 };
    assert_eq!(
        m.define(meter("m"), c),
        bad("thresholds must increase: warning < throttle < exceeded")
    );
    c.thresholds = Thresholds { warning_bps: 0, throttle_bps: 1, exceeded_bps: 2 };
    assert_eq!(m.define(meter("m"), c), bad("the warning threshold must be above 0"));
    for i in 0..super::METERS_MAX {
        m.define(meter(&format!("m{i}")), MeterConfig::new(Reset::Never, None)).unwrap();
    }
    assert_eq!(
        m.define(meter("one_more"), MeterConfig::new(Reset::Never, None)),
        Err(UsageError::TooManyMeters(super::METERS_MAX))
    );
}

#[test]
fn custom_thresholds_and_a_raised_limit_rearm() {
    let mut m = Meters::new();
    let mut c = MeterConfig::new(Reset::Never, Some(100));
    c.thresholds = Thresholds { warning_bps: 5_000, throttle_bps: 8_000, exceeded_bps: 12_000 };
    m.define(meter("calls"), c).unwrap();
    let r = counted(m.record(ev("calls", 50, "a", T0), Timestamp(T0)).unwrap());
    assert_eq!(r.crossed, &[Threshold::Warning][..]);
    let r = counted(m.record(ev("calls", 50, "b", T0), Timestamp(T0)).unwrap());
    assert_eq!(r.crossed, &[Threshold::Throttle][..]);
    let r = counted(m.record(ev("calls", 20, "c", T0), Timestamp(T0)).unwrap());
    assert_eq!((r.value, r.crossed), (120, &[Threshold::Exceeded][..]));
    // The plan doubles the limit: 120 of 200 is 60 %, so throttle and exceeded re-arm.
    c.limit = Some(200);
    m.define(meter("calls"), c).unwrap();
    let r = counted(m.record(ev("calls", 40, "d", T0), Timestamp(T0)).unwrap());
    assert_eq!((r.value, r.crossed), (160, &[Threshold::Throttle][..]));
}

#[test]
fn a_batch_replays_into_the_same_counters_and_dedup_and_only_once() {
    let mut live = meters(Reset::Daily, Some(100));
    let mut batch = UsageBatch::new(meter("calls"), Reset::Daily.key(Timestamp(T0)));
    for (i, q) in [10u64, 20, 50].into_iter().enumerate() {
        let e = ev("calls", q, &format!("e{i}"), T0 + i as u64);
        counted(live.record(e.clone(), Timestamp(T0 + i as u64)).unwrap());
        batch.push(&e).unwrap();
    }
    assert_eq!((batch.total, batch.count), (80, 3));
    let json = serde_json::to_string(&batch).unwrap();
    assert_eq!(
        json,
        r#"{"meter":"calls","period":20454,"total":80,"count":3,"events":[{"id":"e0","at_ms":1767225600000},{"id":"e1","at_ms":1767225600001},{"id":"e2","at_ms":1767225600002}]}"#
    );
    let back: UsageBatch = serde_json::from_str(&json).unwrap();
    let mut rebuilt = meters(Reset::Daily, Some(100));
    let r = rebuilt.apply_batch(&back).unwrap();
    assert_eq!((r.value, r.crossed), (80, &[Threshold::Warning][..]));
    assert_eq!(rebuilt.snapshot(Timestamp(T0)), live.snapshot(Timestamp(T0)));
    assert!(rebuilt.dedup().contains(&EventId::new("e1").unwrap()));
    assert_eq!(
        rebuilt.record(ev("calls", 1, "e1", T0), Timestamp(T0)).unwrap(),
        Outcome::Duplicate
    );
    // The same batch twice is refused.
    assert_eq!(
        rebuilt.apply_batch(&back),
        Err(UsageError::BadBatch {
            meter: "calls".into(),
            problem: "an event id in it is already counted"
        })
    );
    // An older period after a newer one is refused.
    let mut newer = back.clone();
    newer.period = PeriodKey(back.period.0 + 1);
    newer.events = vec![super::BatchEvent { id: EventId::new("n").unwrap(), at: Timestamp(T0) }];
    newer.count = 1;
    rebuilt.apply_batch(&newer).unwrap();
    let mut older = newer.clone();
    older.period = back.period;
    older.events[0].id = EventId::new("o").unwrap();
    assert!(matches!(rebuilt.apply_batch(&older), Err(UsageError::StaleBatch { .. })));
    // Inconsistent records.
    let mut lying = newer.clone();
    lying.count = 2;
    assert!(matches!(rebuilt.apply_batch(&lying), Err(UsageError::BadBatch { .. })));
    let mut bad_json = json.replace("\"e1\"", "\"\"");
    assert!(serde_json::from_str::<UsageBatch>(&bad_json).is_err());
    bad_json = json.replace("\"e1\",\"at_ms\":1767225600001", "\"e0\",\"at_ms\":1767225600000");
    let twice: UsageBatch = serde_json::from_str(&bad_json).unwrap();
    assert_eq!(
        meters(Reset::Daily, None).apply_batch(&twice),
        Err(UsageError::BadBatch { meter: "calls".into(), problem: "an event appears twice" })
    );
}

/// A reset for the properties: each kind, with short rolling windows.
fn any_reset() -> impl Strategy<Value = Reset> {
    prop_oneof![
        Just(Reset::Never),
        Just(Reset::Daily),
        Just(Reset::Monthly),
        (1u32..8, 1u64..5_000)
            .prop_map(|(b, w)| Reset::Rolling { window_ms: w * u64::from(b), buckets: b }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Recording events and replaying the batches made from them give the same counters and
    /// remember the same ids; duplicates and errors never reach a batch.
    #[test]
    fn replaying_batches_rebuilds_the_counters(
        resets in proptest::collection::vec(any_reset(), 1..4),
        limit in proptest::option::of(1u64..500),
        steps in proptest::collection::vec((0usize..4, 1u64..50, 0u64..60, 0u64..3_000_000, -400_000i64..400_000), 1..120),
    ) {
        let config = |r| MeterConfig::new(r, limit);
        let mut live = Meters::with_dedup(Dedup::new(crate::DEDUP_WINDOW_MS, 10_000));
        let mut rebuilt = Meters::with_dedup(Dedup::new(crate::DEDUP_WINDOW_MS, 10_000));
        for (i, r) in resets.iter().enumerate() {
            live.define(meter(&format!("m{i}")), config(*r)).unwrap();
            rebuilt.define(meter(&format!("m{i}")), config(*r)).unwrap();
        }
        let mut batches: Vec<UsageBatch> = Vec::new();
        // The open batch of each meter, as an index into `batches`.
        let mut open: Vec<Option<usize>> = vec![None; resets.len()];
        let mut now = T0 - 3 * DAY_MS;
        for (m, q, id, dt, skew) in steps {
            now += dt;
            let m = m % (resets.len() + 1); // one in a few is an unknown meter
            let at = now.saturating_add_signed(skew);
            let e = ev(&format!("m{m}"), q, &format!("id{id}"), at);
            match live.record(e.clone(), Timestamp(now)) {
                Ok(Outcome::Counted(r)) => {
                    let b = match open[m] {
                        Some(b) if batches[b].accepts(&e.meter, &r) => b,
                        _ => {
                            batches.push(UsageBatch::new(e.meter.clone(), r.period));
                            open[m] = Some(batches.len() - 1);
                            batches.len() - 1
                        }
                    };
                    batches[b].push(&e).unwrap();
                }
                Ok(Outcome::Duplicate) | Err(_) => {}
            }
        }
        for b in &batches {
            rebuilt.apply_batch(b).unwrap();
        }
        prop_assert_eq!(rebuilt.snapshot(Timestamp(now)), live.snapshot(Timestamp(now)));
        // Every id decides the same way in both, now and later.
        for (id, at) in rebuilt.dedup().ids() {
            for t in [now, now + DAY_MS / 2, now + 2 * DAY_MS] {
                prop_assert_eq!(live.dedup().is_duplicate(id, Timestamp(t)), rebuilt.dedup().is_duplicate(id, Timestamp(t)));
            }
            if let Some(live_at) = live.dedup().at(id) {
                prop_assert_eq!(live_at, at);
            }
        }
    }

    /// Any sequence of events and times, including nonsense, gives values or typed errors,
    /// never a panic, and a meter's value never exceeds the sum of what it counted.
    #[test]
    fn no_input_panics(
        reset in any_reset(),
        limit in proptest::option::of(1u64..u64::MAX),
        steps in proptest::collection::vec((any::<u64>(), any::<u64>(), 0u64..20, any::<u64>()), 1..60),
    ) {
        let mut m = Meters::with_dedup(Dedup::new(1_000, 8));
        m.define(meter("x"), MeterConfig::new(reset, limit)).unwrap();
        for (q, at, id, now) in steps {
            let e = UsageEvent { meter: meter("x"), quantity: q, event_id: EventId::new(format!("{id}")).unwrap(), at: Timestamp(at) };
            let _ = m.record(e, Timestamp(now));
            let _ = m.value(&meter("x"), Timestamp(now));
        }
        prop_assert!(m.dedup().len() <= 8);
    }
}
