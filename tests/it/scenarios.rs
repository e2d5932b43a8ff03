//! The example scenarios (`examples/scenarios/*.toml`): each loads and runs with every
//! expectation met, together they reach every state of every governor, a run is deterministic,
//! and a file with problems is refused with every problem's line and column.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use govern_governors::GovernorKind;
use govern_ledger::{SegmentOptions, SegmentStore, StoreError};
use govern_receipt::Receipt;
use govern_scenario::{RunReport, StepOutcome, transcript};

/// Every scenario file in `examples/scenarios`, sorted.
fn scenario_files() -> Vec<PathBuf> {
    let dir = crate::repo_path("examples/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Loads and runs `file` in a fresh data directory; the report and the directory.
fn run(file: &Path) -> (RunReport, tempfile::TempDir) {
    let scenario = govern_scenario::load_file(file).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let report = govern_scenario::run_blocking(&scenario, dir.path(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    (report, dir)
}

/// Every (governor, state_from, state_to) of the receipts in data directory `dir`.
fn transitions(dir: &Path) -> Vec<(GovernorKind, String, String)> {
    let (store, _) =
        SegmentStore::open(dir, SegmentOptions { read_only: true, ..Default::default() }).unwrap();
    let mut out = Vec::new();
    store
        .for_each_record(|seq, record| {
            let r = Receipt::decode(record)
                .unwrap_or_else(|e| panic!("receipt {seq} in {}: {e}", dir.display()));
            out.push((r.body.governor, r.body.state_from.into(), r.body.state_to.into()));
            Ok::<(), StoreError>(())
        })
        .unwrap();
    out
}

/// One example's run: its file, its report, and the transitions its receipts record.
struct Ran {
    file: PathBuf,
    report: RunReport,
    transitions: Vec<(GovernorKind, String, String)>,
}

/// Every example, run once (shared by the tests below).
fn ran() -> &'static [Ran] {
    static RAN: OnceLock<Vec<Ran>> = OnceLock::new();
    RAN.get_or_init(|| {
        scenario_files()
            .into_iter()
            .map(|file| {
                let (report, dir) = run(&file);
                let transitions = transitions(dir.path());
                Ran { file, report, transitions }
            })
            .collect()
    })
}

#[test]
fn there_are_at_least_ten_examples_and_the_tour_is_one() {
    let files = scenario_files();
    assert!(files.len() >= 10, "{} example scenarios: {files:?}", files.len());
    assert!(files.iter().any(|f| f.ends_with("tour.toml")), "{files:?}");
}

#[test]
fn every_example_runs_with_every_expectation_met() {
    let mut failures = Vec::new();
    for r in ran() {
        if r.report.passed() {
            continue;
        }
        let mut text = format!("{}:", r.file.display());
        for step in r.report.steps.iter().filter(|s| !s.failed.is_empty()) {
            text.push('\n');
            text.push_str(&transcript::step_lines(step));
        }
        for failure in &r.report.run_failed {
            text.push_str(&format!("\n  expectation failed: {failure}"));
        }
        failures.push(text);
    }
    assert!(failures.is_empty(), "scenarios with failed expectations:\n{}", failures.join("\n\n"));
}

#[test]
fn the_examples_reach_every_state_of_every_governor() {
    let mut seen: BTreeSet<(GovernorKind, String)> = BTreeSet::new();
    for r in ran() {
        assert!(!r.transitions.is_empty(), "{}: no receipts read", r.file.display());
        for (kind, from, to) in &r.transitions {
            seen.insert((*kind, from.clone()));
            seen.insert((*kind, to.clone()));
        }
    }
    let missing: Vec<String> = GovernorKind::ALL
        .into_iter()
        .flat_map(|kind| govern_scenario::state_names(kind).into_iter().map(move |s| (kind, s)))
        .filter(|(kind, state)| !seen.contains(&(*kind, (*state).to_owned())))
        .map(|(kind, state)| format!("({kind}, {state})"))
        .collect();
    assert!(missing.is_empty(), "states no example reaches: {}", missing.join(", "));
}

/// The hash of every accepted step, in order.
fn accepted_hashes(report: &RunReport) -> Vec<(usize, govern_receipt::Digest)> {
    report
        .steps
        .iter()
        .filter_map(|s| match &s.outcome {
            StepOutcome::Accepted { hash, .. } => Some((s.index, *hash)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_tour_runs_the_same_twice() {
    let tour = crate::repo_path("examples/scenarios/tour.toml");
    let (first, _a) = run(&tour);
    let (second, _b) = run(&tour);
    assert!(first.passed() && second.passed());
    let hashes = accepted_hashes(&first);
    assert!(hashes.len() >= 5, "{hashes:?}");
    assert_eq!(hashes, accepted_hashes(&second));
    assert_eq!(first.head, second.head);
    assert_eq!(first.head.next_seq, 12);
}

#[test]
fn a_file_with_problems_is_refused_with_every_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = r#"name = "bad"
description = "several problems at once"

[[tenants]]
id = "acme"

[[steps]]
tenant = "acme"
governor = "subscriptions"
resource = "sub-1"
command = "start_trial"

[[steps]]
tenant = "acme"
governor = "subscription"
resource = "sub-1"
command = "begin"

[[steps]]
advance = "soon"
"#;
    std::fs::write(&path, text).unwrap();
    let err = govern_scenario::load_file(&path).unwrap_err();
    let at: Vec<(usize, usize)> = err.problems.iter().map(|p| (p.at.line, p.at.column)).collect();
    assert!(err.problems.len() >= 3, "{err}");
    for line in [9, 17, 20] {
        assert!(at.iter().any(|(l, c)| *l == line && *c > 1), "no problem at line {line}: {err}");
    }
    let shown = err.to_string();
    let file = path.display().to_string();
    assert_eq!(shown.lines().count(), err.problems.len(), "{shown}");
    for (line, p) in shown.lines().zip(&err.problems) {
        let prefix = format!("{file}:{}:{}: ", p.at.line, p.at.column);
        assert!(line.starts_with(&prefix), "{line} (expected {prefix})");
    }
}
