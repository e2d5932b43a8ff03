//! `govern bench idempotency`: what an idempotency key costs. 2 N subscriptions are started
//! (not measured), then C clients activate N of them unkeyed, the other N keyed (fresh keys),
//! then repeat every keyed command (each a replay of the first outcome, nothing written).
//! Exits 1 unless every replay answered its first outcome and wrote nothing.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::time::Instant;

use clap::Args;
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId};
use govern_runtime::{Accepted, Runtime, RuntimeHandle};

/// Options of `govern bench idempotency`.
#[derive(Debug, Args)]
pub(crate) struct IdempotencyArgs {
    /// Commands per phase.
    #[arg(long, default_value_t = 100_000)]
    commands: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// One phase's wall time and the outcomes, in command order.
struct Phase {
    secs: f64,
    outcomes: Vec<Accepted>,
}

/// Runs `govern bench idempotency`.
pub(crate) fn idempotency(args: &IdempotencyArgs) -> Result<(), String> {
    if args.commands == 0 || args.clients == 0 {
        return Err("--commands and --clients must be at least 1".into());
    }
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    let (unkeyed, keyed, replayed, written) = rt.block_on(drive(args))?;
    let n = args.commands as f64;
    let per = |p: &Phase| (p.secs * 1e9 * args.clients as f64 / n, n / p.secs);
    let (u_ns, u_s) = per(&unkeyed);
    let (k_ns, k_s) = per(&keyed);
    let (r_ns, r_s) = per(&replayed);
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "idempotency",
                "commands": args.commands,
                "clients": args.clients,
                "workers": workers,
                "cores": cores,
                "unkeyed_ns_per_command": u_ns.round(),
                "unkeyed_per_s": u_s.round(),
                "keyed_ns_per_command": k_ns.round(),
                "keyed_per_s": k_s.round(),
                "replay_ns_per_command": r_ns.round(),
                "replay_per_s": r_s.round(),
                "receipts_written_by_replays": written,
            })
        );
    } else {
        say!(
            "idempotency: {} commands per phase, {} clients, {workers} workers on {cores} cores, memory store",
            args.commands,
            args.clients
        );
        say!("  unkeyed          {u_ns:>10.0} ns per command ({u_s:>10.0} /s)");
        say!("  keyed, fresh     {k_ns:>10.0} ns per command ({k_s:>10.0} /s)");
        say!("  keyed, replayed  {r_ns:>10.0} ns per command ({r_s:>10.0} /s), nothing written");
    }
    Ok(())
}

/// What a phase sends to each subscription.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Start its trial (the setup).
    Trial,
    /// Activate it.
    Activate,
}

/// Runs one command on each of `commands` subscriptions over `clients`, keyed with `k-{i}`
/// when `keyed`.
async fn phase(
    h: &RuntimeHandle,
    tenant: &TenantId,
    args: &IdempotencyArgs,
    prefix: &'static str,
    keyed: bool,
    step: Step,
) -> Result<Phase, String> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (h, tenant) = (h.clone(), tenant.clone());
        let ids: Vec<usize> = (c..args.commands).step_by(args.clients).collect();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(ids.len());
            for i in ids {
                let resource =
                    ResourceId::new(&format!("{prefix}-{i}")).map_err(|e| e.to_string())?;
                let mut sub = h.subscription(&tenant, &resource);
                if keyed {
                    sub = sub.idempotent(&format!("k-{i}"));
                }
                let a = match step {
                    Step::Trial => sub.start_trial("pro", 14, "bench").await,
                    Step::Activate => sub.activate(None, "bench").await,
                }
                .map_err(|e| e.to_string())?;
                out.push((i, a));
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Vec::with_capacity(args.commands);
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by_key(|(i, _)| *i);
    Ok(Phase { secs, outcomes: all.into_iter().map(|(_, a)| a).collect() })
}

async fn drive(args: &IdempotencyArgs) -> Result<(Phase, Phase, Phase, u64), String> {
    let runtime = Runtime::builder().start().await.map_err(|e| e.to_string())?;
    let h = runtime.handle();
    let tenant = TenantId::new("bench").map_err(|e| e.to_string())?;
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    h.provision_tenant(&tenant, quota, "bench").await.map_err(|e| e.to_string())?;
    phase(&h, &tenant, args, "u", false, Step::Trial).await?;
    phase(&h, &tenant, args, "k", false, Step::Trial).await?;
    let unkeyed = phase(&h, &tenant, args, "u", false, Step::Activate).await?;
    let keyed = phase(&h, &tenant, args, "k", true, Step::Activate).await?;
    let before = h.head().next_seq;
    let replayed = phase(&h, &tenant, args, "k", true, Step::Activate).await?;
    let written = h.head().next_seq - before;
    if written != 0 || replayed.outcomes != keyed.outcomes {
        return Err(format!(
            "replays wrote {written} receipts or answered other than the first outcomes"
        ));
    }
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    Ok((unkeyed, keyed, replayed, written))
}
