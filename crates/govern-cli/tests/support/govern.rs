//! What the tests of the `govern` binary share: running it, its output as text, a data
//! directory written by `govern bench ledger` and the frames of its segment, and checks on a
//! failed run.

#![allow(dead_code, reason = "each test binary uses some of these")]

use std::path::Path;
use std::process::{Command, Output};

use govern_ledger::segment::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};

/// Runs `govern` with `args`, without `RUST_LOG` (its logs would mix into the output).
pub(crate) fn govern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_govern")).args(args).env_remove("RUST_LOG").output().unwrap()
}

/// Output bytes as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as the `&str` an argument list takes.
pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A data directory with `n` receipts and a checkpoint signed at `n` (`bench ledger`:
/// receipt `i` is tenant `i % 16`'s, committed in batches of 7).
pub(crate) fn ledger(n: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = govern(&[
        "bench",
        "ledger",
        "--receipts",
        &n.to_string(),
        "--data-dir",
        s(dir.path()),
        "--batch",
        "7",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

/// A JSON string holding a digest in hex.
pub(crate) fn digest(v: &serde_json::Value) -> govern_receipt::Digest {
    v.as_str().unwrap().parse().unwrap()
}

/// Asserts that a run failed with exit status 1 and `needle` in its stderr.
pub(crate) fn fails_with(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

/// The one segment file of a small data directory.
pub(crate) fn segment(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> =
        std::fs::read_dir(dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 1);
    files.remove(0)
}

/// Byte offsets where each frame of a segment starts (after the segment header; a frame
/// header starts with the payload's length, a big-endian u32).
pub(crate) fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        starts.push(at);
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += FRAME_HEADER_LEN + len;
    }
    starts
}

/// Runs `govern bench ARGS --json`; its one line of output, parsed.
pub(crate) fn bench_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = govern(&all);
    assert!(out.status.success(), "stdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(&stdout).unwrap()
}

/// The tour scenario's data directory (12 receipts: acme 8, globex 4), written into `parent`.
pub(crate) fn tour_ledger(parent: &Path) -> std::path::PathBuf {
    let dir = parent.join("tour");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/tour.toml");
    let out = govern(&["run", "--data-dir", s(&dir), s(&file)]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    dir
}

/// The stdout of a command that must succeed (its output shown if it did not).
pub(crate) fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}
