//! A lazy reader reads what the whole store reads, with or without index files, and refuses
//! a damaged frame when it reads it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

use super::SegmentReader;
use crate::ledger::{Ledger, LedgerStore, StoreError};
use crate::segment::{SEGMENTS_DIR, SegmentOptions, SegmentStore};

fn body(i: u64) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new(&format!("tenant-{}", i % 3)).unwrap(),
        governor: GovernorKind::Subscription,
        resource: ResourceId::new(&format!("r-{}", i % 11)).unwrap(),
        resource_seq: 0,
        command: Cow::Borrowed("activate"),
        state_from: Cow::Borrowed("free_trial"),
        state_to: Cow::Borrowed("active"),
        reason: "lazy".into(),
        args: BTreeMap::new(),
        metadata: BTreeMap::new(),
    }
}

/// A data directory of `n` receipts in segments of 4 KiB, committed every 10.
fn ledger(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentOptions { segment_bytes: 4 << 10, ..SegmentOptions::default() };
    let (ledger, _) = Ledger::open_dir(dir.path(), options).unwrap();
    for i in 0..n {
        ledger.append(body(i)).unwrap();
        if i % 10 == 9 {
            ledger.commit().unwrap();
        }
    }
    ledger.commit().unwrap();
    dir
}

fn every_record(store: &dyn LedgerStore) -> Vec<Result<Vec<u8>, StoreError>> {
    let mut out = Vec::new();
    for seq in 0..store.len() {
        let mut record = Vec::new();
        out.push(store.read(seq, &mut record).map(|found| {
            assert!(found);
            record
        }));
    }
    out
}

fn files(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join(SEGMENTS_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

#[test]
fn a_lazy_reader_reads_what_the_store_reads_with_or_without_index_files() {
    let dir = ledger(300);
    assert!(files(dir.path(), ".seg").len() > 5, "several segments");
    assert!(!files(dir.path(), ".idx").is_empty(), "sealed segments have index files");
    let read_only = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir.path(), read_only).unwrap();
    let expected = every_record(&store);
    let (lazy, report) = SegmentReader::open(dir.path()).unwrap();
    assert_eq!((lazy.len(), report.records), (300, 300));
    assert_eq!(every_record(&lazy), expected);
    // One index damaged, one missing: those segments are scanned instead.
    let indexes = files(dir.path(), ".idx");
    let mut bytes = std::fs::read(&indexes[0]).unwrap();
    bytes[30] ^= 1;
    std::fs::write(&indexes[0], bytes).unwrap();
    std::fs::remove_file(&indexes[1]).unwrap();
    let (lazy, _) = SegmentReader::open(dir.path()).unwrap();
    assert_eq!(every_record(&lazy), expected);
    // Ranges, read in chunks, give the same records.
    for range in [0..300, 17..18, 95..231, 290..400] {
        let mut located = lazy.locate_range(range.clone()).unwrap();
        let mut seqs = Vec::new();
        while let Some((seq, record)) = located.next_record() {
            assert_eq!(Ok(record.unwrap().unwrap().to_vec()), expected[seq as usize]);
            seqs.push(seq);
        }
        assert_eq!(seqs, (range.start..range.end.min(300)).collect::<Vec<_>>());
    }
    // Reads in any order, and past the end.
    let mut record = Vec::new();
    assert!(lazy.read(250, &mut record).unwrap());
    assert_eq!(Ok(record.clone()), expected[250]);
    assert!(lazy.read(3, &mut record).unwrap());
    assert!(!lazy.read(300, &mut record).unwrap());
}

#[test]
fn a_damaged_frame_is_refused_when_read_and_nothing_else_is() {
    let dir = ledger(120);
    let first = &files(dir.path(), ".seg")[0];
    let mut bytes = std::fs::read(first).unwrap();
    // A byte inside the first frame's payload (after the segment and frame headers).
    bytes[24 + 20 + 5] ^= 1;
    std::fs::write(first, bytes).unwrap();
    let (lazy, _) = SegmentReader::open(dir.path()).unwrap();
    let mut record = Vec::new();
    let err = lazy.read(0, &mut record).unwrap_err();
    assert!(err.to_string().contains("record 0"), "{err}");
    assert!(lazy.read(1, &mut record).unwrap());
    assert!(lazy.read(119, &mut record).unwrap());
    assert!(lazy.locate_range(0..5).unwrap_err().to_string().contains("record 0"));
    assert!(lazy.locate_range(1..120).is_ok());
}

#[test]
fn a_torn_tail_is_reported_and_not_cut_and_a_missing_ledger_is_an_error() {
    let dir = ledger(50);
    let last = files(dir.path(), ".seg").pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let file = std::fs::OpenOptions::new().append(true).open(&last).unwrap();
    file.set_len(len + 7).unwrap();
    let (lazy, report) = SegmentReader::open(dir.path()).unwrap();
    assert_eq!(lazy.len(), 50);
    assert_eq!(report.torn.map(|t| t.seq), Some(50));
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len + 7, "read-only: not cut");
    // A last segment past the size limit is refused, not read into memory.
    file.set_len(crate::segment::SEGMENT_BYTES_MAX + 1).unwrap();
    let err = SegmentReader::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
    let none = tempfile::tempdir().unwrap();
    assert!(SegmentReader::open(none.path().join("nope")).is_err());
}

#[test]
fn with_a_snapshot_the_last_segment_is_read_from_its_last_record_and_the_rest_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentOptions { segment_bytes: 4 << 10, ..SegmentOptions::default() };
    let (ledger, _) = Ledger::open_dir(dir.path(), options).unwrap();
    for i in 0..300 {
        ledger.append(body(i)).unwrap();
    }
    ledger.commit().unwrap();
    ledger.write_snapshot(dir.path()).unwrap();
    for i in 300..305 {
        ledger.append(body(i)).unwrap();
    }
    ledger.commit().unwrap();
    drop(ledger);
    let (segment, at, records) = crate::ledger::snapshot::end_hint(dir.path()).unwrap();
    assert_eq!(records, 300);
    let read_only = SegmentOptions { read_only: true, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir.path(), read_only).unwrap();
    assert_eq!(store.position(299), Some((segment, at)));
    let expected = every_record(&store);
    let (lazy, report) = SegmentReader::open(dir.path()).unwrap();
    assert_eq!((lazy.len(), report.records), (305, 305));
    // Only the frames from record 299 on are known until one before it is read.
    let known = lazy.offsets.lock().unwrap().last().cloned().flatten().unwrap();
    assert_eq!(known.from, 299);
    assert_eq!(every_record(&lazy), expected);
    // A hint that points at no frame of that record is not taken.
    let last = lazy.segments.last().unwrap();
    assert!(super::scan_from(&lazy.io, last, at + 1, 299).is_err());
    assert!(super::scan_from(&lazy.io, last, at, 298).is_err());
    assert!(super::scan_from(&lazy.io, last, at, 299).is_ok());
}
