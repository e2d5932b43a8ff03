//! Signed checkpoints in the database (migration 3, docs/postgres.md "Signed checkpoints"):
//! [`PgCheckpoints`], the [`CheckpointSink`] of one shard, which inserts each checkpoint a
//! runtime signs as a row of `govern_checkpoints` (its JSON form and its C2SP signed note)
//! and the signing key's public key into `govern_checkpoint_keys`; and
//! [`StoredCheckpoint`], a shard's latest row as a verifier reads it; and [`add`], one
//! checkpoint signed outside a runtime (`govern checkpoint URL`) inserted the same way.

use std::sync::Arc;

use govern_ledger::checkpoint::{
    CHECKPOINT_FILE_MAX, CheckpointError, CheckpointSink, SignedCheckpoint, VerifyingKey,
};
use govern_ledger::{StoreError, key_id};

use crate::conn::{Conn, Session, db_error};

// The schema's bounds on the two text columns are the checkpoint file's.
const _: () = assert!(CHECKPOINT_FILE_MAX == 65_536);

const INSERT_KEY: &str = "INSERT INTO govern_checkpoint_keys (key_id, public_key) VALUES ($1, $2) \
                          ON CONFLICT (key_id) DO NOTHING";
const SELECT_KEY: &str = "SELECT public_key FROM govern_checkpoint_keys WHERE key_id = $1";
const INSERT_CHECKPOINT: &str = "INSERT INTO govern_checkpoints \
                                 (shard, size, key_id, checkpoint, note) \
                                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (shard, size) DO NOTHING";
const SELECT_AT_SIZE: &str =
    "SELECT checkpoint FROM govern_checkpoints WHERE shard = $1 AND size = $2";
const SELECT_ROOTS: &str = "SELECT size, checkpoint FROM govern_checkpoints \
                            WHERE shard = $1 ORDER BY size DESC LIMIT $2";
const SELECT_LATEST: &str = "SELECT c.size, c.checkpoint, c.note, k.public_key \
                             FROM govern_checkpoints c \
                             JOIN govern_checkpoint_keys k USING (key_id) \
                             WHERE c.shard = $1 ORDER BY c.size DESC LIMIT 1";

/// One shard's signed checkpoints in `govern_checkpoints` (see the module documentation).
/// Made by [`crate::PostgresStore::checkpointer`]; it writes on the store's writer connection
/// and reads on its reads' connection.
#[derive(Debug)]
pub struct PgCheckpoints {
    /// The shard whose chain the checkpoints cover.
    shard: i32,
    /// The signing key's public key, inserted beside each checkpoint.
    key: VerifyingKey,
    /// The store's commits' connection.
    writer: Arc<Conn>,
    /// The store's reads' connection.
    reader: Arc<Conn>,
}

impl PgCheckpoints {
    pub(crate) fn new(shard: i32, key: VerifyingKey, writer: Arc<Conn>, reader: Arc<Conn>) -> Self {
        Self { shard, key, writer, reader }
    }
}

/// A store error as a sink's.
fn sink_error(e: StoreError) -> CheckpointError {
    CheckpointError::Sink(e.to_string())
}

/// Inserts the key's row (kept if there) and the checkpoint's (kept if its size has one:
/// `ON CONFLICT DO NOTHING`) in one transaction; a key id already naming another public key
/// is refused. Whether the checkpoint's row was inserted (`false`: its size had one).
fn insert(
    session: &mut Session,
    shard: i32,
    key: &VerifyingKey,
    signed: &SignedCheckpoint,
    note: &str,
) -> Result<bool, StoreError> {
    let id = hex::encode(key_id(key));
    let public = hex::encode(key.as_bytes());
    let size = i64::try_from(signed.checkpoint.size)
        .map_err(|_| StoreError::Corrupt(format!("size {} overflows", signed.checkpoint.size)))?;
    let json = signed.to_json();
    let client = session.client()?;
    let mut tx = client.transaction().map_err(db_error)?;
    tx.execute(INSERT_KEY, &[&id, &public]).map_err(db_error)?;
    let stored: String = tx.query_one(SELECT_KEY, &[&id]).map_err(db_error)?.get(0);
    if stored != public {
        return Err(StoreError::Corrupt(format!(
            "govern_checkpoint_keys holds another public key under key id {id}"
        )));
    }
    let inserted =
        tx.execute(INSERT_CHECKPOINT, &[&shard, &size, &id, &json, &note]).map_err(db_error)?;
    if inserted == 0 {
        // The size has a checkpoint already: the same tree head (signed again, at another
        // time) is kept; another root for the same size is evidence of a fork or a rewrite.
        let kept: String = tx.query_one(SELECT_AT_SIZE, &[&shard, &size]).map_err(db_error)?.get(0);
        let kept = SignedCheckpoint::from_json(&kept).map_err(|e| {
            StoreError::Corrupt(format!("shard {shard}'s checkpoint of size {size}: {e}"))
        })?;
        if kept.checkpoint.root != signed.checkpoint.root {
            return Err(StoreError::Corrupt(format!(
                "shard {shard} already holds a checkpoint of size {size} with root {}, not {}: \
                 its chain forked or was rewritten since",
                kept.checkpoint.root, signed.checkpoint.root
            )));
        }
    }
    tx.commit().map_err(db_error)?;
    Ok(inserted == 1)
}

/// The tree size and root of each of a shard's stored checkpoints, newest first, at most
/// `max` (parsed from their JSON form, not verified): what a verifier checks the chain
/// against, besides the latest's signature. `Err` names a row that does not parse.
pub(crate) fn roots(
    session: &mut Session,
    shard: i32,
    max: i64,
) -> Result<Vec<(u64, govern_receipt::Digest)>, StoreError> {
    let client = session.client()?;
    let rows = client.query(SELECT_ROOTS, &[&shard, &max]).map_err(db_error)?;
    rows.into_iter()
        .map(|row| {
            let size: i64 = row.get(0);
            let json: String = row.get(1);
            let signed = SignedCheckpoint::from_json(&json).map_err(|e| {
                StoreError::Corrupt(format!("shard {shard}'s checkpoint of size {size}: {e}"))
            })?;
            if i64::try_from(signed.checkpoint.size).ok() != Some(size) {
                return Err(StoreError::Corrupt(format!(
                    "shard {shard}'s checkpoint row of size {size} holds a checkpoint of size {}",
                    signed.checkpoint.size
                )));
            }
            Ok((signed.checkpoint.size, signed.checkpoint.root))
        })
        .collect()
}

/// Inserts one signed checkpoint of `shard` (its JSON form `signed`, its signed note `note`,
/// both signed by `key`) into the database `url`, on a connection of its own, as a runtime's
/// sink does ([`PgCheckpoints`]): the key's row, then the checkpoint's, in one transaction.
/// Needs `INSERT` and `SELECT` on `govern_checkpoints` and `govern_checkpoint_keys`, no
/// lease: checkpoint rows are not fenced (a checkpoint covers receipts already committed).
/// Whether the row was inserted: `false` when the shard already had a checkpoint of that
/// size (kept, as a runtime's second checkpoint of a size is).
///
/// # Errors
/// [`StoreError::Io`] when the database cannot be reached or refuses the statements;
/// [`StoreError::Corrupt`] when the key id names another public key there, or the size
/// overflows.
pub fn add(
    url: &str,
    shard: u32,
    key: &VerifyingKey,
    signed: &SignedCheckpoint,
    note: &str,
) -> Result<bool, StoreError> {
    let shard = i32::try_from(shard)
        .map_err(|_| StoreError::Corrupt(format!("shard {shard} overflows")))?;
    let conn = Conn::spawn(crate::store::config(url)?, "govern-pg-checkpoint")?;
    let (key, signed, note) = (*key, *signed, note.to_owned());
    conn.call(move |session| insert(session, shard, &key, &signed, &note))
}

impl CheckpointSink for PgCheckpoints {
    /// One transaction: the key's row and the checkpoint's row; durable once it returns.
    fn write(&self, signed: &SignedCheckpoint, note: &str) -> Result<(), CheckpointError> {
        let (shard, key, signed, note) = (self.shard, self.key, *signed, note.to_owned());
        self.writer
            .call(move |session| insert(session, shard, &key, &signed, &note))
            .map(|_| ())
            .map_err(sink_error)
    }

    /// The JSON form of the shard's largest checkpoint.
    fn latest(&self) -> Result<Option<String>, CheckpointError> {
        latest(&self.reader, self.shard).map(|row| row.map(|r| r.checkpoint)).map_err(sink_error)
    }
}

/// A shard's latest checkpoint row as stored, not verified: what a verifier checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The shard.
    pub shard: u32,
    /// The tree size (the row's key, beside the one the JSON and the note say).
    pub size: u64,
    /// The JSON form, as `checkpoint.json` holds it (without the final newline).
    pub checkpoint: String,
    /// The C2SP signed note, as `checkpoint.note` holds it.
    pub note: String,
    /// The public key its key id names in `govern_checkpoint_keys`, in 64 hex characters: a
    /// key kept beside the checkpoints, so it proves only that they are consistent with the
    /// chain, unless the verifier pins the signer's key itself.
    pub public_key: String,
}

/// The largest checkpoint row of `shard`, on `conn`.
pub(crate) fn latest(conn: &Conn, shard: i32) -> Result<Option<StoredCheckpoint>, StoreError> {
    conn.call(move |session| {
        let client = session.client()?;
        let Some(row) = client.query_opt(SELECT_LATEST, &[&shard]).map_err(db_error)? else {
            return Ok(None);
        };
        let size: i64 = row.get(0);
        let (checkpoint, note, public_key): (String, String, String) =
            (row.get(1), row.get(2), row.get(3));
        // The schema bounds them; a changed schema must not make a reader hold more.
        if checkpoint.len() > CHECKPOINT_FILE_MAX || note.len() > CHECKPOINT_FILE_MAX {
            return Err(StoreError::Corrupt(format!(
                "shard {shard}'s checkpoint of size {size} is larger than {CHECKPOINT_FILE_MAX} bytes"
            )));
        }
        Ok(Some(StoredCheckpoint {
            shard: u32::try_from(shard).unwrap_or_default(),
            size: u64::try_from(size)
                .map_err(|_| StoreError::Corrupt(format!("checkpoint size {size}")))?,
            checkpoint,
            note,
            public_key,
        }))
    })
}
