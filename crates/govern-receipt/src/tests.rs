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
fn replay_from_a_decoded_prefix_gives_the_whole_replay_and_checks_the_numbering() {
    use govern_governors::Governor as _;
    use govern_governors::subscription::Subscription;
    let chain: Vec<Receipt> = vector_chain().into_iter().take(2).collect();
    let whole: Subscription = crate::replay(&chain).unwrap();
    for cut in 0..=chain.len() {
        let prefix: Subscription = crate::replay(&chain[..cut]).unwrap();
        let decoded = Subscription::decode_state(&prefix.encode_state().unwrap()).unwrap();
        let resumed = crate::replay_from(decoded, cut as u64, &chain[cut..]).unwrap();
        assert_eq!(resumed, whole, "cut at {cut}");
    }
    // After one receipt the next must be numbered 1: starting the count elsewhere is refused.
    let first: Subscription = crate::replay(&chain[..1]).unwrap();
    assert_eq!(
        crate::replay_from(first.clone(), 2, &chain[1..]),
        Err(crate::ReplayError::ResourceSeq { seq: 1, expected: 2, found: 1 })
    );
    assert_eq!(
        crate::replay_from(first, 0, &chain[1..]),
        Err(crate::ReplayError::ResourceSeq { seq: 1, expected: 0, found: 1 })
    );
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
fn serde_writes_the_export_json_view_exactly() {
    let chain = vector_chain();
    let r = &chain[0];
    let expected = concat!(
        r#"{"seq":0,"receipt_id":"019b76da-a800-7000-8000-000000000000","timestamp_ms":1767225600000,"#,
        r#""tenant_id":"acme","governor":"subscription","resource_id":"sub-1","resource_seq":0,"#,
        r#""command":"start_trial","state_from":"pending","state_to":"free_trial","#,
        r#""reason":"customer signed up","args":{"plan":"pro","trial_days":"14"},"#,
        r#""metadata":{"channel":"web","request_id":"req-0001"},"#,
        r#""prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
        r#""hash":"1c99bdc917a7bf0a96477ee1ced5f9376f718b4bbc2c10b2e55855daf3d3d2d6"}"#,
    );
    assert_eq!(serde_json::to_string(r).unwrap(), expected);
    // One shape for all: the export's view, `to_json` and serde agree on every receipt.
    for r in &chain {
        let view = serde_json::to_string(&ReceiptJson::from(r)).unwrap();
        assert_eq!(serde_json::to_string(r).unwrap(), view);
        assert_eq!(r.to_json(), view);
        assert_eq!(serde_json::from_str::<Receipt>(&view).unwrap(), *r);
    }
    // Deserialising checks the fields as `from_json` does.
    let bad = expected.replace("\"sub-1\"", "\"\"");
    let e = serde_json::from_str::<Receipt>(&bad).unwrap_err().to_string();
    assert!(e.starts_with("resource_id:"), "{e}");
    assert!(serde_json::from_str::<Receipt>(r#"{"seq":1}"#).is_err());
}

#[test]
fn digests_and_heads_serialise_as_lowercase_hex() {
    let hash: Digest =
        "1c99bdc917a7bf0a96477ee1ced5f9376f718b4bbc2c10b2e55855daf3d3d2d6".parse().unwrap();
    let head = crate::Head { next_seq: 3, last_hash: hash };
    let json = serde_json::to_string(&head).unwrap();
    assert_eq!(
        json,
        r#"{"next_seq":3,"last_hash":"1c99bdc917a7bf0a96477ee1ced5f9376f718b4bbc2c10b2e55855daf3d3d2d6"}"#
    );
    assert_eq!(serde_json::from_str::<crate::Head>(&json).unwrap(), head);
    assert_eq!(serde_json::to_string(&Digest::ZERO).unwrap(), format!("\"{}\"", "0".repeat(64)));
    let upper = format!("\"{}\"", hash.to_string().to_uppercase());
    assert!(serde_json::from_str::<Digest>(&upper).is_err());
    assert!(serde_json::from_str::<Digest>("\"00\"").is_err());
    assert!(serde_json::from_str::<Digest>("0").is_err());
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

/// A record's fields as raw bytes, so that any of them can be what no receipt holds.
#[derive(Clone, Debug)]
struct RawFields {
    tenant: Vec<u8>,
    governor: Vec<u8>,
    resource: Vec<u8>,
    resource_seq: u64,
    texts: [Vec<u8>; 4],
    args: Vec<(Vec<u8>, Vec<u8>)>,
    metadata: Vec<(Vec<u8>, Vec<u8>)>,
    trailing: Vec<u8>,
}

/// The storage record of `f` (its `prev_hash` 0x22 bytes and its hash 0x33 bytes: decoding
/// checks neither), spoiled by `flips`, (offset, xor) pairs placed past the tag and version,
/// and by `cut`, a length the preimage is cut to (at least the tag and version).
fn raw_record(f: &RawFields, flips: &[(prop::sample::Index, u8)], cut: Option<usize>) -> Vec<u8> {
    fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    let mut buf = Vec::new();
    buf.extend_from_slice(crate::DOMAIN_TAG);
    buf.push(crate::FORMAT_VERSION);
    buf.extend_from_slice(&7u64.to_be_bytes());
    buf.extend_from_slice(&[0x11; 16]);
    buf.extend_from_slice(&1_767_225_600_000u64.to_be_bytes());
    put(&mut buf, &f.tenant);
    put(&mut buf, &f.governor);
    put(&mut buf, &f.resource);
    buf.extend_from_slice(&f.resource_seq.to_be_bytes());
    for text in &f.texts {
        put(&mut buf, text);
    }
    for map in [&f.args, &f.metadata] {
        buf.extend_from_slice(&(map.len() as u32).to_be_bytes());
        for (k, v) in map {
            put(&mut buf, k);
            put(&mut buf, v);
        }
    }
    buf.extend_from_slice(&f.trailing);
    buf.extend_from_slice(&[0x22; 32]);
    // Past the tag and version (whose checks are the frame's, shared by both anyway).
    for (at, xor) in flips {
        let at = 15 + at.index(buf.len() - 15);
        buf[at] ^= xor;
    }
    if let Some(cut) = cut {
        buf.truncate(buf.len().min(cut.max(15)));
    }
    buf.extend_from_slice(&[0x33; 32]);
    buf
}

/// Bytes near the edges of every rule: id characters and others, ASCII and multi-byte
/// UTF-8, invalid UTF-8 (lone continuation, truncated sequence, surrogate, overlong).
fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => prop::sample::select(b"aZ09._:-".to_vec()),
        2 => prop::sample::select(b" /!~\x00\x7f".to_vec()),
        1 => prop::sample::select(vec![0x80u8, 0xbf, 0xc3, 0xa9, 0xc0, 0xed, 0xa0, 0xf0, 0xff]),
    ];
    prop::collection::vec(byte, 0..=max)
}

/// Mostly valid UTF-8 (ASCII and not), sometimes any bytes.
fn arb_text_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(prop::sample::select(vec!['a', 'z', '_', ' ', 'é', 'ü', '€']), 0..=max)
            .prop_map(|cs| cs.into_iter().collect::<String>().into_bytes()),
        1 => arb_bytes(max),
    ]
}

fn arb_raw_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => "[a-zA-Z0-9._:-]{1,12}".prop_map(String::into_bytes),
        4 => arb_bytes(12),
        1 => (127usize..=130).prop_map(|n| vec![b'a'; n]),
        1 => Just("é".as_bytes().to_vec()),
    ]
}

fn arb_map() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    let entries = prop::collection::vec((arb_text_bytes(2), arb_text_bytes(4)), 0..4);
    (entries, 0..4).prop_map(|(mut entries, sort)| {
        // Mostly sorted and unique, as a writer would; sometimes as drawn.
        if sort > 0 {
            entries.sort();
            entries.dedup_by(|a, b| a.0 == b.0);
        }
        entries
    })
}

fn arb_raw_fields() -> impl Strategy<Value = RawFields> {
    let governor = prop_oneof![
        6 => (0usize..8).prop_map(|i| GovernorKind::ALL[i].name().as_bytes().to_vec()),
        1 => arb_bytes(13),
    ];
    (
        arb_raw_id(),
        governor,
        arb_raw_id(),
        any::<u64>(),
        [arb_text_bytes(6), arb_text_bytes(6), arb_text_bytes(6), arb_text_bytes(8)],
        arb_map(),
        arb_map(),
        prop_oneof![8 => Just(Vec::new()), 1 => arb_bytes(3)],
    )
        .prop_map(
            |(tenant, governor, resource, resource_seq, texts, args, metadata, trailing)| {
                RawFields {
                    tenant,
                    governor,
                    resource,
                    resource_seq,
                    texts,
                    args,
                    metadata,
                    trailing,
                }
            },
        )
}

/// The decoder as written before `decode_key` shared its parser: every string through
/// `str::from_utf8`, every id through its type, no quick paths. The rules, spelled out
/// plainly, for the parser to be checked against.
fn reference_decode(record: &[u8]) -> Result<Receipt, crate::DecodeError> {
    use crate::DecodeError;
    struct R<'a>(&'a [u8], usize);
    impl<'a> R<'a> {
        fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
            let end = self.1.checked_add(n).filter(|e| *e <= self.0.len());
            let end = end.ok_or(DecodeError::Truncated { field, offset: self.1 })?;
            let out = &self.0[self.1..end];
            self.1 = end;
            Ok(out)
        }
        fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
            Ok(u64::from_be_bytes(self.take(8, field)?.try_into().unwrap()))
        }
        fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
            let len = u32::from_be_bytes(self.take(4, field)?.try_into().unwrap()) as usize;
            let offset = self.1;
            std::str::from_utf8(self.take(len, field)?)
                .map_err(|_| DecodeError::BadUtf8 { field, offset })
        }
        fn map(&mut self, field: &'static str) -> Result<BTreeMap<String, String>, DecodeError> {
            let count = u32::from_be_bytes(self.take(4, field)?.try_into().unwrap());
            let mut map = BTreeMap::new();
            let mut last: Option<&str> = None;
            for _ in 0..count {
                let offset = self.1;
                let k = self.str(field)?;
                if last.is_some_and(|l| l.as_bytes() >= k.as_bytes()) {
                    return Err(DecodeError::KeysNotSorted { field, offset });
                }
                map.insert(k.to_owned(), self.str(field)?.to_owned());
                last = Some(k);
            }
            Ok(map)
        }
    }
    crate::encode::check_frame(record)?;
    let (preimage, hash) = record.split_at(record.len() - 32);
    let mut r = R(preimage, 15);
    let seq = r.u64("seq")?;
    let id = uuid::Uuid::from_bytes(r.take(16, "receipt_id")?.try_into().unwrap());
    let timestamp = Timestamp(r.u64("timestamp")?);
    let tenant = TenantId::new(r.str("tenant_id")?)
        .map_err(|source| DecodeError::BadId { field: "tenant_id", source })?;
    let name = r.str("governor")?;
    let governor =
        GovernorKind::from_name(name).ok_or_else(|| DecodeError::UnknownGovernor(name.into()))?;
    let resource = ResourceId::new(r.str("resource_id")?)
        .map_err(|source| DecodeError::BadId { field: "resource_id", source })?;
    let resource_seq = r.u64("resource_seq")?;
    let command = Cow::Owned(r.str("command")?.to_owned());
    let state_from = Cow::Owned(r.str("state_from")?.to_owned());
    let state_to = Cow::Owned(r.str("state_to")?.to_owned());
    let reason = r.str("reason")?.to_owned();
    let args = r.map("args")?;
    let metadata = r.map("metadata")?;
    let prev_hash = Digest(r.take(32, "prev_hash")?.try_into().unwrap());
    if r.1 != preimage.len() {
        return Err(DecodeError::TrailingBytes { offset: r.1, extra: preimage.len() - r.1 });
    }
    let body = ReceiptBody {
        timestamp,
        tenant,
        governor,
        resource,
        resource_seq,
        command,
        state_from,
        state_to,
        reason,
        args,
        metadata,
    };
    Ok(Receipt { seq, id, body, prev_hash, hash: Digest(hash.try_into().unwrap()) })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_096))]

    /// `decode_key`, the allocation-free check every reader of a ledger runs, accepts
    /// exactly the records `decode` accepts, with the same error for every other, and the
    /// same key; and `decode` is the plain reference decoder above (same receipt, same
    /// error), so the quick paths for ASCII strings and ids change nothing.
    #[test]
    fn decode_key_accepts_exactly_what_decode_accepts(
        fields in arb_raw_fields(),
        flips in prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..3),
        ],
        cut in prop::option::weighted(0.1, 0usize..400),
    ) {
        let record = raw_record(&fields, &flips, cut);
        let key = Receipt::decode_key(&record);
        let decoded = Receipt::decode(&record);
        prop_assert_eq!(&decoded, &reference_decode(&record));
        match (&key, &decoded) {
            (Ok(key), Ok(r)) => {
                prop_assert_eq!(key.tenant, r.body.tenant.as_str());
                prop_assert_eq!(key.governor, r.body.governor);
                prop_assert_eq!(key.resource, r.body.resource.as_str());
                prop_assert_eq!(key.resource_seq, r.body.resource_seq);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "decode_key {:?} but decode {:?}", key, decoded),
        }
    }
}
