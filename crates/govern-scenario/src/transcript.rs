//! The readable transcript of a run: one line per step (what it did, the transition or the
//! refusal, the receipt's sequence number and short hash, whether its expectations held),
//! failures with what was expected and what happened, and a summary.

use std::fmt::Write as _;

use crate::run::{RunReport, StepOutcome, StepReport};
use crate::spec::{Action, Scenario, TenantSpec};

/// The heading printed before a scenario runs.
#[must_use]
pub fn heading(scenario: &Scenario, file: &str) -> String {
    format!(
        "scenario {} ({file})\n  {}\n  clock starts at {}",
        scenario.name, scenario.description, scenario.start
    )
}

/// The line saying the declared tenants are provisioned, once they are
/// ([`crate::Progress::Provisioned`]); none without tenants.
#[must_use]
pub fn provisioned(tenants: &[TenantSpec]) -> Option<String> {
    let ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
    (!ids.is_empty()).then(|| format!("  tenants provisioned: {}", ids.join(", ")))
}

/// What a step does, in a few words.
fn what(action: &Action) -> String {
    match action {
        Action::Command { target, name, .. } => format!("{target} {name}"),
        Action::Advance { text, .. } => format!("advance {text}"),
        Action::Crash { target, point } => {
            let when = match point {
                govern_runtime::CrashPoint::Now => "now",
                _ => "after its next append",
            };
            format!("crash {target} {when}")
        }
        Action::Restart => "restart the runtime from its data directory".into(),
        Action::Verify => "verify the ledger".into(),
        Action::Check { target } => format!("check {target}"),
        Action::Entitled { tenant, feature, action, quantity } => {
            format!("may {tenant} {action} {feature} ×{quantity}")
        }
        Action::Saga { tenant, run, saga, fail_step, crash_after, .. } => {
            let mut w = format!("{tenant} runs saga {saga} as {run}");
            if let Some(step) = fail_step {
                let _ = write!(w, ", step {step} failing");
            }
            if let Some(n) = crash_after {
                let _ = write!(w, ", crash after record {n}");
            }
            w
        }
        Action::ResumeSagas => "resume the unfinished sagas".into(),
        Action::Usage { tenant, meter, quantity, event } => {
            format!("{tenant} uses {quantity} {meter} (event {event})")
        }
        Action::ClosePeriod { tenant, period } => format!("close {tenant}'s {period}"),
        Action::PlanChange { tenant, to, subscription, apply } => {
            let verb = if *apply { "apply" } else { "simulate" };
            match subscription {
                Some(s) => format!("{verb} {tenant}'s {s} to {to}"),
                None => format!("{verb} {tenant}'s plan change to {to}"),
            }
        }
    }
}

/// The lines of one step: the step, then any receipts it caused and failed expectations.
#[must_use]
pub fn step_lines(r: &StepReport) -> String {
    let mark = if r.failed.is_empty() { "ok" } else { "FAILED" };
    let result = match &r.outcome {
        StepOutcome::Accepted { from, to, seq, hash } => {
            format!("{from} → {to}  #{seq} {}", hash.short())
        }
        StepOutcome::Refused { code, status, retry_after: Some(secs), .. } => {
            format!("refused {code} ({status}), retry after {secs} s")
        }
        StepOutcome::Refused { code, status, .. } => format!("refused {code} ({status})"),
        StepOutcome::Advanced { now, fired } => {
            format!("clock at {now}, {} state timeout(s)", fired.len())
        }
        StepOutcome::Crashed { state } => {
            format!("crashed; restarted by its supervisor, replayed to {state}")
        }
        StepOutcome::Quarantined { retry_after_ms } => {
            format!("crashed once too often; quarantined for {retry_after_ms} ms (receipted)")
        }
        StepOutcome::Allowed { decided_by } => format!("allowed by {decided_by}"),
        StepOutcome::Counted { value, quota } => format!("counted: {value}, quota {quota}"),
        StepOutcome::Duplicate => "duplicate: nothing changed".into(),
        StepOutcome::PlanChanged { kind, allowed, applied, gates, .. } => {
            let gates: Vec<String> = gates.iter().map(|(g, v)| format!("{g} {v}")).collect();
            let head = match (applied, allowed) {
                (Some(seq), _) => format!("applied #{seq}"),
                (None, true) => "allowed".into(),
                (None, false) => "refused".into(),
            };
            format!("{head} ({}): {}", kind.unwrap_or("no path"), gates.join(", "))
        }
        StepOutcome::Invoiced { total, currency, lines, seq, closed_now } => {
            let how = if *closed_now { "closed" } else { "already closed" };
            format!("{how}: invoice of {total} {currency}, {lines} line(s), #{seq}")
        }
        StepOutcome::SagaEnded { ends } => ends
            .iter()
            .map(|(run, state, note)| {
                if note.is_empty() {
                    format!("{run} {state}")
                } else {
                    format!("{run} {state} ({note})")
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        StepOutcome::CrashArmed => "armed; its supervisor will restart it".into(),
        StepOutcome::Restarted { head } => format!("restarted at #{}", head.next_seq),
        StepOutcome::Verified { head } => {
            format!("chain verified: {} receipts, head {}", head.next_seq, head.last_hash.short())
        }
        StepOutcome::State { state } => format!("state {state}"),
        StepOutcome::Failed { message } => format!("failed: {message}"),
    };
    let mut out = format!("{:>4}  {:<52} {result}  [{mark}]", r.index, what(&r.step.action));
    if let Some(note) = &r.step.note {
        let _ = write!(out, "\n        {note}");
    }
    if let StepOutcome::Advanced { fired, .. } = &r.outcome {
        for receipt in fired {
            let b = &receipt.body;
            let _ = write!(
                out,
                "\n        {} {}/{} {} {} → {}  #{} {}",
                b.tenant,
                b.governor,
                b.resource,
                b.command,
                b.state_from,
                b.state_to,
                receipt.seq,
                receipt.hash.short()
            );
        }
    }
    for failure in &r.failed {
        let _ = write!(out, "\n        expectation failed at line {}: {failure}", r.step.at.line);
    }
    out
}

/// The summary after the last step.
#[must_use]
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    for failure in &report.run_failed {
        let _ = writeln!(out, "  expectation failed: {failure}");
    }
    let counts: Vec<String> = report.receipts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let verified = match &report.verified {
        Ok(n) => format!("chain verified ({n} receipts on disk)"),
        Err(e) => format!("chain NOT verified: {e}"),
    };
    let _ = write!(
        out,
        "summary: {} steps, {} expectations met, {} failed; {} receipts written ({}); {verified}; head {}",
        report.steps.len(),
        report.met(),
        report.failed(),
        report.head.next_seq,
        counts.join(", "),
        report.head.last_hash.short()
    );
    out
}
