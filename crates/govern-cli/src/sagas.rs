//! `govern sagas LEDGER [--tenant T]`: every saga run in a ledger, one line each (tenant,
//! run, saga, state, steps done, what failed, why it is stuck), or JSON Lines. Each run is the
//! replay of its saga governor's receipts. Reads the ledger (a data directory or
//! a PostgreSQL database) read-only.

use std::collections::BTreeMap;
use std::io::Write as _;

use clap::Args;
use govern_governors::saga::Saga;
use govern_governors::{Governor, GovernorKind, StateSpec, TenantId};
use govern_receipt::Receipt;

use crate::ledger_dir::{Message, for_each_record};
use crate::out::{Stdout, write_error};

/// Options of `govern sagas`.
#[derive(Debug, Args)]
pub(crate) struct SagasArgs {
    /// The ledger: its data directory (it holds `segments/`), or a PostgreSQL database
    /// (`postgres://USER@HOST/DB`, or libpq's `host=... dbname=...`), opened read-only.
    #[arg(value_name = "LEDGER", value_parser = crate::ledger_dir::LedgerArg::parse)]
    ledger: crate::ledger_dir::LedgerArg,
    /// Only this tenant's runs.
    #[arg(long)]
    tenant: Option<String>,
    /// One JSON object per run (JSON Lines) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `govern sagas`.
pub(crate) fn run(args: &SagasArgs) -> Result<(), String> {
    let tenant = args
        .tenant
        .as_deref()
        .map(TenantId::new)
        .transpose()
        .map_err(|e| format!("--tenant: {e}"))?;
    let store = args.ledger.open_read_only()?;
    let mut runs: BTreeMap<(String, String), Vec<Receipt>> = BTreeMap::new();
    for_each_record(store.as_ref(), |seq, record| -> Result<(), Message> {
        let key = Receipt::decode_key(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        if key.governor != GovernorKind::Saga
            || tenant.as_ref().is_some_and(|t| t.as_str() != key.tenant)
        {
            return Ok(());
        }
        let r = Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        runs.entry((key.tenant.to_owned(), key.resource.to_owned())).or_default().push(r);
        Ok(())
    })
    .map_err(|e| e.0)?;
    let mut out = std::io::BufWriter::new(Stdout);
    if !args.json {
        writeln!(
            out,
            "{:<16} {:<16} {:<14} {:<13} {:>5}  NOTE",
            "TENANT", "RUN", "SAGA", "STATE", "DONE"
        )
        .map_err(|e| write_error(&e))?;
    }
    for ((tenant, run), receipts) in &runs {
        let saga: Saga =
            govern_receipt::replay(receipts).map_err(|e| format!("{tenant}/{run}: {e}"))?;
        let state = saga.state().name();
        let stuck = saga.state() == govern_governors::saga::State::Stuck;
        let note = match (saga.stuck(), saga.failed()) {
            (Some(why), _) if stuck => format!("stuck: {why}"),
            (Some(why), _) => format!("resolved by an operator; was stuck: {why}"),
            (None, Some((step, why))) => format!("step {step} failed: {why}"),
            (None, None) => String::new(),
        };
        let line = if args.json {
            serde_json::json!({
                "tenant": tenant,
                "run": run,
                "saga": saga.saga(),
                "state": state,
                "steps": saga.steps(),
                "done": saga.done(),
                "to_undo": saga.to_undo(),
                "failed_step": saga.failed().map(|(s, _)| s),
                "failure": saga.failed().map(|(_, w)| w),
                "stuck": saga.stuck(),
                "records": receipts.len(),
            })
            .to_string()
        } else {
            format!(
                "{tenant:<16} {run:<16} {:<14} {state:<13} {:>2}/{:<2}  {note}",
                saga.saga().unwrap_or("-"),
                saga.done(),
                saga.steps()
            )
        };
        writeln!(out, "{line}").map_err(|e| write_error(&e))?;
    }
    if !args.json {
        writeln!(out, "{} saga run(s)", runs.len()).map_err(|e| write_error(&e))?;
    }
    out.flush().map_err(|e| write_error(&e))
}
