//! `govern upgrade simulate|apply --data-dir D --tenant T --to PLAN --catalog FILE...
//! [--subscription S] [--capacity RPS,P99_MS,CONNECTIONS,QUEUE] [--json]`: a plan change of a
//! tenant's subscription, judged by the catalog's path, cooldown and seed 002's five gates
//! (`docs/plans.md`, "Plan changes"). Starts a runtime on the data directory (as `govern
//! serve` and `govern bench start` do), asks it (`RuntimeHandle::simulate_plan_change` or
//! `apply_plan_change`), prints each gate's verdict, and shuts it down. `apply` writes the
//! receipted `change_plan` when nothing refuses; otherwise it exits 1 with every reason and,
//! when only the cooldown refuses, the time to try again.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_plans::{Envelope, Simulation};
use govern_runtime::{PlanChangeError, Runtime, simulation_json};

/// `govern upgrade`'s two actions.
#[derive(Debug, Subcommand)]
pub(crate) enum UpgradeCommand {
    /// A dry run: the path, the cooldown and every gate's verdict; changes nothing. Exits 0
    /// whether or not the change would be allowed (the output says which).
    Simulate(UpgradeArgs),
    /// The dry run, then the receipted `change_plan` when nothing refuses; exits 1 with
    /// every reason otherwise.
    Apply(UpgradeArgs),
}

/// Options of `govern upgrade simulate|apply`.
#[derive(Debug, Args)]
pub(crate) struct UpgradeArgs {
    /// The runtime's data directory (it holds `segments/`).
    #[arg(long)]
    data_dir: PathBuf,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The plan to move to.
    #[arg(long)]
    to: String,
    /// The plan catalog files the runtime runs with, taken together.
    #[arg(long, num_args = 1.., required = true)]
    catalog: Vec<PathBuf>,
    /// The subscription (resource id); default: the tenant's only one.
    #[arg(long)]
    subscription: Option<String>,
    /// The capacity this host states it can give the tenant, for the gate
    /// infrastructure_headroom: throughput (rps), p99 latency (ms), connections, queue depth.
    /// Default: none stated (the gate is skipped).
    #[arg(long, value_name = "RPS,P99_MS,CONNECTIONS,QUEUE", value_parser = parse_capacity)]
    capacity: Option<Envelope>,
    /// The reason recorded on the receipt (apply).
    #[arg(long, default_value = "plan change")]
    reason: String,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_capacity(s: &str) -> Result<Envelope, String> {
    let n: Vec<u64> = s
        .split(',')
        .map(|p| p.trim().parse::<u64>().map_err(|e| format!("`{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    match n[..] {
        [throughput_rps, p99_latency_ms, connections, queue_depth] => {
            // Capacity has no error promise: the catalog's default stands in.
            let error_rate_max = govern_plans::ERROR_RATE_MAX_DEFAULT;
            Ok(Envelope {
                throughput_rps,
                p99_latency_ms,
                connections,
                queue_depth,
                error_rate_max,
            })
        }
        _ => Err("four numbers: RPS,P99_MS,CONNECTIONS,QUEUE".into()),
    }
}

/// Runs `govern upgrade`: 0 when the simulation ran or the change was applied; 1 when apply
/// is refused or anything fails.
pub(crate) fn run(command: &UpgradeCommand) -> ExitCode {
    let (args, apply) = match command {
        UpgradeCommand::Simulate(a) => (a, false),
        UpgradeCommand::Apply(a) => (a, true),
    };
    match drive(args, apply) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tell!("govern: {e}");
            ExitCode::FAILURE
        }
    }
}

fn drive(args: &UpgradeArgs, apply: bool) -> Result<(), String> {
    let tenant = TenantId::new(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    let subscription = match &args.subscription {
        Some(s) => Some(ResourceId::new(s).map_err(|e| format!("--subscription: {e}"))?),
        None => None,
    };
    // A runtime would create a ledger where there is none: act only on an existing one.
    if !args.data_dir.join(govern_ledger::segment::SEGMENTS_DIR).is_dir() {
        return Err(format!("{}: no ledger here (no segments/)", args.data_dir.display()));
    }
    let catalog = crate::plans::load_catalog(&args.catalog)?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let mut builder = Runtime::builder().data_dir(&args.data_dir).catalog(catalog);
    if let Some(capacity) = args.capacity {
        builder = builder.host_capacity(capacity);
    }
    let runtime = tokio.block_on(builder.start()).map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let outcome = tokio.block_on(async {
        let sub = match subscription {
            Some(s) => s,
            None => h.sole_subscription(&tenant)?,
        };
        if apply {
            h.apply_plan_change(&tenant, &sub, &args.to, &args.reason).await.map(|a| {
                let seq = a.accepted.seq;
                (a.simulation, Some(seq))
            })
        } else {
            h.simulate_plan_change(&tenant, &sub, &args.to).await.map(|s| (s, None))
        }
    });
    let shutdown = tokio.block_on(runtime.shutdown()).map_err(|e| e.to_string());
    let printed = match &outcome {
        Ok((simulation, seq)) => print(args, simulation, *seq),
        Err(PlanChangeError::Refused { simulation, .. }) => print(args, simulation, None),
        Err(_) => Ok(()),
    };
    shutdown?;
    printed?;
    match outcome {
        Ok(_) => Ok(()),
        Err(e) => Err(refused_message(&e)),
    }
}

/// The error line: every reason and, when only the cooldown refuses, when to try again (as
/// `govern serve` answers `Retry-After`).
fn refused_message(e: &PlanChangeError) -> String {
    match e {
        PlanChangeError::Refused { refusal, simulation, .. } => {
            let until = simulation.cooldown.as_ref().and_then(|c| c.until_ms);
            match (refusal.retry_after_secs(), until) {
                (Some(secs), Some(until)) => {
                    format!("{e}; retry after {} (in {secs} s)", Timestamp(until))
                }
                _ => format!("{e} (decided by {})", refusal.decided_by),
            }
        }
        e => e.to_string(),
    }
}

fn print(args: &UpgradeArgs, s: &Simulation, applied_seq: Option<u64>) -> Result<(), String> {
    if args.json {
        let mut v = simulation_json(s);
        v["applied_seq"] = applied_seq.into();
        say!("{v}");
        return Ok(());
    }
    let kind = s.kind().map_or("none", govern_plans::ChangeKind::name);
    say!("{} -> {} ({kind}): {}", s.from, s.to, if s.allowed() { "allowed" } else { "refused" });
    if let Err(e) = &s.path {
        say!("path: {e}");
    }
    if let Some(c) = &s.cooldown {
        match c.until_ms {
            Some(until) => {
                say!("cooldown: {} ms, in force until {}", c.cooldown_ms, Timestamp(until));
            }
            None => say!("cooldown: {} ms, passed", c.cooldown_ms),
        }
    }
    if !s.gates.is_empty() {
        say!("{:<24} {:<7} REASON", "GATE", "VERDICT");
    }
    for g in &s.gates {
        say!("{:<24} {:<7} {}", g.gate.name(), g.verdict.name(), g.reason);
    }
    if let Some(seq) = applied_seq {
        say!("applied: change_plan receipt {seq}");
    }
    Ok(())
}
