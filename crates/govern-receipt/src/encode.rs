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

    /// A string: its length, its bytes, checked as UTF-8.
    fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.u32(field)?;
        let offset = self.at;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8 { field, offset })
    }

    /// A string that must be a valid id: a string ([`Self::str`]), then the id rule (one
    /// for tenant and resource ids, [`TenantId::validate`]).
    fn id(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let s = self.str(field)?;
        TenantId::validate(s).map_err(|source| DecodeError::BadId { field, source })?;
        Ok(s)
    }

    /// A map, its keys' order checked (bytewise): each entry goes to `entry`.
    fn map(
        &mut self,
        field: &'static str,
        mut entry: impl FnMut(&'a str, &'a str),
    ) -> Result<(), DecodeError> {
        let count = self.u32(field)?;
        let mut last: Option<&str> = None;
        for _ in 0..count {
            let offset = self.at;
            let k = self.str(field)?;
            if last.is_some_and(|l| l.as_bytes() >= k.as_bytes()) {
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

/// The fields of a storage record, checked and borrowed from it.
struct Fields<'a> {
    seq: u64,
    id: [u8; 16],
    timestamp: u64,
    tenant: &'a str,
    governor: GovernorKind,
    resource: &'a str,
    resource_seq: u64,
    command: &'a str,
    state_from: &'a str,
    state_to: &'a str,
    reason: &'a str,
    prev_hash: [u8; 32],
}

/// The one parser behind [`decode`] and [`decode_key`], so that both accept exactly the
/// same records and give the same error for every other: the frame ([`check_frame`]), then
/// each field in order (its length, UTF-8, a known governor, valid ids, strictly increasing
/// map keys), then nothing left before `prev_hash`. Allocates nothing unless it fails; the
/// map entries go to `entry`.
fn parse<'a>(
    record: &'a [u8],
    mut entry: impl FnMut(MapField, &'a str, &'a str),
) -> Result<Fields<'a>, DecodeError> {
    check_frame(record)?;
    let preimage = &record[..record.len() - 32];
    let mut r = Reader { bytes: preimage, at: SEQ_OFFSET };
    let seq = r.u64("seq")?;
    let id = r.array("receipt_id")?;
    let timestamp = r.u64("timestamp")?;
    let tenant = r.id("tenant_id")?;
    let governor_name = r.str("governor")?;
    let governor = GovernorKind::from_name(governor_name)
        .ok_or_else(|| DecodeError::UnknownGovernor(governor_name.to_owned()))?;
    let resource = r.id("resource_id")?;
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

/// What a ledger indexes and numbers a receipt by, borrowed from its storage record. Only
/// [`Receipt::decode_key`] makes one (it is `non_exhaustive`), so its ids are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

impl ReceiptKey<'_> {
    /// The tenant and resource ids, as ids.
    ///
    /// # Errors
    /// [`DecodeError::BadId`] only if a field was set to an invalid id after
    /// [`Receipt::decode_key`] returned the key (the fields are public to read).
    pub fn ids(&self) -> Result<(TenantId, ResourceId), DecodeError> {
        let tenant = TenantId::new(self.tenant)
            .map_err(|source| DecodeError::BadId { field: "tenant_id", source })?;
        let resource = ResourceId::new(self.resource)
            .map_err(|source| DecodeError::BadId { field: "resource_id", source })?;
        Ok((tenant, resource))
    }
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

/// The bytes an id may hold ([`TenantId::is_id_byte`]), as a table.
const ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = TenantId::is_id_byte(b as u8);
        b += 1;
    }
    table
};

/// The common case of [`decode_key`], in one lean pass: a record whose every field is in
/// place, whose ids are valid, and whose every other string (`command` to the end of
/// `metadata`) is ASCII, so UTF-8 with no need to decode it. `None` for anything else (a
/// string that is not ASCII, even if it is UTF-8, and every error), which [`parse`] then
/// decides (and names, if it is an error): so this accepts only records `parse` accepts,
/// with the same key.
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
    let mut at = TIMESTAMP_OFFSET + 8;
    let tenant = quick_id(fields, &mut at)?;
    let governor = GovernorKind::from_name_bytes(fields.get(quick_field(fields, &mut at)?)?)?;
    let resource = quick_id(fields, &mut at)?;
    let resource_seq = u64::from_be_bytes(fields.get(at..at + 8)?.try_into().ok()?);
    at += 8;
    // The other strings must be ASCII. One scan over all of them, length prefixes and map
    // counts included, settles the common case; a prefix or count with a byte of 128 or more
    // (a string of 128 to 255 bytes, say) has them checked one by one instead.
    let texts = at;
    quick_texts(fields, &mut at, false)?;
    let ascii = fields.get(texts..at)?.is_ascii()
        || quick_texts(fields, &mut texts.clone(), true).is_some();
    (at == fields.len() && ascii).then_some(ReceiptKey { tenant, governor, resource, resource_seq })
}

/// The strings from `command` to the end of `metadata`, at `at` in `fields`, moving `at`
/// past them: the maps' keys strictly increasing and, if `ascii`, every string ASCII.
#[inline]
fn quick_texts(fields: &[u8], at: &mut usize, ascii: bool) -> Option<()> {
    for _ in 0..4 {
        quick_text(fields, at, ascii)?;
    }
    quick_map(fields, at, ascii)?;
    quick_map(fields, at, ascii)
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

/// The string at `at` in `fields` (if `ascii`, only if it is ASCII), moving `at` past it.
#[inline]
fn quick_text<'a>(fields: &'a [u8], at: &mut usize, ascii: bool) -> Option<&'a [u8]> {
    let text = fields.get(quick_field(fields, at)?)?;
    (!ascii || text.is_ascii()).then_some(text)
}

/// The id at `at` in `fields`, if it is valid, moving `at` past it.
#[inline]
fn quick_id<'a>(fields: &'a [u8], at: &mut usize) -> Option<&'a str> {
    let id = fields.get(quick_field(fields, at)?)?;
    let valid =
        !id.is_empty() && id.len() <= ID_LEN_MAX && id.iter().all(|&b| ID_BYTES[b as usize]);
    // Id bytes are ASCII: this is only how the bytes become a `str` without `unsafe`.
    if valid { std::str::from_utf8(id).ok() } else { None }
}

/// The map at `at` in `fields`, its keys strictly increasing (if `ascii`, its strings
/// ASCII), moving `at` past it.
#[inline]
fn quick_map(fields: &[u8], at: &mut usize, ascii: bool) -> Option<()> {
    let count = u32::from_be_bytes(fields.get(*at..*at + 4)?.try_into().ok()?);
    *at += 4;
    let mut last: Option<&[u8]> = None;
    for _ in 0..count {
        let key = quick_text(fields, at, ascii)?;
        if last.is_some_and(|last| !precedes(last, key)) {
            return None;
        }
        quick_text(fields, at, ascii)?;
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
        map.insert(k.to_owned(), v.to_owned());
    })?;
    // `parse` checked both ids; building them checks them again (no id is built unchecked),
    // which cannot fail.
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
        command: Cow::Owned(f.command.to_owned()),
        state_from: Cow::Owned(f.state_from.to_owned()),
        state_to: Cow::Owned(f.state_to.to_owned()),
        reason: f.reason.to_owned(),
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use govern_governors::limits::ID_LEN_MAX;
    use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};

    use super::{parse, quick_key};
    use crate::{Digest, Receipt, ReceiptBody};

    /// A record whose strings are ASCII, with ids of `id_len` bytes and texts of `text_len`.
    fn record(id_len: usize, text_len: usize, text: char) -> Vec<u8> {
        let text = text.to_string().repeat(text_len);
        let body = ReceiptBody {
            timestamp: Timestamp(1_767_225_600_000),
            tenant: TenantId::new(&"t".repeat(id_len)).unwrap(),
            governor: GovernorKind::Billing,
            resource: ResourceId::new(&"r".repeat(id_len)).unwrap(),
            resource_seq: 3,
            command: Cow::Owned(text.clone()),
            state_from: Cow::Borrowed("a"),
            state_to: Cow::Borrowed("b"),
            reason: text.clone(),
            args: BTreeMap::from([(text.clone(), text.clone())]),
            metadata: BTreeMap::from([("k".into(), text)]),
        };
        Receipt::seal(body, 9, Digest::ZERO).encode()
    }

    /// The quick path takes every record whose strings are ASCII, whatever their lengths
    /// (a length prefix is not text: one of 128 to 255 bytes is no reason to leave it), and
    /// finds the key the parser finds; a string that is UTF-8 but not ASCII is left to it.
    #[test]
    fn the_quick_path_takes_ascii_strings_of_any_length() {
        for (id_len, text_len) in [(1, 0), (ID_LEN_MAX, 0), (ID_LEN_MAX, 128), (7, 200), (7, 300)] {
            let record = record(id_len, text_len, 'x');
            let quick = quick_key(&record);
            let parsed = parse(&record, |_, _, _| {}).unwrap();
            let key = quick.unwrap_or_else(|| panic!("ids of {id_len}, texts of {text_len}"));
            assert_eq!(
                (key.tenant, key.governor, key.resource, key.resource_seq),
                (parsed.tenant, parsed.governor, parsed.resource, parsed.resource_seq)
            );
        }
        assert_eq!(quick_key(&record(7, 3, 'é')), None);
        assert!(parse(&record(7, 3, 'é'), |_, _, _| {}).is_ok());
    }
}
