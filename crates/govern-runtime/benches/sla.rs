//! The runtime's SLA monitor through the handle: `sla_record` of one sample (the tenant's
//! monitor lock, the promise from its plans, the runtime clock) and `sla_status` (no edge to
//! wait for). One tenant on a plan whose envelope no benchmark reaches (so no edge is made), a
//! current-thread tokio runtime.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use govern_governors::tenant::ResourceQuota;
use govern_governors::{ResourceId, TenantId, Timestamp};
use govern_runtime::Runtime;

const BATCH: u64 = 10_000;

const CATALOG: &str = r#"version = "1"
[plans.big]
name = "Big"
price = { amount = "0", currency = "USD", interval = "month" }
envelope = { throughput_rps = 1000000000, p99_latency_ms = 60000, connections = 1, queue_depth = 1 }
"#;

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let catalog = govern_plans::validate(CATALOG, "bench.toml").unwrap();
    let acme = TenantId::new("acme").unwrap();
    let (rt, h) = tokio.block_on(async {
        let rt = Runtime::builder()
            .epoch(Timestamp(1_767_225_600_000))
            .catalog(catalog)
            .start()
            .await
            .unwrap();
        let h = rt.handle();
        let quota = ResourceQuota { storage_gb: 1, compute_units: 1, bandwidth_mbps: 1 };
        h.provision_tenant(&acme, quota, "bench").await.unwrap();
        let sub = h.subscription(&acme, &ResourceId::new("sub-1").unwrap());
        sub.start_trial("big", 14, "bench").await.unwrap();
        sub.activate(None, "bench").await.unwrap();
        (rt, h)
    });
    let mut g = c.benchmark_group("sla runtime");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("handle.sla_record", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                // Fast and ok: no edge is made, whatever buckets close meanwhile.
                let latency = Duration::from_micros(500 + i % 1_000);
                h.sla_record(black_box(&acme), latency, true).unwrap();
            }
        });
    });
    g.finish();
    let mut g = c.benchmark_group("sla runtime");
    g.bench_function("handle.sla_status", |b| {
        b.iter(|| black_box(tokio.block_on(h.sla_status(&acme)).unwrap()));
    });
    g.finish();
    tokio.block_on(rt.shutdown()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
