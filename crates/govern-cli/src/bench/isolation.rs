//! `govern bench blast` and `govern bench replay` (issue 10): how far one tenant's trouble
//! reaches. Other tenants' clients run request/reply commands, once quietly and once while one
//! tenant's governors panic thousands of times (blast) or one governor replays a long history
//! (replay); both runs report the others' throughput, p50 and p99.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use govern_governors::quota::{Command as QuotaCommand, Quota, Resource};
use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_runtime::{CommandError, CrashPoint, GovernorHandle, Outcome, Runtime, RuntimeHandle};
use serde_json::{Value, json};

use super::{id, peak_rss_kib};

/// Options of `govern bench blast`.
#[derive(Debug, Args)]
pub(crate) struct BlastArgs {
    /// Tenants: the first is the noisy one, the others' governors take the measured load.
    #[arg(long, default_value_t = 16)]
    tenants: usize,
    /// Resident quota governors per other tenant.
    #[arg(long, default_value_t = 4)]
    governors_per_tenant: usize,
    /// Concurrent request/reply clients of the other tenants.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Commands the other tenants' clients run in each of the two runs (quiet, noisy). The
    /// panics are paced to spread over the noisy run; a crash costs a restart and a replay,
    /// so on 2 cores 10 000 of them take about 10–25 s, which 3 M commands cover.
    #[arg(long, default_value_t = 3_000_000)]
    commands: u64,
    /// Panics injected into the noisy tenant's governors during the noisy run.
    #[arg(long, default_value_t = 10_000)]
    panics: u64,
    /// The noisy tenant's governors the panics are spread over (one at a time, each until
    /// it is quarantined).
    #[arg(long, default_value_t = 10)]
    noisy_governors: usize,
    /// Crashes of one governor restarted per 10 s before the next quarantines it. The
    /// runtime's default is 3, but quarantines grow 1 s, 2 s, 4 s ... and never shrink, so
    /// 10 000 panics on a few governors need a higher limit; most panics then cost a restart
    /// and a replay, the expensive path for the neighbours.
    #[arg(long, default_value_t = 999)]
    governor_restarts: u32,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Run on the durable store in this data directory (which must hold no ledger yet);
    /// default: the in-memory store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `govern bench replay`.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// Receipts of the governor that is passivated and brought back (its replay's length).
    #[arg(long, default_value_t = 1_000_000)]
    receipts: u64,
    /// Concurrent senders that build its history (at most the inbox bound, 1 024).
    #[arg(long, default_value_t = 256)]
    build_clients: usize,
    /// Tenants: the first owns the replaying governor, the others' take the measured load.
    #[arg(long, default_value_t = 16)]
    tenants: usize,
    /// Resident quota governors per other tenant.
    #[arg(long, default_value_t = 4)]
    governors_per_tenant: usize,
    /// Concurrent request/reply clients of the other tenants.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Commands the other tenants' clients run in each of the two runs (quiet, replaying).
    #[arg(long, default_value_t = 1_000_000)]
    commands: u64,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Run on the durable store in this data directory (which must hold no ledger yet);
    /// default: the in-memory store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// Panics injected by `inject_crash` so far (counted by the quiet hook).
static INJECTED_PANICS: AtomicU64 = AtomicU64::new(0);

/// Injected panics are the benchmark's doing: count them instead of printing each (10 000
/// messages and, with `RUST_BACKTRACE`, backtraces); every other panic goes to the default
/// hook.
fn count_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if govern_runtime::is_injected_crash(info.payload()) {
                INJECTED_PANICS.fetch_add(1, Ordering::Relaxed);
            } else {
                default(info);
            }
        }));
    });
}

/// A runtime on the in-memory store, or the durable one in `data_dir` (which must be empty).
async fn start(data_dir: Option<&Path>, governor_restarts: Option<u32>) -> Result<Runtime, String> {
    let mut builder = Runtime::builder()
        .epoch(Timestamp(1_767_225_600_000))
        .idle_after(Duration::from_secs(24 * 3600))
        .reply_timeout(Duration::from_secs(60));
    if let Some(max) = governor_restarts {
        builder = builder.governor_restarts(max, Duration::from_secs(10));
    }
    super::start_fresh(builder, data_dir).await
}

/// Provisions `n` tenants, `tenant-0000` first.
async fn tenants(h: &RuntimeHandle, n: usize) -> Result<Vec<TenantId>, String> {
    let tenants: Vec<TenantId> =
        (0..n).map(|t| id(&format!("tenant-{t:04}"))).collect::<Result<_, _>>()?;
    for t in &tenants {
        h.provision_tenant(t, super::BENCH_QUOTA, "benchmark").await.map_err(|e| e.to_string())?;
    }
    Ok(tenants)
}

/// The other tenants' governors: `per` quota governors of each tenant after the first.
fn others(
    h: &RuntimeHandle,
    tenants: &[TenantId],
    per: usize,
) -> Result<Vec<GovernorHandle<Quota>>, String> {
    let mut out = Vec::new();
    for t in tenants.iter().skip(1) {
        for g in 0..per {
            let r: ResourceId = id(&format!("quota-{g:02}"))?;
            out.push(h.governor::<Quota>(t, &r));
        }
    }
    Ok(out)
}

/// A usage check low enough to keep a quota `normal` (a receipted self-transition).
fn check(i: u64) -> QuotaCommand {
    QuotaCommand::CheckQuota { resource: Resource::ApiCalls, usage: i % 100, limit: 1_000 }
}

fn code(outcome: &Outcome) -> &'static str {
    match outcome {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    }
}

fn retry_after_ms(e: &CommandError) -> Option<u64> {
    match e {
        CommandError::Refused(r) => r.retry_after_ms(),
        _ => None,
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// One run of the other tenants' clients.
struct Load {
    latencies_ns: Vec<u64>,
    outcomes: BTreeMap<&'static str, u64>,
    started: Instant,
    ended: Instant,
}

impl Load {
    fn accepted_all(&self) -> bool {
        self.outcomes.keys().all(|c| *c == "accepted")
    }

    fn summary(&mut self) -> Value {
        self.latencies_ns.sort_unstable();
        let n = self.latencies_ns.len();
        let pct = |p: f64| {
            if n == 0 {
                return 0.0;
            }
            let ns = self.latencies_ns[((n as f64 - 1.0) * p) as usize];
            (ns as f64 / 100.0).round() / 10.0
        };
        let secs = (self.ended - self.started).as_secs_f64();
        json!({
            "commands": n,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "per_s": (n as f64 / secs.max(1e-9)).round() as u64,
            "p50_us": pct(0.50),
            "p99_us": pct(0.99),
            "p999_us": pct(0.999),
            "max_us": pct(1.0),
            "p50_time_us": Self::by_time(&self.latencies_ns, 0.50),
            "p99_time_us": Self::by_time(&self.latencies_ns, 0.99),
            "outcomes": self.outcomes,
        })
    }

    /// The `p` quantile of the call a client has in flight at a random moment: each call
    /// weighted by its duration (`sorted` ascending). A closed-loop client sends nothing
    /// while it waits, so a stall of a second delays one call per client and hides below
    /// p99 ("coordinated omission"); weighted by time, it counts for the share of the run it
    /// lasted, as it would for callers arriving on their own schedule.
    fn by_time(sorted: &[u64], p: f64) -> f64 {
        let total: u128 = sorted.iter().map(|&ns| u128::from(ns)).sum();
        let target = (total as f64 * p) as u128;
        let mut sum = 0u128;
        for &ns in sorted {
            sum += u128::from(ns);
            if sum >= target {
                return (ns as f64 / 100.0).round() / 10.0;
            }
        }
        0.0
    }
}

/// `commands` quota checks by `clients` request/reply clients over `targets` (each client
/// walks them all from its own offset); `done` counts the answered ones as they come.
async fn load(
    targets: &Arc<[GovernorHandle<Quota>]>,
    clients: usize,
    commands: u64,
    done: &Arc<AtomicU64>,
) -> Result<Load, String> {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    let per = commands / clients as u64;
    for c in 0..clients {
        let n = per + u64::from((c as u64) < commands % clients as u64);
        let (targets, done) = (Arc::clone(targets), Arc::clone(done));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            let mut outcomes = BTreeMap::new();
            let offset = c * targets.len() / clients;
            for i in 0..n {
                let g = &targets[(offset + i as usize) % targets.len()];
                let t0 = Instant::now();
                let outcome = g.send(check(i), "benchmark").await;
                latencies.push(nanos(t0.elapsed()));
                *outcomes.entry(code(&outcome)).or_insert(0u64) += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            (latencies, outcomes)
        }));
    }
    let mut all = Load {
        latencies_ns: Vec::with_capacity(usize::try_from(commands).unwrap_or(0)),
        outcomes: BTreeMap::new(),
        started,
        ended: started,
    };
    for t in tasks {
        let (latencies, outcomes) = t.await.map_err(|e| e.to_string())?;
        all.latencies_ns.extend(latencies);
        for (code, n) in outcomes {
            *all.outcomes.entry(code).or_insert(0) += n;
        }
    }
    all.ended = Instant::now();
    Ok(all)
}

/// One run's figures as a line of text.
fn run_line(name: &str, run: &Value) -> String {
    format!(
        "  {name:<6} {:>9} commands {:>8}/s  p50 {:>7} µs  p99 {:>8} µs  p99.9 {:>9} µs  max {:>9} µs  by time: p50 {} µs, p99 {} µs  {}",
        run["commands"],
        run["per_s"],
        run["p50_us"],
        run["p99_us"],
        run["p999_us"],
        run["max_us"],
        run["p50_time_us"],
        run["p99_time_us"],
        run["outcomes"]
    )
}

/// The ratio of the noisy run's figure to the quiet run's, to two decimals.
fn ratio(noisy: &Value, quiet: &Value, key: &str) -> f64 {
    let (n, q) = (noisy[key].as_f64().unwrap_or(0.0), quiet[key].as_f64().unwrap_or(0.0));
    if q > 0.0 { (n / q * 100.0).round() / 100.0 } else { 0.0 }
}

fn store_name(data_dir: Option<&PathBuf>) -> &'static str {
    if data_dir.is_some() { "durable" } else { "memory" }
}

/// What the end of a run checks: the runtime is up, the chain verifies.
struct End {
    runtime_up: bool,
    chain: Result<u64, String>,
}

async fn end(runtime: Runtime) -> Result<End, String> {
    let h = runtime.handle();
    let runtime_up = !h.is_down();
    let chain = h.verify().map(|head| head.next_seq).map_err(|e| e.to_string());
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    Ok(End { runtime_up, chain })
}

/// The failures a run ends with (exit 1 when there is any).
fn failures(quiet: &Load, noisy: &Load, end: &End) -> Vec<String> {
    let mut out = Vec::new();
    for (name, run) in [("quiet", quiet), ("noisy", noisy)] {
        if !run.accepted_all() {
            out.push(format!(
                "other tenants' commands not all accepted ({name}): {:?}",
                run.outcomes
            ));
        }
    }
    if !end.runtime_up {
        out.push("the runtime is down".into());
    }
    if let Err(e) = &end.chain {
        out.push(format!("the chain does not verify: {e}"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// blast

/// What the noisy tenant's driver did.
#[derive(Default)]
struct Noise {
    /// Accepted `inject_crash` calls by crash point (a `Now` crash queued just before its
    /// governor's quarantine is dropped with its inbox: accepted, never a panic).
    injected: BTreeMap<&'static str, u64>,
    /// Refused `inject_crash` calls by code.
    inject_refused: BTreeMap<&'static str, u64>,
    /// Outcomes of the commands interleaved with the crashes, by code.
    commands: BTreeMap<&'static str, u64>,
    /// Waits for a quarantine to end with every noisy governor quarantined.
    stalls: u64,
    seconds: f64,
}

/// Injects `total` panics (counted by the hook from `base`) into `governors`, one governor at
/// a time until it is quarantined (then the next whose quarantine is over), each crash
/// followed by a command to it, `CrashPoint::Now` and `AfterNextAppend` in turn. Paced by the
/// other tenants' progress (`done` of `window` commands), so that the panics spread over their
/// whole run; once they are finished, as fast as it can.
async fn noise(
    governors: Vec<GovernorHandle<Quota>>,
    total: u64,
    base: u64,
    done: Arc<AtomicU64>,
    window: u64,
    finished: Arc<AtomicBool>,
) -> Noise {
    let started = Instant::now();
    let mut noise = Noise::default();
    let mut until = vec![started; governors.len()];
    let mut current = 0;
    let mut turn = 0u64;
    loop {
        // Each round's panic has happened by the time its command is answered.
        let injected = INJECTED_PANICS.load(Ordering::Relaxed) - base;
        if injected >= total {
            break;
        }
        let allowed = if finished.load(Ordering::Acquire) {
            total
        } else {
            let done = u128::from(done.load(Ordering::Relaxed));
            u64::try_from(done * u128::from(total) / u128::from(window.max(1))).unwrap_or(total) + 1
        };
        if injected >= allowed {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let now = Instant::now();
        if until[current] > now {
            match (0..governors.len())
                .map(|k| (current + k) % governors.len())
                .find(|&g| until[g] <= now)
            {
                Some(g) => current = g,
                None => {
                    noise.stalls += 1;
                    let soonest = until.iter().min().copied().unwrap_or(now);
                    tokio::time::sleep(soonest.saturating_duration_since(now)).await;
                    continue;
                }
            }
        }
        let g = &governors[current];
        let (point, name) = if turn.is_multiple_of(2) {
            (CrashPoint::Now, "now")
        } else {
            (CrashPoint::AfterNextAppend, "after_next_append")
        };
        match g.inject_crash(point).await {
            Ok(()) => {
                turn += 1;
                *noise.injected.entry(name).or_insert(0) += 1;
            }
            Err(refusal) => {
                *noise.inject_refused.entry(refusal.code()).or_insert(0) += 1;
                let wait = refusal.retry_after_ms().unwrap_or(1);
                until[current] = Instant::now() + Duration::from_millis(wait);
                continue;
            }
        }
        // A `Now` crash is ahead of this command in the inbox; an `AfterNextAppend` one
        // happens on it, just after its receipt is sent, so its answer (from the receipt
        // actor, on another thread) may come first: wait for the panic to be counted before
        // deciding whether another is needed (not for long: a `Now` crash queued just before
        // a quarantine is dropped with the inbox, and never panics).
        let outcome = g.send(check(turn), "noise").await;
        *noise.commands.entry(code(&outcome)).or_insert(0) += 1;
        if let Err(e) = &outcome
            && let Some(wait) = retry_after_ms(e)
        {
            until[current] = Instant::now() + Duration::from_millis(wait);
        }
        let waited = Instant::now();
        while INJECTED_PANICS.load(Ordering::Relaxed) - base == injected
            && waited.elapsed() < Duration::from_millis(100)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    noise.seconds = started.elapsed().as_secs_f64();
    noise
}

/// `govern bench blast`.
pub(crate) fn blast(args: &BlastArgs) -> Result<(), String> {
    if args.tenants < 2 || args.governors_per_tenant == 0 || args.clients == 0 {
        return Err("--tenants must be at least 2, --governors-per-tenant and --clients 1".into());
    }
    if args.noisy_governors == 0 || args.commands == 0 {
        return Err("--noisy-governors and --commands must be at least 1".into());
    }
    count_injected_panics();
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    let report = rt.block_on(drive_blast(args))?;
    let peak_rss_mib = peak_rss_kib().map_or(0.0, |k| (k as f64 / 102.4).round() / 10.0);
    let BlastReport { mut quiet, mut noisy, noise, panics, panics_in_window, quarantines, end } =
        report;
    let failed = {
        let mut f = failures(&quiet, &noisy, &end);
        if panics < args.panics {
            f.push(format!("{panics} panics injected, not {}", args.panics));
        }
        f
    };
    let (q, n) = (quiet.summary(), noisy.summary());
    let doc = json!({
        "bench": "blast",
        "store": store_name(args.data_dir.as_ref()),
        "tenants": args.tenants,
        "governors_per_tenant": args.governors_per_tenant,
        "clients": args.clients,
        "workers": workers,
        "cores": cores,
        "governor_restarts": args.governor_restarts,
        "quiet": q,
        "noisy": n,
        "p50_ratio": ratio(&n, &q, "p50_us"),
        "p99_ratio": ratio(&n, &q, "p99_us"),
        "p99_time_ratio": ratio(&n, &q, "p99_time_us"),
        "per_s_ratio": ratio(&n, &q, "per_s"),
        "noise": {
            "noisy_governors": args.noisy_governors,
            "panics": panics,
            "panics_in_window": panics_in_window,
            "injected": noise.injected,
            "inject_refused": noise.inject_refused,
            "commands": noise.commands,
            "quarantines": quarantines,
            "stalls": noise.stalls,
            "seconds": (noise.seconds * 1000.0).round() / 1000.0,
        },
        "others_all_accepted": quiet.accepted_all() && noisy.accepted_all(),
        "runtime_up": end.runtime_up,
        "chain_verified": end.chain.is_ok(),
        "receipts": end.chain.as_ref().ok(),
        "peak_rss_mib": peak_rss_mib,
    });
    if args.json {
        say!("{doc}");
    } else {
        say!(
            "blast: {} tenants ({} others × {} governors), {} clients, {workers} workers on {cores} cores, {} store",
            args.tenants,
            args.tenants - 1,
            args.governors_per_tenant,
            args.clients,
            doc["store"].as_str().unwrap_or_default()
        );
        say!("{}", run_line("quiet", &doc["quiet"]));
        say!("{}", run_line("noisy", &doc["noisy"]));
        say!(
            "  noisy/quiet: p50 {}×, p99 {}×, p99 by time {}×, throughput {}×",
            doc["p50_ratio"],
            doc["p99_ratio"],
            doc["p99_time_ratio"],
            doc["per_s_ratio"]
        );
        say!(
            "  noise: {panics} panics ({panics_in_window} during the others' run) over {} governors in {:.2} s; {quarantines} quarantines; injected {}; refused {}; its commands {}",
            args.noisy_governors,
            noise.seconds,
            doc["noise"]["injected"],
            doc["noise"]["inject_refused"],
            doc["noise"]["commands"]
        );
        say!(
            "  runtime up: {}; chain verified: {} ({} receipts); peak RSS {peak_rss_mib} MiB",
            end.runtime_up,
            end.chain.is_ok(),
            end.chain.as_ref().map_or(0, |n| *n)
        );
    }
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
}

struct BlastReport {
    quiet: Load,
    noisy: Load,
    noise: Noise,
    panics: u64,
    panics_in_window: u64,
    quarantines: u64,
    end: End,
}

async fn drive_blast(args: &BlastArgs) -> Result<BlastReport, String> {
    let runtime = start(args.data_dir.as_deref(), Some(args.governor_restarts)).await?;
    let h = runtime.handle();
    let tenants = tenants(&h, args.tenants).await?;
    let targets: Arc<[GovernorHandle<Quota>]> =
        others(&h, &tenants, args.governors_per_tenant)?.into();
    let noisy: Vec<GovernorHandle<Quota>> = (0..args.noisy_governors)
        .map(|g| id::<ResourceId>(&format!("noisy-{g:02}")).map(|r| h.governor(&tenants[0], &r)))
        .collect::<Result<_, _>>()?;
    // Every governor resident before anything is measured.
    for g in targets.iter().chain(&noisy) {
        g.send(check(0), "warm-up").await.map_err(|e| format!("warm-up: {e}"))?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let quiet = load(&targets, args.clients, args.commands, &done).await?;

    let done = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let before = INJECTED_PANICS.load(Ordering::Relaxed);
    let driver = tokio::spawn(noise(
        noisy,
        args.panics,
        before,
        Arc::clone(&done),
        args.commands,
        Arc::clone(&finished),
    ));
    let noisy_load = load(&targets, args.clients, args.commands, &done).await;
    finished.store(true, Ordering::Release);
    let panics_in_window = INJECTED_PANICS.load(Ordering::Relaxed) - before;
    let noise = driver.await.map_err(|e| e.to_string())?;
    let noisy_load = noisy_load?;
    let panics = INJECTED_PANICS.load(Ordering::Relaxed) - before;
    let quarantines = h.quarantines(GovernorKind::Quota);
    let end = end(runtime).await?;
    Ok(BlastReport { quiet, noisy: noisy_load, noise, panics, panics_in_window, quarantines, end })
}

// ---------------------------------------------------------------------------------------------
// replay

/// `govern bench replay`.
pub(crate) fn replay(args: &ReplayArgs) -> Result<(), String> {
    if args.tenants < 2 || args.governors_per_tenant == 0 || args.clients == 0 {
        return Err("--tenants must be at least 2, --governors-per-tenant and --clients 1".into());
    }
    if args.receipts == 0 || args.commands == 0 || args.build_clients == 0 {
        return Err("--receipts, --commands and --build-clients must be at least 1".into());
    }
    if args.build_clients > govern_runtime::limits::GOVERNOR_INBOX_MAX {
        return Err(format!(
            "--build-clients is at most the inbox bound, {}",
            govern_runtime::limits::GOVERNOR_INBOX_MAX
        ));
    }
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    let ReplayReport { build, alone, mut quiet, mut noisy, replays, busy, others_passivated, end } =
        rt.block_on(drive_replay(args))?;
    let peak_rss_mib = peak_rss_kib().map_or(0.0, |k| (k as f64 / 102.4).round() / 10.0);
    let failed = failures(&quiet, &noisy, &end);
    let (q, n) = (quiet.summary(), noisy.summary());
    let replay_ms: Vec<f64> = replays.iter().map(|d| ms(*d)).collect();
    let doc = json!({
        "bench": "replay",
        "store": store_name(args.data_dir.as_ref()),
        "replay_receipts": args.receipts,
        "build_s": (build.as_secs_f64() * 1000.0).round() / 1000.0,
        "build_per_s": (args.receipts as f64 / build.as_secs_f64().max(1e-9)).round(),
        "tenants": args.tenants,
        "governors_per_tenant": args.governors_per_tenant,
        "clients": args.clients,
        "workers": workers,
        "cores": cores,
        "replay_alone_ms": ms(alone),
        "replays": replays.len(),
        "replay_ms": replay_ms,
        "replay_busy_fraction": (busy * 1000.0).round() / 1000.0,
        "others_passivated": others_passivated,
        "quiet": q,
        "noisy": n,
        "p50_ratio": ratio(&n, &q, "p50_us"),
        "p99_ratio": ratio(&n, &q, "p99_us"),
        "p99_time_ratio": ratio(&n, &q, "p99_time_us"),
        "per_s_ratio": ratio(&n, &q, "per_s"),
        "others_all_accepted": quiet.accepted_all() && noisy.accepted_all(),
        "runtime_up": end.runtime_up,
        "chain_verified": end.chain.is_ok(),
        "receipts": end.chain.as_ref().ok(),
        "peak_rss_mib": peak_rss_mib,
    });
    if args.json {
        say!("{doc}");
    } else {
        say!(
            "replay: one governor of {} receipts (built in {:.2} s), {} other tenants × {} governors, {} clients, {workers} workers on {cores} cores, {} store",
            args.receipts,
            build.as_secs_f64(),
            args.tenants - 1,
            args.governors_per_tenant,
            args.clients,
            doc["store"].as_str().unwrap_or_default()
        );
        say!(
            "  replay alone {} ms; during the others' run {} replays: {} ms (busy {:.0} % of it)",
            ms(alone),
            replays.len(),
            doc["replay_ms"],
            busy * 100.0
        );
        say!("{}", run_line("quiet", &doc["quiet"]));
        say!("{}", run_line("replay", &doc["noisy"]));
        say!(
            "  replay/quiet: p50 {}×, p99 {}×, p99 by time {}×, throughput {}×",
            doc["p50_ratio"],
            doc["p99_ratio"],
            doc["p99_time_ratio"],
            doc["per_s_ratio"]
        );
        say!(
            "  runtime up: {}; chain verified: {} ({} receipts); peak RSS {peak_rss_mib} MiB",
            end.runtime_up,
            end.chain.is_ok(),
            end.chain.as_ref().map_or(0, |n| *n)
        );
    }
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
}

struct ReplayReport {
    build: Duration,
    alone: Duration,
    quiet: Load,
    noisy: Load,
    replays: Vec<Duration>,
    /// The fraction of the others' replaying run during which a replay was under way.
    busy: f64,
    others_passivated: usize,
    end: End,
}

/// Passivates every governor (before the others' governors exist, that is only the replaying
/// one and the tenant governors) and waits until their actors have stopped. A sweep skips a
/// governor whose actor has not yet seen its inbox empty after the last answer: sweep again
/// until none is left.
async fn passivate_all(h: &RuntimeHandle) {
    while h.live_governor_actors() > 0 {
        let _ = h.passivate_idle(Duration::ZERO).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Brings `big` back (a command: its new actor replays every receipt first) again and again
/// until the others' run is `finished`, passivating it in between; returns each replay's
/// span (command sent → answered) and how many other governors the passivations took along.
async fn replay_loop(
    h: RuntimeHandle,
    big: GovernorHandle<Quota>,
    finished: Arc<AtomicBool>,
) -> Result<(Vec<(Instant, Instant)>, usize), String> {
    let mut spans = Vec::new();
    let mut others_passivated = 0;
    let mut i = 0;
    loop {
        let t0 = Instant::now();
        big.send(check(i), "replay").await.map_err(|e| format!("replaying governor: {e}"))?;
        spans.push((t0, Instant::now()));
        i += 1;
        if finished.load(Ordering::Acquire) {
            break;
        }
        // Let the others catch up, then passivate what has been idle for half the time since
        // that command was queued: the replaying governor (idle since then), not the others'
        // governors, each of which gets a command every few microseconds once they are
        // answered again (a replay that stalls them stalls them for less than that). Should
        // one of theirs go too, its own replay would stall the others in turn: the margin is
        // wide, and `others_passivated` says if it happened.
        tokio::time::sleep(Duration::from_millis(100)).await;
        loop {
            let n = h.passivate_idle(t0.elapsed() / 2).await;
            if n > 0 {
                others_passivated += n - 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if finished.load(Ordering::Acquire) {
            break;
        }
    }
    Ok((spans, others_passivated))
}

async fn drive_replay(args: &ReplayArgs) -> Result<ReplayReport, String> {
    let runtime = start(args.data_dir.as_deref(), None).await?;
    let h = runtime.handle();
    let tenants = tenants(&h, args.tenants).await?;
    let big = h.governor::<Quota>(&tenants[0], &id("replay-00")?);

    // Its history: `receipts` usage checks, from concurrent senders so that the durable
    // store commits them in batches.
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.build_clients);
    let senders = args.build_clients as u64;
    for s in 0..senders {
        let big = big.clone();
        let n = args.receipts / senders + u64::from(s < args.receipts % senders);
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                big.send(check(i), "history").await.map_err(|e| format!("building: {e}"))?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let build = started.elapsed();

    // One replay alone, for its own time.
    passivate_all(&h).await;
    let t0 = Instant::now();
    big.send(check(0), "replay").await.map_err(|e| format!("replaying governor: {e}"))?;
    let alone = t0.elapsed();
    passivate_all(&h).await;

    let targets: Arc<[GovernorHandle<Quota>]> =
        others(&h, &tenants, args.governors_per_tenant)?.into();
    for g in targets.iter() {
        g.send(check(0), "warm-up").await.map_err(|e| format!("warm-up: {e}"))?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let quiet = load(&targets, args.clients, args.commands, &done).await?;

    let finished = Arc::new(AtomicBool::new(false));
    let driver = tokio::spawn(replay_loop(h.clone(), big.clone(), Arc::clone(&finished)));
    let noisy = load(&targets, args.clients, args.commands, &done).await;
    finished.store(true, Ordering::Release);
    let (spans, others_passivated) = driver.await.map_err(|e| e.to_string())??;
    let noisy = noisy?;
    let window = (noisy.ended - noisy.started).as_secs_f64();
    let overlap: f64 = spans
        .iter()
        .map(|(a, b)| {
            let (a, b) = ((*a).max(noisy.started), (*b).min(noisy.ended));
            b.saturating_duration_since(a).as_secs_f64()
        })
        .sum();
    let replays = spans.iter().map(|(a, b)| *b - *a).collect();
    let end = end(runtime).await?;
    Ok(ReplayReport {
        build,
        alone,
        quiet,
        noisy,
        replays,
        busy: if window > 0.0 { overlap / window } else { 0.0 },
        others_passivated,
        end,
    })
}
