//! `govern invoices LEDGER --tenant T --catalog FILE... [--period YYYY-MM] [--json]`: what a
//! tenant owes for one calendar month, from the ledger alone: the plan of its live
//! subscription (the first by id) as its receipts leave it, the month's metered usage (the
//! totals of its `record_usage` batches of that month), priced by the catalog
//! (`govern_pricing::invoice`, docs/pricing.md), computed as the billing run computes it
//! (`govern_runtime::invoice_of`). A month the billing run closed is shown as receipted
//! (`record_invoice`, status `closed`); otherwise a preview. Reads the ledger read-only; on
//! a database of several shards, only the tenant's shard.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use govern_governors::{GovernorKind, TenantId, civil_from_days};
use govern_receipt::Receipt;
use govern_runtime::{BillingPeriod, InvoiceView, invoice_of, recorded_invoice};

use crate::ledger_dir::{Message, for_each_record};
use crate::out::{Stdout, write_error};

/// Options of `govern invoices`.
#[derive(Debug, Args)]
pub(crate) struct InvoicesArgs {
    /// The ledger: its data directory (it holds `segments/`), or a PostgreSQL database
    /// (`postgres://USER@HOST/DB`, or libpq's `host=... dbname=...`), opened read-only.
    #[arg(value_name = "LEDGER", value_parser = crate::ledger_dir::LedgerArg::parse)]
    ledger: crate::ledger_dir::LedgerArg,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The plan catalog files the runtime ran with, taken together: needed for a preview (a
    /// month the billing run has not closed); a closed month's invoice is in the ledger.
    #[arg(long, num_args = 1..)]
    catalog: Vec<PathBuf>,
    /// The month, `YYYY-MM` (default: the month of the tenant's last receipt).
    #[arg(long)]
    period: Option<String>,
    /// Output: `text` (a readable invoice) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// The same as `--format json`.
    #[arg(long)]
    json: bool,
}

/// Runs `govern invoices`.
pub(crate) fn run(args: &InvoicesArgs) -> Result<(), String> {
    let tenant = TenantId::new(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    // Only the tenant's shard: its receipts are written there, and nowhere else.
    let chain = args.ledger.tenant_chain(&tenant)?;
    let store = args.ledger.open_read_only(chain)?;
    let mut receipts: Vec<Receipt> = Vec::new();
    for_each_record(store.as_ref(), |seq, record| -> Result<(), Message> {
        let key = Receipt::decode_key(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        if key.tenant == tenant.as_str()
            && matches!(
                key.governor,
                GovernorKind::Subscription | GovernorKind::Quota | GovernorKind::Audit
            )
        {
            receipts.push(Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?);
        }
        Ok(())
    })
    .map_err(|e| chain.named(e.0))?;
    let label = match &args.period {
        Some(p) => p.clone(),
        None => {
            let last = receipts.last().map_or(0, |r| r.body.timestamp.as_ms());
            let (y, m, _) = civil_from_days(last / govern_governors::DAY_MS);
            format!("{y:04}-{m:02}")
        }
    };
    let period = BillingPeriod::month(&label).map_err(|e| format!("--period: {e}"))?;
    let view = match recorded_invoice(&receipts, &tenant, &period).map_err(|e| e.0)? {
        Some(closed) => InvoiceView::Closed(closed),
        None => {
            if args.catalog.is_empty() {
                return Err(format!(
                    "{} is not closed for {tenant}: a preview needs the catalog (--catalog FILE...)",
                    period.label
                ));
            }
            let catalog = crate::plans::load_catalog(&args.catalog)?;
            InvoiceView::Preview(invoice_of(&receipts, &catalog, &period).map_err(|e| e.0)?)
        }
    };
    let shown = view.doc(&tenant);
    let mut out = std::io::BufWriter::new(Stdout);
    if args.json || args.format == "json" {
        let json = serde_json::to_string(&shown).map_err(|e| e.to_string())?;
        writeln!(out, "{json}").map_err(|e| write_error(&e))?;
    } else {
        let status = match shown.receipt {
            Some(seq) => format!("closed, receipt {seq}"),
            None => "preview: not closed by a billing run".to_owned(),
        };
        writeln!(
            out,
            "invoice for {tenant}, {} ({} days), plan {} ({status})",
            shown.period, period.days, shown.plan
        )
        .map_err(|e| write_error(&e))?;
        for line in &shown.lines {
            writeln!(out, "  {:<72} {:>12} {}", line.description, line.amount, shown.currency)
                .map_err(|e| write_error(&e))?;
        }
        writeln!(out, "  {:<72} {:>12} {}", "total", shown.total, shown.currency)
            .map_err(|e| write_error(&e))?;
    }
    out.flush().map_err(|e| write_error(&e))
}
