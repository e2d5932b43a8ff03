//! The canonical binary encoding of receipt format v1 (specified in `docs/receipts.md`).
//!
//! Preimage = tag ‖ version ‖ seq ‖ id ‖ timestamp ‖ tenant ‖ governor ‖ resource ‖
//! resource_seq ‖ command ‖ state_from ‖ state_to ‖ reason ‖ args ‖ metadata ‖ prev_hash.
//! Integers are big-endian; strings are a u32 byte length then UTF-8; maps are a u32 count
//! then (key, value) strings with keys in strictly increasing byte order. A storage record
//! is the preimage followed by the 32-byte hash.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::limits::ID_LEN_MAX;
use govern_governors::{GovernorKind, IdError, ResourceId, TenantId, Timestamp};
use uuid::Uuid;

use crate::digest::Digest;
use crate::receipt::{Receipt, ReceiptBody};

/// The domain-separation tag that opens every preimage: no other hashed object of govern
/// starts with these bytes.
pub const DOMAIN_TAG: &[u8; 14] = b"govern.receipt";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The largest record accepted when decoding.
pub const RECORD_LEN_MAX: usize = 1 << 20;

/// Byte offset of `seq` in a record.
pub(crate) const SEQ_OFFSET: usize = DOMAIN_TAG.len() + 1;
/// Byte offset of the receipt id.
pub(crate) const ID_OFFSET: usize = SEQ_OFFSET + 8;
/// Byte offset of the timestamp.
pub(crate) const TIMESTAMP_OFFSET: usize = ID_OFFSET + 16;
/// The shortest possible record: fixed fields, 7 empty strings, 2 empty maps, two digests.
pub(crate) const RECORD_LEN_MIN: usize = TIMESTAMP_OFFSET + 8 + 7 * 4 + 8 + 2 * 4 + 32 + 32;

/// Why a record does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the smallest possible record.
    #[error("record is {len} bytes, shorter than the {min} of an empty receipt")]
    TooShort {
        /// The record length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// Longer than [`RECORD_LEN_MAX`].
    #[error("record is {len} bytes, longer than the {max} allowed")]
    TooLong {
        /// The record length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The record does not start with [`DOMAIN_TAG`].
    #[error("record does not start with the receipt tag")]
    BadTag,
    /// The version byte is not [`FORMAT_VERSION`].
    #[error("unsupported receipt format version {0}")]
    UnsupportedVersion(u8),
    /// A field runs past the end of the preimage.
    #[error("field {field} at byte {offset} runs past the end of the record")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Its byte offset.
        offset: usize,
    },
    /// A string field is not UTF-8.
    #[error("field {field} at byte {offset} is not UTF-8")]
    BadUtf8 {
        /// The field.
        field: &'static str,
        /// Its byte offset.
        offset: usize,
    },
    /// The governor name is not a known kind.
    #[error("unknown governor {0:?}")]
    UnknownGovernor(String),
    /// A tenant or resource id is invalid.
    #[error("field {field} is not a valid id: {source}")]
    BadId {
        /// The field.
        field: &'static str,
        /// Why.
        source: IdError,
    },
    /// Map keys are not in strictly increasing byte order (or repeat).
    #[error("keys of {field} at byte {offset} are not strictly increasing")]
    KeysNotSorted {
        /// The map field.
        field: &'static str,
        /// The offending key's offset.
        offset: usize,
    },
    /// Bytes remain between the preimage and the final hash.
    #[error("{extra} unexpected bytes after the preimage at byte {offset}")]
    TrailingBytes {
        /// Where the preimage ended.
        offset: usize,
        /// How many extra bytes.
        extra: usize,
    },
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    // Lengths above u32::MAX cannot occur: decoding bounds records at 1 MiB and bodies are
    // built from bounded inputs; saturating keeps the encoder total anyway.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_map(buf: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    let len = u32::try_from(map.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    for (k, v) in map {
        put_str(buf, k);
        put_str(buf, v);
    }
}

/// Appends the canonical preimage of `r` to `buf`.
pub(crate) fn preimage_into(r: &Receipt, buf: &mut Vec<u8>) {
    let b = &r.body;
    buf.extend_from_slice(DOMAIN_TAG);
    buf.push(FORMAT_VERSION);
    buf.extend_from_slice(&r.seq.to_be_bytes());
    buf.extend_from_slice(r.id.as_bytes());
    buf.extend_from_slice(&b.timestamp.as_ms().to_be_bytes());
    put_str(buf, b.tenant.as_str());
    put_str(buf, b.governor.name());
    put_str(buf, b.resource.as_str());
    buf.extend_from_slice(&b.resource_seq.to_be_bytes());
    put_str(buf, &b.command);
    put_str(buf, &b.state_from);
    put_str(buf, &b.state_to);
    put_str(buf, &b.reason);
    put_map(buf, &b.args);
    put_map(buf, &b.metadata);
    buf.extend_from_slice(&r.prev_hash.0);
}

/// A cursor over the preimage part of a record.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(DecodeError::Truncated { field, offset: self.at })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?) as usize)
    }

    /// A string: its length, its bytes, checked as UTF-8 (ASCII, the common case, by a
    /// word-at-a-time scan). Returned as bytes, which are valid UTF-8.
    fn str(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        let offset = self.at;
        let bytes = self.take(len, field)?;
        if !bytes.is_ascii() && std::str::from_utf8(bytes).is_err() {
            return Err(DecodeError::BadUtf8 { field, offset });
        }
        Ok(bytes)
    }

    /// A string that must be a valid id: its length, its bytes checked as UTF-8, then as an
    /// id by `check` ([`TenantId::new`] or [`ResourceId::new`]).
    fn id(
        &mut self,
        field: &'static str,
        check: fn(&str) -> Result<(), IdError>,
    ) -> Result<&'a str, DecodeError> {
        let len = self.u32(field)?;
        let offset = self.at;
        let bytes = self.take(len, field)?;
        let id_byte = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
        let valid = !bytes.is_empty() && bytes.len() <= ID_LEN_MAX && bytes.iter().all(id_byte);
        let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8 { field, offset })?;
        if !valid {
            // Anything the quick check above does not accept is decided (and the error
            // given) by the id type's own check.
            check(s).map_err(|source| DecodeError::BadId { field, source })?;
        }
        Ok(s)
    }

    /// A map, its keys' order checked: each entry goes to `entry`.
    fn map(
        &mut self,
        field: &'static str,
        mut entry: impl FnMut(&'a [u8], &'a [u8]),
    ) -> Result<(), DecodeError> {
        let count = self.u32(field)?;
        let mut last: Option<&[u8]> = None;
        for _ in 0..count {
            let offset = self.at;
            let k = self.str(field)?;
            if last.is_some_and(|l| l >= k) {
                return Err(DecodeError::KeysNotSorted { field, offset });
            }
            let v = self.str(field)?;
            entry(k, v);
            last = Some(k);
        }
        Ok(())
    }
}

/// Which map an entry belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MapField {
    Args,
    Metadata,
}

/// The fields of a storage record, checked and borrowed from it. The strings other than
/// the ids are bytes, checked as UTF-8.
struct Fields<'a> {
    seq: u64,
    id: [u8; 16],
    timestamp: u64,
    tenant: &'a str,
    governor: GovernorKind,
    resource: &'a str,
    resource_seq: u64,
    command: &'a [u8],
    state_from: &'a [u8],
    state_to: &'a [u8],
    reason: &'a [u8],
    prev_hash: [u8; 32],
}

/// The one parser behind [`decode`] and [`decode_key`], so that both accept exactly the
/// same records and give the same error for every other: the frame ([`check_frame`]), then
/// each field in order (its length, UTF-8, a known governor, valid ids, strictly increasing
/// map keys), then nothing left before `prev_hash`. Allocates nothing unless it fails; the
/// map entries go to `entry`.
fn parse<'a>(
    record: &'a [u8],
    mut entry: impl FnMut(MapField, &'a [u8], &'a [u8]),
) -> Result<Fields<'a>, DecodeError> {
    check_frame(record)?;
    let preimage = &record[..record.len() - 32];
    let mut r = Reader { bytes: preimage, at: SEQ_OFFSET };
    let seq = r.u64("seq")?;
    let id = r.array("receipt_id")?;
    let timestamp = r.u64("timestamp")?;
    let tenant = r.id("tenant_id", |s| TenantId::new(s).map(drop))?;
    let governor_name = r.str("governor")?;
    let governor = GovernorKind::ALL
        .into_iter()
        .find(|k| k.name().as_bytes() == governor_name)
        .ok_or_else(|| DecodeError::UnknownGovernor(text(governor_name)))?;
    let resource = r.id("resource_id", |s| ResourceId::new(s).map(drop))?;
    let resource_seq = r.u64("resource_seq")?;
    let command = r.str("command")?;
    let state_from = r.str("state_from")?;
    let state_to = r.str("state_to")?;
    let reason = r.str("reason")?;
    r.map("args", |k, v| entry(MapField::Args, k, v))?;
    r.map("metadata", |k, v| entry(MapField::Metadata, k, v))?;
    let prev_hash = r.array("prev_hash")?;
    if r.at != preimage.len() {
        return Err(DecodeError::TrailingBytes { offset: r.at, extra: preimage.len() - r.at });
    }
    Ok(Fields {
        seq,
        id,
        timestamp,
        tenant,
        governor,
        resource,
        resource_seq,
        command,
        state_from,
        state_to,
        reason,
        prev_hash,
    })
}

/// Bytes the parser checked as UTF-8, as a string (nothing is replaced).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a ledger indexes and numbers a receipt by, borrowed from its storage record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptKey<'a> {
    /// The tenant id (valid: checked as [`TenantId::new`] checks it).
    pub tenant: &'a str,
    /// The governor kind.
    pub governor: GovernorKind,
    /// The resource id (valid: checked as [`ResourceId::new`] checks it).
    pub resource: &'a str,
    /// The number of earlier receipts of the same (tenant, governor, resource), as the
    /// record says.
    pub resource_seq: u64,
}

/// Checks a storage record exactly as [`decode`] does, without allocating, and returns its
/// key (see [`Receipt::decode_key`]).
pub(crate) fn decode_key(record: &[u8]) -> Result<ReceiptKey<'_>, DecodeError> {
    if let Some(key) = quick_key(record) {
        return Ok(key);
    }
    let f = parse(record, |_, _, _| {})?;
    Ok(ReceiptKey {
        tenant: f.tenant,
        governor: f.governor,
        resource: f.resource,
        resource_seq: f.resource_seq,
    })
}

/// The bytes an id may hold: `A-Z a-z 0-9 . _ : -` (the rule of [`TenantId::new`] and
/// [`ResourceId::new`], for ASCII; anything else is decided by them).
const ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-');
        b += 1;
    }
    table
};

/// The common case of [`decode_key`], in one lean pass: a record whose every field is in
/// place, whose ids are plainly valid (1 to 128 id bytes), and whose strings from `command`
/// to the end of `metadata` are all ASCII, so UTF-8 with no need to check them one by one.
/// `None` for anything else, which [`parse`] then decides (and names, if it is an error):
/// so this accepts only records `parse` accepts, with the same key.
fn quick_key(record: &[u8]) -> Option<ReceiptKey<'_>> {
    let len = record.len();
    if !(RECORD_LEN_MIN..=RECORD_LEN_MAX).contains(&len)
        || record.get(..DOMAIN_TAG.len())? != DOMAIN_TAG
        || record.get(DOMAIN_TAG.len()) != Some(&FORMAT_VERSION)
    {
        return None;
    }
    // The fields between the timestamp and `prev_hash`.
    let fields = record.get(..len - 64)?;
    let key_start = TIMESTAMP_OFFSET + 8;
    let mut at = key_start;
    let tenant = quick_id(fields, &mut at)?;
    let governor = quick_governor(fields.get(quick_field(fields, &mut at)?)?)?;
    let resource = quick_id(fields, &mut at)?;
    // Ids of id bytes, a known governor name and lengths below 128 are ASCII: the key's
    // bytes are checked as UTF-8 in one call, and the ids cut from them.
    let key = std::str::from_utf8(fields.get(key_start..at)?).ok()?;
    let tenant = key.get(tenant.start - key_start..tenant.end - key_start)?;
    let resource = key.get(resource.start - key_start..resource.end - key_start)?;
    let resource_seq = u64::from_be_bytes(fields.get(at..at + 8)?.try_into().ok()?);
    at += 8;
    let texts = at;
    for _ in 0..4 {
        quick_field(fields, &mut at)?;
    }
    quick_map(fields, &mut at)?;
    quick_map(fields, &mut at)?;
    (at == fields.len() && fields.get(texts..)?.is_ascii()).then_some(ReceiptKey {
        tenant,
        governor,
        resource,
        resource_seq,
    })
}

/// Every governor kind by its name's bytes, known when compiling: looking one up compares a
/// few bytes against constants rather than calling `memcmp` eight times.
const KINDS: [(&[u8], GovernorKind); 8] = {
    let mut kinds = [(&[] as &[u8], GovernorKind::Tenant); 8];
    let mut i = 0;
    while i < kinds.len() {
        kinds[i] = (GovernorKind::ALL[i].name().as_bytes(), GovernorKind::ALL[i]);
        i += 1;
    }
    kinds
};

/// The governor kind named `name`.
#[inline]
fn quick_governor(name: &[u8]) -> Option<GovernorKind> {
    KINDS.into_iter().find(|(known, _)| known.len() == name.len() && *known == name).map(|(_, k)| k)
}

/// Whether `last` < `key` in bytewise order: a loop that suits short keys better than a
/// call to `memcmp`.
#[inline]
fn precedes(last: &[u8], key: &[u8]) -> bool {
    for (a, b) in last.iter().zip(key) {
        if a != b {
            return a < b;
        }
    }
    last.len() < key.len()
}

/// Where the string at `at` in `fields` lies (its bytes, not checked), moving `at` past it.
#[inline]
fn quick_field(fields: &[u8], at: &mut usize) -> Option<std::ops::Range<usize>> {
    let len = u32::from_be_bytes(fields.get(*at..*at + 4)?.try_into().ok()?) as usize;
    let start = *at + 4;
    let end = start.checked_add(len).filter(|&end| end <= fields.len())?;
    *at = end;
    Some(start..end)
}

/// Where the id at `at` in `fields` lies, if it is plainly valid, moving `at` past it.
#[inline]
fn quick_id(fields: &[u8], at: &mut usize) -> Option<std::ops::Range<usize>> {
    let range = quick_field(fields, at)?;
    let id = fields.get(range.clone())?;
    let valid =
        !id.is_empty() && id.len() <= ID_LEN_MAX && id.iter().all(|&b| ID_BYTES[b as usize]);
    valid.then_some(range)
}

/// The map at `at` in `fields`, its keys strictly increasing, moving `at` past it.
#[inline]
fn quick_map(fields: &[u8], at: &mut usize) -> Option<()> {
    let count = u32::from_be_bytes(fields.get(*at..*at + 4)?.try_into().ok()?);
    *at += 4;
    let mut last: Option<&[u8]> = None;
    for _ in 0..count {
        let key = fields.get(quick_field(fields, at)?)?;
        if last.is_some_and(|last| !precedes(last, key)) {
            return None;
        }
        quick_field(fields, at)?;
        last = Some(key);
    }
    Some(())
}

/// Decodes a storage record (see [`Receipt::decode`]).
pub(crate) fn decode(record: &[u8]) -> Result<Receipt, DecodeError> {
    let mut args = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let f = parse(record, |map, k, v| {
        let map = if map == MapField::Args { &mut args } else { &mut metadata };
        map.insert(text(k), text(v));
    })?;
    let tenant = TenantId::new(f.tenant)
        .map_err(|source| DecodeError::BadId { field: "tenant_id", source })?;
    let resource = ResourceId::new(f.resource)
        .map_err(|source| DecodeError::BadId { field: "resource_id", source })?;
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&record[record.len() - 32..]);
    let body = ReceiptBody {
        timestamp: Timestamp(f.timestamp),
        tenant,
        governor: f.governor,
        resource,
        resource_seq: f.resource_seq,
        command: Cow::Owned(text(f.command)),
        state_from: Cow::Owned(text(f.state_from)),
        state_to: Cow::Owned(text(f.state_to)),
        reason: text(f.reason),
        args,
        metadata,
    };
    Ok(Receipt {
        seq: f.seq,
        id: Uuid::from_bytes(f.id),
        body,
        prev_hash: Digest(f.prev_hash),
        hash: Digest(hash),
    })
}

/// Checks the length bounds, the tag and the version of a record.
pub(crate) fn check_frame(record: &[u8]) -> Result<(), DecodeError> {
    if record.len() < RECORD_LEN_MIN {
        return Err(DecodeError::TooShort { len: record.len(), min: RECORD_LEN_MIN });
    }
    if record.len() > RECORD_LEN_MAX {
        return Err(DecodeError::TooLong { len: record.len(), max: RECORD_LEN_MAX });
    }
    if &record[..DOMAIN_TAG.len()] != DOMAIN_TAG {
        return Err(DecodeError::BadTag);
    }
    match record[DOMAIN_TAG.len()] {
        FORMAT_VERSION => Ok(()),
        v => Err(DecodeError::UnsupportedVersion(v)),
    }
}

/// Reads a big-endian u64 at `offset` of a record already checked by [`check_frame`].
pub(crate) fn u64_at(record: &[u8], offset: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&record[offset..offset + 8]);
    u64::from_be_bytes(b)
}
