//! Target `segment_records`: a ledger opened over one segment whose frames are all intact
//! (header and payload checksums right, sequence numbers in order) but whose records are
//! arbitrary: what an open checks past the frames (decode, hash chain, ids, `resource_seq`).
//! Mutating a real segment's bytes (target `segment`) mostly breaks a checksum first; here the
//! target frames the input's records itself. The input is records one after the other, each a
//! big-endian `u16` length and that many bytes ([`records`]).
//!
//! Properties: those of target `segment` (the segment goes through its body), and the store
//! opens with every record framed, none torn.

use govern_ledger::segment::{FRAME_HEADER_LEN, SegmentOptions, SegmentStore, segment_header};

use crate::mem_io::MemIo;

/// The most records one input frames.
pub const RECORDS_MAX: usize = 1_024;

/// The records an input stands for: length-prefixed (`u16`, big-endian), a short last one cut
/// to what is left.
#[must_use]
pub fn records(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let [a, b, tail @ ..] = rest {
        if out.len() == RECORDS_MAX {
            break;
        }
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (record, next) = tail.split_at(len);
        out.push(record);
        rest = next;
    }
    out
}

/// The input written as the store writes: `records` framed in one segment from record 0.
#[must_use]
pub fn segment(records: &[&[u8]]) -> Vec<u8> {
    let mut out = segment_header(0).to_vec();
    for (seq, payload) in records.iter().enumerate() {
        let mut header = [0u8; FRAME_HEADER_LEN - 4];
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        header[0..4].copy_from_slice(&len.to_be_bytes());
        header[4..12].copy_from_slice(&(seq as u64).to_be_bytes());
        header[12..16].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&crc32c::crc32c(&header).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// The target's body.
///
/// # Panics
/// When a property fails.
pub fn run(data: &[u8]) {
    if data.len() > crate::segment::INPUT_BYTES_MAX {
        return;
    }
    let records = records(data);
    let bytes = segment(&records);
    let files = crate::segment::files(&bytes);
    // A record holding the segment magic splits the input in the `segment` target's reading;
    // framed here, it is one segment whatever it holds.
    if files.len() == 1 {
        let io = MemIo::with_files(files);
        let opened = SegmentStore::open_with_io(Box::new(io), SegmentOptions::default());
        let Ok((_, report)) = opened else { panic!("intact frames refused: {:?}", opened.err()) };
        assert_eq!(report.records, records.len() as u64, "framed records");
        assert!(report.torn.is_none(), "intact frames torn");
    }
    crate::segment::run(&bytes);
}
