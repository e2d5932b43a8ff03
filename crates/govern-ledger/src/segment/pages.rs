//! The frame offsets of sealed segments, paged: a writer's store keeps resident only the
//! offsets of its last segments (4 bytes per receipt); a sealed segment's are read back from
//! its index file when one of its records is read, and kept in a cache of at most a budget
//! of bytes, the least recently used segment's evicted first. An index file that is missing
//! or does not agree with its segment (a sealed segment's index is derived data) costs a
//! scan of the segment instead, every frame checked; it is never trusted for more than where
//! frames start: every frame read is checked again (checksums, length, sequence number).
//!
//! Loading goes through the store's read side ([`SegmentRead`]), so it runs where the read
//! runs: records located under the ledger's lock whose segment's offsets are not cached are
//! resolved by whoever reads them, after the lock is released (see `read.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::idx::{self, Expected, INDEX_HEADER_LEN};
use super::{SegmentRead, sealed_frames};
use crate::ledger::StoreError;

/// The bytes of frame offsets a writer's store caches by default (the offsets of about four
/// million receipts). None in unit tests, so that every read of a sealed segment's record
/// goes through a page load.
pub const OFFSET_PAGES_BUDGET_DEFAULT: usize = if cfg!(test) { 0 } else { 16 << 20 };

/// What one cached segment costs the budget beyond its offsets: its slots in the two maps.
const PAGE_ENTRY_BYTES: usize = 96;

/// A sealed segment whose offsets are paged: what loading them needs and checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PagedSegment {
    /// Its file.
    pub(super) name: String,
    /// Its first record.
    pub(super) first_seq: u64,
    /// The record after its last.
    pub(super) end_seq: u64,
    /// Its length in bytes.
    pub(super) len: u64,
}

impl PagedSegment {
    /// The offset of record `seq`'s frame, and its length, from the segment's `offsets`.
    pub(super) fn frame(&self, offsets: &[u32], seq: u64) -> Result<(u64, u64), StoreError> {
        let at = |seq: u64| {
            let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
            offsets.get(i).map(|&o| u64::from(o))
        };
        let start = at(seq).ok_or_else(|| {
            StoreError::Corrupt(format!("record {seq}: not in segment {}", self.name))
        })?;
        let end = if seq + 1 < self.end_seq { at(seq + 1) } else { Some(self.len) };
        match end {
            Some(end) if end >= start => Ok((start, end - start)),
            _ => Err(StoreError::Corrupt(format!(
                "record {seq}: segment {}'s offsets out of order",
                self.name
            ))),
        }
    }
}

/// Offsets of paged segments, cached within a budget; see the module documentation.
#[derive(Debug)]
pub(super) struct Pages {
    reader: Arc<dyn SegmentRead>,
    cache: Mutex<Cache>,
}

/// The cached pages, by first record, and their order of use.
#[derive(Debug, Default)]
struct Cache {
    budget: usize,
    pages: BTreeMap<u64, (Arc<[u32]>, u64)>,
    by_use: BTreeMap<u64, u64>,
    tick: u64,
    bytes: usize,
    /// Pages loaded (from an index file or a scan) since the store opened.
    loads: u64,
}

/// What a page costs the budget.
fn cost(offsets: &[u32]) -> usize {
    PAGE_ENTRY_BYTES + std::mem::size_of_val(offsets)
}

impl Cache {
    fn get(&mut self, first_seq: u64) -> Option<Arc<[u32]>> {
        let tick = self.tick;
        let (page, used) = self.pages.get_mut(&first_seq)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, first_seq);
        self.tick += 1;
        Some(Arc::clone(page))
    }

    fn insert(&mut self, first_seq: u64, page: Arc<[u32]>) {
        self.remove(first_seq);
        self.shrink_to(self.budget.saturating_sub(cost(&page)));
        if cost(&page) > self.budget {
            return;
        }
        self.bytes += cost(&page);
        self.by_use.insert(self.tick, first_seq);
        self.pages.insert(first_seq, (page, self.tick));
        self.tick += 1;
    }

    fn remove(&mut self, first_seq: u64) {
        if let Some((page, used)) = self.pages.remove(&first_seq) {
            self.by_use.remove(&used);
            self.bytes -= cost(&page);
        }
    }

    fn shrink_to(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some((_, first_seq)) = self.by_use.pop_first() else { break };
            if let Some((page, _)) = self.pages.remove(&first_seq) {
                self.bytes -= cost(&page);
            }
        }
    }
}

impl Pages {
    /// Pages read through `reader`, cached within `budget` bytes.
    pub(super) fn new(reader: Arc<dyn SegmentRead>, budget: usize) -> Self {
        Self { reader, cache: Mutex::new(Cache { budget, ..Cache::default() }) }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Caches within `bytes` from now on (evicting what no longer fits).
    pub(super) fn set_budget(&self, bytes: usize) {
        let mut cache = self.cache();
        cache.budget = bytes;
        cache.shrink_to(bytes);
    }

    /// The offsets of `segment` if they are cached (no I/O).
    pub(super) fn cached(&self, segment: &PagedSegment) -> Option<Arc<[u32]>> {
        self.cache().get(segment.first_seq)
    }

    /// Keeps `offsets` of the segment starting at `first_seq` (just paged out of the
    /// resident offsets, or loaded) if they fit the budget.
    pub(super) fn offer(&self, first_seq: u64, offsets: Arc<[u32]>) {
        self.cache().insert(first_seq, offsets);
    }

    /// The offsets of `segment`: cached, or loaded from its index file (or, without a valid
    /// one, by scanning it) and cached. The cache's lock is not held while loading.
    ///
    /// # Errors
    /// [`StoreError::Io`] when neither file can be read, [`StoreError::Corrupt`] when the
    /// segment does not scan as the store knows it (its frames, its number of records).
    pub(super) fn offsets(&self, segment: &PagedSegment) -> Result<Arc<[u32]>, StoreError> {
        if let Some(page) = self.cached(segment) {
            return Ok(page);
        }
        let page: Arc<[u32]> = load(&*self.reader, segment)?.into();
        let mut cache = self.cache();
        cache.loads += 1;
        cache.insert(segment.first_seq, Arc::clone(&page));
        Ok(page)
    }

    /// Forgets the pages of segments starting below `boundary` (archived).
    pub(super) fn forget_below(&self, boundary: u64) {
        let mut cache = self.cache();
        let below: Vec<u64> = cache.pages.range(..boundary).map(|(&first, _)| first).collect();
        for first in below {
            cache.remove(first);
        }
    }

    /// What the cached pages cost, by the budget's measure.
    pub(super) fn bytes(&self) -> usize {
        self.cache().bytes
    }

    /// Pages loaded since the store opened (cache misses).
    pub(super) fn loads(&self) -> u64 {
        self.cache().loads
    }
}

/// Reads the offsets of `segment` from its index file, or scans the segment when the index
/// is missing or does not agree with it.
fn load(reader: &dyn SegmentRead, segment: &PagedSegment) -> Result<Vec<u32>, StoreError> {
    let records = segment.end_seq.saturating_sub(segment.first_seq);
    let index = idx::index_name(segment.first_seq);
    let expected = Expected {
        first_seq: segment.first_seq,
        segment_len: segment.len,
        next_first_seq: segment.end_seq,
    };
    let index_len = usize::try_from(records)
        .ok()
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(INDEX_HEADER_LEN + 4));
    let problem = match index_len {
        None => "too many records".to_owned(),
        Some(len) => {
            let mut bytes = vec![0u8; len];
            match reader.read_at(&index, 0, &mut bytes) {
                Ok(()) => {
                    let mut offsets = Vec::new();
                    match idx::decode_index(&bytes, expected, &mut offsets) {
                        Ok(()) => return Ok(offsets),
                        Err(why) => why,
                    }
                }
                Err(e) => e.to_string(),
            }
        }
    };
    tracing::info!(index = %index, problem = %problem, "segment index not usable: segment scanned for its frame offsets");
    let len = usize::try_from(segment.len)
        .map_err(|_| StoreError::Corrupt(format!("segment {} too large", segment.name)))?;
    let mut bytes = vec![0u8; len];
    reader
        .read_at(&segment.name, 0, &mut bytes)
        .map_err(|e| StoreError::Io(format!("reading segment {}: {e}", segment.name)))?;
    let offsets = sealed_frames(&bytes, segment.first_seq).map_err(|(at, reason)| {
        StoreError::Corrupt(format!("segment {} offset {at}: {reason}", segment.name))
    })?;
    if offsets.len() as u64 != records {
        return Err(StoreError::Corrupt(format!(
            "segment {} holds {} records, {records} expected",
            segment.name,
            offsets.len()
        )));
    }
    Ok(offsets)
}
