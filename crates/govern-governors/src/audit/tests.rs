//! Audit governor: every record is a counted self-transition; arguments round-trip.

use super::{Command, State, Trail};
use crate::args::{ArgProblem, Args, CommandSpec};
use crate::governor::Governor;
use crate::kind::GovernorKind;
use crate::testing::{assert_every_sample_round_trips, assert_replay_tracks_live, transcript};

fn quarantine(level: u64) -> Command {
    Command::RecordQuarantine {
        governor: GovernorKind::Billing,
        resource: "pay-1".into(),
        level,
        length_ms: 1_000 << (level - 1),
    }
}

#[test]
fn every_record_is_a_self_transition_and_is_counted() {
    let mut trail = Trail::default();
    let out = transcript(&mut trail, &[(0, quarantine(1)), (1, quarantine(2))]);
    assert_eq!(
        out,
        "recording --record_quarantine--> recording\nrecording --record_quarantine--> recording\n"
    );
    assert_eq!(trail.state(), State::Recording);
    assert_eq!(trail.quarantines(), 2);
    assert_eq!(
        trail.last_quarantine_at().map(crate::time::Timestamp::as_ms),
        Some(crate::testing::T0_MS + crate::time::DAY_MS)
    );
}

#[test]
fn replay_rebuilds_the_trail() {
    assert_replay_tracks_live::<Trail>(&[
        (0, quarantine(1)),
        (0, quarantine(2)),
        (3, quarantine(3)),
    ]);
}

#[test]
fn commands_round_trip_and_bad_arguments_are_named() {
    assert_every_sample_round_trips::<Command>();
    let mut args: Args = quarantine(1).args();
    args.insert("governor".into(), "payroll".into());
    let e = Command::parse("record_quarantine", &args).unwrap_err();
    assert_eq!((e.argument.as_str(), e.value.as_deref()), ("governor", Some("payroll")));
    assert_eq!(e.problem, ArgProblem::Malformed { expected: "a governor kind" });
    let mut args: Args = quarantine(1).args();
    args.insert("level".into(), "0".into());
    let e = Command::parse("record_quarantine", &args).unwrap_err();
    assert_eq!(e.argument, "level");
    assert_eq!(e.problem, ArgProblem::OutOfRange { expected: "a quarantine level of 1 or more" });
}

#[test]
fn an_invoice_record_keeps_one_encoding_of_its_lines_and_total() {
    let samples = Command::samples(&crate::time::Ctx::at_ms(crate::testing::T0_MS));
    let Some(invoice) = samples.iter().find(|c| c.name() == "record_invoice") else {
        panic!("an invoice sample")
    };
    let args = invoice.args();
    assert_eq!(args["lines"], "base - 1 29 29.00\noverage api_calls 5000 0.001 5.00");
    assert_eq!(Command::parse("record_invoice", &args).as_ref(), Ok(invoice));
    let bad = |arg: &str, value: &str| {
        let mut a = args.clone();
        a.insert(arg.into(), value.into());
        Command::parse("record_invoice", &a).unwrap_err().argument
    };
    assert_eq!(bad("lines", "base - 1 +29 29.00"), "lines", "+29 is not how 29 is written");
    assert_eq!(bad("lines", "refund - 1 29 29.00"), "lines");
    assert_eq!(bad("lines", "base - 1 29 -29.00"), "lines");
    assert_eq!(bad("lines", "base - 1 29 29.00 extra"), "lines");
    assert_eq!(bad("total", "34.00 "), "total");
    assert_eq!(bad("total", "-1"), "total");
    assert_eq!(bad("period", "2026-13"), "period");
    assert_eq!(bad("period", "26-01"), "period");
    let month = |value: &str| {
        let a: crate::Args = [("period".to_owned(), value.to_owned())].into();
        Command::parse("finalize_invoice", &a).map_err(|e| e.argument)
    };
    assert_eq!(month("2026-01"), Ok(Command::FinalizeInvoice { period: "2026-01".into() }));
    assert_eq!(month("2026-13"), Err("period".to_owned()));
    assert_eq!(bad("currency", "usd"), "currency");
    assert_eq!(bad("currency", "ZZZ"), "currency", "three capitals, but no currency");
}

#[test]
fn deliveries_and_invoices_are_counted() {
    let samples = Command::samples(&crate::time::Ctx::at_ms(crate::testing::T0_MS));
    let mut trail = Trail::default();
    let steps: Vec<(u64, Command)> = samples
        .into_iter()
        .filter(|c| matches!(c.name(), "record_webhook" | "record_invoice"))
        .map(|c| (0, c))
        .collect();
    transcript(&mut trail, &steps);
    assert_eq!((trail.webhooks(), trail.invoices()), (1, 1));
}

#[test]
fn an_sla_record_reads_back_and_keeps_one_encoding_of_its_figures() {
    let samples = Command::samples(&crate::time::Ctx::at_ms(crate::testing::T0_MS));
    let Some(sla) = samples.iter().find(|c| c.name() == "record_sla_violation") else {
        panic!("an sla sample")
    };
    let args = sla.args();
    assert_eq!(args["dimension"], "p99_latency");
    assert!(!args.contains_key("event"), "the event is the command's name");
    assert_eq!((args["measured"].as_str(), args["promised"].as_str()), ("163.839", "100"));
    assert_eq!(Command::parse("record_sla_violation", &args).as_ref(), Ok(sla));
    let Ok(Command::RecordSla { event: super::SlaEvent::Recovered, .. }) =
        Command::parse("record_sla_recovery", &args)
    else {
        panic!("the recovery's name makes a recovery")
    };
    let with = |arg: &str, value: &str| {
        let mut a = args.clone();
        a.insert(arg.into(), value.into());
        Command::parse("record_sla_violation", &a)
    };
    // A recovery by quiet measures nothing.
    let Ok(Command::RecordSla { measured: None, .. }) = with("measured", "none") else {
        panic!("`none` is no figure")
    };
    for (arg, value) in [
        ("measured", "163.8390"),
        ("measured", "-1"),
        ("promised", "1e2"),
        ("dimension", "connections"),
        ("window_ms", "0"),
    ] {
        assert_eq!(with(arg, value).unwrap_err().argument, arg, "{arg}={value}");
    }
}
