//! Seed 002's five safety gates, one function each. Every gate takes only the data it judges
//! (and the target plan), so that its verdict depends on that data alone.

use std::collections::BTreeMap;

use super::{
    Certification, Gate, GateReport, Overage, ReceiptState, SlaStatus, USAGE_METERS_MAX, Verdict,
    finite,
};
use crate::ids::Meter;
use crate::model::{Envelope, Plan};

fn report(
    gate: Gate,
    verdict: Verdict,
    reason: String,
    data: BTreeMap<&'static str, String>,
) -> GateReport {
    GateReport { gate, verdict, reason, data }
}

/// `certification_valid`: a target that requires evidence needs the tenant's certification in
/// force; a target that requires none is judged only when the certification is known.
#[must_use]
pub fn certification_valid(target: &Plan, certification: &Certification) -> GateReport {
    let required: Vec<&str> = target.evidence.iter().map(|e| e.as_str()).collect();
    let mut data = BTreeMap::new();
    data.insert("required_evidence", required.join(","));
    let (verdict, reason) = match certification {
        Certification::Valid => {
            data.insert("certification", "valid".into());
            (Verdict::Pass, "the tenant's certification is in force".to_owned())
        }
        Certification::Invalid(why) => {
            data.insert("certification", format!("invalid: {why}"));
            (Verdict::Fail, format!("the tenant's certification is not in force ({why})"))
        }
        Certification::Unknown if required.is_empty() => {
            data.insert("certification", "unknown".into());
            (
                Verdict::Skip,
                format!("no compliance record, and `{}` requires no evidence", target.id),
            )
        }
        Certification::Unknown => {
            data.insert("certification", "unknown".into());
            (
                Verdict::Fail,
                format!(
                    "no compliance record, and `{}` requires evidence ({})",
                    target.id,
                    required.join(", ")
                ),
            )
        }
    };
    report(Gate::CertificationValid, verdict, reason, data)
}

/// `infrastructure_headroom`: the capacity the host states covers the target's envelope on
/// every dimension (throughput, connections and queue depth at least the envelope's, p99
/// latency at most). Skipped when the target promises no envelope or the host states nothing.
#[must_use]
pub fn infrastructure_headroom(target: &Plan, headroom: Option<&Envelope>) -> GateReport {
    let mut data = BTreeMap::new();
    let env = |e: &Envelope| {
        format!(
            "throughput_rps={} p99_latency_ms={} connections={} queue_depth={}",
            e.throughput_rps, e.p99_latency_ms, e.connections, e.queue_depth
        )
    };
    data.insert("target_envelope", target.envelope.as_ref().map_or("none".into(), env));
    data.insert("host_headroom", headroom.map_or("none".into(), env));
    let gate = Gate::InfrastructureHeadroom;
    let Some(want) = target.envelope else {
        let reason = format!("`{}` promises no envelope", target.id);
        return report(gate, Verdict::Skip, reason, data);
    };
    let Some(have) = headroom else {
        return report(gate, Verdict::Skip, "the host states no capacity".into(), data);
    };
    let mut short = Vec::new();
    for (name, need, got) in [
        ("throughput_rps", want.throughput_rps, have.throughput_rps),
        ("connections", want.connections, have.connections),
        ("queue_depth", want.queue_depth, have.queue_depth),
    ] {
        if got < need {
            short.push(format!("{name} {got} < {need}"));
        }
    }
    if have.p99_latency_ms > want.p99_latency_ms {
        short.push(format!("p99_latency_ms {} > {}", have.p99_latency_ms, want.p99_latency_ms));
    }
    if short.is_empty() {
        let reason = format!("the host has room for `{}`'s envelope", target.id);
        report(gate, Verdict::Pass, reason, data)
    } else {
        let reason = format!("the host lacks room for `{}`: {}", target.id, short.join(", "));
        report(gate, Verdict::Fail, reason, data)
    }
}

/// `clean_receipt_state`: no failed or pending payment, no open saga. Skipped when unknown.
#[must_use]
pub fn clean_receipt_state(receipts: Option<&ReceiptState>) -> GateReport {
    let mut data = BTreeMap::new();
    let gate = Gate::CleanReceiptState;
    let Some(r) = receipts else {
        data.insert("receipts", "unknown".into());
        return report(gate, Verdict::Skip, "the receipt state is not known".into(), data);
    };
    data.insert("failed_payments", r.failed_payments.to_string());
    data.insert("pending_payments", r.pending_payments.to_string());
    data.insert("open_sagas", r.open_sagas.to_string());
    let mut open = Vec::new();
    for (n, what) in [
        (r.failed_payments, "failed payment(s)"),
        (r.pending_payments, "pending payment(s)"),
        (r.open_sagas, "open saga(s)"),
    ] {
        if n > 0 {
            open.push(format!("{n} {what}"));
        }
    }
    if open.is_empty() {
        report(gate, Verdict::Pass, "no failed or pending payment, no open saga".into(), data)
    } else {
        report(gate, Verdict::Fail, open.join(", "), data)
    }
}

/// `sla_compliance`: refuses while the tenant violates its SLA; skipped with no data.
#[must_use]
pub fn sla_compliance(sla: &SlaStatus) -> GateReport {
    let mut data = BTreeMap::new();
    let gate = Gate::SlaCompliance;
    match sla {
        SlaStatus::Compliant => {
            data.insert("sla", "compliant".into());
            report(gate, Verdict::Pass, "within the plan's envelope".into(), data)
        }
        SlaStatus::Violating(how) => {
            data.insert("sla", format!("violating: {how}"));
            report(gate, Verdict::Fail, format!("violating the SLA ({how})"), data)
        }
        SlaStatus::NoData => {
            data.insert("sla", "no_data".into());
            report(gate, Verdict::Skip, "no SLA measurement".into(), data)
        }
    }
}

/// The target's finite limits that current usage passes, by meter (at most
/// [`USAGE_METERS_MAX`] meters of `usage` are read).
#[must_use]
pub(super) fn overages(target: &Plan, usage: &BTreeMap<Meter, u64>) -> Vec<Overage> {
    usage
        .iter()
        .take(USAGE_METERS_MAX)
        .filter_map(|(meter, used)| {
            let limit = finite(target.limit(meter.as_str())?.value)?;
            (*used > limit).then(|| Overage { meter: meter.clone(), usage: *used, limit })
        })
        .collect()
}

/// `resource_availability` (the downgrade preflight): current usage of every meter fits the
/// target's limit; refuses naming each limit passed, with the usage and the target's value.
#[must_use]
pub fn resource_availability(target: &Plan, usage: &BTreeMap<Meter, u64>) -> GateReport {
    let mut data = BTreeMap::new();
    let used: Vec<String> =
        usage.iter().take(USAGE_METERS_MAX).map(|(m, n)| format!("{m}={n}")).collect();
    data.insert("usage", used.join(","));
    let limits: Vec<String> =
        target.limits.iter().map(|(m, l)| format!("{m}={}", l.value)).collect();
    data.insert("target_limits", limits.join(","));
    let over = overages(target, usage);
    let gate = Gate::ResourceAvailability;
    if over.is_empty() {
        let reason = format!("current usage fits `{}`'s limits", target.id);
        return report(gate, Verdict::Pass, reason, data);
    }
    let each: Vec<String> =
        over.iter().map(|o| format!("{} usage {} > limit {}", o.meter, o.usage, o.limit)).collect();
    let reason = format!("current usage passes `{}`'s limits: {}", target.id, each.join(", "));
    report(gate, Verdict::Fail, reason, data)
}
