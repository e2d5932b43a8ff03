//! The claims a licence carries, their rules, and their one canonical JSON encoding (the
//! payload a token signs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{Defect, LicenceError};
use crate::limits::{FEATURES_MAX, ID_LEN_MAX, LIMITS_MAX, NAME_LEN_MAX};

/// What a licence grants, to whom, and when. Times are Unix seconds; the licence is valid
/// for `not_before <= now < expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The licence's own id (the issuer's reference: an order, a contract).
    pub licence_id: String,
    /// The tenant it is for.
    pub tenant: String,
    /// The plan it grants (a catalog's plan id).
    pub plan: String,
    /// The features it grants, sorted and unique (the canonical order).
    pub features: BTreeSet<String>,
    /// Its limits by name (`projects`, `api_calls`), sorted by name.
    pub limits: BTreeMap<String, u64>,
    /// How many seats (named users) it grants.
    pub seats: u32,
    /// When it was issued.
    pub issued_at: u64,
    /// The first second it is valid.
    pub not_before: u64,
    /// The first second it is no longer valid.
    pub expires_at: u64,
}

/// Why claims cannot be signed (or, found in a token, make it malformed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// An id or name is empty, too long, or holds a byte outside `A-Z a-z 0-9 . _ : -`.
    #[error("{claim} {value:?} is not 1 to {max} bytes of A-Z a-z 0-9 . _ : -")]
    BadName {
        /// Which claim (`tenant`, `features`, `limits`, ...).
        claim: &'static str,
        /// The value (cut to its first `max + 1` bytes).
        value: String,
        /// The longest allowed.
        max: usize,
    },
    /// More features than [`FEATURES_MAX`].
    #[error("{count} features, at most {max} allowed")]
    TooManyFeatures {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More limits than [`LIMITS_MAX`].
    #[error("{count} limits, at most {max} allowed")]
    TooManyLimits {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `not_before` is not before `expires_at`: the licence would never be valid.
    #[error("not_before {not_before} is not before expires_at {expires_at}")]
    EmptyWindow {
        /// `not_before`.
        not_before: u64,
        /// `expires_at`.
        expires_at: u64,
    },
}

/// Whether `b` may appear in an id or name.
const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

fn check_name(claim: &'static str, value: &str, max: usize) -> Result<(), ClaimsError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(is_name_byte) {
        let mut cut = value.to_owned();
        if cut.len() > max + 1 {
            let mut end = max + 1;
            while !cut.is_char_boundary(end) {
                end -= 1;
            }
            cut.truncate(end);
        }
        return Err(ClaimsError::BadName { claim, value: cut, max });
    }
    Ok(())
}

impl Claims {
    /// Checks the claims against the format's rules: ids and names, counts, the window.
    ///
    /// # Errors
    /// The first [`ClaimsError`] found.
    pub fn check(&self) -> Result<(), ClaimsError> {
        check_name("licence_id", &self.licence_id, ID_LEN_MAX)?;
        check_name("tenant", &self.tenant, ID_LEN_MAX)?;
        check_name("plan", &self.plan, ID_LEN_MAX)?;
        if self.features.len() > FEATURES_MAX {
            return Err(ClaimsError::TooManyFeatures {
                count: self.features.len(),
                max: FEATURES_MAX,
            });
        }
        for f in &self.features {
            check_name("features", f, NAME_LEN_MAX)?;
        }
        if self.limits.len() > LIMITS_MAX {
            return Err(ClaimsError::TooManyLimits { count: self.limits.len(), max: LIMITS_MAX });
        }
        for name in self.limits.keys() {
            check_name("limits", name, NAME_LEN_MAX)?;
        }
        if self.not_before >= self.expires_at {
            return Err(ClaimsError::EmptyWindow {
                not_before: self.not_before,
                expires_at: self.expires_at,
            });
        }
        Ok(())
    }

    /// Whether the licence is valid at `now` (Unix seconds): `not_before <= now < expires_at`.
    ///
    /// # Errors
    /// [`LicenceError::NotYetValid`] or [`LicenceError::Expired`].
    pub const fn valid_at(&self, now: u64) -> Result<(), LicenceError> {
        if now < self.not_before {
            return Err(LicenceError::NotYetValid { not_before: self.not_before, now });
        }
        if now >= self.expires_at {
            return Err(LicenceError::Expired { expired_at: self.expires_at, now });
        }
        Ok(())
    }

    /// The canonical payload: compact JSON, claims in the documented order, features and
    /// limits sorted, numbers in decimal. Written by hand because names need no escaping
    /// (their bytes are checked) and the bytes are the format. Call on checked claims only.
    pub(crate) fn canonical_json(&self) -> String {
        let mut s = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            r#"{{"licence_id":"{}","tenant":"{}","plan":"{}","features":["#,
            self.licence_id, self.tenant, self.plan
        );
        for (i, f) in self.features.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(s, r#"{comma}"{f}""#);
        }
        s.push_str(r#"],"limits":{"#);
        for (i, (name, value)) in self.limits.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(s, r#"{comma}"{name}":{value}"#);
        }
        let _ = write!(
            s,
            r#"}},"seats":{},"issued_at":{},"not_before":{},"expires_at":{}}}"#,
            self.seats, self.issued_at, self.not_before, self.expires_at
        );
        s
    }

    /// The claims of a payload, which must be their canonical encoding. `position` is where
    /// the payload starts in the token, for the error.
    pub(crate) fn from_payload(payload: &[u8], position: usize) -> Result<Self, LicenceError> {
        let bad = |defect| LicenceError::malformed(defect, position);
        let wire: Wire = serde_json::from_slice(payload)
            .map_err(|e| bad(Defect::Json { message: e.to_string() }))?;
        let missing = |claim| bad(Defect::MissingClaim { claim });
        let claims = Self {
            licence_id: wire.licence_id.ok_or_else(|| missing("licence_id"))?,
            tenant: wire.tenant.ok_or_else(|| missing("tenant"))?,
            plan: wire.plan.ok_or_else(|| missing("plan"))?,
            features: wire.features.ok_or_else(|| missing("features"))?,
            limits: wire.limits.ok_or_else(|| missing("limits"))?,
            seats: wire.seats.ok_or_else(|| missing("seats"))?,
            issued_at: wire.issued_at.ok_or_else(|| missing("issued_at"))?,
            not_before: wire.not_before.ok_or_else(|| missing("not_before"))?,
            expires_at: wire.expires_at.ok_or_else(|| missing("expires_at"))?,
        };
        claims.check().map_err(|e| bad(Defect::Claims(e)))?;
        if claims.canonical_json().as_bytes() != payload {
            return Err(bad(Defect::NotCanonical));
        }
        Ok(claims)
    }
}

/// The payload as it is parsed: every claim optional, so that a missing one is named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    licence_id: Option<String>,
    tenant: Option<String>,
    plan: Option<String>,
    features: Option<BTreeSet<String>>,
    limits: Option<BTreeMap<String, u64>>,
    seats: Option<u32>,
    issued_at: Option<u64>,
    not_before: Option<u64>,
    expires_at: Option<u64>,
}
