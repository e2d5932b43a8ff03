//! Bytes per machine state and ns per encode and decode, for each governor: every state that
//! exploration reaches (one representative machine each), encoded and decoded in a loop. The
//! sizes (fewest, mean and most bytes over those states) are printed to stderr before the
//! timings.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use govern_governors::graph::explore;
use govern_governors::{
    Governor, account, audit, billing, catalog, compliance, entitlement, quota, saga, subscription,
    tenant,
};
use std::hint::black_box;

fn bench_governor<G: Governor>(c: &mut Criterion) {
    let machines: Vec<G> = explore::<G>().representatives.into_iter().map(|(_, m, _)| m).collect();
    let encoded: Vec<Vec<u8>> =
        machines.iter().map(|m| m.encode_state().unwrap_or_else(|e| panic!("{e}"))).collect();
    let sizes: Vec<usize> = encoded.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    eprintln!(
        "state bytes {:<12} states {:>2}: min {:>3}, mean {:>3}, max {:>3}",
        G::KIND.name(),
        sizes.len(),
        sizes.iter().min().copied().unwrap_or(0),
        total / sizes.len().max(1),
        sizes.iter().max().copied().unwrap_or(0),
    );
    let mut group = c.benchmark_group("state");
    group.throughput(Throughput::Elements(machines.len() as u64));
    group.bench_with_input(BenchmarkId::new("encode", G::KIND.name()), &machines, |b, ms| {
        b.iter(|| {
            for m in ms {
                let _ = black_box(black_box(m).encode_state());
            }
        });
    });
    group.bench_with_input(BenchmarkId::new("decode", G::KIND.name()), &encoded, |b, bytes| {
        b.iter(|| {
            for e in bytes {
                let _ = black_box(G::decode_state(black_box(e)));
            }
        });
    });
    group.finish();
}

fn all(c: &mut Criterion) {
    bench_governor::<entitlement::Entitlement>(c);
    bench_governor::<billing::Billing>(c);
    bench_governor::<catalog::Product>(c);
    bench_governor::<subscription::Subscription>(c);
    bench_governor::<account::Account>(c);
    bench_governor::<quota::Quota>(c);
    bench_governor::<compliance::Audit>(c);
    bench_governor::<tenant::Tenant>(c);
    bench_governor::<audit::Trail>(c);
    bench_governor::<saga::Saga>(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
