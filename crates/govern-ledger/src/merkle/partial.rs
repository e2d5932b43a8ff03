//! A Merkle tree whose first leaves are archived (issue 15): [`PartialTree`], built from the
//! frontier at the archive's boundary `B` and the leaves from `B` on, answers as the full
//! [`MerkleTree`] would for everything that does not reach into the archive.
//!
//! **What it proves without the archive.** For every size `n ≥ B` it gives the root, the
//! frontier ([`PartialTree::frontier_at`]), the inclusion proof of every leaf `i ≥ B`, and
//! the consistency proof from every old size `m` with `B ≤ m ≤ n`: the same bytes as
//! [`MerkleTree`] with every leaf. Why: each hash those need is `MTH(D[lo:hi])` for a range
//! the RFC 6962 recursion reaches, a run of aligned complete subtrees, largest first. Those
//! that end after `B` are kept here (one that straddles `B` is hashed once, when complete,
//! from the frontier's nodes inside it and the leaves after it). Those that end at or before
//! `B` are siblings taken on the left on the way down to leaf `i ≥ B` (to the old tree's
//! edge `m ≥ B`; for `m = B` also the old tree's last subtree, which continues them):
//! consecutive from leaf 0, aligned, largest first, they tile `0..x` where `x` is the start
//! of a range reaching past `B` (or to it) and aligned to a power of two larger than
//! `B − x`. So `x` is `B` with its low bits cleared, and they are the first nodes of
//! frontier(`B`) (docs/plans/ledger-history.md §3(d)). The tests check the claim against
//! the full tree for every boundary, size, leaf and old size up to 40 leaves, and random
//! ones up to 300.
//!
//! **What needs the archive.** A proof for a leaf `i < B`, a root or frontier at a size
//! below `B`, or a consistency proof from `m < B` generally needs a subtree inside one of
//! the frontier's nodes, whose hash is not kept: such a request is refused with
//! [`ProofError::Archived`], naming the first such subtree. Some need frontier nodes only (the
//! root at a size whose perfect subtrees are the frontier's first ones, say) and are
//! answered; whatever is answered is exactly the full tree's answer.
//!
//! Memory and time are [`MerkleTree`]'s for the leaves from `B` on (about 64 bytes a leaf),
//! plus one digest per set bit of `B`; [`PartialTree::append_stretch`] takes the same
//! [`LeafStretch`]es, hashed on other threads, as [`MerkleTree::append_stretch`].

use std::fmt;

use govern_receipt::Digest;

use super::levels::Levels;
use super::paths::{self, Subtrees};
use super::{LeafStretch, MerkleFrontier, ProofError, leaf_hash};

#[cfg(doc)]
use super::MerkleTree;

/// An append-only RFC 6962 Merkle tree whose leaves below a boundary `B` are archived: it
/// keeps the frontier at `B` and every complete subtree that ends at or after `B` (module
/// docs: what it proves and what it refuses).
#[derive(Clone)]
pub struct PartialTree {
    /// The frontier's nodes and the complete subtrees from the boundary on.
    nodes: Levels,
}

impl fmt::Debug for PartialTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialTree")
            .field("base", &self.base())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The full tree, as a partial tree with boundary 0 (the same nodes, nothing copied).
impl From<super::MerkleTree> for PartialTree {
    fn from(tree: super::MerkleTree) -> Self {
        Self { nodes: tree.into_levels() }
    }
}

impl PartialTree {
    /// The tree of `frontier.len()` leaves known only by their frontier: the boundary `B`.
    /// From an empty frontier it is a full tree.
    #[must_use]
    pub fn from_frontier(frontier: MerkleFrontier) -> Self {
        Self { nodes: Levels::from_frontier(frontier) }
    }

    /// The tree from `frontier` on, with the receipts `receipt_hashes` appended in order (one
    /// thread; [`append_stretch`](Self::append_stretch) to hash on several).
    #[must_use]
    pub fn with_receipts(
        frontier: MerkleFrontier,
        receipt_hashes: impl IntoIterator<Item = Digest>,
    ) -> Self {
        let mut tree = Self::from_frontier(frontier);
        for receipt_hash in receipt_hashes {
            tree.push(receipt_hash);
        }
        tree
    }

    /// The boundary `B`: the leaves below it are archived.
    #[must_use]
    pub fn base(&self) -> u64 {
        self.nodes.base()
    }

    /// The number of leaves, archived ones included.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.nodes.len()
    }

    /// Whether the tree has no leaves (then it is a full tree).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a receipt (its leaf hash, [`leaf_hash`]) and returns its leaf index.
    pub fn push(&mut self, receipt_hash: Digest) -> u64 {
        self.push_leaf_hash(leaf_hash(&receipt_hash))
    }

    /// Appends a leaf whose leaf hash is already computed and returns its leaf index.
    pub fn push_leaf_hash(&mut self, leaf_hash: Digest) -> u64 {
        self.nodes.push_leaf_hash(leaf_hash)
    }

    /// Appends a stretch of leaves whose inner nodes were hashed apart ([`LeafStretch::new`],
    /// on any thread), as [`MerkleTree::append_stretch`] does: the same tree as after
    /// [`push_leaf_hash`](Self::push_leaf_hash) of each leaf in turn. Returns `false`,
    /// appending nothing, if the stretch does not start at the tree's end.
    #[must_use]
    pub fn append_stretch(&mut self, stretch: LeafStretch) -> bool {
        self.nodes.append_stretch(stretch)
    }

    /// The root of the tree as it is now.
    #[must_use]
    pub fn root(&self) -> Digest {
        self.nodes.root()
    }

    /// The root of the tree when it had its first `size` leaves.
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size` is larger than the tree;
    /// [`ProofError::Archived`] if the root needs archived leaves (only for some sizes below
    /// the boundary).
    pub fn root_at(&self, size: u64) -> Result<Digest, ProofError> {
        paths::root_at(self, size)
    }

    /// The inclusion proof (RFC 6962 §2.1.1 `PATH(index, D[0:size])`) of leaf `index` in the
    /// tree of the first `size` leaves, as [`MerkleTree::inclusion_proof`] gives it.
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size` is larger than the tree,
    /// [`ProofError::IndexOutOfRange`] if `index` is not below `size`,
    /// [`ProofError::Archived`] if the proof needs archived leaves (only for some leaves below
    /// the boundary, or sizes below it).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, ProofError> {
        paths::inclusion_proof(self, index, size)
    }

    /// The consistency proof (RFC 6962 §2.1.2 `PROOF(old_size, D[0:new_size])`), as
    /// [`MerkleTree::consistency_proof`] gives it.
    ///
    /// # Errors
    /// [`ProofError::SizesOutOfOrder`] if `old_size > new_size`,
    /// [`ProofError::SizeOutOfRange`] if `new_size` is larger than the tree,
    /// [`ProofError::Archived`] if the proof needs archived leaves (only for some old sizes
    /// below the boundary).
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Digest>, ProofError> {
        paths::consistency_proof(self, old_size, new_size)
    }

    /// The frontier of the tree of its first `size` leaves: for `size ≥ B`, what a second
    /// archive up to `size` starts the next partial tree from.
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size` is larger than the tree,
    /// [`ProofError::Archived`] if it needs archived leaves (only for some sizes below the
    /// boundary).
    pub fn frontier_at(&self, size: u64) -> Result<MerkleFrontier, ProofError> {
        paths::frontier_at(self, size)
    }
}

/// The kept subtrees, and [`ProofError::Archived`] for one wholly below the boundary that
/// is not a frontier node.
impl Subtrees for PartialTree {
    type Missing = ProofError;

    fn len(&self) -> u64 {
        self.nodes.len()
    }

    fn subtree(&self, height: u32, index: u64) -> Result<Digest, ProofError> {
        if !self.nodes.keeps(height, index) {
            return Err(ProofError::Archived {
                first: index << height,
                end: (index + 1) << height,
                boundary: self.base(),
            });
        }
        let Ok(node) = self.nodes.subtree(height, index);
        Ok(node)
    }
}

#[cfg(test)]
mod tests;
