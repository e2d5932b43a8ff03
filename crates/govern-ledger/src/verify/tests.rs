//! Verification of a data directory: a good ledger verifies; damage anywhere is named.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::{ChainError, ReceiptBody};

use super::{VerifyError, verify_dir};
use crate::ledger::Ledger;
use crate::segment::{SegmentOptions, SegmentStore};

fn body(i: u64) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new("acme").unwrap(),
        governor: GovernorKind::Quota,
        resource: ResourceId::new(&format!("q-{}", i % 3)).unwrap(),
        resource_seq: 0,
        command: Cow::Borrowed("check_quota"),
        state_from: Cow::Borrowed("normal"),
        state_to: Cow::Borrowed("normal"),
        reason: "metering".into(),
        args: BTreeMap::from([("usage".to_owned(), i.to_string())]),
        metadata: BTreeMap::new(),
    }
}

/// A ledger of `n` receipts in small segments under a fresh temporary directory.
fn ledger_dir(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentOptions { segment_bytes: 1_024, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir.path(), options).unwrap();
    let ledger = Ledger::open(Box::new(store)).unwrap();
    for i in 0..n {
        ledger.append(body(i)).unwrap();
    }
    ledger.sync().unwrap();
    dir
}

#[test]
fn a_good_ledger_verifies_with_its_root() {
    let dir = ledger_dir(20);
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.receipts, 20);
    assert!(report.segments > 3, "{} segments", report.segments);
    assert_eq!(report.tree.len(), 20);
    assert_eq!(report.root, report.tree.root());
    assert!(report.torn.is_none());
}

#[test]
fn verification_changes_nothing_and_a_missing_ledger_is_an_error() {
    let dir = ledger_dir(5);
    let before: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    verify_dir(dir.path()).unwrap();
    let after: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(before, after);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(verify_dir(empty.path()), Err(VerifyError::Open(_))));
    assert!(!empty.path().join("segments").exists(), "verification created nothing");
}

#[test]
fn a_flipped_byte_is_named_by_its_sequence_number() {
    let dir = ledger_dir(12);
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // Damage the middle of the second segment's first frame payload.
    let victim = &files[1];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let first_seq_of_second: u64 = victim.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let err = verify_dir(dir.path()).unwrap_err();
    assert_eq!(err.seq(), Some(first_seq_of_second), "{err}");
}

/// The segment files of `dir`, in order.
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> =
        std::fs::read_dir(dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// The first sequence number of a segment file.
fn first_seq(file: &std::path::Path) -> u64 {
    file.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Changes a byte of the first receipt's preimage in segment `file` and fixes the frame's
/// CRC32C, so that the frames check and only the chain catches it.
fn tamper_first_receipt(file: &std::path::Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let len = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
    // Before the stored hash and the previous hash: inside the receipt's body.
    bytes[16 + len - 80] ^= 0x01;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[0..4]), &bytes[8..16 + len]);
    bytes[4..8].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(file, &bytes).unwrap();
}

#[test]
fn a_tampered_receipt_with_valid_frames_is_a_chain_error_naming_it() {
    let dir = ledger_dir(20);
    let files = segment_files(dir.path());
    assert!(files.len() > 3, "{} segments", files.len());
    let victim = &files[2];
    tamper_first_receipt(victim);
    let err = verify_dir(dir.path()).unwrap_err();
    assert!(
        matches!(err, VerifyError::Chain(ChainError::HashMismatch { seq, .. }) if seq == first_seq(victim)),
        "{err}"
    );
}

#[test]
fn a_damaged_frame_is_reported_before_an_earlier_chain_error() {
    let dir = ledger_dir(20);
    let files = segment_files(dir.path());
    tamper_first_receipt(&files[1]);
    let victim = &files[3];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let err = verify_dir(dir.path()).unwrap_err();
    assert!(matches!(err, VerifyError::Open(_)), "{err}");
    assert_eq!(err.seq(), Some(first_seq(victim)), "{err}");
}

#[test]
fn a_torn_tail_is_reported_and_the_receipts_before_it_verify() {
    let dir = ledger_dir(20);
    let files = segment_files(dir.path());
    let last = files.last().unwrap();
    let full = std::fs::read(last).unwrap();
    std::fs::write(last, &full[..full.len() - 7]).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.receipts, 19);
    assert_eq!(report.tree.len(), 19);
    assert_eq!(report.torn.as_ref().map(|t| t.seq), Some(19));
    assert_eq!(std::fs::read(last).unwrap().len(), full.len() - 7, "nothing truncated");
}
