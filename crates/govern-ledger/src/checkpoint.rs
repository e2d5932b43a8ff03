//! Signed checkpoints: an Ed25519 signature over a ledger's size, Merkle root and a timestamp,
//! so that a saved checkpoint catches history that was rewritten or truncated later, even when
//! every receipt hash and the whole Merkle tree were recomputed.
//!
//! # Signed message
//!
//! A [`Checkpoint`] is signed (Ed25519, RFC 8032, pure: no pre-hashing, no context) over
//! exactly these bytes, which [`Checkpoint::signed_message`] returns:
//!
//! ```text
//! govern.checkpoint.v1\n{size}\n{root}\n{timestamp_ms}\n
//! ```
//!
//! in ASCII, where `\n` is one byte 0x0a, `{size}` is the number of leaves (receipts) in
//! decimal without sign or leading zeros (`0` for the empty ledger), `{root}` is the RFC 6962
//! Merkle root of those leaves ([`crate::merkle`]) as 64 lowercase hex characters, and
//! `{timestamp_ms}` is milliseconds since the Unix epoch in decimal, likewise. The first line
//! is the domain separator: no other message signed with the key starts with it. For example,
//! the empty ledger at 2026-01-01T00:00:00Z is signed as
//!
//! ```text
//! govern.checkpoint.v1
//! 0
//! e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
//! 1767225600000
//! ```
//!
//! with a final newline. Verification is strict (`verify_strict` in `ed25519-dalek`: the
//! signature's scalar must be reduced and neither the public key nor the signature's point may
//! be of small order).
//!
//! # Key id
//!
//! The key id is the first 8 bytes of SHA-256 of the 32-byte Ed25519 public key
//! ([`key_id`]). It tells which key to check a checkpoint with; it is not signed (the signature
//! already binds the key), and a checkpoint whose key id is not the verifying key's fails with
//! [`CheckpointError::KeyIdMismatch`] before the signature is checked.
//!
//! # Files
//!
//! A signed checkpoint's file form is one JSON object, with keys in this order and no others:
//!
//! ```text
//! {"size":3,"root":"<64 hex>","timestamp_ms":1767225600000,"key_id":"<16 hex>","signature":"<128 hex>"}
//! ```
//!
//! `size` and `timestamp_ms` are JSON integers; `root`, `key_id` and `signature` (the 64-byte
//! Ed25519 signature `R ‖ S`) are lowercase hex. A missing, repeated or unknown field, or a
//! value of another type, is refused ([`SignedCheckpoint::from_json`]).
//!
//! The same tree head is also published as a C2SP signed note ([`note`]), in
//! `checkpoint.note` beside `checkpoint.json` ([`NOTE_FILE`]); [`verify_checkpoint_text`]
//! verifies either form and is the only way to a [`VerifiedCheckpoint`], the type everything
//! that prints or proves against a checkpoint takes. A checkpoint file is read with a bound
//! ([`CHECKPOINT_FILE_MAX`], [`read_checkpoint_file`]), as the key files are
//! ([`crate::text_file`]).
//!
//! The key pair lives in a directory ([`CheckpointSigner::load_or_generate`],
//! [`CheckpointSigner::load`]):
//! `checkpoint.key` holds the 32-byte Ed25519 secret seed (RFC 8032's private key) as 64
//! lowercase hex characters and a newline, readable by its owner only (mode 0600 on Unix);
//! `checkpoint.pub` holds the 32-byte public key the same way, for verifiers
//! ([`load_public_key`]).
//!
//! # Verifying history
//!
//! [`verify_history`] checks a saved checkpoint against a ledger's Merkle tree: the signature
//! must verify, the ledger must have at least the checkpoint's number of receipts (else it was
//! truncated), and the root of its first `size` receipts must be the checkpoint's root (else
//! history before the checkpoint was rewritten). A ledger that only grew since verifies.
//! [`VerifiedCheckpoint::check_history`] does the same for a checkpoint of either form.

use std::fmt;
use std::path::{Path, PathBuf};

/// The Ed25519 public key type checkpoints are verified with.
pub use ed25519_dalek::VerifyingKey;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use govern_governors::Timestamp;
use govern_receipt::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::merkle::MerkleTree;
use crate::text_file::{ReadError, read_bounded};

pub mod note;
mod sink;

pub use sink::{CheckpointSink, DirSink};

/// The first line of every signed message: the domain separator.
pub const DOMAIN: &str = "govern.checkpoint.v1";

/// The file name of the secret key (hex seed) in the key directory.
pub const SECRET_KEY_FILE: &str = "checkpoint.key";

/// The file name of the public key (hex) in the key directory.
pub const PUBLIC_KEY_FILE: &str = "checkpoint.pub";

/// The file name of the latest signed checkpoint in a data directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

/// The file name of the latest checkpoint as a C2SP signed note, beside [`CHECKPOINT_FILE`].
pub const NOTE_FILE: &str = "checkpoint.note";

/// The most bytes a checkpoint file (either form) may have.
pub const CHECKPOINT_FILE_MAX: usize = note::NOTE_LEN_MAX;

/// The most bytes a key file (`checkpoint.key`, `checkpoint.pub`) may have: 64 hex
/// characters, a newline and some slack.
pub const KEY_FILE_MAX: usize = 1024;

/// The bytes of a key id.
pub const KEY_ID_LEN: usize = 8;

/// The bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// What a checkpoint commits to: the ledger's first `size` receipts, through their Merkle
/// root, at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The number of receipts (Merkle leaves).
    pub size: u64,
    /// The RFC 6962 Merkle root of the first `size` receipts.
    pub root: Digest,
    /// When the checkpoint was taken.
    pub timestamp: Timestamp,
}

impl Checkpoint {
    /// The checkpoint of a tree as it is now.
    #[must_use]
    pub fn of_tree(tree: &MerkleTree, timestamp: Timestamp) -> Self {
        Self { size: tree.len(), root: tree.root(), timestamp }
    }

    /// The bytes that are signed (see the module documentation):
    /// `govern.checkpoint.v1\n{size}\n{root hex}\n{timestamp_ms}\n`.
    #[must_use]
    pub fn signed_message(&self) -> Vec<u8> {
        format!("{DOMAIN}\n{}\n{}\n{}\n", self.size, self.root, self.timestamp.as_ms()).into_bytes()
    }
}

/// A checkpoint with the id of the key that signed it and the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What is signed.
    pub checkpoint: Checkpoint,
    /// The signing key's id: [`key_id`] of its public key.
    pub key_id: [u8; KEY_ID_LEN],
    /// The Ed25519 signature (`R ‖ S`) over [`Checkpoint::signed_message`].
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a checkpoint, a key or a key file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Not valid JSON for a signed checkpoint (also a missing, unknown or mistyped field).
    #[error("not a signed checkpoint JSON object: {0}")]
    Json(String),
    /// A hex field is not the right number of lowercase hex characters.
    #[error("{field}: expected {expected} lowercase hex characters, found {found:?}")]
    Hex {
        /// The field: `root`, `key_id`, `signature` or `public key`.
        field: &'static str,
        /// The number of hex characters expected.
        expected: usize,
        /// What was found (cut to 140 characters).
        found: String,
    },
    /// A secret key is not 64 lowercase hex characters (the text is not repeated).
    #[error("secret key: expected 64 lowercase hex characters")]
    InvalidSecretKey,
    /// 32 bytes that are not an Ed25519 public key.
    #[error("not an ed25519 public key")]
    InvalidPublicKey,
    /// The checkpoint names another key than the one it is verified with.
    #[error("key id mismatch: the checkpoint was signed by key {found}, not by key {expected}")]
    KeyIdMismatch {
        /// The verifying key's id, hex.
        expected: String,
        /// The checkpoint's key id, hex.
        found: String,
    },
    /// The signature does not verify: a field was changed or it was made with another key.
    #[error("bad checkpoint signature")]
    BadSignature,
    /// The ledger has fewer receipts than the checkpoint: history was truncated.
    #[error(
        "history truncated: the checkpoint covers {checkpoint_size} receipts, the ledger has {ledger_size}"
    )]
    Truncated {
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// The ledger's size.
        ledger_size: u64,
    },
    /// The ledger's first `size` receipts have another Merkle root than the checkpoint's:
    /// history was rewritten.
    #[error("history rewritten: the root of the first {size} receipts is not the checkpoint's")]
    Rewritten {
        /// The checkpoint's size.
        size: u64,
    },
    /// The key directory has a public key but no secret key: generating a new pair would
    /// replace a public key that verifiers may hold.
    #[error("{path:?} exists without its secret key; refusing to replace it")]
    SecretKeyMissing {
        /// The public key file.
        path: PathBuf,
    },
    /// The key directory's public key is not the secret key's.
    #[error("{path:?} does not hold the public key of the secret key")]
    PublicKeyMismatch {
        /// The public key file.
        path: PathBuf,
    },
    /// Not a C2SP signed note.
    #[error("not a signed note: {0}")]
    Note(String),
    /// A signed note whose text is not a checkpoint of the documented form.
    #[error("the note is not a checkpoint: {0}")]
    NoteCheckpoint(String),
    /// The note has no signature of the verifying key under the note's origin.
    #[error(
        "the note has no signature by key {name}+{key_id} (the origin and the public key); it has: {found}"
    )]
    NoteUnsigned {
        /// The key name looked for (the note's origin).
        name: String,
        /// Its note key id, hex.
        key_id: String,
        /// The signatures found, `name+keyid` each.
        found: String,
    },
    /// An origin (a note's key name) that the format does not allow.
    #[error("origin: {0}")]
    Origin(String),
    /// Not a signed-note verifier key.
    #[error("not a signed-note verifier key: {0}")]
    VerifierKey(String),
    /// A checkpoint or key file that was not read: missing, unreadable, not a regular file,
    /// larger than its limit ([`CHECKPOINT_FILE_MAX`] for a checkpoint, [`KEY_FILE_MAX`]
    /// for a key) or not UTF-8.
    #[error("reading {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// The operating system's random number generator failed.
    #[error("os random number generator failed: {0}")]
    Random(String),
    /// A checkpoint sink other than a directory could not store or read checkpoints (a
    /// database, say): what failed.
    #[error("checkpoint sink: {0}")]
    Sink(String),
    /// Writing a key or checkpoint file failed.
    #[error("i/o error while {context} {path:?}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// The id of a public key: the first 8 bytes of SHA-256 of its 32 bytes.
#[must_use]
pub fn key_id(key: &VerifyingKey) -> [u8; KEY_ID_LEN] {
    let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let mut id = [0; KEY_ID_LEN];
    id.copy_from_slice(&hash[..KEY_ID_LEN]);
    id
}

/// The secret key that signs checkpoints, and the origin its signed notes name. A clone is
/// the same key (several shards' runtimes sign with one).
#[derive(Clone)]
pub struct CheckpointSigner {
    /// The Ed25519 key pair.
    key: SigningKey,
    /// The origin line (and key name) of its signed notes.
    origin: String,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &hex::encode(self.key_id()))
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A new key pair from the operating system's random number generator.
    ///
    /// # Errors
    /// [`CheckpointError::Random`] if the generator fails.
    pub fn generate() -> Result<Self, CheckpointError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| CheckpointError::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The key pair of a 32-byte secret seed (RFC 8032's private key), with the default
    /// origin ([`note::default_origin`]).
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let origin = note::default_origin(&key.verifying_key());
        Self { key, origin }
    }

    /// The same key, naming `origin` in its signed notes (the origin line and the key name of
    /// the signature: a schema-less URL such as `billing.example.com/govern` is customary).
    ///
    /// # Errors
    /// [`CheckpointError::Origin`] if it is empty, longer than [`note::ORIGIN_LEN_MAX`] bytes,
    /// holds white space, a control character or `+`, or starts with `{`
    /// ([`note::check_origin`]).
    pub fn with_origin(mut self, origin: &str) -> Result<Self, CheckpointError> {
        note::check_origin(origin)?;
        origin.clone_into(&mut self.origin);
        Ok(self)
    }

    /// The origin its signed notes name.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A checkpoint's size and root as a C2SP signed note under [`Self::origin`] (the
    /// checkpoint's timestamp is not part of a note).
    #[must_use]
    pub fn sign_note(&self, checkpoint: &Checkpoint) -> String {
        let text = note::checkpoint_text(&self.origin, checkpoint.size, &checkpoint.root);
        note::sign_note(&text, &self.origin, &self.key)
    }

    /// The key pair of a seed in 64 lowercase hex characters.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidSecretKey`] if it is not one.
    pub fn from_seed_hex(hex_seed: &str) -> Result<Self, CheckpointError> {
        let seed = parse_hex::<32>(hex_seed).ok_or(CheckpointError::InvalidSecretKey)?;
        Ok(Self::from_seed(&seed))
    }

    /// The secret seed in 64 lowercase hex characters. Keep it secret.
    #[must_use]
    pub fn to_seed_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The public key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key's id ([`key_id`]).
    #[must_use]
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        key_id(&self.verifying_key())
    }

    /// Signs a checkpoint. Ed25519 is deterministic: the same key and checkpoint give the same
    /// signature.
    #[must_use]
    pub fn sign(&self, checkpoint: Checkpoint) -> SignedCheckpoint {
        let signature = self.key.sign(&checkpoint.signed_message()).to_bytes();
        SignedCheckpoint { checkpoint, key_id: self.key_id(), signature }
    }

    /// Loads the key pair from `dir`: `checkpoint.key`, and `checkpoint.pub` must be its
    /// public key when it exists (it may be missing: the secret key holds it). Writes nothing.
    ///
    /// # Errors
    /// [`CheckpointError::Read`] if `checkpoint.key` cannot be read (also when it is missing);
    /// [`CheckpointError::InvalidSecretKey`] if it does not hold a hex seed;
    /// [`CheckpointError::PublicKeyMismatch`] if `checkpoint.pub` is not its public key.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        let signer = Self::load_secret(dir)?;
        signer.check_public_key_file(dir)?;
        Ok(signer)
    }

    /// The key pair of `dir`'s `checkpoint.key`.
    fn load_secret(dir: &Path) -> Result<Self, CheckpointError> {
        let text = read_key_file(&dir.join(SECRET_KEY_FILE))?;
        Self::from_seed_hex(text.strip_suffix('\n').unwrap_or(&text))
    }

    /// Loads the key pair from `dir` as [`Self::load`] does (and writes `checkpoint.pub` if
    /// it is missing), or, if there is none, generates one and writes both files (the
    /// secret key with mode 0600 on Unix, through a temporary file that is synced and renamed,
    /// then the directory synced). Returns the signer and whether it was generated.
    ///
    /// # Errors
    /// [`CheckpointError::Read`] if a key file cannot be read; [`CheckpointError::Io`] if one
    /// cannot be written; [`CheckpointError::InvalidSecretKey`] if `checkpoint.key` does not
    /// hold a hex seed; [`CheckpointError::PublicKeyMismatch`] if `checkpoint.pub` is not the
    /// secret key's; [`CheckpointError::SecretKeyMissing`] if there is a `checkpoint.pub` but
    /// no `checkpoint.key`; [`CheckpointError::Random`] if generating fails.
    pub fn load_or_generate(dir: &Path) -> Result<(Self, bool), CheckpointError> {
        match Self::load_secret(dir) {
            Ok(signer) => {
                if !signer.check_public_key_file(dir)? {
                    write_key_file(dir, PUBLIC_KEY_FILE, &signer.public_key_hex(), false)?;
                }
                return Ok((signer, false));
            }
            Err(CheckpointError::Read { source, .. }) if source.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let public_path = dir.join(PUBLIC_KEY_FILE);
        if public_path.exists() {
            return Err(CheckpointError::SecretKeyMissing { path: public_path });
        }
        let signer = Self::generate()?;
        write_key_file(dir, SECRET_KEY_FILE, &signer.to_seed_hex(), true)?;
        write_key_file(dir, PUBLIC_KEY_FILE, &signer.public_key_hex(), false)?;
        Ok((signer, true))
    }

    /// Checks `dir`'s `checkpoint.pub` against this key: `Ok(true)` if it holds it,
    /// `Ok(false)` if there is none.
    fn check_public_key_file(&self, dir: &Path) -> Result<bool, CheckpointError> {
        let path = dir.join(PUBLIC_KEY_FILE);
        match load_public_key(&path) {
            Ok(public) if public == self.verifying_key() => Ok(true),
            Ok(_) | Err(CheckpointError::Hex { .. } | CheckpointError::InvalidPublicKey) => {
                Err(CheckpointError::PublicKeyMismatch { path })
            }
            Err(CheckpointError::Read { source, .. }) if source.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The public key in 64 lowercase hex characters.
    fn public_key_hex(&self) -> String {
        hex::encode(self.verifying_key().as_bytes())
    }
}

/// Loads a public key from a file holding 64 lowercase hex characters (and optionally a
/// final newline), as `checkpoint.pub` does.
///
/// # Errors
/// [`CheckpointError::Read`] if it cannot be read (at most [`KEY_FILE_MAX`] bytes of a
/// regular file); [`CheckpointError::Hex`] (field `public key`) if it does not hold 64 hex
/// characters; [`CheckpointError::InvalidPublicKey`] if they are not an Ed25519 public key.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, CheckpointError> {
    let text = read_key_file(path)?;
    parse_public_key(text.strip_suffix('\n').unwrap_or(&text))
}

/// Reads a key file, at most [`KEY_FILE_MAX`] bytes.
fn read_key_file(path: &Path) -> Result<String, CheckpointError> {
    read_bounded(path, KEY_FILE_MAX)
        .map_err(|source| CheckpointError::Read { path: path.to_owned(), source })
}

/// Parses a public key from 64 lowercase hex characters.
///
/// # Errors
/// [`CheckpointError::Hex`] (field `public key`) if it is not 64 hex characters;
/// [`CheckpointError::InvalidPublicKey`] if they are not an Ed25519 public key.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, CheckpointError> {
    let bytes = hex_field::<32>("public key", hex_key)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CheckpointError::InvalidPublicKey)
}

/// The JSON file form of a signed checkpoint.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointJson {
    /// The number of receipts.
    size: u64,
    /// The Merkle root, hex.
    root: String,
    /// Milliseconds since the Unix epoch.
    timestamp_ms: u64,
    /// The key id, hex.
    key_id: String,
    /// The signature, hex.
    signature: String,
}

impl SignedCheckpoint {
    /// Checks the key id and the signature with `key`.
    ///
    /// # Errors
    /// [`CheckpointError::KeyIdMismatch`] if the checkpoint names another key;
    /// [`CheckpointError::BadSignature`] if the signature does not verify.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(CheckpointError::KeyIdMismatch {
                expected: hex::encode(expected),
                found: hex::encode(self.key_id),
            });
        }
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.checkpoint.signed_message(), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }

    /// The JSON file form as one line (see the module documentation).
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(&self.file_json()).unwrap_or_default()
    }

    /// The JSON file form's fields.
    fn file_json(&self) -> CheckpointJson {
        CheckpointJson {
            size: self.checkpoint.size,
            root: self.checkpoint.root.to_string(),
            timestamp_ms: self.checkpoint.timestamp.as_ms(),
            key_id: hex::encode(self.key_id),
            signature: hex::encode(self.signature),
        }
    }

    /// Parses the JSON file form (it does not verify the signature: [`Self::verify`] does).
    ///
    /// # Errors
    /// [`CheckpointError::Json`] if it is not a JSON object with exactly the five fields of
    /// the right JSON types; [`CheckpointError::Hex`] naming `root`, `key_id` or `signature`
    /// if one is not lowercase hex of the right length.
    pub fn from_json(s: &str) -> Result<Self, CheckpointError> {
        let j: CheckpointJson =
            serde_json::from_str(s).map_err(|e| CheckpointError::Json(e.to_string()))?;
        Ok(Self {
            checkpoint: Checkpoint {
                size: j.size,
                root: Digest(hex_field::<32>("root", &j.root)?),
                timestamp: Timestamp(j.timestamp_ms),
            },
            key_id: hex_field::<KEY_ID_LEN>("key_id", &j.key_id)?,
            signature: hex_field::<SIGNATURE_LEN>("signature", &j.signature)?,
        })
    }
}

/// Checks a ledger's Merkle tree against a saved signed checkpoint: the signature verifies
/// with `key`, the tree has at least the checkpoint's size, and the root of its first `size`
/// leaves is the checkpoint's root. A tree that grew since the checkpoint verifies.
///
/// # Errors
/// [`CheckpointError::KeyIdMismatch`] or [`CheckpointError::BadSignature`] if the checkpoint
/// does not verify; [`CheckpointError::Truncated`] if the tree is smaller than the checkpoint;
/// [`CheckpointError::Rewritten`] if its root at the checkpoint's size differs.
pub fn verify_history(
    tree: &MerkleTree,
    signed: &SignedCheckpoint,
    key: &VerifyingKey,
) -> Result<(), CheckpointError> {
    signed.verify(key)?;
    let Checkpoint { size, root, .. } = signed.checkpoint;
    check_tree_head(size, &root, tree.len(), |size| tree.root_at(size).ok())
}

/// A checkpoint whose signature verified, in either form: what proofs are made against.
/// Only [`verify_checkpoint_text`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The form it came in, with what it says.
    form: Form,
}

/// Serialised as in JSON output: the checkpoint's JSON object (the file form, fields in its
/// order), or the signed note as a string.
impl Serialize for VerifiedCheckpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.form {
            Form::Json(signed) => signed.file_json().serialize(serializer),
            Form::Note { note, .. } => serializer.serialize_str(note),
        }
    }
}

/// The two forms of a checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Form {
    /// `checkpoint.json`.
    Json(SignedCheckpoint),
    /// A C2SP signed note: the whole note, and the size and root its text says.
    Note { note: String, size: u64, root: Digest },
}

impl VerifiedCheckpoint {
    /// The number of receipts it covers.
    #[must_use]
    pub fn size(&self) -> u64 {
        match &self.form {
            Form::Json(signed) => signed.checkpoint.size,
            Form::Note { size, .. } => *size,
        }
    }

    /// The Merkle root of its first `size` receipts.
    #[must_use]
    pub fn root(&self) -> Digest {
        match &self.form {
            Form::Json(signed) => signed.checkpoint.root,
            Form::Note { root, .. } => *root,
        }
    }

    /// The JSON checkpoint, when it came in that form.
    #[must_use]
    pub fn json(&self) -> Option<&SignedCheckpoint> {
        match &self.form {
            Form::Json(signed) => Some(signed),
            Form::Note { .. } => None,
        }
    }

    /// The signed note, when it came in that form.
    #[must_use]
    pub fn note(&self) -> Option<&str> {
        match &self.form {
            Form::Json(_) => None,
            Form::Note { note, .. } => Some(note),
        }
    }

    /// The note's origin (its first line), when it came as a signed note.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.note().and_then(|note| note.split_once('\n')).map(|(origin, _)| origin)
    }

    /// As printed in JSON output: the checkpoint's JSON object, or the note as a string.
    #[must_use]
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Checks it against a ledger of `ledger_size` receipts whose root at a size `root_at`
    /// gives ([`check_tree_head`]).
    ///
    /// # Errors
    /// [`CheckpointError::Truncated`] or [`CheckpointError::Rewritten`].
    pub fn check_history(
        &self,
        ledger_size: u64,
        root_at: impl FnOnce(u64) -> Option<Digest>,
    ) -> Result<(), CheckpointError> {
        check_tree_head(self.size(), &self.root(), ledger_size, root_at)
    }
}

/// Verifies a checkpoint file's text, in either form, with `key`: a JSON checkpoint (the text
/// starts with `{`) by its key id and signature; a signed note by the signature of `key` under
/// the note's origin as key name, and its text must be a checkpoint ([`note`]) whose origin
/// is one govern signs under ([`note::check_origin`]).
///
/// # Errors
/// As [`SignedCheckpoint::from_json`] and [`SignedCheckpoint::verify`] for JSON; as
/// [`note::Note::parse`], [`note::parse_checkpoint_text`] and [`note::Note::verify`] for a
/// note, and [`CheckpointError::NoteCheckpoint`] for an origin that is not a key name.
pub fn verify_checkpoint_text(
    text: &str,
    key: &VerifyingKey,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    if text.trim_start().starts_with('{') {
        let signed = SignedCheckpoint::from_json(text)?;
        signed.verify(key)?;
        return Ok(VerifiedCheckpoint { form: Form::Json(signed) });
    }
    let parsed = note::Note::parse(text)?;
    let (origin, size, root) = note::parse_checkpoint_text(&parsed.text)?;
    note::check_origin(&origin).map_err(|e| {
        CheckpointError::NoteCheckpoint(format!("no key of govern signs under this {e}"))
    })?;
    parsed.verify(&origin, key)?;
    Ok(VerifiedCheckpoint { form: Form::Note { note: text.to_owned(), size, root } })
}

/// The size a checkpoint file's text (either form) states, without checking its signature:
/// a bound, for archival, that the signature check at verification confirms or refuses.
///
/// # Errors
/// As [`verify_checkpoint_text`]'s parsing.
pub fn checkpoint_text_size(text: &str) -> Result<u64, CheckpointError> {
    if text.trim_start().starts_with('{') {
        return Ok(SignedCheckpoint::from_json(text)?.checkpoint.size);
    }
    let parsed = note::Note::parse(text)?;
    Ok(note::parse_checkpoint_text(&parsed.text)?.1)
}

/// Reads a checkpoint file (either form): a regular file of UTF-8, refused past
/// [`CHECKPOINT_FILE_MAX`] bytes without reading more than one byte past it
/// ([`read_bounded`]).
///
/// # Errors
/// [`CheckpointError::Read`] if it is missing or cannot be read, is not a regular file, is
/// larger or is not UTF-8.
pub fn read_checkpoint_file(path: &Path) -> Result<String, CheckpointError> {
    read_bounded(path, CHECKPOINT_FILE_MAX)
        .map_err(|source| CheckpointError::Read { path: path.to_owned(), source })
}

/// Checks a verified tree head (`size`, `root`) against a ledger of `ledger_size` receipts:
/// the ledger has at least `size` receipts and `root_at(size)`, the root of its first `size`
/// (`None` if it is not known, taken as a truncated ledger), is `root`.
///
/// # Errors
/// [`CheckpointError::Truncated`] if the ledger is smaller; [`CheckpointError::Rewritten`] if
/// its root at `size` differs.
pub fn check_tree_head(
    size: u64,
    root: &Digest,
    ledger_size: u64,
    root_at: impl FnOnce(u64) -> Option<Digest>,
) -> Result<(), CheckpointError> {
    let truncated = || CheckpointError::Truncated { checkpoint_size: size, ledger_size };
    if ledger_size < size {
        return Err(truncated());
    }
    let found = root_at(size).ok_or_else(truncated)?;
    if found != *root {
        return Err(CheckpointError::Rewritten { size });
    }
    Ok(())
}

/// `N` bytes from `2N` lowercase hex characters, or `None`.
fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// [`parse_hex`] of a named field, with the error naming it.
fn hex_field<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], CheckpointError> {
    parse_hex(s).ok_or_else(|| CheckpointError::Hex { field, expected: 2 * N, found: cut(s) })
}

/// At most 140 characters of `s`, for messages.
fn cut(s: &str) -> String {
    s.chars().take(140).collect()
}

/// Writes `<dir>/<name>` with `hex` and a newline, atomically ([`write_atomically`]).
fn write_key_file(dir: &Path, name: &str, hex: &str, secret: bool) -> Result<(), CheckpointError> {
    write_atomically(dir, name, &format!("{hex}\n"), secret)
}

/// Writes `signed` to `<dir>/checkpoint.json` ([`CHECKPOINT_FILE`]), replacing the previous
/// one atomically (a synced temporary file renamed into place, then the directory synced):
/// a crash leaves the old checkpoint or the new one, never a mix.
///
/// # Errors
/// [`CheckpointError::Io`] if a file cannot be written.
pub fn write_checkpoint(dir: &Path, signed: &SignedCheckpoint) -> Result<(), CheckpointError> {
    write_atomically(dir, CHECKPOINT_FILE, &format!("{}\n", signed.to_json()), false)
}

/// Writes a signed note to `<dir>/checkpoint.note` ([`NOTE_FILE`]), replacing the previous
/// one atomically, as [`write_checkpoint`] does.
///
/// # Errors
/// [`CheckpointError::Io`] if a file cannot be written.
pub fn write_note(dir: &Path, note: &str) -> Result<(), CheckpointError> {
    write_atomically(dir, NOTE_FILE, note, false)
}

fn write_atomically(
    dir: &Path,
    name: &str,
    contents: &str,
    secret: bool,
) -> Result<(), CheckpointError> {
    crate::text_file::write_atomically(dir, name, contents.as_bytes(), secret)
        .map_err(|(context, path, source)| CheckpointError::Io { context, path, source })
}

#[cfg(test)]
mod tests;
