//! Archival: the oldest sealed segments of a data directory move to an archive directory,
//! and what the data directory keeps about them proves they belong there.
//!
//! # What stays in the data directory
//!
//! `archive.json`, the **manifest**, replaced atomically. Its `boundary` B is the first
//! record still in `segments/`: every record below it is archived. It names, per archived
//! segment (a **range**), its file, records `[first_seq, end_seq)`, length and SHA-256, the
//! hash chain's endpoints (`prev_hash`, the hash of record `first_seq - 1`, and `last_hash`,
//! that of record `end_seq - 1`), the Merkle root of the first `end_seq` records and a
//! consistency proof from the range before it (from the root at `first_seq`). At the top:
//! the Merkle frontier at B (the roots of the perfect subtrees of the first B leaves: with
//! the live leaves, every root, inclusion proof and consistency proof at or after B), and
//! two **base files** in `DATA_DIR/archive/`, each with its SHA-256:
//! - `base-B.snap`, a ledger snapshot ([`crate::SNAPSHOT_FILE`]'s format) of exactly the first B
//!   records: every key's receipt count (the numbering of the live receipts continues from
//!   it), the tenant lists, the chain head and the frontier at B. An open without a usable
//!   `ledger.snap` starts from it and reads every live segment.
//! - `base-B.states`, every governor's machine state after its receipts below B
//!   ([`states`]): a governor replays from it, never from archived receipts.
//!
//! # What goes to the archive directory
//!
//! `ARCHIVE_DIR/segments/`: the archived segment files, byte for byte, with their index
//! files: so an archive directory is itself the data directory of the ledger's first B
//! records, and verifies as one (`govern verify ARCHIVE_DIR`). A second archival adds to
//! the same directory.
//!
//! # Order, and crashes
//!
//! Copy each segment (temporary name, fsync, rename, directory fsync) and check the copy's
//! SHA-256 → write the base files → write the manifest (the commit point) → remove the
//! originals and the old base files. A crash before the manifest leaves the data directory
//! as it was (and perhaps copies in the archive); after it, an open finds segments wholly
//! below the boundary and ignores them, and a writer removes them.

pub mod states;

use std::path::{Path, PathBuf};

use govern_receipt::Digest;
use serde::{Deserialize, Serialize};

/// The manifest's file name in a data directory.
pub const MANIFEST_FILE: &str = "archive.json";

/// The copy of the manifest an archival leaves in the archive directory, for whoever holds
/// the archive alone (not `archive.json`: the archive directory is a data directory whose
/// records start at 0, and that name would say otherwise).
pub const MANIFEST_COPY_FILE: &str = "manifest.json";

/// The folder of the base files in a data directory.
pub const BASE_DIR: &str = "archive";

/// The manifest's format tag.
pub const MANIFEST_FORMAT: &str = "govern.archive";

/// The manifest format version this build reads and writes.
pub const MANIFEST_VERSION: u32 = 1;

/// The longest manifest read: about 3 KB per archived segment, so some 5 000 segments
/// (over 300 GB of 64 MiB segments).
pub const MANIFEST_BYTES_MAX: usize = 16 << 20;

/// Why archival, or reading what it recorded, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, on which path.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is damaged or does not fit the data directory.
    #[error("archive manifest {path}: {reason}")]
    Manifest {
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An archived range or a base file does not match what the manifest records.
    #[error("archived range {range}: {reason}")]
    Mismatch {
        /// The segment file (or base file) named.
        range: String,
        /// What differs.
        reason: String,
    },
    /// The request cannot be met (nothing to archive, a bound out of range, ...).
    #[error("{0}")]
    Refused(String),
}

/// A base file the manifest names, with its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseFile {
    /// Its path, relative to the data directory.
    pub file: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes.
    pub sha256: Digest,
}

/// One archived segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedRange {
    /// Its file name (in the archive's `segments/`).
    pub segment: String,
    /// Its first record.
    pub first_seq: u64,
    /// The record after its last.
    pub end_seq: u64,
    /// The file's length in bytes.
    pub bytes: u64,
    /// The SHA-256 of the file.
    pub sha256: Digest,
    /// The hash of record `first_seq - 1` (zeros for the first range): its first record's
    /// `prev_hash`.
    pub prev_hash: Digest,
    /// The hash of its last record.
    pub last_hash: Digest,
    /// The Merkle root of the first `end_seq` records.
    pub root: Digest,
    /// The consistency proof from the first `first_seq` records to the first `end_seq`
    /// (empty for the first range).
    pub consistency: Vec<Digest>,
    /// When it was archived (RFC 3339, UTC).
    pub archived_at: String,
}

/// The manifest, `DATA_DIR/archive.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The first record not archived.
    pub boundary: u64,
    /// The hash of record `boundary - 1`.
    pub boundary_hash: Digest,
    /// The Merkle frontier at `boundary`: the roots of its perfect subtrees, largest first.
    pub frontier: Vec<Digest>,
    /// The ledger snapshot of the first `boundary` records.
    pub base_snapshot: BaseFile,
    /// The governors' states after the first `boundary` records.
    pub base_states: BaseFile,
    /// The archived segments, in order, from record 0 to `boundary`.
    pub ranges: Vec<ArchivedRange>,
}

impl Manifest {
    /// Reads `dir`'s manifest: `None` when it has none.
    ///
    /// # Errors
    /// [`ArchiveError::Manifest`] when it cannot be read, does not parse or does not hold
    /// together ([`Self::check`]).
    pub fn read(dir: &Path) -> Result<Option<Self>, ArchiveError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match crate::text_file::read_bounded(&path, MANIFEST_BYTES_MAX) {
            Ok(text) => text,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(ArchiveError::Manifest { path, reason: e.to_string() }),
        };
        let manifest: Self = serde_json::from_str(&text).map_err(|e| ArchiveError::Manifest {
            path: path.clone(),
            reason: format!("line {}, column {}: {e}", e.line(), e.column()),
        })?;
        manifest.check().map_err(|reason| ArchiveError::Manifest { path, reason })?;
        Ok(Some(manifest))
    }

    /// Checks that the manifest holds together: format and version; ranges contiguous from
    /// record 0 to the boundary, none empty; each range's `prev_hash` the `last_hash` of the
    /// one before (zeros for the first); the boundary hash the last range's `last_hash`; the
    /// frontier one node per set bit of the boundary; each range's consistency proof valid
    /// from the root before it; the root at the boundary the frontier's.
    ///
    /// # Errors
    /// What does not hold, naming the range.
    pub fn check(&self) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!("format is {:?}, expected {MANIFEST_FORMAT:?}", self.format));
        }
        if self.version != MANIFEST_VERSION {
            return Err(format!(
                "version {} is not supported (this build reads {MANIFEST_VERSION})",
                self.version
            ));
        }
        let mut next = 0u64;
        let mut prev_hash = Digest::ZERO;
        let mut prev_root: Option<Digest> = None;
        for range in &self.ranges {
            let name = &range.segment;
            if crate::segment::parse_segment_name(name) != Some(range.first_seq) {
                return Err(format!("range {name}: its name does not give its first record"));
            }
            if range.first_seq != next {
                return Err(format!("range {name} starts at {}, expected {next}", range.first_seq));
            }
            if range.end_seq <= range.first_seq {
                return Err(format!("range {name} is empty"));
            }
            if range.prev_hash != prev_hash {
                return Err(format!(
                    "range {name}: prev_hash is not the last hash of the range before"
                ));
            }
            let old_root = prev_root.unwrap_or(crate::merkle::EMPTY_ROOT);
            crate::merkle::verify_consistency(
                range.first_seq,
                range.end_seq,
                &old_root,
                &range.root,
                &range.consistency,
            )
            .map_err(|e| format!("range {name}: consistency proof: {e}"))?;
            next = range.end_seq;
            prev_hash = range.last_hash;
            prev_root = Some(range.root);
        }
        if next != self.boundary {
            return Err(format!("ranges end at {next}, the boundary is {}", self.boundary));
        }
        if self.boundary_hash != prev_hash {
            return Err("boundary_hash is not the last range's last_hash".into());
        }
        if self.frontier.len() != self.boundary.count_ones() as usize {
            return Err(format!(
                "the frontier has {} nodes, a tree of {} leaves has {}",
                self.frontier.len(),
                self.boundary,
                self.boundary.count_ones()
            ));
        }
        if let Some(root) = prev_root
            && root != self.frontier().root()
        {
            return Err("the last range's root is not the frontier's".into());
        }
        Ok(())
    }

    /// The Merkle frontier at the boundary.
    #[must_use]
    pub fn frontier(&self) -> crate::merkle::MerkleFrontier {
        crate::merkle::MerkleFrontier::from_parts(self.boundary, self.frontier.clone())
    }

    /// The manifest as written: pretty JSON and a newline.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The archive boundary of data directory `dir`: the first record in its segments (0 when
/// nothing was archived).
///
/// # Errors
/// [`ArchiveError::Manifest`] when the manifest is damaged: the directory does not open
/// (its segments no longer start at 0, and without the manifest nothing says where).
pub fn boundary(dir: &Path) -> Result<u64, ArchiveError> {
    Ok(Manifest::read(dir)?.map_or(0, |m| m.boundary))
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    Digest(sha2::Sha256::digest(bytes).into())
}

/// Reads base file `base` of the manifest from data directory `dir`, checking its length
/// and SHA-256.
///
/// # Errors
/// [`ArchiveError::Io`] when it cannot be read; [`ArchiveError::Mismatch`] when it is not
/// the file the manifest names.
pub(crate) fn read_base_file(dir: &Path, base: &BaseFile) -> Result<Vec<u8>, ArchiveError> {
    let path = dir.join(&base.file);
    let mismatch = |reason: String| ArchiveError::Mismatch { range: base.file.clone(), reason };
    if !base.file.starts_with(&format!("{BASE_DIR}/")) || base.file.contains("..") {
        return Err(mismatch("not a file of the data directory's archive folder".into()));
    }
    let meta = std::fs::metadata(&path).map_err(|source| ArchiveError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    if meta.len() != base.bytes {
        return Err(mismatch(format!("{} bytes, the manifest says {}", meta.len(), base.bytes)));
    }
    let bytes = std::fs::read(&path).map_err(|source| ArchiveError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    if sha256(&bytes) != base.sha256 {
        return Err(mismatch("its SHA-256 is not the one the manifest records".into()));
    }
    Ok(bytes)
}

/// The ledger snapshot of the first `boundary` records the manifest names, checked: its
/// digest, its records, last hash and frontier those of the manifest.
///
/// # Errors
/// As [`read_base_file`]; [`ArchiveError::Mismatch`] when it does not parse or describes
/// another boundary.
pub(crate) fn load_base_snapshot(
    dir: &Path,
    manifest: &Manifest,
) -> Result<crate::ledger::snapshot::Loaded, ArchiveError> {
    let bytes = read_base_file(dir, &manifest.base_snapshot)?;
    let mismatch = |reason: String| ArchiveError::Mismatch {
        range: manifest.base_snapshot.file.clone(),
        reason,
    };
    let loaded =
        crate::ledger::snapshot::Loaded::parse(bytes).map_err(|e| mismatch(e.to_string()))?;
    if loaded.records != manifest.boundary || loaded.last_hash != manifest.boundary_hash {
        return Err(mismatch("not a snapshot of the records below the boundary".into()));
    }
    let frontier = loaded.frontier().map_err(|e| mismatch(e.to_string()))?;
    if frontier.nodes() != manifest.frontier.as_slice() {
        return Err(mismatch("its Merkle frontier is not the manifest's".into()));
    }
    Ok(loaded)
}
