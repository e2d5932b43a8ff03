//! Ledger snapshots: the derived state of a data directory's ledger as of its first `S`
//! records (the index by resource and by tenant, the chain head, the Merkle frontier), so
//! that opening reads the snapshot and only the records after it instead of every record.
//!
//! # The file, `<data dir>/ledger.snap`
//!
//! Big-endian integers; lists of sequence numbers are the index's own encoding (a count, the
//! first and last numbers as LEB128 varints, then the varint deltas between neighbours).
//!
//! ```text
//! header   "govern.ledgersnap" | u16 version (1) | u64 records S | [32] hash of record S-1
//!          (zeros when S is 0) | u32 sections n | n × (u32 tag, u64 offset, u64 len, u32
//!          CRC32C of the section) | u32 CRC32C of the header's bytes before it
//! FRONTIER u64 size (= S) | u32 count | count × [32]  (the roots of the perfect subtrees)
//! TENANTS  u32 count | count × (u8 id length, id, list)          sorted by id, no repeats
//! KEYS     blocks of entries, each (u32 tenant index, u8 kind, u8 resource length,
//!          resource, list), sorted by (tenant id, kind, resource) with kinds by their
//!          position in `GovernorKind::ALL`, no repeats
//! FENCE    u32 blocks | per block: u64 offset in KEYS, u32 length, u32 CRC32C, u32
//!          entries, and its first entry's u32 tenant index, u8 kind, u8 length, resource
//! END      u64 first record of the segment holding record S-1 | u64 its frame's offset
//!          there (both all ones when the store has no segments): a hint, checked by
//!          reading that frame
//! ```
//!
//! Kinds are their position in [`GovernorKind::ALL`]. A block holds about
//! [`BLOCK_BYTES`] of entries; a reader looking one key up reads the fence and one block
//! (each block has its own CRC), a full load reads every section.
//!
//! # Trust
//!
//! Nothing in a snapshot is trusted until checked: the header's and every section's CRC32C,
//! the form of every field (sorted, no repeats, valid ids and kinds, every list well-formed),
//! that the resource lists and, separately, the tenant lists hold every number below `S`
//! exactly once, that the frontier has one node per set bit of `S`; then against the data
//! directory: `S` is at most the records on disk and record `S - 1` is intact and ends with
//! the hash the snapshot names. A snapshot that fails any check is not used: the ledger is
//! rebuilt from every segment, as without one, and the reason is logged. What a snapshot
//! cannot show is that it describes *those* records (a consistent forgery by someone who can
//! write the data directory); `govern verify` rebuilds everything from the records and is
//! the full check, and a runtime compares the rebuilt Merkle root with its latest signed
//! checkpoint when it starts.
//!
//! # Writing
//!
//! [`Ledger::write_snapshot`] takes the durable length `S` and the frontier at it (under the
//! commit lock, a copy of at most 64 hashes), then, without the ledger's lock, reads the
//! previous snapshot (if valid) and the records between its end and `S`, and writes the merge
//! of the two: `ledger.snap.tmp`, fsync, rename over `ledger.snap`, fsync of the directory.
//! Appends go on meanwhile. A crash at any point leaves the old snapshot or the new one.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BTreeMap;
use std::path::Path;

use govern_governors::{GovernorKind, TenantId};
use govern_receipt::{ChainVerifier, Digest, Head, Receipt};

use super::seqs::{ListParts, MarkedList, SeqList, put_varint};
use super::{Index, KeyHash, KeyHasher, Ledger, LedgerError, Resources, Tenants};
use crate::merkle::MerkleFrontier;

/// The snapshot's file name in a data directory.
pub const SNAPSHOT_FILE: &str = "ledger.snap";

/// The magic bytes that open a snapshot.
const MAGIC: &[u8; 17] = b"govern.ledgersnap";

/// The snapshot format version this build reads and writes.
pub(crate) const SNAPSHOT_VERSION: u16 = 1;

/// The bytes of entries a block of the KEYS section holds, about (an entry is never split;
/// a few hundred in tests, so that small ledgers have many blocks).
pub(crate) const BLOCK_BYTES: usize = if cfg!(test) { 512 } else { 64 << 10 };

/// A snapshot is due when the durable records not in it reach this many, or
/// [`SNAPSHOT_DUE_FRACTION`] of those in it if more: the records an open reads after the
/// snapshot stay below about 2 % of the ledger (and a quarter of a million), and the cost
/// of writing snapshots (each rewrites the whole file) stays proportional to the records
/// appended.
pub const SNAPSHOT_DUE_RECORDS: u64 = 1 << 18;

/// See [`SNAPSHOT_DUE_RECORDS`]: one snapshot per this fraction of the ledger's length
/// (1/50).
pub const SNAPSHOT_DUE_FRACTION: u64 = 50;

/// The largest snapshot file read (a bigger one is refused as damaged, not allocated).
pub(crate) const SNAPSHOT_BYTES_MAX: u64 = 32 << 30;

/// Fixed header bytes before the section table.
const HEADER_FIXED: usize = MAGIC.len() + 2 + 8 + 32 + 4;
/// Bytes of one entry of the section table.
const SECTION_ENTRY: usize = 4 + 8 + 8 + 4;

/// The sections, by tag.
const FRONTIER: u32 = 1;
const TENANTS: u32 = 2;
const KEYS: u32 = 3;
const FENCE: u32 = 4;
const END: u32 = 5;
const SECTIONS: [u32; 5] = [FRONTIER, TENANTS, KEYS, FENCE, END];

/// Why a snapshot was not read or not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing the file failed.
    #[error("i/o error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid snapshot: which field, and what is wrong with it.
    #[error("damaged snapshot: {0}")]
    Damaged(String),
    /// A valid snapshot that does not describe this data directory's records.
    #[error("snapshot does not match the ledger: {0}")]
    Mismatch(String),
    /// Reading the records to snapshot failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn damaged(what: impl Into<String>) -> SnapshotError {
    SnapshotError::Damaged(what.into())
}

/// What [`Ledger::write_snapshot`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotWritten {
    /// The records it covers.
    pub records: u64,
    /// The records read to write it (those after the previous snapshot).
    pub read: u64,
    /// The file's size.
    pub bytes: u64,
}

/// A snapshot file read whole and checked section by section (CRCs and layout): the
/// contents are checked as they are walked ([`Loaded::to_index`], the writer's merge).
pub(crate) struct Loaded {
    bytes: Vec<u8>,
    pub(crate) records: u64,
    pub(crate) last_hash: Digest,
    /// (offset, len) of each of [`SECTIONS`], in that order.
    sections: [(usize, usize); 5],
}

/// A byte reader over one section that names what it was reading when the bytes ran out.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, at: 0, what }
    }

    pub(crate) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], SnapshotError> {
        let out = self.at.checked_add(n).and_then(|end| self.bytes.get(self.at..end)).ok_or_else(
            || damaged(format!("{}: {field} runs past the section's end", self.what)),
        )?;
        self.at += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, SnapshotError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u32(&mut self, field: &str) -> Result<u32, SnapshotError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, field: &str) -> Result<u64, SnapshotError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn digest(&mut self, field: &str) -> Result<Digest, SnapshotError> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32, field)?);
        Ok(Digest(a))
    }

    pub(crate) fn varint(&mut self, field: &str) -> Result<u64, SnapshotError> {
        let mut n = 0u64;
        for i in 0..10 {
            let byte = self.u8(field)?;
            n |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(damaged(format!("{}: {field} is not a varint", self.what)))
    }

    pub(crate) fn short_str(&mut self, field: &str) -> Result<&'a str, SnapshotError> {
        let len = self.u8(field)?;
        std::str::from_utf8(self.take(usize::from(len), field)?)
            .map_err(|_| damaged(format!("{}: {field} is not UTF-8", self.what)))
    }

    pub(crate) fn list(&mut self) -> Result<ListParts<'a>, SnapshotError> {
        let len = self.varint("a list's length")?;
        let first = self.varint("a list's first number")?;
        let last = self.varint("a list's last number")?;
        let n = self.varint("a list's delta bytes")?;
        let n = usize::try_from(n).map_err(|_| damaged("a list's delta bytes"))?;
        let deltas = self.take(n, "a list's deltas")?;
        Ok(ListParts { len, first, last, deltas })
    }

    pub(crate) fn kind(&mut self) -> Result<GovernorKind, SnapshotError> {
        let k = self.u8("a kind")?;
        GovernorKind::ALL
            .get(usize::from(k))
            .copied()
            .ok_or_else(|| damaged(format!("{}: kind {k} is not a governor kind", self.what)))
    }

    pub(crate) fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

pub(crate) fn kind_byte(kind: GovernorKind) -> u8 {
    GovernorKind::ALL.iter().position(|&k| k == kind).unwrap_or_default() as u8
}

/// One entry of the KEYS section.
pub(crate) struct KeyEntry<'a> {
    pub(crate) tenant: u32,
    pub(crate) kind: GovernorKind,
    pub(crate) resource: &'a str,
    pub(crate) list: ListParts<'a>,
}

pub(crate) fn read_key<'a>(r: &mut Reader<'a>) -> Result<KeyEntry<'a>, SnapshotError> {
    let tenant = r.u32("a key's tenant")?;
    let kind = r.kind()?;
    let resource = r.short_str("a key's resource")?;
    let list = r.list()?;
    Ok(KeyEntry { tenant, kind, resource, list })
}

/// Numbers below `S` seen so far, one bit each: every list of a kind must hold each exactly
/// once.
struct Seen {
    bits: Vec<u64>,
    count: u64,
    what: &'static str,
}

impl Seen {
    /// `bytes`: the length of the section whose lists hold the records. Each record takes at
    /// least a byte there, so a count above it is refused before anything is allocated.
    fn new(records: u64, bytes: usize, what: &'static str) -> Result<Self, SnapshotError> {
        if records > bytes as u64 {
            return Err(damaged(format!(
                "{records} records cannot be in {what} lists of {bytes} bytes"
            )));
        }
        let words = usize::try_from(records.div_ceil(64))
            .map_err(|_| damaged(format!("{records} records do not fit in memory")))?;
        Ok(Self { bits: vec![0; words], count: 0, what })
    }

    fn mark(&mut self, seq: u64) -> Result<(), String> {
        let word = usize::try_from(seq / 64).ok().and_then(|w| self.bits.get_mut(w));
        let Some(word) = word else { return Err(format!("number {seq} out of range")) };
        let bit = 1u64 << (seq % 64);
        if *word & bit != 0 {
            return Err(format!("record {seq} is in two {} lists", self.what));
        }
        *word |= bit;
        self.count += 1;
        Ok(())
    }

    fn check_all(&self, records: u64) -> Result<(), SnapshotError> {
        if self.count == records {
            Ok(())
        } else {
            Err(damaged(format!(
                "the {} lists hold {} of the {records} records",
                self.what, self.count
            )))
        }
    }
}

/// A snapshot's header: the records it covers, the hash of the last, and each section's
/// (offset, length, CRC32C).
pub(crate) struct Header {
    pub(crate) records: u64,
    pub(crate) last_hash: Digest,
    pub(crate) sections: [(u64, u64, u32); 5],
}

/// The header's length: fixed, whatever the sections hold.
pub(crate) const HEADER_LEN: usize = HEADER_FIXED + SECTIONS.len() * SECTION_ENTRY + 4;

impl Header {
    /// Checks the header at the start of `bytes` (at least [`HEADER_LEN`] of them) of a file
    /// of `file_len` bytes: magic, version, the section table (each section where the one
    /// before ends, the last ending at the file's end) and its CRC32C. The sections' own
    /// CRCs are checked by whoever reads them.
    pub(crate) fn parse(bytes: &[u8], file_len: u64) -> Result<Self, SnapshotError> {
        let mut r = Reader::new(bytes, "header");
        if r.take(MAGIC.len(), "the magic")? != MAGIC {
            return Err(damaged("not a ledger snapshot (magic)"));
        }
        let version = u16::from_be_bytes([r.u8("the version")?, r.u8("the version")?]);
        if version != SNAPSHOT_VERSION {
            return Err(damaged(format!("version {version}, this build reads {SNAPSHOT_VERSION}")));
        }
        let records = r.u64("the record count")?;
        let last_hash = r.digest("the last hash")?;
        let n = r.u32("the section count")?;
        if n as usize != SECTIONS.len() {
            return Err(damaged(format!("{n} sections, version 1 has {}", SECTIONS.len())));
        }
        let mut sections = [(0u64, 0u64, 0u32); 5];
        let mut next = HEADER_LEN as u64;
        for (i, &tag) in SECTIONS.iter().enumerate() {
            if r.u32("a section tag")? != tag {
                return Err(damaged(format!("section {i} is not the one version 1 has there")));
            }
            let offset = r.u64("a section offset")?;
            let len = r.u64("a section length")?;
            let crc = r.u32("a section CRC")?;
            if offset != next || offset.checked_add(len).is_none_or(|e| e > file_len) {
                return Err(damaged(format!(
                    "section {tag} at {offset}+{len} does not follow the one before in a file of {file_len}"
                )));
            }
            next = offset + len;
            sections[i] = (offset, len, crc);
        }
        let stored = r.u32("the header CRC")?;
        if crc32c::crc32c(bytes.get(..r.at - 4).unwrap_or_default()) != stored {
            return Err(damaged("header CRC"));
        }
        if next != file_len {
            return Err(damaged(format!("{} bytes after the last section", file_len - next)));
        }
        Ok(Self { records, last_hash, sections })
    }
}

/// The END section of the snapshot in data directory `dir`, if there is a snapshot whose
/// header and END section check out: the segment and offset of record S-1's frame, and S.
/// Only a hint: whoever uses it checks the frame it points at.
pub(crate) fn end_hint(dir: &Path) -> Option<(u64, u64, u64)> {
    use super::lookup::read_at;
    let file = std::fs::File::open(dir.join(SNAPSHOT_FILE)).ok()?;
    let len = file.metadata().ok()?.len();
    let mut header = vec![0u8; HEADER_LEN];
    read_at(&file, 0, &mut header).ok()?;
    let h = Header::parse(&header, len).ok()?;
    let (offset, section_len, crc) = h.sections[4];
    let mut end = [0u8; 16];
    if section_len != 16 {
        return None;
    }
    read_at(&file, offset, &mut end).ok()?;
    if crc32c::crc32c(&end) != crc {
        return None;
    }
    let mut r = Reader::new(&end, "END");
    let (segment, at) = (r.u64("a segment").ok()?, r.u64("an offset").ok()?);
    (segment != u64::MAX && h.records > 0).then_some((segment, at, h.records))
}

impl Loaded {
    /// Reads and checks the snapshot at `path`: `Ok(None)` when there is none.
    pub(crate) fn read(path: &Path) -> Result<Option<Self>, SnapshotError> {
        Ok(Self::read_open(path)?.map(|(loaded, _)| loaded))
    }

    /// [`Self::read`], and the file it was read through, open (what a reader of its blocks
    /// keeps: a newer snapshot renamed over `path` does not change what it reads).
    pub(crate) fn read_open(path: &Path) -> Result<Option<(Self, std::fs::File)>, SnapshotError> {
        use std::io::Read as _;
        let io =
            |source| SnapshotError::Io { context: format!("reading {}", path.display()), source };
        let mut file = match std::fs::File::open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
            Ok(file) => file,
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(damaged("not a regular file"));
        }
        if meta.len() > SNAPSHOT_BYTES_MAX {
            return Err(damaged(format!("{} bytes, over the limit", meta.len())));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(io)?;
        Ok(Some((Self::parse(bytes)?, file)))
    }

    /// Checks the header, the section table and every section's CRC32C.
    pub(crate) fn parse(bytes: Vec<u8>) -> Result<Self, SnapshotError> {
        let header = Header::parse(&bytes, bytes.len() as u64)?;
        let mut sections = [(0usize, 0usize); 5];
        for (i, &(offset, len, crc)) in header.sections.iter().enumerate() {
            let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
                return Err(damaged("a section out of range"));
            };
            let section = bytes.get(offset..offset.saturating_add(len)).unwrap_or_default();
            if crc32c::crc32c(section) != crc {
                return Err(damaged(format!("section {} CRC", SECTIONS[i])));
            }
            sections[i] = (offset, len);
        }
        Ok(Self { bytes, records: header.records, last_hash: header.last_hash, sections })
    }

    /// The whole file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where section `i` is in the file, and its length.
    pub(crate) fn span(&self, i: usize) -> (u64, u64) {
        let (offset, len) = self.sections[i];
        (offset as u64, len as u64)
    }

    pub(crate) fn section(&self, i: usize) -> &[u8] {
        let (offset, len) = self.sections[i];
        self.bytes.get(offset..offset + len).unwrap_or_default()
    }

    /// The Merkle frontier at `records`.
    pub(crate) fn frontier(&self) -> Result<MerkleFrontier, SnapshotError> {
        let mut r = Reader::new(self.section(0), "FRONTIER");
        let size = r.u64("the size")?;
        if size != self.records {
            return Err(damaged(format!(
                "FRONTIER: size {size}, the snapshot has {}",
                self.records
            )));
        }
        let count = r.u32("the node count")?;
        if count != size.count_ones() {
            return Err(damaged(format!("FRONTIER: {count} nodes for size {size}")));
        }
        let nodes = (0..count).map(|_| r.digest("a node")).collect::<Result<Vec<_>, _>>()?;
        if !r.done() {
            return Err(damaged("FRONTIER: bytes after the last node"));
        }
        Ok(MerkleFrontier::from_parts(size, nodes))
    }

    /// The tenants' ids and lists, checked: sorted, valid ids, every record in exactly one.
    pub(crate) fn tenants(&self) -> Result<Vec<(TenantId, MarkedList)>, SnapshotError> {
        let mut r = Reader::new(self.section(1), "TENANTS");
        let count = r.u32("the tenant count")?;
        let mut seen = Seen::new(self.records, self.section(1).len(), "tenant")?;
        let mut out: Vec<(TenantId, MarkedList)> = Vec::new();
        for _ in 0..count {
            let id = r.short_str("a tenant id")?;
            if out.last().is_some_and(|(last, _)| last.as_str() >= id) {
                return Err(damaged(format!("TENANTS: {id:?} out of order")));
            }
            let id = TenantId::new(id).map_err(|e| damaged(format!("TENANTS: {e}")))?;
            let parts = r.list()?;
            let list = MarkedList::from_parts(parts, self.records, |seq| seen.mark(seq))
                .map_err(|e| damaged(format!("TENANTS: tenant {id}: {e}")))?;
            out.push((id, list));
        }
        if !r.done() {
            return Err(damaged("TENANTS: bytes after the last tenant"));
        }
        seen.check_all(self.records)?;
        Ok(out)
    }

    /// Calls `each` with every key entry in order, checked: sorted by (tenant id, kind,
    /// resource) without repeats, known tenants, the blocks as the fence describes them,
    /// every record in exactly one list. `tenants` are this snapshot's, by index.
    pub(crate) fn for_each_key(
        &self,
        tenants: &[&str],
        mut each: impl FnMut(&KeyEntry<'_>, SeqList) -> Result<(), SnapshotError>,
    ) -> Result<(), SnapshotError> {
        let keys = self.section(2);
        let mut fence = Reader::new(self.section(3), "FENCE");
        let blocks = fence.u32("the block count")?;
        let mut seen = Seen::new(self.records, self.section(2).len(), "resource")?;
        let mut last: Option<(u32, GovernorKind, &str)> = None;
        let mut next = 0usize;
        for _ in 0..blocks {
            let offset = usize::try_from(fence.u64("a block offset")?)
                .map_err(|_| damaged("FENCE: a block offset"))?;
            let len = fence.u32("a block length")? as usize;
            let crc = fence.u32("a block CRC")?;
            let entries = fence.u32("a block's entries")?;
            let first = (
                fence.u32("a block's first tenant")?,
                fence.kind()?,
                fence.short_str("a block's first resource")?,
            );
            if offset != next || entries == 0 {
                return Err(damaged(format!(
                    "FENCE: a block at {offset} (expected {next}), {entries} entries"
                )));
            }
            let block = keys
                .get(offset..offset.saturating_add(len))
                .ok_or_else(|| damaged("FENCE: a block past the KEYS section"))?;
            if crc32c::crc32c(block) != crc {
                return Err(damaged(format!("KEYS: the block at {offset}: CRC")));
            }
            next = offset + len;
            let mut r = Reader::new(block, "KEYS");
            for i in 0..entries {
                let entry = read_key(&mut r)?;
                let key = (entry.tenant, entry.kind, entry.resource);
                if i == 0 && key != first {
                    return Err(damaged(format!(
                        "FENCE: the block at {offset} starts with another key"
                    )));
                }
                let tenant = tenants.get(entry.tenant as usize).ok_or_else(|| {
                    damaged(format!("KEYS: tenant index {} of {}", entry.tenant, tenants.len()))
                })?;
                if let Some(prev) = last
                    && compare(tenants, prev, key) != CmpOrdering::Less
                {
                    return Err(damaged(format!(
                        "KEYS: {tenant}/{}/{} out of order",
                        entry.kind, entry.resource
                    )));
                }
                govern_governors::ResourceId::new(entry.resource)
                    .map_err(|e| damaged(format!("KEYS: {e}")))?;
                let mut check = |seq: u64, _| seen.mark(seq);
                let list =
                    SeqList::from_parts(entry.list, self.records, &mut check).map_err(|e| {
                        damaged(format!("KEYS: {tenant}/{}/{}: {e}", entry.kind, entry.resource))
                    })?;
                each(&entry, list)?;
                last = Some(key);
            }
            if !r.done() {
                return Err(damaged(format!(
                    "KEYS: the block at {offset} has bytes after its entries"
                )));
            }
        }
        if next != keys.len() || !fence.done() {
            return Err(damaged("FENCE: the blocks do not cover the KEYS section"));
        }
        seen.check_all(self.records)
    }

    /// The index this snapshot describes, keyed by `keys`. The keys are sorted out by shard
    /// first, then each shard's table is filled at once, sized for its keys (as a rebuild
    /// fills them, see `Resources`).
    pub(crate) fn to_index(&self, keys: KeyHasher) -> Result<Index, SnapshotError> {
        let tenants = self.tenants()?;
        let names: Vec<&str> = tenants.iter().map(|(id, _)| id.as_str()).collect();
        let mut by_shard: Vec<Vec<(KeyHash, SeqList)>> = vec![Vec::new(); KeyHash::SHARDS];
        self.for_each_key(&names, |entry, list| {
            let tenant = names.get(entry.tenant as usize).copied().unwrap_or_default();
            let hash = keys.hash(tenant, entry.kind, entry.resource);
            if let Some(shard) = by_shard.get_mut(hash.shard()) {
                shard.push((hash, list));
            }
            Ok(())
        })?;
        let mut resources = Resources::default();
        for (table, pending) in resources.shards.iter_mut().zip(by_shard) {
            table.reserve(pending.len());
            for (hash, list) in pending {
                match table.entry(hash) {
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(list);
                    }
                    // Two keys with one hash (see `KeyHash`): one list, as appends would
                    // have made it.
                    std::collections::hash_map::Entry::Occupied(mut slot) => {
                        let mut merged: Vec<u64> =
                            slot_numbers(slot.get()).chain(slot_numbers(&list)).collect();
                        merged.sort_unstable();
                        let mut joined = SeqList::Empty;
                        for seq in merged {
                            joined.push(seq);
                        }
                        slot.insert(joined);
                    }
                }
            }
        }
        let tenants: Tenants = tenants
            .into_iter()
            .map(|(id, list)| (id, super::tenants::TenantList::whole(list)))
            .collect();
        Ok(Index::new(keys, resources, tenants))
    }
}

fn slot_numbers(list: &SeqList) -> impl Iterator<Item = u64> + '_ {
    list.to_parts().into_iter().flat_map(|p| p.iter().collect::<Vec<_>>())
}

/// Orders two keys by (tenant id, kind, resource), tenants given by index into `tenants`.
fn compare(
    tenants: &[&str],
    a: (u32, GovernorKind, &str),
    b: (u32, GovernorKind, &str),
) -> CmpOrdering {
    let name = |i: u32| tenants.get(i as usize).copied().unwrap_or_default();
    (name(a.0), kind_byte(a.1), a.2).cmp(&(name(b.0), kind_byte(b.1), b.2))
}

/// Builds a snapshot file: tenants first (sorted), then keys (sorted), then the rest.
pub(crate) struct Writer {
    tenants: Vec<u8>,
    tenant_count: u32,
    keys: Vec<u8>,
    fence: Vec<u8>,
    blocks: u32,
    block_start: usize,
    block_entries: u32,
    block_first: Vec<u8>,
}

fn put_list(out: &mut Vec<u8>, parts: ListParts<'_>) {
    put_varint(out, parts.len);
    put_varint(out, parts.first);
    put_varint(out, parts.last);
    put_varint(out, parts.deltas.len() as u64);
    out.extend_from_slice(parts.deltas);
}

fn put_short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len().min(255) as u8);
    out.extend_from_slice(s.as_bytes().get(..s.len().min(255)).unwrap_or_default());
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            tenants: Vec::new(),
            tenant_count: 0,
            keys: Vec::new(),
            fence: Vec::new(),
            blocks: 0,
            block_start: 0,
            block_entries: 0,
            block_first: Vec::new(),
        }
    }

    /// Adds a tenant (ids in increasing order: the reader checks it); returns its index.
    pub(crate) fn tenant(&mut self, id: &str, list: ListParts<'_>) -> u32 {
        put_short(&mut self.tenants, id);
        put_list(&mut self.tenants, list);
        self.tenant_count += 1;
        self.tenant_count - 1
    }

    /// Adds a key (in increasing order of (tenant id, kind, resource)).
    pub(crate) fn key(
        &mut self,
        tenant: u32,
        kind: GovernorKind,
        resource: &str,
        list: ListParts<'_>,
    ) {
        let start = self.keys.len();
        self.keys.extend_from_slice(&tenant.to_be_bytes());
        self.keys.push(kind_byte(kind));
        put_short(&mut self.keys, resource);
        if self.block_entries == 0 {
            self.block_first = self.keys.get(start..).unwrap_or_default().to_vec();
        }
        put_list(&mut self.keys, list);
        self.block_entries += 1;
        if self.keys.len() - self.block_start >= BLOCK_BYTES {
            self.end_block();
        }
    }

    fn end_block(&mut self) {
        if self.block_entries == 0 {
            return;
        }
        let block = self.keys.get(self.block_start..).unwrap_or_default();
        self.fence.extend_from_slice(&(self.block_start as u64).to_be_bytes());
        self.fence.extend_from_slice(&(block.len() as u32).to_be_bytes());
        self.fence.extend_from_slice(&crc32c::crc32c(block).to_be_bytes());
        self.fence.extend_from_slice(&self.block_entries.to_be_bytes());
        self.fence.extend_from_slice(&self.block_first);
        self.blocks += 1;
        self.block_start = self.keys.len();
        self.block_entries = 0;
    }

    /// The file's bytes.
    pub(crate) fn finish(
        mut self,
        records: u64,
        last_hash: Digest,
        frontier: &MerkleFrontier,
        end: Option<(u64, u64)>,
    ) -> Vec<u8> {
        self.end_block();
        let mut front = Vec::with_capacity(12 + 32 * frontier.nodes().len());
        front.extend_from_slice(&frontier.len().to_be_bytes());
        front.extend_from_slice(&(frontier.nodes().len() as u32).to_be_bytes());
        for node in frontier.nodes() {
            front.extend_from_slice(&node.0);
        }
        let mut tenants = Vec::with_capacity(4 + self.tenants.len());
        tenants.extend_from_slice(&self.tenant_count.to_be_bytes());
        tenants.extend_from_slice(&self.tenants);
        let mut fence = Vec::with_capacity(4 + self.fence.len());
        fence.extend_from_slice(&self.blocks.to_be_bytes());
        fence.extend_from_slice(&self.fence);
        let mut end_section = Vec::with_capacity(16);
        let (segment, offset) = end.unwrap_or((u64::MAX, u64::MAX));
        end_section.extend_from_slice(&segment.to_be_bytes());
        end_section.extend_from_slice(&offset.to_be_bytes());
        let sections: [&[u8]; 5] = [&front, &tenants, &self.keys, &fence, &end_section];
        let total: usize = HEADER_LEN + sections.iter().map(|s| s.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&records.to_be_bytes());
        out.extend_from_slice(&last_hash.0);
        out.extend_from_slice(&(SECTIONS.len() as u32).to_be_bytes());
        let mut offset = HEADER_LEN as u64;
        for (tag, section) in SECTIONS.iter().zip(sections) {
            out.extend_from_slice(&tag.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&(section.len() as u64).to_be_bytes());
            out.extend_from_slice(&crc32c::crc32c(section).to_be_bytes());
            offset += section.len() as u64;
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        for section in sections {
            out.extend_from_slice(section);
        }
        out
    }
}

/// The kinds, as many as there are.
const KINDS: usize = GovernorKind::ALL.len();

/// One tenant's records after the previous snapshot: its list and its keys' lists, by kind
/// (in [`GovernorKind::ALL`]'s order) and resource.
#[derive(Default)]
struct TailTenant {
    list: SeqList,
    kinds: [BTreeMap<Box<str>, SeqList>; KINDS],
}

/// Records after the previous snapshot, by tenant, kind and resource, sorted.
#[derive(Default)]
pub(super) struct Tail {
    tenants: BTreeMap<Box<str>, TailTenant>,
}

impl Tail {
    pub(super) fn push(&mut self, seq: u64, record: &[u8]) -> Result<(), LedgerError> {
        let key = Receipt::decode_key(record).map_err(|source| {
            LedgerError::Chain(govern_receipt::ChainError::Malformed { seq, source })
        })?;
        self.push_key(seq, key.tenant, key.governor, key.resource);
        Ok(())
    }

    /// [`Self::push`] of a record already decoded: receipt `seq` of that key.
    pub(super) fn push_key(&mut self, seq: u64, tenant: &str, kind: GovernorKind, resource: &str) {
        // Looked up by the ids as stored; a new tenant or key allocates its id once.
        let tenant = match self.tenants.get_mut(tenant) {
            Some(t) => t,
            None => self.tenants.entry(tenant.into()).or_default(),
        };
        tenant.list.push(seq);
        let Some(resources) = tenant.kinds.get_mut(usize::from(kind_byte(kind))) else {
            return;
        };
        match resources.get_mut(resource) {
            Some(list) => list.push(seq),
            None => resources.entry(resource.into()).or_default().push(seq),
        }
    }

    /// Every key, in order: (tenant, kind, resource, list).
    fn keys(&self) -> impl Iterator<Item = (&str, u8, &str, &SeqList)> + '_ {
        self.tenants.iter().flat_map(|(tenant, t)| {
            t.kinds.iter().enumerate().flat_map(move |(kind, resources)| {
                resources.iter().map(move |(r, list)| (&**tenant, kind as u8, &**r, list))
            })
        })
    }
}

/// `prev` then `tail` as one list's (len, first, last), the deltas in `buf` (every number of
/// `tail` after `prev`'s).
fn joined(
    prev: Option<ListParts<'_>>,
    tail: Option<ListParts<'_>>,
    buf: &mut Vec<u8>,
) -> Option<(u64, u64, u64)> {
    buf.clear();
    match (prev, tail) {
        (None, None) => None,
        (Some(p), None) | (None, Some(p)) => {
            buf.extend_from_slice(p.deltas);
            Some((p.len, p.first, p.last))
        }
        (Some(p), Some(t)) => {
            buf.extend_from_slice(p.deltas);
            put_varint(buf, t.first.saturating_sub(p.last));
            buf.extend_from_slice(t.deltas);
            Some((p.len + t.len, p.first, t.last))
        }
    }
}

/// The tail's keys still to write, in order.
type TailKeys<'a> =
    std::iter::Peekable<Box<dyn Iterator<Item = (&'a str, u8, &'a str, &'a SeqList)> + 'a>>;

/// Writes the tail's keys that sort before `upto` (all of them for `None`).
fn write_tail_keys(
    writer: &mut Writer,
    keys: &mut TailKeys<'_>,
    upto: Option<(&str, u8, &str)>,
    index: &BTreeMap<&str, u32>,
    buf: &mut Vec<u8>,
) {
    while let Some(&(tenant, kind, resource, list)) = keys.peek() {
        if upto.is_some_and(|u| (tenant, kind, resource) >= u) {
            break;
        }
        keys.next();
        let (Some(&t), Some((len, first, last))) =
            (index.get(tenant), joined(None, list.to_parts(), buf))
        else {
            continue;
        };
        let kind =
            GovernorKind::ALL.get(usize::from(kind)).copied().unwrap_or(GovernorKind::Tenant);
        writer.key(t, kind, resource, ListParts { len, first, last, deltas: buf });
    }
}

/// The merged snapshot of `prev` (checked as it is read) and the `tail` after it.
pub(super) fn merge(prev: Option<&Loaded>, tail: &Tail) -> Result<Writer, SnapshotError> {
    let mut writer = Writer::new();
    let prev_tenants = match prev {
        Some(p) => p.tenants()?,
        None => Vec::new(),
    };
    // Tenants: both sorted by id; the new index of each.
    let mut buf = Vec::new();
    let mut prev_index = Vec::with_capacity(prev_tenants.len());
    let mut tail_index = BTreeMap::new();
    let mut a = prev_tenants.iter().peekable();
    let mut b = tail.tenants.iter().peekable();
    loop {
        let (id, p, t): (&str, _, _) = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((x, _)), Some((y, _))) if x.as_str() == &***y => {
                let (Some((id, l)), Some((_, m))) = (a.next(), b.next()) else { break };
                (id.as_str(), l.list().to_parts(), m.list.to_parts())
            }
            (Some((x, _)), Some((y, _))) if x.as_str() > &***y => {
                let Some((id, m)) = b.next() else { break };
                (&**id, None, m.list.to_parts())
            }
            (Some(_), _) => {
                let Some((id, l)) = a.next() else { break };
                (id.as_str(), l.list().to_parts(), None)
            }
            (None, Some(_)) => {
                let Some((id, m)) = b.next() else { break };
                (&**id, None, m.list.to_parts())
            }
        };
        let Some((len, first, last)) = joined(p, t, &mut buf) else { continue };
        let index = writer.tenant(id, ListParts { len, first, last, deltas: &buf });
        if p.is_some() {
            prev_index.push(index);
        }
        if t.is_some() {
            tail_index.insert(id, index);
        }
    }
    // Keys: the previous snapshot's, streamed, merged with the tail's.
    let names: Vec<&str> = prev_tenants.iter().map(|(id, _)| id.as_str()).collect();
    let mut keys: TailKeys<'_> = (Box::new(tail.keys()) as Box<dyn Iterator<Item = _>>).peekable();
    if let Some(p) = prev {
        let mut joined_buf = Vec::new();
        p.for_each_key(&names, |entry, _| {
            let tenant = names.get(entry.tenant as usize).copied().unwrap_or_default();
            let key = (tenant, kind_byte(entry.kind), entry.resource);
            write_tail_keys(&mut writer, &mut keys, Some(key), &tail_index, &mut buf);
            let same = match keys.peek() {
                Some(&(t, k, r, list)) if (t, k, r) == key => {
                    keys.next();
                    list.to_parts()
                }
                _ => None,
            };
            let index = prev_index.get(entry.tenant as usize).copied().unwrap_or_default();
            if let Some((len, first, last)) = joined(Some(entry.list), same, &mut joined_buf) {
                let parts = ListParts { len, first, last, deltas: &joined_buf };
                writer.key(index, entry.kind, entry.resource, parts);
            }
            Ok(())
        })?;
    }
    write_tail_keys(&mut writer, &mut keys, None, &tail_index, &mut buf);
    Ok(writer)
}

/// Writes `bytes` as `dir/name` atomically: a temporary file, synced, renamed into place,
/// then the directory synced.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
    crate::text_file::write_atomically(dir, name, bytes, false).map_err(
        |(context, path, source)| SnapshotError::Io {
            context: format!("{context} {}", path.display()),
            source,
        },
    )
}

impl Ledger {
    /// Whether the durable records not in the data directory's snapshot are enough for a new
    /// one (see [`SNAPSHOT_DUE_RECORDS`], [`Self::set_snapshot_every`]). A ledger opened without a snapshot is due at once
    /// if it holds that many.
    #[must_use]
    pub fn snapshot_due(&self) -> bool {
        let covered = self.snapshotted.load(std::sync::atomic::Ordering::Acquire);
        let fresh = self.durable_len().saturating_sub(covered);
        let every = self.snapshot_every.load(std::sync::atomic::Ordering::Relaxed);
        fresh >= every.max(covered / SNAPSHOT_DUE_FRACTION)
    }

    /// Makes a snapshot due after `records` durable records not in it (at least 1) instead
    /// of [`SNAPSHOT_DUE_RECORDS`]; a fiftieth of the ledger still applies when larger.
    pub fn set_snapshot_every(&self, records: u64) {
        self.snapshot_every.store(records.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The records the data directory's snapshot covers: the one opened from or last
    /// written (0 for none).
    #[must_use]
    pub fn snapshot_len(&self) -> u64 {
        self.snapshotted.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Writes a snapshot of this data directory's ledger as of its durable records into
    /// `dir/ledger.snap` (see the module documentation): the previous snapshot, if valid and
    /// still a prefix of this ledger, merged with the records after it, read without
    /// holding the ledger's lock. `Ok(None)` when the ledger is not durable, has no records,
    /// or the snapshot there already covers them all.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] when the file cannot be written; [`SnapshotError::Ledger`] when
    /// the records cannot be read. A previous snapshot that is damaged or of another history
    /// is not an error: it is replaced by one written from every record.
    pub fn write_snapshot(&self, dir: &Path) -> Result<Option<SnapshotWritten>, SnapshotError> {
        let _one = self.snapshotting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.write_snapshot_locked(dir, true)
    }

    /// [`Self::write_snapshot`], merging with the snapshot there only if `with_previous`.
    fn write_snapshot_locked(
        &self,
        dir: &Path,
        with_previous: bool,
    ) -> Result<Option<SnapshotWritten>, SnapshotError> {
        let (records, frontier) = {
            if !self.is_durable() {
                return Ok(None);
            }
            let commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Only what a commit made durable: a failed commit may have pushed its hashes
            // to the frontier before it poisoned the ledger.
            if self.is_poisoned() || commit.frontier.len() != self.durable_len() {
                return Ok(None);
            }
            (commit.frontier.len(), commit.frontier.clone())
        };
        if records == 0 {
            return Ok(None);
        }
        let path = dir.join(SNAPSHOT_FILE);
        let base = self.lock().store.base();
        let prev = match Loaded::read(&path) {
            Ok(Some(_)) if !with_previous => None,
            Ok(Some(prev)) if prev.records <= base => None,
            Ok(Some(prev)) => match self.check_prefix(&prev, records) {
                Ok(()) => Some(prev),
                Err(e) => {
                    tracing::warn!(reason = %e, "previous ledger snapshot not used; writing one from every record");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(reason = %e, "previous ledger snapshot not used; writing one from every record");
                None
            }
        };
        // Archived records are not read: the snapshot of them the manifest names is the
        // previous one.
        let prev = match prev {
            None if base > 0 => Some(archived_base(dir, base)?),
            prev => prev,
        };
        let from = prev.as_ref().map_or(0, |p| p.records);
        if from == records {
            return Ok(None);
        }
        let mut tail = Tail::default();
        let mut last_hash = Digest::ZERO;
        self.for_each_durable(from..records, |seq, record| {
            tail.push(seq, record)?;
            if seq + 1 == records {
                last_hash = stored_hash(record)
                    .ok_or(LedgerError::Corrupt { seq, reason: "too short".into() })?;
            }
            Ok(())
        })?;
        let writer = match merge(prev.as_ref(), &tail) {
            Ok(writer) => writer,
            // (Not when the previous one is the archive's: nothing else could replace it.)
            Err(e) if prev.as_ref().is_some_and(|p| p.records > base) => {
                tracing::warn!(reason = %e, "previous ledger snapshot not used; writing one from every record");
                drop(prev);
                return self.write_snapshot_locked(dir, false);
            }
            Err(e) => return Err(e),
        };
        // Where record S-1 is: a reader starts after it without scanning its segment.
        let end = self.lock().store.position(records - 1);
        let bytes = writer.finish(records, last_hash, &frontier, end);
        write_atomically(dir, SNAPSHOT_FILE, &bytes)?;
        self.snapshotted.store(records, std::sync::atomic::Ordering::Release);
        self.page_from(&path, records, last_hash);
        Ok(Some(SnapshotWritten { records, read: records - from, bytes: bytes.len() as u64 }))
    }

    /// Makes the index page its resource lists from the snapshot just written at `path` (of
    /// this ledger's first `records`, the last with hash `last_hash`), opened now and read
    /// through that descriptor from now on: the lists appended to before `records` only are
    /// let go (see `paged`). Under the snapshot writers' lock, so nothing renames another
    /// file over it meanwhile; checked against what was written all the same. When it cannot
    /// be opened the index keeps what it holds (and says why).
    fn page_from(&self, path: &Path, records: u64, last_hash: Digest) {
        let hasher = self.lock().index.keys.clone();
        let opened = std::fs::File::open(path)
            .map_err(|source| SnapshotError::Io {
                context: "opening the new snapshot".into(),
                source,
            })
            .and_then(|file| super::paged::Paged::open(file, records, last_hash))
            .and_then(|mut paged| {
                // Every block read once (off the lock): the keys it has, for the filter.
                paged.fill_filter(&hasher).map_err(SnapshotError::Ledger)?;
                Ok(paged)
            });
        match opened {
            // One hold of the lock per shard: a ledger opened without a snapshot holds every
            // list, and lets most of them go here.
            Ok(paged) => {
                if self.lock().index.switch_to(paged) {
                    for shard in 0..super::KeyHash::SHARDS {
                        self.lock().index.clean_shard(shard);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(reason = %e, "the index does not page from the new ledger snapshot; it keeps its lists");
            }
        }
    }

    /// Checks that `snapshot` describes a prefix of this ledger's first `records` (see
    /// [`check_end`]).
    pub(crate) fn check_prefix(
        &self,
        snapshot: &Loaded,
        records: u64,
    ) -> Result<(), SnapshotError> {
        check_end(records, snapshot.records, snapshot.last_hash, |seq| {
            let mut found = None;
            self.for_each_durable(seq..seq + 1, |_, record| {
                found = Some(record.to_vec());
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            Ok(found)
        })
    }

    /// Calls `f` with every record of `range` (durable, so immutable), located under the
    /// lock in batches and read without it.
    pub(crate) fn for_each_durable(
        &self,
        range: std::ops::Range<u64>,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        const BATCH: u64 = 1 << 16;
        let mut next = range.start;
        while next < range.end {
            let upto = (next + BATCH).min(range.end);
            let mut located = self.lock().store.locate_range(next..upto)?;
            for seq in next..upto {
                f(seq, super::expect_record(located.as_mut(), seq)?)?;
            }
            next = upto;
        }
        Ok(())
    }
}

/// The snapshot of the archived records of data directory `dir`, whose boundary is `base`.
fn archived_base(dir: &Path, base: u64) -> Result<Loaded, SnapshotError> {
    let unusable = |reason: String| SnapshotError::Mismatch(format!("archive base: {reason}"));
    let manifest = crate::archive::Manifest::read(dir)
        .map_err(|e| unusable(e.to_string()))?
        .filter(|m| m.boundary == base)
        .ok_or_else(|| unusable(format!("no manifest with boundary {base}")))?;
    crate::archive::load_base_snapshot(dir, &manifest).map_err(|e| unusable(e.to_string()))
}

/// Checks that a ledger of `len` records holds the `records` a snapshot covers and that
/// its last one (read by `read`: `None` when the store does not have it) is intact and ends
/// with the snapshot's `last_hash` (the zero hash for an empty snapshot). What every use of
/// a snapshot checks against the records first.
pub(crate) fn check_end(
    len: u64,
    records: u64,
    last_hash: Digest,
    read: impl FnOnce(u64) -> Result<Option<Vec<u8>>, String>,
) -> Result<(), SnapshotError> {
    let mismatch = SnapshotError::Mismatch;
    if records > len {
        return Err(mismatch(format!("it covers {records} records, the ledger has {len}")));
    }
    let Some(seq) = records.checked_sub(1) else {
        return if last_hash == Digest::ZERO {
            Ok(())
        } else {
            Err(mismatch("an empty snapshot with a last hash".into()))
        };
    };
    let record = read(seq).map_err(|e| mismatch(format!("record {seq}: {e}")))?;
    match record.and_then(|r| record_hash_checked(seq, &r)) {
        Some(hash) if hash == last_hash => Ok(()),
        Some(_) => Err(mismatch(format!("record {seq} ends with another hash"))),
        None => Err(mismatch(format!("record {seq} is missing or does not verify"))),
    }
}

/// The hash a storage record ends with.
pub(crate) fn stored_hash(record: &[u8]) -> Option<Digest> {
    let start = record.len().checked_sub(32)?;
    let mut hash = [0u8; 32];
    hash.copy_from_slice(record.get(start..)?);
    Some(Digest(hash))
}

/// The hash record `seq` ends with, if the record is intact (frame and hash rechecked).
pub(crate) fn record_hash_checked(seq: u64, record: &[u8]) -> Option<Digest> {
    let prev = ChainVerifier::record_prev_hash(record)?;
    let mut chain = ChainVerifier::resume(Head { next_seq: seq, last_hash: prev });
    chain.push_record(record).ok()
}

#[cfg(test)]
mod tests;
