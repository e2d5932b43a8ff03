//! The ledger: the system of record. One sequencer assigns global sequence numbers, chains
//! hashes (receipt format v1), writes records to the store and indexes them by
//! (tenant, kind, resource) for replay and by tenant for queries.
//!
//! Appends run in a short critical section (seal, store, index); there is exactly one writer
//! at any moment, and no message hop between a governor and its receipt. The runtime owns
//! the ledger's lifecycle: at shutdown, the last commit, then [`Ledger::close`].
//!
//! # Locks
//!
//! `inner` (head, store, index) is held by an append for its whole critical section, by a
//! commit for its two short store calls (never across the `fdatasync`), and by a read only
//! to copy: per hold, up to [`READ_BATCH`] sequence numbers from the index and where those
//! records are ([`LedgerStore::locate`]: positions, or the bytes of the few not yet
//! published). The batch is read and decoded after the lock is released, before the next
//! hold, so a replay of a million receipts holds up an append for one batch's copy at most
//! (a waiting append takes the lock between two holds). `verify` takes the length and a
//! [`LedgerStore::locate_range`] under it (no work per published record) and reads
//! everything after. A resource's list not held by the index (see `paged`) is read from the
//! snapshot under the lock: one block of about 64 KiB, at most once per list and hold. A read
//! returns what the ledger held when it began: the numbers it copies are capped at the head
//! it saw first. `commit` is held for a whole group commit; it is taken before `inner`,
//! never after.

mod archiving;
pub(crate) mod lookup;
mod open;
mod paged;
mod seqs;
pub(crate) mod snapshot;
mod store;
mod tenants;
mod trees;

#[allow(
    clippy::disallowed_types,
    reason = "the index is looked up, never iterated into output unsorted"
)]
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_receipt::{ChainError, Digest, Head, Receipt, ReceiptBody};
use seqs::{MarkedList, Resume, SeqList};
use tenants::{TenantCache, TenantList};

use crate::archive::states::{BaseState, BaseStates};
use crate::archive::{ArchiveError, Manifest};
use crate::merkle::MerkleFrontier;

pub(crate) use archiving::BaseBuilder;
pub use archiving::{ArchiveReport, ArchiveRequest};
pub use lookup::{FoundReceipts, ReceiptFilter, find_receipts};
pub use open::OpenDirError;
pub use snapshot::{
    SNAPSHOT_DUE_FRACTION, SNAPSHOT_DUE_RECORDS, SNAPSHOT_FILE, SnapshotError, SnapshotWritten,
};
pub(crate) use store::Copied;
pub use store::{
    LedgerStore, Located, LocatedRecord, MemoryStore, SealedSegment, StoreError, SyncJob,
    sync_by_phases,
};

/// The most receipts one page of [`Ledger::tenant_receipts_page`] holds: a page is copied
/// under one hold of the ledger's lock and returned whole, so both stay bounded.
pub const TENANT_PAGE_MAX: usize = 1_000;

/// The index's budget unless set ([`Ledger::set_index_budget`]): the bytes of resource lists
/// read from the ledger's snapshot that it keeps (the clean cache, see `paged`). A list
/// costs about 96 bytes plus its spilled deltas: 64 MiB hold about 700 000 short lists (up to
/// 14 bytes of deltas, kept in place), fewer long ones; beyond it, lists are read again from
/// the snapshot (one block of about 64 KiB each) when needed. A segment store caches a
/// quarter of it of sealed segments' frame offsets (`OFFSET_PAGES_BUDGET_DEFAULT`, 16 MiB:
/// four million receipts' worth), and the index another quarter of tenants' whole lists
/// rebuilt for reads.
pub const INDEX_BUDGET_BYTES: usize = 64 << 20;

/// Sequence numbers a read copies from the index and locates per hold of the ledger's lock
/// (tens of microseconds), then reads without it. A few in tests, so that reads resume
/// across holds.
const READ_BATCH: usize = if cfg!(test) { 3 } else { 4_096 };

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
    /// The ledger was closed ([`Ledger::close`], at shutdown): it takes no more appends or
    /// commits. Nothing failed; the ledger is not poisoned.
    #[error("the ledger is closed: it takes no more appends")]
    Closed,
    /// The store failed now (the ledger is poisoned from here on).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store did not hand over a record it should have (missing, or another in its
    /// place); or the ledger snapshot's block holding a resource's list, read when the index
    /// pages from it, could not be read or failed its CRC32C (`seq` is then the snapshot's
    /// last record and `reason` names the block).
    #[error("the store did not hand over record {seq}: {reason}")]
    Corrupt {
        /// The record.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// A stored record does not verify (opening a ledger): it does not decode, breaks the
    /// chain or its resource's numbering. The first such record, named as `govern verify`
    /// names it. A read names a record that does not decode the same way
    /// ([`ChainError::Malformed`]).
    #[error(transparent)]
    Chain(#[from] ChainError),
}

impl LedgerError {
    /// The record a [`Corrupt`](Self::Corrupt) or [`Chain`](Self::Chain) error names.
    #[must_use]
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Corrupt { seq, .. } => Some(*seq),
            Self::Chain(e) => Some(e.seq()),
            _ => None,
        }
    }
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

/// A (tenant, kind, resource) key, hashed to 128 bits: the index keeps these instead of the
/// ids, so that reopening a ledger allocates nothing per resource and hashes each key once.
///
/// Two different keys could share a hash. Reads cannot go wrong for it: they decode every
/// receipt they read and drop those of another key. What a shared hash would break is the
/// numbering: `append` takes a receipt's `resource_seq` from the count of its key's list, so
/// the two resources would share one count (which the next opening, with other seeds, or
/// `govern verify` would then report as a `resource_seq_gap`). The hash is keyed with
/// random seeds, drawn anew by every ledger (the index is never stored), so the ids cannot
/// be chosen to collide; with n distinct keys the chance that any two share a hash is about
/// n² / 2¹²⁹: 1.5 · 10⁻²⁵ for ten million, 1.5 · 10⁻¹⁹ for ten billion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyHash {
    /// The first 64 bits; the hash table's own hash.
    pub(crate) lo: u64,
    /// The other 64.
    pub(crate) hi: u64,
}

impl KeyHash {
    /// Shards of the tables keyed by key hashes (the ledger's index, `govern verify`'s
    /// numbering), each key's chosen by [`Self::shard`].
    pub(crate) const SHARDS: usize = 256;

    /// The shard of this key: the top byte of the second half (the first half places the key
    /// inside its shard's table).
    pub(crate) fn shard(self) -> usize {
        usize::from(self.hi.to_be_bytes()[0])
    }
}

/// How big a ledger being read is, for sizing its tables before they fill.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expected {
    /// This many records (an opened store's length).
    Records(u64),
    /// This many bytes of frames (the segment files of a data directory), holding records
    /// of the size of those seen so far.
    Bytes(u64),
}

/// How many distinct keys a whole ledger of size `total` is expected to hold, from its
/// first records: `keys` distinct keys among `records` records, `bytes` bytes of frames in
/// all. The rate of new keys may overestimate (keys that repeat only further on): the
/// tables are shrunk, or not grown, accordingly by their owners.
pub(crate) fn expected_keys(keys: usize, records: u64, bytes: u64, total: Expected) -> usize {
    let records = records.max(1) as f64;
    let total = match total {
        Expected::Records(n) => n as f64,
        Expected::Bytes(n) => n.max(bytes) as f64 / bytes.max(1) as f64 * records,
    };
    (total.max(records) * keys as f64 / records) as usize
}

impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Already a keyed hash: the table takes it as it is (see `PassThrough`).
        state.write_u64(self.lo);
    }
}

/// The hasher of tables keyed by [`KeyHash`]: the key is its own hash.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `KeyHash`); anything else is folded in all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Hashes (tenant, kind, resource) keys: two foldhash hashers with independent random seeds.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyHasher {
    lo: foldhash::quality::RandomState,
    hi: foldhash::quality::RandomState,
    /// Tests: keep only this many bits of each half, to force collisions.
    #[cfg(test)]
    bits: Option<u32>,
}

impl KeyHasher {
    pub(crate) fn hash(&self, tenant: &str, kind: GovernorKind, resource: &str) -> KeyHash {
        use std::hash::{BuildHasher, Hasher};
        // The two lengths (an id is at most 128 bytes) and the kind in one word, then the
        // bytes: three writes rather than five (`govern verify` hashes a key per receipt).
        let shape = (tenant.len() as u64) << 32 | (resource.len() as u64) << 8 | kind as u64;
        let one = |state: &foldhash::quality::RandomState| {
            let mut h = state.build_hasher();
            h.write_u64(shape);
            h.write(tenant.as_bytes());
            h.write(resource.as_bytes());
            h.finish()
        };
        #[allow(unused_mut, reason = "only tests narrow the hash")]
        let mut key = KeyHash { lo: one(&self.lo), hi: one(&self.hi) };
        #[cfg(test)]
        if let Some(bits) = self.bits {
            let mask = (1u64 << bits) - 1;
            key = KeyHash { lo: key.lo & mask, hi: key.hi & mask };
        }
        key
    }
}

/// One shard of [`Resources`].
#[allow(clippy::disallowed_types, reason = "lookup only; never iterated into output unsorted")]
type Shard = HashMap<KeyHash, SeqList, std::hash::BuildHasherDefault<PassThrough>>;

/// Sequence numbers by resource, by the hash of its key, in 256 tables
/// ([`KeyHash::shard`]). Reopening fills the tables one at a time from keys
/// sorted out by shard (a burst of inserts into one table of a few MiB, rather than inserts
/// scattered over all of them: fewer cache and TLB misses), and a table that grows rehashes
/// 1/256 of the keys, under the ledger's lock, rather than all of them.
#[derive(Debug)]
struct Resources {
    shards: Box<[Shard; KeyHash::SHARDS]>,
}

impl Default for Resources {
    fn default() -> Self {
        Self { shards: Box::new(std::array::from_fn(|_| Shard::default())) }
    }
}

impl Resources {
    fn get(&self, key: KeyHash) -> Option<&SeqList> {
        self.shards[key.shard()].get(&key)
    }

    fn contains(&self, key: KeyHash) -> bool {
        self.shards[key.shard()].contains_key(&key)
    }

    fn insert(&mut self, key: KeyHash, list: SeqList) {
        self.shards[key.shard()].insert(key, list);
    }

    /// Heap bytes of the tables and the lists.
    fn heap_bytes(&self) -> usize {
        let slot = size_of::<KeyHash>() + size_of::<SeqList>() + 1;
        self.shards
            .iter()
            .map(|s| s.capacity() * slot + s.values().map(SeqList::heap_bytes).sum::<usize>())
            .sum()
    }

    fn entry(&mut self, key: KeyHash) -> &mut SeqList {
        self.shards[key.shard()].entry(key).or_default()
    }
}

/// Sequence numbers by tenant (there are few tenants), marked for reads page by page.
#[allow(clippy::disallowed_types, reason = "lookup only; never iterated into output unsorted")]
type Tenants = HashMap<TenantId, TenantList, foldhash::fast::RandomState>;

/// Where each receipt is: its sequence number in the list of its resource and in the list of
/// its tenant. Lists only; the ids are in the receipts.
///
/// Resource lists: with a snapshot to page from (`paged`), `resources` holds the *dirty*
/// lists only (keys appended since that snapshot, whole lists) and every other list is read
/// from the snapshot when needed, kept in `clean` within `budget` bytes (see `paged`);
/// without one, `resources` holds every list.
#[derive(Debug)]
pub(crate) struct Index {
    /// Hashes the keys of `resources`.
    keys: KeyHasher,
    /// Per (tenant, kind, resource), by [`KeyHash`]: what a governor replays.
    resources: Resources,
    /// The snapshot the lists not in `resources` are read from.
    paged: Option<paged::Paged>,
    /// Lists read from it, within `budget`.
    clean: paged::Clean,
    /// The bytes `clean` may hold.
    budget: usize,
    /// Per tenant: what tenant queries and counts read (with a snapshot to page from, the
    /// numbers after it and how many are in it; see `tenants`).
    tenants: Tenants,
    /// Whole lists of paged tenants, rebuilt for reads, within a quarter of `budget`.
    tenant_cache: TenantCache,
}

impl Default for Index {
    fn default() -> Self {
        Self::new(KeyHasher::default(), Resources::default(), Tenants::default())
    }
}

impl Index {
    fn new(keys: KeyHasher, resources: Resources, tenants: Tenants) -> Self {
        Self {
            keys,
            resources,
            paged: None,
            clean: paged::Clean::default(),
            budget: INDEX_BUDGET_BYTES,
            tenants,
            tenant_cache: TenantCache::default(),
        }
    }

    /// The whole list of `tenant`'s receipts: held, or (a tenant with receipts in the
    /// snapshot paged from) rebuilt from the snapshot's KEYS blocks and its tail, and cached.
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] when a block cannot be read or the lists do not add up.
    fn tenant_list(&mut self, tenant: &TenantId) -> Result<Option<&MarkedList>, LedgerError> {
        let Self { tenants, tenant_cache, paged, budget, .. } = self;
        let Some(entry) = tenants.get(tenant) else { return Ok(None) };
        if let Some(held) = entry.held() {
            return Ok(Some(held));
        }
        if tenant_cache.has(tenant) {
            return Ok(tenant_cache.get(tenant));
        }
        let corrupt = |reason: String| LedgerError::Corrupt {
            seq: entry.paged_len().saturating_sub(1),
            reason,
        };
        let Some(paged) = paged.as_ref() else {
            return Err(corrupt(format!("tenant {tenant}'s list is paged without a snapshot")));
        };
        let numbers = paged.tenant_numbers(tenant.as_str())?;
        let list = tenants::rebuild(tenant, numbers, entry.paged_len(), entry.tail(), |reason| {
            LedgerError::Corrupt {
                seq: paged.records().saturating_sub(1),
                reason: format!("the ledger snapshot the index pages from: {reason}"),
            }
        })?;
        tenant_cache.rebuilt += 1;
        Ok(Some(tenant_cache.insert(tenant, list, *budget / 4)))
    }

    /// The sequence numbers under the hash of (tenant, kind, resource): that resource's, and
    /// (with a negligible chance, see [`KeyHash`]) those of another sharing the hash. A list
    /// not held is read from the snapshot (a key it does not have is remembered as empty).
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] when the snapshot's block cannot be read or is damaged.
    fn resource(
        &mut self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
    ) -> Result<Option<&SeqList>, LedgerError> {
        let key = self.keys.hash(tenant.as_str(), kind, resource.as_str());
        if self.resources.contains(key) {
            return Ok(self.resources.get(key));
        }
        let Some(paged) = &self.paged else { return Ok(None) };
        if !paged.may_have(key) {
            return Ok(None);
        }
        if self.clean.get(key).is_some() {
            return Ok(self.clean.get(key));
        }
        let list = paged.list(tenant.as_str(), kind, resource.as_str())?.unwrap_or_default();
        Ok(Some(self.clean.insert(key, list, self.budget)))
    }

    /// Makes the list of `key`, that of (tenant, kind, resource), a dirty one before an
    /// append to it: its clean list moved (or read) from the snapshot first.
    ///
    /// # Errors
    /// As [`Self::resource`].
    fn fault_in(
        &mut self,
        key: KeyHash,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
    ) -> Result<(), LedgerError> {
        if self.resources.contains(key) {
            return Ok(());
        }
        let Some(paged) = &self.paged else { return Ok(()) };
        if !paged.may_have(key) {
            return Ok(());
        }
        let list = match self.clean.take(key) {
            Some(list) => list,
            None => paged.list(tenant.as_str(), kind, resource.as_str())?.unwrap_or_default(),
        };
        self.resources.insert(key, list);
        Ok(())
    }

    /// Pages from `snapshot` from now on (a snapshot of this ledger's first records, newer
    /// than any before; `false`, and nothing changed, for an older one). The clean lists
    /// held stay right: their keys have no records since the previous snapshot, so their
    /// lists are the same in this one. The dirty lists stay right too until
    /// [`Self::clean_shard`] lets those wholly in it go.
    fn switch_to(&mut self, snapshot: paged::Paged) -> bool {
        if self.paged.as_ref().is_some_and(|p| p.records() > snapshot.records()) {
            return false;
        }
        let records = snapshot.records();
        self.paged = Some(snapshot);
        // The tenants' numbers below it are in it now: counted, not held.
        for list in self.tenants.values_mut() {
            list.trim_below(records);
        }
        true
    }

    /// Turns the dirty lists of shard `i` wholly in the snapshot paged from clean: kept in
    /// the cache while they fit in the budget, else let go (read again when needed).
    fn clean_shard(&mut self, i: usize) {
        let Some(covered) = self.paged.as_ref().map(paged::Paged::records) else { return };
        let Some(shard) = self.resources.shards.get_mut(i) else { return };
        let (clean, budget) = (&mut self.clean, self.budget);
        shard.retain(|&key, list| {
            if list.last().is_some_and(|last| last >= covered) {
                return true;
            }
            clean.offer(key, std::mem::take(list), budget);
            false
        });
        if shard.len() < shard.capacity() / 4 {
            shard.shrink_to_fit();
        }
    }

    /// Every resource list, sorted (tests: an index compared with one that holds them all,
    /// whichever way each holds them): the dirty ones and the snapshot's others.
    #[cfg(test)]
    pub(crate) fn all_lists(&self) -> Vec<Vec<u64>> {
        let mut out: Vec<Vec<u64>> = self
            .resources
            .shards
            .iter()
            .flat_map(|shard| shard.values())
            .map(|list| list.iter().collect())
            .collect();
        if let Some(paged) = &self.paged {
            paged
                .for_each(|tenant, kind, resource, list| {
                    if !self.resources.contains(self.keys.hash(tenant, kind, resource)) {
                        out.push(list.iter().collect());
                    }
                })
                .expect("the snapshot's blocks read");
        }
        out.sort();
        out
    }

    /// Heap bytes the index holds, about: the resource tables and lists (dirty and clean),
    /// the tenants' lists, and what finds a list in the snapshot.
    fn resident_bytes(&self) -> usize {
        let tenants = self.tenants.capacity()
            * (size_of::<TenantId>() + size_of::<TenantList>() + 1)
            + self.tenants.values().map(TenantList::heap_bytes).sum::<usize>();
        self.resources.heap_bytes()
            + self.clean.bytes()
            + self.tenant_cache.bytes()
            + tenants
            + self.paged.as_ref().map_or(0, paged::Paged::heap_bytes)
    }
}

/// Everything behind the ledger's lock.
struct Inner {
    /// Next sequence number and last hash.
    head: Head,
    /// The records.
    store: Box<dyn LedgerStore>,
    /// Sequence numbers by resource and by tenant.
    index: Index,
    /// Scratch space for preimages.
    buf: Vec<u8>,
    /// Whether the store is durable: then the receipt hashes appended since the last commit
    /// began are kept in `unhashed`, for the Merkle frontier.
    durable: bool,
    /// Receipt hashes not yet in the frontier.
    unhashed: Vec<Digest>,
    /// What the data directory keeps about its archived records (the governors' states at
    /// the boundary), when some are: replaced with the store's base, under this lock.
    archived: Option<Arc<ArchivedBase>>,
}

/// The archived records of a data directory as a replay needs them: the boundary and the
/// governors' states there ([`crate::archive`]).
#[derive(Debug)]
pub(crate) struct ArchivedBase {
    boundary: u64,
    /// The hash of the last archived record.
    boundary_hash: Digest,
    states: BaseStates,
}

impl ArchivedBase {
    /// The base of `manifest` in data directory `dir`: its states file opened (header and
    /// fence read and checked; each block is checked when read).
    pub(crate) fn open(dir: &Path, manifest: &Manifest) -> Result<Self, ArchiveError> {
        let file = &manifest.base_states.file;
        let states = BaseStates::open(&dir.join(file))
            .map_err(|e| ArchiveError::Mismatch { range: file.clone(), reason: e.to_string() })?;
        Ok(Self { boundary: manifest.boundary, boundary_hash: manifest.boundary_hash, states })
    }
}

/// One governor's history as the ledger has it: its machine's state at the archive boundary
/// with the number of its receipts below it (when it has archived receipts), then its
/// receipts from the boundary on.
#[derive(Debug, Default)]
pub struct History {
    /// The state and count at the boundary, when some of its receipts are archived.
    pub base: Option<BaseState>,
    /// Its receipts that are not archived, in order.
    pub receipts: Vec<Receipt>,
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
    /// Set by [`Ledger::close`] (under both locks); appends and commits are refused from
    /// then on.
    closed: AtomicBool,
    /// The records the data directory's snapshot covers (the one opened from or last
    /// written), for [`Ledger::snapshot_due`].
    snapshotted: AtomicU64,
    /// The least number of records not in the snapshot that make one due.
    snapshot_every: AtomicU64,
    /// Held by [`Ledger::write_snapshot`]: one writer of the snapshot file at a time.
    snapshotting: Mutex<()>,
    /// The sealed segments ending at or below this record have a valid tree file (checked
    /// or written by [`Ledger::write_segment_trees`] in this process): not looked at again.
    trees_upto: AtomicU64,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("poisoned", &self.poisoned.load(Ordering::Relaxed))
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ledger {
    fn with(inner: Inner, frontier: MerkleFrontier, durable: u64) -> Self {
        Self {
            inner: Mutex::new(inner),
            commit: Mutex::new(Commit { frontier, spare: Vec::new() }),
            durable: AtomicU64::new(durable),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            snapshotted: AtomicU64::new(0),
            snapshot_every: AtomicU64::new(snapshot::SNAPSHOT_DUE_RECORDS),
            snapshotting: Mutex::new(()),
            trees_upto: AtomicU64::new(0),
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
            archived: None,
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
    /// [`LedgerError::Closed`] once the ledger is closed; [`LedgerError::Poisoned`] after an
    /// earlier failure; [`LedgerError::Store`] when the store fails now, which poisons the
    /// ledger.
    pub fn append(&self, mut body: ReceiptBody) -> Result<Appended, LedgerError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LedgerError::Poisoned);
        }
        let mut guard = self.lock();
        // Read under the lock `close` sets it under: no append reaches a closed store.
        if self.closed.load(Ordering::Acquire) {
            return Err(LedgerError::Closed);
        }
        let inner = &mut *guard;
        let key =
            inner.index.keys.hash(body.tenant.as_str(), body.governor, body.resource.as_str());
        // A key not appended to since the snapshot gets its whole list first (numbering).
        inner.index.fault_in(key, &body.tenant, body.governor, &body.resource)?;
        let seqs = inner.index.resources.entry(key);
        // A different key sharing this hash would share the count (see `KeyHash`).
        body.resource_seq = seqs.len();
        let seq = inner.head.next_seq;
        let receipt = Receipt::seal_with(body, seq, inner.head.last_hash, &mut inner.buf);
        inner.buf.extend_from_slice(&receipt.hash.0);
        if let Err(e) = inner.store.append(seq, &inner.buf) {
            return Err(self.poison(e, "append"));
        }
        seqs.push(seq);
        match inner.index.tenants.get_mut(&receipt.body.tenant) {
            Some(tenant) => tenant.push(seq),
            None => {
                let mut tenant = TenantList::default();
                tenant.push(seq);
                inner.index.tenants.insert(receipt.body.tenant.clone(), tenant);
            }
        }
        inner.index.tenant_cache.push(&receipt.body.tenant, seq);
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
    /// As [`Self::append`]: a store failure poisons the ledger.
    pub fn commit(&self) -> Result<u64, LedgerError> {
        let mut commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LedgerError::Poisoned);
        }
        // Read under the commit lock `close` sets it under: no commit reaches a closed store.
        if self.closed.load(Ordering::Acquire) {
            return Err(LedgerError::Closed);
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

    /// Ends writing (after the last commit; a commit in flight is waited for): from now on
    /// the ledger refuses appends and commits with [`LedgerError::Closed`], without being
    /// poisoned, and the store lets go of what it holds for its writer
    /// ([`LedgerStore::close`]: the segment store's data directory lock), so that another
    /// writer may open the directory while handles to this ledger remain. Reads go on. A
    /// second call does nothing.
    pub fn close(&self) {
        let _commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut inner = self.lock();
        if !self.closed.swap(true, Ordering::AcqRel) {
            inner.store.close();
        }
    }

    /// Whether [`Self::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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

    /// Sets the bytes of resource lists read from the snapshot that the index keeps (see
    /// [`INDEX_BUDGET_BYTES`], the default): beyond them, the least recently used are let
    /// go and read again when needed; and a quarter of it for the frame offsets of sealed
    /// segments that a segment store caches (read back from their index files when not).
    /// Another quarter is for tenants' whole lists rebuilt from the snapshot for reads.
    /// Any value works; with a tiny one every list not appended to since the snapshot is
    /// read from it when needed, and every sealed segment's offsets from its index file.
    /// Lists appended to since the snapshot, the last segments' offsets, and the tenants'
    /// numbers since the snapshot are held whatever the budget.
    pub fn set_index_budget(&self, bytes: usize) {
        let mut inner = self.lock();
        inner.index.budget = bytes;
        inner.index.clean.shrink_to(bytes);
        inner.store.set_offsets_budget(bytes / 4);
    }

    /// Heap bytes the index holds now, about: resource lists (those appended to since the
    /// snapshot and those read from it), tenants' lists (their tails, and whole lists
    /// cached for reads), and the snapshot's fence and key filter.
    #[must_use]
    pub fn index_resident_bytes(&self) -> usize {
        self.lock().index.resident_bytes()
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
    /// [`LedgerError::Chain`] ([`ChainError::Malformed`]) when a record does not decode;
    /// [`LedgerError::Corrupt`] when the store does not have it; [`LedgerError::Store`]
    /// when it cannot read it.
    pub fn resource_receipts(
        &self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
    ) -> Result<Vec<Receipt>, LedgerError> {
        let below = self.head().next_seq;
        // The list is that of the key's hash: the exact key is checked on every receipt.
        let wanted =
            Wanted { tenant, kind: Some(kind), resource: Some(resource), prefilter: false };
        let mut out = Vec::new();
        self.read_list(List::Resource(tenant, kind, resource), below, &wanted, &mut out)?;
        Ok(out)
    }

    /// One resource's history ([`History`]): its state at the archive boundary, if any of its
    /// receipts are archived, and its receipts after it; without archived receipts, what
    /// [`Self::resource_receipts`] gives. Replaying a governor starts from the state and
    /// folds the receipts, whose `resource_seq` continue from the count.
    ///
    /// # Errors
    /// As [`Self::resource_receipts`]; [`LedgerError::Corrupt`] when the states file cannot
    /// be read, or archival moved the boundary during three reads in a row.
    pub fn resource_history(
        &self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
    ) -> Result<History, LedgerError> {
        for _ in 0..3 {
            let (archived, base) = {
                let inner = self.lock();
                (inner.archived.clone(), inner.store.base())
            };
            let receipts = self.resource_receipts(tenant, kind, resource)?;
            // Archival between the two reads would pair a state with the wrong receipts.
            if self.lock().store.base() != base {
                continue;
            }
            let base_state = match archived.filter(|a| a.boundary == base) {
                Some(a) => a.states.get(tenant, kind, resource).map_err(|e| {
                    LedgerError::Corrupt { seq: base.saturating_sub(1), reason: e.to_string() }
                })?,
                None if base > 0 => {
                    return Err(LedgerError::Corrupt {
                        seq: base - 1,
                        reason: "records are archived but the governors' states at the boundary are not loaded".into(),
                    });
                }
                None => None,
            };
            return Ok(History { base: base_state, receipts });
        }
        Err(LedgerError::Corrupt {
            seq: self.head().next_seq,
            reason: "the archive boundary moved during three reads in a row".into(),
        })
    }

    /// Calls `f` with the state at the archive boundary of every governor with archived
    /// receipts, in key order (nothing when nothing is archived): each block of the states
    /// file read once and checked.
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] when the states file cannot be read or is damaged.
    pub fn for_each_archived_state(
        &self,
        mut f: impl FnMut(TenantId, GovernorKind, ResourceId, BaseState),
    ) -> Result<(), LedgerError> {
        let Some(archived) = self.lock().archived.clone() else { return Ok(()) };
        archived
            .states
            .for_each(|key, base| {
                f(key.tenant, key.kind, key.resource, base);
                Ok::<(), crate::archive::states::StatesError>(())
            })
            .map_err(|e| LedgerError::Corrupt {
                seq: archived.boundary.saturating_sub(1),
                reason: e.to_string(),
            })
    }

    /// The sealed segments of a data directory's store, in order (none for other stores):
    /// what archival may move.
    #[must_use]
    pub fn sealed_segments(&self) -> Vec<SealedSegment> {
        self.lock().store.sealed_segments()
    }

    /// The bytes of the live segment files (0 for other stores): their lengths, counting
    /// frames not yet written.
    #[must_use]
    pub fn live_segment_bytes(&self) -> u64 {
        self.lock().store.live_bytes()
    }

    /// The chain's head at the archive boundary (the boundary and the hash of the last
    /// archived record), when records are archived.
    #[must_use]
    pub fn archived_head(&self) -> Option<Head> {
        let archived = self.lock().archived.clone()?;
        Some(Head { next_seq: archived.boundary, last_hash: archived.boundary_hash })
    }

    /// The first record not archived: 0 when nothing is.
    #[must_use]
    pub fn archive_boundary(&self) -> u64 {
        self.lock().store.base()
    }

    /// Whether one resource may have receipts: false means it has none (the check is
    /// the length of its key hash's list, taken under the lock and without reading the
    /// store, so a colliding key can make it say true for a resource that has none). A
    /// governor that has never written a receipt starts without a read.
    #[must_use]
    pub fn resource_may_have_receipts(
        &self,
        tenant: &TenantId,
        kind: GovernorKind,
        resource: &ResourceId,
    ) -> bool {
        let mut inner = self.lock();
        match inner.index.resource(tenant, kind, resource) {
            Ok(seqs) => seqs.is_some_and(|seqs| seqs.len() > 0),
            // The read that follows reports it.
            Err(_) => true,
        }
    }

    /// The receipts of one tenant, optionally narrowed to a kind and a resource, in sequence
    /// order. Never another tenant's.
    ///
    /// # Errors
    /// As [`Self::resource_receipts`].
    pub fn tenant_receipts(
        &self,
        tenant: &TenantId,
        kind: Option<GovernorKind>,
        resource: Option<&ResourceId>,
    ) -> Result<Vec<Receipt>, LedgerError> {
        self.tenant_receipts_below(tenant, kind, resource, u64::MAX)
    }

    /// [`Self::tenant_receipts`], only those whose sequence number is below `below`: with
    /// [`Self::durable_len`], only durable receipts (what a host may be shown).
    ///
    /// # Errors
    /// As [`Self::resource_receipts`].
    pub fn tenant_receipts_below(
        &self,
        tenant: &TenantId,
        kind: Option<GovernorKind>,
        resource: Option<&ResourceId>,
        below: u64,
    ) -> Result<Vec<Receipt>, LedgerError> {
        // One bound for every list read: what the ledger held when the read began.
        let below = below.min(self.head().next_seq);
        // Narrowed to a kind only, most of the tenant's receipts are not wanted.
        let prefilter = resource.is_none() && kind.is_some();
        let wanted = Wanted { tenant, kind, resource, prefilter };
        let mut out = Vec::new();
        match (kind, resource) {
            // One resource: its list (or, without a kind, those of the resource under every
            // kind) instead of the tenant's.
            (Some(k), Some(r)) => {
                self.read_list(List::Resource(tenant, k, r), below, &wanted, &mut out)?
            }
            (None, Some(r)) => {
                for k in GovernorKind::ALL {
                    self.read_list(List::Resource(tenant, k, r), below, &wanted, &mut out)?;
                }
                out.sort_unstable_by_key(|r| r.seq);
                // Kinds whose keys share a hash share a list: each receipt once.
                out.dedup_by_key(|r| r.seq);
            }
            (_, None) => self.read_list(List::Tenant(tenant, None), below, &wanted, &mut out)?,
        }
        Ok(out)
    }

    /// One page of a tenant's receipts, in sequence order, for following the ledger as a
    /// change feed: those after sequence number `after` (the last one the caller has; `None`
    /// from the start), at most `limit` of them (`limit` taken between 1 and
    /// [`TENANT_PAGE_MAX`]). Never another tenant's. Returns the page and the cursor to ask
    /// for the next one: `Some(seq of the page's last receipt)` when the tenant has more
    /// receipts after the page, `None` when the page reaches its last receipt (the feed is
    /// caught up: ask again later after the last receipt you have). Walking from `None`
    /// with each cursor returned gives every receipt of the tenant once.
    ///
    /// Finding the page costs its size, not the tenant's history: the tenant's list is
    /// marked every thousand or so receipts, and the walk starts at the mark before `after`.
    /// The page is copied and located under one short hold of the lock, and read after.
    ///
    /// # Errors
    /// As [`Self::resource_receipts`].
    pub fn tenant_receipts_page(
        &self,
        tenant: &TenantId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Receipt>, Option<u64>), LedgerError> {
        self.tenant_receipts_page_below(tenant, after, limit, u64::MAX)
    }

    /// [`Self::tenant_receipts_page`] over the receipts below `below` only (with
    /// [`Self::durable_len`]: a change feed of durable receipts). The cursor is `None` when no
    /// receipt of the tenant below `below` follows the page.
    ///
    /// # Errors
    /// As [`Self::resource_receipts`].
    pub fn tenant_receipts_page_below(
        &self,
        tenant: &TenantId,
        after: Option<u64>,
        limit: usize,
        below: u64,
    ) -> Result<(Vec<Receipt>, Option<u64>), LedgerError> {
        let limit = limit.clamp(1, TENANT_PAGE_MAX);
        let mut seqs = Vec::with_capacity(limit + 1);
        let located = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let below = below.min(inner.head.next_seq);
            // Archived receipts are not read: a walk starts after them.
            let base = inner.store.base();
            let after = match after {
                Some(seq) if seq + 1 >= base => Some(seq),
                _ if base > 0 => Some(base - 1),
                _ => None,
            };
            if let Some((list, start)) = List::Tenant(tenant, after).find(&mut inner.index, None)? {
                // One more than the page: whether another page follows.
                list.copy_from(start, limit + 1, below, &mut seqs);
            }
            inner.store.locate(seqs.get(..limit).unwrap_or(&seqs))?
        };
        let next = if seqs.len() > limit { seqs.get(limit - 1).copied() } else { None };
        seqs.truncate(limit);
        let mut out = Vec::with_capacity(seqs.len());
        let wanted = Wanted { tenant, kind: None, resource: None, prefilter: false };
        read_matching(located, &seqs, &wanted, &mut out)?;
        Ok((out, next))
    }

    /// Reads the receipts of `list` below `below` and adds the `wanted` ones to `out`. Each
    /// hold of the lock copies up to [`READ_BATCH`] numbers from the list (looked up afresh:
    /// the index grows meanwhile, and the walk resumes where it stopped) and locates them
    /// ([`LedgerStore::locate`]); they are read and decoded after it is released, so an
    /// append waiting for the lock gets it between two holds.
    fn read_list(
        &self,
        list: List<'_>,
        below: u64,
        wanted: &Wanted<'_>,
        out: &mut Vec<Receipt>,
    ) -> Result<(), LedgerError> {
        let mut from = None;
        // Allocated before the lock is taken (a thread's first allocation may have to sort
        // what it freed earlier: milliseconds after a large read), and never grown under it.
        let mut seqs = Vec::with_capacity(READ_BATCH);
        loop {
            seqs.clear();
            let (located, copied) = {
                let mut guard = self.lock();
                let inner = &mut *guard;
                let Some((seqs_of, start)) = list.find(&mut inner.index, from)? else {
                    return Ok(());
                };
                from = Some(seqs_of.copy_from(start, READ_BATCH, below, &mut seqs));
                let copied = seqs.len();
                // Archived receipts (below the store's first record) are not read: the
                // lists keep them, for the numbering; they come first.
                let archived = seqs.partition_point(|&seq| seq < inner.store.base());
                seqs.drain(..archived);
                if copied == 0 {
                    return Ok(());
                }
                (inner.store.locate(&seqs)?, copied)
            };
            read_matching(located, &seqs, wanted, out)?;
            if copied < READ_BATCH {
                return Ok(());
            }
        }
    }

    /// How many receipts each tenant has, sorted by tenant.
    #[must_use]
    pub fn receipt_counts(&self) -> Vec<(TenantId, u64)> {
        let inner = self.lock();
        let mut out: Vec<(TenantId, u64)> =
            inner.index.tenants.iter().map(|(t, seqs)| (t.clone(), seqs.len())).collect();
        out.sort();
        out
    }

    /// Re-reads and verifies the whole chain, every record checked as `govern verify`
    /// checks it: frame, hash, sequence, link and id, then decoded, then its resource's
    /// numbering. The ledger's length and where its records are ([`LedgerStore::locate_range`])
    /// are taken under the lock; the records are read and checked after it is released.
    /// With archived records, the live ones from the archive boundary: the chain from its
    /// hash, each resource's numbering from its count there.
    ///
    /// # Errors
    /// [`LedgerError::Chain`] naming the first bad receipt; [`LedgerError::Corrupt`] when the
    /// governors' states at the archive boundary (their counts) cannot be read.
    pub fn verify(&self) -> Result<Head, LedgerError> {
        let archived = self.lock().archived.clone();
        // Built (and allocated) before the lock is taken, as `read_list`'s buffer is; from
        // the archive boundary when records are archived: the chain from its hash, each
        // resource's numbering from its count there.
        let (mut checker, from) = match &archived {
            Some(a) => {
                let mut numbering = crate::verify::Numbering::default();
                a.states
                    .for_each(|key, base| {
                        numbering.seed(
                            key.tenant.as_str(),
                            key.kind,
                            key.resource.as_str(),
                            base.count,
                        );
                        Ok::<(), crate::archive::states::StatesError>(())
                    })
                    .map_err(|e| LedgerError::Corrupt {
                        seq: a.boundary.saturating_sub(1),
                        reason: format!("the governors' states at the archive boundary: {e}"),
                    })?;
                let head = Head { next_seq: a.boundary, last_hash: a.boundary_hash };
                (crate::verify::RecordChecker::resume(head, numbering), a.boundary)
            }
            None => (crate::verify::RecordChecker::default(), 0),
        };
        let (len, located) = {
            let inner = self.lock();
            let len = inner.store.len();
            (len, inner.store.locate_range(from..len))
        };
        let mut next = from;
        // A record the store cannot produce is reported as the frame check would.
        if let Ok(mut located) = located {
            while let Some((seq, record)) = located.next_record() {
                if seq != next {
                    break;
                }
                checker.push(record.ok().flatten().unwrap_or_default())?;
                next += 1;
            }
        }
        while next < len {
            checker.push(&[])?;
            next += 1;
        }
        Ok(checker.head())
    }

    /// The receipts with sequence numbers in `range` (cut at the ledger's length when the
    /// read begins), decoded, in order: a read by position, for a reader that follows the
    /// ledger from a known point (the runtime's start state, `runtime.snap`, applies the
    /// receipts after the point it covers). Where the records are is taken under the lock
    /// ([`LedgerStore::locate_range`], as [`Self::verify`] does); they are read and decoded
    /// after it is released. The caller bounds the range: the whole of it is returned.
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] when the store does not have a record of the range (or hands
    /// over another); [`LedgerError::Chain`] when one does not decode;
    /// [`LedgerError::Store`] when it cannot be read.
    pub fn receipts_in(&self, range: std::ops::Range<u64>) -> Result<Vec<Receipt>, LedgerError> {
        let (end, mut located) = {
            let inner = self.lock();
            let end = range.end.min(inner.head.next_seq);
            if range.start >= end {
                return Ok(Vec::new());
            }
            (end, inner.store.locate_range(range.start..end)?)
        };
        let malformed = |seq, source| LedgerError::Chain(ChainError::Malformed { seq, source });
        let mut out = Vec::with_capacity(usize::try_from(end - range.start).unwrap_or(0));
        for seq in range.start..end {
            let record = expect_record(located.as_mut(), seq)?;
            out.push(Receipt::decode(record).map_err(|e| malformed(seq, e))?);
        }
        Ok(out)
    }
}

/// A list of the index, found again at every hold of the lock.
#[derive(Clone, Copy, Debug)]
enum List<'a> {
    /// The list of a (tenant, kind, resource) key's hash.
    Resource(&'a TenantId, GovernorKind, &'a ResourceId),
    /// A tenant's, from after a sequence number (from the start for `None`).
    Tenant(&'a TenantId, Option<u64>),
}

impl List<'_> {
    /// The list in `index`, and where a walk through it starts: at `from` when resumed, else
    /// at its start (after the cursor, for a tenant's). A resource's list may be read from
    /// the snapshot (see `Index::resource`); a resumed walk finds the same list again, or
    /// that list grown (the numbers only grow at the end, whichever way the list is held).
    fn find(
        self,
        index: &mut Index,
        from: Option<Resume>,
    ) -> Result<Option<(&SeqList, Resume)>, LedgerError> {
        Ok(match self {
            Self::Resource(tenant, kind, resource) => {
                index.resource(tenant, kind, resource)?.map(|seqs| (seqs, from.unwrap_or_default()))
            }
            Self::Tenant(tenant, after) => index
                .tenant_list(tenant)?
                .map(|seqs| (seqs.list(), from.unwrap_or_else(|| seqs.resume_after(after)))),
        })
    }
}

/// Which receipts a read keeps: those of `tenant` (and of `kind` and `resource`, when
/// given). With `prefilter` (most receipts are expected not to match), each record's key is
/// checked before the record is decoded whole; otherwise the decoded receipt is checked.
#[derive(Debug)]
struct Wanted<'a> {
    tenant: &'a TenantId,
    kind: Option<GovernorKind>,
    resource: Option<&'a ResourceId>,
    prefilter: bool,
}

impl Wanted<'_> {
    fn matches(&self, tenant: &str, kind: GovernorKind, resource: &str) -> bool {
        tenant == self.tenant.as_str()
            && self.kind.is_none_or(|want| want == kind)
            && self.resource.is_none_or(|want| want.as_str() == resource)
    }
}

/// Reads the records `located` (those of `seqs`, in order) and adds the `wanted` ones to
/// `out`, decoded.
fn read_matching(
    mut located: Box<dyn Located>,
    seqs: &[u64],
    wanted: &Wanted<'_>,
    out: &mut Vec<Receipt>,
) -> Result<(), LedgerError> {
    // As opening the ledger names it.
    let malformed = |seq, source| LedgerError::Chain(ChainError::Malformed { seq, source });
    for &seq in seqs {
        let record = expect_record(located.as_mut(), seq)?;
        if wanted.prefilter {
            let key = Receipt::decode_key(record).map_err(|e| malformed(seq, e))?;
            if !wanted.matches(key.tenant, key.governor, key.resource) {
                continue;
            }
        }
        let receipt = Receipt::decode(record).map_err(|e| malformed(seq, e))?;
        let body = &receipt.body;
        if wanted.matches(body.tenant.as_str(), body.governor, body.resource.as_str()) {
            out.push(receipt);
        }
    }
    Ok(())
}

/// The next record `located` hands over, which must be record `seq`.
fn expect_record(located: &mut dyn Located, seq: u64) -> Result<&[u8], LedgerError> {
    match located.next_record() {
        Some((found, _)) if found != seq => {
            let reason = format!("the store handed over record {found} instead");
            Err(LedgerError::Corrupt { seq, reason })
        }
        Some((_, record)) => {
            record?.ok_or_else(|| LedgerError::Corrupt { seq, reason: "missing".into() })
        }
        None => Err(LedgerError::Corrupt { seq, reason: "missing".into() }),
    }
}

#[cfg(test)]
mod tests;
