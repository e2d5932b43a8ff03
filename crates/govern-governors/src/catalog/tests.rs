//! Catalog walks: approval, deprecation with sunset on time, restoration, guards, parsing.

use super::{Command as C, Product, State};
use crate::args::{ArgProblem, Args, CommandSpec};
use crate::limits::SKU_LEN_MAX;
use crate::testing::{
    T0_MS, assert_every_sample_round_trips, assert_replay_tracks_live, assert_round_trip,
    transcript,
};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{Governor, StateSpec, StateTimeout};

fn day(d: u64) -> Timestamp {
    Timestamp(T0_MS + d * DAY_MS)
}

fn submit() -> C {
    C::SubmitForApproval { sku: "PRO-2026.m".into() }
}

fn deprecate(sunset_day: Option<u64>) -> C {
    C::DeprecateProduct { sunset_at: sunset_day.map(day) }
}

fn sku_args(sku: &str) -> Args {
    Args::from([("sku".to_owned(), sku.to_owned())])
}

#[test]
fn lifecycle_from_draft_to_restoration() {
    let mut p = Product::default();
    let steps = [
        (0, submit()),
        (1, C::RejectProduct),
        (2, C::ReviseProduct),
        (3, submit()),
        (4, C::ApproveProduct),
        (5, deprecate(Some(90))),
        (6, C::ActivateProduct),
        (7, deprecate(None)),
        (8, C::DelistProduct),
        (9, C::RequestRestore),
        (10, C::DenyRestore),
        (11, C::RequestRestore),
        (12, C::ActivateProduct),
        (13, C::DelistProduct),
    ];
    assert_eq!(
        transcript(&mut p, &steps),
        "draft --submit_for_approval--> pending_approval
pending_approval --reject_product--> rejected
rejected --revise_product--> draft
draft --submit_for_approval--> pending_approval
pending_approval --approve_product--> active
active --deprecate_product--> deprecated
deprecated --activate_product--> active
active --deprecate_product--> deprecated
deprecated --delist_product--> delisted
delisted --request_restore--> restore_pending
restore_pending --deny_restore--> delisted
delisted --request_restore--> restore_pending
restore_pending --activate_product--> active
active --delist_product--> delisted
"
    );
    assert_eq!(p.state(), State::Delisted);
    assert_eq!(p.sku(), Some("PRO-2026.m"));
    assert_eq!(p.submitted_at(), Some(day(3)));
    assert_eq!(p.approved_at(), Some(day(4)));
    assert_eq!(p.deprecated_at(), Some(day(7)));
    assert_eq!(p.sunset_at(), None);
    assert_eq!(p.delisted_at(), Some(day(13)));
}

#[test]
fn activation_that_would_bypass_approval_is_refused() {
    let mut p = Product::default();
    let out = transcript(
        &mut p,
        &[
            (0, C::ActivateProduct),
            (0, submit()),
            (1, C::ActivateProduct),
            (1, C::RejectProduct),
            (2, C::ActivateProduct),
        ],
    );
    assert_eq!(
        out,
        "draft --activate_product--> rejected invalid_transition: activate_product is not allowed in state draft of the catalog governor
draft --submit_for_approval--> pending_approval
pending_approval --activate_product--> rejected invalid_transition: activate_product is not allowed in state pending_approval of the catalog governor
pending_approval --reject_product--> rejected
rejected --activate_product--> rejected invalid_transition: activate_product is not allowed in state rejected of the catalog governor
"
    );
    let mut p = Product::default();
    let out = transcript(
        &mut p,
        &[(0, submit()), (1, C::ApproveProduct), (2, C::DelistProduct), (3, C::ActivateProduct)],
    );
    assert!(
        out.ends_with("delisted --activate_product--> rejected invalid_transition: activate_product is not allowed in state delisted of the catalog governor\n"),
        "{out}"
    );
    let mut p = Product::default();
    let out = transcript(&mut p, &[(0, submit()), (1, C::ApproveProduct), (2, C::ActivateProduct)]);
    assert!(
        out.ends_with("active --activate_product--> rejected invalid_transition: activate_product is not allowed in state active of the catalog governor\n"),
        "{out}"
    );
}

#[test]
fn a_sunset_not_after_the_deprecation_is_refused() {
    let mut p = Product::default();
    let out = transcript(
        &mut p,
        &[(0, submit()), (1, C::ApproveProduct), (5, deprecate(Some(5))), (5, deprecate(Some(4)))],
    );
    let now = day(5).as_ms();
    let before = day(4).as_ms();
    assert_eq!(
        out,
        format!(
            "draft --submit_for_approval--> pending_approval
pending_approval --approve_product--> active
active --deprecate_product--> rejected invalid_argument: deprecate_product: argument `sunset_at` = \"{now}\": must lie after the time of the command
active --deprecate_product--> rejected invalid_argument: deprecate_product: argument `sunset_at` = \"{before}\": must lie after the time of the command
"
        )
    );
    assert_eq!(p.state(), State::Active);
    assert_eq!(p.deprecated_at(), None);
}

#[test]
fn a_sunset_arms_the_delisting_and_activation_disarms_it() {
    let mut p = Product::default();
    p.apply(&submit(), &Ctx::at_ms(T0_MS)).unwrap();
    p.apply(&C::ApproveProduct, &Ctx::at_ms(T0_MS)).unwrap();
    assert_eq!(p.state_timeout(), None);
    p.apply(&deprecate(Some(90)), &Ctx::at_ms(day(1).as_ms())).unwrap();
    assert_eq!(p.state_timeout(), Some(StateTimeout { at: day(90), command: C::DelistProduct }));
    p.apply(&C::ActivateProduct, &Ctx::at_ms(day(2).as_ms())).unwrap();
    assert_eq!(p.state_timeout(), None);
    assert_eq!(p.sunset_at(), None);
    p.apply(&deprecate(None), &Ctx::at_ms(day(3).as_ms())).unwrap();
    assert_eq!(p.state(), State::Deprecated);
    assert_eq!(p.state_timeout(), None, "no sunset, no timeout");
}

#[test]
fn the_sunset_timeout_delists_and_is_then_disarmed() {
    let mut p = Product::default();
    p.apply(&submit(), &Ctx::at_ms(T0_MS)).unwrap();
    p.apply(&C::ApproveProduct, &Ctx::at_ms(T0_MS)).unwrap();
    p.apply(&deprecate(Some(30)), &Ctx::at_ms(T0_MS)).unwrap();
    let timeout = p.state_timeout().unwrap();
    assert_eq!(timeout, StateTimeout { at: day(30), command: C::DelistProduct });
    let t = p.apply(&timeout.command, &Ctx { now: timeout.at }).unwrap();
    assert_eq!((t.from, t.to), (State::Deprecated, State::Delisted));
    assert_eq!(p.delisted_at(), Some(day(30)));
    assert_eq!(p.state_timeout(), None);
}

#[test]
fn no_command_leaves_a_state_without_an_edge() {
    let mut p = Product::default();
    let out =
        transcript(&mut p, &[(0, C::ApproveProduct), (0, C::DenyRestore), (0, deprecate(None))]);
    assert_eq!(
        out,
        "draft --approve_product--> rejected invalid_transition: approve_product is not allowed in state draft of the catalog governor
draft --deny_restore--> rejected invalid_transition: deny_restore is not allowed in state draft of the catalog governor
draft --deprecate_product--> rejected invalid_transition: deprecate_product is not allowed in state draft of the catalog governor
"
    );
    assert!(State::ALL.iter().all(|s| !s.is_terminal()));
}

#[test]
fn parse_checks_the_sku() {
    let ok = C::parse("submit_for_approval", &sku_args("a.B_9-z")).unwrap();
    assert_eq!(ok, C::SubmitForApproval { sku: "a.B_9-z".into() });
    let max = "S".repeat(SKU_LEN_MAX);
    assert_eq!(
        C::parse("submit_for_approval", &sku_args(&max)).unwrap(),
        C::SubmitForApproval { sku: max }
    );

    let empty = C::parse("submit_for_approval", &sku_args("")).unwrap_err();
    assert_eq!(empty.to_string(), "submit_for_approval: argument `sku` = \"\": empty");

    let long = "S".repeat(SKU_LEN_MAX + 1);
    let too_long = C::parse("submit_for_approval", &sku_args(&long)).unwrap_err();
    assert_eq!(too_long.to_string(), "submit_for_approval: argument `sku` longer than 64 bytes");
    assert_eq!(too_long.problem, ArgProblem::TooLong { max: SKU_LEN_MAX });

    for bad in ["PRO 2026", " ", "pro/1", "prö"] {
        let err = C::parse("submit_for_approval", &sku_args(bad)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "submit_for_approval: argument `sku` = {bad:?}: expected 1 to 64 characters of A-Z a-z 0-9 . _ -"
            )
        );
    }
}

#[test]
fn parse_refuses_bad_arguments() {
    let unknown = C::parse("submit", &Args::new()).unwrap_err();
    assert_eq!(unknown.argument, "command");
    assert!(matches!(unknown.problem, ArgProblem::UnknownCommand { .. }));

    let missing = C::parse("submit_for_approval", &Args::new()).unwrap_err();
    assert_eq!(missing.to_string(), "submit_for_approval: argument `sku` missing");

    let mut extra = sku_args("PRO");
    extra.insert("price".into(), "9".into());
    let unexpected = C::parse("submit_for_approval", &extra).unwrap_err();
    assert_eq!(
        unexpected.to_string(),
        "submit_for_approval: argument `price` not an argument of this command"
    );

    let unexpected = C::parse("delist_product", &sku_args("PRO")).unwrap_err();
    assert_eq!(unexpected.argument, "sku");
    assert_eq!(unexpected.problem, ArgProblem::Unexpected);

    let bad_time =
        C::parse("deprecate_product", &Args::from([("sunset_at".to_owned(), "-1".to_owned())]))
            .unwrap_err();
    assert_eq!(
        bad_time.to_string(),
        "deprecate_product: argument `sunset_at` = \"-1\": expected milliseconds since the Unix epoch"
    );
}

#[test]
fn every_sample_round_trips_through_its_args() {
    assert_every_sample_round_trips::<C>();
    assert_round_trip(&deprecate(None));
    assert_round_trip(&deprecate(Some(7)));
}

#[test]
fn replaying_the_record_rebuilds_the_machine() {
    let steps = [
        (0, submit()),
        (1, C::ApproveProduct),
        (2, deprecate(Some(30))),
        (30, C::DelistProduct),
        (31, C::RequestRestore),
        (32, C::ActivateProduct),
        (33, deprecate(Some(60))),
    ];
    assert_replay_tracks_live::<Product>(&steps);
}
