//! A runtime on the durable segment store, stopped and started again on the same data
//! directory: the chain continues, tenant states come back, governors rehydrate by replay,
//! and every acknowledgement came after its receipt was durable.

use govern_governors::subscription::State;
use govern_runtime::Runtime;

use super::{T0, quota, resource, tenant};

async fn start_on(dir: &std::path::Path) -> Runtime {
    super::quiet_injected_panics();
    Runtime::builder().epoch(T0).data_dir(dir).start().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_runtime_restarted_on_its_data_directory_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));

    let rt = start_on(dir.path()).await;
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

    let rt = start_on(dir.path()).await;
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
}
