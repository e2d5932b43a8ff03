//! `govern bench checks` at a tiny size: every case reports its figures and every decision is
//! the one the setup implies (counted by what decided it); `govern bench lifecycle --catalog`
//! runs its subscriptions on a plan of the catalog.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::PathBuf;

use serde_json::{Value, json};

#[path = "support/govern.rs"]
mod support;
use support::{bench_json as bench, govern, s, text};

fn example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans").join(file)
}

/// The example catalog's plans in id order, each with how many features it has.
fn plans() -> Vec<(String, u64)> {
    let files = ["licensing.toml", "pricing.toml", "platform.toml"].map(example);
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    let catalog = govern_plans::load_files(&paths).unwrap();
    catalog.plans.values().map(|p| (p.id.as_str().to_owned(), p.features.len() as u64)).collect()
}

/// The counts the warm sets of tenants with `features` (plan features each) give in `n`
/// checks: each tenant's features then the granted one, 4 actions each, cycled.
fn warm_counts(features: &[u64], n: u64) -> Value {
    let kinds: Vec<bool> = features
        .iter()
        .flat_map(|&f| (0..f).map(|_| true).chain([false]))
        .flat_map(|plan| [plan; 4])
        .collect();
    let len = kinds.len() as u64;
    let plan: u64 = kinds
        .iter()
        .enumerate()
        .filter(|(_, plan)| **plan)
        .map(|(k, _)| n / len + u64::from((k as u64) < n % len))
        .sum();
    json!({ "allowed_plan_feature": plan, "allowed_grant": n - plan, "allowed_rule": 0, "other": 0 })
}

fn ruled(n: u64) -> Value {
    json!({ "allowed_plan_feature": 0, "allowed_grant": 0, "allowed_rule": n, "other": 0 })
}

#[test]
fn bench_checks_reports_every_case_and_every_decision_is_the_one_the_setup_implies() {
    let v = bench(&["checks", "--tenants", "4", "--checks", "1000", "--threads", "1"]);
    assert_eq!(v["bench"], "checks");
    assert_eq!(
        (&v["tenants"], &v["threads"], &v["checks_per_thread"], &v["rules"]),
        (&json!(4), &json!(1), &json!(1000), &json!(200))
    );
    assert_eq!(v["plans"], 9, "{v}");
    assert_eq!(v["cache_entries_max"], 1024);
    assert_eq!(v["uncached_actions"], 2048);
    // One tenant's warm set, then two cycles of 2 048 actions: never a hit.
    assert_eq!(v["uncached_miss_proof"], json!({ "requests": 4096, "hits": 0 }));

    // Tenant i is on the ith plan in id order.
    let features: Vec<u64> = plans().iter().take(4).map(|(_, f)| *f).collect();
    let warm_len = 4 * features.iter().map(|f| f + 1).sum::<u64>();
    let expected = [
        ("warm_up", warm_len, 4, warm_counts(&features, warm_len)),
        ("cached_1_thread_1_tenant", 1000, 1, warm_counts(&features[..1], 1000)),
        ("cached_1_thread_all_tenants", 1000, 4, warm_counts(&features, 1000)),
        ("cached_threads_1_tenant_each", 1000, 1, warm_counts(&features[..1], 1000)),
        ("cached_threads_spread_tenants", 1000, 4, warm_counts(&features, 1000)),
        ("cached_threads_shared_tenant", 1000, 1, warm_counts(&features[..1], 1000)),
        ("uncached_1_thread_all_tenants", 1000, 4, ruled(1000)),
        ("uncached_threads_spread_tenants", 1000, 4, ruled(1000)),
        ("decide_1_thread", 1000, 1, ruled(1000)),
    ];
    let cases = v["cases"].as_object().unwrap();
    assert_eq!(cases.len(), expected.len(), "{v}");
    for (name, checks, tenants, outcomes) in expected {
        let case = &cases[name];
        assert_eq!(case["checks"], checks, "{name}: {case}");
        assert_eq!(case["threads"], 1, "{name}: {case}");
        assert_eq!(case["tenants_per_thread"], tenants, "{name}: {case}");
        assert_eq!(case["outcomes"], outcomes, "{name}: {case}");
        assert_eq!(case["expected"], outcomes, "{name}: {case}");
        for k in ["ns_per_check", "checks_per_s", "wall_s"] {
            assert!(case[k].as_f64().unwrap() > 0.0, "{name}: {k} in {case}");
        }
    }
}

#[test]
fn bench_checks_refuses_bad_options_and_a_catalog_offering_its_features() {
    let out = govern(&["bench", "checks", "--rules", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--rules must be 1 to 10000"), "{}", text(&out.stderr));

    // A plan that offers the benchmark's granted feature would make the grant moot.
    let dir = tempfile::tempdir().unwrap();
    let catalog = std::fs::read_to_string(example("pricing.toml"))
        .unwrap()
        .replacen(
            "[features.report_builder]",
            "[features.bench_granted]\ndescription = \"x\"\n\n[features.report_builder]",
            1,
        )
        // Pro and the plan above it (an upgrade takes no feature away).
        .replace(
            "    \"report_builder\", \"export_pdf\"",
            "    \"bench_granted\", \"report_builder\", \"export_pdf\"",
        );
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, catalog).unwrap();
    let out =
        govern(&["bench", "checks", "--catalog", s(&path), "--tenants", "1", "--checks", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "govern: the benchmark's feature bench_granted must be in no plan of the catalog"
    );
}

#[test]
fn bench_lifecycle_with_a_catalog_runs_on_one_of_its_plans() {
    let pricing = example("pricing.toml");
    let licensing = example("licensing.toml");
    for (catalog, plan) in [(&pricing, "pro"), (&licensing, "community")] {
        let v = bench(&[
            "lifecycle",
            "--governors",
            "20",
            "--clients",
            "2",
            "--tenants",
            "2",
            "--workers",
            "1",
            "--catalog",
            s(catalog),
        ]);
        assert_eq!(v["plan"], plan, "{v}");
        assert_eq!(v["catalog"], json!([s(catalog)]), "{v}");
        // 2 receipts per tenant, 9 per governor: every transition was accepted.
        assert_eq!(v["receipts"], 2 * 2 + 9 * 20, "{v}");
    }
}

#[test]
fn bench_usage_counts_every_event_once_through_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let args = ["usage", "--events", "1003", "--producers", "2", "--batch", "100", "--data-dir"];
    let mut all = args.to_vec();
    all.push(s(&data));
    let r = bench(&all);
    assert_eq!((r["store"].as_str(), r["events"].as_u64()), (Some("durable"), Some(1003)));
    assert_eq!(r["counted"].as_u64(), Some(1003));
    // Two producers of 502 and 501 events in calls of at most 100: 6 flushes each.
    assert_eq!(r["usage_receipts"].as_u64(), Some(12));
    assert!(r["events_per_s"].as_f64().unwrap() > 0.0);
    // The ledger it leaves verifies offline.
    let out = govern(&["verify", s(&data)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn bench_idempotency_replays_write_nothing() {
    let r = bench(&["idempotency", "--commands", "200", "--clients", "2"]);
    assert_eq!(r["commands"].as_u64(), Some(200));
    assert_eq!(r["receipts_written_by_replays"].as_u64(), Some(0));
    for k in ["unkeyed_per_s", "keyed_per_s", "replay_per_s"] {
        assert!(r[k].as_f64().unwrap() > 0.0, "{k}");
    }
}

#[test]
fn bench_sagas_completes_every_run_with_its_receipts() {
    let r = bench(&["sagas", "--runs", "20", "--clients", "4"]);
    assert_eq!((r["runs"].as_u64(), r["receipts"].as_u64()), (Some(20), Some(300)));
    assert!(r["sagas_per_s"].as_f64().unwrap() > 0.0);
}
