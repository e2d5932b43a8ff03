//! Test ledgers of crafted records: every field's bytes chosen freely (an unknown governor,
//! an invalid id, bytes that are not UTF-8, unsorted map keys, a length that runs past the
//! preimage...), each record sealed with a hash over those bytes and linked to the one
//! before, so that the chain is valid and only decoding (or the per-resource numbering) can
//! find what is wrong. Written through the store's API, never as frame bytes.

use std::path::Path;

use govern_governors::Timestamp;
use govern_receipt::{DOMAIN_TAG, Digest, FORMAT_VERSION, derive_receipt_id};
use sha2::Digest as _;

use crate::ledger::LedgerStore;
use crate::segment::{SegmentOptions, SegmentStore};

/// The fields of a crafted record, as raw bytes.
#[derive(Clone, Debug)]
pub(crate) struct Fields {
    pub(crate) timestamp: u64,
    pub(crate) tenant: Vec<u8>,
    pub(crate) governor: Vec<u8>,
    pub(crate) resource: Vec<u8>,
    pub(crate) resource_seq: u64,
    pub(crate) command: Vec<u8>,
    pub(crate) state_from: Vec<u8>,
    pub(crate) state_to: Vec<u8>,
    pub(crate) reason: Vec<u8>,
    /// Written in this order, as they are (unsorted or repeated if so given).
    pub(crate) args: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) metadata: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes written between the metadata and `prev_hash`.
    pub(crate) trailing: Vec<u8>,
    /// The length written before the reason, instead of its own.
    pub(crate) reason_len: Option<u32>,
    /// The entry count written before the args, instead of theirs.
    pub(crate) args_count: Option<u32>,
}

impl Fields {
    /// A well-formed receipt of quota `resource` of tenant `acme`, numbered `resource_seq`.
    pub(crate) fn good(resource: &str, resource_seq: u64) -> Self {
        Self {
            timestamp: 1_767_225_600_000 + resource_seq,
            tenant: b"acme".to_vec(),
            governor: b"quota".to_vec(),
            resource: resource.as_bytes().to_vec(),
            resource_seq,
            command: b"check_quota".to_vec(),
            state_from: b"normal".to_vec(),
            state_to: b"normal".to_vec(),
            reason: b"metering".to_vec(),
            args: vec![(b"usage".to_vec(), b"1".to_vec())],
            metadata: Vec::new(),
            trailing: Vec::new(),
            reason_len: None,
            args_count: None,
        }
    }
}

fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn put_map(buf: &mut Vec<u8>, map: &[(Vec<u8>, Vec<u8>)], count: Option<u32>) {
    buf.extend_from_slice(&count.unwrap_or(map.len() as u32).to_be_bytes());
    for (k, v) in map {
        put(buf, k);
        put(buf, v);
    }
}

/// The storage record of `fields` at `seq` after `prev`, its id derived and its hash
/// computed over the preimage as written: the record and its hash.
pub(crate) fn record(seq: u64, prev: Digest, f: &Fields) -> (Vec<u8>, Digest) {
    let mut buf = Vec::new();
    buf.extend_from_slice(DOMAIN_TAG);
    buf.push(FORMAT_VERSION);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(derive_receipt_id(Timestamp(f.timestamp), &prev).as_bytes());
    buf.extend_from_slice(&f.timestamp.to_be_bytes());
    put(&mut buf, &f.tenant);
    put(&mut buf, &f.governor);
    put(&mut buf, &f.resource);
    buf.extend_from_slice(&f.resource_seq.to_be_bytes());
    put(&mut buf, &f.command);
    put(&mut buf, &f.state_from);
    put(&mut buf, &f.state_to);
    match f.reason_len {
        Some(len) => {
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&f.reason);
        }
        None => put(&mut buf, &f.reason),
    }
    put_map(&mut buf, &f.args, f.args_count);
    put_map(&mut buf, &f.metadata, None);
    buf.extend_from_slice(&f.trailing);
    buf.extend_from_slice(&prev.0);
    let hash = Digest(sha2::Sha256::digest(&buf).into());
    buf.extend_from_slice(&hash.0);
    (buf, hash)
}

/// Writes the records of `fields`, chained from receipt 0, into a segment store in data
/// directory `dir` (segments of `segment_bytes`), through the store's API.
pub(crate) fn write_dir(dir: &Path, segment_bytes: u64, fields: &[Fields]) {
    let options = SegmentOptions { segment_bytes, ..SegmentOptions::default() };
    let (mut store, _) = SegmentStore::open(dir, options).unwrap();
    let mut prev = Digest::ZERO;
    for (seq, f) in (0u64..).zip(fields) {
        let (bytes, hash) = record(seq, prev, f);
        store.append(seq, &bytes).unwrap();
        prev = hash;
    }
    store.sync().unwrap();
}

/// `n` well-formed receipts of three resources, in turn (`q-0`, `q-1`, `q-2`), each
/// numbered from 0.
pub(crate) fn good_fields(n: u64) -> Vec<Fields> {
    (0..n).map(|i| Fields::good(&format!("q-{}", i % 3), i / 3)).collect()
}

/// What makes a well-formed record something else.
pub(crate) type Spoil = fn(&mut Fields);

/// Every kind of record that hashes correctly but does not decode: its name, and what to do
/// to a well-formed record to make it so.
pub(crate) fn undecodable() -> Vec<(&'static str, Spoil)> {
    vec![
        ("unknown governor", |f| f.governor = b"quotas".to_vec()),
        ("invalid tenant id", |f| f.tenant = b"ac me".to_vec()),
        ("empty tenant id", |f| f.tenant = Vec::new()),
        ("invalid resource id", |f| f.resource = b"q/1".to_vec()),
        ("resource id too long", |f| f.resource = vec![b'q'; 129]),
        ("non-UTF-8 tenant id", |f| f.tenant = b"ac\xffme".to_vec()),
        ("non-UTF-8 governor", |f| f.governor = b"quot\xc3".to_vec()),
        ("non-UTF-8 command", |f| f.command = b"check\xc0\xafquota".to_vec()),
        ("non-UTF-8 state", |f| f.state_to = b"norm\xed\xa0\x80al".to_vec()),
        ("non-UTF-8 reason", |f| f.reason = b"meter\xffing".to_vec()),
        ("non-UTF-8 map key", |f| f.args = vec![(b"us\xfe".to_vec(), b"1".to_vec())]),
        ("non-UTF-8 map value", |f| f.metadata = vec![(b"k".to_vec(), b"\x80".to_vec())]),
        ("unsorted map keys", |f| {
            f.args = vec![(b"b".to_vec(), b"1".to_vec()), (b"a".to_vec(), b"2".to_vec())];
        }),
        ("duplicate map keys", |f| {
            f.metadata = vec![(b"a".to_vec(), b"1".to_vec()), (b"a".to_vec(), b"2".to_vec())];
        }),
        ("bytes past the last map", |f| f.trailing = b"??".to_vec()),
        ("a length past the preimage", |f| f.reason_len = Some(100_000)),
        ("a map count past the preimage", |f| f.args_count = Some(2)),
    ]
}
