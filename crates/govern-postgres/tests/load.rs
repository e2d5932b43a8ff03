//! A figure, not a check of correctness: durable receipts/s through the runtime on a
//! throwaway PostgreSQL with 64 clients (docs/benchmarks.md). Slow: runs only with
//! `GOVERN_PG_LOAD=1`, best in a release build:
//! `GOVERN_PG_LOAD=1 cargo test --release -p govern-postgres --test load -- --nocapture`.

use std::time::Instant;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_postgres::PostgresStore;
use govern_postgres::testing::Cluster;
use govern_runtime::Runtime;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);
/// Concurrent clients, each on a tenant and subscription of its own.
const CLIENTS: usize = 64;
/// Pause/resume pairs each client sends.
const ROUNDS: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr, reason = "the figure is for people")]
#[allow(clippy::disallowed_methods, reason = "wall-clock throughput for people")]
async fn durable_receipts_per_second_with_64_clients() {
    if std::env::var("GOVERN_PG_LOAD").as_deref() != Ok("1") {
        return;
    }
    let Some(cluster) = Cluster::start_or_skip("pg_load") else { return };
    let url = cluster.create_database("load").expect("a database");
    let store = PostgresStore::open(&url).expect("open");
    let rt = Runtime::builder().epoch(T0).store(Box::new(store)).start().await.expect("start");
    let h = rt.handle();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    let mut subs = Vec::new();
    for i in 0..CLIENTS {
        let tenant = TenantId::new(&format!("t{i}")).expect("id");
        h.provision_tenant(&tenant, quota, "load").await.expect("provision");
        let sub = h.subscription(&tenant, &ResourceId::new("sub").expect("id"));
        sub.start_trial("pro", 14, "load").await.expect("trial");
        sub.activate(None, "load").await.expect("activate");
        subs.push(sub);
    }
    let before = h.ledger_status().durable;
    let start = Instant::now();
    let tasks: Vec<_> = subs
        .into_iter()
        .map(|sub| {
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    sub.pause("load").await.expect("pause");
                    sub.resume("load").await.expect("resume");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client");
    }
    let elapsed = start.elapsed();
    let receipts = h.ledger_status().durable - before;
    assert_eq!(receipts, (CLIENTS * ROUNDS * 2) as u64, "every command acknowledged durable");
    eprintln!(
        "postgres: {receipts} durable receipts with {CLIENTS} clients in {:.2} s: {:.0} receipts/s",
        elapsed.as_secs_f64(),
        receipts as f64 / elapsed.as_secs_f64()
    );
    h.verify().expect("the chain verifies");
    rt.shutdown().await.expect("shutdown");
}
