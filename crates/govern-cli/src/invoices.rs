//! `govern invoices DATA_DIR --tenant T --catalog FILE... [--period YYYY-MM] [--json]`: what a
//! tenant owes for one calendar month, from the ledger alone: the plan of its live
//! subscription (the first by id) as its receipts leave it, the month's metered usage (the
//! totals of its `record_usage` batches of that month), priced by the catalog
//! (`govern_pricing::invoice`, docs/pricing.md). Reads the data directory read-only. A
//! preview: closing a period into a receipted invoice comes with issue 13's billing run.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use govern_governors::{GovernorKind, TenantId, civil_from_days};
use govern_receipt::Receipt;

use crate::ledger_dir::{Message, open_read_only};
use crate::out::{Stdout, write_error};

/// Options of `govern invoices`.
#[derive(Debug, Args)]
pub(crate) struct InvoicesArgs {
    /// The ledger's data directory (it holds `segments/`).
    data_dir: PathBuf,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The plan catalog files the runtime ran with, taken together.
    #[arg(long, num_args = 1.., required = true)]
    catalog: Vec<PathBuf>,
    /// The month, `YYYY-MM` (default: the month of the tenant's last receipt).
    #[arg(long)]
    period: Option<String>,
    /// The invoice as JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Subscription states in which a plan is served.
const LIVE: [&str; 3] = ["free_trial", "active", "cancellation_requested"];

/// Months since January 1970 of `YYYY-MM`.
fn month_key(text: &str) -> Result<u64, String> {
    let bad = || format!("--period: `{text}` is not a month (YYYY-MM)");
    let (y, m) = text.split_once('-').ok_or_else(bad)?;
    let (y, m): (u64, u64) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return Err(bad());
    }
    Ok((y - 1970) * 12 + (m - 1))
}

/// Runs `govern invoices`.
pub(crate) fn run(args: &InvoicesArgs) -> Result<(), String> {
    let tenant = TenantId::new(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    let paths: Vec<&std::path::Path> = args.catalog.iter().map(PathBuf::as_path).collect();
    let catalog = govern_plans::load_files(&paths).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("the catalog has problems:\n{}", lines.join("\n"))
    })?;
    let store = open_read_only(&args.data_dir)?;
    let mut receipts: Vec<Receipt> = Vec::new();
    store
        .for_each_record(|seq, record| -> Result<(), Message> {
            let key = Receipt::decode_key(record).map_err(|e| format!("receipt {seq}: {e}"))?;
            if key.tenant == tenant.as_str()
                && matches!(key.governor, GovernorKind::Subscription | GovernorKind::Quota)
            {
                receipts.push(Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?);
            }
            Ok(())
        })
        .map_err(|e| e.0)?;
    // Each subscription's plan and state as its receipts leave them.
    let mut subs: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
    for r in receipts.iter().filter(|r| r.body.governor == GovernorKind::Subscription) {
        let entry = subs.entry(r.body.resource.as_str().to_owned()).or_default();
        if let Some(plan) = r.body.args.get("plan") {
            entry.0 = Some(plan.clone());
        }
        entry.1 = r.body.state_to.to_string();
    }
    let plan_id = subs
        .values()
        .find(|(plan, state)| plan.is_some() && LIVE.contains(&state.as_str()))
        .and_then(|(plan, _)| plan.clone())
        .ok_or_else(|| format!("tenant {tenant} has no live subscription in this ledger"))?;
    let plan = catalog
        .plan(&plan_id)
        .ok_or_else(|| format!("plan `{plan_id}` is not in the catalog given"))?;
    let key = match &args.period {
        Some(p) => month_key(p)?,
        None => {
            let last = receipts.last().map_or(0, |r| r.body.timestamp.as_ms());
            let (y, m, _) = civil_from_days(last / govern_governors::DAY_MS);
            (y - 1970) * 12 + (m - 1)
        }
    };
    // The month's usage: the totals of the batches counted in that month's period.
    let mut usage: BTreeMap<String, u64> = BTreeMap::new();
    for r in receipts.iter().filter(|r| r.body.command == "record_usage") {
        let a = &r.body.args;
        let in_month = a.get("period").and_then(|p| p.parse::<u64>().ok()) == Some(key);
        let total = a.get("total").and_then(|t| t.parse::<u64>().ok());
        if let (true, Some(meter), Some(total)) = (in_month, a.get("meter"), total)
            && plan.pricing.keys().any(|m| m.as_str() == meter)
        {
            let sum = usage.entry(meter.clone()).or_default();
            *sum = sum.saturating_add(total);
        }
    }
    let period = govern_pricing::Period::of_month_key(key).map_err(|e| e.to_string())?;
    let invoice =
        govern_pricing::invoice(plan, &period, &usage, None).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::new(Stdout);
    if args.json {
        let json = serde_json::to_string(&invoice).map_err(|e| e.to_string())?;
        writeln!(out, "{json}").map_err(|e| write_error(&e))?;
    } else {
        let currency = invoice.currency.code();
        writeln!(
            out,
            "invoice for {tenant}, {} ({} days), plan {}",
            invoice.period, invoice.days, invoice.plan
        )
        .map_err(|e| write_error(&e))?;
        for line in &invoice.lines {
            writeln!(out, "  {:<72} {:>12} {currency}", line.description, line.amount)
                .map_err(|e| write_error(&e))?;
        }
        writeln!(out, "  {:<72} {:>12} {currency}", "total", invoice.total)
            .map_err(|e| write_error(&e))?;
    }
    out.flush().map_err(|e| write_error(&e))
}
