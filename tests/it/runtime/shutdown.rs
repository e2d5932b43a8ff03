//! Graceful shutdown: commands answered before it are all in the returned head, commands in
//! flight during it are either receipted or refused `shutting_down` (none hangs or times out),
//! and every handle is refused afterwards.

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::subscription::{Command as SubCommand, State};
use govern_governors::tenant::Command as TenantCommand;
use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_receipt::Receipt;
use govern_runtime::{CommandError, Outcome, RawCommand, Refusal, RuntimeHandle};

use super::{resource, started, tenant};

/// Every receipt of the given tenants, by sequence number.
fn receipts_by_seq(h: &RuntimeHandle, tenants: &[TenantId]) -> BTreeMap<u64, Receipt> {
    tenants.iter().flat_map(|t| h.receipts(t, None, None).unwrap()).map(|r| (r.seq, r)).collect()
}

/// The command of spawned command `i`: trials and activations, interleaved per subscription.
fn command(i: usize) -> SubCommand {
    if (i / 20).is_multiple_of(2) {
        SubCommand::StartTrial { plan: "pro".into(), trial_days: 14 }
    } else {
        SubCommand::Activate { plan: Some("pro".into()) }
    }
}

/// The tenant and subscription of spawned command `i`: 2 tenants × 10 subscriptions.
fn target(tenants: &[TenantId], i: usize) -> (TenantId, ResourceId) {
    (tenants[i % 2].clone(), resource(&format!("sub-{}", (i / 2) % 10)))
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_loses_no_acknowledged_command() {
    let rt = started(&["acme", "globex"]).await;
    let h = rt.handle();
    let tenants = [tenant("acme"), tenant("globex")];

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (t, r) = target(&tenants, i);
            let sub = h.subscription(&t, &r);
            tokio::spawn(async move { (t, r, sub.send(command(i), "load").await) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    // Each subscription ends active (by trial then activation, or activation alone); every
    // other command was a rejected transition, not a refusal.
    let mut accepted_per_sub: BTreeMap<(TenantId, ResourceId), usize> = BTreeMap::new();
    for (t, r, outcome) in &outcomes {
        match outcome {
            Ok(_) => *accepted_per_sub.entry((t.clone(), r.clone())).or_default() += 1,
            Err(e) => assert_eq!(e.code(), "invalid_transition", "{t}/{r}: {e}"),
        }
    }
    assert_eq!(accepted_per_sub.len(), 20);
    for ((t, r), accepted) in &accepted_per_sub {
        assert_eq!(h.subscription(t, r).state().await.unwrap(), State::Active, "{t}/{r}");
        let receipted = h.receipts(t, Some(GovernorKind::Subscription), Some(r)).unwrap().len();
        assert_eq!(receipted, *accepted, "{t}/{r}");
    }

    let accepted: Vec<_> = outcomes.iter().filter_map(|(_, _, o)| o.as_ref().ok()).collect();
    let receipts = receipts_by_seq(&h, &tenants);
    for a in &accepted {
        let r = &receipts[&a.seq];
        assert_eq!((r.hash, r.body.resource_seq), (a.hash, a.resource_seq), "receipt {}", a.seq);
        assert_eq!((&*r.body.state_from, &*r.body.state_to), (a.from, a.to));
    }

    let head = rt.shutdown().await.unwrap();
    assert_eq!(head.next_seq, 4 + accepted.len() as u64);
    assert_eq!(head.next_seq, receipts.len() as u64);
    assert_eq!(head.last_hash, receipts[&(head.next_seq - 1)].hash);
    assert_eq!(h.verify().unwrap(), head);
}

#[tokio::test(start_paused = true)]
async fn commands_in_flight_at_shutdown_are_receipted_or_refused_and_none_hangs() {
    let rt = started(&["acme", "globex"]).await;
    let h = rt.handle();
    let tenants = [tenant("acme"), tenant("globex")];

    // 40 clients, each driving its own subscription through three commands in turn.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let t = tenants[i % 2].clone();
            let sub = h.subscription(&t, &resource(&format!("sub-{i}")));
            tokio::spawn(async move {
                let mut outcomes: Vec<Outcome> = Vec::new();
                outcomes.push(sub.start_trial("pro", 14, "signed up").await);
                outcomes.push(sub.activate(None, "converted").await);
                outcomes.push(sub.pause("holiday").await);
                outcomes
            })
        })
        .collect();
    // Let each client submit its first command, then shut down under them.
    tokio::task::yield_now().await;
    let head = rt.shutdown().await.unwrap();

    let mut acked = Vec::new();
    let mut refused = 0;
    for task in tasks {
        // On paused time a hung client would let virtual time run out this bound.
        let outcomes = tokio::time::timeout(Duration::from_secs(3_600), task)
            .await
            .expect("a client hangs after shutdown")
            .unwrap();
        for outcome in outcomes {
            match outcome {
                Ok(a) => acked.push(a),
                Err(e) => {
                    assert_eq!(e, CommandError::Refused(Refusal::ShuttingDown));
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(acked.len() + refused, 120);
    assert!(!acked.is_empty(), "some commands were in flight when shutdown began");
    assert!(refused > 0, "some commands came after shutdown began");

    // Exactly the acknowledged commands are in the ledger, and each is its receipt.
    let receipts = receipts_by_seq(&h, &tenants);
    assert_eq!(head.next_seq, 4 + acked.len() as u64);
    assert_eq!(receipts.len() as u64, head.next_seq);
    for a in &acked {
        assert!(a.seq < head.next_seq);
        assert_eq!(receipts[&a.seq].hash, a.hash, "receipt {}", a.seq);
    }
    assert_eq!(h.verify().unwrap(), head);
}

#[tokio::test(start_paused = true)]
async fn after_shutdown_every_command_is_refused_shutting_down() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    let head = rt.shutdown().await.unwrap();
    assert_eq!(head.next_seq, 3);
    assert!(h.is_down());

    let refused = CommandError::Refused(Refusal::ShuttingDown);
    assert_eq!(sub.activate(None, "converted").await.unwrap_err(), refused);
    assert_eq!(h.subscription(&acme, &resource("sub-2")).pause("x").await.unwrap_err(), refused);
    assert_eq!(h.tenant(&acme).send(TenantCommand::SuspendTenant, "x").await.unwrap_err(), refused);
    let raw = RawCommand {
        tenant: acme.clone(),
        kind: GovernorKind::Subscription,
        resource: resource("sub-1"),
        name: "activate".into(),
        args: BTreeMap::new(),
        reason: "converted".into(),
        metadata: Vec::new(),
    };
    assert_eq!(h.command(raw).await.unwrap_err(), refused);
    assert_eq!(
        h.provision_tenant(&tenant("initech"), super::quota(), "x").await.unwrap_err(),
        refused
    );
    assert_eq!(sub.snapshot().await.unwrap_err(), Refusal::ShuttingDown);
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(h.head(), head, "nothing was recorded after shutdown");
}
