//! gen_statem-style state timeouts on the runtime clock: a trial ends at its deadline and not
//! before, a state change cancels the timeout, timers fire on their own as virtual time passes,
//! the tenant and compliance governors' timeouts, a passivated governor's timeout, due
//! timeouts of every kind in deadline order, and timeouts under tenant admission (held while
//! the tenant is suspended, never fired once it is deprovisioned).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use govern_governors::catalog::{Command as CatalogCommand, Product};
use govern_governors::compliance::{Audit, Command as AuditCommand, Domain, Severity, State};
use govern_governors::entitlement::{Command as EntitlementCommand, Entitlement};
use govern_governors::subscription::State as SubState;
use govern_governors::tenant::{Command as TenantCommand, State as TenantState};
use govern_governors::{
    DAY_MS, Governor, GovernorKind, MINUTE_MS, ResourceId, TenantId, Timestamp,
};
use govern_receipt::Receipt;
use govern_runtime::RuntimeHandle;

use super::{DAY, MINUTE, T0, resource, started, tenant};

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
    assert_eq!(h.passivate_idle(Duration::ZERO).await, 2);
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

/// Arms four state timeouts of four kinds for tenant `t`, `days` from now each: a grant's
/// expiry (entitlement `grant-1`), a product's sunset (catalog `prod-1`), a remediation
/// deadline (compliance `audit-1`) and a trial's end (subscription `sub-1`).
async fn arm_four_kinds(h: &RuntimeHandle, t: &TenantId, days: [u64; 4]) {
    let [expiry, sunset, remediation, trial] = days;
    let now = h.now();
    let grant = h.governor::<Entitlement>(t, &resource("grant-1"));
    let expires_at = Some(now.plus_ms(expiry * DAY_MS));
    grant
        .send(
            EntitlementCommand::GrantEntitlement {
                feature: "sso".into(),
                expires_at,
                kind: Default::default(),
                priority: 0,
            },
            "deal",
        )
        .await
        .unwrap();
    grant.send(EntitlementCommand::ApproveGrant, "approved").await.unwrap();
    let product = h.governor::<Product>(t, &resource("prod-1"));
    product.send(CatalogCommand::SubmitForApproval { sku: "PRO-1".into() }, "new").await.unwrap();
    product.send(CatalogCommand::ApproveProduct, "approved").await.unwrap();
    let sunset_at = Some(now.plus_ms(sunset * DAY_MS));
    product.send(CatalogCommand::DeprecateProduct { sunset_at }, "replaced").await.unwrap();
    let audit = h.governor::<Audit>(t, &resource("audit-1"));
    audit.send(AuditCommand::StartAudit { domain: Domain::Soc2 }, "yearly").await.unwrap();
    audit.send(AuditCommand::BeginReview, "auditor assigned").await.unwrap();
    let finding = "access reviews not performed".to_owned();
    let non_compliant = AuditCommand::MarkNonCompliant { severity: Severity::Medium, finding };
    audit.send(non_compliant, "found").await.unwrap();
    let deadline_days = u32::try_from(remediation).unwrap();
    audit.send(AuditCommand::RequestRemediation { deadline_days }, "fix it").await.unwrap();
    let trial_days = u32::try_from(trial).unwrap();
    h.subscription(t, &resource("sub-1"))
        .start_trial("pro", trial_days, "signed up")
        .await
        .unwrap();
}

/// The receipts state timeouts sent for `tenants`, in ledger order.
fn timeout_receipts(h: &RuntimeHandle, tenants: &[&TenantId]) -> Vec<Receipt> {
    let mut out: Vec<Receipt> = tenants
        .iter()
        .flat_map(|t| h.receipts(t, None, None).unwrap())
        .filter(|r| r.body.metadata.get("source").map(String::as_str) == Some("state_timeout"))
        .collect();
    out.sort_by_key(|r| r.seq);
    out
}

/// (tenant, command, decision time) of each receipt.
fn fired(receipts: &[Receipt]) -> Vec<(String, String, Timestamp)> {
    receipts
        .iter()
        .map(|r| (r.body.tenant.to_string(), r.body.command.to_string(), r.body.timestamp))
        .collect()
}

fn at(tenant: &str, command: &str, day: u64) -> (String, String, Timestamp) {
    (tenant.to_owned(), command.to_owned(), T0.plus_ms(day * DAY_MS))
}

#[tokio::test(start_paused = true)]
async fn due_timeouts_of_every_kind_fire_in_deadline_order_in_one_advance() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    // Deadlines: expiry day 25, sunset day 18, remediation day 10, trial end day 4; by kind
    // (entitlement, catalog, subscription, compliance) they would come nearly reversed.
    arm_four_kinds(&h, &acme, [25, 18, 10, 4]).await;
    let before = h.head().next_seq;

    // One jump over every deadline: whoever delivers them (the runtime as the clock passes,
    // or this call), they are decided at day 30, in deadline order.
    tokio::time::advance(30 * DAY).await;
    h.fire_due_timeouts().await;
    assert_eq!(
        fired(&timeout_receipts(&h, &[&acme])),
        [
            at("acme", "end_trial", 30),
            at("acme", "remediation_overdue", 30),
            at("acme", "delist_product", 30),
            at("acme", "expire", 30),
        ]
    );
    assert_eq!(h.head().next_seq, before + 4);
    assert_eq!(h.fire_due_timeouts().await, 0);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn due_timeouts_of_every_kind_fire_at_their_own_deadlines_as_time_passes() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    arm_four_kinds(&h, &acme, [25, 18, 10, 4]).await;
    // The automatic path: virtual time moves from deadline to deadline.
    tokio::time::sleep(30 * DAY).await;
    assert_eq!(
        fired(&timeout_receipts(&h, &[&acme])),
        [
            at("acme", "end_trial", 4),
            at("acme", "remediation_overdue", 10),
            at("acme", "delist_product", 18),
            at("acme", "expire", 25),
        ]
    );
    assert_eq!(h.fire_due_timeouts().await, 0);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn timeouts_due_at_the_same_time_fire_by_tenant_then_kind_then_resource() {
    let rt = started(&["beta", "acme"]).await;
    let h = rt.handle();
    let (acme, beta) = (tenant("acme"), tenant("beta"));
    arm_four_kinds(&h, &beta, [10, 10, 10, 10]).await;
    h.subscription(&beta, &resource("sub-0")).start_trial("pro", 10, "signed up").await.unwrap();
    arm_four_kinds(&h, &acme, [10, 10, 10, 10]).await;
    tokio::time::advance(10 * DAY).await;
    h.fire_due_timeouts().await;
    let order: Vec<_> = timeout_receipts(&h, &[&acme, &beta])
        .iter()
        .map(|r| format!("{}/{}/{}", r.body.tenant, r.body.governor, r.body.resource))
        .collect();
    assert_eq!(
        order,
        [
            "acme/entitlement/grant-1",
            "acme/catalog/prod-1",
            "acme/subscription/sub-1",
            "acme/compliance/audit-1",
            "beta/entitlement/grant-1",
            "beta/catalog/prod-1",
            "beta/subscription/sub-0",
            "beta/subscription/sub-1",
            "beta/compliance/audit-1",
        ]
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_deprovisioned_tenants_timeouts_never_fire_and_write_nothing() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    arm_four_kinds(&h, &acme, [25, 18, 10, 4]).await;
    let gone = h.tenant(&acme).send(TenantCommand::DeprovisionTenant, "churned").await.unwrap();
    assert_eq!(gone.to, "deprovisioned");
    let head = h.head().next_seq;

    // Past every deadline, by the automatic path and by the explicit one.
    tokio::time::sleep(30 * DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(timeout_receipts(&h, &[&acme]), []);
    assert_eq!(h.head().next_seq, head, "nothing was written after the deprovisioning");
    let sub = h.subscription(&acme, &resource("sub-1"));
    assert_eq!(sub.state().await.unwrap(), SubState::FreeTrial, "the trial never ended");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_suspended_tenants_due_timeouts_are_held_and_fire_in_deadline_order_at_resume() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    arm_four_kinds(&h, &acme, [25, 18, 10, 4]).await;
    h.tenant(&acme).send(TenantCommand::SuspendTenant, "fraud check").await.unwrap();
    let head = h.head().next_seq;

    tokio::time::sleep(30 * DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(timeout_receipts(&h, &[&acme]), [], "held, not fired");
    assert_eq!(h.head().next_seq, head);
    let sub = h.subscription(&acme, &resource("sub-1"));
    assert_eq!(sub.state().await.unwrap(), SubState::FreeTrial);

    // Resumed at day 30: by the time the resumption is answered, the held timeouts have
    // been decided after it, in deadline order, at the resume time.
    let resumed = h.tenant(&acme).send(TenantCommand::ActivateTenant, "cleared").await.unwrap();
    assert_eq!((resumed.from, resumed.to, resumed.seq), ("suspended", "active", head));
    let receipts = timeout_receipts(&h, &[&acme]);
    assert_eq!(
        fired(&receipts),
        [
            at("acme", "end_trial", 30),
            at("acme", "remediation_overdue", 30),
            at("acme", "delist_product", 30),
            at("acme", "expire", 30),
        ]
    );
    let seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [head + 1, head + 2, head + 3, head + 4]);
    assert_eq!(sub.state().await.unwrap(), SubState::Paused);
    assert_eq!(h.fire_due_timeouts().await, 0, "each was delivered once");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_suspension_holds_only_what_fell_due_during_it() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    arm_four_kinds(&h, &acme, [25, 18, 10, 4]).await;
    let t = h.tenant(&acme);
    t.send(TenantCommand::SuspendTenant, "fraud check").await.unwrap();
    tokio::time::sleep(5 * DAY).await;
    assert_eq!(timeout_receipts(&h, &[&acme]), []);
    t.send(TenantCommand::ActivateTenant, "cleared").await.unwrap();
    // The trial's end was held and fires at the resumption (day 5); the others at their
    // own deadlines.
    tokio::time::sleep(25 * DAY).await;
    assert_eq!(
        fired(&timeout_receipts(&h, &[&acme])),
        [
            at("acme", "end_trial", 5),
            at("acme", "remediation_overdue", 10),
            at("acme", "delist_product", 18),
            at("acme", "expire", 25),
        ]
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn held_timeouts_of_a_tenant_deprovisioned_while_suspended_never_fire() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    arm_four_kinds(&h, &acme, [25, 18, 10, 4]).await;
    let t = h.tenant(&acme);
    t.send(TenantCommand::SuspendTenant, "fraud check").await.unwrap();
    tokio::time::sleep(12 * DAY).await;
    t.send(TenantCommand::DeprovisionTenant, "fraud confirmed").await.unwrap();
    let head = h.head().next_seq;
    tokio::time::sleep(20 * DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(timeout_receipts(&h, &[&acme]), []);
    assert_eq!(h.head().next_seq, head);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_due_timeout_is_delivered_even_when_the_governors_inbox_is_full() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    tokio::time::advance(14 * DAY).await;

    // A full inbox of commands the trial refuses, all queued before the governor runs (one
    // task polls them all before it yields), then the trial's end: it is queued behind them
    // (never refused `busy`) and decided.
    let full = govern_runtime::limits::GOVERNOR_INBOX_MAX;
    let refused = (0..full).map(|_| sub.resume("too early"));
    let (answers, delivered) = tokio::join!(join_all(refused), h.fire_due_timeouts());
    assert_eq!(answers.len(), full);
    assert!(answers.iter().all(|a| a.as_ref().unwrap_err().code() == "invalid_transition"));
    assert_eq!(delivered, 1);
    assert_eq!(sub.state().await.unwrap(), SubState::Paused);
    assert_eq!(
        commands(&h, &acme, GovernorKind::Subscription, &sub_1),
        ["start_trial", "end_trial"]
    );
    rt.shutdown().await.unwrap();
}

/// Many trials over 16 tenants with three deadlines (days 1, 2, 3), all passed in one jump:
/// every one fires, in (deadline, tenant, resource) order. `GOVERN_TIMEOUT_LOAD=N` runs N
/// trials instead of 600 and prints the delivery rate (`docs/benchmarks.md`).
#[tokio::test(start_paused = true)]
async fn many_due_timeouts_fire_in_order_in_one_jump() {
    let load = std::env::var("GOVERN_TIMEOUT_LOAD").ok().and_then(|v| v.parse::<usize>().ok());
    let n = load.unwrap_or(600);
    let tenants: Vec<String> = (0..16).map(|i| format!("t{i:02}")).collect();
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    let rt = started(&names).await;
    let h = rt.handle();
    let mut deadline_of = BTreeMap::new();
    for i in 0..n {
        let (t, r) = (tenant(&tenants[i % 16]), resource(&format!("s{i}")));
        let days = 1 + (i % 3) as u64;
        h.subscription(&t, &r).start_trial("pro", days as u32, "signed up").await.unwrap();
        deadline_of.insert((t.to_string(), r.to_string()), days);
    }
    let before = h.head().next_seq;
    #[allow(clippy::disallowed_methods, reason = "the load run reports its wall time")]
    let started_at = std::time::Instant::now();
    tokio::time::advance(4 * DAY).await;
    h.fire_due_timeouts().await;
    let elapsed = started_at.elapsed();
    assert_eq!(h.head().next_seq, before + n as u64, "every trial ended");
    let all: Vec<TenantId> = tenants.iter().map(|t| tenant(t)).collect();
    let refs: Vec<&TenantId> = all.iter().collect();
    let order: Vec<(u64, String, String)> = timeout_receipts(&h, &refs)
        .iter()
        .map(|r| {
            let key = (r.body.tenant.to_string(), r.body.resource.to_string());
            (deadline_of[&key], key.0, key.1)
        })
        .collect();
    assert_eq!(order.len(), n);
    assert!(order.is_sorted(), "delivered in (deadline, tenant, resource) order");
    if load.is_some() {
        let rate = n as f64 / elapsed.as_secs_f64();
        println!("{n} due timeouts delivered in {:.3} s: {rate:.0}/s", elapsed.as_secs_f64());
    }
    rt.shutdown().await.unwrap();
}
