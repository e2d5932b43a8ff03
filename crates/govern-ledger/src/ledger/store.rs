//! Where receipt records live. The runtime sees only this trait; backends (memory here, the
//! durable segment store later, a server database some day) stay behind it.

use std::ops::ControlFlow;

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

    /// How many records the store holds.
    fn len(&self) -> u64;

    /// Whether the store is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
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

/// Records in memory: one contiguous arena and an offset per record. Nothing survives the
/// process; `sync` is a no-op. The default for tests and benchmarks of the runtime.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Every record, back to back.
    arena: Vec<u8>,
    /// Where record `seq` starts in `arena`; record `seq` ends where `seq + 1` starts.
    starts: Vec<usize>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held by the arena (records only).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.arena.len()
    }
}

impl LedgerStore for MemoryStore {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        if seq != self.len() {
            return Err(StoreError::OutOfOrder { expected: self.len(), found: seq });
        }
        self.starts.push(self.arena.len());
        self.arena.extend_from_slice(record);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.starts.len() as u64
    }

    fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.starts.capacity() * std::mem::size_of::<usize>()
    }

    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        out.clear();
        let Ok(i) = usize::try_from(seq) else { return Ok(false) };
        let Some(&start) = self.starts.get(i) else { return Ok(false) };
        let end = self.starts.get(i + 1).copied().unwrap_or(self.arena.len());
        match self.arena.get(start..end) {
            Some(record) => {
                out.extend_from_slice(record);
                Ok(true)
            }
            None => Err(StoreError::Corrupt(format!("record {seq} lies outside the arena"))),
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        let ends = self.starts.iter().skip(1).copied().chain([self.arena.len()]);
        for ((seq, &start), end) in (0u64..).zip(&self.starts).zip(ends) {
            let record = self.arena.get(start..end).ok_or_else(|| {
                StoreError::Corrupt(format!("record {seq} lies outside the arena"))
            })?;
            if f(seq, record).is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for dyn LedgerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerStore({} records)", self.len())
    }
}
