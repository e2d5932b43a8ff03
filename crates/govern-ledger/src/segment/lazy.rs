//! A read-only view of a data directory's segments that reads only what it is asked for:
//! opening lists the segments and scans the last one (to know the ledger's length); a
//! sealed segment's frame offsets are loaded from its index file (or, without a valid one,
//! by scanning that segment) the first time one of its records is read. Every frame read is
//! checked (length, CRC32C, sequence number) as `SegmentStore` checks it. What a reader that
//! names a few receipts (`govern receipts`) opens instead of the whole store.

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::idx::{self, SegmentsEntry, segments_entry};
use super::{
    Access, FRAME_HEADER_LEN, OpenError, OpenReport, SEGMENT_BYTES_MAX, ScanEnd, SegmentOptions,
    SegmentStart, TornTail, check_frame, check_segment_header, fs_io, io_error, parse_header,
    scan_segment,
};
use crate::ledger::{Copied, LedgerStore, Located, StoreError};
use crate::segment::io::{FsIo, SegmentIo};

/// One segment: its first record, file name and length; its offsets once loaded.
#[derive(Debug)]
struct Lazy {
    first_seq: u64,
    name: String,
    len: u64,
    /// Where its valid frames end: its length, or the last segment's torn tail.
    end: u64,
}

/// Bytes of frames [`SegmentReader`] reads in one go when locating a range of records.
/// (A few hundred bytes in tests, so that ranges are read in several chunks.)
const RANGE_CHUNK_BYTES: u64 = if cfg!(test) { 300 } else { 4 << 20 };

/// A segment's frame offsets known so far: those of its records `from` on.
#[derive(Clone, Debug)]
struct Known {
    from: u64,
    offsets: Arc<[u32]>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct SegmentReader {
    io: FsIo,
    segments: Vec<Lazy>,
    /// The frame offsets of each segment, once loaded: those of its records from the first
    /// number given on (the last segment's at open, from the snapshot's last record when
    /// it lies there; the rest of it is scanned if a record before that is read).
    offsets: Mutex<Vec<Option<Known>>>,
    /// The first record in the segments: the archive boundary (0 when nothing is archived).
    base: u64,
    len: u64,
}

impl SegmentReader {
    /// The first record of each segment, in order (the last segment's included).
    #[must_use]
    pub fn segment_starts(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.first_seq).collect()
    }

    /// Opens the segments of data directory `dir` read-only: no lock is taken, nothing is
    /// written; the last segment is scanned (a torn tail is reported, not cut), the others
    /// are only listed.
    ///
    /// # Errors
    /// As [`super::SegmentStore::open`] read-only: no ledger there, an unexpected file, the
    /// last segment damaged, I/O.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Self, OpenReport), OpenError> {
        let options = SegmentOptions { read_only: true, ..SegmentOptions::default() };
        let (mut io, access) = fs_io(dir.as_ref(), options)?;
        let writer = match access {
            Access::Reader(writer) => writer,
            Access::Writer(_) => None,
        };
        let mut names = Vec::new();
        for name in io.list().map_err(io_error("listing segments"))? {
            match segments_entry(&name) {
                Some(SegmentsEntry::Segment(first)) => names.push((first, name)),
                Some(SegmentsEntry::Index(_) | SegmentsEntry::IndexTmp) => {}
                None => return Err(OpenError::UnexpectedFile(name)),
            }
        }
        names.sort();
        let base = crate::archive::boundary(dir.as_ref()).map_err(OpenError::Archive)?;
        // Copies a crash left behind after archiving them: not read.
        let archived = names.windows(2).take_while(|w| w[1].0 <= base).count();
        names.drain(..archived);
        let mut segments = Vec::with_capacity(names.len());
        for (i, (first, name)) in names.into_iter().enumerate() {
            let corrupt = |reason: String| OpenError::Corrupt {
                segment: name.clone(),
                offset: 0,
                seq: first,
                reason,
            };
            if i == 0 && first != base {
                return Err(corrupt(format!("file name says the segment starts at {first}")));
            }
            if segments.last().is_some_and(|l: &Lazy| l.first_seq >= first) {
                return Err(corrupt("two segments start at the same record".into()));
            }
            let len = io.open(&name).map_err(io_error(format!("opening segment {name}")))?;
            if len > SEGMENT_BYTES_MAX {
                return Err(corrupt(format!("segment is {len} bytes, over the limit")));
            }
            segments.push(Lazy { first_seq: first, name, len, end: len });
        }
        let mut torn = None;
        let mut len = base;
        let mut offsets: Vec<Option<Known>> = vec![None; segments.len()];
        // The snapshot's last record, when it lies in the last segment: scan from there.
        let hint = crate::ledger::snapshot::end_hint(dir.as_ref());
        if let Some(last) = segments.last_mut() {
            let from_hint = hint
                .filter(|&(segment, _, _)| segment == last.first_seq)
                .and_then(|(_, at, records)| scan_from(&io, last, at, records - 1).ok());
            let (known, end, cut) = match from_hint {
                Some(found) => found,
                None => {
                    let (scanned, end, cut) = scan(&io, last, true)?;
                    (Known { from: last.first_seq, offsets: scanned.into() }, end, cut)
                }
            };
            len = end;
            if let Some(cut) = &cut {
                last.end = cut.offset;
            }
            torn = cut;
            if let Some(slot) = offsets.last_mut() {
                *slot = Some(known);
            }
        }
        let report = OpenReport {
            segments: segments.len(),
            records: len,
            indexed: 0,
            torn,
            writer,
            snapshot: None,
        };
        Ok((Self { io, segments, offsets: Mutex::new(offsets), base, len }, report))
    }

    /// The offsets of segment `i` known to include record `seq`'s: from its index file, else
    /// by scanning it (also the last segment, when only its records after `seq` are known).
    fn offsets_of(&self, i: usize, seq: u64) -> Result<Known, StoreError> {
        let known = self.offsets.lock().unwrap_or_else(PoisonError::into_inner).get(i).cloned();
        if let Some(Some(known)) = known
            && known.from <= seq
        {
            return Ok(known);
        }
        let seg =
            self.segments.get(i).ok_or_else(|| StoreError::Corrupt(format!("no segment {i}")))?;
        let last = i + 1 == self.segments.len();
        let next_first_seq = self.segments.get(i + 1).map_or(self.len, |n| n.first_seq);
        let expected =
            idx::Expected { first_seq: seg.first_seq, segment_len: seg.len, next_first_seq };
        let mut loaded = Vec::new();
        let offsets: Arc<[u32]> = match (last, idx::load(&self.io, expected, &mut loaded)) {
            (false, Ok(())) => loaded.into(),
            _ => {
                let (scanned, end, _) =
                    scan(&self.io, seg, last).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if end != next_first_seq {
                    return Err(StoreError::Corrupt(format!(
                        "segment {} holds records up to {end}, {next_first_seq} expected",
                        seg.name
                    )));
                }
                scanned.into()
            }
        };
        let known = Known { from: seg.first_seq, offsets };
        let mut cache = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = cache.get_mut(i) {
            *slot = Some(known.clone());
        }
        Ok(known)
    }
}

/// Scans the last segment `seg` from the frame of record `seq` at byte `at` on (a snapshot's
/// last record): that frame must be there, whole and checked; the frames after it are
/// scanned as a full scan would. `Err` when the frame is not there (the caller scans the
/// whole segment instead).
fn scan_from(
    io: &FsIo,
    seg: &Lazy,
    at: u64,
    seq: u64,
) -> Result<(Known, u64, Option<TornTail>), OpenError> {
    let not_there = || OpenError::Corrupt {
        segment: seg.name.clone(),
        offset: at,
        seq,
        reason: "the snapshot's last record is not where it says".into(),
    };
    let len =
        usize::try_from(seg.len.checked_sub(at).ok_or_else(not_there)?).map_err(|_| not_there())?;
    let mut bytes = vec![0u8; len];
    io.read_at(&seg.name, at, &mut bytes)
        .map_err(io_error(format!("reading segment {}", seg.name)))?;
    let header = parse_header(&bytes).ok_or_else(not_there)?;
    let first = bytes.get(..FRAME_HEADER_LEN + header.len as usize).ok_or_else(not_there)?;
    check_frame(first, seq).map_err(|_| not_there())?;
    let at_u32 = u32::try_from(at).map_err(|_| not_there())?;
    let mut next = seq + 1;
    let mut offsets = vec![0u32];
    let scanned = scan_segment(&bytes, first.len(), true, &mut next, &mut offsets);
    let torn = scan_end(seg, at, scanned, next)?;
    let offsets: Vec<u32> = offsets.into_iter().map(|o| o + at_u32).collect();
    Ok((Known { from: seq, offsets: offsets.into() }, next, torn))
}

/// Scans segment `seg` whole: its offsets, the record after its last, and a torn tail (only
/// the `last` segment may have one; it is reported, never cut).
fn scan(io: &FsIo, seg: &Lazy, last: bool) -> Result<(Vec<u32>, u64, Option<TornTail>), OpenError> {
    let corrupt = |offset: u64, seq: u64, reason: String| OpenError::Corrupt {
        segment: seg.name.clone(),
        offset,
        seq,
        reason,
    };
    let len = usize::try_from(seg.len)
        .map_err(|_| corrupt(0, seg.first_seq, "segment too large for memory".into()))?;
    let mut bytes = vec![0u8; len];
    io.read_at(&seg.name, 0, &mut bytes)
        .map_err(io_error(format!("reading segment {}", seg.name)))?;
    let mut next = seg.first_seq;
    let mut offsets = Vec::new();
    let scanned = match check_segment_header(&bytes, seg.first_seq, last) {
        Ok(SegmentStart::Frames(at)) => scan_segment(&bytes, at, last, &mut next, &mut offsets),
        Ok(SegmentStart::Torn(cause)) => Ok(ScanEnd::Torn(0, cause)),
        Err(reason) => Err((0, reason)),
    };
    let torn = scan_end(seg, 0, scanned, next)?;
    Ok((offsets, next, torn))
}

/// How a scan of segment `seg` from byte `base` ended (offsets in `scanned` relative to
/// `base`; `next`, the record after the last valid frame): a torn tail, reported (never cut,
/// read-only) and logged, or damage.
fn scan_end(
    seg: &Lazy,
    base: u64,
    scanned: Result<ScanEnd, (usize, String)>,
    next: u64,
) -> Result<Option<TornTail>, OpenError> {
    match scanned {
        Ok(ScanEnd::Clean) => Ok(None),
        Ok(ScanEnd::Torn(cut, cause)) => {
            let offset = base + cut as u64;
            let bytes = seg.len - offset;
            tracing::warn!(segment = %seg.name, offset, seq = next, bytes, "torn final frame found (read-only: not truncated)");
            Ok(Some(TornTail { segment: seg.name.clone(), offset, seq: next, bytes, cause }))
        }
        Err((cut, reason)) => Err(OpenError::Corrupt {
            segment: seg.name.clone(),
            offset: base + cut as u64,
            seq: next,
            reason,
        }),
    }
}

impl LedgerStore for SegmentReader {
    fn append(&mut self, _: u64, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Io("a segment reader takes no appends".into()))
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Err(StoreError::Io("a segment reader takes no appends".into()))
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn base(&self) -> u64 {
        self.base
    }

    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        if seq >= self.len || seq < self.base {
            return Ok(false);
        }
        let i = self.segments.partition_point(|s| s.first_seq <= seq).saturating_sub(1);
        let seg = self
            .segments
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("record {seq}: no segment")))?;
        let known = self.offsets_of(i, seq)?;
        let offsets = &known.offsets;
        let at = usize::try_from(seq - known.from)
            .ok()
            .and_then(|k| offsets.get(k))
            .copied()
            .ok_or_else(|| {
                StoreError::Corrupt(format!("record {seq} is not in segment {}", seg.name))
            })?;
        let corrupt = |reason: String| {
            StoreError::Corrupt(format!(
                "segment {} offset {at} (record {seq}): {reason}",
                seg.name
            ))
        };
        let mut header = [0u8; FRAME_HEADER_LEN];
        self.io
            .read_at(&seg.name, u64::from(at), &mut header)
            .map_err(|e| StoreError::Io(format!("reading segment {}: {e}", seg.name)))?;
        let payload_len = parse_header(&header).map_or(0, |h| h.len as usize);
        if u64::from(at) + (FRAME_HEADER_LEN + payload_len) as u64 > seg.len {
            return Err(corrupt("frame outside its segment".into()));
        }
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload_len);
        frame.extend_from_slice(&header);
        frame.resize(FRAME_HEADER_LEN + payload_len, 0);
        self.io
            .read_at(
                &seg.name,
                u64::from(at) + FRAME_HEADER_LEN as u64,
                &mut frame[FRAME_HEADER_LEN..],
            )
            .map_err(|e| StoreError::Io(format!("reading segment {}: {e}", seg.name)))?;
        check_frame(&frame, seq).map_err(corrupt)?;
        out.clear();
        out.extend_from_slice(&frame[FRAME_HEADER_LEN..]);
        Ok(true)
    }

    fn for_each(
        &self,
        f: &mut dyn FnMut(u64, &[u8]) -> std::ops::ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut record = Vec::new();
        for seq in self.base..self.len {
            if !self.read(seq, &mut record)? {
                break;
            }
            if f(seq, &record).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Reads the frames of `range` segment by segment, up to `RANGE_CHUNK_BYTES` (4 MiB) at a
    /// time (frames lie back to back), each checked as [`LedgerStore::read`] checks it.
    fn locate_range(&self, range: Range<u64>) -> Result<Box<dyn Located>, StoreError> {
        let end = range.end.min(self.len);
        let mut copied = Copied::default();
        // Archived records are not here: none is handed over.
        let mut seq = range.start.max(self.base);
        let mut buf = Vec::new();
        while seq < end {
            let i = self.segments.partition_point(|s| s.first_seq <= seq).saturating_sub(1);
            let seg = self
                .segments
                .get(i)
                .ok_or_else(|| StoreError::Corrupt(format!("record {seq}: no segment")))?;
            let known = self.offsets_of(i, seq)?;
            let (offsets, base) = (&known.offsets, known.from);
            let index = |seq: u64| usize::try_from(seq - base).unwrap_or(usize::MAX);
            let (from, stop) = (index(seq), index(end).min(offsets.len()));
            let frame_end = |k: usize| offsets.get(k).map_or(seg.end, |&o| u64::from(o));
            let start = frame_end(from);
            let mut to = from + 1;
            while to < stop && frame_end(to + 1) - start <= RANGE_CHUNK_BYTES {
                to += 1;
            }
            let bytes = usize::try_from(frame_end(to).saturating_sub(start)).map_err(|_| {
                StoreError::Corrupt(format!("segment {}: a chunk too large", seg.name))
            })?;
            buf.resize(bytes, 0);
            self.io
                .read_at(&seg.name, start, &mut buf)
                .map_err(|e| StoreError::Io(format!("reading segment {}: {e}", seg.name)))?;
            for k in from..to {
                let seq = base + k as u64;
                let (a, b) = (frame_end(k) - start, frame_end(k + 1) - start);
                let frame = buf.get(a as usize..b as usize).unwrap_or_default();
                check_frame(frame, seq).map_err(|reason| {
                    StoreError::Corrupt(format!(
                        "segment {} offset {} (record {seq}): {reason}",
                        seg.name,
                        frame_end(k)
                    ))
                })?;
                copied.push(seq, frame.get(FRAME_HEADER_LEN..));
            }
            seq = base + to as u64;
        }
        Ok(Box::new(copied))
    }
}

#[cfg(test)]
mod tests;
