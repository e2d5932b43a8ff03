//! Crash safety of the runtime under SIGKILL, through the commit path it really uses (the
//! receipt actor's group commit, not `GroupCommit`, which `crates/govern-ledger/tests/kill.rs`
//! covers): a child process runs a durable runtime on a data directory with many concurrent
//! tasks across several tenants (subscriptions through their lifecycle, quota checks,
//! payments, tenants suspended and resumed) and prints one line per acknowledged command; the
//! parent kills it with SIGKILL after a random number of acknowledgements, many times over the
//! same directory. After every kill: the directory verifies offline (a torn tail is reported,
//! never an error) and its signed checkpoint (written every few milliseconds, so kills land in
//! checkpoint writes too) verifies; a new runtime starts on it (the dead child's lock is gone);
//! every acknowledged receipt is in the ledger at its sequence number with its hash; every
//! governor that acknowledged a command, queried through the runtime, equals the replay of its
//! receipts and has at least as many as were acknowledged; each tenant admits commands as its
//! last acknowledged lifecycle command says (or a later receipt, durable but not yet
//! acknowledged when the kill came). The next round continues on the same directory.
//!
//! The child's segments are small and its retention policy archives the oldest ones as it
//! runs (`RuntimeBuilder::retention`), so kills land in archivals too: then the directory
//! verifies with its archive in full, acknowledged receipts are found in the archive or the
//! live segments, and governors whose early receipts are archived equal the replay of all
//! their receipts from the first.
//!
//! The child is this test binary re-run with `--exact child_runtime` and
//! `GOVERN_KILL_RUNTIME_DIR=<dir>`; without that variable `child_runtime` does nothing.
//!
//! Environment (shared with the ledger's kill test):
//! - `GOVERN_KILL_ROUNDS`: how many kill-and-restart rounds (default 6).
//! - `GOVERN_KILL_SEED`: the seed (decimal `u64`) that picks each round's number of
//!   acknowledgements before the kill and the child's choices (default: random, printed in
//!   every failure message). The kill still lands wherever the child happens to be, so a seed
//!   does not replay a run exactly.
#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use govern_governors::billing::Billing;
use govern_governors::quota::{Command as QuotaCommand, Quota, Resource};
use govern_governors::subscription::Subscription;
use govern_governors::tenant::{
    Command as TenantCommand, ResourceQuota, State as TenantState, Tenant,
};
use govern_governors::{CommandSpec, Ctx, GovernorKind, ResourceId, StateSpec as _, TenantId};
use govern_ledger::LedgerStore as _;
use govern_ledger::archive::Manifest;
use govern_ledger::checkpoint::{
    CHECKPOINT_FILE, PUBLIC_KEY_FILE, SignedCheckpoint, load_public_key, verify_history,
};
use govern_ledger::merkle::MerkleTree;
use govern_ledger::segment::{SegmentOptions, SegmentStore};
use govern_ledger::verify::{verify_archived, verify_dir};
use govern_receipt::{Digest, Receipt, replay};
use govern_runtime::ledger::CommitOptions;
use govern_runtime::{
    Accepted, CommandError, GovernorHandle, Hosted, Refusal, Retention, Runtime, RuntimeHandle,
};
use tokio::sync::watch;

/// The variable that turns `child_runtime` into the child, naming its data directory.
const CHILD_DIR_ENV: &str = "GOVERN_KILL_RUNTIME_DIR";
/// The child's seed, from the parent's.
const CHILD_SEED_ENV: &str = "GOVERN_KILL_RUNTIME_SEED";
/// Tenants, `t0` ...
const TENANTS: usize = 4;
/// Concurrent tasks in the child: one lifecycle task per tenant, the others split over
/// subscriptions, quotas and payments.
const TASKS: usize = 32;
/// The child's segment files: small, so that the retention policy has segments to archive.
const SEGMENT_BYTES: u64 = 32 << 10;

/// The archive directory beside data directory `dir`.
fn archive_of(dir: &Path) -> PathBuf {
    dir.parent().map_or_else(|| PathBuf::from("archive"), |p| p.join("archive"))
}

/// Most acknowledgements a round reads before the kill.
const ACKS_MAX: u64 = 400;
/// Rounds without `GOVERN_KILL_ROUNDS`.
const ROUNDS_DEFAULT: u64 = 6;
/// A round whose child prints nothing for this long has hung: it is killed and the test fails.
const STALL: Duration = Duration::from_secs(60);
/// Every receipt's reason.
const REASON: &str = "kill test";

fn tenant_id(i: usize) -> TenantId {
    TenantId::new(&format!("t{i}")).unwrap()
}

fn resource_id(id: &str) -> ResourceId {
    ResourceId::new(id).unwrap()
}

/// Whether a tenant in `state` admits commands to its other governors.
fn admits(state: Option<TenantState>) -> bool {
    matches!(state, Some(TenantState::Active | TenantState::Degraded | TenantState::Maintenance))
}

/// A small xorshift64* generator: enough to pick kill points and commands.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Never zero (a fixed point); spread nearby seeds apart.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|e| panic!("{name}={value:?}: {e}")))
}

// ---------------------------------------------------------------------------------------
// The child.

/// What the child's tasks share.
struct Shared {
    h: RuntimeHandle,
    /// Per tenant: whether it admits commands to its other governors, as its lifecycle task
    /// last heard (the registry changes first: a refusal while this says yes is brief).
    admitted: Vec<watch::Sender<bool>>,
    /// Per tenant: commands its other governors have acknowledged, so that its lifecycle
    /// task lets them work between two of its own.
    progress: Vec<watch::Sender<u64>>,
}

/// One line per acknowledged command, written whole and flushed: what the parent checks.
fn print_ack(tenant: &TenantId, kind: GovernorKind, resource: &ResourceId, a: &Accepted) {
    let line = format!(
        "ack {tenant} {kind} {resource} {} {} {} {} {}\n",
        a.seq, a.hash, a.resource_seq, a.from, a.to
    );
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).unwrap();
    out.flush().unwrap();
}

/// Sends `command`, prints its acknowledgement, and deals with the answers a healthy runtime
/// gives under this load: a rejection (nothing recorded), the tenant not admitting commands
/// (waits until its lifecycle task says it does), a reply timeout on a loaded machine
/// (nothing acknowledged). Anything else fails the child.
async fn send<G: Hosted>(s: &Shared, tenant: usize, gov: &GovernorHandle<G>, command: G::Command) {
    match gov.send(command, REASON).await {
        Ok(a) => {
            print_ack(gov.tenant(), G::KIND, gov.resource(), &a);
            if G::KIND != GovernorKind::Tenant {
                s.progress[tenant].send_modify(|n| *n += 1);
            }
        }
        Err(CommandError::Rejected(_)) | Err(CommandError::Refused(Refusal::Timeout { .. })) => {}
        Err(CommandError::Refused(
            Refusal::TenantSuspended(_) | Refusal::TenantNotActive(_) | Refusal::UnknownTenant(_),
        )) => {
            let mut admitted = s.admitted[tenant].subscribe();
            if *admitted.borrow_and_update() {
                // The registry is a step ahead of the lifecycle task: let it catch up.
                tokio::task::yield_now().await;
            } else {
                admitted.wait_for(|a| *a).await.unwrap();
            }
        }
        Err(e) => panic!("{} {}/{}: {e}", G::KIND, gov.tenant(), gov.resource()),
    }
}

/// A tenant's lifecycle: provisioned and activated, then degraded, suspended and resumed
/// again and again; while it admits commands, its other governors get a few in first.
async fn tenant_task(s: Arc<Shared>, i: usize, mut rng: XorShift) {
    let t = tenant_id(i);
    let gov = s.h.tenant(&t);
    let mut progress = s.progress[i].subscribe();
    loop {
        let state = s.h.tenant_state(&t);
        s.admitted[i].send_replace(admits(state));
        let command = match state {
            None => TenantCommand::ProvisionTenant {
                quota: ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 },
            },
            Some(TenantState::Provisioning | TenantState::Suspended) => {
                TenantCommand::ActivateTenant
            }
            Some(TenantState::Active) if rng.below(2) == 0 => TenantCommand::MarkDegraded,
            Some(TenantState::Degraded) if rng.below(2) == 0 => TenantCommand::ActivateTenant,
            Some(TenantState::Active | TenantState::Degraded) => TenantCommand::SuspendTenant,
            Some(other) => panic!("tenant {t} is {other:?}: this test never goes there"),
        };
        send(&s, i, &gov, command).await;
        if admits(s.h.tenant_state(&t)) {
            s.admitted[i].send_replace(true);
            let target = *progress.borrow_and_update() + 1 + rng.below(16) as u64;
            progress.wait_for(|n| *n >= target).await.unwrap();
        }
    }
}

/// Drives this task's governors of kind `G` through their lifecycles, one after the other:
/// each step picks a command the governor's state has an edge for (one in eight is any
/// command, usually rejected), unless `direct` gives one; a governor with no edge left is
/// done and the next one starts. A restarted child carries on with the first governor of
/// its task that is not in a terminal state.
async fn lifecycle_task<G: Hosted>(
    s: Arc<Shared>,
    task: usize,
    mut rng: XorShift,
    direct: fn(&mut XorShift) -> Option<G::Command>,
) {
    let tenant = task % TENANTS;
    let t = tenant_id(tenant);
    let governor =
        |k: usize| s.h.governor::<G>(&t, &resource_id(&format!("{}-{task}-{k}", G::KIND.name())));
    let mut k = 0;
    while governor(k).state().await.unwrap().is_terminal() {
        k += 1;
    }
    loop {
        let gov = governor(k);
        if let Some(command) = direct(&mut rng) {
            send(&s, tenant, &gov, command).await;
            continue;
        }
        let machine = match gov.snapshot().await {
            Ok(snapshot) => snapshot.machine,
            Err(Refusal::Timeout { .. }) => continue,
            Err(e) => panic!("{} {t}/{}: snapshot: {e}", G::KIND, gov.resource()),
        };
        let ctx = Ctx { now: s.h.now() };
        // Not the runtime's own commands (a quota's `record_usage`, a subscription's
        // `change_plan`): a host's are refused `reserved`.
        let samples: Vec<G::Command> =
            G::Command::samples(&ctx).into_iter().filter(|c| !G::reserved(c)).collect();
        let open: Vec<_> = samples.iter().filter(|c| machine.decide(c, &ctx).is_ok()).collect();
        if open.is_empty() {
            k += 1;
            continue;
        }
        let command = if rng.below(8) == 0 {
            samples[rng.below(samples.len())].clone()
        } else {
            open[rng.below(open.len())].clone()
        };
        send(&s, tenant, &gov, command).await;
    }
}

/// Three quota steps in four are a usage check (at a random level of the limit).
fn quota_check(rng: &mut XorShift) -> Option<QuotaCommand> {
    (rng.below(4) != 0).then(|| QuotaCommand::CheckQuota {
        resource: Resource::ApiCalls,
        usage: rng.below(111) as u64,
        limit: 100,
    })
}

fn no_direct<C>(_: &mut XorShift) -> Option<C> {
    None
}

/// The child's runtime and tasks, until it is killed.
async fn child(dir: PathBuf, seed: u64) {
    // Durable (the default); checkpoints every 10 ms, so that kills land in their writes.
    let options =
        CommitOptions { checkpoint_every: Duration::from_millis(10), ..CommitOptions::default() };
    // Ledger snapshots every 100 receipts and the retention policy checked as often, so
    // that kills land in their writes and in archivals too; an index budget of nothing, so
    // that every list not appended to since the last snapshot is read from it.
    let retention =
        Retention::to(archive_of(&dir)).live_bytes_max(4 * SEGMENT_BYTES).check_every(100);
    let runtime = Runtime::builder()
        .data_dir(dir)
        .group_commit(options)
        .segment_bytes(SEGMENT_BYTES)
        .retention(retention)
        .ledger_snapshot_every(100)
        .ledger_index_budget(0)
        .start()
        .await
        .unwrap();
    let h = runtime.handle();
    let shared = Arc::new(Shared {
        admitted: (0..TENANTS)
            .map(|i| watch::channel(admits(h.tenant_state(&tenant_id(i)))).0)
            .collect(),
        progress: (0..TENANTS).map(|_| watch::channel(0).0).collect(),
        h,
    });
    let mut rng = XorShift::new(seed);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (s, rng) = (Arc::clone(&shared), XorShift::new(rng.next()));
        match (task, task.checked_sub(TENANTS).map(|i| i % 3)) {
            (i, None) => tasks.spawn(tenant_task(s, i, rng)),
            (i, Some(0)) => tasks.spawn(lifecycle_task::<Subscription>(s, i, rng, no_direct)),
            (i, Some(1)) => tasks.spawn(lifecycle_task::<Quota>(s, i, rng, quota_check)),
            (i, Some(_)) => tasks.spawn(lifecycle_task::<Billing>(s, i, rng, no_direct)),
        };
    }
    // The tasks run until the kill: one that ends has failed.
    if let Some(ended) = tasks.join_next().await {
        ended.unwrap();
        panic!("a task of the child ended");
    }
}

/// The child: runs the runtime on [`CHILD_DIR_ENV`] until it is killed, printing a line per
/// acknowledged command. Does nothing unless that variable is set.
#[test]
fn child_runtime() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else { return };
    let seed = env_u64(CHILD_SEED_ENV).unwrap_or_default();
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    tokio.block_on(child(PathBuf::from(dir), seed));
}

// ---------------------------------------------------------------------------------------
// The parent.

/// One acknowledged command, as the child printed it.
#[derive(Clone, Debug)]
struct Ack {
    tenant: TenantId,
    kind: GovernorKind,
    resource: ResourceId,
    seq: u64,
    hash: Digest,
    resource_seq: u64,
    from: String,
    to: String,
}

/// `ack <tenant> <kind> <resource> <seq> <hash> <resource_seq> <from> <to>` at the end of a
/// line (libtest may print its `test ... ` in front of the first one).
fn parse_ack(line: &str) -> Option<Ack> {
    let at = line.rfind("ack ")?;
    let words: Vec<&str> = line[at + 4..].split_whitespace().collect();
    let [tenant, kind, resource, seq, hash, resource_seq, from, to] = words[..] else {
        return None;
    };
    Some(Ack {
        tenant: TenantId::new(tenant).ok()?,
        kind: GovernorKind::from_name(kind)?,
        resource: ResourceId::new(resource).ok()?,
        seq: seq.parse().ok()?,
        hash: hash.parse().ok()?,
        resource_seq: resource_seq.parse().ok()?,
        from: from.to_owned(),
        to: to.to_owned(),
    })
}

/// Runs the child on `dir` until it has acknowledged `kill_after` commands, kills it with
/// SIGKILL, and returns every acknowledgement it printed (those read after the kill too).
fn run_and_kill(dir: &Path, kill_after: u64, seed: u64, ctx: &str) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_runtime", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let child = Arc::new(Mutex::new(child));
    // Kills a child that stops printing, so that a hang fails the round instead of the job.
    let (alive, stalled) = (mpsc::channel::<()>(), Arc::new(AtomicBool::new(false)));
    let watchdog = {
        let (child, stalled, beats) = (Arc::clone(&child), Arc::clone(&stalled), alive.1);
        std::thread::spawn(move || {
            loop {
                match beats.recv_timeout(STALL) {
                    Ok(()) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        stalled.store(true, Ordering::SeqCst);
                        let _ = child.lock().unwrap().kill();
                        return;
                    }
                }
            }
        })
    };
    let mut acks = Vec::new();
    let mut line = String::new();
    let mut read_line = |acks: &mut Vec<Ack>| {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        // A line cut short cannot be trusted to be whole: count only complete ones.
        if line.ends_with('\n') {
            acks.extend(parse_ack(&line));
        }
        let _ = alive.0.send(());
        n > 0
    };
    let mut exited = None;
    while (acks.len() as u64) < kill_after {
        if !read_line(&mut acks) {
            exited = Some(child.lock().unwrap().wait().unwrap());
            break;
        }
    }
    let status = {
        let mut child = child.lock().unwrap();
        // SIGKILL on Unix.
        let _ = child.kill();
        child.wait().unwrap()
    };
    if let Some(status) = exited {
        let why = if stalled.load(Ordering::SeqCst) { "stalled and was killed" } else { "exited" };
        panic!("{ctx}: the child {why} ({status}) after {} of {kill_after} acks", acks.len());
    }
    assert!(!status.success(), "{ctx}: the child survived the kill: {status}");
    // What was in the pipe at the kill was acknowledged too.
    while read_line(&mut acks) {}
    drop(alive.0);
    watchdog.join().unwrap();
    acks
}

/// What one round found.
#[derive(Default)]
struct Found {
    /// A torn final write (cut at the next opening).
    torn: bool,
    /// The size the signed checkpoint covers, if there is one.
    checkpoint: Option<u64>,
    /// Receipts in the ledger.
    receipts: u64,
    /// The archive boundary (0: nothing archived yet).
    archived: u64,
    /// Receipts of commands never acknowledged: durable, or at least written, when the kill
    /// came (state timeouts' receipts, which nobody is told of, not counted).
    unacknowledged: u64,
    /// Governors that acknowledged commands, checked against their replay.
    governors: usize,
}

/// Offline, before anything opens the directory: it verifies (a torn tail is reported, not
/// an error) and its signed checkpoint, if any, verifies against it.
fn check_offline(dir: &Path, found: &mut Found, ctx: &str) {
    let (tree, receipts) = match Manifest::read(dir).unwrap_or_else(|e| panic!("{ctx}: {e}")) {
        // Archived: the live receipts and the archive, in full.
        Some(manifest) => {
            let mut tree = MerkleTree::new();
            let report = verify_archived(dir, &manifest, Some(&archive_of(dir)), &mut |_, h| {
                tree.push(h);
            })
            .unwrap_or_else(|e| panic!("{ctx}: verify_archived: {e}"));
            found.torn = report.torn.is_some();
            found.archived = manifest.boundary;
            (tree, report.receipts)
        }
        None => {
            let report = verify_dir(dir).unwrap_or_else(|e| panic!("{ctx}: verify_dir: {e}"));
            found.torn = report.torn.is_some();
            (report.tree, report.receipts)
        }
    };
    let checkpoint = match std::fs::read_to_string(dir.join(CHECKPOINT_FILE)) {
        Ok(json) => json,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => panic!("{ctx}: reading the checkpoint: {e}"),
    };
    let signed = SignedCheckpoint::from_json(checkpoint.trim_end())
        .unwrap_or_else(|e| panic!("{ctx}: checkpoint {checkpoint:?}: {e}"));
    let key = load_public_key(&dir.join(PUBLIC_KEY_FILE)).unwrap();
    verify_history(&tree, &signed, &key).unwrap_or_else(|e| {
        panic!(
            "{ctx}: checkpoint at size {} against a ledger of {receipts}: {e}",
            signed.checkpoint.size
        )
    });
    found.checkpoint = Some(signed.checkpoint.size);
}

/// A governor that acknowledged commands, queried through the runtime: its machine is the
/// replay of its receipts from its first (`ledger`: archived ones included), and it has at
/// least as many as were acknowledged.
async fn check_governor<G: Hosted>(
    h: &RuntimeHandle,
    ledger: &BTreeMap<u64, Receipt>,
    ack: &Ack,
    acked: u64,
    ctx: &str,
) {
    let at = format!("{ctx}: {} {}/{}", G::KIND, ack.tenant, ack.resource);
    let live = h
        .governor::<G>(&ack.tenant, &ack.resource)
        .snapshot()
        .await
        .unwrap_or_else(|e| panic!("{at}: snapshot: {e}"));
    // Read after the snapshot: a state timeout may have added a receipt since, never removed.
    let in_store = h.receipts(&ack.tenant, Some(G::KIND), Some(&ack.resource)).unwrap();
    let first_live = in_store.first().map_or(u64::MAX, |r| r.seq);
    let archived = ledger.values().take_while(|r| r.seq < first_live);
    let receipts: Vec<Receipt> = archived
        .filter(|r| {
            (&r.body.tenant, r.body.governor, &r.body.resource)
                == (&ack.tenant, G::KIND, &ack.resource)
        })
        .cloned()
        .chain(in_store)
        .collect();
    assert!(
        live.receipts > ack.resource_seq && live.receipts >= acked,
        "{at}: {} receipts, {acked} acknowledged up to resource_seq {}",
        live.receipts,
        ack.resource_seq
    );
    assert!(receipts.len() as u64 >= live.receipts, "{at}: the ledger has fewer receipts");
    let replayed: G =
        replay(&receipts[..live.receipts as usize]).unwrap_or_else(|e| panic!("{at}: replay: {e}"));
    assert_eq!(live.machine, replayed, "{at}: the live machine is not the replay");
}

/// Online: a runtime starts on the directory, and the ledger, the governors and the tenants
/// hold what was acknowledged.
async fn check_runtime(dir: &Path, acked: &BTreeMap<u64, Ack>, found: &mut Found, ctx: &str) {
    let runtime = Runtime::builder()
        .data_dir(dir)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: a runtime does not start on the directory: {e}"));
    let h = runtime.handle();
    let mut ledger = BTreeMap::<u64, Receipt>::new();
    for i in 0..TENANTS {
        ledger
            .extend(h.receipts(&tenant_id(i), None, None).unwrap().into_iter().map(|r| (r.seq, r)));
    }
    // The archived receipts, from the archive (verified in full offline just before).
    if found.archived > 0 {
        let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
        let (store, _) = SegmentStore::open(archive_of(dir), options).unwrap();
        store
            .for_each(&mut |seq, record| {
                if seq < found.archived {
                    ledger.insert(seq, Receipt::decode(record).unwrap());
                }
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
    }
    let head = h.verify().unwrap_or_else(|e| panic!("{ctx}: the chain: {e}"));
    assert_eq!(ledger.len() as u64, head.next_seq, "{ctx}: receipts of unknown tenants");
    found.receipts = head.next_seq;
    let timeout = |r: &Receipt| r.body.metadata.get("source").is_some_and(|s| s == "state_timeout");
    found.unacknowledged =
        ledger.values().filter(|r| !acked.contains_key(&r.seq) && !timeout(r)).count() as u64;

    // Every acknowledged receipt, at its sequence number, with its hash and its transition.
    for ack in acked.values() {
        let r = ledger.get(&ack.seq).unwrap_or_else(|| {
            panic!(
                "{ctx}: acknowledged receipt {} ({} {}/{} {} -> {}) is missing: the ledger \
                 holds {} receipts",
                ack.seq, ack.kind, ack.tenant, ack.resource, ack.from, ack.to, head.next_seq
            )
        });
        assert_eq!(r.hash, ack.hash, "{ctx}: acknowledged receipt {} has another hash", ack.seq);
        let b = &r.body;
        assert_eq!(
            (&b.tenant, b.governor, &b.resource, b.resource_seq, &*b.state_from, &*b.state_to),
            (&ack.tenant, ack.kind, &ack.resource, ack.resource_seq, &*ack.from, &*ack.to),
            "{ctx}: acknowledged receipt {}",
            ack.seq
        );
    }

    // Every governor that acknowledged a command (its last acknowledgement, and how many).
    let mut governors = BTreeMap::<(&TenantId, GovernorKind, &ResourceId), (&Ack, u64)>::new();
    for ack in acked.values() {
        let entry = governors.entry((&ack.tenant, ack.kind, &ack.resource)).or_insert((ack, 0));
        *entry = (ack, entry.1 + 1);
    }
    for &(ack, n) in governors.values() {
        match ack.kind {
            GovernorKind::Subscription => {
                check_governor::<Subscription>(&h, &ledger, ack, n, ctx).await
            }
            GovernorKind::Quota => check_governor::<Quota>(&h, &ledger, ack, n, ctx).await,
            GovernorKind::Billing => check_governor::<Billing>(&h, &ledger, ack, n, ctx).await,
            GovernorKind::Tenant => check_governor::<Tenant>(&h, &ledger, ack, n, ctx).await,
            other => panic!("{ctx}: the child has no {other} governors"),
        }
    }
    found.governors = governors.len();

    // Each tenant admits as its last acknowledged lifecycle command says, unless a later
    // lifecycle receipt (durable, its acknowledgement cut by the kill) says otherwise.
    for i in 0..TENANTS {
        let t = tenant_id(i);
        let Some(&(last_ack, _)) =
            governors.get(&(&t, GovernorKind::Tenant, &resource_id(t.as_str())))
        else {
            continue;
        };
        let last = ledger
            .values()
            .rev()
            .find(|r| r.body.tenant == t && r.body.governor == GovernorKind::Tenant)
            .unwrap();
        let expected = if last.seq == last_ack.seq { &*last_ack.to } else { &*last.body.state_to };
        let state = h.tenant_state(&t).unwrap_or_else(|| panic!("{ctx}: tenant {t} is unknown"));
        assert_eq!(
            state.name(),
            expected,
            "{ctx}: tenant {t} (last acknowledged: {} at {}; last receipt at {})",
            last_ack.to,
            last_ack.seq,
            last.seq
        );
        // A command to another of its governors: decided (rejected: archiving a subscription
        // that never started records nothing) when the state admits it, refused otherwise.
        let probe = h.subscription(&t, &resource_id("probe")).archive("admission probe").await;
        let answer = match &probe {
            Err(CommandError::Rejected(_)) => "decided",
            Err(e) => e.code(),
            Ok(a) => panic!("{ctx}: the probe of {t} was accepted: {a:?}"),
        };
        let admitted = match state {
            TenantState::Suspended => "tenant_suspended",
            TenantState::Provisioning => "tenant_not_active",
            _ if admits(Some(state)) => "decided",
            other => panic!("{ctx}: tenant {t} is {other:?}"),
        };
        assert_eq!(answer, admitted, "{ctx}: tenant {t} in state {state:?}");
    }
    let stopped = runtime.shutdown().await.unwrap_or_else(|e| panic!("{ctx}: shutdown: {e}"));
    assert_eq!(stopped, head, "{ctx}: the checks wrote receipts");
}

/// The receipts the data directory's ledger snapshot covers (0 without one): its header's
/// record count, bytes 19..27 after the magic and version (see govern-ledger's snapshot
/// module).
fn snapshot_len(dir: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(dir.join(govern_ledger::SNAPSHOT_FILE)) else { return 0 };
    bytes.get(19..27).map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()))
}

#[test]
fn sigkill_never_loses_a_command_the_runtime_acknowledged() {
    let rounds = env_u64("GOVERN_KILL_ROUNDS").unwrap_or(ROUNDS_DEFAULT);
    let seed = env_u64("GOVERN_KILL_SEED").unwrap_or_else(|| getrandom::u64().unwrap());
    let mut rng = XorShift::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    // The data directory and, beside it, the archive its retention policy fills.
    let dir = tmp.path().join("data");
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut acked = BTreeMap::<u64, Ack>::new();
    // Rounds whose kill left a checkpoint the child signed, a torn tail, receipts written
    // but not acknowledged.
    let (mut checkpoints, mut torn_tails, mut in_flight, mut snapshots) = (0, 0, 0, 0);
    let mut archivals = 0;
    let mut last = Found::default();
    for round in 0..rounds {
        let kill_after = 1 + rng.next() % ACKS_MAX;
        let ctx = format!(
            "GOVERN_KILL_SEED={seed} round {round} of {rounds} (killed after {kill_after} \
             acknowledgements; {} acknowledged before)",
            acked.len()
        );
        let before = acked.len();
        for ack in run_and_kill(&dir, kill_after, rng.next(), &ctx) {
            let seq = ack.seq;
            let previous = acked.insert(seq, ack);
            assert!(previous.is_none(), "{ctx}: receipt {seq} acknowledged twice");
        }
        assert!(
            acked.len() as u64 >= before as u64 + kill_after,
            "{ctx}: only {} new acknowledgements",
            acked.len() - before
        );
        let mut found = Found::default();
        check_offline(&dir, &mut found, &ctx);
        // The runtime that checks opens from the child's snapshot when it wrote one.
        snapshots += u32::from(snapshot_len(&dir) > last.receipts);
        tokio.block_on(check_runtime(&dir, &acked, &mut found, &ctx));
        archivals += u32::from(found.archived > last.archived);
        // The previous round's checks ended with a checkpoint of everything: a larger one is
        // the child's.
        checkpoints += u32::from(found.checkpoint.is_some_and(|size| size > last.receipts));
        torn_tails += u32::from(found.torn);
        in_flight += u32::from(found.unacknowledged > last.unacknowledged);
        last = found;
    }
    eprintln!(
        "runtime kill test: seed {seed}, {rounds} rounds, {} commands acknowledged on {} \
         governors, {} receipts; kills left a checkpoint signed by the child in {checkpoints} \
         rounds, a ledger snapshot written by the child in {snapshots}, segments archived by \
         the child in {archivals} (boundary {}), receipts written but not acknowledged in \
         {in_flight} ({} in all), a torn tail in {torn_tails}",
        acked.len(),
        last.governors,
        last.receipts,
        last.archived,
        last.unacknowledged
    );
}
