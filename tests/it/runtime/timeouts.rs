//! gen_statem-style state timeouts on the runtime clock: a trial ends at its deadline and not
//! before, a state change cancels the timeout, timers fire on their own as virtual time passes,
//! the tenant and compliance governors' timeouts, and a passivated governor's timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::compliance::{Audit, Command as AuditCommand, Domain, Severity, State};
use govern_governors::subscription::State as SubState;
use govern_governors::tenant::{Command as TenantCommand, State as TenantState};
use govern_governors::{DAY_MS, Governor, GovernorKind, MINUTE_MS, ResourceId, TenantId};
use govern_receipt::Receipt;
use govern_runtime::RuntimeHandle;

use super::{T0, resource, started, tenant};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const MINUTE: Duration = Duration::from_secs(60);

fn receipts(h: &RuntimeHandle, t: &TenantId, kind: GovernorKind, r: &ResourceId) -> Vec<Receipt> {
    h.receipts(t, Some(kind), Some(r)).unwrap()
}

fn commands(h: &RuntimeHandle, t: &TenantId, kind: GovernorKind, r: &ResourceId) -> Vec<String> {
    receipts(h, t, kind, r).iter().map(|r| r.body.command.to_string()).collect()
}

/// Asserts that `receipt` was sent by a state timeout at `at`, from `from` to `to`.
fn assert_timeout_receipt(receipt: &Receipt, command: &str, from: &str, to: &str, at_ms: u64) {
    assert_eq!(receipt.body.command, command);
    assert_eq!((&*receipt.body.state_from, &*receipt.body.state_to), (from, to));
    assert_eq!(receipt.body.reason, "state timeout");
    assert_eq!(
        receipt.body.metadata,
        BTreeMap::from([("source".to_owned(), "state_timeout".to_owned())])
    );
    assert_eq!(receipt.body.timestamp, T0.plus_ms(at_ms));
}

#[tokio::test(start_paused = true)]
async fn a_trial_ends_by_its_state_timeout_at_day_14_and_not_before() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    assert_eq!(sub.snapshot().await.unwrap().machine.trial_end(), Some(T0.plus_ms(14 * DAY_MS)));

    tokio::time::advance(13 * DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(sub.state().await.unwrap(), SubState::FreeTrial);
    assert_eq!(h.head().next_seq, 3);

    tokio::time::advance(DAY).await;
    assert_eq!(h.now(), T0.plus_ms(14 * DAY_MS));
    assert_eq!(h.fire_due_timeouts().await, 1);
    assert_eq!(sub.state().await.unwrap(), SubState::Paused);
    let rs = receipts(&h, &acme, GovernorKind::Subscription, &sub_1);
    assert_eq!(rs.len(), 2);
    assert_timeout_receipt(&rs[1], "end_trial", "free_trial", "paused", 14 * DAY_MS);
    assert_eq!((rs[1].seq, rs[1].body.resource_seq), (3, 1));
    // Nothing more is due.
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(h.head().next_seq, 4);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_state_change_cancels_the_trial_timeout() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    tokio::time::advance(2 * DAY).await;
    let converted = sub.activate(None, "converted").await.unwrap();
    assert_eq!((converted.from, converted.to), ("free_trial", "active"));

    tokio::time::advance(13 * DAY).await; // day 15
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(sub.state().await.unwrap(), SubState::Active);
    assert_eq!(
        commands(&h, &acme, GovernorKind::Subscription, &sub_1),
        ["start_trial", "activate"]
    );
    assert_eq!(h.head().next_seq, 4);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_due_trial_timeout_fires_by_itself_as_virtual_time_passes() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();

    // The automatic path: on paused time, this sleep advances virtual time (tokio jumps from
    // timer to timer), so the trial's timer task wakes at day 14 and delivers `end_trial`
    // itself; no `fire_due_timeouts` here.
    tokio::time::sleep(14 * DAY + MINUTE).await;
    assert_eq!(sub.state().await.unwrap(), SubState::Paused);
    let rs = receipts(&h, &acme, GovernorKind::Subscription, &sub_1);
    assert_eq!(rs.len(), 2);
    assert_timeout_receipt(&rs[1], "end_trial", "free_trial", "paused", 14 * DAY_MS);
    assert_eq!(h.fire_due_timeouts().await, 0, "it was delivered once, by the timer");
    assert_eq!(h.head().next_seq, 4);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_maintenance_window_closes_by_itself_at_its_end() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let t = h.tenant(&acme);
    let opened = t
        .send(TenantCommand::ScheduleMaintenance { duration_minutes: Some(90) }, "db upgrade")
        .await
        .unwrap();
    assert_eq!((opened.from, opened.to), ("active", "maintenance"));
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Maintenance));
    assert_eq!(t.snapshot().await.unwrap().machine.window_end(), Some(T0.plus_ms(90 * MINUTE_MS)));
    // Other governors are admitted during maintenance.
    h.subscription(&acme, &resource("sub-1")).start_trial("pro", 14, "signed up").await.unwrap();

    tokio::time::advance(89 * MINUTE).await;
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Maintenance));

    tokio::time::advance(MINUTE).await;
    assert_eq!(h.fire_due_timeouts().await, 1);
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Active));
    let snapshot = t.snapshot().await.unwrap();
    assert_eq!(snapshot.machine.state(), TenantState::Active);
    assert_eq!(snapshot.machine.window_end(), None);
    let rs = receipts(&h, &acme, GovernorKind::Tenant, &resource("acme"));
    assert_eq!(rs.len(), 4);
    assert_timeout_receipt(&rs[3], "end_maintenance", "maintenance", "active", 90 * MINUTE_MS);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_missed_remediation_deadline_makes_the_audit_non_compliant_with_severity_raised() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, audit_1) = (tenant("acme"), resource("audit-1"));
    let audit = h.governor::<Audit>(&acme, &audit_1);
    audit.send(AuditCommand::StartAudit { domain: Domain::Soc2 }, "yearly").await.unwrap();
    audit.send(AuditCommand::BeginReview, "auditor assigned").await.unwrap();
    let finding = "access reviews not performed".to_owned();
    audit
        .send(
            AuditCommand::MarkNonCompliant { severity: Severity::Medium, finding: finding.clone() },
            "found",
        )
        .await
        .unwrap();
    let remediation =
        audit.send(AuditCommand::RequestRemediation { deadline_days: 30 }, "fix it").await.unwrap();
    assert_eq!(remediation.to, "remediation_required");
    let before = audit.snapshot().await.unwrap().machine;
    assert_eq!(before.remediation_due(), Some(T0.plus_ms(30 * DAY_MS)));
    assert_eq!((before.severity(), before.overdue()), (Some(Severity::Medium), 0));

    tokio::time::advance(29 * DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(audit.state().await.unwrap(), State::RemediationRequired);

    tokio::time::advance(DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 1);
    let after = audit.snapshot().await.unwrap();
    assert_eq!(after.machine.state(), State::NonCompliant);
    assert_eq!(after.machine.severity(), Some(Severity::High));
    assert_eq!(after.machine.overdue(), 1);
    assert_eq!(after.machine.findings(), 1);
    assert_eq!(after.machine.finding(), Some(finding.as_str()));
    assert_eq!(after.receipts, 5);
    let rs = receipts(&h, &acme, GovernorKind::Compliance, &audit_1);
    assert_timeout_receipt(
        &rs[4],
        "remediation_overdue",
        "remediation_required",
        "non_compliant",
        30 * DAY_MS,
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_passivated_governors_timeout_still_fires_and_brings_it_back() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    assert_eq!(h.resident_governors(), 2); // the tenant governor and sub-1
    assert_eq!(h.passivate_idle(Duration::ZERO), 2);
    assert_eq!(h.resident_governors(), 0);

    tokio::time::advance(14 * DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 1);
    assert_eq!(h.resident_governors(), 1, "sub-1 came back to decide its timeout");
    let snapshot = sub.snapshot().await.unwrap();
    assert_eq!(snapshot.machine.state(), SubState::Paused);
    assert_eq!(snapshot.receipts, 2);
    assert_eq!(
        commands(&h, &acme, GovernorKind::Subscription, &sub_1),
        ["start_trial", "end_trial"]
    );
    let rs = receipts(&h, &acme, GovernorKind::Subscription, &sub_1);
    assert_timeout_receipt(&rs[1], "end_trial", "free_trial", "paused", 14 * DAY_MS);
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(h.head().next_seq, 4);
    rt.shutdown().await.unwrap();
}
