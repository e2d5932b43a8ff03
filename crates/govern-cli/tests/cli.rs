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
