//! ns per decision for each governor: every accepted (state, command) pair that exploration
//! finds, decided in a loop; plus a refused decision.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use govern_governors::graph::explore;
use govern_governors::{CommandSpec, Ctx, Governor};
use std::hint::black_box;

/// Every accepted pair of `G`: the machine, the command and the time.
fn accepted_pairs<G: Governor>() -> Vec<(G, G::Command, Ctx)> {
    let mut out = Vec::new();
    for (_, machine, ctx) in explore::<G>().representatives {
        for command in G::Command::samples(&ctx) {
            if machine.decide(&command, &ctx).is_ok() {
                out.push((machine.clone(), command, ctx));
            }
        }
    }
    out
}

fn bench_governor<G: Governor>(c: &mut Criterion) {
    let pairs = accepted_pairs::<G>();
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_with_input(BenchmarkId::new("accepted", G::KIND.name()), &pairs, |b, pairs| {
        b.iter(|| {
            for (machine, command, ctx) in pairs {
                let _ = black_box(machine.decide(black_box(command), ctx));
            }
        });
    });
    group.bench_with_input(
        BenchmarkId::new("decide_and_evolve", G::KIND.name()),
        &pairs,
        |b, pairs| {
            b.iter(|| {
                for (machine, command, ctx) in pairs {
                    let mut m = machine.clone();
                    let _ = black_box(m.apply(black_box(command), ctx));
                }
            });
        },
    );
    group.finish();
}

fn bench_refused(c: &mut Criterion) {
    use govern_governors::subscription::{Command, Subscription};
    let machine = Subscription::default();
    let ctx = Ctx::at_ms(0);
    c.bench_function("decide/refused/subscription", |b| {
        b.iter(|| black_box(machine.decide(black_box(&Command::Archive), &ctx)));
    });
}

fn all(c: &mut Criterion) {
    bench_governor::<govern_governors::entitlement::Entitlement>(c);
    bench_governor::<govern_governors::billing::Billing>(c);
    bench_governor::<govern_governors::catalog::Product>(c);
    bench_governor::<govern_governors::subscription::Subscription>(c);
    bench_governor::<govern_governors::account::Account>(c);
    bench_governor::<govern_governors::quota::Quota>(c);
    bench_governor::<govern_governors::compliance::Audit>(c);
    bench_governor::<govern_governors::tenant::Tenant>(c);
    bench_refused(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
