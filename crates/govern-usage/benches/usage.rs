//! Usage ingest (`Meters::record` with deduplication on) and a rate-limit check, single thread.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use govern_governors::{TenantId, Timestamp};
use govern_usage::{
    DEDUP_WINDOW_MS, Dedup, MeterConfig, Meters, RateKey, RateLimits, RateQuota, Reset, UsageEvent,
};
use std::hint::black_box;

const T0: u64 = 1_767_225_600_000;
const BATCH: u64 = 10_000;

fn meters() -> Meters {
    meters_with(Dedup::default())
}

fn meters_with(dedup: Dedup) -> Meters {
    let mut m = Meters::with_dedup(dedup);
    for (name, reset) in [
        ("api_calls", Reset::Monthly),
        ("ai_tokens", Reset::Daily),
        ("requests", Reset::Rolling { window_ms: 60_000, buckets: 60 }),
    ] {
        let meter = govern_usage::MeterId::new(name).unwrap();
        m.define(meter, MeterConfig::new(reset, Some(u64::MAX / 2))).unwrap();
    }
    m
}

/// Fresh events (ids never seen) from `next`, 1 ms apart per 1 000.
fn events(next: &mut u64) -> Vec<(UsageEvent, Timestamp)> {
    let names = ["api_calls", "ai_tokens", "requests"];
    (0..BATCH)
        .map(|_| {
            let n = *next;
            *next += 1;
            let now = T0 + n / 1_000;
            let e = UsageEvent::new(
                names[(n % 3) as usize],
                1 + n % 7,
                &format!("evt-{n:016x}"),
                Timestamp(now),
            )
            .unwrap();
            (e, Timestamp(now))
        })
        .collect()
}

/// Records batches of fresh events (new ids) into `m`, timed per event.
fn fresh_events(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut m: Meters,
) {
    let mut next = 0;
    group.bench_function(name, |b| {
        b.iter_batched(
            || events(&mut next),
            |evs| {
                for (e, now) in evs {
                    let _ = black_box(m.record(e, now));
                }
            },
            BatchSize::LargeInput,
        );
    });
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("usage");
    group.throughput(Throughput::Elements(BATCH));
    // The dedup memory fills to its capacity (DEDUP_ENTRIES_MAX) and then evicts: the
    // steady state of a busy tenant.
    fresh_events(&mut group, "record_dedup", meters());
    // The same with a dedup memory of 64 Ki ids, which stays in cache.
    fresh_events(&mut group, "record_dedup_64k", meters_with(Dedup::new(DEDUP_WINDOW_MS, 1 << 16)));
    // Every event a duplicate: the refusal path.
    let mut m = meters();
    let mut next = 0;
    let seen = events(&mut next);
    for (e, now) in seen.clone() {
        m.record(e, now).unwrap();
    }
    group.bench_function("record_duplicate", |b| {
        b.iter_batched(
            || seen.clone(),
            |evs| {
                for (e, now) in evs {
                    let _ = black_box(m.record(e, now));
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate");
    let tenant = TenantId::new("acme").unwrap();
    let key = RateKey::new(tenant.clone(), "api").unwrap();
    // 1 000 per second, burst 1: a check 1 ms after the last is allowed.
    let quota = RateQuota::per_second(1_000, 1).unwrap();
    let mut limits = RateLimits::new();
    let mut now = T0;
    group.bench_function("check_allowed", |b| {
        b.iter(|| {
            now += 1;
            black_box(limits.check(black_box(&key), quota, Timestamp(now)))
        });
    });
    group.bench_function("check_refused", |b| {
        b.iter(|| black_box(limits.check(black_box(&key), quota, Timestamp(now))));
    });
    // 10 000 tenants' keys in turn, three plans' quotas.
    let keys: Vec<RateKey> = (0..10_000)
        .map(|i| RateKey::new(TenantId::new(&format!("tenant-{i}")).unwrap(), "api").unwrap())
        .collect();
    let quotas = [
        RateQuota::per_second(10, 20).unwrap(),
        RateQuota::per_second(100, 200).unwrap(),
        RateQuota::per_second(1_000, 2_000).unwrap(),
    ];
    let mut i = 0usize;
    group.bench_function("check_10k_keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            now += 1;
            black_box(limits.check(&keys[i], quotas[i % 3], Timestamp(now)))
        });
    });
    group.finish();
}

criterion_group!(benches, ingest, rate);
criterion_main!(benches);
