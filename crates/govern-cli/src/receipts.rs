//! `govern receipts LEDGER --tenant T`: one tenant's receipts as a readable listing, one
//! line each in sequence order, optionally only one governor kind's or one resource's. Reads
//! the ledger (a data directory or a PostgreSQL database) read-only; it does not verify the chain (`govern verify` does).
//! On a database of several shards only the tenant's shard is read, and the count line names it.
//! In a data directory the ledger's snapshot says where the receipts are (only the records
//! written after it are read whole); without a usable one every record is read.

use std::fmt::Write as _;
use std::io::Write as _;

use clap::Args;
use govern_governors::{GovernorKind, ResourceId, TenantId};
use govern_ledger::LedgerStore as _;
use govern_receipt::Receipt;

use crate::ledger_dir::{Message, for_each_record};
use crate::out::{Stdout, write_error};

/// Options of `govern receipts`.
#[derive(Debug, Args)]
pub(crate) struct ReceiptsArgs {
    /// The ledger: its data directory (it holds `segments/`), or a PostgreSQL database
    /// (`postgres://USER@HOST/DB`, or libpq's `host=... dbname=...`), opened read-only.
    #[arg(value_name = "LEDGER", value_parser = crate::ledger_dir::LedgerArg::parse)]
    ledger: crate::ledger_dir::LedgerArg,
    /// The tenant whose receipts to list (only that tenant's: never another's). An unknown
    /// tenant gives an empty listing (count 0, exit 0).
    #[arg(long)]
    tenant: String,
    /// Only receipts of this governor kind.
    #[arg(long, value_name = "KIND", value_parser = crate::graph::governor_kind())]
    governor: Option<GovernorKind>,
    /// Only receipts of this resource (e.g. `sub-1`).
    #[arg(long, value_name = "RESOURCE")]
    resource: Option<String>,
}

/// Runs `govern receipts`.
pub(crate) fn run(args: &ReceiptsArgs) -> Result<(), String> {
    let tenant = TenantId::new(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    let resource = args
        .resource
        .as_deref()
        .map(ResourceId::new)
        .transpose()
        .map_err(|e| format!("--resource: {e}"))?;
    // Only the tenant's shard: its receipts are written there, and nowhere else.
    let chain = args.ledger.tenant_chain(&tenant)?;
    // A data directory: only its last segment is scanned now, the others are read where the
    // receipts are. A database: its shard.
    let source = match args.ledger.dir() {
        Some(dir) => Source::Lazy(dir, crate::ledger_dir::open_dir_lazily(dir)?),
        None => Source::Store(args.ledger.open_read_only(chain)?),
    };
    // Once the reader has gone (`| head`), lines are dropped and the listing goes on to its
    // real end: a damaged frame further on still fails the command.
    let mut out = std::io::BufWriter::new(Stdout);
    let header = row("SEQ", "TIME", "GOVERNOR", "RESOURCE", "COMMAND", "FROM → TO", "HASH");
    writeln!(out, "{header}  REASON").map_err(|e| write_error(&e))?;
    let mut count = 0u64;
    let mut archived: Option<(usize, u64)> = None;
    let mut print = |seq: u64, record: &[u8]| -> Result<(), Message> {
        let r = Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        count += 1;
        let b = &r.body;
        let line = row(
            &r.seq.to_string(),
            &b.timestamp.to_string(),
            b.governor.name(),
            b.resource.as_str(),
            &b.command,
            &format!("{} → {}", b.state_from, b.state_to),
            &r.hash.short(),
        );
        writeln!(out, "{line}  {}", b.reason.escape_debug()).map_err(|e| Message(write_error(&e)))
    };
    match source {
        // A data directory: the receipts' numbers from its snapshot and the records after
        // it, then only those records read.
        Source::Lazy(dir, store) => {
            let filter = govern_ledger::ReceiptFilter {
                tenant: &tenant,
                kind: args.governor,
                resource: resource.as_ref(),
            };
            let found = govern_ledger::find_receipts(dir, &store, filter)?;
            if let Some(why) = &found.unused {
                // A log event (so that `--log json` keeps stderr JSON), warn: shown by default.
                tracing::warn!(reason = %why, "the ledger snapshot was not used; every receipt was read");
            }
            // Receipts below the archive boundary are in the archive, not here.
            let base = store.base();
            let below = found.seqs.partition_point(|&seq| seq < base);
            if below > 0 {
                archived = Some((below, base));
            }
            let live = found.seqs.get(below..).unwrap_or_default();
            let mut located = store.locate(live).map_err(|e| e.to_string())?;
            while let Some((seq, record)) = located.next_record() {
                match record {
                    Ok(Some(record)) => print(seq, record).map_err(|e| e.0)?,
                    Ok(None) => return Err(format!("receipt {seq} is missing")),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Source::Store(store) => {
            for_each_record(store.as_ref(), |seq, record| -> Result<(), Message> {
                // The key is read without decoding the whole record: other tenants' receipts
                // are skipped cheaply.
                let key = Receipt::decode_key(record).map_err(|e| format!("receipt {seq}: {e}"))?;
                if key.tenant != tenant.as_str()
                    || args.governor.is_some_and(|k| k != key.governor)
                    || resource.as_ref().is_some_and(|r| r.as_str() != key.resource)
                {
                    return Ok(());
                }
                print(seq, record)
            })
            .map_err(|e| chain.named(e.0))?
        }
    }
    let mut filters = String::new();
    if let Some(kind) = args.governor {
        let _ = write!(filters, ", governor {kind}");
    }
    if let Some(r) = &resource {
        let _ = write!(filters, ", resource {r}");
    }
    let noun = if count == 1 { "receipt" } else { "receipts" };
    let shard = if chain.is_sharded() { format!(" ({chain})") } else { String::new() };
    writeln!(out, "{count} {noun} of tenant {tenant}{filters}{shard}")
        .map_err(|e| write_error(&e))?;
    if let Some((n, boundary)) = archived {
        let noun = if n == 1 { "receipt" } else { "receipts" };
        tell!(
            "note: and {n} archived {noun} (below receipt {boundary}), not listed: the archive directory holds them (govern receipts ARCHIVE_DIR ...)"
        );
    }
    out.flush().map_err(|e| write_error(&e))
}

/// Where the receipts are read from.
enum Source<'a> {
    /// A data directory and its segments, read where asked.
    Lazy(&'a std::path::Path, govern_ledger::SegmentReader),
    /// A store opened whole (a database's shard).
    Store(Box<dyn govern_ledger::LedgerStore>),
}

/// One line of the listing, the reason excepted: fixed-width columns, longer values overflow.
fn row(
    seq: &str,
    time: &str,
    governor: &str,
    resource: &str,
    command: &str,
    transition: &str,
    hash: &str,
) -> String {
    format!(
        "{seq:>8}  {time:<24}  {governor:<12}  {resource:<16}  {command:<20}  {transition:<36}  {hash:<12}"
    )
}
