//! Stripe-style webhook signatures: `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`.
//!
//! The signed payload is `"{t}.{body}"`, the MAC is HMAC-SHA256 keyed with the endpoint's
//! secret, written as 64 lower- or upper-case hex digits. Elements with another scheme
//! (`v0=...`, a future `v2=...`) are ignored, as Stripe's libraries do. A header is accepted
//! when any `v1` matches under any configured secret (rotation: old and new secret both
//! accepted for a while), compared in constant time (`hmac`'s `verify_slice`), and its `t`
//! lies within the tolerance window around `now`, in either direction.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest signature header accepted, in bytes (room for a dozen `v1` values).
pub const SIGNATURE_HEADER_LEN_MAX: usize = 1024;
/// Default tolerance, in seconds, between a header's `t` and `now`, in either direction
/// (Stripe's default).
pub const TOLERANCE_SECS_DEFAULT: u64 = 300;
/// Most secrets one verifier holds (the current one plus those being rotated out).
pub const SECRETS_MAX: usize = 8;
/// Longest secret accepted, in bytes.
pub const SECRET_LEN_MAX: usize = 256;
/// Length of an HMAC-SHA256 value, in bytes.
pub const MAC_LEN: usize = 32;

/// Why a signature header does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Longer than [`SIGNATURE_HEADER_LEN_MAX`] bytes.
    #[error("signature header is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An element (between commas) has no `=`.
    #[error("signature header element {index} has no '=' (expected scheme=value)")]
    MalformedElement {
        /// Its 0-based position among the elements.
        index: usize,
    },
    /// No `t=` element.
    #[error("signature header has no timestamp (t=...)")]
    MissingTimestamp,
    /// Two or more `t=` elements.
    #[error("signature header has more than one timestamp (t=...)")]
    DuplicateTimestamp,
    /// `t` is not a number of seconds.
    #[error("signature header timestamp {value:?} is not a number of seconds")]
    BadTimestamp {
        /// The value found.
        value: String,
    },
    /// No `v1=` element.
    #[error("signature header has no v1 signature")]
    MissingSignature,
    /// A `v1` value is not hex.
    #[error("v1 signature {index} is not hex")]
    BadHex {
        /// Its 0-based position among the `v1` values.
        index: usize,
    },
    /// A `v1` value is hex but not [`MAC_LEN`] bytes.
    #[error("v1 signature {index} is {len} bytes, not {expected}")]
    BadSignatureLength {
        /// Its 0-based position among the `v1` values.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// [`MAC_LEN`].
        expected: usize,
    },
}

/// A parsed signature header: its timestamp and its `v1` MACs, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `t`, Unix seconds.
    pub timestamp: u64,
    /// Every `v1` value, decoded.
    pub signatures: Vec<[u8; MAC_LEN]>,
}

impl SignatureHeader {
    /// Parses a header.
    ///
    /// # Errors
    /// [`HeaderError`] naming the first problem.
    pub fn parse(header: &str) -> Result<Self, HeaderError> {
        if header.len() > SIGNATURE_HEADER_LEN_MAX {
            return Err(HeaderError::TooLong { len: header.len(), max: SIGNATURE_HEADER_LEN_MAX });
        }
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for (index, element) in header.split(',').enumerate() {
            let Some((scheme, value)) = element.trim().split_once('=') else {
                return Err(HeaderError::MalformedElement { index });
            };
            match scheme {
                "t" => {
                    if timestamp.is_some() {
                        return Err(HeaderError::DuplicateTimestamp);
                    }
                    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                    let t = value.parse::<u64>().ok().filter(|_| digits);
                    timestamp =
                        Some(t.ok_or_else(|| HeaderError::BadTimestamp {
                            value: value.to_owned(),
                        })?);
                }
                "v1" => {
                    let index = signatures.len();
                    let bytes = hex::decode(value).map_err(|_| HeaderError::BadHex { index })?;
                    let mac = <[u8; MAC_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
                        HeaderError::BadSignatureLength {
                            index,
                            len: bytes.len(),
                            expected: MAC_LEN,
                        }
                    })?;
                    signatures.push(mac);
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(HeaderError::MissingTimestamp)?;
        if signatures.is_empty() {
            return Err(HeaderError::MissingSignature);
        }
        Ok(Self { timestamp, signatures })
    }
}

/// Why a verifier cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// No secret given.
    #[error("a webhook verifier needs at least one secret")]
    NoSecrets,
    /// More than [`SECRETS_MAX`] secrets.
    #[error("{count} webhook secrets given, at most {max} allowed")]
    TooManySecrets {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A secret is empty or longer than [`SECRET_LEN_MAX`] bytes.
    #[error("webhook secret {index} is {len} bytes; 1 to {max} allowed")]
    BadSecret {
        /// Its 0-based position.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a delivery's signature is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The header does not parse.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// No `v1` matches the body under any secret (tampered body or signature, wrong secret).
    #[error("no v1 signature matches the body under any configured secret")]
    NoMatch,
    /// Authentic, but `t` is more than the tolerance before `now` (a replay, or a late retry).
    #[error("signature timestamp is {age_secs} s old, more than the {tolerance_secs} s tolerated")]
    Stale {
        /// `now - t`.
        age_secs: u64,
        /// The tolerance.
        tolerance_secs: u64,
    },
    /// Authentic, but `t` is more than the tolerance after `now` (the sender's clock, or a
    /// forged future timestamp to extend a replay window).
    #[error(
        "signature timestamp is {ahead_secs} s in the future, more than the {tolerance_secs} s tolerated"
    )]
    Future {
        /// `t - now`.
        ahead_secs: u64,
        /// The tolerance.
        tolerance_secs: u64,
    },
}

/// An accepted signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The header's `t`, Unix seconds.
    pub timestamp: u64,
    /// Which configured secret matched (0-based), to see when an old one falls out of use.
    pub secret_index: usize,
}

/// Verifies signature headers against one or more secrets.
///
/// Secrets are not shown by `Debug`.
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<Vec<u8>>,
    tolerance_secs: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl Verifier {
    /// A verifier accepting any of `secrets` (current first), with
    /// [`TOLERANCE_SECS_DEFAULT`].
    ///
    /// # Errors
    /// [`VerifierError`] when there is none, too many, or one is empty or too long.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Result<Self, VerifierError> {
        if secrets.is_empty() {
            return Err(VerifierError::NoSecrets);
        }
        if secrets.len() > SECRETS_MAX {
            return Err(VerifierError::TooManySecrets { count: secrets.len(), max: SECRETS_MAX });
        }
        let mut out = Vec::with_capacity(secrets.len());
        for (index, s) in secrets.iter().enumerate() {
            let s = s.as_ref();
            if s.is_empty() || s.len() > SECRET_LEN_MAX {
                return Err(VerifierError::BadSecret { index, len: s.len(), max: SECRET_LEN_MAX });
            }
            out.push(s.to_vec());
        }
        Ok(Self { secrets: out, tolerance_secs: TOLERANCE_SECS_DEFAULT })
    }

    /// The same verifier with another tolerance, in seconds.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance_secs: u64) -> Self {
        self.tolerance_secs = tolerance_secs;
        self
    }

    /// The tolerance, in seconds.
    #[must_use]
    pub fn tolerance_secs(&self) -> u64 {
        self.tolerance_secs
    }

    /// Verifies `header` for `body` at `now` (Unix seconds).
    ///
    /// The MAC is checked first, so a stale or future refusal is about an authentic
    /// delivery (as Stripe's libraries order it).
    ///
    /// # Errors
    /// [`VerifyError`]: the header's parse error, no match, stale or future.
    pub fn verify(&self, header: &str, body: &[u8], now: u64) -> Result<Verified, VerifyError> {
        let parsed = SignatureHeader::parse(header)?;
        let secret_index = self
            .secrets
            .iter()
            .position(|secret| {
                let Some(mac) = keyed(secret, parsed.timestamp, body) else { return false };
                // `verify_slice` consumes the MAC: clone it for each candidate.
                parsed.signatures.iter().any(|sig| mac.clone().verify_slice(sig).is_ok())
            })
            .ok_or(VerifyError::NoMatch)?;
        let t = parsed.timestamp;
        if t < now && now - t > self.tolerance_secs {
            return Err(VerifyError::Stale {
                age_secs: now - t,
                tolerance_secs: self.tolerance_secs,
            });
        }
        if t > now && t - now > self.tolerance_secs {
            return Err(VerifyError::Future {
                ahead_secs: t - now,
                tolerance_secs: self.tolerance_secs,
            });
        }
        Ok(Verified { timestamp: t, secret_index })
    }
}

/// HMAC-SHA256 keyed with `secret`, fed `"{t}.{body}"`; `None` only if the key is refused
/// (HMAC takes keys of any length, so never in practice).
fn keyed(secret: &[u8], t: u64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The raw `v1` MAC of `body` at `t` under `secret`; all zeros if the key were refused
/// (HMAC takes keys of any length, so never in practice).
#[must_use]
pub fn signature(secret: &[u8], t: u64, body: &[u8]) -> [u8; MAC_LEN] {
    let mut out = [0u8; MAC_LEN];
    if let Some(mac) = keyed(secret, t, body) {
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// A signature header `t=<t>,v1=<hex>` for `body` under `secret`: for tests, and for
/// signing outbound webhooks the same way.
#[must_use]
pub fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(signature(secret, t, body)))
}
