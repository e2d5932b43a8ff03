//! The ledger on PostgreSQL: [`PostgresStore`], a [`LedgerStore`](govern_ledger::LedgerStore)
//! whose receipt records are rows of an append-only table (`govern_receipts`), created by
//! versioned migrations ([`schema`]) and group-committed by one multi-row `INSERT` in one
//! transaction, acknowledged only after its `COMMIT` (docs/postgres.md).
//!
//! The client is the `postgres` crate, the blocking wrapper of tokio-postgres: the store's
//! trait is synchronous. Each connection lives on a thread of its own (`conn.rs`), so that a
//! store called from inside the runtime's async tasks never nests one tokio runtime in
//! another.
//!
//! With the `testing` feature, `testing::Cluster` starts a throwaway PostgreSQL cluster in a
//! temporary directory for tests.

mod conn;
pub mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use store::{PostgresStore, limits};
