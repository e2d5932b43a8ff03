//! Period keys at exact UTC boundaries.

use super::{PeriodKey, Reset, civil_from_days};
use govern_governors::days_from_civil;
use govern_governors::{DAY_MS, Timestamp};

/// 2026-01-01T00:00:00Z in ms.
const JAN_2026: u64 = 1_767_225_600_000;

fn ms(y: u64, m: u64, d: u64) -> u64 {
    days_from_civil(y, m, d).expect("a date from 1970") * DAY_MS
}

#[test]
fn civil_round_trips() {
    assert_eq!(ms(2026, 1, 1), JAN_2026);
    assert_eq!(civil_from_days(ms(2024, 2, 29) / DAY_MS), (2024, 2, 29));
    assert_eq!(ms(1970, 1, 1), 0);
}

#[test]
fn daily_rolls_exactly_at_utc_midnight() {
    let r = Reset::Daily;
    assert_eq!(r.key(Timestamp(JAN_2026 - 1)), PeriodKey(JAN_2026 / DAY_MS - 1));
    assert_eq!(r.key(Timestamp(JAN_2026)), PeriodKey(JAN_2026 / DAY_MS));
    assert_eq!(r.start(PeriodKey(JAN_2026 / DAY_MS)), Timestamp(JAN_2026));
}

#[test]
fn monthly_rolls_at_month_ends_including_february() {
    let r = Reset::Monthly;
    // 2026-01 is month 672 since 1970-01.
    assert_eq!(r.key(Timestamp(JAN_2026)), PeriodKey(672));
    assert_eq!(r.key(Timestamp(JAN_2026 - 1)), PeriodKey(671));
    // February 2024 (leap): the 29th is still February, March 1st is not.
    let feb29 = ms(2024, 2, 29);
    let mar1 = ms(2024, 3, 1);
    assert_eq!(mar1 - feb29, DAY_MS);
    assert_eq!(r.key(Timestamp(feb29 + DAY_MS - 1)), r.key(Timestamp(ms(2024, 2, 1))));
    assert_eq!(r.key(Timestamp(mar1)).0, r.key(Timestamp(feb29)).0 + 1);
    // February 2026 (not leap): 28 days.
    assert_eq!(ms(2026, 3, 1) - ms(2026, 2, 1), 28 * DAY_MS);
    assert_eq!(r.key(Timestamp(ms(2026, 3, 1) - 1)), r.key(Timestamp(ms(2026, 2, 1))));
    assert_eq!(r.start(r.key(Timestamp(ms(2026, 2, 14) + 5))), Timestamp(ms(2026, 2, 1)));
    assert_eq!(r.start(PeriodKey(673)), Timestamp(ms(2026, 2, 1)));
    // 2100 is not a leap year, 2000 was.
    assert_eq!(ms(2100, 3, 1) - ms(2100, 2, 1), 28 * DAY_MS);
    assert_eq!(ms(2000, 3, 1) - ms(2000, 2, 1), 29 * DAY_MS);
    // December to January.
    assert_eq!(r.key(Timestamp(ms(2027, 1, 1))).0, r.key(Timestamp(ms(2026, 12, 31))).0 + 1);
}

#[test]
fn rolling_buckets_and_bad_parameters() {
    let r = Reset::Rolling { window_ms: 60_000, buckets: 60 };
    assert_eq!(r.problem(), None);
    assert_eq!(r.key(Timestamp(999)), PeriodKey(0));
    assert_eq!(r.key(Timestamp(1_000)), PeriodKey(1));
    assert_eq!(r.start(PeriodKey(5)), Timestamp(5_000));
    assert!(Reset::Rolling { window_ms: 60_000, buckets: 0 }.problem().is_some());
    assert!(Reset::Rolling { window_ms: 0, buckets: 1 }.problem().is_some());
    assert!(Reset::Rolling { window_ms: 10, buckets: 3 }.problem().is_some());
    assert!(Reset::Rolling { window_ms: 1_000_000, buckets: 2_000 }.problem().is_some());
    assert_eq!(Reset::Never.key(Timestamp(u64::MAX)), PeriodKey(0));
    // The end of time does not panic.
    let _ = Reset::Monthly.key(Timestamp(u64::MAX));
    let _ = Reset::Monthly.start(PeriodKey(u64::MAX));
}
