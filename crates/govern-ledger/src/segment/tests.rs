//! Segment store: round trips across segments, crashes, torn writes, failed syncs, and every
//! single-byte change detected and located. A fault-injecting in-memory filesystem
//! ([`FaultIo`]) drives most checks deterministically; some run on the real filesystem.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::ReceiptBody;

mod index;

pub(super) use super::FaultIo;
use super::{
    FRAME_HEADER_LEN, OpenError, OpenReport, SEGMENT_HEADER_LEN, SEGMENT_SUFFIX, SEGMENTS_DIR,
    SegmentOptions, SegmentStore, TornCause, TornTail, idx::INDEX_HEADER_LEN, index_name,
    segment_header, segment_name,
};
use crate::testing::Gate;
use crate::{Ledger, LedgerStore, StoreError};

fn options(segment_bytes: u64) -> SegmentOptions {
    SegmentOptions { segment_bytes, ..SegmentOptions::default() }
}

/// A deterministic record of varying length (20 to 49 bytes).
fn record(seq: u64) -> Vec<u8> {
    let len = 20 + (seq * 7 % 30) as usize;
    (0..len).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8) | 0x10).collect()
}

fn open(io: &FaultIo, segment_bytes: u64) -> Result<(SegmentStore, OpenReport), OpenError> {
    SegmentStore::open_with_io(Box::new(io.clone()), options(segment_bytes))
}

fn append_range(store: &mut SegmentStore, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        store.append(seq, &record(seq)).unwrap();
    }
}

fn assert_records(store: &SegmentStore, n: u64) {
    assert_eq!(store.len(), n);
    let mut out = Vec::new();
    for seq in 0..n {
        assert!(store.read(seq, &mut out).unwrap(), "record {seq}");
        assert_eq!(out, record(seq), "record {seq}");
    }
    assert!(!store.read(n, &mut out).unwrap());
}

/// The bytes of a segment header, as a `u64`.
const H: u64 = SEGMENT_HEADER_LEN as u64;

/// Where each frame lands by the roll rule: (first seq of its segment, offset), by seq.
fn layout(n: u64, segment_bytes: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut first, mut len) = (0, H);
    for seq in 0..n {
        let frame = (FRAME_HEADER_LEN + record(seq).len()) as u64;
        if len > H && len + frame > segment_bytes {
            (first, len) = (seq, H);
        }
        out.push((first, len));
        len += frame;
    }
    out
}

#[test]
fn records_round_trip_across_segments_and_survive_reopening() {
    let io = FaultIo::default();
    let (mut store, report) = open(&io, 128).unwrap();
    assert_eq!(
        report,
        OpenReport {
            segments: 0,
            records: 0,
            indexed: 0,
            torn: None,
            writer: None,
            snapshot: None
        }
    );
    append_range(&mut store, 0..7);
    assert_records(&store, 7); // served from the buffer
    assert_eq!((store.synced_len(), io.files().len()), (0, 0));
    store.sync().unwrap();
    append_range(&mut store, 7..13);
    store.sync().unwrap();
    append_range(&mut store, 13..20);
    assert_records(&store, 20); // some from disk, some from the buffer
    store.sync().unwrap();
    assert_eq!(store.synced_len(), 20);
    assert_records(&store, 20);
    let expected: Vec<u64> = layout(20, 128).iter().map(|&(first, _)| first).collect();
    let mut firsts = expected.clone();
    firsts.dedup();
    assert_eq!(firsts, [0, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 18]);
    let names: Vec<String> = firsts.iter().map(|&f| segment_name(f)).collect();
    // Every segment but the last is sealed, and has its index.
    let mut all = names.clone();
    all.extend(firsts[..firsts.len() - 1].iter().map(|&f| index_name(f)));
    all.sort();
    assert_eq!(io.files().keys().cloned().collect::<Vec<_>>(), all);
    assert_eq!(names[1], "00000000000000000002.seg");
    assert_eq!(store.segment_count(), 15);
    assert!(store.heap_bytes() >= 20 * 4);
    // Every segment stays within the limit, and frames sit where the layout says.
    for (seq, &(first, offset)) in layout(20, 128).iter().enumerate() {
        let bytes = &io.files()[&segment_name(first)];
        assert!(bytes.len() <= 128);
        assert_eq!(bytes[..SEGMENT_HEADER_LEN], segment_header(first));
        let at = offset as usize;
        assert_eq!(&bytes[at + 4..at + 12], &(seq as u64).to_be_bytes());
    }
    drop(store);

    let (mut store, report) = open(&io, 128).unwrap();
    assert_eq!(
        report,
        OpenReport {
            segments: 15,
            records: 20,
            indexed: 0,
            torn: None,
            writer: None,
            snapshot: None
        }
    );
    assert_records(&store, 20);
    assert_eq!(
        store.append(5, b"x"),
        Err(StoreError::OutOfOrder { expected: 20, found: 5 }),
        "appends stay in order"
    );
    append_range(&mut store, 20..23);
    store.sync().unwrap();
    drop(store);
    let (store, report) = open(&io, 128).unwrap();
    assert_eq!(report.records, 23);
    assert_records(&store, 23);
}

fn body(resource: &str, command: &'static str) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000),
        tenant: TenantId::new("acme").unwrap(),
        governor: GovernorKind::Subscription,
        resource: ResourceId::new(resource).unwrap(),
        resource_seq: 0,
        command: Cow::Borrowed(command),
        state_from: Cow::Borrowed("a"),
        state_to: Cow::Borrowed("b"),
        reason: "test".into(),
        args: BTreeMap::new(),
        metadata: BTreeMap::new(),
    }
}

#[test]
fn a_ledger_on_the_real_filesystem_reopens_verifies_and_continues_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SegmentStore::open(dir.path(), options(512)).unwrap();
    let ledger = Ledger::open(Box::new(store)).unwrap();
    for i in 0..10 {
        ledger.append(body(if i % 2 == 0 { "s1" } else { "s2" }, "x")).unwrap();
    }
    ledger.sync().unwrap();
    let head = ledger.head();
    drop(ledger);

    let (store, report) = SegmentStore::open(dir.path(), options(512)).unwrap();
    assert_eq!((report.records, report.torn), (10, None));
    let segments = report.segments;
    assert_eq!(segments, 5, "two receipts per 512-byte segment");
    let files = std::fs::read_dir(dir.path().join(SEGMENTS_DIR)).unwrap().count();
    assert_eq!(files, 2 * segments - 1, "each segment, and the index of each sealed one");
    let ledger = Ledger::open(Box::new(store)).unwrap();
    assert_eq!(ledger.head(), head);
    assert_eq!(ledger.verify().unwrap(), head);
    let next = ledger.append(body("s1", "y")).unwrap();
    assert_eq!((next.seq, next.resource_seq), (10, 5));
    ledger.sync().unwrap();
    let head = ledger.head();
    drop(ledger);

    let (store, report) = SegmentStore::open(dir.path(), options(512)).unwrap();
    assert_eq!((report.records, report.torn), (11, None));
    let ledger = Ledger::open(Box::new(store)).unwrap();
    assert_eq!(ledger.verify().unwrap(), head);
    let s1 = ResourceId::new("s1").unwrap();
    let acme = TenantId::new("acme").unwrap();
    let mine = ledger.resource_receipts(&acme, GovernorKind::Subscription, &s1).unwrap();
    assert_eq!(mine.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 2, 4, 6, 8, 10]);
}

#[test]
fn a_crash_loses_only_unsynced_records() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, 128).unwrap();
    append_range(&mut store, 0..10);
    store.sync().unwrap();
    append_range(&mut store, 10..25); // several new segments, created and synced
    store.sync().unwrap();
    append_range(&mut store, 25..30); // never synced
    drop(store);
    io.crash();
    let (store, report) = open(&io, 128).unwrap();
    assert_eq!((report.records, report.torn), (25, None));
    assert_records(&store, 25);

    // Written but not synced (the sync failed), then a crash: lost, nothing else.
    let (mut store, _) = open(&io, 128).unwrap();
    append_range(&mut store, 25..27);
    io.fail_next_sync();
    assert!(store.sync().is_err());
    drop(store);
    io.crash();
    let (store, report) = open(&io, 128).unwrap();
    assert_eq!((report.records, report.torn), (25, None));
    assert_records(&store, 25);
}

#[test]
fn a_writers_open_makes_what_a_dead_process_wrote_durable_before_building_on_it() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, 4096).unwrap();
    append_range(&mut store, 0..5);
    store.sync().unwrap();
    // Written, but its process died before the sync made it durable (the sync failed here);
    // the machine did not crash: the bytes are in the files, not yet on the disk.
    append_range(&mut store, 5..9);
    io.fail_next_sync();
    assert!(store.sync().is_err());
    drop(store);
    // The next writer reads them, so it syncs them before anything is built on them: a crash
    // from then on keeps them.
    let (store, report) = open(&io, 4096).unwrap();
    assert_eq!(report.records, 9);
    drop(store);
    io.crash();
    let (store, report) = open(&io, 4096).unwrap();
    assert_eq!((report.records, report.torn), (9, None));
    assert_records(&store, 9);
}

/// Records of a fixed size: 34-byte payloads, 54-byte frames.
fn fixed(seq: u64) -> Vec<u8> {
    vec![seq as u8 | 0x40; 34]
}

/// The bytes of a frame of [`fixed`].
const F: u64 = 54;

/// Segments of four [`fixed`] frames.
const FOUR: u64 = H + 4 * F;

fn report(segments: usize, records: u64, torn: Option<TornTail>) -> OpenReport {
    OpenReport { segments, records, indexed: 0, torn, writer: None, snapshot: None }
}

#[test]
fn a_torn_final_write_is_truncated_reported_and_appended_after() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, FOUR).unwrap();
    for seq in 0..5 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    store.sync().unwrap(); // segment 0: records 0-3; segment 4: record 4
    for seq in 5..8 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    io.fail_next_sync(); // the crash strikes during the sync
    assert!(store.sync().is_err());
    drop(store);
    io.crash_tearing(F as usize + 10); // record 5 whole, 10 bytes of record 6
    let (mut store, opened) = open(&io, FOUR).unwrap();
    let torn = TornTail {
        segment: segment_name(4),
        offset: H + 2 * F,
        seq: 6,
        bytes: 10,
        cause: TornCause::Cut,
    };
    assert_eq!(opened, report(2, 6, Some(torn)));
    assert_eq!(io.files()[&segment_name(4)].len() as u64, H + 2 * F, "truncated");
    let mut out = Vec::new();
    for seq in 0..6 {
        assert!(store.read(seq, &mut out).unwrap());
        assert_eq!(out, fixed(seq));
    }
    for seq in 6..9 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    let (store, opened) = open(&io, FOUR).unwrap();
    assert_eq!(opened, report(3, 9, None));
    for seq in 0..9 {
        assert!(store.read(seq, &mut out).unwrap());
        assert_eq!(out, fixed(seq));
    }
    assert_eq!(io.files()[&segment_name(8)].len() as u64, H + F);

    // A torn header (fewer than 20 bytes).
    let (mut store, _) = open(&io, FOUR).unwrap();
    store.append(9, &fixed(9)).unwrap();
    io.fail_next_sync();
    assert!(store.sync().is_err());
    drop(store);
    io.crash_tearing(7);
    let (_, opened) = open(&io, FOUR).unwrap();
    let torn = TornTail {
        segment: segment_name(8),
        offset: H + F,
        seq: 9,
        bytes: 7,
        cause: TornCause::Cut,
    };
    assert_eq!(opened, report(3, 9, Some(torn)));
}

#[test]
fn a_segment_created_but_never_filled_or_with_a_torn_header_is_reused() {
    for keep in [0, 10, SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN + 5] {
        let io = FaultIo::default();
        let (mut store, _) = open(&io, FOUR).unwrap();
        for seq in 0..4 {
            store.append(seq, &fixed(seq)).unwrap();
        }
        store.sync().unwrap(); // segment 0 is full
        store.append(4, &fixed(4)).unwrap(); // rolls to segment 4
        io.fail_next_sync(); // segment 4 is created (and its directory entry synced), then the crash
        assert!(store.sync().is_err());
        drop(store);
        io.crash_tearing(keep); // nothing, part of the header, the header, a bit of a frame
        assert_eq!(io.files()[&segment_name(4)].len(), keep);
        let (mut store, opened) = open(&io, FOUR).unwrap();
        let torn = (keep > 0 && keep != SEGMENT_HEADER_LEN).then(|| TornTail {
            segment: segment_name(4),
            offset: if keep < SEGMENT_HEADER_LEN { 0 } else { H },
            seq: 4,
            bytes: if keep < SEGMENT_HEADER_LEN { keep as u64 } else { keep as u64 - H },
            cause: TornCause::Cut,
        });
        assert_eq!(opened, report(2, 4, torn), "keep {keep}");
        for seq in 4..6 {
            store.append(seq, &fixed(seq)).unwrap();
        }
        store.sync().unwrap();
        drop(store);
        let (store, opened) = open(&io, FOUR).unwrap();
        assert_eq!(opened, report(2, 6, None));
        let segment = &io.files()[&segment_name(4)];
        assert_eq!(segment.len() as u64, H + 2 * F);
        assert_eq!(segment[..SEGMENT_HEADER_LEN], segment_header(4));
        let mut out = Vec::new();
        assert!(store.read(5, &mut out).unwrap());
        assert_eq!(out, fixed(5));
    }
}

/// Decided (issue 9): zero bytes after the last frame, however many, are a torn write (the
/// file's size reached the disk before its data); a zero-filled segment header too.
#[test]
fn a_zero_filled_tail_is_a_torn_write() {
    for zeros in [1, 19, 20, 40, 4096] {
        let io = FaultIo::default();
        let (mut store, _) = open(&io, FOUR).unwrap();
        for seq in 0..3 {
            store.append(seq, &fixed(seq)).unwrap();
        }
        store.sync().unwrap();
        drop(store);
        let mut files = io.files();
        files.get_mut(&segment_name(0)).unwrap().extend(std::iter::repeat_n(0, zeros));
        let io = FaultIo::with_files(&files);
        let (mut store, opened) = open(&io, FOUR).unwrap();
        let torn = TornTail {
            segment: segment_name(0),
            offset: H + 3 * F,
            seq: 3,
            bytes: zeros as u64,
            cause: TornCause::Zeros,
        };
        assert_eq!(opened, report(1, 3, Some(torn)), "{zeros} zeros");
        assert_eq!(io.files()[&segment_name(0)].len() as u64, H + 3 * F, "truncated");
        store.append(3, &fixed(3)).unwrap();
        store.sync().unwrap();
        assert_eq!(store.len(), 4);
    }
    // A last segment holding only zeros (its header never reached the disk either).
    let io = FaultIo::default();
    let (mut store, _) = open(&io, FOUR).unwrap();
    for seq in 0..5 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    let mut files = io.files();
    files.insert(segment_name(4), vec![0; 100]);
    let (_, opened) = open(&FaultIo::with_files(&files), FOUR).unwrap();
    let torn = TornTail {
        segment: segment_name(4),
        offset: 0,
        seq: 4,
        bytes: 100,
        cause: TornCause::Zeros,
    };
    assert_eq!(opened, report(2, 4, Some(torn)));
    // Zeros in a segment that is not the last are corruption.
    let mut files = io.files();
    files.get_mut(&segment_name(0)).unwrap().extend_from_slice(&[0; 30]);
    assert!(matches!(
        open(&FaultIo::with_files(&files), FOUR),
        Err(OpenError::Corrupt { offset, seq: 4, .. }) if offset == FOUR
    ));
}

/// Issue 9, point 2: a file cut at every byte offset inside its last frame (or inside the
/// segment header of a last segment) is a torn tail: the records before it remain.
#[test]
fn a_file_cut_anywhere_in_its_last_frame_is_a_torn_tail() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, FOUR).unwrap();
    for seq in 0..6 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    store.sync().unwrap(); // segment 0: records 0-3; segment 4: records 4, 5
    drop(store);
    let files = io.files();
    let whole = files[&segment_name(4)].clone();
    for cut in 0..whole.len() {
        let mut files = files.clone();
        files.insert(segment_name(4), whole[..cut].to_vec());
        let io = FaultIo::with_files(&files);
        let (store, opened) = open(&io, FOUR).unwrap();
        let cut = cut as u64;
        let (records, from) = match cut {
            0 => (4, None),
            c if c < H => (4, Some(0)),
            c if c == H => (4, None),
            c if c < H + F => (4, Some(H)),
            c if c == H + F => (5, None),
            _ => (5, Some(H + F)),
        };
        let torn = from.map(|offset| TornTail {
            segment: segment_name(4),
            offset,
            seq: records,
            bytes: cut - offset,
            // A cut that leaves only zero bytes of the frame (its length's high bytes) looks
            // like a zero-filled tail: torn either way.
            cause: if whole[offset as usize..cut as usize].iter().all(|&b| b == 0) {
                TornCause::Zeros
            } else {
                TornCause::Cut
            },
        });
        assert_eq!(opened, report(2, records, torn), "cut at {cut}");
        assert_eq!(io.files()[&segment_name(4)].len() as u64, from.unwrap_or(cut));
        assert_eq!(store.len(), records);
    }
}

#[test]
fn a_failed_sync_or_write_poisons_the_store_and_nothing_is_retried() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, 128).unwrap();
    append_range(&mut store, 0..3);
    store.sync().unwrap();
    append_range(&mut store, 3..4);
    io.fail_next_sync();
    let before = io.counts();
    let err = store.sync().unwrap_err();
    assert!(matches!(&err, StoreError::Io(m) if m.contains("injected sync failure")), "{err}");
    assert_eq!(io.counts(), (before.0 + 1, before.1 + 1), "one write, one failed sync");
    assert!(store.is_poisoned());
    let after = io.counts();
    assert!(
        matches!(store.append(4, &record(4)), Err(StoreError::Io(m)) if m.contains("poisoned"))
    );
    assert!(matches!(store.sync(), Err(StoreError::Io(m)) if m.contains("poisoned")));
    assert!(matches!(store.sync(), Err(StoreError::Io(_))));
    assert_eq!(io.counts(), after, "nothing retried");
    assert_eq!((store.len(), store.synced_len()), (4, 3));
    let mut out = Vec::new();
    for seq in 0..3 {
        assert!(store.read(seq, &mut out).unwrap()); // what was synced still reads
        assert_eq!(out, record(seq));
    }

    // Through the ledger: the store error poisons the ledger too.
    let io = FaultIo::default();
    let (store, _) = open(&io, 128).unwrap();
    let ledger = Ledger::open(Box::new(store)).unwrap();
    ledger.append(body("s1", "x")).unwrap();
    io.fail_next_write(5);
    assert!(matches!(ledger.sync(), Err(crate::LedgerError::Store(StoreError::Io(_)))));
    assert!(ledger.is_poisoned());
    assert_eq!(ledger.append(body("s1", "y")), Err(crate::LedgerError::Poisoned));
    assert_eq!(io.counts(), (1, 0), "the failed write was neither synced nor retried");
}

/// Records in the exhaustive single-byte check, with 120-byte segments.
const FLIP_RECORDS: u64 = 14;

/// The segment files of [`FLIP_RECORDS`] records.
fn flip_store() -> BTreeMap<String, Vec<u8>> {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, 120).unwrap();
    append_range(&mut store, 0..FLIP_RECORDS);
    store.sync().unwrap();
    segment_files(&io)
}

/// The segment files of `io` (their index files aside).
fn segment_files(io: &FaultIo) -> BTreeMap<String, Vec<u8>> {
    io.files().into_iter().filter(|(name, _)| name.ends_with(SEGMENT_SUFFIX)).collect()
}

/// Flips each byte of each file of `files` in turn (XOR 0x01), opens the result with
/// `open_flipped(name, pos)`, and asserts the exact outcome: corruption located at the damaged
/// frame (at offset 0 and the segment's first sequence number for its header). Never a torn
/// tail: a damaged length can no longer pass for a cut frame. Returns the count.
fn check_every_flip(
    files: &BTreeMap<String, Vec<u8>>,
    mut open_flipped: impl FnMut(&str, usize) -> Result<(SegmentStore, OpenReport), OpenError>,
) -> usize {
    let places = layout(FLIP_RECORDS, 120);
    let mut corrupt = 0;
    for (name, bytes) in files {
        let first = super::parse_segment_name(name).unwrap();
        for pos in 0..bytes.len() {
            // The frame holding byte `pos`, or the segment header.
            let (seq, offset) = places
                .iter()
                .enumerate()
                .filter(|(_, (first, _))| segment_name(*first) == *name)
                .map(|(seq, &(_, offset))| (seq as u64, offset))
                .rfind(|&(_, offset)| offset as usize <= pos)
                .unwrap_or((first, 0));
            match open_flipped(name, pos) {
                Err(OpenError::Corrupt { segment, offset: at, seq: s, .. }) => {
                    assert_eq!((segment, at, s), (name.clone(), offset, seq), "byte {pos}");
                }
                other => panic!("byte {pos} of {name}: {other:?}"),
            }
            corrupt += 1;
        }
    }
    corrupt
}

#[test]
fn every_single_byte_change_is_detected_and_located() {
    let files = flip_store();
    assert_eq!(files.len(), 12, "segments");
    let total: usize = files.values().map(Vec::len).sum();
    let corrupt = check_every_flip(&files, |name, pos| {
        let io = FaultIo::with_files(&files);
        io.flip(name, pos, 0x01);
        open(&io, 120)
    });
    assert_eq!(corrupt, total);
}

#[test]
fn every_single_byte_change_is_detected_and_located_on_the_real_filesystem() {
    let files = flip_store();
    let dir = tempfile::tempdir().unwrap();
    let segments = dir.path().join(SEGMENTS_DIR);
    std::fs::create_dir_all(&segments).unwrap();
    let total: usize = files.values().map(Vec::len).sum();
    let corrupt = check_every_flip(&files, |name, pos| {
        for (n, bytes) in &files {
            let mut bytes = bytes.clone();
            if n == name {
                bytes[pos] ^= 0x01;
            }
            std::fs::write(segments.join(n), bytes).unwrap();
        }
        SegmentStore::open(dir.path(), options(120))
    });
    assert_eq!(corrupt, total);
}

#[test]
fn a_bad_frame_followed_by_valid_frames_is_corruption_not_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = SegmentStore::open(dir.path(), options(FOUR)).unwrap();
    for seq in 0..7 {
        store.append(seq, &fixed(seq)).unwrap();
    }
    store.sync().unwrap(); // segments 0 (records 0-3) and 4 (records 4-6)
    drop(store);
    let seg = |first: u64| dir.path().join(SEGMENTS_DIR).join(segment_name(first));
    let pristine = std::fs::read(seg(4)).unwrap();
    let reopen = || SegmentStore::open(dir.path(), options(FOUR));
    let (r5, r6) = ((H + F) as usize, (H + 2 * F) as usize);

    // A damaged payload in the middle of the last segment.
    let mut bytes = pristine.clone();
    bytes[r5 + 25] ^= 0x80;
    std::fs::write(seg(4), &bytes).unwrap();
    let err = reopen().unwrap_err();
    assert!(
        matches!(&err, OpenError::Corrupt { segment, offset, seq: 5, reason }
            if *segment == segment_name(4) && *offset == r5 as u64
                && reason == "payload checksum mismatch"),
        "{err}"
    );

    // A length in the middle of the last segment pointing past its end.
    let mut bytes = pristine.clone();
    bytes[r5..r5 + 4].copy_from_slice(&5000u32.to_be_bytes());
    std::fs::write(seg(4), &bytes).unwrap();
    let err = reopen().unwrap_err();
    assert!(
        matches!(&err, OpenError::Corrupt { offset, seq: 5, reason, .. }
            if *offset == r5 as u64 && reason == "frame header checksum mismatch"),
        "{err}"
    );

    // Garbage, then a valid frame, at the end of the last segment.
    let mut bytes = pristine.clone();
    let last = bytes[r6..].to_vec();
    bytes.truncate(r6);
    bytes.extend_from_slice(&[0xAB; 20]);
    bytes.extend_from_slice(&last);
    std::fs::write(seg(4), &bytes).unwrap();
    assert!(matches!(
        reopen().unwrap_err(),
        OpenError::Corrupt { offset, seq: 6, .. } if offset == r6 as u64
    ));

    // A frame cut short in a segment that is not the last.
    std::fs::write(seg(4), &pristine).unwrap();
    let first = std::fs::read(seg(0)).unwrap();
    std::fs::write(seg(0), &first[..first.len() - 10]).unwrap();
    let err = reopen().unwrap_err();
    assert!(
        matches!(&err, OpenError::Corrupt { offset, seq: 3, .. } if *offset == H + 3 * F),
        "{err}"
    );
    std::fs::write(seg(0), &first).unwrap();

    // A segment whose name does not match its header and first frame, and a stray file.
    std::fs::rename(seg(4), seg(5)).unwrap();
    let err = reopen().unwrap_err();
    assert!(
        matches!(&err, OpenError::Corrupt { offset: 0, seq: 4, segment, .. }
            if *segment == segment_name(5)),
        "{err}"
    );
    std::fs::rename(seg(5), seg(4)).unwrap();
    let (store, opened) = reopen().unwrap();
    assert_eq!(opened, report(2, 7, None));
    drop(store);

    // A segment header naming another first record, another version, or none at all.
    let mut bytes = pristine.clone();
    bytes[SEGMENT_HEADER_LEN - 1] ^= 0x01;
    std::fs::write(seg(4), &bytes).unwrap();
    let err = reopen().unwrap_err();
    assert!(
        matches!(&err, OpenError::Corrupt { offset: 0, seq: 4, reason, .. }
            if reason == "segment header says it starts at 5"),
        "{err}"
    );
    let mut bytes = pristine.clone();
    bytes[15] = 1;
    std::fs::write(seg(4), &bytes).unwrap();
    let err = reopen().unwrap_err();
    assert!(err.to_string().contains("segment format version 1"), "{err}");
    // A format-1 segment: frames from byte 0, the first one's sequence number at 8..16.
    let mut bytes = vec![0, 0, 0, 34, 1, 2, 3, 4];
    bytes.extend_from_slice(&4u64.to_be_bytes());
    bytes.extend_from_slice(&fixed(4));
    std::fs::write(seg(4), &bytes).unwrap();
    let err = reopen().unwrap_err();
    assert!(err.to_string().contains("format 1"), "{err}");
    std::fs::write(seg(4), &pristine).unwrap();

    std::fs::write(dir.path().join(SEGMENTS_DIR).join("notes.txt"), b"hi").unwrap();
    assert!(matches!(reopen().unwrap_err(), OpenError::UnexpectedFile(n) if n == "notes.txt"));
}

#[test]
fn damage_after_opening_is_caught_on_read_and_options_are_checked() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, 200).unwrap();
    store.append(0, &fixed(0)).unwrap();
    store.sync().unwrap();
    io.flip(&segment_name(0), 30, 0x04);
    let mut out = Vec::new();
    assert!(matches!(store.read(0, &mut out), Err(StoreError::Corrupt(_))));
    assert!(out.is_empty());
    io.flip(&segment_name(0), 30, 0x04);
    io.flip(&segment_name(0), SEGMENT_HEADER_LEN + FRAME_HEADER_LEN + 3, 0x04);
    assert!(
        matches!(store.read(0, &mut out), Err(StoreError::Corrupt(m)) if m.contains("payload"))
    );
    assert!(matches!(open(&FaultIo::default(), 0), Err(OpenError::InvalidOptions(_))));
    assert!(matches!(
        open(&FaultIo::default(), super::SEGMENT_BYTES_MAX + 1),
        Err(OpenError::InvalidOptions(_))
    ));
    let too_long = vec![0; govern_receipt::RECORD_LEN_MAX + 1];
    assert!(matches!(store.append(1, &too_long), Err(StoreError::Corrupt(_))));
    assert!(!store.is_poisoned());
}

/// Issue 9, point 2: every single-bit flip in the headers and payloads of the last three
/// frames (acknowledged receipts, synced) is corruption located at that frame, never a torn
/// tail that would delete an acknowledged receipt.
#[test]
fn every_bit_flip_in_the_last_three_frames_is_corruption_never_a_torn_tail() {
    let files = flip_store();
    let places = layout(FLIP_RECORDS, 120);
    let last_name = segment_name(places.last().unwrap().0);
    let bytes = &files[&last_name];
    for seq in FLIP_RECORDS - 3..FLIP_RECORDS {
        let (first, offset) = places[seq as usize];
        let name = segment_name(first);
        let end = places
            .get(seq as usize + 1)
            .filter(|(f, _)| *f == first)
            .map_or(files[&name].len(), |&(_, o)| o as usize);
        for pos in offset as usize..end {
            for bit in 0..8 {
                let io = FaultIo::with_files(&files);
                io.flip(&name, pos, 1 << bit);
                match open(&io, 120) {
                    Err(OpenError::Corrupt { segment, offset: at, seq: s, .. }) => {
                        assert_eq!(
                            (segment, at, s),
                            (name.clone(), offset, seq),
                            "byte {pos} bit {bit}"
                        );
                    }
                    other => panic!("seq {seq}, byte {pos} bit {bit} of {name}: {other:?}"),
                }
            }
        }
    }
    assert!(!bytes.is_empty());
}

/// The three test-vector receipts of `docs/receipts.md` as storage records.
fn vector_records() -> Vec<Vec<u8>> {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../govern-receipt/tests/fixtures/receipts-v1.hex");
    std::fs::read_to_string(path).unwrap().lines().map(|l| hex::decode(l).unwrap()).collect()
}

const SEGMENT_VECTOR_START: &str = "<!-- segment-vector:start -->\n";
const SEGMENT_VECTOR_END: &str = "<!-- segment-vector:end -->";

/// `docs/receipts.md`, "Data directory": the segment file of the three test-vector
/// receipts, as the store writes it, with every header byte spelled out. The test fails when
/// the page and the store disagree; `UPDATE_DOCS=1` rewrites the page's block.
#[test]
fn the_segment_vector_in_the_docs_is_what_the_store_writes() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, super::SEGMENT_BYTES_MAX).unwrap();
    let records = vector_records();
    for (seq, record) in records.iter().enumerate() {
        store.append(seq as u64, record).unwrap();
    }
    store.sync().unwrap();
    let file = &io.files()[&segment_name(0)];
    let mut block = String::from("```text\n");
    block.push_str(&format!("{}: {} bytes\n", segment_name(0), file.len()));
    block.push_str(&format!(
        "offset 0, segment header: {} {} {}\n",
        hex::encode(&file[0..14]),
        hex::encode(&file[14..16]),
        hex::encode(&file[16..24])
    ));
    let mut at = SEGMENT_HEADER_LEN;
    for (seq, record) in records.iter().enumerate() {
        let h = &file[at..at + FRAME_HEADER_LEN];
        block.push_str(&format!(
            "offset {at}, frame header of receipt {seq}: {} {} {} {}\n",
            hex::encode(&h[0..4]),
            hex::encode(&h[4..12]),
            hex::encode(&h[12..16]),
            hex::encode(&h[16..20])
        ));
        block.push_str(&format!(
            "offset {}, payload: the {} bytes of receipt {seq}'s storage record\n",
            at + FRAME_HEADER_LEN,
            record.len()
        ));
        assert_eq!(&file[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + record.len()], record);
        at += FRAME_HEADER_LEN + record.len();
    }
    assert_eq!(at, file.len());
    block.push_str("```\n");
    block.push_str(&format!("\nThe whole file in hex:\n\n```text\n{}\n```\n", hex::encode(file)));

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/receipts.md");
    let page = std::fs::read_to_string(path).unwrap();
    let start = page.find(SEGMENT_VECTOR_START).expect("the segment vector markers")
        + SEGMENT_VECTOR_START.len();
    let end = page.find(SEGMENT_VECTOR_END).unwrap();
    if page[start..end] != block {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, format!("{}{block}{}", &page[..start], &page[end..])).unwrap();
        } else {
            panic!(
                "docs/receipts.md segment vector is stale: run UPDATE_DOCS=1 cargo test -p govern-ledger"
            );
        }
    }
}

/// `LedgerStore::close` (runtime shutdown) lets go of the data directory while the store
/// still reads: another writer may open it, and the closed store refuses appends.
#[test]
fn a_closed_store_releases_its_directory_refuses_appends_and_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = SegmentStore::open(dir.path(), options(FOUR)).unwrap();
    store.append(0, &fixed(0)).unwrap();
    store.sync().unwrap();
    assert!(matches!(
        SegmentStore::open(dir.path(), options(FOUR)),
        Err(OpenError::Locked(crate::LockError::Held { .. }))
    ));
    store.close();
    let err = store.append(1, &fixed(1)).unwrap_err();
    assert!(matches!(&err, StoreError::Io(m) if m.contains("closed")), "{err}");
    let mut out = Vec::new();
    assert!(store.read(0, &mut out).unwrap());
    assert_eq!(out, fixed(0));
    let (next, opened) = SegmentStore::open(dir.path(), options(FOUR)).unwrap();
    assert_eq!((opened.records, next.len()), (1, 1));
    let read_only = SegmentOptions { read_only: true, ..options(FOUR) };
    let (mut reader, _) = SegmentStore::open(dir.path(), read_only).unwrap();
    let err = reader.append(1, &fixed(1)).unwrap_err();
    assert!(matches!(&err, StoreError::Io(m) if m.contains("read-only")), "{err}");
}

#[test]
fn a_read_held_inside_the_segment_store_lets_appends_and_commits_through() {
    let gate = Arc::new(Gate::default());
    let io = FaultIo::default().with_read_hook({
        let gate = Arc::clone(&gate);
        Arc::new(move || gate.pass())
    });
    // Segments of a few frames: the read finds several files, and the writer's buffer.
    let (store, _) = open(&io, 900).unwrap();
    let ledger = Arc::new(Ledger::open(Box::new(store)).unwrap());
    for i in 0..5 {
        let body = crate::testing::body("acme", GovernorKind::Quota, "q-1", format!("r{i}"));
        ledger.append(body).unwrap();
    }
    ledger.commit().unwrap();
    for read in crate::testing::HELD_READS {
        crate::testing::reads_do_not_hold_up_appends(&ledger, &gate, read);
    }
}

/// A record a `Located` handed over, copied.
type Drained = (u64, Result<Option<Vec<u8>>, StoreError>);

/// Every record a `Located` hands over.
fn drain(mut located: Box<dyn crate::Located>) -> Vec<Drained> {
    let mut out = Vec::new();
    while let Some((seq, record)) = located.next_record() {
        out.push((seq, record.map(|r| r.map(<[u8]>::to_vec))));
    }
    out
}

#[test]
fn located_records_read_as_read_reads_them_across_segments_and_the_buffer() {
    for segment_bytes in [60, 200, 1_000, 100_000] {
        let io = FaultIo::default();
        let (mut store, _) = open(&io, segment_bytes).unwrap();
        append_range(&mut store, 0..40);
        store.sync().unwrap();
        // Written but not synced, then only buffered: three kinds of place.
        append_range(&mut store, 40..55);
        let job = store.begin_sync().unwrap();
        append_range(&mut store, 55..70);
        let sets: [Vec<u64>; 5] = [
            (0..72).collect(),
            (0..70).step_by(3).collect(),
            vec![0, 1, 2, 39, 40, 54, 55, 69, 70, 1_000],
            (30..60).step_by(7).collect(),
            vec![],
        ];
        // Every close pair too: a frame early in one segment and one further into the next
        // must not be read as one stretch of a file.
        let pairs = (0..70).flat_map(|a| (a + 1..a + 6).map(move |b| vec![a, b]));
        for seqs in sets.iter().cloned().chain(pairs) {
            let got = drain(store.locate(&seqs).unwrap());
            let want: Vec<_> =
                seqs.iter().map(|&seq| (seq, Ok((seq < 70).then(|| record(seq))))).collect();
            assert_eq!(got, want, "{segment_bytes}: {seqs:?}");
        }
        for range in [0..70, 0..100, 13..41, 39..56, 55..70, 69..70, 70..90, 5..5] {
            let got = drain(store.locate_range(range.clone()).unwrap());
            let want: Vec<_> =
                (range.start..range.end.min(70)).map(|seq| (seq, Ok(Some(record(seq))))).collect();
            assert_eq!(got, want, "{segment_bytes}: {range:?}");
        }
        let upto = job.upto();
        let result = job.run();
        store.end_sync(upto, result).unwrap();
    }
}

#[test]
fn a_located_frame_that_does_not_check_is_named_as_read_names_it() {
    let io = FaultIo::default();
    let (mut store, _) = open(&io, 300).unwrap();
    append_range(&mut store, 0..30);
    store.sync().unwrap();
    let places = layout(30, 300);
    let (first, offset) = places[17];
    // A payload byte of record 17: its payload checksum fails.
    io.flip(&segment_name(first), offset as usize + FRAME_HEADER_LEN + 3, 0x40);
    let mut out = Vec::new();
    let read = store.read(17, &mut out).unwrap_err();
    let located = drain(store.locate(&[16, 17, 18]).unwrap());
    assert_eq!(located[0], (16, Ok(Some(record(16)))));
    assert_eq!(located[1], (17, Err(read.clone())));
    assert_eq!(located[2], (18, Ok(Some(record(18)))), "another frame, another check");
    // In a range the frame after cannot be trusted to start where the bad one says: the
    // range ends at the first error.
    let ranged = drain(store.locate_range(0..30).unwrap());
    assert_eq!(ranged.len(), 18);
    assert_eq!(ranged[17], (17, Err(read)));
    // A damaged length in a frame header: the header's checksum fails.
    io.flip(&segment_name(places[5].0), places[5].1 as usize + 1, 0x01);
    let ranged = drain(store.locate_range(0..30).unwrap());
    assert_eq!(ranged.len(), 6);
    let read = store.read(5, &mut out).unwrap_err();
    assert!(matches!(&ranged[5], (5, Err(StoreError::Corrupt(_)))), "{:?} / {read}", ranged[5]);
}

/// Every way of reading a store of `n` records gives them all: `read`, `locate` (all, and
/// a scattered set), `locate_range` (whole and from the middle of segments) and `for_each`.
fn assert_read_every_way(store: &SegmentStore, n: u64) {
    assert_records(store, n);
    let all: Vec<u64> = (0..n).collect();
    let want = |seqs: &[u64]| -> Vec<Drained> {
        seqs.iter().map(|&seq| (seq, Ok(Some(record(seq))))).collect()
    };
    assert_eq!(drain(store.locate(&all).unwrap()), want(&all));
    let scattered: Vec<u64> = (0..n).filter(|s| s % 7 == 3 || s % 11 == 0).collect();
    assert_eq!(drain(store.locate(&scattered).unwrap()), want(&scattered));
    for from in [0, 1, n / 3, n / 2 + 1, n - 1] {
        let range: Vec<u64> = (from..n).collect();
        assert_eq!(drain(store.locate_range(from..n).unwrap()), want(&range), "from {from}");
    }
    let mut seen = Vec::new();
    store
        .for_each(&mut |seq, r| {
            seen.push((seq, Ok(Some(r.to_vec()))));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, want(&all));
    let mut seen = 0;
    store
        .for_each_record(|seq, r| -> Result<(), StoreError> {
            assert_eq!((seq, r), (seen, &record(seen)[..]));
            seen += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, n);
}

#[test]
fn sealed_segments_frame_offsets_are_paged_and_read_back_from_their_index_or_a_scan() {
    let n = 120;
    for budget in [0, 300, 1 << 20] {
        let io = FaultIo::default();
        let (mut store, _) = open(&io, 250).unwrap();
        store.set_offsets_budget(budget);
        append_range(&mut store, 0..n);
        store.sync().unwrap();
        // Only the last segment's offsets stay resident.
        let last_first = layout(n, 250).last().unwrap().0;
        assert!(last_first > 0);
        assert_eq!(store.resident_from, last_first, "budget {budget}");
        assert_eq!(store.offsets.len() as u64, n - last_first);
        assert!(store.pages.bytes() <= budget, "budget {budget}: {}", store.pages.bytes());
        assert_read_every_way(&store, n);
        // With no budget every read of a sealed segment loads its page again; with room
        // for all, the pages paged out are still there and nothing is loaded.
        match budget {
            0 => assert!(store.pages_loaded() > 10, "{}", store.pages_loaded()),
            b if b >= 1 << 20 => assert_eq!(store.pages_loaded(), 0),
            _ => {}
        }
        // Reopened, the same: the offsets of sealed segments are taken from their index
        // files and paged at once.
        drop(store);
        let (store, report) = open(&io, 250).unwrap();
        store.set_offsets_budget(budget);
        assert_eq!(report.records, n);
        assert_eq!(store.resident_from, last_first);
        assert_read_every_way(&store, n);
        // A missing and a damaged index: the segments are scanned instead, and read the same.
        let places = layout(n, 250);
        let firsts: Vec<u64> =
            places.iter().map(|p| p.0).collect::<BTreeSet<_>>().into_iter().collect();
        io.disk().files.remove(&index_name(firsts[1]));
        io.flip(&index_name(firsts[2]), INDEX_HEADER_LEN + 1, 0x04);
        store.set_offsets_budget(0);
        assert_read_every_way(&store, n);
        // A damaged frame in a paged segment is named at its record, by every reader.
        let (first, offset) = places[(firsts[3] + 1) as usize];
        let seq = firsts[3] + 1;
        io.flip(&segment_name(first), offset as usize + FRAME_HEADER_LEN + 2, 0x20);
        let mut out = Vec::new();
        let read = store.read(seq, &mut out).unwrap_err();
        assert!(read.to_string().contains(&format!("record {seq}")), "{read}");
        let located = drain(store.locate(&[seq - 1, seq]).unwrap());
        assert_eq!(located[1], (seq, Err(read.clone())));
        let ranged = drain(store.locate_range(0..n).unwrap());
        assert_eq!(ranged.last().unwrap(), &(seq, Err(read)));
    }
}
