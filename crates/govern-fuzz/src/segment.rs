//! Target `segment`: opening a segment store, and a ledger over it, whose segment files hold
//! arbitrary bytes (the frame reader, torn-tail recovery, the chain and numbering checks of an
//! open). The input is the directory's segment files one after the other: it is split before
//! every occurrence of the segment magic, and each piece named for the first sequence number
//! its header gives (a piece without a whole header: for its place), so a real directory's
//! files concatenated are a valid input. The files live in memory ([`crate::mem_io::MemIo`]).
//!
//! Properties: no panic; at most [`INPUT_BYTES_MAX`] bytes; a store that opens holds no more
//! records than the bytes could frame; a ledger that opens over it verifies again, with the
//! head it opened at, and hands over every record it counted, in order, hash-linked; opening
//! is idempotent: after the first open (which cut a torn tail) a second finds nothing torn and
//! the same records.

use std::collections::BTreeMap;

use govern_ledger::segment::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SegmentOptions, SegmentStore, segment_name,
};
use govern_ledger::{Ledger, OpenReport};
use govern_receipt::Digest;

use crate::mem_io::MemIo;

/// The most bytes one input holds (4 MiB: a few small segments' worth; a segment may hold 64).
pub const INPUT_BYTES_MAX: usize = 4 << 20;

/// The segment files an input stands for, by name.
#[must_use]
pub fn files(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut starts: Vec<usize> = data
        .windows(SEGMENT_MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == SEGMENT_MAGIC)
        .map(|(i, _)| i)
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut out = BTreeMap::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        let piece = data.get(start..end).unwrap_or_default();
        let first = piece
            .get(SEGMENT_HEADER_LEN - 8..SEGMENT_HEADER_LEN)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(i as u64, u64::from_be_bytes);
        out.entry(segment_name(first)).or_insert_with(|| piece.to_vec());
    }
    out
}

fn open(io: &MemIo) -> Option<(SegmentStore, OpenReport)> {
    SegmentStore::open_with_io(Box::new(io.clone()), SegmentOptions::default()).ok()
}

/// The target's body.
///
/// # Panics
/// When a property fails.
pub fn run(data: &[u8]) {
    if data.len() > INPUT_BYTES_MAX {
        return;
    }
    let io = MemIo::with_files(files(data));
    let Some((store, report)) = open(&io) else { return };
    assert!(
        report.records <= (data.len() / FRAME_HEADER_LEN) as u64,
        "{} records from {} bytes",
        report.records,
        data.len()
    );
    let opened = match Ledger::open(Box::new(store)) {
        Ok(ledger) => {
            let head = ledger.head();
            assert_eq!(head.next_seq, report.records, "the ledger's length is the store's");
            let verified = ledger.verify();
            assert!(matches!(&verified, Ok(h) if *h == head), "reverify: {verified:?}");
            let receipts = ledger.receipts_in(0..head.next_seq);
            let Ok(receipts) = receipts else {
                panic!("records counted but not read: {receipts:?}")
            };
            assert_eq!(receipts.len() as u64, head.next_seq, "receipts handed over");
            let mut prev = Digest::ZERO;
            for (i, r) in receipts.iter().enumerate() {
                assert_eq!(r.seq, i as u64, "receipt out of place");
                assert_eq!(r.prev_hash, prev, "receipt {i} not linked");
                prev = r.hash;
            }
            assert_eq!(head.last_hash, prev, "head hash");
            true
        }
        Err(_) => false,
    };
    let Some((_, again)) = open(&io) else { panic!("a store that opened does not reopen") };
    assert!(again.torn.is_none(), "torn again after recovery: {:?}", again.torn);
    assert_eq!(again.records, report.records, "records after recovery");
    if opened {
        let reopened = open(&io).map(|(s, _)| Ledger::open(Box::new(s)).is_ok());
        assert_eq!(reopened, Some(true), "a ledger that opened does not reopen");
    }
}
