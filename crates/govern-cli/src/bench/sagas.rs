//! `govern bench sagas`: completed saga runs per second. C clients each run the shipped
//! onboarding saga (7 steps, 8 saga records) for tenants of their own, N runs in all, on the
//! in-memory or the durable store. Exits 1 unless every run completed and every run's 15
//! receipts are in the ledger.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use govern_governors::{ResourceId, TenantId};
use govern_runtime::{Runtime, SagaEnd};

/// Receipts one onboarding run leaves: 7 steps and 8 saga records.
const RECEIPTS_PER_RUN: u64 = 15;

/// Options of `govern bench sagas`.
#[derive(Debug, Args)]
pub(crate) struct SagasArgs {
    /// Saga runs in all (one tenant each).
    #[arg(long, default_value_t = 10_000)]
    runs: usize,
    /// Concurrent clients, each running its sagas one after another.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Run on the durable store in this data directory (which must hold no ledger yet).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `govern bench sagas`.
pub(crate) fn sagas(args: &SagasArgs) -> Result<(), String> {
    if args.runs == 0 || args.clients == 0 {
        return Err("--runs and --clients must be at least 1".into());
    }
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    let (secs, receipts) = rt.block_on(drive(args))?;
    let per_s = args.runs as f64 / secs;
    let store = if args.data_dir.is_some() { "durable" } else { "memory" };
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "sagas",
                "store": store,
                "runs": args.runs,
                "clients": args.clients,
                "workers": workers,
                "cores": cores,
                "sagas_per_s": per_s.round(),
                "steps_per_s": (per_s * 7.0).round(),
                "receipts": receipts,
            })
        );
    } else {
        say!(
            "sagas: {} onboarding runs, {} clients, {workers} workers on {cores} cores, {store} store",
            args.runs,
            args.clients
        );
        say!("  completed        {per_s:>10.0} sagas/s ({:.0} steps/s, {secs:.2} s)", per_s * 7.0);
        say!("  receipts         {receipts:>10} (chain verified)");
    }
    Ok(())
}

async fn drive(args: &SagasArgs) -> Result<(f64, u64), String> {
    let mut builder = Runtime::builder();
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    let runtime = builder.start().await.map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let h = h.clone();
        let ids: Vec<usize> = (c..args.runs).step_by(args.clients).collect();
        tasks.push(tokio::spawn(async move {
            for i in ids {
                let tenant = TenantId::new(&format!("t-{i:06}")).map_err(|e| e.to_string())?;
                let run = ResourceId::new("onboarding").map_err(|e| e.to_string())?;
                let params: BTreeMap<String, String> = [
                    ("email", format!("owner-{i}@example.com")),
                    ("plan", "pro".to_owned()),
                    ("feature", "sso".to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
                let end = h
                    .run_saga(&tenant, &run, "onboarding", &params)
                    .await
                    .map_err(|e| e.to_string())?;
                if end != SagaEnd::Completed {
                    return Err(format!("run {i} ended {end:?}"));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let secs = started.elapsed().as_secs_f64();
    let receipts = h.verify().map_err(|e| e.to_string())?.next_seq;
    if receipts != args.runs as u64 * RECEIPTS_PER_RUN {
        return Err(format!("{receipts} receipts, not {RECEIPTS_PER_RUN} per run"));
    }
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    Ok((secs, receipts))
}
