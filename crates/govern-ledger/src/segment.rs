//! The durable segment store: append-only segment files in a data directory, one writer,
//! group commit, `fdatasync` before anything counts as durable.
//!
//! # Layout
//!
//! `<dir>/segments/<first seq as 20 zero-padded digits>.seg`. Each segment holds the frames
//! of consecutive receipts, starting with the one its name gives; segments follow each other
//! without gaps. A frame is (big-endian)
//!
//! ```text
//! [u32 payload_len][u32 crc32c][u64 seq][payload]
//! ```
//!
//! where the payload is the receipt's storage record (at most
//! [`govern_receipt::RECORD_LEN_MAX`] bytes) and the CRC32C covers `payload_len ‖ seq ‖
//! payload`, so a damaged length or sequence number is caught as well as damaged payload.
//!
//! # Writing
//!
//! [`LedgerStore::append`] only frames the record into a buffer. A group commit has two
//! phases, so that the `fdatasync` does not hold the ledger's lock:
//! [`LedgerStore::begin_sync`] (under the lock) writes the buffer to the segment files and
//! returns a [`SyncJob`] that `fdatasync`s the last one; the job runs without the lock,
//! while appends go on filling the buffer and reads are served; [`LedgerStore::end_sync`]
//! (under the lock again) records the outcome. [`LedgerStore::sync`] does all three at once.
//! The caller batches appends (by count or time: `crate::commit`) and acknowledges a receipt
//! only after the commit that covers it ends. Before a frame that would take a non-empty
//! segment past [`SegmentOptions::segment_bytes`], a new segment is started; its file is
//! created and the directory `fsync`ed before any data goes into it, and the previous
//! segment is synced before the new one is created, so only the last segment can ever end
//! in a torn write. Any write or sync failure poisons the store: every later append and
//! sync fails, and nothing is retried.
//!
//! # Reading
//!
//! An in-memory index holds one `u32` per record (its frame's offset in its segment: 4 bytes
//! per record, plus about 80 bytes per segment); the segment is found by binary search over
//! the segments' first sequence numbers, and a frame ends where the next one starts (or at
//! the segment's end). A read is one positioned read of the whole frame, whose CRC and
//! sequence number are checked again. Records appended but not yet synced are served from
//! the buffer.
//!
//! # Opening
//!
//! [`SegmentStore::open`] scans every segment in order (reading one whole segment at a time,
//! so opening needs up to [`SEGMENT_BYTES_MAX`] bytes of scratch memory) and checks every
//! frame's length, CRC and sequence number, sequence continuity across segments, and that
//! each file name gives the sequence number of its first frame. A torn final frame (the last
//! segment ends inside a frame's header or before the end its length declares, or it ends in
//! zeros only, as a crash after the file grew but before its data reached the disk leaves it)
//! is truncated away, synced, logged and reported in [`OpenReport`]. Anything else is
//! corruption and opening fails with [`OpenError::Corrupt`], naming segment, offset and the
//! sequence number expected there: a CRC mismatch anywhere (also in a complete last frame),
//! a sequence number out of place, a length beyond `RECORD_LEN_MAX`, a frame cut short in a
//! segment that is not the last, or a frame running past the end of the last segment while a
//! valid next frame follows inside it (a bad frame followed by valid frames is never a torn
//! write).
//!
//! One ambiguity remains: a damaged length field in the very last frame that points past the
//! end of the file looks exactly like a torn write, so that frame is truncated as one. The
//! same holds for a last segment whose tail was zeroed. Signed checkpoints (`crate::checkpoint`)
//! catch the loss of an acknowledged receipt.

mod io;

pub use io::{FsIo, SegmentIo, Syncer};

use std::ops::ControlFlow;
use std::path::Path;

use govern_receipt::RECORD_LEN_MAX;

use crate::ledger::{LedgerStore, StoreError, SyncJob};

/// The default size limit of a segment, and the largest one may be configured to: a new
/// segment starts before a frame that would take a non-empty segment past the limit, so no
/// segment file is ever longer than this.
pub const SEGMENT_BYTES_MAX: u64 = 64 << 20;

/// The bytes of a frame header: payload length, CRC32C, sequence number.
pub const FRAME_HEADER_LEN: usize = 16;

/// The name of the directory, inside the data directory, that holds the segment files.
pub const SEGMENTS_DIR: &str = "segments";

/// The file name suffix of a segment.
pub const SEGMENT_SUFFIX: &str = ".seg";

/// The digits of the sequence number in a segment's file name.
const NAME_DIGITS: usize = 20;

/// How the store is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOptions {
    /// Start a new segment before a frame that would take a non-empty one past this many
    /// bytes; between 1 and [`SEGMENT_BYTES_MAX`] (the default).
    pub segment_bytes: u64,
    /// Open without changing anything (for verification): the directory must exist, a torn
    /// final frame is reported but not truncated, and appends are refused.
    pub read_only: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self { segment_bytes: SEGMENT_BYTES_MAX, read_only: false }
    }
}

/// A torn final frame found, and cut away, when opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The file name of the last segment.
    pub segment: String,
    /// Where the torn frame started (the segment's length after truncation).
    pub offset: u64,
    /// The sequence number the torn frame would have had.
    pub seq: u64,
    /// How many bytes were cut away.
    pub bytes: u64,
}

/// What opening found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files.
    pub segments: usize,
    /// Valid records (the store's length).
    pub records: u64,
    /// The torn final frame that was truncated, if any.
    pub torn: Option<TornTail>,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The options are out of range.
    #[error("invalid segment store options: {0}")]
    InvalidOptions(String),
    /// An I/O operation failed.
    #[error("i/o error while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A file in the segments directory is not named like a segment.
    #[error("unexpected file {0:?} in the segments directory")]
    UnexpectedFile(String),
    /// The segments are damaged: not a torn final write.
    #[error(
        "corrupt segment {segment} at offset {offset} (sequence {seq} expected there): {reason}"
    )]
    Corrupt {
        /// The file name of the segment.
        segment: String,
        /// The byte offset of the bad frame in the segment.
        offset: u64,
        /// The sequence number expected at that offset.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The file name of the segment whose first record is `first_seq`.
#[must_use]
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:0NAME_DIGITS$}{SEGMENT_SUFFIX}")
}

/// The first sequence number a segment file name gives, if it is one.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    /// The sequence number of its first record.
    first_seq: u64,
    /// Its file name.
    name: String,
    /// Its length in bytes, counting frames still in the buffer.
    len: u64,
    /// How many of those bytes are written to the file.
    written: u64,
    /// Whether some written bytes are not yet synced.
    dirty: bool,
    /// Whether the file exists (and its directory entry is durable).
    created: bool,
}

/// The durable segment store (see the module documentation). Dropping it does not sync:
/// records appended since the last [`LedgerStore::sync`] are lost, as they would be in a
/// crash.
pub struct SegmentStore {
    /// The files.
    io: Box<dyn SegmentIo>,
    /// The segment size limit.
    segment_bytes: u64,
    /// Every segment, in order, including ones not yet created.
    segments: Vec<Segment>,
    /// The offset of each record's frame in its segment, by sequence number.
    offsets: Vec<u32>,
    /// Records written and synced.
    synced: u64,
    /// Frames appended but not yet written: the unwritten tails of the last segments, in
    /// order.
    pending: Vec<u8>,
    /// The first write or sync failure, after which the store refuses appends and syncs.
    poisoned: Option<String>,
}

impl std::fmt::Debug for SegmentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentStore")
            .field("io", &self.io)
            .field("segments", &self.segments.len())
            .field("records", &self.offsets.len())
            .field("synced", &self.synced)
            .field("pending_bytes", &self.pending.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug)]
struct Header {
    /// Payload length.
    len: u32,
    /// The stored CRC32C.
    crc: u32,
    /// Sequence number.
    seq: u64,
}

fn parse_header(bytes: &[u8]) -> Option<Header> {
    let len = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
    let crc = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some(Header { len, crc, seq })
}

fn checksum(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&len.to_be_bytes());
    let crc = crc32c::crc32c_append(crc, &seq.to_be_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// Appends the frame of `payload` (at most `RECORD_LEN_MAX` bytes) to `out`.
fn encode_frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StoreError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= RECORD_LEN_MAX)
        .ok_or_else(|| too_long(payload.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&checksum(len, seq, payload).to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

fn too_long(len: usize) -> StoreError {
    StoreError::Corrupt(format!("record of {len} bytes exceeds RECORD_LEN_MAX ({RECORD_LEN_MAX})"))
}

/// Checks a whole frame read back from a segment: its length, CRC and sequence number.
fn check_frame(frame: &[u8], seq: u64) -> Result<(), String> {
    let header = parse_header(frame).ok_or("frame shorter than its header")?;
    let payload = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
    if header.len as usize != payload.len() {
        return Err(format!(
            "frame declares {} payload bytes, holds {}",
            header.len,
            payload.len()
        ));
    }
    if checksum(header.len, header.seq, payload) != header.crc {
        return Err("checksum mismatch".into());
    }
    if header.seq != seq {
        return Err(format!("frame carries sequence {}", header.seq));
    }
    Ok(())
}

/// Where a frame that runs past the end of the last segment is followed by a valid frame of
/// sequence number `seq`: the offset in `bytes` of such a frame, if any.
fn find_frame(bytes: &[u8], seq: u64) -> Option<usize> {
    let last = bytes.len().checked_sub(FRAME_HEADER_LEN)?;
    (0..=last).find(|&at| {
        let Some(rest) = bytes.get(at..) else { return false };
        let Some(h) = parse_header(rest) else { return false };
        h.seq == seq
            && rest
                .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + h.len as usize)
                .is_some_and(|payload| checksum(h.len, h.seq, payload) == h.crc)
    })
}

/// The length of the frame that starts `bytes` (header and payload) and the sequence number
/// it carries, if its header is whole and declares at most `RECORD_LEN_MAX` payload bytes.
/// The CRC is not checked ([`frame_checksum_ok`] does that): the first half of
/// [`scan_segment`]'s check of a frame, for a verifier that checks CRCs on other threads.
pub(crate) fn peek_frame(bytes: &[u8]) -> Option<(usize, u64)> {
    let h = parse_header(bytes)?;
    (h.len as usize <= RECORD_LEN_MAX).then_some((FRAME_HEADER_LEN + h.len as usize, h.seq))
}

/// Whether `frame` (exactly one whole frame) holds the payload its header declares, under
/// the CRC32C its header stores: the second half of [`scan_segment`]'s check of a frame.
pub(crate) fn frame_checksum_ok(frame: &[u8]) -> bool {
    let Some(h) = parse_header(frame) else { return false };
    let payload_whole = frame.len() == FRAME_HEADER_LEN + h.len as usize;
    // [`checksum`] in two calls instead of three: the sequence number and the payload follow
    // each other in the frame.
    let (Some(len), Some(seq_and_payload)) = (frame.get(0..4), frame.get(8..)) else {
        return false;
    };
    payload_whole && crc32c::crc32c_append(crc32c::crc32c(len), seq_and_payload) == h.crc
}

/// How a segment's scan ended well.
enum ScanEnd {
    /// Every byte is a valid frame.
    Clean,
    /// The last segment ends in a torn frame starting at this offset.
    Torn(usize),
}

/// A bad frame: its offset and what is wrong.
type ScanError = (usize, String);

/// Scans the frames of one segment, pushing their offsets; `next` is the sequence number
/// expected first and is advanced past every valid frame.
fn scan_segment(
    bytes: &[u8],
    last: bool,
    next: &mut u64,
    offsets: &mut Vec<u32>,
) -> Result<ScanEnd, ScanError> {
    let mut at = 0usize;
    while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
        let Some(h) = parse_header(rest) else {
            return if last {
                Ok(ScanEnd::Torn(at))
            } else {
                Err((at, "frame header cut short by the end of the segment".into()))
            };
        };
        if h.len as usize > RECORD_LEN_MAX {
            return Err((at, format!("frame length {} exceeds RECORD_LEN_MAX", h.len)));
        }
        let frame_len = FRAME_HEADER_LEN + h.len as usize;
        let Some(payload) = rest.get(FRAME_HEADER_LEN..frame_len) else {
            if !last {
                return Err((at, "frame runs past the end of the segment".into()));
            }
            let after = rest.get(FRAME_HEADER_LEN..).unwrap_or_default();
            if let Some(found) = find_frame(after, *next + 1) {
                let found = at + FRAME_HEADER_LEN + found;
                return Err((
                    at,
                    format!(
                        "frame runs past the end of the segment, but a valid frame follows at \
                         offset {found}"
                    ),
                ));
            }
            return Ok(ScanEnd::Torn(at));
        };
        if checksum(h.len, h.seq, payload) != h.crc {
            if last && rest.iter().all(|&b| b == 0) {
                return Ok(ScanEnd::Torn(at));
            }
            return Err((at, "checksum mismatch".into()));
        }
        if h.seq != *next {
            return Err((at, format!("frame carries sequence {}", h.seq)));
        }
        offsets.push(u32::try_from(at).map_err(|_| (at, "offset beyond u32".to_owned()))?);
        *next += 1;
        at += frame_len;
    }
    Ok(ScanEnd::Clean)
}

/// What [`SegmentStore::open_scanning`] calls with each scanned segment: its first sequence
/// number, its bytes (the buffer, which it may swap) and the offsets of its valid frames.
pub(crate) type OnSegment<'a> = dyn FnMut(u64, &mut Vec<u8>, &[u32]) + 'a;

/// The files of the segment store in data directory `dir`; to open read-only, it must
/// exist.
fn fs_io(dir: &Path, options: SegmentOptions) -> Result<FsIo, OpenError> {
    let segments = dir.join(SEGMENTS_DIR);
    if options.read_only && !segments.is_dir() {
        return Err(OpenError::Io {
            context: format!("no ledger at {}", dir.display()),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    FsIo::new(&segments).map_err(io_error(format!("preparing directory {}", segments.display())))
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OpenError {
    let context = context.into();
    move |source| OpenError::Io { context, source }
}

impl SegmentStore {
    /// Opens (or creates) the store in data directory `dir`: its segments live in
    /// `dir/segments`.
    ///
    /// # Errors
    /// [`OpenError`]; see [`Self::open_with_io`].
    pub fn open(
        dir: impl AsRef<Path>,
        options: SegmentOptions,
    ) -> Result<(Self, OpenReport), OpenError> {
        Self::open_with_io(Box::new(fs_io(dir.as_ref(), options)?), options)
    }

    /// [`Self::open`], handing every segment to `on_segment` right after its scan: its first
    /// sequence number, its bytes (as read, a torn tail included) and the offsets of its valid
    /// frames. The callback may swap the buffer for another (the next segment is read into
    /// whatever it leaves), so a verifier can keep the bytes while the scan goes on: every
    /// segment is read once.
    pub(crate) fn open_scanning(
        dir: &Path,
        options: SegmentOptions,
        on_segment: &mut OnSegment<'_>,
    ) -> Result<(Self, OpenReport), OpenError> {
        Self::open_inner(Box::new(fs_io(dir, options)?), options, on_segment)
    }

    /// Opens the store over `io`: scans and checks every segment, truncates a torn final
    /// frame (logging it and reporting it), and builds the index.
    ///
    /// # Errors
    /// [`OpenError::InvalidOptions`], [`OpenError::Io`], [`OpenError::UnexpectedFile`], or
    /// [`OpenError::Corrupt`] naming the segment, offset and sequence number of the first
    /// bad frame.
    pub fn open_with_io(
        io: Box<dyn SegmentIo>,
        options: SegmentOptions,
    ) -> Result<(Self, OpenReport), OpenError> {
        Self::open_inner(io, options, &mut |_, _, _| {})
    }

    fn open_inner(
        mut io: Box<dyn SegmentIo>,
        options: SegmentOptions,
        on_segment: &mut OnSegment<'_>,
    ) -> Result<(Self, OpenReport), OpenError> {
        if options.segment_bytes == 0 || options.segment_bytes > SEGMENT_BYTES_MAX {
            return Err(OpenError::InvalidOptions(format!(
                "segment_bytes {} is not between 1 and {SEGMENT_BYTES_MAX}",
                options.segment_bytes
            )));
        }
        let mut names = Vec::new();
        for name in io.list().map_err(io_error("listing segments"))? {
            match parse_segment_name(&name) {
                Some(first) => names.push((first, name)),
                None => return Err(OpenError::UnexpectedFile(name)),
            }
        }
        names.sort();
        let count = names.len();
        let mut next = 0u64;
        let mut offsets = Vec::new();
        let mut segments = Vec::with_capacity(count);
        let mut torn = None;
        let mut bytes = Vec::new();
        for (i, (first, name)) in names.into_iter().enumerate() {
            let last = i + 1 == count;
            let corrupt = |offset: u64, seq: u64, reason: String| OpenError::Corrupt {
                segment: name.clone(),
                offset,
                seq,
                reason,
            };
            let len = io.open(&name).map_err(io_error(format!("opening segment {name}")))?;
            if first != next {
                return Err(corrupt(
                    0,
                    next,
                    format!("file name says the segment starts at {first}"),
                ));
            }
            if len > SEGMENT_BYTES_MAX {
                return Err(corrupt(0, next, format!("segment is {len} bytes, over the limit")));
            }
            if len == 0 && !last {
                return Err(corrupt(0, next, "empty segment before the last".into()));
            }
            let len_usize = usize::try_from(len)
                .map_err(|_| corrupt(0, next, "segment too large for memory".into()))?;
            // The read overwrites every byte: only a longer segment needs zeroed room.
            bytes.resize(len_usize, 0);
            io.read_at(&name, 0, &mut bytes)
                .map_err(io_error(format!("reading segment {name}")))?;
            let first_index = offsets.len();
            let end = match scan_segment(&bytes, last, &mut next, &mut offsets) {
                Ok(ScanEnd::Clean) => len,
                Ok(ScanEnd::Torn(at)) => {
                    let at = at as u64;
                    if options.read_only {
                        tracing::warn!(segment = %name, offset = at, seq = next, bytes = len - at, "torn final frame found (read-only: not truncated)");
                    } else {
                        tracing::warn!(segment = %name, offset = at, seq = next, bytes = len - at, "torn final frame truncated");
                        io.truncate(&name, at)
                            .map_err(io_error(format!("truncating segment {name}")))?;
                        io.sync_data(&name).map_err(io_error(format!("syncing segment {name}")))?;
                    }
                    torn = Some(TornTail {
                        segment: name.clone(),
                        offset: at,
                        seq: next,
                        bytes: len - at,
                    });
                    at
                }
                Err((at, reason)) => return Err(corrupt(at as u64, next, reason)),
            };
            on_segment(first, &mut bytes, offsets.get(first_index..).unwrap_or_default());
            segments.push(Segment {
                first_seq: first,
                name,
                len: end,
                written: end,
                dirty: false,
                created: true,
            });
        }
        let report = OpenReport { segments: segments.len(), records: next, torn };
        let store = Self {
            io,
            segment_bytes: options.segment_bytes,
            segments,
            offsets,
            synced: next,
            pending: Vec::new(),
            // A read-only store refuses appends from the start, as a poisoned one does.
            poisoned: options.read_only.then(|| "opened read-only".to_owned()),
        };
        Ok((store, report))
    }

    /// Calls `f` with every synced record, in sequence order, reading each segment file once
    /// (the fast path for verifying a whole ledger). Stops at the first error `f` returns.
    ///
    /// # Errors
    /// [`StoreError`] when a segment cannot be read or a frame is not where the index says;
    /// otherwise `f`'s error.
    pub fn for_each_record<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut bytes = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if seg.written == 0 {
                continue;
            }
            let len = usize::try_from(seg.written)
                .map_err(|_| StoreError::Corrupt(format!("segment {} too large", seg.name)))?;
            bytes.clear();
            bytes.resize(len, 0);
            self.io
                .read_at(&seg.name, 0, &mut bytes)
                .map_err(|e| StoreError::Io(format!("reading segment {}: {e}", seg.name)))?;
            let end_seq =
                self.segments.get(i + 1).map_or(self.synced, |n| n.first_seq.min(self.synced));
            for seq in seg.first_seq..end_seq {
                let at = usize::try_from(seq)
                    .ok()
                    .and_then(|k| self.offsets.get(k))
                    .map(|&o| o as usize)
                    .ok_or_else(|| StoreError::Corrupt(format!("record {seq} is not indexed")))?;
                let header = bytes.get(at..at + FRAME_HEADER_LEN).ok_or_else(|| {
                    StoreError::Corrupt(format!("record {seq}: frame outside its segment"))
                })?;
                let payload_len =
                    u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
                let record = bytes
                    .get(at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + payload_len)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("record {seq}: frame outside its segment"))
                    })?;
                f(seq, record)?;
            }
        }
        Ok(())
    }

    /// Records written and synced: those that survive a crash.
    #[must_use]
    pub fn synced_len(&self) -> u64 {
        self.synced
    }

    /// Segments, counting one started by an append and not yet created by a sync.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Whether a write or sync failure has poisoned the store.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            Some(first) => Err(StoreError::Io(format!(
                "segment store poisoned by an earlier failure ({first}); nothing is retried"
            ))),
            None => Ok(()),
        }
    }

    /// The index of the segment holding record `seq` (which must exist).
    fn segment_of(&self, seq: u64) -> Option<usize> {
        self.segments.partition_point(|s| s.first_seq <= seq).checked_sub(1)
    }

    /// Writes the buffered frames, segment by segment, without syncing the last one. A
    /// segment is created (and the directory synced) only once the segment before it is
    /// synced, so that only the last segment can ever end in a torn write. Returns the
    /// segment left written but not synced, if any.
    fn write_pending(&mut self) -> Result<Option<usize>, String> {
        let Self { io, segments, pending, .. } = self;
        let mut dirty = segments.iter().position(|s| s.dirty);
        for i in 0..segments.len() {
            if !segments.get(i).is_some_and(|s| !s.created || s.written < s.len) {
                continue;
            }
            if segments.get(i).is_some_and(|s| !s.created) {
                if let Some(prev) = dirty.take().and_then(|d| segments.get_mut(d)) {
                    io.sync_data(&prev.name).map_err(|e| format!("syncing {}: {e}", prev.name))?;
                    prev.dirty = false;
                }
            }
            let seg = segments.get_mut(i).ok_or("segment vanished")?;
            if !seg.created {
                io.create(&seg.name).map_err(|e| format!("creating {}: {e}", seg.name))?;
                io.sync_dir().map_err(|e| format!("syncing the directory: {e}"))?;
                seg.created = true;
            }
            let n = usize::try_from(seg.len - seg.written).map_err(|e| e.to_string())?;
            let bytes = pending.get(..n).ok_or("buffer shorter than its segments")?;
            io.append(&seg.name, bytes).map_err(|e| format!("writing {}: {e}", seg.name))?;
            seg.written = seg.len;
            seg.dirty = true;
            dirty = Some(i);
            pending.drain(..n);
        }
        Ok(dirty)
    }

    /// Records the first failure: from now on every append and sync is refused.
    fn poison(&mut self, reason: String) -> StoreError {
        tracing::error!(error = %reason, "segment store poisoned");
        self.poisoned = Some(reason.clone());
        StoreError::Io(reason)
    }
}

/// How many bytes of frames [`LedgerStore::for_each`] reads at once (more when one frame is
/// longer): small enough to stay in the cache between the read and the caller's look.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// Hands the records of segment `seg` whose frames start at `offsets` (consecutive, the first
/// at `seg.first_seq`; the last frame ends at `frames_end`) to `f`, reading as many whole
/// frames at a time as fit in [`READ_CHUNK_BYTES`] into `chunk`.
fn read_segment_chunks(
    io: &dyn SegmentIo,
    seg: &Segment,
    offsets: &[u32],
    frames_end: usize,
    chunk: &mut Vec<u8>,
    f: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, StoreError> {
    let bad = |seq: u64| StoreError::Corrupt(format!("record {seq}: frame outside its segment"));
    // Where frame `j` ends: where the next one starts, the last one at `frames_end`.
    let frame_end = |j: usize| offsets.get(j + 1).map_or(frames_end, |&o| o as usize);
    let mut k = 0;
    while let Some(&start) = offsets.get(k) {
        let start = start as usize;
        // The frames k..m fit in one chunk (frame k at least).
        let fit = offsets
            .get(k..)
            .unwrap_or_default()
            .partition_point(|&o| (o as usize).saturating_sub(start) < READ_CHUNK_BYTES);
        let m = k + fit.max(1);
        let end = frame_end(m - 1);
        let len = end.checked_sub(start).ok_or_else(|| bad(seg.first_seq + k as u64))?;
        chunk.clear();
        chunk.resize(len, 0);
        io.read_at(&seg.name, start as u64, chunk)
            .map_err(|e| StoreError::Io(format!("reading {} at {start}: {e}", seg.name)))?;
        for j in k..m {
            let seq = seg.first_seq + j as u64;
            let at = offsets.get(j).map_or(usize::MAX, |&o| o as usize);
            let frame = at
                .checked_sub(start)
                .zip(frame_end(j).checked_sub(start))
                .and_then(|(from, to)| chunk.get(from..to))
                .ok_or_else(|| bad(seq))?;
            if let Err(reason) = check_frame(frame, seq) {
                return Err(StoreError::Corrupt(format!(
                    "segment {} offset {at}, record {seq}: {reason}",
                    seg.name
                )));
            }
            if f(seq, frame.get(FRAME_HEADER_LEN..).unwrap_or_default()).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        k = m;
    }
    Ok(ControlFlow::Continue(()))
}

impl LedgerStore for SegmentStore {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.check_poisoned()?;
        if seq != self.len() {
            return Err(StoreError::OutOfOrder { expected: self.len(), found: seq });
        }
        if record.len() > RECORD_LEN_MAX {
            return Err(too_long(record.len()));
        }
        let frame_len = (FRAME_HEADER_LEN + record.len()) as u64;
        let roll = self
            .segments
            .last()
            .is_none_or(|s| s.len > 0 && s.len + frame_len > self.segment_bytes);
        if roll {
            let name = segment_name(seq);
            self.segments.push(Segment {
                first_seq: seq,
                name,
                len: 0,
                written: 0,
                dirty: false,
                created: false,
            });
        }
        let seg = self.segments.last_mut().ok_or_else(|| StoreError::Io("no segment".into()))?;
        let offset = u32::try_from(seg.len)
            .map_err(|_| StoreError::Io(format!("segment {} outgrew u32 offsets", seg.name)))?;
        encode_frame(seq, record, &mut self.pending)?;
        seg.len += frame_len;
        self.offsets.push(offset);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let job = self.begin_sync()?;
        let upto = job.upto();
        let result = job.run();
        self.end_sync(upto, result)
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn begin_sync(&mut self) -> Result<SyncJob, StoreError> {
        self.check_poisoned()?;
        let upto = self.len();
        let dirty = match self.write_pending() {
            Ok(dirty) => dirty,
            Err(reason) => return Err(self.poison(reason)),
        };
        let Some(seg) = dirty.and_then(|d| self.segments.get(d)) else {
            return Ok(SyncJob::done(upto));
        };
        let name = seg.name.clone();
        match self.io.syncer(&name) {
            Ok(sync) => Ok(SyncJob::new(upto, move || {
                sync().map_err(|e| StoreError::Io(format!("syncing {name}: {e}")))
            })),
            Err(e) => Err(self.poison(format!("syncing {name}: {e}"))),
        }
    }

    fn end_sync(&mut self, upto: u64, result: Result<(), StoreError>) -> Result<(), StoreError> {
        if let Err(e) = result {
            let reason = match e {
                StoreError::Io(reason) => reason,
                other => other.to_string(),
            };
            return Err(self.poison(reason));
        }
        self.check_poisoned()?;
        // Commits do not overlap: nothing was written since this one began.
        for seg in &mut self.segments {
            seg.dirty = false;
        }
        self.synced = self.synced.max(upto);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * std::mem::size_of::<u32>()
            + self.pending.capacity()
            + self
                .segments
                .iter()
                .map(|s| std::mem::size_of::<Segment>() + s.name.capacity())
                .sum::<usize>()
    }

    /// Reads the synced records a chunk of frames at a time (about `READ_CHUNK_BYTES` per
    /// positioned read, so the bytes are still in the cache when `f` looks at them), checking
    /// each frame's length, CRC32C and sequence number again as [`Self::read`] does; then
    /// any records not yet synced, one by one.
    fn for_each(&self, f: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        let mut chunk = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            let end_seq =
                self.segments.get(i + 1).map_or(self.synced, |n| n.first_seq.min(self.synced));
            let (Ok(first), Ok(end)) = (usize::try_from(seg.first_seq), usize::try_from(end_seq))
            else {
                return Err(StoreError::Corrupt(format!("segment {}: too many records", seg.name)));
            };
            let offsets = self.offsets.get(first..end.max(first)).ok_or_else(|| {
                StoreError::Corrupt(format!("segment {}: records not indexed", seg.name))
            })?;
            // The last frame ends where the next record's starts, if that is in this segment.
            let next_here = end_seq < self.len()
                && self.segments.get(i + 1).is_none_or(|n| end_seq < n.first_seq);
            let frames_end = match self.offsets.get(end).filter(|_| next_here) {
                Some(&o) => u64::from(o),
                None => seg.written,
            };
            let frames_end = usize::try_from(frames_end).unwrap_or(usize::MAX);
            if read_segment_chunks(&*self.io, seg, offsets, frames_end, &mut chunk, f)?.is_break() {
                return Ok(());
            }
        }
        let mut record = Vec::new();
        for seq in self.synced..self.len() {
            if !self.read(seq, &mut record)? || f(seq, &record).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        out.clear();
        let Some(&start) = usize::try_from(seq).ok().and_then(|i| self.offsets.get(i)) else {
            return Ok(false);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("record {seq}: {what}"));
        let i = self.segment_of(seq).ok_or_else(|| corrupt("no segment holds it"))?;
        let seg = self.segments.get(i).ok_or_else(|| corrupt("no segment holds it"))?;
        let next_in_segment = self
            .segments
            .get(i + 1)
            .is_none_or(|n| seq + 1 < n.first_seq)
            .then(|| usize::try_from(seq + 1).ok().and_then(|j| self.offsets.get(j)))
            .flatten();
        let start = u64::from(start);
        let end = next_in_segment.map_or(seg.len, |&e| u64::from(e));
        let frame_len =
            usize::try_from(end.saturating_sub(start)).map_err(|_| corrupt("frame too long"))?;
        if start >= seg.written {
            // Still in the buffer: after the unwritten tails of the segments before it.
            let before: u64 =
                self.segments.get(..i).unwrap_or_default().iter().map(|s| s.len - s.written).sum();
            let at = usize::try_from(before + start - seg.written)
                .map_err(|_| corrupt("buffer offset too large"))?;
            let payload = self
                .pending
                .get(at + FRAME_HEADER_LEN..at + frame_len)
                .ok_or_else(|| corrupt("outside the buffer"))?;
            out.extend_from_slice(payload);
            return Ok(true);
        }
        out.resize(frame_len, 0);
        self.io
            .read_at(&seg.name, start, out)
            .map_err(|e| StoreError::Io(format!("reading {} at {start}: {e}", seg.name)))?;
        if let Err(reason) = check_frame(out, seq) {
            out.clear();
            return Err(StoreError::Corrupt(format!(
                "segment {} offset {start}, record {seq}: {reason}",
                seg.name
            )));
        }
        out.drain(..FRAME_HEADER_LEN);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
