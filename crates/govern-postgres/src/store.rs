//! [`PostgresStore`]: receipt records as rows of `govern_receipts (seq, record)`.

use std::collections::VecDeque;
use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use govern_ledger::{
    CheckpointSigner, Checkpointer, LedgerStore, Located, LocatedRecord, StoreError, SyncJob,
};
use postgres::Config;

use crate::checkpoints::{self, PgCheckpoints, StoredCheckpoint};
use crate::conn::{Conn, Session, db_error};
use crate::{cluster, schema};

/// How a store is opened.
#[derive(Clone, Copy, Debug)]
enum Open {
    /// Shard 0 of a one-shard database, seizing its lease.
    Standalone,
    /// A shard whose lease a node holds at `epoch`.
    Shard { shard: u32, epoch: i64 },
    /// A shard, read only.
    ReadOnly { shard: u32 },
}

/// Adds server settings (durations, in milliseconds) to `config`'s `options`, after any the
/// connection string gave.
pub(crate) fn with_settings(config: &mut Config, settings: &[(&str, std::time::Duration)]) {
    let mut options = config.get_options().unwrap_or_default().to_owned();
    for (name, value) in settings {
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!("-c {name}={}", value.as_millis()));
    }
    config.options(&options);
}

/// The client configuration of `url`, with govern's defaults (connect timeout, keepalives,
/// application name).
pub(crate) fn config(url: &str) -> Result<Config, StoreError> {
    let mut config: Config =
        url.parse().map_err(|e| StoreError::Io(format!("bad connection string: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(limits::CONNECT_TIMEOUT);
    }
    config.keepalives(true);
    config.application_name("govern");
    Ok(config)
}

/// Bounds of the store.
pub mod limits {
    use std::time::Duration;

    /// Durable records kept in memory after their commit, for reads of the recent past
    /// without a query (records not yet durable are always kept).
    pub const CACHE_RECORDS: u64 = 4_096;
    /// Bytes of durable records kept in memory after their commit (besides [`CACHE_RECORDS`]).
    pub const CACHE_BYTES: usize = 8 << 20;
    /// Rows one `INSERT` statement of a group commit carries; a larger group is several
    /// statements in the same transaction.
    pub const INSERT_ROWS_MAX: usize = 4_096;
    /// Bytes of records one `INSERT` statement carries (at least one record).
    pub const INSERT_BYTES_MAX: usize = 8 << 20;
    /// Rows one read query fetches.
    pub const READ_PAGE: usize = 1_024;
    /// How long a writer's session may sit idle inside a transaction before the server ends
    /// it (`idle_in_transaction_session_timeout`): the longest a paused or cut-off writer can
    /// hold the lock that a takeover of its shard waits for. Group commits of one statement
    /// (up to [`INSERT_ROWS_MAX`] rows) hold it only while the server runs the statement.
    pub const WRITER_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(1);
    /// A shard's stored checkpoints whose roots a verifier checks against the chain (the
    /// newest): 40 bytes each in memory.
    pub const CHECKPOINTS_CHECKED_MAX: usize = 1_000_000;
    /// How long connecting may take, when the connection string does not say.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
}

const INSERT: &str = "INSERT INTO govern_receipts (shard, epoch, seq, record) \
                      SELECT $1, $2, * FROM unnest($3::bigint[], $4::bytea[])";
const SELECT_SEQS: &str = "SELECT seq, record FROM govern_receipts \
                           WHERE shard = $1 AND seq = ANY($2::bigint[]) ORDER BY seq";
const SELECT_RANGE: &str = "SELECT seq, record FROM govern_receipts \
                            WHERE shard = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4";
const MAX_SEQ: &str = "SELECT max(seq) FROM govern_receipts WHERE shard = $1";
const COUNT_ROWS: &str = "SELECT count(*) FROM govern_receipts WHERE shard = $1";

/// A ledger store on PostgreSQL (docs/postgres.md). Appends are buffered in memory; a group
/// commit inserts them with one multi-row `INSERT` (several past
/// [`limits::INSERT_ROWS_MAX`]) in one transaction, from the [`SyncJob`] that runs outside the
/// ledger's lock, and they are durable once its `COMMIT` returned. Reads are served from the
/// records in memory (those not yet durable and a cache of recent ones) or queried on a
/// connection of their own, after the ledger's lock is released ([`LedgerStore::locate`]).
///
/// The store writes one shard's chain (shard 0 of a one-shard database for a one-process
/// ledger, [`Self::open`]; a shard a node leased, [`Self::open_shard`]) and every row it
/// inserts carries its lease's fencing epoch: once the lease moved on, the database refuses
/// its commits (docs/scaling.md).
#[derive(Debug)]
pub struct PostgresStore {
    /// The shard whose chain this is.
    shard: i32,
    /// The fencing epoch the rows are written under.
    epoch: i64,
    /// The commits' connection; `None` once closed.
    writer: Option<Arc<Conn>>,
    /// The reads' connection.
    reader: Arc<Conn>,
    /// Records `recent_first..len`: every one not yet durable and the cache.
    recent: VecDeque<Arc<[u8]>>,
    /// The sequence number of `recent[0]`.
    recent_first: u64,
    /// Bytes of the records in `recent`.
    recent_bytes: usize,
    /// Records durable (committed).
    durable: u64,
}

impl PostgresStore {
    /// Opens the ledger in the database `url` (a libpq connection string or a
    /// `postgres://` URL), creating or migrating its schema ([`schema::migrate`]); a database
    /// holding records is continued. TLS is not supported yet.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the database cannot be reached or a statement fails;
    /// [`StoreError::Corrupt`] for a schema newer than this build's.
    ///
    /// The database is then one shard (its first open divides it so) and this process its one
    /// writer: opening takes shard 0's lease whoever held it, so an earlier process writing
    /// the same database is fenced (its next commit fails). A database divided into several
    /// shards for nodes is refused: nodes open it ([`crate::node`]).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Open::Standalone)
    }

    /// Opens shard `shard`'s chain to write it under the lease `epoch` a node holds
    /// ([`crate::cluster::acquire`]): schema migrated, nothing else changed. Its commits are
    /// refused by the database once the lease's epoch moved on.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_shard(url: &str, shard: u32, epoch: i64) -> Result<Self, StoreError> {
        Self::open_with(url, Open::Shard { shard, epoch })
    }

    /// [`Self::open_read_only`] for shard `shard`'s chain.
    ///
    /// # Errors
    /// As [`Self::open_read_only`].
    pub fn open_read_only_shard(url: &str, shard: u32) -> Result<Self, StoreError> {
        Self::open_with(url, Open::ReadOnly { shard })
    }

    /// Opens the ledger in the database `url` for reading only: nothing is created, migrated
    /// or written (only `SELECT`s run, so a role with `SELECT` on the two tables suffices),
    /// and appends are refused. A database without govern's schema, or at another version
    /// than this build's, is an error naming what was found.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the database cannot be reached or a query fails;
    /// [`StoreError::Corrupt`] when it holds no ledger of this build's schema.
    pub fn open_read_only(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Open::ReadOnly { shard: 0 })
    }

    fn open_with(url: &str, how: Open) -> Result<Self, StoreError> {
        let config = config(url)?;
        let writable = !matches!(how, Open::ReadOnly { .. });
        let shard_u = match how {
            Open::Standalone => 0,
            Open::Shard { shard, .. } | Open::ReadOnly { shard } => shard,
        };
        let shard = i32::try_from(shard_u)
            .map_err(|_| StoreError::Corrupt(format!("shard {shard_u} overflows")))?;
        let reader = Conn::spawn(config.clone(), "govern-pg-reader")?;
        // A writer that stops inside a transaction (paused, cut off) must not hold the
        // fencing trigger's lock on its lease row for long: the server ends its session.
        let mut config = config;
        with_settings(
            &mut config,
            &[("idle_in_transaction_session_timeout", limits::WRITER_IDLE_IN_TRANSACTION)],
        );
        let writer = if writable { Some(Conn::spawn(config, "govern-pg-writer")?) } else { None };
        let (len, epoch) = writer.as_ref().unwrap_or(&reader).call(move |session| {
            let client = session.client()?;
            let mut epoch = 0;
            if writable {
                schema::migrate(client)?;
                match how {
                    Open::Standalone => {
                        cluster::init(client, 1).map_err(|e| match e {
                            StoreError::Corrupt(m) => StoreError::Corrupt(format!(
                                "{m}: a one-process ledger needs a database of one shard; nodes open this one"
                            )),
                            e => e,
                        })?;
                        epoch = cluster::seize(client, 0, cluster::STANDALONE)?;
                    }
                    Open::Shard { epoch: e, .. } => epoch = e,
                    Open::ReadOnly { .. } => {}
                }
            } else {
                schema::require_readable(client)?;
            }
            let row = client.query_one(MAX_SEQ, &[&shard]).map_err(db_error)?;
            let max: Option<i64> = row.get(0);
            let len = max.map_or(Ok(0), |m| {
                u64::try_from(m)
                    .map(|m| m + 1)
                    .map_err(|_| StoreError::Corrupt(format!("negative sequence number {m}")))
            })?;
            Ok((len, epoch))
        })?;
        Ok(Self {
            shard,
            epoch,
            writer: writer.map(Arc::new),
            reader: Arc::new(reader),
            recent: VecDeque::new(),
            recent_first: len,
            recent_bytes: 0,
            durable: len,
        })
    }

    /// The shard whose chain this store holds.
    #[must_use]
    pub fn shard(&self) -> u32 {
        u32::try_from(self.shard).unwrap_or_default()
    }

    /// The fencing epoch its rows are written under (0 when opened read-only).
    #[must_use]
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// A checkpointer that signs this store's shard's checkpoints with `signer` into
    /// `govern_checkpoints` (its public key into `govern_checkpoint_keys`), on the store's
    /// connections; for `RuntimeBuilder::checkpoints`. The standalone store's is shard 0's.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the store was opened read-only or is closed.
    pub fn checkpointer(&self, signer: CheckpointSigner) -> Result<Checkpointer, StoreError> {
        let writer = self
            .writer
            .clone()
            .ok_or_else(|| StoreError::Io("the store is closed or opened read-only".into()))?;
        let sink = PgCheckpoints::new(
            self.shard,
            signer.verifying_key(),
            writer,
            Arc::clone(&self.reader),
        );
        Ok(Checkpointer::new(Arc::new(sink), signer))
    }

    /// The shard's latest (largest) signed checkpoint as stored, with the public key its key
    /// id names in `govern_checkpoint_keys`, not verified; `None` if it has none.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the query fails; [`StoreError::Corrupt`] for a row past the
    /// checkpoint file's bound.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        checkpoints::latest(&self.reader, self.shard)
    }

    /// The tree size and root of the shard's stored checkpoints, newest first, at most
    /// [`limits::CHECKPOINTS_CHECKED_MAX`] (parsed, not verified): a verifier checks that the
    /// chain has each root at each size, so that a history rewritten and signed again is
    /// caught by the checkpoints signed before it.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the query fails; [`StoreError::Corrupt`] for a row that does
    /// not parse or whose size is not its checkpoint's.
    pub fn checkpoint_roots(&self) -> Result<Vec<(u64, govern_receipt::Digest)>, StoreError> {
        let shard = self.shard;
        let max = i64::try_from(limits::CHECKPOINTS_CHECKED_MAX).unwrap_or(i64::MAX);
        self.reader.call(move |session| checkpoints::roots(session, shard, max))
    }

    /// Records durable so far.
    #[must_use]
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// How many rows the receipts table holds (`count(*)`, a full scan): equal to
    /// [`LedgerStore::len`] unless rows are missing.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the query fails.
    pub fn rows(&self) -> Result<u64, StoreError> {
        let shard = self.shard;
        self.reader.call(move |session| {
            let client = session.client()?;
            let row = client.query_one(COUNT_ROWS, &[&shard]).map_err(db_error)?;
            let n: i64 = row.get(0);
            u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count(*) is {n}")))
        })
    }

    /// The record `seq` if held in memory.
    fn in_memory(&self, seq: u64) -> Option<&Arc<[u8]>> {
        let i = usize::try_from(seq.checked_sub(self.recent_first)?).ok()?;
        self.recent.get(i)
    }

    /// Lets the cache go down to its bounds (never a record not yet durable).
    fn trim_cache(&mut self) {
        while self.recent_first < self.durable
            && (self.durable - self.recent_first > limits::CACHE_RECORDS
                || self.recent_bytes > limits::CACHE_BYTES)
        {
            let Some(record) = self.recent.pop_front() else { break };
            self.recent_bytes -= record.len();
            self.recent_first += 1;
        }
    }

    fn located(&self, db: DbPart, mem_range: Range<u64>) -> PgLocated {
        let mem = mem_range.map(|seq| (seq, self.in_memory(seq).map(Arc::clone))).collect();
        PgLocated {
            shard: self.shard,
            reader: Arc::clone(&self.reader),
            db,
            page: VecDeque::new(),
            mem,
            held: None,
            failed: false,
        }
    }
}

/// A sequence number as PostgreSQL's `bigint`.
fn to_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("sequence number {seq} overflows")))
}

/// Inserts `records` as `first..` of `shard` under `epoch` in one transaction: durable once
/// this returns `Ok`.
fn insert_group(
    session: &mut Session,
    (shard, epoch): (i32, i64),
    first: u64,
    records: &[Arc<[u8]>],
) -> Result<(), StoreError> {
    let (client, insert) = session.prepared(INSERT)?;
    let chunks = chunks(records);
    if let [chunk] = &chunks[..] {
        // One statement: committed by the server as it ends (no client round trip between
        // the fencing trigger's lock on the lease row and the commit).
        let (seqs, bodies) = chunk_params(first, chunk)?;
        let inserted =
            client.execute(&insert, &[&shard, &epoch, &seqs, &bodies]).map_err(db_error)?;
        return check_inserted(inserted, chunk.len());
    }
    let mut tx = client.transaction().map_err(db_error)?;
    let mut seq = first;
    for chunk in chunks {
        let (seqs, bodies) = chunk_params(seq, chunk)?;
        let inserted = tx.execute(&insert, &[&shard, &epoch, &seqs, &bodies]).map_err(db_error)?;
        check_inserted(inserted, chunk.len())?;
        seq += chunk.len() as u64;
    }
    tx.commit().map_err(db_error)
}

/// `records` cut into statements of at most [`limits::INSERT_ROWS_MAX`] rows and
/// [`limits::INSERT_BYTES_MAX`] bytes (at least one record each).
fn chunks(records: &[Arc<[u8]>]) -> Vec<&[Arc<[u8]>]> {
    let mut out = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let mut bytes = 0;
        let mut n = 0;
        for r in rest.iter().take(limits::INSERT_ROWS_MAX) {
            if n > 0 && bytes + r.len() > limits::INSERT_BYTES_MAX {
                break;
            }
            bytes += r.len();
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        out.push(chunk);
        rest = tail;
    }
    out
}

/// The array parameters of one statement: `chunk`'s sequence numbers from `first`, and bytes.
fn chunk_params(first: u64, chunk: &[Arc<[u8]>]) -> Result<(Vec<i64>, Vec<&[u8]>), StoreError> {
    let seqs = (first..first + chunk.len() as u64).map(to_i64).collect::<Result<Vec<i64>, _>>()?;
    Ok((seqs, chunk.iter().map(|r| &r[..]).collect()))
}

fn check_inserted(inserted: u64, n: usize) -> Result<(), StoreError> {
    if inserted == n as u64 {
        Ok(())
    } else {
        Err(StoreError::Io(format!("inserted {inserted} of {n} records")))
    }
}

/// A record queried: its sequence number and bytes (`None`: the table lacks it).
type Queried = (u64, Option<Vec<u8>>);

/// Reads `seqs` (increasing): each with its record, or `None` when the table lacks it.
fn select_seqs(
    session: &mut Session,
    shard: i32,
    seqs: &[u64],
    range: Option<Range<u64>>,
) -> Result<Vec<Queried>, StoreError> {
    let rows = match range {
        Some(r) => {
            let (client, select) = session.prepared(SELECT_RANGE)?;
            let limit = i64::try_from(seqs.len()).unwrap_or(i64::MAX);
            client.query(&select, &[&shard, &to_i64(r.start)?, &to_i64(r.end)?, &limit])
        }
        None => {
            let ids = seqs.iter().map(|&s| to_i64(s)).collect::<Result<Vec<i64>, _>>()?;
            let (client, select) = session.prepared(SELECT_SEQS)?;
            client.query(&select, &[&shard, &ids])
        }
    }
    .map_err(db_error)?;
    let mut rows = rows.into_iter().map(|row| (row.get::<_, i64>(0), row.get::<_, Vec<u8>>(1)));
    let mut next = rows.next();
    let mut out = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        let wanted = to_i64(seq)?;
        while next.as_ref().is_some_and(|(s, _)| *s < wanted) {
            next = rows.next();
        }
        match next.take() {
            Some((s, record)) if s == wanted => {
                out.push((seq, Some(record)));
                next = rows.next();
            }
            other => {
                next = other;
                out.push((seq, None));
            }
        }
    }
    Ok(out)
}

impl LedgerStore for PostgresStore {
    fn append(&mut self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        if self.writer.is_none() {
            return Err(StoreError::Io("the store is closed or opened read-only".into()));
        }
        if seq != self.len() {
            return Err(StoreError::OutOfOrder { expected: self.len(), found: seq });
        }
        self.recent_bytes += record.len();
        self.recent.push_back(Arc::from(record));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        govern_ledger::sync_by_phases(self)
    }

    fn is_durable(&self) -> bool {
        true
    }

    /// Hands the records appended since the last commit to a job that inserts them in one
    /// transaction.
    fn begin_sync(&mut self) -> Result<SyncJob, StoreError> {
        let writer =
            self.writer.clone().ok_or_else(|| StoreError::Io("the store is closed".into()))?;
        let len = self.len();
        if self.durable == len {
            return Ok(SyncJob::done(len));
        }
        let first = self.durable;
        let skip = usize::try_from(first - self.recent_first).unwrap_or(usize::MAX);
        let records: Vec<Arc<[u8]>> = self.recent.iter().skip(skip).cloned().collect();
        let fence = (self.shard, self.epoch);
        Ok(SyncJob::new(len, move || {
            writer.call(move |session| insert_group(session, fence, first, &records))
        }))
    }

    fn end_sync(&mut self, upto: u64, result: Result<(), StoreError>) -> Result<(), StoreError> {
        result?;
        self.durable = self.durable.max(upto.min(self.len()));
        self.trim_cache();
        Ok(())
    }

    /// Drops the writer's connection; reads go on.
    fn close(&mut self) {
        self.writer = None;
    }

    fn len(&self) -> u64 {
        self.recent_first + self.recent.len() as u64
    }

    fn heap_bytes(&self) -> usize {
        self.recent_bytes
            + self.recent.capacity() * (size_of::<Arc<[u8]>>() + 2 * size_of::<usize>())
    }

    fn read(&self, seq: u64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        out.clear();
        if seq >= self.len() {
            return Ok(false);
        }
        if let Some(record) = self.in_memory(seq) {
            out.extend_from_slice(record);
            return Ok(true);
        }
        let shard = self.shard;
        let found = self.reader.call(move |s| select_seqs(s, shard, &[seq], None))?;
        match found.into_iter().next() {
            Some((_, Some(record))) => {
                *out = record;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Copies (as shared pointers) the records held in memory; the others are queried by
    /// the [`Located`], after the ledger's lock is released.
    fn locate(&self, seqs: &[u64]) -> Result<Box<dyn Located>, StoreError> {
        let cut = seqs.partition_point(|&s| s < self.recent_first);
        let (db, mem) = seqs.split_at(cut);
        let mut located = self.located(DbPart::Seqs(db.iter().copied().collect()), 0..0);
        let len = self.len();
        located.mem = mem
            .iter()
            .map(|&seq| (seq, (seq < len).then(|| self.in_memory(seq).map(Arc::clone)).flatten()))
            .collect();
        Ok(Box::new(located))
    }

    /// As [`Self::locate`], with the records in the table named by their range (work under
    /// the lock bounded by the records in memory).
    fn locate_range(&self, range: Range<u64>) -> Result<Box<dyn Located>, StoreError> {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        let db_end = end.min(self.recent_first).max(start);
        Ok(Box::new(self.located(DbPart::Range(start..db_end), db_end..end)))
    }

    /// Pages through the table, then the records in memory.
    fn for_each(&self, f: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        let mut located = self.locate_range(0..self.len())?;
        while let Some((seq, record)) = located.next_record() {
            match record? {
                Some(record) => {
                    if f(seq, record).is_break() {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

/// The records of a [`PgLocated`] still to query.
#[derive(Debug)]
enum DbPart {
    /// These, increasing.
    Seqs(VecDeque<u64>),
    /// This range.
    Range(Range<u64>),
}

impl DbPart {
    fn is_empty(&self) -> bool {
        match self {
            Self::Seqs(s) => s.is_empty(),
            Self::Range(r) => r.is_empty(),
        }
    }
}

/// Records located in a [`PostgresStore`]: those in the table, queried a page at a time on
/// the reads' connection, then those that were in memory.
#[derive(Debug)]
struct PgLocated {
    shard: i32,
    reader: Arc<Conn>,
    db: DbPart,
    /// Records queried, not yet handed over.
    page: VecDeque<Queried>,
    /// The records that were in memory (`None`: absent).
    mem: VecDeque<(u64, Option<Arc<[u8]>>)>,
    /// The record handed over last.
    held: Option<Held>,
    /// A query failed: nothing more is handed over.
    failed: bool,
}

#[derive(Debug)]
enum Held {
    Queried(Vec<u8>),
    Memory(Arc<[u8]>),
}

impl PgLocated {
    /// Queries the next page of records.
    fn fetch(&mut self) -> Result<(), StoreError> {
        let (seqs, range): (Vec<u64>, Option<Range<u64>>) = match &mut self.db {
            DbPart::Seqs(seqs) => {
                let n = seqs.len().min(limits::READ_PAGE);
                (seqs.drain(..n).collect(), None)
            }
            DbPart::Range(range) => {
                let end = range.end.min(range.start.saturating_add(limits::READ_PAGE as u64));
                let page = range.start..end;
                range.start = end;
                (page.clone().collect(), Some(page))
            }
        };
        let shard = self.shard;
        let rows = self.reader.call(move |s| select_seqs(s, shard, &seqs, range))?;
        self.page.extend(rows);
        Ok(())
    }
}

impl Located for PgLocated {
    fn next_record(&mut self) -> Option<LocatedRecord<'_>> {
        if self.failed {
            return None;
        }
        if self.page.is_empty() && !self.db.is_empty() {
            let first = match &self.db {
                DbPart::Seqs(s) => s.front().copied().unwrap_or_default(),
                DbPart::Range(r) => r.start,
            };
            if let Err(e) = self.fetch() {
                self.failed = true;
                return Some((first, Err(e)));
            }
        }
        let (seq, held) = if let Some((seq, record)) = self.page.pop_front() {
            (seq, record.map(Held::Queried))
        } else {
            let (seq, record) = self.mem.pop_front()?;
            (seq, record.map(Held::Memory))
        };
        self.held = held;
        let record = self.held.as_ref().map(|h| match h {
            Held::Queried(v) => &v[..],
            Held::Memory(a) => &a[..],
        });
        Some((seq, Ok(record)))
    }
}
