//! RFC 6962 Merkle trees over receipt hashes: roots, inclusion proofs, consistency proofs.
//!
//! The hashing is RFC 6962 §2.1 with SHA-256: a leaf hash is `SHA-256(0x00 ‖ data)`, an inner
//! node is `SHA-256(0x01 ‖ left ‖ right)`, the tree of `n > 1` leaves splits after the first
//! `k` leaves where `k` is the largest power of two smaller than `n`, and the empty tree's root
//! is `SHA-256("")`. A ledger's leaf data is the 32-byte receipt hash ([`leaf_hash`]); the
//! prefixes keep leaves, nodes and receipt preimages (which start with the `govern.receipt`
//! tag) apart.
//!
//! [`MerkleTree`] builds the tree and answers for any earlier size too: roots, inclusion
//! proofs and consistency proofs. [`verify_inclusion`] and [`verify_consistency`] check proofs
//! without the tree, with the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

mod levels;
mod partial;
mod paths;
mod stored;

use std::convert::Infallible;
use std::fmt;

use govern_receipt::Digest;
use sha2::{Digest as _, Sha256};

use levels::Levels;
pub use partial::PartialTree;
pub use stored::{
    LazyTree, ReceiptHashes, TREE_DIR, TreeSegment, decode_tree_file, encode_tree_file,
    tree_file_name,
};

/// The prefix of a leaf hash's preimage (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// The prefix of an inner node hash's preimage (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Digest = Digest([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// The leaf hash of a receipt: `SHA-256(0x00 ‖ receipt hash)`.
#[must_use]
pub fn leaf_hash(receipt_hash: &Digest) -> Digest {
    // One padded block, compressed directly: the same hash as `leaf_hash_bytes`, without
    // the streaming hasher's buffering (a fifth faster; every receipt takes one).
    let mut block = [0u8; 64];
    block[0] = LEAF_PREFIX;
    block[1..33].copy_from_slice(receipt_hash.as_bytes());
    pad(&mut block, 33);
    sha256_of_padded(&[block])
}

/// The initial SHA-256 state (FIPS 180-4 §5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// SHA-256 padding (FIPS 180-4 §5.1.1) of a message of `len` bytes already at the start of
/// `blocks` (zeros after it), which are exactly as many as the padded message needs.
fn pad(blocks: &mut [u8], len: usize) {
    blocks[len] = 0x80;
    let end = blocks.len();
    blocks[end - 8..].copy_from_slice(&((len as u64) * 8).to_be_bytes());
}

/// The SHA-256 of a message already padded into `blocks`.
fn sha256_of_padded(blocks: &[[u8; 64]]) -> Digest {
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, blocks);
    let mut out = [0u8; 32];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    Digest(out)
}

/// The leaf hash of arbitrary leaf data: `SHA-256(0x00 ‖ data)`.
#[must_use]
pub fn leaf_hash_bytes(data: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    Digest(h.finalize().into())
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
#[must_use]
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    // Two padded blocks, compressed directly: the same hash as `node_hash_bytes`.
    let mut blocks = [[0u8; 64]; 2];
    let flat = blocks.as_flattened_mut();
    flat[0] = NODE_PREFIX;
    flat[1..33].copy_from_slice(left.as_bytes());
    flat[33..65].copy_from_slice(right.as_bytes());
    pad(flat, 65);
    sha256_of_padded(&blocks)
}

/// [`node_hash`] over children of any length (RFC 6962 does not fix it; the test vectors
/// use short ones), by the streaming hasher: what [`node_hash`] is checked against.
#[cfg(test)]
fn node_hash_bytes(left: &[u8], right: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    Digest(h.finalize().into())
}

/// Why a proof could not be made or does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The tree size is larger than the tree.
    #[error("tree size {size} is out of range: the tree has {len} leaves")]
    SizeOutOfRange {
        /// The tree size asked for.
        size: u64,
        /// The number of leaves in the tree.
        len: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder {
        /// The old size.
        old_size: u64,
        /// The new size.
        new_size: u64,
    },
    /// The proof does not have the number of hashes its sizes call for.
    #[error("wrong proof length: expected {expected} hashes, found {found}")]
    WrongProofLength {
        /// The number of hashes the sizes (and leaf index) call for.
        expected: usize,
        /// The number of hashes in the proof.
        found: usize,
    },
    /// The proof leads to another root than the one given (for a consistency proof: another
    /// new root).
    #[error("root mismatch: expected {expected}, the proof gives {computed}")]
    RootMismatch {
        /// The root given.
        expected: Digest,
        /// The root the proof leads to.
        computed: Digest,
    },
    /// A consistency proof leads to another old root than the one given.
    #[error("old root mismatch: expected {expected}, the proof gives {computed}")]
    OldRootMismatch {
        /// The old root given.
        expected: Digest,
        /// The old root the proof leads to.
        computed: Digest,
    },
    /// A [`PartialTree`] was asked for a root, proof or frontier that needs the hash of
    /// leaves it no longer has: below its boundary and inside no node of the frontier it
    /// keeps there. The archive of those leaves can answer.
    #[error(
        "leaves {first}..{end} are archived (below the boundary {boundary}): this needs the archive"
    )]
    Archived {
        /// The first leaf of the complete subtree that was needed.
        first: u64,
        /// The end (exclusive) of that subtree's leaves, at most `boundary`.
        end: u64,
        /// The partial tree's boundary: its leaves below it are archived.
        boundary: u64,
    },
    /// A lazily read tree ([`LazyTree`]) could not read the receipts a proof needs.
    #[error("the receipts this needs could not be read: {0}")]
    Unreadable(String),
}

/// What proofs are made from: a whole tree ([`MerkleTree`]), one from an archive boundary
/// ([`PartialTree`]) or one read lazily from a data directory ([`LazyTree`]).
pub trait ProofTree {
    /// The number of leaves.
    fn len(&self) -> u64;
    /// Whether it has none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The root of the first `size` leaves.
    ///
    /// # Errors
    /// [`ProofError`] when `size` is out of range or the tree cannot answer.
    fn root_at(&self, size: u64) -> Result<Digest, ProofError>;
    /// Leaf `index`'s inclusion proof in the tree of `size` leaves.
    ///
    /// # Errors
    /// As [`Self::root_at`].
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, ProofError>;
    /// The consistency proof from `old_size` leaves to `new_size`.
    ///
    /// # Errors
    /// As [`Self::root_at`].
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Digest>, ProofError>;
}

macro_rules! proof_tree {
    ($($ty:ty),+) => {$(
        impl ProofTree for $ty {
            fn len(&self) -> u64 {
                <$ty>::len(self)
            }
            fn root_at(&self, size: u64) -> Result<Digest, ProofError> {
                <$ty>::root_at(self, size)
            }
            fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, ProofError> {
                <$ty>::inclusion_proof(self, index, size)
            }
            fn consistency_proof(
                &self,
                old_size: u64,
                new_size: u64,
            ) -> Result<Vec<Digest>, ProofError> {
                <$ty>::consistency_proof(self, old_size, new_size)
            }
        }
    )+};
}

proof_tree!(MerkleTree, PartialTree);

/// A full tree never misses a subtree: this lets it share its proofs' code with a
/// [`PartialTree`], which may.
impl From<Infallible> for ProofError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

/// The right edge of an append-only RFC 6962 tree: the roots of its perfect subtrees,
/// largest first (one per set bit of the size). It appends and gives the root in O(log n)
/// memory, without the leaves: what a running ledger keeps to sign checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleFrontier {
    /// The number of leaves.
    size: u64,
    /// The roots of the perfect subtrees, largest (leftmost) first.
    nodes: Vec<Digest>,
}

impl MerkleFrontier {
    /// The empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.size
    }

    /// The frontier of a tree of `size` leaves whose perfect subtrees have roots `nodes`,
    /// largest first (one per set bit of `size`; the caller checks that, as a snapshot's
    /// reader does).
    pub(crate) fn from_parts(size: u64, nodes: Vec<Digest>) -> Self {
        debug_assert_eq!(nodes.len(), size.count_ones() as usize);
        Self { size, nodes }
    }

    /// The roots of the perfect subtrees, largest first.
    #[must_use]
    pub fn nodes(&self) -> &[Digest] {
        &self.nodes
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends a receipt (its leaf hash, [`leaf_hash`]).
    pub fn push(&mut self, receipt_hash: &Digest) {
        self.push_leaf_hash(leaf_hash(receipt_hash));
    }

    /// Appends a leaf whose leaf hash is already computed.
    pub fn push_leaf_hash(&mut self, leaf_hash: Digest) {
        let mut node = leaf_hash;
        let mut size = self.size;
        // Each trailing one bit of the size is a perfect subtree the new node completes.
        while size & 1 == 1 {
            if let Some(left) = self.nodes.pop() {
                node = node_hash(&left, &node);
            }
            size >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// Appends the root of a perfect subtree of `2^height` leaves. The size must be a
    /// multiple of `2^height` (then every subtree kept is at least as high).
    fn push_subtree(&mut self, height: u32, root: Digest) {
        let mut node = root;
        let mut size = self.size >> height;
        while size & 1 == 1 {
            if let Some(left) = self.nodes.pop() {
                node = node_hash(&left, &node);
            }
            size >>= 1;
        }
        self.nodes.push(node);
        self.size += 1 << height;
    }

    /// Appends the first `len` leaves of `stretch` (all of them: [`LeafStretch::len`]), taking
    /// the nodes of the complete subtrees inside it as they are: the same frontier as after
    /// [`push_leaf_hash`](Self::push_leaf_hash) of each leaf in turn, hashing only the nodes
    /// that straddle the stretch's start. Returns `false`, appending nothing, if the stretch
    /// does not start at the tree's end or has fewer than `len` leaves.
    #[must_use]
    pub fn append_stretch_prefix(&mut self, stretch: &LeafStretch, len: u64) -> bool {
        if stretch.first != self.size || len > stretch.len() {
            return false;
        }
        let end = self.size + len;
        // The largest aligned perfect subtrees that tile `size..end`, left to right.
        while self.size < end {
            let pos = self.size;
            let fits = u64::BITS - 1 - (end - pos).leading_zeros();
            let height = pos.trailing_zeros().min(fits);
            let Some(node) = stretch.node(height, pos >> height) else { return false };
            self.push_subtree(height, node);
        }
        true
    }

    /// The root of the tree.
    #[must_use]
    pub fn root(&self) -> Digest {
        let mut right_to_left = self.nodes.iter().rev();
        match right_to_left.next() {
            None => EMPTY_ROOT,
            Some(&last) => right_to_left.fold(last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// A stretch of consecutive leaves with the nodes of every complete subtree that lies inside
/// it, hashed apart from the tree, on any thread, then appended in order with
/// [`MerkleTree::append_stretch`]: how a whole ledger's tree is built on several cores (the
/// subtrees of different stretches are independent; only the few nodes that straddle two
/// stretches wait for both). [`PartialTree::append_stretch`] takes them the same way.
#[derive(Clone, Debug)]
pub struct LeafStretch {
    /// The index of its first leaf in the tree.
    first: u64,
    /// `levels[h]` are the nodes of height `h` inside the stretch, in order: those whose
    /// leaves all lie in it. `levels[0]` are its leaf hashes.
    levels: Vec<Vec<Digest>>,
}

impl LeafStretch {
    /// The stretch of `leaf_hashes` starting at leaf index `first`, with its inner nodes
    /// hashed.
    #[must_use]
    pub fn new(first: u64, leaf_hashes: Vec<Digest>) -> Self {
        let end = first.saturating_add(leaf_hashes.len() as u64);
        let mut levels = vec![leaf_hashes];
        // Nodes of height h inside the stretch: ceil(first / 2^h) .. floor(end / 2^h). The
        // children of the first one start at the first or second node inside, below.
        for height in 1..u64::BITS {
            let (from, to) = (first.div_ceil(1 << height), end >> height);
            if from >= to {
                break;
            }
            let below_from = first.div_ceil(1 << (height - 1));
            let skip = usize::from(2 * from > below_from);
            let Some(below) = levels.last() else { break };
            let above: Vec<Digest> = below
                .get(skip..)
                .unwrap_or_default()
                .chunks_exact(2)
                .take(usize::try_from(to - from).unwrap_or(usize::MAX))
                .filter_map(|pair| match pair {
                    [left, right] => Some(node_hash(left, right)),
                    _ => None,
                })
                .collect();
            levels.push(above);
        }
        Self { first, levels }
    }

    /// The number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the stretch has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of its first leaf in the tree.
    #[must_use]
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The root of the complete subtree of height `height` and index `index` in the tree
    /// (leaves `index·2^h .. (index+1)·2^h`), if it lies inside the stretch.
    fn node(&self, height: u32, index: u64) -> Option<Digest> {
        let from = self.first.div_ceil(1u64.checked_shl(height)?);
        let at = usize::try_from(index.checked_sub(from)?).ok()?;
        self.levels.get(height as usize)?.get(at).copied()
    }
}

/// An append-only RFC 6962 Merkle tree that keeps every complete subtree, so that roots and
/// proofs for the current size or any earlier one take no pass over the leaves.
///
/// Memory: level 0 holds the `n` leaf hashes, level `h` the `⌊n / 2^h⌋` hashes of the
/// complete subtrees of `2^h` leaves, so about `2n` digests in all: 64 bytes per leaf (a
/// million receipts take about 64 MB), plus the growth slack of the level vectors (up to as
/// much again just after a vector grows).
///
/// Time: [`push`](Self::push) is O(1) amortised (O(log n) at worst); [`root_at`](Self::root_at)
/// hashes O(log n) times; a proof takes O(log² n) hashes at worst and none per leaf.
#[derive(Clone, Default)]
pub struct MerkleTree {
    /// Every complete subtree (the levels from boundary 0).
    nodes: Levels,
}

impl MerkleTree {
    /// Its nodes (for [`PartialTree`]'s `From`).
    fn into_levels(self) -> Levels {
        self.nodes
    }
}

impl fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleTree").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl MerkleTree {
    /// The empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.nodes.len()
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a receipt (its leaf hash, [`leaf_hash`]) and returns its leaf index.
    pub fn push(&mut self, receipt_hash: Digest) -> u64 {
        self.push_leaf_hash(leaf_hash(&receipt_hash))
    }

    /// Appends a leaf whose leaf hash is already computed (for leaf data other than a receipt
    /// hash: [`leaf_hash_bytes`]) and returns its leaf index.
    pub fn push_leaf_hash(&mut self, leaf_hash: Digest) -> u64 {
        self.nodes.push_leaf_hash(leaf_hash)
    }

    /// Appends a stretch of leaves whose inner nodes were hashed apart ([`LeafStretch::new`],
    /// on any thread), hashing here only the nodes that straddle the stretch's start (at most
    /// one per level). The tree is the same as after [`push_leaf_hash`](Self::push_leaf_hash)
    /// of each leaf in turn. Returns `false`, appending nothing, if the stretch does not
    /// start at the tree's end.
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
    /// [`ProofError::SizeOutOfRange`] if `size` is larger than the tree.
    pub fn root_at(&self, size: u64) -> Result<Digest, ProofError> {
        paths::root_at(&self.nodes, size)
    }

    /// The inclusion proof (RFC 6962 §2.1.1 `PATH(index, D[0:size])`) of leaf `index` in the
    /// tree of the first `size` leaves: sibling hashes from the leaf up to the root.
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size` is larger than the tree,
    /// [`ProofError::IndexOutOfRange`] if `index` is not below `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, ProofError> {
        paths::inclusion_proof(&self.nodes, index, size)
    }

    /// The consistency proof (RFC 6962 §2.1.2 `PROOF(old_size, D[0:new_size])`) that the tree
    /// of the first `new_size` leaves extends the tree of the first `old_size` leaves. It is
    /// empty when `old_size` is 0 or equal to `new_size`.
    ///
    /// # Errors
    /// [`ProofError::SizesOutOfOrder`] if `old_size > new_size`,
    /// [`ProofError::SizeOutOfRange`] if `new_size` is larger than the tree.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Digest>, ProofError> {
        paths::consistency_proof(&self.nodes, old_size, new_size)
    }

    /// The frontier of the tree of its first `size` leaves (what a [`PartialTree`] starts
    /// from once those leaves are archived).
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size` is larger than the tree.
    pub fn frontier_at(&self, size: u64) -> Result<MerkleFrontier, ProofError> {
        paths::frontier_at(&self.nodes, size)
    }
}

/// Whether `x` is odd: RFC 9162's "LSB(x) is set".
fn lsb(x: u64) -> bool {
    x & 1 == 1
}

/// Checks an inclusion proof with RFC 9162 §2.1.3.2: that `proof` leads from `leaf_hash`, at
/// `index` in a tree of `size` leaves, to `root`.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] if `index` is not below `size`;
/// [`ProofError::WrongProofLength`] if the proof is not as long as `index` and `size` call
/// for; [`ProofError::RootMismatch`] if it leads elsewhere.
pub fn verify_inclusion(
    leaf_hash: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    // 1. leaf_index >= tree_size fails.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // The algorithm fails a proof of the wrong length in 4a and 5; checking first names it.
    let expected = inclusion_proof_len(index, size);
    let wrong_length = || ProofError::WrongProofLength { expected, found: proof.len() };
    if proof.len() != expected {
        return Err(wrong_length());
    }
    // 2. fn = leaf_index, sn = tree_size - 1.
    let (mut fn_, mut sn) = (index, size - 1);
    // 3. r = hash.
    let mut r = *leaf_hash;
    // 4. For each p in the inclusion path:
    for p in proof {
        // a. sn == 0: fail.
        if sn == 0 {
            return Err(wrong_length());
        }
        // b. LSB(fn) set or fn == sn: r = HASH(0x01 ‖ p ‖ r), then, if LSB(fn) is not set,
        //    shift fn and sn right until LSB(fn) is set or fn is 0;
        //    otherwise r = HASH(0x01 ‖ r ‖ p).
        if lsb(fn_) || fn_ == sn {
            r = node_hash(p, &r);
            while !lsb(fn_) && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        // c. Shift fn and sn right once.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. sn must be 0 and r the root.
    if sn != 0 {
        return Err(wrong_length());
    }
    if r != *root {
        return Err(ProofError::RootMismatch { expected: *root, computed: r });
    }
    Ok(())
}

/// The number of hashes in the inclusion proof of `index < size`: the iterations of
/// [`verify_inclusion`]'s loop, run without hashes.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (mut fn_, mut sn) = (index, size - 1);
    let mut len = 0;
    while sn != 0 {
        if lsb(fn_) || fn_ == sn {
            while !lsb(fn_) && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
        len += 1;
    }
    len
}

/// Checks a consistency proof with RFC 9162 §2.1.4.2: that the tree of `new_size` leaves with
/// root `new_root` extends the tree of `old_size` leaves with root `old_root`.
///
/// The RFC's algorithm covers `0 < old_size < new_size`. Outside it the proof must be empty:
/// the empty tree (whose root is [`EMPTY_ROOT`]) is extended by every tree, and a tree
/// extends itself only (equal sizes need equal roots).
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`] if `old_size > new_size`;
/// [`ProofError::WrongProofLength`] if the proof is not as long as the sizes call for;
/// [`ProofError::OldRootMismatch`] or [`ProofError::RootMismatch`] if it leads elsewhere.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    let expected = if old_size == 0 || old_size == new_size {
        0
    } else {
        consistency_proof_len(old_size, new_size)
    };
    let wrong_length = || ProofError::WrongProofLength { expected, found: proof.len() };
    if proof.len() != expected {
        return Err(wrong_length());
    }
    if old_size == 0 {
        if *old_root != EMPTY_ROOT {
            return Err(ProofError::OldRootMismatch { expected: *old_root, computed: EMPTY_ROOT });
        }
        if new_size == 0 && *new_root != EMPTY_ROOT {
            return Err(ProofError::RootMismatch { expected: *new_root, computed: EMPTY_ROOT });
        }
        return Ok(());
    }
    if old_size == new_size {
        if new_root != old_root {
            return Err(ProofError::RootMismatch { expected: *new_root, computed: *old_root });
        }
        return Ok(());
    }
    // 0 < first < second from here on.
    // 1. An empty consistency path fails.
    if proof.is_empty() {
        return Err(wrong_length());
    }
    // 2. If first is an exact power of 2, prepend first_hash to the path.
    let prepend = old_size.is_power_of_two().then_some(old_root);
    let mut path = prepend.into_iter().chain(proof);
    // 3. fn = first - 1, sn = second - 1.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // 4. While LSB(fn) is set, shift fn and sn right.
    while lsb(fn_) {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. fr = sr = the first value of the path.
    let Some(first) = path.next() else {
        return Err(wrong_length());
    };
    let (mut fr, mut sr) = (*first, *first);
    // 6. For each subsequent value c:
    for c in path {
        // a. sn == 0: fail.
        if sn == 0 {
            return Err(wrong_length());
        }
        // b. LSB(fn) set or fn == sn: fr = HASH(0x01 ‖ c ‖ fr), sr = HASH(0x01 ‖ c ‖ sr),
        //    then, if LSB(fn) is not set, shift fn and sn right until LSB(fn) is set or fn
        //    is 0; otherwise sr = HASH(0x01 ‖ sr ‖ c).
        if lsb(fn_) || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while !lsb(fn_) && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // c. Shift fn and sn right once.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7. fr must be first_hash, sr second_hash, and sn 0.
    if sn != 0 {
        return Err(wrong_length());
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch { expected: *old_root, computed: fr });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch { expected: *new_root, computed: sr });
    }
    Ok(())
}

/// The number of hashes in the consistency proof of `0 < old_size < new_size`: the
/// iterations of [`verify_consistency`]'s loop, run without hashes, plus its first value
/// unless that is the old root.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while lsb(fn_) {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut steps = 0;
    while sn != 0 {
        if lsb(fn_) || fn_ == sn {
            while !lsb(fn_) && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
        steps += 1;
    }
    if old_size.is_power_of_two() { steps } else { steps + 1 }
}

#[cfg(test)]
mod tests;
