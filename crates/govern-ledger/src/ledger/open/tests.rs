//! Reopening: a ledger reopened over a segment store is the ledger that was written (head,
//! index, Merkle tree), and a record rewritten behind the store's back is caught.

use std::ops::ControlFlow;
use std::path::Path;

use govern_governors::{GovernorKind, ResourceId};
use govern_receipt::{ChainError, ReceiptBody};

use crate::ledger::{Ledger, LedgerError, LedgerStore, OpenDirError};
use crate::segment::{OpenReport, SEGMENTS_DIR, SegmentOptions, SegmentStore};

const KINDS: [GovernorKind; 3] = crate::testing::MIXED_KINDS;

fn body(i: u64) -> ReceiptBody {
    crate::testing::mixed_body(i, "original")
}

fn open(dir: &Path, segment_bytes: u64) -> Ledger {
    let options = SegmentOptions { segment_bytes, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open(dir, options).unwrap();
    Ledger::open(Box::new(store)).unwrap()
}

/// Everything a query can see: every tenant's receipts (sequence and per-resource
/// numbers), by tenant, kind and resource.
fn view(ledger: &Ledger) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for (tenant, _) in ledger.receipt_counts() {
        for kind in KINDS {
            for r in 0..37 {
                let resource = ResourceId::new(&format!("r-{r}")).unwrap();
                for receipt in ledger.tenant_receipts(&tenant, Some(kind), Some(&resource)).unwrap()
                {
                    out.push((tenant.to_string(), receipt.seq, receipt.body.resource_seq));
                }
            }
        }
        let all = ledger.tenant_receipts(&tenant, None, None).unwrap();
        out.extend(all.iter().map(|r| (format!("{tenant}/all"), r.seq, r.body.resource_seq)));
    }
    out
}

#[test]
fn reopening_a_segment_store_gives_the_head_index_and_tree_of_the_live_ledger() {
    // Small segments (many of them, frames never split across a read) and the default (one
    // segment read in several chunks).
    for (segment_bytes, receipts) in
        [(4_096, 600), (SegmentOptions::default().segment_bytes, 5_000)]
    {
        let dir = tempfile::tempdir().unwrap();
        let live = open(dir.path(), segment_bytes);
        for i in 0..receipts {
            live.append(body(i)).unwrap();
            if i % 97 == 0 {
                live.commit().unwrap();
            }
        }
        live.commit().unwrap();
        let (head, tree, counts, seen) =
            (live.head(), live.tree_head(), live.receipt_counts(), view(&live));
        drop(live);

        let reopened = open(dir.path(), segment_bytes);
        assert_eq!(reopened.head(), head);
        assert_eq!(reopened.tree_head(), tree);
        assert_eq!(tree.map(|t| t.size), Some(receipts));
        assert_eq!(reopened.durable_len(), receipts);
        assert_eq!(reopened.receipt_counts(), counts);
        assert_eq!(view(&reopened), seen);
        // The chain and the per-resource numbering go on where they stopped.
        let next = reopened.append(body(receipts)).unwrap();
        let expected = seen.iter().filter(|(t, ..)| t.ends_with("/all")).count() as u64;
        assert_eq!(next.seq, expected);
        assert_eq!(reopened.verify().unwrap().next_seq, receipts + 1);
    }
}

#[test]
fn a_segment_store_hands_over_unsynced_records_too() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    let ledger = Ledger::in_memory();
    let mut record = Vec::new();
    for i in 0..10 {
        let seq = ledger.append(body(i)).unwrap().seq;
        assert!(ledger.lock().store.read(seq, &mut record).unwrap());
        store.append(seq, &record).unwrap();
        if i == 5 {
            store.sync().unwrap();
        }
    }
    let mut seen = Vec::new();
    store
        .for_each(&mut |seq, r| {
            let mut expected = Vec::new();
            assert!(ledger.lock().store.read(seq, &mut expected).unwrap());
            assert_eq!(r, expected);
            seen.push(seq);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

/// Rewrites the payload of record `target` in the segment files as a deliberate rewrite
/// would: `edit` changes it, and the frame's checksums are recomputed so that the store opens.
fn rewrite(dir: &Path, target: u64, edit: impl Fn(&mut [u8])) {
    let segments = dir.join(SEGMENTS_DIR);
    for entry in std::fs::read_dir(&segments).unwrap() {
        if crate::segment::rewrite_payload(&entry.unwrap().path(), target, &edit) {
            return;
        }
    }
    panic!("record {target} not found");
}

#[test]
fn a_rewritten_record_with_a_valid_crc_is_caught_by_open() {
    let dir = tempfile::tempdir().unwrap();
    let live = open(dir.path(), 4_096);
    for i in 0..100 {
        live.append(body(i)).unwrap();
    }
    live.commit().unwrap();
    drop(live);
    // "original" becomes "ORIGINAL" in the reason of receipt 42: same length, valid UTF-8.
    rewrite(dir.path(), 42, |payload| {
        let at = payload.windows(8).position(|w| w == b"original").unwrap();
        payload[at..at + 8].copy_from_slice(b"ORIGINAL");
    });
    let (store, report) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    assert_eq!((report.records, report.torn), (100, None), "the frames check out");
    let err = Ledger::open(Box::new(store)).unwrap_err();
    match err {
        LedgerError::Chain(e @ ChainError::HashMismatch { seq: 42, .. }) => {
            assert!(e.to_string().contains("hash mismatch"), "{e}")
        }
        other => panic!("expected record 42 to be reported, got {other}"),
    }
}

#[test]
fn a_record_that_neither_hashes_nor_decodes_is_named_as_govern_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = open(dir.path(), 4_096);
    for i in 0..50 {
        live.append(body(i)).unwrap();
    }
    live.commit().unwrap();
    drop(live);
    // An invalid tenant id in receipt 30, which breaks its hash too: the chain is checked
    // first, so 30 is named for its hash, by every reader.
    rewrite(dir.path(), 30, |payload| {
        let at = payload.windows(7).position(|w| w == b"tenant-").unwrap();
        payload[at] = b'!';
    });
    let verified = crate::verify::verify_dir(dir.path()).map(|r| r.receipts).unwrap_err();
    let (store, _) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    let err = Ledger::open(Box::new(store)).unwrap_err();
    assert!(matches!(err, LedgerError::Chain(ChainError::HashMismatch { seq: 30, .. })), "{err}");
    assert_eq!(err.to_string(), verified.to_string());
    let opened = refused_both_ways(dir.path(), "neither hashes nor decodes");
    assert_eq!(opened.to_string(), verified.to_string());
}

/// Writes `receipts` receipts into a ledger in `dir` with segments of `segment_bytes`.
fn write(dir: &Path, segment_bytes: u64, receipts: u64) {
    let live = open(dir, segment_bytes);
    for i in 0..receipts {
        live.append(body(i)).unwrap();
        if i % 97 == 0 {
            live.commit().unwrap();
        }
    }
    live.commit().unwrap();
}

/// A copy of the data directory `dir`.
fn copy(dir: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::create_dir(to.path().join(SEGMENTS_DIR)).unwrap();
    for entry in std::fs::read_dir(dir.join(SEGMENTS_DIR)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.path().join(SEGMENTS_DIR).join(path.file_name().unwrap())).unwrap();
    }
    to
}

/// Opens `dir` in two steps (the store, then the ledger over it), and a copy of it with
/// [`Ledger::open_dir`]: the outcomes (errors of the two steps as strings), and the copy.
#[allow(clippy::type_complexity, reason = "a test's pair of outcomes")]
fn both_ways(
    dir: &Path,
    options: SegmentOptions,
) -> (
    Result<(Ledger, OpenReport), String>,
    Result<(Ledger, OpenReport), OpenDirError>,
    tempfile::TempDir,
) {
    let other = copy(dir);
    let two_steps =
        SegmentStore::open(dir, options).map_err(|e| e.to_string()).and_then(|(store, report)| {
            Ledger::open(Box::new(store)).map(|l| (l, report)).map_err(|e| e.to_string())
        });
    let combined = Ledger::open_dir(other.path(), options);
    (two_steps, combined, other)
}

#[test]
fn open_dir_gives_what_opening_the_store_then_the_ledger_gives() {
    for (segment_bytes, receipts, torn) in
        [(4_096, 600, false), (4_096, 600, true), (1 << 20, 3_000, false), (4_096, 0, false)]
    {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), segment_bytes, receipts);
        if torn {
            // Half a frame header after the last frame: a torn final write.
            let mut last: Vec<_> = std::fs::read_dir(dir.path().join(SEGMENTS_DIR))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            last.sort();
            let last = last.pop().unwrap();
            let mut bytes = std::fs::read(&last).unwrap();
            bytes.extend_from_slice(&[0, 0, 1, 0, 7, 7, 7]);
            std::fs::write(&last, bytes).unwrap();
        }
        let options = SegmentOptions { segment_bytes, ..SegmentOptions::default() };
        let (two_steps, combined, _copy) = both_ways(dir.path(), options);
        let (a, a_report) = two_steps.unwrap();
        let (b, b_report) = combined.unwrap();
        assert_eq!(b_report, a_report);
        assert_eq!(b_report.torn.is_some(), torn);
        assert!(receipts == 0 || b_report.segments > 1 || segment_bytes > 4_096);
        assert_eq!(b.head(), a.head());
        assert_eq!(b.tree_head(), a.tree_head());
        assert_eq!(b.durable_len(), receipts);
        assert_eq!(b.receipt_counts(), a.receipt_counts());
        assert_eq!(view(&b), view(&a));
        // Both go on alike.
        assert_eq!(b.append(body(receipts)).unwrap(), a.append(body(receipts)).unwrap());
        b.commit().unwrap();
        assert_eq!(b.verify().unwrap().next_seq, receipts + 1);
    }
}

#[test]
fn open_dir_reports_a_bad_record_as_the_two_steps_do() {
    let options = SegmentOptions { segment_bytes: 4_096, ..SegmentOptions::default() };
    // A hash mismatch (42), an undecodable record (30): the ledger's error.
    type Edit = fn(&mut [u8]);
    let edits: [(u64, Edit); 2] = [
        (42, |p| {
            let at = p.windows(8).position(|w| w == b"original").unwrap();
            p[at..at + 8].copy_from_slice(b"ORIGINAL");
        }),
        (30, |p| {
            let at = p.windows(7).position(|w| w == b"tenant-").unwrap();
            p[at] = b'!';
        }),
    ];
    for (target, edit) in edits {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 4_096, 300);
        rewrite(dir.path(), target, edit);
        let (two_steps, combined, _copy) = both_ways(dir.path(), options);
        let expected = two_steps.unwrap_err();
        match combined.unwrap_err() {
            OpenDirError::Ledger(e @ LedgerError::Chain(_)) if e.seq() == Some(target) => {
                assert_eq!(e.to_string(), expected);
            }
            other => panic!("expected record {target} to be reported, got {other}"),
        }
    }
    // A damaged frame in the last segment (a flipped byte, the CRC left alone): the store's
    // error, although record 20, in an earlier segment, breaks the chain.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 4_096, 300);
    rewrite(dir.path(), 20, |p| {
        let at = p.windows(8).position(|w| w == b"original").unwrap();
        p[at] = b'O';
    });
    let segments = dir.path().join(SEGMENTS_DIR);
    let mut files: Vec<_> =
        std::fs::read_dir(&segments).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let last = files.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(last, bytes).unwrap();
    let (two_steps, combined, _copy) = both_ways(dir.path(), options);
    let expected = two_steps.unwrap_err();
    assert!(expected.contains("corrupt segment"), "{expected}");
    match combined.unwrap_err() {
        OpenDirError::Store(e) => assert_eq!(e.to_string(), expected),
        other => panic!("expected the store's error, got {other}"),
    }
}

/// Opens data directory `dir` both ways (the store then the ledger; and `open_dir`, on a
/// copy) and returns the ledger's error, the same both ways.
fn refused_both_ways(dir: &Path, what: &str) -> ChainError {
    let options = SegmentOptions { segment_bytes: 4_096, ..SegmentOptions::default() };
    let (two_steps, combined, _copy) = both_ways(dir, options);
    let expected = match two_steps {
        Err(e) => e,
        Ok(_) => panic!("{what}: the ledger opened"),
    };
    match combined.map(drop) {
        Err(OpenDirError::Ledger(LedgerError::Chain(e))) => {
            assert_eq!(e.to_string(), expected, "{what}");
            e
        }
        other => panic!("{what}: expected a chain error, got {other:?}"),
    }
}

#[test]
fn a_record_that_hashes_but_does_not_decode_is_refused_as_malformed() {
    use crate::verify::crafted;
    for (what, spoil) in crafted::undecodable() {
        let mut fields = crafted::good_fields(300);
        spoil(&mut fields[222]);
        let dir = tempfile::tempdir().unwrap();
        crafted::write_dir(dir.path(), 4_096, &fields);
        let err = refused_both_ways(dir.path(), what);
        assert!(matches!(err, ChainError::Malformed { seq: 222, .. }), "{what}: {err}");
    }
}

#[test]
fn a_break_in_a_resources_numbering_is_refused_naming_it() {
    use crate::verify::crafted;
    // Receipt 222 is q-0's 75th (resource_seq 74): skipped, repeated; receipt 1, q-1's
    // first, numbered 1; and a break just before a record that does not decode, which is
    // reported, being first.
    type Spoil = fn(&mut [crafted::Fields]);
    let cases: [(&str, Spoil, u64, u64, u64); 4] = [
        ("a gap", |f| f[222].resource_seq = 75, 222, 74, 75),
        ("a repeat", |f| f[222].resource_seq = 73, 222, 74, 73),
        ("a first receipt not numbered 0", |f| f[1].resource_seq = 1, 1, 0, 1),
        (
            "a gap before a malformed record",
            |f| {
                f[222].resource_seq = 75;
                f[223].governor = b"nobody".to_vec();
            },
            222,
            74,
            75,
        ),
    ];
    for (what, spoil, seq, expected, found) in cases {
        let mut fields = crafted::good_fields(300);
        spoil(&mut fields);
        let dir = tempfile::tempdir().unwrap();
        crafted::write_dir(dir.path(), 4_096, &fields);
        let err = refused_both_ways(dir.path(), what);
        let resource = format!("q-{}", seq % 3);
        match &err {
            ChainError::ResourceSeqGap {
                seq: at,
                tenant,
                governor,
                resource: r,
                expected: e,
                found: f,
            } => {
                assert_eq!(
                    (*at, tenant.as_str(), *governor, r.as_str(), *e, *f),
                    (seq, "acme", GovernorKind::Quota, resource.as_str(), expected, found),
                    "{what}"
                );
            }
            other => panic!("{what}: expected resource_seq_gap, got {other}"),
        }
        assert_eq!(err.kind(), "resource_seq_gap");
    }
}

#[test]
fn a_break_after_a_malformed_record_is_not_the_one_reported() {
    use crate::verify::crafted;
    let mut fields = crafted::good_fields(300);
    fields[100].governor = b"nobody".to_vec();
    fields[222].resource_seq = 75;
    let dir = tempfile::tempdir().unwrap();
    crafted::write_dir(dir.path(), 4_096, &fields);
    let err = refused_both_ways(dir.path(), "malformed, then a gap");
    assert!(matches!(err, ChainError::Malformed { seq: 100, .. }), "{err}");
}

#[test]
fn every_reader_refuses_a_ledger_as_govern_verify_does() {
    use crate::verify::{crafted, verify_dir};
    let mut spoiled: Vec<(&str, Vec<crafted::Fields>)> = crafted::undecodable()
        .into_iter()
        .map(|(what, spoil)| {
            let mut fields = crafted::good_fields(60);
            spoil(&mut fields[40]);
            (what, fields)
        })
        .collect();
    let mut gap = crafted::good_fields(60);
    gap[40].resource_seq += 1;
    spoiled.push(("a gap", gap));
    for (what, fields) in spoiled {
        let dir = tempfile::tempdir().unwrap();
        crafted::write_dir(dir.path(), 4_096, &fields);
        let verified = verify_dir(dir.path()).map(|r| r.receipts).unwrap_err();
        let opened = refused_both_ways(dir.path(), what);
        assert_eq!(opened.to_string(), verified.to_string(), "{what}");
    }
}

#[test]
fn a_record_that_breaks_its_numbering_and_its_hash_is_named_for_its_hash() {
    use crate::verify::{crafted, verify_dir};
    // Receipt 63 is the 64th: indexing it fills the keys pending (`PENDING` in tests), so
    // the flush it triggers finds its own gap; its hash is broken too. And the same a
    // record later, the gap found at the next flush instead.
    for target in [63, 64] {
        let mut fields = crafted::good_fields(300);
        fields[target].resource_seq += 1;
        let dir = tempfile::tempdir().unwrap();
        crafted::write_dir(dir.path(), 4_096, &fields);
        rewrite(dir.path(), target as u64, |payload| {
            let at = payload.windows(8).position(|w| w == b"metering").unwrap();
            payload[at] = b'M';
        });
        let verified = verify_dir(dir.path()).map(|r| r.receipts).unwrap_err();
        let opened = refused_both_ways(dir.path(), "a gap and a hash mismatch");
        assert!(
            matches!(opened, ChainError::HashMismatch { seq, .. } if seq == target as u64),
            "{target}: {opened}"
        );
        assert_eq!(opened.to_string(), verified.to_string(), "{target}");
    }
}
