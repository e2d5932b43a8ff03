//! Quota walks: escalation to remediation and back, levels at their boundaries, guards.

use proptest::prelude::*;

use super::{
    Command as C, EXCEEDED_BPS, Level, Quota, Resource, State, THROTTLE_BPS, WARNING_BPS, level,
    usage_bps,
};
use crate::args::{ArgError, ArgProblem, Args, CommandSpec};
use crate::graph::explore;
use crate::testing::{T0_MS, assert_round_trip, transcript};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{Governor, StateSpec};

fn check(usage: u64) -> C {
    C::CheckQuota { resource: Resource::ApiCalls, usage, limit: 100 }
}

fn args(pairs: &[(&str, &str)]) -> Args {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A quota driven to `remediation` (limit 100) with `usage` as the last recorded usage.
fn in_remediation(usage: u64) -> Quota {
    let mut q = Quota::default();
    for c in [check(100), C::StartRemediation, check(usage)] {
        q.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
    }
    assert_eq!(q.state(), State::Remediation);
    q
}

#[test]
fn escalation_to_remediation_and_back_to_normal() {
    let mut q = Quota::default();
    let steps = [
        (0, check(10)),
        (1, C::SendWarning),
        (2, C::ThrottleTraffic),
        (3, C::MarkExceeded),
        (4, C::DegradeMode),
        (5, C::StartRemediation),
        (6, check(120)),
        (7, C::RestoreResources { limit: Some(200) }),
        (8, C::ResumeNormal),
    ];
    assert_eq!(
        transcript(&mut q, &steps),
        "normal --check_quota--> normal
normal --send_warning--> warning
warning --throttle_traffic--> throttled
throttled --mark_exceeded--> exceeded
exceeded --degrade_mode--> degraded_mode
degraded_mode --start_remediation--> remediation
remediation --check_quota--> remediation
remediation --restore_resources--> restored
restored --resume_normal--> normal
"
    );
    assert_eq!(q.resource(), Some(Resource::ApiCalls));
    assert_eq!(q.usage(), Some(120));
    assert_eq!(q.limit(), Some(200));
    assert_eq!(q.percent_bps(), Some(6_000));
    assert_eq!(q.checked_at(), Some(Timestamp(T0_MS + 6 * DAY_MS)));
}

#[test]
fn checks_follow_the_level_up_and_down() {
    let mut q = Quota::default();
    let steps = [
        (0, check(74)),
        (1, check(75)),
        (2, check(90)),
        (3, check(89)),
        (4, check(10)),
        (5, check(99)),
        (6, check(100)),
    ];
    assert_eq!(
        transcript(&mut q, &steps),
        "normal --check_quota--> normal
normal --check_quota--> warning
warning --check_quota--> throttled
throttled --check_quota--> warning
warning --check_quota--> normal
normal --check_quota--> throttled
throttled --check_quota--> exceeded
"
    );
}

#[test]
fn exceeded_is_sticky_until_remediation_but_records_usage() {
    let mut q = Quota::default();
    let out = transcript(&mut q, &[(0, check(150)), (1, check(10)), (2, C::ResumeNormal)]);
    assert_eq!(
        out,
        "normal --check_quota--> exceeded
exceeded --check_quota--> exceeded
exceeded --resume_normal--> rejected invalid_transition: resume_normal is not allowed in state exceeded of the quota governor
"
    );
    assert_eq!(q.usage(), Some(10));
    assert_eq!(q.percent_bps(), Some(1_000));
    assert_eq!(q.checked_at(), Some(Timestamp(T0_MS + DAY_MS)));
}

#[test]
fn degraded_mode_leaves_by_level_once_usage_drops() {
    let mut q = Quota::default();
    let out = transcript(
        &mut q,
        &[(0, check(100)), (1, C::DegradeMode), (2, check(130)), (3, check(95))],
    );
    assert_eq!(
        out,
        "normal --check_quota--> exceeded
exceeded --degrade_mode--> degraded_mode
degraded_mode --check_quota--> degraded_mode
degraded_mode --check_quota--> throttled
"
    );
    for (usage, to) in [
        (50, State::Normal),
        (80, State::Warning),
        (95, State::Throttled),
        (100, State::DegradedMode),
    ] {
        let mut q = Quota::default();
        for c in [check(100), C::DegradeMode] {
            q.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
        }
        assert_eq!(
            q.apply(&check(usage), &Ctx::at_ms(T0_MS)).map(|t| t.to),
            Ok(to),
            "usage {usage}"
        );
    }
}

#[test]
fn a_restored_quota_moves_by_level_on_a_check() {
    let mut q = in_remediation(100);
    let out = transcript(&mut q, &[(1, C::RestoreResources { limit: None }), (2, check(80))]);
    assert_eq!(
        out,
        "remediation --restore_resources--> restored
restored --check_quota--> warning
"
    );
}

#[test]
fn resume_normal_needs_usage_under_the_warning_threshold() {
    let mut q = in_remediation(75);
    let out = transcript(&mut q, &[(1, C::RestoreResources { limit: None }), (2, C::ResumeNormal)]);
    assert_eq!(
        out,
        "remediation --restore_resources--> restored
restored --resume_normal--> rejected precondition_failed: resume_normal refused: usage is still above the warning threshold
"
    );
    assert_eq!(q.state(), State::Restored);

    let mut q = in_remediation(74);
    let out = transcript(&mut q, &[(1, C::RestoreResources { limit: None }), (2, C::ResumeNormal)]);
    assert_eq!(
        out,
        "remediation --restore_resources--> restored\nrestored --resume_normal--> normal\n"
    );

    // A raised limit brings the same usage under the threshold.
    let mut q = in_remediation(75);
    let out =
        transcript(&mut q, &[(1, C::RestoreResources { limit: Some(101) }), (2, C::ResumeNormal)]);
    assert_eq!(
        out,
        "remediation --restore_resources--> restored\nrestored --resume_normal--> normal\n"
    );
    assert_eq!(q.limit(), Some(101));
    assert_eq!(q.percent_bps(), Some(7_425));
}

#[test]
fn a_quota_never_checked_resumes_normal() {
    let mut q = Quota::default();
    let steps = [
        (0, C::SendWarning),
        (0, C::ThrottleTraffic),
        (0, C::MarkExceeded),
        (0, C::StartRemediation),
        (0, C::RestoreResources { limit: None }),
        (0, C::ResumeNormal),
    ];
    assert!(transcript(&mut q, &steps).ends_with("restored --resume_normal--> normal\n"));
    assert_eq!(q.percent_bps(), None);
}

#[test]
fn a_quota_tracks_one_resource() {
    let mut q = Quota::default();
    let storage = C::CheckQuota { resource: Resource::Storage, usage: 1, limit: 100 };
    let out = transcript(&mut q, &[(0, check(10)), (1, storage)]);
    assert_eq!(
        out,
        "normal --check_quota--> normal
normal --check_quota--> rejected precondition_failed: check_quota refused: a quota tracks one resource type
"
    );
    assert_eq!(q.resource(), Some(Resource::ApiCalls));
    assert_eq!(q.usage(), Some(10));
    // The guard holds in every state that accepts checks.
    let mut q = in_remediation(100);
    let storage = C::CheckQuota { resource: Resource::Storage, usage: 1, limit: 100 };
    assert_eq!(
        transcript(&mut q, &[(1, storage)]),
        "remediation --check_quota--> rejected precondition_failed: check_quota refused: a quota tracks one resource type\n"
    );
}

#[test]
fn a_hand_built_zero_limit_is_refused_by_decide() {
    let mut q = Quota::default();
    let zero = C::CheckQuota { resource: Resource::ApiCalls, usage: 1, limit: 0 };
    assert_eq!(
        transcript(&mut q, &[(0, zero)]),
        "normal --check_quota--> rejected invalid_argument: check_quota: argument `limit` = \"0\": out of range; expected a limit greater than zero\n"
    );
    let mut q = in_remediation(50);
    assert_eq!(
        transcript(&mut q, &[(0, C::RestoreResources { limit: Some(0) })]),
        "remediation --restore_resources--> rejected invalid_argument: restore_resources: argument `limit` = \"0\": out of range; expected a limit greater than zero\n"
    );
}

#[test]
fn operator_commands_out_of_order_are_invalid_transitions() {
    let mut q = Quota::default();
    let steps = [
        (0, C::ThrottleTraffic),
        (0, C::MarkExceeded),
        (0, C::DegradeMode),
        (0, C::StartRemediation),
        (0, C::RestoreResources { limit: None }),
        (0, C::ResumeNormal),
    ];
    assert_eq!(
        transcript(&mut q, &steps),
        "normal --throttle_traffic--> rejected invalid_transition: throttle_traffic is not allowed in state normal of the quota governor
normal --mark_exceeded--> rejected invalid_transition: mark_exceeded is not allowed in state normal of the quota governor
normal --degrade_mode--> rejected invalid_transition: degrade_mode is not allowed in state normal of the quota governor
normal --start_remediation--> rejected invalid_transition: start_remediation is not allowed in state normal of the quota governor
normal --restore_resources--> rejected invalid_transition: restore_resources is not allowed in state normal of the quota governor
normal --resume_normal--> rejected invalid_transition: resume_normal is not allowed in state normal of the quota governor
"
    );
}

#[test]
fn level_at_its_exact_boundaries() {
    let at = |usage| level(usage, 10_000);
    assert_eq!(
        [at(0), at(7_499), at(7_500), at(8_999), at(9_000), at(9_999), at(10_000), at(u64::MAX)],
        [
            Level::Normal,
            Level::Normal,
            Level::Warning,
            Level::Warning,
            Level::Throttled,
            Level::Throttled,
            Level::Exceeded,
            Level::Exceeded
        ]
    );
    assert_eq!((WARNING_BPS, THROTTLE_BPS, EXCEEDED_BPS), (7_500, 9_000, 10_000));
    // 74.9999 % is still normal: the share rounds down.
    assert_eq!(level(749_999, 1_000_000), Level::Normal);
    assert_eq!(level(750_000, 1_000_000), Level::Warning);
    // Near u64::MAX the product does not overflow.
    let max = u64::MAX;
    assert_eq!(level(max, max), Level::Exceeded);
    assert_eq!(level(max - 1, max), Level::Throttled);
    assert_eq!(level(max / 10 * 9, max), Level::Warning);
    assert_eq!(level(max / 4 * 3 + 2, max), Level::Normal);
    assert_eq!(level(max / 4 * 3 + 3, max), Level::Warning);
    assert_eq!(level(max, 1), Level::Exceeded);
    assert_eq!(level(0, max), Level::Normal);
    assert_eq!(level(0, 0), Level::Exceeded);
    assert_eq!(usage_bps(max - 1, max), 9_999);
    assert_eq!(usage_bps(max, 1), u64::MAX);
    assert_eq!(usage_bps(3, 4), 7_500);
}

proptest! {
    #[test]
    fn level_is_monotonic_in_usage(limit in 1..=u64::MAX, a in any::<u64>(), b in any::<u64>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(level(lo, limit) <= level(hi, limit));
        prop_assert!(usage_bps(lo, limit) <= usage_bps(hi, limit));
    }

    #[test]
    fn level_agrees_with_exact_arithmetic(limit in 1..=u64::MAX, usage in any::<u64>()) {
        let scaled = u128::from(usage) * 10_000;
        let expected = if scaled < 7_500 * u128::from(limit) {
            Level::Normal
        } else if scaled < 9_000 * u128::from(limit) {
            Level::Warning
        } else if scaled < 10_000 * u128::from(limit) {
            Level::Throttled
        } else {
            Level::Exceeded
        };
        prop_assert_eq!(level(usage, limit), expected);
    }
}

#[test]
fn no_state_arms_a_timeout() {
    for (state, machine, _) in explore::<Quota>().representatives {
        assert_eq!(machine.state_timeout(), None, "{state}");
    }
    assert!(State::ALL.iter().all(|s| !s.is_terminal()));
    assert_eq!(State::from_name("degraded_mode"), Some(State::DegradedMode));
    assert_eq!(State::DegradedMode.to_string(), "degraded_mode");
}

#[test]
fn parse_errors_name_the_argument() {
    let ok = [("resource", "storage"), ("usage", "5"), ("limit", "10")];
    assert_eq!(
        C::parse("check_quota", &args(&ok)),
        Ok(C::CheckQuota { resource: Resource::Storage, usage: 5, limit: 10 })
    );
    assert_eq!(
        C::parse("check_quota", &args(&[("resource", "gpu"), ("usage", "5"), ("limit", "10")]))
            .unwrap_err()
            .to_string(),
        "check_quota: argument `resource` = \"gpu\": expected one of api_calls, storage, compute, bandwidth, seats"
    );
    assert_eq!(
        C::parse("check_quota", &args(&[("resource", "storage"), ("limit", "10")])).unwrap_err(),
        ArgError::new("check_quota", "usage", None, ArgProblem::Missing)
    );
    assert_eq!(
        C::parse(
            "check_quota",
            &args(&[("resource", "storage"), ("usage", "-1"), ("limit", "10")])
        )
        .unwrap_err()
        .to_string(),
        "check_quota: argument `usage` = \"-1\": expected a whole number of units"
    );
    assert_eq!(
        C::parse("check_quota", &args(&[("resource", "storage"), ("usage", "5"), ("limit", "0")]))
            .unwrap_err()
            .to_string(),
        "check_quota: argument `limit` = \"0\": out of range; expected a limit greater than zero"
    );
    assert_eq!(
        C::parse(
            "check_quota",
            &args(&[("resource", "storage"), ("usage", "5"), ("limit", "ten")])
        )
        .unwrap_err()
        .to_string(),
        "check_quota: argument `limit` = \"ten\": expected a limit greater than zero"
    );
    assert_eq!(
        C::parse(
            "check_quota",
            &args(&[("resource", "storage"), ("usage", "5"), ("limit", "10"), ("unit", "gb")])
        )
        .unwrap_err(),
        ArgError::new("check_quota", "unit", None, ArgProblem::Unexpected)
    );
    assert_eq!(
        C::parse("restore_resources", &args(&[("limit", "0")])).unwrap_err(),
        ArgError::new(
            "restore_resources",
            "limit",
            Some("0"),
            ArgProblem::OutOfRange { expected: "a limit greater than zero" }
        )
    );
    assert_eq!(
        C::parse("restore_resources", &Args::new()),
        Ok(C::RestoreResources { limit: None })
    );
    assert_eq!(
        C::parse("resume_normal", &args(&[("force", "yes")])).unwrap_err(),
        ArgError::new("resume_normal", "force", None, ArgProblem::Unexpected)
    );
    assert_eq!(C::parse("reset_quota", &Args::new()).unwrap_err().argument, "command");
    assert_eq!("seats".parse::<Resource>(), Ok(Resource::Seats));
    assert_eq!(Resource::ApiCalls.to_string(), "api_calls");
}

#[test]
fn every_sample_round_trips_through_its_args() {
    let samples = C::samples(&Ctx::at_ms(T0_MS));
    for name in C::NAMES {
        assert!(samples.iter().any(|c| c.name() == *name), "no sample for {name}");
    }
    for c in &samples {
        assert_round_trip(c);
    }
    assert_round_trip(&C::RestoreResources { limit: None });
    assert_round_trip(&C::RestoreResources { limit: Some(u64::MAX) });
    assert_round_trip(&C::CheckQuota {
        resource: Resource::Bandwidth,
        usage: u64::MAX,
        limit: u64::MAX,
    });
}

#[test]
fn a_restored_limit_must_be_larger_than_the_current_one() {
    // docs/governors/quota.md: `restore_resources` takes an optional new, larger limit.
    for smaller_or_same in [99, 100] {
        let mut q = in_remediation(100);
        let out = transcript(&mut q, &[(1, C::RestoreResources { limit: Some(smaller_or_same) })]);
        assert_eq!(
            out,
            "remediation --restore_resources--> rejected precondition_failed: restore_resources refused: the new limit is not larger than the current one\n",
            "limit {smaller_or_same}"
        );
        assert_eq!((q.state(), q.limit()), (State::Remediation, Some(100)));
    }
    let mut q = in_remediation(100);
    let out = transcript(&mut q, &[(1, C::RestoreResources { limit: Some(101) })]);
    assert_eq!(out, "remediation --restore_resources--> restored\n");
    // A quota never checked has no limit yet: any positive one will do.
    let mut q = Quota::default();
    let steps = [
        (0, C::SendWarning),
        (0, C::ThrottleTraffic),
        (0, C::MarkExceeded),
        (0, C::StartRemediation),
        (0, C::RestoreResources { limit: Some(1) }),
    ];
    assert!(transcript(&mut q, &steps).ends_with("--restore_resources--> restored\n"));
    assert_eq!(q.limit(), Some(1));
}

fn usage(period: u64, usage: u64, limit: Option<u64>) -> C {
    C::RecordUsage(super::UsageBatch {
        meter: "reports".into(),
        period,
        total: 1,
        usage,
        limit,
        events: vec![(T0_MS, format!("e-{period}-{usage}"))],
    })
}

#[test]
fn usage_batches_move_by_level_and_a_new_period_clears_exceeded() {
    let mut q = Quota::default();
    let walk = |q: &mut Quota, c: C| {
        q.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
        q.state()
    };
    let mut walk = |c: C| walk(&mut q, c);
    assert_eq!(walk(usage(7, 74, Some(100))), State::Normal);
    assert_eq!(walk(usage(7, 75, Some(100))), State::Warning);
    assert_eq!(walk(usage(7, 90, Some(100))), State::Throttled);
    assert_eq!(walk(usage(7, 100, Some(100))), State::Exceeded);
    // Exceeded is sticky within the period, whatever the usage says...
    assert_eq!(walk(usage(7, 101, Some(200))), State::Exceeded);
    // ... and a batch of the next period (the counter was reset) follows the level again.
    assert_eq!(walk(usage(8, 1, Some(100))), State::Normal);
    // Unlimited: always normal.
    assert_eq!(walk(usage(8, 1_000_000, None)), State::Normal);
    assert_eq!((q.period(), q.usage(), q.limit()), (Some(8), Some(1_000_000), None));
}

#[test]
fn usage_in_remediation_is_recorded_without_moving() {
    let mut q = in_remediation(50);
    q.apply(&usage(9, 99, Some(100)), &Ctx::at_ms(T0_MS)).unwrap();
    assert_eq!(q.state(), State::Remediation);
    assert_eq!(q.usage(), Some(99));
}

#[test]
fn record_usage_events_round_trip_and_bad_events_are_refused() {
    let batch = usage(3, 10, Some(100));
    let a = batch.args();
    assert_eq!(a.get("events").map(String::as_str), Some(format!("{T0_MS} e-3-10").as_str()));
    assert_eq!(C::parse("record_usage", &a).unwrap(), batch);
    for bad in ["", "x e1", "12", "12 ", "12 a\u{7}b"] {
        let mut a = a.clone();
        a.insert("events".into(), bad.into());
        let err = C::parse("record_usage", &a).unwrap_err();
        assert_eq!(err.argument, "events", "{bad:?}");
    }
    let mut a = batch.args();
    a.insert("usage".into(), "0".into());
    assert_eq!(C::parse("record_usage", &a).unwrap_err().argument, "usage");
}
