//! The receipt: one accepted transition, sealed into the chain.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{
    Args, CommandSpec, Governor, GovernorKind, Request, ResourceId, StateSpec, TenantId, Timestamp,
    Transition,
};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::digest::Digest;
use crate::encode;

/// What a governor's accepted transition says, before the ledger places it in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptBody {
    /// The decision time (the `Ctx::now` the governor decided with).
    pub timestamp: Timestamp,
    /// The tenant the governor belongs to.
    pub tenant: TenantId,
    /// The governor kind.
    pub governor: GovernorKind,
    /// The resource the governor governs, unique per (tenant, kind).
    pub resource: ResourceId,
    /// How many receipts this resource had before this one (0 for its first).
    pub resource_seq: u64,
    /// The accepted command's stable name.
    pub command: Cow<'static, str>,
    /// The state before.
    pub state_from: Cow<'static, str>,
    /// The state after.
    pub state_to: Cow<'static, str>,
    /// Why the command was sent.
    pub reason: String,
    /// The command's canonical arguments; enough to replay it.
    pub args: Args,
    /// The caller's context, sorted by key.
    pub metadata: BTreeMap<String, String>,
}

impl ReceiptBody {
    /// The body for an accepted transition of governor `G`.
    #[must_use]
    pub fn for_transition<G: Governor>(
        tenant: TenantId,
        resource: ResourceId,
        resource_seq: u64,
        request: &Request<G::Command>,
        transition: Transition<G::State>,
        at: Timestamp,
    ) -> Self {
        Self {
            timestamp: at,
            tenant,
            governor: G::KIND,
            resource,
            resource_seq,
            command: Cow::Borrowed(request.command.name()),
            state_from: Cow::Borrowed(transition.from.name()),
            state_to: Cow::Borrowed(transition.to.name()),
            reason: request.reason.as_str().to_owned(),
            args: request.command.args(),
            metadata: request.metadata.as_map().clone(),
        }
    }
}

/// A sealed receipt: a body at a place in the chain, with its id and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Global sequence number in the ledger, from 0; also the receipt's Merkle leaf index.
    pub seq: u64,
    /// UUIDv7 derived from the timestamp and `prev_hash` ([`derive_receipt_id`]).
    pub id: Uuid,
    /// What happened.
    pub body: ReceiptBody,
    /// The hash of receipt `seq - 1`, or [`Digest::ZERO`] for receipt 0.
    pub prev_hash: Digest,
    /// SHA-256 of this receipt's canonical preimage.
    pub hash: Digest,
}

/// The receipt id: a UUIDv7 (RFC 9562) whose 48-bit time is the receipt's timestamp in
/// milliseconds and whose 74 "random" bits come from the first 10 bytes of `prev_hash`.
///
/// Deriving rather than drawing the id keeps runs reproducible (the same script gives the
/// same receipts, byte for byte) and lets a verifier check it; it stays unique because no
/// two receipts of a chain share a `prev_hash`.
#[must_use]
pub fn derive_receipt_id(timestamp: Timestamp, prev_hash: &Digest) -> Uuid {
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&prev_hash.0[..10]);
    uuid::Builder::from_unix_timestamp_millis(timestamp.as_ms(), &rand).into_uuid()
}

impl Receipt {
    /// Places `body` at `seq` after the receipt whose hash is `prev_hash`: derives the id and
    /// computes the hash. `buf` is scratch space, reused across calls to avoid allocation; on
    /// return it holds the receipt's preimage, so appending the hash gives its storage record.
    #[must_use]
    pub fn seal_with(body: ReceiptBody, seq: u64, prev_hash: Digest, buf: &mut Vec<u8>) -> Self {
        let id = derive_receipt_id(body.timestamp, &prev_hash);
        let mut receipt = Self { seq, id, body, prev_hash, hash: Digest::ZERO };
        receipt.hash = receipt.compute_hash(buf);
        receipt
    }

    /// [`Self::seal_with`] with a fresh buffer.
    #[must_use]
    pub fn seal(body: ReceiptBody, seq: u64, prev_hash: Digest) -> Self {
        Self::seal_with(body, seq, prev_hash, &mut Vec::with_capacity(512))
    }

    /// SHA-256 of the canonical preimage of this receipt's fields (ignores `self.hash`); on
    /// return `buf` holds the preimage.
    #[must_use]
    pub fn compute_hash(&self, buf: &mut Vec<u8>) -> Digest {
        buf.clear();
        encode::preimage_into(self, buf);
        Digest(Sha256::digest(&buf[..]).into())
    }

    /// The storage record: the canonical preimage followed by the 32-byte hash.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(512);
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the storage record to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        encode::preimage_into(self, buf);
        buf.extend_from_slice(&self.hash.0);
    }

    /// Decodes a storage record. Checks the form strictly (tag, version, lengths, UTF-8,
    /// sorted keys, valid ids, no trailing bytes) but not the hash: that is the verifier's job.
    ///
    /// # Errors
    /// [`encode::DecodeError`] naming the field and byte offset.
    pub fn decode(record: &[u8]) -> Result<Self, encode::DecodeError> {
        encode::decode(record)
    }

    /// Checks a storage record exactly as [`Self::decode`] does (tag, version, lengths,
    /// UTF-8, known governor, valid ids, sorted keys, no trailing bytes), without
    /// allocating, and returns what a ledger indexes and numbers it by: tenant, governor,
    /// resource (borrowed from the record) and `resource_seq`. Both run one parser, so
    /// `decode_key` succeeds exactly when `decode` does, and fails with the same error.
    /// What every reader of a ledger checks on each record (`govern verify`, opening a
    /// ledger), as cheaply as it can be checked.
    ///
    /// # Errors
    /// [`encode::DecodeError`] naming the field and byte offset, as `decode` would.
    pub fn decode_key(record: &[u8]) -> Result<encode::ReceiptKey<'_>, encode::DecodeError> {
        encode::decode_key(record)
    }

    /// The short hash (12 hex characters) for transcripts.
    #[must_use]
    pub fn short_hash(&self) -> String {
        self.hash.short()
    }
}
