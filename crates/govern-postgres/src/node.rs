//! A govern node (docs/scaling.md): one process among several sharing one PostgreSQL. The
//! database is divided into a fixed number of shards ([`cluster::shard_of`] places a tenant);
//! each shard is its own hash chain, written by one [`Runtime`] of the node that holds the
//! shard's lease. A renewer task renews the held leases every [`NodeConfig::renew_every`]
//! on a connection of its own; a lease not renewed has moved on (the node was paused or cut
//! off past its expiry), and its shard's runtime is dropped (its last commit would be refused:
//! fencing). The keeper task, as often:
//!
//! 1. says the node is alive (`govern_nodes`);
//! 2. restarts a shard whose ledger a store failure poisoned (PostgreSQL restarted, say), by
//!    taking its own lease again (a new epoch) and replaying the shard's receipts;
//! 3. balances: with `L` live nodes, each aims at `ceil(shards / L)` shards; it takes free or
//!    expired leases up to that, and hands excess ones over: no new commands, the shard's
//!    runtime shut down (its last commit), then the lease released for another to take.
//!
//! Leases are owned by the node's instance (`NAME#RANDOM`), so two processes started under
//! one name never take each other's leases.
//!
//! A command for a tenant whose shard the node does not hold is refused
//! [`Refusal::WrongNode`], naming the owner. A shard whose lease the node could not renew
//! for a whole lease time refuses too, at once, by the node's own monotonic clock, before the
//! renewer notices: a node resumed after a SIGSTOP never answers from state it no longer owns
//! (a whole machine's suspend is not counted by that clock: docs/scaling.md).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use govern_governors::TenantId;
use govern_ledger::{CheckpointSigner, StoreError};
use govern_runtime::{Outcome, RawCommand, Refusal, Runtime, RuntimeBuilder, RuntimeHandle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::{self, Lease, NodeRow};
use crate::conn::Conn;
use crate::{PostgresStore, store};

/// Bounds and defaults of a node.
pub mod limits {
    use std::time::Duration;

    /// How long a lease lasts after its last renewal, by default.
    pub const LEASE_TTL_DEFAULT: Duration = Duration::from_secs(10);
    /// The shortest lease.
    pub const LEASE_TTL_MIN: Duration = Duration::from_millis(500);
    /// Shards a node takes or hands over in one keeper round (the rest at the next ones).
    pub const SHARD_MOVES_PER_ROUND: usize = 4;
    /// The shortest lock and statement timeout of the keeper's connections.
    pub const LOCK_WAIT_MIN: Duration = Duration::from_millis(100);
    /// How long a dropped shard's runtime may take to stop.
    pub const DROPPED_RUNTIME_STOP: Duration = Duration::from_secs(30);
}

/// Makes the runtime builder of a shard (catalog, policy, limits...); the node adds the
/// shard's store.
pub type BuilderFn = Arc<dyn Fn(u32) -> RuntimeBuilder + Send + Sync>;

/// How a node runs.
#[derive(Clone)]
pub struct NodeConfig {
    /// The database (libpq string or `postgres://` URL).
    pub url: String,
    /// The node's name: unique among the nodes (a node restarted under its name takes its
    /// own leases back at once, fencing its earlier self).
    pub node: String,
    /// The address other nodes send its tenants' callers to (`host:port`); may be empty.
    pub address: String,
    /// How many shards the database is divided into (fixed at the first node's start).
    pub shards: u32,
    /// How long a lease lasts after a renewal: a dead node's shards are taken over within
    /// about this long.
    pub lease_ttl: Duration,
    /// How often the keeper renews and balances (by default a third of the lease time).
    pub renew_every: Duration,
    /// Each shard's runtime builder.
    pub runtime: BuilderFn,
    /// The key each shard's runtime signs its checkpoints with, into `govern_checkpoints`
    /// (`None`: no checkpoints). Shard `n`'s signed notes name the origin
    /// `{origin}/shard-{n}` ([`shard_signer`]): each shard is a log of its own.
    pub checkpoints: Option<CheckpointSigner>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("url", &crate::describe(&self.url))
            .field("node", &self.node)
            .field("address", &self.address)
            .field("shards", &self.shards)
            .field("lease_ttl", &self.lease_ttl)
            .field("renew_every", &self.renew_every)
            .field("checkpoints", &self.checkpoints)
            .finish_non_exhaustive()
    }
}

impl NodeConfig {
    /// A node `node` serving on `address`, on the database `url`, with the default shards
    /// and lease time, and default runtimes.
    #[must_use]
    pub fn new(
        url: impl Into<String>,
        node: impl Into<String>,
        address: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            node: node.into(),
            address: address.into(),
            shards: cluster::limits::SHARDS_DEFAULT,
            lease_ttl: limits::LEASE_TTL_DEFAULT,
            renew_every: limits::LEASE_TTL_DEFAULT / 3,
            runtime: Arc::new(|_| Runtime::builder()),
            checkpoints: None,
        }
    }

    /// Each shard's runtime signs checkpoints with `signer` into `govern_checkpoints`.
    #[must_use]
    pub fn checkpoint_signer(mut self, signer: CheckpointSigner) -> Self {
        self.checkpoints = Some(signer);
        self
    }

    /// The lease time (and a renewal every third of it).
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(limits::LEASE_TTL_MIN);
        self.renew_every = self.lease_ttl / 3;
        self
    }

    /// The number of shards.
    #[must_use]
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards;
        self
    }

    /// Each shard's runtime builder.
    #[must_use]
    pub fn runtime(mut self, f: impl Fn(u32) -> RuntimeBuilder + Send + Sync + 'static) -> Self {
        self.runtime = Arc::new(f);
        self
    }
}

/// A node failed to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is not usable.
    #[error("bad node configuration: {0}")]
    Config(String),
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Who owns a tenant's shard, as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The tenant's shard.
    pub shard: u32,
    /// The node holding its lease; `None` while none does.
    pub node: Option<String>,
    /// That node's advertised address.
    pub address: Option<String>,
    /// The lease's epoch.
    pub epoch: i64,
    /// Whether it is this node, with the shard's runtime running.
    pub here: bool,
}

/// A shard this node runs.
struct Held {
    epoch: i64,
    runtime: Runtime,
    handle: RuntimeHandle,
    /// Past this instant (the last renewal's start plus the lease time) the lease may have
    /// moved on: the shard refuses.
    valid_until: Instant,
}

/// What the node knows of the others, refreshed every keeper round.
#[derive(Default)]
struct View {
    leases: Vec<Lease>,
    addresses: BTreeMap<String, String>,
    live: Vec<NodeRow>,
}

struct Inner {
    config: NodeConfig,
    /// The owner name of this process's leases and heartbeat: the node's name, `#`, and a
    /// random id drawn at start, so that two processes started under one name never take
    /// each other's leases for their own.
    instance: String,
    /// The keeper's connection (heartbeat, takes, releases, the view).
    conn: Arc<Conn>,
    /// The renewals' connection, which nothing else waits on.
    renew_conn: Arc<Conn>,
    held: RwLock<BTreeMap<u32, Held>>,
    view: RwLock<View>,
    /// Serialises keeper rounds with shutdown.
    round: tokio::sync::Mutex<()>,
    counters: Mutex<NodeCounters>,
}

/// What a node has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounters {
    /// Shards taken (a free, expired or own lease).
    pub acquired: u64,
    /// Shards handed over to balance.
    pub released: u64,
    /// Shards lost: a lease that moved on.
    pub lost: u64,
    /// Shards restarted after their ledger failed.
    pub restarted: u64,
}

/// A running node. [`Node::handle`] routes commands; [`Node::shutdown`] hands every shard
/// over (last commits, leases released).
pub struct Node {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    keeper: Option<JoinHandle<()>>,
    renewer: Option<JoinHandle<()>>,
}

/// A node dropped without [`Node::shutdown`] stops renewing and balancing: its leases
/// expire and other nodes take its shards (as if it had died).
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A cheap, cloneable handle to a [`Node`].
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle").field("node", &self.inner.config.node).finish()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("node", &self.inner.config.node).finish()
    }
}

/// The node's monotonic clock, which lease validity is measured on.
#[allow(
    clippy::disallowed_methods,
    reason = "a lease's local deadline must follow real time, including time the process spent \
              paused (SIGSTOP): a virtual clock would let a resumed node think its lease valid"
)]
fn monotonic_now() -> Instant {
    Instant::now()
}

/// Runs blocking database work off the async workers.
async fn blocking<T: Send + 'static>(
    conn: &Arc<Conn>,
    f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || conn.call(move |session| f(session.client()?)))
        .await
        .map_err(|e| StoreError::Io(format!("database task failed: {e}")))?
}

impl Node {
    /// Starts a node: migrates the schema, divides the database into `config.shards` shards
    /// if it is not yet, then takes its share of the leases (the first keeper round) before
    /// returning, and keeps renewing and balancing in a task of its own.
    ///
    /// # Errors
    /// [`NodeError::Config`] for an empty or overlong name or a bad shard count;
    /// [`NodeError::Store`] when the database cannot be reached or holds another number of
    /// shards.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        if config.node.is_empty() || config.node.len() > cluster::limits::NODE_NAME_MAX {
            return Err(NodeError::Config(format!(
                "a node's name has 1 to {} bytes",
                cluster::limits::NODE_NAME_MAX
            )));
        }
        if config.node.contains('#') {
            return Err(NodeError::Config("a node's name has no `#`".into()));
        }
        if config.node == cluster::STANDALONE {
            return Err(NodeError::Config(format!("`{}` is reserved", cluster::STANDALONE)));
        }
        // The keeper never waits long on a lock or a statement: a round must end in time
        // for the next.
        let mut keeper_config = store::config(&config.url)?;
        store::with_settings(
            &mut keeper_config,
            &[
                ("lock_timeout", (config.renew_every / 2).max(limits::LOCK_WAIT_MIN)),
                ("statement_timeout", config.renew_every.max(limits::LOCK_WAIT_MIN)),
            ],
        );
        let conn = Arc::new(Conn::spawn(keeper_config.clone(), "govern-pg-leases")?);
        let renew_conn = Arc::new(Conn::spawn(keeper_config, "govern-pg-renewals")?);
        let instance = format!("{}#{}", config.node, random_id()?);
        let shards = config.shards;
        blocking(&conn, move |client| {
            crate::schema::migrate(client)?;
            cluster::init(client, shards)
        })
        .await?;
        let inner = Arc::new(Inner {
            config,
            instance,
            conn,
            renew_conn,
            held: RwLock::new(BTreeMap::new()),
            view: RwLock::new(View::default()),
            round: tokio::sync::Mutex::new(()),
            counters: Mutex::new(NodeCounters::default()),
        });
        inner.round().await;
        let (stop, stopped) = watch::channel(false);
        let every = inner.config.renew_every;
        let keeper_inner = Arc::clone(&inner);
        let keeper = every_until(every, stopped.clone(), move || {
            let inner = Arc::clone(&keeper_inner);
            async move { inner.round().await }
        });
        let renewer_inner = Arc::clone(&inner);
        let renewer = every_until(every, stopped, move || {
            let inner = Arc::clone(&renewer_inner);
            async move { inner.renew().await }
        });
        Ok(Self { inner, stop, keeper: Some(keeper), renewer: Some(renewer) })
    }

    /// A handle for routing commands.
    #[must_use]
    pub fn handle(&self) -> NodeHandle {
        NodeHandle { inner: Arc::clone(&self.inner) }
    }

    /// Stops the keeper and hands every shard over: each runtime shut down (its last
    /// commit), then its lease released, so another node takes it at once.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in [self.keeper.take(), self.renewer.take()].into_iter().flatten() {
            let _ = task.await;
        }
        let _round = self.inner.round.lock().await;
        let shards: Vec<u32> = self.inner.held_read().keys().copied().collect();
        for shard in shards {
            self.inner.hand_over(shard).await;
        }
        let node = self.inner.instance.clone();
        if let Err(e) = blocking(&self.inner.conn, move |c| cluster::leave(c, &node)).await {
            tracing::warn!(error = %e, "saying the node left failed: its heartbeat goes stale");
        }
    }
}

impl Inner {
    fn held_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Held>> {
        self.held.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn held_write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, Held>> {
        self.held.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut NodeCounters)) {
        f(&mut self.counters.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.config.lease_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// One keeper round: heartbeat, restart failed shards, refresh the view, balance. (The
    /// renewals run in a task of their own, so that a long round never delays them.)
    async fn round(self: &Arc<Self>) {
        let _round = self.round.lock().await;
        let node = self.instance.clone();
        let address = self.config.address.clone();
        let ttl_ms = self.ttl_ms();
        if let Err(e) = blocking(&self.conn, move |c| cluster::heartbeat(c, &node, &address)).await
        {
            tracing::warn!(error = %e, "node heartbeat failed");
        }
        self.restart_failed(ttl_ms).await;
        let live_within = ttl_ms;
        let view = blocking(&self.conn, move |c| {
            Ok((cluster::leases(c)?, cluster::nodes(c)?, cluster::live_nodes(c, live_within)?))
        })
        .await;
        let (leases, nodes, live) = match view {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "reading the leases failed");
                return;
            }
        };
        {
            let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
            view.addresses = nodes.into_iter().map(|n| (n.node, n.address)).collect();
            view.leases = leases;
            view.live = live;
        }
        self.balance(ttl_ms).await;
    }

    /// Renews every held lease; drops the shards whose lease moved on, and those not renewed
    /// for a whole lease time.
    async fn renew(self: &Arc<Self>) {
        let started = monotonic_now();
        let ttl_ms = self.ttl_ms();
        let held: Vec<(u32, i64)> = self.held_read().iter().map(|(&s, h)| (s, h.epoch)).collect();
        if held.is_empty() {
            return;
        }
        let node = self.instance.clone();
        let asked = held.clone();
        match blocking(&self.renew_conn, move |c| cluster::renew(c, &node, &asked, ttl_ms)).await {
            Ok(renewed) => {
                let valid_until = started + self.config.lease_ttl;
                let mut lost = Vec::new();
                {
                    let mut map = self.held_write();
                    for (shard, epoch) in held {
                        // Only the lease asked about: a shard restarted meanwhile (a new
                        // epoch) is not this answer's.
                        let current = map.get(&shard).is_some_and(|h| h.epoch == epoch);
                        if !current {
                            continue;
                        }
                        if renewed.contains(&shard) {
                            if let Some(h) = map.get_mut(&shard) {
                                h.valid_until = valid_until;
                            }
                        } else if let Some(h) = map.remove(&shard) {
                            lost.push((shard, h));
                        }
                    }
                }
                self.step_down(lost, "lease lost (it moved on): stepping down");
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewing leases failed");
                let now = monotonic_now();
                let expired: Vec<(u32, Held)> = {
                    let mut map = self.held_write();
                    let gone: Vec<u32> =
                        map.iter().filter(|(_, h)| h.valid_until <= now).map(|(&s, _)| s).collect();
                    gone.into_iter().filter_map(|s| map.remove(&s).map(|h| (s, h))).collect()
                };
                self.step_down(expired, "lease not renewed within its time: stepping down");
            }
        }
    }

    /// Drops the runtimes of shards whose lease is lost (already out of the routing table).
    fn step_down(&self, lost: Vec<(u32, Held)>, why: &'static str) {
        for (shard, h) in lost {
            tracing::warn!(shard, epoch = h.epoch, "{why}");
            self.count(|c| c.lost += 1);
            drop_runtime(h.runtime);
        }
    }

    /// Restarts every held shard whose ledger is poisoned: a new epoch of its own lease, its
    /// receipts replayed.
    async fn restart_failed(self: &Arc<Self>, ttl_ms: u64) {
        let failed: Vec<u32> = self
            .held_read()
            .iter()
            .filter(|(_, h)| h.handle.ledger_status().poisoned)
            .map(|(&s, _)| s)
            .collect();
        let started = monotonic_now();
        for shard in failed {
            // Each restart replays the shard: past a round's time, the rest waits for the
            // next round (their requests are refused ledger_unavailable meanwhile).
            if started.elapsed() > self.config.renew_every {
                break;
            }
            let Some(h) = self.held_write().remove(&shard) else { continue };
            tracing::warn!(shard, epoch = h.epoch, "shard's ledger failed: restarting it");
            drop_runtime(h.runtime);
            self.count(|c| c.restarted += 1);
            self.try_take(shard, ttl_ms).await;
        }
    }

    /// Takes free or expired shards up to this node's share, and hands excess ones over.
    async fn balance(self: &Arc<Self>, ttl_ms: u64) {
        let shards = self.config.shards;
        let (free, live) = {
            let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
            let free: Vec<u32> = view
                .leases
                .iter()
                .filter(|l| !l.is_held() || l.owner == self.instance)
                .map(|l| l.shard)
                .collect();
            (free, view.live.len().max(1))
        };
        let live = u32::try_from(live).unwrap_or(u32::MAX);
        let target = usize::try_from(shards.div_ceil(live)).unwrap_or(usize::MAX);
        let held = self.held_read().len();
        if held < target {
            // Start from a place of this node's own, so nodes racing for free shards spread.
            let start = cluster::shard_of(&self.instance, shards);
            let mut candidates: Vec<u32> =
                free.into_iter().filter(|s| !self.held_read().contains_key(s)).collect();
            candidates.sort_by_key(|&s| (s + shards - start) % shards);
            let mut want = (target - held).min(limits::SHARD_MOVES_PER_ROUND);
            let started = monotonic_now();
            for shard in candidates {
                // Taking a shard replays its receipts: past a round's time, the rest waits
                // for the next round, so that the held leases are renewed in time.
                if want == 0 || started.elapsed() > self.config.renew_every {
                    break;
                }
                if self.try_take(shard, ttl_ms).await {
                    want -= 1;
                }
            }
        } else if held > target {
            let excess: Vec<u32> = self
                .held_read()
                .keys()
                .rev()
                .take((held - target).min(limits::SHARD_MOVES_PER_ROUND))
                .copied()
                .collect();
            for shard in excess {
                tracing::info!(shard, target, "handing a shard over to balance");
                self.hand_over(shard).await;
                self.count(|c| c.released += 1);
            }
        }
    }

    /// Takes `shard`'s lease if free, expired or this node's, and starts its runtime on the
    /// shard's chain. Whether the shard now runs here.
    async fn try_take(self: &Arc<Self>, shard: u32, ttl_ms: u64) -> bool {
        let node = self.instance.clone();
        let epoch =
            match blocking(&self.conn, move |c| cluster::acquire(c, shard, &node, ttl_ms)).await {
                Ok(Some(epoch)) => epoch,
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(shard, error = %e, "taking a lease failed");
                    return false;
                }
            };
        let url = self.config.url.clone();
        let store =
            tokio::task::spawn_blocking(move || PostgresStore::open_shard(&url, shard, epoch))
                .await
                .map_err(|e| StoreError::Io(e.to_string()))
                .and_then(|r| r);
        let started_runtime = match store.map_err(|e| e.to_string()).and_then(|store| {
            let builder = (self.config.runtime)(shard);
            let builder = match &self.config.checkpoints {
                Some(signer) => builder.checkpoints(
                    store.checkpointer(shard_signer(signer, shard)?).map_err(|e| e.to_string())?,
                ),
                None => builder,
            };
            Ok(builder.store(Box::new(store)))
        }) {
            Ok(builder) => builder.start().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        // Starting replayed the shard, which may have taken a while: the lease is renewed
        // before the shard serves (and given up if it moved on meanwhile).
        let started_runtime = match started_runtime {
            Ok(runtime) => {
                let node = self.instance.clone();
                let renewing = monotonic_now();
                let renewed = blocking(&self.renew_conn, move |c| {
                    cluster::renew(c, &node, &[(shard, epoch)], ttl_ms)
                })
                .await;
                match renewed {
                    Ok(r) if r == [shard] => Ok((runtime, renewing)),
                    Ok(_) => {
                        drop_runtime(runtime);
                        Err("the lease moved on while the shard was replayed".to_owned())
                    }
                    Err(e) => {
                        drop_runtime(runtime);
                        Err(format!("renewing the lease after the replay failed: {e}"))
                    }
                }
            }
            Err(e) => Err(e),
        };
        match started_runtime {
            Ok((runtime, renewed_at)) => {
                let handle = runtime.handle();
                let receipts = handle.ledger_status().receipts;
                self.held_write().insert(
                    shard,
                    Held {
                        epoch,
                        runtime,
                        handle,
                        valid_until: renewed_at + self.config.lease_ttl,
                    },
                );
                self.count(|c| c.acquired += 1);
                tracing::info!(shard, epoch, receipts, "shard taken: its chain replayed");
                true
            }
            Err(reason) => {
                tracing::warn!(shard, epoch, %reason, "starting a shard failed: releasing it");
                let node = self.instance.clone();
                let _ =
                    blocking(&self.conn, move |c| cluster::release(c, shard, &node, epoch)).await;
                false
            }
        }
    }

    /// Hands `shard` over: no new commands, its runtime shut down (the last commit), then
    /// its lease released.
    async fn hand_over(self: &Arc<Self>, shard: u32) {
        let Some(h) = self.held_write().remove(&shard) else { return };
        let epoch = h.epoch;
        match tokio::time::timeout(self.config.lease_ttl, h.runtime.shutdown()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(shard, error = %e, "the shard's last commit failed"),
            Err(_) => tracing::warn!(shard, "the shard's runtime did not stop within a lease time"),
        }
        let node = self.instance.clone();
        match blocking(&self.conn, move |c| cluster::release(c, shard, &node, epoch)).await {
            Ok(_) => tracing::info!(shard, epoch, "shard handed over"),
            Err(e) => tracing::warn!(shard, error = %e, "releasing a lease failed: it expires"),
        }
    }
}

/// The signer of shard `shard`'s checkpoints: `signer`'s key, its notes under the origin
/// `{origin}/shard-{shard}`, so that two shards' tree heads are never two heads of one log.
///
/// # Errors
/// The origin is too long ([`govern_ledger::checkpoint::note::check_origin`]).
pub fn shard_signer(signer: &CheckpointSigner, shard: u32) -> Result<CheckpointSigner, String> {
    let origin = format!("{}/shard-{shard}", signer.origin());
    signer.clone().with_origin(&origin).map_err(|e| format!("shard {shard}'s checkpoints: {e}"))
}

/// Stops, in the background, a runtime whose lease is gone or whose ledger failed: its
/// actors stop; its last commit, if it tries one, is refused by the database (a stale epoch)
/// or fails with the store. Bounded: a runtime that does not stop within
/// [`limits::DROPPED_RUNTIME_STOP`] is left to its dropped handles.
fn drop_runtime(runtime: Runtime) {
    tokio::spawn(async move {
        if tokio::time::timeout(limits::DROPPED_RUNTIME_STOP, runtime.shutdown()).await.is_err() {
            tracing::warn!("a dropped shard's runtime did not stop in time");
        }
    });
}

/// Runs `f` every `every` until `stopped` says so, in a task.
fn every_until<F, Fut>(every: Duration, mut stopped: watch::Receiver<bool>, f: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => f().await,
                _ = stopped.changed() => break,
            }
        }
    })
}

/// Eight random hex digits.
fn random_id() -> Result<String, NodeError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| NodeError::Config(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

impl NodeHandle {
    /// The node's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.config.node
    }

    /// This process's owner name in leases and heartbeats: `NAME#RANDOM`.
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The number of shards.
    #[must_use]
    pub fn shards(&self) -> u32 {
        self.inner.config.shards
    }

    /// The shard of `tenant`.
    #[must_use]
    pub fn shard_of(&self, tenant: &TenantId) -> u32 {
        cluster::shard_of(tenant.as_str(), self.inner.config.shards)
    }

    /// Who owns `tenant`'s shard, as this node knows it (its own shards exactly; the
    /// others as of its last keeper round).
    #[must_use]
    pub fn owner_of(&self, tenant: &TenantId) -> Owner {
        let shard = self.shard_of(tenant);
        if let Some(h) = self.inner.held_read().get(&shard)
            && h.valid_until > monotonic_now()
        {
            return Owner {
                shard,
                node: Some(self.inner.instance.clone()),
                address: Some(self.inner.config.address.clone()),
                epoch: h.epoch,
                here: true,
            };
        }
        let view = self.inner.view.read().unwrap_or_else(PoisonError::into_inner);
        let lease = view.leases.iter().find(|l| l.shard == shard);
        let node = lease
            .filter(|l| l.is_held() && l.owner != self.inner.instance)
            .map(|l| l.owner.clone());
        Owner {
            shard,
            address: node.as_ref().and_then(|n| view.addresses.get(n).cloned()),
            node,
            epoch: lease.map_or(0, |l| l.epoch),
            here: false,
        }
    }

    /// The runtime of `tenant`'s shard, if this node holds its lease now.
    ///
    /// # Errors
    /// [`Refusal::WrongNode`] naming the owner, as far as this node knows.
    pub fn runtime_for(&self, tenant: &TenantId) -> Result<(u32, i64, RuntimeHandle), Refusal> {
        let shard = self.shard_of(tenant);
        if let Some(h) = self.inner.held_read().get(&shard)
            && h.valid_until > monotonic_now()
        {
            return Ok((shard, h.epoch, h.handle.clone()));
        }
        let owner = self.owner_of(tenant);
        Err(Refusal::WrongNode { shard, owner: owner.node, address: owner.address })
    }

    /// Sends a command to its tenant's shard, if this node owns it.
    ///
    /// # Errors
    /// As [`RuntimeHandle::command`], and [`Refusal::WrongNode`].
    pub async fn command(&self, command: RawCommand) -> Outcome {
        let (_, _, runtime) = self.runtime_for(&command.tenant)?;
        runtime.command(command).await
    }

    /// The shards this node runs, with their epochs.
    #[must_use]
    pub fn held(&self) -> Vec<(u32, i64)> {
        self.inner.held_read().iter().map(|(&s, h)| (s, h.epoch)).collect()
    }

    /// Every shard's lease and the live nodes, as of the last keeper round.
    #[must_use]
    pub fn leases(&self) -> (Vec<Lease>, Vec<NodeRow>) {
        let view = self.inner.view.read().unwrap_or_else(PoisonError::into_inner);
        (view.leases.clone(), view.live.clone())
    }

    /// What the node has done since it started.
    #[must_use]
    pub fn counters(&self) -> NodeCounters {
        *self.inner.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renews and runs a keeper round now (restart, balance), as the node does every
    /// [`NodeConfig::renew_every`]: for tests and operators that want not to wait.
    pub async fn keep(&self) {
        self.inner.renew().await;
        self.inner.round().await;
    }
}
