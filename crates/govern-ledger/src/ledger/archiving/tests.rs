//! Archival: a ledger whose oldest segments moved to an archive reopens, replays every
//! governor and verifies as before; what moved is checked by what the data directory
//! records, and in full with the archive; tampering and crashes are caught or harmless.

use std::path::{Path, PathBuf};

use govern_governors::{GovernorKind, Machine, ResourceId, TenantId, Timestamp};
use govern_receipt::Receipt;

use crate::archive::states::props::{KEYS, ledger as generated};
use crate::archive::{ArchiveError, MANIFEST_FILE, Manifest};
use crate::ledger::{ArchiveRequest, Ledger, TreeHead};
use crate::segment::{SEGMENTS_DIR, SegmentOptions};
use crate::verify::{VerifyError, verify_archived};

/// Small segments, so that a few hundred receipts fill many.
fn options() -> SegmentOptions {
    SegmentOptions { segment_bytes: 8 << 10, ..SegmentOptions::default() }
}

/// `n` receipts of real governors (their sample commands): generated ledgers of the keys
/// of [`KEYS`], each batch under tenants of its own (`acme-3`, ...), one after the other.
fn receipts(n: usize) -> Vec<Receipt> {
    let steps: Vec<_> = (0..400).map(|i| (i % KEYS.len(), i / KEYS.len(), 3_600_000)).collect();
    let batch = generated(&steps);
    let mut out = Vec::with_capacity(n);
    for k in 0.. {
        for r in &batch {
            if out.len() == n {
                return out;
            }
            let mut r = r.clone();
            r.body.tenant = TenantId::new(&format!("{}-{k}", r.body.tenant)).unwrap();
            out.push(r);
        }
    }
    out
}

/// The keys of [`receipts`]`(n)`.
fn keys(n: usize) -> Vec<(TenantId, GovernorKind, ResourceId)> {
    let mut keys: Vec<_> = receipts(n)
        .into_iter()
        .map(|r| (r.body.tenant, r.body.governor, r.body.resource))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn open(dir: &Path) -> Ledger {
    Ledger::open_dir(dir, options()).expect("opens").0
}

fn append(ledger: &Ledger, receipts: &[Receipt]) {
    for r in receipts {
        ledger.append(r.body.clone()).expect("appends");
    }
    ledger.commit().expect("commits");
}

/// Every key's machine, replayed from its history as a governor replays it.
fn machines(ledger: &Ledger) -> Vec<(usize, Machine, u64)> {
    keys(900)
        .iter()
        .enumerate()
        .map(|(i, (tenant, kind, resource))| {
            let history = ledger.resource_history(tenant, *kind, resource).expect("history");
            let (start, first) = match &history.base {
                Some(base) => {
                    (Machine::decode_state(*kind, &base.state).expect("decodes"), base.count)
                }
                None => (Machine::new(*kind), 0),
            };
            // Numbered from the base count on, every step fitting.
            let machine = govern_receipt::replay_machine_from(start, first, &history.receipts)
                .expect("replays");
            (i, machine, first + history.receipts.len() as u64)
        })
        .collect()
}

/// What a reader sees of a ledger: head, tree head, every governor.
fn seen(ledger: &Ledger) -> (govern_receipt::Head, Option<TreeHead>, Vec<(usize, Machine, u64)>) {
    (ledger.head(), ledger.tree_head(), machines(ledger))
}

fn archive(ledger: &Ledger, dir: &Path, below: u64, to: &Path) -> crate::ledger::ArchiveReport {
    let request = ArchiveRequest { below, to: to.to_owned(), now: Timestamp(1_767_225_600_000) };
    ledger.archive(dir, &request).expect("archives")
}

fn verify(
    dir: &Path,
    archive: Option<&Path>,
) -> Result<crate::verify::ArchivedVerify, VerifyError> {
    let manifest = Manifest::read(dir).expect("reads").expect("a manifest");
    verify_archived(dir, &manifest, archive, &mut |_, _| {})
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(SEGMENTS_DIR))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".seg"));
    names.sort();
    names
}

/// A data directory of `n` generated receipts, archived below `below` into `to`.
fn archived(n: usize, below: u64) -> (tempfile::TempDir, PathBuf, Vec<Receipt>) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, to) = (tmp.path().join("data"), tmp.path().join("archive"));
    let all = receipts(n);
    let ledger = open(&dir);
    append(&ledger, &all);
    let report = archive(&ledger, &dir, below, &to);
    assert!(!report.is_empty(), "something to archive");
    drop(ledger);
    (tmp, dir, all)
}

#[test]
fn an_archived_ledger_replays_reopens_and_verifies_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, to) = (tmp.path().join("data"), tmp.path().join("archive"));
    let all = receipts(900);
    let ledger = open(&dir);
    append(&ledger, &all[..600]);
    let before = seen(&ledger);
    let segments = segment_files(&dir);
    let report = archive(&ledger, &dir, 400, &to);
    assert_eq!(report.boundary_before, 0);
    assert!(report.boundary > 0 && report.boundary <= 400, "{report:?}");
    assert_eq!(report.records, report.boundary);
    // Whole segments moved, byte for byte, and nothing else.
    let moved: Vec<String> = segments.iter().take(report.segments.len()).cloned().collect();
    assert_eq!(report.segments, moved);
    assert_eq!(segment_files(&to), moved);
    assert_eq!(segment_files(&dir), segments[moved.len()..].to_vec());
    assert_eq!(ledger.archive_boundary(), report.boundary);
    // The running ledger: every governor as before, from its state at the boundary, and
    // its chain verifies from the boundary on.
    assert_eq!(seen(&ledger), before);
    assert_eq!(ledger.verify().expect("verifies"), ledger.head());
    // Some governors replayed from a state at the boundary and receipts after it.
    let (mut based, mut both) = (0, 0);
    for (tenant, kind, resource) in keys(900) {
        let history = ledger.resource_history(&tenant, kind, &resource).unwrap();
        based += usize::from(history.base.is_some());
        both += usize::from(history.base.is_some() && !history.receipts.is_empty());
    }
    assert!(based > 10 && both > 0, "{based} with a base state, {both} also with receipts");
    // Appends go on, and a snapshot is written from the archive's base.
    append(&ledger, &all[600..]);
    let after = seen(&ledger);
    assert!(ledger.write_snapshot(&dir).expect("writes").is_some());
    drop(ledger);
    // Reopened from the snapshot, and without it (from the base at the boundary).
    assert_eq!(seen(&open(&dir)), after);
    std::fs::remove_file(dir.join(super::super::SNAPSHOT_FILE)).unwrap();
    let reopened = open(&dir);
    assert_eq!(seen(&reopened), after);
    assert_eq!(reopened.verify().expect("verifies"), after.0);
    drop(reopened);
    // Verified: the live receipts in full, the archived by the manifest; and with the archive.
    let by_records = verify(&dir, None).expect("verifies");
    assert_eq!((by_records.receipts, by_records.in_full), (900, false));
    assert_eq!(Some(by_records.root), after.1.map(|t| t.root));
    let in_full = verify(&dir, Some(&to)).expect("verifies in full");
    assert_eq!((in_full.receipts, in_full.in_full, in_full.root), (900, true, by_records.root));
}

#[test]
fn a_second_archival_stacks_on_the_first() {
    let (_tmp, dir, all) = archived(900, 300);
    let to = dir.parent().unwrap().join("archive");
    let ledger = open(&dir);
    let first = ledger.archive_boundary();
    let before = seen(&ledger);
    let report = archive(&ledger, &dir, 700, &to);
    assert_eq!(report.boundary_before, first);
    assert!(report.boundary > first, "{report:?}");
    assert_eq!(seen(&ledger), before);
    drop(ledger);
    assert_eq!(seen(&open(&dir)), before);
    let manifest = Manifest::read(&dir).unwrap().unwrap();
    assert_eq!(manifest.ranges.first().map(|r| r.first_seq), Some(0));
    assert_eq!(manifest.boundary, report.boundary);
    // The old base files went.
    let base_files = std::fs::read_dir(dir.join(crate::archive::BASE_DIR)).unwrap().count();
    assert_eq!(base_files, 2);
    verify(&dir, Some(&to)).expect("verifies in full");
    verify(&dir, None).expect("verifies");
    assert_eq!(all.len(), 900);
}

#[test]
fn a_second_archival_elsewhere_is_refused() {
    let (tmp, dir, _) = archived(900, 300);
    let ledger = open(&dir);
    let request = ArchiveRequest {
        below: 700,
        to: tmp.path().join("elsewhere"),
        now: Timestamp(1_767_225_600_000),
    };
    let refused = ledger.archive(&dir, &request);
    assert!(
        matches!(refused, Err(ArchiveError::Refused(ref m)) if m.contains("archived earlier")),
        "{refused:?}"
    );
}

#[test]
fn archival_stays_below_the_latest_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, to) = (tmp.path().join("data"), tmp.path().join("archive"));
    let ledger = open(&dir);
    append(&ledger, &receipts(900));
    let signer = crate::CheckpointSigner::from_seed(&[7; 32]);
    // Its root is not checked here (verification does that): only its size bounds.
    let checkpoint =
        crate::Checkpoint { size: 150, root: crate::EMPTY_ROOT, timestamp: Timestamp(0) };
    std::fs::write(dir.join("checkpoint.json"), signer.sign(checkpoint).to_json()).unwrap();
    let report = archive(&ledger, &dir, 800, &to);
    assert!(report.boundary > 0 && report.boundary <= 150, "{report:?}");
}

#[test]
fn nothing_below_the_first_sealed_segment_is_an_empty_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, to) = (tmp.path().join("data"), tmp.path().join("archive"));
    let ledger = open(&dir);
    append(&ledger, &receipts(900));
    let report = archive(&ledger, &dir, 1, &to);
    assert!(report.is_empty());
    assert!(!dir.join(MANIFEST_FILE).exists());
}

#[test]
fn archived_ranges_tampered_with_are_caught_when_the_archive_is_given() {
    let (_tmp, dir, _) = archived(900, 400);
    let to = dir.parent().unwrap().join("archive");
    let manifest = Manifest::read(&dir).unwrap().unwrap();
    let range = manifest.ranges[1].clone();
    let path = to.join(SEGMENTS_DIR).join(&range.segment);
    let original = std::fs::read(&path).unwrap();
    // A flipped byte: the recorded SHA-256 names the segment.
    let mut flipped = original.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x20;
    std::fs::write(&path, &flipped).unwrap();
    verify(&dir, None).expect("the data directory alone still verifies");
    let caught = verify(&dir, Some(&to));
    assert!(
        matches!(&caught, Err(VerifyError::Archive(ArchiveError::Mismatch { range: r, .. })) if *r == range.segment),
        "{caught:?}"
    );
    // A payload rewritten with its CRCs recomputed, and the manifest's digest of it too:
    // the chain (and the roots) no longer hold.
    std::fs::write(&path, &original).unwrap();
    assert!(crate::segment::rewrite_payload(&path, range.first_seq + 2, |p| p[40] ^= 1));
    let mut forged = manifest.clone();
    let bytes = std::fs::read(&path).unwrap();
    forged.ranges[1].sha256 = crate::archive::sha256(&bytes);
    std::fs::write(dir.join(MANIFEST_FILE), forged.to_json()).unwrap();
    assert!(verify(&dir, Some(&to)).is_err(), "a forged range is caught");
    // A range missing from the archive.
    std::fs::write(dir.join(MANIFEST_FILE), manifest.to_json()).unwrap();
    std::fs::remove_file(&path).unwrap();
    let missing = verify(&dir, Some(&to));
    assert!(
        matches!(&missing, Err(VerifyError::Archive(ArchiveError::Mismatch { range: r, .. })) if *r == range.segment),
        "{missing:?}"
    );
}

#[test]
fn what_the_data_directory_records_about_archived_ranges_is_checked() {
    let (_tmp, dir, _) = archived(900, 400);
    let manifest = Manifest::read(&dir).unwrap().unwrap();
    // A range's root changed: its consistency proof fails.
    let mut forged = manifest.clone();
    forged.ranges[0].root.0[0] ^= 1;
    std::fs::write(dir.join(MANIFEST_FILE), forged.to_json()).unwrap();
    assert!(matches!(Manifest::read(&dir), Err(ArchiveError::Manifest { .. })));
    // A broken link between two ranges.
    let mut forged = manifest.clone();
    forged.ranges[1].prev_hash.0[3] ^= 1;
    std::fs::write(dir.join(MANIFEST_FILE), forged.to_json()).unwrap();
    assert!(matches!(Manifest::read(&dir), Err(ArchiveError::Manifest { .. })));
    std::fs::write(dir.join(MANIFEST_FILE), manifest.to_json()).unwrap();
    // The base files are checked by their digests.
    for base in [&manifest.base_snapshot, &manifest.base_states] {
        let path = dir.join(&base.file);
        let original = std::fs::read(&path).unwrap();
        let mut bytes = original.clone();
        bytes[original.len() / 3] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        let caught = verify(&dir, None);
        assert!(
            matches!(&caught, Err(VerifyError::Archive(ArchiveError::Mismatch { range, .. })) if *range == base.file),
            "{caught:?}"
        );
        std::fs::write(&path, &original).unwrap();
    }
    verify(&dir, None).expect("verifies once restored");
}

#[test]
fn a_crash_between_the_manifest_and_the_removal_leaves_a_directory_that_opens_and_verifies() {
    let (_tmp, dir, _) = archived(900, 400);
    let to = dir.parent().unwrap().join("archive");
    let ledger = open(&dir);
    let expected = seen(&ledger);
    drop(ledger);
    // The originals still there, as a crash right after the manifest leaves them.
    for name in segment_files(&to) {
        std::fs::copy(to.join(SEGMENTS_DIR).join(&name), dir.join(SEGMENTS_DIR).join(&name))
            .unwrap();
    }
    verify(&dir, Some(&to)).expect("a reader ignores them");
    let ledger = open(&dir);
    assert_eq!(seen(&ledger), expected);
    drop(ledger);
    // The writer removed them.
    assert!(segment_files(&dir).iter().all(|n| !segment_files(&to).contains(n)));
    verify(&dir, Some(&to)).expect("verifies");
    // A copy a crashed second archival left in the archive (before its manifest) is not
    // read: only the ranges the manifest names are.
    let live = segment_files(&dir)[0].clone();
    std::fs::copy(dir.join(SEGMENTS_DIR).join(&live), to.join(SEGMENTS_DIR).join(&live)).unwrap();
    verify(&dir, Some(&to)).expect("verifies with a leftover copy in the archive");
}

#[test]
fn a_crash_before_the_manifest_leaves_the_directory_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, to) = (tmp.path().join("data"), tmp.path().join("archive"));
    let ledger = open(&dir);
    append(&ledger, &receipts(900));
    let expected = seen(&ledger);
    let segments = segment_files(&dir);
    // Copies in the archive and base files written, the manifest not: as a crash then.
    let saved = tmp.path().join("saved");
    copy_dir(&dir, &saved);
    archive(&ledger, &dir, 400, &to);
    drop(ledger);
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(&saved, &dir);
    std::fs::create_dir_all(dir.join(crate::archive::BASE_DIR)).unwrap();
    std::fs::write(dir.join(crate::archive::BASE_DIR).join("base-300.snap.tmp"), b"cut").unwrap();
    let ledger = open(&dir);
    assert_eq!(seen(&ledger), expected);
    assert_eq!(segment_files(&dir), segments);
    // And it archives again, to the same place.
    let report = archive(&ledger, &dir, 400, &to);
    assert!(!report.is_empty());
    drop(ledger);
    verify(&dir, Some(&to)).expect("verifies in full");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn an_archived_ledger_paging_its_index_within_nothing_replays_as_one_holding_every_list() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, to) = (tmp.path().join("data"), tmp.path().join("archive"));
    let all = receipts(900);
    let ledger = open(&dir);
    ledger.set_index_budget(0);
    append(&ledger, &all[..600]);
    let before = seen(&ledger);
    // Paged from a snapshot past the boundary: its lists hold archived numbers, not read.
    assert!(ledger.write_snapshot(&dir).expect("writes").is_some());
    archive(&ledger, &dir, 400, &to);
    assert_eq!(seen(&ledger), before);
    append(&ledger, &all[600..750]);
    let after = seen(&ledger);
    drop(ledger);
    let ledger = open(&dir);
    ledger.set_index_budget(0);
    assert_eq!(seen(&ledger), after);
    append(&ledger, &all[750..]);
    let last = seen(&ledger);
    assert!(ledger.write_snapshot(&dir).expect("writes").is_some());
    assert_eq!(seen(&ledger), last);
    drop(ledger);
    for without_snapshot in [false, true] {
        if without_snapshot {
            // From the base at the boundary (every list held until the next snapshot).
            std::fs::remove_file(dir.join(super::super::SNAPSHOT_FILE)).unwrap();
        }
        let ledger = open(&dir);
        ledger.set_index_budget(0);
        assert_eq!(seen(&ledger), last, "without the snapshot: {without_snapshot}");
    }
}
