//! The pure SLA monitor: `record` of one sample (into the bucket filling, and with a bucket
//! judged every 1 000 samples), `report` of an aggregate, and `advance` + `status` of a
//! monitor with a full window and trend. Single thread.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use govern_plans::sla::{Aggregate, BUCKET_MS, Monitor, Promise};
use rust_decimal::Decimal;

const T0: u64 = 1_767_225_600_000;
const BATCH: u64 = 10_000;
const PROMISE: Promise = Promise {
    throughput_rps: 1_000,
    p99_latency_ms: 100,
    error_rate_max: Decimal::from_parts(1, 0, 0, false, 2),
};

/// A monitor with six minutes of traffic: a full window and trend.
fn warm() -> Monitor {
    let mut m = Monitor::new();
    for i in 0..36 * 100 {
        m.record(T0 + i * (BUCKET_MS / 100), 1_000 + (i * 7_919) % 150_000, i % 97 != 0, &PROMISE)
            .unwrap();
    }
    m
}

fn record(c: &mut Criterion) {
    let mut g = c.benchmark_group("sla");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("record, one bucket", |b| {
        b.iter_batched_ref(
            warm,
            |m| {
                let at = T0 + 36 * BUCKET_MS;
                for i in 0..BATCH {
                    black_box(m.record(at, 1_000 + (i * 7_919) % 150_000, true, &PROMISE).unwrap());
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("record, a bucket judged every 1 000", |b| {
        b.iter_batched_ref(
            warm,
            |m| {
                for i in 0..BATCH {
                    let at = T0 + 36 * BUCKET_MS + (i / 1_000) * BUCKET_MS;
                    black_box(m.record(at, 1_000 + (i * 7_919) % 150_000, true, &PROMISE).unwrap());
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("sla");
    let mut agg = Aggregate::default();
    for i in 0..1_000 {
        agg.record(1_000 + i * 97, i % 50 != 0);
    }
    g.bench_function("report, one aggregate", |b| {
        b.iter_batched_ref(
            warm,
            |m| black_box(m.report(T0 + 36 * BUCKET_MS, &agg, &PROMISE).unwrap()),
            BatchSize::LargeInput,
        );
    });
    g.bench_function("advance one bucket + status", |b| {
        b.iter_batched_ref(
            warm,
            |m| {
                black_box(m.advance(T0 + 37 * BUCKET_MS, &PROMISE));
                black_box(m.status(&PROMISE))
            },
            BatchSize::LargeInput,
        );
    });
    let m = warm();
    g.bench_function("status", |b| b.iter(|| black_box(m.status(&PROMISE))));
    g.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
