//! [`Verifier`]: a keyring and a bounded cache of the tokens it has authenticated, keyed by
//! the token's SHA-256. A hit skips the parse, the signature and the claims' checks, never the
//! validity window; removing or replacing a key drops the entries it signed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::error::{Defect, LicenceError};
use crate::keys::{KeyError, Keyring, VerifyingKey};
use crate::limits::{CACHE_CAPACITY_DEFAULT, CACHE_CAPACITY_MAX, TOKEN_LEN_MAX};
use crate::token::Licence;

/// Why a verifier cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A capacity of 0 or more than [`CACHE_CAPACITY_MAX`].
    #[error("a licence cache of {capacity} entries; 1 to {max} allowed")]
    Capacity {
        /// The capacity asked for.
        capacity: usize,
        /// The limit.
        max: usize,
    },
}

/// The cache's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Calls answered from the cache (whether the window then accepted the token or not).
    pub hits: u64,
    /// Calls that verified the token in full.
    pub misses: u64,
    /// Tokens cached now.
    pub entries: usize,
    /// The most it keeps.
    pub capacity: usize,
}

/// A keyring with a cache of authenticated tokens (for `&self` across threads, wrap it in
/// a mutex; it is a plain value).
#[derive(Debug)]
pub struct Verifier {
    keys: Keyring,
    /// Authenticated tokens by SHA-256 of their text.
    entries: BTreeMap<[u8; 32], Arc<Licence>>,
    /// The cached hashes, oldest first: the next to evict.
    order: VecDeque<[u8; 32]>,
    /// The most entries kept.
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl Verifier {
    /// A verifier over `keys` caching up to [`CACHE_CAPACITY_DEFAULT`] tokens.
    #[must_use]
    pub fn new(keys: Keyring) -> Self {
        Self {
            keys,
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            capacity: CACHE_CAPACITY_DEFAULT,
            hits: 0,
            misses: 0,
        }
    }

    /// A verifier over `keys` caching up to `capacity` tokens.
    ///
    /// # Errors
    /// [`CacheError::Capacity`] unless `1 <= capacity <= CACHE_CAPACITY_MAX`.
    pub fn with_capacity(keys: Keyring, capacity: usize) -> Result<Self, CacheError> {
        if !(1..=CACHE_CAPACITY_MAX).contains(&capacity) {
            return Err(CacheError::Capacity { capacity, max: CACHE_CAPACITY_MAX });
        }
        Ok(Self { capacity, ..Self::new(keys) })
    }

    /// Verifies a token at `now` (Unix seconds), from the cache when it has been
    /// authenticated before under a key still held; the validity window is checked on
    /// every call, so a cached token that has since expired is refused.
    ///
    /// # Errors
    /// As [`Keyring::verify`].
    pub fn verify(&mut self, token: &str, now: u64) -> Result<Arc<Licence>, LicenceError> {
        if token.len() > TOKEN_LEN_MAX {
            // Not worth hashing: refused as the keyring would.
            self.misses += 1;
            let defect = Defect::TooLong { len: token.len(), max: TOKEN_LEN_MAX };
            return Err(LicenceError::malformed(defect, TOKEN_LEN_MAX));
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let licence = if let Some(hit) = self.entries.get(&hash) {
            self.hits += 1;
            Arc::clone(hit)
        } else {
            self.misses += 1;
            let licence = Arc::new(self.keys.authenticate(token)?);
            self.insert(hash, Arc::clone(&licence));
            licence
        };
        licence.claims.valid_at(now)?;
        Ok(licence)
    }

    fn insert(&mut self, hash: [u8; 32], licence: Arc<Licence>) {
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else { break };
            self.entries.remove(&oldest);
        }
        self.entries.insert(hash, licence);
        self.order.push_back(hash);
    }

    /// Adds a key; a key replacing one with the same id drops the tokens the old one signed.
    ///
    /// # Errors
    /// [`KeyError::TooManyKeys`].
    pub fn add_key(&mut self, key: VerifyingKey) -> Result<(), KeyError> {
        let kid = key.kid().clone();
        if self.keys.insert(key)?.is_some() {
            self.forget(kid.as_str());
        }
        Ok(())
    }

    /// Removes a key (revoked, or rotated out) and every cached token it signed.
    pub fn remove_key(&mut self, kid: &str) -> Option<VerifyingKey> {
        let removed = self.keys.remove(kid)?;
        self.forget(kid);
        Some(removed)
    }

    /// Drops the cached tokens signed by `kid`.
    fn forget(&mut self, kid: &str) {
        self.entries.retain(|_, licence| licence.kid != kid);
        let entries = &self.entries;
        self.order.retain(|hash| entries.contains_key(hash));
    }

    /// Empties the cache (the counters stay).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// The keyring.
    #[must_use]
    pub const fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits,
            misses: self.misses,
            entries: self.entries.len(),
            capacity: self.capacity,
        }
    }
}
