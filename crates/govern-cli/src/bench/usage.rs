//! `govern bench usage`: usage ingest through the runtime (`RuntimeHandle::record_usage_batch`):
//! P producers, each reporting batches of events for its tenant, acknowledged once the
//! `record_usage` receipts that carry them are durable. Checks at the end that every event
//! was counted once (the meters' values, from the receipts) and that the chain verifies.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::time::Instant;

use clap::Args;
use govern_governors::tenant::ResourceQuota;
use govern_governors::{GovernorKind, TenantId};
use govern_runtime::{Runtime, UsageRecorded};
use govern_usage::UsageEvent;

/// The plan the tenants are on and the meter they report (unlimited on it).
pub(super) const PLAN: &str = "pricing-enterprise";
pub(super) const METER: &str = "ai_tokens";

/// Options of `govern bench usage`.
#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    /// Events in all.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Concurrent producers, each with a tenant of its own.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Events per `record_usage_batch` call.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Catalog files, taken together (default: the three example catalogs, compiled in); it
    /// must have the plan `pricing-enterprise` with an `ai_tokens` meter.
    #[arg(long, num_args = 1..)]
    catalog: Vec<std::path::PathBuf>,
    /// Run on the durable store in this data directory (which must hold no ledger yet);
    /// default: the in-memory store.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `govern bench usage`.
pub(crate) fn usage(args: &UsageArgs) -> Result<(), String> {
    if args.events == 0 || args.producers == 0 || args.batch == 0 {
        return Err("--events, --producers and --batch must be at least 1".into());
    }
    if args.batch > govern_runtime::limits::USAGE_CALL_EVENTS_MAX {
        return Err(format!(
            "--batch is at most {} (USAGE_CALL_EVENTS_MAX)",
            govern_runtime::limits::USAGE_CALL_EVENTS_MAX
        ));
    }
    let catalog = if args.catalog.is_empty() {
        govern_plans::validate_files(&super::checks::EXAMPLE_CATALOG)
            .map_err(|problems| super::problems_text(&problems))?
    } else {
        super::load_catalog(&args.catalog)?
    };
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    let (secs, receipts, counted) = rt.block_on(drive(args, catalog))?;
    let per_s = args.events as f64 / secs;
    let store = if args.data_dir.is_some() { "durable" } else { "memory" };
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "usage",
                "store": store,
                "events": args.events,
                "producers": args.producers,
                "batch": args.batch,
                "workers": workers,
                "cores": cores,
                "events_per_s": per_s.round(),
                "usage_receipts": receipts,
                "counted": counted,
            })
        );
    } else {
        say!(
            "usage: {} events, {} producers × batches of {}, {workers} workers on {cores} cores, {store} store",
            args.events,
            args.producers,
            args.batch
        );
        say!("  ingest           {per_s:>12.0} events/s ({secs:.2} s)");
        say!("  receipts         {receipts:>12} record_usage batches (chain verified)");
        say!("  counted          {counted:>12} events, each once");
    }
    Ok(())
}

/// Starts the runtime, provisions the tenants, runs the producers; returns (seconds, usage
/// receipts, events counted by the receipts).
async fn drive(
    args: &UsageArgs,
    catalog: govern_plans::Catalog,
) -> Result<(f64, u64, u64), String> {
    let mut builder = Runtime::builder().catalog(catalog);
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    let runtime = builder.start().await.map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    let mut tenants = Vec::new();
    for p in 0..args.producers {
        let tenant = TenantId::new(&format!("usage-{p:04}")).map_err(|e| e.to_string())?;
        h.provision_tenant(&tenant, quota, "bench").await.map_err(|e| e.to_string())?;
        let sub = govern_governors::ResourceId::new("sub-1").map_err(|e| e.to_string())?;
        let sub = h.subscription(&tenant, &sub);
        sub.start_trial(PLAN, 14, "bench").await.map_err(|e| e.to_string())?;
        tenants.push(tenant);
    }
    let per_producer = args.events / args.producers as u64;
    let extra = args.events % args.producers as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (p, tenant) in tenants.iter().enumerate() {
        let n = per_producer + u64::from((p as u64) < extra);
        let (h, tenant, batch) = (h.clone(), tenant.clone(), args.batch);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while sent < n {
                let now = h.now();
                let take = (n - sent).min(batch as u64);
                let events = (sent..sent + take)
                    .map(|i| UsageEvent::new(METER, 1, &format!("e{i}"), now))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let results =
                    h.record_usage_batch(&tenant, events).await.map_err(|e| e.to_string())?;
                for r in results {
                    match r {
                        Ok(UsageRecorded::Counted { .. }) => {}
                        other => return Err(format!("an event was not counted: {other:?}")),
                    }
                }
                sent += take;
            }
            Ok::<u64, String>(sent)
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let secs = started.elapsed().as_secs_f64();
    let (mut receipts, mut counted) = (0u64, 0u64);
    for tenant in &tenants {
        for r in h.receipts(tenant, Some(GovernorKind::Quota), None).map_err(|e| e.to_string())? {
            receipts += 1;
            counted += r.body.args.get("total").and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    if counted != args.events {
        return Err(format!("{counted} events counted by the receipts, {} sent", args.events));
    }
    h.verify().map_err(|e| e.to_string())?;
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    Ok((secs, receipts, counted))
}
