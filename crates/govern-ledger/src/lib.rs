//! The durable, provable ledger: Merkle proofs now; the segment store, checkpoints and verification follow.
//!
//! Module [`merkle`] is an RFC 6962 Merkle tree over receipt hashes: the receipt at sequence
//! number `seq` is leaf `seq`, so one root commits to every receipt so far, an inclusion proof
//! shows that a receipt is in the ledger, and a consistency proof shows that a later ledger
//! only appended to an earlier one.
//!
//! Architecture invariant: pure like the receipt crate: no I/O, no clock, no async.

pub mod merkle;

pub use merkle::{
    EMPTY_ROOT, MerkleTree, ProofError, leaf_hash, leaf_hash_bytes, node_hash, verify_consistency,
    verify_inclusion,
};
