//! Where receipt records live. The runtime sees only this trait; backends (memory here, the
//! durable segment store later, a server database some day) stay behind it.
//!
//! # Reading beside the writer
//!
//! The ledger calls a store under its lock, but reads only *locate* records there
//! ([`LedgerStore::locate`], [`LedgerStore::locate_range`]): the store hands back a
//! [`Located`] holding what the reads need and nothing of the store itself, and the ledger
//! reads and decodes the records after it released the lock, while appends go on. A store
//! decides what to copy: where the records it has *published* are (the memory store's
//! sealed chunks, shared immutably; the segment store's frames written to their files, read
//! through read-only handles of its own), and the bytes of the few it has not (the memory
//! store's open chunk, the segment store's unwritten buffer). The default copies every record
//! under the lock, as a store without a read side of its own must.

use std::ops::{ControlFlow, Range};
use std::sync::Arc;

/// A store failure. After one, the ledger is poisoned: it refuses every further append.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend's I/O failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// A record was appended out of order.
    #[error("record {found} appended where {expected} was due")]
    OutOfOrder {
        /// The next sequence number the store expected.
        expected: u64,
        /// The sequence number given.
        found: u64,
    },
    /// Stored data does not decode or verify.
    #[error("corrupt store: {0}")]
    Corrupt(String),
}

/// The durable-making half of a group commit: what [`LedgerStore::begin_sync`] leaves to do
/// without the ledger's lock (typically one `fdatasync`).
pub struct SyncJob {
    /// The records the commit covers: durable once the job succeeds.
    upto: u64,
    /// The work, if any is left.
    work: Option<Box<dyn FnOnce() -> Result<(), StoreError> + Send>>,
}

impl std::fmt::Debug for SyncJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncJob")
            .field("upto", &self.upto)
            .field("work", &self.work.is_some())
            .finish()
    }
}

impl SyncJob {
    /// A commit with nothing left to do: the first `upto` records are durable already.
    #[must_use]
    pub fn done(upto: u64) -> Self {
        Self { upto, work: None }
    }

    /// A commit of the first `upto` records that `work` makes durable.
    pub fn new(upto: u64, work: impl FnOnce() -> Result<(), StoreError> + Send + 'static) -> Self {
        Self { upto, work: Some(Box::new(work)) }
    }

    /// The records the commit covers.
    #[must_use]
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// Runs the work (blocking: an `fdatasync`).
    ///
    /// # Errors
    /// The work's failure.
    pub fn run(self) -> Result<(), StoreError> {
        self.work.map_or(Ok(()), |work| work())
    }
}

/// A whole [`LedgerStore::sync`] of a store that commits in two phases: its
/// [`LedgerStore::begin_sync`], the job, then its [`LedgerStore::end_sync`] with the job's
/// result; what such a store's `sync` is (the trait's defaults go the other way: a store
/// implements `sync`, or the two phases and `sync` by this).
///
/// # Errors
/// The first phase's failure, or the job's as [`LedgerStore::end_sync`] reports it.
pub fn sync_by_phases<S: LedgerStore + ?Sized>(store: &mut S) -> Result<(), StoreError> {
    let job = store.begin_sync()?;
    let upto = job.upto();
    let result = job.run();
    store.end_sync(upto, result)
}

/// A sealed segment of a store of segment files ([`LedgerStore::sealed_segments`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSegment {
    /// Its file name in `segments/`.
    pub name: String,
    /// Its first record.
    pub first_seq: u64,
    /// The record after its last.
    pub end_seq: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// An append-only sequence of receipt records, addressed by sequence number from 0.
pub trait LedgerStore: Send + Sync + 'static {
    /// Appends the record of receipt `seq`, which must equal [`Self::len`]. May buffer:
    /// the record is durable only once [`Self::sync`] returns.
    ///
    /// # Errors
    /// [`StoreError`]; the ledger then refuses all further appends.
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError>;

    /// Makes every appended record durable.
    ///
    /// # Errors
    /// [`StoreError`]; the ledger then refuses all further appends.
    fn sync(&mut self) -> Result<(), StoreError>;

    /// Whether [`Self::sync`] makes records survive the process: only then do callers wait
    /// for a commit before they are acknowledged. The memory store is not durable.
    fn is_durable(&self) -> bool {
        false
    }

    /// Phase one of a group commit, under the ledger's lock: hands every appended record to
    /// the backend's writer and returns the job that makes them durable. The job runs
    /// without the lock, while appends and reads go on; then [`Self::end_sync`] is called
    /// with its result. Commits never overlap. The default does a whole [`Self::sync`] here.
    ///
    /// # Errors
    /// [`StoreError`]; the ledger then refuses all further appends.
    fn begin_sync(&mut self) -> Result<SyncJob, StoreError> {
        self.sync()?;
        Ok(SyncJob::done(self.len()))
    }

    /// Phase two of a group commit, under the ledger's lock: the job's `result` for the
    /// first `upto` records.
    ///
    /// # Errors
    /// [`StoreError`] (the job's failure); the ledger then refuses all further appends.
    fn end_sync(&mut self, upto: u64, result: Result<(), StoreError>) -> Result<(), StoreError> {
        let _ = upto;
        result
    }

    /// Lets go of what the store holds for its writer, so that another writer may open its
    /// data directory while this process still holds handles to it: the segment store
    /// releases the directory's lock. Called once by [`Ledger::close`](crate::Ledger::close)
    /// (after the last commit), which refuses every later append and commit itself, before
    /// it reaches the store; a store may refuse them too (the segment store does: without
    /// the lock, its writes would no longer be safe). Reads go on. The default does nothing.
    fn close(&mut self) {}

    /// The sequence number after its last record: how many records the ledger has, those
    /// archived below [`Self::base`] included.
    fn len(&self) -> u64;

    /// The first record the store holds: 0 (the default), or the archive boundary of a data
    /// directory whose oldest segments were archived (`crate::archive`); reads of records
    /// below it find nothing.
    fn base(&self) -> u64 {
        0
    }

    /// The sealed segments (every one but the last), in order, with the records each holds:
    /// what archival may move. Empty (the default) for stores without segment files.
    fn sealed_segments(&self) -> Vec<SealedSegment> {
        Vec::new()
    }

    /// The bytes of the live segment files (0, the default, for stores without them).
    fn live_bytes(&self) -> u64 {
        0
    }

    /// Forgets the records below `boundary`, which must be the first record of a segment
    /// (their segments were archived and the manifest written): drops their positions,
    /// removes their files and index files, and reads of them find nothing from now on.
    ///
    /// # Errors
    /// [`StoreError`] when `boundary` is not a segment's start at or below the last sealed
    /// one's end, or the store cannot archive (the default).
    fn retire_below(&mut self, boundary: u64) -> Result<(), StoreError> {
        Err(StoreError::Io(format!("this store cannot archive (asked to retire below {boundary})")))
    }

    /// Whether the store is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Caches at most `bytes` of sealed segments' frame offsets (a store that pages them,
    /// as the segment store does; others ignore it).
    fn set_offsets_budget(&self, bytes: usize) {
        let _ = bytes;
    }

    /// Heap bytes the store keeps in memory, for memory accounting: the records themselves for
    /// the memory store, the per-record index and unsynced buffer for the segment store.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Copies the record of receipt `seq` into `out` (cleared first); `false` if absent.
    ///
    /// # Errors
    /// [`StoreError`] when the backend cannot read it.
    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError>;

    /// Where record `seq`'s frame is, for a store of segment files: the first record of its
    /// segment and the frame's byte offset there. `None` (the default) for other stores, or
    /// a record not yet written to its file.
    fn position(&self, _seq: u64) -> Option<(u64, u64)> {
        None
    }

    /// Under the ledger's lock, the first half of a read that ends without it: where records
    /// `seqs` (increasing) are, for reading them after the lock is released, while appends go
    /// on. Only what the reads need is copied: positions of published records, bytes of the
    /// others (see the module documentation); a record the store does not have is reported
    /// by the [`Located`] as absent. The default copies every record ([`Self::read`]).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot tell where a record is.
    fn locate(&self, seqs: &[u64]) -> Result<Box<dyn Located>, StoreError> {
        let mut copied = Copied::default();
        let mut record = Vec::new();
        for &seq in seqs {
            let found = self.read(seq, &mut record)?;
            copied.push(seq, found.then_some(&record[..]));
        }
        Ok(Box::new(copied))
    }

    /// Under the ledger's lock: the records `range` (cut at [`Self::len`]), in order, as
    /// [`Self::locate`] locates them, but with work under the lock that does not grow with
    /// the records published (what verification reads). The default locates each one.
    ///
    /// # Errors
    /// As [`Self::locate`].
    fn locate_range(&self, range: Range<u64>) -> Result<Box<dyn Located>, StoreError> {
        let seqs: Vec<u64> = (range.start..range.end.min(self.len())).collect();
        self.locate(&seqs)
    }

    /// Hands every record to `f`, in sequence order from 0, until `f` breaks; what opening a
    /// ledger reads. It stops early, without an error, at the first record the store does not
    /// have (callers compare how many they got with [`Self::len`]). The default reads one
    /// record at a time with [`Self::read`]; a store that can read in bulk overrides it.
    ///
    /// # Errors
    /// [`StoreError`] when the backend cannot read a record.
    fn for_each(&self, f: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        let mut record = Vec::new();
        for seq in 0..self.len() {
            if !self.read(seq, &mut record)? || f(seq, &record).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// A record a [`Located`] hands over: its sequence number and its bytes (`None` if the store
/// does not have it), or why it could not be read.
pub type LocatedRecord<'a> = (u64, Result<Option<&'a [u8]>, StoreError>);

/// Records located under the ledger's lock ([`LedgerStore::locate`]), read after it is
/// released. It holds what the reads need (pinned immutable chunks, file positions and a
/// read handle, copies of records not yet published), never the store, so the store takes
/// appends meanwhile.
pub trait Located: Send {
    /// The next record, in the order located. `None` after the last one; after an error a
    /// store may end early (readers stop at the first error).
    fn next_record(&mut self) -> Option<LocatedRecord<'_>>;
}

impl std::fmt::Debug for dyn Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Located")
    }
}

/// Records copied out under the ledger's lock, back to back: the default [`Located`], and
/// the part of a store's that its reader cannot reach (records not yet published).
#[derive(Debug, Default)]
pub(crate) struct Copied {
    /// The records' bytes.
    bytes: Vec<u8>,
    /// Each record: its sequence number and its span in `bytes` (`None`: absent).
    records: Vec<(u64, Option<(usize, usize)>)>,
    /// The next record to hand over.
    next: usize,
}

impl Copied {
    /// Adds record `seq`: a copy of `record`, or absent.
    pub(crate) fn push(&mut self, seq: u64, record: Option<&[u8]>) {
        let span = record.map(|r| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(r);
            (start, self.bytes.len())
        });
        self.records.push((seq, span));
    }

    /// The `i`th record added: its sequence number and bytes (`None`: absent).
    pub(crate) fn get(&self, i: usize) -> Option<(u64, Option<&[u8]>)> {
        let &(seq, span) = self.records.get(i)?;
        Some((seq, span.map(|(start, end)| self.bytes.get(start..end).unwrap_or_default())))
    }

    /// How many records were added.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

impl Located for Copied {
    fn next_record(&mut self) -> Option<LocatedRecord<'_>> {
        let i = self.next;
        self.next += 1;
        let &(seq, span) = self.records.get(i)?;
        let record = span.map(|(start, end)| self.bytes.get(start..end).unwrap_or_default());
        Some((seq, Ok(record)))
    }
}

/// The bytes of records the memory store puts in one chunk (at least one record each).
const CHUNK_BYTES: usize = 1 << 20;

/// Consecutive records of the memory store, back to back. Sealed once full, and from then on
/// immutable and shared with readers (`Arc`): a read that located records in it reads them
/// without the store.
#[derive(Debug, Default)]
struct Chunk {
    /// The sequence number of its first record.
    first_seq: u64,
    /// The records.
    bytes: Vec<u8>,
    /// Where each record starts in `bytes`; one ends where the next starts, the last at the
    /// end of `bytes`.
    starts: Vec<u32>,
}

impl Chunk {
    fn new(first_seq: u64) -> Self {
        Self { first_seq, bytes: Vec::new(), starts: Vec::new() }
    }

    /// How many records it holds.
    fn len(&self) -> u64 {
        self.starts.len() as u64
    }

    /// The sequence number after its last record.
    fn end_seq(&self) -> u64 {
        self.first_seq + self.len()
    }

    /// Record `seq`, if it holds it.
    fn record(&self, seq: u64) -> Option<&[u8]> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        let start = *self.starts.get(i)? as usize;
        let end = self.starts.get(i + 1).map_or(self.bytes.len(), |&e| e as usize);
        self.bytes.get(start..end)
    }

    /// A copy of the records `from..` (all that it holds from there).
    fn copy_from(&self, from: u64) -> Self {
        let i = usize::try_from(from.saturating_sub(self.first_seq)).unwrap_or(usize::MAX);
        let Some(&start) = self.starts.get(i) else { return Self::new(self.end_seq()) };
        let bytes = self.bytes.get(start as usize..).unwrap_or_default().to_vec();
        let starts = self.starts.get(i..).unwrap_or_default().iter().map(|&s| s - start).collect();
        Self { first_seq: self.first_seq + i as u64, bytes, starts }
    }

    /// Heap bytes it holds, itself included when sealed (`Arc` counts included).
    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.starts.capacity() * size_of::<u32>()
    }
}

/// Records in memory, in chunks of about 1 MiB: the open chunk takes appends;
/// full, it is sealed and shared with readers ([`Located`]) as it is, without a copy. Nothing
/// survives the process; `sync` is a no-op. The default for tests and benchmarks of the
/// runtime.
///
/// Chunks are filled to their size, not grown by doubling: the store holds its records plus
/// less than one record of slack per chunk and 4 bytes per record of offsets.
#[derive(Debug)]
pub struct MemoryStore {
    /// Full chunks, in order.
    sealed: Vec<Arc<Chunk>>,
    /// The chunk taking appends: its records are copied out for readers.
    open: Chunk,
    /// The size of a chunk.
    chunk_bytes: usize,
    /// Bytes of records held.
    bytes: usize,
    /// Heap bytes of the sealed chunks.
    sealed_heap: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_chunk_bytes(CHUNK_BYTES)
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store sealing chunks of `chunk_bytes` (tests: chunks of a few records).
    pub(crate) fn with_chunk_bytes(chunk_bytes: usize) -> Self {
        Self {
            sealed: Vec::new(),
            open: Chunk::new(0),
            chunk_bytes: chunk_bytes.max(1),
            bytes: 0,
            sealed_heap: 0,
        }
    }

    /// Bytes of the records held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The chunk holding record `seq`, if any.
    fn chunk_of(&self, seq: u64) -> Option<&Chunk> {
        if seq >= self.open.first_seq {
            return (seq < self.open.end_seq()).then_some(&self.open);
        }
        let i = self.sealed.partition_point(|c| c.first_seq <= seq).checked_sub(1)?;
        self.sealed.get(i).map(|c| &**c)
    }

    /// Seals the open chunk: it becomes immutable and shareable as it is.
    fn seal(&mut self) {
        let next = Chunk::new(self.open.end_seq());
        let mut full = std::mem::replace(&mut self.open, next);
        full.starts.shrink_to_fit();
        self.sealed_heap += full.heap_bytes() + size_of::<Chunk>() + 2 * size_of::<usize>();
        self.sealed.push(Arc::new(full));
    }
}

impl LedgerStore for MemoryStore {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        if seq != self.len() {
            return Err(StoreError::OutOfOrder { expected: self.len(), found: seq });
        }
        if !self.open.starts.is_empty() && self.open.bytes.len() + record.len() > self.chunk_bytes {
            self.seal();
        }
        if self.open.bytes.capacity() == 0 {
            // Its whole size at once: a chunk never grows by copying itself.
            self.open.bytes.reserve_exact(self.chunk_bytes.max(record.len()));
        }
        let start = u32::try_from(self.open.bytes.len())
            .map_err(|_| StoreError::Io("a memory chunk outgrew u32 offsets".into()))?;
        self.open.starts.push(start);
        self.open.bytes.extend_from_slice(record);
        self.bytes += record.len();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.open.end_seq()
    }

    fn heap_bytes(&self) -> usize {
        self.sealed_heap + self.sealed.capacity() * size_of::<Arc<Chunk>>() + self.open.heap_bytes()
    }

    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        out.clear();
        let Some(chunk) = self.chunk_of(seq) else { return Ok(false) };
        let record = chunk
            .record(seq)
            .ok_or_else(|| StoreError::Corrupt(format!("record {seq} lies outside its chunk")))?;
        out.extend_from_slice(record);
        Ok(true)
    }

    fn for_each(&self, f: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        for chunk in self.sealed.iter().map(|c| &**c).chain([&self.open]) {
            for seq in chunk.first_seq..chunk.end_seq() {
                let record = chunk.record(seq).ok_or_else(|| {
                    StoreError::Corrupt(format!("record {seq} lies outside its chunk"))
                })?;
                if f(seq, record).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Pins the sealed chunks holding the records (an `Arc` each, once per chunk) and copies
    /// those of the open chunk.
    fn locate(&self, seqs: &[u64]) -> Result<Box<dyn Located>, StoreError> {
        let mut located = MemoryLocated::default();
        for &seq in seqs {
            if seq >= self.open.first_seq {
                let i = located.copied.len();
                located.copied.push(seq, self.open.record(seq));
                located.records.push((seq, Place::Copied(i)));
                continue;
            }
            // The chunk of the record before, most often (the numbers increase).
            let pinned = located.chunks.last().filter(|c| seq >= c.first_seq && seq < c.end_seq());
            if pinned.is_none() {
                let i = self.sealed.partition_point(|c| c.first_seq <= seq);
                let chunk = i
                    .checked_sub(1)
                    .and_then(|i| self.sealed.get(i))
                    .ok_or_else(|| StoreError::Corrupt(format!("record {seq} lies in no chunk")))?;
                located.chunks.push(Arc::clone(chunk));
            }
            located.records.push((seq, Place::Chunk(located.chunks.len() - 1)));
        }
        Ok(Box::new(located))
    }

    /// Pins the sealed chunks (an `Arc` each) and copies the open chunk's records.
    fn locate_range(&self, range: Range<u64>) -> Result<Box<dyn Located>, StoreError> {
        let end = range.end.min(self.len());
        let first = self.sealed.partition_point(|c| c.end_seq() <= range.start);
        let mut chunks: Vec<Arc<Chunk>> =
            self.sealed.get(first..).unwrap_or_default().iter().map(Arc::clone).collect();
        if range.start < end && end > self.open.first_seq {
            chunks.push(Arc::new(self.open.copy_from(range.start)));
        }
        Ok(Box::new(MemoryRange { chunks, chunk: 0, seq: range.start, end }))
    }
}

/// Where a record located in the memory store is.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// In the `i`th pinned chunk.
    Chunk(usize),
    /// The `i`th copied record.
    Copied(usize),
}

/// Records located in the memory store ([`MemoryStore::locate`]).
#[derive(Debug, Default)]
struct MemoryLocated {
    /// The sealed chunks holding records, each once.
    chunks: Vec<Arc<Chunk>>,
    /// Records of the open chunk, copied.
    copied: Copied,
    /// Each record, in order.
    records: Vec<(u64, Place)>,
    /// The next record to hand over.
    next: usize,
}

impl Located for MemoryLocated {
    fn next_record(&mut self) -> Option<LocatedRecord<'_>> {
        let &(seq, place) = self.records.get(self.next)?;
        self.next += 1;
        let record = match place {
            Place::Chunk(i) => match self.chunks.get(i).and_then(|c| c.record(seq)) {
                Some(record) => Ok(Some(record)),
                None => Err(StoreError::Corrupt(format!("record {seq} lies outside its chunk"))),
            },
            Place::Copied(i) => Ok(self.copied.get(i).and_then(|(_, r)| r)),
        };
        Some((seq, record))
    }
}

/// A range of records located in the memory store ([`MemoryStore::locate_range`]): the
/// chunks holding them, the open one copied.
#[derive(Debug)]
struct MemoryRange {
    chunks: Vec<Arc<Chunk>>,
    /// The chunk holding `seq`, or one before it.
    chunk: usize,
    /// The next record to hand over.
    seq: u64,
    /// The end of the range.
    end: u64,
}

impl Located for MemoryRange {
    fn next_record(&mut self) -> Option<LocatedRecord<'_>> {
        let seq = self.seq;
        if seq >= self.end {
            return None;
        }
        self.seq += 1;
        while self.chunks.get(self.chunk).is_some_and(|c| c.end_seq() <= seq) {
            self.chunk += 1;
        }
        let record = self.chunks.get(self.chunk).and_then(|c| c.record(seq));
        Some((
            seq,
            record
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("record {seq} lies in no chunk"))),
        ))
    }
}

impl std::fmt::Debug for dyn LedgerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerStore({} records)", self.len())
    }
}
