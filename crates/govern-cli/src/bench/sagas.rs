//! `govern bench sagas`: completed saga runs per second. C clients each run one of the
//! shipped sagas for tenants of their own, N runs in all, on the in-memory or the durable
//! store: onboarding (7 steps, 8 saga records), plan-upgrade (7 steps, 6 receipts of them:
//! the gates write nothing; each tenant on the example pricing catalog's Starter first) or
//! billing-run (4 steps, 3 receipts: invoice, payment, finalize; each tenant paying for
//! Starter in January 2026, billed once January has ended). The setup is not timed. Exits 1
//! unless every run completed and every run's receipts are in the ledger.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_runtime::{Runtime, SagaEnd};

/// A shipped saga to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shipped {
    /// Tenant onboarding.
    Onboarding,
    /// Starter to Pro through the plan change's gates.
    PlanUpgrade,
    /// January 2026's invoice, payment, notification and finalization.
    BillingRun,
}

impl Shipped {
    fn name(self) -> &'static str {
        match self {
            Self::Onboarding => "onboarding",
            Self::PlanUpgrade => "plan-upgrade",
            Self::BillingRun => "billing-run",
        }
    }

    /// Its steps, and the receipts one run leaves: its steps' receipts and its saga
    /// records (begin and one per step).
    fn shape(self) -> (u64, u64) {
        match self {
            Self::Onboarding => (7, 7 + 8),
            Self::PlanUpgrade => (7, 6 + 8),
            Self::BillingRun => (4, 3 + 5),
        }
    }

    /// Run `i`'s parameters.
    fn params(self, i: usize) -> BTreeMap<String, String> {
        let pairs: Vec<(&str, String)> = match self {
            Self::Onboarding => vec![
                ("email", format!("owner-{i}@example.com")),
                ("plan", "pro".to_owned()),
                ("feature", "sso".to_owned()),
            ],
            Self::PlanUpgrade => vec![
                ("to", "pro".to_owned()),
                ("amount", "20.00".to_owned()),
                ("transaction", format!("tx-{i}")),
                ("feature", "sso".to_owned()),
            ],
            Self::BillingRun => vec![("period", "2026-01".to_owned())],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// February 1, 2026: the billing run's January has ended.
const FEBRUARY_2026: Timestamp = Timestamp(1_769_904_000_000);

/// Options of `govern bench sagas`.
#[derive(Debug, Args)]
pub(crate) struct SagasArgs {
    /// Which shipped saga.
    #[arg(long, value_enum, default_value_t = Shipped::Onboarding)]
    saga: Shipped,
    /// The billing run's setup starts the clock this many seconds before February 2026 and
    /// waits for February before the timed runs (it must set every tenant up by then).
    #[arg(long, default_value_t = 30)]
    setup_secs: u64,
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
    let steps = args.saga.shape().0 as f64;
    let store = if args.data_dir.is_some() { "durable" } else { "memory" };
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "sagas",
                "saga": args.saga.name(),
                "store": store,
                "runs": args.runs,
                "clients": args.clients,
                "workers": workers,
                "cores": cores,
                "sagas_per_s": per_s.round(),
                "steps_per_s": (per_s * steps).round(),
                "receipts": receipts,
            })
        );
    } else {
        say!(
            "sagas: {} {} runs, {} clients, {workers} workers on {cores} cores, {store} store",
            args.runs,
            args.saga.name(),
            args.clients
        );
        say!(
            "  completed        {per_s:>10.0} sagas/s ({:.0} steps/s, {secs:.2} s)",
            per_s * steps
        );
        say!("  receipts         {receipts:>10} (chain verified)");
    }
    Ok(())
}

/// Tenant `i`.
fn tenant(i: usize) -> Result<TenantId, String> {
    TenantId::new(&format!("t-{i:06}")).map_err(|e| e.to_string())
}

/// The runtime, with what the saga needs set up for every tenant (not timed): the example
/// pricing catalog and each tenant active on Starter, for the upgrade and the billing run;
/// for the billing run, the clock then at February.
async fn start(args: &SagasArgs) -> Result<govern_runtime::Runtime, String> {
    let mut builder = Runtime::builder();
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    if args.saga == Shipped::Onboarding {
        return builder.start().await.map_err(|e| e.to_string());
    }
    let pricing = [super::checks::EXAMPLE_CATALOG[1]];
    let catalog = govern_plans::validate_files(&pricing).map_err(|p| super::problems_text(&p))?;
    builder = builder.catalog(catalog);
    if args.saga == Shipped::BillingRun {
        builder = builder.epoch(Timestamp(FEBRUARY_2026.0 - args.setup_secs.saturating_mul(1_000)));
    }
    let runtime = builder.start().await.map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    let sub = ResourceId::new("sub-1").map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (h, sub) = (h.clone(), sub.clone());
        let ids: Vec<usize> = (c..args.runs).step_by(args.clients).collect();
        tasks.push(tokio::spawn(async move {
            for i in ids {
                let t = tenant(i)?;
                h.provision_tenant(&t, quota, "bench").await.map_err(|e| e.to_string())?;
                let s = h.subscription(&t, &sub);
                s.activate(Some("starter"), "bench").await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    if args.saga == Shipped::BillingRun {
        let now = h.now();
        if now >= FEBRUARY_2026 {
            return Err(format!(
                "the setup took longer than --setup-secs {}: raise it",
                args.setup_secs
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(FEBRUARY_2026.0 - now.0 + 1)).await;
    }
    Ok(runtime)
}

async fn drive(args: &SagasArgs) -> Result<(f64, u64), String> {
    let runtime = start(args).await?;
    let h = runtime.handle();
    let before = h.verify().map_err(|e| e.to_string())?.next_seq;
    let saga = args.saga;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let h = h.clone();
        let ids: Vec<usize> = (c..args.runs).step_by(args.clients).collect();
        tasks.push(tokio::spawn(async move {
            for i in ids {
                let tenant = tenant(i)?;
                let run = ResourceId::new(saga.name()).map_err(|e| e.to_string())?;
                let end = h
                    .run_saga(&tenant, &run, saga.name(), &saga.params(i))
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
    let receipts = h.verify().map_err(|e| e.to_string())?.next_seq - before;
    let per_run = saga.shape().1;
    if receipts != args.runs as u64 * per_run {
        return Err(format!("{receipts} receipts, not {per_run} per run"));
    }
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    Ok((secs, receipts))
}
