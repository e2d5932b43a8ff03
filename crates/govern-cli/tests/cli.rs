//! The `govern` binary as a user runs it: `bench ledger` writes a signed ledger, `verify`

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! accepts it, and names what is wrong when it is damaged, truncated or absent.

use std::path::Path;
use std::process::{Command, Output};

fn govern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_govern")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A data directory with `n` receipts and a checkpoint signed at `n`.
fn ledger(n: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = govern(&[
        "bench",
        "ledger",
        "--receipts",
        &n.to_string(),
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--batch",
        "7",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

fn segment(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> =
        std::fs::read_dir(dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 1);
    files.remove(0)
}

/// Byte offsets where each frame of a segment starts (header: u32 length, u32 crc, u64 seq).
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        starts.push(at);
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 16 + len;
    }
    starts
}

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

fn digest(v: &serde_json::Value) -> govern_receipt::Digest {
    v.as_str().unwrap().parse().unwrap()
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
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
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
