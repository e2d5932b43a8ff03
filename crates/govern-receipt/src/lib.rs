//! Receipt format v1: what every accepted transition leaves behind.
//!
//! A [`Receipt`] records one accepted command of one governor. Its hash is SHA-256 over a
//! canonical binary preimage (module `encode`: domain tag, version, fixed field order,
//! length-prefixed fields, big-endian integers), and it names the previous receipt's hash, so
//! the receipts of a ledger form a chain. [`ChainVerifier`] checks a chain and names the first
//! bad receipt. `docs/receipts.md` specifies the bytes for independent verifiers.
//!
//! Architecture invariant: pure like the governors crate: no I/O, no clock, no async.

mod chain;
mod digest;
mod encode;
mod json;
mod receipt;
mod replay;

pub use chain::{ChainError, ChainVerifier, Head, verify_chain};
pub use digest::{Digest, DigestParseError};
pub use encode::{DOMAIN_TAG, DecodeError, FORMAT_VERSION, RECORD_LEN_MAX, ReceiptKey};
pub use json::{JsonError, ReceiptJson};
pub use receipt::{Receipt, ReceiptBody, derive_receipt_id};
pub use replay::{ReplayError, replay, replay_from, replay_machine_from, replay_machine_step};

#[cfg(test)]
mod tests;
