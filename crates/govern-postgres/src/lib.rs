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
//! A runtime on the store signs checkpoints into `govern_checkpoints` with
//! [`PostgresStore::checkpointer`] ([`checkpoints`]).
//!
//! With the `testing` feature, `testing::Cluster` starts a throwaway PostgreSQL cluster in a
//! temporary directory for tests.

pub mod checkpoints;
pub mod cluster;
mod conn;
pub mod node;
pub mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use checkpoints::{PgCheckpoints, StoredCheckpoint};
pub use node::{Node, NodeConfig, NodeError, NodeHandle, Owner};
pub use store::{PostgresStore, limits};

use govern_ledger::StoreError;

/// How many shards (separate hash chains) the ledger in the database `url` is divided into,
/// read without writing anything (only `SELECT`s run): 1 when it was never divided (no
/// `govern_cluster` row: a one-process ledger's database before its first open under this
/// schema). Also checks that no receipt lies beyond that count, so that a reader walking
/// shards `0..n` misses no chain.
///
/// # Errors
/// [`StoreError::Corrupt`] when the database holds no govern ledger of this build's schema
/// (naming what was found), or receipts of a shard beyond the count; [`StoreError::Io`] when
/// it cannot be reached or a query fails.
pub fn read_shards(url: &str) -> Result<u32, StoreError> {
    let conn = conn::Conn::spawn(store::config(url)?, "govern-pg-shards")?;
    conn.call(|session| {
        let client = session.client()?;
        schema::require_readable(client)?;
        let shards = cluster::shards(client)?.unwrap_or(1);
        // The primary key (shard, seq) answers this from the index's end.
        let row = client
            .query_one("SELECT max(shard) FROM govern_receipts", &[])
            .map_err(conn::db_error)?;
        let top: Option<i32> = row.get(0);
        if let Some(top) = top.filter(|&t| i64::from(t) >= i64::from(shards)) {
            return Err(StoreError::Corrupt(format!(
                "receipts of shard {top} in a database divided into {shards} shards"
            )));
        }
        Ok(shards)
    })
}

/// Whether `s` names a PostgreSQL database rather than a path: a `postgres://` or
/// `postgresql://` URL, or a libpq `key=value ...` string the client reads as one (every key
/// one it knows: `host=127.0.0.1 dbname=govern`).
#[must_use]
pub fn is_connection_string(s: &str) -> bool {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return true;
    }
    s.contains('=') && s.parse::<postgres::Config>().is_ok()
}

/// A connection string for people: database, user, hosts and ports, never the password
/// (`postgresql database govern as postgres on 127.0.0.1:5432`); a placeholder
/// when it does not parse.
#[must_use]
pub fn describe(url: &str) -> String {
    let Ok(config) = url.parse::<postgres::Config>() else {
        return "a postgresql database (connection string not readable)".to_owned();
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
            postgres::config::Host::Unix(p) => format!("{}:{port}", p.display()),
        })
        .collect();
    format!(
        "postgresql database {} as {} on {}",
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default)"),
        if hosts.is_empty() { "(default host)".to_owned() } else { hosts.join(",") }
    )
}

#[cfg(test)]
mod tests {
    use super::is_connection_string;

    #[test]
    fn urls_and_libpq_strings_name_databases_and_paths_do_not() {
        for db in [
            "postgres://govern@db/govern",
            "postgresql://127.0.0.1:5432/x",
            "host=db dbname=govern user=auditor",
            "dbname=govern",
            "keepalives_idle=30 host=db",
            "tcp_user_timeout=1000 host=db",
        ] {
            assert!(is_connection_string(db), "{db}");
        }
        for path in ["/var/lib/govern", "data", "./host=x", "a=b", "host", ""] {
            assert!(!is_connection_string(path), "{path}");
        }
    }
}
