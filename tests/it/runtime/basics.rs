//! One subscription through the real actors: receipts, replay, chain, queries.

use govern_governors::subscription::{State, Subscription};
use govern_receipt::replay;

use super::{resource, started, tenant};

#[tokio::test(start_paused = true)]
async fn the_lifecycle_of_a_subscription_is_receipted_and_replays() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    sub.activate(None, "converted").await.unwrap();
    sub.suspend("card declined").await.unwrap();
    sub.resume("card updated").await.unwrap();
    sub.pause("holiday").await.unwrap();
    sub.resume("back").await.unwrap();
    sub.request_cancellation("leaving").await.unwrap();
    let confirmed = sub.confirm_cancellation(None, "confirmed").await.unwrap();
    assert_eq!(
        (confirmed.from, confirmed.to),
        ("cancellation_requested", "cancellation_confirmed")
    );
    let archived = sub.archive("records").await.unwrap();
    assert_eq!(archived.to, "archived");
    assert_eq!(archived.resource_seq, 8);

    let err = sub.resume("too late").await.unwrap_err();
    assert_eq!(err.code(), "invalid_transition");
    assert_eq!(sub.state().await.unwrap(), State::Archived);

    let receipts = h
        .receipts(&acme, Some(govern_governors::GovernorKind::Subscription), Some(&sub_1))
        .unwrap();
    assert_eq!(receipts.len(), 9);
    let replayed: Subscription = replay(&receipts).unwrap();
    assert_eq!(replayed, sub.snapshot().await.unwrap().machine);
    // 2 tenant-governor receipts (provision, activate) + 9.
    assert_eq!(h.verify().unwrap().next_seq, 11);
    let head = rt.shutdown().await.unwrap();
    assert_eq!(head.next_seq, 11);
}
