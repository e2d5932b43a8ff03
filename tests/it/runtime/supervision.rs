//! Crash containment and escalation through the public API: a crashed governor is restarted
//! and replays, commands queued behind a crash are applied once and in order, a governor that
//! crashes again and again is quarantined (never its domain), a crash touches no other
//! governor, and the runtime's own actors keep OTP's escalation up to the root.

use std::time::Duration;

use govern_governors::quota::{Command as QuotaCommand, Quota, Resource};
use govern_governors::subscription::{State, Subscription};
use govern_governors::tenant::{Command as TenantCommand, State as TenantState};
use govern_governors::{Governor, GovernorKind, ResourceId, TenantId};
use govern_receipt::replay;
use govern_runtime::{CrashPoint, GovernorHandle, Hosted, Outcome, Refusal, RuntimeHandle};

use super::{MINUTE, builder, quota, resource, started, tenant};

/// The names of the commands receipted for one governor, in ledger order.
fn commands(h: &RuntimeHandle, t: &TenantId, kind: GovernorKind, r: &ResourceId) -> Vec<String> {
    h.receipts(t, Some(kind), Some(r)).unwrap().iter().map(|r| r.body.command.to_string()).collect()
}

/// Asserts that the live governor is the replay of its receipts, and returns its receipt count.
async fn assert_replays<G: Hosted>(
    h: &RuntimeHandle,
    g: &GovernorHandle<G>,
    t: &TenantId,
    r: &ResourceId,
) -> u64 {
    let receipts = h.receipts(t, Some(G::KIND), Some(r)).unwrap();
    let live = g.snapshot().await.unwrap();
    let replayed: G = replay(&receipts).unwrap();
    assert_eq!(live.machine, replayed, "{} {t}/{r} equals its replay", G::KIND);
    assert_eq!(live.receipts, receipts.len() as u64);
    live.receipts
}

/// Witness that exactly one earlier crash of `g` was counted, with a limit of one restart per
/// window: one more crash quarantines it (and none did before), for the first quarantine's
/// second; then it is back.
async fn assert_one_crash_was_counted<G: Hosted>(h: &RuntimeHandle, g: &GovernorHandle<G>) {
    let (crashed, after) = tokio::join!(g.inject_crash(CrashPoint::Now), g.snapshot());
    crashed.unwrap();
    let refused = after.unwrap_err();
    assert_eq!(refused.code(), "governor_unavailable", "{refused}");
    assert_eq!(refused.retry_after_ms(), Some(1_000), "the second crash exceeded a limit of one");
    for kind in GovernorKind::ALL {
        assert_eq!(h.domain_restarts(kind), 0, "{kind}: a governor's crashes stay its own");
    }
    // Receipted once, in the tenant's audit trail (queued before the refusal went out).
    let trail = h.audit(g.tenant()).snapshot().await.unwrap();
    assert_eq!(trail.machine.quarantines(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_governor_crashed_now_replays_and_applies_the_commands_queued_behind_the_crash_in_order()
{
    let rt = builder().governor_restarts(1, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &sub_1);
    assert_eq!(sub.start_trial("pro", 14, "signed up").await.unwrap().seq, 2);
    let before = sub.snapshot().await.unwrap();

    // Polled in this order, each pushes into the resident governor's inbox on its first poll:
    // the crash, then a query and three commands queued behind it.
    let (crashed, after, activated, suspended, resumed) = tokio::join!(
        sub.inject_crash(CrashPoint::Now),
        sub.snapshot(),
        sub.activate(None, "converted"),
        sub.suspend("card declined"),
        sub.resume("card updated"),
    );
    crashed.unwrap();
    let after = after.unwrap();
    assert_eq!(after, before, "the restarted governor replayed to the state it had");
    assert_eq!(after.machine.state(), State::FreeTrial);
    assert_eq!(after.receipts, 1);
    let acks = [activated.unwrap(), suspended.unwrap(), resumed.unwrap()];
    let seen: Vec<_> = acks.iter().map(|a| (a.seq, a.resource_seq, a.from, a.to)).collect();
    assert_eq!(
        seen,
        [
            (3, 1, "free_trial", "active"),
            (4, 2, "active", "suspended"),
            (5, 3, "suspended", "active"),
        ]
    );
    assert_eq!(
        commands(&h, &acme, GovernorKind::Subscription, &sub_1),
        ["start_trial", "activate", "suspend", "resume"]
    );
    assert_eq!(assert_replays(&h, &sub, &acme, &sub_1).await, 4);
    assert_eq!(sub.state().await.unwrap(), State::Active);
    assert_eq!(h.verify().unwrap().next_seq, 6);

    assert_one_crash_was_counted(&h, &sub).await;
    assert_eq!(sub.pause("holiday").await.unwrap().seq, 7, "after the quarantine's record");
    assert_eq!(rt.shutdown().await.unwrap().next_seq, 8);
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_the_append_answers_the_caller_from_the_receipt_and_applies_it_once() {
    let rt = builder().governor_restarts(1, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();

    sub.inject_crash(CrashPoint::AfterNextAppend).await.unwrap();
    // The receipt is written, the governor panics before committing or answering; its
    // replacement replays the receipt and answers from the applied mark.
    let activated = sub.activate(None, "converted").await.unwrap();
    assert_eq!(
        (activated.seq, activated.resource_seq, activated.from, activated.to),
        (3, 1, "free_trial", "active")
    );
    let receipts = h.receipts(&acme, Some(GovernorKind::Subscription), Some(&sub_1)).unwrap();
    assert_eq!(receipts.len(), 2, "one receipt for the crashed command, not two");
    assert_eq!((receipts[1].seq, receipts[1].hash), (activated.seq, activated.hash));
    assert_eq!(receipts[1].body.command, "activate");
    assert_eq!(sub.state().await.unwrap(), State::Active);
    assert_eq!(assert_replays(&h, &sub, &acme, &sub_1).await, 2);

    // The crash point is spent: the next command is applied normally.
    let suspended = sub.suspend("card declined").await.unwrap();
    assert_eq!((suspended.seq, suspended.resource_seq), (4, 2));
    assert_eq!(h.verify().unwrap().next_seq, 5);

    assert_one_crash_was_counted(&h, &sub).await;
    assert_eq!(sub.state().await.unwrap(), State::Suspended);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tenant_governor_crashed_after_appending_its_activation_admits_the_tenant() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let t = h.tenant(&acme);
    t.send(TenantCommand::ProvisionTenant { quota: quota() }, "onboarding").await.unwrap();
    t.inject_crash(CrashPoint::AfterNextAppend).await.unwrap();
    let activated = t.send(TenantCommand::ActivateTenant, "go live").await.unwrap();
    assert_eq!((activated.seq, activated.from, activated.to), (1, "provisioning", "active"));
    assert_eq!(t.state().await.unwrap(), TenantState::Active);
    // The caller was told the tenant is active: the registry must admit by that state.
    assert_eq!(h.tenant_state(&acme), Some(TenantState::Active));
    let sub = h.subscription(&acme, &resource("sub-1"));
    assert_eq!(sub.start_trial("pro", 14, "signed up").await.unwrap().seq, 2);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn crashes_beyond_the_governor_limit_quarantine_that_governor_alone_with_backoff() {
    let rt = builder().governor_restarts(3, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let (sub_1, sub_2, quota_1) = (resource("sub-1"), resource("sub-2"), resource("quota-1"));
    let (crashing, bystander) = (h.subscription(&acme, &sub_1), h.subscription(&acme, &sub_2));
    let q = h.governor::<Quota>(&acme, &quota_1);
    crashing.start_trial("pro", 14, "signed up").await.unwrap();
    bystander.start_trial("basic", 7, "signed up").await.unwrap();
    bystander.activate(None, "converted").await.unwrap();
    q.send(QuotaCommand::SendWarning, "ops").await.unwrap();
    assert_eq!(h.verify().unwrap().next_seq, 6);

    // Three crashes are restarted; the fourth within the window quarantines the governor: the
    // command queued behind it is refused with the quarantine's length, nothing is recorded.
    let (c1, c2, c3, c4, refused) = tokio::join!(
        crashing.inject_crash(CrashPoint::Now),
        crashing.inject_crash(CrashPoint::Now),
        crashing.inject_crash(CrashPoint::Now),
        crashing.inject_crash(CrashPoint::Now),
        crashing.activate(None, "converted"),
    );
    for c in [c1, c2, c3, c4] {
        c.unwrap();
    }
    let refused = refused.unwrap_err();
    assert_eq!((refused.code(), refused.http_status()), ("governor_unavailable", 503));
    let retry = |e: &govern_runtime::CommandError| match e {
        govern_runtime::CommandError::Refused(r) => r.retry_after_ms(),
        _ => None,
    };
    assert_eq!(retry(&refused), Some(1_000));
    assert_eq!(h.quarantines(GovernorKind::Subscription), 1);
    // The quarantine is receipted once, in the tenant's audit trail, before it is refused.
    assert_eq!(h.audit(&acme).snapshot().await.unwrap().machine.quarantines(), 1);
    let audit_record = |seq: u64| {
        let r = h.receipts(&acme, None, None).unwrap().into_iter().find(|r| r.seq == seq).unwrap();
        let args: Vec<String> = r.body.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        (r.body.governor, r.body.command.to_string(), args.join(" "))
    };
    assert_eq!(
        audit_record(6),
        (
            GovernorKind::Audit,
            "record_quarantine".to_owned(),
            "governor=subscription length_ms=1000 level=1 resource=sub-1".to_owned()
        )
    );
    // Meanwhile: refused with what is left of the quarantine; no domain was restarted, and
    // the bystanders go on without a replay.
    tokio::time::advance(Duration::from_millis(400)).await;
    let still = crashing.activate(None, "converted").await.unwrap_err();
    assert_eq!(retry(&still), Some(600));
    for kind in GovernorKind::ALL {
        assert_eq!(h.domain_restarts(kind), 0, "{kind}");
    }
    assert_eq!(bystander.suspend("card declined").await.unwrap().seq, 7);
    assert_eq!(q.send(QuotaCommand::ThrottleTraffic, "ops").await.unwrap().seq, 8);

    // Once the quarantine is over the governor comes back by replay.
    tokio::time::advance(Duration::from_millis(600)).await;
    let activated = crashing.activate(None, "converted").await.unwrap();
    assert_eq!((activated.seq, activated.resource_seq, activated.to), (9, 1, "active"));
    // A second quarantine lasts twice as long.
    let (c1, c2, c3, c4, refused) = tokio::join!(
        crashing.inject_crash(CrashPoint::Now),
        crashing.inject_crash(CrashPoint::Now),
        crashing.inject_crash(CrashPoint::Now),
        crashing.inject_crash(CrashPoint::Now),
        crashing.pause("holiday"),
    );
    for c in [c1, c2, c3, c4] {
        c.unwrap();
    }
    assert_eq!(retry(&refused.unwrap_err()), Some(2_000));
    assert_eq!(h.quarantines(GovernorKind::Subscription), 2);
    assert_eq!(h.quarantines(GovernorKind::Quota), 0, "only the crashing governor's kind");
    assert_eq!(h.audit(&acme).snapshot().await.unwrap().machine.quarantines(), 2);
    assert_eq!(audit_record(10).2, "governor=subscription length_ms=2000 level=2 resource=sub-1");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(crashing.pause("holiday").await.unwrap().seq, 11);
    assert_eq!(assert_replays(&h, &crashing, &acme, &sub_1).await, 3);
    assert_eq!(assert_replays(&h, &bystander, &acme, &sub_2).await, 3);
    assert_eq!(assert_replays(&h, &q, &acme, &quota_1).await, 2);
    assert_eq!(
        commands(&h, &acme, GovernorKind::Subscription, &sub_1),
        ["start_trial", "activate", "pause"]
    );
    assert_eq!(h.verify().unwrap().next_seq, 12);
    assert!(!h.is_down());
    assert_eq!(rt.shutdown().await.unwrap().next_seq, 12);
}

#[tokio::test(start_paused = true)]
async fn a_domain_supervisor_that_fails_is_restarted_by_the_root_and_its_governors_replay() {
    let rt = builder().root_restarts(1, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let (sub_1, quota_1) = (resource("sub-1"), resource("quota-1"));
    let sub = h.subscription(&acme, &sub_1);
    let q = h.governor::<Quota>(&acme, &quota_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    q.send(QuotaCommand::SendWarning, "ops").await.unwrap();
    let before = sub.snapshot().await.unwrap();

    assert!(h.inject_domain_crash(GovernorKind::Subscription));
    // Answered by a governor of the restarted domain, which replayed.
    assert_eq!(sub.activate(None, "converted").await.unwrap().seq, 4);
    assert_eq!(h.domain_restarts(GovernorKind::Subscription), 1);
    assert_eq!(h.domain_restarts(GovernorKind::Quota), 0);
    assert_eq!(q.send(QuotaCommand::ThrottleTraffic, "ops").await.unwrap().seq, 5);
    assert_eq!(before.receipts, 1);
    assert_eq!(assert_replays(&h, &sub, &acme, &sub_1).await, 2);
    assert!(!h.is_down());
    assert_eq!(rt.shutdown().await.unwrap().next_seq, 6);
}

#[tokio::test(start_paused = true)]
async fn the_root_gives_up_beyond_its_own_intensity_and_the_runtime_refuses_commands() {
    let rt = builder().root_restarts(0, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    let crashed_at = h.now();

    // The domain supervisor fails; the root's restart of it exceeds its own intensity of
    // zero, so it stops the tree and fails. The command queued meanwhile is never decided.
    assert!(h.inject_domain_crash(GovernorKind::Subscription));
    let queued = sub.activate(None, "converted").await;
    let waited = Duration::from_millis(h.now().as_ms() - crashed_at.as_ms());
    assert!(h.is_down());
    assert_eq!(h.domain_restarts(GovernorKind::Subscription), 0, "the root did not restart it");

    let err = sub.suspend("card declined").await.unwrap_err();
    assert_eq!(err.code(), "shutting_down");
    assert_eq!(sub.snapshot().await.unwrap_err(), Refusal::ShuttingDown);
    let other = h.governor::<Quota>(&acme, &resource("quota-1"));
    let err = other.send(QuotaCommand::SendWarning, "ops").await.unwrap_err();
    assert_eq!(err.code(), "shutting_down");
    // Nothing was recorded for the refused commands; the chain is intact.
    assert_eq!(commands(&h, &acme, GovernorKind::Subscription, &sub_1), ["start_trial"]);
    assert_eq!(h.verify().unwrap().next_seq, 3);
    assert_eq!(rt.shutdown().await.unwrap().next_seq, 3);

    // The queued command was never decided and its governor will not be started again: it is
    // answered so at once, not left to the caller's reply timeout with an "unknown" outcome.
    let refused = queued.unwrap_err();
    assert!(["governor_unavailable", "shutting_down"].contains(&refused.code()), "{refused}");
    assert_eq!(waited, Duration::ZERO, "answered without waiting for the reply timeout");
}

#[tokio::test(start_paused = true)]
async fn a_crash_cannot_be_injected_once_the_root_has_given_up() {
    let rt = builder().root_restarts(0, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let (acme, sub_1, quota_1) = (tenant("acme"), resource("sub-1"), resource("quota-1"));
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    assert!(h.inject_domain_crash(GovernorKind::Subscription));
    sub.activate(None, "converted").await.unwrap_err();
    assert!(h.is_down());
    // `inject_crash` documents a refusal "when the runtime is down", as every other entry.
    let resident = h.inject_crash(&acme, GovernorKind::Subscription, &sub_1, CrashPoint::Now);
    assert_eq!(resident.await, Err(Refusal::ShuttingDown));
    let fresh = h.inject_crash(&acme, GovernorKind::Quota, &quota_1, CrashPoint::AfterNextAppend);
    assert_eq!(fresh.await, Err(Refusal::ShuttingDown));
    assert!(!h.inject_domain_crash(GovernorKind::Quota));
    assert_eq!(h.verify().unwrap().next_seq, 3);
    rt.shutdown().await.unwrap();
}

/// The `i`-th command of a subscription's life: start a trial, activate, suspend.
async fn lifecycle_step(sub: &GovernorHandle<Subscription>, i: u64) -> Outcome {
    match i {
        0 => sub.start_trial("pro", 14, "signed up").await,
        1 => sub.activate(None, "converted").await,
        _ => sub.suspend("card declined").await,
    }
}

#[tokio::test(start_paused = true)]
async fn crashes_of_one_governor_do_not_disturb_other_tenants_kinds_or_resources() {
    let rt = started(&["acme", "globex"]).await;
    let h = rt.handle();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let (sub_1, sub_2, quota_1) = (resource("sub-1"), resource("sub-2"), resource("quota-1"));
    let crashing = h.subscription(&acme, &sub_1);
    let same_kind_other_tenant = h.subscription(&globex, &sub_1);
    let same_tenant_other_resource = h.subscription(&acme, &sub_2);
    let same_tenant_other_kind = h.governor::<Quota>(&acme, &quota_1);
    crashing.start_trial("pro", 14, "signed up").await.unwrap();

    let check =
        |usage| QuotaCommand::CheckQuota { resource: Resource::ApiCalls, usage, limit: 100 };
    let points = [CrashPoint::Now, CrashPoint::AfterNextAppend, CrashPoint::Now];
    for (i, point) in (0u64..).zip(points) {
        crashing.inject_crash(point).await.unwrap();
        // Synchronise on the crashed governor: this query (or command) is answered by its
        // replacement.
        if point == CrashPoint::AfterNextAppend {
            let a = crashing.activate(None, "converted").await.unwrap();
            assert_eq!((a.seq, a.resource_seq, a.from, a.to), (8, 1, "free_trial", "active"));
        } else {
            crashing.snapshot().await.unwrap();
        }
        for bystander in [&same_kind_other_tenant, &same_tenant_other_resource] {
            let a = lifecycle_step(bystander, i).await.unwrap();
            assert_eq!(a.resource_seq, i);
        }
        let a = same_tenant_other_kind.send(check(10 * (i + 1)), "meter").await.unwrap();
        assert_eq!((a.resource_seq, a.from, a.to), (i, "normal", "normal"));
    }
    assert_eq!(crashing.state().await.unwrap(), State::Active);
    assert_eq!(same_kind_other_tenant.state().await.unwrap(), State::Suspended);
    assert_eq!(same_tenant_other_resource.state().await.unwrap(), State::Suspended);
    assert_eq!(assert_replays(&h, &crashing, &acme, &sub_1).await, 2);
    assert_eq!(assert_replays(&h, &same_kind_other_tenant, &globex, &sub_1).await, 3);
    assert_eq!(assert_replays(&h, &same_tenant_other_resource, &acme, &sub_2).await, 3);
    assert_eq!(assert_replays(&h, &same_tenant_other_kind, &acme, &quota_1).await, 3);
    for kind in GovernorKind::ALL {
        assert_eq!(h.domain_restarts(kind), 0, "{kind}: every crash was restarted in place");
    }
    // Per tenant 2 tenant receipts; acme: 2 for the crashed subscription, 3 for the other
    // one and 3 quota checks; globex: 3 for its subscription.
    assert_eq!(h.receipt_counts(), [(acme.clone(), 10), (globex.clone(), 5)]);
    assert_eq!(h.verify().unwrap().next_seq, 15);
    rt.shutdown().await.unwrap();
}

/// The blast radius of a crashing tenant is its own governors: 10 000 injected panics in one
/// tenant's governors (each restarted with replay, then quarantined) while three other
/// tenants run commands. Every one of theirs succeeds, nothing of theirs is restarted, no
/// domain is, and the runtime stays up.
#[tokio::test(start_paused = true)]
async fn ten_thousand_panics_in_one_tenant_leave_every_other_tenants_commands_untouched() {
    const NOISY_GOVERNORS: u64 = 2_500;
    const CRASHES_EACH: u64 = 4; // three restarts, then the fourth quarantines
    const OTHERS: [&str; 3] = ["acme", "globex", "initech"];
    const COMMANDS_EACH: u64 = 400;
    let rt = started(&["noisy", "acme", "globex", "initech"]).await;
    let h = rt.handle();
    let noisy = tenant("noisy");

    let crash = {
        let h = h.clone();
        async move {
            let (mut panics, mut quarantined) = (0u64, 0u64);
            for g in 0..NOISY_GOVERNORS {
                let q = h.governor::<Quota>(&noisy, &resource(&format!("q-{g}")));
                for _ in 0..CRASHES_EACH {
                    q.inject_crash(CrashPoint::Now).await.unwrap();
                    // Answered by the restarted governor, or refused by the quarantine the
                    // crash began: either way the panic has happened.
                    match q.snapshot().await {
                        Ok(_) => {}
                        Err(Refusal::GovernorUnavailable { retry_after_ms: Some(_), .. }) => {
                            quarantined += 1;
                        }
                        Err(other) => panic!("{other}"),
                    }
                    panics += 1;
                }
            }
            (panics, quarantined)
        }
    };
    let others = OTHERS.map(|name| {
        let h = h.clone();
        async move {
            let t = tenant(name);
            let q = h.governor::<Quota>(&t, &resource("api"));
            let check = |usage| QuotaCommand::CheckQuota {
                resource: Resource::ApiCalls,
                usage,
                limit: 100,
            };
            for i in 0..COMMANDS_EACH {
                let a = q.send(check(i % 50), "meter").await.unwrap();
                assert_eq!(a.resource_seq, i, "{name}");
                // Let the noisy tenant's work interleave with ours.
                tokio::task::yield_now().await;
            }
        }
    });
    let [a, b, c] = others;
    let ((panics, quarantined), (), (), ()) = tokio::join!(crash, a, b, c);
    assert_eq!(panics, NOISY_GOVERNORS * CRASHES_EACH);
    assert_eq!(quarantined, NOISY_GOVERNORS, "each noisy governor's fourth crash quarantined it");
    for kind in GovernorKind::ALL {
        assert_eq!(h.domain_restarts(kind), 0, "{kind}");
    }
    assert!(!h.is_down());
    for name in OTHERS {
        let t = tenant(name);
        // Provisioning and activation, then every command.
        assert_eq!(h.receipts(&t, None, None).unwrap().len() as u64, 2 + COMMANDS_EACH);
    }
    h.verify().unwrap();
    rt.shutdown().await.unwrap();
}
