//! Signature headers: known answer, rotation, tolerance, tampering, every header error.

use govern_webhooks::signature::{
    MAC_LEN, SECRET_LEN_MAX, SECRETS_MAX, SIGNATURE_HEADER_LEN_MAX, TOLERANCE_SECS_DEFAULT,
};
use govern_webhooks::{
    HeaderError, SignatureHeader, Verified, Verifier, VerifierError, VerifyError, sign, signature,
};
use proptest::prelude::*;

const SECRET: &[u8] = b"whsec_test_secret";
const T: u64 = 1_700_000_000;
const BODY: &[u8] = br#"{"id":"evt_1"}"#;
/// Computed independently:
/// `printf '%s' '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret`
/// and Python's `hmac.new(b'whsec_test_secret', b'1700000000.{"id":"evt_1"}', 'sha256')`.
const KNOWN: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

fn verifier() -> Verifier {
    match Verifier::new(&[SECRET]) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn known_answer() {
    assert_eq!(hex::encode(signature(SECRET, T, BODY)), KNOWN);
    assert_eq!(sign(SECRET, T, BODY), format!("t={T},v1={KNOWN}"));
    assert_eq!(
        verifier().verify(&format!("t={T},v1={KNOWN}"), BODY, T),
        Ok(Verified { timestamp: T, secret_index: 0 })
    );
    // Upper-case hex is hex too.
    let upper = format!("t={T},v1={}", KNOWN.to_uppercase());
    assert_eq!(verifier().verify(&upper, BODY, T), Ok(Verified { timestamp: T, secret_index: 0 }));
}

#[test]
fn rotation_accepts_any_secret_and_any_v1() {
    let old = b"whsec_old".as_slice();
    let new = b"whsec_new".as_slice();
    let v = Verifier::new(&[new, old]).unwrap_or_else(|e| panic!("{e}"));
    // Signed with the old secret only.
    assert_eq!(
        v.verify(&sign(old, T, BODY), BODY, T),
        Ok(Verified { timestamp: T, secret_index: 1 })
    );
    // Signed with the new secret only.
    assert_eq!(
        v.verify(&sign(new, T, BODY), BODY, T),
        Ok(Verified { timestamp: T, secret_index: 0 })
    );
    // The provider sends both during its rotation: a wrong first v1, the right second.
    let both = format!(
        "t={T},v1={},v1={}",
        hex::encode(signature(b"whsec_other", T, BODY)),
        hex::encode(signature(old, T, BODY))
    );
    assert_eq!(v.verify(&both, BODY, T), Ok(Verified { timestamp: T, secret_index: 1 }));
    // A verifier without the old secret refuses it.
    let only_new = Verifier::new(&[new]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(only_new.verify(&sign(old, T, BODY), BODY, T), Err(VerifyError::NoMatch));
}

#[test]
fn tolerance_refuses_stale_and_future() {
    let v = verifier();
    assert_eq!(v.tolerance_secs(), TOLERANCE_SECS_DEFAULT);
    assert_eq!(TOLERANCE_SECS_DEFAULT, 300);
    let h = sign(SECRET, T, BODY);
    // Exactly at the edges: accepted.
    assert!(v.verify(&h, BODY, T + 300).is_ok());
    assert!(v.verify(&h, BODY, T - 300).is_ok());
    assert_eq!(
        v.verify(&h, BODY, T + 301),
        Err(VerifyError::Stale { age_secs: 301, tolerance_secs: 300 })
    );
    assert_eq!(
        v.verify(&h, BODY, T - 301),
        Err(VerifyError::Future { ahead_secs: 301, tolerance_secs: 300 })
    );
    let strict = verifier().with_tolerance(10);
    assert_eq!(
        strict.verify(&h, BODY, T + 11),
        Err(VerifyError::Stale { age_secs: 11, tolerance_secs: 10 })
    );
    // Extremes do not overflow.
    assert_eq!(
        v.verify(&h, BODY, u64::MAX),
        Err(VerifyError::Stale { age_secs: u64::MAX - T, tolerance_secs: 300 })
    );
    let h0 = sign(SECRET, u64::MAX, BODY);
    assert_eq!(
        v.verify(&h0, BODY, 0),
        Err(VerifyError::Future { ahead_secs: u64::MAX, tolerance_secs: 300 })
    );
}

#[test]
fn stale_is_reported_only_for_authentic_deliveries() {
    // A forged header with an old timestamp is a mismatch, not "stale".
    let forged = format!("t={},v1={}", T - 10_000, "00".repeat(MAC_LEN));
    assert_eq!(verifier().verify(&forged, BODY, T), Err(VerifyError::NoMatch));
}

#[test]
fn tampering_is_refused() {
    let v = verifier();
    let h = sign(SECRET, T, BODY);
    assert_eq!(v.verify(&h, br#"{"id":"evt_2"}"#, T), Err(VerifyError::NoMatch));
    // The timestamp is signed: changing it breaks the MAC.
    let moved = format!("t={},v1={KNOWN}", T + 1);
    assert_eq!(v.verify(&moved, BODY, T), Err(VerifyError::NoMatch));
    // One flipped hex digit of the MAC.
    let mut flipped = KNOWN.to_owned();
    flipped.replace_range(0..1, "3");
    assert_eq!(v.verify(&format!("t={T},v1={flipped}"), BODY, T), Err(VerifyError::NoMatch));
    // The right MAC under another scheme does not count.
    assert_eq!(
        v.verify(&format!("t={T},v0={KNOWN}"), BODY, T),
        Err(VerifyError::Header(HeaderError::MissingSignature))
    );
}

#[test]
fn header_parses() {
    let parsed = SignatureHeader::parse(&format!("t={T}, v1={KNOWN},v0=whatever,v2=abc"));
    let mac = signature(SECRET, T, BODY);
    assert_eq!(parsed, Ok(SignatureHeader { timestamp: T, signatures: vec![mac] }));
}

#[test]
fn every_header_error() {
    let p = SignatureHeader::parse;
    let good = KNOWN;
    assert_eq!(p(&format!("v1={good}")), Err(HeaderError::MissingTimestamp));
    assert_eq!(p(&format!("t={T}")), Err(HeaderError::MissingSignature));
    assert_eq!(p(&format!("t={T},v0={good}")), Err(HeaderError::MissingSignature));
    assert_eq!(
        p(&format!("t=12a,v1={good}")),
        Err(HeaderError::BadTimestamp { value: "12a".into() })
    );
    assert_eq!(
        p(&format!("t=,v1={good}")),
        Err(HeaderError::BadTimestamp { value: String::new() })
    );
    assert_eq!(
        p(&format!("t=+5,v1={good}")),
        Err(HeaderError::BadTimestamp { value: "+5".into() })
    );
    assert_eq!(
        p(&format!("t=-5,v1={good}")),
        Err(HeaderError::BadTimestamp { value: "-5".into() })
    );
    assert_eq!(
        p(&format!("t=99999999999999999999,v1={good}")),
        Err(HeaderError::BadTimestamp { value: "99999999999999999999".into() })
    );
    assert_eq!(p(&format!("t=1,t=1,v1={good}")), Err(HeaderError::DuplicateTimestamp));
    assert_eq!(p(&format!("t={T},v1={good},v1=zz")), Err(HeaderError::BadHex { index: 1 }));
    assert_eq!(p(&format!("t={T},v1=abc")), Err(HeaderError::BadHex { index: 0 }));
    assert_eq!(
        p(&format!("t={T},v1=abcd")),
        Err(HeaderError::BadSignatureLength { index: 0, len: 2, expected: MAC_LEN })
    );
    assert_eq!(
        p(&format!("t={T},v1={good},junk")),
        Err(HeaderError::MalformedElement { index: 2 })
    );
    assert_eq!(p(""), Err(HeaderError::MalformedElement { index: 0 }));
    let long = format!("t={T},v1={good},{}", "x=y,".repeat(SIGNATURE_HEADER_LEN_MAX));
    assert_eq!(
        p(&long),
        Err(HeaderError::TooLong { len: long.len(), max: SIGNATURE_HEADER_LEN_MAX })
    );
    // The limit itself is accepted.
    let pad = SIGNATURE_HEADER_LEN_MAX - format!("t={T},v1={good},x=").len();
    let at_limit = format!("t={T},v1={good},x={}", "y".repeat(pad));
    assert_eq!(at_limit.len(), SIGNATURE_HEADER_LEN_MAX);
    assert!(p(&at_limit).is_ok());
    // Header errors reach verify unchanged.
    assert_eq!(
        verifier().verify(&format!("v1={good}"), BODY, T),
        Err(VerifyError::Header(HeaderError::MissingTimestamp))
    );
}

#[test]
fn verifier_construction_errors() {
    let none: [&[u8]; 0] = [];
    assert_eq!(Verifier::new(&none).map(|_| ()), Err(VerifierError::NoSecrets));
    let many = vec![b"s".as_slice(); SECRETS_MAX + 1];
    assert_eq!(
        Verifier::new(&many).map(|_| ()),
        Err(VerifierError::TooManySecrets { count: SECRETS_MAX + 1, max: SECRETS_MAX })
    );
    assert_eq!(
        Verifier::new(&[b"ok".as_slice(), b"".as_slice()]).map(|_| ()),
        Err(VerifierError::BadSecret { index: 1, len: 0, max: SECRET_LEN_MAX })
    );
    let long = vec![b'k'; SECRET_LEN_MAX + 1];
    assert_eq!(
        Verifier::new(&[long]).map(|_| ()),
        Err(VerifierError::BadSecret { index: 0, len: SECRET_LEN_MAX + 1, max: SECRET_LEN_MAX })
    );
    // Debug does not show secrets.
    assert!(!format!("{:?}", verifier()).contains("whsec"));
}

proptest! {
    #[test]
    fn parser_never_panics(s in ".{0,1200}") {
        let _ = SignatureHeader::parse(&s);
        let _ = verifier().verify(&s, BODY, T);
    }

    #[test]
    fn parser_never_panics_on_header_like_input(
        parts in proptest::collection::vec("(t|v1|v0|x)?=?[0-9a-fA-Fz+ -]{0,70}", 0..8),
    ) {
        let s = parts.join(",");
        let _ = SignatureHeader::parse(&s);
    }

    #[test]
    fn sign_then_verify_roundtrips(
        secret in proptest::collection::vec(any::<u8>(), 1..64),
        t in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let v = Verifier::new(&[&secret]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(v.verify(&sign(&secret, t, &body), &body, t), Ok(Verified { timestamp: t, secret_index: 0 }));
    }
}
