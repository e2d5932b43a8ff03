//! RFC 6962 Merkle tree: published test vectors, every proof of every small tree against a
//! reference implementation, and every kind of tampering caught.

use govern_receipt::Digest;
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

use super::{
    EMPTY_ROOT, MerkleFrontier, MerkleTree, ProofError, leaf_hash, leaf_hash_bytes, node_hash,
    node_hash_bytes, verify_consistency, verify_inclusion,
};

fn d(hex: &str) -> Digest {
    hex.parse().unwrap()
}

fn ds(hexes: &[&str]) -> Vec<Digest> {
    hexes.iter().map(|h| d(h)).collect()
}

// ---------------------------------------------------------------------------------------------
// Published vectors. Copied, not computed here.
// ---------------------------------------------------------------------------------------------

// transparency-dev/merkle, testonly/constants.go: LeafInputs(), EmptyRootHash(),
// NodeHashes() and RootHashes(). The same inputs and roots are kInputs,
// kSHA256EmptyTreeHash and kSHA256Roots in google/certificate-transparency,
// cpp/merkletree/merkle_tree_test.cc.

/// `LeafInputs()`: the data of the eight leaves, in hex.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `EmptyRootHash()`.
const EMPTY_TREE_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `NodeHashes()`: `[level][index]`, the complete subtrees of the eight-leaf tree; level 0 is
/// the leaf hashes.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `RootHashes()[1..]`: the roots of the trees of the first 1 to 8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `(leaf index, tree size, proof)`. From transparency-dev/merkle, proof/verify_test.go
/// (`inclusionProofs`, whose leaf numbers count from 1; here from 0) and
/// testonly/reference_test.go (`TestRefInclusionProof`, from 0); the same paths are
/// `kSHA256Paths` in google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc.
const INCLUSION_PROOFS: [(u64, u64, &[&str]); 7] = [
    (0, 1, &[]),
    (0, 2, &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// `(old size, new size, proof)`. From transparency-dev/merkle, proof/verify_test.go
/// (`consistencyProofs`) and testonly/reference_test.go (`TestRefConsistencyProof`); all but
/// `(6, 7)` are also `kSHA256Proofs` in google/certificate-transparency,
/// cpp/merkletree/merkle_tree_test.cc.
const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// A node of the eight-leaf tree: `(level, index)` into [`NODE_HASHES`].
type NodeId = (usize, usize);

/// `(leaf index, tree size, proof as node ids)`. From
/// transparency-dev/merkle, proof/proof_test.go (`TestInclusion`): the cases within the
/// eight-leaf tree whose proofs are stored nodes only (the others need a node rehashed).
const INCLUSION_NODE_IDS: [(u64, u64, &[NodeId]); 11] = [
    (0, 1, &[]),
    (0, 2, &[(0, 1)]),
    (1, 2, &[(0, 0)]),
    (1, 3, &[(0, 0), (0, 2)]),
    (4, 7, &[(0, 5), (0, 6), (2, 0)]),
    (5, 7, &[(0, 4), (0, 6), (2, 0)]),
    (6, 7, &[(1, 2), (2, 0)]),
    (2, 4, &[(0, 3), (1, 0)]),
    (3, 5, &[(0, 2), (1, 0), (0, 4)]),
    (3, 6, &[(0, 2), (1, 0), (1, 2)]),
    (4, 6, &[(0, 5), (2, 0)]),
];

/// `(old size, new size, proof as node ids)`. From transparency-dev/merkle,
/// proof/proof_test.go (`TestConsistency`), chosen as for [`INCLUSION_NODE_IDS`].
const CONSISTENCY_NODE_IDS: [(u64, u64, &[NodeId]); 19] = [
    (1, 2, &[(0, 1)]),
    (1, 4, &[(0, 1), (1, 1)]),
    (1, 6, &[(0, 1), (1, 1), (1, 2)]),
    (2, 3, &[(0, 2)]),
    (2, 8, &[(1, 1), (2, 1)]),
    (5, 7, &[(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, &[(1, 2), (0, 6), (2, 0)]),
    (7, 8, &[(0, 6), (0, 7), (1, 2), (2, 0)]),
    (1, 1, &[]),
    (2, 2, &[]),
    (3, 3, &[]),
    (4, 4, &[]),
    (5, 5, &[]),
    (7, 7, &[]),
    (8, 8, &[]),
    (2, 4, &[(1, 1)]),
    (3, 5, &[(0, 2), (0, 3), (1, 0), (0, 4)]),
    (3, 6, &[(0, 2), (0, 3), (1, 0), (1, 2)]),
    (4, 6, &[(1, 2)]),
];

/// The eight-leaf tree of the published vectors.
fn published_tree() -> MerkleTree {
    let mut tree = MerkleTree::new();
    for input in LEAF_INPUTS {
        tree.push_leaf_hash(leaf_hash_bytes(&hex::decode(input).unwrap()));
    }
    tree
}

fn published_root(size: u64) -> Digest {
    if size == 0 { d(EMPTY_TREE_ROOT) } else { d(ROOTS[size as usize - 1]) }
}

fn published_leaf(index: u64) -> Digest {
    d(NODE_HASHES[0][index as usize])
}

fn node_ids(ids: &[NodeId]) -> Vec<Digest> {
    ids.iter().map(|&(level, index)| d(NODE_HASHES[level][index])).collect()
}

#[test]
fn hasher_vectors() {
    // transparency-dev/merkle, rfc6962/rfc6962_test.go (TestRFC6962Hasher).
    assert_eq!(EMPTY_ROOT, d("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_eq!(EMPTY_ROOT, Digest(Sha256::digest(b"").into()));
    assert_eq!(
        leaf_hash_bytes(b""),
        d("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        leaf_hash_bytes(b"L123456"),
        d("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
    assert_eq!(
        node_hash_bytes(b"N123", b"N456"),
        d("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
    );
}

#[test]
fn a_receipt_leaf_is_its_hash_as_leaf_data() {
    let receipt = Digest(Sha256::digest(b"a receipt").into());
    assert_eq!(leaf_hash(&receipt), leaf_hash_bytes(receipt.as_bytes()));
    let mut tree = MerkleTree::new();
    assert_eq!(tree.push(receipt), 0);
    assert_eq!(tree.root(), leaf_hash(&receipt));
    assert_eq!(tree.push(receipt), 1);
    assert_eq!(tree.root(), node_hash(&leaf_hash(&receipt), &leaf_hash(&receipt)));
}

#[test]
fn published_roots_and_nodes() {
    let tree = published_tree();
    for (level, hashes) in NODE_HASHES.iter().enumerate() {
        assert_eq!(tree.nodes.levels[level], ds(hashes), "level {level}");
    }
    assert_eq!(tree.nodes.levels.len(), NODE_HASHES.len());
    for size in 0..=8 {
        assert_eq!(tree.root_at(size), Ok(published_root(size)), "size {size}");
    }
    assert_eq!(tree.root(), published_root(8));

    // Leaf by leaf: every intermediate tree has its published root.
    let mut growing = MerkleTree::new();
    assert_eq!(growing.root(), published_root(0));
    for (i, input) in LEAF_INPUTS.iter().enumerate() {
        let index = growing.push_leaf_hash(leaf_hash_bytes(&hex::decode(input).unwrap()));
        assert_eq!(index, i as u64);
        assert_eq!(growing.len(), i as u64 + 1);
        assert_eq!(growing.root(), published_root(i as u64 + 1));
        for size in 0..=growing.len() {
            assert_eq!(growing.root_at(size), Ok(published_root(size)));
        }
    }
}

#[test]
fn published_inclusion_proofs() {
    let tree = published_tree();
    let cases = INCLUSION_PROOFS
        .iter()
        .map(|(i, n, p)| (*i, *n, ds(p)))
        .chain(INCLUSION_NODE_IDS.iter().map(|(i, n, ids)| (*i, *n, node_ids(ids))));
    for (index, size, proof) in cases {
        assert_eq!(tree.inclusion_proof(index, size), Ok(proof.clone()), "{index} in {size}");
        let leaf = published_leaf(index);
        let root = published_root(size);
        assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
    }
}

#[test]
fn published_consistency_proofs() {
    let tree = published_tree();
    let cases = CONSISTENCY_PROOFS
        .iter()
        .map(|(m, n, p)| (*m, *n, ds(p)))
        .chain(CONSISTENCY_NODE_IDS.iter().map(|(m, n, ids)| (*m, *n, node_ids(ids))));
    for (old, new, proof) in cases {
        assert_eq!(tree.consistency_proof(old, new), Ok(proof.clone()), "{old} to {new}");
        let (old_root, new_root) = (published_root(old), published_root(new));
        assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));
    }
}

#[test]
fn published_proofs_refuse_the_published_probes() {
    // The corruptions of transparency-dev/merkle proof/verify_test.go (corruptInclusionProof,
    // corruptConsistencyProof), on its published proofs. Hashes of other lengths than 32
    // ("WrongLeaf", empty garbage) do not type-check here; a zero digest stands in for them.
    let some_hash = d("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size, proof) in INCLUSION_PROOFS {
        let proof = ds(proof);
        let (leaf, root) = (published_leaf(index), published_root(size));
        let mut probes = vec![
            (index.wrapping_sub(1), size, root, leaf, proof.clone()),
            (index + 1, size, root, leaf, proof.clone()),
            (index ^ 2, size, root, leaf, proof.clone()),
            (index, size * 2, root, leaf, proof.clone()),
            (index, size / 2, root, leaf, proof.clone()),
            (index, size, root, Digest::ZERO, proof.clone()),
            (index, size, EMPTY_ROOT, leaf, proof.clone()),
            (index, size, some_hash, leaf, proof.clone()),
            (index, size, root, leaf, [proof.clone(), vec![Digest::ZERO]].concat()),
            (index, size, root, leaf, [proof.clone(), vec![root]].concat()),
            (index, size, root, leaf, [vec![Digest::ZERO], proof.clone()].concat()),
            (index, size, root, leaf, [vec![root], proof.clone()].concat()),
        ];
        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k].0[0] ^= 8;
            probes.push((index, size, root, leaf, bad));
        }
        if let Some((_, rest)) = proof.split_last() {
            probes.push((index, size, root, leaf, rest.to_vec()));
        }
        if proof.len() > 1 {
            let inserted = [&[proof[0], some_hash][..], &proof[1..]].concat();
            probes.push((index, size, root, leaf, inserted));
        }
        for (i, n, r, l, p) in probes {
            assert!(verify_inclusion(&l, i, n, &p, &r).is_err(), "{i} in {n}: {p:?}");
        }
    }
    for (old, new, proof) in CONSISTENCY_PROOFS {
        if proof.is_empty() {
            continue;
        }
        let proof = ds(proof);
        let (r1, r2) = (published_root(old), published_root(new));
        let mut probes = vec![
            (old - 1, new, r1, r2, proof.clone()),
            (old + 1, new, r1, r2, proof.clone()),
            (old ^ 2, new, r1, r2, proof.clone()),
            (old, new * 2, r1, r2, proof.clone()),
            (old, new / 2, r1, r2, proof.clone()),
            (old, new, Digest::ZERO, r2, proof.clone()),
            (old, new, r1, Digest::ZERO, proof.clone()),
            (old, new, r2, r1, proof.clone()),
            (old, new, r1, r2, vec![]),
            (old, new, r1, r2, [proof.clone(), vec![Digest::ZERO]].concat()),
            (old, new, r1, r2, [proof.clone(), vec![r1]].concat()),
            (old, new, r1, r2, [proof.clone(), vec![r2]].concat()),
            (old, new, r1, r2, [vec![Digest::ZERO], proof.clone()].concat()),
            (old, new, r1, r2, [vec![r1], proof.clone()].concat()),
            (old, new, r1, r2, [vec![r2], proof.clone()].concat()),
            (old, new, r1, r2, [vec![proof[0]], proof.clone()].concat()),
            (old, new, r1, r2, proof[..proof.len() - 1].to_vec()),
        ];
        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k].0[0] ^= 16;
            probes.push((old, new, r1, r2, bad));
        }
        for (m, n, a, b, p) in probes {
            assert!(verify_consistency(m, n, &a, &b, &p).is_err(), "{m} to {n}: {p:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A reference: RFC 6962 §2.1 as written (MTH, PATH, PROOF/SUBPROOF), recursive over slices.
// ---------------------------------------------------------------------------------------------

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn ref_root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&ref_root(&leaves[..k]), &ref_root(&leaves[k..]))
        }
    }
}

fn ref_path(m: usize, leaves: &[Digest]) -> Vec<Digest> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = split(n);
    if m < k {
        [ref_path(m, &leaves[..k]), vec![ref_root(&leaves[k..])]].concat()
    } else {
        [ref_path(m - k, &leaves[k..]), vec![ref_root(&leaves[..k])]].concat()
    }
}

fn ref_proof(m: usize, leaves: &[Digest]) -> Vec<Digest> {
    if m == 0 || m == leaves.len() { vec![] } else { ref_subproof(m, leaves, true) }
}

fn ref_subproof(m: usize, leaves: &[Digest], b: bool) -> Vec<Digest> {
    let n = leaves.len();
    if m == n {
        return if b { vec![] } else { vec![ref_root(leaves)] };
    }
    let k = split(n);
    if m <= k {
        [ref_subproof(m, &leaves[..k], b), vec![ref_root(&leaves[k..])]].concat()
    } else {
        [ref_subproof(m - k, &leaves[k..], false), vec![ref_root(&leaves[..k])]].concat()
    }
}

// ---------------------------------------------------------------------------------------------
// Every proof of every small tree, and tampering.
// ---------------------------------------------------------------------------------------------

/// A tree over some receipts, with the leaf hashes and the roots of every size.
struct Fixture {
    leaves: Vec<Digest>,
    tree: MerkleTree,
    /// `roots[s]`: the root of the tree of the first `s` leaves, by the reference.
    roots: Vec<Digest>,
}

impl Fixture {
    fn new(receipts: &[Digest]) -> Self {
        let mut tree = MerkleTree::new();
        for r in receipts {
            tree.push(*r);
        }
        let leaves: Vec<Digest> = receipts.iter().map(leaf_hash).collect();
        let roots = (0..=leaves.len()).map(|s| ref_root(&leaves[..s])).collect();
        Self { leaves, tree, roots }
    }

    fn max(&self) -> u64 {
        self.leaves.len() as u64
    }

    fn root(&self, size: u64) -> Digest {
        self.roots[size as usize]
    }
}

fn flip(x: &Digest, bit: usize) -> Digest {
    let mut bytes = x.0;
    bytes[bit / 8 % 32] ^= 1 << (bit % 8);
    Digest(bytes)
}

fn with(proof: &[Digest], before: &[Digest], after: &[Digest]) -> Vec<Digest> {
    [before, proof, after].concat()
}

fn is_wrong_length(r: Result<(), ProofError>) -> bool {
    matches!(r, Err(ProofError::WrongProofLength { .. }))
}

fn is_root_mismatch(r: Result<(), ProofError>) -> bool {
    matches!(r, Err(ProofError::RootMismatch { .. }))
}

/// Leaf `i` in the tree of `n`: the proof is the reference's and verifies, and nothing
/// changed verifies. `bits` are the bits to flip in each hash.
fn check_inclusion(f: &Fixture, i: u64, n: u64, bits: &[usize]) {
    let proof = f.tree.inclusion_proof(i, n).unwrap();
    assert_eq!(proof, ref_path(i as usize, &f.leaves[..n as usize]), "{i} in {n}");
    let (leaf, root) = (f.leaves[i as usize], f.root(n));
    assert_eq!(verify_inclusion(&leaf, i, n, &proof, &root), Ok(()), "{i} in {n}");

    for k in 0..proof.len() {
        for &bit in bits {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], bit);
            assert!(is_root_mismatch(verify_inclusion(&leaf, i, n, &bad, &root)), "{i} {n} {k}");
        }
    }
    let other_indexes = [i.wrapping_sub(1), i + 1, i ^ 1, i ^ 2, 0, n / 2, n - 1, n];
    for j in other_indexes.into_iter().filter(|&j| j != i) {
        assert!(verify_inclusion(&leaf, j, n, &proof, &root).is_err(), "{i} as {j} in {n}");
    }
    // Another size, with that tree's root where the fixture has it, or with the original root
    // for the probes of the published tests (n * 2, n / 2): a size whose path to leaf `i` has
    // the same shape verifies with the original root (the proof of 0 in 5 is also one of 0
    // in 6 with that root); a root is only ever trusted together with its size.
    for s in [n - 1, n + 1, n ^ 1, n ^ 2, n * 2, n / 2, f.max()] {
        if s != n && s <= f.max() {
            assert!(verify_inclusion(&leaf, i, s, &proof, &f.root(s)).is_err(), "{i} {n} {s}");
        }
    }
    for s in [n * 2, n / 2] {
        assert!(verify_inclusion(&leaf, i, s, &proof, &root).is_err(), "{i} {n} as {s}");
    }
    if let Some((_, rest)) = proof.split_last() {
        assert!(is_wrong_length(verify_inclusion(&leaf, i, n, rest, &root)));
    }
    for extra in [root, leaf, Digest::ZERO] {
        let longer = [with(&proof, &[], &[extra]), with(&proof, &[extra], &[])];
        for p in longer {
            assert!(is_wrong_length(verify_inclusion(&leaf, i, n, &p, &root)), "{i} in {n}");
        }
    }
    for &bit in bits {
        assert!(is_root_mismatch(verify_inclusion(&leaf, i, n, &proof, &flip(&root, bit))));
        assert!(is_root_mismatch(verify_inclusion(&flip(&leaf, bit), i, n, &proof, &root)));
    }
    assert!(verify_inclusion(&leaf, i, n, &proof, &EMPTY_ROOT).is_err());
}

/// The trees of `m` and `n` leaves: the proof is the reference's and verifies, and nothing
/// changed verifies.
fn check_consistency(f: &Fixture, m: u64, n: u64, bits: &[usize]) {
    let proof = f.tree.consistency_proof(m, n).unwrap();
    assert_eq!(proof, ref_proof(m as usize, &f.leaves[..n as usize]), "{m} to {n}");
    let (r1, r2) = (f.root(m), f.root(n));
    assert_eq!(verify_consistency(m, n, &r1, &r2, &proof), Ok(()), "{m} to {n}");

    if m == 0 || m == n {
        assert!(proof.is_empty());
        for extra in [r1, r2, Digest::ZERO] {
            assert!(is_wrong_length(verify_consistency(m, n, &r1, &r2, &[extra])));
        }
        for &bit in bits {
            assert!(verify_consistency(m, n, &flip(&r1, bit), &r2, &[]).is_err(), "{m} {n}");
            if m == n {
                assert!(is_root_mismatch(verify_consistency(m, n, &r1, &flip(&r2, bit), &[])));
            }
        }
        return;
    }

    for k in 0..proof.len() {
        for &bit in bits {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], bit);
            assert!(verify_consistency(m, n, &r1, &r2, &bad).is_err(), "{m} {n} {k} {bit}");
        }
    }
    // Another size, with that tree's root where the fixture has it. With the original roots
    // only the probes of the published tests (m - 1, m + 1, m ^ 2, n * 2, n / 2): a size with
    // the same proof shape verifies with the original roots (the proof of 1 to 3 is also one
    // of 1 to 4 with those roots); a root is only ever trusted together with its size.
    for s in [0, 1, m - 1, m + 1, m ^ 1, m ^ 2, m * 2, n / 2, n] {
        if s != m && s <= f.max() {
            assert!(verify_consistency(s, n, &f.root(s), &r2, &proof).is_err(), "{m}>{s}, {n}");
        }
    }
    for s in [m, n - 1, n + 1, n ^ 1, n ^ 2, n * 2, n / 2, f.max()] {
        if s != n && s >= m && s <= f.max() {
            assert!(verify_consistency(m, s, &r1, &f.root(s), &proof).is_err(), "{m}, {n}>{s}");
        }
    }
    for (s1, s2) in [(m - 1, n), (m + 1, n), (m ^ 2, n), (m, n * 2), (m, n / 2)] {
        assert!(verify_consistency(s1, s2, &r1, &r2, &proof).is_err(), "{m} {n} as {s1} {s2}");
    }
    assert!(verify_consistency(m, n, &r2, &r1, &proof).is_err(), "swapped roots");
    for &bit in bits {
        assert!(verify_consistency(m, n, &flip(&r1, bit), &r2, &proof).is_err());
        assert!(is_root_mismatch(verify_consistency(m, n, &r1, &flip(&r2, bit), &proof)));
    }
    assert!(is_wrong_length(verify_consistency(m, n, &r1, &r2, &[])));
    assert!(is_wrong_length(verify_consistency(m, n, &r1, &r2, &proof[..proof.len() - 1])));
    for extra in [r1, r2, proof[0], proof[proof.len() - 1], Digest::ZERO] {
        let longer = [with(&proof, &[], &[extra]), with(&proof, &[extra], &[])];
        for p in longer {
            assert!(is_wrong_length(verify_consistency(m, n, &r1, &r2, &p)), "{m} to {n}");
        }
    }
}

/// Every root, every inclusion proof and every consistency proof of every tree up to the
/// receipts' count, each checked against the reference and verified; with `tamper`, each also
/// changed in every way of [`check_inclusion`] and [`check_consistency`], flipping one bit of
/// each hash (a different bit from one proof to the next).
fn check_all(receipts: &[Digest], tamper: bool) {
    let f = Fixture::new(receipts);
    assert_eq!(f.tree.len(), f.max());
    for n in 0..=f.max() {
        // root_at(n) is the root of a tree built from the first n receipts alone.
        let mut fresh = MerkleTree::new();
        for r in &receipts[..n as usize] {
            fresh.push(*r);
        }
        assert_eq!(f.tree.root_at(n), Ok(fresh.root()), "size {n}");
        assert_eq!(fresh.root(), f.root(n), "size {n}");
        for i in 0..n {
            if tamper {
                check_inclusion(&f, i, n, &[(i * 37 + n * 11) as usize % 256]);
            } else {
                let proof = f.tree.inclusion_proof(i, n).unwrap();
                assert_eq!(proof, ref_path(i as usize, &f.leaves[..n as usize]), "{i} in {n}");
                let leaf = f.leaves[i as usize];
                assert_eq!(verify_inclusion(&leaf, i, n, &proof, &f.root(n)), Ok(()));
            }
        }
        for m in 0..=n {
            if tamper {
                check_consistency(&f, m, n, &[(m * 41 + n * 13) as usize % 256]);
            } else {
                let proof = f.tree.consistency_proof(m, n).unwrap();
                assert_eq!(proof, ref_proof(m as usize, &f.leaves[..n as usize]), "{m} to {n}");
                let (r1, r2) = (f.root(m), f.root(n));
                assert_eq!(verify_consistency(m, n, &r1, &r2, &proof), Ok(()));
            }
        }
    }
    assert_eq!(f.tree.root(), f.root(f.max()));
}

fn receipt(i: u64) -> Digest {
    Digest(Sha256::digest(i.to_be_bytes()).into())
}

#[test]
fn every_proof_of_every_tree_up_to_64_leaves_and_every_change_fails() {
    let receipts: Vec<Digest> = (0..64).map(receipt).collect();
    check_all(&receipts, true);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2))]

    #[test]
    fn every_proof_of_random_trees_up_to_64_leaves(
        receipts in prop::collection::vec(any::<[u8; 32]>(), 64),
    ) {
        let receipts: Vec<Digest> = receipts.into_iter().map(Digest).collect();
        check_all(&receipts, false);
    }
}

proptest! {
    #[test]
    fn random_proofs_of_random_trees_refuse_every_change(
        receipts in prop::collection::vec(any::<[u8; 32]>(), 1..=64),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        bits in prop::collection::vec(0usize..256, 1..4),
    ) {
        let receipts: Vec<Digest> = receipts.into_iter().map(Digest).collect();
        let f = Fixture::new(&receipts);
        let n = b.index(receipts.len()) as u64 + 1;
        check_inclusion(&f, a.index(n as usize) as u64, n, &bits);
        check_consistency(&f, a.index(n as usize + 1) as u64, n, &bits);
    }
}

#[test]
fn a_root_is_trusted_with_its_size_only() {
    // The examples in check_inclusion and check_consistency: a proof also verifies for a
    // size of the same shape when given the original root(s).
    let f = Fixture::new(&(0..6).map(receipt).collect::<Vec<_>>());
    let proof = f.tree.inclusion_proof(0, 5).unwrap();
    assert_eq!(verify_inclusion(&f.leaves[0], 0, 6, &proof, &f.root(5)), Ok(()));
    assert!(verify_inclusion(&f.leaves[0], 0, 6, &proof, &f.root(6)).is_err());
    let proof = f.tree.consistency_proof(1, 3).unwrap();
    assert_eq!(verify_consistency(1, 4, &f.root(1), &f.root(3), &proof), Ok(()));
    assert!(verify_consistency(1, 4, &f.root(1), &f.root(4), &proof).is_err());
}

// ---------------------------------------------------------------------------------------------
// Larger trees, edges and errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_larger_tree_agrees_with_the_reference() {
    let mut tree = MerkleTree::new();
    for i in 0..1025 {
        tree.push(receipt(i));
    }
    let leaves: Vec<Digest> = (0..1025).map(|i| leaf_hash(&receipt(i))).collect();
    let sizes = [1, 2, 3, 255, 256, 257, 511, 512, 513, 700, 1023, 1024, 1025];
    let roots: Vec<Digest> = sizes.iter().map(|&n| ref_root(&leaves[..n as usize])).collect();
    for (&n, root) in sizes.iter().zip(&roots) {
        assert_eq!(tree.root_at(n), Ok(*root), "size {n}");
        for i in [0, 1, n / 3, n / 2, n.saturating_sub(2), n - 1].into_iter().filter(|&i| i < n) {
            let proof = tree.inclusion_proof(i, n).unwrap();
            assert_eq!(proof, ref_path(i as usize, &leaves[..n as usize]));
            assert_eq!(verify_inclusion(&leaves[i as usize], i, n, &proof, root), Ok(()));
        }
        for (&m, old_root) in sizes.iter().zip(&roots).filter(|&(&m, _)| m <= n) {
            let proof = tree.consistency_proof(m, n).unwrap();
            assert_eq!(proof, ref_proof(m as usize, &leaves[..n as usize]));
            assert_eq!(verify_consistency(m, n, old_root, root, &proof), Ok(()));
        }
    }
}

#[test]
fn the_empty_tree() {
    let tree = MerkleTree::new();
    assert!(tree.is_empty());
    assert_eq!(tree.len(), 0);
    assert_eq!(tree.root(), EMPTY_ROOT);
    assert_eq!(tree.root_at(0), Ok(EMPTY_ROOT));
    assert_eq!(tree.root_at(1), Err(ProofError::SizeOutOfRange { size: 1, len: 0 }));
    assert_eq!(tree.inclusion_proof(0, 0), Err(ProofError::IndexOutOfRange { index: 0, size: 0 }));
    assert_eq!(tree.consistency_proof(0, 0), Ok(vec![]));
    assert_eq!(format!("{tree:?}"), "MerkleTree { len: 0, .. }");
}

#[test]
fn tree_errors() {
    let mut tree = MerkleTree::new();
    for i in 0..3 {
        assert_eq!(tree.push(receipt(i)), i);
    }
    assert!(!tree.is_empty());
    assert_eq!(tree.root_at(4), Err(ProofError::SizeOutOfRange { size: 4, len: 3 }));
    assert_eq!(tree.inclusion_proof(3, 3), Err(ProofError::IndexOutOfRange { index: 3, size: 3 }));
    assert_eq!(tree.inclusion_proof(0, 4), Err(ProofError::SizeOutOfRange { size: 4, len: 3 }));
    assert_eq!(
        tree.consistency_proof(2, 1),
        Err(ProofError::SizesOutOfOrder { old_size: 2, new_size: 1 })
    );
    assert_eq!(tree.consistency_proof(1, 4), Err(ProofError::SizeOutOfRange { size: 4, len: 3 }));
    assert_eq!(tree.consistency_proof(0, 3), Ok(vec![]));
    assert_eq!(tree.consistency_proof(3, 3), Ok(vec![]));
}

#[test]
fn verification_edges() {
    let (a, b) = (receipt(1), receipt(2));
    assert_eq!(
        verify_inclusion(&a, 0, 0, &[], &a),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_inclusion(&a, 0, 1, &[], &b),
        Err(ProofError::RootMismatch { expected: b, computed: a })
    );
    assert_eq!(
        verify_inclusion(&a, 0, 1, &[b], &a),
        Err(ProofError::WrongProofLength { expected: 0, found: 1 })
    );
    assert_eq!(
        verify_consistency(2, 1, &a, &b, &[]),
        Err(ProofError::SizesOutOfOrder { old_size: 2, new_size: 1 })
    );
    // The empty tree is extended by every tree, and its root is the empty root.
    assert_eq!(verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 5, &EMPTY_ROOT, &a, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 5, &a, &b, &[]),
        Err(ProofError::OldRootMismatch { expected: a, computed: EMPTY_ROOT })
    );
    assert_eq!(
        verify_consistency(0, 0, &EMPTY_ROOT, &a, &[]),
        Err(ProofError::RootMismatch { expected: a, computed: EMPTY_ROOT })
    );
    assert_eq!(
        verify_consistency(0, 5, &EMPTY_ROOT, &a, &[a]),
        Err(ProofError::WrongProofLength { expected: 0, found: 1 })
    );
    // A tree extends itself only.
    assert_eq!(verify_consistency(3, 3, &a, &a, &[]), Ok(()));
    assert_eq!(
        verify_consistency(3, 3, &a, &b, &[]),
        Err(ProofError::RootMismatch { expected: b, computed: a })
    );
    assert_eq!(
        verify_consistency(1, 2, &a, &b, &[]),
        Err(ProofError::WrongProofLength { expected: 1, found: 0 })
    );
}

#[test]
fn huge_sizes_do_not_overflow() {
    let a = receipt(1);
    let max = u64::MAX;
    assert!(is_wrong_length(verify_inclusion(&a, max - 1, max, &[], &a)));
    assert!(is_wrong_length(verify_inclusion(&a, 0, max, &[a; 3], &a)));
    assert!(is_wrong_length(verify_consistency(1, max, &a, &a, &[])));
    assert!(is_wrong_length(verify_consistency(max - 1, max, &a, &a, &[a])));
    let full = vec![a; 64];
    assert!(is_root_mismatch(verify_inclusion(&a, 0, max, &full, &a)));
}

#[test]
fn the_frontier_gives_the_trees_root_at_every_size() {
    let mut tree = MerkleTree::new();
    let mut frontier = MerkleFrontier::new();
    assert_eq!(frontier.root(), EMPTY_ROOT);
    for i in 0u32..300 {
        let h = Digest(Sha256::digest(i.to_be_bytes()).into());
        tree.push(h);
        frontier.push(&h);
        assert_eq!((frontier.len(), frontier.root()), (tree.len(), tree.root()), "size {}", i + 1);
        assert_eq!(frontier.nodes.len(), frontier.len().count_ones() as usize);
    }
}
