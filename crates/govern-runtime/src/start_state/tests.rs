//! A start from `runtime.snap` (and the receipts after it) gives the state a start from
//! every receipt gives: tenants' states, armed timeouts, check views, idempotency keys, usage
//! counters and unfinished sagas; a damaged file, another ledger's, or one of another
//! configuration is not used.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};

use govern_governors::tenant::ResourceQuota;
use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp, saga};
use govern_ledger::{Ledger, SegmentOptions};

use super::*;
use crate::{RawCommand, Runtime, RuntimeBuilder};

const T0: Timestamp = Timestamp(1_767_225_600_000);

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

fn resource(id: &str) -> ResourceId {
    ResourceId::new(id).unwrap()
}

fn pricing() -> govern_plans::Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans/pricing.toml");
    govern_plans::load(&path).unwrap()
}

fn builder(dir: &Path, epoch: Timestamp) -> RuntimeBuilder {
    Runtime::builder().epoch(epoch).data_dir(dir).catalog(pricing()).resume_sagas_at_start(false)
}

fn quota() -> ResourceQuota {
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 }
}

async fn raw(
    h: &crate::RuntimeHandle,
    t: &TenantId,
    kind: GovernorKind,
    r: &str,
    name: &str,
    args: &[(&str, &str)],
) {
    let command = RawCommand {
        tenant: t.clone(),
        kind,
        resource: resource(r),
        name: name.to_owned(),
        args: args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        reason: "test".to_owned(),
        metadata: Vec::new(),
    };
    h.command(command).await.unwrap();
}

/// The first part of the history: trials (timed), a paid subscription, a grant with an
/// expiry (timed, a view), usage, keyed commands, an unfinished saga, a tenant in
/// maintenance (timed) and one deprovisioned.
async fn first_part(h: &crate::RuntimeHandle) {
    let (acme, globex, initech) = (tenant("acme"), tenant("globex"), tenant("initech"));
    for t in [&acme, &globex, &initech] {
        h.provision_tenant(t, quota(), "onboarding").await.unwrap();
    }
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.idempotent("k1").start_trial("starter", 14, "sign-up").await.unwrap();
    let paid = h.subscription(&acme, &resource("sub-2"));
    paid.idempotent("k2").start_trial("pro", 14, "sign-up").await.unwrap();
    paid.activate(None, "paid").await.unwrap();
    let expires = T0.plus_ms(30 * 86_400_000).0.to_string();
    raw(
        h,
        &globex,
        GovernorKind::Entitlement,
        "grant-1",
        "grant_entitlement",
        &[("feature", "export_pdf"), ("expires_at", &expires)],
    )
    .await;
    raw(h, &globex, GovernorKind::Entitlement, "grant-1", "approve_grant", &[]).await;
    h.subscription(&globex, &resource("sub-9")).start_trial("starter", 7, "sign-up").await.unwrap();
    let now = h.now();
    h.record_usage(&acme, "reports", 3, "e1", now).await.unwrap();
    h.record_usage(&acme, "reports", 2, "e2", now).await.unwrap();
    h.governor::<saga::Saga>(&acme, &resource("run-1"))
        .send(saga::Command::Begin { saga: "x".into(), steps: 2, params: String::new() }, "test")
        .await
        .unwrap();
    raw(
        h,
        &globex,
        GovernorKind::Tenant,
        "globex",
        "schedule_maintenance",
        &[("duration_minutes", "1440")],
    )
    .await;
    h.subscription(&initech, &resource("sub-1"))
        .start_trial("starter", 14, "sign-up")
        .await
        .unwrap();
    raw(h, &initech, GovernorKind::Tenant, "initech", "deprovision_tenant", &[]).await;
}

/// The rest: a key reused on another resource's new trial, the trial of sub-1 cancelled by
/// activation, more usage, a saga step, another tenant.
async fn second_part(h: &crate::RuntimeHandle) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    h.subscription(&acme, &resource("sub-1")).activate(None, "paid").await.unwrap();
    h.subscription(&acme, &resource("sub-3"))
        .idempotent("k3")
        .start_trial("pro", 14, "x")
        .await
        .unwrap();
    let now = h.now();
    h.record_usage(&acme, "reports", 1, "e3", now).await.unwrap();
    h.record_usage(&globex, "reports", 1, "g1", now).await.unwrap();
    h.governor::<saga::Saga>(&acme, &resource("run-1"))
        .send(saga::Command::StepDone { step: 0 }, "test")
        .await
        .unwrap();
    let umbrella = tenant("umbrella");
    h.provision_tenant(&umbrella, quota(), "onboarding").await.unwrap();
    h.subscription(&umbrella, &resource("sub-1"))
        .idempotent("k1")
        .start_trial("starter", 14, "x")
        .await
        .unwrap();
}

/// What a start left in a runtime, as text to compare.
#[derive(Debug, PartialEq, Eq)]
struct Dump {
    registry: Vec<(TenantId, govern_governors::tenant::State)>,
    schedule: Vec<crate::schedule::Due>,
    views: BTreeMap<TenantId, String>,
    idempotency: BTreeMap<String, Vec<String>>,
    usage: BTreeMap<TenantId, String>,
    sagas: Option<Vec<(TenantId, ResourceId)>>,
}

fn dump(rt: &Runtime) -> Dump {
    let shared = &rt.handle().shared;
    let now = shared.clock.now();
    Dump {
        registry: shared.registry.tenants(),
        schedule: shared.schedule.armed(),
        views: shared.commercial.views(),
        idempotency: shared.idempotency.entries(),
        usage: shared.commercial.usage.values(now),
        sagas: shared.sagas_to_resume.lock().unwrap().clone(),
    }
}

/// Starts a runtime on `dir`, dumps what its start left, and shuts it down (which writes
/// the start state).
async fn start_and_dump(dir: &Path, epoch: Timestamp) -> Dump {
    let rt = builder(dir, epoch).start().await.unwrap();
    let d = dump(&rt);
    rt.shutdown().await.unwrap();
    d
}

/// A start with the file removed: every receipt read.
async fn full_dump(dir: &Path, epoch: Timestamp) -> Dump {
    let _ = std::fs::remove_file(path(dir));
    start_and_dump(dir, epoch).await
}

fn config() -> Config {
    Config::new(true, (24 * 3_600_000, crate::limits::IDEMPOTENCY_KEYS_MAX), Some(&pricing()))
}

fn open(dir: &Path) -> Ledger {
    Ledger::open_dir(dir, SegmentOptions::default()).unwrap().0
}

/// A data directory after the first part (`runtime.snap` written at its shutdown, kept as
/// `first`), then the second part (the file then covers everything).
async fn history(root: &Path) -> (PathBuf, Vec<u8>) {
    let dir = root.join("d");
    let rt = builder(&dir, T0).start().await.unwrap();
    first_part(&rt.handle()).await;
    rt.shutdown().await.unwrap();
    let first = std::fs::read(path(&dir)).unwrap();
    let rt = builder(&dir, T0).start().await.unwrap();
    second_part(&rt.handle()).await;
    rt.shutdown().await.unwrap();
    (dir, first)
}

#[tokio::test(start_paused = true)]
async fn a_start_from_the_file_and_the_receipts_after_it_equals_a_start_from_every_receipt() {
    let root = tempfile::tempdir().unwrap();
    let (dir, first) = history(root.path()).await;
    let later = T0.plus_ms(3_600_000);

    // The states themselves: the first file carried over the second part, the last file,
    // and every receipt read, all alike.
    let ledger = open(&dir);
    let full = StartState::full(&ledger, &config(), later).unwrap();
    assert!(full.keys.values().any(|f| f.timeout.is_some()), "{full:?}");
    assert!(full.keys.values().any(|f| f.view.is_some()), "{full:?}");
    assert!(full.keys.values().any(|f| f.unfinished_saga), "{full:?}");
    assert!(!full.idempotency.is_empty() && !full.usage.is_empty(), "{full:?}");
    assert!(!full.keys.keys().any(|(t, _, _)| t.as_str() == "initech"), "deprovisioned");
    let last = load(&dir, &ledger, &config()).unwrap();
    assert_eq!(last.seq, full.seq);
    let mut last = last;
    assert_eq!(last.apply_tail(&ledger, &config(), later).unwrap(), 0);
    assert_eq!(last, full);
    let mut carried = codec::decode(&first).unwrap();
    assert!(carried.seq < full.seq);
    check(&carried, &ledger, &config()).unwrap();
    let tail = full.seq - carried.seq;
    assert_eq!(carried.apply_tail(&ledger, &config(), later).unwrap(), tail);
    assert_eq!(carried, full);
    drop(ledger);

    // And what the runtime holds after each start: from the last file, from the first
    // one (as a crash after the first part would leave it), and from every receipt.
    let from_last = start_and_dump(&dir, later).await;
    std::fs::write(path(&dir), &first).unwrap();
    let from_first = start_and_dump(&dir, later).await;
    let from_all = full_dump(&dir, later).await;
    assert_eq!(from_last, from_all);
    assert_eq!(from_first, from_all);
    assert!(from_all.schedule.len() >= 4, "{:?}", from_all.schedule);
    assert_eq!(from_all.sagas, Some(vec![(tenant("acme"), resource("run-1"))]));
    assert!(from_all.usage.contains_key(&tenant("globex")), "{:?}", from_all.usage);
    assert_eq!(from_all.idempotency.values().map(Vec::len).sum::<usize>(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_file_damaged_in_any_byte_is_not_used_and_the_start_reads_every_receipt() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = history(root.path()).await;
    let bytes = std::fs::read(path(&dir)).unwrap();
    assert!(codec::decode(&bytes).is_ok());
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0xff;
        assert!(
            matches!(codec::decode(&bad), Err(Rejected::Damaged(_))),
            "byte {i} flipped was not caught"
        );
    }
    for n in 0..bytes.len() {
        assert!(codec::decode(&bytes[..n]).is_err(), "cut at {n}");
    }
    let full = full_dump(&dir, T0).await;
    let mut bad = bytes.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    std::fs::write(path(&dir), &bad).unwrap();
    assert!(matches!(load(&dir, &open(&dir), &config()), Err(Rejected::Damaged(_))));
    assert_eq!(start_and_dump(&dir, T0).await, full);
    // The start wrote a good one again.
    assert!(load(&dir, &open(&dir), &config()).is_ok());
}

#[tokio::test(start_paused = true)]
async fn another_ledgers_file_or_another_configuration_is_not_used() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = history(root.path()).await;
    // The same commands a minute later: another history of the same length.
    let other = root.path().join("other");
    let rt = builder(&other, T0.plus_ms(60_000)).start().await.unwrap();
    first_part(&rt.handle()).await;
    second_part(&rt.handle()).await;
    rt.shutdown().await.unwrap();
    assert_eq!(open(&dir).head().next_seq, open(&other).head().next_seq);
    let full = full_dump(&other, T0).await;
    std::fs::copy(path(&dir), path(&other)).unwrap();
    match load(&other, &open(&other), &config()) {
        Err(Rejected::Mismatch(why)) => assert!(why.contains("another history"), "{why}"),
        other => panic!("used: {other:?}"),
    }
    assert_eq!(start_and_dump(&other, T0).await, full);

    // Another catalog, no catalog, another idempotency bound: not used.
    let mut catalog = pricing();
    catalog.version.push_str("-next");
    let ledger = open(&dir);
    for config in [
        Config::new(true, config().idempotency, Some(&catalog)),
        Config::new(false, config().idempotency, None),
        Config::new(true, (24 * 3_600_000, 10), Some(&pricing())),
    ] {
        assert!(matches!(load(&dir, &ledger, &config), Err(Rejected::Mismatch(_))));
    }
    assert!(load(&dir, &ledger, &self::config()).is_ok());
    drop(ledger);
    // A start with the other catalog reads every receipt and writes the file anew, for it.
    let changed = builder(&dir, T0).catalog(catalog.clone()).start().await.unwrap();
    changed.shutdown().await.unwrap();
    let next = Config::new(true, config().idempotency, Some(&catalog));
    assert!(load(&dir, &open(&dir), &next).is_ok());
    assert!(matches!(load(&dir, &open(&dir), &config()), Err(Rejected::Mismatch(_))));
}

#[tokio::test(start_paused = true)]
async fn a_file_ahead_of_the_ledger_is_not_used() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = history(root.path()).await;
    let ledger = open(&dir);
    let mut state = load(&dir, &ledger, &config()).unwrap();
    state.seq += 1;
    match check(&state, &ledger, &config()) {
        Err(Rejected::Mismatch(why)) => assert!(why.contains("the ledger holds"), "{why}"),
        other => panic!("used: {other:?}"),
    }
}

#[test]
fn the_encoding_round_trips_and_its_size_per_entry_is_as_documented() {
    let mut state = StartState { seq: 10_000_000, ..StartState::default() };
    let n = 1_000u64;
    for i in 0..n {
        let t = tenant(&format!("tenant-{:04}", i % 16));
        let r = resource(&format!("sub-{i:08}"));
        let timeout = Some(Timeout {
            at: T0.plus_ms(14 * 86_400_000 + i),
            command: "end_trial".into(),
            args: Args::new(),
        });
        state.keys.insert(
            (t, GovernorKind::Subscription, r),
            KeyFacts { timeout, ..KeyFacts::default() },
        );
    }
    let timeouts = codec::encode(&state).len();
    for i in 0..n {
        let t = tenant(&format!("tenant-{:04}", i % 16));
        let r = resource(&format!("sub-{:08}", n + i));
        let view = Some(View::Subscription { resource: r.clone(), plan: Some("starter".into()) });
        state
            .keys
            .insert((t, GovernorKind::Subscription, r), KeyFacts { view, ..KeyFacts::default() });
    }
    let views = codec::encode(&state).len() - timeouts;
    let keys: Vec<Kept> = (0..n)
        .map(|i| Kept {
            key: format!("key-{i:08}"),
            kind: GovernorKind::Subscription,
            resource: resource(&format!("sub-{i:08}")),
            command: "start_trial".into(),
            args: [
                ("plan".to_owned(), "pro".to_owned()),
                ("trial_days".to_owned(), "14".to_owned()),
            ]
            .into(),
            seq: 9_000_000 + i,
            hash: Digest([7; 32]),
            resource_seq: 0,
            from: "pending".into(),
            to: "free_trial".into(),
            at: T0.plus_ms(i),
        })
        .collect();
    let before = codec::encode(&state).len();
    state.idempotency.insert(tenant("tenant-0000"), keys);
    let bytes = codec::encode(&state);
    let keyed = bytes.len() - before;
    assert_eq!(codec::decode(&bytes).unwrap(), state);
    let per = |total: usize| total as f64 / n as f64;
    // docs/runtime-semantics.md, "The start state": 33 B a timeout, 25 B a plan view, about
    // 100 B and its arguments (24 B here) an idempotency key.
    assert!((33.0..34.0).contains(&per(timeouts)), "{} B per timeout", per(timeouts));
    assert!((25.0..26.0).contains(&per(views)), "{} B per view", per(views));
    assert!((120.0..130.0).contains(&per(keyed)), "{} B per idempotency key", per(keyed));
}

/// A million armed trials in the file, loaded by a start (`GOVERN_START_STATE_LOAD=1`, with
/// `--release` for a figure): the size of the file and the time from the start's call to the
/// runtime being up with every timeout armed.
#[tokio::test(start_paused = true)]
#[allow(clippy::disallowed_methods, reason = "a figure: wall-clock time for people")]
async fn a_million_armed_timeouts_load_at_start() {
    if std::env::var("GOVERN_START_STATE_LOAD").as_deref() != Ok("1") {
        return;
    }
    let n: u64 = 1_000_000;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    // An empty ledger: S = 0, so the file is this ledger's.
    let mut state = StartState { fingerprint: config().fingerprint, ..StartState::default() };
    for i in 0..n {
        let t = tenant(&format!("tenant-{:04}", i % 16));
        let timeout = Some(Timeout {
            at: T0.plus_ms(14 * 86_400_000 + i),
            command: "end_trial".into(),
            args: Args::new(),
        });
        let key = (t, GovernorKind::Subscription, resource(&format!("sub-{i:08}")));
        state.keys.insert(key, KeyFacts { timeout, ..KeyFacts::default() });
    }
    let began = std::time::Instant::now();
    write(&dir, &state).unwrap();
    eprintln!("encode and write {:.3} s", began.elapsed().as_secs_f64());
    let bytes = std::fs::metadata(path(&dir)).unwrap().len();
    let began = std::time::Instant::now();
    let read = codec::decode(&std::fs::read(path(&dir)).unwrap()).unwrap();
    eprintln!("read and decode {:.3} s", began.elapsed().as_secs_f64());
    assert_eq!(read.keys.len() as u64, n);
    drop(read);
    let began = std::time::Instant::now();
    let rt = builder(&dir, T0).start().await.unwrap();
    let took = began.elapsed();
    assert_eq!(rt.handle().shared.schedule.armed().len() as u64, n);
    eprintln!(
        "{n} timeouts: file {bytes} B ({} B each), start {:.3} s",
        bytes / n,
        took.as_secs_f64()
    );
    drop(state);
    let began = std::time::Instant::now();
    rt.shutdown().await.unwrap();
    eprintln!("shutdown {:.3} s", began.elapsed().as_secs_f64());
}

#[tokio::test(start_paused = true)]
async fn carried_in_two_steps_up_to_a_receipt_then_to_the_end_it_is_carried_in_one() {
    // What a running runtime writes: the file carried to the durable receipts (here, the
    // middle of the second part), later carried to the end.
    let root = tempfile::tempdir().unwrap();
    let (dir, first) = history(root.path()).await;
    let later = T0.plus_ms(3_600_000);
    let ledger = open(&dir);
    let full = StartState::full(&ledger, &config(), later).unwrap();
    let mut carried = codec::decode(&first).unwrap();
    let mid = carried.seq + (full.seq - carried.seq) / 2;
    assert!(carried.seq < mid && mid < full.seq);
    let applied = carried.apply_tail_upto(&ledger, &config(), later, mid).unwrap();
    assert_eq!((applied, carried.seq), (mid - codec::decode(&first).unwrap().seq, mid));
    let hash_before_mid = ledger.receipts_in(mid - 1..mid).unwrap()[0].hash;
    assert_eq!(carried.last_hash, hash_before_mid);
    check(&carried, &ledger, &config()).unwrap();
    assert_ne!(carried, full, "the second half changes the state");
    carried.apply_tail(&ledger, &config(), later).unwrap();
    assert_eq!(carried, full);
}
