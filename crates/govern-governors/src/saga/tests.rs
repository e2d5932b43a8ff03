//! Saga walks: completion in order, a failure compensating last first, a stuck compensation
//! and its resolution; out-of-order records are refused; replay tracks the live machine.

use super::{Command as C, Saga, State};
use crate::args::{ArgProblem, CommandSpec};
use crate::governor::Governor;
use crate::testing::{assert_every_sample_round_trips, assert_replay_tracks_live, transcript};
use crate::time::Ctx;

fn begin(steps: u32) -> C {
    C::Begin { saga: "onboarding".into(), steps, params: "plan=pro\ntenant=acme".into() }
}

fn failed(step: u32) -> C {
    C::StepFailed { step, reason: "declined".into() }
}

#[test]
fn steps_complete_in_order_and_the_last_completes_the_saga() {
    let mut s = Saga::default();
    let out = transcript(
        &mut s,
        &[
            (0, begin(3)),
            (0, C::StepDone { step: 0 }),
            (0, C::StepDone { step: 1 }),
            (0, C::StepDone { step: 2 }),
        ],
    );
    assert_eq!(
        out,
        "pending --begin--> running\nrunning --step_done--> running\n\
         running --step_done--> running\nrunning --step_done--> completed\n"
    );
    assert_eq!(
        (s.steps(), s.done(), s.saga(), s.params()),
        (3, 3, Some("onboarding"), "plan=pro\ntenant=acme")
    );
}

#[test]
fn a_failed_step_compensates_the_completed_ones_last_first() {
    let mut s = Saga::default();
    let ctx = Ctx::at_ms(crate::testing::T0_MS);
    for c in [begin(4), C::StepDone { step: 0 }, C::StepDone { step: 1 }, failed(2)] {
        s.apply(&c, &ctx).unwrap();
    }
    assert_eq!(
        (s.state(), s.to_undo(), s.failed()),
        (State::Compensating, 2, Some((2, "declined")))
    );
    // Not the first completed step first: the last.
    let e = s.apply(&C::Compensated { step: 0 }, &ctx).unwrap_err();
    assert_eq!(e.kind(), "precondition_failed");
    let attempt = C::CompensationFailed { step: 1, attempt: 1, reason: "busy".into() };
    s.apply(&attempt, &ctx).unwrap();
    assert_eq!((s.state(), s.attempts()), (State::Compensating, 1));
    s.apply(&C::Compensated { step: 1 }, &ctx).unwrap();
    assert_eq!((s.state(), s.to_undo(), s.attempts()), (State::Compensating, 1, 0));
    s.apply(&C::Compensated { step: 0 }, &ctx).unwrap();
    assert_eq!(s.state(), State::Compensated);
    assert!(s.apply(&C::StepDone { step: 2 }, &ctx).is_err(), "a compensated saga is over");
}

#[test]
fn a_first_step_failing_leaves_nothing_to_undo_and_a_stuck_saga_waits_for_an_operator() {
    let ctx = Ctx::at_ms(crate::testing::T0_MS);
    let mut s = Saga::default();
    s.apply(&begin(2), &ctx).unwrap();
    s.apply(&failed(0), &ctx).unwrap();
    assert_eq!(s.state(), State::Compensated);

    let mut s = Saga::default();
    for c in
        [begin(2), C::StepDone { step: 0 }, failed(1), C::GiveUp { reason: "5 attempts".into() }]
    {
        s.apply(&c, &ctx).unwrap();
    }
    assert_eq!((s.state(), s.stuck()), (State::Stuck, Some("5 attempts")));
    assert!(s.apply(&C::Compensated { step: 0 }, &ctx).is_err());
    s.apply(&C::Resolve, &ctx).unwrap();
    assert_eq!(s.state(), State::Compensated);
}

#[test]
fn out_of_order_steps_are_refused() {
    let ctx = Ctx::at_ms(crate::testing::T0_MS);
    let mut s = Saga::default();
    s.apply(&begin(2), &ctx).unwrap();
    assert!(s.apply(&C::StepDone { step: 1 }, &ctx).is_err());
    s.apply(&C::StepDone { step: 0 }, &ctx).unwrap();
    assert!(s.apply(&C::StepDone { step: 0 }, &ctx).is_err(), "a step is done once");
    assert!(s.apply(&failed(0), &ctx).is_err());
}

#[test]
fn replay_rebuilds_the_run() {
    assert_replay_tracks_live::<Saga>(&[
        (0, begin(3)),
        (0, C::StepDone { step: 0 }),
        (1, C::StepDone { step: 1 }),
        (1, failed(2)),
        (1, C::CompensationFailed { step: 1, attempt: 1, reason: "busy".into() }),
        (2, C::Compensated { step: 1 }),
        (2, C::Compensated { step: 0 }),
    ]);
}

#[test]
fn commands_round_trip_and_bad_arguments_are_named() {
    assert_every_sample_round_trips::<C>();
    let mut args = begin(2).args();
    args.insert("steps".into(), "65".into());
    let e = C::parse("begin", &args).unwrap_err();
    assert_eq!(e.argument, "steps");
    assert!(matches!(e.problem, ArgProblem::OutOfRange { .. }), "{e:?}");
    // A long failure is cut, not refused: the record of what happened is always taken.
    let long = "x".repeat(1_000);
    let mut args = failed(0).args();
    args.insert("failure".into(), long);
    let C::StepFailed { reason, .. } = C::parse("step_failed", &args).unwrap() else { panic!() };
    assert_eq!(reason.len(), crate::limits::TEXT_ARG_LEN_MAX);
}
