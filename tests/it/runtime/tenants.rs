//! The tenant registry and isolation: admission by tenant state (also for a tenant never
//! provisioned and after a restart from a store), tenants that share resource ids without
//! sharing governors or receipts, the tenant governor's addressing, the per-tenant in-flight
//! bound, and the generic string entry's validation.

use std::collections::BTreeMap;

use govern_governors::subscription::State as SubState;
use govern_governors::tenant::{Command as TenantCommand, State as TenantState, Tenant};
use govern_governors::{GovernorKind, TenantId};
use govern_runtime::ledger::{LedgerStore, MemoryStore};
use govern_runtime::{CommandError, Outcome, RawCommand, Refusal, RuntimeHandle};

use super::{builder, quota, resource, started, tenant};

/// The code of a failed outcome (panics if it was accepted).
fn code(outcome: Outcome) -> &'static str {
    outcome.expect_err("the command should not be accepted").code()
}

/// The number of receipts in the whole ledger.
fn receipts_total(h: &RuntimeHandle) -> u64 {
    h.head().next_seq
}

/// The number of receipts of one tenant.
fn receipts_of(h: &RuntimeHandle, t: &TenantId) -> usize {
    h.receipts(t, None, None).unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn admission_follows_the_tenant_lifecycle_and_refusals_leave_no_receipt() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let sub = h.subscription(&acme, &resource("sub-1"));
    let acme_gov = h.tenant(&acme);

    // Never provisioned: unknown, and the registry does not know it.
    assert_eq!(h.tenant_state(&acme), None);
    assert_eq!(code(sub.start_trial("pro", 14, "signed up").await), "unknown_tenant");
    assert_eq!(receipts_total(&h), 0);

    // Provisioned, not activated: refused `tenant_not_active`.
    let provisioned =
        acme_gov.send(TenantCommand::ProvisionTenant { quota: quota() }, "onboarding").await;
    assert_eq!(provisioned.unwrap().seq, 0);
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Provisioning));
    assert_eq!(code(sub.start_trial("pro", 14, "signed up").await), "tenant_not_active");
    assert_eq!(receipts_total(&h), 1);

    // Active: accepted.
    let activated = acme_gov.send(TenantCommand::ActivateTenant, "go live").await.unwrap();
    assert_eq!((activated.seq, activated.from, activated.to), (1, "provisioning", "active"));
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Active));
    let trial = sub.start_trial("pro", 14, "signed up").await.unwrap();
    assert_eq!((trial.seq, trial.resource_seq), (2, 0));

    // Suspended: other governors refuse, the tenant governor still takes `activate_tenant`.
    let suspended = acme_gov.send(TenantCommand::SuspendTenant, "fraud check").await.unwrap();
    assert_eq!((suspended.seq, suspended.to), (3, "suspended"));
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Suspended));
    let before = receipts_of(&h, &acme);
    assert_eq!(code(sub.activate(None, "converted").await), "tenant_suspended");
    assert_eq!(
        sub.activate(None, "converted").await.unwrap_err(),
        CommandError::Refused(Refusal::TenantSuspended(acme.clone()))
    );
    let other = h.subscription(&acme, &resource("sub-2"));
    assert_eq!(code(other.start_trial("pro", 14, "signed up").await), "tenant_suspended");
    assert_eq!(receipts_of(&h, &acme), before, "refused commands leave no receipt");
    assert_eq!(receipts_total(&h), 4);

    let reactivated = acme_gov.send(TenantCommand::ActivateTenant, "cleared").await.unwrap();
    assert_eq!((reactivated.seq, reactivated.from, reactivated.to), (4, "suspended", "active"));
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Active));
    let converted = sub.activate(None, "converted").await.unwrap();
    assert_eq!((converted.seq, converted.resource_seq, converted.to), (5, 1, "active"));
    assert_eq!(sub.state().await.unwrap(), SubState::Active);

    // Deprovisioned: everything is refused, the tenant governor included.
    let gone = acme_gov.send(TenantCommand::DeprovisionTenant, "churned").await.unwrap();
    assert_eq!((gone.seq, gone.to), (6, "deprovisioned"));
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Deprovisioned));
    let before = receipts_of(&h, &acme);
    assert_eq!(code(sub.suspend("unpaid").await), "tenant_deprovisioned");
    assert_eq!(
        code(acme_gov.send(TenantCommand::ActivateTenant, "undo").await),
        "tenant_deprovisioned"
    );
    assert_eq!(
        code(acme_gov.send(TenantCommand::ProvisionTenant { quota: quota() }, "again").await),
        "tenant_deprovisioned"
    );
    assert_eq!(receipts_of(&h, &acme), before);
    assert_eq!(receipts_total(&h), 7);
    assert_eq!(h.tenants(), vec![(acme.clone(), TenantState::Deprovisioned)]);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn two_tenants_with_the_same_resource_id_have_independent_governors_and_receipts() {
    let rt = started(&["acme", "globex"]).await;
    let h = rt.handle();
    let (acme, globex, sub_1) = (tenant("acme"), tenant("globex"), resource("sub-1"));
    let a = h.subscription(&acme, &sub_1);
    let g = h.subscription(&globex, &sub_1);

    let a_trial = a.start_trial("pro", 14, "signed up").await.unwrap();
    let g_active = g.activate(Some("basic"), "bought").await.unwrap();
    let g_paused = g.pause("holiday").await.unwrap();
    // Each governor numbers its own receipts from 0.
    assert_eq!((a_trial.resource_seq, g_active.resource_seq, g_paused.resource_seq), (0, 0, 1));
    assert_eq!(a.state().await.unwrap(), SubState::FreeTrial);
    assert_eq!(g.state().await.unwrap(), SubState::Paused);
    assert_eq!(a.snapshot().await.unwrap().machine.plan(), Some("pro"));
    assert_eq!(g.snapshot().await.unwrap().machine.plan(), Some("basic"));

    let acme_receipts = h.receipts(&acme, None, None).unwrap();
    let globex_receipts = h.receipts(&globex, None, None).unwrap();
    assert_eq!(acme_receipts.len(), 3); // provision, activate, start_trial
    assert_eq!(globex_receipts.len(), 4); // provision, activate, activate, pause
    assert!(acme_receipts.iter().all(|r| r.body.tenant == acme));
    assert!(globex_receipts.iter().all(|r| r.body.tenant == globex));
    let commands: Vec<_> = h
        .receipts(&acme, Some(GovernorKind::Subscription), Some(&sub_1))
        .unwrap()
        .iter()
        .map(|r| r.body.command.to_string())
        .collect();
    assert_eq!(commands, ["start_trial"]);
    let commands: Vec<_> = h
        .receipts(&globex, Some(GovernorKind::Subscription), Some(&sub_1))
        .unwrap()
        .iter()
        .map(|r| r.body.command.to_string())
        .collect();
    assert_eq!(commands, ["activate", "pause"]);

    // Sequence numbers interleave in the one chain: each tenant sees exactly its own.
    let seqs = |rs: &[govern_receipt::Receipt]| rs.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&acme_receipts), [0, 1, 4]);
    assert_eq!(seqs(&globex_receipts), [2, 3, 5, 6]);

    let counts = h.receipt_counts();
    assert_eq!(counts, vec![(acme.clone(), 3), (globex.clone(), 4)]);
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), h.head().next_seq);
    assert_eq!(h.verify().unwrap().next_seq, 7);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_tenant_governor_is_addressed_by_the_tenant_id_only() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let wrong = h.governor::<Tenant>(&acme, &resource("other"));
    let err = wrong.send(TenantCommand::SuspendTenant, "wrong address").await.unwrap_err();
    assert_eq!(err.code(), "tenant_resource_mismatch");
    assert_eq!(
        err,
        CommandError::Refused(Refusal::TenantResourceMismatch { tenant: acme.clone() })
    );
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Active));
    assert_eq!(h.head().next_seq, 2);
    // The right address works.
    let right = h.governor::<Tenant>(&acme, &resource("acme"));
    let degraded = right.send(TenantCommand::MarkDegraded, "slow disks").await.unwrap();
    assert_eq!((degraded.seq, degraded.resource_seq, degraded.to), (2, 2, "degraded"));
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Degraded));
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tenant_at_its_in_flight_bound_is_busy_and_other_tenants_are_not() {
    let rt = builder().tenant_in_flight_max(1).start().await.unwrap();
    let h = rt.handle();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    h.provision_tenant(&globex, quota(), "onboarding").await.unwrap();
    let a1 = h.subscription(&acme, &resource("sub-1"));
    let a2 = h.subscription(&acme, &resource("sub-2"));
    let g1 = h.subscription(&globex, &resource("sub-1"));

    // Polled concurrently in one task: the first to be admitted holds acme's only unit.
    let (x, y, z) = tokio::join!(
        a1.start_trial("pro", 14, "signed up"),
        a2.start_trial("pro", 14, "signed up"),
        g1.start_trial("pro", 14, "signed up"),
    );
    let busy = CommandError::Refused(Refusal::Busy { what: "tenant in-flight commands", max: 1 });
    let acme_outcomes = [&x, &y];
    assert_eq!(acme_outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{x:?} {y:?}");
    assert_eq!(acme_outcomes.iter().filter(|o| o.as_ref().err() == Some(&busy)).count(), 1);
    let z = z.unwrap();
    assert_eq!((z.resource_seq, z.to), (0, "free_trial"));
    assert_eq!(h.head().next_seq, 6, "4 provisioning receipts + 2 accepted");
    assert_eq!(h.receipt_counts(), vec![(acme.clone(), 3), (globex.clone(), 3)]);

    // The unit came back with the reply: the refused one goes through now.
    let (refused, admitted) = if x.is_err() { (&a1, &a2) } else { (&a2, &a1) };
    let retried = refused.start_trial("pro", 14, "retry").await.unwrap();
    assert_eq!((retried.seq, retried.resource_seq), (6, 0));
    assert_eq!(admitted.state().await.unwrap(), SubState::FreeTrial);
    assert_eq!(refused.state().await.unwrap(), SubState::FreeTrial);
    rt.shutdown().await.unwrap();
}

fn raw(name: &str, args: &[(&str, &str)], reason: &str, metadata: &[(&str, &str)]) -> RawCommand {
    RawCommand {
        tenant: tenant("acme"),
        kind: GovernorKind::Subscription,
        resource: resource("sub-1"),
        name: name.to_owned(),
        args: args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        reason: reason.to_owned(),
        metadata: metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_generic_entry_accepts_a_valid_command_and_rejects_malformed_ones_unrecorded() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let trial = [("plan", "pro"), ("trial_days", "14")];

    let accepted =
        h.command(raw("start_trial", &trial, "signed up", &[("request_id", "r-1")])).await.unwrap();
    assert_eq!((accepted.seq, accepted.resource_seq), (2, 0));
    assert_eq!((accepted.from, accepted.to), ("pending", "free_trial"));
    let receipt = h.receipts(&tenant("acme"), None, None).unwrap().pop().unwrap();
    assert_eq!((receipt.seq, receipt.hash), (accepted.seq, accepted.hash));
    assert_eq!(receipt.body.command, "start_trial");
    assert_eq!(receipt.body.reason, "signed up");
    let args: BTreeMap<String, String> =
        trial.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    assert_eq!(receipt.body.args, args);
    assert_eq!(
        receipt.body.metadata,
        BTreeMap::from([("request_id".to_owned(), "r-1".to_owned())])
    );

    let activate = [("plan", "pro")];
    let bad = [
        raw("activate_now", &activate, "converted", &[]),
        raw("activate", &[("plan", "pro"), ("colour", "red")], "converted", &[]),
        raw("activate", &activate, "", &[]),
        raw("activate", &activate, "converted", &[("Request Id", "r-2")]),
    ];
    for command in bad {
        let err = h.command(command.clone()).await.unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{command:?}: {err}");
        assert!(matches!(err, CommandError::Rejected(_)), "{err:?}");
    }
    assert_eq!(h.head().next_seq, 3, "no receipt for a malformed command");
    assert_eq!(
        h.subscription(&tenant("acme"), &resource("sub-1")).state().await.unwrap(),
        SubState::FreeTrial
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tenant_whose_first_lifecycle_command_is_rejected_stays_unknown() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let ghost = tenant("ghost");
    // Admitted (the tenant governor takes commands for a tenant not yet provisioned), then
    // rejected: nothing was provisioned and nothing was recorded.
    let err = h.tenant(&ghost).send(TenantCommand::ActivateTenant, "too soon").await.unwrap_err();
    assert_eq!(err.code(), "precondition_failed");
    assert_eq!(h.head().next_seq, 0);
    assert_eq!(h.tenant_state(&ghost), None, "a tenant never provisioned has no state");
    assert_eq!(h.tenants(), vec![]);
    let sub = h.subscription(&ghost, &resource("sub-1"));
    assert_eq!(code(sub.start_trial("pro", 14, "signed up").await), "unknown_tenant");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_runtime_continuing_a_store_admits_by_the_recorded_tenant_states() {
    let rt = started(&["acme", "globex"]).await;
    let h = rt.handle();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    h.subscription(&acme, &resource("sub-1")).start_trial("pro", 14, "signed up").await.unwrap();
    h.tenant(&globex).send(TenantCommand::SuspendTenant, "unpaid").await.unwrap();
    let head = rt.shutdown().await.unwrap();

    // The same records in a fresh store, in sequence order, continued by a new runtime.
    let mut records: Vec<_> =
        [&acme, &globex].into_iter().flat_map(|t| h.receipts(t, None, None).unwrap()).collect();
    records.sort_by_key(|r| r.seq);
    let mut store = MemoryStore::new();
    for r in &records {
        store.append(r.seq, &r.encode()).unwrap();
    }
    let rt = builder().store(Box::new(store)).start().await.unwrap();
    let h = rt.handle();
    assert_eq!(h.head(), head);
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Active));
    assert_eq!(h.tenant_state(&globex), Some(TenantState::Suspended));
    let converted =
        h.subscription(&acme, &resource("sub-1")).activate(None, "converted").await.unwrap();
    assert_eq!((converted.seq, converted.resource_seq, converted.from), (6, 1, "free_trial"));
    let sub = h.subscription(&globex, &resource("sub-1"));
    assert_eq!(code(sub.start_trial("pro", 14, "signed up").await), "tenant_suspended");
    rt.shutdown().await.unwrap();
}
