//! `govern bench start DATA_DIR`: how long a runtime takes to start on an existing ledger,
//! as `govern serve` or a host does it (`Runtime::builder().data_dir(D).start()`): the ledger
//! opened (`Ledger::open_dir`), then the runtime's start state (state timeouts re-armed,
//! idempotency keys, usage, check views and unfinished sagas rebuilt, tenants' states
//! restored: from `D/runtime.snap` and the receipts after it, or from every receipt when it is
//! missing or not usable; `RUST_LOG=info` says which and how long it took), timed together,
//! with the heap it holds afterwards; then it shuts down (its last commit and a signed
//! checkpoint, and `runtime.snap` written: the next start takes the short path; remove the
//! file to time a start from every receipt).

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use govern_runtime::Runtime;

use crate::alloc_count::live_bytes;

/// Options of `govern bench start`.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The data directory of an existing ledger (e.g. one `govern bench ledger` wrote). The
    /// runtime opens it read-write and, at its shutdown, signs a checkpoint into it.
    data_dir: PathBuf,
    /// With this plan catalog (files taken together), so that the start also rebuilds the
    /// check views and usage counters.
    #[arg(long, num_args = 1..)]
    catalog: Vec<PathBuf>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// Starts a runtime on the data directory, reports how long it took, and shuts it down.
pub(crate) fn run(args: &StartArgs) -> Result<(), String> {
    // A runtime would create a ledger where there is none: measure only an existing one.
    if !args.data_dir.join(govern_ledger::segment::SEGMENTS_DIR).is_dir() {
        return Err(format!("{}: no ledger here (no segments/)", args.data_dir.display()));
    }
    let (tokio, workers, _) = crate::bench::tokio_runtime(None)?;
    let mut builder = Runtime::builder().data_dir(&args.data_dir);
    if !args.catalog.is_empty() {
        builder = builder.catalog(crate::plans::load_catalog(&args.catalog)?);
    }
    let before = live_bytes();
    let started = Instant::now();
    let runtime = tokio.block_on(builder.start()).map_err(|e| e.to_string())?;
    let start_s = started.elapsed().as_secs_f64();
    let heap_mib = (live_bytes() - before) as f64 / (1024.0 * 1024.0);
    let status = runtime.handle().ledger_status();
    // Tenants with receipts (a benchmark's ledger may hold no tenant governor's).
    let tenants = runtime.handle().receipt_counts().len();
    let started = Instant::now();
    tokio.block_on(runtime.shutdown()).map_err(|e| e.to_string())?;
    let stop_s = started.elapsed().as_secs_f64();
    let peak_rss_mib = crate::bench::peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0);
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "start",
                "receipts": status.receipts,
                "tenants": tenants,
                "workers": workers,
                "start_s": (start_s * 1000.0).round() / 1000.0,
                "stop_s": (stop_s * 1000.0).round() / 1000.0,
                "heap_mib": (heap_mib * 10.0).round() / 10.0,
                "peak_rss_mib": (peak_rss_mib * 10.0).round() / 10.0,
            })
        );
    } else {
        say!(
            "start: a runtime on {} receipts of {tenants} tenants in {} took {start_s:.3} s ({workers} workers), holding {heap_mib:.1} MiB of heap (peak RSS {peak_rss_mib:.1} MiB); its shutdown {stop_s:.3} s",
            status.receipts,
            args.data_dir.display()
        );
    }
    Ok(())
}
