//! Why a token is refused: [`LicenceError`], one variant per kind of refusal, each with a
//! stable code and a family (malformed, not authentic, outside its validity window).

use crate::claims::ClaimsError;
use crate::keys::Algorithm;

/// A refused token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LicenceError {
    /// The text is not a token of this format: nothing about its key or claims can be known.
    #[error("malformed licence token at byte {position}: {what}")]
    Malformed {
        /// What is wrong.
        what: Defect,
        /// The byte offset in the token where it was found (the offending byte, or the start
        /// of the part at fault).
        position: usize,
    },
    /// No verifying key has the token's key id: signed by a key this verifier does not hold
    /// (another issuer's, or one rotated out).
    #[error("licence signed with unknown key {kid:?}")]
    UnknownKey {
        /// The token's key id.
        kid: String,
    },
    /// The key with the token's key id is of another algorithm than the token names.
    #[error("licence names algorithm {token} but key {kid:?} is {key}")]
    WrongAlgorithm {
        /// The token's key id.
        kid: String,
        /// The algorithm the token names.
        token: Algorithm,
        /// The algorithm of the key with that id.
        key: Algorithm,
    },
    /// The signature does not match: the token was changed after signing, or signed with
    /// another key under the same key id.
    #[error("licence signature does not match key {kid:?} (tampered, or another key)")]
    BadSignature {
        /// The token's key id.
        kid: String,
    },
    /// Authentic, but `now` is at or after its expiry.
    #[error("licence expired at {expired_at} (Unix seconds), now is {now}")]
    Expired {
        /// The token's `expires_at`, Unix seconds.
        expired_at: u64,
        /// The `now` it was checked at.
        now: u64,
    },
    /// Authentic, but `now` is before its `not_before`.
    #[error("licence not valid before {not_before} (Unix seconds), now is {now}")]
    NotYetValid {
        /// The token's `not_before`, Unix seconds.
        not_before: u64,
        /// The `now` it was checked at.
        now: u64,
    },
}

/// The three kinds of refusal, for a caller that treats them differently (a malformed token
/// is a client bug, an inauthentic one an attack or a rotation mistake, a time refusal a
/// renewal due).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// [`LicenceError::Malformed`].
    Malformed,
    /// [`LicenceError::UnknownKey`], [`LicenceError::WrongAlgorithm`],
    /// [`LicenceError::BadSignature`].
    Inauthentic,
    /// [`LicenceError::Expired`], [`LicenceError::NotYetValid`].
    Time,
}

impl LicenceError {
    /// A stable snake_case code: `malformed`, `unknown_key`, `wrong_algorithm`,
    /// `bad_signature`, `expired`, `not_yet_valid`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::UnknownKey { .. } => "unknown_key",
            Self::WrongAlgorithm { .. } => "wrong_algorithm",
            Self::BadSignature { .. } => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
        }
    }

    /// Its family.
    #[must_use]
    pub const fn family(&self) -> Family {
        match self {
            Self::Malformed { .. } => Family::Malformed,
            Self::UnknownKey { .. } | Self::WrongAlgorithm { .. } | Self::BadSignature { .. } => {
                Family::Inauthentic
            }
            Self::Expired { .. } | Self::NotYetValid { .. } => Family::Time,
        }
    }

    pub(crate) const fn malformed(what: Defect, position: usize) -> Self {
        Self::Malformed { what, position }
    }
}

/// The base64url parts of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The fourth part: the claims.
    Payload,
    /// The fifth part: the signature.
    Signature,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// What makes a token malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Defect {
    /// Longer than [`TOKEN_LEN_MAX`](crate::limits::TOKEN_LEN_MAX) bytes.
    #[error("{len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not five parts separated by dots.
    #[error("{found} dot-separated parts, expected 5 (govlic1.alg.kid.payload.signature)")]
    PartCount {
        /// How many parts it has (counting stops at 6).
        found: usize,
    },
    /// The first part is not [`PREFIX`](crate::PREFIX).
    #[error("does not start with govlic1 (another format, or another version of this one)")]
    BadPrefix,
    /// The second part names no known algorithm.
    #[error("unknown algorithm (expected hs256 or ed25519)")]
    UnknownAlgorithm,
    /// The key id is empty, too long, or holds a byte outside `A-Z a-z 0-9 _ : -`.
    #[error("bad key id (1 to 64 bytes of A-Z a-z 0-9 _ : -)")]
    BadKid,
    /// A part is not canonical unpadded base64url (a byte outside the alphabet, an
    /// impossible length, or non-zero trailing bits).
    #[error("the {part} is not canonical base64url without padding")]
    BadBase64 {
        /// Which part.
        part: Part,
    },
    /// The signature has the wrong length for the algorithm.
    #[error("the signature is {len} bytes, {algorithm} signatures are {expected}")]
    SignatureLength {
        /// Its length, decoded.
        len: usize,
        /// What the algorithm's are.
        expected: usize,
        /// The token's algorithm.
        algorithm: Algorithm,
    },
    /// The payload is not a JSON object of the claims (not JSON, a claim of the wrong type,
    /// or an unknown claim).
    #[error("the payload is not the claims' JSON: {message}")]
    Json {
        /// serde_json's message.
        message: String,
    },
    /// A claim is missing from the payload.
    #[error("the payload has no `{claim}` claim")]
    MissingClaim {
        /// Its name.
        claim: &'static str,
    },
    /// The payload decodes, but is not the canonical encoding of its claims (keys out of
    /// order, white space, duplicates, features unsorted): one claims set has one token.
    #[error("the payload is not in canonical form")]
    NotCanonical,
    /// A claim breaks a rule of the format (a bound, a name's bytes, the validity window).
    #[error("the payload's claims are invalid: {0}")]
    Claims(ClaimsError),
}
