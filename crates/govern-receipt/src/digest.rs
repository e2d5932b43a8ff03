//! SHA-256 digests, printed as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// All zeros: the `prev_hash` of the first receipt of a chain.
    pub const ZERO: Self = Self([0; 32]);

    /// The first 12 hex characters, for transcripts and logs.
    #[must_use]
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Digest {
    /// The 64 lowercase hex characters, without allocating.
    fn hex<'b>(&self, buf: &'b mut [u8; 64]) -> &'b str {
        // 32 bytes always fit 64 hex characters, and hex is ASCII.
        let _ = hex::encode_to_slice(self.0, buf);
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex(&mut [0; 64]))
    }
}

/// Serialised as its [`Display`](fmt::Display) form: a string of 64 lowercase hex
/// characters, as in the receipt JSON view.
impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.hex(&mut [0; 64]))
    }
}

/// Parsed as [`FromStr`] parses: exactly 64 lowercase hex characters.
impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 lowercase hex characters")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                s.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A string is not 64 lowercase hex characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 lowercase hex characters, found {found:?}")]
pub struct DigestParseError {
    /// What was found (cut to 80 characters).
    pub found: String,
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DigestParseError { found: s.chars().take(80).collect() };
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad())?;
        Ok(Self(out))
    }
}
