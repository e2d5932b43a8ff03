//! The canonical binary encoding of receipt format v1 (specified in `docs/receipts.md`).
//!
//! Preimage = tag ‖ version ‖ seq ‖ id ‖ timestamp ‖ tenant ‖ governor ‖ resource ‖
//! resource_seq ‖ command ‖ state_from ‖ state_to ‖ reason ‖ args ‖ metadata ‖ prev_hash.
//! Integers are big-endian; strings are a u32 byte length then UTF-8; maps are a u32 count
//! then (key, value) strings with keys in strictly increasing byte order. A storage record
//! is the preimage followed by the 32-byte hash.

use std::borrow::Cow;
use std::collections::BTreeMap;

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

    fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.u32(field)?;
        let offset = self.at;
        std::str::from_utf8(self.take(len, field)?)
            .map_err(|_| DecodeError::BadUtf8 { field, offset })
    }

    fn map(&mut self, field: &'static str) -> Result<BTreeMap<String, String>, DecodeError> {
        let mut map = BTreeMap::new();
        self.map_with(field, |k, v| {
            map.insert(k.to_owned(), v.to_owned());
        })?;
        Ok(map)
    }

    /// Reads a map, checking its keys' order, and hands each entry to `f`.
    fn map_with(
        &mut self,
        field: &'static str,
        mut f: impl FnMut(&'a str, &'a str),
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
            f(k, v);
            last = Some(k);
        }
        Ok(())
    }
}

/// What a ledger indexes a receipt by, borrowed from its storage record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptKey<'a> {
    /// The tenant id, as stored (not yet checked as an id: see [`Receipt::decode_key`]).
    pub tenant: &'a str,
    /// The governor kind.
    pub governor: GovernorKind,
    /// The resource id, as stored (not yet checked as an id).
    pub resource: &'a str,
}

/// Checks a storage record as [`decode`] does, without allocating, and returns its key (see
/// [`Receipt::decode_key`]).
pub(crate) fn decode_key(record: &[u8]) -> Result<ReceiptKey<'_>, DecodeError> {
    check_frame(record)?;
    let preimage = &record[..record.len() - 32];
    let mut r = Reader { bytes: preimage, at: TIMESTAMP_OFFSET + 8 };
    let tenant = r.str("tenant_id")?;
    let governor_name = r.str("governor")?;
    let governor = GovernorKind::from_name(governor_name)
        .ok_or_else(|| DecodeError::UnknownGovernor(governor_name.to_owned()))?;
    let resource = r.str("resource_id")?;
    r.u64("resource_seq")?;
    for field in ["command", "state_from", "state_to", "reason"] {
        r.str(field)?;
    }
    r.map_with("args", |_, _| {})?;
    r.map_with("metadata", |_, _| {})?;
    r.take(32, "prev_hash")?;
    if r.at != preimage.len() {
        return Err(DecodeError::TrailingBytes { offset: r.at, extra: preimage.len() - r.at });
    }
    Ok(ReceiptKey { tenant, governor, resource })
}

/// Decodes a storage record (see [`Receipt::decode`]).
pub(crate) fn decode(record: &[u8]) -> Result<Receipt, DecodeError> {
    check_frame(record)?;
    let (preimage, hash) = record.split_at(record.len() - 32);
    let mut r = Reader { bytes: preimage, at: SEQ_OFFSET };
    let seq = r.u64("seq")?;
    let id = Uuid::from_bytes(r.array("receipt_id")?);
    let timestamp = Timestamp(r.u64("timestamp")?);
    let tenant = TenantId::new(r.str("tenant_id")?)
        .map_err(|source| DecodeError::BadId { field: "tenant_id", source })?;
    let governor_name = r.str("governor")?;
    let governor = GovernorKind::from_name(governor_name)
        .ok_or_else(|| DecodeError::UnknownGovernor(governor_name.to_owned()))?;
    let resource = ResourceId::new(r.str("resource_id")?)
        .map_err(|source| DecodeError::BadId { field: "resource_id", source })?;
    let resource_seq = r.u64("resource_seq")?;
    let command = Cow::Owned(r.str("command")?.to_owned());
    let state_from = Cow::Owned(r.str("state_from")?.to_owned());
    let state_to = Cow::Owned(r.str("state_to")?.to_owned());
    let reason = r.str("reason")?.to_owned();
    let args = r.map("args")?;
    let metadata = r.map("metadata")?;
    let prev_hash = Digest(r.array("prev_hash")?);
    if r.at != preimage.len() {
        return Err(DecodeError::TrailingBytes { offset: r.at, extra: preimage.len() - r.at });
    }
    let mut h = [0u8; 32];
    h.copy_from_slice(hash);
    let body = ReceiptBody {
        timestamp,
        tenant,
        governor,
        resource,
        resource_seq,
        command,
        state_from,
        state_to,
        reason,
        args,
        metadata,
    };
    Ok(Receipt { seq, id, body, prev_hash, hash: Digest(h) })
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
