//! The seed corpora: real files and bytes the real writers produce. Example scenarios and plan
//! catalogs from `examples/`; segment files a ledger wrote (several small segments) and the
//! receipts in them; webhook deliveries signed as providers sign them; a request body for
//! every route the `http` target drives. `tests/smoke.rs` writes them to `fuzz/corpus/` under
//! `UPDATE_DOCS=1`, and runs the targets over them in any case.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use govern_governors::{GovernorKind, ResourceId, TenantId, Timestamp};
use govern_ledger::Ledger;
use govern_ledger::segment::{SEGMENT_SUFFIX, SegmentOptions, SegmentStore};
use govern_receipt::ReceiptBody;

use crate::mem_io::MemIo;

/// One seed: its target, a file name, the bytes.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The target it is for.
    pub target: &'static str,
    /// Its file name in the corpus.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

/// Receipts in the seed ledger.
const SEED_RECEIPTS: u64 = 24;
/// Its segments roll at this size, so that it has several.
const SEED_SEGMENT_BYTES: u64 = 2_048;
/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

/// Every seed: files under `root` (the workspace) and bytes written here.
///
/// # Errors
/// A file of `examples/` that cannot be read, or a ledger that cannot be written, as text.
pub fn all(root: &Path) -> Result<Vec<Seed>, String> {
    let mut out = Vec::new();
    for (target, dir) in [("scenario", "examples/scenarios"), ("plans", "examples/plans")] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(dir))
            .map_err(|e| format!("{dir}: {e}"))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        names.sort();
        for path in names {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into());
            out.push(Seed { target, name, bytes });
        }
    }
    let (segments, records) = ledger()?;
    out.push(Seed { target: "segment", name: "ledger-3-segments".into(), bytes: segments.clone() });
    let first = segments.get(..segments.len().min(900)).unwrap_or_default().to_vec();
    out.push(Seed { target: "segment", name: "torn-tail".into(), bytes: first });
    let framed: Vec<u8> = records
        .iter()
        .flat_map(|r| (r.len() as u16).to_be_bytes().into_iter().chain(r.iter().copied()))
        .collect();
    out.push(Seed { target: "segment_records", name: "ledger-24-records".into(), bytes: framed });
    let three = records
        .iter()
        .take(3)
        .flat_map(|r| (r.len() as u16).to_be_bytes().into_iter().chain(r.iter().copied()));
    out.push(Seed {
        target: "segment_records",
        name: "ledger-3-records".into(),
        bytes: three.collect(),
    });
    for (i, record) in records.into_iter().enumerate().step_by(5) {
        out.push(Seed { target: "receipt", name: format!("receipt-{i}"), bytes: record });
    }
    out.extend(webhooks());
    out.extend(crate::http::seeds());
    Ok(out)
}

fn body(i: u64) -> Result<ReceiptBody, String> {
    let tenant = TenantId::new(["acme", "globex"][(i % 2) as usize]).map_err(|e| e.to_string())?;
    let resource = ResourceId::new(&format!("sub-{}", i % 3)).map_err(|e| e.to_string())?;
    let mut args = BTreeMap::new();
    args.insert("plan".to_owned(), "starter".to_owned());
    let mut metadata = BTreeMap::new();
    metadata.insert("idempotency_key".to_owned(), format!("k-{i}"));
    Ok(ReceiptBody {
        timestamp: Timestamp(T0.0 + i * 1_000),
        tenant,
        governor: GovernorKind::Subscription,
        resource,
        resource_seq: 0,
        command: Cow::Borrowed("start_trial"),
        state_from: Cow::Borrowed("pending"),
        state_to: Cow::Borrowed("trialing"),
        reason: format!("seed receipt {i}"),
        args,
        metadata,
    })
}

/// A ledger written through the real store, in memory: its segment files concatenated in
/// order (as the `segment` target reads them), and its records.
fn ledger() -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let io = MemIo::default();
    let options = SegmentOptions { segment_bytes: SEED_SEGMENT_BYTES, ..SegmentOptions::default() };
    let (store, _) =
        SegmentStore::open_with_io(Box::new(io.clone()), options).map_err(|e| e.to_string())?;
    let ledger = Ledger::open(Box::new(store)).map_err(|e| e.to_string())?;
    for i in 0..SEED_RECEIPTS {
        ledger.append(body(i)?).map_err(|e| e.to_string())?;
    }
    ledger.commit().map_err(|e| e.to_string())?;
    let records = ledger
        .receipts_in(0..SEED_RECEIPTS)
        .map_err(|e| e.to_string())?
        .iter()
        .map(govern_receipt::Receipt::encode)
        .collect();
    drop(ledger);
    let segments = io
        .files()
        .into_iter()
        .filter(|(name, _)| name.ends_with(SEGMENT_SUFFIX))
        .flat_map(|(_, bytes)| bytes)
        .collect();
    Ok((segments, records))
}

/// Deliveries as a provider sends them: the signature header, a newline, the event.
fn webhooks() -> Vec<Seed> {
    use crate::webhook::SECRETS;
    let t = T0.0 / 1_000;
    let event = |kind: &str, object: &str| {
        format!(
            r#"{{"id":"evt_{kind}","object":"event","type":"{kind}","created":{t},"livemode":false,"data":{{"object":{object}}}}}"#
        )
    };
    let meta = r#""metadata":{"govern_tenant":"acme","govern_resource":"sub-1"}"#;
    let bodies = [
        (
            "paid",
            event(
                "invoice.paid",
                &format!(r#"{{"id":"in_1","amount_paid":1900,"currency":"usd",{meta}}}"#),
            ),
        ),
        (
            "failed",
            event(
                "invoice.payment_failed",
                &format!(r#"{{"id":"in_2","amount_due":1900,"currency":"eur",{meta}}}"#),
            ),
        ),
        ("deleted", event("customer.subscription.deleted", &format!(r#"{{"id":"sub_1",{meta}}}"#))),
        ("other", event("charge.refunded", "{}")),
    ];
    let mut out = Vec::new();
    for (i, (name, body)) in bodies.iter().enumerate() {
        let secret = SECRETS[i % SECRETS.len()];
        let header = if i == 2 {
            // Rotation: the old secret's signature beside the current one's, and a v0.
            format!(
                "{},v1={},v0=deadbeef",
                govern_webhooks::sign(secret, t, body.as_bytes()),
                hex::encode(govern_webhooks::signature(SECRETS[0], t, body.as_bytes()))
            )
        } else {
            govern_webhooks::sign(secret, t, body.as_bytes())
        };
        let bytes = format!("{header}\n{body}").into_bytes();
        out.push(Seed { target: "webhook", name: format!("delivery-{name}"), bytes });
    }
    out
}
