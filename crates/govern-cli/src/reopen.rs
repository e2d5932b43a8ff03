//! `govern bench reopen DATA_DIR`: how long a restart takes to get a ledger back from its data
//! directory. Times the two steps separately: `SegmentStore::open` (scan every segment, check
//! every frame's CRC32C, build the offset index) and `Ledger::open` (chain, index by
//! resource, Merkle frontier), and reports the heap the opened ledger holds.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use govern_ledger::segment::{SegmentOptions, SegmentStore};
use govern_ledger::{Ledger, LedgerStore};

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
}

/// Opens the ledger in the data directory and reports how long each step took.
pub(crate) fn run(args: &ReopenArgs) -> Result<(), String> {
    let before = live_bytes();
    let started = Instant::now();
    let (store, report) =
        SegmentStore::open(&args.data_dir, SegmentOptions::default()).map_err(|e| e.to_string())?;
    let store_s = started.elapsed().as_secs_f64();
    let receipts = store.len();
    let store_bytes = live_bytes() - before;
    let started = Instant::now();
    let ledger = Ledger::open(Box::new(store)).map_err(|e| e.to_string())?;
    let ledger_s = started.elapsed().as_secs_f64();
    let heap_bytes = live_bytes() - before;
    let total_s = store_s + ledger_s;
    let head = ledger.head();
    let root = ledger.tree_head().map(|t| t.root.to_string()).unwrap_or_default();
    let per_s = |s: f64| if s > 0.0 { receipts as f64 / s } else { 0.0 };
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    let peak_rss_mib = peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "reopen",
                "receipts": receipts,
                "segments": report.segments,
                "cores": cores,
                "store_open_s": round3(store_s),
                "ledger_open_s": round3(ledger_s),
                "total_s": round3(total_s),
                "receipts_per_s": per_s(total_s).round(),
                "store_heap_mib": (mib(store_bytes) * 10.0).round() / 10.0,
                "heap_mib": (mib(heap_bytes) * 10.0).round() / 10.0,
                "peak_rss_mib": (peak_rss_mib * 10.0).round() / 10.0,
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
        say!(
            "  SegmentStore::open  {store_s:>8.3} s  {:>12.0} receipts/s  (frames, CRC32C, offsets)",
            per_s(store_s)
        );
        say!(
            "  Ledger::open        {ledger_s:>8.3} s  {:>12.0} receipts/s  (chain, index, Merkle frontier)",
            per_s(ledger_s)
        );
        say!("  total               {total_s:>8.3} s  {:>12.0} receipts/s", per_s(total_s));
        say!(
            "  heap after open     {:>8.1} MiB (store offsets {:.1} MiB), peak RSS {peak_rss_mib:.1} MiB",
            mib(heap_bytes),
            mib(store_bytes)
        );
        say!("  head                next_seq {}, last hash {}", head.next_seq, head.last_hash);
        say!("  Merkle root         {root}");
    }
    Ok(())
}

fn round3(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Peak resident set size from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
