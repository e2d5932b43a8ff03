//! Licence validation per call (issue 16's figure): a token verified in full with HMAC-SHA256
//! and with Ed25519 (cache missed every time), and answered from the cache (both kinds).

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use govern_licence::{Claims, Keyring, Kid, SigningKey, Verifier};

const NOW: u64 = 1_780_000_000;

/// A licence of typical size: five features, four limits.
fn claims() -> Claims {
    Claims {
        licence_id: "lic-2026-000042".to_owned(),
        tenant: "acme".to_owned(),
        plan: "professional".to_owned(),
        features: ["api", "audit_log", "report_builder", "sso", "webhooks"]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>(),
        limits: [("api_calls", 100_000), ("projects", 100), ("seats", 25), ("storage_gb", 500)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>(),
        seats: 25,
        issued_at: NOW - 86_400,
        not_before: NOW - 86_400,
        expires_at: NOW + 365 * 86_400,
    }
}

fn keys() -> (SigningKey, SigningKey) {
    let hmac = SigningKey::hmac(Kid::new("hs-2026").unwrap(), &[7u8; 32]).unwrap();
    let ed = SigningKey::ed25519_from_seed(Kid::new("ed-2026").unwrap(), &[9u8; 32]);
    (hmac, ed)
}

fn verify(c: &mut Criterion) {
    let (hmac, ed) = keys();
    let mut ring = Keyring::new();
    ring.insert(hmac.verifying_key()).unwrap();
    ring.insert(ed.verifying_key()).unwrap();
    let claims = claims();
    let hs_token = hmac.issue(&claims).unwrap();
    let ed_token = ed.issue(&claims).unwrap();

    let mut group = c.benchmark_group("licence_verify");
    group.bench_function("uncached_hmac", |b| {
        b.iter(|| ring.verify(black_box(&hs_token), NOW).unwrap());
    });
    group.bench_function("uncached_ed25519", |b| {
        b.iter(|| ring.verify(black_box(&ed_token), NOW).unwrap());
    });
    let mut verifier = Verifier::new(ring.clone());
    verifier.verify(&hs_token, NOW).unwrap();
    verifier.verify(&ed_token, NOW).unwrap();
    group.bench_function("cached_hmac", |b| {
        b.iter(|| verifier.verify(black_box(&hs_token), NOW).unwrap());
    });
    group.bench_function("cached_ed25519", |b| {
        b.iter(|| verifier.verify(black_box(&ed_token), NOW).unwrap());
    });
    assert_eq!(verifier.stats().misses, 2, "every timed call was a hit");
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
