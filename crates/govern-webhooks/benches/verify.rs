//! Webhook signature verification (`Verifier::verify`) of a ~1 KB Stripe-style delivery: one
//! secret, two secrets (rotation) where the second matches, and a refused bad signature.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on fixed, valid inputs")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use govern_webhooks::{Verified, Verifier, VerifyError, sign};
use std::hint::black_box;

/// The delivery's timestamp and the verifier's clock (Unix seconds): 2026-12-06, 30 s apart.
const T: u64 = 1_796_515_200;
const NOW: u64 = T + 30;
const CURRENT: &[u8] = b"whsec_current_0123456789abcdefghijklmnopqrstuv";
const OLD: &[u8] = b"whsec_previous_0123456789abcdefghijklmnopqrstu";

/// A Stripe-style `invoice.paid` event, about 1 KB.
fn body() -> Vec<u8> {
    let event = serde_json::json!({
        "id": "evt_1QbX2vL3kQ9hZr8aT0m4Pq7s",
        "object": "event",
        "api_version": "2024-06-20",
        "created": T,
        "type": "invoice.paid",
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": "req_Ab12Cd34Ef56Gh", "idempotency_key": "6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b" },
        "data": { "object": {
            "id": "in_1QbX2uL3kQ9hZr8aYk3n5Wq1",
            "object": "invoice",
            "amount_due": 9900,
            "amount_paid": 9900,
            "amount_remaining": 0,
            "currency": "usd",
            "customer": "cus_R4nD0mCu5t0m3r",
            "customer_email": "billing@acme.example",
            "subscription": "sub_1QbX2tL3kQ9hZr8aPro00001",
            "status": "paid",
            "billing_reason": "subscription_cycle",
            "period_start": T - 2_678_400,
            "period_end": T,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1Abc/test_YWNjdF8xQWJj",
            "lines": { "object": "list", "has_more": false, "total_count": 1, "data": [{
                "id": "il_1QbX2uL3kQ9hZr8aLine0001",
                "amount": 9900,
                "description": "1 x Professional (at $99.00 / month)",
                "price": { "id": "price_professional_monthly", "unit_amount": 9900 },
                "quantity": 1
            }]},
            "metadata": { "tenant": "acme", "plan": "professional" }
        }}
    });
    serde_json::to_vec(&event).unwrap()
}

fn verify(c: &mut Criterion) {
    let body = body();
    assert!((900..=1_200).contains(&body.len()), "body is {} bytes, not ~1 KB", body.len());
    let one = Verifier::new(&[CURRENT]).unwrap();
    let two = Verifier::new(&[CURRENT, OLD]).unwrap();
    let current = sign(CURRENT, T, &body);
    let old = sign(OLD, T, &body);
    // The same header with the MAC's last hex digit changed: parses, matches nothing.
    let mut bad = current.clone();
    let last = if bad.ends_with('0') { "1" } else { "0" };
    bad.replace_range(bad.len() - 1.., last);
    // Each case measures the outcome it names.
    assert_eq!(one.verify(&current, &body, NOW), Ok(Verified { timestamp: T, secret_index: 0 }));
    assert_eq!(two.verify(&old, &body, NOW), Ok(Verified { timestamp: T, secret_index: 1 }));
    assert_eq!(one.verify(&bad, &body, NOW), Err(VerifyError::NoMatch));

    let mut group = c.benchmark_group("webhook_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_secret", |b| {
        b.iter(|| black_box(one.verify(black_box(&current), black_box(&body), NOW)));
    });
    group.bench_function("two_secrets_second_matches", |b| {
        b.iter(|| black_box(two.verify(black_box(&old), black_box(&body), NOW)));
    });
    group.bench_function("bad_signature_refused", |b| {
        b.iter(|| black_box(one.verify(black_box(&bad), black_box(&body), NOW)));
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
