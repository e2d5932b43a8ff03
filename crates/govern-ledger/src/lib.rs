//! The ledger: the system of record. Its sequencer (module `ledger`: sequence numbers, hash
//! chain, per-resource index, tenant-scoped queries, poisoning), the `LedgerStore` trait with
//! backends (memory, durable segment files), Merkle proofs, signed checkpoints, and offline
//! verification of a data directory.
//!
//! Module [`merkle`] is an RFC 6962 Merkle tree over receipt hashes: the receipt at sequence
//! number `seq` is leaf `seq`, so one root commits to every receipt so far, an inclusion proof
//! shows that a receipt is in the ledger, and a consistency proof shows that a later ledger
//! only appended to an earlier one.
//!
//! Architecture invariant: no actors and no async runtime (neither tokio nor ractor): the
//! runtime drives the ledger, never the other way round. Stores do file I/O; logs go through
//! `tracing`.

pub mod archive;
pub mod checkpoint;
pub mod commit;
mod ledger;
pub mod lock;
pub mod merkle;
pub mod segment;
pub mod text_file;
pub mod verify;

#[cfg(test)]
mod testing;

pub use commit::{
    Ack, AckQueue, Checkpointer, CommitOptions, CommitRound, Durability, GroupCommit, Queued,
};

pub use checkpoint::{
    Checkpoint, CheckpointError, CheckpointSigner, CheckpointSink, DirSink, SignedCheckpoint,
    key_id, load_public_key, verify_history,
};

pub use ledger::{
    Appended, ArchiveReport, ArchiveRequest, FoundReceipts, History, INDEX_BUDGET_BYTES, Ledger,
    LedgerError, LedgerStore, Located, LocatedRecord, MemoryStore, OpenDirError, ReceiptFilter,
    SNAPSHOT_DUE_FRACTION, SNAPSHOT_DUE_RECORDS, SNAPSHOT_FILE, SealedSegment, SnapshotError,
    SnapshotWritten, StoreError, SyncJob, TENANT_PAGE_MAX, TreeHead, find_receipts, sync_by_phases,
};

pub use merkle::{
    EMPTY_ROOT, MerkleFrontier, MerkleTree, PartialTree, ProofError, leaf_hash, leaf_hash_bytes,
    node_hash, verify_consistency, verify_inclusion,
};

pub use segment::{
    FsIo, OpenError, OpenReport, SEGMENT_BYTES_MAX, SegmentIo, SegmentOptions, SegmentRead,
    SegmentReader, SegmentStore, Syncer, TornCause, TornTail,
};

pub use lock::{DirLock, LockError};
