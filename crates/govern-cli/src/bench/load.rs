//! `govern bench load` (issue 17, "Crash, chaos and load"): many tenants, mixed commands for
//! a while, then overload; memory, residency, refusals and latency sampled every second.
//!
//! 1. **provision**: N tenants, each with a trial subscription (`sub-main`) on the example
//!    catalog's `pricing-enterprise` plan, by C clients;
//! 2. **mixed**: for S seconds the C clients, each owning every C-th tenant (so that no two
//!    commands of one governor are ever in flight together and each lifecycle stays valid),
//!    pick one of their tenants with a log-uniform skew (rank `k` with probability about
//!    `1 / (k ln n)`: a few hot tenants, a long cold tail that goes idle and is passivated)
//!    and run one of: a subscription, account, entitlement or billing lifecycle step pair
//!    (set up on first use, then a pair of transitions that ends where it began), a usage
//!    event, or an entitlement check;
//! 3. **overload**: for O seconds far more concurrent callers than the runtime admits
//!    (`tenant_in_flight_max`, `GOVERNOR_INBOX_MAX`) hammer a few hot tenants' quota
//!    governors; the excess must be refused `busy`, not queued;
//!
//! then every acknowledged receipt is looked up in the ledger (by its sequence number and
//! hash) and the chain is verified. The sampler reads, each second: RSS, the live heap (the
//! counting allocator), resident governors, live governor actors, commands accepted and
//! refused (by code), and the p50/p99/max latency of the commands accepted in that second.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use govern_governors::account::{self, Account, Channel, Email};
use govern_governors::billing::{self, Billing, DisputeOutcome, PaymentMethod};
use govern_governors::entitlement::{self, Entitlement, GrantKind};
use govern_governors::quota::{Command as QuotaCommand, Quota, Resource};
use govern_governors::{Currency, Money, ResourceId, TenantId};
use govern_plans::sla::LatencyHistogram;
use govern_receipt::Digest;
use govern_runtime::{CommandError, GovernorHandle, Hosted, Outcome, Refusal, RuntimeHandle};
use serde_json::{Value, json};

use super::usage::{METER, PLAN};
use super::{BENCH_QUOTA, id};
use crate::alloc_count::live_bytes;

/// Most tenants a run provisions.
pub(crate) const TENANTS_MAX: usize = 1_000_000;
/// Most clients of the provision and mixed phases.
pub(crate) const CLIENTS_MAX: usize = 4_096;
/// Most callers of the overload phase.
pub(crate) const OVERLOAD_CALLERS_MAX: usize = 1 << 18;
/// The longest phase, in seconds.
pub(crate) const SECONDS_MAX: u64 = 3_600;
/// Quota governors of each hot tenant that the overload phase hammers.
pub(crate) const HOT_GOVERNORS: usize = 8;
/// Live heap at the end of the mixed phase over the same after warm-up at most this is called
/// flat (RSS's ratio is reported too, but the allocator keeps freed pages, so RSS follows the
/// highest heap so far rather than the heap): 10 % for what a run leaves behind by design
/// (usage event ids kept for deduplication, ledger index entries of new receipts).
pub(crate) const FLAT_RATIO: f64 = 1.10;
/// The feature every check asks for (a feature of the plan: allowed).
const FEATURE: &str = "report_builder";
/// The feature the entitlement lifecycle grants (no plan has it).
const GRANTED: &str = "load_granted";
/// The reason of every command.
const REASON: &str = "load";

/// Options of `govern bench load`.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Tenants provisioned (each with a trial subscription).
    #[arg(long, default_value_t = 100_000)]
    tenants: usize,
    /// Length of the mixed phase, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Run on the durable store in this data directory (which must hold no ledger yet) and
    /// leave the ledger there; default: a temporary directory under the OS's, removed after.
    #[arg(long, conflicts_with = "in_memory")]
    data_dir: Option<PathBuf>,
    /// Run on the in-memory store instead.
    #[arg(long)]
    in_memory: bool,
    /// Passivate governors idle this long (ms).
    #[arg(long, default_value_t = 2_000)]
    idle_ms: u64,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Concurrent request/reply clients of the provision and mixed phases.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of the mixed phase after which memory is taken as the reference of the
    /// "flat" claim (the passivation sweep has reached its steady state).
    #[arg(long, default_value_t = 15)]
    warmup_seconds: u64,
    /// Length of the overload phase, in seconds (0: none).
    #[arg(long, default_value_t = 10)]
    overload_seconds: u64,
    /// Concurrent callers of the overload phase, each sending one command at a time
    /// (default: 8 × the per-tenant in-flight bound over the 4 hot tenants).
    #[arg(long, default_value_t = 32_768)]
    overload_callers: usize,
    /// Tenants the overload phase hammers (each on 8 quota governors).
    #[arg(long, default_value_t = 4)]
    hot_tenants: usize,
    /// Most commands in flight per tenant (the runtime's `tenant_in_flight_max`; default
    /// `TENANT_IN_FLIGHT_MAX`): a smaller bound overloads a small run with fewer callers.
    #[arg(long, default_value_t = govern_runtime::limits::TENANT_IN_FLIGHT_MAX)]
    tenant_in_flight_max: usize,
    /// Set each tenant's lifecycles up on their first use in the mixed phase instead of at
    /// provisioning: memory then grows with every tenant touched for the first time.
    #[arg(long)]
    lazy_setup: bool,
    /// Seed of the clients' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// The phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Provision = 0,
    Mixed = 1,
    Overload = 2,
}

impl Phase {
    const ALL: [Self; 3] = [Self::Provision, Self::Mixed, Self::Overload];

    fn name(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::Mixed => "mixed",
            Self::Overload => "overload",
        }
    }

    fn of(n: u8) -> Self {
        match n {
            0 => Self::Provision,
            1 => Self::Mixed,
            _ => Self::Overload,
        }
    }
}

/// The receipts acknowledged: a bit per sequence number, and the XOR of their hashes, to be
/// matched against the ledger's at the end without keeping every hash.
#[derive(Debug, Default)]
struct Acked {
    bits: Vec<u64>,
    xor: [u8; 32],
    count: u64,
}

impl Acked {
    fn add(&mut self, seq: u64, hash: &Digest) {
        let word = usize::try_from(seq / 64).unwrap_or(usize::MAX);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        if let Some(w) = self.bits.get_mut(word) {
            *w |= 1 << (seq % 64);
        }
        xor_into(&mut self.xor, hash);
        self.count += 1;
    }

    fn contains(&self, seq: u64) -> bool {
        let word = usize::try_from(seq / 64).unwrap_or(usize::MAX);
        self.bits.get(word).is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }
}

fn xor_into(acc: &mut [u8; 32], hash: &Digest) {
    for (a, b) in acc.iter_mut().zip(hash.0.iter()) {
        *a ^= b;
    }
}

/// The latencies of the commands accepted in the current second.
#[derive(Debug, Default)]
struct Window {
    hist: LatencyHistogram,
    max_us: u64,
}

/// What the clients count, shared with the sampler.
#[derive(Debug, Default)]
struct Stats {
    phase: AtomicU8,
    accepted: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
    window: Mutex<Window>,
    /// Refusals by phase and label (`busy (what, max)` or the code).
    refusals: Mutex<BTreeMap<(Phase, String), u64>>,
    acked: Mutex<Acked>,
    usage_counted: AtomicU64,
    checks_allowed: AtomicU64,
    checks_refused: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stats {
    fn latency(&self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let mut w = lock(&self.window);
        w.hist.record(us);
        w.max_us = w.max_us.max(us);
    }

    fn refused(&self, refusal: Option<&Refusal>, code: &'static str) {
        let label = match refusal {
            Some(Refusal::Busy { what, max }) => {
                self.busy.fetch_add(1, Ordering::Relaxed);
                format!("busy ({what}, max {max})")
            }
            _ => {
                self.other.fetch_add(1, Ordering::Relaxed);
                code.to_owned()
            }
        };
        let phase = Phase::of(self.phase.load(Ordering::Relaxed));
        *lock(&self.refusals).entry((phase, label)).or_default() += 1;
    }

    /// Counts a command's outcome; true when it was accepted.
    fn outcome(&self, started: Instant, outcome: &Outcome) -> bool {
        match outcome {
            Ok(a) => {
                self.latency(started);
                lock(&self.acked).add(a.seq, &a.hash);
                true
            }
            Err(e) => {
                let refusal = match e {
                    CommandError::Refused(r) => Some(r),
                    _ => None,
                };
                self.refused(refusal, e.code());
                false
            }
        }
    }

    fn take_window(&self) -> Window {
        std::mem::take(&mut *lock(&self.window))
    }
}

/// Sends `command` to `g`, timed and counted; true when accepted.
async fn send<G: Hosted>(stats: &Stats, g: &GovernorHandle<G>, command: G::Command) -> bool {
    let started = Instant::now();
    let outcome = g.send(command, REASON).await;
    stats.outcome(started, &outcome)
}

/// A small deterministic generator (splitmix64): the clients' choices from the seed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A rank in `0..n`, log-uniform: rank `k` about `1 / ((k + 1) ln n)` of the time.
    fn skewed(&mut self, n: usize) -> usize {
        let k = (n as f64).powf(self.unit()) as usize;
        k.saturating_sub(1).min(n.saturating_sub(1))
    }
}

/// What one mixed-phase command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Subscription = 0,
    Account = 1,
    Entitlement = 2,
    Billing = 3,
    Usage = 4,
    Check = 5,
}

impl Op {
    const ALL: [Self; 6] = [
        Self::Subscription,
        Self::Account,
        Self::Entitlement,
        Self::Billing,
        Self::Usage,
        Self::Check,
    ];

    /// The mix, in tenths: lifecycles 5, usage 2, checks 3.
    fn pick(rng: &mut Rng) -> Self {
        match rng.next() % 10 {
            0 | 1 => Self::Subscription,
            2 => Self::Account,
            3 => Self::Entitlement,
            4 => Self::Billing,
            5 | 6 => Self::Usage,
            _ => Self::Check,
        }
    }

    /// The bit of a tenant's set-up lifecycles.
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The fixed values the lifecycles use.
#[derive(Debug)]
struct Fixed {
    main: ResourceId,
    sub: ResourceId,
    account: ResourceId,
    grant: ResourceId,
    payment: ResourceId,
    email: Email,
    money: Money,
}

impl Fixed {
    fn new() -> Result<Self, String> {
        let usd = Currency::from_code("USD").ok_or("no USD")?;
        Ok(Self {
            main: id("sub-main")?,
            sub: id("sub-load")?,
            account: id("account-load")?,
            grant: id("grant-load")?,
            payment: id("payment-load")?,
            email: Email::parse("load@example.com").map_err(|e| e.to_string())?,
            money: Money::new(rust_decimal::Decimal::new(1_000, 2), usd)
                .map_err(|e| e.to_string())?,
        })
    }
}

/// Runs `govern bench load`.
pub(crate) fn load(args: &LoadArgs) -> Result<(), String> {
    if args.tenants == 0 || args.tenants > TENANTS_MAX {
        return Err(format!("--tenants is between 1 and {TENANTS_MAX}"));
    }
    if args.clients == 0 || args.clients > CLIENTS_MAX {
        return Err(format!("--clients is between 1 and {CLIENTS_MAX}"));
    }
    if args.overload_callers > OVERLOAD_CALLERS_MAX {
        return Err(format!("--overload-callers is at most {OVERLOAD_CALLERS_MAX}"));
    }
    if args.seconds > SECONDS_MAX || args.overload_seconds > SECONDS_MAX {
        return Err(format!("a phase lasts at most {SECONDS_MAX} s"));
    }
    if args.hot_tenants == 0 || args.hot_tenants > args.tenants {
        return Err("--hot-tenants is between 1 and --tenants".into());
    }
    let catalog = govern_plans::validate_files(&super::checks::EXAMPLE_CATALOG)
        .map_err(|problems| super::problems_text(&problems))?;
    let temp = if args.data_dir.is_none() && !args.in_memory {
        Some(
            tempfile::Builder::new()
                .prefix("govern-load-")
                .tempdir()
                .map_err(|e| format!("temporary directory: {e}"))?,
        )
    } else {
        None
    };
    let dir = args.data_dir.clone().or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()));
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    let report = rt.block_on(run(args, catalog, dir.as_deref()))?;
    drop(rt);
    let store = if dir.is_some() { "durable" } else { "memory" };
    let summary = report.summary(args, store, workers, cores);
    if args.json {
        say!("{}", json!({ "summary": summary, "seconds": report.rows }));
    } else {
        print_text(&report, &summary)?;
    }
    if let Some(problem) = report.problem {
        return Err(problem);
    }
    Ok(())
}

/// One second of the run.
#[derive(Debug, Clone)]
struct Row {
    t_s: f64,
    phase: Phase,
    rss_mib: f64,
    heap_mib: f64,
    resident: usize,
    live_actors: usize,
    accepted: u64,
    busy: u64,
    other: u64,
    p50_us: Option<u64>,
    p99_us: Option<u64>,
    max_us: u64,
}

impl Row {
    fn json(&self) -> Value {
        json!({
            "t_s": (self.t_s * 10.0).round() / 10.0,
            "phase": self.phase.name(),
            "rss_mib": (self.rss_mib * 10.0).round() / 10.0,
            "heap_mib": (self.heap_mib * 10.0).round() / 10.0,
            "resident_governors": self.resident,
            "live_governor_actors": self.live_actors,
            "accepted": self.accepted,
            "busy": self.busy,
            "other_refusals": self.other,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "max_us": self.max_us,
        })
    }
}

/// What a run found.
#[derive(Debug)]
struct Report {
    rows: Vec<Value>,
    samples: Vec<Row>,
    provision_s: f64,
    /// Latencies of the accepted commands, per phase.
    hists: BTreeMap<Phase, (LatencyHistogram, u64)>,
    refusals: BTreeMap<(Phase, String), u64>,
    accepted: u64,
    receipts_checked: u64,
    receipts_in_ledger: u64,
    usage_counted: u64,
    usage_in_ledger: u64,
    checks_allowed: u64,
    checks_refused: u64,
    check_s: f64,
    peak_rss_mib: f64,
    /// What failed, if anything did: the command then exits 1 after its report.
    problem: Option<String>,
}

/// The RSS now, from /proc (Linux), in KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn run(
    args: &LoadArgs,
    catalog: govern_plans::Catalog,
    dir: Option<&std::path::Path>,
) -> Result<Report, String> {
    let builder = govern_runtime::Runtime::builder()
        .catalog(catalog)
        .idle_after(Duration::from_millis(args.idle_ms.max(1)))
        .tenant_in_flight_max(args.tenant_in_flight_max.max(1));
    let runtime = super::start_fresh(builder, dir).await?;
    let h = runtime.handle();
    let tenants: Arc<Vec<TenantId>> =
        Arc::new((0..args.tenants).map(|t| id(&format!("load-{t:07}"))).collect::<Result<_, _>>()?);
    let fixed = Arc::new(Fixed::new()?);
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let sampler = tokio::spawn(sample(h.clone(), Arc::clone(&stats), Arc::clone(&stop), started));

    // Provision: every tenant and its trial, by the clients; unless `--lazy-setup`, every
    // lifecycle set up, a usage event and a check too, so that the mixed phase starts with
    // every tenant's state in place and its memory is that of the steady state.
    let client = Client {
        h: h.clone(),
        tenants: Arc::clone(&tenants),
        fixed: Arc::clone(&fixed),
        stats: Arc::clone(&stats),
        events: Arc::new(AtomicU64::new(0)),
    };
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = client.clone();
        let (clients, lazy) = (args.clients, args.lazy_setup);
        tasks.push(tokio::spawn(async move {
            let Client { h, tenants, fixed, stats, .. } = &client;
            let mut set_up = Vec::new();
            for t in tenants.iter().skip(c).step_by(clients) {
                let mut done = 0u8;
                let t0 = Instant::now();
                let outcome = h.provision_tenant(t, BENCH_QUOTA, REASON).await;
                if stats.outcome(t0, &outcome) {
                    let main = h.subscription(t, &fixed.main);
                    let t0 = Instant::now();
                    stats.outcome(t0, &main.start_trial(PLAN, 14, REASON).await);
                    if !lazy {
                        for op in Op::ALL {
                            mixed(&client, t, op, &mut done).await;
                        }
                    }
                }
                set_up.push(done);
            }
            set_up
        }));
    }
    let mut set_ups = join(tasks).await?.into_iter();
    let provision_s = started.elapsed().as_secs_f64();

    // Mixed: each client drives its own tenants until the deadline.
    stats.phase.store(Phase::Mixed as u8, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = client.clone();
        let (clients, seed) = (args.clients, args.seed);
        let mut set_up = set_ups.next().unwrap_or_default();
        tasks.push(tokio::spawn(async move {
            let mine: Vec<&TenantId> = client.tenants.iter().skip(c).step_by(clients).collect();
            set_up.resize(mine.len(), 0);
            let mut rng = Rng(seed ^ (c as u64).wrapping_mul(0xa076_1d64_78bd_642f));
            while Instant::now() < deadline && !mine.is_empty() {
                let k = rng.skewed(mine.len());
                let (Some(t), Some(done)) = (mine.get(k), set_up.get_mut(k)) else { break };
                let op = Op::pick(&mut rng);
                mixed(&client, t, op, done).await;
            }
        }));
    }
    join(tasks).await?;

    // Overload: callers far beyond the bounds, on a few hot tenants' quota governors.
    stats.phase.store(Phase::Overload as u8, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(args.overload_seconds);
    let mut hot = Vec::new();
    for t in tenants.iter().take(args.hot_tenants) {
        for g in 0..HOT_GOVERNORS {
            hot.push(h.governor::<Quota>(t, &id(&format!("quota-hot-{g}"))?));
        }
    }
    let hot = Arc::new(hot);
    let mut tasks = Vec::new();
    let callers = if args.overload_seconds == 0 { 0 } else { args.overload_callers };
    for c in 0..callers {
        let (hot, stats) = (Arc::clone(&hot), Arc::clone(&stats));
        tasks.push(tokio::spawn(async move {
            let Some(g) = hot.get(c % hot.len()) else { return };
            let mut i = c as u64;
            while Instant::now() < deadline {
                let check = QuotaCommand::CheckQuota {
                    resource: Resource::ApiCalls,
                    usage: i % 100,
                    limit: 1_000,
                };
                if !send(&stats, g, check).await {
                    // Refused at once: let the others run before trying again.
                    tokio::task::yield_now().await;
                }
                i += 1;
            }
        }));
    }
    join(tasks).await?;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await.map_err(|e| e.to_string())?;

    // Every acknowledged receipt in the ledger, every usage event counted once, the chain.
    let check_started = Instant::now();
    let mut problem = None;
    let acked = std::mem::take(&mut *lock(&stats.acked));
    let (mut found, mut xor, mut usage_in_ledger) = (0u64, [0u8; 32], 0u64);
    for t in tenants.iter() {
        for r in h.receipts(t, None, None).map_err(|e| e.to_string())? {
            if acked.contains(r.seq) {
                found += 1;
                xor_into(&mut xor, &r.hash);
            }
            if r.body.command == "record_usage" {
                usage_in_ledger +=
                    r.body.args.get("total").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    if found != acked.count || xor != acked.xor {
        problem = Some(format!(
            "{} receipts acknowledged, {found} found in the ledger{}",
            acked.count,
            if xor == acked.xor { "" } else { " with other hashes" }
        ));
    }
    let usage_counted = stats.usage_counted.load(Ordering::Relaxed);
    if problem.is_none() && usage_in_ledger != usage_counted {
        problem = Some(format!(
            "{usage_counted} usage events counted, {usage_in_ledger} in the ledger's receipts"
        ));
    }
    if let Err(e) = h.verify() {
        problem = Some(format!("the chain does not verify: {e}"));
    }
    let check_s = check_started.elapsed().as_secs_f64();
    runtime.shutdown().await.map_err(|e| e.to_string())?;

    let mut hists: BTreeMap<Phase, (LatencyHistogram, u64)> = BTreeMap::new();
    for (row, w) in &samples {
        let e = hists.entry(row.phase).or_default();
        e.0.merge(&w.hist);
        e.1 = e.1.max(w.max_us);
    }
    let samples: Vec<Row> = samples.into_iter().map(|(row, _)| row).collect();
    Ok(Report {
        rows: samples.iter().map(Row::json).collect(),
        samples,
        provision_s,
        hists,
        refusals: std::mem::take(&mut *lock(&stats.refusals)),
        accepted: stats.accepted.load(Ordering::Relaxed),
        receipts_checked: acked.count,
        receipts_in_ledger: found,
        usage_counted,
        usage_in_ledger,
        checks_allowed: stats.checks_allowed.load(Ordering::Relaxed),
        checks_refused: stats.checks_refused.load(Ordering::Relaxed),
        check_s,
        peak_rss_mib: super::peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0),
        problem,
    })
}

async fn join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// What every client task of the provisioning and mixed phases shares.
#[derive(Clone)]
struct Client {
    h: RuntimeHandle,
    tenants: Arc<Vec<TenantId>>,
    fixed: Arc<Fixed>,
    stats: Arc<Stats>,
    /// Usage events sent, for fresh event ids.
    events: Arc<AtomicU64>,
}

/// One mixed-phase command (a lifecycle's first use sets it up: several commands).
async fn mixed(client: &Client, t: &TenantId, op: Op, set_up: &mut u8) {
    let Client { h, stats, fixed, events, .. } = client;
    let first = *set_up & op.bit() == 0;
    let ok = match op {
        Op::Subscription => {
            let s = h.subscription(t, &fixed.sub);
            if first {
                let t0 = Instant::now();
                stats.outcome(t0, &s.start_trial(PLAN, 14, REASON).await)
                    && stats.outcome(Instant::now(), &s.activate(None, REASON).await)
            } else {
                let t0 = Instant::now();
                stats.outcome(t0, &s.suspend(REASON).await)
                    && stats.outcome(Instant::now(), &s.resume(REASON).await)
            }
        }
        Op::Account => {
            let a = h.governor::<Account>(t, &fixed.account);
            if first {
                send(stats, &a, account::Command::CreateAccount { email: fixed.email.clone() })
                    .await
                    && send(stats, &a, account::Command::VerifyAccount { channel: Channel::Email })
                        .await
                    && send(stats, &a, account::Command::ActivateAccount).await
            } else {
                send(stats, &a, account::Command::SuspendAccount).await
                    && send(stats, &a, account::Command::ActivateAccount).await
            }
        }
        Op::Entitlement => {
            let g = h.governor::<Entitlement>(t, &fixed.grant);
            if first {
                let grant = entitlement::Command::GrantEntitlement {
                    feature: GRANTED.to_owned(),
                    expires_at: None,
                    kind: GrantKind::default(),
                    priority: 0,
                };
                send(stats, &g, grant).await
                    && send(stats, &g, entitlement::Command::ApproveGrant).await
            } else {
                send(stats, &g, entitlement::Command::SuspendEntitlement).await
                    && send(stats, &g, entitlement::Command::ReinstateEntitlement).await
            }
        }
        Op::Billing => {
            let b = h.governor::<Billing>(t, &fixed.payment);
            if first {
                let request = billing::Command::RequestPayment {
                    money: fixed.money,
                    method: PaymentMethod::Card,
                };
                let authorize = billing::Command::AuthorizePayment {
                    transaction_id: "tx-load".to_owned(),
                    money: None,
                };
                send(stats, &b, request).await
                    && send(stats, &b, authorize).await
                    && send(stats, &b, billing::Command::SettlePayment { money: None }).await
            } else {
                let dispute = billing::Command::DisputePayment {
                    dispute_id: "dp-load".to_owned(),
                    money: None,
                };
                let resolve =
                    billing::Command::ResolveDispute { outcome: DisputeOutcome::Won, money: None };
                send(stats, &b, dispute).await && send(stats, &b, resolve).await
            }
        }
        Op::Usage => {
            let n = events.fetch_add(1, Ordering::Relaxed);
            let t0 = Instant::now();
            match h.record_usage(t, METER, 1, &format!("e{n}"), h.now()).await {
                Ok(govern_runtime::UsageRecorded::Counted { .. }) => {
                    stats.latency(t0);
                    stats.usage_counted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {
                    stats.refused(None, "duplicate");
                }
                Err(r) => stats.refused(Some(&r), r.code()),
            }
            false
        }
        Op::Check => {
            let t0 = Instant::now();
            match h.check(t, FEATURE, "view", 1) {
                Ok(d) => {
                    stats.latency(t0);
                    let counter = match d {
                        govern_policy::Decision::Allowed { .. } => &stats.checks_allowed,
                        _ => &stats.checks_refused,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Err(r) => stats.refused(Some(&r), r.code()),
            }
            false
        }
    };
    if first && ok {
        *set_up |= op.bit();
    }
}

/// Samples every second until `stop`; returns the rows, each with its latency window.
async fn sample(
    h: RuntimeHandle,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> Vec<(Row, Window)> {
    let mut rows = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let (mut accepted, mut busy, mut other) = (0u64, 0u64, 0u64);
    loop {
        tick.tick().await;
        let phase = Phase::of(stats.phase.load(Ordering::Relaxed));
        let window = stats.take_window();
        let (a, b, o) = (
            stats.accepted.load(Ordering::Relaxed),
            stats.busy.load(Ordering::Relaxed),
            stats.other.load(Ordering::Relaxed),
        );
        let row = Row {
            t_s: started.elapsed().as_secs_f64(),
            phase,
            rss_mib: rss_kib().map_or(0.0, |k| k as f64 / 1024.0),
            heap_mib: mib(live_bytes()),
            resident: h.resident_governors(),
            live_actors: h.live_governor_actors(),
            accepted: a - accepted,
            busy: b - busy,
            other: o - other,
            p50_us: window.hist.quantile_us(50),
            p99_us: window.hist.p99_us(),
            max_us: window.max_us,
        };
        (accepted, busy, other) = (a, b, o);
        rows.push((row, window));
        if stop.load(Ordering::Relaxed) {
            return rows;
        }
    }
}

/// The median of some values (the lower middle one).
fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

impl Report {
    fn phase_rows(&self, phase: Phase) -> impl Iterator<Item = &Row> {
        self.samples.iter().filter(move |r| r.phase == phase)
    }

    fn refusals_of(&self, phase: Phase, busy: bool) -> BTreeMap<String, u64> {
        self.refusals
            .iter()
            .filter(|((p, label), _)| *p == phase && label.starts_with("busy") == busy)
            .map(|((_, label), n)| (label.clone(), *n))
            .collect()
    }

    fn summary(&self, args: &LoadArgs, store: &str, workers: usize, cores: usize) -> Value {
        let mixed: Vec<&Row> = self.phase_rows(Phase::Mixed).collect();
        let warm = mixed
            .iter()
            .find(|r| r.t_s - mixed.first().map_or(0.0, |f| f.t_s) >= args.warmup_seconds as f64)
            .or(mixed.first());
        let end = mixed.last();
        let ratio = |f: fn(&Row) -> f64| match (warm, end) {
            (Some(w), Some(e)) if f(w) > 0.0 => Some((f(e) / f(w) * 1000.0).round() / 1000.0),
            _ => None,
        };
        let (heap_ratio, rss_ratio) = (ratio(|r| r.heap_mib), ratio(|r| r.rss_mib));
        let p99s: Vec<u64> = mixed.iter().filter_map(|r| r.p99_us).collect();
        let overload: Vec<&Row> = self.phase_rows(Phase::Overload).collect();
        let before_overload = mixed.last().map(|r| r.rss_mib);
        let overload_rss_max = overload
            .iter()
            .map(|r| r.rss_mib)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let overload_heap = (
            mixed.last().map(|r| r.heap_mib),
            overload.iter().map(|r| r.heap_mib).fold(0.0, f64::max),
        );
        let provision_resident = self.phase_rows(Phase::Provision).map(|r| r.resident).max();
        let mixed_resident: Vec<usize> = mixed.iter().map(|r| r.resident).collect();
        let hist = |p: Phase| {
            self.hists.get(&p).map(|(h, max)| {
                json!({
                    "commands": h.count(),
                    "p50_us": h.quantile_us(50),
                    "p99_us": h.p99_us(),
                    "max_us": max,
                })
            })
        };
        let round = |x: f64| (x * 10.0).round() / 10.0;
        let busy_overload: u64 = self.refusals_of(Phase::Overload, true).values().sum();
        let other: BTreeMap<String, u64> = Phase::ALL
            .iter()
            .flat_map(|p| {
                self.refusals_of(*p, false)
                    .into_iter()
                    .map(move |(l, n)| (format!("{}: {l}", p.name()), n))
            })
            .collect();
        json!({
            "bench": "load",
            "store": store,
            "tenants": args.tenants,
            "seconds": args.seconds,
            "overload_seconds": args.overload_seconds,
            "clients": args.clients,
            "overload_callers": args.overload_callers,
            "hot_tenants": args.hot_tenants,
            "idle_ms": args.idle_ms,
            "lazy_setup": args.lazy_setup,
            "workers": workers,
            "cores": cores,
            "provision_s": round(self.provision_s),
            "accepted": self.accepted,
            "latency": {
                "provision": hist(Phase::Provision),
                "mixed": hist(Phase::Mixed),
                "overload": hist(Phase::Overload),
            },
            "mixed_p99_us_worst_second": p99s.iter().max(),
            "mixed_p99_us_median_second": median(p99s.clone()),
            "resident_governors": {
                "provision_peak": provision_resident,
                "mixed_min": mixed_resident.iter().min(),
                "mixed_max": mixed_resident.iter().max(),
                "mixed_end": mixed_resident.last(),
            },
            "memory": {
                "warmup_seconds": args.warmup_seconds,
                "heap_mib_after_warmup": warm.map(|r| round(r.heap_mib)),
                "heap_mib_end": end.map(|r| round(r.heap_mib)),
                "heap_ratio": heap_ratio,
                "rss_mib_after_warmup": warm.map(|r| round(r.rss_mib)),
                "rss_mib_end": end.map(|r| round(r.rss_mib)),
                "rss_ratio": rss_ratio,
                "flat_ratio": FLAT_RATIO,
                "flat": heap_ratio.is_some_and(|r| r <= FLAT_RATIO),
                "rss_flat": rss_ratio.is_some_and(|r| r <= FLAT_RATIO),
                "heap_mib_after_provision": self.phase_rows(Phase::Provision).last().map(|r| round(r.heap_mib)),
                "rss_mib_before_overload": before_overload.map(round),
                "rss_mib_overload_max": overload_rss_max.map(round),
                "heap_mib_before_overload": overload_heap.0.map(round),
                "heap_mib_overload_max": round(overload_heap.1),
                "peak_rss_mib": round(self.peak_rss_mib),
            },
            "overload": {
                "busy": busy_overload,
                "busy_by_bound": self.refusals_of(Phase::Overload, true),
                "tenant_in_flight_max": args.tenant_in_flight_max,
                "heap_mib_after_first_second": overload.get(1).map(|r| round(r.heap_mib)),
                "heap_mib_before_last_second": overload.iter().rev().nth(1).map(|r| round(r.heap_mib)),
                "rss_mib_after_first_second": overload.get(1).map(|r| round(r.rss_mib)),
                "rss_mib_before_last_second": overload.iter().rev().nth(1).map(|r| round(r.rss_mib)),
                "governor_inbox_max": govern_runtime::limits::GOVERNOR_INBOX_MAX,
            },
            "busy_outside_overload": self.refusals_of(Phase::Provision, true).values().sum::<u64>()
                + self.refusals_of(Phase::Mixed, true).values().sum::<u64>(),
            "other_refusals": other,
            "checks": { "allowed": self.checks_allowed, "refused": self.checks_refused },
            "receipts": {
                "acknowledged": self.receipts_checked,
                "found_in_ledger": self.receipts_in_ledger,
                "usage_events_counted": self.usage_counted,
                "usage_events_in_ledger": self.usage_in_ledger,
                "check_s": round(self.check_s),
                "verified": self.problem.is_none(),
            },
        })
    }
}

fn print_text(report: &Report, summary: &Value) -> Result<(), String> {
    say!(
        "{:>6} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>6} {:>8} {:>8} {:>9}",
        "t s",
        "phase",
        "RSS MiB",
        "heap MiB",
        "resident",
        "actors",
        "accepted",
        "busy",
        "other",
        "p50 µs",
        "p99 µs",
        "max µs"
    );
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    for r in &report.samples {
        say!(
            "{:>6.1} {:>9} {:>8.1} {:>8.1} {:>9} {:>9} {:>9} {:>8} {:>6} {:>8} {:>8} {:>9}",
            r.t_s,
            r.phase.name(),
            r.rss_mib,
            r.heap_mib,
            r.resident,
            r.live_actors,
            r.accepted,
            r.busy,
            r.other,
            opt(r.p50_us),
            opt(r.p99_us),
            r.max_us
        );
    }
    say!("{}", serde_json::to_string_pretty(summary).unwrap_or_default());
    Ok(())
}
