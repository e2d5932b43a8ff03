//! The schema, created and moved forward by versioned migrations: the table
//! `govern_schema_version` lists those applied; opening a store applies the missing ones, each
//! in a transaction of its own, and refuses a database whose version is newer than this build.

use postgres::Client;

use govern_ledger::StoreError;

use crate::conn::db_error;

/// The table of receipt records.
pub const RECEIPTS_TABLE: &str = "govern_receipts";

/// The table of applied migrations.
pub const VERSION_TABLE: &str = "govern_schema_version";

/// One step of the schema.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its number: 1, 2, ... in order.
    pub version: i32,
    /// What it does, stored beside the number.
    pub description: &'static str,
    /// The statements, run in one transaction.
    pub sql: &'static str,
}

/// Every migration, in order; the last one's version is [`SCHEMA_VERSION`].
pub const MIGRATIONS: [Migration; 1] = [Migration {
    version: 1,
    description: "append-only receipts table",
    sql: r"
CREATE TABLE govern_receipts (
    seq bigint PRIMARY KEY CHECK (seq >= 0),
    record bytea NOT NULL
);
CREATE FUNCTION govern_receipts_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'govern_receipts is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER govern_receipts_no_update_or_delete
    BEFORE UPDATE OR DELETE ON govern_receipts
    FOR EACH ROW EXECUTE FUNCTION govern_receipts_refuse_change();
CREATE TRIGGER govern_receipts_no_truncate
    BEFORE TRUNCATE ON govern_receipts
    FOR EACH STATEMENT EXECUTE FUNCTION govern_receipts_refuse_change();
",
}];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The version of the database's schema (0: none yet). Reads only: a role with `SELECT`
/// on `govern_schema_version` suffices.
///
/// # Errors
/// [`StoreError::Io`] when the query fails.
pub fn version(client: &mut Client) -> Result<i32, StoreError> {
    let row = client
        .query_one("SELECT to_regclass('govern_schema_version') IS NOT NULL", &[])
        .map_err(db_error)?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM govern_schema_version", &[])
        .map_err(db_error)?;
    Ok(row.get(0))
}

/// Applies the migrations the database lacks; returns the version it is at. A database at
/// [`SCHEMA_VERSION`] is only read (no DDL rights needed then). Concurrent migrators are
/// serialised by a lock on the version table, each re-reading the version under it.
///
/// # Errors
/// [`StoreError::Io`] when a statement fails; [`StoreError::Corrupt`] when the database's
/// schema is newer than this build's.
pub fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let mut current = version(client)?;
    if current < SCHEMA_VERSION {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS govern_schema_version (
                    version integer PRIMARY KEY,
                    description text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )",
            )
            .map_err(db_error)?;
        for migration in MIGRATIONS {
            let mut tx = client.transaction().map_err(db_error)?;
            tx.batch_execute("LOCK TABLE govern_schema_version IN EXCLUSIVE MODE")
                .map_err(db_error)?;
            let row = tx
                .query_one("SELECT coalesce(max(version), 0) FROM govern_schema_version", &[])
                .map_err(db_error)?;
            current = row.get(0);
            if migration.version <= current {
                continue;
            }
            tx.batch_execute(migration.sql).map_err(db_error)?;
            tx.execute(
                "INSERT INTO govern_schema_version (version, description) VALUES ($1, $2)",
                &[&migration.version, &migration.description],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            current = migration.version;
        }
    }
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database's schema is at version {current}, newer than this build's {SCHEMA_VERSION}"
        )));
    }
    Ok(current)
}
