//! Licence keys: signed tokens that carry a tenant's plan, features, limits, seats and
//! validity window, checked offline or server-side; pure (no I/O, no clock: `now` is an
//! argument, in Unix seconds).
//!
//! A token is one line of text, `govlic1.<alg>.<kid>.<payload>.<signature>` (the format byte
//! by byte: `docs/licences.md`). Two signing schemes:
//!
//! - `hs256`, HMAC-SHA256 with a shared secret: for a server that checks the licences it
//!   issued itself. **Whoever can check an HMAC token can also mint one**, so the secret never
//!   leaves the issuer.
//! - `ed25519`: the issuer keeps the private key, verifiers (a customer's offline install)
//!   get only the public key.
//!
//! [`SigningKey::issue`] makes a token from [`Claims`]; a [`Keyring`] holds the verifying
//! keys by key id (several at once, for rotation; HMAC and Ed25519 keys side by side) and
//! verifies a token; a [`Verifier`] adds a bounded cache of verified tokens that still checks
//! the validity window on every call. Every refusal is a [`LicenceError`] with a stable
//! [`code`](LicenceError::code) and a [`family`](LicenceError::family).
//!
//! ```text
//! let key = SigningKey::ed25519_from_seed(Kid::new("2026-01")?, &seed);
//! let token = key.issue(&claims)?;
//! let mut keys = Keyring::new();
//! keys.insert(key.verifying_key())?;
//! let licence = Verifier::new(keys).verify(&token, now_unix_secs)?;
//! ```

mod cache;
mod claims;
mod error;
mod key_file;
mod keys;
mod token;

pub use cache::{CacheError, CacheStats, Verifier};
pub use claims::{Claims, ClaimsError};
pub use error::{Defect, Family, LicenceError, Part};
pub use key_file::KeyFile;
pub use keys::{Algorithm, KeyError, Keyring, Kid, SigningKey, VerifyingKey};
pub use token::{Licence, PREFIX};

/// Every bound of the format, the keys and the cache.
pub mod limits {
    /// Longest licence id, tenant id or plan id, in bytes.
    pub const ID_LEN_MAX: usize = 128;
    /// Longest feature or limit name, in bytes.
    pub const NAME_LEN_MAX: usize = 64;
    /// Longest key id, in bytes.
    pub const KID_LEN_MAX: usize = 64;
    /// Most features one licence carries.
    pub const FEATURES_MAX: usize = 64;
    /// Most limits one licence carries.
    pub const LIMITS_MAX: usize = 64;
    /// Most verifying keys one keyring holds (the current ones plus those rotating out).
    pub const KEYS_MAX: usize = 16;
    /// Shortest HMAC secret accepted, in bytes (a generated one has [`HMAC_SECRET_LEN`]).
    pub const HMAC_SECRET_LEN_MIN: usize = 16;
    /// Longest HMAC secret accepted, in bytes (SHA-256's block: a longer key is hashed first
    /// and gains nothing).
    pub const HMAC_SECRET_LEN_MAX: usize = 64;
    /// Length of a generated HMAC secret, in bytes.
    pub const HMAC_SECRET_LEN: usize = 32;
    /// Longest key file accepted, in bytes (one line: a tag, the algorithm, the key id, the
    /// key in base64url).
    pub const KEY_FILE_LEN_MAX: usize = 512;
    /// Cached tokens a [`Verifier`](crate::Verifier) keeps by default.
    pub const CACHE_CAPACITY_DEFAULT: usize = 1024;
    /// Most cached tokens a [`Verifier`](crate::Verifier) may be configured to keep.
    pub const CACHE_CAPACITY_MAX: usize = 65_536;

    /// Longest canonical payload: the fixed claim names and punctuation (under 256 bytes),
    /// three ids, every feature and limit at its longest, four numbers of up to 20 digits.
    /// Names need no JSON escaping (their bytes are `A-Z a-z 0-9 . _ : -`).
    pub const PAYLOAD_LEN_MAX: usize = 256
        + 3 * (ID_LEN_MAX + 2)
        + FEATURES_MAX * (NAME_LEN_MAX + 3)
        + LIMITS_MAX * (NAME_LEN_MAX + 4 + 20)
        + 4 * 20;
    /// Longest token, in bytes: generously more than the longest one a valid claims set
    /// makes (checked at compile time), and read no further.
    pub const TOKEN_LEN_MAX: usize = 16 * 1024;

    /// Base64 without padding of `n` bytes.
    const fn b64_len(n: usize) -> usize {
        (n * 4).div_ceil(3)
    }
    const _: () = assert!(
        "govlic1.ed25519.".len() + KID_LEN_MAX + 1 + b64_len(PAYLOAD_LEN_MAX) + 1 + b64_len(64)
            <= TOKEN_LEN_MAX,
        "the longest valid token fits in TOKEN_LEN_MAX"
    );
    const _: () = assert!(HMAC_SECRET_LEN_MIN <= HMAC_SECRET_LEN);
    const _: () = assert!(HMAC_SECRET_LEN <= HMAC_SECRET_LEN_MAX);
    const _: () = assert!(CACHE_CAPACITY_DEFAULT <= CACHE_CAPACITY_MAX);
}
