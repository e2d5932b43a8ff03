//! Offline verification of a ledger's data directory, without changing it: every frame
//! (length, CRC32C, sequence), the hash chain (receipt format v1) and the Merkle tree over
//! the receipt hashes. `govern verify` is this function with a command line.

use std::path::Path;

use govern_receipt::{ChainError, ChainVerifier, Digest, Head};

use crate::ledger::StoreError;
use crate::merkle::MerkleTree;
use crate::segment::{OpenError, SegmentOptions, SegmentStore, TornTail};

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
    /// A receipt breaks the chain (hash mismatch, broken link, sequence gap, bad id).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A segment could not be read back.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VerifyError {
    /// The sequence number of the first bad receipt, when one is named.
    #[must_use]
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Open(OpenError::Corrupt { seq, .. }) => Some(*seq),
            Self::Chain(e) => Some(e.seq()),
            _ => None,
        }
    }
}

/// Verifies the ledger in data directory `dir`: opens it read-only (checking every frame),
/// then verifies the hash chain from receipt 0 and builds the Merkle tree.
///
/// # Errors
/// The first problem, as a [`VerifyError`] naming segment, offset and sequence number.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, VerifyError> {
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (store, report) = SegmentStore::open(dir, options)?;
    let mut chain = ChainVerifier::new();
    let mut tree = MerkleTree::new();
    store.for_each_record(|_, record| -> Result<(), VerifyError> {
        let hash = chain.push_record(record)?;
        tree.push(hash);
        Ok(())
    })?;
    let head = chain.head();
    Ok(VerifyReport {
        receipts: head.next_seq,
        segments: report.segments,
        head,
        root: tree.root(),
        torn: report.torn,
        tree,
    })
}

#[cfg(test)]
mod tests;
