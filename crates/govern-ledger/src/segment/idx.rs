//! Per-segment index files: the offsets of a sealed segment's frames, written once the
//! segment is sealed and synced, so that an open can take them instead of scanning the
//! segment ([`SegmentStore::open_indexed`](super::SegmentStore::open_indexed)). Derived data:
//! a missing or invalid index only means the segment is scanned (and a writer writes it
//! again); nothing else depends on it.
//!
//! `segments/<first seq as 20 digits>.idx`, big-endian like the frames:
//!
//! ```text
//! ["govern.segindex" (15 ASCII bytes)][u16 version = 1][u64 first seq][u64 frames n]
//! [u64 the segment file's length][n × u32 frame offsets][u32 CRC32C of every byte before it]
//! ```
//!
//! It is written atomically: to `<name>.idx.tmp`, synced, then renamed over `<name>.idx`. A
//! crash leaves no index, the one before, or the whole new one; a leftover `.idx.tmp` is
//! removed by the next writer that opens the directory.

use govern_receipt::RECORD_LEN_MAX;

use super::{
    FRAME_HEADER_LEN, NAME_DIGITS, SEGMENT_BYTES_MAX, SEGMENT_HEADER_LEN, SEGMENT_SUFFIX, SegmentIo,
};

/// The tag an index file starts with.
pub const INDEX_MAGIC: &[u8; 15] = b"govern.segindex";

/// The index format this build writes and reads.
pub const INDEX_FORMAT_VERSION: u16 = 1;

/// The file name suffix of a segment's index.
pub const INDEX_SUFFIX: &str = ".idx";

/// The file name suffix of an index being written (renamed to [`INDEX_SUFFIX`] once whole
/// and synced).
pub const INDEX_TMP_SUFFIX: &str = ".idx.tmp";

/// The bytes before the offsets: tag, version, first sequence number, frame count, segment
/// length.
pub const INDEX_HEADER_LEN: usize = INDEX_MAGIC.len() + 2 + 8 + 8 + 8;

/// The bytes of the trailing CRC32C.
const INDEX_CRC_LEN: usize = 4;

/// The most frames a segment can hold: every frame is at least a frame header.
const INDEX_FRAMES_MAX: u64 =
    (SEGMENT_BYTES_MAX - SEGMENT_HEADER_LEN as u64) / FRAME_HEADER_LEN as u64;

/// The longest index file: one of a segment of `INDEX_FRAMES_MAX` empty frames. Nothing
/// longer is read.
pub const INDEX_BYTES_MAX: u64 =
    INDEX_HEADER_LEN as u64 + 4 * INDEX_FRAMES_MAX + INDEX_CRC_LEN as u64;

/// The longest frame: its header and the longest payload.
const FRAME_LEN_MAX: u64 = (FRAME_HEADER_LEN + RECORD_LEN_MAX) as u64;

/// The file name of the index of the segment whose first record is `first_seq`.
#[must_use]
pub fn index_name(first_seq: u64) -> String {
    format!("{first_seq:0NAME_DIGITS$}{INDEX_SUFFIX}")
}

/// What a file in the segments directory is, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentsEntry {
    /// A segment, whose first record is this one.
    Segment(u64),
    /// The index of the segment whose first record is this one.
    Index(u64),
    /// An index being written, or left by a crash while it was.
    IndexTmp,
}

/// What the file named `name` in the segments directory is, if it is one the store writes.
#[must_use]
pub fn segments_entry(name: &str) -> Option<SegmentsEntry> {
    let first = |suffix: &str| {
        let digits = name.strip_suffix(suffix)?;
        if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()
    };
    first(SEGMENT_SUFFIX)
        .map(SegmentsEntry::Segment)
        .or_else(|| first(INDEX_SUFFIX).map(SegmentsEntry::Index))
        .or_else(|| first(INDEX_TMP_SUFFIX).map(|_| SegmentsEntry::IndexTmp))
}

/// Whether the file named `name` in the segments directory is an index or an index being
/// written: derived data, which a reader of the segments skips.
#[must_use]
pub fn is_index_file(name: &str) -> bool {
    matches!(segments_entry(name), Some(SegmentsEntry::Index(_) | SegmentsEntry::IndexTmp))
}

/// The index of the segment whose first record is `first_seq`, `segment_len` bytes long, whose
/// frames start at `offsets`.
pub(super) fn encode_index(first_seq: u64, segment_len: u64, offsets: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(INDEX_HEADER_LEN + 4 * offsets.len() + INDEX_CRC_LEN);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&INDEX_FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&first_seq.to_be_bytes());
    out.extend_from_slice(&(offsets.len() as u64).to_be_bytes());
    out.extend_from_slice(&segment_len.to_be_bytes());
    for offset in offsets {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// What an index must agree with: its segment's first record and length, and the first
/// record of the segment after it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Expected {
    pub(super) first_seq: u64,
    pub(super) segment_len: u64,
    pub(super) next_first_seq: u64,
}

/// Checks index `bytes` against `expected` and appends its offsets to `offsets`; on an error
/// `offsets` is left as it was.
///
/// # Errors
/// What is wrong with the index.
pub(super) fn decode_index(
    bytes: &[u8],
    expected: Expected,
    offsets: &mut Vec<u32>,
) -> Result<(), String> {
    let Expected { first_seq, segment_len, next_first_seq } = expected;
    let body_len = bytes.len().checked_sub(INDEX_CRC_LEN).filter(|&n| n >= INDEX_HEADER_LEN);
    let Some(body_len) = body_len else {
        return Err(format!("{} bytes, shorter than an index header", bytes.len()));
    };
    let (body, crc) = bytes.split_at(body_len);
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return Err("checksum mismatch".into());
    }
    let (magic, rest) = body.split_at(INDEX_MAGIC.len());
    if magic != INDEX_MAGIC {
        return Err("not a segment index (no `govern.segindex` tag)".into());
    }
    let be64 = |at: usize| {
        rest.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
    };
    let version = rest.get(0..2).map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
    if version != INDEX_FORMAT_VERSION {
        return Err(format!(
            "index format version {version}; this build reads {INDEX_FORMAT_VERSION}"
        ));
    }
    let (first, n, len) = (be64(2), be64(10), be64(18));
    if first != first_seq {
        return Err(format!("index says its segment starts at {first}"));
    }
    if len != segment_len {
        return Err(format!("index is of a segment of {len} bytes; the file has {segment_len}"));
    }
    if n == 0 || n > INDEX_FRAMES_MAX {
        return Err(format!("index counts {n} frames"));
    }
    if first.checked_add(n) != Some(next_first_seq) {
        return Err(format!(
            "index counts {n} frames; the next segment starts at {next_first_seq}"
        ));
    }
    let listed = body.get(INDEX_HEADER_LEN..).unwrap_or_default();
    if listed.len() as u64 != 4 * n {
        return Err(format!("index holds {} offset bytes for {n} frames", listed.len()));
    }
    let before = offsets.len();
    let mut previous: Option<u64> = None;
    for chunk in listed.chunks_exact(4) {
        let offset = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let at = u64::from(offset);
        let bad = match previous {
            None => (at != SEGMENT_HEADER_LEN as u64).then_some("does not follow the header"),
            Some(p) if at < p + FRAME_HEADER_LEN as u64 => Some("is too close to the one before"),
            Some(p) if at - p > FRAME_LEN_MAX => Some("is too far from the one before"),
            Some(_) => None,
        };
        if let Some(what) = bad {
            offsets.truncate(before);
            return Err(format!("frame offset {at} {what}"));
        }
        offsets.push(offset);
        previous = Some(at);
    }
    let last = previous.unwrap_or_default();
    let tail = segment_len.checked_sub(last);
    if tail.is_none_or(|t| t < FRAME_HEADER_LEN as u64 || t > FRAME_LEN_MAX) {
        offsets.truncate(before);
        return Err(format!("last frame offset {last} does not leave one frame to the end"));
    }
    Ok(())
}

/// Why a segment's index was not used.
#[derive(Debug)]
pub(super) enum Problem {
    /// There is none (or it cannot be read).
    Missing(String),
    /// It does not agree with its segment.
    Invalid(String),
}

/// Takes the offsets of the sealed segment `expected` describes from its index file,
/// appending them to `offsets` (left as they were on an error).
///
/// # Errors
/// Why the index cannot be used.
pub(super) fn load(
    io: &dyn SegmentIo,
    expected: Expected,
    offsets: &mut Vec<u32>,
) -> Result<(), Problem> {
    let name = index_name(expected.first_seq);
    let bytes = match io.read_file(&name, INDEX_BYTES_MAX) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Problem::Missing("no index".into()));
        }
        Err(e) => return Err(Problem::Invalid(format!("reading it: {e}"))),
    };
    decode_index(&bytes, expected, offsets).map_err(Problem::Invalid)
}

/// A sealed segment just scanned: its first record and its length.
#[derive(Clone, Copy, Debug)]
pub(super) struct Scanned {
    pub(super) first_seq: u64,
    pub(super) segment_len: u64,
}

/// After the scan of a sealed segment whose frames start at `offsets`: a writer makes sure
/// its index file holds exactly what the scan found, writing it when it does not (`known`:
/// what is already known to be wrong with it, if it was tried). Logs what was wrong (info
/// when the index was missing, warn when it was invalid); a failure to write it is only
/// logged too, since the index is derived data.
pub(super) fn refresh(
    io: &mut dyn SegmentIo,
    read_only: bool,
    scanned: Scanned,
    offsets: &[u32],
    known: Option<Problem>,
) {
    let Scanned { first_seq, segment_len } = scanned;
    let name = index_name(first_seq);
    if read_only {
        match known {
            Some(Problem::Missing(why)) => {
                tracing::info!(index = %name, problem = %why, "segment index missing: segment scanned (read-only: not written)");
            }
            Some(Problem::Invalid(why)) => {
                tracing::warn!(index = %name, problem = %why, "segment index invalid: segment scanned (read-only: not rewritten)");
            }
            None => {}
        }
        return;
    }
    let index = encode_index(first_seq, segment_len, offsets);
    let problem = match known {
        Some(problem) => problem,
        None => match io.read_file(&name, INDEX_BYTES_MAX) {
            Ok(bytes) if bytes == index => return,
            Ok(_) => Problem::Invalid("it differs from the segment's scan".into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Problem::Missing("no index".into())
            }
            Err(e) => Problem::Invalid(format!("reading it: {e}")),
        },
    };
    match &problem {
        Problem::Missing(why) => {
            tracing::info!(index = %name, problem = %why, "segment index missing: segment scanned, index written");
        }
        Problem::Invalid(why) => {
            tracing::warn!(index = %name, problem = %why, "segment index invalid: segment scanned, index rewritten");
        }
    }
    write(&*io, &name, index);
}

/// Writes index file `name` (a [`SegmentIo::replacer`] run at once); a failure is logged.
fn write(io: &dyn SegmentIo, name: &str, index: Vec<u8>) {
    if let Err(e) = io.replacer(name, index).and_then(|replace| replace()) {
        tracing::warn!(index = %name, error = %e, "segment index not written (segments without one are scanned at open)");
    }
}

/// Removes the leftovers of index writes a crash cut short; a failure is logged.
pub(super) fn remove_leftovers(io: &mut dyn SegmentIo, names: &[String]) {
    for name in names {
        match io.remove(name) {
            Ok(()) => tracing::info!(file = %name, "unfinished segment index removed"),
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "unfinished segment index not removed")
            }
        }
    }
}
