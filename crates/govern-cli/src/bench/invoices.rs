//! `govern bench invoices`: the billing run for N tenants. Phase one (not timed) writes a
//! January: N tenants provisioned, each on `starter` (the pricing example) with its own
//! API-call usage. Phase two reopens the data directory at February 1 and times
//! `RuntimeHandle::close_period_all("2026-01")`: for each tenant, its receipts read, its
//! invoice priced, a `record_invoice` receipt and an invoice payment request written, durably.
//! Exits 1 unless every tenant's invoice is the one its usage implies, the run wrote exactly
//! two receipts per tenant, and the chain verifies.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::time::Instant;

use clap::Args;
use govern_governors::billing::PaymentMethod;
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_runtime::Runtime;
use rust_decimal::Decimal;

use super::checks::EXAMPLE_CATALOG;

/// 2026-01-10T00:00:00Z: the month's usage is written then.
const JANUARY: Timestamp = Timestamp(1_767_225_600_000 + 9 * 86_400_000);
/// 2026-02-01T00:00:00Z: the billing run's clock.
const FEBRUARY: Timestamp = Timestamp(1_767_225_600_000 + 31 * 86_400_000);

/// Options of `govern bench invoices`.
#[derive(Debug, Args)]
pub(crate) struct InvoicesArgs {
    /// Tenants to invoice.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Tenants closed at a time by the billing run (and clients writing phase one).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The data directory (created; must not hold a ledger yet). Default: a temporary one.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// The API calls tenant `i` made in January: 0 to 199 999 (10 000 are included).
fn calls(i: usize) -> u64 {
    (i as u64 * 7_919) % 200_000
}

/// What tenant `i` owes, worked out by hand from the pricing example: 29.00, plus the calls
/// beyond 10 000: the first 90 000 at 0.001, the rest at 0.0005, rounded half-even to cents.
fn expected(i: usize) -> Decimal {
    let over = calls(i).saturating_sub(10_000);
    let first = Decimal::from(over.min(90_000)) * Decimal::new(1, 3);
    let rest = Decimal::from(over.saturating_sub(90_000)) * Decimal::new(5, 4);
    let mut total = Decimal::new(2900, 2);
    for line in [first, rest] {
        if !line.is_zero() {
            total +=
                line.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven);
        }
    }
    total
}

/// Runs `govern bench invoices`.
pub(crate) fn invoices(args: &InvoicesArgs) -> Result<(), String> {
    if args.tenants == 0 || args.concurrency == 0 {
        return Err("--tenants and --concurrency must be at least 1".into());
    }
    let temp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().map_err(|e| e.to_string())?;
            temp.path().join("ledger")
        }
    };
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    let (write_secs, secs, receipts) = rt.block_on(drive(args, &dir))?;
    let per_s = args.tenants as f64 / secs;
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "invoices",
                "tenants": args.tenants,
                "concurrency": args.concurrency,
                "workers": workers,
                "cores": cores,
                "setup_s": write_secs,
                "billing_run_s": secs,
                "invoices_per_s": per_s.round(),
                "receipts": receipts,
            })
        );
    } else {
        say!(
            "invoices: billing run of {} tenants, {} at a time, {workers} workers on {cores} cores, durable store",
            args.tenants,
            args.concurrency
        );
        say!("  setup (January)  {write_secs:>10.2} s");
        say!("  billing run      {secs:>10.2} s ({per_s:.0} invoices/s)");
        say!("  receipts         {receipts:>10} (chain verified)");
    }
    Ok(())
}

async fn drive(args: &InvoicesArgs, dir: &std::path::Path) -> Result<(f64, f64, u64), String> {
    let catalog =
        govern_plans::validate_files(&EXAMPLE_CATALOG).map_err(|p| super::problems_text(&p))?;
    let tenant = |i: usize| TenantId::new(&format!("t-{i:06}")).map_err(|e| e.to_string());
    let started = Instant::now();
    let runtime = Runtime::builder()
        .epoch(JANUARY)
        .data_dir(dir)
        .catalog(catalog.clone())
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let mut tasks = Vec::new();
    for c in 0..args.concurrency {
        let h = h.clone();
        let ids: Vec<usize> = (c..args.tenants).step_by(args.concurrency).collect();
        tasks.push(tokio::spawn(async move {
            let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
            let sub = ResourceId::new("sub-1").map_err(|e| e.to_string())?;
            for i in ids {
                let t = tenant(i)?;
                h.provision_tenant(&t, quota, "bench").await.map_err(|e| e.to_string())?;
                let s = h.subscription(&t, &sub);
                s.start_trial("starter", 14, "bench").await.map_err(|e| e.to_string())?;
                s.activate(None, "bench").await.map_err(|e| e.to_string())?;
                if calls(i) > 0 {
                    h.record_usage(&t, "api_calls", calls(i), "jan", h.now())
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    let write_secs = started.elapsed().as_secs_f64();

    let runtime = Runtime::builder()
        .epoch(FEBRUARY)
        .data_dir(dir)
        .catalog(catalog)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let before = h.head().next_seq;
    let started = Instant::now();
    let closed = h.close_period_all("2026-01", PaymentMethod::Card, args.concurrency).await;
    let secs = started.elapsed().as_secs_f64();
    if closed.len() != args.tenants {
        return Err(format!("{} tenants closed, not {}", closed.len(), args.tenants));
    }
    for (i, (t, result)) in closed.iter().enumerate() {
        let c = result.as_ref().map_err(|e| format!("{t}: {e}"))?;
        if c.total != expected(i) || !c.closed_now {
            return Err(format!(
                "{t}: total {} (closed now {}), expected {}",
                c.total,
                c.closed_now,
                expected(i)
            ));
        }
    }
    let receipts = h.verify().map_err(|e| e.to_string())?.next_seq;
    if receipts - before != 2 * args.tenants as u64 {
        return Err(format!("the run wrote {} receipts, not 2 per tenant", receipts - before));
    }
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    Ok((write_secs, secs, receipts))
}
