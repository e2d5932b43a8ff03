//! `invoice()` for one tenant on each priced plan of the shipped catalogs with usage crossing
//! tiers, and 10 000 tenants' invoices (usage maps prebuilt) in one iteration.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use govern_plans::{Catalog, Plan};
use govern_pricing::{Period, invoice};

/// Tenants invoiced in one iteration of `invoices_10k`.
const TENANTS: usize = 10_000;

fn catalog(file: &str) -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans").join(file);
    govern_plans::load(&path).unwrap()
}

fn usage(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(m, q)| ((*m).to_owned(), *q)).collect()
}

/// Every priced plan of the shipped catalogs, with usage that crosses its tiers (as in
/// tests/invoices.rs), and the number of lines its invoice has.
fn cases() -> Vec<(Plan, BTreeMap<String, u64>, usize)> {
    let (pricing, licensing, platform) =
        (catalog("pricing.toml"), catalog("licensing.toml"), catalog("platform.toml"));
    let case = |c: &Catalog, plan: &str, pairs: &[(&str, u64)], lines| {
        (c.plan(plan).unwrap().clone(), usage(pairs), lines)
    };
    vec![
        case(&pricing, "starter", &[("api_calls", 250_001)], 3),
        case(&pricing, "pro", &[("api_calls", 2_500_000), ("active_users", 151)], 4),
        case(&licensing, "professional", &[("compute_gb", 2_345)], 3),
        case(&licensing, "enterprise", &[("compute_gb", 150_001)], 2),
        case(&platform, "team", &[("seats", 20), ("connections", 25_000)], 5),
        case(&platform, "platform-enterprise", &[("connections", 75_001)], 2),
    ]
}

fn one_tenant(c: &mut Criterion) {
    let month = Period { label: "2026-01".into(), days: 31 };
    let mut group = c.benchmark_group("invoice");
    group.throughput(Throughput::Elements(1));
    for (plan, usage, lines) in cases() {
        // The measured invoice is the one the hand table has (its number of lines).
        assert_eq!(invoice(&plan, &month, &usage, None).unwrap().lines.len(), lines);
        group.bench_function(plan.id.to_string(), |b| {
            b.iter(|| black_box(invoice(black_box(&plan), &month, black_box(&usage), None)));
        });
    }
    group.finish();
}

fn ten_thousand(c: &mut Criterion) {
    let month = Period { label: "2026-01".into(), days: 31 };
    let cases = cases();
    // Tenant i is on plan i mod 6, its usage the case's scaled by 1 + i mod 7 (so that the
    // tiers crossed vary); every map is built before the timing.
    let tenants: Vec<(usize, BTreeMap<String, u64>)> = (0..TENANTS)
        .map(|i| {
            let k = i % cases.len();
            let scale = 1 + (i % 7) as u64;
            let usage = cases[k].1.iter().map(|(m, q)| (m.clone(), q * scale / 4)).collect();
            (k, usage)
        })
        .collect();
    for (k, u) in &tenants {
        invoice(&cases[*k].0, &month, u, None).unwrap();
    }
    let mut group = c.benchmark_group("invoice");
    group.throughput(Throughput::Elements(TENANTS as u64));
    group.sample_size(20);
    group.bench_function("invoices_10k", |b| {
        b.iter(|| {
            for (k, u) in &tenants {
                black_box(invoice(&cases[*k].0, &month, black_box(u), None)).ok();
            }
        });
    });
    group.finish();
}

criterion_group!(benches, one_tenant, ten_thousand);
criterion_main!(benches);
