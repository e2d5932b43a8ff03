//! Group commit: acknowledgements only after the commit that covers them, batching by count,
//! the buffered mode, failure propagation, and checkpoints at stop.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

use super::{Ack, Checkpointer, CommitOptions, Durability, GroupCommit};
use crate::checkpoint::{CHECKPOINT_FILE, SignedCheckpoint, verify_history};
use crate::ledger::{Ledger, LedgerError, LedgerStore, MemoryStore, StoreError, SyncJob};
use crate::segment::{SegmentOptions, SegmentStore};

fn body(i: u64) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new("acme").unwrap(),
        governor: GovernorKind::Quota,
        resource: ResourceId::new(&format!("q{}", i % 7)).unwrap(),
        resource_seq: 0,
        command: Cow::Borrowed("record"),
        state_from: Cow::Borrowed("a"),
        state_to: Cow::Borrowed("b"),
        reason: "test".into(),
        args: BTreeMap::new(),
        metadata: BTreeMap::new(),
    }
}

/// What the test store reports: records made durable, commits run, a failure to inject.
#[derive(Clone, Default)]
struct Probe {
    durable: Arc<AtomicU64>,
    commits: Arc<AtomicUsize>,
    fail_next: Arc<AtomicBool>,
}

/// A durable-looking store over memory: a commit's job publishes what it covered.
struct ProbeStore {
    inner: MemoryStore,
    probe: Probe,
}

impl LedgerStore for ProbeStore {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.inner.append(seq, record)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        crate::ledger::sync_by_phases(self)
    }
    fn is_durable(&self) -> bool {
        true
    }
    fn begin_sync(&mut self) -> Result<SyncJob, StoreError> {
        let upto = self.inner.len();
        let probe = self.probe.clone();
        probe.commits.fetch_add(1, Ordering::SeqCst);
        Ok(SyncJob::new(upto, move || {
            if probe.fail_next.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Io("injected fsync failure".into()));
            }
            probe.durable.fetch_max(upto, Ordering::SeqCst);
            Ok(())
        }))
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        self.inner.read(seq, out)
    }
}

/// An acknowledgement that checks, when completed, that its receipt was durable by then.
struct Checked {
    seq: u64,
    probe: Probe,
    done: mpsc::Sender<(u64, Result<bool, LedgerError>)>,
}

impl Ack for Checked {
    fn complete(self, result: Result<(), LedgerError>) {
        let durable = self.probe.durable.load(Ordering::SeqCst) > self.seq;
        let _ = self.done.send((self.seq, result.map(|()| durable)));
    }
}

fn probed(options: CommitOptions) -> (Arc<Ledger>, Probe, GroupCommit<Checked>) {
    let probe = Probe::default();
    let store = ProbeStore { inner: MemoryStore::new(), probe: probe.clone() };
    let ledger = Arc::new(Ledger::open(Box::new(store)).unwrap());
    let commit = GroupCommit::start(Arc::clone(&ledger), options, None).unwrap();
    (ledger, probe, commit)
}

#[test]
fn every_acknowledgement_comes_after_the_commit_that_covers_it() {
    let (ledger, probe, commit) = probed(CommitOptions::default());
    let commit = Arc::new(commit);
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (ledger, commit, probe, tx) =
                (Arc::clone(&ledger), Arc::clone(&commit), probe.clone(), tx.clone());
            std::thread::spawn(move || {
                for i in 0..250 {
                    let seq = ledger.append(body(t * 1000 + i)).unwrap().seq;
                    let (done, wait) = mpsc::channel();
                    commit.ack_when_durable(seq, Checked { seq, probe: probe.clone(), done });
                    let (_, result) = wait.recv().unwrap();
                    tx.send(result).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().unwrap();
    }
    let results: Vec<_> = rx.iter().collect();
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(|r| *r == Ok(true)), "an ack preceded its commit");
    assert_eq!(ledger.durable_len(), 1000);
    let commits = probe.commits.load(Ordering::SeqCst);
    assert!((1..=1000).contains(&commits), "{commits} commits");
}

#[test]
fn a_batch_closes_on_its_count_before_its_delay() {
    // A delay no test would wait for: only the count can close the batch.
    let options = CommitOptions {
        batch_max: 8,
        batch_delay: Duration::from_secs(3600),
        flush_every: Duration::from_secs(3600),
        ..CommitOptions::default()
    };
    let (ledger, probe, commit) = probed(options);
    let (done, results) = mpsc::channel();
    for i in 0..8 {
        let seq = ledger.append(body(i)).unwrap().seq;
        commit.ack_when_durable(seq, Checked { seq, probe: probe.clone(), done: done.clone() });
    }
    let got: Vec<_> = (0..8).map(|_| results.recv().unwrap()).collect();
    assert!(got.iter().all(|(_, r)| *r == Ok(true)));
    assert_eq!(probe.commits.load(Ordering::SeqCst), 1, "one commit for the batch of 8");
    commit.stop().unwrap();
}

#[test]
fn the_buffered_mode_acknowledges_at_once_and_flushes_later() {
    let options = CommitOptions {
        durability: Durability::Buffered,
        flush_every: Duration::from_millis(5),
        ..CommitOptions::default()
    };
    let (ledger, probe, commit) = probed(options);
    let (done, results) = mpsc::channel();
    let seq = ledger.append(body(0)).unwrap().seq;
    commit.ack_when_durable(seq, Checked { seq, probe: probe.clone(), done });
    // Completed synchronously, before any commit could cover it.
    assert_eq!(results.try_recv().unwrap().1.map(|_| ()), Ok(()));
    commit.stop().unwrap();
    assert_eq!(probe.durable.load(Ordering::SeqCst), 1, "stopping flushes");
    assert_eq!(ledger.durable_len(), 1);
}

#[test]
fn a_failed_commit_fails_its_waiters_and_everything_after() {
    let (ledger, probe, commit) = probed(CommitOptions::default());
    probe.fail_next.store(true, Ordering::SeqCst);
    let (done, results) = mpsc::channel();
    let seq = ledger.append(body(0)).unwrap().seq;
    commit.ack_when_durable(seq, Checked { seq, probe: probe.clone(), done: done.clone() });
    assert_eq!(
        results.recv().unwrap(),
        (0, Err(LedgerError::Store(StoreError::Io("injected fsync failure".into()))))
    );
    assert!(ledger.is_poisoned());
    assert_eq!(ledger.append(body(1)).unwrap_err(), LedgerError::Poisoned);
    // A late waiter for a receipt appended before the failure is not acknowledged either.
    commit.ack_when_durable(0, Checked { seq: 0, probe: probe.clone(), done });
    assert_eq!(results.recv().unwrap(), (0, Err(LedgerError::Poisoned)));
    assert!(commit.stop().is_err(), "stop reports the failure");
    assert_eq!(ledger.durable_len(), 0);
}

#[test]
fn stopping_commits_and_signs_a_checkpoint_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    let ledger = Arc::new(Ledger::open(Box::new(store)).unwrap());
    let checkpointer = Checkpointer::in_dir(dir.path()).unwrap();
    let public = checkpointer.signer.verifying_key();
    let commit: GroupCommit<mpsc::Sender<Result<(), LedgerError>>> =
        GroupCommit::start(Arc::clone(&ledger), CommitOptions::default(), Some(checkpointer))
            .unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..50 {
        let seq = ledger.append(body(i)).unwrap().seq;
        commit.ack_when_durable(seq, tx.clone());
        rx.recv().unwrap().unwrap();
    }
    // A receipt nobody waits for is committed by the stop.
    ledger.append(body(50)).unwrap();
    commit.stop().unwrap();
    let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let signed = SignedCheckpoint::from_json(&text).unwrap();
    assert_eq!(signed.checkpoint.size, 51);
    let report = crate::verify::verify_dir(dir.path()).unwrap();
    assert_eq!(report.receipts, 51);
    verify_history(&report.tree, &signed, &public).unwrap();
    assert_eq!(ledger.tree_head().unwrap().root, report.root);
    // The same tree head as a C2SP signed note beside it.
    let note = std::fs::read_to_string(dir.path().join(crate::checkpoint::NOTE_FILE)).unwrap();
    let verified = crate::checkpoint::verify_checkpoint_text(&note, &public).unwrap();
    assert_eq!((verified.size(), verified.root()), (51, report.root));
    assert!(!dir.path().join("checkpoint.note.tmp").exists());
}
