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
