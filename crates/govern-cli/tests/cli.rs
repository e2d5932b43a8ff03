//! The `govern` binary as a user runs it: `bench ledger` writes a signed ledger, `verify`
//! accepts it, and names what is wrong when it is damaged, truncated or absent.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::Path;

#[path = "support/govern.rs"]
mod support;
use support::{digest, frame_starts, govern, ledger, s, segment, text};

#[test]
fn a_written_ledger_verifies_with_its_checkpoint() {
    let dir = ledger(50);
    let out = govern(&["verify", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok: 50 receipts in 1 segments"), "{stdout}");
    assert!(stdout.contains("(size 50) signature and history verified"), "{stdout}");
}

#[test]
fn a_flipped_byte_fails_verification_naming_the_receipt() {
    let dir = ledger(50);
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let starts = frame_starts(&bytes);
    bytes[starts[17] + 100] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let out = govern(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("verification failed at receipt 17"), "{stderr}");
}

#[test]
fn history_cut_at_a_frame_boundary_is_caught_by_the_checkpoint() {
    let dir = ledger(50);
    let seg = segment(dir.path());
    let bytes = std::fs::read(&seg).unwrap();
    let starts = frame_starts(&bytes);
    // Drop the last 5 receipts cleanly: every remaining frame and hash is still valid.
    std::fs::write(&seg, &bytes[..starts[45]]).unwrap();
    let out = govern(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("against checkpoint"), "{stderr}");
    assert!(stderr.contains("45"), "names the ledger's size: {stderr}");
}

#[test]
fn a_missing_ledger_is_an_error_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = govern(&["verify", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no ledger at"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

/// Checks an `inclusion_proof` object against its own root, independently of the CLI.
fn check_proof(p: &serde_json::Value) {
    let hashes: Vec<_> = p["hashes"].as_array().unwrap().iter().map(digest).collect();
    govern_ledger::verify_inclusion(
        &digest(&p["leaf_hash"]),
        p["leaf_index"].as_u64().unwrap(),
        p["tree_size"].as_u64().unwrap(),
        &hashes,
        &digest(&p["root"]),
    )
    .unwrap();
}

#[test]
fn export_gives_one_tenant_s_receipts_with_proofs_that_verify() {
    let dir = ledger(64);
    let out = govern(&[
        "export",
        dir.path().to_str().unwrap(),
        "--tenant",
        "tenant-0003",
        "--with-proofs",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // A header line with the checkpoint the proofs are made against, an end line.
    let header = lines.remove(0);
    assert_eq!(header["export"], "govern.export.v1");
    assert_eq!(header["tree_size"], 64);
    assert_eq!(header["checkpoint"]["size"], 64);
    assert_eq!(header["checkpoint"]["root"], header["root"]);
    let end = lines.pop().unwrap();
    assert_eq!(end, serde_json::json!({"end": "govern.export.v1", "receipts": 4}));
    // bench ledger spreads receipts over 16 tenants round-robin: 3, 19, 35, 51.
    let seqs: Vec<u64> = lines.iter().map(|l| l["receipt"]["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [3, 19, 35, 51]);
    for line in &lines {
        assert_eq!(line["receipt"]["tenant_id"], "tenant-0003");
        assert_eq!(line["inclusion_proof"]["tree_size"], 64, "proved against the checkpoint");
        check_proof(&line["inclusion_proof"]);
        let leaf = govern_ledger::leaf_hash(&digest(&line["receipt"]["hash"]));
        assert_eq!(leaf, digest(&line["inclusion_proof"]["leaf_hash"]));
    }
    let csv = govern(&[
        "export",
        dir.path().to_str().unwrap(),
        "--tenant",
        "tenant-0003",
        "--format",
        "csv",
    ]);
    let rows: Vec<String> = text(&csv.stdout).lines().map(str::to_owned).collect();
    assert_eq!(rows.len(), 5, "a header and four receipts");
    assert!(rows[0].starts_with("seq,receipt_id,timestamp_ms,tenant_id"));
    assert!(rows[1].starts_with("3,"));
    let bad = govern(&["export", dir.path().to_str().unwrap(), "--tenant", "no such tenant"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("--tenant"), "{}", text(&bad.stderr));
}

#[test]
fn prove_prints_a_proof_that_verifies_against_the_signed_checkpoint() {
    let dir = ledger(33);
    let out = govern(&["prove", dir.path().to_str().unwrap(), "--seq", "20"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["receipt"]["seq"], 20);
    check_proof(&v["inclusion_proof"]);
    assert_eq!(v["checkpoint"]["size"], 33);
    assert_eq!(v["checkpoint"]["root"], v["inclusion_proof"]["root"]);
    let missing = govern(&["prove", dir.path().to_str().unwrap(), "--seq", "33"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no receipt 33"));
}

#[test]
fn graph_prints_every_state_of_a_governor_in_both_formats() {
    use govern_governors::StateSpec as _;
    use govern_governors::subscription::State;
    let mermaid = govern(&["graph", "subscription"]);
    assert!(mermaid.status.success(), "{}", text(&mermaid.stderr));
    let mermaid = text(&mermaid.stdout);
    let dot = govern(&["graph", "subscription", "--format", "dot"]);
    assert!(dot.status.success(), "{}", text(&dot.stderr));
    let dot = text(&dot.stdout);
    assert!(dot.starts_with("digraph"), "{dot}");
    for state in State::ALL {
        assert!(mermaid.contains(state.name()), "{} missing from {mermaid}", state.name());
        assert!(dot.contains(&format!("\"{}\"", state.name())), "{} missing", state.name());
    }
    // The same diagram as the one docs/governors/subscription.md embeds.
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/governors/subscription.md"
    ))
    .unwrap();
    let start = page.find("```mermaid\n").unwrap() + "```mermaid\n".len();
    let end = start + page[start..].find("```").unwrap();
    assert_eq!(mermaid, page[start..end]);
}

#[test]
fn graph_of_an_unknown_kind_is_a_usage_error_naming_the_kinds() {
    let out = govern(&["graph", "invoice"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    for kind in govern_governors::GovernorKind::ALL {
        assert!(stderr.contains(kind.name()), "{kind} missing from {stderr}");
    }
}

/// The listing lines of `govern receipts` (the header and the count line left out).
fn receipt_rows(stdout: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 2, "a header and a count line: {stdout}");
    assert!(lines[0].trim_start().starts_with("SEQ"), "{stdout}");
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn receipts_lists_one_tenant_s_receipts_in_order_and_filters_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = govern(&["bench", "ledger", "--receipts", "200", "--data-dir", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // bench ledger: receipt i belongs to tenant i % 16 and resource sub-(i / 9).
    let out = govern(&["receipts", data, "--tenant", "tenant-0003"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("tenant-0004"), "{stdout}");
    let rows = receipt_rows(&stdout);
    let seqs: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    let expected: Vec<u64> = (0..200).filter(|i| i % 16 == 3).collect();
    assert_eq!(seqs, expected);
    for (row, seq) in rows.iter().zip(&expected) {
        // seq, time, governor, resource, command, from, →, to, hash, reason
        assert_eq!(row.len(), 10, "{row:?}");
        assert!(row[1].starts_with("2026-01-01T00:00:00.") && row[1].ends_with('Z'), "{row:?}");
        assert_eq!(row[2], "subscription");
        assert_eq!(row[3], format!("sub-{:08}", seq / 9));
        assert_eq!(row[4..8], ["activate", "pending", "→", "active"]);
        assert_eq!(row[8].len(), 12);
        assert!(row[8].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(row[9], "benchmark");
    }
    assert!(stdout.ends_with("13 receipts of tenant tenant-0003\n"), "{stdout}");

    let out = govern(&["receipts", data, "--tenant", "tenant-0003", "--resource", "sub-00000002"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = receipt_rows(&text(&out.stdout));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..4], ["19", "2026-01-01T00:00:00.019Z", "subscription", "sub-00000002"]);

    let out = govern(&["receipts", data, "--tenant", "tenant-0003", "--governor", "quota"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(receipt_rows(&text(&out.stdout)).is_empty());

    let out = govern(&["receipts", data, "--tenant", "nobody"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(receipt_rows(&stdout).is_empty());
    assert!(stdout.ends_with("0 receipts of tenant nobody\n"), "{stdout}");
}

#[test]
fn receipts_of_a_missing_ledger_is_an_error_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = govern(&["receipts", dir.path().join("nope").to_str().unwrap(), "--tenant", "t"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no ledger at"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

/// Issue 9, point 1: while a writer holds the data directory (here this test process, with
/// a frame half written at the end of the last segment), the read-only commands work on
/// what is written so far, say that a writer is live, and change nothing; a second writer is
/// refused naming the directory and the holder.
#[test]
fn readers_work_while_a_writer_holds_the_directory() {
    use govern_ledger::{Ledger, SegmentOptions, SegmentStore};
    let dir = ledger(50);
    let path = dir.path().to_str().unwrap();
    let (store, _) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    let writer = Ledger::open(Box::new(store)).unwrap();
    writer
        .append(govern_receipt::ReceiptBody {
            timestamp: govern_governors::Timestamp(1_767_225_600_000),
            tenant: govern_governors::TenantId::new("tenant-0003").unwrap(),
            governor: govern_governors::GovernorKind::Quota,
            resource: govern_governors::ResourceId::new("q-1").unwrap(),
            resource_seq: 0,
            command: "record".into(),
            state_from: "a".into(),
            state_to: "b".into(),
            reason: "being written".into(),
            args: std::collections::BTreeMap::new(),
            metadata: std::collections::BTreeMap::new(),
        })
        .unwrap();
    writer.sync().unwrap();
    // Receipt 50 being written: only the first 30 bytes of its frame are in the file yet.
    let seg = segment(dir.path());
    let bytes = std::fs::read(&seg).unwrap();
    let starts = frame_starts(&bytes);
    std::fs::write(&seg, &bytes[..starts[50] + 30]).unwrap();
    let before = std::fs::read(&seg).unwrap();

    let pid = format!("pid {}", std::process::id());
    let out = govern(&["verify", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("is open by a writer") && stdout.contains(&pid), "{stdout}");
    assert!(stdout.contains("the writer is writing now"), "{stdout}");
    assert!(stdout.contains("ok: 50 receipts"), "{stdout}");
    for args in [
        vec!["receipts", path, "--tenant", "tenant-0003"],
        vec!["export", path, "--tenant", "tenant-0003", "--with-proofs"],
        vec!["prove", path, "--seq", "3"],
    ] {
        let out = govern(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let second = govern(&["bench", "ledger", "--receipts", "5", "--data-dir", path]);
    assert!(!second.status.success(), "a second writer must be refused");
    let stderr = text(&second.stderr);
    assert!(stderr.contains(path) && stderr.contains(&pid), "{stderr}");
    assert_eq!(std::fs::read(&seg).unwrap(), before, "readers and the refused writer wrote");
    drop(writer);

    // Without a writer, the same tail is a torn write the next opening cuts.
    let out = govern(&["verify", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("open by a writer"), "{stdout}");
    assert!(stdout.contains("torn tail") && stdout.contains("never acknowledged"), "{stdout}");
}

/// Writes `text` to `dir/name` and gives its path as a string.
fn scenario_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const ONE_TENANT: &str = "name = \"t\"\ndescription = \"d\"\n[[tenants]]\nid = \"acme\"\n";

#[test]
fn run_refuses_advances_that_would_overflow_the_clock_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "[[steps]]\nadvance = \"5000000000000000000s\"\n";
    let file = scenario_file(dir.path(), "adv.toml", &format!("{ONE_TENANT}{huge}{huge}"));
    let out = govern(&["run", &file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{file}:6:11: ")), "{stderr}");
    assert!(stderr.contains(&format!("{file}:8:11: ")), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing runs: {}", text(&out.stdout));
}

#[test]
fn run_refuses_what_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    for path in ["/dev/zero", dir.path().to_str().unwrap()] {
        let out = govern(&["run", path]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {stderr}");
        assert!(stderr.contains(&format!("{path}:1:1: not a regular file")), "{stderr}");
    }
}

#[test]
fn run_refuses_a_bad_reason_or_metadata_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let step = "[[steps]]\ntenant = \"acme\"\ngovernor = \"quota\"\nresource = \"q\"\n\
                command = \"send_warning\"\nreason = \"\"\nmetadata = { \"Who?\" = \"me\" }\n";
    let file = scenario_file(dir.path(), "why.toml", &format!("{ONE_TENANT}{step}"));
    let out = govern(&["run", &file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}{}", text(&out.stdout));
    assert!(stderr.contains(&format!("{file}:10:10: reason is empty")), "{stderr}");
    assert!(stderr.contains(&format!("{file}:11:14: metadata key \"Who?\"")), "{stderr}");
}

#[test]
fn run_says_tenants_are_provisioned_only_once_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let file =
        scenario_file(dir.path(), "t.toml", &format!("{ONE_TENANT}[[steps]]\nverify = true\n"));
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let first = govern(&["run", &file, "--data-dir", data]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("tenants provisioned: acme"), "{}", text(&first.stdout));
    // The directory holds a ledger now: the second run cannot start.
    let second = govern(&["run", &file, "--data-dir", data]);
    assert_eq!(second.status.code(), Some(1));
    assert!(text(&second.stderr).contains("already holds a ledger"), "{}", text(&second.stderr));
    assert!(!text(&second.stdout).contains("provisioned"), "{}", text(&second.stdout));
}

#[test]
fn a_crash_after_the_runtime_is_down_is_not_reported_as_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = format!(
        "{ONE_TENANT}[[steps]]\ntenant = \"acme\"\ngovernor = \"quota\"\nresource = \"q\"\n\
         command = \"send_warning\"\n"
    );
    // Far more crashes than the restart intensities allow (10 per domain, 3 at the root).
    for _ in 0..60 {
        scenario.push_str("[[steps]]\ncrash = \"now\"\ntenant = \"acme\"\ngovernor = \"quota\"\nresource = \"q\"\n");
    }
    let file = scenario_file(dir.path(), "crashes.toml", &scenario);
    let out = govern(&["run", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    let crashes: Vec<&str> = stdout.lines().filter(|l| l.contains("crash acme quota/q")).collect();
    assert_eq!(crashes.len(), 60, "{stdout}");
    assert!(crashes[0].ends_with("[ok]") && crashes[0].contains("restarted"), "{stdout}");
    let down = crashes.iter().position(|l| l.ends_with("[FAILED]")).expect("the runtime went down");
    for line in &crashes[down..] {
        assert!(line.ends_with("[FAILED]") && !line.contains("restarted by"), "{line}\n{stdout}");
    }
}

#[test]
fn run_refuses_two_files_that_would_share_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let text_of = format!("{ONE_TENANT}[[steps]]\nverify = true\n");
    let a = scenario_file(dir.path(), "a/x.toml", &text_of);
    let b = scenario_file(dir.path(), "b/x.toml", &text_of);
    let data = dir.path().join("data");
    let out = govern(&["run", "--data-dir", data.to_str().unwrap(), &a, &b]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}{}", text(&out.stdout));
    assert!(stderr.contains(&a) && stderr.contains(&b), "names both files: {stderr}");
    assert!(out.stdout.is_empty(), "nothing runs: {}", text(&out.stdout));
    assert!(!data.exists(), "nothing written");
    // Different names are fine.
    let c = scenario_file(dir.path(), "b/y.toml", &text_of);
    let out = govern(&["run", "--data-dir", data.to_str().unwrap(), &a, &c]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(data.join("x").is_dir() && data.join("y").is_dir());
}

#[test]
fn a_scenario_at_every_clock_limit_runs_without_overflow() {
    // Ten ten-year steps (ADVANCE_MAX, ADVANCE_TOTAL_MAX) ending a few weeks before CLOCK_END,
    // with state timeouts armed as far ahead as an argument can reach.
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = "name = \"far\"\ndescription = \"d\"\nstart = 9900-01-01T00:00:00Z\n\
         [[tenants]]\nid = \"acme\"\n\
         [[steps]]\ntenant = \"acme\"\ngovernor = \"subscription\"\nresource = \"s\"\n\
         command = \"start_trial\"\nargs = { plan = \"pro\", trial_days = 365 }\n\
         [[steps]]\ntenant = \"acme\"\ngovernor = \"entitlement\"\nresource = \"e\"\n\
         command = \"grant_entitlement\"\n\
         args = { feature = \"sso\", expires_at = 9999-12-31T23:59:59Z }\n\
         [[steps]]\ntenant = \"acme\"\ngovernor = \"entitlement\"\nresource = \"e\"\n\
         command = \"approve_grant\"\n"
        .to_owned();
    for _ in 0..10 {
        scenario.push_str("[[steps]]\nadvance = \"3650d\"\n");
    }
    scenario.push_str("[[steps]]\nrestart = true\n[[steps]]\nverify = true\n");
    let file = scenario_file(dir.path(), "far.toml", &scenario);
    let out = govern(&["run", &file]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("end_trial free_trial → paused"), "{stdout}");
    assert!(stdout.contains("clock at 9999-12-08T00:00:00Z"), "{stdout}");
}

/// A data directory of 8 subscription receipts (tenant `acme`, resources `sub-0` and
/// `sub-1` in turn), written through the segment store; receipt 5's body is changed by
/// `body_of` and its preimage by `preimage_of`, then sealed with the hash of that preimage,
/// and the receipts after it chained to it: every hash and link is valid.
fn crafted_ledger(
    body_of: impl Fn(&mut govern_receipt::ReceiptBody),
    preimage_of: impl Fn(&mut Vec<u8>),
) -> tempfile::TempDir {
    crafted_ledger_signed(false, body_of, preimage_of)
}

/// [`crafted_ledger`], with a checkpoint of its 8 receipts signed when `signed`.
fn crafted_ledger_signed(
    signed: bool,
    body_of: impl Fn(&mut govern_receipt::ReceiptBody),
    preimage_of: impl Fn(&mut Vec<u8>),
) -> tempfile::TempDir {
    use govern_ledger::LedgerStore;
    use govern_ledger::segment::{SegmentOptions, SegmentStore};
    use govern_receipt::{Digest, Receipt, ReceiptBody};
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = SegmentStore::open(dir.path(), SegmentOptions::default()).unwrap();
    let mut prev = Digest::ZERO;
    let mut hashes = Vec::new();
    for seq in 0..8u64 {
        let mut body = ReceiptBody {
            timestamp: govern_governors::Timestamp(1_767_225_600_000 + seq),
            tenant: "acme".parse().unwrap(),
            governor: govern_governors::GovernorKind::Subscription,
            resource: format!("sub-{}", seq % 2).parse().unwrap(),
            resource_seq: seq / 2,
            command: "activate".into(),
            state_from: "free_trial".into(),
            state_to: "active".into(),
            reason: "crafted".into(),
            args: Default::default(),
            metadata: Default::default(),
        };
        if seq == 5 {
            body_of(&mut body);
        }
        let receipt = Receipt::seal(body, seq, prev);
        let mut record = receipt.encode();
        record.truncate(record.len() - 32);
        if seq == 5 {
            preimage_of(&mut record);
        }
        let hash: [u8; 32] = sha2::Sha256::digest(&record).into();
        record.extend_from_slice(&hash);
        store.append(seq, &record).unwrap();
        prev = Digest(hash);
        hashes.push(prev);
    }
    store.sync().unwrap();
    drop(store);
    if signed {
        // A checkpoint over exactly these receipts, signed with the directory's own key
        // pair: what a writer that wrote them would have signed.
        use govern_ledger::checkpoint::{Checkpoint, CheckpointSigner, write_checkpoint};
        let mut tree = govern_ledger::merkle::MerkleTree::new();
        for hash in &hashes {
            tree.push(*hash);
        }
        let (signer, _) = CheckpointSigner::load_or_generate(dir.path()).unwrap();
        let at = govern_governors::Timestamp(1_767_225_600_100);
        write_checkpoint(dir.path(), &signer.sign(Checkpoint::of_tree(&tree, at))).unwrap();
    }
    dir
}

#[test]
fn verify_refuses_a_receipt_that_hashes_but_does_not_decode_or_breaks_its_numbering() {
    let good = crafted_ledger(|_| {}, |_| {});
    let out = govern(&["verify", good.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: 8 receipts"), "{}", text(&out.stdout));

    // An unknown governor (same length, so every field still lies where it did).
    let unknown = crafted_ledger(
        |_| {},
        |preimage| {
            let at = preimage.windows(12).position(|w| w == b"subscription").unwrap();
            preimage[at + 11] = b'x';
        },
    );
    // sub-1's third receipt (resource_seq 2) numbered 3.
    let gap = crafted_ledger(|body| body.resource_seq = 3, |_| {});
    for (dir, kind) in
        [(&unknown, "malformed record: unknown governor"), (&gap, "resource_seq gap")]
    {
        let data = dir.path().to_str().unwrap();
        let out = govern(&["verify", data]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("verification failed at receipt 5"), "{stderr}");
        assert!(stderr.contains(kind), "{stderr}");
        assert!(out.stdout.is_empty());
        // The other readers refuse it too, naming the same receipt.
        for args in [vec!["export", data, "--tenant", "acme"], vec!["prove", data, "--seq", "1"]] {
            let out = govern(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stdout));
            assert!(text(&out.stderr).contains("receipt 5"), "{args:?}: {}", text(&out.stderr));
        }
    }
    let gap_stderr = text(&govern(&["verify", gap.path().to_str().unwrap()]).stderr);
    assert!(
        gap_stderr.contains("subscription sub-1 of tenant acme has resource_seq 3, expected 2"),
        "{gap_stderr}"
    );
}

#[test]
fn export_read_through_the_checkpoint_still_refuses_a_resource_numbering_gap() {
    // With a checkpoint covering every receipt, an export reads only the tenant's receipts
    // and proves each against it: it still checks each resource's numbering, so a gap
    // that was hashed, chained and even signed is refused as `govern verify` refuses it.
    let good = crafted_ledger_signed(true, |_| {}, |_| {});
    let gap = crafted_ledger_signed(true, |body| body.resource_seq = 3, |_| {});
    let data = good.path().to_str().unwrap();
    let plain = crafted_ledger(|_| {}, |_| {});
    for format in ["jsonl", "csv"] {
        let out = govern(&["export", data, "--tenant", "acme", "--format", format]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        // Byte for byte what the whole-ledger path (no checkpoint there) exports.
        let whole = govern(&[
            "export",
            plain.path().to_str().unwrap(),
            "--tenant",
            "acme",
            "--format",
            format,
        ]);
        assert!(whole.status.success(), "{}", text(&whole.stderr));
        assert_eq!(text(&out.stdout), text(&whole.stdout), "{format}");
        assert_eq!(text(&out.stdout).lines().count(), if format == "csv" { 9 } else { 8 });
    }
    let out = govern(&["export", gap.path().to_str().unwrap(), "--tenant", "acme"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("receipt 5: resource_seq gap")
            && stderr.contains("subscription sub-1 of tenant acme has resource_seq 3, expected 2"),
        "{stderr}"
    );
    let verify = govern(&["verify", gap.path().to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(1));
}

#[test]
fn sagas_lists_every_run_with_its_state_and_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios/18-saga-record.toml");
    let out = govern(&["run", s(&scenario), "--data-dir", s(&data)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = govern(&["sagas", s(&data)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<Vec<&str>> =
        stdout.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][..5], ["acme", "billing-1", "billing_run", "completed", "1/1"]);
    assert_eq!(rows[1][..5], ["acme", "onboard-1", "onboarding", "compensated", "2/3"]);
    assert!(stdout.contains("step 2 failed: card declined"), "{stdout}");
    assert!(
        stdout.contains("resolved by an operator; was stuck: the refund failed 5 times"),
        "{stdout}"
    );
    assert!(stdout.ends_with("3 saga run(s)\n"), "{stdout}");
    let out = govern(&["sagas", s(&data), "--tenant", "globex", "--json"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "", "another tenant has no runs");
}

#[test]
fn invoices_prices_a_months_metered_usage_from_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plans/pricing.toml")
        .canonicalize()
        .unwrap();
    let scenario = dir.path().join("usage.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "usage"
description = "starter usage of api_calls, to invoice"
start = 2026-01-01T00:00:00Z
catalog = "{}"
[[tenants]]
id = "acme"
[[steps]]
tenant = "acme"
governor = "subscription"
resource = "sub-1"
command = "start_trial"
args = {{ plan = "starter", trial_days = 14 }}
[[steps]]
usage = "api_calls"
tenant = "acme"
quantity = 15005
event = "e1"
expect = {{ value = 15005 }}
"#,
            catalog.display()
        ),
    )
    .unwrap();
    let out = govern(&["run", s(&scenario), "--data-dir", s(&data)]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let args =
        ["invoices", s(&data), "--tenant", "acme", "--catalog", s(&catalog), "--period", "2026-01"];
    let out = govern(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "invoice for acme, 2026-01 (31 days), plan starter (preview: not closed by a billing run)\n"
        ),
        "{stdout}"
    );
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let out = govern(&json_args);
    let invoice: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    // Starter: 29.00 a month; 5 005 calls beyond the 10 000 included at 0.001: 5.005, rounded
    // half-even to 5.00 (docs/pricing.md).
    assert_eq!(invoice["total"], "34.00", "{invoice}");
    assert_eq!(invoice["lines"].as_array().unwrap().len(), 2, "{invoice}");
    assert_eq!(invoice["status"], "preview", "{invoice}");
    // Another month had no usage: the base price alone.
    let out = govern(&[
        "invoices",
        s(&data),
        "--tenant",
        "acme",
        "--catalog",
        s(&catalog),
        "--period",
        "2026-02",
        "--json",
    ]);
    let invoice: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(invoice["total"], "29.00", "{invoice}");
}

#[test]
fn invoices_show_a_closed_month_from_the_ledger_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios/20-billing-run.toml");
    let out = govern(&["run", s(&scenario), "--data-dir", s(&data)]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    // Closed by the billing run: no catalog needed, the receipt says it all.
    let out = govern(&["invoices", s(&data), "--tenant", "globex", "--period", "2026-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("invoice for globex, 2026-01 (31 days), plan pro (closed, receipt "),
        "{stdout}"
    );
    assert!(stdout.contains("base price 29 USD for 10 days"), "{stdout}");
    let json_args =
        ["invoices", s(&data), "--tenant", "acme", "--period", "2026-01", "--format", "json"];
    let invoice: serde_json::Value =
        serde_json::from_str(&text(&govern(&json_args).stdout)).unwrap();
    assert_eq!(
        (invoice["status"].as_str(), invoice["total"].as_str()),
        (Some("closed"), Some("34.00"))
    );
    // An open month needs the catalog for its preview, and says so.
    let out = govern(&["invoices", s(&data), "--tenant", "acme", "--period", "2026-02"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("a preview needs the catalog"), "{}", text(&out.stderr));
}

/// `govern bench ledger` of `receipts` receipts, `per_resource` a resource, into `data`.
fn bench_ledger(data: &str, receipts: u32, per_resource: u32) {
    let (n, k) = (receipts.to_string(), per_resource.to_string());
    let out =
        govern(&["bench", "ledger", "--receipts", &n, "--per-resource", &k, "--data-dir", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn bench_ledger_per_resource_writes_k_receipts_per_resource_of_one_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    bench_ledger(data, 200, 10);
    assert!(govern(&["verify", data]).status.success());
    // Resource r is sub-r, tenant r % 16, with receipts 10r..10r+10.
    let out = govern(&["receipts", data, "--tenant", "tenant-0003", "--resource", "sub-00000003"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = receipt_rows(&text(&out.stdout));
    let seqs: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(seqs, (30..40).collect::<Vec<u64>>());
    // Resource 19 is tenant 3's too; nothing of tenant 3 lies elsewhere.
    let out = govern(&["receipts", data, "--tenant", "tenant-0003"]);
    let all: Vec<u64> =
        receipt_rows(&text(&out.stdout)).iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(all, (30..40).chain(190..200).collect::<Vec<u64>>());
    let zero = govern(&["bench", "ledger", "--per-resource", "0", "--data-dir", data]);
    assert_eq!(zero.status.code(), Some(2), "K is at least 1");
}

/// The sequence numbers `govern receipts DATA ARGS...` lists, and its stderr.
fn listed(data: &str, args: &[&str]) -> (Vec<u64>, String) {
    let mut all = vec!["receipts", data];
    all.extend_from_slice(args);
    let out = govern(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seqs = receipt_rows(&text(&out.stdout)).iter().map(|r| r[0].parse().unwrap()).collect();
    (seqs, text(&out.stderr).to_string())
}

#[test]
fn receipts_lists_the_same_from_a_snapshot_with_a_tail_a_damaged_one_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let snap = dir.path().join("ledger.snap");
    // 600 receipts and the snapshot of the first 300 (a run of 300 writes the same first
    // 300: the bench's receipts depend only on their number): a listing reads the snapshot
    // and the 300 records after it.
    let other = tempfile::tempdir().unwrap();
    bench_ledger(other.path().to_str().unwrap(), 300, 10);
    let first = std::fs::read(other.path().join("ledger.snap")).unwrap();
    bench_ledger(data, 600, 10);
    std::fs::write(&snap, &first).unwrap();
    let queries: [&[&str]; 4] = [
        &["--tenant", "tenant-0003"],
        &["--tenant", "tenant-0003", "--resource", "sub-00000003"],
        &["--tenant", "tenant-0003", "--governor", "subscription"],
        &["--tenant", "tenant-0003", "--governor", "subscription", "--resource", "sub-00000019"],
    ];
    // Resource r (receipts 10r..10r+10) is tenant r % 16's: tenant 3 has 3, 19, 35 and 51.
    let expected: [Vec<u64>; 4] = [
        (30..40).chain(190..200).chain(350..360).chain(510..520).collect(),
        (30..40).collect(),
        (30..40).chain(190..200).chain(350..360).chain(510..520).collect(),
        (190..200).collect(),
    ];
    for (query, expected) in queries.iter().zip(&expected) {
        assert_eq!(listed(data, query), (expected.clone(), String::new()), "{query:?}");
    }
    // A listing reads the snapshot's header, tenants and fence (and the blocks it needs):
    // damage there is found, and every record is read instead. (The fence ends 16 bytes
    // before the file: the END section, a position hint checked by reading the frame.)
    for at in [20, first.len() - 17] {
        let mut damaged = first.clone();
        damaged[at] ^= 1;
        std::fs::write(&snap, &damaged).unwrap();
        for (query, expected) in queries.iter().zip(&expected) {
            let (seqs, stderr) = listed(data, query);
            assert_eq!(&seqs, expected, "{query:?}");
            assert!(stderr.contains("snapshot was not used"), "byte {at}: {stderr}");
        }
    }
    std::fs::remove_file(&snap).unwrap();
    for (query, expected) in queries.iter().zip(&expected) {
        assert_eq!(listed(data, query), (expected.clone(), String::new()), "{query:?}");
    }
}

#[test]
fn bench_start_starts_a_runtime_on_a_ledger_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    bench_ledger(data, 500, 5);
    let out = govern(&["bench", "start", data, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["bench"], "start");
    assert_eq!(v["receipts"], 500, "{v}");
    assert!(v["start_s"].as_f64().is_some_and(|s| s > 0.0), "{v}");
    // The runtime shut down cleanly: the ledger still verifies, with its new checkpoint.
    let verify = govern(&["verify", data]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let missing = govern(&["bench", "start", "/nonexistent/govern-ledger"]);
    assert!(!missing.status.success());
}

/// `govern bench ledger` of 3 000 receipts in segments of 16 KiB (about 60 receipts each)
/// into `data`.
fn small_segments_ledger(data: &str) {
    let args = ["--receipts", "3000", "--per-resource", "10", "--segment-bytes", "16384"];
    let out = govern(&[&["bench", "ledger"][..], &args, &["--data-dir", data]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A ledger of 3 000 receipts in segments of 16 KiB (about 60 receipts each), archived
/// below 1 500 to `archive`: the data directory and the archive.
fn archived_ledger(dir: &Path) -> (String, String) {
    let (data, archive) = (dir.join("data"), dir.join("archive"));
    let (data, archive) = (s(&data).to_owned(), s(&archive).to_owned());
    small_segments_ledger(&data);
    let out = govern(&["archive", &data, "--below", "1500", "--to", &archive, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let boundary = report["boundary"].as_u64().unwrap();
    assert!(boundary > 1000 && boundary <= 1500, "{report}");
    (data, archive)
}

#[test]
fn archive_moves_old_segments_and_the_directory_still_verifies_proves_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (data, archive) = archived_ledger(dir.path());
    let boundary = govern_ledger::archive::boundary(Path::new(&data)).unwrap();
    // Verified by what it records of the archived ranges, and in full with the archive.
    let out = govern(&["verify", &data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("checked by their recorded SHA-256"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("checkpoint: "), "{}", text(&out.stdout));
    let out = govern(&["verify", &data, "--archive", &archive]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("verified in full from the archive"),
        "{}",
        text(&out.stdout)
    );
    // The archive is itself the ledger of the first receipts.
    let out = govern(&["verify", &archive]);
    assert!(
        text(&out.stdout).contains(&format!("ok: {boundary} receipts")),
        "{}",
        text(&out.stdout)
    );
    // An archived receipt is proved with the archive, and refused without it.
    let out = govern(&["prove", &data, "--seq", "42"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is archived"), "{}", text(&out.stderr));
    let out = govern(&["prove", &data, "--seq", "42", "--archive", &archive]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let proof: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(proof["receipt"]["seq"].as_u64(), Some(42));
    assert_eq!(proof["inclusion_proof"]["tree_size"].as_u64(), Some(3000));
    let live = govern(&["prove", &data, "--seq", "2500"]);
    assert!(live.status.success(), "{}", text(&live.stderr));
    // Listing: the live receipts, and a count of the archived ones.
    let (seqs, stderr) = listed(&data, &["--tenant", "tenant-0003", "--resource", "sub-00000003"]);
    assert!(seqs.is_empty());
    assert!(stderr.contains("and 10 archived receipts"), "{stderr}");
    let (seqs, _) = listed(&archive, &["--tenant", "tenant-0003", "--resource", "sub-00000003"]);
    assert_eq!(seqs, (30..40).collect::<Vec<u64>>());
    // Without the ledger snapshot, from the archive's base snapshot and the live records.
    let tenant_3: Vec<u64> = (boundary / 10..300)
        .filter(|r| r % 16 == 3)
        .flat_map(|r| 10 * r..10 * r + 10)
        .filter(|&seq| seq >= boundary)
        .collect();
    assert_eq!(listed(&data, &["--tenant", "tenant-0003"]).0, tenant_3);
    std::fs::remove_file(Path::new(&data).join("ledger.snap")).unwrap();
    let (seqs, stderr) = listed(&data, &["--tenant", "tenant-0003"]);
    assert_eq!(seqs, tenant_3, "{stderr}");
    assert!(stderr.contains("archived receipts"), "{stderr}");
    // An export with the archive has every receipt of the tenant and verifies.
    let export = dir.path().join("acme.jsonl");
    for (extra, receipts) in [(None, 3000 - boundary), (Some(archive.as_str()), 3000)] {
        let mut args = vec!["export", data.as_str(), "--tenant", "tenant-0003", "--with-proofs"];
        if let Some(a) = extra {
            args.extend(["--archive", a]);
        }
        let out = govern(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::write(&export, &out.stdout).unwrap();
        let lines = text(&out.stdout).lines().count() as u64;
        // Tenant 3's resources are one in 16: about a sixteenth of the receipts, plus the
        // header and end lines.
        assert!(lines > receipts / 20 && lines < receipts / 12, "{lines} lines for {receipts}");
        let key = format!("{data}/checkpoint.pub");
        let out = govern(&["verify", "--export", s(&export), "--public-key", &key]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

#[test]
fn a_tampered_archive_is_caught_naming_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (data, archive) = archived_ledger(dir.path());
    let seg = Path::new(&archive).join("segments").join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    // The data directory alone still verifies: it does not read the archive.
    assert!(govern(&["verify", &data]).status.success());
    let out = govern(&["verify", &data, "--archive", &archive]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("00000000000000000000.seg") && stderr.contains("SHA-256"), "{stderr}");
}

#[test]
fn archive_refuses_a_directory_without_a_ledger_and_needs_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let empty = s(dir.path());
    let out = govern(&["archive", empty, "--below", "10", "--to", "/tmp/nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no ledger"), "{}", text(&out.stderr));
    let out = govern(&["archive", empty, "--to", "/tmp/nowhere"]);
    assert_eq!(out.status.code(), Some(2), "--before or --below is required");
    let out = govern(&["archive", empty, "--before", "yesterday", "--to", "/tmp/nowhere"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn prove_from_tree_files_gives_the_proof_the_whole_ledger_gives() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = s(&data).to_owned();
    small_segments_ledger(&data);
    let trees = Path::new(&data).join("trees");
    assert!(std::fs::read_dir(&trees).unwrap().count() > 40, "a tree file per sealed segment");
    let prove = |seq: &str| {
        let out = govern(&["prove", &data, "--seq", seq]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout).to_string(), text(&out.stderr).to_string())
    };
    let from_files: Vec<_> = ["0", "1234", "2999"].iter().map(|seq| prove(seq)).collect();
    let export = || {
        let out = govern(&["export", &data, "--tenant", "tenant-0003", "--with-proofs"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (out.stdout, text(&out.stderr).to_string())
    };
    let (exported, stderr) = export();
    assert!(!stderr.contains("note:"), "{stderr}");
    assert!(from_files.iter().all(|(_, stderr)| stderr.is_empty()), "{from_files:?}");
    // Without the tree files: the whole ledger verified first, the same proofs.
    let aside = dir.path().join("trees");
    std::fs::rename(&trees, &aside).unwrap();
    for (seq, expected) in ["0", "1234", "2999"].iter().zip(&from_files) {
        let (stdout, stderr) = prove(seq);
        assert_eq!(stdout, expected.0);
        assert!(stderr.contains("have no valid tree file"), "{stderr}");
    }
    // The export read whole and verified first is the same, byte for byte.
    let (whole, stderr) = export();
    assert_eq!(whole, exported);
    assert!(stderr.contains("verifying the whole ledger instead"), "{stderr}");
    // One missing (the newest sealed segment's, say): that segment is read, no note.
    std::fs::rename(&aside, &trees).unwrap();
    let newest =
        std::fs::read_dir(&trees).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).max().unwrap();
    std::fs::rename(&newest, dir.path().join("newest.tree")).unwrap();
    assert_eq!(prove("1234"), from_files[1]);
    std::fs::rename(dir.path().join("newest.tree"), &newest).unwrap();
    std::fs::rename(&trees, &aside).unwrap();
    // A tree file whose root was forged (its CRC recomputed): the proof would not check
    // against the checkpoint, so the whole ledger is verified instead, with a note.
    std::fs::rename(&aside, &trees).unwrap();
    let file = trees.join("00000000000000000000.tree");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[50] ^= 1;
    let n = bytes.len() - 4;
    let crc = crc32c::crc32c(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&file, &bytes).unwrap();
    let (stdout, stderr) = prove("1234");
    assert_eq!(stdout, from_files[1].0);
    assert!(stderr.contains("verifying the whole ledger instead"), "{stderr}");
}
