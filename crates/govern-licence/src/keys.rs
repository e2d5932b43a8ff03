//! Keys: key ids, signing keys (an HMAC secret or an Ed25519 private key), verifying keys,
//! the keyring a verifier holds, and the text of the key files (`key_file.rs` reads them).

use std::collections::BTreeMap;
use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use ed25519_dalek::Signer as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Serialize;
use sha2::Sha256;

use crate::limits::{HMAC_SECRET_LEN_MAX, HMAC_SECRET_LEN_MIN, KEYS_MAX, KID_LEN_MAX};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The first word of a secret key file.
pub(crate) const SECRET_TAG: &str = "govlic-secret1";
/// The first word of a public key file.
pub(crate) const PUBLIC_TAG: &str = "govlic-public1";

/// A signing scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret (`hs256`): 32-byte MACs.
    Hs256,
    /// Ed25519 (RFC 8032, verified strictly): 64-byte signatures.
    Ed25519,
}

impl Algorithm {
    /// Its name in tokens and key files: `hs256` or `ed25519`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "hs256",
            Self::Ed25519 => "ed25519",
        }
    }

    /// The algorithm with this name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hs256" => Some(Self::Hs256),
            "ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }

    /// Its signatures' length, in bytes.
    #[must_use]
    pub const fn signature_len(self) -> usize {
        match self {
            Self::Hs256 => 32,
            Self::Ed25519 => ed25519_dalek::SIGNATURE_LENGTH,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key, a key file or a keyring is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key id is empty, too long, or holds a byte outside `A-Z a-z 0-9 _ : -`.
    #[error("key id {0:?} is not 1 to {KID_LEN_MAX} bytes of A-Z a-z 0-9 _ : -")]
    BadKid(String),
    /// An HMAC secret is shorter than [`HMAC_SECRET_LEN_MIN`] or longer than
    /// [`HMAC_SECRET_LEN_MAX`] bytes.
    #[error(
        "an HMAC secret of {len} bytes; {HMAC_SECRET_LEN_MIN} to {HMAC_SECRET_LEN_MAX} allowed"
    )]
    SecretLength {
        /// Its length.
        len: usize,
    },
    /// An Ed25519 public key is not a valid curve point.
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
    /// A key file is not one of the two documented lines.
    #[error("not a licence key file: {0}")]
    BadKeyFile(&'static str),
    /// A keyring would hold more than [`KEYS_MAX`] keys.
    #[error("a keyring holds at most {max} keys")]
    TooManyKeys {
        /// The limit.
        max: usize,
    },
}

/// A key id: names the key a token was signed with, so that a verifier holding several keys
/// (rotation) picks the right one without trying each.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(String);

impl Kid {
    /// A key id: 1 to [`KID_LEN_MAX`] bytes of `A-Z a-z 0-9 _ : -` (no dot: it separates a
    /// token's parts).
    ///
    /// # Errors
    /// [`KeyError::BadKid`].
    pub fn new(s: &str) -> Result<Self, KeyError> {
        if Self::is_valid(s) { Ok(Self(s.to_owned())) } else { Err(KeyError::BadKid(s.to_owned())) }
    }

    /// Whether `s` is a valid key id.
    #[must_use]
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty() && s.len() <= KID_LEN_MAX && s.bytes().all(Self::is_kid_byte)
    }

    /// Whether a key id may hold byte `b`.
    #[must_use]
    pub const fn is_kid_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-')
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key id compares and orders as its text, so a keyring looks one up by `&str`.
impl std::borrow::Borrow<str> for Kid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a signing key signs with.
#[derive(Clone)]
enum Signing {
    /// The secret, and the MAC keyed with it (cloned per token).
    Hmac {
        secret: Vec<u8>,
        mac: HmacSha256,
    },
    Ed25519(ed25519_dalek::SigningKey),
}

/// An issuer's key: an HMAC secret or an Ed25519 private key, with its key id.
#[derive(Clone)]
pub struct SigningKey {
    /// Written into every token it signs.
    kid: Kid,
    signing: Signing,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

fn keyed_mac(secret: &[u8]) -> Result<HmacSha256, KeyError> {
    if !(HMAC_SECRET_LEN_MIN..=HMAC_SECRET_LEN_MAX).contains(&secret.len()) {
        return Err(KeyError::SecretLength { len: secret.len() });
    }
    HmacSha256::new_from_slice(secret).map_err(|_| KeyError::SecretLength { len: secret.len() })
}

impl SigningKey {
    /// An HMAC-SHA256 key with this secret (from a random number generator:
    /// [`HMAC_SECRET_LEN`](crate::limits::HMAC_SECRET_LEN) bytes).
    ///
    /// # Errors
    /// [`KeyError::SecretLength`].
    pub fn hmac(kid: Kid, secret: &[u8]) -> Result<Self, KeyError> {
        let mac = keyed_mac(secret)?;
        Ok(Self { kid, signing: Signing::Hmac { secret: secret.to_vec(), mac } })
    }

    /// The Ed25519 key pair of a 32-byte secret seed (RFC 8032's private key).
    #[must_use]
    pub fn ed25519_from_seed(kid: Kid, seed: &[u8; 32]) -> Self {
        Self { kid, signing: Signing::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed)) }
    }

    /// Its key id.
    #[must_use]
    pub const fn kid(&self) -> &Kid {
        &self.kid
    }

    /// Its algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        match self.signing {
            Signing::Hmac { .. } => Algorithm::Hs256,
            Signing::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// The key that verifies its tokens: for HMAC the same secret (so a verifier can also
    /// sign), for Ed25519 the public key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        let verifying = match &self.signing {
            Signing::Hmac { mac, .. } => Verifying::Hmac(mac.clone()),
            Signing::Ed25519(key) => Verifying::Ed25519(key.verifying_key()),
        };
        VerifyingKey { kid: self.kid.clone(), verifying }
    }

    /// The signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.signing {
            Signing::Hmac { mac, .. } => {
                let mut mac = mac.clone();
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            Signing::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }

    /// The secret key file: `govlic-secret1 <alg> <kid> <key in base64url>` and a newline;
    /// the key is the HMAC secret or the Ed25519 seed. Keep it private.
    #[must_use]
    pub fn to_secret_file(&self) -> String {
        let key = match &self.signing {
            Signing::Hmac { secret, .. } => Base64UrlUnpadded::encode_string(secret),
            Signing::Ed25519(key) => Base64UrlUnpadded::encode_string(key.as_bytes()),
        };
        format!("{SECRET_TAG} {} {} {key}\n", self.algorithm(), self.kid)
    }

    /// For Ed25519, the public key file: `govlic-public1 ed25519 <kid> <public key in
    /// base64url>` and a newline; for HMAC there is none (the secret verifies).
    #[must_use]
    pub fn to_public_file(&self) -> Option<String> {
        match &self.signing {
            Signing::Hmac { .. } => None,
            Signing::Ed25519(key) => Some(format!(
                "{PUBLIC_TAG} ed25519 {} {}\n",
                self.kid,
                Base64UrlUnpadded::encode_string(key.verifying_key().as_bytes())
            )),
        }
    }
}

/// What a verifying key checks with.
#[derive(Clone)]
enum Verifying {
    /// The MAC keyed with the shared secret (cloned per token).
    Hmac(HmacSha256),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A verifier's key: an HMAC secret or an Ed25519 public key, with its key id.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The tokens it verifies name it.
    kid: Kid,
    verifying: Verifying,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An Ed25519 public key.
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] if the bytes are not a point of the curve.
    pub fn ed25519(kid: Kid, public: &[u8; 32]) -> Result<Self, KeyError> {
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|_| KeyError::BadPublicKey)?;
        Ok(Self { kid, verifying: Verifying::Ed25519(key) })
    }

    /// An HMAC-SHA256 secret (which also signs: see the crate's docs).
    ///
    /// # Errors
    /// [`KeyError::SecretLength`].
    pub fn hmac(kid: Kid, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(Self { kid, verifying: Verifying::Hmac(keyed_mac(secret)?) })
    }

    /// Its key id.
    #[must_use]
    pub const fn kid(&self) -> &Kid {
        &self.kid
    }

    /// Its algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        match self.verifying {
            Verifying::Hmac(_) => Algorithm::Hs256,
            Verifying::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// Whether `signature` (already of the algorithm's length) signs `message`: the MAC
    /// compared in constant time (`verify_slice`), Ed25519 verified strictly.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifying {
            Verifying::Hmac(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                mac.verify_slice(signature).is_ok()
            }
            Verifying::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
        }
    }
}

/// The verifying keys a verifier holds, by key id: at most [`KEYS_MAX`], HMAC and Ed25519
/// side by side. Rotation: add the new key, issue with it, remove the old one when its
/// tokens have expired or been reissued.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: BTreeMap<Kid, VerifyingKey>,
}

impl Keyring {
    /// An empty keyring (which refuses every token as [`UnknownKey`](crate::LicenceError)).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key, replacing the key with the same id (returned).
    ///
    /// # Errors
    /// [`KeyError::TooManyKeys`] if it would hold more than [`KEYS_MAX`].
    pub fn insert(&mut self, key: VerifyingKey) -> Result<Option<VerifyingKey>, KeyError> {
        if self.keys.len() >= KEYS_MAX && !self.keys.contains_key(key.kid()) {
            return Err(KeyError::TooManyKeys { max: KEYS_MAX });
        }
        Ok(self.keys.insert(key.kid().clone(), key))
    }

    /// Removes the key with this id, returning it.
    pub fn remove(&mut self, kid: &str) -> Option<VerifyingKey> {
        self.keys.remove(kid)
    }

    /// The key with this id.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// How many keys it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, in order.
    pub fn kids(&self) -> impl Iterator<Item = &Kid> {
        self.keys.keys()
    }
}
