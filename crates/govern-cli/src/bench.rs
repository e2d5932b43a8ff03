//! `govern bench`: the lifecycle workload of the runtime issue, on the real actors.
//!
//! N subscription governors spread over a few tenants, each driven through 9 transitions
//! (start_trial, activate, suspend, resume, pause, resume, request_cancellation,
//! confirm_cancellation, archive) by C concurrent request/reply clients; every transition is
//! receipted in the shared ledger. Memory is counted exactly by the process's allocator.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_runtime::{Runtime, RuntimeHandle};

use crate::alloc_count::live_bytes;

mod checks;
mod idempotency;
mod invoices;
mod isolation;
mod load;
mod notify;
mod sagas;
mod usage;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub(crate) enum Bench {
    /// N subscriptions × 9 transitions by C concurrent clients; prints throughput, latency
    /// and memory per governor.
    Lifecycle(LifecycleArgs),
    /// Writes N receipts to the durable segment store in DIR and leaves the ledger there to
    /// be verified: with `--producers P`, P threads each append a receipt and wait for its
    /// acknowledgement by the group commit (latency per receipt); without, one thread syncs
    /// (fdatasync) every `--batch` receipts.
    Ledger(LedgerArgs),
    /// Blast radius: other tenants' commands (C clients, latency per call), quietly and while
    /// one tenant's governors take thousands of injected panics; exits 1 unless every other
    /// tenant's command succeeded, the runtime is up and the chain verifies.
    Blast(isolation::BlastArgs),
    /// Replay isolation: other tenants' commands, quietly and while one governor with a long
    /// history (1 M receipts) is passivated and brought back by replay, again and again.
    Replay(isolation::ReplayArgs),
    /// Usage ingest through the runtime: P producers report batches of usage events, each
    /// acknowledged once its `record_usage` receipt is durable; events/s, and every event
    /// counted once.
    Usage(usage::UsageArgs),
    /// Entitlement checks through the runtime (issue 11): `handle.check` cached (1 and T
    /// threads, own and shared tenants) and uncached (every call runs all R rules), and
    /// `govern_policy::decide` directly; ns per check and checks/s. Exits 1 unless every
    /// decision is the one the setup implies.
    Checks(checks::ChecksArgs),
    /// What an idempotency key costs: C clients start trials unkeyed, keyed with fresh
    /// keys, then repeat the keyed ones (replays, nothing written); ns per command and /s.
    Idempotency(idempotency::IdempotencyArgs),
    /// Completed saga runs per second: C clients run the shipped onboarding saga (7 steps)
    /// for tenants of their own; every run must complete with all its receipts.
    Sagas(sagas::SagasArgs),
    /// The billing run: N tenants' January closed into receipted invoices and payment
    /// requests, durably; invoices/s. Exits 1 unless every total is the one worked out by
    /// hand and the chain verifies.
    Invoices(invoices::InvoicesArgs),
    /// Outbound notifications delivered per second to a loopback receiver (issue 16), for
    /// one and several endpoints: a backlog found by the recovery scan, then live events.
    /// Exits 1 unless each event arrived once, signed, and nothing failed.
    Notify(notify::NotifyArgs),
    /// Issue 17's load run: N tenants provisioned, then S seconds of mixed commands
    /// (subscription, account, entitlement and billing lifecycles, usage, checks) over
    /// tenants picked with a skew, so that most go idle and are passivated, then an overload
    /// phase of far more concurrent callers than the runtime admits. Prints RSS, live heap,
    /// resident governors, commands, refusals and latency every second; exits 1 unless every
    /// acknowledged receipt is in the ledger and the chain verifies.
    Load(load::LoadArgs),
}

/// Options of `govern bench ledger`.
#[derive(Debug, Args)]
pub(crate) struct LedgerArgs {
    /// Number of receipts to write.
    #[arg(long, default_value_t = 1_000_000)]
    receipts: u64,
    /// The data directory (created; must not hold a ledger yet).
    #[arg(long)]
    data_dir: std::path::PathBuf,
    /// Receipts per sync (one fdatasync each), without `--producers`.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// Concurrent producers, each waiting for its receipt to be durable before the next.
    #[arg(long)]
    producers: Option<usize>,
    /// With `--producers`: most acknowledgements per group commit.
    #[arg(long, default_value_t = govern_ledger::commit::BATCH_MAX)]
    batch_max: usize,
    /// With `--producers`: how long (µs) a batch waits for more after its first receipt.
    #[arg(long, default_value_t = 0)]
    batch_delay_us: u64,
    /// Receipts per resource, each resource a tenant's (the 16 tenants take resources in
    /// turn): a ledger of receipts/K resources with K receipts each, the shape of a real
    /// history (issue 15's "10 M receipts, 1 M resources": K = 10). Default: the original
    /// shape, resource `i / 9` but tenant `i % 16`, so every (tenant, resource) key has one
    /// receipt: as many index keys as receipts, the worst case for the index.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    per_resource: Option<u64>,
    /// Segment files of at most this many bytes (default and most: 64 MiB): small ones make
    /// a small ledger of many sealed segments, e.g. to try `govern archive` on.
    #[arg(long, value_name = "BYTES")]
    segment_bytes: Option<u64>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `govern bench lifecycle`.
#[derive(Debug, Args)]
pub(crate) struct LifecycleArgs {
    /// Number of subscription governors.
    #[arg(long, default_value_t = 100_000)]
    governors: usize,
    /// Number of concurrent clients (each sends one command at a time).
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Number of tenants the governors are spread over.
    #[arg(long, default_value_t = 16)]
    tenants: usize,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Run on the durable store in this data directory (which must hold no ledger yet) and
    /// leave the ledger there, to be verified afterwards; default: the in-memory store.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// With `--data-dir`: acknowledge right after the write and flush periodically
    /// (the buffered mode) instead of after the fdatasync.
    #[arg(long, requires = "data_dir")]
    buffered: bool,
    /// With `--data-dir`: how long (µs) a group commit waits for more replies after its first.
    #[arg(long, default_value_t = 0, requires = "data_dir")]
    batch_delay_us: u64,
    /// Tokio's `global_queue_interval`: how many tasks a worker polls from its own queue
    /// before it looks at the shared one (tokio's default: 61; govern's, which the CLI uses
    /// and recommends to hosts: `limits::GLOBAL_QUEUE_INTERVAL`). With many clients, tasks
    /// that overflow a worker's queue wait in the shared one meanwhile: a smaller interval is
    /// fairer (see docs/benchmarks.md, "Fairness at C = 1024").
    #[arg(long, default_value_t = govern_runtime::limits::GLOBAL_QUEUE_INTERVAL)]
    global_queue_interval: u32,
    /// Passivate governors idle this long (ms), as a long-running host would (default: a
    /// day, i.e. never during the run). With it, the resident and passivated sizes the run
    /// reports mix the two; peak RSS is the figure to read.
    #[arg(long)]
    idle_after_ms: Option<u64>,
    /// Run with this plan catalog (files taken together), so that governors compute the
    /// views checks decide with; the subscriptions' plan is then `pro` if the catalog has
    /// it, else its first plan. Default: no catalog (a plan is any id; no views).
    #[arg(long, num_args = 1..)]
    catalog: Vec<std::path::PathBuf>,
    /// Install the Prometheus recorder `govern serve` installs before the runtime starts,
    /// so that every command, commit and route change is recorded as in production: what
    /// metrics cost (docs/benchmarks.md, issue 16). The run ends by rendering it once and
    /// reports how many series it held.
    #[arg(long)]
    metrics: bool,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs a benchmark.
pub(crate) fn run(bench: Bench) -> Result<(), String> {
    match bench {
        Bench::Lifecycle(args) => lifecycle(&args),
        Bench::Ledger(args) => ledger(&args),
        Bench::Blast(args) => isolation::blast(&args),
        Bench::Replay(args) => isolation::replay(&args),
        Bench::Usage(args) => usage::usage(&args),
        Bench::Checks(args) => checks::checks(&args),
        Bench::Idempotency(args) => idempotency::idempotency(&args),
        Bench::Sagas(args) => sagas::sagas(&args),
        Bench::Invoices(args) => invoices::invoices(&args),
        Bench::Notify(args) => notify::notify(&args),
        Bench::Load(args) => load::load(&args),
    }
}

/// The quota every benchmark tenant is provisioned with.
pub(crate) const BENCH_QUOTA: ResourceQuota =
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };

/// Starts `builder`'s runtime, on the durable store in `data_dir` when given (it must hold no
/// ledger yet: the figures are those of a fresh one), else on what the builder says.
pub(crate) async fn start_fresh(
    mut builder: govern_runtime::RuntimeBuilder,
    data_dir: Option<&std::path::Path>,
) -> Result<Runtime, String> {
    if let Some(dir) = data_dir {
        builder = builder.data_dir(dir);
    }
    let runtime = builder.start().await.map_err(|e| e.to_string())?;
    if runtime.handle().head().next_seq != 0 {
        let _ = runtime.shutdown().await;
        return Err("the data directory already holds a ledger".into());
    }
    Ok(runtime)
}

/// The benchmarks' (and `govern serve`'s) tokio runtime: `workers` worker threads (default: the cores), govern's
/// `GLOBAL_QUEUE_INTERVAL`; with the worker count and the cores.
pub(crate) fn tokio_runtime(
    workers: Option<usize>,
) -> Result<(tokio::runtime::Runtime, usize, usize), String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = workers.unwrap_or(cores).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .global_queue_interval(govern_runtime::limits::GLOBAL_QUEUE_INTERVAL)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    Ok((rt, workers, cores))
}

use crate::plans::{load_catalog, problems_text};

/// The receipt body of the ledger benchmark's `i`th receipt (`--per-resource`: see
/// [`LedgerArgs`]).
fn bench_body(
    tenants: &[TenantId],
    i: u64,
    per_resource: Option<u64>,
) -> Result<govern_receipt::ReceiptBody, String> {
    let (tenant, resource) = match per_resource {
        Some(k) => ((i / k) % tenants.len() as u64, i / k),
        None => (i % tenants.len() as u64, i / 9),
    };
    // A history each subscription's machine replays (archival folds it into states):
    // activated, then suspended and resumed in turn.
    let (command, from, to) = match per_resource.map_or(0, |k| i % k) {
        0 => ("activate", "pending", "active"),
        j if j % 2 == 1 => ("suspend", "active", "suspended"),
        _ => ("resume", "suspended", "active"),
    };
    Ok(govern_receipt::ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: tenants[tenant as usize].clone(),
        governor: govern_governors::GovernorKind::Subscription,
        resource: id(&format!("sub-{resource:08}"))?,
        resource_seq: 0,
        command: std::borrow::Cow::Borrowed(command),
        state_from: std::borrow::Cow::Borrowed(from),
        state_to: std::borrow::Cow::Borrowed(to),
        reason: "benchmark".into(),
        args: std::collections::BTreeMap::new(),
        metadata: std::collections::BTreeMap::new(),
    })
}

fn ledger(args: &LedgerArgs) -> Result<(), String> {
    use govern_ledger::segment::{SegmentOptions, SegmentStore};
    use govern_ledger::{Ledger, LedgerStore};
    let mut options = SegmentOptions::default();
    if let Some(bytes) = args.segment_bytes {
        options.segment_bytes = bytes;
    }
    let (store, _) = SegmentStore::open(&args.data_dir, options).map_err(|e| e.to_string())?;
    if !store.is_empty() {
        return Err(format!("{} already holds a ledger", args.data_dir.display()));
    }
    let ledger = Ledger::open(Box::new(store)).map_err(|e| e.to_string())?;
    let tenants: Vec<TenantId> =
        (0..16).map(|t| id(&format!("tenant-{t:04}"))).collect::<Result<_, _>>()?;
    if let Some(producers) = args.producers {
        return ledger_producers(args, std::sync::Arc::new(ledger), &tenants, producers.max(1));
    }
    let started = Instant::now();
    for i in 0..args.receipts {
        ledger.append(bench_body(&tenants, i, args.per_resource)?).map_err(|e| e.to_string())?;
        if (i + 1) % args.batch.max(1) == 0 {
            ledger.sync().map_err(|e| e.to_string())?;
        }
    }
    ledger.sync().map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    // Sign a checkpoint of what was written, as the runtime does (checkpoint.json and the
    // signed note, each replaced atomically), so that `govern verify` can check the history.
    govern_ledger::Checkpointer::in_dir(&args.data_dir)
        .and_then(|checkpointer| checkpointer.write(&ledger))
        .map_err(|e| e.to_string())?;
    say!(
        "wrote {} receipts to {} in {secs:.2} s: {:.0} durable receipts/s, one fdatasync per {} (single producer)",
        args.receipts,
        args.data_dir.display(),
        args.receipts as f64 / secs,
        args.batch
    );
    write_snapshot(&ledger, &args.data_dir)
}

/// Writes the ledger's snapshot, as a runtime does when it stops, and says what it took.
fn write_snapshot(ledger: &govern_ledger::Ledger, dir: &std::path::Path) -> Result<(), String> {
    let started = Instant::now();
    let trees = ledger.write_segment_trees(dir)?;
    if trees > 0 {
        say!(
            "tree files of {trees} sealed segments written in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    if let Some(w) = ledger.write_snapshot(dir).map_err(|e| e.to_string())? {
        say!(
            "snapshot of {} receipts ({} read) written in {:.2} s: {:.1} MiB",
            w.records,
            w.read,
            started.elapsed().as_secs_f64(),
            w.bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}

/// An acknowledgement that wakes an async producer.
struct OneshotAck(tokio::sync::oneshot::Sender<Result<(), govern_ledger::LedgerError>>);

impl govern_ledger::Ack for OneshotAck {
    fn complete(self, result: Result<(), govern_ledger::LedgerError>) {
        let _ = self.0.send(result);
    }
}

/// `bench ledger --producers P`: P async producers (tokio tasks on one worker per core, as
/// a host's request handlers would be) each append a receipt and wait for the group commit
/// to make it durable; the last commit signs a checkpoint into the data directory.
fn ledger_producers(
    args: &LedgerArgs,
    ledger: std::sync::Arc<govern_ledger::Ledger>,
    tenants: &[TenantId],
    producers: usize,
) -> Result<(), String> {
    use govern_ledger::{Checkpointer, CommitOptions, GroupCommit};
    use std::sync::Arc;
    let options = CommitOptions {
        batch_max: args.batch_max,
        batch_delay: Duration::from_micros(args.batch_delay_us),
        ..CommitOptions::default()
    };
    let checkpointer = Checkpointer::in_dir(&args.data_dir).map_err(|e| e.to_string())?;
    let commit: Arc<GroupCommit<OneshotAck>> = Arc::new(
        GroupCommit::start(Arc::clone(&ledger), options, Some(checkpointer))
            .map_err(|e| e.to_string())?,
    );
    let per = args.receipts / producers as u64;
    // Bodies are built up front: the figure is the ledger's, not the formatting's.
    let bodies: Vec<Vec<govern_receipt::ReceiptBody>> = (0..producers as u64)
        .map(|p| (0..per).map(|i| bench_body(tenants, p * per + i, args.per_resource)).collect())
        .collect::<Result<_, _>>()?;
    let (rt, _, cores) = tokio_runtime(None)?;
    let started = Instant::now();
    let latencies = rt.block_on(async {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|mine| {
                let (ledger, commit) = (Arc::clone(&ledger), Arc::clone(&commit));
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(mine.len());
                    for body in mine {
                        let t0 = Instant::now();
                        let seq = ledger.append(body).map_err(|e| e.to_string())?.seq;
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        commit.ack_when_durable(seq, OneshotAck(tx));
                        rx.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                        lat.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    }
                    Ok::<Vec<u64>, String>(lat)
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.map_err(|e| e.to_string())??);
        }
        Ok::<Vec<u64>, String>(all)
    })?;
    let secs = started.elapsed().as_secs_f64();
    commit.stop()?;
    let mut latencies = latencies;
    latencies.sort_unstable();
    let n = latencies.len();
    let pct = |p: f64| latencies[((n as f64 - 1.0) * p) as usize] as f64 / 1_000.0;
    let rate = n as f64 / secs;
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "ledger",
                "producers": producers,
                "receipts": n,
                "cores": cores,
                "batch_max": args.batch_max,
                "batch_delay_us": args.batch_delay_us,
                "durable_receipts_per_s": rate.round(),
                "ack_p50_us": pct(0.50),
                "ack_p99_us": pct(0.99),
                "ack_max_us": pct(1.0),
            })
        );
    } else {
        say!(
            "wrote {n} receipts to {} with {producers} producers in {secs:.2} s: {rate:.0} durable receipts/s; acknowledgement p50 {:.1} µs, p99 {:.1} µs (group commit, {cores} cores)",
            args.data_dir.display(),
            pct(0.50),
            pct(0.99)
        );
    }
    // As a runtime does when it stops; said only in the human output (JSON is one object).
    if args.json {
        ledger.write_snapshot(&args.data_dir).map_err(|e| e.to_string())?;
        Ok(())
    } else {
        write_snapshot(&ledger, &args.data_dir)
    }
}

fn lifecycle(args: &LifecycleArgs) -> Result<(), String> {
    if args.governors == 0 || args.clients == 0 || args.tenants == 0 {
        return Err("--governors, --clients and --tenants must be at least 1".into());
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = args.workers.unwrap_or(cores).max(1);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(workers)
        .global_queue_interval(args.global_queue_interval.max(1))
        .enable_all();
    let rt = builder.build().map_err(|e| format!("tokio runtime: {e}"))?;
    let catalog = if args.catalog.is_empty() { None } else { Some(load_catalog(&args.catalog)?) };
    let plan = match &catalog {
        None => "pro".to_owned(),
        Some(c) if c.plan("pro").is_some() => "pro".to_owned(),
        Some(c) => {
            c.plans.keys().next().map(|p| p.as_str().to_owned()).ok_or("the catalog has no plan")?
        }
    };
    let catalog_names: Vec<String> = args.catalog.iter().map(|p| p.display().to_string()).collect();
    // The reference first, in a quiet process: measured after the runtime, it would overlap
    // with the runtime's actors being freed in the background.
    let bare = rt.block_on(bare_actor_bytes(args.governors.min(100_000)))?;
    let prometheus = if args.metrics { Some(crate::prometheus::install()?) } else { None };
    let report = rt.block_on(drive(args, catalog, &plan))?;
    // Rendered once, after the measured run: the series a scrape would have found.
    let metrics_series = prometheus
        .map(|p| p.render().lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count());
    let peak_rss_mib = peak_rss_kib().map_or(0.0, |k| k as f64 / 1024.0);
    let store = match (&args.data_dir, args.buffered) {
        (None, _) => "memory",
        (Some(_), false) => "durable",
        (Some(_), true) => "buffered",
    };
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "bench": "lifecycle",
                "store": store,
                "catalog": catalog_names,
                "plan": plan,
                "governors": args.governors,
                "clients": args.clients,
                "tenants": args.tenants,
                "workers": workers,
                "cores": cores,
                "spawn_per_s": report.spawn_per_s.round(),
                "transitions_per_s": report.transitions_per_s.round(),
                "cpu_ns_per_transition": report.cpu_ns_per_transition.map(f64::round),
                "p50_us": report.p50_us,
                "p99_us": report.p99_us,
                "bytes_per_governor": report.bytes_per_governor,
                "bytes_per_passivated_governor": report.bytes_per_passivated,
                "bare_ractor_actor_bytes": bare,
                "receipts": report.receipts,
                "peak_rss_mib": (peak_rss_mib * 10.0).round() / 10.0,
                "metrics_series": metrics_series,
            })
        );
    } else {
        say!(
            "lifecycle: {} governors, {} clients, {} tenants, {workers} workers on {cores} cores, {store} store, {}",
            args.governors,
            args.clients,
            args.tenants,
            if catalog_names.is_empty() {
                format!("no catalog (plan {plan})")
            } else {
                format!("catalog {} (plan {plan})", catalog_names.join(" "))
            }
        );
        say!("  spawn            {:>12.0} governors/s", report.spawn_per_s);
        say!("  transitions      {:>12.0} /s", report.transitions_per_s);
        if let Some(ns) = report.cpu_ns_per_transition {
            say!("  CPU              {ns:>12.0} ns per transition (all threads)");
        }
        say!("  call latency     p50 {:.1} µs, p99 {:.1} µs", report.p50_us, report.p99_us);
        say!(
            "  resident         {:>12} bytes per governor (bare ractor actor: {bare})",
            report.bytes_per_governor
        );
        say!("  passivated       {:>12} bytes per governor", report.bytes_per_passivated);
        say!("  receipts         {:>12} (chain verified)", report.receipts);
        say!("  peak RSS         {peak_rss_mib:>12.1} MiB");
        match metrics_series {
            Some(n) => say!("  metrics          {n:>12} series rendered (Prometheus recorder)"),
            None => say!("  metrics          {:>12}", "no recorder"),
        }
    }
    Ok(())
}

struct Report {
    spawn_per_s: f64,
    transitions_per_s: f64,
    /// The process's CPU time (user and system, all threads) over the transitions, per
    /// transition: less sensitive than throughput to other processes on the machine.
    cpu_ns_per_transition: Option<f64>,
    p50_us: f64,
    p99_us: f64,
    bytes_per_governor: i64,
    bytes_per_passivated: i64,
    receipts: u64,
}

fn id<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("invalid id {s:?}"))
}

async fn drive(
    args: &LifecycleArgs,
    catalog: Option<govern_plans::Catalog>,
    plan: &str,
) -> Result<Report, String> {
    let mut builder = Runtime::builder()
        .epoch(Timestamp(1_767_225_600_000))
        .idle_after(
            args.idle_after_ms.map_or(Duration::from_secs(24 * 3600), Duration::from_millis),
        )
        .reply_timeout(Duration::from_secs(60));
    if let Some(catalog) = catalog {
        builder = builder.catalog(catalog);
    }
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir).group_commit(govern_runtime::ledger::CommitOptions {
            batch_delay: Duration::from_micros(args.batch_delay_us),
            ..govern_runtime::ledger::CommitOptions::default()
        });
        if args.buffered {
            builder = builder.durability(govern_runtime::ledger::Durability::Buffered);
        }
    }
    let runtime = builder.start().await.map_err(|e| e.to_string())?;
    let h = runtime.handle();
    if h.head().next_seq != 0 {
        let _ = runtime.shutdown().await;
        return Err("the data directory already holds a ledger".into());
    }
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    let tenants: Vec<TenantId> =
        (0..args.tenants).map(|t| id(&format!("tenant-{t:04}"))).collect::<Result<_, _>>()?;
    for t in &tenants {
        h.provision_tenant(t, quota, "benchmark").await.map_err(|e| e.to_string())?;
    }
    let resources: Vec<ResourceId> =
        (0..args.governors).map(|g| id(&format!("sub-{g:08}"))).collect::<Result<_, _>>()?;

    // Spawn: each governor answers a state query, which starts and replays it.
    let before_spawn = live_bytes();
    let started = Instant::now();
    run_clients(&h, &tenants, &resources, args.clients, |h, t, r| async move {
        h.subscription(&t, &r).snapshot().await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await?;
    let spawn_s = started.elapsed().as_secs_f64();
    let per_governor = (live_bytes() - before_spawn) / i64::try_from(args.governors).unwrap_or(1);

    // Transitions: 9 per governor, request/reply, latency per call.
    let cpu_before = process_cpu_ns();
    let started = Instant::now();
    let mut latencies = run_lifecycles(&h, &tenants, &resources, args.clients, plan).await?;
    let transitions_s = started.elapsed().as_secs_f64();
    let cpu_ns =
        process_cpu_ns().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let transitions = latencies.len();
    let expected = (2 * args.tenants + 9 * args.governors) as u64;
    let head = h.verify().map_err(|e| format!("chain does not verify: {e}"))?;
    if head.next_seq != expected {
        return Err(format!("ledger holds {} receipts, expected {expected}", head.next_seq));
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((transitions as f64 - 1.0) * p) as usize] as f64 / 1_000.0;

    // Passivate everything: what an addressable but idle governor costs (its ledger index
    // entry), without the receipts themselves.
    let store_before = i64::try_from(h.ledger_store_bytes()).unwrap_or(0);
    let _ = h.passivate_idle(Duration::ZERO).await;
    while h.live_governor_actors() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let store_after = i64::try_from(h.ledger_store_bytes()).unwrap_or(0);
    let _ = store_before;
    let passivated =
        (live_bytes() - before_spawn - store_after) / i64::try_from(args.governors).unwrap_or(1);
    runtime.shutdown().await.map_err(|e| e.to_string())?;
    Ok(Report {
        spawn_per_s: args.governors as f64 / spawn_s,
        transitions_per_s: transitions as f64 / transitions_s,
        cpu_ns_per_transition: cpu_ns.map(|ns| ns as f64 / transitions as f64),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        bytes_per_governor: per_governor,
        bytes_per_passivated: passivated,
        receipts: head.next_seq,
    })
}

/// Runs `f` once per governor, spread over `clients` tasks.
async fn run_clients<F, Fut>(
    h: &RuntimeHandle,
    tenants: &[TenantId],
    resources: &[ResourceId],
    clients: usize,
    f: F,
) -> Result<(), String>
where
    F: Fn(RuntimeHandle, TenantId, ResourceId) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (h, f) = (h.clone(), f.clone());
        let mine: Vec<(TenantId, ResourceId)> = (c..resources.len())
            .step_by(clients)
            .map(|g| (tenants[g % tenants.len()].clone(), resources[g].clone()))
            .collect();
        tasks.push(tokio::spawn(async move {
            for (t, r) in mine {
                f(h.clone(), t, r).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Drives every governor through its 9 transitions; returns each call's latency in ns.
async fn run_lifecycles(
    h: &RuntimeHandle,
    tenants: &[TenantId],
    resources: &[ResourceId],
    clients: usize,
    plan: &str,
) -> Result<Vec<u64>, String> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (h, plan) = (h.clone(), plan.to_owned());
        let mine: Vec<(TenantId, ResourceId)> = (c..resources.len())
            .step_by(clients)
            .map(|g| (tenants[g % tenants.len()].clone(), resources[g].clone()))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len() * 9);
            for (t, r) in mine {
                let s = h.subscription(&t, &r);
                macro_rules! timed {
                    ($call:expr) => {{
                        let t0 = Instant::now();
                        $call.await.map_err(|e| e.to_string())?;
                        lat.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    }};
                }
                timed!(s.start_trial(&plan, 14, "bench"));
                timed!(s.activate(None, "bench"));
                timed!(s.suspend("bench"));
                timed!(s.resume("bench"));
                timed!(s.pause("bench"));
                timed!(s.resume("bench"));
                timed!(s.request_cancellation("bench"));
                timed!(s.confirm_cancellation(None, "bench"));
                timed!(s.archive("bench"));
            }
            Ok::<Vec<u64>, String>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// Heap bytes of one bare ractor actor (unit state, unit messages), for comparison.
async fn bare_actor_bytes(n: usize) -> Result<i64, String> {
    struct Bare;
    impl ractor::Actor for Bare {
        type Msg = ();
        type State = ();
        type Arguments = ();
        async fn pre_start(
            &self,
            _: ractor::ActorRef<()>,
            (): (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Ok(())
        }
    }
    let before = live_bytes();
    let mut actors = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, j) = ractor::Actor::spawn(None, Bare, ()).await.map_err(|e| e.to_string())?;
        actors.push((a, j));
    }
    // The handles themselves are the benchmark's, not the actors'.
    let handles = i64::try_from(
        actors.capacity()
            * std::mem::size_of::<(ractor::ActorRef<()>, tokio::task::JoinHandle<()>)>(),
    )
    .unwrap_or(0);
    let per = (live_bytes() - before - handles) / i64::try_from(n).unwrap_or(1);
    for (a, j) in actors {
        a.stop(None);
        let _ = j.await;
    }
    Ok(per)
}

/// The process's CPU time so far (user + system, every thread, including those that have
/// ended), in ns: `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`. Not /proc's `utime` and
/// `stime`, counted in ticks of 10 ms: a 20 000-governor in-memory round takes about 50 of
/// them, a 5 000-governor durable one about 22, so one tick was a 2 to 5 % step in the very
/// figure issue 16's 5 % is judged by.
#[cfg(target_os = "linux")]
fn process_cpu_ns() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u64::try_from(t.tv_nsec).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Not measured elsewhere than on Linux.
#[cfg(not(target_os = "linux"))]
fn process_cpu_ns() -> Option<u64> {
    None
}

/// Peak resident set size from /proc (Linux), in KiB.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
