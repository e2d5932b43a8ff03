//! Offline verification of a ledger's data directory, without changing it: every frame
//! (length, CRC32C, sequence), the hash chain (receipt format v1), every record's fields
//! (decoded as `Receipt::decode` decodes them), each resource's numbering (`resource_seq`
//! 0, 1, 2, ... in sequence order) and the Merkle tree over the receipt hashes: what every
//! reader of the ledger needs (`docs/receipts.md`, "Verifying a chain"). [`verify_dir`] keeps the full tree (for proofs); [`verify_dir_roots`],
//! what `govern verify` runs, keeps only the roots at some sizes. Both take a parallel fast
//! path for a clean ledger, and the reference path ([`verify_by_stages`]) to name the first
//! problem of any other.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::mpsc;

use govern_receipt::{ChainError, ChainVerifier, Digest, Head, Receipt};

use crate::ledger::{LedgerStore, StoreError};
use crate::merkle::{EMPTY_ROOT, MerkleTree};
use crate::segment::{FRAME_HEADER_LEN, OpenError, SegmentOptions, SegmentStore, TornTail};

/// What a successful verification found.
#[derive(Debug)]
pub struct VerifyReport {
    /// Receipts verified.
    pub receipts: u64,
    /// Segment files.
    pub segments: usize,
    /// The chain's head: next sequence number and last hash.
    pub head: Head,
    /// The Merkle root over every receipt.
    pub root: Digest,
    /// A torn final frame (an unacknowledged write cut by a crash), reported, not an error:
    /// the next opening truncates it.
    pub torn: Option<TornTail>,
    /// The tree, for checkpoint and proof checks after the scan.
    pub tree: MerkleTree,
}

/// Why a data directory does not verify. Each names where the first problem is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The segment files are damaged (or absent): segment, offset and sequence are named.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A receipt does not verify: it breaks the chain (hash mismatch, broken link, sequence
    /// gap, bad id), does not decode (`malformed`) or breaks its resource's numbering
    /// (`resource_seq_gap`).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A segment could not be read back.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archived records do not match what the data directory records about them, or
    /// the records about them are damaged: the range or base file is named.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// A receipt verifies but does not belong where it was found (the caller's check of its
    /// key: a tenant in another shard's chain).
    #[error("{reason}")]
    Misplaced {
        /// Its sequence number.
        seq: u64,
        /// Why it does not belong here.
        reason: String,
    },
}

impl VerifyError {
    /// A ledger's open, as verification reports it.
    pub(crate) fn from_open(e: crate::ledger::OpenDirError) -> Self {
        match e {
            crate::ledger::OpenDirError::Store(crate::segment::OpenError::Archive(e)) => {
                Self::Archive(e)
            }
            crate::ledger::OpenDirError::Store(e) => Self::Open(e),
            crate::ledger::OpenDirError::Ledger(crate::LedgerError::Chain(e)) => Self::Chain(e),
            crate::ledger::OpenDirError::Ledger(crate::LedgerError::Store(e)) => Self::Store(e),
            crate::ledger::OpenDirError::Ledger(e) => {
                Self::Store(StoreError::Corrupt(e.to_string()))
            }
        }
    }

    /// The sequence number of the first bad receipt, when one is named.
    #[must_use]
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Open(OpenError::Corrupt { seq, .. }) => Some(*seq),
            Self::Chain(e) => Some(e.seq()),
            Self::Misplaced { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// Receipt hashes handed from the chain pass to the tree in one message.
const HASH_BATCH: usize = 4_096;

/// A scanned segment handed to the chain pass: its first sequence number, its bytes and the
/// offsets of its valid frames.
type ScannedSegment = (u64, Vec<u8>, Vec<u32>);

/// Verifies the ledger in data directory `dir`, read-only: every frame (length, CRC32C,
/// sequence number), the hash chain from receipt 0, every record decoded, each resource's
/// `resource_seq` numbering, and the Merkle tree over it.
///
/// A clean ledger is verified by the parallel fast path (`parallel`: the records split in
/// stretches across the cores, each segment read once in small chunks). If that finds
/// anything amiss (damage, a torn tail, an unexpected file), the directory is verified again
/// by the reference path ([`verify_by_stages`]), which names the first problem; so the
/// outcome, report or error, is always the reference path's.
///
/// # Errors
/// The first problem, as a [`VerifyError`] naming segment, offset and sequence number.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, VerifyError> {
    match verify_clean(dir) {
        Some(report) => Ok(report),
        None => verify_by_stages(dir),
    }
}

/// The fast path of [`verify_dir`]: its report if the ledger is clean, else `None`.
fn verify_clean(dir: &Path) -> Option<VerifyReport> {
    let clean = parallel::verify_clean(dir, MerkleTree::new())?;
    Some(VerifyReport {
        receipts: clean.records,
        segments: clean.segments,
        head: Head { next_seq: clean.records, last_hash: clean.last_hash },
        root: clean.tree.root(),
        torn: None,
        tree: clean.tree,
    })
}

/// What a successful verification found, with the Merkle roots at some sizes instead of the
/// whole tree ([`verify_dir_roots`]).
#[derive(Debug)]
pub struct RootsReport {
    /// Receipts verified.
    pub receipts: u64,
    /// Segment files.
    pub segments: usize,
    /// The chain's head: next sequence number and last hash.
    pub head: Head,
    /// The Merkle root over every receipt.
    pub root: Digest,
    /// A torn final frame (an unacknowledged write cut by a crash), reported, not an error:
    /// the next opening truncates it.
    pub torn: Option<TornTail>,
    /// The root at each size asked for that is at most `receipts`, ascending.
    pub roots: Vec<(u64, Digest)>,
}

impl RootsReport {
    /// The Merkle root of the first `size` receipts, if `size` was asked for and is at most
    /// `receipts`.
    #[must_use]
    pub fn root_at(&self, size: u64) -> Option<Digest> {
        // Built as the tree grew: in increasing size.
        self.roots.binary_search_by_key(&size, |(at, _)| *at).ok().map(|i| self.roots[i].1)
    }
}

/// [`verify_dir`], every check the same, the same errors, keeping only the tree's right
/// edge (a [`MerkleFrontier`](crate::merkle::MerkleFrontier), O(log n) memory) and its roots
/// at `sizes` instead of the full tree (64 bytes per receipt): for checking checkpoints of
/// those sizes, not for proofs.
///
/// # Errors
/// The first problem, as a [`VerifyError`] naming segment, offset and sequence number.
pub fn verify_dir_roots(dir: &Path, sizes: &[u64]) -> Result<RootsReport, VerifyError> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    let sink = parallel::FrontierRoots {
        frontier: crate::merkle::MerkleFrontier::new(),
        sizes: sizes.clone(),
        roots: Vec::new(),
    };
    if let Some(clean) = parallel::verify_clean(dir, sink) {
        let empty = sizes.first().filter(|&&size| size == 0).map(|_| (0, EMPTY_ROOT));
        return Ok(RootsReport {
            receipts: clean.records,
            segments: clean.segments,
            head: Head { next_seq: clean.records, last_hash: clean.last_hash },
            root: clean.tree.frontier.root(),
            torn: None,
            roots: empty.into_iter().chain(clean.tree.roots).collect(),
        });
    }
    let report = verify_by_stages(dir)?;
    let roots =
        sizes.iter().filter_map(|&size| Some((size, report.tree.root_at(size).ok()?))).collect();
    Ok(RootsReport {
        receipts: report.receipts,
        segments: report.segments,
        head: report.head,
        root: report.root,
        torn: report.torn,
        roots,
    })
}

/// Verifies the records of any [`LedgerStore`] (a PostgreSQL ledger, say) read in order from
/// receipt 0, with every check [`verify_dir`] makes of a record (hash chain, fields, each
/// resource's numbering) and the Merkle tree over them; the store's own framing is the
/// store's to check. The records are streamed ([`LedgerStore::for_each`]): memory is the
/// tree's (64 bytes per receipt: [`verify_store_roots`] keeps O(log n) instead) and the
/// numbering's. A record the store lacks is reported as a malformed one at its sequence
/// number. The report's `segments` is 0 and `torn` is `None`: there are no segment files.
///
/// # Errors
/// The first bad receipt ([`VerifyError::Chain`]), or the store's read error.
pub fn verify_store(store: &dyn LedgerStore) -> Result<VerifyReport, VerifyError> {
    let mut tree = MerkleTree::new();
    let head = walk_store(store, &mut |_, _| Ok(()), |hash| {
        tree.push(hash);
    })?;
    Ok(VerifyReport {
        receipts: head.next_seq,
        segments: 0,
        head,
        root: tree.root(),
        torn: None,
        tree,
    })
}

/// [`verify_store`], every check the same, keeping only the tree's right edge and its roots
/// at `sizes` (as [`verify_dir_roots`] does): memory that does not grow with the ledger,
/// besides the numbering's per resource.
///
/// # Errors
/// The first bad receipt ([`VerifyError::Chain`]), or the store's read error.
pub fn verify_store_roots(
    store: &dyn LedgerStore,
    sizes: &[u64],
) -> Result<RootsReport, VerifyError> {
    verify_store_roots_where(store, sizes, &mut |_, _| Ok(()))
}

/// [`verify_store_roots`], also asking `belongs` of every receipt's key whether it belongs
/// in this chain (a sharded database: its tenant's shard); the first that does not is
/// [`VerifyError::Misplaced`].
///
/// # Errors
/// As [`verify_store_roots`], and [`VerifyError::Misplaced`].
pub fn verify_store_roots_where(
    store: &dyn LedgerStore,
    sizes: &[u64],
    belongs: &mut dyn FnMut(u64, &govern_receipt::ReceiptKey<'_>) -> Result<(), String>,
) -> Result<RootsReport, VerifyError> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    let mut roots: Vec<(u64, Digest)> =
        sizes.first().filter(|&&size| size == 0).map(|_| (0, EMPTY_ROOT)).into_iter().collect();
    let mut frontier = crate::merkle::MerkleFrontier::new();
    let head = walk_store(store, belongs, |hash| {
        frontier.push(&hash);
        let len = frontier.len();
        if sizes.binary_search(&len).is_ok() {
            roots.push((len, frontier.root()));
        }
    })?;
    Ok(RootsReport {
        receipts: head.next_seq,
        segments: 0,
        head,
        root: frontier.root(),
        torn: None,
        roots,
    })
}

/// Checks every record of `store` in order ([`RecordChecker`]), handing each receipt hash
/// to `on_hash`; the chain's head after them.
fn walk_store(
    store: &dyn LedgerStore,
    belongs: &mut dyn FnMut(u64, &govern_receipt::ReceiptKey<'_>) -> Result<(), String>,
    mut on_hash: impl FnMut(Digest),
) -> Result<Head, VerifyError> {
    let len = store.len();
    let mut checker = RecordChecker::default();
    let mut failed: Option<VerifyError> = None;
    store.for_each(&mut |seq, record| {
        if seq != checker.head().next_seq || seq >= len {
            return ControlFlow::Break(());
        }
        match checker.push(record) {
            Ok(hash) => {
                // The record decoded in full just now: its key does too.
                if let Ok(key) = Receipt::decode_key(record)
                    && let Err(reason) = belongs(seq, &key)
                {
                    failed = Some(VerifyError::Misplaced { seq, reason });
                    return ControlFlow::Break(());
                }
                on_hash(hash);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e.into());
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    // A gap: the next record is missing, checked as an empty (malformed) one.
    if checker.head().next_seq < len {
        checker.push(&[])?;
    }
    Ok(checker.head())
}

/// The reference verification: opens the ledger read-only with the segment store's own scan
/// (checking every frame, reporting a torn tail), verifies the hash chain from receipt 0,
/// decodes every record and follows each resource's numbering (receipt by receipt, in one
/// table), and builds the Merkle tree.
///
/// Every segment is read once, by the open's scan; three threads form a pipeline: the scan
/// (reading and checking frames), the chain pass over each scanned segment, and the tree
/// over the stored hashes the chain pass has checked. A damaged frame anywhere is reported
/// before a chain error, as if the scan had finished first; the tree is dropped when the
/// chain is broken.
///
/// # Errors
/// The first problem, as a [`VerifyError`] naming segment, offset and sequence number.
pub fn verify_by_stages(dir: &Path) -> Result<VerifyReport, VerifyError> {
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    std::thread::scope(|s| {
        // Two segment buffers: one scanned and queued or in the chain pass, one being read.
        let (segment_tx, segment_rx) = mpsc::sync_channel::<ScannedSegment>(1);
        let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(2);
        let (hash_tx, hash_rx) = mpsc::sync_channel::<Vec<Digest>>(16);
        let chain = s.spawn(move || chain_pass(&segment_rx, &spare_tx, &hash_tx));
        let tree = s.spawn(move || {
            let mut tree = MerkleTree::new();
            for batch in hash_rx {
                for hash in batch {
                    tree.push(hash);
                }
            }
            tree
        });
        let mut buffers = 1;
        let opened = SegmentStore::open_scanning(dir, options, &mut |first, bytes, offsets| {
            let spare = if buffers < 2 {
                buffers += 1;
                Vec::new()
            } else {
                // The chain pass is done with the segment before last: read into its buffer.
                spare_rx.recv().unwrap_or_default()
            };
            let scanned = std::mem::replace(bytes, spare);
            // A send fails only if the chain pass is gone; joining it reports why.
            let _ = segment_tx.send((first, scanned, offsets.to_vec()));
        });
        drop(segment_tx);
        let chain = chain.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let tree = tree.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (_store, report) = opened?;
        let head = chain?;
        Ok(VerifyReport {
            receipts: head.next_seq,
            segments: report.segments,
            head,
            root: tree.root(),
            torn: report.torn,
            tree,
        })
    })
}

/// Verifies the chain, the records' fields and each resource's numbering over the scanned
/// segments as they come, handing the checked receipt
/// hashes to the tree in batches and the segment buffers back to the scan. After the first
/// error it only drains (the scan may still find a damaged frame, which is reported first).
fn chain_pass(
    segments: &mpsc::Receiver<ScannedSegment>,
    spares: &mpsc::SyncSender<Vec<u8>>,
    hashes: &mpsc::SyncSender<Vec<Digest>>,
) -> Result<Head, VerifyError> {
    let mut checker = RecordChecker::default();
    let mut result = Ok(());
    let mut batch = Vec::with_capacity(HASH_BATCH);
    for (first, bytes, offsets) in segments {
        if result.is_ok() {
            result = chain_segment(&mut checker, first, &bytes, &offsets, &mut batch, hashes);
        }
        // The scan may have allocated its own buffer already; then this one is dropped.
        let _ = spares.try_send(bytes);
    }
    result?;
    if !batch.is_empty() {
        let _ = hashes.send(batch);
    }
    Ok(checker.head())
}

/// Checks every record of one scanned segment ([`RecordChecker::push`]).
fn chain_segment(
    checker: &mut RecordChecker,
    first: u64,
    bytes: &[u8],
    offsets: &[u32],
    batch: &mut Vec<Digest>,
    hashes: &mpsc::SyncSender<Vec<Digest>>,
) -> Result<(), VerifyError> {
    for (seq, &at) in (first..).zip(offsets) {
        let at = at as usize;
        let outside = || StoreError::Corrupt(format!("record {seq}: frame outside its segment"));
        let header = bytes.get(at..at + FRAME_HEADER_LEN).ok_or_else(outside)?;
        let payload_len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let start = at + FRAME_HEADER_LEN;
        let record = bytes.get(start..start + payload_len as usize).ok_or_else(outside)?;
        let hash = checker.push(record)?;
        batch.push(hash);
        if batch.len() == HASH_BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(HASH_BATCH));
            // A send fails only if the tree is gone; joining it reports why.
            let _ = hashes.send(full);
        }
    }
    Ok(())
}

/// Every check of each record of a ledger read in order from receipt 0, in the order that
/// names the first problem as every reader names it: the record's place in the chain
/// (frame, hash, sequence, link and id: [`ChainVerifier::push_record`]), then its fields
/// ([`Receipt::decode_key`], `malformed`), then its resource's numbering
/// ([`Numbering::push`], `resource_seq_gap`). The reference path of `govern verify` and
/// [`Ledger::verify`](crate::Ledger::verify) run it; the fast path and the opening of a
/// ledger split the same checks across threads.
#[derive(Debug, Default)]
pub(crate) struct RecordChecker {
    chain: ChainVerifier,
    numbering: Numbering,
}

impl RecordChecker {
    /// A checker for the records after `head`, each resource's numbering from `numbering`
    /// (archived receipts counted in it).
    pub(crate) fn resume(head: Head, numbering: Numbering) -> Self {
        Self { chain: ChainVerifier::resume(head), numbering }
    }

    /// Checks the next record: its hash if it passes.
    ///
    /// # Errors
    /// The first problem with it, at its position.
    pub(crate) fn push(&mut self, record: &[u8]) -> Result<Digest, ChainError> {
        let seq = self.chain.head().next_seq;
        let hash = self.chain.push_record(record)?;
        let key =
            Receipt::decode_key(record).map_err(|source| ChainError::Malformed { seq, source })?;
        self.numbering.push(seq, &key)?;
        Ok(hash)
    }

    /// The chain's head after the records checked.
    pub(crate) fn head(&self) -> Head {
        self.chain.head()
    }
}

mod archived;
mod numbering;
mod parallel;

pub use archived::{ArchivedVerify, verify_archived};

pub(crate) use numbering::Numbering;

#[cfg(test)]
pub(crate) mod crafted;
#[cfg(test)]
mod tests;
