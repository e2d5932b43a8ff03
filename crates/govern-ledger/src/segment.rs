//! The durable segment store: append-only segment files in a data directory, one writer,
//! group commit, `fdatasync` before anything counts as durable.
//!
//! # Layout
//!
//! `<dir>/LOCK` is the writer's lock ([`crate::lock`]); the segments are
//! `<dir>/segments/<first seq as 20 zero-padded digits>.seg`. Each segment holds the frames
//! of consecutive receipts, starting with the one its name gives; segments follow each other
//! without gaps. A segment file starts with a [`SEGMENT_HEADER_LEN`]-byte header
//!
//! ```text
//! ["govern.segment" (14 ASCII bytes)][u16 format version = 2][u64 first seq]
//! ```
//!
//! then frames, each (big-endian)
//!
//! ```text
//! [u32 payload_len][u64 seq][u32 payload_crc][u32 header_crc][payload]
//! ```
//!
//! where the payload is the receipt's storage record (at most
//! [`govern_receipt::RECORD_LEN_MAX`] bytes), `payload_crc` is the CRC32C of the payload and
//! `header_crc` the CRC32C of the header's first 16 bytes. The two checksums are what tells a
//! damaged frame from a torn one (below). `docs/receipts.md` specifies the files with a hex
//! example, for verifiers written from the docs alone.
//!
//! Beside each **sealed** segment (every one but the last: the store has started the next)
//! lies its index file `<dir>/segments/<same 20 digits>.idx` (module `idx`), derived data:
//!
//! ```text
//! ["govern.segindex" (15 ASCII bytes)][u16 version = 1][u64 first seq][u64 frames n]
//! [u64 the segment file's length][n × u32 frame offsets][u32 CRC32C of every byte before it]
//! ```
//!
//! big-endian too. It is written atomically (`<name>.idx.tmp`, synced, renamed; the rename
//! becomes durable with the directory sync of the next segment's creation), so a crash leaves
//! no index or a whole one, and perhaps a `.idx.tmp`, which a writer removes when it opens.
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
//! only after the commit that covers it ends. Before a frame that would take a segment that
//! holds frames past [`SegmentOptions::segment_bytes`], a new segment is started; its file is
//! created and the directory `fsync`ed before any data goes into it, and the previous
//! segment is synced before the new one is created, so only the last segment can ever end
//! in a torn write. A segment is sealed when the next is created, and by then it is synced:
//! the commit that creates the next writes the sealed segment's index in its second phase,
//! without the lock, after the commit's own sync ([`SegmentIo::replacer`]). A failure to write
//! an index is logged and nothing more: an open scans a segment without one, and a writer's
//! open writes it. Any write or sync failure poisons the store: every later append and
//! sync fails, and nothing is retried. [`SegmentStore::open`] takes the data directory's lock
//! before it reads or writes anything and holds it until the store is dropped or closed
//! ([`LedgerStore::close`]): a second writer is refused at once, naming the holder.
//!
//! # Reading
//!
//! An in-memory index holds one `u32` per record (its frame's offset in its segment: 4 bytes
//! per record, plus about 80 bytes per segment); the segment is found by binary search over
//! the segments' first sequence numbers, and a frame ends where the next one starts (or at
//! the segment's end). A read is one positioned read of the whole frame, whose checksums and
//! sequence number are checked again. Records appended but not yet written are served from
//! the buffer.
//!
//! Reads beside the writer ([`LedgerStore::locate`], `locate_range`: the ledger's reads)
//! copy, under the ledger's lock, only the positions (segment, offset, length) of frames
//! written to their files and the bytes of records still in the buffer; the frames are read
//! after the lock is released, through the store's [`SegmentRead`] (read-only file handles
//! of its own, [`SegmentIo::reader`]), neighbouring frames in one positioned read, and
//! checked as a read checks them. A verification's range copies only each segment's name and
//! where its written frames end, and reads the frames in order, each header giving where the
//! next starts.
//!
//! # Opening, and the torn-tail rule
//!
//! [`SegmentStore::open`] scans every segment in order (reading one whole segment at a time,
//! so opening needs up to [`SEGMENT_BYTES_MAX`] bytes of scratch memory) and checks every
//! segment header, every frame's checksums, length and sequence number, sequence continuity
//! across segments, and that each file name gives the sequence number of its first frame.
//!
//! Recovery removes only what provably was never acknowledged. A receipt is acknowledged only
//! after the `fdatasync` that covers its whole frame, so a frame the file does not hold whole
//! was never acknowledged. In the **last** segment, and only there, the scan stops at a
//! **torn tail**, truncated away (synced, logged, reported in [`OpenReport`]), when from the
//! start of a frame (or of the file) to the end of the file there is:
//!
//! - less than a whole frame header, or less than a whole segment header that is a prefix of
//!   the expected one ([`TornCause::Cut`]);
//! - a whole frame header whose `header_crc` holds and whose payload runs past the end of the
//!   file ([`TornCause::Cut`]);
//! - nothing but zero bytes, however many ([`TornCause::Zeros`]): what a crash leaves when the
//!   file's new size reached the disk before its data (XFS, ext4 with `data=writeback`). No
//!   damage short of the medium zeroing whole acknowledged frames produces it, and a signed
//!   checkpoint would catch that.
//!
//! Everything else is corruption and opening fails with [`OpenError::Corrupt`], naming
//! segment, offset and the sequence number expected there: a header checksum that does not
//! hold (so a damaged length can never pass for a cut frame), a payload checksum that does
//! not hold in a frame the file holds whole (also the last one), a sequence number out of
//! place, a length beyond `RECORD_LEN_MAX`, a damaged segment header, and any frame cut short
//! in a segment that is not the last. A torn write that left a zero-filled hole *inside* the
//! last frame is reported as corruption too: the store cannot tell it from damage, so it asks
//! an operator rather than guess (`docs/runtime-semantics.md`).
//!
//! [`SegmentStore::open_indexed`] (and, crate-internal, `open_scanning_from` with a bound)
//! takes the frame offsets of a sealed segment from its index instead, without reading the
//! segment, when the index is valid: checksum, tag, version, the segment's first sequence
//! number (its name's) and length (the file's), at least one frame, and as many as the next
//! segment's name implies, the first at [`SEGMENT_HEADER_LEN`], each at least a frame header
//! and at most a longest frame after the one before, the last leaving one frame to the end of
//! the file. Such a segment's frames are checked when they are read (every read path checks
//! each frame's checksums, length and sequence number: [`LedgerStore::read`], `locate`,
//! `locate_range`, `for_each`, [`SegmentStore::for_each_record`]) and by `govern verify`,
//! which scans everything; not at open. A sealed segment without a valid index is scanned as
//! above (logged: info when the index is missing, warn when it is invalid), and a writer then
//! writes its index; a writer's full scan also rewrites any index that differs from what the
//! scan found. The last segment is always scanned, whatever index lies beside it.
//!
//! Opening read-only (verification, `govern receipts`) changes nothing and takes no lock; it
//! reports a torn tail without truncating it and says, in [`OpenReport::writer`], whether a
//! writer holds the directory (then the tail is most likely a frame being written).

mod fault;
mod idx;
mod io;
mod lazy;
mod pages;
mod read;

pub use fault::{FaultIo, ReadHook};
pub use idx::{
    INDEX_BYTES_MAX, INDEX_FORMAT_VERSION, INDEX_HEADER_LEN, INDEX_MAGIC, INDEX_SUFFIX,
    INDEX_TMP_SUFFIX, SegmentsEntry, index_name, is_index_file, segments_entry,
};
pub use io::{FsIo, Replacer, SegmentIo, SegmentRead, Syncer};
pub use lazy::SegmentReader;
pub use pages::OFFSET_PAGES_BUDGET_DEFAULT;
use pages::{PagedSegment, Pages};

use std::ops::{ControlFlow, Range};
use std::path::Path;
use std::sync::Arc;

use govern_receipt::RECORD_LEN_MAX;

use crate::ledger::{Copied, LedgerStore, Located, SealedSegment, StoreError, SyncJob};
use crate::lock::{self, DirLock, LockError, Writer};

/// The default size limit of a segment, and the largest one may be configured to: a new
/// segment starts before a frame that would take a non-empty segment past the limit, so no
/// segment file is ever longer than this.
pub const SEGMENT_BYTES_MAX: u64 = 64 << 20;

/// The bytes of a frame header: payload length, sequence number, payload CRC32C, header
/// CRC32C.
pub const FRAME_HEADER_LEN: usize = 20;

/// The bytes of a frame header that its own checksum covers (all but that checksum).
const FRAME_HEADER_CHECKED: usize = 16;

/// The tag a segment file starts with.
pub const SEGMENT_MAGIC: &[u8; 14] = b"govern.segment";

/// The segment format this build writes and reads. (Format 1 had no segment header and one
/// CRC over the whole frame, so a damaged length could pass for a torn write.)
pub const SEGMENT_FORMAT_VERSION: u16 = 2;

/// The bytes of a segment header: [`SEGMENT_MAGIC`], the format version (u16), the first
/// sequence number (u64), big-endian.
pub const SEGMENT_HEADER_LEN: usize = 24;

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
    /// Open without changing anything (for verification): the directory must exist, no lock
    /// is taken, a torn final frame is reported but not truncated, and appends are refused.
    pub read_only: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self { segment_bytes: SEGMENT_BYTES_MAX, read_only: false }
    }
}

/// What a torn tail looks like (see the module documentation for the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornCause {
    /// The file ends inside a frame (or the segment header) whose bytes so far are intact:
    /// the write was cut short.
    Cut,
    /// The file ends in zero bytes from a frame boundary (or from its start) on: it grew
    /// before its data reached the disk.
    Zeros,
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
    /// What the tail looked like.
    pub cause: TornCause,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.cause {
            TornCause::Cut => "a frame cut short",
            TornCause::Zeros => "zero bytes",
        };
        write!(
            f,
            "{} bytes at the end of segment {} from offset {} ({what}; receipt {} would start there)",
            self.bytes, self.segment, self.offset, self.seq
        )
    }
}

/// What opening found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files.
    pub segments: usize,
    /// Valid records (the store's length).
    pub records: u64,
    /// Sealed segments whose frame offsets were taken from their index file, unread
    /// ([`SegmentStore::open_indexed`]); always 0 for [`SegmentStore::open`].
    pub indexed: usize,
    /// The torn final frame that was truncated (reported only, when read-only), if any.
    pub torn: Option<TornTail>,
    /// Opened read-only: the writer that held the data directory's lock at the time, if one
    /// did (its segments were read as far as it had written them). Always `None` for a
    /// writer, which holds the lock itself.
    pub writer: Option<Writer>,
    /// Opened by [`crate::Ledger::open_dir`] from a snapshot: the records it covered (only
    /// those after it were read and checked). `None` from the store alone, or without a
    /// usable snapshot.
    pub snapshot: Option<u64>,
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
    /// Another writer holds the data directory (or its lock could not be taken).
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The archive manifest is damaged: without it nothing says where the segments start.
    #[error(transparent)]
    Archive(crate::archive::ArchiveError),
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
    /// Whether its index file is written (or was tried, or need not be: read-only), once
    /// it is sealed.
    indexed: bool,
}

impl Segment {
    /// A segment found when opening, `len` bytes long, all of them written and synced;
    /// `indexed` if it is sealed (its index is written, tried, or left to a writer).
    fn opened(first_seq: u64, name: String, len: u64, indexed: bool) -> Self {
        Self { first_seq, name, len, written: len, dirty: false, created: true, indexed }
    }
}

/// Why a store takes no (more) appends.
#[derive(Debug)]
enum Refusal {
    /// Opened read-only.
    ReadOnly,
    /// Closed by its owner ([`LedgerStore::close`]).
    Closed,
    /// The first write or sync failure: nothing is retried.
    Failed(String),
}

/// The durable segment store (see the module documentation). Dropping it does not sync:
/// records appended since the last [`LedgerStore::sync`] are lost, as they would be in a
/// crash.
pub struct SegmentStore {
    /// The files.
    io: Box<dyn SegmentIo>,
    /// Their read side, for reads without the ledger's lock.
    reader: Arc<dyn SegmentRead>,
    /// The segment size limit.
    segment_bytes: u64,
    /// Every segment, in order, including ones not yet created.
    segments: Vec<Segment>,
    /// The first record in the store: 0, or the archive boundary when the records before
    /// it were archived (`crate::archive`).
    base: u64,
    /// The first record whose frame offset is resident (the first of a segment): the
    /// offsets of the sealed segments before it are paged (`pages`).
    resident_from: u64,
    /// The offset of each record's frame in its segment, by sequence number minus
    /// `resident_from`.
    offsets: Vec<u32>,
    /// The offsets of the sealed segments below `resident_from`, read back on demand and
    /// cached within a budget.
    pages: Arc<Pages>,
    /// Records written and synced.
    synced: u64,
    /// Frames appended but not yet written: the unwritten tails of the last segments, in
    /// order.
    pending: Vec<u8>,
    /// Why the store refuses appends and syncs, once it does.
    refusal: Option<Refusal>,
    /// The data directory's lock, held by a writer on the real filesystem until the store is
    /// dropped or closed.
    lock: Option<DirLock>,
}

impl std::fmt::Debug for SegmentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentStore")
            .field("io", &self.io)
            .field("segments", &self.segments.len())
            .field("records", &(self.len() - self.base))
            .field("resident_from", &self.resident_from)
            .field("synced", &self.synced)
            .field("pending_bytes", &self.pending.len())
            .field("refusal", &self.refusal)
            .field("locked", &self.lock.as_ref().map(DirLock::dir))
            .finish()
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug)]
struct Header {
    /// Payload length.
    len: u32,
    /// Sequence number.
    seq: u64,
    /// The stored CRC32C of the payload.
    payload_crc: u32,
    /// Whether the header's own CRC32C holds.
    intact: bool,
}

/// The header at the start of `bytes`, if they hold a whole one.
fn parse_header(bytes: &[u8]) -> Option<Header> {
    let header = bytes.get(..FRAME_HEADER_LEN)?;
    let (checked, crc) = header.split_at(FRAME_HEADER_CHECKED);
    let be32 = |b: &[u8]| b.try_into().ok().map(u32::from_be_bytes);
    Some(Header {
        len: be32(checked.get(0..4)?)?,
        seq: u64::from_be_bytes(checked.get(4..12)?.try_into().ok()?),
        payload_crc: be32(checked.get(12..16)?)?,
        intact: be32(crc)? == crc32c::crc32c(checked),
    })
}

/// The segment header of the segment whose first record is `first_seq`.
#[must_use]
pub fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    let (magic, rest) = out.split_at_mut(SEGMENT_MAGIC.len());
    magic.copy_from_slice(SEGMENT_MAGIC);
    let (version, first) = rest.split_at_mut(2);
    version.copy_from_slice(&SEGMENT_FORMAT_VERSION.to_be_bytes());
    first.copy_from_slice(&first_seq.to_be_bytes());
    out
}

/// Appends the frame of `payload` (at most `RECORD_LEN_MAX` bytes) to `out`.
fn encode_frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StoreError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= RECORD_LEN_MAX)
        .ok_or_else(|| too_long(payload.len()))?;
    let mut header = [0u8; FRAME_HEADER_CHECKED];
    header[0..4].copy_from_slice(&len.to_be_bytes());
    header[4..12].copy_from_slice(&seq.to_be_bytes());
    header[12..16].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&crc32c::crc32c(&header).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

fn too_long(len: usize) -> StoreError {
    StoreError::Corrupt(format!("record of {len} bytes exceeds RECORD_LEN_MAX ({RECORD_LEN_MAX})"))
}

/// Checks a whole frame read back from a segment: its checksums, length and sequence number.
fn check_frame(frame: &[u8], seq: u64) -> Result<(), String> {
    let header = parse_header(frame).ok_or("frame shorter than its header")?;
    if !header.intact {
        return Err("frame header checksum mismatch".into());
    }
    let payload = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
    if header.len as usize != payload.len() {
        return Err(format!(
            "frame declares {} payload bytes, holds {}",
            header.len,
            payload.len()
        ));
    }
    if header.seq != seq {
        return Err(format!("frame carries sequence {}", header.seq));
    }
    if crc32c::crc32c(payload) != header.payload_crc {
        return Err("payload checksum mismatch".into());
    }
    Ok(())
}

/// The length of the frame that starts `bytes` (header and payload) and the sequence number
/// it carries, if its header is whole and declares at most `RECORD_LEN_MAX` payload bytes.
/// Neither checksum is checked ([`frame_checksum_ok`] checks both): the first half of
/// [`scan_segment`]'s check of a frame, for a verifier that finds frames on one thread and
/// checks them on others. (A damaged header may mislead it to a wrong frame boundary; the
/// header checksum of the frame so found then fails.)
pub(crate) fn peek_frame(bytes: &[u8]) -> Option<(usize, u64)> {
    let len = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let seq = u64::from_be_bytes(bytes.get(4..12)?.try_into().ok()?);
    (bytes.len() >= FRAME_HEADER_LEN && len <= RECORD_LEN_MAX)
        .then_some((FRAME_HEADER_LEN + len, seq))
}

/// Whether `frame` (exactly one whole frame) has an intact header and holds the payload its
/// header declares, under the payload CRC32C its header stores: the second half of
/// [`scan_segment`]'s check of a frame.
pub(crate) fn frame_checksum_ok(frame: &[u8]) -> bool {
    let Some(h) = parse_header(frame) else { return false };
    let payload = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
    h.intact && payload.len() == h.len as usize && crc32c::crc32c(payload) == h.payload_crc
}

/// Where the frames of a segment start, after checking its header: the bytes of a segment
/// whose first record is `first`; `last` if it is the last segment.
///
/// # Errors
/// What is wrong with the header (the offset is 0).
fn check_segment_header(bytes: &[u8], first: u64, last: bool) -> Result<SegmentStart, String> {
    let expected = segment_header(first);
    if bytes.is_empty() {
        return Ok(SegmentStart::Frames(0));
    }
    if last && bytes.iter().all(|&b| b == 0) {
        return Ok(SegmentStart::Torn(TornCause::Zeros));
    }
    match bytes.get(..SEGMENT_HEADER_LEN) {
        Some(header) if header == expected => Ok(SegmentStart::Frames(SEGMENT_HEADER_LEN)),
        None if last && expected.starts_with(bytes) => Ok(SegmentStart::Torn(TornCause::Cut)),
        None if !last => Err("segment header cut short by the end of the segment".into()),
        _ => Err(describe_bad_header(bytes, first)),
    }
}

/// What is wrong with a segment header that is not the expected one.
fn describe_bad_header(bytes: &[u8], first: u64) -> String {
    if !bytes.starts_with(SEGMENT_MAGIC) {
        // Format 1 had no segment header: its first frame's sequence number sat at 8..16.
        if bytes.get(8..16) == Some(&first.to_be_bytes()[..]) {
            return "no segment header: a segment of format 1, which this build does not read \
                    (it reads format 2)"
                .into();
        }
        return "not a segment file (no `govern.segment` tag)".into();
    }
    let at = SEGMENT_MAGIC.len();
    let version = bytes.get(at..at + 2).map(|v| u16::from_be_bytes([v[0], v[1]]));
    if version != Some(SEGMENT_FORMAT_VERSION) {
        return match version {
            Some(v) => format!(
                "segment format version {v}; this build reads version {SEGMENT_FORMAT_VERSION}"
            ),
            None => "segment header cut short".into(),
        };
    }
    match bytes.get(at + 2..SEGMENT_HEADER_LEN).and_then(|b| b.try_into().ok()) {
        Some(seq) => {
            format!("segment header says it starts at {}", u64::from_be_bytes(seq))
        }
        None => "segment header cut short".into(),
    }
}

/// How a segment's header check ended well.
enum SegmentStart {
    /// Its frames start at this offset (0: the file is empty).
    Frames(usize),
    /// The last segment ends before its header is whole, or holds only zeros.
    Torn(TornCause),
}

/// How a segment's scan ended well.
enum ScanEnd {
    /// Every byte is a valid frame.
    Clean,
    /// The last segment ends in a torn frame starting at this offset.
    Torn(usize, TornCause),
}

/// A bad frame: its offset and what is wrong.
type ScanError = (usize, String);

/// Scans the frames of one segment from offset `at` (after its header), pushing their
/// offsets; `next` is the sequence number expected first and is advanced past every valid
/// frame. Applies the torn-tail rule of the module documentation.
fn scan_segment(
    bytes: &[u8],
    mut at: usize,
    last: bool,
    next: &mut u64,
    offsets: &mut Vec<u32>,
) -> Result<ScanEnd, ScanError> {
    // Only where a frame header is cut short or fails its checksum can the rest of the last
    // segment be a zero-filled tail: a whole frame header never checks out as zeros.
    let zeros = |rest: &[u8]| rest.iter().all(|&b| b == 0);
    while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
        let Some(h) = parse_header(rest) else {
            return match (last, zeros(rest)) {
                (true, true) => Ok(ScanEnd::Torn(at, TornCause::Zeros)),
                (true, false) => Ok(ScanEnd::Torn(at, TornCause::Cut)),
                (false, _) => Err((at, "frame header cut short by the end of the segment".into())),
            };
        };
        if !h.intact {
            if last && zeros(rest) {
                return Ok(ScanEnd::Torn(at, TornCause::Zeros));
            }
            return Err((at, "frame header checksum mismatch".into()));
        }
        if h.len as usize > RECORD_LEN_MAX {
            return Err((at, format!("frame length {} exceeds RECORD_LEN_MAX", h.len)));
        }
        if h.seq != *next {
            return Err((at, format!("frame carries sequence {}", h.seq)));
        }
        let frame_len = FRAME_HEADER_LEN + h.len as usize;
        let Some(payload) = rest.get(FRAME_HEADER_LEN..frame_len) else {
            return if last {
                Ok(ScanEnd::Torn(at, TornCause::Cut))
            } else {
                Err((at, "frame runs past the end of the segment".into()))
            };
        };
        if crc32c::crc32c(payload) != h.payload_crc {
            return Err((at, "payload checksum mismatch".into()));
        }
        offsets.push(u32::try_from(at).map_err(|_| (at, "offset beyond u32".to_owned()))?);
        *next += 1;
        at += frame_len;
    }
    Ok(ScanEnd::Clean)
}

/// The offsets of the frames of a sealed segment's `bytes` whose first record is
/// `first_seq`, every frame checked (header, lengths, sequence numbers, CRCs): no torn tail
/// is allowed, as in any segment but the last. For an archived segment, read whole.
///
/// # Errors
/// The offset and what is wrong with the first bad frame (or the header).
pub(crate) fn sealed_frames(bytes: &[u8], first_seq: u64) -> Result<Vec<u32>, (u64, String)> {
    let mut offsets = Vec::new();
    let mut next = first_seq;
    match check_segment_header(bytes, first_seq, false) {
        Ok(SegmentStart::Frames(at)) => {
            match scan_segment(bytes, at, false, &mut next, &mut offsets) {
                Ok(ScanEnd::Clean) => Ok(offsets),
                Ok(ScanEnd::Torn(at, _)) => Err((at as u64, "a torn frame".into())),
                Err((at, reason)) => Err((at as u64, reason)),
            }
        }
        Ok(SegmentStart::Torn(_)) => Err((0, "its header is cut short".into())),
        Err(reason) => Err((0, reason)),
    }
}

/// What [`SegmentStore::open_scanning`] calls with each scanned segment: its first sequence
/// number, its bytes (the buffer, which it may swap) and the offsets of its valid frames.
pub(crate) type OnSegment<'a> = dyn FnMut(u64, &mut Vec<u8>, &[u32]) + 'a;

/// How a store on the real filesystem holds its data directory.
enum Access {
    /// A writer, holding the directory's lock.
    Writer(DirLock),
    /// A reader, which takes no lock; the writer live when it looked, if any.
    Reader(Option<Writer>),
}

/// The files of the segment store in data directory `dir`. A writer first takes the
/// directory's lock (creating the directory and the lock file if needed), before anything
/// else is read or written; a reader changes nothing, and the directory must hold a ledger.
fn fs_io(dir: &Path, options: SegmentOptions) -> Result<(FsIo, Access), OpenError> {
    let segments = dir.join(SEGMENTS_DIR);
    let access = if options.read_only {
        if !segments.is_dir() {
            return Err(OpenError::Io {
                context: format!("no ledger at {}", dir.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let writer =
            lock::probe(dir).map_err(io_error(format!("probing the lock of {}", dir.display())))?;
        Access::Reader(writer)
    } else {
        Access::Writer(DirLock::acquire(dir)?)
    };
    let io = match access {
        Access::Reader(_) => FsIo::read_only(&segments),
        Access::Writer(_) => FsIo::new(&segments)
            .map_err(io_error(format!("preparing directory {}", segments.display())))?,
    };
    Ok((io, access))
}

/// Drops from `names` (sorted) the segments that end at or below the archive boundary
/// `base`: copies in the archive hold them, and a crash between the archive's manifest and
/// their removal left them here. A writer removes them and their index files; a reader
/// leaves them. A segment that straddles `base` stays, for the open to refuse.
fn archived_leftovers(
    io: &mut dyn SegmentIo,
    read_only: bool,
    base: u64,
    names: &mut Vec<(u64, String)>,
) {
    // A segment ends where the next begins; the last one's end is unknown, so it stays.
    let archived = names.windows(2).take_while(|w| w[1].0 <= base).count();
    for (first, name) in names.drain(..archived) {
        if read_only {
            continue;
        }
        tracing::info!(segment = %name, "removing a segment below the archive boundary (archived)");
        for file in [name, index_name(first)] {
            if let Err(e) = io.remove(&file).or_else(not_found_is_fine) {
                tracing::warn!(file = %file, error = %e, "archived segment not removed");
            }
        }
    }
}

/// A removal of a file that is already gone succeeded.
fn not_found_is_fine(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
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
        Self::open_scanning(dir.as_ref(), options, &mut |_, _, _| {})
    }

    /// Opens (or creates) the store in data directory `dir` as [`Self::open`] does, but takes
    /// the frame offsets of every sealed segment (every one but the last) that has a valid
    /// index file from it, without reading the segment: its frames are checked when they are
    /// read (every read checks each frame's checksums, length and sequence number) and by
    /// `govern verify`, not here. A sealed segment without a valid index is scanned, and a
    /// writer then writes its index. For readers that check every frame they read anyway.
    ///
    /// # Errors
    /// As [`Self::open`] (for the segments it scans).
    pub fn open_indexed(
        dir: impl AsRef<Path>,
        options: SegmentOptions,
    ) -> Result<(Self, OpenReport), OpenError> {
        Self::open_scanning_from(dir.as_ref(), options, u64::MAX, &mut |_, _, _| {})
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
        Self::open_scanning_from(dir, options, 0, on_segment)
    }

    /// [`Self::open_scanning`], except that a sealed segment (not the last) whose records all
    /// lie below `skip_below` and whose index file is valid is not read: its offsets come
    /// from the index, and `on_segment` is not called for it ([`Self::open_indexed`] skips
    /// every such segment). Every other segment is scanned and handed over as
    /// [`Self::open_scanning`] does.
    pub(crate) fn open_scanning_from(
        dir: &Path,
        options: SegmentOptions,
        skip_below: u64,
        on_segment: &mut OnSegment<'_>,
    ) -> Result<(Self, OpenReport), OpenError> {
        let (io, access) = fs_io(dir, options)?;
        let (lock, writer) = match access {
            Access::Writer(lock) => (Some(lock), None),
            Access::Reader(writer) => (None, writer),
        };
        let base = crate::archive::boundary(dir).map_err(OpenError::Archive)?;
        let (mut store, mut report) =
            Self::open_inner(Box::new(io), options, base, skip_below, on_segment)?;
        store.lock = lock;
        report.writer = writer;
        Ok((store, report))
    }

    /// Opens the store over `io`: scans and checks every segment, truncates a torn final
    /// frame (logging it and reporting it), and builds the index. No lock is taken: whoever
    /// provides `io` answers for there being one writer.
    ///
    /// # Errors
    /// [`OpenError::InvalidOptions`], [`OpenError::Io`], [`OpenError::UnexpectedFile`], or
    /// [`OpenError::Corrupt`] naming the segment, offset and sequence number of the first
    /// bad frame; from [`Self::open`] also [`OpenError::Locked`] when another writer holds
    /// the data directory.
    pub fn open_with_io(
        io: Box<dyn SegmentIo>,
        options: SegmentOptions,
    ) -> Result<(Self, OpenReport), OpenError> {
        Self::open_inner(io, options, 0, 0, &mut |_, _, _| {})
    }

    /// The open itself: see [`Self::open_scanning_from`] for `skip_below`. The store starts
    /// at record `base` (0, or the archive boundary): segments wholly below it are archived
    /// copies a crash left behind after the archive's manifest was written, ignored (and
    /// removed by a writer).
    fn open_inner(
        mut io: Box<dyn SegmentIo>,
        options: SegmentOptions,
        base: u64,
        skip_below: u64,
        on_segment: &mut OnSegment<'_>,
    ) -> Result<(Self, OpenReport), OpenError> {
        if options.segment_bytes == 0 || options.segment_bytes > SEGMENT_BYTES_MAX {
            return Err(OpenError::InvalidOptions(format!(
                "segment_bytes {} is not between 1 and {SEGMENT_BYTES_MAX}",
                options.segment_bytes
            )));
        }
        let mut names = Vec::new();
        let mut leftovers = Vec::new();
        for name in io.list().map_err(io_error("listing segments"))? {
            match segments_entry(&name) {
                Some(SegmentsEntry::Segment(first)) => names.push((first, name)),
                // Read with its segment.
                Some(SegmentsEntry::Index(_)) => {}
                Some(SegmentsEntry::IndexTmp) => leftovers.push(name),
                None => return Err(OpenError::UnexpectedFile(name)),
            }
        }
        if !options.read_only {
            idx::remove_leftovers(&mut *io, &leftovers);
        }
        names.sort();
        archived_leftovers(&mut *io, options.read_only, base, &mut names);
        let count = names.len();
        let mut next = base;
        let mut offsets = Vec::new();
        // Each sealed segment's offsets go to the pages once it is opened: only the last
        // segment's stay resident.
        let reader = io.reader();
        let pages = Arc::new(Pages::new(Arc::clone(&reader), OFFSET_PAGES_BUDGET_DEFAULT));
        let mut resident_from = base;
        let mut page_out = |offsets: &mut Vec<u32>, first: u64, end: u64| {
            pages.offer(first, std::mem::take(offsets).into());
            resident_from = end;
        };
        let mut segments = Vec::with_capacity(count);
        let mut torn = None;
        let mut indexed = 0;
        let mut bytes = Vec::new();
        let mut names = names.into_iter().peekable();
        while let Some((first, name)) = names.next() {
            // The first record of the segment after this one: this one is sealed.
            let sealed_end = names.peek().map(|&(next_first, _)| next_first);
            let last = sealed_end.is_none();
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
            // A sealed segment wholly below `skip_below`: its index, if valid, is enough.
            let mut index_problem = None;
            if let Some(end) = sealed_end.filter(|&end| end <= skip_below) {
                let expected =
                    idx::Expected { first_seq: first, segment_len: len, next_first_seq: end };
                match idx::load(&*io, expected, &mut offsets) {
                    Ok(()) => {
                        next = end;
                        indexed += 1;
                        segments.push(Segment::opened(first, name, len, true));
                        page_out(&mut offsets, first, end);
                        continue;
                    }
                    Err(problem) => index_problem = Some(problem),
                }
            }
            let len_usize = usize::try_from(len)
                .map_err(|_| corrupt(0, next, "segment too large for memory".into()))?;
            // The read overwrites every byte: only a longer segment needs zeroed room.
            bytes.resize(len_usize, 0);
            io.read_at(&name, 0, &mut bytes)
                .map_err(io_error(format!("reading segment {name}")))?;
            let first_index = offsets.len();
            let scanned = match check_segment_header(&bytes, first, last) {
                Ok(SegmentStart::Frames(at)) => {
                    scan_segment(&bytes, at, last, &mut next, &mut offsets)
                }
                Ok(SegmentStart::Torn(cause)) => Ok(ScanEnd::Torn(0, cause)),
                Err(reason) => Err((0, reason)),
            };
            let end = match scanned {
                Ok(ScanEnd::Clean) => len,
                Ok(ScanEnd::Torn(at, cause)) => {
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
                        cause,
                    });
                    at
                }
                Err((at, reason)) => return Err(corrupt(at as u64, next, reason)),
            };
            let scanned_offsets = offsets.get(first_index..).unwrap_or_default();
            if !last {
                let scanned = idx::Scanned { first_seq: first, segment_len: end };
                idx::refresh(&mut *io, options.read_only, scanned, scanned_offsets, index_problem);
            }
            on_segment(first, &mut bytes, scanned_offsets);
            segments.push(Segment::opened(first, name, end, !last));
            if !last {
                page_out(&mut offsets, first, next);
            }
        }
        // Frames a process wrote before it died may not have reached the disk yet: a writer
        // syncs the last segment once, before anything (a snapshot, an index file, new
        // segments) is built on them. (Sealed segments were synced before their successor
        // started.)
        if !options.read_only
            && let Some(last) = segments.last().filter(|s| s.len > 0)
        {
            io.sync_data(&last.name).map_err(io_error(format!("syncing segment {}", last.name)))?;
        }
        let report = OpenReport {
            segments: segments.len(),
            records: next,
            indexed,
            torn,
            writer: None,
            snapshot: None,
        };
        let store = Self {
            base,
            reader,
            io,
            segment_bytes: options.segment_bytes,
            segments,
            resident_from,
            offsets,
            pages,
            synced: next,
            pending: Vec::new(),
            refusal: options.read_only.then_some(Refusal::ReadOnly),
            lock: None,
        };
        Ok((store, report))
    }

    /// Calls `f` with every synced record, in sequence order, reading each segment file once
    /// (the fast path for verifying a whole ledger) and checking each frame's checksums,
    /// length and sequence number as [`LedgerStore::read`] does (a segment taken from its
    /// index at open was not read then). Stops at the first error `f` returns.
    ///
    /// # Errors
    /// [`StoreError`] when a segment cannot be read or a frame does not check; otherwise
    /// `f`'s error.
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
            let seg_end = self.end_seq(i);
            let end_seq = seg_end.min(self.synced).max(seg.first_seq);
            let offsets = self.offsets_of(i, seg.first_seq, seg_end)?;
            let offset = |seq: u64| {
                usize::try_from(seq - seg.first_seq)
                    .ok()
                    .and_then(|k| offsets.get(k))
                    .map(|&o| o as usize)
            };
            for seq in seg.first_seq..end_seq {
                let at = offset(seq)
                    .ok_or_else(|| StoreError::Corrupt(format!("record {seq} is not indexed")))?;
                // The frame ends where the next one in this segment starts, or at its end.
                let to = if seq + 1 < seg_end { offset(seq + 1) } else { Some(len) };
                let frame = to.and_then(|to| bytes.get(at..to)).ok_or_else(|| {
                    StoreError::Corrupt(format!("record {seq}: frame outside its segment"))
                })?;
                if let Err(reason) = check_frame(frame, seq) {
                    return Err(StoreError::Corrupt(format!(
                        "segment {} offset {at}, record {seq}: {reason}",
                        seg.name
                    ))
                    .into());
                }
                f(seq, frame.get(FRAME_HEADER_LEN..).unwrap_or_default())?;
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

    /// Whether the store refuses appends: poisoned by a write or sync failure, opened
    /// read-only, or closed.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.refusal.is_some()
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        match &self.refusal {
            None => Ok(()),
            Some(Refusal::ReadOnly) => {
                Err(StoreError::Io("segment store opened read-only: it takes no appends".into()))
            }
            Some(Refusal::Closed) => {
                Err(StoreError::Io("segment store closed: it takes no more appends".into()))
            }
            Some(Refusal::Failed(first)) => Err(StoreError::Io(format!(
                "segment store poisoned by an earlier failure ({first}); nothing is retried"
            ))),
        }
    }

    /// Where record `seq`'s offset is in the resident `offsets` (`None` below them).
    fn slot(&self, seq: u64) -> Option<usize> {
        usize::try_from(seq.checked_sub(self.resident_from)?).ok()
    }

    /// The offset of record `seq`'s frame in its segment, if the store has it (a paged
    /// segment's read back, or taken from the cache).
    fn offset(&self, seq: u64) -> Result<Option<u32>, StoreError> {
        if seq >= self.resident_from {
            return Ok(self.offsets.get(self.slot(seq).unwrap_or(usize::MAX)).copied());
        }
        let Some(paged) = self.paged(seq) else { return Ok(None) };
        let page = self.pages.offsets(&paged)?;
        Ok(page.get(usize::try_from(seq - paged.first_seq).unwrap_or(usize::MAX)).copied())
    }

    /// The segment holding record `seq`, if its offsets are paged (`seq` below
    /// `resident_from` and not archived).
    fn paged(&self, seq: u64) -> Option<PagedSegment> {
        if seq < self.base || seq >= self.resident_from {
            return None;
        }
        let i = self.segment_of(seq)?;
        let seg = self.segments.get(i)?;
        Some(PagedSegment {
            name: seg.name.clone(),
            first_seq: seg.first_seq,
            end_seq: self.end_seq(i),
            len: seg.len,
        })
    }

    /// The frame offsets of segment `i`'s records from `from` to `to` (resident, or its
    /// page).
    fn offsets_of(&self, i: usize, from: u64, to: u64) -> Result<SegmentOffsets<'_>, StoreError> {
        let seg = self.segments.get(i).ok_or_else(|| StoreError::Corrupt("no segment".into()))?;
        let missing = || StoreError::Corrupt(format!("segment {}: records not indexed", seg.name));
        if seg.first_seq >= self.resident_from {
            let (Some(a), Some(b)) = (self.slot(from), self.slot(to)) else {
                return Err(missing());
            };
            let slice = self.offsets.get(a..b.max(a)).ok_or_else(missing)?;
            return Ok(SegmentOffsets::Resident(slice));
        }
        let paged = self.paged(seg.first_seq).ok_or_else(missing)?;
        let page = self.pages.offsets(&paged)?;
        let a = usize::try_from(from - seg.first_seq).map_err(|_| missing())?;
        let b = usize::try_from(to - seg.first_seq).map_err(|_| missing())?;
        if b > page.len() || a > b {
            return Err(missing());
        }
        Ok(SegmentOffsets::Paged(page, a..b))
    }

    /// Moves the offsets of the sealed segments before the last that are durable and indexed
    /// out of the resident ones, into the pages (cached as far as the budget allows).
    fn page_out(&mut self) {
        let sealed = self.segments.len().saturating_sub(1);
        while let Some(i) = self.segments.iter().position(|s| s.first_seq == self.resident_from) {
            let Some(seg) = self.segments.get(i).filter(|_| i < sealed) else { break };
            let end = self.end_seq(i);
            if !seg.indexed || seg.dirty || seg.written != seg.len || end > self.synced {
                break;
            }
            let n = usize::try_from(end - seg.first_seq).unwrap_or(usize::MAX);
            if n > self.offsets.len() {
                break;
            }
            let page: Arc<[u32]> = self.offsets.drain(..n).collect();
            self.pages.offer(seg.first_seq, page);
            self.resident_from = end;
        }
    }

    /// Segment pages loaded (from index files or scans) since the store opened.
    #[must_use]
    pub fn pages_loaded(&self) -> u64 {
        self.pages.loads()
    }

    /// The first record the store holds: 0, or the archive boundary.
    #[must_use]
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The index of the segment holding record `seq` (which must exist).
    fn segment_of(&self, seq: u64) -> Option<usize> {
        self.segments.partition_point(|s| s.first_seq <= seq).checked_sub(1)
    }

    /// The sequence number after the last record of segment `i`.
    fn end_seq(&self, i: usize) -> u64 {
        self.segments.get(i + 1).map_or(self.len(), |n| n.first_seq)
    }

    /// Where the frame of record `seq` is (`None`: no such record); `hint`, the segment
    /// that is most likely to hold it.
    fn frame(&self, seq: u64, hint: Option<usize>) -> Result<Option<FramePlace>, StoreError> {
        if let Some(paged) = self.paged(seq) {
            let page = self.pages.offsets(&paged)?;
            let (start, len) = paged.frame(&page, seq)?;
            let segment = self.segment_of(seq).unwrap_or(0);
            return Ok(Some(FramePlace { segment, start, len, buffered: None }));
        }
        let Some(start) = self.offset(seq)? else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("record {seq}: {what}"));
        let holds = |i: usize| {
            self.segments.get(i).is_some_and(|s| s.first_seq <= seq) && seq < self.end_seq(i)
        };
        let segment = hint
            .filter(|&i| holds(i))
            .or_else(|| self.segment_of(seq))
            .ok_or_else(|| corrupt("no segment holds it"))?;
        let seg = self.segments.get(segment).ok_or_else(|| corrupt("no segment holds it"))?;
        let start = u64::from(start);
        let end = if seq + 1 < self.end_seq(segment) {
            self.offset(seq + 1)?.map(u64::from)
        } else {
            None
        };
        let len = end.unwrap_or(seg.len).saturating_sub(start);
        let buffered = if start >= seg.written {
            // Still in the buffer: after the unwritten tails of the segments before it (only
            // the last segments have any).
            let before: u64 = self
                .segments
                .get(..segment)
                .unwrap_or_default()
                .iter()
                .rev()
                .take_while(|s| s.written < s.len)
                .map(|s| s.len - s.written)
                .sum();
            let at = usize::try_from(before + start - seg.written)
                .map_err(|_| corrupt("buffer offset too large"))?;
            Some(at)
        } else {
            None
        };
        Ok(Some(FramePlace { segment, start, len, buffered }))
    }

    /// The payload of the frame of `place` while it is in the buffer.
    fn buffered(&self, seq: u64, place: &FramePlace) -> Result<Option<&[u8]>, StoreError> {
        let Some(at) = place.buffered else { return Ok(None) };
        let end = usize::try_from(place.len).ok().and_then(|len| at.checked_add(len));
        end.and_then(|end| self.pending.get(at + FRAME_HEADER_LEN..end))
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("record {seq}: outside the buffer")))
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
            if segments.get(i).is_some_and(|s| !s.created)
                && let Some(prev) = dirty.take().and_then(|d| segments.get_mut(d))
            {
                io.sync_data(&prev.name).map_err(|e| format!("syncing {}: {e}", prev.name))?;
                prev.dirty = false;
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

    /// The index files of the segments sealed since the last commit (every one but the
    /// last, all synced by now: a segment is synced before the one after it is created), as
    /// jobs for the commit's second phase, without the ledger's lock. Each segment's index is
    /// tried once; one not written is written by the next writer's open.
    fn seal_indexes(&mut self) -> Vec<(String, Replacer)> {
        let mut jobs = Vec::new();
        let sealed = self.segments.len().saturating_sub(1);
        // Segments are indexed in order: only those after the last indexed one are new.
        let mut from = sealed;
        while from > 0 && self.segments.get(from - 1).is_some_and(|s| !s.indexed) {
            from -= 1;
        }
        for i in from..sealed {
            let Some(seg) = self.segments.get(i).filter(|s| !s.indexed) else { continue };
            if seg.dirty || !seg.created || seg.written != seg.len {
                continue;
            }
            let (Some(from), Some(to)) = (self.slot(seg.first_seq), self.slot(self.end_seq(i)))
            else {
                continue;
            };
            let offsets = self.offsets.get(from..to).unwrap_or_default();
            let name = index_name(seg.first_seq);
            match self.io.replacer(&name, idx::encode_index(seg.first_seq, seg.len, offsets)) {
                Ok(replace) => jobs.push((name, replace)),
                Err(e) => {
                    tracing::warn!(index = %name, error = %e, "segment index not written (segments without one are scanned at open)");
                }
            }
            if let Some(seg) = self.segments.get_mut(i) {
                seg.indexed = true;
            }
        }
        jobs
    }

    /// Records the first failure: from now on every append and sync is refused.
    fn poison(&mut self, reason: String) -> StoreError {
        tracing::error!(error = %reason, "segment store poisoned");
        self.refusal = Some(Refusal::Failed(reason.clone()));
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
        let header_len = SEGMENT_HEADER_LEN as u64;
        let roll = self
            .segments
            .last()
            .is_none_or(|s| s.len > header_len && s.len + frame_len > self.segment_bytes);
        if roll {
            let name = segment_name(seq);
            self.segments.push(Segment {
                first_seq: seq,
                name,
                len: 0,
                written: 0,
                dirty: false,
                created: false,
                indexed: false,
            });
        }
        let seg = self.segments.last_mut().ok_or_else(|| StoreError::Io("no segment".into()))?;
        if seg.len == 0 {
            // A new segment, or one whose torn header was cut away: its header goes first.
            self.pending.extend_from_slice(&segment_header(seg.first_seq));
            seg.len = header_len;
        }
        let offset = u32::try_from(seg.len)
            .map_err(|_| StoreError::Io(format!("segment {} outgrew u32 offsets", seg.name)))?;
        encode_frame(seq, record, &mut self.pending)?;
        seg.len += frame_len;
        self.offsets.push(offset);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        crate::ledger::sync_by_phases(self)
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn close(&mut self) {
        self.refusal.get_or_insert(Refusal::Closed);
        self.lock = None;
    }

    fn begin_sync(&mut self) -> Result<SyncJob, StoreError> {
        self.check_poisoned()?;
        let upto = self.len();
        let dirty = match self.write_pending() {
            Ok(dirty) => dirty,
            Err(reason) => return Err(self.poison(reason)),
        };
        let sync = match dirty.and_then(|d| self.segments.get(d)) {
            None => None,
            Some(seg) => {
                let name = seg.name.clone();
                match self.io.syncer(&name) {
                    Ok(sync) => Some((name, sync)),
                    Err(e) => return Err(self.poison(format!("syncing {name}: {e}"))),
                }
            }
        };
        let indexes = self.seal_indexes();
        if sync.is_none() && indexes.is_empty() {
            return Ok(SyncJob::done(upto));
        }
        Ok(SyncJob::new(upto, move || {
            if let Some((name, sync)) = sync {
                sync().map_err(|e| StoreError::Io(format!("syncing {name}: {e}")))?;
            }
            // Derived data, written after the commit's own sync: a failure is only logged.
            for (name, replace) in indexes {
                if let Err(e) = replace() {
                    tracing::warn!(index = %name, error = %e, "segment index not written (segments without one are scanned at open)");
                }
            }
            Ok(())
        }))
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
        // The segments sealed and indexed by now keep their offsets in their index files.
        self.page_out();
        Ok(())
    }

    fn len(&self) -> u64 {
        self.resident_from + self.offsets.len() as u64
    }

    fn base(&self) -> u64 {
        self.base
    }

    fn live_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    fn sealed_segments(&self) -> Vec<SealedSegment> {
        let sealed = self.segments.len().saturating_sub(1);
        (0..sealed)
            .filter_map(|i| {
                let seg = self.segments.get(i)?;
                // Only what is on disk and durable.
                let end_seq = self.end_seq(i);
                (end_seq <= self.synced && seg.written == seg.len && !seg.dirty).then(|| {
                    SealedSegment {
                        name: seg.name.clone(),
                        first_seq: seg.first_seq,
                        end_seq,
                        bytes: seg.len,
                    }
                })
            })
            .collect()
    }

    fn retire_below(&mut self, boundary: u64) -> Result<(), StoreError> {
        self.check_poisoned()?;
        if boundary == self.base {
            return Ok(());
        }
        let k = self.segments.partition_point(|s| s.first_seq < boundary);
        let fits = self.segments.get(k).is_some_and(|s| s.first_seq == boundary)
            && k < self.segments.len()
            && boundary <= self.synced;
        if !fits || boundary < self.base {
            return Err(StoreError::Io(format!(
                "cannot retire below {boundary}: not the start of a synced segment after {}",
                self.base
            )));
        }
        if boundary > self.resident_from {
            let drop = usize::try_from(boundary - self.resident_from).unwrap_or(usize::MAX);
            self.offsets.drain(..drop.min(self.offsets.len()));
            self.resident_from = boundary;
        }
        self.pages.forget_below(boundary);
        let gone: Vec<Segment> = self.segments.drain(..k).collect();
        self.base = boundary;
        for seg in gone {
            for file in [seg.name.clone(), index_name(seg.first_seq)] {
                if let Err(e) = self.io.remove(&file).or_else(not_found_is_fine) {
                    tracing::warn!(file = %file, error = %e, "archived segment not removed (the next writer removes it)");
                }
            }
        }
        if let Err(e) = self.io.sync_dir() {
            tracing::warn!(error = %e, "segments directory not synced after archiving");
        }
        Ok(())
    }

    fn set_offsets_budget(&self, bytes: usize) {
        self.pages.set_budget(bytes);
    }

    fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * std::mem::size_of::<u32>()
            + self.pages.bytes()
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
            let offsets = self.offsets_of(i, seg.first_seq, end_seq.max(seg.first_seq))?;
            // The last frame ends where the next record's starts, if that is in this segment.
            let next_here = end_seq < self.len()
                && self.segments.get(i + 1).is_none_or(|n| end_seq < n.first_seq);
            let frames_end = match self.offset(end_seq)?.filter(|_| next_here) {
                Some(o) => u64::from(o),
                None => seg.written,
            };
            let frames_end = usize::try_from(frames_end).unwrap_or(usize::MAX);
            if read_segment_chunks(&*self.io, seg, &offsets, frames_end, &mut chunk, f)?.is_break()
            {
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

    fn position(&self, seq: u64) -> Option<(u64, u64)> {
        let i = self.segment_of(seq)?;
        let segment = self.segments.get(i)?;
        let offset = u64::from(self.offset(seq).ok()??);
        (offset < segment.written).then_some((segment.first_seq, offset))
    }

    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        out.clear();
        let Some(place) = self.frame(seq, None)? else { return Ok(false) };
        if let Some(payload) = self.buffered(seq, &place)? {
            out.extend_from_slice(payload);
            return Ok(true);
        }
        let (name, start) = (self.segments.get(place.segment).map_or("", |s| &s.name), place.start);
        let len = usize::try_from(place.len)
            .map_err(|_| StoreError::Corrupt(format!("record {seq}: frame too long")))?;
        out.resize(len, 0);
        self.io
            .read_at(name, start, out)
            .map_err(|e| StoreError::Io(format!("reading {name} at {start}: {e}")))?;
        if let Err(reason) = check_frame(out, seq) {
            out.clear();
            return Err(StoreError::Corrupt(format!(
                "segment {name} offset {start}, record {seq}: {reason}"
            )));
        }
        out.drain(..FRAME_HEADER_LEN);
        Ok(true)
    }

    /// Copies the position of each frame written to its file, and the bytes of each record
    /// still in the buffer.
    fn locate(&self, seqs: &[u64]) -> Result<Box<dyn Located>, StoreError> {
        let mut located = read::SegmentLocated::new(Arc::clone(&self.reader));
        let mut hint = None;
        for &seq in seqs {
            // A paged segment's record: its place now if its page is cached, else found by
            // the reader, after the lock (no I/O here).
            if let Some(paged) = self.paged(seq) {
                match self.pages.cached(&paged) {
                    Some(page) => {
                        let (start, len) = paged.frame(&page, seq)?;
                        located.push_frame(seq, &paged.name, start, len);
                    }
                    None => located.push_paged(seq, paged, Arc::clone(&self.pages)),
                }
                continue;
            }
            let Some(place) = self.frame(seq, hint)? else {
                located.push_copy(seq, None);
                continue;
            };
            hint = Some(place.segment);
            match self.buffered(seq, &place)? {
                Some(payload) => located.push_copy(seq, Some(payload)),
                None => {
                    let name = self.segments.get(place.segment).map_or("", |s| &s.name);
                    located.push_frame(seq, name, place.start, place.len);
                }
            }
        }
        Ok(Box::new(located))
    }

    /// Copies each segment's name and where its written frames end (and the offset of the
    /// first frame), and the bytes of the records still in the buffer.
    fn locate_range(&self, range: Range<u64>) -> Result<Box<dyn Located>, StoreError> {
        let end = range.end.min(self.len());
        let mut stretches = Vec::new();
        let mut copied = Copied::default();
        // Records below the archive boundary are not here: none is handed over.
        let mut seq = range.start.max(self.base);
        let first = self.segment_of(seq).unwrap_or(0);
        for (i, seg) in self.segments.iter().enumerate().skip(first) {
            if seq >= end {
                break;
            }
            let seg_end = self.end_seq(i).min(end);
            if let Some(paged) = self.paged(seq) {
                // Written whole: one stretch, whose first frame the reader finds in the page
                // (the segment's first frame follows its header).
                let at = match self.pages.cached(&paged) {
                    _ if seq == seg.first_seq => read::At::Known(SEGMENT_HEADER_LEN as u64),
                    Some(page) => read::At::Known(paged.frame(&page, seq)?.0),
                    None => read::At::Paged(paged, Arc::clone(&self.pages)),
                };
                stretches.push(read::Stretch {
                    name: seg.name.clone(),
                    seq,
                    at,
                    end_seq: seg_end,
                    frames_end: seg.written,
                });
                seq = seg_end;
                continue;
            }
            let (Some(from), Some(to)) = (self.slot(seq), self.slot(seg_end)) else {
                return Err(StoreError::Corrupt(format!("segment {}: too many records", seg.name)));
            };
            let offsets = self.offsets.get(from..to.max(from)).unwrap_or_default();
            let written = offsets.partition_point(|&o| u64::from(o) < seg.written);
            if let Some(&at) = offsets.first().filter(|_| written > 0) {
                stretches.push(read::Stretch {
                    name: seg.name.clone(),
                    seq,
                    at: read::At::Known(u64::from(at)),
                    end_seq: seq + written as u64,
                    frames_end: seg.written,
                });
            }
            for seq in seq + written as u64..seg_end {
                let place = self.frame(seq, Some(i))?;
                let payload = match &place {
                    Some(place) => self.buffered(seq, place)?,
                    None => None,
                };
                copied.push(seq, payload);
            }
            seq = seg_end;
        }
        Ok(Box::new(read::SegmentRange::new(Arc::clone(&self.reader), stretches, copied)))
    }
}

/// The frame offsets of some records of one segment: resident, or part of its page.
enum SegmentOffsets<'a> {
    Resident(&'a [u32]),
    Paged(Arc<[u32]>, Range<usize>),
}

impl std::ops::Deref for SegmentOffsets<'_> {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        match self {
            Self::Resident(slice) => slice,
            Self::Paged(page, range) => page.get(range.clone()).unwrap_or_default(),
        }
    }
}

/// Where the frame of a record is: its segment, offset and length, and where it starts in
/// the buffer while it is not written.
#[derive(Clone, Copy, Debug)]
struct FramePlace {
    segment: usize,
    start: u64,
    len: u64,
    buffered: Option<usize>,
}

/// Rewrites the payload of the frame of record `seq` in the segment file at `path` as a
/// deliberate tamperer would: `edit` changes the payload in place, then both checksums are
/// recomputed so that the frames still check. `false` if the file holds no such frame.
#[cfg(test)]
pub(crate) fn rewrite_payload(path: &Path, seq: u64, edit: impl FnOnce(&mut [u8])) -> bool {
    let Ok(mut bytes) = std::fs::read(path) else { return false };
    let mut at = SEGMENT_HEADER_LEN;
    while let Some(h) = bytes.get(at..).and_then(parse_header) {
        let (start, end) = (at + FRAME_HEADER_LEN, at + FRAME_HEADER_LEN + h.len as usize);
        if h.seq == seq {
            let Some(mut payload) = bytes.get(start..end).map(<[u8]>::to_vec) else {
                return false;
            };
            edit(&mut payload);
            let mut frame = Vec::new();
            if encode_frame(seq, &payload, &mut frame).is_err() {
                return false;
            }
            bytes.splice(at..end, frame);
            return std::fs::write(path, &bytes).is_ok();
        }
        at = end;
    }
    false
}

#[cfg(test)]
mod tests;
