//! Key files: one line, `govlic-secret1 <alg> <kid> <key>` or `govlic-public1 ed25519 <kid>
//! <key>`, the key in base64url without padding (`docs/licences.md`, "Key files").

use base64ct::{Base64UrlUnpadded, Encoding as _};

use crate::keys::{Algorithm, KeyError, Kid, PUBLIC_TAG, SECRET_TAG, SigningKey, VerifyingKey};
use crate::limits::KEY_FILE_LEN_MAX;

/// A parsed key file.
#[derive(Clone, Debug)]
pub enum KeyFile {
    /// A secret key file: signs, and verifies.
    Secret(SigningKey),
    /// A public key file (Ed25519): verifies only.
    Public(VerifyingKey),
}

impl KeyFile {
    /// Parses a key file (one line; surrounding white space ignored).
    ///
    /// # Errors
    /// [`KeyError::BadKeyFile`] naming the problem, or the key's own error.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.len() > KEY_FILE_LEN_MAX {
            return Err(KeyError::BadKeyFile("longer than a key file"));
        }
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let [tag, alg, kid, key] = words.as_slice() else {
            return Err(KeyError::BadKeyFile("expected four words: tag, algorithm, key id, key"));
        };
        let alg = Algorithm::from_name(alg)
            .ok_or(KeyError::BadKeyFile("unknown algorithm (expected hs256 or ed25519)"))?;
        let kid = Kid::new(kid)?;
        let bytes = Base64UrlUnpadded::decode_vec(key)
            .map_err(|_| KeyError::BadKeyFile("the key is not base64url without padding"))?;
        let exact32 = || -> Result<[u8; 32], KeyError> {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| KeyError::BadKeyFile("an Ed25519 key is 32 bytes"))
        };
        match (*tag, alg) {
            (SECRET_TAG, Algorithm::Hs256) => Ok(Self::Secret(SigningKey::hmac(kid, &bytes)?)),
            (SECRET_TAG, Algorithm::Ed25519) => {
                Ok(Self::Secret(SigningKey::ed25519_from_seed(kid, &exact32()?)))
            }
            (PUBLIC_TAG, Algorithm::Ed25519) => {
                Ok(Self::Public(VerifyingKey::ed25519(kid, &exact32()?)?))
            }
            (PUBLIC_TAG, Algorithm::Hs256) => {
                Err(KeyError::BadKeyFile("an HMAC key has no public form"))
            }
            _ => {
                Err(KeyError::BadKeyFile("the first word is not govlic-secret1 or govlic-public1"))
            }
        }
    }

    /// The key that verifies (for a secret file, its verifying key).
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            Self::Secret(k) => k.verifying_key(),
            Self::Public(k) => k.clone(),
        }
    }
}
