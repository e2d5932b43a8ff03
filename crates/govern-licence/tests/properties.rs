//! Properties: no string is accepted or panics the verifier unless it is a token the keys
//! signed; every single-byte mutation of a valid token is refused with an error of the
//! family its place allows.

use std::collections::{BTreeMap, BTreeSet};

use govern_licence::{Claims, Family, Keyring, Kid, LicenceError, SigningKey, Verifier};
use proptest::prelude::*;

const NOW: u64 = 1_780_000_000;

fn claims(features: BTreeSet<String>, limits: BTreeMap<String, u64>, seats: u32) -> Claims {
    Claims {
        licence_id: "lic-1".to_owned(),
        tenant: "acme".to_owned(),
        plan: "pro".to_owned(),
        features,
        limits,
        seats,
        issued_at: NOW - 1,
        not_before: NOW - 1,
        expires_at: NOW + 1_000,
    }
}

fn keys() -> (SigningKey, SigningKey, Keyring) {
    let hs = SigningKey::hmac(Kid::new("hs").expect("kid"), &[1u8; 32]).expect("key");
    let ed = SigningKey::ed25519_from_seed(Kid::new("ed").expect("kid"), &[2u8; 32]);
    let mut ring = Keyring::new();
    ring.insert(hs.verifying_key()).expect("room");
    ring.insert(ed.verifying_key()).expect("room");
    (hs, ed, ring)
}

/// The families a mutation at `index` may give, from where it falls: the prefix and
/// algorithm parts and the dots can only make the token malformed; a changed key id may also
/// name another key or none; a changed payload or signature is malformed or fails the
/// signature.
fn allowed(token: &str, index: usize, err: &LicenceError) -> bool {
    let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
    let family = err.family();
    if dots.contains(&index) || index < dots[1] {
        family == Family::Malformed
    } else if index < dots[2] {
        family != Family::Time
    } else {
        matches!(err, LicenceError::Malformed { .. } | LicenceError::BadSignature { .. })
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_strings_are_refused_without_panicking(s in ".{0,200}", t in "govlic1\\.(hs256|ed25519)\\.(hs|ed)\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,90}") {
        let (_, _, ring) = keys();
        let mut v = Verifier::new(ring);
        // Any text at all: not even the prefix holds.
        let err = v.verify(&s, NOW).expect_err("not a token");
        prop_assert_eq!(err.family(), Family::Malformed, "{:?}", err);
        // A token's shape with our key ids: never accepted, never refused for its time.
        let err = v.verify(&t, NOW).expect_err("not signed by our keys");
        prop_assert_ne!(err.family(), Family::Time, "{:?}", err);
    }

    #[test]
    fn every_single_byte_mutation_is_refused_with_the_right_family(
        features in prop::collection::btree_set(name(), 0..4),
        limits in prop::collection::btree_map(name(), any::<u64>(), 0..4),
        seats in any::<u32>(),
        ed25519 in any::<bool>(),
        replacement in any::<u8>(),
    ) {
        let (hs, ed, ring) = keys();
        let key = if ed25519 { ed } else { hs };
        let token = key.issue(&claims(features, limits, seats)).expect("issue");
        let mut v = Verifier::new(ring.clone());
        prop_assert!(v.verify(&token, NOW).is_ok());
        let bytes = token.as_bytes();
        for index in 0..bytes.len() {
            // Every byte value at every place is too many; each place gets its neighbour
            // (the subtlest change) and one arbitrary other byte.
            for b in [bytes[index] ^ 1, if replacement == bytes[index] { replacement ^ 0x80 } else { replacement }] {
                let mut mutated = bytes.to_vec();
                mutated[index] = b;
                // A byte that breaks UTF-8 cannot reach `verify(&str)`: the caller's own
                // decoding refuses it first.
                let Ok(text) = String::from_utf8(mutated) else { continue };
                let uncached = ring.verify(&text, NOW).expect_err("mutated");
                prop_assert!(allowed(&token, index, &uncached), "byte {} → {:#x}: {:?}", index, b, uncached);
                let cached = v.verify(&text, NOW).expect_err("mutated");
                prop_assert_eq!(&cached, &uncached, "the cache answers as the keyring");
            }
        }
    }
}
