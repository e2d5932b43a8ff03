//! The ledger: the system of record. One sequencer assigns global sequence numbers, chains
//! hashes (receipt format v1), writes records to the store and indexes them by
//! (tenant, kind, resource) for replay and by tenant for queries.
//!
//! Appends run in a short critical section (seal, store, index); there is exactly one writer
//! at any moment, and no message hop between a governor and its receipt. The ledger actor
//! (in `runtime`) owns the store's lifecycle: it flushes it and syncs it at shutdown.

mod open;
mod seqs;
mod store;

#[allow(
    clippy::disallowed_types,
    reason = "the index is looked up, never iterated into output unsorted"
)]
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_receipt::{ChainError, ChainVerifier, Digest, Head, Receipt, ReceiptBody};
use seqs::SeqList;

use crate::merkle::MerkleFrontier;

pub use store::{LedgerStore, MemoryStore, StoreError, SyncJob};

/// Why the ledger could not append or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// An earlier store failure poisoned the ledger; it refuses appends until restarted.
    #[error("ledger poisoned by an earlier store failure")]
    Poisoned,
    /// The group commit has stopped (the runtime is shutting down): nothing more becomes
    /// durable through it.
    #[error("the ledger's group commit has stopped")]
    Stopped,
    /// The store failed now (the ledger is poisoned from here on).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not decode.
    #[error("record {seq} does not decode: {reason}")]
    Corrupt {
        /// The record.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// Where an appended receipt landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Global sequence number.
    pub seq: u64,
    /// Receipt hash.
    pub hash: Digest,
    /// Per-resource sequence number.
    pub resource_seq: u64,
}

/// The receipts of one tenant: sequence numbers per (kind, resource).
// A hash map is fine here: its order never reaches output (queries sort by sequence).
#[allow(clippy::disallowed_types, reason = "lookup only; never iterated into output unsorted")]
type TenantIndex = HashMap<(GovernorKind, ResourceId), SeqList, foldhash::fast::RandomState>;

#[allow(clippy::disallowed_types, reason = "lookup only; never iterated into output unsorted")]
type Index = HashMap<TenantId, TenantIndex, foldhash::fast::RandomState>;

/// Everything behind the ledger's lock.
struct Inner {
    /// Next sequence number and last hash.
    head: Head,
    /// The records.
    store: Box<dyn LedgerStore>,
    /// Sequence numbers by tenant, then by (kind, resource).
    index: Index,
    /// Scratch space for preimages.
    buf: Vec<u8>,
    /// Whether the store is durable: then the receipt hashes appended since the last commit
    /// began are kept in `unhashed`, for the Merkle frontier.
    durable: bool,
    /// Receipt hashes not yet in the frontier.
    unhashed: Vec<Digest>,
}

/// The size and Merkle root of the durable part of a ledger: what a checkpoint signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// Durable receipts.
    pub size: u64,
    /// The RFC 6962 root over their hashes.
    pub root: Digest,
}

/// What only the committer touches: one commit at a time.
struct Commit {
    /// The Merkle tree of the durable receipts (of a durable store), as its right edge.
    frontier: MerkleFrontier,
    /// An empty vector with capacity, swapped with `Inner::unhashed` at each commit.
    spare: Vec<Digest>,
}

/// The shared ledger. Cheap to share (`Arc`); all methods take `&self`.
pub struct Ledger {
    inner: Mutex<Inner>,
    /// Held for a whole group commit (both phases), never while waiting for `inner`'s
    /// holders to finish anything but a short critical section.
    commit: Mutex<Commit>,
    /// Records known durable (the end of the last successful commit).
    durable: AtomicU64,
    /// Set on the first store failure; appends are refused from then on.
    poisoned: AtomicBool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("poisoned", &self.poisoned.load(Ordering::Relaxed)).finish()
    }
}

impl Ledger {
    fn with(inner: Inner, frontier: MerkleFrontier, durable: u64) -> Self {
        Self {
            inner: Mutex::new(inner),
            commit: Mutex::new(Commit { frontier, spare: Vec::new() }),
            durable: AtomicU64::new(durable),
            poisoned: AtomicBool::new(false),
        }
    }

    /// An empty in-memory ledger.
    #[must_use]
    pub fn in_memory() -> Self {
        let inner = Inner {
            head: Head::GENESIS,
            store: Box::new(MemoryStore::new()),
            index: Index::default(),
            buf: Vec::with_capacity(512),
            durable: false,
            unhashed: Vec::new(),
        };
        Self::with(inner, MerkleFrontier::new(), 0)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the chain half-written: every step
        // that can panic precedes the store write. Recover the guard rather than cascade.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seals `body` as the next receipt (its `resource_seq` is assigned here) and writes it.
    ///
    /// # Errors
    /// [`LedgerError::Poisoned`] after an earlier failure; [`LedgerError::Store`] when the
    /// store fails now, which poisons the ledger.
    pub fn append(&self, mut body: ReceiptBody) -> Result<Appended, LedgerError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LedgerError::Poisoned);
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        let seqs = inner
            .index
            .entry(body.tenant.clone())
            .or_default()
            .entry((body.governor, body.resource.clone()))
            .or_default();
        body.resource_seq = seqs.len();
        let seq = inner.head.next_seq;
        let receipt = Receipt::seal_with(body, seq, inner.head.last_hash, &mut inner.buf);
        inner.buf.extend_from_slice(&receipt.hash.0);
        if let Err(e) = inner.store.append(seq, &inner.buf) {
            return Err(self.poison(e, "append"));
        }
        seqs.push(seq);
        if inner.durable {
            inner.unhashed.push(receipt.hash);
        }
        inner.head = Head { next_seq: seq + 1, last_hash: receipt.hash };
        Ok(Appended { seq, hash: receipt.hash, resource_seq: receipt.body.resource_seq })
    }

    /// Makes every appended receipt durable: one group commit. The store's writes happen
    /// under the ledger's lock, its `fdatasync` without it, so appends and reads go on
    /// meanwhile. Commits from several threads take turns. Returns how many receipts are
    /// durable.
    ///
    /// # Errors
    /// As [`Self::append`]: a failure poisons the ledger.
    pub fn commit(&self) -> Result<u64, LedgerError> {
        let mut commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LedgerError::Poisoned);
        }
        let commit = &mut *commit;
        let (job, mut hashes) = {
            let mut inner = self.lock();
            let job = inner.store.begin_sync().map_err(|e| self.poison(e, "write"))?;
            let hashes = std::mem::replace(&mut inner.unhashed, std::mem::take(&mut commit.spare));
            (job, hashes)
        };
        let upto = job.upto();
        let result = job.run();
        for hash in &hashes {
            commit.frontier.push(hash);
        }
        hashes.clear();
        commit.spare = hashes;
        self.lock().store.end_sync(upto, result).map_err(|e| self.poison(e, "sync"))?;
        self.durable.fetch_max(upto, Ordering::AcqRel);
        Ok(upto)
    }

    /// [`Self::commit`], for callers that only need to know it succeeded.
    ///
    /// # Errors
    /// As [`Self::commit`].
    pub fn sync(&self) -> Result<(), LedgerError> {
        self.commit().map(drop)
    }

    fn poison(&self, e: StoreError, what: &str) -> LedgerError {
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(error = %e, "ledger poisoned: store {what} failed");
        LedgerError::from(e)
    }

    /// How many receipts are durable: every receipt with a smaller sequence number survives
    /// a crash. (With a store that is not durable: how many the last commit covered.)
    #[must_use]
    pub fn durable_len(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Whether the store is durable (callers then wait for commits before acknowledging).
    #[must_use]
    pub fn is_durable(&self) -> bool {
        self.lock().durable
    }

    /// The size and Merkle root of the durable receipts, for a checkpoint; `None` unless the
    /// store is durable (only then does the ledger keep the tree).
    #[must_use]
    pub fn tree_head(&self) -> Option<TreeHead> {
        if !self.is_durable() {
            return None;
        }
        let commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(TreeHead { size: commit.frontier.len(), root: commit.frontier.root() })
    }

    /// Heap bytes held by the store itself (records kept in memory), not the index.
    #[must_use]
    pub fn store_heap_bytes(&self) -> usize {
        self.lock().store.heap_bytes()
    }

    /// Whether a store failure has poisoned the ledger.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The next sequence number and the last hash.
    #[must_use]
    pub fn head(&self) -> Head {
        self.lock().head
    }

    /// The receipts of one resource, in order: what its governor replays.
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] when a record does not decode.
    pub fn resource_receipts(
        &self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
    ) -> Result<Vec<Receipt>, LedgerError> {
        let inner = self.lock();
        let Some(seqs) = inner.index.get(tenant).and_then(|t| t.get(&(kind, resource.clone())))
        else {
            return Ok(Vec::new());
        };
        read_all(&*inner.store, seqs.iter())
    }

    /// The receipts of one tenant, optionally narrowed to a kind and a resource, in sequence
    /// order. Never another tenant's.
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] when a record does not decode.
    pub fn tenant_receipts(
        &self,
        tenant: &TenantId,
        kind: Option<GovernorKind>,
        resource: Option<&ResourceId>,
    ) -> Result<Vec<Receipt>, LedgerError> {
        let inner = self.lock();
        let Some(t) = inner.index.get(tenant) else { return Ok(Vec::new()) };
        let mut seqs: Vec<u64> = t
            .iter()
            .filter(|((k, r), _)| {
                kind.is_none_or(|want| *k == want) && resource.is_none_or(|want| r == want)
            })
            .flat_map(|(_, s)| s.iter())
            .collect();
        seqs.sort_unstable();
        read_all(&*inner.store, seqs.into_iter())
    }

    /// How many receipts each tenant has, sorted by tenant.
    #[must_use]
    pub fn receipt_counts(&self) -> Vec<(TenantId, u64)> {
        let inner = self.lock();
        let mut out: Vec<(TenantId, u64)> = inner
            .index
            .iter()
            .map(|(t, idx)| (t.clone(), idx.values().map(SeqList::len).sum()))
            .collect();
        out.sort();
        out
    }

    /// Re-reads and verifies the whole chain.
    ///
    /// # Errors
    /// The first bad receipt.
    pub fn verify(&self) -> Result<Head, ChainError> {
        let inner = self.lock();
        let mut verifier = ChainVerifier::new();
        let mut record = Vec::new();
        for seq in 0..inner.store.len() {
            // A record the store cannot produce is reported as the frame check would.
            if !matches!(inner.store.read(seq, &mut record), Ok(true)) {
                record.clear();
            }
            verifier.push_record(&record)?;
        }
        Ok(verifier.head())
    }
}

fn read_all(
    store: &dyn LedgerStore,
    seqs: impl Iterator<Item = u64>,
) -> Result<Vec<Receipt>, LedgerError> {
    let mut record = Vec::new();
    let mut out = Vec::new();
    for seq in seqs {
        if !store.read(seq, &mut record)? {
            return Err(LedgerError::Corrupt { seq, reason: "missing".into() });
        }
        out.push(
            Receipt::decode(&record)
                .map_err(|e| LedgerError::Corrupt { seq, reason: e.to_string() })?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
