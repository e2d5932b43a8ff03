//! The resident index within a budget: resource lists read from the ledger's snapshot on
//! demand instead of held.
//!
//! After an open from `ledger.snap` (or once [`super::Ledger::write_snapshot`] has written a
//! newer one), the index keeps whole lists only for the keys appended since that snapshot
//! (its *dirty* lists, in `Resources`). Every other key's list is in the snapshot: it is read
//! from there when a read or an append needs it (the fence names the one KEYS block that can
//! hold the key; the block is read from the file and checked against its CRC32C) and kept in
//! a *clean* cache ([`Clean`]) of at most the index budget's bytes, the least recently used
//! list evicted first. A key's first append after the snapshot moves its clean list into the
//! dirty ones first, so that the numbering check and `resource_seq` stay exact; a new
//! snapshot turns the dirty lists wholly below its length clean again. A Bloom filter of the
//! snapshot's keys ([`KeyFilter`], by the ledger's own key hashes) spares the block read for
//! most keys it does not have: a new resource's first append, a governor that never wrote.
//!
//! The snapshot is read through the file descriptor opened when the index switched to it: a
//! newer snapshot renamed over `ledger.snap` (or its removal by archival) does not change what
//! the index reads. Lists are found by the keys' ids (the snapshot keeps ids, the index's
//! hashes are random per ledger). A block that fails its CRC32C after the open is an error of
//! that read ([`LedgerError::Corrupt`], naming the block), never a wrong list; the next open
//! checks the whole snapshot and falls back to reading every segment.

use std::collections::BTreeMap;
use std::fs::File;

use govern_governors::GovernorKind;

use super::lookup::{read_at, read_partial};
use super::seqs::SeqList;
use super::snapshot::{Reader, SnapshotError, kind_byte, read_key};
use super::{KeyHash, LedgerError, PassThrough};

/// The bytes one clean list costs in the cache beyond its own heap bytes, about: its slot in
/// the table (hash, list, use), its node in the order of use, and their slack.
const CLEAN_ENTRY_BYTES: usize = 96;

/// The snapshot the index pages its clean lists from: the file, open, and what finds a key's
/// block in it (the fence and the tenants' ids), resident.
#[derive(Debug)]
pub(crate) struct Paged {
    file: File,
    /// The records the snapshot covers.
    records: u64,
    /// Where the KEYS section starts in the file, and its length.
    keys: (u64, u64),
    /// Every KEYS block, in order.
    fence: Vec<FenceBlock>,
    /// The tenants' ids, by index (sorted).
    tenants: Vec<Box<str>>,
    /// Which keys the snapshot may have: a key it does not have (a new resource's first
    /// append, a governor that never wrote) costs no block read.
    filter: KeyFilter,
}

/// Bits of [`KeyFilter`] per key of the snapshot: with [`FILTER_PROBES`] probes, about 1 %
/// of the keys it does not have still cost a block read (1.2 bytes per key resident).
const FILTER_BITS_PER_KEY: u64 = 10;

/// Bits [`KeyFilter`] tests per key.
const FILTER_PROBES: u64 = 7;

/// A Bloom filter of key hashes (the ledger's own, random per ledger): `false` means the
/// snapshot has no list for the key.
#[derive(Debug)]
pub(crate) struct KeyFilter {
    bits: Vec<u64>,
}

impl KeyFilter {
    /// Sized for `keys` keys.
    fn new(keys: u64) -> Self {
        let words = usize::try_from((keys * FILTER_BITS_PER_KEY).div_ceil(64).max(1)).unwrap_or(1);
        Self { bits: vec![0; words] }
    }

    /// The bit positions of `key` in a filter of `words` words: double hashing over its two
    /// halves.
    fn probes(words: usize, key: KeyHash) -> impl Iterator<Item = (usize, u64)> {
        let m = words as u64 * 64;
        (0..FILTER_PROBES).map(move |i| {
            let bit = key.lo.wrapping_add(i.wrapping_mul(key.hi | 1)) % m;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    fn insert(&mut self, key: KeyHash) {
        for (word, bit) in Self::probes(self.bits.len(), key) {
            if let Some(w) = self.bits.get_mut(word) {
                *w |= bit;
            }
        }
    }

    /// Whether the snapshot may have `key` (`false`: it has not).
    pub(crate) fn may_have(&self, key: KeyHash) -> bool {
        Self::probes(self.bits.len(), key)
            .all(|(word, bit)| self.bits.get(word).is_some_and(|w| w & bit != 0))
    }
}

/// One KEYS block, as the fence describes it.
#[derive(Debug)]
struct FenceBlock {
    offset: u64,
    len: u32,
    crc: u32,
    entries: u32,
    /// Its first key: tenant index, kind byte, resource.
    first: (u32, u8, Box<str>),
}

impl Paged {
    /// The snapshot in `file`, which holds `bytes` (already read through it and checked:
    /// header and section CRCs, see `Loaded`): what finding a key's block needs, copied.
    pub(crate) fn from_bytes(
        file: File,
        records: u64,
        keys: (u64, u64),
        tenants: &[u8],
        fence: &[u8],
    ) -> Result<Self, SnapshotError> {
        let fence = parse_fence(fence)?;
        let filter = KeyFilter::new(fence.iter().map(|b| u64::from(b.entries)).sum());
        Ok(Self { file, records, keys, fence, filter, tenants: parse_tenants(tenants)? })
    }

    /// The snapshot in `file` (a snapshot this ledger has just written, of `records`
    /// records, the last with hash `last_hash`): its header, TENANTS and FENCE sections read
    /// and checked.
    pub(crate) fn open(
        file: File,
        records: u64,
        last_hash: govern_receipt::Digest,
    ) -> Result<Self, SnapshotError> {
        let io = |source| SnapshotError::Io { context: "reading the new snapshot".into(), source };
        let len = file.metadata().map_err(io)?.len();
        let (h, tenants, fence) = read_partial(&file, len, io)?;
        if h.records != records || h.last_hash != last_hash {
            return Err(SnapshotError::Mismatch(format!(
                "the new snapshot covers {} records (or ends with another hash), {records} were written",
                h.records
            )));
        }
        let keys = (h.sections[2].0, h.sections[2].1);
        Self::from_bytes(file, records, keys, &tenants, &fence)
    }

    /// Adds `key` to the keys the snapshot may have (every one of its keys must be added,
    /// by whoever walks them: the open's check, or [`Self::fill_filter`]).
    pub(crate) fn add_key(&mut self, key: KeyHash) {
        self.filter.insert(key);
    }

    /// Whether the snapshot may have `key`'s list (`false`: it has none).
    pub(crate) fn may_have(&self, key: KeyHash) -> bool {
        self.filter.may_have(key)
    }

    /// Reads every KEYS block (each checked) and adds every key, hashed by `hasher`.
    ///
    /// # Errors
    /// As [`Self::list`].
    pub(crate) fn fill_filter(&mut self, hasher: &super::KeyHasher) -> Result<(), LedgerError> {
        let mut filter = KeyFilter::new(0);
        std::mem::swap(&mut filter, &mut self.filter);
        for block in &self.fence {
            self.read_block(block, |entry| {
                let tenant = self.tenants.get(entry.tenant as usize).map_or("", |t| &**t);
                filter.insert(hasher.hash(tenant, entry.kind, entry.resource));
                Ok(Step::Next)
            })
            .map_err(|e| self.corrupt(block, &e))?;
        }
        self.filter = filter;
        Ok(())
    }

    /// The records the snapshot covers.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Heap bytes held: the fence, the tenants' ids and the key filter.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.filter.bits.capacity() * 8
            + self.fence.capacity() * size_of::<FenceBlock>()
            + self.fence.iter().map(|b| b.first.2.len()).sum::<usize>()
            + self.tenants.capacity() * size_of::<Box<str>>()
            + self.tenants.iter().map(|t| t.len()).sum::<usize>()
    }

    /// The list of (tenant, kind, resource) in the snapshot (`None`: it has none), read from
    /// the one block that can hold it.
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] naming the block when it cannot be read, fails its CRC32C
    /// or does not parse.
    pub(crate) fn list(
        &self,
        tenant: &str,
        kind: GovernorKind,
        resource: &str,
    ) -> Result<Option<SeqList>, LedgerError> {
        let Ok(t) = self.tenants.binary_search_by(|id| (**id).cmp(tenant)) else {
            return Ok(None);
        };
        let key = (t as u32, kind_byte(kind), resource);
        let after = self.fence.partition_point(|b| (b.first.0, b.first.1, &*b.first.2) <= key);
        let Some(block) = after.checked_sub(1).and_then(|i| self.fence.get(i)) else {
            return Ok(None);
        };
        self.read_block(block, |entry| {
            let found = (entry.tenant, kind_byte(entry.kind), entry.resource);
            Ok(match found.cmp(&key) {
                std::cmp::Ordering::Less => Step::Next,
                std::cmp::Ordering::Greater => Step::Stop(None),
                std::cmp::Ordering::Equal => {
                    let list = SeqList::from_parts(entry.list, self.records, |_, _| Ok(()))
                        .map_err(|e| SnapshotError::Damaged(format!("a list: {e}")))?;
                    Step::Stop(Some(list))
                }
            })
        })
        .map_err(|e| self.corrupt(block, &e))
    }

    /// Every number in tenant `tenant`'s lists in the snapshot (none if it has no such
    /// tenant), in no particular order: the blocks that can hold its keys read and checked.
    ///
    /// # Errors
    /// As [`Self::list`].
    pub(crate) fn tenant_numbers(&self, tenant: &str) -> Result<Vec<u64>, LedgerError> {
        let Ok(t) = self.tenants.binary_search_by(|id| (**id).cmp(tenant)) else {
            return Ok(Vec::new());
        };
        let t = t as u32;
        let start = self.fence.partition_point(|b| b.first.0 < t).saturating_sub(1);
        let mut out = Vec::new();
        for block in self.fence.get(start..).unwrap_or_default() {
            if block.first.0 > t {
                break;
            }
            self.read_block(block, |entry| {
                if entry.tenant == t {
                    SeqList::from_parts(entry.list, self.records, |seq, _| {
                        out.push(seq);
                        Ok(())
                    })
                    .map_err(|e| SnapshotError::Damaged(format!("a list: {e}")))?;
                }
                Ok(if entry.tenant > t { Step::Stop(None) } else { Step::Next })
            })
            .map_err(|e| self.corrupt(block, &e))?;
        }
        Ok(out)
    }

    /// Calls `each` with every entry of `block` until it stops; the block read and checked.
    fn read_block(
        &self,
        block: &FenceBlock,
        mut each: impl FnMut(&super::snapshot::KeyEntry<'_>) -> Result<Step, SnapshotError>,
    ) -> Result<Option<SeqList>, SnapshotError> {
        if block.offset.saturating_add(u64::from(block.len)) > self.keys.1 {
            return Err(SnapshotError::Damaged("the block runs past the KEYS section".into()));
        }
        let mut bytes = vec![0u8; block.len as usize];
        read_at(&self.file, self.keys.0 + block.offset, &mut bytes)
            .map_err(|source| SnapshotError::Io { context: "reading the block".into(), source })?;
        if crc32c::crc32c(&bytes) != block.crc {
            return Err(SnapshotError::Damaged("CRC32C mismatch".into()));
        }
        let mut r = Reader::new(&bytes, "KEYS");
        for _ in 0..block.entries {
            let entry = read_key(&mut r)?;
            if let Step::Stop(found) = each(&entry)? {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn corrupt(&self, block: &FenceBlock, e: &SnapshotError) -> LedgerError {
        LedgerError::Corrupt {
            seq: self.records.saturating_sub(1),
            reason: format!(
                "the ledger snapshot of {} records the index pages from, its KEYS block at byte {} ({} bytes): {e}",
                self.records, block.offset, block.len
            ),
        }
    }

    /// Every (tenant, kind, resource, list) of the snapshot, in order (tests: the whole
    /// index compared with a ledger that holds it all).
    #[cfg(test)]
    pub(crate) fn for_each(
        &self,
        mut each: impl FnMut(&str, GovernorKind, &str, SeqList),
    ) -> Result<(), LedgerError> {
        for block in &self.fence {
            self.read_block(block, |entry| {
                let tenant = self.tenants.get(entry.tenant as usize).map_or("", |t| &**t);
                let list = SeqList::from_parts(entry.list, self.records, |_, _| Ok(()))
                    .map_err(SnapshotError::Damaged)?;
                each(tenant, entry.kind, entry.resource, list);
                Ok(Step::Next)
            })
            .map_err(|e| self.corrupt(block, &e))?;
        }
        Ok(())
    }
}

/// Whether a walk through a block goes on.
enum Step {
    Next,
    Stop(Option<SeqList>),
}

fn parse_fence(bytes: &[u8]) -> Result<Vec<FenceBlock>, SnapshotError> {
    let mut r = Reader::new(bytes, "FENCE");
    let blocks = r.u32("the block count")?;
    // An entry takes at least 29 bytes: the count cannot claim more than the section holds.
    let mut out = Vec::with_capacity((blocks as usize).min(bytes.len() / 29));
    for _ in 0..blocks {
        let offset = r.u64("a block offset")?;
        let len = r.u32("a block length")?;
        let crc = r.u32("a block CRC")?;
        let entries = r.u32("a block's entries")?;
        let first = (
            r.u32("a block's first tenant")?,
            r.u8("a block's first kind")?,
            Box::from(r.short_str("a block's first resource")?),
        );
        out.push(FenceBlock { offset, len, crc, entries, first });
    }
    if !r.done() {
        return Err(SnapshotError::Damaged("FENCE: bytes after the last block".into()));
    }
    Ok(out)
}

fn parse_tenants(bytes: &[u8]) -> Result<Vec<Box<str>>, SnapshotError> {
    let mut r = Reader::new(bytes, "TENANTS");
    let count = r.u32("the tenant count")?;
    let mut out: Vec<Box<str>> = Vec::with_capacity((count as usize).min(bytes.len()));
    for _ in 0..count {
        let id = r.short_str("a tenant id")?;
        if out.last().is_some_and(|last| &**last >= id) {
            return Err(SnapshotError::Damaged(format!("TENANTS: {id:?} out of order")));
        }
        r.list()?;
        out.push(id.into());
    }
    Ok(out)
}

/// Lists read from the snapshot, by key hash, within a budget: the least recently used
/// evicted first. The list read last stays even when it alone is over the budget (a read
/// holds it until the next list is read).
#[derive(Debug, Default)]
pub(crate) struct Clean {
    /// Each list and its last use.
    #[allow(clippy::disallowed_types, reason = "lookup only; never iterated into output")]
    lists: std::collections::HashMap<
        KeyHash,
        (SeqList, u64),
        std::hash::BuildHasherDefault<PassThrough>,
    >,
    /// The lists by last use.
    by_use: BTreeMap<u64, KeyHash>,
    /// The next use's number.
    tick: u64,
    /// What the lists cost, by [`cost`].
    bytes: usize,
}

/// What a clean list costs the budget.
fn cost(list: &SeqList) -> usize {
    CLEAN_ENTRY_BYTES + list.heap_bytes()
}

impl Clean {
    /// The list of `key`, if held, marked as just used.
    pub(crate) fn get(&mut self, key: KeyHash) -> Option<&SeqList> {
        let tick = self.tick;
        let (_, used) = self.lists.get_mut(&key)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, key);
        self.tick += 1;
        self.lists.get(&key).map(|(list, _)| list)
    }

    /// Keeps `list` for `key` (not held), evicting the least recently used lists until all
    /// fit in `budget` bytes (or only it is left).
    pub(crate) fn insert(&mut self, key: KeyHash, list: SeqList, budget: usize) -> &SeqList {
        self.take(key);
        self.shrink_to(budget.saturating_sub(cost(&list)));
        self.bytes += cost(&list);
        self.by_use.insert(self.tick, key);
        let slot = self.lists.entry(key).insert_entry((list, self.tick));
        self.tick += 1;
        &slot.into_mut().0
    }

    /// Keeps `list` for `key` only if it fits in `budget` without evicting another.
    pub(crate) fn offer(&mut self, key: KeyHash, list: SeqList, budget: usize) {
        if self.bytes + cost(&list) <= budget && !self.lists.contains_key(&key) {
            self.insert(key, list, budget);
        }
    }

    /// The list of `key`, taken out of the cache.
    pub(crate) fn take(&mut self, key: KeyHash) -> Option<SeqList> {
        let (list, used) = self.lists.remove(&key)?;
        self.by_use.remove(&used);
        self.bytes -= cost(&list);
        Some(list)
    }

    /// Evicts the least recently used lists until the rest cost at most `budget`.
    pub(crate) fn shrink_to(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some((_, key)) = self.by_use.pop_first() else { break };
            if let Some((list, _)) = self.lists.remove(&key) {
                self.bytes -= cost(&list);
            }
        }
        if self.lists.len() < self.lists.capacity() / 4 {
            self.lists.shrink_to_fit();
        }
    }

    /// What the held lists cost, by the same measure as the budget.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many lists are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lists.len()
    }
}

#[cfg(test)]
mod tests;
