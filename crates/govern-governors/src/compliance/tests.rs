//! Audit walks: review, findings, remediation overdue on time, guards, parsing.

use super::{Audit, Command as C, Domain, Severity, State};
use crate::args::{ArgProblem, Args, CommandSpec};
use crate::testing::{T0_MS, assert_replay_tracks_live, assert_round_trip, transcript};
use crate::time::{Ctx, DAY_MS, Timestamp};
use crate::{Governor, StateTimeout};

fn start() -> C {
    C::StartAudit { domain: Domain::Gdpr }
}

fn finding(severity: Severity) -> C {
    C::MarkNonCompliant { severity, finding: "no data processing register".into() }
}

fn args(pairs: &[(&str, &str)]) -> Args {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn main_walk_from_audit_to_remediation_and_re_audit() {
    let mut a = Audit::default();
    let steps = [
        (0, start()),
        (1, C::BeginReview),
        (2, finding(Severity::Medium)),
        (3, C::RequestRemediation { deadline_days: 30 }),
        (33, C::RemediationOverdue),
        (34, C::RequestRemediation { deadline_days: 10 }),
        (40, C::MarkCompliant),
        (100, C::BeginReview),
        (101, C::MarkCompliant),
    ];
    assert_eq!(
        transcript(&mut a, &steps),
        "pending_audit --start_audit--> pending_audit
pending_audit --begin_review--> under_review
under_review --mark_non_compliant--> non_compliant
non_compliant --request_remediation--> remediation_required
remediation_required --remediation_overdue--> non_compliant
non_compliant --request_remediation--> remediation_required
remediation_required --mark_compliant--> compliant
compliant --begin_review--> under_review
under_review --mark_compliant--> compliant
"
    );
    assert_eq!(a.domain(), Some(&Domain::Gdpr));
    assert_eq!(a.findings(), 1);
    assert_eq!(a.overdue(), 1);
    assert_eq!(a.severity(), None);
    assert_eq!(a.finding(), None);
    assert_eq!(a.remediation_due(), None);
}

#[test]
fn a_finding_records_severity_text_and_count() {
    let mut a = Audit::default();
    transcript(&mut a, &[(0, start()), (1, C::BeginReview), (2, finding(Severity::Low))]);
    assert_eq!(a.state(), State::NonCompliant);
    assert_eq!(a.severity(), Some(Severity::Low));
    assert_eq!(a.finding(), Some("no data processing register"));
    assert_eq!(a.findings(), 1);
}

#[test]
fn an_audit_starts_only_once() {
    let mut a = Audit::default();
    assert_eq!(
        transcript(&mut a, &[(0, start()), (1, C::StartAudit { domain: Domain::Hipaa })]),
        "pending_audit --start_audit--> pending_audit
pending_audit --start_audit--> rejected precondition_failed: start_audit refused: the audit has already started
"
    );
    assert_eq!(a.domain(), Some(&Domain::Gdpr));
}

#[test]
fn review_needs_a_domain() {
    let mut a = Audit::default();
    assert_eq!(
        transcript(&mut a, &[(0, C::BeginReview)]),
        "pending_audit --begin_review--> rejected precondition_failed: begin_review refused: start_audit must come first\n"
    );
}

#[test]
fn commands_without_an_edge_are_invalid_transitions() {
    let mut a = Audit::default();
    assert_eq!(
        transcript(&mut a, &[(0, C::MarkCompliant), (0, start()), (0, C::BeginReview), (0, C::BeginReview)]),
        "pending_audit --mark_compliant--> rejected invalid_transition: mark_compliant is not allowed in state pending_audit of the compliance governor
pending_audit --start_audit--> pending_audit
pending_audit --begin_review--> under_review
under_review --begin_review--> rejected invalid_transition: begin_review is not allowed in state under_review of the compliance governor
"
    );
}

#[test]
fn remediation_is_overdue_only_at_its_deadline_and_escalates() {
    let mut a = Audit::default();
    let steps = [
        (0, start()),
        (0, C::BeginReview),
        (0, finding(Severity::High)),
        (1, C::RequestRemediation { deadline_days: 7 }),
        (7, C::RemediationOverdue),
        (8, C::RemediationOverdue),
    ];
    assert_eq!(
        transcript(&mut a, &steps),
        format!(
            "pending_audit --start_audit--> pending_audit
pending_audit --begin_review--> under_review
under_review --mark_non_compliant--> non_compliant
non_compliant --request_remediation--> remediation_required
remediation_required --remediation_overdue--> rejected too_early: remediation_overdue is too early: allowed from 2026-01-09T00:00:00Z
remediation_required --remediation_overdue--> non_compliant
"
        )
    );
    assert_eq!(a.severity(), Some(Severity::Critical));
    assert_eq!(a.overdue(), 1);
    assert_eq!(a.remediation_due(), Some(Timestamp(T0_MS + 8 * DAY_MS)));
}

#[test]
fn severity_escalates_one_level_and_critical_stays() {
    assert_eq!(Severity::Low.escalated(), Severity::Medium);
    assert_eq!(Severity::Medium.escalated(), Severity::High);
    assert_eq!(Severity::High.escalated(), Severity::Critical);
    assert_eq!(Severity::Critical.escalated(), Severity::Critical);
    let mut a = Audit::default();
    let mut steps = vec![(0, start()), (0, C::BeginReview), (0, finding(Severity::Critical))];
    for i in 0..2 {
        steps.push((i * 10, C::RequestRemediation { deadline_days: 1 }));
        steps.push((i * 10 + 1, C::RemediationOverdue));
    }
    let out = transcript(&mut a, &steps);
    assert!(!out.contains("rejected"), "{out}");
    assert_eq!(a.severity(), Some(Severity::Critical));
    assert_eq!(a.overdue(), 2);
}

#[test]
fn remediation_arms_the_overdue_timeout_and_leaving_disarms_it() {
    let mut a = Audit::default();
    for c in [start(), C::BeginReview, finding(Severity::Low)] {
        a.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
        assert_eq!(a.state_timeout(), None);
    }
    a.apply(&C::RequestRemediation { deadline_days: 14 }, &Ctx::at_ms(T0_MS + DAY_MS)).unwrap();
    let at = Timestamp(T0_MS + 15 * DAY_MS);
    assert_eq!(a.state_timeout(), Some(StateTimeout { at, command: C::RemediationOverdue }));
    a.apply(&C::MarkCompliant, &Ctx::at_ms(T0_MS + 2 * DAY_MS)).unwrap();
    assert_eq!(a.state_timeout(), None);
}

#[test]
fn the_overdue_timeout_fires_into_non_compliant_and_disarms() {
    let mut a = Audit::default();
    for c in [
        start(),
        C::BeginReview,
        finding(Severity::Low),
        C::RequestRemediation { deadline_days: 3 },
    ] {
        a.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
    }
    let timeout = a.state_timeout().unwrap();
    assert_eq!(timeout.at, Timestamp(T0_MS + 3 * DAY_MS));
    let t = a.apply(&timeout.command, &Ctx { now: timeout.at }).unwrap();
    assert_eq!((t.from, t.to), (State::RemediationRequired, State::NonCompliant));
    assert_eq!(a.state_timeout(), None);
    assert_eq!(a.severity(), Some(Severity::Medium));
}

#[test]
fn parse_errors_name_the_argument_and_problem() {
    let err = C::parse("start_audit", &args(&[("domain", "sox")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "start_audit: argument `domain` = \"sox\": expected one of gdpr, hipaa, soc2, pci_dss, iso27001 or custom:<name> (1 to 64 of a-z, 0-9, _, -)"
    );
    for bad in [
        "GDPR",
        "custom:",
        "custom:Acme",
        "custom:a b",
        "custom:caf\u{e9}",
        &format!("custom:{}", "a".repeat(65)),
    ] {
        let err = C::parse("start_audit", &args(&[("domain", bad)])).unwrap_err();
        assert_eq!(err.argument, "domain", "{bad}");
        assert!(matches!(err.problem, ArgProblem::Malformed { .. }), "{bad}");
    }
    let err = C::parse("start_audit", &Args::new()).unwrap_err();
    assert_eq!(err.to_string(), "start_audit: argument `domain` missing");
    let err = C::parse("begin_review", &args(&[("domain", "gdpr")])).unwrap_err();
    assert_eq!(err.to_string(), "begin_review: argument `domain` not an argument of this command");

    let err = C::parse("mark_non_compliant", &args(&[("severity", "severe"), ("finding", "x")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "mark_non_compliant: argument `severity` = \"severe\": expected one of low, medium, high, critical"
    );
    let err = C::parse("mark_non_compliant", &args(&[("severity", "low"), ("finding", " ")]))
        .unwrap_err();
    assert_eq!(err.to_string(), "mark_non_compliant: argument `finding` = \" \": empty");
    let err = C::parse("mark_non_compliant", &args(&[("severity", "low")])).unwrap_err();
    assert_eq!(err.to_string(), "mark_non_compliant: argument `finding` missing");

    for days in ["0", "366"] {
        let err = C::parse("request_remediation", &args(&[("deadline_days", days)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "request_remediation: argument `deadline_days` = \"{days}\": out of range; expected 1 to 365 days"
            )
        );
    }
    let err = C::parse("request_remediation", &args(&[("deadline_days", "soon")])).unwrap_err();
    assert_eq!(err.problem, ArgProblem::Malformed { expected: "1 to 365 days" });

    let err = C::parse("close_audit", &Args::new()).unwrap_err();
    assert_eq!(err.argument, "command");
    assert!(matches!(err.problem, ArgProblem::UnknownCommand { .. }));
}

#[test]
fn domains_parse_and_print_canonically() {
    for (text, domain) in [
        ("gdpr", Domain::Gdpr),
        ("hipaa", Domain::Hipaa),
        ("soc2", Domain::Soc2),
        ("pci_dss", Domain::PciDss),
        ("iso27001", Domain::Iso27001),
        ("custom:acme-sec_2", Domain::Custom("acme-sec_2".into())),
        ("custom:gdpr", Domain::Custom("gdpr".into())),
    ] {
        assert_eq!(text.parse::<Domain>(), Ok(domain.clone()));
        assert_eq!(domain.to_string(), text);
    }
    assert_eq!(Domain::custom(&"z".repeat(64)), Some(Domain::Custom("z".repeat(64))));
    assert_eq!(Domain::custom(""), None);
    for s in [Severity::Low, Severity::Medium, Severity::High, Severity::Critical] {
        assert_eq!(s.name().parse::<Severity>(), Ok(s));
    }
}

#[test]
fn every_sample_round_trips_through_its_args() {
    let samples = C::samples(&Ctx::at_ms(T0_MS));
    for name in C::NAMES {
        assert!(samples.iter().any(|c| c.name() == *name), "{name} has no sample");
    }
    for c in samples {
        assert_round_trip(&c);
    }
    assert_round_trip(&C::StartAudit { domain: Domain::Custom("acme".into()) });
    assert_round_trip(&C::StartAudit { domain: Domain::PciDss });
    assert_round_trip(&finding(Severity::Critical));
    assert_round_trip(&C::RequestRemediation { deadline_days: 365 });
}

#[test]
fn replaying_the_record_rebuilds_the_machine() {
    let steps = [
        (0, C::StartAudit { domain: Domain::Custom("acme".into()) }),
        (1, C::BeginReview),
        (2, finding(Severity::Low)),
        (3, C::RequestRemediation { deadline_days: 5 }),
        (9, C::RemediationOverdue),
    ];
    assert_replay_tracks_live::<Audit>(&steps);
}
