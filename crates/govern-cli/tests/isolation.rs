//! `govern bench blast` and `govern bench replay` at tiny sizes: they run, every other
//! tenant's command succeeds, and the JSON report has its fields with sane values.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

#[path = "support/govern.rs"]
mod support;
use support::{bench_json as bench, govern, s, text};

/// A run's figures: every command answered and accepted, percentiles in order.
fn check_run(run: &serde_json::Value, commands: u64) {
    assert_eq!(run["commands"], commands, "{run}");
    assert_eq!(run["outcomes"], serde_json::json!({ "accepted": commands }), "{run}");
    let f = |k: &str| run[k].as_f64().unwrap_or_else(|| panic!("{k} in {run}"));
    assert!(f("per_s") > 0.0, "{run}");
    assert!(f("p50_us") > 0.0, "{run}");
    assert!(f("p50_us") <= f("p99_us") && f("p99_us") <= f("p999_us"), "{run}");
    assert!(f("p999_us") <= f("max_us"), "{run}");
    assert!(f("p50_time_us") <= f("p99_time_us") && f("p99_time_us") <= f("max_us"), "{run}");
    assert!(f("p50_us") <= f("p50_time_us"), "weighting by time favours the slower: {run}");
}

fn check_end(v: &serde_json::Value) {
    assert_eq!(v["others_all_accepted"], true, "{v}");
    assert_eq!(v["runtime_up"], true, "{v}");
    assert_eq!(v["chain_verified"], true, "{v}");
    for k in ["p50_ratio", "p99_ratio", "p99_time_ratio", "per_s_ratio"] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k} in {v}");
    }
}

#[test]
fn blast_injects_its_panics_and_every_other_tenant_s_command_succeeds() {
    // Two noisy governors, quarantined after 31 crashes: the first is, the second takes the
    // remaining 9.
    let v = bench(&[
        "blast",
        "--tenants",
        "3",
        "--governors-per-tenant",
        "2",
        "--commands",
        "300",
        "--panics",
        "40",
        "--noisy-governors",
        "2",
        "--governor-restarts",
        "30",
    ]);
    assert_eq!(v["bench"], "blast");
    assert_eq!(v["store"], "memory");
    check_run(&v["quiet"], 300);
    check_run(&v["noisy"], 300);
    check_end(&v);
    let noise = &v["noise"];
    assert_eq!(noise["panics"], 40, "{noise}");
    assert!(noise["panics_in_window"].as_u64().unwrap() <= 40, "{noise}");
    assert_eq!(noise["quarantines"], 1, "{noise}");
    let injected = &noise["injected"];
    assert_eq!(injected["now"], 20, "both crash points, in turn: {noise}");
    assert_eq!(injected["after_next_append"], 20, "{noise}");
    // Each crash is followed by a command to its governor: accepted, or refused while it is
    // quarantined.
    let commands: u64 =
        noise["commands"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(commands, 40, "{noise}");
    for code in noise["commands"].as_object().unwrap().keys() {
        assert!(["accepted", "governor_unavailable"].contains(&code.as_str()), "{noise}");
    }
    // 2 receipts per tenant, a warm-up command per governor, both runs, the noise's accepted
    // commands, and one audit record per quarantine.
    let accepted = noise["commands"]["accepted"].as_u64().unwrap();
    let quarantines = noise["quarantines"].as_u64().unwrap();
    assert_eq!(
        v["receipts"].as_u64().unwrap(),
        2 * 3 + (2 * 2 + 2) + 2 * 300 + accepted + quarantines,
        "{v}"
    );
}

#[test]
fn replay_brings_a_long_history_back_while_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    for store in [None, Some(s(&data))] {
        let mut args = vec![
            "replay",
            "--receipts",
            "2000",
            "--build-clients",
            "16",
            "--tenants",
            "3",
            "--governors-per-tenant",
            "2",
            "--commands",
            "300",
        ];
        if let Some(dir) = store {
            args.extend(["--data-dir", dir]);
        }
        let v = bench(&args);
        assert_eq!(v["bench"], "replay");
        assert_eq!(v["store"], if store.is_some() { "durable" } else { "memory" });
        assert_eq!(v["replay_receipts"], 2000);
        check_run(&v["quiet"], 300);
        check_run(&v["noisy"], 300);
        check_end(&v);
        assert!(v["replay_alone_ms"].as_f64().unwrap() > 0.0, "{v}");
        let replays = v["replays"].as_u64().unwrap();
        assert!(replays >= 1, "{v}");
        assert_eq!(v["replay_ms"].as_array().unwrap().len() as u64, replays, "{v}");
        let busy = v["replay_busy_fraction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&busy), "{v}");
        // 2 receipts per tenant, the history, one command per replay (the one alone too),
        // a warm-up command per other governor, both runs.
        let expected = 2 * 3 + 2000 + 1 + replays + 2 * 2 + 2 * 300;
        assert_eq!(v["receipts"].as_u64().unwrap(), expected, "{v}");
    }
    // The durable run left its ledger, which verifies.
    let out = govern(&["verify", s(&data)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
