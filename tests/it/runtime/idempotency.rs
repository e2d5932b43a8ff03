//! Idempotency keys: a repeat gets the first outcome and writes nothing, another request
//! under the same key is a conflict, a key in flight is refused, keys survive a restart, and
//! the window and the bound drop keys as documented. And the README's embedding snippet runs
//! twice on one data directory.

use std::time::Duration;

use govern_governors::subscription::Command as Sub;
use govern_governors::{Metadata, Reason, Request};
use govern_runtime::{CommandError, Refusal, Runtime};

use super::{builder, quota, resource, tenant};

#[tokio::test(start_paused = true)]
async fn a_repeat_gets_the_first_outcome_and_writes_nothing() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));

    let first = sub.idempotent("trial-1").start_trial("pro", 14, "sign-up").await.unwrap();
    let head = h.head();
    let again = sub.idempotent("trial-1").start_trial("pro", 14, "retried").await.unwrap();
    assert_eq!(again, first, "the same seq, hash and transition");
    assert_eq!(h.head(), head, "nothing written");

    // A rejection is the first outcome too.
    let rejected = sub.idempotent("archive-1").archive("cleanup").await.unwrap_err();
    assert_eq!(rejected.code(), "invalid_transition");
    sub.activate(None, "paid").await.unwrap();
    sub.request_cancellation("leaving").await.unwrap();
    sub.confirm_cancellation(None, "gone").await.unwrap();
    // Archiving would now be accepted; the key still answers its first outcome.
    let replayed = sub.idempotent("archive-1").archive("cleanup").await.unwrap_err();
    assert_eq!(replayed, rejected);

    // The same key for another request: a conflict, nothing done.
    let head = h.head();
    let conflict = sub.idempotent("trial-1").start_trial("starter", 14, "x").await.unwrap_err();
    assert_eq!(
        conflict,
        CommandError::Refused(Refusal::IdempotencyConflict { key: "trial-1".into() })
    );
    assert_eq!((conflict.code(), conflict.http_status()), ("idempotency_conflict", 422));
    let other_resource = h.subscription(&acme, &resource("sub-2")).idempotent("trial-1");
    assert_eq!(
        other_resource.start_trial("pro", 14, "x").await.unwrap_err().code(),
        "idempotency_conflict"
    );
    assert_eq!(h.head(), head);

    // Keys are per tenant: globex may use the same one.
    let globex = tenant("globex");
    h.provision_tenant(&globex, quota(), "onboarding").await.unwrap();
    let g = h.subscription(&globex, &resource("sub-1")).idempotent("trial-1");
    assert_eq!(g.start_trial("pro", 14, "sign-up").await.unwrap().to, "free_trial");

    // The key is recorded in the receipt's metadata.
    let r = &h.receipts(&acme, None, Some(&resource("sub-1"))).unwrap()[0];
    assert_eq!(r.body.metadata.get("idempotency_key").map(String::as_str), Some("trial-1"));
    let stats = h.idempotency_stats();
    assert_eq!((stats.keys, stats.replayed), (3, 2));
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_runtime_refusal_decides_nothing_and_frees_the_key() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    // (A key in flight is refused `idempotency_in_flight`: the store's unit tests, where
    // "in flight" can be held still.)
    let ghost = tenant("ghost");
    let g = h.subscription(&ghost, &resource("sub-1")).idempotent("ghost-1");
    assert_eq!(g.start_trial("pro", 14, "x").await.unwrap_err().code(), "unknown_tenant");
    h.provision_tenant(&ghost, quota(), "onboarding").await.unwrap();
    assert_eq!(g.start_trial("pro", 14, "x").await.unwrap().to, "free_trial");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keys_survive_a_restart_and_the_window_and_the_bound_drop_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let rt = builder().data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    let first = sub.idempotent("trial-1").start_trial("pro", 14, "sign-up").await.unwrap();
    rt.shutdown().await.unwrap();

    // Rebuilt from the receipt's metadata: the repeat is answered, nothing written.
    let rt = builder().data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    let head = h.head();
    let sub = h.subscription(&acme, &resource("sub-1"));
    assert_eq!(sub.idempotent("trial-1").start_trial("pro", 14, "retried").await.unwrap(), first);
    assert_eq!(h.head(), head);
    assert_eq!(
        sub.idempotent("trial-1").activate(None, "x").await.unwrap_err().code(),
        "idempotency_conflict"
    );
    rt.shutdown().await.unwrap();

    // A day later the key is forgotten: the request runs again (and is decided anew).
    let window = Duration::from_secs(3_600);
    let rt = builder().data_dir(&data).idempotency(window, 2).start().await.unwrap();
    let h = rt.handle();
    tokio::time::advance(Duration::from_secs(24 * 3_600)).await;
    let sub = h.subscription(&acme, &resource("sub-1"));
    let again = sub.idempotent("trial-1").start_trial("pro", 14, "retried").await.unwrap_err();
    assert_eq!(again.code(), "invalid_transition", "decided anew: the trial is running");
    // The bound: at most 2 keys per tenant, the oldest out first, counted.
    for k in ["a", "b", "c"] {
        let s = h.subscription(&acme, &resource(&format!("sub-{k}")));
        s.idempotent(k).start_trial("pro", 14, "x").await.unwrap();
    }
    let stats = h.idempotency_stats();
    assert_eq!((stats.keys, stats.evicted), (2, 2), "{stats:?}");
    // `a` was evicted: its repeat runs again, and is rejected by the governor this time.
    let s = h.subscription(&acme, &resource("sub-a"));
    assert_eq!(
        s.idempotent("a").start_trial("pro", 14, "x").await.unwrap_err().code(),
        "invalid_transition"
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_raw_command_carries_its_key_in_metadata() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let raw = govern_runtime::RawCommand {
        tenant: acme.clone(),
        kind: govern_governors::GovernorKind::Subscription,
        resource: resource("sub-1"),
        name: "start_trial".into(),
        args: [("plan", "pro"), ("trial_days", "14")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        reason: "sign-up".into(),
        metadata: vec![("idempotency_key".into(), "k-1".into())],
    };
    let first = h.command(raw.clone()).await.unwrap();
    assert_eq!(h.command(raw).await.unwrap(), first);
    // And a typed request with the key in its metadata.
    let typed = Request {
        command: Sub::StartTrial { plan: "pro".into(), trial_days: 14 },
        reason: Reason::new("sign-up").unwrap(),
        metadata: Metadata::from_pairs([("idempotency_key", "k-1")]).unwrap(),
    };
    let sub = h.subscription(&acme, &resource("sub-1"));
    assert_eq!(sub.send_request(typed).await.unwrap(), first);
    rt.shutdown().await.unwrap();
}

/// The README's embedding snippet (with a data directory of the test's own), run twice:
/// the second run gets the first run's answers.
#[tokio::test(start_paused = true)]
async fn the_readmes_embedding_snippet_runs_twice_on_one_data_directory() {
    use govern_governors::tenant::ResourceQuota;
    use govern_governors::{ResourceId, TenantId};

    async fn snippet(dir: &std::path::Path) -> Result<(u64, u64), Box<dyn std::error::Error>> {
        let runtime = Runtime::builder().data_dir(dir).start().await?; // continues a ledger
        let h = runtime.handle(); // cheap to clone
        let acme = TenantId::new("acme")?;
        let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
        h.provision_tenant_idempotent(&acme, quota, "contract signed", "onboard-acme").await?;

        let sub = h.subscription(&acme, &ResourceId::new("sub-1")?);
        let trial = sub.idempotent("acme-sub-1-trial"); // a retry gets the first answer
        let accepted = trial.start_trial("pro", 14, "self-serve sign-up").await?; // receipt #seq
        match sub.archive("cleanup").await {
            Err(e) => assert_eq!(e.code(), "invalid_transition"), // a refusal is a value
            Ok(_) => unreachable!(),
        }
        let receipts = h.receipts(&acme, None, None)?; // this tenant's only
        let head = runtime.shutdown().await?; // drains, last commit, signs a checkpoint
        assert_eq!(receipts.len(), 3);
        Ok((accepted.seq, head.next_seq))
    }
    let dir = tempfile::tempdir().unwrap();
    let first = snippet(dir.path()).await.unwrap();
    let second = snippet(dir.path()).await.unwrap();
    assert_eq!(first, (2, 3));
    assert_eq!(second, first, "the same answers, nothing more written");
}
