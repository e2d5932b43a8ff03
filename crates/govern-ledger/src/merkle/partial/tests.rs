//! A partial tree against the full tree over the same leaves: every root, inclusion proof,
//! consistency proof and frontier it gives is the full tree's, and verifies; everything in
//! reach of the boundary (sizes, leaves and old sizes at or after it) is given; whatever else
//! is refused is refused as archived, never answered wrongly.

use govern_receipt::Digest;
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

use super::PartialTree;
use crate::merkle::{
    EMPTY_ROOT, LeafStretch, MerkleFrontier, MerkleTree, ProofError, leaf_hash, verify_consistency,
    verify_inclusion,
};

fn receipt(i: u64) -> Digest {
    Digest(Sha256::digest(i.to_be_bytes()).into())
}

/// The full tree over `receipts`, and the partial tree from the frontier at `base` plus the
/// receipts from `base` on.
fn trees(receipts: &[Digest], base: u64) -> (MerkleTree, PartialTree) {
    let mut full = MerkleTree::new();
    let mut frontier = MerkleFrontier::new();
    for (i, r) in receipts.iter().enumerate() {
        full.push(*r);
        if (i as u64) < base {
            frontier.push(r);
        }
    }
    let partial = PartialTree::with_receipts(frontier, receipts[base as usize..].iter().copied());
    (full, partial)
}

/// Checks `got`, the partial tree's answer, against `want`, the full tree's: the same
/// answer, or, out of the partial tree's reach (`reach` false), an archived refusal of a
/// well-formed subtree below the boundary. Returns whether it was answered.
fn agree<T>(
    got: &Result<T, ProofError>,
    want: &Result<T, ProofError>,
    reach: bool,
    base: u64,
) -> bool
where
    T: PartialEq + std::fmt::Debug,
{
    match *got {
        Err(ProofError::Archived { first, end, boundary }) if !reach => {
            let len = end.wrapping_sub(first);
            assert!(
                boundary == base
                    && first < end
                    && end <= base
                    && len.is_power_of_two()
                    && first % len == 0,
                "{got:?}"
            );
            false
        }
        _ => {
            assert_eq!(got, want);
            true
        }
    }
}

/// Whether the root at `size < base` needs only frontier nodes: `size` is `base` with its
/// low bits cleared, so its perfect subtrees are the frontier's first ones.
fn is_frontier_prefix(size: u64, base: u64) -> bool {
    (0..=u64::BITS).any(|bits| base.checked_shr(bits).unwrap_or(0).checked_shl(bits) == Some(size))
}

/// Every request of sizes up to `receipts.len() + 1` against both trees.
fn check(receipts: &[Digest], base: u64) {
    let n = receipts.len() as u64;
    let (full, partial) = trees(receipts, base);
    assert_eq!((partial.base(), partial.len()), (base, n));
    assert_eq!(partial.root(), full.root(), "n {n} base {base}");
    // Frontiers pushed leaf by leaf: frontiers[m] is frontier(m).
    let mut frontiers = vec![MerkleFrontier::new()];
    for r in receipts {
        let mut next = frontiers[frontiers.len() - 1].clone();
        next.push(r);
        frontiers.push(next);
    }
    for size in 0..=n + 1 {
        let got = partial.root_at(size);
        let answered = agree(&got, &full.root_at(size), size >= base, base);
        if size < base {
            assert_eq!(answered, is_frontier_prefix(size, base), "root_at({size}) base {base}");
        }
        let got = partial.frontier_at(size);
        let pushed = frontiers.get(size as usize).cloned();
        let want = pushed.ok_or(ProofError::SizeOutOfRange { size, len: n });
        agree(&got, &want, size >= base, base);
        if size > n {
            continue;
        }
        let Ok(root) = full.root_at(size) else { panic!("full root_at({size})") };
        for index in 0..=size {
            let got = partial.inclusion_proof(index, size);
            let answered = agree(&got, &full.inclusion_proof(index, size), index >= base, base);
            if let (true, Ok(proof)) = (index >= base, &got) {
                let leaf = leaf_hash(&receipts[index as usize]);
                assert_eq!(verify_inclusion(&leaf, index, size, proof, &root), Ok(()));
            }
            // From the boundary on, a leaf below it is provable only if it is a frontier
            // node of its own (the last one, of height 0): any other sits in a frontier node
            // with its sibling leaf, which the proof names.
            if index < base && size >= base {
                let own_node = base % 2 == 1 && index == base - 1;
                assert_eq!(answered, own_node, "inclusion_proof({index}, {size}) base {base}");
            }
        }
        for old in 0..=size + 1 {
            let got = partial.consistency_proof(old, size);
            agree(&got, &full.consistency_proof(old, size), old >= base, base);
            if let (true, Ok(proof)) = (old >= base && old <= size, &got) {
                let Ok(old_root) = full.root_at(old) else { panic!("full root_at({old})") };
                assert_eq!(verify_consistency(old, size, &old_root, &root, proof), Ok(()));
            }
        }
    }
}

#[test]
fn every_request_of_every_boundary_up_to_40_leaves() {
    let receipts: Vec<Digest> = (0..40).map(receipt).collect();
    for n in 0..=receipts.len() {
        for base in 0..=n as u64 {
            check(&receipts[..n], base);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_request_of_random_trees_up_to_300_leaves(
        receipts in prop::collection::vec(any::<[u8; 32]>(), 0..=300),
        base in any::<prop::sample::Index>(),
    ) {
        let receipts: Vec<Digest> = receipts.into_iter().map(Digest).collect();
        let base = base.index(receipts.len() + 1) as u64;
        check(&receipts, base);
    }
}

#[test]
fn boundary_zero_is_the_full_tree() {
    let receipts: Vec<Digest> = (0..100).map(receipt).collect();
    let (full, partial) = trees(&receipts, 0);
    let empty = PartialTree::from_frontier(MerkleFrontier::new());
    assert!(empty.is_empty());
    assert_eq!((empty.root(), empty.root_at(0)), (EMPTY_ROOT, Ok(EMPTY_ROOT)));
    assert_eq!(partial.nodes.levels, full.nodes.levels);
    for size in 0..=100 {
        for i in 0..size {
            assert_eq!(partial.inclusion_proof(i, size), full.inclusion_proof(i, size));
            assert_eq!(partial.consistency_proof(i, size), full.consistency_proof(i, size));
        }
    }
}

#[test]
fn archived_requests_name_the_subtree_and_the_archive() {
    let receipts: Vec<Digest> = (0..10).map(receipt).collect();
    // Boundary 6: the frontier keeps [0, 4) and [4, 6).
    let (_, partial) = trees(&receipts, 6);
    assert_eq!(partial.root_at(4).ok(), partial.frontier_at(4).ok().map(|f| f.root()));
    let archived = ProofError::Archived { first: 4, end: 5, boundary: 6 };
    assert_eq!(partial.root_at(5), Err(archived.clone()));
    assert_eq!(
        partial.inclusion_proof(4, 10),
        Err(ProofError::Archived { first: 5, end: 6, boundary: 6 })
    );
    // Top down, the first subtree missing is named: [8, 10) and [4, 8) are kept.
    assert_eq!(
        partial.inclusion_proof(0, 10),
        Err(ProofError::Archived { first: 2, end: 4, boundary: 6 })
    );
    assert!(archived.to_string().contains("leaves 4..5 are archived"), "{archived}");
    assert!(archived.to_string().contains("needs the archive"), "{archived}");
    // The other errors come first, as the full tree's.
    assert_eq!(partial.root_at(11), Err(ProofError::SizeOutOfRange { size: 11, len: 10 }));
    let huge = ProofError::SizeOutOfRange { size: u64::MAX, len: 10 };
    assert_eq!(partial.inclusion_proof(u64::MAX - 1, u64::MAX), Err(huge.clone()));
    assert_eq!(partial.consistency_proof(0, u64::MAX), Err(huge.clone()));
    assert_eq!(partial.frontier_at(u64::MAX), Err(huge));
    assert_eq!(
        partial.inclusion_proof(3, 3),
        Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
    );
    assert_eq!(
        partial.consistency_proof(5, 4),
        Err(ProofError::SizesOutOfOrder { old_size: 5, new_size: 4 })
    );
}

/// The partial tree built by stretches cut at `cuts` (offsets from the boundary).
fn by_stretches(receipts: &[Digest], base: u64, cuts: &[usize]) -> PartialTree {
    let mut frontier = MerkleFrontier::new();
    for r in &receipts[..base as usize] {
        frontier.push(r);
    }
    let mut tree = PartialTree::from_frontier(frontier);
    let live: Vec<Digest> = receipts[base as usize..].iter().map(leaf_hash).collect();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (live.len() + 1)).collect();
    cuts.push(live.len());
    cuts.sort_unstable();
    let mut at = 0;
    for cut in cuts {
        let stretch = LeafStretch::new(base + at as u64, live[at..cut].to_vec());
        assert!(tree.append_stretch(stretch), "stretch {at}..{cut} after base {base}");
        at = cut;
    }
    tree
}

proptest! {
    #[test]
    fn stretches_build_the_tree_pushes_build(
        n in 0usize..=300,
        base in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let receipts: Vec<Digest> = (0..n as u64).map(receipt).collect();
        let base = base.index(n + 1) as u64;
        let (full, pushed) = trees(&receipts, base);
        let stretched = by_stretches(&receipts, base, &cuts);
        prop_assert_eq!(&stretched.nodes.levels, &pushed.nodes.levels);
        prop_assert_eq!((stretched.len(), stretched.root()), (full.len(), full.root()));
    }
}

#[test]
fn a_stretch_elsewhere_than_the_end_is_refused() {
    let receipts: Vec<Digest> = (0..20).map(receipt).collect();
    let (_, mut partial) = trees(&receipts, 7);
    let before = partial.nodes.levels.clone();
    for first in [0, 7, 19, 21] {
        assert!(!partial.append_stretch(LeafStretch::new(first, vec![leaf_hash(&receipt(99))])));
    }
    assert_eq!(partial.nodes.levels, before);
}

#[test]
fn a_second_boundary_stacks_on_the_first() {
    // Archive [0, 37), then [37, 150) from the first partial tree's frontier: the second
    // partial tree answers as the full one from 150 on.
    let receipts: Vec<Digest> = (0..300).map(receipt).collect();
    let (full, first) = trees(&receipts, 37);
    let Ok(frontier) = first.frontier_at(150) else { panic!("frontier_at(150)") };
    assert_eq!(full.frontier_at(150), Ok(frontier.clone()));
    let second = PartialTree::with_receipts(frontier, receipts[150..].iter().copied());
    assert_eq!((second.base(), second.root()), (150, full.root()));
    for size in [151, 200, 256, 300] {
        assert_eq!(second.root_at(size), full.root_at(size));
        assert_eq!(second.consistency_proof(150, size), full.consistency_proof(150, size));
        assert_eq!(second.inclusion_proof(150, size), full.inclusion_proof(150, size));
        assert_eq!(second.inclusion_proof(size - 1, size), full.inclusion_proof(size - 1, size));
    }
    // Leaf 149 shares the frontier node [148, 150) with leaf 148: the first archive's.
    assert_eq!(
        second.inclusion_proof(149, 300),
        Err(ProofError::Archived { first: 148, end: 149, boundary: 150 })
    );
}
