//! Tokens: the known answers of docs/licences.md (computed with Python's hmac and
//! cryptography), one token per claims set, every refusal with its own error, rotation, key
//! files.

use std::collections::{BTreeMap, BTreeSet};

use base64ct::{Base64UrlUnpadded, Encoding as _};
use govern_licence::limits::{FEATURES_MAX, KEYS_MAX, LIMITS_MAX, TOKEN_LEN_MAX};
use govern_licence::{
    Algorithm, Claims, ClaimsError, Defect, Family, KeyError, KeyFile, Keyring, Kid, LicenceError,
    Part, SigningKey, VerifyingKey,
};

/// The claims of the docs' vectors.
fn claims() -> Claims {
    Claims {
        licence_id: "lic-0001".to_owned(),
        tenant: "acme".to_owned(),
        plan: "professional".to_owned(),
        features: BTreeSet::from(["sso".to_owned(), "api".to_owned()]),
        limits: BTreeMap::from([("projects".to_owned(), 100)]),
        seats: 25,
        issued_at: 1_767_225_600,
        not_before: 1_767_225_600,
        expires_at: 1_798_761_600,
    }
}

const PAYLOAD: &str = r#"{"licence_id":"lic-0001","tenant":"acme","plan":"professional","features":["api","sso"],"limits":{"projects":100},"seats":25,"issued_at":1767225600,"not_before":1767225600,"expires_at":1798761600}"#;
const PAYLOAD_B64: &str = "eyJsaWNlbmNlX2lkIjoibGljLTAwMDEiLCJ0ZW5hbnQiOiJhY21lIiwicGxhbiI6InByb2Zlc3Npb25hbCIsImZlYXR1cmVzIjpbImFwaSIsInNzbyJdLCJsaW1pdHMiOnsicHJvamVjdHMiOjEwMH0sInNlYXRzIjoyNSwiaXNzdWVkX2F0IjoxNzY3MjI1NjAwLCJub3RfYmVmb3JlIjoxNzY3MjI1NjAwLCJleHBpcmVzX2F0IjoxNzk4NzYxNjAwfQ";
/// HMAC-SHA256, kid `hs-2026`, secret the bytes 0x00..=0x1f.
const HS_TOKEN_SIG: &str = "UyKLZJqXa-j5pA3H9_sm8T9_wpSj4WSNtsbCqkB2ymg";
/// Ed25519, kid `ed-2026`, seed the bytes 0x20..=0x3f.
const ED_TOKEN_SIG: &str =
    "sJvIfL8-bwAk0zN4Ex0ZvIAa68ixFNNmS7F-oI0ngEK2-k8cdSmOjntPOLgrfLIXgCIFRmxqMCXI2Fmkc4X4Bg";
const ED_PUBLIC: &str = "Kay64UG8yvCyLhqU000LxzYeUm0L_hLIl5S8kyKWbdc";

const NOW: u64 = 1_780_000_000;

fn hs_key() -> SigningKey {
    let secret: Vec<u8> = (0u8..32).collect();
    SigningKey::hmac(Kid::new("hs-2026").expect("kid"), &secret).expect("key")
}

fn ed_key() -> SigningKey {
    let seed: [u8; 32] = std::array::from_fn(|i| 32 + u8::try_from(i).expect("small"));
    SigningKey::ed25519_from_seed(Kid::new("ed-2026").expect("kid"), &seed)
}

fn ring(keys: &[&SigningKey]) -> Keyring {
    let mut ring = Keyring::new();
    for k in keys {
        ring.insert(k.verifying_key()).expect("room");
    }
    ring
}

#[test]
fn tokens_match_the_documented_vectors() {
    let hs = hs_key().issue(&claims()).expect("issue");
    assert_eq!(hs, format!("govlic1.hs256.hs-2026.{PAYLOAD_B64}.{HS_TOKEN_SIG}"));
    let ed = ed_key().issue(&claims()).expect("issue");
    assert_eq!(ed, format!("govlic1.ed25519.ed-2026.{PAYLOAD_B64}.{ED_TOKEN_SIG}"));
    assert_eq!(Base64UrlUnpadded::decode_vec(PAYLOAD_B64).expect("b64"), PAYLOAD.as_bytes());
    assert_eq!(
        ed_key().to_public_file().expect("ed25519 has one"),
        format!("govlic-public1 ed25519 ed-2026 {ED_PUBLIC}\n")
    );

    let ring = ring(&[&hs_key(), &ed_key()]);
    for (token, kid, alg) in
        [(&hs, "hs-2026", Algorithm::Hs256), (&ed, "ed-2026", Algorithm::Ed25519)]
    {
        let licence = ring.verify(token, NOW).expect("valid");
        assert_eq!((licence.kid.as_str(), licence.alg), (kid, alg));
        assert_eq!(licence.claims, claims());
    }
}

#[test]
fn the_licence_serialises_as_one_json_object() {
    let licence = ring(&[&hs_key()]).verify(&hs_key().issue(&claims()).expect("issue"), NOW);
    let json = serde_json::to_string(&licence.expect("valid")).expect("json");
    assert_eq!(
        json,
        format!(r#"{{"kid":"hs-2026","alg":"hs256",{}"#, &PAYLOAD[1..]),
        "kid and alg, then the claims in the payload's order"
    );
}

#[test]
fn the_window_is_not_before_inclusive_and_expiry_exclusive() {
    let c = claims();
    let ring = ring(&[&ed_key()]);
    let token = ed_key().issue(&c).expect("issue");
    assert!(ring.verify(&token, c.not_before).is_ok());
    assert!(ring.verify(&token, c.expires_at - 1).is_ok());
    assert_eq!(
        ring.verify(&token, c.not_before - 1),
        Err(LicenceError::NotYetValid { not_before: c.not_before, now: c.not_before - 1 })
    );
    assert_eq!(
        ring.verify(&token, c.expires_at),
        Err(LicenceError::Expired { expired_at: c.expires_at, now: c.expires_at })
    );
}

#[test]
fn each_refusal_has_its_own_error_code_and_family() {
    let hs = hs_key();
    let token = hs.issue(&claims()).expect("issue");
    let ring = ring(&[&hs, &ed_key()]);
    let refuse = |t: &str, now: u64| ring.verify(t, now).expect_err("refused");

    let expired = refuse(&token, 1_798_761_600);
    let early = refuse(&token, 1_000);
    // Another secret under the same kid: the signature does not match.
    let other = SigningKey::hmac(Kid::new("hs-2026").expect("kid"), &[1u8; 32]).expect("key");
    let forged = refuse(&other.issue(&claims()).expect("issue"), NOW);
    // One payload byte changed (`acme` → `acmf` is a different base64 character).
    let mut tampered = token.clone();
    let at = tampered.find(PAYLOAD_B64).expect("payload") + 40;
    let swapped = if tampered.as_bytes()[at] == b'A' { "B" } else { "A" };
    tampered.replace_range(at..=at, swapped);
    let tampered = refuse(&tampered, NOW);
    let unknown = refuse(
        &SigningKey::hmac(Kid::new("old").expect("kid"), &[2u8; 32])
            .expect("key")
            .issue(&claims())
            .expect("issue"),
        NOW,
    );
    // The Ed25519 key's kid on an HMAC token.
    let renamed = SigningKey::hmac(Kid::new("ed-2026").expect("kid"), &[3u8; 32]).expect("key");
    let wrong_alg = refuse(&renamed.issue(&claims()).expect("issue"), NOW);
    let malformed = refuse("govlic2.hs256.k.AA.AA", NOW);

    let all = [&expired, &early, &forged, &tampered, &unknown, &wrong_alg, &malformed];
    let codes: Vec<&str> = all.iter().map(|e| e.code()).collect();
    assert_eq!(
        codes,
        [
            "expired",
            "not_yet_valid",
            "bad_signature",
            "bad_signature",
            "unknown_key",
            "wrong_algorithm",
            "malformed"
        ]
    );
    let families: Vec<Family> = all.iter().map(|e| e.family()).collect();
    assert_eq!(
        families,
        [
            Family::Time,
            Family::Time,
            Family::Inauthentic,
            Family::Inauthentic,
            Family::Inauthentic,
            Family::Inauthentic,
            Family::Malformed
        ]
    );
    assert_eq!(unknown, LicenceError::UnknownKey { kid: "old".to_owned() });
    assert_eq!(
        wrong_alg,
        LicenceError::WrongAlgorithm {
            kid: "ed-2026".to_owned(),
            token: Algorithm::Hs256,
            key: Algorithm::Ed25519
        }
    );
    assert_eq!(malformed, LicenceError::Malformed { what: Defect::BadPrefix, position: 0 });
}

/// A token with this payload text, signed properly with the HMAC key.
fn signed(payload: &str) -> String {
    let body =
        format!("govlic1.hs256.hs-2026.{}", Base64UrlUnpadded::encode_string(payload.as_bytes()));
    // Sign as the issuer would: the HMAC of everything before the last dot.
    use hmac::{KeyInit as _, Mac as _};
    let secret: Vec<u8> = (0u8..32).collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).expect("key");
    mac.update(body.as_bytes());
    format!("{body}.{}", Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes()))
}

#[test]
fn malformed_tokens_name_the_defect_and_where() {
    let ring = ring(&[&hs_key()]);
    let defect = |t: &str| match ring.verify(t, NOW) {
        Err(LicenceError::Malformed { what, position }) => (what, position),
        other => panic!("{t:?}: expected malformed, got {other:?}"),
    };
    let sig = HS_TOKEN_SIG;
    let long = "a".repeat(TOKEN_LEN_MAX + 1);
    assert_eq!(
        defect(&long),
        (Defect::TooLong { len: TOKEN_LEN_MAX + 1, max: TOKEN_LEN_MAX }, TOKEN_LEN_MAX)
    );
    assert_eq!(defect(""), (Defect::PartCount { found: 1 }, 0));
    assert_eq!(defect("govlic1.hs256.k.AA"), (Defect::PartCount { found: 4 }, 18));
    assert_eq!(defect("govlic1.hs256.k.AA.AA.AA"), (Defect::PartCount { found: 6 }, 21));
    assert_eq!(defect("GOVLIC1.hs256.k.AA.AA"), (Defect::BadPrefix, 0));
    assert_eq!(defect("govlic1.HS256.k.AA.AA"), (Defect::UnknownAlgorithm, 8));
    assert_eq!(defect("govlic1.hs256.k/1.AA.AA"), (Defect::BadKid, 15));
    assert_eq!(defect("govlic1.hs256..AA.AA"), (Defect::BadKid, 14));
    assert_eq!(
        defect(&format!("govlic1.hs256.hs-2026.AA=.{sig}")),
        (Defect::BadBase64 { part: Part::Payload }, 24)
    );
    // `AB` has non-zero trailing bits: not the canonical text of any byte.
    assert_eq!(
        defect(&format!("govlic1.hs256.hs-2026.AB.{sig}")),
        (Defect::BadBase64 { part: Part::Payload }, 23)
    );
    assert_eq!(
        defect(&format!("govlic1.hs256.hs-2026..{sig}")),
        (Defect::BadBase64 { part: Part::Payload }, 22)
    );
    assert_eq!(
        defect(&format!("govlic1.hs256.hs-2026.{PAYLOAD_B64}.+A")),
        (Defect::BadBase64 { part: Part::Signature }, 22 + PAYLOAD_B64.len() + 1)
    );
    assert_eq!(
        defect(&format!("govlic1.hs256.hs-2026.{PAYLOAD_B64}.{ED_TOKEN_SIG}")).0,
        Defect::SignatureLength { len: 64, expected: 32, algorithm: Algorithm::Hs256 }
    );

    // Signed, but not the claims' canonical JSON.
    assert!(matches!(defect(&signed("[1]")).0, Defect::Json { .. }));
    assert!(matches!(defect(&signed(&PAYLOAD.replace('}', ",\"x\":1}"))).0, Defect::Json { .. }));
    assert_eq!(
        defect(&signed(&PAYLOAD.replace(r#""seats":25,"#, ""))),
        (Defect::MissingClaim { claim: "seats" }, 22)
    );
    assert_eq!(defect(&signed(&PAYLOAD.replace(',', ", "))).0, Defect::NotCanonical);
    assert_eq!(
        defect(&signed(&PAYLOAD.replace(r#"["api","sso"]"#, r#"["sso","api"]"#))).0,
        Defect::NotCanonical
    );
    assert!(matches!(
        defect(&signed(&PAYLOAD.replace("acme", "ac me"))).0,
        Defect::Claims(ClaimsError::BadName { claim: "tenant", .. })
    ));
    // The canonical payload itself is accepted.
    assert!(ring.verify(&signed(PAYLOAD), NOW).is_ok());
}

#[test]
fn one_claims_set_gives_one_token() {
    let mut reordered = claims();
    reordered.features = ["sso", "api"].into_iter().map(str::to_owned).collect();
    for key in [hs_key(), ed_key()] {
        assert_eq!(key.issue(&claims()), key.issue(&reordered));
    }
}

#[test]
fn claims_out_of_bounds_are_not_issued() {
    let key = hs_key();
    let with = |f: &dyn Fn(&mut Claims)| {
        let mut c = claims();
        f(&mut c);
        key.issue(&c).expect_err("refused")
    };
    assert!(matches!(
        with(&|c| c.tenant = String::new()),
        ClaimsError::BadName { claim: "tenant", .. }
    ));
    assert!(matches!(
        with(&|c| c.plan = "p".repeat(129)),
        ClaimsError::BadName { claim: "plan", max: 128, .. }
    ));
    assert!(matches!(
        with(&|c| {
            c.features.insert("a\"b".to_owned());
        }),
        ClaimsError::BadName { claim: "features", .. }
    ));
    assert!(matches!(
        with(&|c| {
            c.limits.insert("é".to_owned(), 1);
        }),
        ClaimsError::BadName { claim: "limits", .. }
    ));
    assert_eq!(
        with(&|c| c.features = (0..=FEATURES_MAX).map(|i| format!("f{i}")).collect()),
        ClaimsError::TooManyFeatures { count: FEATURES_MAX + 1, max: FEATURES_MAX }
    );
    assert_eq!(
        with(&|c| c.limits = (0..=LIMITS_MAX).map(|i| (format!("l{i}"), 1)).collect()),
        ClaimsError::TooManyLimits { count: LIMITS_MAX + 1, max: LIMITS_MAX }
    );
    assert_eq!(
        with(&|c| c.expires_at = c.not_before),
        ClaimsError::EmptyWindow { not_before: 1_767_225_600, expires_at: 1_767_225_600 }
    );
}

#[test]
fn the_largest_claims_set_fits_in_a_token() {
    let mut c = claims();
    let name = |p: &str, i: usize| format!("{p}{i:0>63}");
    c.licence_id = "l".repeat(128);
    c.tenant = "t".repeat(128);
    c.plan = "p".repeat(128);
    c.features = (0..FEATURES_MAX).map(|i| name("f", i)).collect();
    c.limits = (0..LIMITS_MAX).map(|i| (name("l", i), u64::MAX)).collect();
    c.seats = u32::MAX;
    (c.issued_at, c.not_before, c.expires_at) = (u64::MAX, u64::MAX - 1, u64::MAX);
    let token = ed_key().issue(&c).expect("issue");
    assert!(token.len() <= TOKEN_LEN_MAX, "{} bytes", token.len());
    assert_eq!(ring(&[&ed_key()]).verify(&token, u64::MAX - 1).expect("valid").claims, c);
}

#[test]
fn rotation_verifies_old_and_new_keys_side_by_side() {
    let old = hs_key();
    let new = ed_key();
    let old_token = old.issue(&claims()).expect("issue");
    let new_token = new.issue(&claims()).expect("issue");
    let mut ring = ring(&[&old, &new]);
    assert!(ring.verify(&old_token, NOW).is_ok());
    assert!(ring.verify(&new_token, NOW).is_ok());
    assert!(ring.remove("hs-2026").is_some());
    assert_eq!(
        ring.verify(&old_token, NOW),
        Err(LicenceError::UnknownKey { kid: "hs-2026".to_owned() })
    );
    assert!(ring.verify(&new_token, NOW).is_ok());
}

#[test]
fn a_keyring_is_bounded() {
    let mut ring = Keyring::new();
    for i in 0..KEYS_MAX {
        let key =
            SigningKey::hmac(Kid::new(&format!("k{i}")).expect("kid"), &[5u8; 32]).expect("key");
        ring.insert(key.verifying_key()).expect("room");
    }
    let extra = SigningKey::hmac(Kid::new("extra").expect("kid"), &[5u8; 32]).expect("key");
    assert_eq!(
        ring.insert(extra.verifying_key()).map(|_| ()),
        Err(KeyError::TooManyKeys { max: KEYS_MAX })
    );
    // Replacing a key by id needs no room.
    let again = SigningKey::hmac(Kid::new("k0").expect("kid"), &[6u8; 32]).expect("key");
    assert!(ring.insert(again.verifying_key()).expect("replaced").is_some());
    assert_eq!(ring.len(), KEYS_MAX);
}

#[test]
fn key_files_round_trip_and_bad_ones_are_refused() {
    for key in [hs_key(), ed_key()] {
        let KeyFile::Secret(back) = KeyFile::parse(&key.to_secret_file()).expect("parse") else {
            panic!("a secret file")
        };
        assert_eq!(back.issue(&claims()), key.issue(&claims()));
    }
    assert_eq!(
        hs_key().to_secret_file(),
        "govlic-secret1 hs256 hs-2026 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"
    );
    let public = KeyFile::parse(&ed_key().to_public_file().expect("ed25519")).expect("parse");
    assert!(matches!(public, KeyFile::Public(_)));
    let ring = {
        let mut r = Keyring::new();
        r.insert(public.verifying_key()).expect("room");
        r
    };
    assert!(ring.verify(&ed_key().issue(&claims()).expect("issue"), NOW).is_ok());

    for bad in [
        "",
        "govlic-secret1 hs256 k",
        "govlic-secret2 hs256 k AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "govlic-public1 hs256 k AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "govlic-secret1 rsa k AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "govlic-secret1 ed25519 k AAEC",
        "govlic-secret1 ed25519 k AA==",
    ] {
        assert!(matches!(KeyFile::parse(bad), Err(KeyError::BadKeyFile(_))), "{bad:?}");
    }
    assert_eq!(
        KeyFile::parse("govlic-secret1 hs256 k AAEC").map(|_| ()),
        Err(KeyError::SecretLength { len: 3 })
    );
    assert!(matches!(KeyFile::parse("govlic-secret1 hs256 a.b AAEC"), Err(KeyError::BadKid(_))));
    assert!(VerifyingKey::hmac(Kid::new("k").expect("kid"), &[0u8; 65]).is_err());
    assert!(format!("{:?}", hs_key()).contains("hs-2026"));
    assert!(!format!("{:?}", hs_key()).contains("AAEC"), "Debug never shows the secret");
}
