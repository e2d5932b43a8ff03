//! Subscription walks: the lifecycle, trial expiry on time, guards.

use super::{Command as C, Subscription};
use crate::args::{Args, CommandSpec};
use crate::testing::{T0_MS, assert_round_trip, transcript};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{Governor, StateTimeout};

fn trial() -> C {
    C::StartTrial { plan: "pro".into(), trial_days: 14 }
}

#[test]
fn lifecycle_of_the_benchmark() {
    let mut s = Subscription::default();
    let steps = [
        (0, trial()),
        (1, C::Activate { plan: None }),
        (2, C::Suspend),
        (3, C::Resume),
        (4, C::Pause),
        (5, C::Resume),
        (6, C::RequestCancellation),
        (7, C::ConfirmCancellation { ends_at: None }),
        (7, C::Archive),
    ];
    assert_eq!(
        transcript(&mut s, &steps),
        "pending --start_trial--> free_trial
free_trial --activate--> active
active --suspend--> suspended
suspended --resume--> active
active --pause--> paused
paused --resume--> active
active --request_cancellation--> cancellation_requested
cancellation_requested --confirm_cancellation--> cancellation_confirmed
cancellation_confirmed --archive--> archived
"
    );
    assert_eq!(s.plan(), Some("pro"));
    assert_eq!(s.activated_at(), Some(Timestamp(T0_MS + DAY_MS)));
}

#[test]
fn trial_ends_only_at_its_end_and_then_pauses() {
    let mut s = Subscription::default();
    let out = transcript(&mut s, &[(0, trial()), (13, C::EndTrial), (14, C::EndTrial)]);
    assert_eq!(
        out,
        format!(
            "pending --start_trial--> free_trial
free_trial --end_trial--> rejected too_early: end_trial is too early: allowed from 2026-01-15T00:00:00Z
free_trial --end_trial--> paused
"
        )
    );
}

#[test]
fn the_trial_arms_a_timeout_and_leaving_the_trial_disarms_it() {
    let mut s = Subscription::default();
    s.apply(&trial(), &Ctx::at_ms(T0_MS)).unwrap();
    let at = Timestamp(T0_MS + 14 * DAY_MS);
    assert_eq!(s.state_timeout(), Some(StateTimeout { at, command: C::EndTrial }));
    s.apply(&C::Activate { plan: None }, &Ctx::at_ms(T0_MS + DAY_MS)).unwrap();
    assert_eq!(s.state_timeout(), None);
}

#[test]
fn cancellation_with_a_paid_period_terminates_at_its_end() {
    let mut s = Subscription::default();
    let end = Timestamp(T0_MS + 30 * DAY_MS);
    let steps = [
        (0, C::Activate { plan: Some("team".into()) }),
        (1, C::RequestCancellation),
        (2, C::ConfirmCancellation { ends_at: Some(end) }),
        (10, C::Archive),
        (29, C::Terminate),
        (30, C::Terminate),
        (31, C::Archive),
    ];
    let out = transcript(&mut s, &steps);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[3],
        "cancellation_confirmed --archive--> rejected too_early: archive is too early: allowed from 2026-01-31T00:00:00Z"
    );
    assert!(lines[4].contains("rejected too_early"), "{}", lines[4]);
    assert_eq!(lines[5], "cancellation_confirmed --terminate--> terminated");
    assert_eq!(lines[6], "terminated --archive--> archived");
}

#[test]
fn keeping_a_cancelled_subscription_cannot_change_its_plan_around_the_gates() {
    let mut s = Subscription::default();
    let steps = [
        (0, C::Activate { plan: Some("team".into()) }),
        (1, C::RequestCancellation),
        (2, C::Activate { plan: Some("enterprise".into()) }),
        (2, C::Activate { plan: Some("team".into()) }),
        (3, C::RequestCancellation),
        (4, C::Activate { plan: None }),
    ];
    assert_eq!(
        transcript(&mut s, &steps),
        "pending --activate--> active
active --request_cancellation--> cancellation_requested
cancellation_requested --activate--> rejected precondition_failed: activate refused: the plan in force changes only through plan changes (change_plan); activate names it or none
cancellation_requested --activate--> active
active --request_cancellation--> cancellation_requested
cancellation_requested --activate--> active
"
    );
    assert_eq!((s.plan(), s.plan_changed_at()), (Some("team"), None));

    // A trial whose cancellation was requested never had paid service: converting it still
    // chooses the plan.
    let mut t = Subscription::default();
    let steps =
        [(0, trial()), (1, C::RequestCancellation), (2, C::Activate { plan: Some("team".into()) })];
    assert!(transcript(&mut t, &steps).ends_with("cancellation_requested --activate--> active\n"));
    assert_eq!(t.plan(), Some("team"));
}

#[test]
fn guards_refuse_bad_data() {
    let mut s = Subscription::default();
    let out = transcript(&mut s, &[(0, C::Activate { plan: None })]);
    assert_eq!(
        out,
        "pending --activate--> rejected precondition_failed: activate refused: a plan is required to activate\n"
    );
    let mut args = Args::new();
    args.insert("plan".into(), "pro".into());
    args.insert("trial_days".into(), "0".into());
    let err = C::parse("start_trial", &args).unwrap_err();
    assert_eq!(
        err.to_string(),
        "start_trial: argument `trial_days` = \"0\": out of range; expected 1 to 365 days"
    );
    args.insert("trial_days".into(), "14".into());
    args.insert("plan".into(), "  ".into());
    assert_eq!(C::parse("start_trial", &args).unwrap_err().argument, "plan");
    args.insert("plan".into(), "pro".into());
    args.insert("colour".into(), "red".into());
    assert_eq!(C::parse("start_trial", &args).unwrap_err().argument, "colour");
    assert_eq!(C::parse("start_triall", &Args::new()).unwrap_err().argument, "command");
}

#[test]
fn a_cancellation_end_in_the_past_is_refused() {
    let mut s = Subscription::default();
    let past = Timestamp(T0_MS - 1);
    let out = transcript(
        &mut s,
        &[
            (0, C::Activate { plan: Some("pro".into()) }),
            (0, C::RequestCancellation),
            (0, C::ConfirmCancellation { ends_at: Some(past) }),
        ],
    );
    assert!(out.ends_with("rejected invalid_argument: confirm_cancellation: argument `ends_at` = \"1767225599999\": must lie after the time of the command\n"), "{out}");
}

#[test]
fn every_sample_round_trips_through_its_args() {
    for c in C::samples(&Ctx::at_ms(T0_MS)) {
        assert_round_trip(&c);
    }
    assert_round_trip(&C::ConfirmCancellation { ends_at: Some(Timestamp(5)) });
    assert_round_trip(&C::Activate { plan: None });
}

fn change(plan: &str, previous: &str, kind: super::PlanChangeKind) -> C {
    C::ChangePlan { plan: plan.into(), previous: previous.into(), kind }
}

#[test]
fn a_plan_change_keeps_active_and_remembers_the_plan_left() {
    use super::PlanChangeKind::{Downgrade, Upgrade};
    let mut s = Subscription::default();
    let out = transcript(
        &mut s,
        &[
            (0, C::Activate { plan: Some("pro".into()) }),
            (1, change("enterprise", "team", Upgrade)),
            (1, change("pro", "pro", Upgrade)),
            (1, C::RollbackPlan { plan: "pro".into() }),
            (2, change("enterprise", "pro", Upgrade)),
        ],
    );
    assert_eq!(
        out,
        "pending --activate--> active
active --change_plan--> rejected precondition_failed: change_plan refused: `previous` is not the plan in force
active --change_plan--> rejected precondition_failed: change_plan refused: the plan is already in force
active --rollback_plan--> rejected precondition_failed: rollback_plan refused: no plan change to roll back
active --change_plan--> active
"
    );
    assert_eq!(s.plan(), Some("enterprise"));
    assert_eq!(s.previous_plan(), Some("pro"));
    assert_eq!(s.plan_changed_at(), Some(Timestamp(T0_MS + 2 * DAY_MS)));
    assert_eq!(s.rollback_until(), Some(Timestamp(T0_MS + 9 * DAY_MS)));
    // Within the window the rollback restores `pro`; a rollback is not rolled back.
    let back = || C::RollbackPlan { plan: "pro".into() };
    let other = C::RollbackPlan { plan: "team".into() };
    let out = transcript(&mut s, &[(9, other), (9, back()), (9, back())]);
    assert!(out.starts_with("active --rollback_plan--> rejected precondition_failed: rollback_plan refused: `plan` is not the plan the last change left\nactive --rollback_plan--> active\n"), "{out}");
    assert!(out.ends_with("no plan change to roll back\n"), "{out}");
    assert_eq!((s.plan(), s.previous_plan()), (Some("pro"), None));
    assert_eq!(s.plan_changed_at(), Some(Timestamp(T0_MS + 9 * DAY_MS)));
    // Not outside the window; and a plan change needs an active subscription.
    let mut late = Subscription::default();
    let out = transcript(
        &mut late,
        &[
            (0, C::Activate { plan: Some("pro".into()) }),
            (0, change("team", "pro", Downgrade)),
            (8, C::RollbackPlan { plan: "pro".into() }),
            (8, C::Pause),
            (8, change("pro", "team", Upgrade)),
        ],
    );
    assert!(out.contains("rollback_plan refused: the rollback window has passed"), "{out}");
    assert!(out.ends_with("rejected invalid_transition: change_plan is not allowed in state paused of the subscription governor\n"), "{out}");
    assert_eq!(late.plan(), Some("team"));
}

#[test]
fn plan_changes_replay_and_their_state_round_trips() {
    use super::PlanChangeKind::Upgrade;
    let steps = [
        (0, C::Activate { plan: Some("pro".into()) }),
        (1, change("enterprise", "pro", Upgrade)),
        (2, C::RollbackPlan { plan: "pro".into() }),
        (3, change("enterprise", "pro", Upgrade)),
    ];
    crate::testing::assert_replay_tracks_live::<Subscription>(&steps);
    let mut s = Subscription::default();
    for (i, (day, c)) in steps.iter().enumerate() {
        s.apply(c, &Ctx::at_ms(T0_MS + day * DAY_MS)).expect("accepted");
        let bytes = s.encode_state().expect("encodes");
        assert_eq!(Subscription::decode_state(&bytes).as_ref(), Ok(&s), "after step {i}");
    }
    // A state of version 1 (before plan changes) still decodes, with neither field.
    let mut old = Subscription::default();
    old.apply(&C::Activate { plan: Some("pro".into()) }, &Ctx::at_ms(T0_MS)).expect("accepted");
    let v2 = old.encode_state().expect("encodes");
    assert_eq!(v2[1], 2, "the format version byte");
    let mut v1 = v2[..v2.len() - 2].to_vec();
    v1[1] = 1;
    assert_eq!(Subscription::decode_state(&v1).as_ref(), Ok(&old));
    // Version 1 bytes with version 2's fields are refused (trailing bytes), and so is 3.
    let mut odd = v2.clone();
    odd[1] = 1;
    assert!(Subscription::decode_state(&odd).is_err());
    odd[1] = 3;
    assert!(Subscription::decode_state(&odd).is_err());
}
