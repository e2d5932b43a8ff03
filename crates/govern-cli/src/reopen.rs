//! `govern bench reopen DATA_DIR`: how long a restart takes to get a ledger back from its data
//! directory, as the runtime does it: `Ledger::open_dir`, the store's open scan (every
//! segment read once, every frame's CRC32C checked, the offset index built) handing each
//! segment to the ledger's rebuild (chain, index by resource, Merkle frontier) as it goes,
//! timed as one step (`combined`). With `--two-steps`, the way it was done before:
//! `SegmentStore::open`, then `Ledger::open` reading every record again, timed separately.
//! Reports the heap the opened ledger holds.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use govern_ledger::segment::{SegmentOptions, SegmentStore};
use govern_ledger::{Ledger, OpenReport};

use crate::alloc_count::live_bytes;

/// Options of `govern bench reopen`.
#[derive(Debug, Args)]
pub(crate) struct ReopenArgs {
    /// The data directory of an existing ledger (e.g. one `govern bench ledger` wrote). It is
    /// opened read-write, as a restarting runtime opens it; a clean ledger is not changed.
    data_dir: PathBuf,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
    /// Open the store, then the ledger over it (each segment read twice), timing each step,
    /// instead of both from one read (`Ledger::open_dir`, what the runtime does).
    #[arg(long)]
    two_steps: bool,
    /// The index budget, in bytes (default: the ledger's, `INDEX_BUDGET_BYTES`): how many
    /// bytes of resource lists read back from the snapshot the index keeps, and a quarter
    /// of it each for tenants' lists and sealed segments' frame offsets. Set after the open,
    /// so the heap reported is the open's with the default budget.
    #[arg(long, value_name = "BYTES")]
    index_budget: Option<usize>,
}

/// What opening took: the ledger, the store's report, and the seconds of each step (only
/// the total when opened in one).
struct Opened {
    ledger: Ledger,
    report: OpenReport,
    /// `SegmentStore::open` and `Ledger::open`, when opened in two steps.
    steps: Option<(f64, f64)>,
    total_s: f64,
    /// Live heap after the store's open, when opened in two steps.
    store_bytes: Option<i64>,
}

fn open(args: &ReopenArgs) -> Result<Opened, String> {
    let before = live_bytes();
    let started = Instant::now();
    if !args.two_steps {
        let (ledger, report) = Ledger::open_dir(&args.data_dir, SegmentOptions::default())
            .map_err(|e| e.to_string())?;
        let total_s = started.elapsed().as_secs_f64();
        return Ok(Opened { ledger, report, steps: None, total_s, store_bytes: None });
    }
    let (store, report) =
        SegmentStore::open(&args.data_dir, SegmentOptions::default()).map_err(|e| e.to_string())?;
    let store_s = started.elapsed().as_secs_f64();
    let store_bytes = live_bytes() - before;
    let started = Instant::now();
    let ledger = Ledger::open(Box::new(store)).map_err(|e| e.to_string())?;
    let ledger_s = started.elapsed().as_secs_f64();
    Ok(Opened {
        ledger,
        report,
        steps: Some((store_s, ledger_s)),
        total_s: store_s + ledger_s,
        store_bytes: Some(store_bytes),
    })
}

/// Opens the ledger in the data directory and reports how long each step took.
pub(crate) fn run(args: &ReopenArgs) -> Result<(), String> {
    let before = live_bytes();
    let Opened { ledger, report, steps, total_s, store_bytes } = open(args)?;
    if let Some(bytes) = args.index_budget {
        ledger.set_index_budget(bytes);
    }
    let heap_bytes = live_bytes() - before;
    let index_bytes = ledger.index_resident_bytes();
    let cold = cold_read(&ledger)?;
    let receipts = report.records;
    let head = ledger.head();
    let root = ledger.tree_head().map(|t| t.root.to_string()).unwrap_or_default();
    let per_s = |s: f64| if s > 0.0 { receipts as f64 / s } else { 0.0 };
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    let peak_rss_mib = crate::bench::peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "reopen",
                "receipts": receipts,
                "segments": report.segments,
                "snapshot": report.snapshot,
                "cores": cores,
                "combined": steps.is_none(),
                "store_open_s": steps.map(|(store_s, _)| round3(store_s)),
                "ledger_open_s": steps.map(|(_, ledger_s)| round3(ledger_s)),
                "total_s": round3(total_s),
                "receipts_per_s": per_s(total_s).round(),
                "store_heap_mib": store_bytes.map(|b| (mib(b) * 10.0).round() / 10.0),
                "heap_mib": (mib(heap_bytes) * 10.0).round() / 10.0,
                "index_resident_mib": (mib(index_bytes as i64) * 10.0).round() / 10.0,
                "peak_rss_mib": (peak_rss_mib * 10.0).round() / 10.0,
                "cold_read_ms": cold.map(|c| round3(c.cold_s * 1e3)),
                "warm_read_ms": cold.map(|c| round3(c.warm_s * 1e3)),
                "read_receipts": cold.map(|c| c.receipts),
                "next_seq": head.next_seq,
                "last_hash": head.last_hash.to_string(),
                "root": root,
            })
        );
    } else {
        say!(
            "reopen: {receipts} receipts in {} segments of {} ({cores} cores)",
            report.segments,
            args.data_dir.display()
        );
        if let Some((store_s, ledger_s)) = steps {
            say!(
                "  SegmentStore::open  {store_s:>8.3} s  {:>12.0} receipts/s  (frames, CRC32C, offsets)",
                per_s(store_s)
            );
            say!(
                "  Ledger::open        {ledger_s:>8.3} s  {:>12.0} receipts/s  (chain, index, Merkle frontier)",
                per_s(ledger_s)
            );
        } else {
            say!("  Ledger::open_dir    (frames, CRC32C, offsets; chain, index, Merkle frontier)");
            match report.snapshot {
                Some(covered) => say!(
                    "  from the snapshot of the first {covered} receipts; {} read after it",
                    receipts - covered
                ),
                None => say!("  without a snapshot: every receipt read"),
            }
        }
        say!("  total               {total_s:>8.3} s  {:>12.0} receipts/s", per_s(total_s));
        say!(
            "  heap after open     {:>8.1} MiB{}, peak RSS {peak_rss_mib:.1} MiB",
            mib(heap_bytes),
            store_bytes.map_or(String::new(), |b| format!(" (store offsets {:.1} MiB)", mib(b)))
        );
        say!(
            "  index resident      {:>8.1} MiB (resource lists held, tenants' lists, snapshot fence)",
            mib(index_bytes as i64)
        );
        if let Some(c) = cold {
            say!(
                "  resource_receipts   {:>8.3} ms cold, {:.3} ms again ({} receipts of the resource of receipt {})",
                c.cold_s * 1e3,
                c.warm_s * 1e3,
                c.receipts,
                c.seq
            );
        }
        say!("  head                next_seq {}, last hash {}", head.next_seq, head.last_hash);
        say!("  Merkle root         {root}");
    }
    Ok(())
}

/// One resource's receipts read twice after the open: first cold (its list read from the
/// snapshot when the index pages from one), then again.
#[derive(Clone, Copy)]
struct ColdRead {
    seq: u64,
    receipts: usize,
    cold_s: f64,
    warm_s: f64,
}

/// [`ColdRead`] of the resource of the receipt in the middle of the ledger (none when it is
/// empty).
fn cold_read(ledger: &Ledger) -> Result<Option<ColdRead>, String> {
    let seq = ledger.head().next_seq / 2;
    let Some(receipt) = ledger.receipts_in(seq..seq + 1).map_err(|e| e.to_string())?.pop() else {
        return Ok(None);
    };
    let body = &receipt.body;
    let read = || {
        let started = Instant::now();
        let receipts = ledger
            .resource_receipts(&body.tenant, body.governor, &body.resource)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((receipts.len(), started.elapsed().as_secs_f64()))
    };
    let (receipts, cold_s) = read()?;
    let (_, warm_s) = read()?;
    Ok(Some(ColdRead { seq, receipts, cold_s, warm_s }))
}

fn round3(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}
