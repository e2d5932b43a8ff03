//! A runtime on the durable segment store, stopped and started again on the same data
//! directory: the chain continues, tenant states come back, governors rehydrate by replay,
//! every acknowledgement came after its receipt was durable, and timeouts re-armed at start
//! obey their tenant's state (held while suspended, never fired once deprovisioned).

use govern_governors::DAY_MS;
use govern_governors::subscription::State;
use govern_runtime::Runtime;

use super::{DAY, T0, quota, resource, tenant};

/// A runtime on `dir` whose clock starts `days` after T0.
async fn start_on(dir: &std::path::Path, days: u64) -> Runtime {
    super::quiet_injected_panics();
    let epoch = T0.plus_ms(days * DAY_MS);
    Runtime::builder().epoch(epoch).data_dir(dir).start().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_runtime_restarted_on_its_data_directory_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));

    let rt = start_on(dir.path(), 0).await;
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    let activated = sub.activate(None, "converted").await.unwrap();
    let first = rt.shutdown().await.unwrap();
    assert_eq!(first.next_seq, 4);
    assert_eq!(first.last_hash, activated.hash);

    // The directory verifies offline, as `govern verify` would.
    let report = govern_ledger::verify::verify_dir(dir.path()).unwrap();
    assert_eq!(report.head, first);
    // The stop wrote the ledger's snapshot: the next open reads no receipt.
    assert_eq!(snapshot_of(dir.path()), Some(4));

    let rt = start_on(dir.path(), 0).await;
    let h = rt.handle();
    assert_eq!(h.head(), first, "the chain continues from the stored head");
    assert_eq!(h.tenant_state(&acme), Some(govern_governors::tenant::State::Active));
    let sub = h.subscription(&acme, &sub_1);
    assert_eq!(sub.state().await.unwrap(), State::Active, "rehydrated by replay");
    let paused = sub.pause("holiday").await.unwrap();
    assert_eq!((paused.seq, paused.resource_seq), (4, 2));
    assert_eq!(h.verify().unwrap().next_seq, 5);
    let second = rt.shutdown().await.unwrap();
    assert_eq!(second.next_seq, 5);
    assert_eq!(govern_ledger::verify::verify_dir(dir.path()).unwrap().head, second);
    assert_eq!(snapshot_of(dir.path()), Some(5));
}

/// The receipts the data directory's ledger snapshot covers, as the next open finds it.
fn snapshot_of(dir: &std::path::Path) -> Option<u64> {
    let (_, report) =
        govern_ledger::Ledger::open_dir(dir, govern_ledger::SegmentOptions::default()).unwrap();
    report.snapshot
}

#[tokio::test(start_paused = true)]
async fn a_pending_trial_ends_after_a_restart_without_its_governor_being_used() {
    let dir = tempfile::tempdir().unwrap();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let rt = start_on(dir.path(), 0).await;
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    h.subscription(&acme, &sub_1).start_trial("pro", 14, "signed up").await.unwrap();
    rt.shutdown().await.unwrap();

    // A new runtime on the same directory, ten days later: nobody touches the subscription.
    let rt = start_on(dir.path(), 10).await;
    let h = rt.handle();
    assert_eq!(h.resident_governors(), 0);
    tokio::time::advance(5 * DAY).await;
    // Whoever delivers it (the timer as the clock passed, or this call), it is decided once.
    h.fire_due_timeouts().await;
    let receipts = h.receipts(&acme, None, Some(&sub_1)).unwrap();
    let last = receipts.last().unwrap();
    assert_eq!((last.body.command.as_ref(), last.body.state_to.as_ref()), ("end_trial", "paused"));
    // Decided when the clock reached it: the advance jumped to day 15 in one step.
    assert_eq!(last.body.timestamp, T0.plus_ms(15 * DAY_MS));
    assert_eq!(receipts.len(), 2, "start_trial, end_trial");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_suspended_tenants_trial_stays_held_across_a_restart_and_ends_at_resume() {
    use govern_governors::tenant::Command as TenantCommand;
    let dir = tempfile::tempdir().unwrap();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let rt = start_on(dir.path(), 0).await;
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    h.subscription(&acme, &sub_1).start_trial("pro", 4, "signed up").await.unwrap();
    h.tenant(&acme).send(TenantCommand::SuspendTenant, "fraud check").await.unwrap();
    rt.shutdown().await.unwrap();

    // Restarted on day 2; the trial falls due on day 4 while the tenant is suspended.
    let rt = start_on(dir.path(), 2).await;
    let h = rt.handle();
    tokio::time::sleep(8 * DAY).await;
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(h.receipts(&acme, None, Some(&sub_1)).unwrap().len(), 1, "held: start_trial only");
    assert_eq!(h.head().next_seq, 4);
    rt.shutdown().await.unwrap();

    // And across a second restart, past the deadline: still held, then fired at resume.
    let rt = start_on(dir.path(), 12).await;
    let h = rt.handle();
    assert_eq!(h.fire_due_timeouts().await, 0);
    assert_eq!(h.head().next_seq, 4);
    let resumed = h.tenant(&acme).send(TenantCommand::ActivateTenant, "cleared").await.unwrap();
    assert_eq!(resumed.seq, 4);
    let receipts = h.receipts(&acme, None, Some(&sub_1)).unwrap();
    let last = receipts.last().unwrap();
    assert_eq!(
        (last.seq, last.body.command.as_ref(), last.body.state_to.as_ref()),
        (5, "end_trial", "paused")
    );
    assert_eq!(last.body.timestamp, T0.plus_ms(12 * DAY_MS));
    assert_eq!(h.fire_due_timeouts().await, 0);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_deprovisioned_tenants_trial_never_ends_after_a_restart() {
    use govern_governors::tenant::Command as TenantCommand;
    let dir = tempfile::tempdir().unwrap();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let rt = start_on(dir.path(), 0).await;
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    h.subscription(&acme, &sub_1).start_trial("pro", 4, "signed up").await.unwrap();
    h.tenant(&acme).send(TenantCommand::DeprovisionTenant, "churned").await.unwrap();
    rt.shutdown().await.unwrap();

    // Restarted before the deadline and after it: the trial never ends.
    for day in [2, 10] {
        let rt = start_on(dir.path(), day).await;
        let h = rt.handle();
        tokio::time::sleep(5 * DAY).await;
        assert_eq!(h.fire_due_timeouts().await, 0);
        assert_eq!(h.head().next_seq, 4, "nothing written after the deprovisioning (day {day})");
        rt.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_runtime_whose_index_holds_nothing_read_back_replays_and_numbers_after_a_restart() {
    // With an index budget of 0, every governor's list not appended to since the ledger's
    // snapshot is read from the snapshot when it rehydrates; numbering continues exactly.
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let start = |days| {
        super::quiet_injected_panics();
        let epoch = T0.plus_ms(days * DAY_MS);
        Runtime::builder().epoch(epoch).data_dir(dir.path()).ledger_index_budget(0).start()
    };
    let rt = start(0).await.unwrap();
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    for i in 0..5 {
        let sub = h.subscription(&acme, &resource(&format!("sub-{i}")));
        sub.start_trial("pro", 14, "signed up").await.unwrap();
        if i % 2 == 0 {
            sub.activate(None, "converted").await.unwrap();
        }
    }
    let first = rt.shutdown().await.unwrap();
    assert_eq!(snapshot_of(dir.path()), Some(first.next_seq));

    let rt = start(1).await.unwrap();
    let h = rt.handle();
    for i in 0..5 {
        let sub = h.subscription(&acme, &resource(&format!("sub-{i}")));
        let want = if i % 2 == 0 { State::Active } else { State::FreeTrial };
        assert_eq!(sub.state().await.unwrap(), want, "sub-{i} rehydrated from its paged list");
        let next = if i % 2 == 0 {
            sub.pause("holiday").await.unwrap()
        } else {
            sub.activate(None, "converted").await.unwrap()
        };
        assert_eq!(next.resource_seq, if i % 2 == 0 { 2 } else { 1 }, "sub-{i}");
    }
    assert_eq!(h.verify().unwrap().next_seq, first.next_seq + 5);
    rt.shutdown().await.unwrap();
}
