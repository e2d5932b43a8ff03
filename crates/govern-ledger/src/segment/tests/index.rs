//! Per-segment index files: written when a segment is sealed (in the commit's second phase),
//! holding what a full scan finds; an indexed open gives the store a full scan gives; any
//! damage to an index makes the open scan that segment (and a writer rewrite the index);
//! damage to a segment an indexed open did not read is refused when it is read.

use std::collections::BTreeMap;
use std::path::Path;

use super::{F, FOUR, FaultIo, H, append_range, fixed, layout, open, options, record};
use crate::segment::idx::{Expected, decode_index, encode_index};
use crate::segment::{
    FRAME_HEADER_LEN, INDEX_HEADER_LEN, OpenError, OpenReport, SEGMENTS_DIR, SegmentOptions,
    SegmentStore, index_name, segment_name,
};
use crate::{LedgerStore, StoreError};

/// Opens over `io`, taking sealed segments below `skip_below` from their index files.
fn open_from(
    io: &FaultIo,
    segment_bytes: u64,
    skip_below: u64,
) -> Result<(SegmentStore, OpenReport), OpenError> {
    SegmentStore::open_inner(
        Box::new(io.clone()),
        options(segment_bytes),
        0,
        skip_below,
        &mut |_, _, _| {},
    )
}

/// A store of `n` [`record`]s in segments of `segment_bytes`, synced in a few commits.
fn written(segment_bytes: u64, n: u64) -> FaultIo {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, segment_bytes).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(7) {
        append_range(&mut store, chunk[0]..chunk[chunk.len() - 1] + 1);
        store.sync().unwrap();
    }
    io
}

/// The first sequence numbers of the segments of `n` [`record`]s in `segment_bytes`.
fn firsts(n: u64, segment_bytes: u64) -> Vec<u64> {
    let mut firsts: Vec<u64> = layout(n, segment_bytes).iter().map(|&(first, _)| first).collect();
    firsts.dedup();
    firsts
}

/// Asserts that two stores are the same: length, segments, the offset of every record, and
/// every record as `read`, `locate_range` and `for_each_record` read it.
fn assert_same_store(a: &SegmentStore, b: &SegmentStore) {
    assert_eq!((a.len(), a.synced_len()), (b.len(), b.synced_len()));
    assert_eq!(a.offsets, b.offsets, "the offset of every record");
    let shape = |s: &SegmentStore| -> Vec<(u64, String, u64, u64)> {
        s.segments.iter().map(|g| (g.first_seq, g.name.clone(), g.len, g.written)).collect()
    };
    assert_eq!(shape(a), shape(b));
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for seq in 0..=a.len() {
        assert_eq!(a.read(seq, &mut x).unwrap(), b.read(seq, &mut y).unwrap(), "record {seq}");
        assert_eq!(x, y, "record {seq}");
    }
    let all = |s: &SegmentStore| {
        let mut located = s.locate_range(0..s.len()).unwrap();
        let mut out = Vec::new();
        while let Some((seq, record)) = located.next_record() {
            out.push((seq, record.unwrap().unwrap().to_vec()));
        }
        let mut each = Vec::new();
        s.for_each_record(|seq, r| -> Result<(), StoreError> {
            each.push((seq, r.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(out, each);
        out
    };
    assert_eq!(all(a), all(b));
}

#[test]
fn a_sealed_segment_gets_its_index_in_the_commits_second_phase_holding_the_scans_offsets() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, 128).unwrap();
    append_range(&mut store, 0..3); // segments 0 and 2
    store.sync().unwrap();
    assert_eq!(io.files().keys().filter(|n| n.ends_with(".idx")).count(), 1);
    append_range(&mut store, 3..6); // seals segment 2, starts 3, 4, 5
    let job = store.begin_sync().unwrap();
    // The first phase (under the ledger's lock) wrote the frames, but no index yet.
    assert!(!io.files().contains_key(&index_name(2)));
    let upto = job.upto();
    let result = job.run();
    store.end_sync(upto, result).unwrap();
    for first in [0, 2, 3, 4] {
        assert!(io.files().contains_key(&index_name(first)), "index of {first}");
    }
    assert!(!io.files().contains_key(&index_name(5)), "the last segment is not sealed");

    // Each index holds what a full scan finds, and the segment was durable when it was written.
    let io = written(128, 40);
    let places = layout(40, 128);
    let firsts = firsts(40, 128);
    let files = io.files();
    let disk = io.disk();
    for (k, &first) in firsts.iter().enumerate() {
        let Some(&next) = firsts.get(k + 1) else {
            assert!(!files.contains_key(&index_name(first)));
            continue;
        };
        let segment = &disk.files[&segment_name(first)];
        assert_eq!(segment.durable, segment.written, "segment {first} synced before its index");
        let scanned: Vec<u32> = (first..next).map(|seq| places[seq as usize].1 as u32).collect();
        let len = segment.written.len() as u64;
        assert_eq!(files[&index_name(first)], encode_index(first, len, &scanned));
        let mut offsets = Vec::new();
        let expected = Expected { first_seq: first, segment_len: len, next_first_seq: next };
        decode_index(&files[&index_name(first)], expected, &mut offsets).unwrap();
        assert_eq!(offsets, scanned);
    }
}

#[test]
fn an_indexed_open_gives_the_store_a_full_scan_gives() {
    for (segment_bytes, n) in [(128, 40), (FOUR, 25), (300, 200), (100_000, 50)] {
        let io = written(segment_bytes, n);
        let sealed = firsts(n, segment_bytes).len() - 1;
        let (scanned, report) = open(&io, segment_bytes).unwrap();
        assert_eq!(report.indexed, 0);
        let (indexed, report) = open_from(&io, segment_bytes, u64::MAX).unwrap();
        assert_eq!((report.indexed, report.records, report.torn), (sealed, n, None));
        assert_same_store(&scanned, &indexed);
    }
    // Below a bound: only the segments wholly below it are taken from their index, and the
    // others are handed to the callback as a full scan hands them.
    let io = written(128, 40);
    let firsts = firsts(40, 128);
    for skip_below in [0, 1, 2, 3, 17, 39, 40, 41] {
        let mut handed = Vec::new();
        let (store, report) = SegmentStore::open_inner(
            Box::new(io.clone()),
            options(128),
            0,
            skip_below,
            &mut |first, _, offsets| handed.push((first, offsets.len())),
        )
        .unwrap();
        let skipped: Vec<u64> =
            firsts.windows(2).filter(|w| w[1] <= skip_below).map(|w| w[0]).collect();
        assert_eq!(report.indexed, skipped.len(), "below {skip_below}");
        let expected: Vec<u64> = firsts.iter().copied().filter(|f| !skipped.contains(f)).collect();
        assert_eq!(handed.iter().map(|&(f, _)| f).collect::<Vec<_>>(), expected);
        assert_same_store(&store, &open(&io, 128).unwrap().0);
    }
}

#[test]
fn an_indexed_open_on_the_real_filesystem_gives_what_open_gives_read_only_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = SegmentStore::open(dir.path(), options(300)).unwrap();
    append_range(&mut store, 0..150);
    store.sync().unwrap();
    drop(store);
    let sealed = firsts(150, 300).len() - 1;
    let read_only = SegmentOptions { read_only: true, ..options(300) };
    for options in [options(300), read_only] {
        let (indexed, report) = SegmentStore::open_indexed(dir.path(), options).unwrap();
        assert_eq!(report.indexed, sealed);
        // Read-only beside a writer: a writer holds the lock.
        let (scanned, report) = SegmentStore::open(dir.path(), read_only).unwrap();
        assert_eq!(report.indexed, 0);
        assert_same_store(&scanned, &indexed);
    }
}

/// The index files of a small store (segments 0, 4, 8 of [`fixed`] records: two sealed),
/// the segment files, and the store's bytes.
fn small() -> FaultIo {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, FOUR).unwrap();
    for seq in 0..10 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    store.sync().unwrap();
    io
}

/// Replaces index file `name` of `io` (or removes it: `None`), durably.
fn put(io: &FaultIo, name: &str, bytes: Option<Vec<u8>>) -> FaultIo {
    let mut files = io.files();
    match bytes {
        Some(bytes) => files.insert(name.to_owned(), bytes),
        None => files.remove(name),
    };
    FaultIo::with_files(&files)
}

/// Opens `io` indexed, as a writer: the segment whose index is spoiled is scanned (one
/// index used, not two), the store is what a full scan gives, and the index is rewritten.
fn assert_scanned_and_rewritten(io: &FaultIo, pristine: &BTreeMap<String, Vec<u8>>, what: &str) {
    let (store, report) = open_from(io, FOUR, u64::MAX).expect(what);
    assert_eq!((report.indexed, report.records), (1, 10), "{what}");
    let (full, _) = open(&FaultIo::with_files(pristine), FOUR).unwrap();
    assert_same_store(&store, &full);
    assert_eq!(io.files()[&index_name(0)], pristine[&index_name(0)], "{what}: rewritten");
}

#[test]
fn a_spoiled_or_missing_index_is_scanned_instead_and_rewritten() {
    let io = small();
    let pristine = io.files();
    let index = pristine[&index_name(0)].clone();
    assert_eq!(index.len(), INDEX_HEADER_LEN + 4 * 4 + 4);
    // Every byte changed in turn.
    for pos in 0..index.len() {
        let mut bytes = index.clone();
        bytes[pos] ^= 0x01;
        assert_scanned_and_rewritten(
            &put(&io, &index_name(0), Some(bytes)),
            &pristine,
            &format!("byte {pos}"),
        );
    }
    // Cut short at every length, one byte longer, missing, empty.
    for len in 0..index.len() {
        let io = put(&io, &index_name(0), Some(index[..len].to_vec()));
        assert_scanned_and_rewritten(&io, &pristine, &format!("cut at {len}"));
    }
    let mut longer = index.clone();
    longer.push(0);
    assert_scanned_and_rewritten(&put(&io, &index_name(0), Some(longer)), &pristine, "longer");
    assert_scanned_and_rewritten(&put(&io, &index_name(0), None), &pristine, "missing");
    // Whole and under a valid checksum, but of another segment or not agreeing with this one.
    let segment_len = pristine[&segment_name(0)].len() as u64;
    let offsets: Vec<u32> = (0..4).map(|k| (H + k * F) as u32).collect();
    let crafted: [(&str, Vec<u8>); 9] = [
        ("the next segment's index", pristine[&index_name(4)].clone()),
        ("another first record", encode_index(1, segment_len, &offsets)),
        ("another segment length", encode_index(0, segment_len + 1, &offsets)),
        ("another segment length", encode_index(0, segment_len - 1, &offsets)),
        ("too few frames", encode_index(0, segment_len, &offsets[..3])),
        ("no frames", encode_index(0, segment_len, &[])),
        ("a first frame not after the header", encode_index(0, segment_len, &[25, 78, 132, 186])),
        ("offsets not increasing", encode_index(0, segment_len, &[24, 132, 78, 186])),
        ("a frame shorter than its header", encode_index(0, segment_len, &[24, 78, 132, 133])),
    ];
    for (what, bytes) in crafted {
        assert_ne!(bytes, index);
        assert_scanned_and_rewritten(&put(&io, &index_name(0), Some(bytes)), &pristine, what);
    }
    let mut wrong_magic = index.clone();
    wrong_magic[0] = b'G';
    let body = wrong_magic.len() - 4;
    let crc = crc32c::crc32c(&wrong_magic[..body]).to_be_bytes();
    wrong_magic[body..].copy_from_slice(&crc);
    assert_scanned_and_rewritten(&put(&io, &index_name(0), Some(wrong_magic)), &pristine, "tag");
}

#[test]
fn an_index_of_the_last_segment_is_ignored() {
    let io = small();
    let last = io.files()[&segment_name(8)].clone();
    let offsets = [H as u32, (H + F) as u32];
    // A valid one (as if the segment had been sealed), and a stale one.
    for bytes in
        [encode_index(8, last.len() as u64, &offsets), encode_index(8, H + F, &offsets[..1])]
    {
        let io = put(&io, &index_name(8), Some(bytes.clone()));
        let (mut store, report) = open_from(&io, FOUR, u64::MAX).unwrap();
        assert_eq!((report.indexed, report.records), (2, 10));
        assert_same_store(&store, &open(&small(), FOUR).unwrap().0);
        assert_eq!(io.files()[&index_name(8)], bytes, "left alone");
        // Once sealed, it gets the index a scan gives.
        for seq in 10..13 {
            store.append(seq, &fixed(seq)).unwrap();
        }
        store.sync().unwrap();
        let offsets: Vec<u32> = (0..4).map(|k| (H + k * F) as u32).collect();
        assert_eq!(io.files()[&index_name(8)], encode_index(8, FOUR, &offsets));
    }
}

#[test]
fn an_index_write_cut_short_or_failed_is_no_failure_and_the_next_writer_writes_it() {
    for crash_before_rename in [true, false] {
        let io = FaultIo::default();
        let (mut store, _) = open(&io, FOUR).unwrap();
        for seq in 0..4 {
            store.append(seq, &fixed(seq)).unwrap();
        }
        store.sync().unwrap();
        io.disk().fail_replaces = Some(crash_before_rename);
        store.append(4, &fixed(4)).unwrap(); // seals segment 0
        store.sync().unwrap();
        assert!(!store.is_poisoned());
        store.append(5, &fixed(5)).unwrap();
        store.sync().unwrap();
        drop(store);
        io.crash();
        let tmp = format!("{}.tmp", index_name(0));
        assert_eq!(io.files().contains_key(&tmp), crash_before_rename);
        assert!(!io.files().contains_key(&index_name(0)));
        io.disk().fail_replaces = None;

        // A reader opens it, and changes nothing.
        let before = io.files();
        let read_only = SegmentOptions { read_only: true, ..options(FOUR) };
        let (store, report) = SegmentStore::open_inner(
            Box::new(io.clone()),
            read_only,
            0,
            u64::MAX,
            &mut |_, _, _| {},
        )
        .unwrap();
        assert_eq!((report.indexed, store.len()), (0, 6));
        assert_eq!(io.files(), before);

        // A writer opens it, removes the leftover and writes the index.
        let (store, report) = open_from(&io, FOUR, u64::MAX).unwrap();
        assert_eq!((report.indexed, store.len()), (0, 6));
        assert!(!io.files().contains_key(&tmp));
        let offsets: Vec<u32> = (0..4).map(|k| (H + k * F) as u32).collect();
        assert_eq!(io.files()[&index_name(0)], encode_index(0, FOUR, &offsets));
        drop(store);
        let (_, report) = open_from(&io, FOUR, u64::MAX).unwrap();
        assert_eq!(report.indexed, 1);
    }
}

/// Every file of the segments directory of data directory `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join(SEGMENTS_DIR))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn on_the_real_filesystem_a_leftover_is_harmless_a_reader_writes_nothing_and_a_writer_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = SegmentStore::open(dir.path(), options(FOUR)).unwrap();
    for seq in 0..14 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    store.sync().unwrap(); // segments 0, 4, 8, 12
    drop(store);
    let pristine = snapshot(dir.path());
    assert_eq!(pristine.len(), 7);
    let segments = dir.path().join(SEGMENTS_DIR);
    // A crash between the write of a .tmp and its rename; a missing index; a damaged one.
    std::fs::write(segments.join(format!("{}.tmp", index_name(4))), b"half an ind").unwrap();
    std::fs::remove_file(segments.join(index_name(4))).unwrap();
    std::fs::remove_file(segments.join(index_name(0))).unwrap();
    let mut damaged = pristine[&index_name(8)].clone();
    damaged[INDEX_HEADER_LEN + 1] ^= 0x20;
    std::fs::write(segments.join(index_name(8)), damaged).unwrap();

    let spoiled = snapshot(dir.path());
    let read_only = SegmentOptions { read_only: true, ..options(FOUR) };
    let (reader, report) = SegmentStore::open_indexed(dir.path(), read_only).unwrap();
    assert_eq!((report.indexed, reader.len()), (0, 14));
    let (plain, _) = SegmentStore::open(dir.path(), read_only).unwrap();
    assert_eq!(snapshot(dir.path()), spoiled, "a reader writes nothing");

    let (writer, report) = SegmentStore::open_indexed(dir.path(), options(FOUR)).unwrap();
    assert_eq!((report.indexed, writer.len()), (0, 14));
    assert_same_store(&writer, &reader);
    assert_same_store(&writer, &plain);
    drop(writer);
    assert_eq!(snapshot(dir.path()), pristine, "the writer removed the leftover and rewrote both");
    let (_, report) = SegmentStore::open_indexed(dir.path(), options(FOUR)).unwrap();
    assert_eq!(report.indexed, 3);
}

#[test]
fn a_frame_damaged_in_a_segment_an_indexed_open_did_not_read_is_refused_when_read() {
    let io = written(128, 40);
    let places = layout(40, 128);
    let (first, offset) = places[9];
    assert!(*firsts(40, 128).last().unwrap() > first, "record 9 is in a sealed segment");
    io.flip(&segment_name(first), offset as usize + FRAME_HEADER_LEN + 2, 0x08);
    // A full scan finds it; an indexed open does not read that segment.
    assert!(matches!(
        open(&io, 128),
        Err(OpenError::Corrupt { seq: 9, offset: at, .. }) if at == offset
    ));
    let (store, report) = open_from(&io, 128, u64::MAX).unwrap();
    assert_eq!(report.records, 40);
    assert!(report.indexed > 0);
    // Every way of reading it checks the frame.
    let mut out = Vec::new();
    let read = store.read(9, &mut out).unwrap_err();
    assert!(
        matches!(&read, StoreError::Corrupt(m) if m.contains("record 9: payload checksum mismatch")),
        "{read}"
    );
    assert!(store.read(8, &mut out).unwrap());
    assert_eq!(out, record(8));
    let mut located = store.locate(&[9]).unwrap();
    assert_eq!(located.next_record().map(|(seq, r)| (seq, r.err())), Some((9, Some(read.clone()))));
    let mut ranged = store.locate_range(0..40).unwrap();
    let mut last = None;
    while let Some((seq, r)) = ranged.next_record() {
        last = Some((seq, r.err()));
    }
    assert_eq!(last, Some((9, Some(read.clone()))));
    let mut seen = Vec::new();
    let each = store.for_each(&mut |seq, _| {
        seen.push(seq);
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!((each, seen), (Err(read.clone()), (0..9).collect()));
    let err = store.for_each_record(|_, _| -> Result<(), StoreError> { Ok(()) }).unwrap_err();
    assert_eq!(err, read);
}

/// `docs/receipts.md`, "Segment indexes", pinned: the index of segment 4 of [`small`] (four
/// 54-byte frames after the 24-byte header), as computed from the page by a separate
/// implementation (Python, with a bitwise CRC32C).
#[test]
fn the_index_file_is_the_documented_format() {
    let io = small();
    assert_eq!(
        hex::encode(&io.files()[&index_name(4)]),
        "676f7665726e2e736567696e646578\
         0001\
         0000000000000004\
         0000000000000004\
         00000000000000f0\
         000000180000004e00000084000000ba\
         2f0ca0a3"
    );
}
