//! Verifying a data directory whose oldest records are archived ([`crate::archive`]): the
//! live records in full from the boundary, the archived ranges by what the data directory
//! records about them, or in full when the archive is given.

use std::path::Path;

use govern_receipt::{Digest, Head};

use super::VerifyError;
use crate::archive::states::BaseStates;
use crate::archive::{self, ArchiveError, Manifest};
use crate::ledger::snapshot::stored_hash;
use crate::ledger::{BaseBuilder, Ledger};
use crate::segment::{FRAME_HEADER_LEN, SEGMENTS_DIR, SegmentOptions, TornTail};
use crate::verify::RecordChecker;

/// What a verification of a data directory with archived records found.
#[derive(Debug)]
pub struct ArchivedVerify {
    /// Receipts in the ledger, the archived ones included.
    pub receipts: u64,
    /// Live segment files.
    pub segments: usize,
    /// The chain's head.
    pub head: Head,
    /// The Merkle root over every receipt.
    pub root: Digest,
    /// A torn final frame, reported (see [`super::VerifyReport::torn`]).
    pub torn: Option<TornTail>,
    /// The archive boundary: the first live record.
    pub boundary: u64,
    /// The archived ranges (segments).
    pub ranges: usize,
    /// Whether the archived ranges were read and checked in full (the archive was given).
    pub in_full: bool,
}

fn archived(e: ArchiveError) -> VerifyError {
    VerifyError::Archive(e)
}

fn mismatch(range: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::Archive(ArchiveError::Mismatch { range: range.to_owned(), reason: reason.into() })
}

/// Verifies data directory `dir`, whose manifest is `manifest`, read-only:
/// - the manifest holds together (ranges contiguous from 0, chain endpoints linked, each
///   range's Merkle root consistent with the next by its proof, the last one's the
///   frontier's: [`Manifest::check`]);
/// - the base files are those it names (lengths and SHA-256), the snapshot of the first B
///   records agrees with it (records, last hash, frontier), the states file checks (every
///   block's CRC, the counts add up to B);
/// - every live record in full, as `govern verify` checks any record (frames, the hash
///   chain from the boundary's hash, fields, each resource's numbering continuing from its
///   count at B), the Merkle tree from the frontier at B;
/// - with `archive` (the archive directory): every archived segment is there with its
///   recorded length and SHA-256, its every frame and record checks as in a ledger read from
///   record 0 (chain, fields, numbering), each range ends with its recorded hash and root,
///   and the snapshot and the governors' states at B rebuilt from the ranges are the base
///   files byte for byte (states entry by entry). Only the ranges the manifest names are
///   read: copies a crashed archival left in the archive directory are not.
///
/// `on_hash` gets every receipt's sequence number and hash in order: the archived ones
/// first when `archive_dir` is given, then the live ones (for roots, or a tree to prove
/// with).
///
/// # Errors
/// The first problem: [`VerifyError::Archive`] naming the range or base file, or the live
/// records' first problem as [`super::verify_dir`] names it.
pub fn verify_archived(
    dir: &Path,
    manifest: &Manifest,
    archive_dir: Option<&Path>,
    on_hash: &mut dyn FnMut(u64, Digest),
) -> Result<ArchivedVerify, VerifyError> {
    manifest.check().map_err(|reason| {
        archived(ArchiveError::Manifest { path: dir.join(archive::MANIFEST_FILE), reason })
    })?;
    let base = archive::load_base_snapshot(dir, manifest).map_err(archived)?;
    archive::read_base_file(dir, &manifest.base_states).map_err(archived)?;
    let states_file = &manifest.base_states.file;
    let states = BaseStates::open(&dir.join(states_file))
        .map_err(|e| mismatch(states_file, e.to_string()))?;
    if states.boundary() != manifest.boundary {
        return Err(mismatch(states_file, "its boundary is not the manifest's"));
    }
    states
        .for_each(|_, _| Ok::<(), crate::archive::states::StatesError>(()))
        .map_err(|e| mismatch(states_file, e.to_string()))?;
    if let Some(archive_dir) = archive_dir {
        verify_archive_in_full(manifest, &base, &states, archive_dir, on_hash)?;
    }
    let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (ledger, report) =
        Ledger::open_dir_at_boundary(dir, options, &base).map_err(VerifyError::from_open)?;
    let head = ledger.head();
    ledger
        .for_each_durable(manifest.boundary..head.next_seq, |seq, record| {
            let hash = stored_hash(record)
                .ok_or(crate::LedgerError::Corrupt { seq, reason: "too short".into() })?;
            on_hash(seq, hash);
            Ok(())
        })
        .map_err(|e| VerifyError::Store(crate::StoreError::Corrupt(e.to_string())))?;
    Ok(ArchivedVerify {
        receipts: head.next_seq,
        segments: report.segments,
        head,
        root: ledger.tree_head().map_or(crate::merkle::EMPTY_ROOT, |t| t.root),
        torn: report.torn,
        boundary: manifest.boundary,
        ranges: manifest.ranges.len(),
        in_full: archive_dir.is_some(),
    })
}

/// The archive's half of [`verify_archived`] with an archive directory.
fn verify_archive_in_full(
    manifest: &Manifest,
    base: &crate::ledger::snapshot::Loaded,
    states: &BaseStates,
    archive_dir: &Path,
    on_hash: &mut dyn FnMut(u64, Digest),
) -> Result<(), VerifyError> {
    let segments = archive_dir.join(SEGMENTS_DIR);
    // Every range in order from record 0, each read once: its length and SHA-256, then every
    // frame and record checked as `govern verify` checks a ledger's (the chain from record
    // 0, fields, each resource's numbering), folded into the base it must rebuild.
    let mut checker = RecordChecker::default();
    let mut builder = BaseBuilder::new(
        None,
        manifest.boundary,
        crate::merkle::MerkleFrontier::new(),
        Digest::ZERO,
    )
    .map_err(|e| mismatch("archive", e.to_string()))?;
    for range in &manifest.ranges {
        let name = &range.segment;
        let path = segments.join(name);
        let bytes = std::fs::read(&path)
            .map_err(|e| mismatch(name, format!("cannot be read from {}: {e}", path.display())))?;
        if bytes.len() as u64 != range.bytes {
            return Err(mismatch(
                name,
                format!("{} bytes in the archive, {} recorded", bytes.len(), range.bytes),
            ));
        }
        if archive::sha256(&bytes) != range.sha256 {
            return Err(mismatch(name, "its SHA-256 is not the one recorded"));
        }
        let offsets = crate::segment::sealed_frames(&bytes, range.first_seq)
            .map_err(|(at, reason)| mismatch(name, format!("offset {at}: {reason}")))?;
        if offsets.len() as u64 != range.end_seq - range.first_seq {
            return Err(mismatch(
                name,
                format!("{} records, {} recorded", offsets.len(), range.end_seq - range.first_seq),
            ));
        }
        for (seq, &at) in (range.first_seq..).zip(&offsets) {
            let at = at as usize;
            let len = bytes
                .get(at..at + FRAME_HEADER_LEN)
                .map_or(0, |h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize);
            let record = bytes
                .get(at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + len)
                .ok_or_else(|| mismatch(name, format!("record {seq} outside the segment")))?;
            checker.push(record)?;
            let hash = builder.push(seq, record).map_err(|e| mismatch(name, e.to_string()))?;
            on_hash(seq, hash);
        }
        if builder.last_hash != range.last_hash {
            return Err(mismatch(name, "its last hash is not the one recorded"));
        }
        if builder.frontier.root() != range.root {
            return Err(mismatch(name, "the Merkle root at its end is not the one recorded"));
        }
    }
    let (snapshot, rebuilt) = builder.finish(None).map_err(|e| mismatch("archive", e))?;
    if snapshot != base.bytes() {
        return Err(mismatch(
            &manifest.base_snapshot.file,
            "it is not the snapshot of the archived records",
        ));
    }
    let states_file = &manifest.base_states.file;
    let mut expected = rebuilt.into_iter();
    states
        .for_each(|key, state| {
            let problem = match expected.next() {
                None => Some(format!("{key} has no archived receipts")),
                Some(((tenant, _, resource), (count, machine))) => {
                    let encoded = machine.encode_state().map_err(|e| e.to_string());
                    if tenant != key.tenant
                        || resource != key.resource
                        || machine.kind() != key.kind
                    {
                        Some(format!("{key} is not the next key of the archived receipts"))
                    } else if count != state.count {
                        Some(format!("{key}: {} receipts recorded, {count} archived", state.count))
                    } else if encoded.as_deref() != Ok(state.state.as_slice()) {
                        Some(format!("{key}: its state is not the one its archived receipts leave"))
                    } else {
                        None
                    }
                }
            };
            match problem {
                Some(problem) => Err(StatesMismatch(problem)),
                None => Ok(()),
            }
        })
        .map_err(|StatesMismatch(problem)| mismatch(states_file, problem))?;
    if let Some(((tenant, _, resource), _)) = expected.next() {
        return Err(mismatch(
            states_file,
            format!("{tenant}/{resource} has archived receipts and no state"),
        ));
    }
    Ok(())
}

/// Why the states file is not the archive's (or could not be read).
struct StatesMismatch(String);

impl From<crate::archive::states::StatesError> for StatesMismatch {
    fn from(e: crate::archive::states::StatesError) -> Self {
        Self(e.to_string())
    }
}
