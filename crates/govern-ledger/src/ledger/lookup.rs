//! Finding one tenant's receipts (or one governor kind's, or one resource's) in a data
//! directory without reading every record: the sequence numbers come from the ledger's
//! snapshot (the tenant's list, or one key's list found through the fence and one block),
//! and only the records after the snapshot are read to find the rest. Without a usable
//! snapshot every record is read, as before snapshots existed. What a reader such as
//! `govern receipts` uses; it takes no lock and changes nothing.

use std::path::Path;

use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_receipt::{Digest, Receipt};

use super::LedgerStore;
use super::seqs::ListParts;
use super::snapshot::{
    HEADER_LEN, Header, KeyEntry, Reader, SNAPSHOT_FILE, SnapshotError, check_end, kind_byte,
    read_key,
};

/// Records [`find_receipts`] reads per batch (each batch's bytes are held at once).
const FIND_BATCH: u64 = 1 << 14;

/// What [`find_receipts`] looks for: a tenant's receipts, optionally only one kind's and
/// one resource's.
#[derive(Clone, Copy, Debug)]
pub struct ReceiptFilter<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// Only this governor kind's.
    pub kind: Option<GovernorKind>,
    /// Only this resource's (of any kind unless `kind` says).
    pub resource: Option<&'a ResourceId>,
}

/// The receipts found, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundReceipts {
    /// Their sequence numbers, in order.
    pub seqs: Vec<u64>,
    /// The records the snapshot used covered (`None`: no usable snapshot, every record was
    /// read).
    pub snapshot: Option<u64>,
    /// Why the snapshot there was not used, when one was there.
    pub unused: Option<String>,
    /// How many records were read to find them (those after the snapshot).
    pub read: u64,
}

/// Finds the receipts `wanted` names in the ledger of data directory `dir`, whose store
/// `store` is open (read-only). The snapshot is used when it is valid and ends with a record
/// the store has, with the hash it names; its lists are taken as they are (each checked for
/// form), the records after it are read and their keys decoded.
///
/// # Errors
/// A record after the snapshot (or any, without one) that the store cannot read or that
/// does not decode.
pub fn find_receipts(
    dir: &Path,
    store: &dyn LedgerStore,
    wanted: ReceiptFilter<'_>,
) -> Result<FoundReceipts, String> {
    // Records below the store's first are archived: the manifest says what stands for them.
    let manifest = match store.base() {
        0 => None,
        base => Some(crate::archive::Manifest::read(dir).map_err(|e| e.to_string())?.ok_or_else(
            || format!("records below {base} are archived but there is no manifest"),
        )?),
    };
    let (seqs, snapshot, unused) = match from_snapshot(dir, store, wanted, manifest.as_ref()) {
        Ok(Some((records, seqs))) => (seqs, Some(records), None),
        Ok(None) => (Vec::new(), None, None),
        Err(e) => (Vec::new(), None, Some(e.to_string())),
    };
    // Without a usable snapshot, a directory whose oldest records are archived is read from
    // the snapshot of those the archive manifest names (its records are not here to read).
    let (mut seqs, snapshot) = match (snapshot, &manifest) {
        (None, Some(manifest)) => {
            let path = dir.join(&manifest.base_snapshot.file);
            let at_base = EndCheck::Boundary(manifest.boundary_hash);
            let (records, found) = from_snapshot_file(&path, store, wanted, at_base)
                .map_err(|e| format!("the archive's base snapshot: {e}"))?
                .ok_or_else(|| format!("{} is missing", path.display()))?;
            (found, Some(records))
        }
        (snapshot, _) => (seqs, snapshot),
    };
    let from = snapshot.unwrap_or(0);
    let len = store.len();
    let mut next = from;
    // In batches, so that what is held at once stays bounded however many records are read.
    while next < len {
        let upto = next.saturating_add(FIND_BATCH).min(len);
        let mut located = store.locate_range(next..upto).map_err(|e| e.to_string())?;
        for seq in next..upto {
            let record = super::expect_record(located.as_mut(), seq).map_err(|e| e.to_string())?;
            let key = Receipt::decode_key(record).map_err(|e| format!("receipt {seq}: {e}"))?;
            if key.tenant == wanted.tenant.as_str()
                && wanted.kind.is_none_or(|k| k == key.governor)
                && wanted.resource.is_none_or(|r| r.as_str() == key.resource)
            {
                seqs.push(seq);
            }
        }
        next = upto;
    }
    Ok(FoundReceipts { seqs, snapshot, unused, read: len - from })
}

/// The numbers the snapshot lists for `wanted`, and the records it covers; `None` without a
/// snapshot.
fn from_snapshot(
    dir: &Path,
    store: &dyn LedgerStore,
    wanted: ReceiptFilter<'_>,
    manifest: Option<&crate::archive::Manifest>,
) -> Result<Option<(u64, Vec<u64>)>, SnapshotError> {
    let check = match manifest {
        Some(m) => EndCheck::Archived { boundary: m.boundary, hash: m.boundary_hash },
        None => EndCheck::Record,
    };
    from_snapshot_file(&dir.join(SNAPSHOT_FILE), store, wanted, check)
}

/// How a snapshot is checked against the records: its last record read back, or (archived
/// records) against the archive's boundary.
enum EndCheck {
    /// Its last record must be in the store, ending with its hash.
    Record,
    /// The store starts at `boundary`: a snapshot of fewer records is not usable, one of
    /// exactly that many must end with `hash`, a longer one is checked by its last record.
    Archived { boundary: u64, hash: Digest },
    /// The archive's base snapshot: it must end with this hash (the boundary's).
    Boundary(Digest),
}

/// [`from_snapshot`] of the snapshot at `path`, checked by `check`.
fn from_snapshot_file(
    path: &Path,
    store: &dyn LedgerStore,
    wanted: ReceiptFilter<'_>,
    check: EndCheck,
) -> Result<Option<(u64, Vec<u64>)>, SnapshotError> {
    let Some(snapshot) = Partial::read(path)? else { return Ok(None) };
    let records = snapshot.records;
    let mismatch = |why: &str| Err(SnapshotError::Mismatch(why.into()));
    // The hash its last record must have when that record is archived.
    let archived_end = match check {
        EndCheck::Record => None,
        EndCheck::Archived { boundary, .. } if records < boundary => {
            return mismatch("it covers fewer records than are archived");
        }
        EndCheck::Archived { boundary, hash } => (records == boundary).then_some(hash),
        EndCheck::Boundary(_) if records != store.base() => {
            return mismatch("it is not of the records below the archive boundary");
        }
        EndCheck::Boundary(hash) => Some(hash),
    };
    match archived_end {
        Some(hash) if snapshot.last_hash != hash => {
            return mismatch("its last hash is not the archive boundary's");
        }
        Some(_) => {}
        None => check_end(store.len(), records, snapshot.last_hash, |seq| read_one(store, seq))?,
    }
    let Some((index, tenant_list)) = snapshot.find_tenant(wanted.tenant.as_str())? else {
        return Ok(Some((records, Vec::new())));
    };
    let mut seqs = Vec::new();
    match (wanted.kind, wanted.resource) {
        (None, None) => seqs.extend(checked(tenant_list, records)?),
        (None, Some(resource)) => {
            // One lookup per kind: a few blocks, not all of the tenant's.
            for kind in GovernorKind::ALL {
                snapshot.for_each_key_of(index, Some(kind), Some(resource), |entry| {
                    seqs.extend(checked(entry.list, records)?);
                    Ok(())
                })?;
            }
            seqs.sort_unstable();
        }
        (kind, resource) => {
            snapshot.for_each_key_of(index, kind, resource, |entry| {
                seqs.extend(checked(entry.list, records)?);
                Ok(())
            })?;
            seqs.sort_unstable();
        }
    }
    Ok(Some((records, seqs)))
}

/// The numbers of a list, checked for form (see `SeqList::from_parts`).
fn checked(list: ListParts<'_>, below: u64) -> Result<Vec<u64>, SnapshotError> {
    let mut out = Vec::new();
    super::seqs::SeqList::from_parts(list, below, |seq, _| {
        out.push(seq);
        Ok(())
    })
    .map_err(|e| SnapshotError::Damaged(format!("a list: {e}")))?;
    Ok(out)
}

/// Record `seq` of `store`, if it has it.
pub(crate) fn read_one(store: &dyn LedgerStore, seq: u64) -> Result<Option<Vec<u8>>, String> {
    let mut record = Vec::new();
    let found = store.read(seq, &mut record).map_err(|e| e.to_string())?;
    Ok(found.then_some(record))
}

/// A snapshot opened for lookups: its header, its TENANTS and FENCE sections (each checked
/// against its CRC32C), and the file, from which a KEYS block is read, and checked against
/// the CRC32C the fence gives it, when a lookup needs it. The KEYS section, most of the file,
/// is never read whole.
pub(crate) struct Partial {
    pub(crate) records: u64,
    pub(crate) last_hash: Digest,
    tenants: Vec<u8>,
    fence: Vec<u8>,
    file: std::fs::File,
    /// Where the KEYS section starts in the file, and its length.
    keys: (u64, u64),
}

impl Partial {
    /// Opens the snapshot at `path` for lookups: `Ok(None)` when there is none.
    pub(crate) fn read(path: &Path) -> Result<Option<Self>, SnapshotError> {
        let io =
            |source| SnapshotError::Io { context: format!("reading {}", path.display()), source };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(SnapshotError::Damaged("not a regular file".into()));
        }
        let (h, tenants, fence) = read_partial(&file, meta.len(), io)?;
        let keys = (h.sections[2].0, h.sections[2].1);
        Ok(Some(Self { records: h.records, last_hash: h.last_hash, tenants, fence, file, keys }))
    }

    /// The index and list of tenant `id`, walking the TENANTS section (lists skipped, not
    /// decoded).
    pub(crate) fn find_tenant(
        &self,
        id: &str,
    ) -> Result<Option<(u32, ListParts<'_>)>, SnapshotError> {
        let mut r = Reader::new(&self.tenants, "TENANTS");
        let count = r.u32("the tenant count")?;
        for index in 0..count {
            let name = r.short_str("a tenant id")?;
            let list = r.list()?;
            if name == id {
                return Ok(Some((index, list)));
            }
        }
        Ok(None)
    }

    /// Calls `each` with every key of tenant `tenant` (its index), of `kind` and `resource`
    /// when given: the blocks that can hold them are found in the fence by binary search and
    /// read from the file.
    pub(crate) fn for_each_key_of(
        &self,
        tenant: u32,
        kind: Option<GovernorKind>,
        resource: Option<&ResourceId>,
        mut each: impl FnMut(&KeyEntry<'_>) -> Result<(), SnapshotError>,
    ) -> Result<(), SnapshotError> {
        let fence = self.fence()?;
        let low = (
            tenant,
            kind.map_or(0, kind_byte),
            resource.filter(|_| kind.is_some()).map_or("", |r| r.as_str()),
        );
        // The first block that can hold a key at or after `low`: the one before the first
        // block starting after it.
        let start = fence.partition_point(|b| b.first <= low).saturating_sub(1);
        let mut bytes = Vec::new();
        for block in fence.get(start..).unwrap_or_default() {
            // Blocks start past what is wanted: nothing further can hold it.
            let past_kind =
                kind.is_some_and(|k| block.first.0 == tenant && block.first.1 > kind_byte(k));
            let past_key = kind.is_some() && resource.is_some() && block.first > low;
            if block.first.0 > tenant || past_kind || past_key {
                break;
            }
            if block.offset.saturating_add(block.len as u64) > self.keys.1 {
                return Err(SnapshotError::Damaged("FENCE: a block past the KEYS section".into()));
            }
            bytes.resize(block.len, 0);
            read_at(&self.file, self.keys.0 + block.offset, &mut bytes).map_err(|source| {
                SnapshotError::Io { context: "reading a snapshot block".into(), source }
            })?;
            if crc32c::crc32c(&bytes) != block.crc {
                return Err(SnapshotError::Damaged(format!(
                    "KEYS: the block at {}: CRC",
                    block.offset
                )));
            }
            let mut r = Reader::new(&bytes, "KEYS");
            for _ in 0..block.entries {
                let entry = read_key(&mut r)?;
                if entry.tenant != tenant
                    || kind.is_some_and(|k| k != entry.kind)
                    || resource.is_some_and(|res| res.as_str() != entry.resource)
                {
                    continue;
                }
                each(&entry)?;
            }
        }
        Ok(())
    }

    /// The fence: each block's place, CRC, entries and first key (tenant index, kind byte,
    /// resource). Keys are sorted by tenant id, and tenant indexes follow the ids' order, so
    /// comparing indexes compares ids.
    fn fence(&self) -> Result<Vec<Block<'_>>, SnapshotError> {
        let mut r = Reader::new(&self.fence, "FENCE");
        let blocks = r.u32("the block count")?;
        // An entry takes at least 29 bytes: the count cannot claim more than the section holds.
        let mut out = Vec::with_capacity((blocks as usize).min(self.fence.len() / 29));
        for _ in 0..blocks {
            let offset = r.u64("a block offset")?;
            let len = r.u32("a block length")? as usize;
            let crc = r.u32("a block CRC")?;
            let entries = r.u32("a block's entries")?;
            let first = (
                r.u32("a block's first tenant")?,
                r.u8("a block's first kind")?,
                r.short_str("a block's first resource")?,
            );
            out.push(Block { offset, len, crc, entries, first });
        }
        Ok(out)
    }
}

/// The largest TENANTS or FENCE section a lookup or the paged index reads (a bigger one is
/// refused as damaged).
const SECTION_READ_MAX: u64 = 1 << 30;

/// The header of the snapshot in `file` (`len` bytes long) and its TENANTS and FENCE
/// sections, each at most [`SECTION_READ_MAX`] bytes and checked against its CRC32C: what
/// a reader that reads the KEYS blocks one by one keeps (lookups, the paged index).
pub(crate) fn read_partial(
    file: &std::fs::File,
    len: u64,
    io: impl Fn(std::io::Error) -> SnapshotError,
) -> Result<(Header, Vec<u8>, Vec<u8>), SnapshotError> {
    let mut header = vec![0u8; HEADER_LEN.min(usize::try_from(len).unwrap_or(0))];
    read_at(file, 0, &mut header).map_err(&io)?;
    let h = Header::parse(&header, len)?;
    let section = |i: usize| -> Result<Vec<u8>, SnapshotError> {
        let (offset, len, crc) = h.sections[i];
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| (l as u64) <= SECTION_READ_MAX)
            .ok_or_else(|| SnapshotError::Damaged(format!("section {i} too large to read")))?;
        let mut bytes = vec![0u8; len];
        read_at(file, offset, &mut bytes).map_err(&io)?;
        if crc32c::crc32c(&bytes) != crc {
            return Err(SnapshotError::Damaged(format!("section {i} CRC")));
        }
        Ok(bytes)
    };
    let (tenants, fence) = (section(1)?, section(3)?);
    Ok((h, tenants, fence))
}

/// Fills `buf` from `file` at `offset`.
pub(crate) fn read_at(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt as _;
        file.read_exact_at(buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read as _, Seek as _};
        let mut file = file;
        file.seek(std::io::SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }
}

/// One block of the KEYS section, as the fence describes it.
struct Block<'a> {
    offset: u64,
    len: usize,
    crc: u32,
    entries: u32,
    first: (u32, u8, &'a str),
}

#[cfg(test)]
mod tests;
