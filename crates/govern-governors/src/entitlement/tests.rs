//! Entitlement walks: request to archive, expiry on time, guards, parsing, the explored graph.

use super::{Command as C, Entitlement, State};
use crate::args::{ArgProblem, Args, CommandSpec};
use crate::testing::{
    T0_MS, assert_every_sample_round_trips, assert_replay_tracks_live, assert_round_trip,
    transcript,
};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{Governor, StateSpec, StateTimeout};

fn day(d: u64) -> Timestamp {
    Timestamp(T0_MS + d * DAY_MS)
}

fn grant(expires_day: Option<u64>) -> C {
    C::GrantEntitlement {
        feature: "sso".into(),
        expires_at: expires_day.map(day),
        kind: super::GrantKind::Manual,
        priority: 0,
    }
}

fn args(pairs: &[(&str, &str)]) -> Args {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn lifecycle_from_request_to_archive() {
    let mut e = Entitlement::default();
    let steps = [
        (0, grant(Some(100))),
        (1, C::ApproveGrant),
        (2, C::SuspendEntitlement),
        (3, C::ReinstateEntitlement),
        (4, C::SuspendEntitlement),
        (5, C::EscalateIssue),
        (6, C::ResolveEscalation),
        (100, C::Expire),
        (101, grant(None)),
        (102, C::DenyGrant),
        (103, grant(None)),
        (104, C::ApproveGrant),
        (105, C::RevokeEntitlement),
        (106, C::ArchiveEntitlement),
    ];
    assert_eq!(
        transcript(&mut e, &steps),
        "unentitled --grant_entitlement--> pending_review
pending_review --approve_grant--> entitled
entitled --suspend_entitlement--> suspended
suspended --reinstate_entitlement--> entitled
entitled --suspend_entitlement--> suspended
suspended --escalate_issue--> escalated
escalated --resolve_escalation--> entitled
entitled --expire--> expired
expired --grant_entitlement--> pending_review
pending_review --deny_grant--> unentitled
unentitled --grant_entitlement--> pending_review
pending_review --approve_grant--> entitled
entitled --revoke_entitlement--> revoked
revoked --archive_entitlement--> archived
"
    );
    assert_eq!(e.state(), State::Archived);
    assert_eq!(e.feature(), Some("sso"));
    assert_eq!(e.expires_at(), None);
    assert_eq!(e.requested_at(), Some(day(103)));
    assert_eq!(e.granted_at(), Some(day(1)));
    assert_eq!(e.suspensions(), 2);
}

#[test]
fn a_pre_emptive_block_revokes_before_any_request() {
    let mut e = Entitlement::default();
    let out = transcript(
        &mut e,
        &[(0, C::RevokeEntitlement), (1, grant(None)), (2, C::ArchiveEntitlement)],
    );
    assert_eq!(
        out,
        "unentitled --revoke_entitlement--> revoked
revoked --grant_entitlement--> rejected invalid_transition: grant_entitlement is not allowed in state revoked of the entitlement governor
revoked --archive_entitlement--> archived
"
    );
}

#[test]
fn suspended_and_escalated_grants_end_by_expiry_revocation_or_archive() {
    let mut e = Entitlement::default();
    let out = transcript(
        &mut e,
        &[
            (0, grant(Some(10))),
            (1, C::ApproveGrant),
            (2, C::SuspendEntitlement),
            (10, C::Expire),
            (11, C::ArchiveEntitlement),
        ],
    );
    assert_eq!(
        out,
        "unentitled --grant_entitlement--> pending_review
pending_review --approve_grant--> entitled
entitled --suspend_entitlement--> suspended
suspended --expire--> expired
expired --archive_entitlement--> archived
"
    );
    let mut e = Entitlement::default();
    let out = transcript(
        &mut e,
        &[
            (0, grant(None)),
            (1, C::ApproveGrant),
            (2, C::SuspendEntitlement),
            (3, C::EscalateIssue),
            (4, C::ArchiveEntitlement),
        ],
    );
    assert!(out.ends_with("escalated --archive_entitlement--> archived\n"), "{out}");
    let mut e = Entitlement::default();
    let out = transcript(&mut e, &[(0, grant(None)), (1, C::RevokeEntitlement)]);
    assert!(out.ends_with("pending_review --revoke_entitlement--> revoked\n"), "{out}");
}

#[test]
fn approval_of_a_grant_whose_end_has_passed_is_refused() {
    let mut e = Entitlement::default();
    let out =
        transcript(&mut e, &[(0, grant(Some(10))), (10, C::ApproveGrant), (11, C::DenyGrant)]);
    assert_eq!(
        out,
        "unentitled --grant_entitlement--> pending_review
pending_review --approve_grant--> rejected precondition_failed: approve_grant refused: the requested grant has already expired
pending_review --deny_grant--> unentitled
"
    );
}

#[test]
fn expiry_needs_an_end_and_waits_for_it() {
    let mut e = Entitlement::default();
    let out = transcript(&mut e, &[(0, grant(None)), (1, C::ApproveGrant), (2, C::Expire)]);
    assert!(
        out.ends_with("entitled --expire--> rejected precondition_failed: expire refused: the grant has no expiry\n"),
        "{out}"
    );
    let mut e = Entitlement::default();
    let out = transcript(
        &mut e,
        &[(0, grant(Some(30))), (1, C::ApproveGrant), (29, C::Expire), (30, C::Expire)],
    );
    assert_eq!(
        out,
        format!(
            "unentitled --grant_entitlement--> pending_review
pending_review --approve_grant--> entitled
entitled --expire--> rejected too_early: expire is too early: allowed from 2026-01-31T00:00:00Z
entitled --expire--> expired
"
        )
    );
}

#[test]
fn a_grant_end_not_after_the_request_is_refused() {
    let mut e = Entitlement::default();
    let out = transcript(&mut e, &[(5, grant(Some(5))), (5, grant(Some(4)))]);
    let now = day(5).as_ms();
    let before = day(4).as_ms();
    assert_eq!(
        out,
        format!(
            "unentitled --grant_entitlement--> rejected invalid_argument: grant_entitlement: argument `expires_at` = \"{now}\": must lie after the time of the command
unentitled --grant_entitlement--> rejected invalid_argument: grant_entitlement: argument `expires_at` = \"{before}\": must lie after the time of the command
"
        )
    );
    assert_eq!(e, Entitlement::default());
}

#[test]
fn commands_without_an_edge_are_refused_by_name() {
    let mut e = Entitlement::default();
    let out = transcript(&mut e, &[(0, C::ApproveGrant), (0, C::Expire)]);
    assert_eq!(
        out,
        "unentitled --approve_grant--> rejected invalid_transition: approve_grant is not allowed in state unentitled of the entitlement governor
unentitled --expire--> rejected invalid_transition: expire is not allowed in state unentitled of the entitlement governor
"
    );
}

#[test]
fn the_archive_refuses_everything() {
    let mut e = Entitlement::default();
    transcript(&mut e, &[(0, C::RevokeEntitlement), (0, C::ArchiveEntitlement)]);
    assert!(State::Archived.is_terminal());
    let ctx = Ctx::at_ms(T0_MS + DAY_MS);
    for c in C::samples(&ctx).iter().chain([grant(None)].iter()) {
        assert_eq!(e.decide(c, &ctx), Err(e.invalid(c)), "{c:?}");
    }
}

#[test]
fn an_expiring_grant_arms_its_expiry_while_in_force_or_suspended() {
    let mut e = Entitlement::default();
    let expiry = Some(StateTimeout { at: day(30), command: C::Expire });
    e.apply(&grant(Some(30)), &Ctx::at_ms(T0_MS)).unwrap();
    assert_eq!(e.state_timeout(), None, "not armed while pending review");
    e.apply(&C::ApproveGrant, &Ctx::at_ms(day(1).as_ms())).unwrap();
    assert_eq!(e.state_timeout(), expiry);
    e.apply(&C::SuspendEntitlement, &Ctx::at_ms(day(2).as_ms())).unwrap();
    assert_eq!(e.state_timeout(), expiry);
    e.apply(&C::EscalateIssue, &Ctx::at_ms(day(3).as_ms())).unwrap();
    assert_eq!(e.state_timeout(), None, "not armed while escalated");
    e.apply(&C::ResolveEscalation, &Ctx::at_ms(day(4).as_ms())).unwrap();
    assert_eq!(e.state_timeout(), expiry);
    e.apply(&C::Expire, &Ctx::at_ms(day(30).as_ms())).unwrap();
    assert_eq!(e.state(), State::Expired);
    assert_eq!(e.state_timeout(), None);
}

#[test]
fn revocation_disarms_the_expiry_and_a_grant_without_end_arms_nothing() {
    let mut e = Entitlement::default();
    e.apply(&grant(Some(30)), &Ctx::at_ms(T0_MS)).unwrap();
    e.apply(&C::ApproveGrant, &Ctx::at_ms(T0_MS)).unwrap();
    assert!(e.state_timeout().is_some());
    e.apply(&C::RevokeEntitlement, &Ctx::at_ms(T0_MS)).unwrap();
    assert_eq!(e.state_timeout(), None);

    let mut e = Entitlement::default();
    e.apply(&grant(None), &Ctx::at_ms(T0_MS)).unwrap();
    e.apply(&C::ApproveGrant, &Ctx::at_ms(T0_MS)).unwrap();
    assert_eq!(e.state(), State::Entitled);
    assert_eq!(e.state_timeout(), None);
}

#[test]
fn parse_refuses_bad_arguments() {
    let unknown = C::parse("grant_entitlment", &Args::new()).unwrap_err();
    assert_eq!(unknown.argument, "command");
    assert!(matches!(unknown.problem, ArgProblem::UnknownCommand { .. }));

    let missing = C::parse("grant_entitlement", &Args::new()).unwrap_err();
    assert_eq!(missing.to_string(), "grant_entitlement: argument `feature` missing");

    let empty = C::parse("grant_entitlement", &args(&[("feature", " ")])).unwrap_err();
    assert_eq!(empty.to_string(), "grant_entitlement: argument `feature` = \" \": empty");

    let long = "f".repeat(crate::limits::TEXT_ARG_LEN_MAX + 1);
    let too_long = C::parse("grant_entitlement", &args(&[("feature", &long)])).unwrap_err();
    assert_eq!(too_long.problem, ArgProblem::TooLong { max: crate::limits::TEXT_ARG_LEN_MAX });

    let bad_time =
        C::parse("grant_entitlement", &args(&[("feature", "sso"), ("expires_at", "soon")]))
            .unwrap_err();
    assert_eq!(
        bad_time.to_string(),
        "grant_entitlement: argument `expires_at` = \"soon\": expected milliseconds since the Unix epoch"
    );

    let unexpected =
        C::parse("grant_entitlement", &args(&[("feature", "sso"), ("tier", "gold")])).unwrap_err();
    assert_eq!(
        unexpected.to_string(),
        "grant_entitlement: argument `tier` not an argument of this command"
    );

    let unexpected = C::parse("approve_grant", &args(&[("feature", "sso")])).unwrap_err();
    assert_eq!(unexpected.argument, "feature");
    assert_eq!(unexpected.problem, ArgProblem::Unexpected);
}

#[test]
fn every_sample_round_trips_through_its_args() {
    assert_every_sample_round_trips::<C>();
    assert_round_trip(&grant(None));
    assert_round_trip(&grant(Some(3)));
}

#[test]
fn replaying_the_record_rebuilds_the_machine() {
    let steps = [
        (0, grant(Some(100))),
        (1, C::ApproveGrant),
        (2, C::SuspendEntitlement),
        (3, C::ReinstateEntitlement),
        (100, C::Expire),
        (101, grant(None)),
        (102, C::ApproveGrant),
    ];
    assert_replay_tracks_live::<Entitlement>(&steps);
}

#[test]
fn a_grants_kind_and_priority_are_recorded_only_when_not_the_defaults() {
    let plain = C::GrantEntitlement {
        feature: "sso".into(),
        expires_at: None,
        kind: super::GrantKind::Manual,
        priority: 0,
    };
    // A receipt written before kinds existed has exactly these arguments.
    assert_eq!(plain.args().keys().collect::<Vec<_>>(), ["feature"]);
    let beta = C::GrantEntitlement {
        feature: "sso".into(),
        expires_at: None,
        kind: super::GrantKind::Beta,
        priority: 7,
    };
    let args = beta.args();
    assert_eq!(
        args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        ["feature=sso", "kind=beta", "priority=7"]
    );
    assert_eq!(C::parse("grant_entitlement", &args), Ok(beta));
    let mut bad = args.clone();
    bad.insert("kind".into(), "vip".into());
    let e = C::parse("grant_entitlement", &bad).unwrap_err();
    assert_eq!((e.argument.as_str(), e.value.as_deref()), ("kind", Some("vip")));
    let mut bad = args;
    bad.insert("priority".into(), "1001".into());
    let e = C::parse("grant_entitlement", &bad).unwrap_err();
    assert_eq!(e.argument, "priority");
    assert!(matches!(e.problem, ArgProblem::OutOfRange { .. }), "{e:?}");
}
