//! Roots, inclusion and consistency proofs and frontiers read off a tree's stored complete
//! subtrees (RFC 6962 §2.1): the one routine of each that [`MerkleTree`](super::MerkleTree)
//! and [`PartialTree`](super::PartialTree) share, the latter refusing what needs a subtree it
//! does not keep.

use govern_receipt::Digest;

use super::{EMPTY_ROOT, MerkleFrontier, ProofError, node_hash};

/// A tree's complete subtrees, as the proofs read them.
pub(super) trait Subtrees {
    /// Why a subtree is not at hand ([`std::convert::Infallible`] for a tree that keeps
    /// every one).
    type Missing: Into<ProofError>;

    /// The number of leaves.
    fn len(&self) -> u64;

    /// The root of the complete subtree of height `height` and index `index` (leaves
    /// `index·2^h .. (index+1)·2^h`), which lies within the tree.
    fn subtree(&self, height: u32, index: u64) -> Result<Digest, Self::Missing>;
}

/// `MTH(D[lo:hi])` for a range that the RFC's recursion reaches: `lo` is a multiple of a
/// power of two at least `hi - lo` (and `hi` is within the tree). Such a range is its
/// complete subtrees, largest first, each aligned, so it is a right fold over stored nodes.
/// The empty range is the empty tree.
pub(super) fn range_hash<S: Subtrees>(tree: &S, lo: u64, hi: u64) -> Result<Digest, S::Missing> {
    let mut len = hi - lo;
    let mut end = hi;
    let mut acc: Option<Digest> = None;
    while len != 0 {
        let height = len.trailing_zeros();
        let start = end - (1 << height);
        let node = tree.subtree(height, start >> height)?;
        acc = Some(match acc {
            None => node,
            Some(right) => node_hash(&node, &right),
        });
        end = start;
        len &= len - 1;
    }
    Ok(acc.unwrap_or(EMPTY_ROOT))
}

/// [`range_hash`] with a missing subtree as a [`ProofError`].
fn hash<S: Subtrees>(tree: &S, lo: u64, hi: u64) -> Result<Digest, ProofError> {
    range_hash(tree, lo, hi).map_err(Into::into)
}

fn check_size<S: Subtrees>(tree: &S, size: u64) -> Result<(), ProofError> {
    let len = tree.len();
    if size > len {
        return Err(ProofError::SizeOutOfRange { size, len });
    }
    Ok(())
}

/// The root of the tree of the first `size` leaves.
pub(super) fn root_at<S: Subtrees>(tree: &S, size: u64) -> Result<Digest, ProofError> {
    check_size(tree, size)?;
    hash(tree, 0, size)
}

/// `PATH(index, D[0:size])` (RFC 6962 §2.1.1): sibling hashes from the leaf up to the root.
pub(super) fn inclusion_proof<S: Subtrees>(
    tree: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Digest>, ProofError> {
    check_size(tree, size)?;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk down from the root, recording the sibling of the side that holds the leaf; the
    // proof lists them from the leaf up.
    let mut proof = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let mid = lo + largest_power_of_two_below(hi - lo);
        if index < mid {
            proof.push(hash(tree, mid, hi)?);
            hi = mid;
        } else {
            proof.push(hash(tree, lo, mid)?);
            lo = mid;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// `PROOF(old_size, D[0:new_size])` (RFC 6962 §2.1.2); empty when `old_size` is 0 or equal
/// to `new_size`.
pub(super) fn consistency_proof<S: Subtrees>(
    tree: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Digest>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    check_size(tree, new_size)?;
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], whole), unrolled: `m` old leaves in `lo..hi`, and `whole` is the
    // RFC's `b`: the old tree's root is the subtree root the verifier already has. The
    // hashes recorded on the way down come last, innermost first.
    let (mut lo, mut hi, mut m, mut whole) = (0, new_size, old_size, true);
    let mut down = Vec::new();
    loop {
        let n = hi - lo;
        if m == n {
            let mut proof = Vec::with_capacity(down.len() + 1);
            if !whole {
                proof.push(hash(tree, lo, hi)?);
            }
            proof.extend(down.into_iter().rev());
            return Ok(proof);
        }
        let k = largest_power_of_two_below(n);
        if m <= k {
            down.push(hash(tree, lo + k, hi)?);
            hi = lo + k;
        } else {
            down.push(hash(tree, lo, lo + k)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
}

/// The frontier of the tree of the first `size` leaves: the roots of its perfect subtrees,
/// largest first.
pub(super) fn frontier_at<S: Subtrees>(tree: &S, size: u64) -> Result<MerkleFrontier, ProofError> {
    check_size(tree, size)?;
    let mut nodes = Vec::with_capacity(size.count_ones() as usize);
    for height in (0..u64::BITS).rev().filter(|&h| (size >> h) & 1 == 1) {
        nodes.push(tree.subtree(height, (size >> height) - 1).map_err(Into::into)?);
    }
    Ok(MerkleFrontier::from_parts(size, nodes))
}

/// The largest power of two strictly below `n`; `n` is at least 2.
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}
