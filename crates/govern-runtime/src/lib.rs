//! The govern runtime: governors as supervised actors (ractor on tokio), a tenant registry
//! that admits and routes commands, and a receipt ledger that is the system of record.
//!
//! A command travels: [`GovernorHandle::send`] → tenant admission (registry) → the governor's
//! bounded inbox → its actor: pure `decide` → receipt appended to the ledger → state committed
//! → reply. A crashed governor is restarted by its domain supervisor and replays its receipts;
//! nothing queued or acknowledged is lost. See `docs/runtime-semantics.md`.
//!
//! API boundary: no ractor type appears in this crate's public API.

mod clock;
mod commit;
mod domain;
mod error;
mod governor;
mod handle;
mod hosted;
pub mod limits;
mod registry;
mod runtime;
mod schedule;
mod supervisor;

/// A concurrent map with a fast seeded hasher (foldhash) instead of SipHash: routing lookups
/// are on every command's path.
pub(crate) type FastMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;

/// The ledger types hosts configure and receive (re-exported from `govern-ledger`).
pub mod ledger {
    pub use govern_ledger::{
        Appended, CheckpointSigner, CommitOptions, Durability, Ledger, LedgerError, LedgerStore,
        MemoryStore, SegmentOptions, SegmentStore, StoreError,
    };
}

pub use error::{Accepted, CommandError, ERROR_CODES, Outcome, Refusal, RuntimeError};
pub use governor::{CrashPoint, Snapshot};
pub use handle::{GovernorHandle, RawCommand};
pub use hosted::Hosted;
pub use runtime::{Domains, LedgerStatus, Runtime, RuntimeBuilder, RuntimeHandle};
