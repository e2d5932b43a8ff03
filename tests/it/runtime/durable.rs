//! The runtime on a durable store: acknowledgements only after their receipt is durable
//! (also when a crashed governor answers from its applied mark), a failed `fdatasync` that
//! poisons the ledger and is reported, the buffered mode, and the checkpoint signed at
//! shutdown, into a data directory or a store's checkpoint sink.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use govern_ledger::checkpoint::{
    CHECKPOINT_FILE, CheckpointError, CheckpointSink, SignedCheckpoint, load_public_key,
    verify_checkpoint_text, verify_history,
};
use govern_ledger::{
    CheckpointSigner, Checkpointer, LedgerStore, MemoryStore, StoreError, SyncJob,
};
use govern_runtime::ledger::Durability;
use govern_runtime::{CommandError, CrashPoint, Refusal};

use super::{builder, quota, resource, tenant};

#[tokio::test(start_paused = true)]
async fn every_acknowledgement_follows_the_commit_of_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder().data_dir(dir.path()).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let provisioned = h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    assert!(h.ledger_status().durable > provisioned.seq);
    let sub = h.subscription(&acme, &resource("sub-1"));
    for (i, step) in ["trial", "activate", "pause", "resume"].into_iter().enumerate() {
        let accepted = match step {
            "trial" => sub.start_trial("pro", 14, "signed up").await,
            "activate" => sub.activate(None, "converted").await,
            "pause" => sub.pause("holiday").await,
            _ => sub.resume("back").await,
        }
        .unwrap();
        let status = h.ledger_status();
        assert!(status.durable > accepted.seq, "step {i}: acknowledged before durable");
        assert!(!status.poisoned);
    }
    // A governor that crashes after its receipt is written answers from the applied mark:
    // that answer, too, waits for durability.
    sub.inject_crash(CrashPoint::AfterNextAppend).await.unwrap();
    let suspended = sub.suspend("payment failed").await.unwrap();
    assert!(h.ledger_status().durable > suspended.seq);
    let head = rt.shutdown().await.unwrap();

    // Shutdown signed a checkpoint of everything, which verifies against the directory.
    let signed = SignedCheckpoint::from_json(
        &std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(signed.checkpoint.size, head.next_seq);
    let report = govern_ledger::verify::verify_dir(dir.path()).unwrap();
    let key = load_public_key(&dir.path().join("checkpoint.pub")).unwrap();
    verify_history(&report.tree, &signed, &key).unwrap();
}

/// A durable store over memory whose `fdatasync` can be made to fail.
struct FailingSync {
    inner: MemoryStore,
    fail: Arc<AtomicBool>,
}

impl LedgerStore for FailingSync {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.inner.append(seq, record)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        govern_ledger::sync_by_phases(self)
    }
    fn is_durable(&self) -> bool {
        true
    }
    fn begin_sync(&mut self) -> Result<SyncJob, StoreError> {
        let fail = Arc::clone(&self.fail);
        Ok(SyncJob::new(self.inner.len(), move || {
            if fail.load(Ordering::SeqCst) {
                Err(StoreError::Io("injected fdatasync failure".into()))
            } else {
                Ok(())
            }
        }))
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        self.inner.read(seq, out)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_fdatasync_poisons_the_ledger_and_nothing_after_is_acknowledged() {
    let fail = Arc::new(AtomicBool::new(false));
    let store = FailingSync { inner: MemoryStore::new(), fail: Arc::clone(&fail) };
    let rt = builder().store(Box::new(store)).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("pro", 14, "signed up").await.unwrap();

    fail.store(true, Ordering::SeqCst);
    // The receipt was written but never made durable: the caller is not told it was accepted.
    let err = sub.activate(None, "converted").await.unwrap_err();
    assert_eq!(err.code(), "ledger_unavailable", "{err}");
    let status = h.ledger_status();
    assert!(status.poisoned, "the runtime reports the poisoned ledger");
    assert_eq!(status.durable, status.receipts - 1, "the last receipt is not durable");
    // Nothing retries and nothing more is recorded: every later command is refused.
    fail.store(false, Ordering::SeqCst);
    let err = sub.pause("holiday").await.unwrap_err();
    assert!(matches!(err, CommandError::Refused(Refusal::LedgerUnavailable(_))), "{err}");
    assert_eq!(h.ledger_status().receipts, status.receipts);
    assert!(rt.shutdown().await.is_err(), "shutdown reports the failure");
}

#[tokio::test(start_paused = true)]
async fn the_buffered_mode_acknowledges_before_the_flush_and_shutdown_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder().data_dir(dir.path()).durability(Durability::Buffered).start().await.unwrap();
    let h = rt.handle();
    let provisioned = h.provision_tenant(&tenant("acme"), quota(), "onboarding").await.unwrap();
    // The flush waits `flush_every` of (paused) time: the acknowledgement came first.
    assert!(h.ledger_status().durable <= provisioned.seq);
    let head = rt.shutdown().await.unwrap();
    let report = govern_ledger::verify::verify_dir(dir.path()).unwrap();
    assert_eq!(report.head, head, "shutdown made everything durable");
}

/// A checkpoint sink that keeps what it is given in memory.
#[derive(Debug, Default)]
struct Recorded(std::sync::Mutex<Vec<(SignedCheckpoint, String)>>);

impl CheckpointSink for Recorded {
    fn write(&self, signed: &SignedCheckpoint, note: &str) -> Result<(), CheckpointError> {
        self.0.lock().unwrap().push((*signed, note.to_owned()));
        Ok(())
    }
    fn latest(&self) -> Result<Option<String>, CheckpointError> {
        Ok(self.0.lock().unwrap().last().map(|(signed, _)| signed.to_json()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_runtime_signs_checkpoints_into_its_sink_at_shutdown() {
    let sink = Arc::new(Recorded::default());
    let signer = CheckpointSigner::from_seed(&[9; 32]);
    let key = signer.verifying_key();
    let store = FailingSync { inner: MemoryStore::new(), fail: Arc::new(AtomicBool::new(false)) };
    let checkpointer = Checkpointer::new(Arc::clone(&sink) as Arc<_>, signer.clone());
    let rt = builder().store(Box::new(store)).checkpoints(checkpointer).start().await.unwrap();
    let h = rt.handle();
    h.provision_tenant(&tenant("acme"), quota(), "onboarding").await.unwrap();
    assert_eq!(h.last_checkpoint().unwrap(), None, "none before the interval or shutdown");
    let head = rt.shutdown().await.unwrap();
    let recorded = sink.0.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1, "one checkpoint, at shutdown");
    let (signed, note) = &recorded[0];
    assert_eq!(signed.checkpoint.size, head.next_seq);
    signed.verify(&key).unwrap();
    let verified = verify_checkpoint_text(note, &key).unwrap();
    assert_eq!((verified.size(), verified.root()), (head.next_seq, signed.checkpoint.root));
    assert_eq!(h.last_checkpoint().unwrap(), Some(*signed), "read back from the sink");

    // A ledger shorter than its latest checkpoint lost acknowledged history: the start is
    // refused rather than signing a smaller tree over it.
    let empty = FailingSync { inner: MemoryStore::new(), fail: Arc::new(AtomicBool::new(false)) };
    let same_sink = Checkpointer::new(Arc::clone(&sink) as Arc<_>, signer.clone());
    let err = builder().store(Box::new(empty)).checkpoints(same_sink).start().await.unwrap_err();
    assert!(err.to_string().contains("history truncated"), "{err}");
    // Signed with another key (a rotation): not this runtime's to judge; it starts.
    let empty = FailingSync { inner: MemoryStore::new(), fail: Arc::new(AtomicBool::new(false)) };
    let other =
        Checkpointer::new(Arc::clone(&sink) as Arc<_>, CheckpointSigner::from_seed(&[8; 32]));
    let rt = builder().store(Box::new(empty)).checkpoints(other).start().await.unwrap();
    rt.shutdown().await.unwrap();

    // A data directory keeps its own; a store that is not durable has no tree head to sign.
    let dir = tempfile::tempdir().unwrap();
    let cp = || Checkpointer::new(Arc::new(Recorded::default()), signer.clone());
    let err = builder().data_dir(dir.path()).checkpoints(cp()).start().await.unwrap_err();
    assert!(err.to_string().contains("keeps its own checkpoints"), "{err}");
    let err = builder().checkpoints(cp()).start().await.unwrap_err();
    assert!(err.to_string().contains("not durable"), "{err}");
}
