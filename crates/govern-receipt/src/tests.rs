//! Receipt format v1: test vectors, golden records, verification errors, properties.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use proptest::prelude::*;

use crate::{ChainError, ChainVerifier, Digest, Receipt, ReceiptBody, ReceiptJson, verify_chain};

fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[allow(clippy::too_many_arguments)]
fn body(
    ts: u64,
    tenant: &str,
    governor: GovernorKind,
    resource: &str,
    resource_seq: u64,
    cmd: (&'static str, &'static str, &'static str),
    reason: &str,
    args: &[(&str, &str)],
    metadata: &[(&str, &str)],
) -> ReceiptBody {
    ReceiptBody {
        timestamp: Timestamp(ts),
        tenant: TenantId::new(tenant).unwrap(),
        governor,
        resource: ResourceId::new(resource).unwrap(),
        resource_seq,
        command: Cow::Borrowed(cmd.0),
        state_from: Cow::Borrowed(cmd.1),
        state_to: Cow::Borrowed(cmd.2),
        reason: reason.to_owned(),
        args: map(args),
        metadata: map(metadata),
    }
}

/// The chain published as test vectors in `docs/receipts.md`.
fn vector_chain() -> Vec<Receipt> {
    let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let bodies = [
        body(
            t0,
            "acme",
            GovernorKind::Subscription,
            "sub-1",
            0,
            ("start_trial", "pending", "free_trial"),
            "customer signed up",
            &[("plan", "pro"), ("trial_days", "14")],
            &[("channel", "web"), ("request_id", "req-0001")],
        ),
        body(
            t0 + 86_400_000,
            "acme",
            GovernorKind::Subscription,
            "sub-1",
            1,
            ("activate", "free_trial", "active"),
            "trial converted",
            &[("plan", "pro")],
            &[],
        ),
        body(
            t0 + 86_400_123,
            "globex",
            GovernorKind::Billing,
            "pay-7",
            0,
            ("request_payment", "uninitialized", "payment_pending"),
            "Zahlung für Rechnung Nr. 7",
            &[("amount", "49.99"), ("currency", "EUR"), ("method", "card")],
            &[],
        ),
    ];
    let mut prev = Digest::ZERO;
    let mut out = Vec::new();
    for (seq, b) in (0u64..).zip(bodies) {
        let r = Receipt::seal(b, seq, prev);
        prev = r.hash;
        out.push(r);
    }
    out
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Vector {
    receipt: ReceiptJson,
    preimage: String,
}

fn vectors_json(chain: &[Receipt]) -> String {
    let vs: Vec<Vector> = chain
        .iter()
        .map(|r| {
            let mut pre = Vec::new();
            crate::encode::preimage_into(r, &mut pre);
            Vector { receipt: ReceiptJson::from(r), preimage: hex::encode(pre) }
        })
        .collect();
    serde_json::to_string_pretty(&vs).unwrap()
}

const VECTORS_START: &str = "<!-- test-vectors:start -->\n```json\n";
const VECTORS_END: &str = "\n```\n<!-- test-vectors:end -->";

#[test]
fn the_vectors_in_receipts_md_are_the_code_s_and_verify_on_their_own() {
    let path = repo_path("docs/receipts.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find(VECTORS_START).expect("receipts.md has a test-vectors block")
        + VECTORS_START.len();
    let end = start + doc[start..].find(VECTORS_END).expect("the block is closed");
    let expected = vectors_json(&vector_chain());
    if doc[start..end] != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, format!("{}{}{}", &doc[..start], expected, &doc[end..])).unwrap();
        } else {
            panic!(
                "docs/receipts.md test vectors are stale: run UPDATE_DOCS=1 cargo test -p govern-receipt"
            );
        }
    }
    // Independently of the code that built them: each vector's preimage hashes to its hash,
    // re-encoding its fields gives its preimage, and the three form a chain.
    let vs: Vec<Vector> = serde_json::from_str(&doc[start..end]).unwrap();
    assert!(vs.len() >= 3);
    let mut chain = Vec::new();
    for v in vs {
        use sha2::Digest as _;
        let pre = hex::decode(&v.preimage).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&pre)), v.receipt.hash);
        let r = Receipt::try_from(v.receipt).unwrap();
        let mut again = Vec::new();
        crate::encode::preimage_into(&r, &mut again);
        assert_eq!(again, pre);
        chain.push(r);
    }
    assert_eq!(verify_chain(&chain).unwrap().next_seq, 3);
}

#[test]
fn golden_records_pin_the_encoding() {
    let path = repo_path("crates/govern-receipt/tests/fixtures/receipts-v1.hex");
    let chain = vector_chain();
    let expected: String = chain.iter().map(|r| hex::encode(r.encode()) + "\n").collect();
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    if golden != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        } else {
            panic!(
                "golden records differ from the encoder: the format changed. If intended, bump FORMAT_VERSION; to re-bless run UPDATE_DOCS=1 cargo test -p govern-receipt"
            );
        }
    }
    let mut v = ChainVerifier::new();
    for (line, r) in golden.lines().zip(&chain) {
        let record = hex::decode(line).unwrap();
        v.push_record(&record).unwrap();
        assert_eq!(&Receipt::decode(&record).unwrap(), r);
    }
    assert_eq!(v.head().next_seq, 3);
}

#[test]
fn receipt_ids_are_uuidv7_from_timestamp_and_prev_hash() {
    let chain = vector_chain();
    let r = &chain[1];
    let id = r.id.as_bytes();
    let ts = r.body.timestamp.as_ms().to_be_bytes();
    let p = r.prev_hash.0;
    assert_eq!(&id[..6], &ts[2..]);
    assert_eq!(id[6], 0x70 | (p[0] & 0x0f));
    assert_eq!(id[7], p[1]);
    assert_eq!(id[8], 0x80 | (p[2] & 0x3f));
    assert_eq!(&id[9..], &p[3..10]);
    assert_eq!(r.id.get_version_num(), 7);
}

#[test]
fn each_kind_of_damage_is_named_at_its_receipt() {
    let chain = vector_chain();
    let mut bad = chain.clone();
    bad[1].body.reason.push('!');
    assert!(matches!(verify_chain(&bad), Err(ChainError::HashMismatch { seq: 1, .. })));

    let mut bad = chain.clone();
    bad.remove(1);
    let err = verify_chain(&bad).unwrap_err();
    assert_eq!(err, ChainError::SequenceGap { expected: 1, found: 2 });
    assert_eq!(err.to_string(), "sequence gap: expected receipt 1, found 2");

    // Re-sealed at the right place but linked to the wrong predecessor.
    let mut bad = chain.clone();
    bad[2] = Receipt::seal(chain[2].body.clone(), 2, chain[0].hash);
    assert!(matches!(verify_chain(&bad), Err(ChainError::BrokenLink { seq: 2, .. })));

    // Fields and hash consistent, but the id was not derived as specified.
    let mut bad = chain.clone();
    bad[0].id = uuid::Uuid::nil();
    bad[0].hash = bad[0].compute_hash(&mut Vec::new());
    assert_eq!(verify_chain(&bad[..1]), Err(ChainError::IdMismatch { seq: 0 }));
}

#[test]
fn json_view_round_trips_with_lowercase_hex() {
    for r in vector_chain() {
        let json = r.to_json();
        assert!(json.contains(&format!("\"hash\":\"{}\"", r.hash)));
        assert!(!r.hash.to_string().chars().any(|c| c.is_ascii_uppercase()));
        assert_eq!(Receipt::from_json(&json).unwrap(), r);
    }
    assert!(Receipt::from_json("{\"seq\":1}").is_err());
}

#[test]
fn malformed_records_are_refused_with_the_field() {
    let mut record = vector_chain()[0].encode();
    assert!(matches!(Receipt::decode(&record[..10]), Err(crate::DecodeError::TooShort { .. })));
    record[14] = 2;
    assert_eq!(Receipt::decode(&record), Err(crate::DecodeError::UnsupportedVersion(2)));
    record[14] = 1;
    record[0] = b'G';
    assert_eq!(Receipt::decode(&record), Err(crate::DecodeError::BadTag));
}

fn arb_text() -> impl Strategy<Value = String> {
    "[a-z0-9 üé_.-]{0,24}"
}

fn arb_body() -> impl Strategy<Value = ReceiptBody> {
    (
        0u64..4_000_000_000_000,
        "[a-z][a-z0-9-]{0,11}",
        0usize..8,
        "[a-z][a-z0-9:_-]{0,15}",
        0u64..1000,
        "[a-z_]{1,20}",
        arb_text(),
        prop::collection::btree_map("[a-z_]{1,8}", arb_text(), 0..4),
        prop::collection::btree_map("[a-z_.]{1,8}", arb_text(), 0..3),
    )
        .prop_map(|(ts, tenant, kind, resource, rseq, command, reason, args, metadata)| {
            ReceiptBody {
                timestamp: Timestamp(ts),
                tenant: TenantId::new(&tenant).unwrap(),
                governor: GovernorKind::ALL[kind],
                resource: ResourceId::new(&resource).unwrap(),
                resource_seq: rseq,
                command: Cow::Owned(command.clone()),
                state_from: Cow::Owned(format!("{command}_from")),
                state_to: Cow::Owned(format!("{command}_to")),
                reason,
                args,
                metadata,
            }
        })
}

fn seal_all(bodies: Vec<ReceiptBody>) -> Vec<Receipt> {
    let mut prev = Digest::ZERO;
    (0u64..)
        .zip(bodies)
        .map(|(seq, b)| {
            let r = Receipt::seal(b, seq, prev);
            prev = r.hash;
            r
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_chain_produced_verifies_both_ways(bodies in prop::collection::vec(arb_body(), 1..12)) {
        let chain = seal_all(bodies);
        let head = verify_chain(&chain).unwrap();
        prop_assert_eq!(head.next_seq, chain.len() as u64);
        let mut v = ChainVerifier::new();
        for r in &chain {
            let record = r.encode();
            prop_assert_eq!(v.push_record(&record).unwrap(), r.hash);
            prop_assert_eq!(&Receipt::decode(&record).unwrap(), r);
        }
        prop_assert_eq!(v.head(), head);
    }

    #[test]
    fn any_single_byte_change_is_caught_at_its_receipt(
        bodies in prop::collection::vec(arb_body(), 1..8),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let chain = seal_all(bodies);
        let mut records: Vec<Vec<u8>> = chain.iter().map(Receipt::encode).collect();
        let victim = which.index(records.len());
        let byte = at.index(records[victim].len());
        records[victim][byte] ^= xor;
        let mut v = ChainVerifier::new();
        let err = records.iter().try_for_each(|r| v.push_record(r).map(|_| ())).unwrap_err();
        prop_assert_eq!(err.seq(), victim as u64, "{}", err);
        // The decoding path names the same receipt.
        let mut v = ChainVerifier::new();
        let err = records
            .iter()
            .zip(0u64..)
            .try_for_each(|(rec, seq)| match Receipt::decode(rec) {
                Ok(r) => v.push(&r),
                Err(source) => Err(ChainError::Malformed { seq, source }),
            })
            .unwrap_err();
        prop_assert_eq!(err.seq(), victim as u64, "{}", err);
    }
}
