//! Verifying a chain of receipts: the first bad receipt is named, with what is wrong.

use crate::digest::Digest;
use crate::encode::{self, DecodeError, ID_OFFSET, ReceiptKey, SEQ_OFFSET, TIMESTAMP_OFFSET};
use crate::receipt::{Receipt, derive_receipt_id};
use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};

/// Where a verified chain ends: the next sequence number and the hash to link to.
///
/// As JSON (serde): `{"next_seq":3,"last_hash":"<64 lowercase hex>"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The sequence number the next receipt must carry (the number of receipts so far).
    pub next_seq: u64,
    /// The hash of the last receipt, or [`Digest::ZERO`] for an empty chain.
    pub last_hash: Digest,
}

impl Head {
    /// The head of an empty chain.
    pub const GENESIS: Self = Self { next_seq: 0, last_hash: Digest::ZERO };
}

/// The first problem found in a chain. `seq` is always the position in the chain where the
/// problem is (the sequence number the receipt there should have), even when the receipt's
/// own `seq` field is what was damaged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The record at `seq` does not decode.
    #[error("receipt {seq}: malformed record: {source}")]
    Malformed {
        /// The position.
        seq: u64,
        /// Why.
        source: DecodeError,
    },
    /// The receipt's fields do not hash to its stored hash: it was altered.
    #[error("receipt {seq}: hash mismatch: stored {stored}, computed {computed}")]
    HashMismatch {
        /// The position.
        seq: u64,
        /// The hash the receipt carries.
        stored: Digest,
        /// The hash of its fields.
        computed: Digest,
    },
    /// The receipt carries another sequence number than its position.
    #[error("sequence gap: expected receipt {expected}, found {found}")]
    SequenceGap {
        /// The position.
        expected: u64,
        /// The sequence number found there.
        found: u64,
    },
    /// The receipt's `prev_hash` is not the previous receipt's hash.
    #[error(
        "receipt {seq}: broken link: prev_hash is {found}, previous receipt's hash is {expected}"
    )]
    BrokenLink {
        /// The position.
        seq: u64,
        /// The previous receipt's hash.
        expected: Digest,
        /// The `prev_hash` found.
        found: Digest,
    },
    /// The receipt id is not the one derived from its timestamp and `prev_hash`.
    #[error("receipt {seq}: receipt id is not derived from its timestamp and prev_hash")]
    IdMismatch {
        /// The position.
        seq: u64,
    },
    /// The receipt's `resource_seq` is not the number of earlier receipts of its (tenant,
    /// governor, resource): a receipt of the resource is missing before it (`found` >
    /// `expected`), or it repeats or goes back (`found` < `expected`).
    #[error(
        "receipt {seq}: resource_seq gap: {governor} {resource} of tenant {tenant} has \
         resource_seq {found}, expected {expected}"
    )]
    ResourceSeqGap {
        /// The position.
        seq: u64,
        /// The receipt's tenant.
        tenant: TenantId,
        /// Its governor kind.
        governor: GovernorKind,
        /// Its resource.
        resource: ResourceId,
        /// The number of earlier receipts of the resource.
        expected: u64,
        /// The `resource_seq` the receipt carries.
        found: u64,
    },
}

impl ChainError {
    /// The position of the bad receipt.
    #[must_use]
    pub fn seq(&self) -> u64 {
        match self {
            Self::Malformed { seq, .. }
            | Self::HashMismatch { seq, .. }
            | Self::BrokenLink { seq, .. }
            | Self::IdMismatch { seq }
            | Self::ResourceSeqGap { seq, .. } => *seq,
            Self::SequenceGap { expected, .. } => *expected,
        }
    }

    /// A stable snake_case name of the problem.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::HashMismatch { .. } => "hash_mismatch",
            Self::SequenceGap { .. } => "sequence_gap",
            Self::BrokenLink { .. } => "broken_link",
            Self::IdMismatch { .. } => "id_mismatch",
            Self::ResourceSeqGap { .. } => "resource_seq_gap",
        }
    }

    /// A [`ResourceSeqGap`](Self::ResourceSeqGap) at `seq`, for the receipt whose key
    /// ([`Receipt::decode_key`]) is `key`: its `resource_seq` is not `expected`.
    #[must_use]
    pub fn resource_seq_gap(seq: u64, key: &ReceiptKey<'_>, expected: u64) -> Self {
        // The ids of a key `decode_key` returned are valid; were one changed since, the
        // record would be malformed, and that is what is reported.
        match key.ids() {
            Ok((tenant, resource)) => Self::ResourceSeqGap {
                seq,
                tenant,
                governor: key.governor,
                resource,
                expected,
                found: key.resource_seq,
            },
            Err(source) => Self::Malformed { seq, source },
        }
    }
}

/// Checks receipts one at a time, in order, from the genesis or from a known head.
#[derive(Debug)]
pub struct ChainVerifier {
    head: Head,
    /// Scratch space for preimages, reused across receipts.
    buf: Vec<u8>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::resume(Head::GENESIS)
    }
}

impl ChainVerifier {
    /// A verifier expecting receipt 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier continuing after `head`.
    #[must_use]
    pub fn resume(head: Head) -> Self {
        Self { head, buf: Vec::with_capacity(512) }
    }

    /// The head after the receipts accepted so far.
    #[must_use]
    pub fn head(&self) -> Head {
        self.head
    }

    /// Checks a decoded receipt: its hash over its fields, then sequence, link and id.
    ///
    /// # Errors
    /// The first problem, at this position.
    pub fn push(&mut self, r: &Receipt) -> Result<(), ChainError> {
        let seq = self.head.next_seq;
        let computed = r.compute_hash(&mut self.buf);
        if computed != r.hash {
            return Err(ChainError::HashMismatch { seq, stored: r.hash, computed });
        }
        self.check_place(r.seq, r.prev_hash, r.id.as_bytes(), r.body.timestamp)?;
        self.head = Head { next_seq: seq + 1, last_hash: r.hash };
        Ok(())
    }

    /// Checks a storage record without decoding it: frame, hash, sequence, link and id. Any
    /// changed byte fails the hash (or the frame), so this detects every alteration; use
    /// [`Receipt::decode`] as well where the fields themselves are needed.
    ///
    /// # Errors
    /// The first problem, at this position.
    pub fn push_record(&mut self, record: &[u8]) -> Result<Digest, ChainError> {
        let seq = self.head.next_seq;
        encode::check_frame(record).map_err(|source| ChainError::Malformed { seq, source })?;
        let (preimage, stored) = record.split_at(record.len() - 32);
        let computed = sha256(preimage);
        let mut stored_hash = [0u8; 32];
        stored_hash.copy_from_slice(stored);
        let stored = Digest(stored_hash);
        if computed != stored {
            return Err(ChainError::HashMismatch { seq, stored, computed });
        }
        let mut prev = [0u8; 32];
        prev.copy_from_slice(&preimage[preimage.len() - 32..]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&record[ID_OFFSET..ID_OFFSET + 16]);
        let timestamp = Timestamp(encode::u64_at(record, TIMESTAMP_OFFSET));
        self.check_place(encode::u64_at(record, SEQ_OFFSET), Digest(prev), &id, timestamp)?;
        self.head = Head { next_seq: seq + 1, last_hash: stored };
        Ok(stored)
    }

    /// The `prev_hash` a storage record carries (the 32 bytes before its stored hash), or
    /// `None` if the record is too short to hold both. Nothing else is checked.
    ///
    /// For verifying a chain in stretches, in parallel: each stretch is checked by a verifier
    /// [`resume`](Self::resume)d at `Head { next_seq: its first seq, last_hash: the
    /// prev_hash of its first record }`, which makes every check but one, the link into the
    /// stretch; the caller makes that one by comparing each stretch's first `prev_hash` with
    /// the previous stretch's last hash ([`Digest::ZERO`] before receipt 0).
    #[must_use]
    pub fn record_prev_hash(record: &[u8]) -> Option<Digest> {
        let start = record.len().checked_sub(64)?;
        let prev = record.get(start..start + 32)?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(prev);
        Some(Digest(bytes))
    }

    fn check_place(
        &self,
        found_seq: u64,
        prev: Digest,
        id: &[u8; 16],
        timestamp: Timestamp,
    ) -> Result<(), ChainError> {
        let Head { next_seq: seq, last_hash } = self.head;
        if found_seq != seq {
            return Err(ChainError::SequenceGap { expected: seq, found: found_seq });
        }
        if prev != last_hash {
            return Err(ChainError::BrokenLink { seq, expected: last_hash, found: prev });
        }
        if derive_receipt_id(timestamp, &prev).as_bytes() != id {
            return Err(ChainError::IdMismatch { seq });
        }
        Ok(())
    }
}

/// Verifies a whole chain from receipt 0.
///
/// # Errors
/// The first bad receipt and what is wrong with it.
pub fn verify_chain<'a>(
    receipts: impl IntoIterator<Item = &'a Receipt>,
) -> Result<Head, ChainError> {
    let mut v = ChainVerifier::new();
    for r in receipts {
        v.push(r)?;
    }
    Ok(v.head())
}

/// The initial SHA-256 state (FIPS 180-4 §5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// SHA-256 of `data`, compressing its whole blocks in place and padding (FIPS 180-4 §5.1.1)
/// only the rest, on the stack: the same hash as `Sha256::digest`, without the streaming
/// hasher's buffering (every receipt checked takes one).
fn sha256(data: &[u8]) -> Digest {
    let blocks = data.chunks_exact(64);
    let rest = blocks.remainder();
    let mut state = SHA256_IV;
    for block in blocks.filter_map(|block| <&[u8; 64]>::try_from(block).ok()) {
        sha2::block_api::compress256(&mut state, std::slice::from_ref(block));
    }
    let mut tail = [[0u8; 64]; 2];
    let used = if rest.len() + 9 <= 64 { 1 } else { 2 };
    let flat = tail[..used].as_flattened_mut();
    flat[..rest.len()].copy_from_slice(rest);
    flat[rest.len()] = 0x80;
    let end = flat.len();
    flat[end - 8..].copy_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    sha2::block_api::compress256(&mut state, &tail[..used]);
    let mut out = [0u8; 32];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    Digest(out)
}

#[cfg(test)]
mod sha256_tests {
    use sha2::{Digest as _, Sha256};

    #[test]
    fn sha256_is_the_streaming_hashers() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + i / 5) as u8).collect();
        for len in 0..=data.len() {
            let expected = super::Digest(Sha256::digest(&data[..len]).into());
            assert_eq!(super::sha256(&data[..len]), expected, "{len} bytes");
        }
    }
}
