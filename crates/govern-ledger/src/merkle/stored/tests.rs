//! A lazy tree from tree files and a few segments' receipts answers as the whole tree.

use govern_receipt::Digest;
use proptest::prelude::*;

use super::{LazyTree, ReceiptHashes, TreeSegment, canonical, decode_tree_file, encode_tree_file};
use crate::merkle::{MerkleTree, ProofError, ProofTree as _};

fn receipt(i: u64) -> Digest {
    crate::merkle::leaf_hash_bytes(&i.to_be_bytes())
}

/// Receipt hashes from a list, counting what is read.
struct Hashes(Vec<Digest>);

impl ReceiptHashes for Hashes {
    fn receipt_hashes(&self, first: u64, end: u64) -> Result<Vec<Digest>, String> {
        self.0.get(first as usize..end as usize).map(<[Digest]>::to_vec).ok_or_else(|| "out".into())
    }
}

/// A lazy tree over `n` receipts cut into segments at `cuts`, from the frontier at segment
/// start `base_at` (an index into the segments' starts), with tree files for the segments
/// `with_files` says.
fn lazy(n: u64, cuts: &[u64], base_at: usize, with_files: &[bool]) -> (LazyTree, MerkleTree, u64) {
    let all: Vec<Digest> = (0..n).map(receipt).collect();
    let mut full = MerkleTree::new();
    for h in &all {
        full.push(*h);
    }
    let mut starts: Vec<u64> = cuts.iter().copied().filter(|&c| c > 0 && c < n).collect();
    starts.sort_unstable();
    starts.dedup();
    starts.insert(0, 0);
    let base = starts.get(base_at.min(starts.len() - 1)).copied().unwrap_or(0);
    let frontier = full.frontier_at(base).unwrap();
    let mut segments = Vec::new();
    for (k, &first) in starts.iter().enumerate().filter(|&(_, &f)| f >= base) {
        let end = starts.get(k + 1).copied().unwrap_or(n);
        let file = with_files.get(k).copied().unwrap_or(false);
        let roots = file.then(|| {
            let bytes = encode_tree_file(first, &all[first as usize..end as usize]);
            decode_tree_file(&bytes, first, end).expect("decodes")
        });
        segments.push(TreeSegment { first, end, roots });
    }
    (LazyTree::new(n, frontier, segments, Box::new(Hashes(all))).unwrap(), full, base)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn a_lazy_tree_answers_as_the_whole_tree_from_the_boundary_on(
        n in 1u64..300,
        cuts in proptest::collection::vec(0u64..300, 0..12),
        base_at in 0usize..6,
        with_files in proptest::collection::vec(any::<bool>(), 13),
    ) {
        let (tree, full, base) = lazy(n, &cuts, base_at, &with_files);
        for size in base.max(1)..=n {
            prop_assert_eq!(tree.root_at(size).unwrap(), full.root_at(size).unwrap());
            for index in (base..size).step_by(7) {
                prop_assert_eq!(
                    tree.inclusion_proof(index, size).unwrap(),
                    full.inclusion_proof(index, size).unwrap()
                );
            }
            prop_assert_eq!(
                tree.consistency_proof(base.max(1), size).unwrap(),
                full.consistency_proof(base.max(1), size).unwrap()
            );
        }
    }
}

#[test]
fn with_tree_files_a_proof_reads_only_the_segment_it_descends_into() {
    // 100 segments of 64 receipts, all with tree files.
    let n = 6_400;
    let cuts: Vec<u64> = (1..100).map(|k| k * 64).collect();
    let (tree, full, _) = lazy(n, &cuts, 0, &[true; 100]);
    assert_eq!(tree.root_at(n).unwrap(), full.root_at(n).unwrap());
    assert_eq!(tree.receipts_read(), 0, "a root from the tree files alone");
    assert_eq!(tree.inclusion_proof(4_321, n).unwrap(), full.inclusion_proof(4_321, n).unwrap());
    assert_eq!(tree.receipts_read(), 64, "one segment read");
}

#[test]
fn below_the_boundary_only_frontier_nodes_are_at_hand() {
    let cuts: Vec<u64> = (1..10).map(|k| k * 10).collect();
    let (tree, _, base) = lazy(100, &cuts, 3, &[true; 10]);
    assert_eq!(base, 30);
    assert!(matches!(tree.inclusion_proof(5, 100), Err(ProofError::Archived { .. })));
}

#[test]
fn a_tree_file_is_used_only_when_every_field_checks() {
    let hashes: Vec<Digest> = (0..37).map(receipt).collect();
    let bytes = encode_tree_file(100, &hashes);
    assert_eq!(
        decode_tree_file(&bytes, 100, 137).map(|r| r.len()),
        Some(canonical(100, 137).len())
    );
    assert!(decode_tree_file(&bytes, 101, 137).is_none(), "another segment's");
    assert!(decode_tree_file(&bytes, 100, 138).is_none(), "another length");
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 1;
        assert!(decode_tree_file(&damaged, 100, 137).is_none(), "byte {at}");
    }
    for cut in 0..bytes.len() {
        assert!(decode_tree_file(&bytes[..cut], 100, 137).is_none(), "cut at {cut}");
    }
}
