//! What `govern` writes to stdout and stderr, and what becomes of it (issue 10): every
//! command's log events go to stderr as RUST_LOG and `--log` say, and a reader that closes a
//! pipe early (`govern ... | head -1`, `2>&1 | head -1`) changes no exit status and panics
//! nothing.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "support/govern.rs"]
mod support;
use support::{frame_starts, ledger, s, segment, text};

/// `govern args`, with RUST_LOG set to `rust_log` or unset.
fn command(args: &[&str], rust_log: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_govern"));
    cmd.args(args);
    match rust_log {
        Some(filter) => cmd.env("RUST_LOG", filter),
        None => cmd.env_remove("RUST_LOG"),
    };
    cmd
}

/// A ledger of 50 receipts whose last frame is cut after 30 bytes, with no writer: a torn
/// tail, which opening it read-only logs as a warning (`govern_ledger::segment`).
fn torn_ledger() -> tempfile::TempDir {
    let dir = ledger(50);
    let seg = segment(dir.path());
    let bytes = std::fs::read(&seg).unwrap();
    let starts = frame_starts(&bytes);
    std::fs::write(&seg, &bytes[..starts[49] + 30]).unwrap();
    dir
}

const TORN: &str = "torn final frame found";

// ---- logs ----

#[test]
fn help_says_how_logs_are_chosen() {
    let out = command(&["--help"], None).output().unwrap();
    let help = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(help.contains("--log <FORMAT>") && help.contains("RUST_LOG"), "{help}");
    for sub in ["receipts", "verify", "export", "prove", "checkpoint", "graph", "run", "plans"] {
        let out = command(&[sub, "--help"], None).output().unwrap();
        assert!(
            text(&out.stdout).contains("--log <FORMAT>"),
            "{sub} --help: {}",
            text(&out.stdout)
        );
    }
}

/// RUST_LOG decides which events a command other than `run` writes to stderr: the torn
/// tail's warning shows by default (warn) and not under RUST_LOG=error; never on stdout.
#[test]
fn rust_log_filters_the_events_of_every_command() {
    let dir = torn_ledger();
    let path = s(dir.path());
    for args in [
        vec!["receipts", path, "--tenant", "tenant-0003"],
        vec!["export", path, "--tenant", "tenant-0003"],
    ] {
        let out = command(&args, None).output().unwrap();
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(" WARN ") && stderr.contains(TORN), "{args:?}: {stderr}");
        assert!(!text(&out.stdout).contains(TORN), "{args:?}: a log event on stdout");

        let out = command(&args, Some("error")).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).contains(TORN), "{args:?}: {}", text(&out.stderr));

        let out = command(&args, Some("govern_ledger=off")).output().unwrap();
        assert!(!text(&out.stderr).contains(TORN), "{args:?}: {}", text(&out.stderr));
    }
}

/// `--log json`, before or after the command's name, turns the same event into one JSON
/// object on one line.
#[test]
fn log_json_formats_the_events_of_every_command() {
    let dir = torn_ledger();
    let path = s(dir.path());
    for args in [
        vec!["receipts", path, "--tenant", "tenant-0003", "--log", "json"],
        vec!["--log", "json", "receipts", path, "--tenant", "tenant-0003"],
    ] {
        let out = command(&args, None).output().unwrap();
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        let events: Vec<serde_json::Value> = stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let torn: Vec<_> = events
            .iter()
            .filter(|e| e["fields"]["message"].as_str().is_some_and(|m| m.contains(TORN)))
            .collect();
        assert_eq!(torn.len(), 1, "{args:?}: {stderr}");
        assert_eq!(torn[0]["level"], "WARN", "{stderr}");
        assert!(torn[0]["fields"]["segment"].is_string(), "{stderr}");
    }
}

/// A RUST_LOG that does not parse is said, and the default (warn) applies.
#[test]
fn a_bad_rust_log_is_said_and_the_default_applies() {
    let dir = torn_ledger();
    let args = ["receipts", s(dir.path()), "--tenant", "tenant-0003"];
    let out = command(&args, Some("govern_ledger=loud")).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("RUST_LOG=\"govern_ledger=loud\" does not parse"), "{stderr}");
    assert!(stderr.contains(TORN), "{stderr}");
}

// ---- closed pipes ----

/// Which of the child's streams its reader has closed.
#[derive(Clone, Copy, Debug)]
enum Closed {
    Stdout,
    Stderr,
    /// Both on one pipe, as `2>&1 | head` has them.
    Both,
}

/// Runs `cmd` with `closed` going to a pipe whose reader is gone before it starts, so that
/// every write to it fails with EPIPE (no race with a reader); a stream not closed is
/// captured.
fn with_closed(mut cmd: Command, closed: Closed) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    match closed {
        Closed::Stdout => cmd.stdout(writer),
        Closed::Stderr => cmd.stderr(writer),
        Closed::Both => cmd.stderr(writer.try_clone().unwrap()).stdout(writer),
    };
    cmd.output().unwrap()
}

/// Runs `cmd` as `cmd | head -1` (`merged`: `cmd 2>&1 | head -1`): reads one line of its
/// stdout, closes the pipe and waits for it; its stderr, when not merged, is captured.
fn head_1(mut cmd: Command, merged: bool) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    if merged {
        cmd.stderr(writer.try_clone().unwrap());
    } else {
        cmd.stderr(Stdio::piped());
    }
    cmd.stdout(writer);
    let child = cmd.spawn().unwrap();
    // This process must hold no write end, or the read below would never see the end.
    drop(cmd);
    let mut line = String::new();
    let mut reader = BufReader::new(reader);
    reader.read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "no first line");
    drop(reader);
    child.wait_with_output().unwrap()
}

/// Asserts that `out` exited with `code` and panicked nothing.
fn exits(out: &Output, code: i32, what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{what}: stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

fn tour() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/tour.toml")
}

/// Writes a scenario whose expectation is wrong (it exits 1) and one that does not load
/// (exit 2) into `dir`.
fn failing_scenarios(dir: &Path) -> (PathBuf, PathBuf) {
    let wrong = dir.join("wrong.toml");
    std::fs::write(
        &wrong,
        r#"name = "wrong"
description = "expects the wrong state after start_trial"

[[tenants]]
id = "acme"

[[steps]]
tenant = "acme"
governor = "subscription"
resource = "sub-1"
command = "start_trial"
args = { plan = "pro", trial_days = 14 }
expect = { state = "active" }
"#,
    )
    .unwrap();
    let invalid = dir.join("invalid.toml");
    std::fs::write(&invalid, "name = \"invalid\"\n[[steps]]\nadvance = \"soon\"\n").unwrap();
    (wrong, invalid)
}

const ALL: [Closed; 3] = [Closed::Stdout, Closed::Stderr, Closed::Both];

/// `govern run`: the tour (whose deliberate crash logs a WARN line to stderr) exits 0, a
/// wrong expectation 1, an invalid file 2, whichever stream is closed.
#[test]
fn run_exits_with_its_own_status_when_a_pipe_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (wrong, invalid) = failing_scenarios(dir.path());
    for (file, code) in [(tour(), 0), (wrong, 1), (invalid, 2)] {
        let args = ["run", s(&file)];
        for closed in ALL {
            exits(
                &with_closed(command(&args, None), closed),
                code,
                &format!("{file:?} {closed:?}"),
            );
        }
        if code != 2 {
            // Nothing goes to stdout before an invalid file is refused: no line to read.
            exits(&head_1(command(&args, None), false), code, &format!("{file:?} | head -1"));
        }
        exits(&head_1(command(&args, None), true), code, &format!("{file:?} 2>&1 | head -1"));
    }
    // With every event of the run on stderr, one per transition.
    let tour = tour();
    let args = ["run", s(&tour)];
    for closed in [Closed::Stderr, Closed::Both] {
        exits(&with_closed(command(&args, Some("debug")), closed), 0, "RUST_LOG=debug");
    }
}

/// `govern verify`: a sound ledger exits 0, a flipped byte 1, whichever stream is closed.
#[test]
fn verify_exits_with_its_own_status_when_a_pipe_is_closed() {
    let good = ledger(50);
    let bad = ledger(50);
    let seg = segment(bad.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let starts = frame_starts(&bytes);
    bytes[starts[17] + 100] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    for (dir, code) in [(&good, 0), (&bad, 1)] {
        let args = ["verify", s(dir.path())];
        for closed in ALL {
            let what = format!("verify exiting {code}, {closed:?} closed");
            exits(&with_closed(command(&args, None), closed), code, &what);
        }
        exits(&head_1(command(&args, None), true), code, "verify 2>&1 | head -1");
    }
    exits(&head_1(command(&["verify", s(good.path())], None), false), 0, "verify | head -1");
}

/// `govern receipts`: a listing longer than a pipe holds exits 0 when its reader stops after
/// one line; a missing ledger exits 1 and a torn tail's warning panics nothing, whichever
/// stream is closed.
#[test]
fn receipts_exits_with_its_own_status_when_a_pipe_is_closed() {
    let big = ledger(8_000);
    let args = ["receipts", s(big.path()), "--tenant", "tenant-0003"];
    let listing = command(&args, None).output().unwrap();
    assert!(listing.stdout.len() > 65_536, "{} bytes: fits in a pipe", listing.stdout.len());
    exits(&head_1(command(&args, None), false), 0, "receipts | head -1");
    exits(&head_1(command(&args, None), true), 0, "receipts 2>&1 | head -1");
    let torn = torn_ledger();
    let missing = tempfile::tempdir().unwrap();
    let missing = missing.path().join("nope");
    for (dir, code) in [(big.path(), 0), (torn.path(), 0), (missing.as_path(), 1)] {
        let args = ["receipts", s(dir), "--tenant", "tenant-0003"];
        for closed in ALL {
            exits(&with_closed(command(&args, None), closed), code, &format!("{dir:?} {closed:?}"));
        }
    }
}

/// The other commands that print, with stdout or both streams closed, exit 0.
#[test]
fn the_other_commands_exit_0_when_a_pipe_is_closed() {
    let dir = ledger(50);
    let path = s(dir.path());
    for args in [
        vec!["export", path, "--tenant", "tenant-0003", "--with-proofs"],
        vec!["prove", path, "--seq", "3"],
        vec!["checkpoint", path],
        vec!["graph", "billing"],
        vec!["bench", "reopen", path],
    ] {
        for closed in ALL {
            exits(&with_closed(command(&args, None), closed), 0, &format!("{args:?} {closed:?}"));
        }
    }
    // `govern plans`: each command with a valid catalog exits 0, validate with a bad one 2.
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans");
    let licensing = plans.join("licensing.toml");
    let catalog = s(&licensing);
    let bad = tempfile::tempdir().unwrap();
    let bad_file = bad.path().join("bad.toml");
    std::fs::write(
        &bad_file,
        "version = 1
[plans.a]
name = 2
",
    )
    .unwrap();
    for (args, code) in [
        (vec!["plans", "validate", catalog], 0),
        (vec!["plans", "list", catalog], 0),
        (vec!["plans", "show", "professional", "--catalog", catalog], 0),
        (vec!["plans", "diff", "community", "enterprise", "--catalog", catalog], 0),
        (vec!["plans", "validate", s(&bad_file)], 2),
    ] {
        for closed in ALL {
            let what = format!("{args:?} {closed:?}");
            exits(&with_closed(command(&args, None), closed), code, &what);
        }
    }
}
