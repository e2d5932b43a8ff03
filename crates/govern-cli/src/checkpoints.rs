//! Checkpoints as the read-only commands meet them: the public key (`--public-key FILE` or
//! DATA_DIR/checkpoint.pub), a checkpoint file verified (either form) before anything uses
//! it, the data directory's latest checkpoint verified against its ledger, and
//! `govern checkpoint`, which signs a checkpoint of a verified ledger and prints it.

use std::path::{Path, PathBuf};

use clap::Args;
use govern_ledger::checkpoint::{
    CHECKPOINT_FILE, Checkpoint, CheckpointError, CheckpointSigner, NOTE_FILE, PUBLIC_KEY_FILE,
    SECRET_KEY_FILE, VerifiedCheckpoint, VerifyingKey, load_public_key, read_checkpoint_file,
    verify_checkpoint_text,
};
use govern_ledger::merkle::MerkleTree;
use govern_ledger::verify::verify_dir;

/// The public key checkpoints are verified with: `given` (a file holding the key in hex, as
/// checkpoint.pub is written), else DATA_DIR/checkpoint.pub.
pub(crate) fn load_key(
    data_dir: Option<&Path>,
    given: Option<&Path>,
) -> Result<VerifyingKey, String> {
    let path = match (given, data_dir) {
        (Some(path), _) => path.to_owned(),
        (None, Some(dir)) => dir.join(PUBLIC_KEY_FILE),
        (None, None) => return Err("--public-key FILE is needed to verify a checkpoint".into()),
    };
    load_public_key(&path).map_err(|e| {
        let hint =
            if given.is_none() { " (give the signer's key with --public-key FILE)" } else { "" };
        format!("public key {}: {e}{hint}", path.display())
    })
}

/// Reads a checkpoint file (JSON or C2SP signed note) and verifies its signature with `key`.
pub(crate) fn read_verified(path: &Path, key: &VerifyingKey) -> Result<VerifiedCheckpoint, String> {
    let text = read_checkpoint_file(path).map_err(|e| e.to_string())?;
    verify_checkpoint_text(&text, key).map_err(|e| format!("checkpoint {}: {e}", path.display()))
}

/// [`read_verified`], then checked against a ledger of `ledger_size` receipts (at least its
/// size, and the same root at its size): a checkpoint of another ledger, or of a history since
/// rewritten or truncated, is refused.
pub(crate) fn read_checked(
    path: &Path,
    key: &VerifyingKey,
    ledger_size: u64,
    root_at: impl FnOnce(u64) -> Option<govern_receipt::Digest>,
) -> Result<VerifiedCheckpoint, String> {
    let checkpoint = read_verified(path, key)?;
    checkpoint
        .check_history(ledger_size, root_at)
        .map_err(|e| format!("checkpoint {} does not match the ledger: {e}", path.display()))?;
    Ok(checkpoint)
}

/// A data directory's own checkpoint files (checkpoint.json and checkpoint.note) as read
/// *before* its ledger: the ledger only grows and a checkpoint is written after the receipts
/// it covers are durable, so checkpoints read first never cover more than the ledger read
/// after them, even while a writer runs.
#[derive(Debug)]
pub(crate) struct DirCheckpoints {
    /// The data directory.
    dir: PathBuf,
    /// checkpoint.json's text, if there is one.
    json: Option<String>,
    /// checkpoint.note's text, if there is one.
    note: Option<String>,
}

impl DirCheckpoints {
    /// Reads both files (an absent one is `None`).
    pub(crate) fn read(dir: &Path) -> Result<Self, String> {
        let read = |name: &str| {
            let path = dir.join(name);
            match read_checkpoint_file(&path) {
                Ok(text) => Ok(Some(text)),
                Err(CheckpointError::Read { source, .. }) if source.is_not_found() => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        };
        Ok(Self { dir: dir.to_owned(), json: read(CHECKPOINT_FILE)?, note: read(NOTE_FILE)? })
    }

    /// checkpoint.json verified with the key (loaded only when the file exists) and against
    /// the ledger's tree, or `None` if there is none.
    pub(crate) fn json(
        &self,
        public_key: Option<&Path>,
        tree: &MerkleTree,
    ) -> Result<Option<VerifiedCheckpoint>, String> {
        self.check(CHECKPOINT_FILE, self.json.as_deref(), public_key, tree)
    }

    /// checkpoint.note, likewise.
    pub(crate) fn note(
        &self,
        public_key: Option<&Path>,
        tree: &MerkleTree,
    ) -> Result<Option<VerifiedCheckpoint>, String> {
        self.check(NOTE_FILE, self.note.as_deref(), public_key, tree)
    }

    fn check(
        &self,
        name: &str,
        text: Option<&str>,
        public_key: Option<&Path>,
        tree: &MerkleTree,
    ) -> Result<Option<VerifiedCheckpoint>, String> {
        let Some(text) = text else { return Ok(None) };
        let path = self.dir.join(name);
        let key = load_key(Some(&self.dir), public_key)?;
        let checkpoint = verify_checkpoint_text(text, &key)
            .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
        checkpoint
            .check_history(tree.len(), |size| tree.root_at(size).ok())
            .map_err(|e| format!("checkpoint {} does not match the ledger: {e}", path.display()))?;
        Ok(Some(checkpoint))
    }
}

/// Options of `govern checkpoint`.
#[derive(Debug, Args)]
pub(crate) struct CheckpointArgs {
    /// The ledger's data directory (it holds the key pair, checkpoint.key and checkpoint.pub).
    data_dir: PathBuf,
    /// Sign the tree head of the first N receipts (default: every receipt).
    #[arg(long, value_name = "N")]
    size: Option<u64>,
    /// Print the C2SP signed note instead of the JSON checkpoint.
    #[arg(long)]
    note: bool,
    /// The note's origin (default: that of DATA_DIR/checkpoint.note, else govern/KEY_ID, the key id in hex).
    #[arg(long, requires = "note")]
    origin: Option<String>,
}

/// Runs `govern checkpoint`: verifies the ledger and its latest checkpoint (a checkpoint is
/// never signed over a history that contradicts one signed before), then signs and prints.
pub(crate) fn run(args: &CheckpointArgs) -> Result<(), String> {
    let dir = &args.data_dir;
    let saved = DirCheckpoints::read(dir)?;
    let report = verify_dir(dir).map_err(|e| format!("the ledger does not verify: {e}"))?;
    let secret = dir.join(SECRET_KEY_FILE);
    let seed = std::fs::read_to_string(&secret)
        .map_err(|e| format!("reading {}: {e}", secret.display()))?;
    let signer = CheckpointSigner::from_seed_hex(seed.trim_end())
        .map_err(|e| format!("{}: {e}", secret.display()))?;
    let public = dir.join(PUBLIC_KEY_FILE);
    let key = signer.verifying_key();
    if public.exists() && load_key(Some(dir), None)? != key {
        return Err(format!("{} is not the public key of {}", public.display(), secret.display()));
    }
    saved.json(Some(&public), &report.tree)?;
    let note = saved.note(Some(&public), &report.tree)?;
    let size = args.size.unwrap_or(report.tree.len());
    let root = report.tree.root_at(size).map_err(|e| format!("--size {size}: {e}"))?;
    let checkpoint =
        Checkpoint { size, root, timestamp: govern_ledger::Checkpointer::wall_clock() };
    if args.note {
        let origin = match &args.origin {
            Some(origin) => Some(origin.clone()),
            None => note.as_ref().and_then(|c| c.origin().map(str::to_owned)),
        };
        let signer = match origin {
            Some(origin) => signer.with_origin(&origin).map_err(|e| format!("--origin: {e}"))?,
            None => signer,
        };
        let note = signer.sign_note(&checkpoint);
        say!("{}", note.strip_suffix('\n').unwrap_or(&note));
    } else {
        say!("{}", signer.sign(checkpoint).to_json());
    }
    Ok(())
}
