//! Reopening a ledger over a store that already holds records: the chain head, the index by
//! (tenant, kind, resource) and by tenant, and the Merkle frontier are rebuilt in one pass
//! over the records, on two threads (and a third for the tree of a durable store).
//!
//! The records come from one of two sources: an opened store ([`Ledger::open`], in bulk
//! through [`LedgerStore::for_each`]), or the segment store's own open scan of a data
//! directory ([`Ledger::open_dir`]), whose segments, read and checked once, are handed over
//! as they are scanned, so that opening the store and rebuilding the ledger overlap.
//!
//! The reading thread takes the records from its source, checks each
//! one's form without allocating ([`Receipt::decode_key`]) and indexes it, by the 128-bit
//! hash of its key (no id is allocated per record; see `KeyHash`); it copies them in batches
//! to the chain thread, which verifies the chain (every hash recomputed) and hands the
//! receipt hashes, in batches, to the tree thread. The first bad record is reported by its
//! sequence number, whichever thread finds it; a record that fails on both threads is
//! reported for its place in the chain, which `govern verify` checks first.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, mpsc};

use govern_governors::TenantId;
use govern_receipt::{ChainError, ChainVerifier, Digest, Head, Receipt};

use super::lookup::read_one;
use super::snapshot::{Loaded, SNAPSHOT_FILE, check_end};
use super::tenants::TenantList;
use super::{
    ArchivedBase, Expected, Index, Inner, KeyHash, KeyHasher, Ledger, LedgerError, LedgerStore,
    Resources, Shard, StoreError, expected_keys,
};
use crate::archive::{self, Manifest};
use crate::merkle::MerkleFrontier;
use crate::segment::{
    FRAME_HEADER_LEN, OpenError, OpenReport, SEGMENTS_DIR, SegmentOptions, SegmentStore,
};

/// Bytes of records the reading thread copies into one batch for the chain thread.
const BATCH_BYTES: usize = 256 << 10;

/// Receipt hashes handed from the chain thread to the tree thread in one message.
const HASH_BATCH: usize = 4_096;

/// Records for the chain thread: copied back to back (from an opened store), or lying in a
/// scanned segment shared with it (no record copied).
#[derive(Default)]
struct Batch {
    /// The records, when copied.
    bytes: Vec<u8>,
    /// The scanned segment holding the records, when they are not copied.
    segment: Option<Arc<Segment>>,
    /// Where each record starts and ends, in `bytes` or in the segment.
    spans: Vec<(usize, usize)>,
    /// The bytes of the records.
    len: usize,
}

impl Batch {
    /// Adds `record`, copied, or (when it lies at `span` in `segment`) by its place there.
    /// Returns a batch to send first, if the record does not lie where this one's do.
    fn push(&mut self, record: Record<'_>, spares: &mpsc::Receiver<Batch>) -> Option<Batch> {
        let mut full = None;
        match record {
            Record::Copied(record) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(record);
                self.spans.push((start, self.bytes.len()));
                self.len += record.len();
            }
            Record::Framed(segment, start, end) => {
                if !self.segment.as_ref().is_some_and(|s| Arc::ptr_eq(s, segment)) {
                    if !self.spans.is_empty() {
                        full = Some(std::mem::replace(self, spare(spares)));
                    }
                    self.segment = Some(Arc::clone(segment));
                }
                self.spans.push((start, end));
                self.len += end - start;
            }
        }
        full
    }

    fn records(&self) -> impl Iterator<Item = &[u8]> {
        let bytes = self.segment.as_ref().map_or(&self.bytes[..], |s| &s.bytes[..]);
        self.spans.iter().map(move |&(start, end)| bytes.get(start..end).unwrap_or_default())
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.segment = None;
        self.spans.clear();
        self.len = 0;
    }
}

/// A batch the chain thread gave back, or a new one.
fn spare(spares: &mpsc::Receiver<Batch>) -> Batch {
    let mut spare = spares.try_recv().unwrap_or_default();
    spare.clear();
    spare
}

/// A record handed to the rebuild: its bytes, or the scanned segment it lies in and where.
enum Record<'a> {
    /// Bytes that the chain thread gets a copy of.
    Copied(&'a [u8]),
    /// Bytes `start..end` of a scanned segment, shared with the chain thread.
    Framed(&'a Arc<Segment>, usize, usize),
}

/// A scanned segment's bytes, shared by the reading and chain threads; the buffer goes back
/// to the scan when the last of them drops it.
struct Segment {
    bytes: Vec<u8>,
    home: mpsc::SyncSender<Vec<u8>>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        // The scan may have allocated a buffer of its own already; then this one is dropped.
        let _ = self.home.try_send(std::mem::take(&mut self.bytes));
    }
}

/// What the chain thread found: the head, and the frontier of a durable store.
type Chained = Result<(Head, MerkleFrontier), LedgerError>;

/// Calls its argument with every record, in sequence order, until that breaks.
type Visit<'a> = dyn FnMut(u64, Record<'_>) -> ControlFlow<()> + 'a;

/// Why [`Ledger::open_dir`] failed: the store's open or the ledger's, each reported as it
/// is by [`SegmentStore::open`] and [`Ledger::open`] respectively.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenDirError {
    /// The segment store did not open: damaged frames (segment, offset and sequence number
    /// named), I/O, options or an unexpected file. Reported before any ledger error, as if
    /// the store had been opened first.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// The records did not verify, as [`Ledger::open`] reports it: [`LedgerError::Chain`]
    /// names the first bad one.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What a rebuild found: the index, the chain head, the frontier and the records read.
struct Rebuilt {
    index: Index,
    /// Each key's first `resource_seq`, when the lists hold the records after a snapshot only.
    starts: Option<Starts>,
    head: Head,
    frontier: MerkleFrontier,
    records: u64,
}

impl Rebuilt {
    /// Checks that the store's `len` records were all read and chained.
    fn check_len(&self, len: u64) -> Result<(), LedgerError> {
        if self.records < len {
            return Err(LedgerError::Corrupt { seq: self.records, reason: "missing".into() });
        }
        if self.head.next_seq != len {
            return Err(LedgerError::Corrupt { seq: self.head.next_seq, reason: "missing".into() });
        }
        Ok(())
    }

    fn into_ledger(self, store: Box<dyn LedgerStore>, durable: bool, len: u64) -> Ledger {
        let inner = Inner {
            head: self.head,
            store,
            index: self.index,
            buf: Vec::with_capacity(512),
            durable,
            unhashed: Vec::new(),
            archived: None,
        };
        Ledger::with(inner, self.frontier, len)
    }
}

/// A segment as the store's open scan handed it over: its first sequence number, its bytes
/// and the offsets of its valid frames.
type Scanned = (u64, Vec<u8>, Vec<u32>);

/// Segment buffers in flight while opening a data directory: one being scanned, one queued
/// and one being indexed (a third gave about 1 % at 10 M receipts, for 64 MiB more at peak).
const SCAN_BUFFERS: usize = 3;

impl Ledger {
    /// A ledger over `store`, rebuilding head, index and (for a durable store) the Merkle
    /// frontier from the records already in it, in one pass.
    ///
    /// Every record is verified as `govern verify` does: the store must have it (a segment
    /// store checks each frame's length, CRC32C and sequence number again as it reads it); it
    /// must hold its place in the chain: its hash recomputed over its preimage equals the
    /// stored one, its sequence number is its position, its `prev_hash` is the previous
    /// receipt's hash and its id derives from them; it must decode (form, field lengths,
    /// UTF-8, known governor, valid ids, sorted map keys, nothing trailing); and its
    /// `resource_seq` must be the number of earlier receipts of its (tenant, governor,
    /// resource). The frontier is built from the verified hashes. Rehashing runs on its own
    /// thread, beside the indexing (see `docs/benchmarks.md`).
    ///
    /// # Errors
    /// [`LedgerError::Chain`] naming the first record that does not verify, as `govern
    /// verify` names it (`malformed`, `hash_mismatch`, ..., `resource_seq_gap`);
    /// [`LedgerError::Corrupt`] for a record the store does not hand over;
    /// [`LedgerError::Store`] when the store cannot read.
    pub fn open(store: Box<dyn LedgerStore>) -> Result<Self, LedgerError> {
        Self::open_with(store, KeyHasher::default())
    }

    /// [`Self::open`], with the index keyed by `keys`.
    pub(super) fn open_with(
        store: Box<dyn LedgerStore>,
        keys: KeyHasher,
    ) -> Result<Self, LedgerError> {
        let durable = store.is_durable();
        let len = store.len();
        let rebuilt = rebuild(Start::empty(keys, Expected::Records(len)), durable, |visit| {
            store
                .for_each(&mut |seq, record| visit(seq, Record::Copied(record)))
                .map_err(LedgerError::from)
        })
        .map_err(|refusal| refusal.named(&*store))?;
        rebuilt.check_len(len)?;
        Ok(rebuilt.into_ledger(store, durable, len))
    }

    /// Opens the segment store in data directory `dir` and the ledger over it, reading every
    /// segment once: what [`SegmentStore::open`] followed by [`Self::open`] does, with the
    /// same checks, outcome and errors, in about the time of the slower of the two.
    ///
    /// The store's open scan (reading each segment whole, checking every frame's length,
    /// CRC32C and sequence number, truncating and reporting a torn tail) hands each segment,
    /// as soon as it is scanned, to the ledger's rebuild (decoding, indexing, the chain
    /// rehashed and the Merkle frontier built, on threads of their own), which takes the
    /// records straight from the scanned bytes: no frame is read or CRC-checked twice.
    ///
    /// # Errors
    /// [`OpenDirError::Store`] when the store does not open (as [`SegmentStore::open`]
    /// reports it; it comes first, as if the store had been opened before the ledger);
    /// otherwise [`OpenDirError::Ledger`] as [`Self::open`] reports it.
    pub fn open_dir(
        dir: &Path,
        options: SegmentOptions,
    ) -> Result<(Self, OpenReport), OpenDirError> {
        Self::open_dir_with(dir, options, KeyHasher::default())
    }

    /// [`Self::open_dir`], with the index keyed by `keys`: from the data directory's
    /// snapshot when it has a valid one that matches its records (see [`super::snapshot`]),
    /// else from every record.
    pub(super) fn open_dir_with(
        dir: &Path,
        options: SegmentOptions,
        keys: KeyHasher,
    ) -> Result<(Self, OpenReport), OpenDirError> {
        let archived = |e| OpenDirError::Store(OpenError::Archive(e));
        let manifest = Manifest::read(dir).map_err(archived)?;
        let opened = Self::open_dir_unarchived(dir, options, keys, manifest.as_ref())?;
        if let Some(manifest) = &manifest {
            let base = ArchivedBase::open(dir, manifest).map_err(archived)?;
            opened.0.lock().archived = Some(Arc::new(base));
        }
        Ok(opened)
    }

    /// [`Self::open_dir_with`], but for the governors' states at the archive boundary.
    fn open_dir_unarchived(
        dir: &Path,
        options: SegmentOptions,
        keys: KeyHasher,
        manifest: Option<&Manifest>,
    ) -> Result<(Self, OpenReport), OpenDirError> {
        let archived = |e| OpenDirError::Store(OpenError::Archive(e));
        match Self::open_dir_from_snapshot(dir, options, &keys, manifest) {
            Ok(Some(opened)) => return Ok(opened),
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(dir = %dir.display(), %reason, "ledger snapshot not used; rebuilding from every segment");
            }
        }
        let start = match manifest {
            // Archived records are not read: the rebuild starts from the snapshot of them
            // the manifest names, which must be intact (nothing else holds their index).
            Some(manifest) => {
                let base = archive::load_base_snapshot(dir, manifest).map_err(archived)?;
                Self::start_from(&base, &keys).map_err(|e| {
                    archived(archive::ArchiveError::Mismatch {
                        range: manifest.base_snapshot.file.clone(),
                        reason: e,
                    })
                })?
            }
            None => Start::empty(keys, Expected::Bytes(segment_bytes_on_disk(dir))),
        };
        Self::open_dir_scanning(dir, options, start, None)
    }

    /// Opens data directory `dir`, whose records below the archive boundary are archived,
    /// from `base`, the snapshot of those records, reading every live record (never from
    /// `ledger.snap`): what `govern verify` checks the live records with.
    pub(crate) fn open_dir_at_boundary(
        dir: &Path,
        options: SegmentOptions,
        base: &Loaded,
    ) -> Result<(Self, OpenReport), OpenDirError> {
        let start = Self::start_from(base, &KeyHasher::default()).map_err(|reason| {
            OpenDirError::Store(OpenError::Archive(archive::ArchiveError::Mismatch {
                range: "the archive's base snapshot".into(),
                reason,
            }))
        })?;
        Self::open_dir_scanning(dir, options, start, None)
    }

    /// Where a rebuild from `snapshot` starts: its index (every list loaded), head and
    /// frontier.
    fn start_from(snapshot: &Loaded, keys: &KeyHasher) -> Result<Start, String> {
        Ok(Start {
            index: Building::seeded(snapshot.to_index(keys.clone()).map_err(|e| e.to_string())?),
            head: Head { next_seq: snapshot.records, last_hash: snapshot.last_hash },
            frontier: snapshot.frontier().map_err(|e| e.to_string())?,
            paged: None,
        })
    }

    /// Where a rebuild from `snapshot` (read through `file`) starts when the index pages
    /// from it: its tenants' lists, head and frontier, and no resource list; the records
    /// after it are indexed on their own and joined to their keys' lists in the snapshot
    /// once read ([`PagedStart::attach`]).
    fn start_paged(
        snapshot: Loaded,
        file: std::fs::File,
        keys: &KeyHasher,
    ) -> Result<Start, String> {
        let tenants = snapshot.tenants().map_err(|e| e.to_string())?;
        let names = tenants.iter().map(|(id, _)| Box::<str>::from(id.as_str())).collect();
        let frontier = snapshot.frontier().map_err(|e| e.to_string())?;
        let head = Head { next_seq: snapshot.records, last_hash: snapshot.last_hash };
        // Only how many receipts each tenant has in the snapshot: its list is rebuilt from
        // the snapshot's KEYS blocks when a read needs it (see `tenants`).
        let tenants =
            tenants.into_iter().map(|(id, list)| (id, TenantList::paged(list.list().len())));
        let index = Index::new(keys.clone(), Resources::default(), tenants.collect());
        let mut index = Building::seeded(index);
        index.starts = Some(Starts::default());
        Ok(Start { index, head, frontier, paged: Some(PagedStart { snapshot, file, names }) })
    }

    /// Opens from the snapshot: `Ok(None)` without one; an error (to log, then open from
    /// every record) for a snapshot that is damaged or does not match the records, and for
    /// any failure on the way: the open from every record then reports what is wrong with
    /// the records themselves, as it would have without a snapshot.
    fn open_dir_from_snapshot(
        dir: &Path,
        options: SegmentOptions,
        keys: &KeyHasher,
        manifest: Option<&Manifest>,
    ) -> Result<Option<(Self, OpenReport)>, String> {
        let Some((snapshot, file)) =
            Loaded::read_open(&dir.join(SNAPSHOT_FILE)).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let records = snapshot.records;
        // Its last record is checked against the records, unless it is the last archived
        // one: then against the manifest (the first live record's link checks it too).
        let last_hash = match manifest {
            Some(m) if snapshot.records < m.boundary => {
                return Err(format!(
                    "it covers {} records, fewer than the {} archived",
                    snapshot.records, m.boundary
                ));
            }
            Some(m) if snapshot.records == m.boundary => {
                if snapshot.last_hash != m.boundary_hash {
                    return Err("its last hash is not the archive boundary's".into());
                }
                None
            }
            _ => Some(snapshot.last_hash),
        };
        let start = Self::start_paged(snapshot, file, keys)?;
        let opened = Self::open_dir_scanning(dir, options, start, last_hash);
        let (ledger, mut report) = opened.map_err(|e| e.to_string())?;
        report.snapshot = Some(records);
        ledger.snapshotted.store(records, std::sync::atomic::Ordering::Release);
        Ok(Some((ledger, report)))
    }

    /// Opens the store in `dir`, rebuilding the ledger from `start` with the records the
    /// store's scan hands over. With a snapshot's start, `last_hash` is the hash its last
    /// record must end with (checked once the store is open).
    fn open_dir_scanning(
        dir: &Path,
        options: SegmentOptions,
        start: Start,
        last_hash: Option<Digest>,
    ) -> Result<(Self, OpenReport), OpenDirError> {
        let from = start.head.next_seq;
        let mut start = start;
        let paged = start.paged.take();
        std::thread::scope(|s| {
            let (segment_tx, segment_rx) = mpsc::sync_channel::<Scanned>(SCAN_BUFFERS - 1);
            let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(SCAN_BUFFERS);
            let rebuilt = s.spawn(move || {
                rebuild(start, true, |visit| read_scanned(&segment_rx, &spare_tx, visit))
            });
            let mut buffers = 1;
            // Sealed segments wholly inside a snapshot are not read (their frame offsets come
            // from their index files): the records a rebuild needs start at `from`.
            let opened = SegmentStore::open_scanning_from(
                dir,
                options,
                from,
                &mut |first, bytes, offsets| {
                    let spare = if buffers < SCAN_BUFFERS {
                        buffers += 1;
                        Vec::new()
                    } else {
                        // The rebuild is done with an earlier segment: read into its buffer.
                        spare_rx.recv().unwrap_or_default()
                    };
                    let scanned = std::mem::replace(bytes, spare);
                    // A send fails only if the rebuild is gone; joining it reports why.
                    let _ = segment_tx.send((first, scanned, offsets.to_vec()));
                },
            );
            drop(segment_tx);
            let rebuilt = rebuilt.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            let (store, report) = opened?;
            let rebuilt = rebuilt.map_err(|refusal| refusal.named(&store))?;
            let len = store.len();
            if let Some(expected) = last_hash {
                check_end(store.len(), from, expected, |seq| read_one(&store, seq)).map_err(
                    |e| LedgerError::Corrupt { seq: from.saturating_sub(1), reason: e.to_string() },
                )?;
            }
            rebuilt.check_len(len)?;
            let mut rebuilt = rebuilt;
            if let Some(paged) = paged {
                let starts = rebuilt.starts.take().unwrap_or_default();
                let index = std::mem::take(&mut rebuilt.index);
                rebuilt.index = paged.attach(index, starts).map_err(|reason| {
                    LedgerError::Corrupt { seq: from.saturating_sub(1), reason }
                })?;
            }
            Ok((rebuilt.into_ledger(Box::new(store), true, len), report))
        })
    }
}

/// The bytes of the segment files in data directory `dir` (0 if they cannot be listed): a
/// hint for presizing the index, nothing is checked here.
fn segment_bytes_on_disk(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir.join(SEGMENTS_DIR)) else { return 0 };
    entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

/// The records of the scanned segments as they come, handed to `visit`; every buffer goes
/// back to the scan once the chain thread is done with it too. After `visit` breaks or a frame is out of place, the rest is only
/// drained, so that the scan finishes (and reports any damage of its own first).
fn read_scanned(
    segments: &mpsc::Receiver<Scanned>,
    spares: &mpsc::SyncSender<Vec<u8>>,
    visit: &mut Visit<'_>,
) -> Result<(), LedgerError> {
    let mut result = Ok(ControlFlow::Continue(()));
    for (first, bytes, offsets) in segments {
        let segment = Arc::new(Segment { bytes, home: spares.clone() });
        if matches!(result, Ok(ControlFlow::Continue(()))) {
            result = visit_frames(first, &segment, &offsets, visit);
        }
    }
    result.map(drop)
}

/// Hands the payload of every frame of one scanned segment (frames at `offsets`, the first
/// of sequence number `first`, each checked by the scan) to `visit`.
fn visit_frames(
    first: u64,
    segment: &Arc<Segment>,
    offsets: &[u32],
    visit: &mut Visit<'_>,
) -> Result<ControlFlow<()>, LedgerError> {
    let bytes = &segment.bytes[..];
    for (seq, &at) in (first..).zip(offsets) {
        let at = at as usize;
        let outside = || StoreError::Corrupt(format!("record {seq}: frame outside its segment"));
        let header = bytes.get(at..at + FRAME_HEADER_LEN).ok_or_else(outside)?;
        let payload_len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let start = at + FRAME_HEADER_LEN;
        let end = start + payload_len as usize;
        if bytes.get(start..end).is_none() {
            return Err(outside().into());
        }
        if visit(seq, Record::Framed(segment, start, end)).is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Where a rebuild starts: from nothing, or from a snapshot of the first `head.next_seq`
/// records (records before those are skipped when the source hands them over).
struct Start {
    index: Building,
    head: Head,
    frontier: MerkleFrontier,
    /// The snapshot the index is to page from, when it does.
    paged: Option<PagedStart>,
}

impl Start {
    fn empty(keys: KeyHasher, expected: Expected) -> Self {
        Self {
            index: Building::new(keys, expected),
            head: Head::GENESIS,
            frontier: MerkleFrontier::new(),
            paged: None,
        }
    }
}

/// The snapshot an open pages the index from: read whole (checked as the lists are walked),
/// the file it was read through, and its tenants' ids by index.
struct PagedStart {
    snapshot: Loaded,
    file: std::fs::File,
    names: Vec<Box<str>>,
}

impl PagedStart {
    /// Turns the index of the records after the snapshot (`index`, whose lists hold those
    /// records only, each key's first `resource_seq` in `starts`) into the paged index: the
    /// snapshot's key lists walked once and checked (sorted, well-formed, every record below
    /// its length in exactly one), each key of the tail joined to its list there, which
    /// must hold as many numbers as the key's first record after it says; a key of the tail
    /// not in the snapshot must start at 0. Nothing else is kept.
    fn attach(self, mut index: Index, mut starts: Starts) -> Result<Index, String> {
        let Self { snapshot, file, names } = self;
        let names: Vec<&str> = names.iter().map(|n| &**n).collect();
        let keys = index.keys.clone();
        let (keys_at, keys_len) = snapshot.span(2);
        let mut paged = super::paged::Paged::from_bytes(
            file,
            snapshot.records,
            (keys_at, keys_len),
            snapshot.section(1),
            snapshot.section(3),
        )
        .map_err(|e| e.to_string())?;
        snapshot
            .for_each_key(&names, |entry, list| {
                let tenant = names.get(entry.tenant as usize).copied().unwrap_or_default();
                let hash = keys.hash(tenant, entry.kind, entry.resource);
                paged.add_key(hash);
                let Some(tail) = index.resources.shards[hash.shard()].get_mut(&hash) else {
                    return Ok(());
                };
                // Removed once joined: a second key of the snapshot under the same hash
                // (see `KeyHash`) finds none and is refused.
                let damaged = |what: String| super::snapshot::SnapshotError::Mismatch(what);
                let start = starts.remove(&hash).ok_or_else(|| {
                    damaged(format!("{tenant}/{}/{}: its hash is another key's", entry.kind, entry.resource))
                })?;
                if start != list.len() {
                    return Err(damaged(format!(
                        "{tenant}/{}/{}: {} receipts in the snapshot, the next one after it is number {start}",
                        entry.kind, entry.resource, list.len()
                    )));
                }
                let mut joined = list;
                for seq in tail.iter() {
                    joined.push(seq);
                }
                *tail = joined;
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        if let Some((_, start)) = starts.iter().find(|&(_, &start)| start != 0) {
            return Err(format!(
                "a resource not in the snapshot has its first receipt after it numbered {start}"
            ));
        }
        index.paged = Some(paged);
        Ok(index)
    }
}

/// The `resource_seq` of each key's first record after the snapshot an open pages from.
#[allow(clippy::disallowed_types, reason = "lookup only; checked for any non-zero value")]
type Starts =
    std::collections::HashMap<KeyHash, u64, std::hash::BuildHasherDefault<super::PassThrough>>;

/// Rebuilds the index, the chain head and (if `durable`) the Merkle frontier from the
/// records `source` hands over: this thread reads and indexes them, the chain and tree
/// threads verify them. The first bad record is reported, whichever thread finds it.
fn rebuild(
    start: Start,
    durable: bool,
    source: impl FnOnce(&mut Visit<'_>) -> Result<(), LedgerError>,
) -> Result<Rebuilt, Refusal> {
    let Start { index, head, frontier, paged: _ } = start;
    let (indexed, chained) = std::thread::scope(|s| {
        let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(2);
        let (spare_tx, spare_rx) = mpsc::sync_channel::<Batch>(4);
        let chain = s.spawn(move || chain_pass(&batch_rx, &spare_tx, durable, head, frontier));
        let indexed = index_pass(source, index, head.next_seq, &batch_tx, &spare_rx);
        drop(batch_tx);
        let chained = chain.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (indexed, chained)
    });
    match (indexed, chained) {
        (Ok((index, starts, records)), Ok((head, frontier))) => {
            Ok(Rebuilt { index, starts, head, frontier, records })
        }
        (Err(e), Ok(_)) => Err(e),
        (indexed, Err(chain)) => Err(first_error(indexed.err(), chain)),
    }
}

/// Why a rebuild refused the records: an error, or a break in a resource's numbering that
/// the index found. The index keeps no ids, so the receipt is read again from the store to
/// name its resource ([`Self::named`]).
#[derive(Debug)]
enum Refusal {
    /// The first problem, named.
    Error(LedgerError),
    /// Receipt `seq` carries another `resource_seq` than `expected`, the number of earlier
    /// receipts of its resource.
    Gap { seq: u64, expected: u64 },
}

impl From<LedgerError> for Refusal {
    fn from(e: LedgerError) -> Self {
        Self::Error(e)
    }
}

impl Refusal {
    /// The record named, if one is.
    fn seq(&self) -> Option<u64> {
        match self {
            Self::Error(e) => e.seq(),
            Self::Gap { seq, .. } => Some(*seq),
        }
    }

    /// The error, a break in a resource's numbering named by its receipt in `store`.
    fn named(self, store: &dyn LedgerStore) -> LedgerError {
        let (seq, expected) = match self {
            Self::Error(e) => return e,
            Self::Gap { seq, expected } => (seq, expected),
        };
        let mut record = Vec::new();
        match store.read(seq, &mut record) {
            Ok(true) => match Receipt::decode_key(&record) {
                Ok(key) => ChainError::resource_seq_gap(seq, &key, expected).into(),
                // It decoded when it was indexed; a store that changes under us is corrupt.
                Err(source) => ChainError::Malformed { seq, source }.into(),
            },
            Ok(false) => LedgerError::Corrupt { seq, reason: "missing".into() },
            Err(e) => e.into(),
        }
    }
}

/// The refusal to report when the chain thread failed: the reading thread's if it names an
/// earlier record (a store failure comes after every record the chain thread got). For the
/// same record, the chain's: its place in the chain is checked before its fields and its
/// numbering, as `govern verify` checks them.
fn first_error(indexed: Option<Refusal>, chain: LedgerError) -> Refusal {
    match (indexed, chain.seq()) {
        (Some(indexed), Some(at)) if indexed.seq().is_some_and(|seq| seq < at) => indexed,
        _ => Refusal::Error(chain),
    }
}

/// The tenants' lists while opening, looked up by the tenant id as stored (without allocating
/// an id per record).
#[allow(clippy::disallowed_types, reason = "lookup only; turned into the index at the end")]
type Tenants =
    std::collections::HashMap<Box<str>, (TenantId, TenantList), foldhash::fast::RandomState>;

/// Keys sorted out by shard before they go into the index: this many in all (a few in
/// tests, so that reopening them flushes, presizes and shrinks).
const PENDING: usize = if cfg!(test) { 64 } else { 1 << 18 };

/// The index being built.
struct Building {
    keys: KeyHasher,
    resources: Resources,
    tenants: Tenants,
    /// (key, sequence number, `resource_seq`) of records not yet in `resources`, by shard:
    /// each table gets its keys in a burst (see `Resources`).
    pending: Vec<Vec<(KeyHash, u64, u64)>>,
    /// How many are pending.
    pending_len: usize,
    /// How many records are coming, and how many have been indexed.
    expected: Expected,
    indexed: u64,
    /// The bytes of the frames of the records indexed (headers included).
    frame_bytes: u64,
    /// Whether the shards were presized (at the first flush).
    presized: bool,
    /// The first record put in the index whose `resource_seq` is not the length of its
    /// resource's list before it, with that length: (sequence number, expected).
    gap: Option<(u64, u64)>,
    /// When the index is to page from the snapshot the rebuild starts from: the lists hold
    /// the records after it only, and each key's first `resource_seq` is kept here (its
    /// receipts in the snapshot, checked when the lists are joined to the snapshot's).
    starts: Option<Starts>,
}

impl Building {
    fn new(keys: KeyHasher, expected: Expected) -> Self {
        Self {
            keys,
            resources: Resources::default(),
            tenants: Tenants::default(),
            pending: vec![Vec::new(); KeyHash::SHARDS],
            pending_len: 0,
            expected,
            indexed: 0,
            frame_bytes: 0,
            presized: false,
            gap: None,
            starts: None,
        }
    }

    /// The index of a snapshot, to continue with the records after it.
    fn seeded(index: Index) -> Self {
        let Index { keys, resources, tenants, .. } = index;
        let tenants = tenants
            .into_iter()
            .map(|(id, list)| (Box::<str>::from(id.as_str()), (id, list)))
            .collect();
        Self {
            keys,
            resources,
            tenants,
            presized: true,
            ..Self::new(KeyHasher::default(), Expected::Records(0))
        }
    }

    fn push(&mut self, key: KeyHash, seq: u64, resource_seq: u64) {
        if let Some(shard) = self.pending.get_mut(key.shard()) {
            shard.push((key, seq, resource_seq));
        }
        self.pending_len += 1;
        if self.pending_len == PENDING {
            self.flush();
        }
    }

    /// Puts the pending keys into the index, shard by shard, each in the order it came (so
    /// every list gets its numbers in increasing order), checking each record's
    /// `resource_seq` against the length of its resource's list (see `gap`).
    fn flush(&mut self) {
        for (i, pending) in self.pending.iter_mut().enumerate() {
            if let Some(shard) = self.resources.shards.get_mut(i) {
                for (key, seq, resource_seq) in pending.drain(..) {
                    let list = shard.entry(key).or_default();
                    let mut expected = list.len();
                    if let Some(starts) = &mut self.starts {
                        expected += *starts.entry(key).or_insert(resource_seq);
                    }
                    if resource_seq != expected && self.gap.is_none_or(|(at, _)| seq < at) {
                        self.gap = Some((seq, expected));
                    }
                    list.push(seq);
                }
            }
        }
        self.indexed += self.pending_len as u64;
        self.pending_len = 0;
        if !self.presized {
            self.presize();
        }
    }

    /// Sizes every shard for the keys still to come, at the rate of new keys per record seen
    /// in the first batch, so that the tables do not grow by rehashing (and touching fresh
    /// pages) again and again. A rate that overestimates (keys repeating only beyond the
    /// first batch) is corrected in [`Self::finish`].
    fn presize(&mut self) {
        self.presized = true;
        let keys: usize = self.resources.shards.iter().map(Shard::len).sum();
        let expected = expected_keys(keys, self.indexed, self.frame_bytes, self.expected);
        let more = expected.saturating_sub(keys);
        for shard in self.resources.shards.iter_mut() {
            shard.reserve(more / KeyHash::SHARDS);
        }
    }

    fn finish(mut self) -> (Index, Option<Starts>) {
        self.flush();
        for shard in self.resources.shards.iter_mut() {
            // A table that grew by itself is at least half full.
            if shard.len() < shard.capacity() / 8 * 3 {
                shard.shrink_to_fit();
            }
        }
        let tenants = self.tenants.into_values().collect();
        (Index::new(self.keys, self.resources, tenants), self.starts)
    }
}

/// The reading thread: takes every record from `source`, checks its form, indexes it and
/// hands it on to the chain thread in batches. Returns the index and the records read, or
/// the first record that does not decode or breaks its resource's numbering.
fn index_pass(
    source: impl FnOnce(&mut Visit<'_>) -> Result<(), LedgerError>,
    mut index: Building,
    from: u64,
    batches: &mpsc::SyncSender<Batch>,
    spares: &mpsc::Receiver<Batch>,
) -> Result<(Index, Option<Starts>, u64), Refusal> {
    let mut batch = Batch::default();
    let mut next = from;
    let mut failed = None;
    let read = source(&mut |seq, record| {
        if seq < from {
            // In the snapshot the rebuild started from.
            return ControlFlow::Continue(());
        }
        let bytes = match record {
            Record::Copied(bytes) => bytes,
            Record::Framed(segment, start, end) => {
                segment.bytes.get(start..end).unwrap_or_default()
            }
        };
        if seq != next {
            let reason = format!("the store handed over record {seq} instead");
            failed = Some(LedgerError::Corrupt { seq: next, reason });
            return ControlFlow::Break(());
        }
        let indexed = index_record(&mut index, seq, bytes);
        index.frame_bytes += (FRAME_HEADER_LEN + bytes.len()) as u64;
        // The chain thread gets every record read, the one that fails here too: its place in
        // the chain is checked first (as `govern verify` checks it), and a chain error there
        // is the one reported (see `first_error`).
        let full = batch.push(record, spares);
        next += 1;
        let full = full.or_else(|| {
            (batch.len >= BATCH_BYTES).then(|| std::mem::replace(&mut batch, spare(spares)))
        });
        // A send fails only if the chain thread stopped at a bad record: that is reported.
        if full.is_some_and(|full| batches.send(full).is_err()) {
            return ControlFlow::Break(());
        }
        if let Err(e) = indexed {
            failed = Some(e);
            return ControlFlow::Break(());
        }
        if index.gap.is_some() {
            // Found at a flush: every record up to this one is in the index.
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if !batch.spans.is_empty() {
        let _ = batches.send(batch);
    }
    read?;
    // The records indexed but not yet flushed are checked too. A record that failed is the
    // last one read and is not in the index: a break in a resource's numbering, which is in
    // an earlier record, is the one to report.
    index.flush();
    if let Some((seq, expected)) = index.gap {
        return Err(Refusal::Gap { seq, expected });
    }
    match failed {
        Some(e) => Err(e.into()),
        None => {
            let (index, starts) = index.finish();
            Ok((index, starts, next))
        }
    }
}

/// Checks the form of record `seq` and adds it to the index.
fn index_record(index: &mut Building, seq: u64, record: &[u8]) -> Result<(), LedgerError> {
    let malformed = |source| LedgerError::Chain(ChainError::Malformed { seq, source });
    let key = Receipt::decode_key(record).map_err(malformed)?;
    let (_, tenant) = match index.tenants.get_mut(key.tenant) {
        Some(tenant) => tenant,
        None => {
            let (id, _) = key.ids().map_err(malformed)?;
            index.tenants.entry(key.tenant.into()).or_insert((id, TenantList::default()))
        }
    };
    tenant.push(seq);
    let hash = index.keys.hash(key.tenant, key.governor, key.resource);
    index.push(hash, seq, key.resource_seq);
    Ok(())
}

/// The chain thread: checks each record's place in the chain and, for a durable store, hands
/// the receipt hashes to the tree thread. Returns the head and the frontier.
fn chain_pass(
    batches: &mpsc::Receiver<Batch>,
    spares: &mpsc::SyncSender<Batch>,
    durable: bool,
    head: Head,
    frontier: MerkleFrontier,
) -> Chained {
    let (hash_tx, hash_rx) = mpsc::sync_channel::<Vec<Digest>>(16);
    std::thread::scope(|s| {
        let tree = durable.then(|| {
            s.spawn(move || {
                let mut frontier = frontier;
                for batch in hash_rx {
                    for hash in &batch {
                        frontier.push(hash);
                    }
                }
                frontier
            })
        });
        let head = chain_batches(batches, spares, durable.then_some(&hash_tx), head);
        drop(hash_tx);
        let frontier = match tree {
            Some(tree) => tree.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => MerkleFrontier::new(),
        };
        head.map(|head| (head, frontier))
    })
}

/// Pushes every record of every batch onto the chain, stopping at the first bad one.
fn chain_batches(
    batches: &mpsc::Receiver<Batch>,
    spares: &mpsc::SyncSender<Batch>,
    tree: Option<&mpsc::SyncSender<Vec<Digest>>>,
    head: Head,
) -> Result<Head, LedgerError> {
    let mut chain = ChainVerifier::resume(head);
    let mut hashes = Vec::new();
    for batch in batches {
        for record in batch.records() {
            let hash = chain.push_record(record)?;
            if let Some(tree) = tree {
                if hashes.capacity() == 0 {
                    hashes.reserve_exact(HASH_BATCH);
                }
                hashes.push(hash);
                if hashes.len() == HASH_BATCH {
                    // A send fails only if the tree thread panicked; joining it reports that.
                    let _ = tree.send(std::mem::take(&mut hashes));
                }
            }
        }
        let mut batch = batch;
        // Its segment, if any, goes back to the scan (once the reading thread is done too).
        batch.clear();
        // The reading thread may have made a new batch already; then this one is dropped.
        let _ = spares.try_send(batch);
    }
    if let Some(tree) = tree.filter(|_| !hashes.is_empty()) {
        let _ = tree.send(hashes);
    }
    Ok(chain.head())
}

#[cfg(test)]
mod tests;
