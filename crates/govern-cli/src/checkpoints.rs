//! Checkpoints as the read-only commands meet them: the public key (`--public-key FILE` or
//! DATA_DIR/checkpoint.pub, loaded once, when first needed), a checkpoint file verified
//! (either form) before anything uses it, the data directory's checkpoints (its latest one:
//! checkpoint.json, else checkpoint.note) verified against its ledger, a database shard's
//! latest stored checkpoint verified ([`verify_stored`]). `govern checkpoint`, which signs
//! one, is in `sign_checkpoint.rs`.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use govern_ledger::checkpoint::{
    CHECKPOINT_FILE, CheckpointError, NOTE_FILE, PUBLIC_KEY_FILE, VerifiedCheckpoint, VerifyingKey,
    load_public_key, parse_public_key, read_checkpoint_file, verify_checkpoint_text,
};
use govern_ledger::merkle::ProofTree;
use govern_ledger::verify::RootsReport;
use govern_postgres::StoredCheckpoint;
use govern_receipt::Digest;

/// The public key checkpoints are verified with: `--public-key FILE` (a file holding the key
/// in hex, as checkpoint.pub is written), else DATA_DIR/checkpoint.pub. Loaded the first time
/// it is needed (a command that meets no checkpoint needs no key), then kept.
#[derive(Debug)]
pub(crate) struct PublicKey<'a> {
    /// The data directory, whose checkpoint.pub is the default.
    data_dir: Option<&'a Path>,
    /// `--public-key FILE`.
    given: Option<&'a Path>,
    /// On a database, the key stored beside its checkpoint (`govern_checkpoint_keys`, hex),
    /// the default there as checkpoint.pub is in a data directory.
    beside: Option<&'a str>,
    /// The key, once loaded (or known from the start).
    key: OnceCell<VerifyingKey>,
}

impl<'a> PublicKey<'a> {
    /// The key of `given`, else of `data_dir`'s checkpoint.pub, not loaded yet.
    pub(crate) fn new(data_dir: Option<&'a Path>, given: Option<&'a Path>) -> Self {
        Self { data_dir, given, beside: None, key: OnceCell::new() }
    }

    /// The same, defaulting to the key `checkpoints` carry beside them (a database shard's
    /// row of `govern_checkpoint_keys`) when neither `--public-key` nor a data directory
    /// gives one.
    pub(crate) fn or_beside(mut self, checkpoints: &'a OwnCheckpoints) -> Self {
        self.beside = checkpoints.public_key.as_deref();
        self
    }

    /// A key known already (a signer's own).
    pub(crate) fn known(key: VerifyingKey) -> Self {
        Self { data_dir: None, given: None, beside: None, key: OnceCell::from(key) }
    }

    /// The key, loaded now if it was not yet.
    pub(crate) fn get(&self) -> Result<&VerifyingKey, String> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let path = match (self.given, self.data_dir, self.beside) {
            (Some(path), _, _) => path.to_owned(),
            (None, Some(dir), _) => dir.join(PUBLIC_KEY_FILE),
            (None, None, Some(hex)) => {
                let key = parse_public_key(hex).map_err(|e| {
                    format!(
                        "the public key stored beside the checkpoint (govern_checkpoint_keys): {e}"
                    )
                })?;
                tell!(
                    "note: the checkpoint is verified with the public key stored beside it in govern_checkpoint_keys, which shows only that the checkpoints and the chain agree, not who signed them; pin the signer's key with --public-key FILE"
                );
                return Ok(self.key.get_or_init(|| key));
            }
            (None, None, None) => {
                return Err("--public-key FILE is needed to verify a checkpoint".into());
            }
        };
        let key = load_public_key(&path).map_err(|e| {
            let hint = if self.given.is_none() {
                " (give the signer's key with --public-key FILE)"
            } else {
                ""
            };
            format!("public key {}: {e}{hint}", path.display())
        })?;
        Ok(self.key.get_or_init(|| key))
    }
}

/// A verified ledger, as checkpoints are checked against it: its number of receipts and its
/// Merkle root at a size (`None` when that root is not known).
pub(crate) trait Ledger {
    /// The number of receipts.
    fn receipts(&self) -> u64;
    /// The root of the first `size` receipts, when known.
    fn root_at(&self, size: u64) -> Option<Digest>;
}

impl Ledger for dyn ProofTree + '_ {
    fn receipts(&self) -> u64 {
        self.len()
    }
    fn root_at(&self, size: u64) -> Option<Digest> {
        ProofTree::root_at(self, size).ok()
    }
}

/// Only the roots at the sizes [`verify_dir_roots`] was asked for are known.
impl Ledger for RootsReport {
    fn receipts(&self) -> u64 {
        self.receipts
    }
    fn root_at(&self, size: u64) -> Option<Digest> {
        RootsReport::root_at(self, size)
    }
}

/// Verifies a checkpoint file's text (JSON or C2SP signed note) with `key`.
pub(crate) fn verify_text(
    path: &Path,
    text: &str,
    key: &VerifyingKey,
) -> Result<VerifiedCheckpoint, String> {
    verify_checkpoint_text(text, key).map_err(|e| format!("checkpoint {}: {e}", path.display()))
}

/// Reads a checkpoint file (JSON or C2SP signed note) and verifies its signature with `key`.
pub(crate) fn read_verified(path: &Path, key: &VerifyingKey) -> Result<VerifiedCheckpoint, String> {
    let text = read_checkpoint_file(path).map_err(|e| e.to_string())?;
    verify_text(path, &text, key)
}

/// Checks a verified checkpoint against a ledger (at least its size, and the same root at its
/// size): a checkpoint of another ledger, or of a history since rewritten or truncated, is
/// refused.
fn check_against(
    path: &Path,
    checkpoint: &VerifiedCheckpoint,
    ledger: &(impl Ledger + ?Sized),
) -> Result<(), String> {
    checkpoint
        .check_history(ledger.receipts(), |size| ledger.root_at(size))
        .map_err(|e| format!("checkpoint {} does not match the ledger: {e}", path.display()))
}

/// [`read_verified`], then [`check_against`] the ledger.
pub(crate) fn read_checked(
    path: &Path,
    key: &VerifyingKey,
    ledger: &(impl Ledger + ?Sized),
) -> Result<VerifiedCheckpoint, String> {
    let checkpoint = read_verified(path, key)?;
    check_against(path, &checkpoint, ledger)?;
    Ok(checkpoint)
}

/// Where the key a stored checkpoint was verified with came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `--public-key FILE`: the signer's key, obtained apart from the database.
    Pinned,
    /// The row of `govern_checkpoint_keys` beside the checkpoints: it shows the checkpoints
    /// and the chain agree, not who signed them.
    Beside,
}

/// A database shard's latest checkpoint, both forms verified with one key and saying the same
/// tree head as the row ([`verify_stored`]).
#[derive(Debug)]
pub(crate) struct StoredVerified {
    /// The JSON form, verified.
    pub(crate) checkpoint: VerifiedCheckpoint,
    /// Where its key came from.
    pub(crate) key: KeySource,
}

/// Verifies a shard's stored checkpoint: its JSON form and its signed note with `pinned`
/// (`--public-key`), else with the public key stored beside it; both must say the row's
/// size and the same root.
pub(crate) fn verify_stored(
    stored: &StoredCheckpoint,
    pinned: Option<&VerifyingKey>,
) -> Result<StoredVerified, String> {
    let what = format!("checkpoint of size {} in govern_checkpoints", stored.size);
    let beside;
    let (key, source) = match pinned {
        Some(key) => (key, KeySource::Pinned),
        None => {
            beside = parse_public_key(&stored.public_key)
                .map_err(|e| format!("{what}: the key beside it: {e}"))?;
            (&beside, KeySource::Beside)
        }
    };
    let json =
        verify_checkpoint_text(&stored.checkpoint, key).map_err(|e| format!("{what}: {e}"))?;
    let note =
        verify_checkpoint_text(&stored.note, key).map_err(|e| format!("{what}, its note: {e}"))?;
    // Each column holds its own form: two JSON forms are not "both forms".
    if json.json().is_none() || note.note().is_none() {
        return Err(format!(
            "{what}: its checkpoint column must hold the JSON form and its note column the signed note"
        ));
    }
    if json.size() != stored.size || note.size() != stored.size || json.root() != note.root() {
        return Err(format!(
            "{what}: its row, JSON form and note do not say the same tree head (sizes {}, {}, {})",
            stored.size,
            json.size(),
            note.size()
        ));
    }
    Ok(StoredVerified { checkpoint: json, key: source })
}

/// A ledger's own checkpoints, as read *before* the ledger: a data directory's files
/// (checkpoint.json, then checkpoint.note), or a database shard's latest row of
/// `govern_checkpoints` (its JSON form, then its note). The ledger only grows and a
/// checkpoint is written after the receipts it covers are durable, so checkpoints read first
/// never cover more than the ledger read after them, even while a writer runs.
#[derive(Debug)]
pub(crate) struct OwnCheckpoints {
    /// The checkpoints present, latest first: checkpoint.json, then checkpoint.note (written
    /// after it, so a crash between the two leaves the note behind, never ahead); each with
    /// where it came from (a file's path; for a database row, a name for messages:
    /// `govern_checkpoints (shard K, size N)`) and its text or why it could not be read
    /// (reported when it is used: after the ledger's own problems).
    files: Vec<(PathBuf, Result<String, String>)>,
    /// A database row's public key (hex, from `govern_checkpoint_keys`): the default key
    /// there ([`PublicKey::or_beside`]). `None` in a data directory.
    public_key: Option<String>,
}

impl OwnCheckpoints {
    /// No checkpoints: a database shard with no row yet.
    pub(crate) fn none() -> Self {
        Self { files: Vec::new(), public_key: None }
    }

    /// A database shard's latest row: its JSON form, then its note (one tree head, both
    /// checked against the ledger like a directory's two files), and the key beside it.
    pub(crate) fn stored(stored: StoredCheckpoint) -> Self {
        let name = PathBuf::from(format!(
            "govern_checkpoints (shard {}, size {})",
            stored.shard, stored.size
        ));
        let note_name = PathBuf::from(format!(
            "govern_checkpoints (shard {}, size {}, its note)",
            stored.shard, stored.size
        ));
        Self {
            files: vec![(name, Ok(stored.checkpoint)), (note_name, Ok(stored.note))],
            public_key: Some(stored.public_key),
        }
    }

    /// Reads both files (an absent one is left out).
    pub(crate) fn read(dir: &Path) -> Self {
        let files = [CHECKPOINT_FILE, NOTE_FILE]
            .into_iter()
            .map(|name| dir.join(name))
            .filter_map(|path| match read_checkpoint_file(&path) {
                Ok(text) => Some((path, Ok(text))),
                Err(CheckpointError::Read { source, .. }) if source.is_not_found() => None,
                Err(e) => Some((path, Err(e.to_string()))),
            })
            .collect();
        Self { files, public_key: None }
    }

    /// The latest checkpoint file, its path and text (or why it could not be read), if there
    /// is one: checkpoint.json, else checkpoint.note. What `govern verify` checks.
    pub(crate) fn latest(&self) -> Option<(&Path, Result<&str, String>)> {
        let (path, text) = self.files.first()?;
        Some((path, text.as_deref().map_err(Clone::clone)))
    }

    /// Every file, its signature verified with the key (loaded only if there is a file), to
    /// be checked against the ledger once it is read ([`Saved::check`]).
    pub(crate) fn verify(&self, key: &PublicKey<'_>) -> Result<Saved, String> {
        self.verify_each(key, |_, _| Ok(()))
    }

    /// Every file, its signature verified with the key and checked against the ledger, one
    /// file after the other.
    pub(crate) fn check(
        &self,
        key: &PublicKey<'_>,
        ledger: &(impl Ledger + ?Sized),
    ) -> Result<Saved, String> {
        self.verify_each(key, |path, checkpoint| check_against(path, checkpoint, ledger))
    }

    fn verify_each(
        &self,
        key: &PublicKey<'_>,
        then: impl Fn(&Path, &VerifiedCheckpoint) -> Result<(), String>,
    ) -> Result<Saved, String> {
        let mut verified = Vec::with_capacity(self.files.len());
        for (path, text) in &self.files {
            let text = text.as_deref().map_err(Clone::clone)?;
            let checkpoint = verify_text(path, text, key.get()?)?;
            then(path, &checkpoint)?;
            verified.push((path.clone(), checkpoint));
        }
        Ok(Saved(verified))
    }
}

/// A data directory's checkpoints, each verified with the key, latest first
/// ([`OwnCheckpoints::verify`]).
#[derive(Debug)]
pub(crate) struct Saved(Vec<(PathBuf, VerifiedCheckpoint)>);

impl Saved {
    /// Their sizes: the roots [`Self::check`] needs.
    pub(crate) fn sizes(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|(_, c)| c.size())
    }

    /// Checks each against the ledger.
    pub(crate) fn check(self, ledger: &(impl Ledger + ?Sized)) -> Result<Self, String> {
        for (path, checkpoint) in &self.0 {
            check_against(path, checkpoint, ledger)?;
        }
        Ok(self)
    }

    /// The latest: checkpoint.json's, else checkpoint.note's.
    pub(crate) fn latest(&self) -> Option<&(PathBuf, VerifiedCheckpoint)> {
        self.0.first()
    }

    /// The one that came as a signed note, if any.
    pub(crate) fn note(&self) -> Option<&(PathBuf, VerifiedCheckpoint)> {
        self.0.iter().find(|(_, c)| c.note().is_some())
    }
}
