//! Figures, not checks of correctness: durable receipts/s through the runtime
//! (docs/benchmarks.md). Each client has a tenant and an active subscription of its own and
//! sends pause/resume pairs, waiting for each acknowledgement. The cases:
//!
//! - `standalone_64_clients`: one `PostgresStore` (issue 14's first figure);
//! - `one_node_*`, `three_nodes_*`: nodes ([`Node`]) of 16 shards (`GOVERN_PG_LOAD_SHARDS`
//!   for another count) on one PostgreSQL, in this one process; each client is routed to the
//!   node owning its tenant's shard and goes through [`NodeHandle::runtime_for`] for every
//!   command, as the HTTP edge does;
//! - `segment_store_*`: the same workload on the segment store, for comparison.
//!
//! Every case asserts that every command was acknowledged, that the ledgers' durable counts
//! grew by exactly that many receipts, and that every chain (each shard's) verifies. On
//! PostgreSQL it also prints the group commits (rows per transaction, from the rows' `xmin`)
//! and the server's WAL syncs; on Linux, where the machine's CPU went (this process, the
//! PostgreSQL server, the rest).
//!
//! Slow: runs only with `GOVERN_PG_LOAD=1`, best in a release build; the cases run one at a
//! time whatever the test threads (they share a lock):
//! `GOVERN_PG_LOAD=1 cargo test --release -p govern-postgres --test load -- --nocapture`
//! (or name one case, e.g. `one_node_1024_clients`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_postgres::testing::Cluster;
use govern_postgres::{Node, NodeConfig, NodeHandle, PostgresStore, cluster};
use govern_runtime::{Runtime, RuntimeHandle};

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);
/// Pause/resume pairs each client of the standalone case sends (its first figure's).
const STANDALONE_ROUNDS: usize = 2_000;
/// Receipts each node and segment-store case writes, whatever its clients.
const RECEIPTS: usize = 512_000;
/// Keeper rounds the three nodes may take to share the shards (each moves at most 4 a round).
const BALANCE_ROUNDS_MAX: usize = 16;

/// Shards of the database in the node cases: the default, unless `GOVERN_PG_LOAD_SHARDS`
/// says otherwise (to see what the shard count costs).
fn shard_count() -> u32 {
    std::env::var("GOVERN_PG_LOAD_SHARDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cluster::limits::SHARDS_DEFAULT)
}

/// One case at a time: figures taken side by side would say nothing.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `case` alone, on a runtime of two workers (the machine's cores), if
/// `GOVERN_PG_LOAD=1`.
fn run<F: Future<Output = ()>>(case: impl FnOnce() -> F) {
    if std::env::var("GOVERN_PG_LOAD").as_deref() != Ok("1") {
        return;
    }
    let _alone = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(case());
}

#[test]
fn standalone_64_clients() {
    run(|| async {
        let Some(pg) = Cluster::start_or_skip("pg_load") else { return };
        let url = pg.create_database("load").expect("a database");
        let store = PostgresStore::open(&url).expect("open");
        let rt = Runtime::builder().epoch(T0).store(Box::new(store)).start().await.expect("start");
        let h = rt.handle();
        let shards = BTreeMap::from([(0, h.clone())]);
        let routes = (0..64).map(|i| (tenant(i), Route::Runtime(h.clone()))).collect();
        let figure = drive(Some(&pg), routes, STANDALONE_ROUNDS, &shards).await;
        figure.print("postgres, standalone store");
        print_groups(&pg, "load");
        rt.shutdown().await.expect("shutdown");
    });
}

#[test]
fn one_node_64_clients() {
    run(|| nodes(1, 64));
}

#[test]
fn one_node_1024_clients() {
    run(|| nodes(1, 1_024));
}

#[test]
fn three_nodes_64_clients() {
    run(|| nodes(3, 64));
}

#[test]
fn three_nodes_1024_clients() {
    run(|| nodes(3, 1_024));
}

#[test]
fn segment_store_64_clients() {
    run(|| segment_store(64));
}

#[test]
fn segment_store_1024_clients() {
    run(|| segment_store(1_024));
}

/// `count` nodes of [`shard_count`] shards in this process, sharing them; `clients` clients.
async fn nodes(count: usize, clients: usize) {
    let shards = shard_count();
    let Some(pg) = Cluster::start_or_skip("pg_load_nodes") else { return };
    let url = pg.create_database("load").expect("a database");
    let mut nodes = Vec::new();
    for i in 0..count {
        let config = NodeConfig::new(&url, format!("n{i}"), "")
            .shards(shards)
            // Long leases: keeper rounds are driven here, never by a timer during the run.
            .lease_ttl(Duration::from_secs(600))
            .runtime(|_| Runtime::builder().epoch(T0));
        nodes.push(Node::start(config).await.expect("a node"));
    }
    let handles: Vec<NodeHandle> = nodes.iter().map(Node::handle).collect();
    let share = usize::try_from(shards).expect("shards").div_ceil(count);
    for _ in 0..BALANCE_ROUNDS_MAX {
        if handles.iter().map(|h| h.held().len()).sum::<usize>() == shards as usize {
            break;
        }
        for h in &handles {
            h.keep().await;
        }
    }
    let held: Vec<usize> = handles.iter().map(|h| h.held().len()).collect();
    assert_eq!(held.iter().sum::<usize>(), shards as usize, "every shard held: {held:?}");
    assert!(held.iter().all(|&n| n <= share), "shared: {held:?}");

    // Every shard's runtime, through a tenant of its own, to count and verify each chain.
    let mut chains = BTreeMap::new();
    for shard in 0..shards {
        let probe = (0..)
            .map(|i| format!("probe-{i}"))
            .find(|t| cluster::shard_of(t, shards) == shard)
            .map(|t| TenantId::new(&t).expect("id"))
            .expect("a tenant of the shard");
        let (_, _, rt) = owner(&handles, &probe).runtime_for(&probe).expect("held");
        chains.insert(shard, rt);
    }
    let routes = (0..clients)
        .map(|i| {
            let t = tenant(i);
            let node = owner(&handles, &t).clone();
            (t, Route::Node(node))
        })
        .collect();
    let figure = drive(Some(&pg), routes, RECEIPTS / 2 / clients, &chains).await;
    figure.print(&format!("postgres, {count} node(s) of {shards} shards {held:?}"));
    print_groups(&pg, "load");
    for node in nodes {
        node.shutdown().await;
    }
}

/// The node among `handles` that owns `tenant`'s shard.
fn owner<'a>(handles: &'a [NodeHandle], tenant: &TenantId) -> &'a NodeHandle {
    handles.iter().find(|h| h.runtime_for(tenant).is_ok()).expect("an owner")
}

/// The same workload on the segment store in a temporary directory.
async fn segment_store(clients: usize) {
    let dir = tempfile::tempdir().expect("a directory");
    let rt = Runtime::builder().epoch(T0).data_dir(dir.path()).start().await.expect("start");
    let h = rt.handle();
    let shards = BTreeMap::from([(0, h.clone())]);
    let routes = (0..clients).map(|i| (tenant(i), Route::Runtime(h.clone()))).collect();
    let figure = drive(None, routes, RECEIPTS / 2 / clients, &shards).await;
    figure.print("segment store");
    rt.shutdown().await.expect("shutdown");
}

fn tenant(i: usize) -> TenantId {
    TenantId::new(&format!("t{i}")).expect("id")
}

/// How a client reaches its tenant's runtime.
#[derive(Clone)]
enum Route {
    /// Straight to a runtime.
    Runtime(RuntimeHandle),
    /// Through the node that owns the tenant's shard, asked again for every command.
    Node(NodeHandle),
}

impl Route {
    fn runtime(&self, tenant: &TenantId) -> RuntimeHandle {
        match self {
            Self::Runtime(h) => h.clone(),
            Self::Node(n) => n.runtime_for(tenant).expect("the owner").2,
        }
    }
}

/// A run's outcome.
struct Figure {
    clients: usize,
    receipts: u64,
    elapsed: Duration,
    cpu: Option<Cpu>,
}

impl Figure {
    #[allow(clippy::print_stderr, reason = "the figure is for people")]
    fn print(&self, label: &str) {
        let secs = self.elapsed.as_secs_f64();
        let cpu = self.cpu.as_ref().map_or_else(String::new, |c| {
            let pg = c.pg.unwrap_or(0.0);
            let server =
                c.pg.map_or_else(String::new, |p| format!(", PostgreSQL {:.0} %", p * 100.0));
            format!(
                "; machine CPU busy {:.0} % of {} cores (this process {:.0} %{server}, the rest \
                 {:.0} %)",
                c.busy * 100.0,
                c.cores,
                c.own * 100.0,
                (c.busy - c.own - pg).max(0.0) * 100.0,
            )
        });
        eprintln!(
            "{label}: {} durable receipts with {} clients in {secs:.2} s: {:.0} receipts/s{cpu}",
            self.receipts,
            self.clients,
            self.receipts as f64 / secs
        );
    }
}

/// Sets every client's tenant and subscription up, then runs `rounds` pause/resume pairs per
/// client, all at once; asserts every command acknowledged, the durable counts of `shards`
/// grown by exactly as many receipts, and every chain verified.
#[allow(clippy::disallowed_methods, reason = "wall-clock throughput for people")]
async fn drive(
    pg: Option<&Cluster>,
    routes: Vec<(TenantId, Route)>,
    rounds: usize,
    shards: &BTreeMap<u32, RuntimeHandle>,
) -> Figure {
    let clients = routes.len();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    let sub = ResourceId::new("sub").expect("id");
    let setups: Vec<_> = routes
        .iter()
        .cloned()
        .map(|(tenant, route)| {
            let sub = sub.clone();
            tokio::spawn(async move {
                route.runtime(&tenant).provision_tenant(&tenant, quota, "load").await?;
                let s = route.runtime(&tenant).subscription(&tenant, &sub);
                s.start_trial("pro", 14, "load").await?;
                route.runtime(&tenant).subscription(&tenant, &sub).activate(None, "load").await
            })
        })
        .collect();
    for setup in setups {
        setup.await.expect("a client").expect("set up");
    }
    let durable = || shards.values().map(|h| h.ledger_status().durable).sum::<u64>();
    let before = durable();
    let cpu_before = CpuSample::now(pg);
    let start = Instant::now();
    let tasks: Vec<_> = routes
        .into_iter()
        .map(|(tenant, route)| {
            let sub = sub.clone();
            tokio::spawn(async move {
                let mut acks = 0u64;
                for _ in 0..rounds {
                    route.runtime(&tenant).subscription(&tenant, &sub).pause("load").await?;
                    route.runtime(&tenant).subscription(&tenant, &sub).resume("load").await?;
                    acks += 2;
                }
                Ok::<_, govern_runtime::CommandError>(acks)
            })
        })
        .collect();
    let mut acks = 0;
    for task in tasks {
        acks += task.await.expect("a client").expect("every command acknowledged");
    }
    let elapsed = start.elapsed();
    let cpu = cpu_before.and_then(|b| b.until_now());
    let receipts = durable() - before;
    assert_eq!(acks, (clients * rounds * 2) as u64, "every command acknowledged");
    assert_eq!(receipts, acks, "the durable counts grew by the receipts acknowledged");
    for (shard, h) in shards {
        h.verify().unwrap_or_else(|e| panic!("shard {shard}'s chain: {e}"));
    }
    Figure { clients, receipts, elapsed, cpu }
}

/// Group commits per shard: transactions (distinct `xmin`) and rows per transaction,
/// over every row (the set-up's few included).
#[allow(clippy::print_stderr, reason = "the figure is for people")]
fn print_groups(pg: &Cluster, db: &str) {
    let sql = "SELECT count(*) || ' commits, ' || round(avg(n), 1) || ' rows each (max ' \
               || max(n) || '), per shard ' || (SELECT string_agg(s, ' ' ORDER BY shard) FROM \
               (SELECT shard, shard || ':' || round(avg(n), 0) AS s FROM (SELECT shard, \
               count(*) AS n FROM govern_receipts GROUP BY shard, xmin::text) a GROUP BY shard) \
               b) FROM (SELECT count(*) AS n FROM govern_receipts GROUP BY shard, xmin::text) g";
    match pg.psql(db, sql) {
        Ok(groups) => eprintln!("  group commits: {groups}"),
        Err(e) => eprintln!("  group commits: not read ({e})"),
    }
    // The server's own counts since it started (flushed to the statistics about once a
    // second: approximate).
    let wal = "SELECT 'WAL: ' || wal_sync || ' syncs, ' || wal_write || ' writes, ' || \
               pg_size_pretty(wal_bytes) || '; ' || (SELECT xact_commit FROM pg_stat_database \
               WHERE datname = current_database()) || ' transactions committed' FROM pg_stat_wal";
    match pg.psql(db, wal) {
        Ok(wal) => eprintln!("  {wal}"),
        Err(e) => eprintln!("  WAL: not read ({e})"),
    }
}

/// Where the machine's CPU went during a run, from `/proc` (Linux only).
struct Cpu {
    /// The machine's busy share (all cores).
    busy: f64,
    /// This process's share (all cores).
    own: f64,
    /// The PostgreSQL server's share (its postmaster and children), if known.
    pg: Option<f64>,
    cores: usize,
}

/// Jiffies: the machine's busy and total, this process's, the PostgreSQL server's.
struct CpuSample {
    busy: u64,
    total: u64,
    own: u64,
    pg: Option<u64>,
    postmaster: Option<u32>,
}

/// A process's `/proc/PID/stat` fields after its command: (ppid, utime + stime, cutime +
/// cstime).
fn proc_times(pid: &str) -> Option<(u32, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let n = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    let ppid = fields.get(1)?.parse().ok()?;
    Some((ppid, n(11)? + n(12)?, n(13)? + n(14)?))
}

/// The server's jiffies: the postmaster's (with its reaped children's) and its live
/// children's.
fn pg_jiffies(postmaster: u32) -> Option<u64> {
    let (_, own, reaped) = proc_times(&postmaster.to_string())?;
    let children: u64 = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(proc_times))
        .filter(|&(ppid, _, _)| ppid == postmaster)
        .map(|(_, t, _)| t)
        .sum();
    Some(own + reaped + children)
}

impl CpuSample {
    /// A sample; `pg` is the cluster whose server's share is wanted.
    fn now(pg: Option<&Cluster>) -> Option<Self> {
        let postmaster = pg.and_then(|pg| {
            let pid = std::fs::read_to_string(pg.dir().join("data/postmaster.pid")).ok()?;
            pid.lines().next()?.trim().parse().ok()
        });
        Self::sample(postmaster)
    }

    fn sample(postmaster: Option<u32>) -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal...
        let total: u64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4)?;
        let (_, own, _) = proc_times("self")?;
        let pg = postmaster.and_then(pg_jiffies);
        Some(Self { busy: total - idle, total, own, pg, postmaster })
    }

    fn until_now(self) -> Option<Cpu> {
        let now = Self::sample(self.postmaster)?;
        let total = now.total.checked_sub(self.total).filter(|&t| t > 0)? as f64;
        let share = |a: u64, b: u64| a.saturating_sub(b) as f64 / total;
        Some(Cpu {
            busy: share(now.busy, self.busy),
            own: share(now.own, self.own),
            pg: now.pg.zip(self.pg).map(|(a, b)| share(a, b)),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
        })
    }
}
