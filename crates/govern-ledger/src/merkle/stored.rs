//! Proofs that read only what they need: the roots of each sealed segment's subtrees kept in
//! a small file per segment (`DATA_DIR/trees/NNNNNNNNNNNNNNNNNNNN.tree`, derived data), so that
//! an inclusion or consistency proof costs those files and the receipts of the one or two
//! segments it descends into, not every receipt of the ledger.
//!
//! A sealed segment holds leaves `[first, end)`; its **canonical subtrees** are the largest
//! aligned complete subtrees that tile that range, left to right (at most about 2·log₂ of its
//! receipts). Every complete subtree a proof asks for ([`Subtrees`]) either lies in one
//! segment — then it is one of that segment's canonical subtrees, or made of several of
//! them, or inside one (then that segment's receipts are read) — or spans segments and is
//! made of the halves below it. Subtrees below an archive boundary are the frontier's nodes
//! there, and nothing else is at hand ([`ProofError::Archived`]).
//!
//! # The file
//!
//! ```text
//! "govern.segtree" | u16 version (1) | u64 first | u64 end | u32 count
//! | count × (u8 height, u64 index, [32] root) | u32 CRC32C of every byte before it
//! ```
//!
//! Used only when every field checks (the count and each (height, index) are the canonical
//! subtrees of `[first, end)` of the segment it is named for). Nothing in it is trusted for a
//! proof's answer: a proof is made against a root, and a caller compares that root with a
//! signed checkpoint's (`govern prove` does); a wrong node gives a root that does not match.

use std::cell::RefCell;
use std::collections::BTreeMap;

use govern_receipt::Digest;

use super::paths::{self, Subtrees};
use super::{LeafStretch, MerkleFrontier, ProofError, ProofTree, leaf_hash, node_hash};

/// The folder of the tree files in a data directory.
pub const TREE_DIR: &str = "trees";

/// The magic bytes that open a tree file.
const MAGIC: &[u8; 14] = b"govern.segtree";

/// The tree file format version this build reads and writes.
const VERSION: u16 = 1;

/// Segments whose receipts a [`LazyTree`] keeps loaded at once (the one a proof descends
/// into, and the ledger's last).
const LOADED_MAX: usize = 4;

/// The tree file's name for the segment whose first record is `first`.
#[must_use]
pub fn tree_file_name(first: u64) -> String {
    format!("{first:020}.tree")
}

/// The canonical subtrees of leaves `[first, end)`: (height, index), left to right.
pub(crate) fn canonical(first: u64, end: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut pos = first;
    while pos < end {
        let fits = u64::BITS - 1 - (end - pos).leading_zeros();
        let height = pos.trailing_zeros().min(fits);
        out.push((height, pos >> height));
        pos += 1 << height;
    }
    out
}

/// The tree file of the segment of receipts `[first, first + receipt_hashes.len())`.
#[must_use]
pub fn encode_tree_file(first: u64, receipt_hashes: &[Digest]) -> Vec<u8> {
    let end = first + receipt_hashes.len() as u64;
    let stretch = LeafStretch::new(first, receipt_hashes.iter().map(leaf_hash).collect());
    let nodes = canonical(first, end);
    let mut out = Vec::with_capacity(36 + nodes.len() * 41 + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&end.to_be_bytes());
    out.extend_from_slice(&(nodes.len() as u32).to_be_bytes());
    for (height, index) in nodes {
        // Every canonical subtree lies inside the stretch.
        let root = stretch.node(height, index).unwrap_or(Digest::ZERO);
        out.push(height as u8);
        out.extend_from_slice(&index.to_be_bytes());
        out.extend_from_slice(root.as_bytes());
    }
    out.extend_from_slice(&crc32c::crc32c(&out).to_be_bytes());
    out
}

/// The canonical subtrees' roots a tree file holds for the segment `[first, end)`, in
/// order; `None` unless every field checks.
#[must_use]
pub fn decode_tree_file(bytes: &[u8], first: u64, end: u64) -> Option<Vec<Digest>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
        return None;
    }
    let rest = body.strip_prefix(MAGIC.as_slice())?;
    let (version, rest) = rest.split_at_checked(2)?;
    let (f, rest) = rest.split_at_checked(8)?;
    let (e, rest) = rest.split_at_checked(8)?;
    let (count, mut rest) = rest.split_at_checked(4)?;
    let be64 = |b: &[u8]| b.try_into().ok().map(u64::from_be_bytes);
    if u16::from_be_bytes(version.try_into().ok()?) != VERSION
        || be64(f)? != first
        || be64(e)? != end
    {
        return None;
    }
    let expected = canonical(first, end);
    if u32::from_be_bytes(count.try_into().ok()?) as usize != expected.len() {
        return None;
    }
    let mut roots = Vec::with_capacity(expected.len());
    for (height, index) in expected {
        let (entry, after) = rest.split_at_checked(41)?;
        let (h, i, root) = (entry[0], be64(&entry[1..9])?, &entry[9..41]);
        if u32::from(h) != height || i != index {
            return None;
        }
        roots.push(Digest(root.try_into().ok()?));
        rest = after;
    }
    rest.is_empty().then_some(roots)
}

/// Where a [`LazyTree`] reads a segment's receipt hashes when a proof descends into it.
pub trait ReceiptHashes {
    /// The hashes of receipts `[first, end)`, in order.
    ///
    /// # Errors
    /// Why they cannot be read.
    fn receipt_hashes(&self, first: u64, end: u64) -> Result<Vec<Digest>, String>;
}

/// A segment as a [`LazyTree`] sees it: its leaves and, when its tree file was valid, its
/// canonical subtrees' roots.
#[derive(Clone, Debug)]
pub struct TreeSegment {
    /// Its first leaf.
    pub first: u64,
    /// The leaf after its last (within the tree).
    pub end: u64,
    /// Its canonical subtrees' roots, in order ([`decode_tree_file`]), if known.
    pub roots: Option<Vec<Digest>>,
}

/// A Merkle tree of `size` leaves that holds only the frontier at an archive boundary (or
/// nothing, from leaf 0), the segments' canonical subtrees from their tree files, and the
/// receipts of the few segments a proof descends into, read when needed.
pub struct LazyTree {
    size: u64,
    base: MerkleFrontier,
    segments: Vec<TreeSegment>,
    hashes: Box<dyn ReceiptHashes>,
    loaded: RefCell<BTreeMap<usize, LeafStretch>>,
    /// Each segment's canonical subtrees ([`canonical`]), computed once.
    canonical: Vec<Vec<(u32, u64)>>,
    /// Nodes made of two halves (spanning segments, or the archive boundary), once made:
    /// consecutive proofs share most of them (an export proves thousands in a row).
    made: RefCell<BTreeMap<(u32, u64), Digest>>,
    /// Receipt hashes read so far, for a report.
    read: RefCell<u64>,
}

/// Nodes made of halves a [`LazyTree`] keeps (there are about as many as segments times the
/// tree's height; more are made again when asked).
const MADE_MAX: usize = 1 << 16;

impl std::fmt::Debug for LazyTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyTree").field("size", &self.size).finish_non_exhaustive()
    }
}

/// Why a segment's receipts could not be read, as a proof error.
#[derive(Debug)]
pub struct Unreadable(String);

impl From<Unreadable> for ProofError {
    fn from(e: Unreadable) -> Self {
        ProofError::Unreadable(e.0)
    }
}

impl LazyTree {
    /// The tree of the first `size` leaves: `base` the frontier at the archive boundary (empty
    /// without one), `segments` covering `[base.len(), size)` in order (the last cut at
    /// `size`), `hashes` where their receipts are read.
    ///
    /// # Errors
    /// [`ProofError::Unreadable`] when the segments do not tile `[base.len(), size)`.
    pub fn new(
        size: u64,
        base: MerkleFrontier,
        segments: Vec<TreeSegment>,
        hashes: Box<dyn ReceiptHashes>,
    ) -> Result<Self, ProofError> {
        let mut next = base.len();
        for s in &segments {
            if s.first != next || s.end <= s.first || s.end > size {
                return Err(ProofError::Unreadable(format!(
                    "segments do not tile the tree: one at {}..{}, expected from {next}",
                    s.first, s.end
                )));
            }
            next = s.end;
        }
        if next != size {
            return Err(ProofError::Unreadable(format!(
                "segments end at {next}, the tree at {size}"
            )));
        }
        let canonical = segments.iter().map(|s| canonical(s.first, s.end)).collect();
        Ok(Self {
            size,
            base,
            segments,
            hashes,
            loaded: RefCell::new(BTreeMap::new()),
            canonical,
            made: RefCell::new(BTreeMap::new()),
            read: RefCell::new(0),
        })
    }

    /// Receipt hashes read so far (the segments a proof descended into).
    #[must_use]
    pub fn receipts_read(&self) -> u64 {
        *self.read.borrow()
    }

    /// Segment `k`'s leaves as a stretch (its receipts read once, a few segments kept).
    fn stretch_node(&self, k: usize, height: u32, index: u64) -> Result<Digest, ProofError> {
        if let Some(node) = self.loaded.borrow().get(&k).and_then(|s| s.node(height, index)) {
            return Ok(node);
        }
        let seg =
            self.segments.get(k).ok_or_else(|| ProofError::Unreadable("no such segment".into()))?;
        let hashes = self.hashes.receipt_hashes(seg.first, seg.end).map_err(Unreadable)?;
        if hashes.len() as u64 != seg.end - seg.first {
            return Err(ProofError::Unreadable(format!(
                "{} receipt hashes read for {}..{}",
                hashes.len(),
                seg.first,
                seg.end
            )));
        }
        *self.read.borrow_mut() += hashes.len() as u64;
        let stretch = LeafStretch::new(seg.first, hashes.iter().map(leaf_hash).collect());
        let node = stretch.node(height, index);
        let mut loaded = self.loaded.borrow_mut();
        if loaded.len() >= LOADED_MAX
            && let Some(&evict) = loaded.keys().next()
        {
            loaded.remove(&evict);
        }
        loaded.insert(k, stretch);
        node.ok_or_else(|| {
            ProofError::Unreadable(format!("no subtree {height}/{index} in segment"))
        })
    }
}

/// Its proofs, read off the stored and loaded subtrees: what [`super::MerkleTree`] would
/// answer, [`ProofError::Archived`] below the archive boundary, [`ProofError::Unreadable`]
/// when a segment it needs cannot be read.
impl ProofTree for LazyTree {
    fn len(&self) -> u64 {
        self.size
    }

    fn root_at(&self, size: u64) -> Result<Digest, ProofError> {
        paths::root_at(self, size)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, ProofError> {
        paths::inclusion_proof(self, index, size)
    }

    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Digest>, ProofError> {
        paths::consistency_proof(self, old_size, new_size)
    }
}

impl Subtrees for LazyTree {
    type Missing = ProofError;

    fn len(&self) -> u64 {
        self.size
    }

    fn subtree(&self, height: u32, index: u64) -> Result<Digest, ProofError> {
        let (lo, hi) = (index << height, (index + 1) << height);
        let boundary = self.base.len();
        let halves = || -> Result<Digest, ProofError> {
            if let Some(node) = self.made.borrow().get(&(height, index)) {
                return Ok(*node);
            }
            let left = self.subtree(height - 1, 2 * index)?;
            let right = self.subtree(height - 1, 2 * index + 1)?;
            let node = node_hash(&left, &right);
            let mut made = self.made.borrow_mut();
            if made.len() < MADE_MAX {
                made.insert((height, index), node);
            }
            Ok(node)
        };
        if hi <= boundary {
            // Wholly archived: only the frontier's nodes are at hand.
            let mut start = 0u64;
            for (node, h) in self.base.nodes().iter().zip(frontier_heights(boundary)) {
                if (start, h) == (lo, height) {
                    return Ok(*node);
                }
                start += 1 << h;
            }
            return Err(ProofError::Archived { first: lo, end: hi, boundary });
        }
        if lo < boundary {
            return halves();
        }
        let k = self.segments.partition_point(|s| s.first <= lo).saturating_sub(1);
        let Some(seg) = self.segments.get(k) else {
            return Err(ProofError::Unreadable(format!("no segment holds leaf {lo}")));
        };
        if hi > seg.end {
            // Spans segments: height >= 1.
            return halves();
        }
        if let Some(roots) = &seg.roots {
            let nodes = self.canonical.get(k).map_or(&[][..], Vec::as_slice);
            if let Some(at) = nodes.iter().position(|&n| n == (height, index)) {
                return roots
                    .get(at)
                    .copied()
                    .ok_or_else(|| ProofError::Unreadable("tree file".into()));
            }
            let inside = nodes.iter().any(|&(h, i)| h > height && index >> (h - height) == i);
            if !inside && height > 0 {
                return halves();
            }
        }
        self.stretch_node(k, height, index)
    }
}

/// The heights of the frontier's nodes at `size`, largest first (one per set bit).
fn frontier_heights(size: u64) -> impl Iterator<Item = u32> {
    (0..u64::BITS).rev().filter(move |h| size >> h & 1 == 1)
}

#[cfg(test)]
mod tests;
