//! `govern serve --data-dir D [--catalog F]... [--addr A]`: the runtime on a data directory
//! behind the HTTP API (govern-http, docs/http.md), until SIGTERM or Ctrl-C; then it stops
//! accepting, lets the requests in hand finish (within a bound), and shuts the runtime down:
//! the last commit and a signed checkpoint (DATA_DIR/checkpoint.json, with the key pair in
//! DATA_DIR, generated at the first start). It installs the Prometheus recorder and serves
//! it at `GET /metrics` (an operator key; docs/metrics.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use govern_http::{AppState, KeyStore};
use govern_runtime::Runtime;

/// Options of `govern serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The ledger's data directory (created if missing; continued if it holds a ledger). The
    /// API keys are DATA_DIR/api-keys.json (`govern keys`). With --postgres, it holds only
    /// the API keys: the ledger is in the database.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Run as a node among several sharing this PostgreSQL database (docs/scaling.md): the
    /// node takes its share of the shards' leases, serves their tenants, and redirects the
    /// others' requests to their owner (307).
    #[arg(long, value_name = "URL", requires = "node")]
    postgres: Option<String>,
    /// The node's name, unique among the nodes (with --postgres).
    #[arg(long, value_name = "NAME", requires = "postgres")]
    node: Option<String>,
    /// Where other nodes redirect this node's tenants' callers: HOST:PORT (taken as http://)
    /// or a base URL (https://HOST:PORT). Default: the address bound, unless it is
    /// unspecified (0.0.0.0, [::]): then it must be given.
    #[arg(long, value_name = "HOST:PORT", requires = "postgres")]
    advertise: Option<String>,
    /// How many shards the database is divided into; fixed by the first node (with --postgres).
    /// From 1 to 4 096 (govern_postgres::cluster::limits::SHARDS_MAX).
    #[arg(long, value_name = "N", default_value_t = govern_postgres::cluster::limits::SHARDS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=4096))]
    shards: u32,
    /// How long a node's lease on a shard lasts without renewal, in milliseconds: a dead
    /// node's shards are taken over within about this long (with --postgres).
    /// At least 500 (govern_postgres::node::limits::LEASE_TTL_MIN).
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(500..))]
    lease_ms: u64,
    /// A plan catalog file; repeat for several, taken together (docs/plans.md). Without one,
    /// checks and usage answer 501 `no_catalog`.
    #[arg(long, value_name = "FILE")]
    catalog: Vec<PathBuf>,
    /// The address to listen on; port 0 takes a free port. The address bound is printed on
    /// stdout: `listening on http://ADDR`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The payment provider's webhook signing secrets, one per line (several while a secret
    /// is rotated; blank lines and `#` comments skipped). Without it, POST
    /// /v1/webhooks/payments answers 503 `webhooks_not_configured`.
    #[arg(long, value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
}

impl ServeArgs {
    /// The data directory (with --postgres, of the API keys only).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The catalog files.
    pub(crate) fn catalog(&self) -> &[PathBuf] {
        &self.catalog
    }

    /// The address to listen on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The advertised address, if given.
    pub(crate) fn advertise(&self) -> Option<&str> {
        self.advertise.as_deref()
    }

    /// The shard count and the lease time.
    pub(crate) fn shards_and_lease(&self) -> (u32, std::time::Duration) {
        (self.shards, std::time::Duration::from_millis(self.lease_ms))
    }
}

/// The webhook verifier of `--webhook-secret-file`.
fn verifier(path: &std::path::Path) -> Result<govern_webhooks::Verifier, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let secrets: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    govern_webhooks::Verifier::new(&secrets).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs `govern serve` to its end (a signal, then a drained shutdown).
pub(crate) fn run(args: &ServeArgs) -> Result<(), String> {
    // The runtime the benchmarks measure: a worker per core, govern's global queue interval.
    let (tokio, _, _) = crate::bench::tokio_runtime(None)?;
    tokio.block_on(serve(args))
}

async fn serve(args: &ServeArgs) -> Result<(), String> {
    if let (Some(url), Some(node)) = (&args.postgres, &args.node) {
        return crate::serve_node::serve(args, url, node).await;
    }
    // The host installs the recorder, before the runtime starts (it registers then).
    let prometheus = crate::prometheus::install()?;
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut builder = Runtime::builder().data_dir(dir);
    if !args.catalog.is_empty() {
        builder = builder.catalog(crate::plans::load_catalog(&args.catalog)?);
    }
    let keys = KeyStore::open_in(dir).map_err(|e| e.to_string())?;
    let webhooks = args.webhook_secret_file.as_deref().map(verifier).transpose()?.map(Arc::new);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let runtime = builder.start().await.map_err(|e| e.to_string())?;
    let state = AppState { runtime: runtime.handle(), keys: Arc::new(keys) };
    tracing::info!(%addr, data_dir = %dir.display(), "govern serve: listening");
    say!("listening on http://{addr}");
    let limits = govern_http::Limits::default();
    let render: govern_http::telemetry::Render = Arc::new(move || prometheus.render());
    let router = govern_http::router_with_metrics(state, &limits, webhooks, Some(render));
    let served = govern_http::serve(listener, router, signal()).await;
    let head = runtime.shutdown().await.map_err(|e| e.to_string())?;
    let stopped = served.map_err(|e| e.to_string())?;
    tracing::info!(
        receipts = head.next_seq,
        closed_at_drain_timeout = stopped.closed_at_drain_timeout,
        "govern serve: stopped"
    );
    say!("stopped: {} receipts, ledger closed with a signed checkpoint", head.next_seq);
    Ok(())
}

/// Completes at the first SIGTERM or Ctrl-C (SIGINT).
pub(crate) async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "no SIGTERM handler; Ctrl-C only"),
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("Ctrl-C: shutting down"),
        Err(e) => {
            // No way to be told to stop: serve until killed.
            tracing::warn!(error = %e, "no Ctrl-C handler");
            std::future::pending::<()>().await;
        }
    }
}
