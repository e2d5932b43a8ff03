//! ns per receipt hash (seal) and receipts verified per second, from records and decoded.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_receipt::{ChainVerifier, Digest, Receipt, ReceiptBody};

/// A typical receipt body: a subscription activation with a plan and two metadata entries.
fn body(i: u64) -> ReceiptBody {
    let mut args = BTreeMap::new();
    args.insert("plan".to_owned(), "pro".to_owned());
    let mut metadata = BTreeMap::new();
    metadata.insert("channel".to_owned(), "api".to_owned());
    metadata.insert("request_id".to_owned(), format!("req-{i:08}"));
    ReceiptBody {
        timestamp: Timestamp(1_767_225_600_000 + i),
        tenant: TenantId::new("tenant-0042").unwrap(),
        governor: GovernorKind::Subscription,
        resource: ResourceId::new(&format!("sub-{i:08}")).unwrap(),
        resource_seq: 1,
        command: Cow::Borrowed("activate"),
        state_from: Cow::Borrowed("free_trial"),
        state_to: Cow::Borrowed("active"),
        reason: "trial converted to paid".to_owned(),
        args,
        metadata,
    }
}

fn chain(n: u64) -> Vec<Receipt> {
    let mut prev = Digest::ZERO;
    let mut buf = Vec::new();
    (0..n)
        .map(|seq| {
            let r = Receipt::seal_with(body(seq), seq, prev, &mut buf);
            prev = r.hash;
            r
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let sample = chain(1);
    let record_len = sample[0].encode().len();
    let mut buf = Vec::with_capacity(512);
    c.bench_function(&format!("receipt/hash_{record_len}B_record"), |b| {
        b.iter(|| black_box(&sample[0]).compute_hash(&mut buf));
    });
    c.bench_function("receipt/seal", |b| {
        let body = body(7);
        b.iter(|| Receipt::seal_with(black_box(body.clone()), 7, Digest::ZERO, &mut buf));
    });

    const N: u64 = 10_000;
    let receipts = chain(N);
    let records: Vec<Vec<u8>> = receipts.iter().map(Receipt::encode).collect();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(N));
    group.bench_function("records", |b| {
        b.iter(|| {
            let mut v = ChainVerifier::new();
            for r in &records {
                v.push_record(r).unwrap();
            }
            v.head()
        });
    });
    group.bench_function("decoded", |b| {
        b.iter(|| {
            let mut v = ChainVerifier::new();
            for r in &receipts {
                v.push(r).unwrap();
            }
            v.head()
        });
    });
    group.bench_function("decode_and_verify", |b| {
        b.iter(|| {
            let mut v = ChainVerifier::new();
            for r in &records {
                v.push(&Receipt::decode(r).unwrap()).unwrap();
            }
            v.head()
        });
    });
    group.bench_function("records_and_decode_key", |b| {
        b.iter(|| {
            let mut v = ChainVerifier::new();
            let mut numbers = 0u64;
            for r in &records {
                v.push_record(r).unwrap();
                numbers += Receipt::decode_key(r).unwrap().resource_seq;
            }
            (v.head(), numbers)
        });
    });
    group.bench_function("decode_key", |b| {
        b.iter(|| {
            records
                .iter()
                .map(|r| Receipt::decode_key(black_box(r)).unwrap().resource_seq)
                .sum::<u64>()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
