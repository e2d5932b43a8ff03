//! The segment store's read side: records located under the ledger's lock
//! ([`LedgerStore::locate`](crate::LedgerStore::locate), `locate_range`), read after it is
//! released through the store's [`SegmentRead`] (read-only handles of its own), while the
//! writer goes on appending. A frame written to its file is read there, and checked again as
//! [`SegmentStore::read`](super::SegmentStore) checks it (checksums, length, sequence
//! number); a record still in the writer's buffer was copied out under the lock.

use std::sync::Arc;

use super::pages::{PagedSegment, Pages};
use super::{FRAME_HEADER_LEN, SegmentRead, check_frame, peek_frame};
use crate::ledger::{Copied, Located, LocatedRecord, StoreError};

/// Frames read from a file in one positioned read: up to this many bytes (one frame at
/// least). Small in tests, so that frames straddle windows.
const WINDOW_BYTES: u64 = if cfg!(test) { 700 } else { 1 << 20 };

/// Located frames of one segment at most this many bytes apart are read in one positioned
/// read (the bytes between them too): a tenant's receipts lie a few frames apart.
const GAP_BYTES: u64 = 4 << 10;

/// Where a located record is.
#[derive(Clone, Copy, Debug)]
pub(super) enum Place {
    /// A frame in a file: the `name`th file pinned, the frame's offset and length.
    File { name: usize, start: u64, len: u64 },
    /// The `i`th record copied (not yet written, or absent).
    Copied(usize),
    /// A frame of the `i`th paged segment, whose page was not cached when it was located:
    /// found in the page when it is read.
    Paged(usize),
}

/// Bytes of one file read in one positioned read.
#[derive(Debug, Default)]
struct Window {
    bytes: Vec<u8>,
    /// The file (an index into the pinned names) and the offset of the first byte, once read.
    at: Option<(usize, u64)>,
}

impl Window {
    /// The bytes `start..start + len` of file `name`, if the window holds them.
    fn get(&self, name: usize, start: u64, len: u64) -> Option<&[u8]> {
        let (file, first) = self.at?;
        let from = usize::try_from(start.checked_sub(first)?).ok()?;
        let len = usize::try_from(len).ok()?;
        (file == name).then(|| self.bytes.get(from..from.checked_add(len)?)).flatten()
    }

    /// Reads `len` bytes of file `name` (the `file`th pinned) from `start`.
    fn fill(
        &mut self,
        reader: &dyn SegmentRead,
        (file, name): (usize, &str),
        start: u64,
        len: u64,
    ) -> Result<(), StoreError> {
        self.at = None;
        let len = usize::try_from(len).map_err(|_| StoreError::Io("read too long".into()))?;
        self.bytes.clear();
        self.bytes.resize(len, 0);
        reader
            .read_at(name, start, &mut self.bytes)
            .map_err(|e| StoreError::Io(format!("reading {name} at {start}: {e}")))?;
        self.at = Some((file, start));
        Ok(())
    }
}

/// Records located by sequence number ([`LedgerStore::locate`](crate::LedgerStore::locate)).
#[derive(Debug)]
pub(super) struct SegmentLocated {
    reader: Arc<dyn SegmentRead>,
    /// The files holding located frames, each once.
    names: Vec<String>,
    /// Records not written yet (or absent), copied.
    copied: Copied,
    /// The segments of records located as [`Place::Paged`], and their pages.
    paged: Vec<(PagedSegment, Arc<Pages>)>,
    /// Each record, in order.
    records: Vec<(u64, Place)>,
    /// The next record to hand over.
    next: usize,
    window: Window,
}

impl SegmentLocated {
    pub(super) fn new(reader: Arc<dyn SegmentRead>) -> Self {
        Self {
            reader,
            names: Vec::new(),
            copied: Copied::default(),
            paged: Vec::new(),
            records: Vec::new(),
            next: 0,
            window: Window::default(),
        }
    }

    /// Adds record `seq`, whose frame is at `start` (`len` bytes) in file `name`.
    pub(super) fn push_frame(&mut self, seq: u64, name: &str, start: u64, len: u64) {
        if self.names.last().is_none_or(|last| last != name) {
            self.names.push(name.to_owned());
        }
        self.records.push((seq, Place::File { name: self.names.len() - 1, start, len }));
    }

    /// Adds record `seq`, a frame of `segment`, whose offsets are paged in `pages`.
    pub(super) fn push_paged(&mut self, seq: u64, segment: PagedSegment, pages: Arc<Pages>) {
        if self.paged.last().is_none_or(|(last, _)| *last != segment) {
            self.paged.push((segment, pages));
        }
        self.records.push((seq, Place::Paged(self.paged.len() - 1)));
    }

    /// Finds the frames of the records located in paged segments from record `i` on in
    /// their pages (each page loaded once, outside the ledger's lock).
    fn resolve(&mut self, i: usize) -> Result<(), StoreError> {
        let mut page: Option<(usize, Arc<[u32]>)> = None;
        let Self { records, paged, names, .. } = self;
        for (seq, place) in records.get_mut(i..).unwrap_or_default() {
            let Place::Paged(p) = *place else { continue };
            let Some((segment, pages)) = paged.get(p) else {
                return Err(StoreError::Corrupt(format!("record {seq}: no paged segment")));
            };
            let offsets = match &page {
                Some((q, offsets)) if *q == p => Arc::clone(offsets),
                _ => {
                    let offsets = pages.offsets(segment)?;
                    page = Some((p, Arc::clone(&offsets)));
                    offsets
                }
            };
            let (start, len) = segment.frame(&offsets, *seq)?;
            let name = match names.iter().position(|n| *n == segment.name) {
                Some(name) => name,
                None => {
                    names.push(segment.name.clone());
                    names.len() - 1
                }
            };
            *place = Place::File { name, start, len };
        }
        Ok(())
    }

    /// Adds record `seq`: a copy of its bytes, or absent.
    pub(super) fn push_copy(&mut self, seq: u64, record: Option<&[u8]>) {
        self.records.push((seq, Place::Copied(self.copied.len())));
        self.copied.push(seq, record);
    }

    /// Reads the frames of record `i` and of the records after it in the same file, each
    /// close to the one before ([`GAP_BYTES`]), up to [`WINDOW_BYTES`] in all.
    fn fill(&mut self, i: usize) -> Result<(), StoreError> {
        let Some(&(_, Place::File { name, start, len })) = self.records.get(i) else {
            return Ok(());
        };
        let mut end = start + len;
        for &(_, place) in self.records.get(i + 1..).unwrap_or_default() {
            match place {
                Place::File { name: n, start: s, len: l }
                    if n == name
                        && s >= end
                        && s - end <= GAP_BYTES
                        && s + l - start <= WINDOW_BYTES =>
                {
                    end = s + l;
                }
                _ => break,
            }
        }
        let file = self.names.get(name).map_or("", String::as_str);
        self.window.fill(&*self.reader, (name, file), start, end - start)
    }
}

impl Located for SegmentLocated {
    fn next_record(&mut self) -> Option<LocatedRecord<'_>> {
        let i = self.next;
        let &(seq, mut place) = self.records.get(i)?;
        self.next += 1;
        if let Place::Paged(_) = place {
            if let Err(e) = self.resolve(i) {
                return Some((seq, Err(e)));
            }
            place = self.records.get(i)?.1;
        }
        let (name, start, len) = match place {
            Place::Copied(c) => return Some((seq, Ok(self.copied.get(c).and_then(|(_, r)| r)))),
            Place::File { name, start, len } => (name, start, len),
            Place::Paged(_) => return Some((seq, Err(StoreError::Corrupt("unresolved".into())))),
        };
        if self.window.get(name, start, len).is_none()
            && let Err(e) = self.fill(i)
        {
            return Some((seq, Err(e)));
        }
        let file = self.names.get(name).map_or("", String::as_str);
        let record = payload(self.window.get(name, start, len), seq);
        Some((seq, record.map(Some).map_err(|reason| corrupt(file, start, seq, &reason))))
    }
}

/// The payload of `frame`, the frame of record `seq` as read, checked; or what is wrong.
fn payload(frame: Option<&[u8]>, seq: u64) -> Result<&[u8], String> {
    let frame = frame.ok_or("frame outside what was read")?;
    check_frame(frame, seq)?;
    Ok(frame.get(FRAME_HEADER_LEN..).unwrap_or_default())
}

/// A frame that does not check, named as [`SegmentStore::read`](super::SegmentStore) names it.
fn corrupt(name: &str, start: u64, seq: u64, reason: &str) -> StoreError {
    StoreError::Corrupt(format!("segment {name} offset {start}, record {seq}: {reason}"))
}

/// The frames of consecutive records written to one file, from the offset of the first.
#[derive(Debug)]
pub(super) struct Stretch {
    /// The file.
    pub(super) name: String,
    /// The first record.
    pub(super) seq: u64,
    /// Its frame's offset.
    pub(super) at: At,
    /// The record after the last.
    pub(super) end_seq: u64,
    /// Where the file's written frames end: no read goes past it.
    pub(super) frames_end: u64,
}

/// Where a stretch's first frame starts.
#[derive(Debug)]
pub(super) enum At {
    /// At this offset.
    Known(u64),
    /// In a paged segment whose page was not cached when the stretch was located: found in
    /// the page when the stretch is read.
    Paged(PagedSegment, Arc<Pages>),
}

impl At {
    /// The offset of record `seq`'s frame.
    fn offset(&self, seq: u64) -> Result<u64, StoreError> {
        match self {
            Self::Known(at) => Ok(*at),
            Self::Paged(segment, pages) => Ok(segment.frame(&pages.offsets(segment)?, seq)?.0),
        }
    }
}

/// A range of records located ([`LedgerStore::locate_range`](crate::LedgerStore)): the
/// written ones as stretches of frames, each read in order, frame after frame, from its first
/// frame's offset (each frame's header gives where the next starts); the others copied.
#[derive(Debug)]
pub(super) struct SegmentRange {
    reader: Arc<dyn SegmentRead>,
    stretches: Vec<Stretch>,
    /// The records after the stretches, copied.
    copied: Copied,
    /// The stretch being read.
    stretch: usize,
    /// The next record, and the offset of its frame when it is in the stretch (`None`:
    /// the stretch's first, not yet found).
    seq: u64,
    at: Option<u64>,
    /// The next copied record.
    copied_next: usize,
    window: Window,
    /// Set at the first error: nothing more is handed over.
    failed: bool,
}

impl SegmentRange {
    pub(super) fn new(
        reader: Arc<dyn SegmentRead>,
        stretches: Vec<Stretch>,
        copied: Copied,
    ) -> Self {
        let seq = stretches.first().map_or(0, |s| s.seq);
        Self {
            reader,
            stretches,
            copied,
            stretch: 0,
            seq,
            at: None,
            copied_next: 0,
            window: Window::default(),
            failed: false,
        }
    }

    /// The next frame of the stretch being read: its offset and length, read into the window.
    fn frame(&mut self) -> Result<(u64, u64), StoreError> {
        let Some(stretch) = self.stretches.get(self.stretch) else {
            return Err(StoreError::Corrupt("no stretch".into()));
        };
        let at = match self.at {
            Some(at) => at,
            None => stretch.at.offset(self.seq)?,
        };
        let (seq, file) = (self.seq, (self.stretch, stretch.name.as_str()));
        let corrupt = |reason: &str| corrupt(&stretch.name, at, seq, reason);
        let left = stretch.frames_end.saturating_sub(at);
        let header = FRAME_HEADER_LEN as u64;
        if left < header {
            return Err(corrupt("frame header past the written end of the segment"));
        }
        if self.window.get(self.stretch, at, header).is_none() {
            self.window.fill(&*self.reader, file, at, left.min(WINDOW_BYTES))?;
        }
        let (len, _) = self
            .window
            .get(self.stretch, at, header)
            .and_then(peek_frame)
            .ok_or_else(|| corrupt("frame length beyond RECORD_LEN_MAX"))?;
        let len = len as u64;
        if left < len {
            return Err(corrupt("frame runs past the written end of the segment"));
        }
        if self.window.get(self.stretch, at, len).is_none() {
            self.window.fill(&*self.reader, file, at, left.min(WINDOW_BYTES.max(len)))?;
        }
        Ok((at, len))
    }
}

impl Located for SegmentRange {
    fn next_record(&mut self) -> Option<LocatedRecord<'_>> {
        if self.failed {
            return None;
        }
        while self.stretches.get(self.stretch).is_some_and(|s| self.seq >= s.end_seq) {
            self.stretch += 1;
            if let Some(next) = self.stretches.get(self.stretch) {
                (self.seq, self.at) = (next.seq, None);
            }
        }
        if self.stretch >= self.stretches.len() {
            let (seq, record) = self.copied.get(self.copied_next)?;
            self.copied_next += 1;
            return Some((seq, Ok(record)));
        }
        let seq = self.seq;
        let (start, len) = match self.frame() {
            Ok(frame) => frame,
            Err(e) => {
                self.failed = true;
                return Some((seq, Err(e)));
            }
        };
        self.seq += 1;
        self.at = Some(start + len);
        match payload(self.window.get(self.stretch, start, len), seq) {
            Ok(record) => Some((seq, Ok(Some(record)))),
            Err(reason) => {
                self.failed = true;
                let name = self.stretches.get(self.stretch).map_or("", |s| s.name.as_str());
                Some((seq, Err(corrupt(name, start, seq, &reason))))
            }
        }
    }
}
