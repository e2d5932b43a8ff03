//! The fast path of [`verify_dir`](super::verify_dir) for a clean ledger: the work split by
//! stretches of records across the cores, not by stage.
//!
//! Every receipt's checks but two are independent of the other receipts: its frame's CRC32C,
//! its hash over its preimage (the expensive part), its sequence number and id, its fields
//! (decoded, without allocating) and its leaf hash. Only the link (its `prev_hash` is the
//! previous receipt's hash) joins neighbours, and the numbering joins the receipts of a
//! resource: each worker hands over, with its stretch, every receipt's resource (a 128-bit
//! hash of its key) and `resource_seq`, grouped by shard, and the calling thread follows
//! each resource's count in order ([`Numbering::join`]). So
//! one thread reads the segments in stretches of about [`STRETCH_BYTES`] (into a few reused
//! buffers, so hashing starts at once and no fresh memory is faulted in per segment) and
//! finds the frames by their headers; one worker per core checks a whole stretch at a time
//! (CRC32C, then [`ChainVerifier::push_record`] from the stretch's first `prev_hash` and
//! `Receipt::decode_key`, then the leaf hashes and the Merkle nodes inside the stretch,
//! [`LeafStretch`]); the calling thread
//! takes the stretches back in order, checks the one link between each and the one before,
//! and appends them to the tree ([`MerkleTree::append_stretch`], or a frontier's
//! [`MerkleFrontier::append_stretch_prefix`] when only roots are wanted; either hashes only
//! the few nodes that straddle two stretches).
//!
//! This path only says "clean" or "not clean": at the first sign of anything else (a damaged
//! or torn frame, a chain error, a record that does not decode, a break in a resource's
//! numbering, an unexpected file, an I/O error) it stops and the caller
//! verifies again by the reference path, which names the first problem exactly as `govern
//! verify` always has. A damaged ledger is read twice; a clean one once.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread::ScopedJoinHandle;

use govern_receipt::{ChainVerifier, Digest, Head, RECORD_LEN_MAX, Receipt};

use super::numbering::{Grouped, Numbering};
use crate::ledger::KeyHasher;
use crate::merkle::{LeafStretch, MerkleFrontier, MerkleTree, leaf_hash};
use crate::segment::{
    FRAME_HEADER_LEN, SEGMENT_BYTES_MAX, SEGMENT_HEADER_LEN, SEGMENTS_DIR, frame_checksum_ok,
    is_index_file, parse_segment_name, peek_frame, segment_header,
};

/// New bytes read per stretch: small enough for the stretch to be in the cache still when a
/// worker hashes it, large enough that handing it over costs nothing per receipt.
const STRETCH_BYTES: usize = 256 << 10;

/// A read buffer: a stretch after the start of a frame carried over from the stretch before
/// (less than one frame), so that even the longest frame fits.
const BUFFER_BYTES: usize = STRETCH_BYTES + FRAME_HEADER_LEN + RECORD_LEN_MAX;

/// Read buffers: being read, queued or checked, and on their way back.
const BUFFERS: usize = 8;

/// No frame is shorter than this (a header and a record's fixed fields are longer): a
/// stretch of `n` bytes has room reserved for `n` / this many frames.
const FRAME_BYTES_MIN: usize = 128;

/// A stretch of whole frames, read and found by their headers, not yet checked.
struct Stretch {
    /// Its place in the ledger's order of stretches.
    index: u64,
    /// The sequence number of its first frame.
    first_seq: u64,
    /// The read buffer.
    bytes: Vec<u8>,
    /// Where each frame starts in `bytes`; each ends where the next starts.
    starts: Vec<u32>,
    /// Where the last frame ends.
    end: usize,
}

/// A stretch checked by a worker.
struct Checked {
    /// The stretch's place.
    index: u64,
    /// The read buffer, for reuse.
    bytes: Vec<u8>,
    /// What the stretch holds, if every check passed.
    clean: Option<CleanStretch>,
}

/// A stretch whose frames and receipts passed every check but the link into it.
struct CleanStretch {
    /// The `prev_hash` of its first receipt: the hash the stretch before must end with.
    first_prev: Digest,
    /// The hash of its last receipt.
    last_hash: Digest,
    /// Its receipts' leaf hashes and the Merkle nodes over them.
    leaves: LeafStretch,
    /// Its receipts' resources (hashed) and numbers.
    numbers: Grouped,
    /// The bytes of its frames.
    bytes: u64,
}

/// What the checked stretches are appended to, in order: the full tree, or a frontier.
pub(super) trait TreeSink {
    /// Appends a stretch starting at the end; `false` if it does not.
    fn append(&mut self, stretch: LeafStretch) -> bool;
    /// The number of leaves.
    fn len(&self) -> u64;
}

impl TreeSink for MerkleTree {
    fn append(&mut self, stretch: LeafStretch) -> bool {
        self.append_stretch(stretch)
    }

    fn len(&self) -> u64 {
        MerkleTree::len(self)
    }
}

/// A frontier that records its roots at some sizes on the way.
pub(super) struct FrontierRoots {
    /// The tree so far.
    pub(super) frontier: MerkleFrontier,
    /// The sizes whose roots are wanted, ascending, without duplicates.
    pub(super) sizes: Vec<u64>,
    /// The roots at the sizes reached so far, in the order of `sizes`.
    pub(super) roots: Vec<(u64, Digest)>,
}

impl TreeSink for FrontierRoots {
    fn append(&mut self, stretch: LeafStretch) -> bool {
        let (first, end) = (stretch.first(), stretch.first() + stretch.len());
        for &size in self.sizes.iter().filter(|&&size| first < size && size <= end) {
            let mut at_size = self.frontier.clone();
            if !at_size.append_stretch_prefix(&stretch, size - first) {
                return false;
            }
            self.roots.push((size, at_size.root()));
        }
        self.frontier.append_stretch_prefix(&stretch, stretch.len())
    }

    fn len(&self) -> u64 {
        self.frontier.len()
    }
}

/// A clean ledger, as the fast path found it.
pub(super) struct Clean<T> {
    /// The tree over its receipts.
    pub(super) tree: T,
    /// The number of receipts.
    pub(super) records: u64,
    /// The hash of the last receipt.
    pub(super) last_hash: Digest,
    /// The number of segment files.
    pub(super) segments: usize,
}

/// Verifies the ledger in data directory `dir` if it is clean: every frame whole and under
/// its CRC32C, every receipt in its place in the chain, decoded and numbered in order within
/// its resource, no torn tail, appending its leaves to
/// `tree` (empty). `None` when anything is otherwise (or cannot be read): the caller then
/// finds out what, by the reference path.
pub(super) fn verify_clean<T: TreeSink>(dir: &Path, tree: T) -> Option<Clean<T>> {
    let SegmentFiles { dir: segments_dir, files } = segment_files(dir)?;
    let workers = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 16);
    let stop = AtomicBool::new(false);
    let (stretch_tx, stretch_rx) = mpsc::sync_channel::<Stretch>(BUFFERS);
    let stretch_rx = Mutex::new(stretch_rx);
    let (checked_tx, checked_rx) = mpsc::channel::<Checked>();
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
    let mut numbering = Numbering::expecting(files.iter().map(|(_, _, len)| len).sum());
    let keys = numbering.keys().clone();
    let collected = std::thread::scope(|s| {
        let (files, segments_dir, stop, stretch_rx) = (&files, &segments_dir, &stop, &stretch_rx);
        let keys = &keys;
        let reader = s.spawn(move || {
            // Dropping the sender (on return) tells the workers there is no more.
            read_stretches(segments_dir, files, &stretch_tx, &spare_rx, stop)
        });
        for _ in 0..workers {
            let checked_tx = checked_tx.clone();
            s.spawn(move || check_stretches(stretch_rx, &checked_tx, keys, stop));
        }
        drop(checked_tx);
        let collected = collect(&checked_rx, spare_tx, stop, tree, &mut numbering);
        let records = join(reader);
        collected.zip(records)
    });
    let ((tree, last_hash), records) = collected?;
    (tree.len() == records).then_some(Clean { tree, records, last_hash, segments: files.len() })
}

/// The result of a scoped thread; its panic goes on unwinding here.
fn join<T>(handle: ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The segment files of a data directory.
struct SegmentFiles {
    /// The segments directory.
    dir: PathBuf,
    /// The first sequence number, file name and length of each, in order.
    files: Vec<(u64, String, u64)>,
}

/// The segment files of data directory `dir` (their index files aside); `None` if any other
/// name is not a segment's.
fn segment_files(dir: &Path) -> Option<SegmentFiles> {
    let segments = dir.join(SEGMENTS_DIR);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&segments).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name().into_string().ok()?;
        if is_index_file(&name) {
            continue;
        }
        let len = entry.metadata().ok()?.len();
        files.push((parse_segment_name(&name)?, name, len));
    }
    files.sort();
    Some(SegmentFiles { dir: segments, files })
}

/// Takes the checked stretches back in order: checks the link into each and that its
/// resources' numbering goes on from the stretches before (`numbering`), appends it to
/// `tree` and hands the buffers back to the reader. Returns the tree and the last receipt's
/// hash, or `None` (after stopping the others and draining) if a stretch is not clean, a
/// link is broken or a resource's numbering is.
fn collect<T: TreeSink>(
    checked: &mpsc::Receiver<Checked>,
    spares: mpsc::Sender<Vec<u8>>,
    stop: &AtomicBool,
    mut tree: T,
    numbering: &mut Numbering,
) -> Option<(T, Digest)> {
    let mut spares = Some(spares);
    let mut waiting = BTreeMap::new();
    let mut next = 0u64;
    let mut last_hash = Digest::ZERO;
    let mut clean = true;
    // Ends when every worker is done, which is when the reader is.
    for stretch in checked {
        if !clean {
            continue;
        }
        waiting.insert(stretch.index, stretch);
        while let Some(stretch) = waiting.remove(&next) {
            next += 1;
            if let Some(spares) = &spares {
                // The reader may be done already.
                let _ = spares.send(stretch.bytes);
            }
            let Some(s) = stretch.clean.filter(|s| s.first_prev == last_hash) else {
                clean = false;
                break;
            };
            if !numbering.join(&s.numbers, s.bytes) {
                clean = false;
                break;
            }
            if !tree.append(s.leaves) {
                clean = false;
                break;
            }
            last_hash = s.last_hash;
        }
        if !clean {
            // The reader stops at its next stretch, or now if it waits for a buffer.
            stop.store(true, Ordering::Relaxed);
            spares = None;
        }
    }
    (clean && waiting.is_empty() && numbering.finish()).then_some((tree, last_hash))
}

/// Reads the segment files in order, a stretch at a time, finds the frames by their headers
/// (each whole, with its sequence number in place) and queues the stretches for the
/// workers. Returns the number of records, or `None` if a segment is out of place or
/// unreadable, a frame header is damaged or a frame is cut short (torn), or it was stopped.
fn read_stretches(
    segments_dir: &Path,
    files: &[(u64, String, u64)],
    stretches: &mpsc::SyncSender<Stretch>,
    spares: &mpsc::Receiver<Vec<u8>>,
    stop: &AtomicBool,
) -> Option<u64> {
    let mut allocated = 0;
    let mut new_buffer = || {
        if allocated < BUFFERS {
            allocated += 1;
            Some(vec![0u8; BUFFER_BYTES])
        } else {
            spares.recv().ok()
        }
    };
    let mut buf = new_buffer()?;
    let mut next = 0u64;
    let mut index = 0u64;
    for (i, (first, name, _)) in files.iter().enumerate() {
        if *first != next {
            return None;
        }
        let mut file = OpenOptions::new().read(true).open(segments_dir.join(name)).ok()?;
        let len = file.metadata().ok()?.len();
        if len > SEGMENT_BYTES_MAX || (len == 0 && i + 1 != files.len()) {
            return None;
        }
        let mut left = usize::try_from(len).ok()?;
        if left > 0 {
            // The segment header, whole and as expected (anything else: the reference path).
            let mut header = [0u8; SEGMENT_HEADER_LEN];
            file.read_exact(&mut header).ok()?;
            if header != segment_header(*first) {
                return None;
            }
            left -= SEGMENT_HEADER_LEN;
        }
        // Bytes at the start of `buf`: a frame begun in the stretch before.
        let mut carry = 0;
        while left > 0 {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let read = left.min(STRETCH_BYTES);
            let filled = carry + read;
            file.read_exact(buf.get_mut(carry..filled)?).ok()?;
            left -= read;
            let first_seq = next;
            let (starts, end) = find_frames(buf.get(..filled)?, &mut next)?;
            carry = filled - end;
            if left == 0 && carry != 0 {
                // The segment ends inside a frame.
                return None;
            }
            if starts.is_empty() {
                continue;
            }
            let mut spare = new_buffer()?;
            spare.get_mut(..carry)?.copy_from_slice(buf.get(end..filled)?);
            let bytes = std::mem::replace(&mut buf, spare);
            stretches.send(Stretch { index, first_seq, bytes, starts, end }).ok()?;
            index += 1;
        }
    }
    Some(next)
}

/// The starts of the whole frames at the beginning of `bytes` and where the last one ends,
/// checking each header's length bound and sequence number (`next`, advanced past each).
/// `None` if a header is damaged or a sequence number out of place.
fn find_frames(bytes: &[u8], next: &mut u64) -> Option<(Vec<u32>, usize)> {
    let mut starts = Vec::with_capacity(bytes.len() / FRAME_BYTES_MIN);
    let mut at = 0;
    while let Some(rest) = bytes.get(at..).filter(|rest| rest.len() >= FRAME_HEADER_LEN) {
        let (frame_len, seq) = peek_frame(rest)?;
        if frame_len > rest.len() {
            break;
        }
        if seq != *next {
            return None;
        }
        starts.push(u32::try_from(at).ok()?);
        *next += 1;
        at += frame_len;
    }
    Some((starts, at))
}

/// A worker: checks stretches until there are no more, sending each back.
fn check_stretches(
    stretches: &Mutex<mpsc::Receiver<Stretch>>,
    checked: &mpsc::Sender<Checked>,
    keys: &KeyHasher,
    stop: &AtomicBool,
) {
    loop {
        let Ok(Ok(stretch)) = stretches.lock().map(|queue| queue.recv()) else { return };
        let clean = if stop.load(Ordering::Relaxed) { None } else { check_stretch(&stretch, keys) };
        let Stretch { index, bytes, .. } = stretch;
        if checked.send(Checked { index, bytes, clean }).is_err() {
            return;
        }
    }
}

/// Checks every frame of a stretch (CRC32C) and every receipt in it (hash, sequence number,
/// id, and the link to the receipt before, except for the first; then its fields, decoded
/// as `Receipt::decode` would), and hashes the leaves and the Merkle nodes inside the
/// stretch. The numbering is not checked here: each receipt's key is hashed and kept with
/// its `resource_seq`, grouped by shard, for the collector to follow every resource's count
/// in order ([`Numbering::join`]). `None` at the first failure.
fn check_stretch(stretch: &Stretch, keys: &KeyHasher) -> Option<CleanStretch> {
    let ends = stretch.starts.iter().skip(1).map(|&s| s as usize).chain([stretch.end]);
    let mut frames = stretch.starts.iter().zip(ends).map(|(&start, end)| {
        stretch.bytes.get(start as usize..end).filter(|frame| frame_checksum_ok(frame))
    });
    let first = frames.next()??;
    let first_prev = ChainVerifier::record_prev_hash(first.get(FRAME_HEADER_LEN..)?)?;
    let mut chain =
        ChainVerifier::resume(Head { next_seq: stretch.first_seq, last_hash: first_prev });
    let mut leaves = Vec::with_capacity(stretch.starts.len());
    let mut numbers = Vec::with_capacity(stretch.starts.len());
    for frame in std::iter::once(Some(first)).chain(frames) {
        let record = frame?.get(FRAME_HEADER_LEN..)?;
        let hash = chain.push_record(record).ok()?;
        numbers.push(Numbering::numbered(keys, &Receipt::decode_key(record).ok()?));
        leaves.push(leaf_hash(&hash));
    }
    Some(CleanStretch {
        first_prev,
        last_hash: chain.head().last_hash,
        leaves: LeafStretch::new(stretch.first_seq, leaves),
        numbers: Grouped::new(&numbers),
        bytes: stretch.end as u64,
    })
}
