//! API keys: bearer tokens, stored hashed (SHA-256) in a JSON file beside the ledger
//! (`DATA_DIR/api-keys.json`), created and revoked with `govern keys`.
//!
//! A token reads `gk_<id>_<secret>`: `id` is 8 hex digits that name the key in listings and
//! logs, `secret` 64 hex digits (32 bytes from the OS's generator). The file keeps the id,
//! the scope, a label, the times, and the SHA-256 of the whole token, never the token; the
//! token is shown once, when created. A running server sees a key created or revoked by
//! another process at its next request: the store re-reads the file when its modification
//! time or length changes (one `stat` per authentication).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use govern_governors::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The key file's name inside a data directory.
pub const KEY_FILE: &str = "api-keys.json";

/// At most this many keys (live and revoked) in one file.
pub const KEYS_MAX: usize = 10_000;

/// What a key reaches.
/// Written `operator` or `tenant:<id>` (in the key file and on the command line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Scope {
    /// Every tenant, and the operator's routes (listing tenants, the status page's data).
    Operator,
    /// One tenant's routes only.
    Tenant(TenantId),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Operator => f.write_str("operator"),
            Self::Tenant(t) => write!(f, "tenant:{t}"),
        }
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> Self {
        scope.to_string()
    }
}

impl TryFrom<String> for Scope {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "operator" {
            return Ok(Self::Operator);
        }
        let tenant = text
            .strip_prefix("tenant:")
            .ok_or_else(|| format!("`{text}`: a scope is `operator` or `tenant:<id>`"))?;
        TenantId::new(tenant).map(Self::Tenant).map_err(|e| format!("`{text}`: {e}"))
    }
}

/// Who called, once their key is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The key's id (`gk_<id>_…`), for logs.
    pub key_id: String,
    /// What the key reaches.
    pub scope: Scope,
}

impl Caller {
    /// Whether this caller may act on `tenant`.
    #[must_use]
    pub fn reaches(&self, tenant: &TenantId) -> bool {
        match &self.scope {
            Scope::Operator => true,
            Scope::Tenant(t) => t == tenant,
        }
    }

    /// Whether this caller is an operator.
    #[must_use]
    pub fn is_operator(&self) -> bool {
        self.scope == Scope::Operator
    }
}

/// One key as stored (and listed): never the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The id in the token (`gk_<id>_…`).
    pub id: String,
    /// What it reaches.
    pub scope: Scope,
    /// A label for people ("billing service").
    pub label: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// SHA-256 of the whole token, hex.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    keys: Vec<KeyInfo>,
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a key file this version reads.
    #[error("{path}: not a key file: {message}")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong, with serde's line and column.
        message: String,
    },
    /// No key has this id.
    #[error("no key with id {0}")]
    UnknownKey(String),
    /// The key was already revoked.
    #[error("key {0} is already revoked")]
    AlreadyRevoked(String),
    /// The file holds [`KEYS_MAX`] keys.
    #[error("the key file holds {KEYS_MAX} keys already")]
    Full,
    /// The OS's random generator failed.
    #[error("no randomness: {0}")]
    Random(String),
}

/// Why a presented token is refused (all answered 401, the reason logged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not of the form `gk_<id>_<secret>`.
    #[error("malformed key")]
    Malformed,
    /// No key has this id, or its secret does not match.
    #[error("unknown key")]
    Unknown,
    /// The key was revoked.
    #[error("revoked key")]
    Revoked,
    /// The key file could not be read.
    #[error("key store unavailable")]
    Unavailable,
}

#[derive(Debug, Default)]
struct Loaded {
    /// The file's (modification time, length) when read; `None`: no file.
    stamp: Option<(SystemTime, u64)>,
    by_id: BTreeMap<String, KeyInfo>,
}

/// The keys of one key file.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

#[allow(
    clippy::disallowed_methods,
    reason = "a key's creation and revocation times are the wall clock's, for people to read; nothing decides on them"
)]
fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal without an early exit (the compared values are digests, so timing would leak
/// nothing useful, but the habit costs nothing).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn stamp(path: &Path) -> Result<Option<(SystemTime, u64)>, std::io::Error> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some((m.modified()?, m.len()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl KeyStore {
    /// The store of the key file in `data_dir` ([`KEY_FILE`]); a missing file has no keys.
    ///
    /// # Errors
    /// The file cannot be read or is not a key file.
    pub fn open_in(data_dir: &Path) -> Result<Self, KeyError> {
        Self::open(data_dir.join(KEY_FILE))
    }

    /// The store of this key file; a missing file has no keys.
    ///
    /// # Errors
    /// The file cannot be read or is not a key file.
    pub fn open(path: PathBuf) -> Result<Self, KeyError> {
        let store = Self { path, loaded: Mutex::new(Loaded::default()) };
        {
            let mut loaded = store.lock();
            store.refresh(&mut loaded)?;
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn io(&self, source: std::io::Error) -> KeyError {
        KeyError::Io { path: self.path.clone(), source }
    }

    /// Re-reads the file if it changed since it was read.
    fn refresh(&self, loaded: &mut Loaded) -> Result<(), KeyError> {
        let now = stamp(&self.path).map_err(|e| self.io(e))?;
        if now.is_some() && now == loaded.stamp {
            return Ok(());
        }
        let by_id = match now {
            None => BTreeMap::new(),
            Some(_) => {
                let text = fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
                let file: KeyFile = serde_json::from_str(&text).map_err(|e| KeyError::Corrupt {
                    path: self.path.clone(),
                    message: e.to_string(),
                })?;
                if file.version != 1 {
                    return Err(KeyError::Corrupt {
                        path: self.path.clone(),
                        message: format!("version {} (this build reads 1)", file.version),
                    });
                }
                file.keys.into_iter().map(|k| (k.id.clone(), k)).collect()
            }
        };
        *loaded = Loaded { stamp: now, by_id };
        Ok(())
    }

    /// The key file's writers' lock (`api-keys.json.lock`), held while a key is created or
    /// revoked: two `govern keys` (or a server and a command) each reading the file, adding a
    /// key and renaming their copy over it would lose one key, whose token was shown.
    fn exclusive(&self) -> Result<fs::File, KeyError> {
        let lock = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path.with_extension("json.lock"))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        Ok(lock)
    }

    /// Writes every key: a temporary file, fsynced, renamed over the old one (owner-only
    /// permissions), then the directory fsynced.
    fn write(&self, loaded: &mut Loaded) -> Result<(), KeyError> {
        let file = KeyFile { version: 1, keys: loaded.by_id.values().cloned().collect() };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| KeyError::Corrupt { path: self.path.clone(), message: e.to_string() })?;
        let tmp = self.path.with_extension("json.tmp");
        // A leftover of a write that died: removed, so that the new file is created with the
        // owner-only mode (the mode applies only to a file being created).
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(self.io(e)),
            _ => {}
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp).map_err(|e| self.io(e))?;
        out.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        out.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| self.io(e))?;
        }
        loaded.stamp = stamp(&self.path).map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Creates a key; returns what is stored and the token (shown once, never stored).
    ///
    /// # Errors
    /// The file cannot be read or written, holds [`KEYS_MAX`] keys, or no randomness.
    pub fn create(&self, scope: Scope, label: &str) -> Result<(KeyInfo, String), KeyError> {
        let mut loaded = self.lock();
        let _writer = self.exclusive()?;
        self.refresh(&mut loaded)?;
        if loaded.by_id.len() >= KEYS_MAX {
            return Err(KeyError::Full);
        }
        let mut bytes = [0u8; 36];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        let mut id = hex::encode(&bytes[..4]);
        let mut tries = 0u8;
        while loaded.by_id.contains_key(&id) {
            // 2^32 ids: a clash is rare; draw again.
            tries += 1;
            if tries > 16 {
                return Err(KeyError::Full);
            }
            let mut four = [0u8; 4];
            getrandom::fill(&mut four).map_err(|e| KeyError::Random(e.to_string()))?;
            id = hex::encode(four);
        }
        let token = format!("gk_{id}_{}", hex::encode(&bytes[4..]));
        let info = KeyInfo {
            id: id.clone(),
            scope,
            label: label.to_owned(),
            created_at: now_secs(),
            revoked_at: None,
            sha256: digest(&token),
        };
        loaded.by_id.insert(id, info.clone());
        self.write(&mut loaded)?;
        Ok((info, token))
    }

    /// Revokes a key by id: it is kept, marked, and refused from then on.
    ///
    /// # Errors
    /// No such key, already revoked, or the file cannot be read or written.
    pub fn revoke(&self, id: &str) -> Result<KeyInfo, KeyError> {
        let mut loaded = self.lock();
        let _writer = self.exclusive()?;
        self.refresh(&mut loaded)?;
        let key = loaded.by_id.get_mut(id).ok_or_else(|| KeyError::UnknownKey(id.to_owned()))?;
        if key.revoked_at.is_some() {
            return Err(KeyError::AlreadyRevoked(id.to_owned()));
        }
        key.revoked_at = Some(now_secs());
        let info = key.clone();
        self.write(&mut loaded)?;
        Ok(info)
    }

    /// Every key, live and revoked, by id.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let mut loaded = self.lock();
        self.refresh(&mut loaded)?;
        Ok(loaded.by_id.values().cloned().collect())
    }

    /// Checks a presented token (the part after `Bearer `).
    ///
    /// # Errors
    /// [`AuthError`]: malformed, unknown (or wrong secret), revoked, or the store unreadable.
    pub fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        let id = token
            .strip_prefix("gk_")
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
            .filter(|id| id.len() == 8)
            .ok_or(AuthError::Malformed)?;
        // Hashed before the store's lock is taken: requests wait on each other only for the
        // file's `stat` and a look-up.
        let presented = digest(token);
        let mut loaded = self.lock();
        if let Err(e) = self.refresh(&mut loaded) {
            tracing::error!(error = %e, "key store unreadable: refusing every key");
            return Err(AuthError::Unavailable);
        }
        let key = loaded.by_id.get(id).ok_or(AuthError::Unknown)?;
        if !same(presented.as_bytes(), key.sha256.as_bytes()) {
            return Err(AuthError::Unknown);
        }
        if key.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        Ok(Caller { key_id: key.id.clone(), scope: key.scope.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, KeyStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::open_in(dir.path()).expect("open");
        (dir, store)
    }

    #[test]
    fn a_created_key_authenticates_with_its_scope_and_is_stored_hashed() {
        let (dir, store) = store();
        let acme = TenantId::new("acme").expect("id");
        let (info, token) = store.create(Scope::Tenant(acme.clone()), "billing").expect("create");
        let caller = store.authenticate(&token).expect("valid");
        assert_eq!(caller.scope, Scope::Tenant(acme.clone()));
        assert!(caller.reaches(&acme));
        assert!(!caller.reaches(&TenantId::new("globex").expect("id")));
        let text = fs::read_to_string(dir.path().join(KEY_FILE)).expect("file");
        assert!(!text.contains(&token), "the token is not stored");
        assert!(text.contains(&info.sha256));
    }

    #[test]
    fn wrong_malformed_and_revoked_keys_are_refused() {
        let (_dir, store) = store();
        let (info, token) = store.create(Scope::Operator, "ops").expect("create");
        assert_eq!(store.authenticate("nope"), Err(AuthError::Malformed));
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(store.authenticate(&wrong), Err(AuthError::Unknown));
        assert!(store.authenticate(&token).expect("valid").is_operator());
        store.revoke(&info.id).expect("revoke");
        assert_eq!(store.authenticate(&token), Err(AuthError::Revoked));
        assert!(matches!(store.revoke(&info.id), Err(KeyError::AlreadyRevoked(_))));
        assert!(matches!(store.revoke("ffffffff"), Err(KeyError::UnknownKey(_))));
    }

    #[test]
    fn a_revocation_by_another_store_is_seen_at_the_next_request() {
        let (dir, server) = store();
        let (info, token) = server.create(Scope::Operator, "ops").expect("create");
        assert!(server.authenticate(&token).is_ok());
        let cli = KeyStore::open_in(dir.path()).expect("open");
        cli.revoke(&info.id).expect("revoke");
        assert_eq!(server.authenticate(&token), Err(AuthError::Revoked));
    }

    #[test]
    fn a_corrupt_file_is_named_and_refuses_every_key() {
        let (dir, store) = store();
        let (_, token) = store.create(Scope::Operator, "ops").expect("create");
        fs::write(dir.path().join(KEY_FILE), "{ not json").expect("write");
        assert!(matches!(KeyStore::open_in(dir.path()), Err(KeyError::Corrupt { .. })));
        assert_eq!(store.authenticate(&token), Err(AuthError::Unavailable));
    }

    #[test]
    fn two_writers_at_once_lose_no_key() {
        let (dir, _) = store();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || {
                    let store = KeyStore::open_in(&path).expect("open");
                    (0..20)
                        .map(|i| {
                            store.create(Scope::Operator, &format!("{w}-{i}")).expect("create").1
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let tokens: Vec<String> =
            writers.into_iter().flat_map(|w| w.join().expect("a writer")).collect();
        let reader = KeyStore::open_in(dir.path()).expect("open");
        assert_eq!(reader.list().expect("list").len(), 40);
        for token in &tokens {
            assert!(reader.authenticate(token).is_ok(), "every token shown is stored");
        }
    }
}
