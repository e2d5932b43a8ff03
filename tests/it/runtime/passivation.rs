//! Passivation: idle governors leave memory (on demand and by the periodic sweep), a recently
//! used one stays, and a passivated governor comes back by replay on its next command.

use std::time::Duration;

use govern_governors::subscription::{State, Subscription};
use govern_governors::{Governor, GovernorKind};
use govern_receipt::replay;

use super::{MINUTE, builder, quota, resource, started, tenant};

const HOUR: Duration = Duration::from_secs(60 * 60);

#[tokio::test(start_paused = true)]
async fn idle_governors_are_passivated_and_a_recently_used_one_is_kept() {
    // A long idle time, so that the periodic sweep stays out of the way of `advance`.
    let rt = builder().idle_after(HOUR).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    assert_eq!(h.resident_governors(), 1, "the tenant governor");
    for r in ["sub-1", "sub-2"] {
        h.subscription(&acme, &resource(r)).start_trial("pro", 14, "signed up").await.unwrap();
    }
    assert_eq!(h.resident_governors(), 3);

    tokio::time::advance(10 * MINUTE).await;
    h.subscription(&acme, &resource("sub-3")).start_trial("pro", 14, "signed up").await.unwrap();
    assert_eq!(h.resident_governors(), 4);

    // Idle for 5 minutes: the tenant governor, sub-1 and sub-2 (last used 10 minutes ago).
    assert_eq!(h.passivate_idle(5 * MINUTE).await, 3);
    assert_eq!(h.resident_governors(), 1);
    // sub-3 was used just now; a second sweep with the same bound finds nothing.
    assert_eq!(h.passivate_idle(5 * MINUTE).await, 0);
    assert_eq!(h.resident_governors(), 1);
    assert_eq!(h.passivate_idle(Duration::ZERO).await, 1);
    assert_eq!(h.resident_governors(), 0);
    // Passivation writes nothing.
    assert_eq!(h.head().next_seq, 5);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_passivated_governor_comes_back_by_replay_on_its_next_command() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    sub.activate(None, "converted").await.unwrap();
    assert_eq!(h.passivate_idle(Duration::ZERO).await, 2);
    assert_eq!(h.resident_governors(), 0);

    // The next command finds the replayed state (`from` is active) and continues the numbering.
    let suspended = sub.suspend("card declined").await.unwrap();
    assert_eq!((suspended.from, suspended.to), ("active", "suspended"));
    assert_eq!((suspended.seq, suspended.resource_seq), (4, 2));
    assert_eq!(h.resident_governors(), 1);

    // Once more, through a query: the state is the replay of the receipts.
    assert_eq!(h.passivate_idle(Duration::ZERO).await, 1);
    assert_eq!(h.resident_governors(), 0);
    let snapshot = sub.snapshot().await.unwrap();
    assert_eq!(snapshot.machine.state(), State::Suspended);
    assert_eq!(snapshot.machine.plan(), Some("pro"));
    assert_eq!(snapshot.receipts, 3);
    let receipts = h.receipts(&acme, Some(GovernorKind::Subscription), Some(&sub_1)).unwrap();
    let replayed: Subscription = replay(&receipts).unwrap();
    assert_eq!(snapshot.machine, replayed);
    let resumed = sub.resume("card updated").await.unwrap();
    assert_eq!((resumed.from, resumed.to, resumed.resource_seq), ("suspended", "active", 3));
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_periodic_sweep_passivates_idle_governors_by_itself() {
    let rt = builder().idle_after(MINUTE).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    assert_eq!(h.resident_governors(), 2);

    // On paused time this sleep advances virtual time; the domain supervisors' sweep is
    // periodic (every idle_after / 2), so it runs on its own several times meanwhile.
    tokio::time::sleep(5 * MINUTE).await;
    assert_eq!(h.resident_governors(), 0);

    let converted = sub.activate(None, "converted").await.unwrap();
    assert_eq!((converted.from, converted.to, converted.resource_seq), ("free_trial", "active", 1));
    assert_eq!(h.resident_governors(), 1);
    assert_eq!(sub.state().await.unwrap(), State::Active);
    assert_eq!(h.head().next_seq, 4);
    rt.shutdown().await.unwrap();
}
