//! Serving a router on a TCP listener: HTTP/1.1 connections (hyper), a header-read timeout
//! for slow clients, at most [`Limits::connections_max`] connections at once, and a graceful
//! shutdown (stop accepting, let requests in flight finish within [`Limits::drain_timeout`],
//! then close what is left).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::limits::Limits;

/// After a failed `accept` (out of file descriptors, say), wait this long before the next:
/// a failure that repeats would otherwise spin a core.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// How a server stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stopped {
    /// Connections that were still open when the drain timeout passed, and were closed.
    pub closed_at_drain_timeout: usize,
}

/// [`serve_with`] with the default [`Limits`].
///
/// # Errors
/// As [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<Stopped> {
    serve_with(listener, router, Limits::default(), shutdown).await
}

/// Serves `router` on `listener` until `shutdown` completes: then stops accepting, asks
/// every open connection to finish the request in hand and close, waits up to
/// `limits.drain_timeout` for them, and closes those left.
///
/// A client gets `limits.header_read_timeout` to send a request's header (on a new or a
/// kept-alive connection) before its connection is closed, so a slow or silent client holds
/// no connection slot for long; the router's request timeout bounds the rest of a request.
/// Beyond `limits.connections_max` open connections, new ones wait in the listen backlog.
///
/// # Errors
/// None today once listening (a failed `accept` is logged and retried); the `Result` is for
/// a listener that cannot be read (its local address).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<Stopped> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, connections_max = limits.connections_max, "serving HTTP");
    let slots = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            connection(stream, peer, router, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let open = connections.len();
    tracing::info!(%addr, open, "stopped accepting; draining connections");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    let closed = if drained.is_err() {
        let left = connections.len();
        tracing::warn!(%addr, left, "drain timeout: closing the connections left");
        connections.shutdown().await;
        left
    } else {
        0
    };
    Ok(Stopped { closed_at_drain_timeout: closed })
}

/// One connection, to its end: closed by the client, by a timeout, or after the request in
/// hand once `stop` turns true.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    tokio::pin!(conn);
    let stopping = async {
        // Already stopping, or until it is (a closed channel: the server is gone).
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            return;
        }
        () = stopping => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended while draining");
    }
}
