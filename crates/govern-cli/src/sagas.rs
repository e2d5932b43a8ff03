//! `govern sagas LEDGER [--tenant T]`: every saga run in a ledger, one line each (tenant,
//! run, saga, state, steps done, what failed, why it is stuck), or JSON Lines. Each run is the
//! replay of its saga governor's receipts. Reads the ledger (a data directory or
//! a PostgreSQL database) read-only; on a database of several shards, the tenant's shard, or
//! every shard in order, each block of lines headed by its shard (in JSON, a `shard` field).

use std::collections::BTreeMap;
use std::io::Write as _;

use clap::Args;
use govern_governors::saga::Saga;
use govern_governors::{Governor, GovernorKind, StateSpec, TenantId};
use govern_receipt::Receipt;

use crate::ledger_dir::{Chain, Message, for_each_record};
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

/// Runs `govern sagas`: the tenant's shard with --tenant, else every shard in order, each
/// read and printed before the next (runs never span shards: a run's receipts are its
/// tenant's).
pub(crate) fn run(args: &SagasArgs) -> Result<(), String> {
    let tenant = crate::ledger_dir::tenant_option(args.tenant.as_deref())?;
    let chains: Vec<Chain> = match &tenant {
        Some(t) => vec![args.ledger.tenant_chain(t)?],
        None => args.ledger.chains()?.collect(),
    };
    let mut out = std::io::BufWriter::new(Stdout);
    if !args.json {
        writeln!(
            out,
            "{:<16} {:<16} {:<14} {:<13} {:>5}  NOTE",
            "TENANT", "RUN", "SAGA", "STATE", "DONE"
        )
        .map_err(|e| write_error(&e))?;
    }
    let mut total = 0usize;
    for &chain in &chains {
        let runs = runs_of(args, chain, tenant.as_ref())?;
        if chain.is_sharded() && !args.json {
            writeln!(out, "{chain}:").map_err(|e| write_error(&e))?;
        }
        total += runs.len();
        for ((tenant, run), receipts) in &runs {
            let line = show(args, chain, tenant, run, receipts)?;
            writeln!(out, "{line}").map_err(|e| write_error(&e))?;
        }
    }
    if !args.json {
        let shards = match chains.as_slice() {
            [one] if one.is_sharded() => format!(" in {one}"),
            [first, ..] if first.is_sharded() => format!(" in {} shards", chains.len()),
            _ => String::new(),
        };
        writeln!(out, "{total} saga run(s){shards}").map_err(|e| write_error(&e))?;
    }
    out.flush().map_err(|e| write_error(&e))
}

/// The saga runs in one chain (only `tenant`'s, if given), each with its receipts, by
/// (tenant, run).
fn runs_of(args: &SagasArgs, chain: Chain, tenant: Option<&TenantId>) -> Result<Runs, String> {
    let store = args.ledger.open_read_only(chain)?;
    let mut runs = Runs::new();
    for_each_record(store.as_ref(), |seq, record| -> Result<(), Message> {
        let key = Receipt::decode_key(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        if key.governor != GovernorKind::Saga || tenant.is_some_and(|t| t.as_str() != key.tenant) {
            return Ok(());
        }
        let r = Receipt::decode(record).map_err(|e| format!("receipt {seq}: {e}"))?;
        runs.entry((key.tenant.to_owned(), key.resource.to_owned())).or_default().push(r);
        Ok(())
    })
    .map_err(|e| chain.named(e.0))?;
    Ok(runs)
}

/// Saga runs by (tenant, run id), each with its receipts in order.
type Runs = BTreeMap<(String, String), Vec<Receipt>>;

/// One run's line: a table row, or a JSON object (with its `shard` on a database of
/// several).
fn show(
    args: &SagasArgs,
    chain: Chain,
    tenant: &str,
    run: &str,
    receipts: &[Receipt],
) -> Result<String, String> {
    let saga: Saga = govern_receipt::replay(receipts)
        .map_err(|e| chain.named(format!("{tenant}/{run}: {e}")))?;
    let state = saga.state().name();
    let stuck = saga.state() == govern_governors::saga::State::Stuck;
    let note = match (saga.stuck(), saga.failed()) {
        (Some(why), _) if stuck => format!("stuck: {why}"),
        (Some(why), _) => format!("resolved by an operator; was stuck: {why}"),
        (None, Some((step, why))) => format!("step {step} failed: {why}"),
        (None, None) => String::new(),
    };
    if !args.json {
        return Ok(format!(
            "{tenant:<16} {run:<16} {:<14} {state:<13} {:>2}/{:<2}  {note}",
            saga.saga().unwrap_or("-"),
            saga.done(),
            saga.steps()
        ));
    }
    let mut json = serde_json::json!({
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
    });
    if chain.is_sharded() {
        json["shard"] = chain.shard.into();
    }
    Ok(json.to_string())
}
