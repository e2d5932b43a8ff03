//! `govern migrate --from DATA_DIR --to URL`: copies a segment-store ledger into an empty
//! PostgreSQL ledger, record by record (the same bytes under the same sequence numbers),
//! in transactions of [`limits::GROUP_RECORDS`] records, then verifies the copy: the same
//! chain head and Merkle root as the source, or exit 1. Memory does not grow with the
//! ledger: one segment file read at a time, one transaction's records, the tree's right
//! edge (the verifications keep no full tree), and the numbering check's 16 bytes per
//! resource.

// Reports how long the copy took; the wall clock is what that needs.
#![allow(clippy::disallowed_methods, reason = "timing the copy for its report")]

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use govern_ledger::LedgerStore;
use govern_ledger::verify::{verify_dir_roots, verify_store_roots};
use govern_postgres::PostgresStore;

use crate::ledger_dir::{LedgerArg, Message, failed, for_each_record, open_dir_read_only};

/// Bounds of the copy.
pub(crate) mod limits {
    /// Records one transaction of the copy carries (at most; the last one fewer). The
    /// store buffers them until their commit, so this bounds the copy's memory with
    /// [`GROUP_BYTES`] (besides one segment file read at a time and the store's cache).
    pub(crate) const GROUP_RECORDS: u64 = 4_096;
    /// Bytes of records one transaction of the copy carries (at most, past one record).
    pub(crate) const GROUP_BYTES: usize = 8 << 20;
}

/// Options of `govern migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The source: a ledger's data directory (it holds `segments/`), opened read-only.
    #[arg(long, value_name = "DATA_DIR")]
    from: PathBuf,
    /// The target: a PostgreSQL database (`postgres://USER@HOST/DB`, or libpq's `host=...
    /// dbname=...`). Its schema is created if missing; its ledger must be empty.
    #[arg(long, value_name = "URL")]
    to: String,
}

/// Runs `govern migrate`.
pub(crate) fn run(args: &MigrateArgs) -> Result<(), String> {
    let target = LedgerArg::parse(&args.to)?;
    let LedgerArg::Postgres(url) = &target else {
        return Err(format!(
            "--to {}: not a PostgreSQL connection string (postgres://..., postgresql://... or host=... dbname=...)",
            args.to
        ));
    };
    let started = Instant::now();
    // The source is verified first: a damaged ledger is not copied.
    let source = verify_dir_roots(&args.from, &[])
        .map_err(|e| failed(&format!("{}: verification failed", args.from.display()), &e))?;
    let store = open_dir_read_only(&args.from)?;
    let mut pg = PostgresStore::open(url).map_err(|e| format!("{target}: {e}"))?;
    if !pg.is_empty() {
        let rows = pg.rows().map_err(|e| format!("{target}: {e}"))?;
        return Err(format!(
            "{target} is not empty: its ledger holds {rows} rows (receipts up to {}); migrate copies into an empty ledger only, nothing was written",
            pg.len() - 1
        ));
    }
    let mut pending = 0u64;
    let mut pending_bytes = 0usize;
    // Only what was verified: a live writer may have appended since.
    for_each_record(&store, |seq, record| -> Result<(), Message> {
        if seq >= source.receipts {
            return Ok(());
        }
        if pending > 0
            && (pending >= limits::GROUP_RECORDS
                || pending_bytes + record.len() > limits::GROUP_BYTES)
        {
            pg.sync()?;
            pending = 0;
            pending_bytes = 0;
        }
        pg.append(seq, record)?;
        pending += 1;
        pending_bytes += record.len();
        Ok(())
    })
    .map_err(|e| format!("copying into {target}: {}", e.0))?;
    pg.sync().map_err(|e| format!("copying into {target}: {e}"))?;
    pg.close();
    drop(pg);
    let copied = Instant::now();
    let copy = PostgresStore::open_read_only(url).map_err(|e| format!("{target}: {e}"))?;
    let check = verify_store_roots(&copy, &[])
        .map_err(|e| failed(&format!("the copy in {target} fails verification"), &e))?;
    say!(
        "copied {} receipts from {} to {target} in {:.3} s; copy verified in {:.3} s",
        source.receipts,
        args.from.display(),
        copied.duration_since(started).as_secs_f64(),
        copied.elapsed().as_secs_f64()
    );
    say!(
        "source: next_seq {} last_hash {} root {}",
        source.head.next_seq,
        source.head.last_hash,
        source.root
    );
    say!(
        "copy:   next_seq {} last_hash {} root {}",
        check.head.next_seq,
        check.head.last_hash,
        check.root
    );
    if check.head != source.head || check.root != source.root {
        return Err(format!("the copy in {target} differs from {}", args.from.display()));
    }
    say!("ok: the copy has the same head and Merkle root");
    Ok(())
}
