//! Verification of a data directory: a good ledger verifies; damage anywhere is named.

use std::borrow::Cow;
use std::collections::BTreeMap;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

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
