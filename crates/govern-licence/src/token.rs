//! The token text: `govlic1.<alg>.<kid>.<payload>.<signature>`, its signing and its
//! verification against a keyring (docs/licences.md has the format byte by byte).

use base64ct::{Base64UrlUnpadded, Encoding as _};
use serde::Serialize;

use crate::claims::{Claims, ClaimsError};
use crate::error::{Defect, LicenceError, Part};
use crate::keys::{Algorithm, Keyring, Kid, SigningKey};
use crate::limits::TOKEN_LEN_MAX;

/// The first part of every token: the format and its version.
pub const PREFIX: &str = "govlic1";

/// A verified licence: who signed it (key id and algorithm) and its claims. Serialises as
/// one JSON object, `{"kid":..,"alg":..,"licence_id":..,...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Licence {
    /// The key that signed it.
    pub kid: String,
    /// The algorithm it was signed with.
    pub alg: Algorithm,
    /// What it grants.
    #[serde(flatten)]
    pub claims: Claims,
}

impl SigningKey {
    /// The token of `claims`, signed with this key. One claims set and key give one token
    /// (the payload is canonical; Ed25519 signatures are deterministic).
    ///
    /// # Errors
    /// [`ClaimsError`] if the claims break a rule of the format.
    pub fn issue(&self, claims: &Claims) -> Result<String, ClaimsError> {
        claims.check()?;
        let payload = Base64UrlUnpadded::encode_string(claims.canonical_json().as_bytes());
        let mut token = format!("{PREFIX}.{}.{}.{payload}", self.algorithm(), self.kid());
        let signature = Base64UrlUnpadded::encode_string(&self.sign(token.as_bytes()));
        token.push('.');
        token.push_str(&signature);
        Ok(token)
    }
}

/// A token split into its parts, each checked for form (not yet for authenticity).
struct Parts<'a> {
    alg: Algorithm,
    kid: &'a str,
    /// Everything before the last dot: the bytes the signature covers.
    signed: &'a str,
    /// The payload, decoded.
    payload: Vec<u8>,
    /// Where the payload part starts in the token.
    payload_at: usize,
    /// The signature, decoded, of the algorithm's length.
    signature: Vec<u8>,
}

/// Decodes canonical unpadded base64url (`part` starts at `at` in the token). `base64ct`
/// is strict: it refuses a byte outside the alphabet, an impossible length and non-zero
/// unused bits in the last character, so one byte string has one text (the properties test
/// holds it to that: a changed last character is never accepted). On failure the error
/// points at the first byte outside the alphabet, else at the last character.
fn decode(text: &str, at: usize, which: Part) -> Result<Vec<u8>, LicenceError> {
    match Base64UrlUnpadded::decode_vec(text) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => {
            let outside =
                text.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            let position = at + outside.unwrap_or(text.len().saturating_sub(1));
            Err(LicenceError::malformed(Defect::BadBase64 { part: which }, position))
        }
    }
}

/// Splits and checks the form of a token: length, five parts, prefix, algorithm, key id,
/// base64url, signature length.
fn split(token: &str) -> Result<Parts<'_>, LicenceError> {
    if token.len() > TOKEN_LEN_MAX {
        let defect = Defect::TooLong { len: token.len(), max: TOKEN_LEN_MAX };
        return Err(LicenceError::malformed(defect, TOKEN_LEN_MAX));
    }
    // The start of each part (at most six are looked at).
    let mut starts = [0usize; 6];
    let mut found = 1;
    for (i, b) in token.bytes().enumerate() {
        if b == b'.' {
            if found == starts.len() {
                break;
            }
            starts[found] = i + 1;
            found += 1;
        }
    }
    if found != 5 {
        let position = if found > 5 { starts[5] - 1 } else { token.len() };
        return Err(LicenceError::malformed(Defect::PartCount { found }, position));
    }
    let part = |i: usize| {
        let end = if i == 4 { token.len() } else { starts[i + 1] - 1 };
        &token[starts[i]..end]
    };
    if part(0) != PREFIX {
        return Err(LicenceError::malformed(Defect::BadPrefix, 0));
    }
    let alg = Algorithm::from_name(part(1))
        .ok_or_else(|| LicenceError::malformed(Defect::UnknownAlgorithm, starts[1]))?;
    let kid = part(2);
    if !Kid::is_valid(kid) {
        let i = kid.bytes().position(|b| !Kid::is_kid_byte(b)).unwrap_or(0);
        return Err(LicenceError::malformed(Defect::BadKid, starts[2] + i));
    }
    let payload = decode(part(3), starts[3], Part::Payload)?;
    let signature = decode(part(4), starts[4], Part::Signature)?;
    if signature.len() != alg.signature_len() {
        let defect = Defect::SignatureLength {
            len: signature.len(),
            expected: alg.signature_len(),
            algorithm: alg,
        };
        return Err(LicenceError::malformed(defect, starts[4]));
    }
    Ok(Parts {
        alg,
        kid,
        signed: &token[..starts[4] - 1],
        payload,
        payload_at: starts[3],
        signature,
    })
}

impl Keyring {
    /// Verifies a token at `now` (Unix seconds): its form, its key, its signature, its
    /// claims, then its validity window. No cache: see [`Verifier`](crate::Verifier).
    ///
    /// # Errors
    /// The [`LicenceError`] of the first check that fails, in that order.
    pub fn verify(&self, token: &str, now: u64) -> Result<Licence, LicenceError> {
        let licence = self.authenticate(token)?;
        licence.claims.valid_at(now)?;
        Ok(licence)
    }

    /// Every check but the validity window: what a cache may keep.
    pub(crate) fn authenticate(&self, token: &str) -> Result<Licence, LicenceError> {
        let parts = split(token)?;
        let key = self
            .get(parts.kid)
            .ok_or_else(|| LicenceError::UnknownKey { kid: parts.kid.to_owned() })?;
        if key.algorithm() != parts.alg {
            return Err(LicenceError::WrongAlgorithm {
                kid: parts.kid.to_owned(),
                token: parts.alg,
                key: key.algorithm(),
            });
        }
        if !key.verifies(parts.signed.as_bytes(), &parts.signature) {
            return Err(LicenceError::BadSignature { kid: parts.kid.to_owned() });
        }
        // Signed by a key we trust: only now is the payload parsed.
        let claims = Claims::from_payload(&parts.payload, parts.payload_at)?;
        Ok(Licence { kid: parts.kid.to_owned(), alg: parts.alg, claims })
    }
}
