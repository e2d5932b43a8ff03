//! A runtime whose retention policy archived the oldest segments of its data directory:
//! governors whose early receipts are archived replay from their states at the boundary,
//! a start without `runtime.snap` re-arms their timeouts from those states, and the
//! directory verifies with and without the archive.

use govern_governors::DAY_MS;
use govern_governors::subscription::State;
use govern_runtime::{Retention, Runtime};

use super::{DAY, T0, quota, resource, tenant};

/// Small segments, so that a few hundred receipts fill many.
const SEGMENT_BYTES: u64 = 4096;

async fn start_on(dir: &std::path::Path, days: u64, retention: Option<Retention>) -> Runtime {
    super::quiet_injected_panics();
    let builder = Runtime::builder()
        .epoch(T0.plus_ms(days * DAY_MS))
        .data_dir(dir)
        .segment_bytes(SEGMENT_BYTES);
    let builder = match retention {
        Some(policy) => builder.retention(policy),
        None => builder,
    };
    builder.start().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn governors_whose_early_receipts_are_archived_replay_and_time_out_from_their_states() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, archive) = (tmp.path().join("data"), tmp.path().join("archive"));
    let acme = tenant("acme");
    let subs: Vec<_> = (0..40).map(|i| resource(&format!("sub-{i:02}"))).collect();

    // Day 0: forty trials of 14 days; thirty of them activated, paused and resumed.
    let rt = start_on(&dir, 0, None).await;
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    for sub in &subs {
        h.subscription(&acme, sub).start_trial("pro", 14, "signed up").await.unwrap();
    }
    for sub in &subs[..30] {
        let s = h.subscription(&acme, sub);
        s.activate(None, "converted").await.unwrap();
        s.pause("holiday").await.unwrap();
        s.resume("back").await.unwrap();
    }
    let written = rt.shutdown().await.unwrap();

    // Day 1: the retention policy, checked after the first commit, archives all but the
    // last few segments (its thread is joined at shutdown).
    let policy = Retention::to(&archive).live_bytes_max(3 * SEGMENT_BYTES).check_every(1);
    let rt = start_on(&dir, 1, Some(policy)).await;
    rt.handle().subscription(&acme, &subs[0]).pause("again").await.unwrap();
    let head = rt.shutdown().await.unwrap();
    assert_eq!(head.next_seq, written.next_seq + 1);
    let manifest = govern_ledger::archive::Manifest::read(&dir).unwrap().expect("archived");
    // The trials of sub-30..39 (receipts 1..=40) and more are archived.
    assert!(manifest.boundary > 41, "boundary {}", manifest.boundary);

    // Day 10, without the start state file: everything from the ledger and the states at
    // the boundary.
    std::fs::remove_file(dir.join("runtime.snap")).unwrap();
    let rt = start_on(&dir, 10, None).await;
    let h = rt.handle();
    assert_eq!(h.head(), head);
    assert_eq!(h.verify().unwrap(), head, "the live chain verifies from the boundary");
    assert_eq!(h.tenant_state(&acme), Some(govern_governors::tenant::State::Active));
    assert_eq!(h.subscription(&acme, &subs[0]).state().await.unwrap(), State::Paused);
    assert_eq!(h.subscription(&acme, &subs[1]).state().await.unwrap(), State::Active);
    assert_eq!(h.subscription(&acme, &subs[35]).state().await.unwrap(), State::FreeTrial);
    // A governor replayed from its state continues its numbering.
    let resumed = h.subscription(&acme, &subs[0]).resume("back again").await.unwrap();
    assert_eq!(resumed.resource_seq, 5);
    // The trials whose every receipt is archived still end on day 14.
    tokio::time::advance(5 * DAY).await;
    h.fire_due_timeouts().await;
    for sub in &subs[30..] {
        let receipts = h.receipts(&acme, None, Some(sub)).unwrap();
        let last = receipts.last().expect("its trial ended");
        assert_eq!((last.body.command.as_ref(), last.body.resource_seq), ("end_trial", 1), "{sub}");
    }
    let end = rt.shutdown().await.unwrap();

    let manifest = govern_ledger::archive::Manifest::read(&dir).unwrap().unwrap();
    let by_manifest =
        govern_ledger::verify::verify_archived(&dir, &manifest, None, &mut |_, _| {}).unwrap();
    let in_full =
        govern_ledger::verify::verify_archived(&dir, &manifest, Some(&archive), &mut |_, _| {})
            .unwrap();
    assert_eq!((by_manifest.head, in_full.head), (end, end));
    assert!(in_full.in_full && !by_manifest.in_full);
}
