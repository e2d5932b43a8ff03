//! The complete subtrees a tree keeps, level by level, from a boundary on: what
//! [`MerkleTree`](super::MerkleTree) (boundary 0: every one) and
//! [`PartialTree`](super::PartialTree) (the leaves below the boundary archived) store, grow
//! and read their proofs from.
//!
//! Level `h` keeps the subtrees of `2^h` leaves from index `first(h) = ⌊B / 2^h⌋` rounded
//! down to even on: the one that straddles the boundary `B` or starts at it, those after it,
//! and, when bit `h` of `B` is set, the one just before it, which is the frontier's node of
//! that height (it ends at `B` with its bits below `h` cleared). Every subtree below it lies
//! wholly below `B` and is not a frontier node: it needs archived leaves. As `first(h)` is
//! even, a level's length is odd exactly when its last node waits for a right sibling, as
//! in a tree from 0, and `first(h + 1)` is `first(h) / 2` or the frontier node just before
//! it: one append routine serves both.

use std::convert::Infallible;

use govern_receipt::Digest;

use super::paths::{self, Subtrees};
use super::{LeafStretch, MerkleFrontier, node_hash};

/// The complete subtrees of a tree from a boundary on (module docs).
#[derive(Clone, Default)]
pub(super) struct Levels {
    /// The boundary `B`: the number of leaves whose hashes are not kept (0 for a full tree).
    base: u64,
    /// `levels[h][i]` is the root of the complete subtree of leaves
    /// `(first(h) + i)·2^h .. (first(h) + i + 1)·2^h`; `levels[0]` are the leaf hashes.
    pub(super) levels: Vec<Vec<Digest>>,
}

impl Levels {
    /// The subtrees of a tree whose first `frontier.len()` leaves are known by the frontier
    /// only: its nodes, one per set bit of the boundary, each at its height.
    pub(super) fn from_frontier(frontier: MerkleFrontier) -> Self {
        let MerkleFrontier { size: base, nodes } = frontier;
        let heights = (u64::BITS - base.leading_zeros()) as usize;
        let mut levels = vec![Vec::new(); heights];
        // Largest first: the set bits from the top.
        let set_bits = (0..heights).rev().filter(|&h| (base >> h) & 1 == 1);
        for (height, node) in set_bits.zip(nodes) {
            levels[height].push(node);
        }
        Self { base, levels }
    }

    /// The boundary `B`.
    pub(super) fn base(&self) -> u64 {
        self.base
    }

    /// The index of the first subtree level `height` keeps (module docs); 0 above the
    /// boundary's top bit.
    pub(super) fn first(&self, height: u32) -> u64 {
        self.base.checked_shr(height).unwrap_or(0) & !1
    }

    /// The number of leaves.
    pub(super) fn len(&self) -> u64 {
        self.first(0) + self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether level `height` keeps subtree `index` (at or after [`first`](Self::first); a
    /// subtree before it needs archived leaves).
    pub(super) fn keeps(&self, height: u32, index: u64) -> bool {
        index >= self.first(height)
    }

    /// The root of the tree as it is now. It folds the nodes of frontier(len), every one
    /// kept: each ends at or after `B` (as `len ≥ B`), or is a node of frontier(`B`).
    pub(super) fn root(&self) -> Digest {
        let Ok(root) = paths::range_hash(self, 0, self.len());
        root
    }

    /// Appends a leaf hash and returns its leaf index.
    pub(super) fn push_leaf_hash(&mut self, leaf_hash: Digest) -> u64 {
        let index = self.len();
        let mut node = leaf_hash;
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[height];
            level.push(node);
            // An odd count: the new node has no right sibling yet, so no new parent (the
            // level starts at an even index).
            if level.len() % 2 == 1 {
                return index;
            }
            node = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            height += 1;
        }
    }

    /// Appends a stretch of leaves whose inner nodes were hashed apart, hashing here only
    /// the nodes that straddle the stretch's start (at most one per level); `false`,
    /// appending nothing, if the stretch does not start at the tree's end.
    pub(super) fn append_stretch(&mut self, stretch: LeafStretch) -> bool {
        let LeafStretch { first, levels: inside } = stretch;
        if first != self.len() {
            return false;
        }
        let end = first + inside.first().map_or(0, |leaves| leaves.len() as u64);
        let mut inside = inside.into_iter();
        // Level h ends with node `end >> h`; the stretch holds those from `first` rounded up.
        for height in 0..u64::BITS {
            let target = end >> height;
            if target == 0 {
                break;
            }
            let (own_first, below_first) = (self.first(height), self.first(height.max(1) - 1));
            let height = height as usize;
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let own_from = first.div_ceil(1 << height).min(target);
            let (lower, upper) = self.levels.split_at_mut(height);
            let (Some(level), below) = (upper.first_mut(), lower.last()) else { break };
            while own_first + (level.len() as u64) < own_from {
                // A node over the end of the tree before and the start of the stretch; at
                // height 0 there is none (the stretch starts at the end).
                // Its children are kept: the level ends at or after `⌊B / 2^h⌋`, so they
                // start at or after `first(h - 1)`.
                let child = (2 * (own_first + level.len() as u64)).checked_sub(below_first);
                let Some(j) = child.and_then(|c| usize::try_from(c).ok()) else { break };
                let Some([left, right]) = below.and_then(|b| b.get(j..j + 2)) else { break };
                level.push(node_hash(left, right));
            }
            level.append(&mut inside.next().unwrap_or_default());
        }
        true
    }
}

/// Every subtree asked for is kept: what a full tree answers with, and a partial one for
/// what needs no archived leaf (its root). Asking for another is a bug, and panics on the
/// index as a full tree always has.
impl Subtrees for Levels {
    type Missing = Infallible;

    fn len(&self) -> u64 {
        Levels::len(self)
    }

    fn subtree(&self, height: u32, index: u64) -> Result<Digest, Infallible> {
        Ok(self.levels[height as usize][(index - self.first(height)) as usize])
    }
}
