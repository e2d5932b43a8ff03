//! Where a [`crate::Checkpointer`] puts what it signs: a [`CheckpointSink`]. A data directory
//! is one ([`DirSink`]: `checkpoint.json`, then `checkpoint.note`, each replaced atomically);
//! a database table is another (`govern-postgres`).

use std::fmt;
use std::path::{Path, PathBuf};

use super::{
    CHECKPOINT_FILE, CheckpointError, SignedCheckpoint, read_checkpoint_file, write_checkpoint,
    write_note,
};

/// Keeps signed checkpoints: each one in its JSON form and the same tree head as a C2SP
/// signed note, and gives the latest back.
///
/// Called from the committer (a blocking thread, never an async task), after the receipts a
/// checkpoint covers are durable; a sink may block on I/O.
pub trait CheckpointSink: Send + Sync + fmt::Debug {
    /// Stores `signed` and `note` (the same tree head, signed by the same key); durable once
    /// it returns `Ok`. Storing a checkpoint of a size stored already is not an error.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] or [`CheckpointError::Sink`] if it could not be stored.
    fn write(&self, signed: &SignedCheckpoint, note: &str) -> Result<(), CheckpointError>;

    /// The JSON form of the latest checkpoint stored (the largest), not verified; `None` if
    /// none was.
    ///
    /// # Errors
    /// [`CheckpointError::Read`] or [`CheckpointError::Sink`] if it could not be read.
    fn latest(&self) -> Result<Option<String>, CheckpointError>;
}

/// A data directory as a sink: `checkpoint.json`, then `checkpoint.note`, each replaced
/// atomically ([`write_checkpoint`], [`write_note`]): a crash between the two leaves the note
/// one tree head behind, both still verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirSink {
    /// The directory.
    dir: PathBuf,
}

impl DirSink {
    /// The sink of `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl CheckpointSink for DirSink {
    fn write(&self, signed: &SignedCheckpoint, note: &str) -> Result<(), CheckpointError> {
        write_checkpoint(&self.dir, signed)?;
        write_note(&self.dir, note)
    }

    /// `checkpoint.json` (its last one: the file is replaced, never appended to).
    fn latest(&self) -> Result<Option<String>, CheckpointError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        match read_checkpoint_file(&path) {
            Ok(text) => Ok(Some(text)),
            Err(CheckpointError::Read { source, .. }) if source.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
