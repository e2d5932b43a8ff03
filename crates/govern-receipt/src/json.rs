//! The JSON view of a receipt, for export and logs: flat, hashes in lowercase hex.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{GovernorKind, IdError, ResourceId, TenantId, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::digest::{Digest, DigestParseError};
use crate::receipt::{Receipt, ReceiptBody};

/// A receipt as JSON. Field names are the spec's; integers stay below 2^53 in practice
/// (sequence numbers and millisecond timestamps), so they are JSON numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptJson {
    /// Global sequence number.
    pub seq: u64,
    /// UUIDv7, hyphenated lowercase.
    pub receipt_id: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Tenant id.
    pub tenant_id: String,
    /// Governor kind name.
    pub governor: String,
    /// Resource id.
    pub resource_id: String,
    /// Per-resource sequence number.
    pub resource_seq: u64,
    /// Command name.
    pub command: String,
    /// State before.
    pub state_from: String,
    /// State after.
    pub state_to: String,
    /// Why.
    pub reason: String,
    /// Command arguments, sorted by key.
    pub args: BTreeMap<String, String>,
    /// Caller metadata, sorted by key.
    pub metadata: BTreeMap<String, String>,
    /// Previous receipt's hash, lowercase hex.
    pub prev_hash: String,
    /// This receipt's hash, lowercase hex.
    pub hash: String,
}

/// A JSON receipt does not convert back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not valid JSON for the view.
    #[error("not a receipt JSON object: {0}")]
    Syntax(String),
    /// A hash is not 64 lowercase hex characters.
    #[error("{field}: {source}")]
    Digest {
        /// `hash` or `prev_hash`.
        field: &'static str,
        /// Why.
        source: DigestParseError,
    },
    /// The receipt id is not a UUID.
    #[error("receipt_id is not a UUID")]
    ReceiptId,
    /// The governor is unknown.
    #[error("unknown governor {0:?}")]
    Governor(String),
    /// A tenant or resource id is invalid.
    #[error("{field}: {source}")]
    Id {
        /// The field.
        field: &'static str,
        /// Why.
        source: IdError,
    },
}

impl From<&Receipt> for ReceiptJson {
    fn from(r: &Receipt) -> Self {
        let b = &r.body;
        Self {
            seq: r.seq,
            receipt_id: r.id.hyphenated().to_string(),
            timestamp_ms: b.timestamp.as_ms(),
            tenant_id: b.tenant.to_string(),
            governor: b.governor.name().to_owned(),
            resource_id: b.resource.to_string(),
            resource_seq: b.resource_seq,
            command: b.command.to_string(),
            state_from: b.state_from.to_string(),
            state_to: b.state_to.to_string(),
            reason: b.reason.clone(),
            args: b.args.clone(),
            metadata: b.metadata.clone(),
            prev_hash: r.prev_hash.to_string(),
            hash: r.hash.to_string(),
        }
    }
}

impl TryFrom<ReceiptJson> for Receipt {
    type Error = JsonError;

    fn try_from(j: ReceiptJson) -> Result<Self, JsonError> {
        let digest = |field, s: &str| {
            s.parse::<Digest>().map_err(|source| JsonError::Digest { field, source })
        };
        let body = ReceiptBody {
            timestamp: Timestamp(j.timestamp_ms),
            tenant: TenantId::new(&j.tenant_id)
                .map_err(|source| JsonError::Id { field: "tenant_id", source })?,
            governor: GovernorKind::from_name(&j.governor)
                .ok_or(JsonError::Governor(j.governor))?,
            resource: ResourceId::new(&j.resource_id)
                .map_err(|source| JsonError::Id { field: "resource_id", source })?,
            resource_seq: j.resource_seq,
            command: Cow::Owned(j.command),
            state_from: Cow::Owned(j.state_from),
            state_to: Cow::Owned(j.state_to),
            reason: j.reason,
            args: j.args,
            metadata: j.metadata,
        };
        Ok(Self {
            seq: j.seq,
            id: Uuid::parse_str(&j.receipt_id).map_err(|_| JsonError::ReceiptId)?,
            body,
            prev_hash: digest("prev_hash", &j.prev_hash)?,
            hash: digest("hash", &j.hash)?,
        })
    }
}

/// A receipt serialises as its JSON view ([`ReceiptJson`], `docs/receipts.md`, "JSON view"):
/// the one object `govern export` prints on each line, so a host returns receipts as they
/// are and any verifier of exports reads them.
impl Serialize for Receipt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ReceiptJson::from(self).serialize(serializer)
    }
}

/// Parses the JSON view as [`Receipt::from_json`] does: field values are checked, the hash
/// is not (verify the chain for that).
impl<'de> Deserialize<'de> for Receipt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::try_from(ReceiptJson::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl Receipt {
    /// The JSON view as one line (what `Serialize` writes).
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings, integers and string maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses the JSON view (it does not verify the hash: verify the chain for that).
    ///
    /// # Errors
    /// [`JsonError`] on bad JSON or bad field values.
    pub fn from_json(s: &str) -> Result<Self, JsonError> {
        let j: ReceiptJson =
            serde_json::from_str(s).map_err(|e| JsonError::Syntax(e.to_string()))?;
        Self::try_from(j)
    }
}
