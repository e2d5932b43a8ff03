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

/// The libpq keywords a `key=value` connection string may start with.
const LIBPQ_KEYWORDS: [&str; 12] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "connect_timeout",
    "application_name",
    "options",
    "sslmode",
    "target_session_attrs",
    "keepalives",
];

/// Whether `s` names a PostgreSQL database rather than a path: a `postgres://` or
/// `postgresql://` URL, or a libpq `key=value ...` string whose first word is a libpq
/// keyword (`host=127.0.0.1 dbname=govern`).
#[must_use]
pub fn is_connection_string(s: &str) -> bool {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return true;
    }
    let first = s.split_whitespace().next().unwrap_or_default();
    first.split_once('=').is_some_and(|(key, _)| LIBPQ_KEYWORDS.contains(&key.trim()))
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
