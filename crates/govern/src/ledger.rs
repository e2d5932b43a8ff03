//! The ledger: how a host configures it, and how anyone verifies what it wrote.
//!
//! Configuration (given to [`RuntimeBuilder`](crate::RuntimeBuilder)): [`Durability`],
//! [`CommitOptions`] (group commit), [`CheckpointSigner`], and another [`LedgerStore`] than
//! the data directory's [`SegmentStore`] (such as [`MemoryStore`]), with a [`Checkpointer`]
//! into a [`CheckpointSink`] for its checkpoints.
//!
//! Verification, offline and read-only, as `govern verify` does it: [`verify_dir`] checks a
//! data directory (frames, hash chain, records, each resource's numbering, the Merkle tree);
//! [`verify_checkpoint_text`] checks a signed checkpoint (either form) with a public key, and
//! [`VerifiedCheckpoint::check_history`] that the ledger still extends it;
//! [`verify_inclusion`] and [`verify_consistency`] check Merkle proofs (RFC 9162). The
//! modules [`checkpoint`], [`merkle`] and [`verify`] have the rest.

/// Verifies a data directory, read-only: what `govern verify` runs.
///
/// # Verification
///
/// A host (or an auditor, on a copy) checks the directory, then the signed checkpoint the
/// runtime wrote at shutdown against the public key kept elsewhere, then proves one receipt
/// is in the tree that checkpoint signed.
///
/// ```
/// use govern::governors::tenant::ResourceQuota;
/// use govern::ledger::checkpoint::{CHECKPOINT_FILE, PUBLIC_KEY_FILE};
/// use govern::ledger::{
///     leaf_hash, load_public_key, read_checkpoint_file, verify_checkpoint_text, verify_dir,
///     verify_inclusion,
/// };
/// use govern::{Runtime, TenantId};
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let runtime = Runtime::builder().data_dir(dir.path()).start().await?;
/// let acme = TenantId::new("acme")?;
/// let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
/// runtime.handle().provision_tenant(&acme, quota, "contract signed").await?;
/// let receipt = runtime.handle().receipts(&acme, None, None)?.remove(0);
/// runtime.shutdown().await?; // signs checkpoint.json over every receipt
///
/// let report = verify_dir(dir.path())?;
/// assert_eq!(report.receipts, 2);
///
/// let key = load_public_key(&dir.path().join(PUBLIC_KEY_FILE))?;
/// let text = read_checkpoint_file(&dir.path().join(CHECKPOINT_FILE))?;
/// let checkpoint = verify_checkpoint_text(&text, &key)?;
/// checkpoint.check_history(report.receipts, |size| report.tree.root_at(size).ok())?;
///
/// let size = checkpoint.size();
/// let proof = report.tree.inclusion_proof(receipt.seq, size)?;
/// verify_inclusion(&leaf_hash(&receipt.hash), receipt.seq, size, &proof, &checkpoint.root())?;
/// # Ok(())
/// # }
/// # fn main() {
/// #     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// #     tokio.block_on(example()).unwrap();
/// # }
/// ```
pub use govern_ledger::verify::verify_dir;

pub use govern_runtime::ledger::*;

pub use govern_ledger::checkpoint::{
    Checkpoint, CheckpointError, SignedCheckpoint, VerifiedCheckpoint, VerifyingKey,
    load_public_key, parse_public_key, read_checkpoint_file, verify_checkpoint_text,
    verify_history,
};
pub use govern_ledger::merkle::{
    EMPTY_ROOT, MerkleTree, PartialTree, ProofError, leaf_hash, verify_consistency,
    verify_inclusion,
};
pub use govern_ledger::verify::{
    ArchivedVerify, RootsReport, VerifyError, VerifyReport, verify_archived, verify_dir_roots,
};
pub use govern_ledger::{
    ArchiveReport, ArchiveRequest, History, TreeHead, archive, checkpoint, merkle, verify,
};
