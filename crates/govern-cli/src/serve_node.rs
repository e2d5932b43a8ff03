//! `govern serve --postgres URL --node NAME`: a node among several sharing one PostgreSQL
//! (docs/scaling.md). The node takes its share of the shards' leases, runs one runtime per
//! shard it holds, serves its tenants through the same HTTP API as `govern serve` on a data
//! directory, and redirects the other tenants' callers to their owner (govern-http's
//! `node_router`). On SIGTERM it stops accepting, drains, and hands every shard over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use govern_governors::TenantId;
use govern_http::node::{Routed, ShardRouter, Shards};
use govern_http::{AppState, KeyStore, Limits};
use govern_postgres::{Node, NodeConfig, NodeHandle};
use govern_runtime::Runtime;

use crate::serve::ServeArgs;

/// The node as its HTTP edge sees it.
struct Edge {
    node: NodeHandle,
    keys: Arc<KeyStore>,
    limits: Limits,
    /// Each held shard's router, built once per lease epoch.
    routers: RwLock<BTreeMap<u32, (i64, ShardRouter)>>,
    stopping: AtomicBool,
}

impl Shards for Edge {
    fn route(&self, tenant: &TenantId) -> Routed {
        match self.node.runtime_for(tenant) {
            Ok((shard, epoch, runtime)) => {
                // Every request reads; only a shard's first request of an epoch writes.
                if let Some((e, router)) =
                    self.routers.read().unwrap_or_else(PoisonError::into_inner).get(&shard)
                    && *e == epoch
                {
                    return Routed::Here(router.clone());
                }
                let state = AppState { runtime, keys: Arc::clone(&self.keys) };
                let router = govern_http::router_with(state, &self.limits);
                self.routers
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(shard, (epoch, router.clone()));
                Routed::Here(router)
            }
            Err(refusal) => {
                // A shard no longer held: its router (and the runtime it holds) goes.
                if let govern_runtime::Refusal::WrongNode { shard, .. } = &refusal
                    && self
                        .routers
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains_key(shard)
                {
                    self.routers.write().unwrap_or_else(PoisonError::into_inner).remove(shard);
                }
                Routed::Elsewhere(refusal)
            }
        }
    }

    fn ready(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed)
    }

    fn map(&self) -> serde_json::Value {
        let (leases, live) = self.node.leases();
        serde_json::json!({
            "node": self.node.name(),
            "instance": self.node.instance(),
            "shards": self.node.shards(),
            "held": self.node.held().iter().map(|&(shard, epoch)| serde_json::json!({ "shard": shard, "epoch": epoch })).collect::<Vec<_>>(),
            "leases": leases.iter().map(|l| serde_json::json!({
                "shard": l.shard,
                "owner": l.is_held().then_some(l.owner.as_str()),
                "epoch": l.epoch,
            })).collect::<Vec<_>>(),
            "live_nodes": live.iter().map(|n| serde_json::json!({ "node": n.node, "address": n.address })).collect::<Vec<_>>(),
        })
    }
}

/// Serves as node `name` on the database `url` until SIGTERM or Ctrl-C.
pub(crate) async fn serve(args: &ServeArgs, url: &str, name: &str) -> Result<(), String> {
    let dir = args.data_dir();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let keys = KeyStore::open_in(dir).map_err(|e| e.to_string())?;
    let catalog = if args.catalog().is_empty() {
        None
    } else {
        Some(crate::plans::load_catalog(args.catalog())?)
    };
    let listener = tokio::net::TcpListener::bind(args.addr())
        .await
        .map_err(|e| format!("listening on {}: {e}", args.addr()))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let advertise = match args.advertise() {
        Some(a) => a.to_owned(),
        None if addr.ip().is_unspecified() => {
            return Err(format!(
                "listening on {addr}, an address other nodes cannot send callers to: give \
                 --advertise HOST:PORT (or a base URL, https://HOST:PORT)"
            ));
        }
        None => addr.to_string(),
    };
    let (shards, lease) = args.shards_and_lease();
    // Each shard's checkpoints are signed with the key pair in DATA_DIR (generated at the
    // first start, as `govern serve` does): give every node the same one.
    let (signer, generated) = govern_ledger::checkpoint::CheckpointSigner::load_or_generate(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if generated {
        tracing::info!(dir = %dir.display(), "checkpoint key pair generated");
    }
    let config = NodeConfig::new(url, name, advertise)
        .shards(shards)
        .lease_ttl(lease)
        .checkpoint_signer(signer)
        .runtime(move |_| match &catalog {
            Some(c) => Runtime::builder().catalog(c.clone()),
            None => Runtime::builder(),
        });
    let node = Node::start(config).await.map_err(|e| e.to_string())?;
    let edge = Arc::new(Edge {
        node: node.handle(),
        keys: Arc::new(keys),
        limits: Limits::default(),
        routers: RwLock::new(BTreeMap::new()),
        stopping: AtomicBool::new(false),
    });
    let held = node.handle().held().len();
    tracing::info!(%addr, node = name, shards, held, database = %govern_postgres::describe(url), "govern serve: node listening");
    say!("listening on http://{addr} as node {name} ({held} of {shards} shards)");
    let router = govern_http::node::node_router(
        Arc::clone(&edge) as Arc<dyn Shards>,
        Arc::clone(&edge.keys),
    );
    let draining = Arc::clone(&edge);
    let stop = async move {
        crate::serve::signal().await;
        // Not ready from the signal on: the drain is visible to load balancers.
        draining.stopping.store(true, Ordering::Relaxed);
    };
    let served = govern_http::serve(listener, router, stop).await;
    node.shutdown().await;
    let stopped = served.map_err(|e| e.to_string())?;
    tracing::info!(
        closed_at_drain_timeout = stopped.closed_at_drain_timeout,
        "govern serve: node stopped"
    );
    say!("stopped: shards handed over");
    Ok(())
}
