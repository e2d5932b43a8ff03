//! Where receipt records live. The runtime sees only this trait; backends (memory here, the
//! durable segment store later, a server database some day) stay behind it.

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
}

impl std::fmt::Debug for dyn LedgerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerStore({} records)", self.len())
    }
}
