//! The schema, created and moved forward by versioned migrations: the table
//! `govern_schema_version` lists those applied; opening a store applies the missing ones, each
//! in a transaction of its own, and refuses a database whose version is newer than this build.

use postgres::Client;

use govern_ledger::StoreError;

use crate::conn::db_error;

/// The table of receipt records.
pub const RECEIPTS_TABLE: &str = "govern_receipts";

/// The table of signed checkpoints, per shard (migration 3).
pub const CHECKPOINTS_TABLE: &str = "govern_checkpoints";

/// The table of the public keys checkpoints name (migration 3).
pub const CHECKPOINT_KEYS_TABLE: &str = "govern_checkpoint_keys";

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
pub const MIGRATIONS: [Migration; 3] = [
    Migration {
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
    },
    Migration {
        version: 2,
        description: "shards, leases with fencing epochs, nodes",
        sql: MIGRATION_2,
    },
    Migration {
        version: 3,
        description: "signed checkpoints per shard, and their public keys",
        sql: MIGRATION_3,
    },
];

/// Migration 2: every receipt belongs to a shard (its own chain) and carries the fencing
/// epoch of the lease it was written under; the lease rows say which node owns which shard
/// until when; a statement-level trigger refuses rows whose epoch is not the shard's lease's
/// current one, holding the lease row in share mode until the insert's transaction ends, so
/// that a takeover (an `UPDATE` of that row) and a stale writer's commit cannot interleave.
/// A ledger written before it is shard 0 at epoch 0 of a one-shard database.
const MIGRATION_2: &str = r"
CREATE TABLE govern_cluster (
    id integer PRIMARY KEY CHECK (id = 1),
    shards integer NOT NULL CHECK (shards BETWEEN 1 AND 4096)
);
-- Refuses any change to the table it guards (govern_cluster here, the checkpoint tables of
-- migration 3): the one function of the tables after govern_receipts.
CREATE FUNCTION govern_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
-- The shard count decides every tenant's chain: fixed once written.
CREATE TRIGGER govern_cluster_fixed
    BEFORE UPDATE OR DELETE ON govern_cluster
    FOR EACH ROW EXECUTE FUNCTION govern_refuse_change();
CREATE TRIGGER govern_cluster_no_truncate
    BEFORE TRUNCATE ON govern_cluster
    FOR EACH STATEMENT EXECUTE FUNCTION govern_refuse_change();
CREATE TABLE govern_leases (
    shard integer PRIMARY KEY CHECK (shard >= 0),
    owner text NOT NULL,
    epoch bigint NOT NULL CHECK (epoch >= 0),
    expires_at timestamptz NOT NULL
);
CREATE TABLE govern_nodes (
    node text PRIMARY KEY,
    address text NOT NULL,
    seen_at timestamptz NOT NULL
);
ALTER TABLE govern_receipts
    ADD COLUMN shard integer NOT NULL DEFAULT 0 CHECK (shard >= 0),
    ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE govern_receipts DROP CONSTRAINT govern_receipts_pkey;
ALTER TABLE govern_receipts ADD PRIMARY KEY (shard, seq);
CREATE FUNCTION govern_receipts_fence() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w record;
    hit integer;
BEGIN
    FOR w IN SELECT DISTINCT shard, epoch FROM added LOOP
        -- The lease table of the receipts' own schema, never a temporary table of the same
        -- name: a session cannot shadow it.
        hit := NULL;
        EXECUTE format(
            'SELECT 1 FROM %I.govern_leases WHERE shard = $1 AND epoch = $2 FOR SHARE',
            TG_TABLE_SCHEMA
        ) INTO hit USING w.shard, w.epoch;
        IF hit IS NULL THEN
            RAISE EXCEPTION 'shard % is fenced: epoch % is not its lease''s', w.shard, w.epoch
                USING ERRCODE = 'GV001';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER govern_receipts_fenced
    AFTER INSERT ON govern_receipts
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION govern_receipts_fence();
";

/// Migration 3: each shard's signed checkpoints, one row per tree size (the JSON form exactly
/// as `checkpoint.json` holds it, without its final newline, and the C2SP signed note as
/// `checkpoint.note` holds it), naming the row of the public key that signed it. Both tables
/// are append-only as `govern_receipts` is. A checkpoint is not fenced: it is signed over
/// receipts already committed, so a stale writer's checkpoint is still true of the chain.
/// The bounds are the checkpoint file's (`CHECKPOINT_FILE_MAX`, 64 KiB).
const MIGRATION_3: &str = r"
CREATE TABLE govern_checkpoint_keys (
    key_id text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    public_key text NOT NULL CHECK (public_key ~ '^[0-9a-f]{64}$'),
    added_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE govern_checkpoints (
    shard integer NOT NULL CHECK (shard >= 0),
    size bigint NOT NULL CHECK (size >= 0),
    key_id text NOT NULL REFERENCES govern_checkpoint_keys (key_id),
    checkpoint text NOT NULL CHECK (octet_length(checkpoint) <= 65536),
    note text NOT NULL CHECK (octet_length(note) <= 65536),
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shard, size)
);
CREATE TRIGGER govern_checkpoints_no_update_or_delete
    BEFORE UPDATE OR DELETE ON govern_checkpoints
    FOR EACH ROW EXECUTE FUNCTION govern_refuse_change();
CREATE TRIGGER govern_checkpoints_no_truncate
    BEFORE TRUNCATE ON govern_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION govern_refuse_change();
CREATE TRIGGER govern_checkpoint_keys_no_update_or_delete
    BEFORE UPDATE OR DELETE ON govern_checkpoint_keys
    FOR EACH ROW EXECUTE FUNCTION govern_refuse_change();
CREATE TRIGGER govern_checkpoint_keys_no_truncate
    BEFORE TRUNCATE ON govern_checkpoint_keys
    FOR EACH STATEMENT EXECUTE FUNCTION govern_refuse_change();
";

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

/// Checks that the database holds a govern ledger this build reads: its schema at
/// [`SCHEMA_VERSION`]. Reads only (what every read-only opening checks first).
///
/// # Errors
/// [`StoreError::Corrupt`] naming what was found (no govern schema, or another version);
/// [`StoreError::Io`] when the query fails.
pub fn require_readable(client: &mut Client) -> Result<(), StoreError> {
    let version = version(client)?;
    if version == 0 {
        return Err(StoreError::Corrupt(
            "no govern ledger in this database (no govern_schema_version table)".into(),
        ));
    }
    if version != SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database's schema is at version {version}, this build reads version {SCHEMA_VERSION}"
        )));
    }
    Ok(())
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
