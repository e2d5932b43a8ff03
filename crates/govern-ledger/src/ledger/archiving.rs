//! [`Ledger::archive`]: moving the oldest sealed segments of a data directory to an archive
//! directory (the formats and the order of the steps are in [`crate::archive`]).

use std::path::Path;

use govern_governors::Timestamp;
use govern_receipt::{Digest, Receipt};

use super::snapshot::{Loaded, Tail, merge, stored_hash};
use super::{Ledger, LedgerError, SealedSegment};
use crate::archive::states::{self as base_states, BaseStates, StatesFold, StatesMap};
use crate::archive::{
    self, ArchiveError, ArchivedRange, BASE_DIR, BaseFile, MANIFEST_FILE, MANIFEST_FORMAT,
    MANIFEST_VERSION, Manifest,
};
use crate::merkle::{MerkleFrontier, PartialTree};

/// What [`Ledger::archive`] is asked to do.
#[derive(Clone, Debug)]
pub struct ArchiveRequest {
    /// Archive only records below this one (whole segments: the boundary is the start of
    /// the first segment that holds a record at or past it).
    pub below: u64,
    /// The archive directory: the segments go to its `segments/`.
    pub to: std::path::PathBuf,
    /// The time recorded as each range's `archived_at`.
    pub now: Timestamp,
}

/// What [`Ledger::archive`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveReport {
    /// The boundary before: records below it were archived already.
    pub boundary_before: u64,
    /// The boundary now.
    pub boundary: u64,
    /// The segment files moved, in order.
    pub segments: Vec<String>,
    /// The records moved.
    pub records: u64,
    /// The bytes moved.
    pub bytes: u64,
}

impl ArchiveReport {
    /// Whether nothing was moved.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

/// The base at a boundary built from the records below it (after those of a previous
/// boundary): the index for its snapshot, the Merkle frontier, the last hash and the
/// governors' states. Archival builds it from the records it moves; `govern verify
/// --archive` from the archive, to compare with what the data directory keeps.
pub(crate) struct BaseBuilder {
    tail: Tail,
    states: StatesFold,
    /// The Merkle frontier of the records pushed so far.
    pub(crate) frontier: MerkleFrontier,
    /// The hash of the last record pushed.
    pub(crate) last_hash: Digest,
}

impl BaseBuilder {
    /// A builder to `boundary`, from `prior` (the states at the previous boundary, or none:
    /// from record 0), whose frontier and last hash are `frontier` and `last_hash`.
    pub(crate) fn new(
        prior: Option<&BaseStates>,
        boundary: u64,
        frontier: MerkleFrontier,
        last_hash: Digest,
    ) -> Result<Self, base_states::StatesError> {
        Ok(Self {
            tail: Tail::default(),
            states: StatesFold::new(prior, boundary)?,
            frontier,
            last_hash,
        })
    }

    /// Takes the next record (which the caller has read from a store that checks frames):
    /// its hash.
    pub(crate) fn push(&mut self, seq: u64, record: &[u8]) -> Result<Digest, LedgerError> {
        let malformed =
            |source| LedgerError::Chain(govern_receipt::ChainError::Malformed { seq, source });
        let hash =
            stored_hash(record).ok_or(LedgerError::Corrupt { seq, reason: "too short".into() })?;
        // Decoded once: the snapshot's lists take its key, the fold its transition.
        let receipt = Receipt::decode(record).map_err(malformed)?;
        let b = &receipt.body;
        self.tail.push_key(seq, b.tenant.as_str(), b.governor, b.resource.as_str());
        self.states
            .push(&receipt)
            .map_err(|e| LedgerError::Corrupt { seq, reason: e.to_string() })?;
        self.frontier.push(&hash);
        self.last_hash = hash;
        Ok(hash)
    }

    /// The snapshot at the boundary (merged with `prior`, the snapshot at the previous one)
    /// and the states there.
    pub(crate) fn finish(self, prior: Option<&Loaded>) -> Result<(Vec<u8>, StatesMap), String> {
        let writer = merge(prior, &self.tail).map_err(|e| e.to_string())?;
        let bytes = writer.finish(self.frontier.len(), self.last_hash, &self.frontier, None);
        let states = self.states.finish().map_err(|e| e.to_string())?;
        Ok((bytes, states))
    }
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ArchiveError {
    move |source| ArchiveError::Io { context, source }
}

impl Ledger {
    /// Archives the sealed segments of this ledger's data directory `dir` that lie wholly
    /// below `request.below`, below the latest checkpoint's size (`checkpoint.json`, so that
    /// it still verifies from the live records) and in durable records, to
    /// `request.to`; see [`crate::archive`] for what is recorded and in which order. Appends
    /// go on meanwhile: the ledger's lock is taken only to list the segments, to read
    /// records (in batches) and, at the end, to let the store forget the archived ones.
    ///
    /// Nothing to archive (no sealed segment below the bounds) is an empty report.
    ///
    /// # Errors
    /// [`ArchiveError`]: I/O; the archive directory lacks a range archived earlier (a
    /// second archival goes to the same directory); a copy that does not read back as the
    /// original; the store cannot archive (not a segment store).
    pub fn archive(
        &self,
        dir: &Path,
        request: &ArchiveRequest,
    ) -> Result<ArchiveReport, ArchiveError> {
        // One writer of the snapshot and base files at a time.
        let _one = self.snapshotting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let manifest = Manifest::read(dir)?;
        let before = manifest.as_ref().map_or(0, |m| m.boundary);
        let (base, sealed) = {
            let inner = self.lock();
            (inner.store.base(), inner.store.sealed_segments())
        };
        if base != before {
            return Err(ArchiveError::Refused(format!(
                "the store starts at record {base}, the manifest's boundary is {before}"
            )));
        }
        let limit = request.below.min(self.durable_len()).min(checkpoint_size(dir)?);
        let chosen: Vec<SealedSegment> =
            sealed.into_iter().filter(|s| s.first_seq >= before && s.end_seq <= limit).collect();
        let Some(boundary) = chosen.last().map(|s| s.end_seq) else {
            return Ok(ArchiveReport {
                boundary_before: before,
                boundary: before,
                segments: Vec::new(),
                records: 0,
                bytes: 0,
            });
        };
        let to_segments = request.to.join(crate::segment::SEGMENTS_DIR);
        std::fs::create_dir_all(&to_segments)
            .map_err(io(format!("creating {}", to_segments.display())))?;
        if let Some(m) = &manifest {
            check_earlier_ranges(&to_segments, m)?;
        }
        // 1. The copies, each checked against the original.
        let mut digests = Vec::with_capacity(chosen.len());
        for seg in &chosen {
            digests.push(copy_segment(dir, &to_segments, seg)?);
        }
        crate::text_file::sync_dir(&to_segments)
            .map_err(io(format!("syncing {}", to_segments.display())))?;
        // 2. What the data directory keeps about them: endpoints, roots and proofs per range,
        // the snapshot and the governors' states at the new boundary.
        let prev_snapshot =
            manifest.as_ref().map(|m| archive::load_base_snapshot(dir, m)).transpose()?;
        let prev_states = manifest
            .as_ref()
            .map(|m| {
                BaseStates::open(&dir.join(&m.base_states.file)).map_err(|e| {
                    ArchiveError::Mismatch {
                        range: m.base_states.file.clone(),
                        reason: e.to_string(),
                    }
                })
            })
            .transpose()?;
        let frontier = manifest.as_ref().map_or_else(MerkleFrontier::new, Manifest::frontier);
        let prev_hash = manifest.as_ref().map_or(Digest::ZERO, |m| m.boundary_hash);
        let mut builder = BaseBuilder::new(prev_states.as_ref(), boundary, frontier, prev_hash)
            .map_err(|e| {
                ArchiveError::Refused(format!("the governors' states at {before}: {e}"))
            })?;
        drop(prev_states);
        let mut ranges = Vec::with_capacity(chosen.len());
        let archived_at = request.now.to_string();
        for (seg, (sha256, bytes)) in chosen.iter().zip(digests) {
            let prev_hash = builder.last_hash;
            let mut tree = PartialTree::from_frontier(builder.frontier.clone());
            self.for_each_durable(seg.first_seq..seg.end_seq, |seq, record| {
                tree.push(builder.push(seq, record)?);
                Ok(())
            })
            .map_err(|e| ArchiveError::Refused(format!("reading {}: {e}", seg.name)))?;
            let consistency = tree
                .consistency_proof(seg.first_seq, seg.end_seq)
                .map_err(|e| ArchiveError::Refused(format!("range {}: {e}", seg.name)))?;
            ranges.push(ArchivedRange {
                segment: seg.name.clone(),
                first_seq: seg.first_seq,
                end_seq: seg.end_seq,
                bytes,
                sha256,
                prev_hash,
                last_hash: builder.last_hash,
                root: builder.frontier.root(),
                consistency,
                archived_at: archived_at.clone(),
            });
        }
        let (prev_hash, frontier) = (builder.last_hash, builder.frontier.clone());
        let (snapshot_bytes, states) = builder
            .finish(prev_snapshot.as_ref())
            .map_err(|e| ArchiveError::Refused(format!("the base at {boundary}: {e}")))?;
        drop(prev_snapshot);
        // 3. The base files, then the manifest: the commit point.
        let base_dir = dir.join(BASE_DIR);
        std::fs::create_dir_all(&base_dir)
            .map_err(io(format!("creating {}", base_dir.display())))?;
        let base_snapshot = write_base(dir, &format!("base-{boundary}.snap"), &snapshot_bytes)?;
        let states_name = format!("base-{boundary}.states");
        let written = base_states::write_states(&base_dir.join(&states_name), boundary, &states)
            .map_err(|e| ArchiveError::Refused(format!("writing the governors' states: {e}")))?;
        drop(states);
        let base_states = BaseFile {
            file: format!("{BASE_DIR}/{states_name}"),
            bytes: written.bytes,
            sha256: written.sha256,
        };
        let mut all = manifest.as_ref().map(|m| m.ranges.clone()).unwrap_or_default();
        all.extend(ranges);
        let next = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            boundary,
            boundary_hash: prev_hash,
            frontier: frontier.nodes().to_vec(),
            base_snapshot,
            base_states,
            ranges: all,
        };
        next.check()
            .map_err(|reason| ArchiveError::Refused(format!("the new manifest: {reason}")))?;
        let text = next.to_json();
        crate::text_file::write_atomically(dir, MANIFEST_FILE, text.as_bytes(), false).map_err(
            |(what, path, source)| ArchiveError::Io {
                context: format!("{what} {}", path.display()),
                source,
            },
        )?;
        // A copy beside the archived segments, for whoever holds the archive alone.
        if let Err((what, path, e)) = crate::text_file::write_atomically(
            &request.to,
            archive::MANIFEST_COPY_FILE,
            text.as_bytes(),
            false,
        ) {
            tracing::warn!(error = %e, path = %path.display(), what, "copy of the archive manifest not written");
        }
        // 4. The originals go; the store forgets them, and replays start from the new
        // states, both under one hold of the lock (a replay never pairs the old states with
        // the new boundary).
        let states = super::ArchivedBase::open(dir, &next)?;
        {
            let mut inner = self.lock();
            inner.store.retire_below(boundary).map_err(|e| {
                ArchiveError::Refused(format!("retiring the archived segments: {e}"))
            })?;
            inner.archived = Some(std::sync::Arc::new(states));
        }
        if let Some(m) = &manifest {
            for old in [&m.base_snapshot.file, &m.base_states.file] {
                if let Err(e) = std::fs::remove_file(dir.join(old)) {
                    tracing::warn!(file = %old, error = %e, "old archive base file not removed");
                }
            }
        }
        // A ledger snapshot of fewer records cannot be used any more.
        if Loaded::read(&dir.join(super::SNAPSHOT_FILE))
            .is_ok_and(|s| s.is_some_and(|s| s.records < boundary))
        {
            let _ = std::fs::remove_file(dir.join(super::SNAPSHOT_FILE));
        }
        Ok(ArchiveReport {
            boundary_before: before,
            boundary,
            segments: chosen.iter().map(|s| s.name.clone()).collect(),
            records: boundary - before,
            bytes: chosen.iter().map(|s| s.bytes).sum(),
        })
    }

    /// The first record of the first sealed segment whose last receipt is at or after
    /// `cutoff`: what `govern archive --before DATE` archives below (the ledger's length
    /// when every sealed segment ends before it). A segment goes whole, by its last receipt.
    ///
    /// # Errors
    /// [`LedgerError`] when a segment's last record cannot be read.
    pub fn archivable_before(&self, cutoff: Timestamp) -> Result<u64, LedgerError> {
        let sealed = self.lock().store.sealed_segments();
        for seg in sealed {
            let last = seg.end_seq - 1;
            let mut stamp = None;
            self.for_each_durable(last..seg.end_seq, |seq, record| {
                let receipt = Receipt::decode(record).map_err(|source| {
                    LedgerError::Chain(govern_receipt::ChainError::Malformed { seq, source })
                })?;
                stamp = Some(receipt.body.timestamp);
                Ok(())
            })?;
            if stamp.is_none_or(|t| t >= cutoff) {
                return Ok(seg.first_seq);
            }
        }
        Ok(self.durable_len())
    }
}

/// The size of the data directory's latest checkpoint (`checkpoint.json`, else
/// `checkpoint.note`), or no bound without one. Archival stays below it so that it still
/// verifies from the records kept.
fn checkpoint_size(dir: &Path) -> Result<u64, ArchiveError> {
    for name in ["checkpoint.json", "checkpoint.note"] {
        let path = dir.join(name);
        let text = match crate::checkpoint::read_checkpoint_file(&path) {
            Ok(text) => text,
            Err(crate::CheckpointError::Read { source, .. }) if source.is_not_found() => continue,
            Err(e) => return Err(ArchiveError::Refused(format!("{}: {e}", path.display()))),
        };
        let size = crate::checkpoint::checkpoint_text_size(&text)
            .map_err(|e| ArchiveError::Refused(format!("{}: {e}", path.display())))?;
        return Ok(size);
    }
    Ok(u64::MAX)
}

/// Checks that the archive directory holds the ranges archived earlier (their files, of
/// their lengths): an archive is one directory.
fn check_earlier_ranges(to_segments: &Path, manifest: &Manifest) -> Result<(), ArchiveError> {
    for range in &manifest.ranges {
        let path = to_segments.join(&range.segment);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == range.bytes => {}
            _ => {
                return Err(ArchiveError::Refused(format!(
                    "{} does not hold {} (archived earlier, {} bytes): archive to the directory that holds the earlier ranges",
                    to_segments.display(),
                    range.segment,
                    range.bytes
                )));
            }
        }
    }
    Ok(())
}

/// Copies segment `seg` of data directory `dir` to `to_segments` (a temporary name in the
/// archive directory, fsync, rename, then into `segments/`, whose directory the caller
/// syncs) and reads the copy back: its SHA-256 and length.
fn copy_segment(
    dir: &Path,
    to_segments: &Path,
    seg: &SealedSegment,
) -> Result<(Digest, u64), ArchiveError> {
    let from = dir.join(crate::segment::SEGMENTS_DIR).join(&seg.name);
    let bytes = std::fs::read(&from).map_err(io(format!("reading {}", from.display())))?;
    if bytes.len() as u64 != seg.bytes {
        return Err(ArchiveError::Mismatch {
            range: seg.name.clone(),
            reason: format!("{} bytes on disk, the store has {}", bytes.len(), seg.bytes),
        });
    }
    let digest = archive::sha256(&bytes);
    // Written beside `segments/` (a temporary file there would make the archive directory
    // one a store refuses to open), then renamed in: a crash leaves no copy or a whole one.
    let archive_dir = to_segments.parent().unwrap_or(to_segments);
    crate::text_file::write_atomically(archive_dir, &seg.name, &bytes, false).map_err(
        |(what, path, source)| ArchiveError::Io {
            context: format!("{what} {}", path.display()),
            source,
        },
    )?;
    let copy = to_segments.join(&seg.name);
    std::fs::rename(archive_dir.join(&seg.name), &copy)
        .map_err(io(format!("renaming into {}", copy.display())))?;
    let back = std::fs::read(&copy).map_err(io(format!("reading back {}", copy.display())))?;
    if archive::sha256(&back) != digest {
        return Err(ArchiveError::Mismatch {
            range: seg.name.clone(),
            reason: format!("the copy {} does not read back as the original", copy.display()),
        });
    }
    Ok((digest, seg.bytes))
}

/// Writes base file `name` into the data directory's archive folder, atomically.
fn write_base(dir: &Path, name: &str, bytes: &[u8]) -> Result<BaseFile, ArchiveError> {
    let base_dir = dir.join(BASE_DIR);
    crate::text_file::write_atomically(&base_dir, name, bytes, false).map_err(
        |(what, path, source)| ArchiveError::Io {
            context: format!("{what} {}", path.display()),
            source,
        },
    )?;
    Ok(BaseFile {
        file: format!("{BASE_DIR}/{name}"),
        bytes: bytes.len() as u64,
        sha256: archive::sha256(bytes),
    })
}

#[cfg(test)]
mod tests;
