//! `govern simulate`: the deterministic simulator (`govern-sim`): one seed, or a range of
//! seeds (`--seeds N` from `--seed`), or seeds for as long as `--for` says; each run's
//! figures, and for a run that breaks an invariant, what broke and the command that replays
//! it exactly (exit 1).

// The time budget of `--for` is wall-clock time; the runs themselves are on virtual time.
#![allow(clippy::disallowed_methods, reason = "--for bounds the whole command by the wall clock")]

use std::time::{Duration, Instant};

use clap::Args;
use govern_sim::{SimConfig, SimReport, simulate};

/// Options of `govern simulate`.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// The (first) seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Steps per run.
    #[arg(long, default_value_t = 1_000)]
    steps: u64,
    /// Tenants per run.
    #[arg(long, default_value_t = 4)]
    tenants: usize,
    /// Check every invariant every this many steps (and after every fault, and at the end).
    #[arg(long, default_value_t = 100)]
    check_every: u64,
    /// No faults: commands, clock jumps, passivations and clean restarts only.
    #[arg(long)]
    no_faults: bool,
    /// Runs: seeds SEED, SEED+1, ...
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Go on with further seeds until this much time has passed (e.g. `10m`), however many
    /// --seeds says.
    #[arg(long, value_parser = humantime::parse_duration)]
    r#for: Option<Duration>,
    /// One JSON line per run instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `govern simulate`.
pub(crate) fn run(args: &SimulateArgs) -> Result<(), String> {
    let started = Instant::now();
    let mut totals = SimReport::default();
    let mut runs = 0u64;
    loop {
        let seed = args.seed.wrapping_add(runs);
        let more_by_count = runs < args.seeds;
        let more_by_time = args.r#for.is_some_and(|d| started.elapsed() < d);
        if !more_by_count && !more_by_time {
            break;
        }
        let config = SimConfig {
            seed,
            steps: args.steps,
            tenants: args.tenants,
            faults: !args.no_faults,
            check_every: args.check_every,
        };
        let report = simulate(&config).map_err(|e| e.to_string())?;
        runs += 1;
        if args.json {
            say!("{}", json(&config, &report));
        } else if args.seeds == 1 && args.r#for.is_none() {
            say!("{}", text(&config, &report));
        }
        totals.add(&report);
    }
    if !args.json && (args.seeds > 1 || args.r#for.is_some()) {
        say!(
            "{runs} seeds from {} ({} steps each): every invariant held, {:.1} s",
            args.seed,
            args.steps,
            started.elapsed().as_secs_f64()
        );
        say!("{}", summary(&totals));
    }
    Ok(())
}

fn summary(r: &SimReport) -> String {
    let faults: Vec<String> = r.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "  commands {} (accepted {}, rejected {}, refused {}; unknown outcomes recorded {}, not recorded {})\n  usage events counted {}, duplicates found {}, refused {}; checks decided as the rules say {}\n  onboarding sagas completed {}, compensated {} (resumed after a crash {}); runtime receipts adopted {}\n  clock jumps {} (timeouts fired {}), passivation sweeps {}, restarts {}, invariant checks {}\n  faults: {}\n  receipts {} (0 acknowledged lost)",
        r.commands,
        r.accepted,
        r.rejected,
        r.refused,
        r.unknown_recorded,
        r.unknown_lost,
        r.usage_counted,
        r.usage_duplicates,
        r.usage_refused,
        r.checks_decided,
        r.sagas_completed,
        r.sagas_compensated,
        r.sagas_resumed,
        r.adopted,
        r.clock_jumps,
        r.timeouts_fired,
        r.passivations,
        r.restarts,
        r.checks,
        if faults.is_empty() { "none".to_owned() } else { faults.join(", ") },
        r.receipts
    )
}

fn text(config: &SimConfig, r: &SimReport) -> String {
    format!(
        "seed {}: {} steps, every invariant held; head {}\n{}",
        config.seed,
        config.steps,
        r.head.short(),
        summary(r)
    )
}

fn json(config: &SimConfig, r: &SimReport) -> serde_json::Value {
    let mut v = serde_json::json!({
        "seed": config.seed,
        "steps": config.steps,
        "tenants": config.tenants,
        "faults_enabled": config.faults,
        "faults": r.faults,
        "head": r.head.to_string(),
    });
    for (name, n) in r.counts() {
        if name != "faults" {
            v[name] = serde_json::json!(n);
        }
    }
    v
}
