//! The verifier's cache: hits and misses counted, the window still checked on a hit,
//! bounded with the oldest evicted, a removed or replaced key dropping what it signed.

use std::collections::{BTreeMap, BTreeSet};

use govern_licence::limits::CACHE_CAPACITY_MAX;
use govern_licence::{
    CacheError, CacheStats, Claims, Keyring, Kid, LicenceError, SigningKey, Verifier,
};

const NOW: u64 = 1_780_000_000;

fn claims(id: &str) -> Claims {
    Claims {
        licence_id: id.to_owned(),
        tenant: "acme".to_owned(),
        plan: "team".to_owned(),
        features: BTreeSet::from(["api".to_owned()]),
        limits: BTreeMap::new(),
        seats: 5,
        issued_at: NOW - 10,
        not_before: NOW - 10,
        expires_at: NOW + 100,
    }
}

fn hmac(kid: &str, byte: u8) -> SigningKey {
    SigningKey::hmac(Kid::new(kid).expect("kid"), &[byte; 32]).expect("key")
}

fn ed(kid: &str, byte: u8) -> SigningKey {
    SigningKey::ed25519_from_seed(Kid::new(kid).expect("kid"), &[byte; 32])
}

fn verifier(keys: &[&SigningKey], capacity: usize) -> Verifier {
    let mut ring = Keyring::new();
    for k in keys {
        ring.insert(k.verifying_key()).expect("room");
    }
    Verifier::with_capacity(ring, capacity).expect("capacity")
}

fn stats(v: &Verifier) -> (u64, u64, usize) {
    let CacheStats { hits, misses, entries, .. } = v.stats();
    (hits, misses, entries)
}

#[test]
fn a_second_call_is_a_hit_with_the_same_answer() {
    let key = ed("ed", 1);
    let token = key.issue(&claims("a")).expect("issue");
    let mut v = verifier(&[&key], 8);
    let first = v.verify(&token, NOW).expect("valid");
    assert_eq!(stats(&v), (0, 1, 1));
    let second = v.verify(&token, NOW).expect("valid");
    assert_eq!(stats(&v), (1, 1, 1));
    assert_eq!(first, second);
    // Refusals are not cached: every one is a miss.
    for _ in 0..2 {
        assert!(v.verify("govlic1.nope", NOW).is_err());
    }
    assert_eq!(stats(&v), (1, 3, 1));
}

#[test]
fn a_cached_token_that_has_since_expired_is_refused() {
    let key = hmac("hs", 1);
    let c = claims("a");
    let token = key.issue(&c).expect("issue");
    let mut v = verifier(&[&key], 8);
    assert!(v.verify(&token, NOW).is_ok());
    assert_eq!(
        v.verify(&token, c.expires_at).map(|_| ()),
        Err(LicenceError::Expired { expired_at: c.expires_at, now: c.expires_at })
    );
    assert_eq!(
        v.verify(&token, c.not_before - 1).map(|_| ()),
        Err(LicenceError::NotYetValid { not_before: c.not_before, now: c.not_before - 1 })
    );
    assert_eq!(stats(&v), (2, 1, 1), "both refusals came from the cache");
}

#[test]
fn a_token_not_yet_valid_is_cached_and_accepted_once_valid() {
    let key = hmac("hs", 1);
    let c = claims("a");
    let token = key.issue(&c).expect("issue");
    let mut v = verifier(&[&key], 8);
    assert!(matches!(v.verify(&token, c.not_before - 1), Err(LicenceError::NotYetValid { .. })));
    assert!(v.verify(&token, c.not_before).is_ok());
    assert_eq!(stats(&v), (1, 1, 1));
}

#[test]
fn the_cache_is_bounded_and_evicts_the_oldest() {
    let key = hmac("hs", 1);
    let tokens: Vec<String> =
        (0..4).map(|i| key.issue(&claims(&format!("l{i}"))).expect("issue")).collect();
    let mut v = verifier(&[&key], 3);
    for t in &tokens {
        v.verify(t, NOW).expect("valid");
    }
    assert_eq!(stats(&v), (0, 4, 3));
    // l1, l2, l3 are cached; l0 was the oldest and went.
    for t in &tokens[1..] {
        v.verify(t, NOW).expect("valid");
    }
    assert_eq!(stats(&v), (3, 4, 3));
    v.verify(&tokens[0], NOW).expect("valid");
    assert_eq!(stats(&v), (3, 5, 3));
    v.clear();
    assert_eq!(stats(&v), (3, 5, 0));
}

#[test]
fn removing_a_key_drops_the_tokens_it_signed_and_no_others() {
    let old = hmac("old", 1);
    let new = ed("new", 2);
    let old_token = old.issue(&claims("a")).expect("issue");
    let new_token = new.issue(&claims("b")).expect("issue");
    let mut v = verifier(&[&old, &new], 8);
    v.verify(&old_token, NOW).expect("valid");
    v.verify(&new_token, NOW).expect("valid");
    assert_eq!(stats(&v), (0, 2, 2));

    assert!(v.remove_key("old").is_some());
    assert_eq!(stats(&v), (0, 2, 1));
    assert_eq!(
        v.verify(&old_token, NOW).map(|_| ()),
        Err(LicenceError::UnknownKey { kid: "old".to_owned() })
    );
    v.verify(&new_token, NOW).expect("still cached");
    assert_eq!(stats(&v), (1, 3, 1));
    assert!(v.remove_key("old").is_none());
}

#[test]
fn replacing_a_key_under_the_same_id_drops_what_the_old_one_signed() {
    let first = hmac("k", 1);
    let token = first.issue(&claims("a")).expect("issue");
    let mut v = verifier(&[&first], 8);
    v.verify(&token, NOW).expect("valid");
    v.add_key(hmac("k", 2).verifying_key()).expect("room");
    assert_eq!(
        v.verify(&token, NOW).map(|_| ()),
        Err(LicenceError::BadSignature { kid: "k".to_owned() })
    );
    // A new kid leaves the cache alone.
    let other = ed("other", 3);
    let other_token = other.issue(&claims("b")).expect("issue");
    v.verify(&other_token, NOW).map(|_| ()).expect_err("unknown yet");
    v.add_key(other.verifying_key()).expect("room");
    v.verify(&other_token, NOW).expect("valid");
    v.add_key(hmac("k", 4).verifying_key()).expect("room");
    v.verify(&other_token, NOW).expect("valid");
    assert_eq!(v.stats().hits, 1);
}

#[test]
fn the_capacity_is_bounded() {
    assert_eq!(
        Verifier::with_capacity(Keyring::new(), 0).map(|_| ()),
        Err(CacheError::Capacity { capacity: 0, max: CACHE_CAPACITY_MAX })
    );
    assert!(Verifier::with_capacity(Keyring::new(), CACHE_CAPACITY_MAX + 1).is_err());
    assert!(Verifier::with_capacity(Keyring::new(), CACHE_CAPACITY_MAX).is_ok());
}
