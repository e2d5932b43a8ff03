//! `govern bench notify`: outbound notifications delivered per second to a receiver on
//! loopback (in this process, plain HTTP/1 with keep-alive, answering 204 after checking the
//! signature), for E endpoints (one per tenant), on a durable data directory. Two phases:
//!
//! - **backlog**: N events (failed payments) are written first by a runtime without
//!   notifications; a runtime with them then starts on the directory, its recovery scan
//!   finds every event, and it is timed from start until every event is delivered and its
//!   attempt receipted (durable): delivery alone.
//! - **live**: C clients write N more events (two commands each) on that runtime while it
//!   delivers them; timed from the first command until everything is delivered.
//!
//! Exits 1 unless the receiver got each event exactly once with a valid signature, and the
//! runtime counted N deliveries and nothing failed.

// A benchmark measures wall-clock time; that is what the disallowed clock is for here.
#![allow(clippy::disallowed_methods, reason = "benchmarks time themselves with the wall clock")]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use govern_governors::tenant::ResourceQuota;
use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_runtime::notify::{EVENT_ID_HEADER, Endpoint, Notifications, SIGNATURE_HEADER};
use govern_runtime::{RawCommand, Runtime, RuntimeHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);
const SECRET: &[u8] = b"whsec_bench";

/// Options of `govern bench notify`.
#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
    /// Events per phase.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Endpoints, one per tenant (comma-separated list: one run each).
    #[arg(long, default_value = "1,8")]
    endpoints: String,
    /// Clients writing events in the live phase.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Tokio worker threads (default: the machine's cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Print one JSON line per run instead of text.
    #[arg(long)]
    json: bool,
}

/// What the receiver saw: event ids (each must come once) and bad signatures.
#[derive(Default)]
struct Seen {
    ids: BTreeSet<String>,
    repeats: u64,
    bad_signatures: u64,
}

/// Runs `govern bench notify`.
pub(crate) fn notify(args: &NotifyArgs) -> Result<(), String> {
    let counts: Vec<usize> = args
        .endpoints
        .split(',')
        .map(|e| e.trim().parse::<usize>().map_err(|e| format!("--endpoints: {e}")))
        .collect::<Result<_, _>>()?;
    if args.events == 0 || args.clients == 0 || counts.contains(&0) {
        return Err("--events, --clients and each endpoint count must be at least 1".into());
    }
    let (rt, workers, cores) = super::tokio_runtime(args.workers)?;
    for endpoints in counts {
        let r = rt.block_on(one(args, endpoints))?;
        let (backlog, live) = (args.events as f64 / r.0, args.events as f64 / r.1);
        if args.json {
            say!(
                "{}",
                serde_json::json!({
                    "bench": "notify",
                    "events": args.events,
                    "endpoints": endpoints,
                    "clients": args.clients,
                    "workers": workers,
                    "cores": cores,
                    "backlog_s": r.0,
                    "backlog_per_s": backlog.round(),
                    "live_s": r.1,
                    "live_per_s": live.round(),
                })
            );
        } else {
            say!(
                "notify: {} events per phase to {endpoints} endpoint(s) on loopback, {workers} workers on {cores} cores, durable store",
                args.events
            );
            say!(
                "  backlog (recovery scan, then delivery) {:>8.2} s ({backlog:.0} delivered/s)",
                r.0
            );
            say!(
                "  live ({} clients writing events)      {:>8.2} s ({live:.0} delivered/s)",
                args.clients,
                r.1
            );
        }
    }
    Ok(())
}

/// One run with `endpoints` endpoints: the two phases' seconds.
async fn one(args: &NotifyArgs, endpoints: usize) -> Result<(f64, f64), String> {
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = temp.path().join("ledger");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = receiver(Arc::clone(&seen)).await?;
    let tenants: Vec<TenantId> = (0..endpoints)
        .map(|i| TenantId::new(&format!("t-{i:04}")).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;

    // Backlog: events written without notifications.
    let rt =
        Runtime::builder().epoch(T0).data_dir(&dir).start().await.map_err(|e| e.to_string())?;
    let h = rt.handle();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    for t in &tenants {
        h.provision_tenant(t, quota, "bench").await.map_err(|e| e.to_string())?;
    }
    write_events(&h, &tenants, 0, args.events, args.clients).await?;
    rt.shutdown().await.map_err(|e| e.to_string())?;

    let notifications = tenants.iter().fold(Notifications::new(), |n, t| {
        n.endpoint(Endpoint::new(t.clone(), "bench", &url, SECRET))
    });
    let notifications = notifications.queue_max(args.events + 1);
    let started = Instant::now();
    let rt = Runtime::builder()
        .epoch(T0)
        .data_dir(&dir)
        .notifications(notifications)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let h = rt.handle();
    h.notifications_settled().await;
    let backlog = started.elapsed().as_secs_f64();

    let started = Instant::now();
    write_events(&h, &tenants, args.events, args.events, args.clients).await?;
    h.notifications_settled().await;
    let live = started.elapsed().as_secs_f64();

    let stats = h.notify_stats();
    rt.shutdown().await.map_err(|e| e.to_string())?;
    let seen = seen.lock().map_err(|e| e.to_string())?;
    let want = 2 * args.events;
    if seen.ids.len() != want || seen.repeats > 0 || seen.bad_signatures > 0 {
        return Err(format!(
            "the receiver got {} distinct events of {want}, {} repeats, {} bad signatures",
            seen.ids.len(),
            seen.repeats,
            seen.bad_signatures
        ));
    }
    if stats.delivered != want as u64 || stats.failed_attempts != 0 || stats.dropped != 0 {
        return Err(format!("unexpected counts: {stats:?}"));
    }
    Ok((backlog, live))
}

/// Writes events `first..first + n` (a requested then failed payment each), spread over the
/// tenants, by `clients` clients.
async fn write_events(
    h: &RuntimeHandle,
    tenants: &[TenantId],
    first: usize,
    n: usize,
    clients: usize,
) -> Result<(), String> {
    let mut tasks = Vec::new();
    for c in 0..clients.min(n) {
        let (h, tenants) = (h.clone(), tenants.to_vec());
        tasks.push(tokio::spawn(async move {
            for i in (first + c..first + n).step_by(clients) {
                let tenant = tenants[i % tenants.len()].clone();
                let resource = ResourceId::new(&format!("pay-{i}")).map_err(|e| e.to_string())?;
                let command = |name: &str, args: &[(&str, &str)]| RawCommand {
                    tenant: tenant.clone(),
                    kind: GovernorKind::Billing,
                    resource: resource.clone(),
                    name: name.to_owned(),
                    args: args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                    reason: "bench".into(),
                    metadata: Vec::new(),
                };
                let request = [("amount", "19.99"), ("currency", "USD"), ("method", "card")];
                h.command(command("request_payment", &request)).await.map_err(|e| e.to_string())?;
                let fail = [("code", "card_declined")];
                h.command(command("fail_payment", &fail)).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Starts the loopback receiver; its URL.
async fn receiver(seen: Arc<Mutex<Seen>>) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let url = format!("http://{}/hooks", listener.local_addr().map_err(|e| e.to_string())?);
    let verifier = Arc::new(govern_webhooks::Verifier::new(&[SECRET]).map_err(|e| e.to_string())?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, Arc::clone(&seen), Arc::clone(&verifier)));
        }
    });
    Ok(url)
}

/// One kept-alive connection: requests read (headers, a content-length body), checked,
/// answered 204.
async fn serve(
    mut stream: tokio::net::TcpStream,
    seen: Arc<Mutex<Seen>>,
    verifier: Arc<govern_webhooks::Verifier>,
) {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 8192];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buf.len() < end + 4 + len {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = &buf[end + 4..end + 4 + len];
        let signed = header(SIGNATURE_HEADER).is_some_and(|s| {
            let t = s.split(',').find_map(|e| e.strip_prefix("t=")).and_then(|t| t.parse().ok());
            t.is_some_and(|t| verifier.verify(&s, body, t).is_ok())
        });
        if let (Some(id), Ok(mut seen)) = (header(EVENT_ID_HEADER), seen.lock()) {
            if !seen.ids.insert(id) {
                seen.repeats += 1;
            }
            seen.bad_signatures += u64::from(!signed);
        }
        buf.drain(..end + 4 + len);
        if stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.is_err() {
            return;
        }
    }
}
