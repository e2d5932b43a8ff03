//! `govern run` as a user runs it: a scenario whose expectations hold exits 0 with a summary,
//! one with a wrong expectation exits 1 and says what was expected and what happened, an
//! invalid file exits 2 with every problem's file, line and column and runs nothing,
//! `--log json` writes one JSON object per event with its span's fields, and the tour says
//! that its crash's warning is expected.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn govern(args: &[&str], rust_log: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_govern"));
    cmd.args(args);
    match rust_log {
        Some(filter) => cmd.env("RUST_LOG", filter),
        None => cmd.env_remove("RUST_LOG"),
    };
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tour() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/tour.toml")
}

/// Writes `body` to `name` in a new temporary directory.
fn scenario(name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    (dir, path)
}

#[test]
fn the_tour_meets_every_expectation() {
    let out = govern(&["run", tour().to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("scenario tour"), "{stdout}");
    assert!(stdout.contains("summary:"), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(stdout.contains("chain verified"), "{stdout}");
    assert!(!stdout.contains("[FAILED]"), "{stdout}");
}

/// Issue 10: the tour's deliberate crash says in the transcript that the WARN line on stderr
/// about its restart is expected, and that is the one kind of warning the run logs.
#[test]
fn the_tour_says_its_crash_s_warning_is_expected() {
    let out = govern(&["run", tour().to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let crash = lines.iter().position(|l| l.contains("crash acme billing/inv-1")).unwrap();
    let note = lines[crash + 1];
    assert!(note.contains("the WARN line on stderr") && note.contains("is expected"), "{note}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(!warnings.is_empty(), "no WARN line: {stderr}");
    for line in &warnings {
        assert!(
            line.contains("billing") && line.contains("acme") && line.contains("restart"),
            "{line}"
        );
    }
    assert!(!stderr.contains(" ERROR "), "{stderr}");
}

#[test]
fn a_wrong_expectation_exits_1_and_says_what_happened() {
    let (_dir, path) = scenario(
        "wrong.toml",
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
    );
    let out = govern(&["run", path.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("[FAILED]"), "{stdout}");
    assert!(
        stdout.contains("expectation failed at line 7: expected state active, got free_trial"),
        "{stdout}"
    );
    assert!(stdout.contains("1 failed"), "{stdout}");
}

#[test]
fn an_invalid_file_exits_2_and_runs_nothing() {
    let (_dir, path) = scenario(
        "bad.toml",
        r#"name = "bad"
description = "three problems"

[[steps]]
tenant = "acme"
governor = "subscriptions"
resource = "sub-1"
command = "start_trial"

[[steps]]
advance = "soon"

[[steps]]
verify = false
"#,
    );
    // A valid file alongside: nothing runs while any given file has a problem.
    let out = govern(&["run", tour().to_str().unwrap(), path.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "ran something: {}", text(&out.stdout));
    let file = path.display().to_string();
    let problems: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&file)).collect();
    assert!(problems.len() >= 2, "{stderr}");
    for line in &problems {
        let rest = &line[file.len()..];
        let mut parts = rest.splitn(4, ':');
        assert_eq!(parts.next(), Some(""), "{line}");
        let l: usize = parts.next().unwrap().parse().unwrap();
        let c: usize = parts.next().unwrap().parse().unwrap();
        assert!(l >= 1 && c >= 1, "{line}");
    }
    assert!(stderr.contains(&format!("{file}:6:")), "{stderr}");
    assert!(stderr.contains(&format!("{file}:11:")), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line_with_span_fields() {
    // A transition is a DEBUG span (INFO would be noise at 100 k transitions a second).
    let out = govern(&["run", tour().to_str().unwrap(), "--log", "json"], Some("debug"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!events.is_empty(), "no log events");
    assert!(events.iter().all(serde_json::Value::is_object), "{stderr}");
    let with_tenant = events
        .iter()
        .filter(|e| e["span"]["tenant_id"].is_string())
        .map(|e| e["span"]["tenant_id"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert!(with_tenant.contains(&"acme"), "no event with span field tenant_id=acme: {stderr}");
    assert!(with_tenant.contains(&"globex"), "no event with span field tenant_id=globex");
}
