//! Tenant isolation of exports as a property (issue 17): a durable runtime writes a data
//! directory from random commands and usage of three tenants that share every resource id and
//! command; then `govern export DATA_DIR --tenant T` gives, for each tenant, exactly that
//! tenant's receipts (those the ledger holds for it, in order, each accepted command's among
//! them), and nothing of the others: no line of another tenant, none of their receipt ids,
//! none of their hashes but the one each receipt links to by design (`prev_hash`). Both of the export's paths are taken: read through the checkpoint (the
//! tenant's receipts found through the ledger's snapshot, each proved from the tree files),
//! and, with the checkpoint moved aside, the whole ledger verified and read; the exports with
//! proofs verify (`govern verify --export`, against the export's own checkpoint, or the one
//! moved aside), and the CSV export has the same receipts.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

#[path = "support/govern.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{Ctx, GovernorKind, Machine, ResourceId, TenantId, Timestamp};
use govern_ledger::checkpoint::{CHECKPOINT_FILE, NOTE_FILE, PUBLIC_KEY_FILE};
use govern_runtime::{RawCommand, Runtime};
use proptest::prelude::*;
use support::{govern, s, text};

/// Cases a run: `GOVERN_ISOLATION_CASES` when set (more, by hand), else `default` (CI).
fn cases(default: u32) -> u32 {
    std::env::var("GOVERN_ISOLATION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

/// The tenants, each `sub-1` on Starter.
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

const KINDS: [GovernorKind; 4] = [
    GovernorKind::Billing,
    GovernorKind::Entitlement,
    GovernorKind::Account,
    GovernorKind::Compliance,
];

/// What one step does.
#[derive(Clone, Debug)]
enum Op {
    /// Sample command `sample` of `KINDS[kind]` at `r{r}`, by tenant `t`.
    Command { t: usize, kind: usize, r: u8, sample: usize },
    /// `n` reports of tenant `t`.
    Usage { t: usize, n: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..KINDS.len(), 0..2u8, 0..64usize)
            .prop_map(|(t, kind, r, sample)| Op::Command { t, kind, r, sample }),
        1 => (0..3usize, 1..5u64).prop_map(|(t, n)| Op::Usage { t, n }),
    ]
}

fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

/// Each tenant's receipts in the ledger, as (seq, hash, receipt id), in order.
type Written = Vec<Vec<(u64, String, String)>>;

/// Writes data directory `data` from `ops`: each tenant's receipts, and the receipt numbers
/// of each tenant's accepted commands.
async fn write(data: &Path, ops: &[Op]) -> (Written, Vec<BTreeSet<u64>>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/plans/pricing.toml");
    let catalog = govern_plans::load(Path::new(path)).unwrap();
    let runtime = Runtime::builder().epoch(T0).data_dir(data).catalog(catalog).start().await;
    let runtime = runtime.unwrap();
    let h = runtime.handle();
    let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
    for t in TENANTS {
        h.provision_tenant(&tenant(t), quota, "exports").await.unwrap();
        let sub = h.subscription(&tenant(t), &ResourceId::new("sub-1").unwrap());
        sub.start_trial("starter", 14, "exports").await.unwrap();
        sub.activate(None, "exports").await.unwrap();
    }
    let mut accepted = vec![BTreeSet::new(); TENANTS.len()];
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Command { t, kind, r, sample } => {
                let kind = KINDS[kind];
                let samples = Machine::samples(kind, &Ctx { now: h.now() });
                let (name, args) = samples[sample % samples.len()].clone();
                let command = RawCommand {
                    tenant: tenant(TENANTS[t]),
                    kind,
                    resource: ResourceId::new(&format!("r{r}")).unwrap(),
                    name: name.to_owned(),
                    args,
                    reason: "exports".into(),
                    metadata: Vec::new(),
                };
                if let Ok(a) = h.command(command).await {
                    accepted[t].insert(a.seq);
                }
            }
            Op::Usage { t, n } => {
                let event = format!("e{i}");
                let _ = h.record_usage(&tenant(TENANTS[t]), "reports", n, &event, h.now()).await;
            }
        }
    }
    let written = TENANTS
        .iter()
        .map(|t| {
            let receipts = h.receipts(&tenant(t), None, None).unwrap();
            receipts.iter().map(|r| (r.seq, r.hash.to_string(), r.id.to_string())).collect()
        })
        .collect();
    runtime.shutdown().await.unwrap();
    (written, accepted)
}

/// `govern export data --tenant TENANTS[i] --with-proofs` (to `file`): its receipt lines are
/// exactly tenant `i`'s receipts, nothing of another tenant is in it, and it verifies with
/// `verify` (extra arguments of `govern verify --export`). Whether it was read through the
/// checkpoint (no note) or the whole ledger (a note says why) must be `whole`. Its receipt
/// lines.
fn export(
    data: &Path,
    i: usize,
    file: &Path,
    whole: bool,
    written: &Written,
    verify: &[&str],
) -> Vec<serde_json::Value> {
    let t = TENANTS[i];
    let out = govern(&["export", s(data), "--tenant", t, "--with-proofs"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.contains("note:"), whole, "{t}: {stderr}");
    let stdout = text(&out.stdout);
    let mut lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let header = lines.remove(0);
    assert_eq!(header["tenant_id"], t, "{header}");
    let end = lines.pop().unwrap();
    assert_eq!(end["receipts"], written[i].len(), "{end}");
    let got: Vec<(u64, String, String)> = lines
        .iter()
        .map(|l| {
            let r = &l["receipt"];
            assert_eq!(r["tenant_id"], t, "{t}: a line of another tenant: {l}");
            let field = |k: &str| r[k].as_str().unwrap().to_owned();
            (r["seq"].as_u64().unwrap(), field("hash"), field("receipt_id"))
        })
        .collect();
    assert_eq!(got, written[i], "{t}: exactly its receipts");
    // Nothing of another tenant's receipts but, by design, the hash of the receipt before
    // each of this tenant's (`prev_hash`: the chain is the ledger's, across tenants), which
    // says nothing of that receipt's body.
    let scrubbed: String = std::iter::once(header.to_string())
        .chain(lines.iter().map(|l| {
            let mut l = l.clone();
            l["receipt"].as_object_mut().unwrap().remove("prev_hash");
            l.to_string()
        }))
        .collect();
    for (j, other) in written.iter().enumerate().filter(|(j, _)| *j != i) {
        for (seq, hash, id) in other {
            assert!(!scrubbed.contains(hash), "{t}: {}'s receipt {seq} hash", TENANTS[j]);
            assert!(!stdout.contains(id), "{t}: {}'s receipt {seq} id", TENANTS[j]);
        }
    }
    std::fs::write(file, &out.stdout).unwrap();
    let mut args = vec!["verify", "--export", s(file)];
    args.extend_from_slice(verify);
    let out = govern(&args);
    assert!(out.status.success(), "{t}: {}{}", text(&out.stdout), text(&out.stderr));
    lines
}

/// `govern export data --tenant TENANTS[i] --format csv`: tenant `i`'s receipts, by seq.
fn export_csv(data: &Path, i: usize, written: &Written) {
    let t = TENANTS[i];
    let out = govern(&["export", s(data), "--tenant", t, "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    let seqs: Vec<u64> =
        rows.iter().map(|r| r.split(',').next().unwrap().parse().unwrap()).collect();
    let want: Vec<u64> = written[i].iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(seqs, want, "{t}: CSV");
    // The tenant column (the fourth) is the tenant's own on every row.
    assert!(rows.iter().all(|r| r.split(',').nth(3) == Some(t)), "{t}: CSV of another");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(12), ..ProptestConfig::default() })]

    #[test]
    fn an_export_holds_exactly_its_tenants_receipts(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("ledger");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (written, accepted) = rt.block_on(write(&data, &ops));
        for (i, seqs) in accepted.iter().enumerate() {
            let mine: BTreeSet<u64> = written[i].iter().map(|(seq, _, _)| *seq).collect();
            assert!(seqs.is_subset(&mine), "{}: an accepted command's receipt", TENANTS[i]);
        }
        let key = data.join(PUBLIC_KEY_FILE);
        let key = s(&key);
        // Through the checkpoint, verified against the export's own.
        let mut through = Vec::new();
        for (i, t) in TENANTS.iter().enumerate() {
            let file = dir.path().join(format!("{t}.jsonl"));
            through.push(export(&data, i, &file, false, &written, &["--public-key", key]));
            export_csv(&data, i, &written);
        }
        // The checkpoint moved aside: the whole ledger verified and read, the export verified
        // against the checkpoint moved aside; the same lines.
        let saved = dir.path().join("saved.json");
        std::fs::rename(data.join(CHECKPOINT_FILE), &saved).unwrap();
        let _ = std::fs::remove_file(data.join(NOTE_FILE));
        for (i, (t, through)) in TENANTS.iter().zip(&through).enumerate() {
            let file = dir.path().join(format!("{t}-whole.jsonl"));
            let verify = ["--public-key", key, "--checkpoint", s(&saved)];
            let whole = export(&data, i, &file, true, &written, &verify);
            assert_eq!(&whole, through, "{t}: both paths");
        }
    }
}
