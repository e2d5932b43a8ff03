//! `govern bench load` at a small size (issue 17's load run): idle governors are passivated,
//! overload is refused `busy` and by nothing else, every acknowledged receipt is in the
//! ledger, which verifies offline afterwards. Outcomes, not timings. Heavier sizes through
//! `GOVERN_LOAD_TENANTS` and `GOVERN_LOAD_SECONDS` (docs/reliability.md, "Load").

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use serde_json::Value;

#[path = "support/govern.rs"]
mod support;
use support::{govern, s, text};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn a_small_load_run_passivates_refuses_overload_busy_and_loses_no_receipt() {
    let tenants = env_or("GOVERN_LOAD_TENANTS", 2_000);
    let seconds = env_or("GOVERN_LOAD_SECONDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let out = govern(&[
        "bench",
        "load",
        "--tenants",
        &tenants.to_string(),
        "--seconds",
        &seconds.to_string(),
        "--data-dir",
        s(&data),
        "--idle-ms",
        "300",
        "--warmup-seconds",
        "1",
        "--clients",
        "16",
        "--overload-seconds",
        "2",
        // 4 hot tenants × 8 governors: 512 callers a tenant, 4 times its bound of 128.
        "--overload-callers",
        "2048",
        "--tenant-in-flight-max",
        "128",
        "--json",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &report["summary"];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a number: {v} in {summary:#}"));

    // Passivation: provisioning made at least 7 governors a tenant (the tenant, its trial, a
    // second subscription, an account, a grant, a payment and its usage meter's quota);
    // without passivation none would leave, so the resident ones would never fall below
    // 7 × tenants during the mixed phase.
    let resident = &summary["resident_governors"];
    assert!(n(&resident["mixed_min"]) < 2 * tenants, "{summary:#}");

    // Overload: refused busy, by the tenant's in-flight bound, and by nothing else anywhere.
    assert!(n(&summary["overload"]["busy"]) > 0, "{summary:#}");
    let by_bound = summary["overload"]["busy_by_bound"].as_object().unwrap();
    assert!(by_bound.keys().all(|k| k.starts_with("busy (")), "{by_bound:?}");
    assert!(summary["other_refusals"].as_object().unwrap().is_empty(), "{summary:#}");
    assert_eq!(n(&summary["busy_outside_overload"]), 0, "{summary:#}");
    assert!(n(&summary["latency"]["overload"]["commands"]) > 0, "some were admitted");

    // Every acknowledged receipt is in the ledger with its hash, every usage event counted
    // once, every check allowed, the chain verified.
    let receipts = &summary["receipts"];
    assert!(n(&receipts["acknowledged"]) > 2 * tenants, "{receipts}");
    assert_eq!(receipts["found_in_ledger"], receipts["acknowledged"]);
    assert!(n(&receipts["usage_events_counted"]) > 0, "{receipts}");
    assert_eq!(receipts["usage_events_in_ledger"], receipts["usage_events_counted"]);
    assert_eq!(receipts["verified"], true);
    assert!(n(&summary["checks"]["allowed"]) > 0);
    assert_eq!(n(&summary["checks"]["refused"]), 0);

    // A sample each second, each with the figures the table prints.
    let rows = report["seconds"].as_array().unwrap();
    assert!(rows.len() as u64 >= seconds, "{rows:?}");
    assert!(rows.iter().all(|r| r["rss_mib"].as_f64().unwrap() > 0.0));

    // And the directory it leaves verifies offline.
    let verify = govern(&["verify", s(&data)]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
}
