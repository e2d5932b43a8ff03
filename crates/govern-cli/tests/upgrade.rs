//! `govern upgrade simulate|apply` on a data directory a scenario wrote: acme on Pro with 10
//! seats used and a compliant SOC 2 audit. A downgrade to Starter (5 seats) is refused by its
//! preflight, naming the limit; the upgrade to Enterprise passes every gate and is receipted.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::PathBuf;

#[path = "support/govern.rs"]
mod support;
use support::{fails_with, govern, s, text};

fn pricing() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans/pricing.toml")
}

const SCENARIO: &str = r#"
name = "acme-on-pro"
description = "acme on Pro with 10 seats and a compliant SOC 2 audit."
start = 2026-01-01T00:00:00Z
catalog = "CATALOG"

[[tenants]]
id = "acme"

[[steps]]
tenant = "acme"
governor = "subscription"
resource = "sub-1"
command = "activate"
args = { plan = "pro" }
expect = { state = "active" }

[[steps]]
usage = "seats"
tenant = "acme"
quantity = 10
event = "evt-1"
expect = { value = 10 }

[[steps]]
tenant = "acme"
governor = "compliance"
resource = "soc2"
command = "start_audit"
args = { domain = "soc2" }

[[steps]]
tenant = "acme"
governor = "compliance"
resource = "soc2"
command = "begin_review"

[[steps]]
tenant = "acme"
governor = "compliance"
resource = "soc2"
command = "mark_compliant"
expect = { state = "compliant" }
"#;

#[test]
fn a_downgrade_over_a_limit_is_refused_and_an_upgrade_through_every_gate_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("acme.toml");
    std::fs::write(&scenario, SCENARIO.replace("CATALOG", s(&pricing()))).unwrap();
    let data = dir.path().join("data");
    let out = govern(&["run", s(&scenario), "--data-dir", s(&data)]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let catalog = pricing();
    let upgrade = |action: &str, to: &str, extra: &[&str]| {
        let mut args = vec![
            "upgrade",
            action,
            "--data-dir",
            s(&data),
            "--tenant",
            "acme",
            "--to",
            to,
            "--catalog",
            s(&catalog),
        ];
        args.extend_from_slice(extra);
        govern(&args)
    };

    let out = upgrade("simulate", "starter", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("pro -> starter (downgrade): refused\n"), "{table}");
    assert!(table.contains("certification_valid      pass"), "{table}");
    assert!(table.contains("sla_compliance           skip"), "{table}");
    assert!(table.contains("resource_availability    fail    current usage passes `starter`'s limits: seats usage 10 > limit 5"), "{table}");

    let out = upgrade("apply", "starter", &[]);
    fails_with(&out, "plan change refused: resource_availability");
    assert!(text(&out.stderr).contains("seats usage 10 > limit 5"));

    let out = upgrade(
        "apply",
        "pricing-enterprise",
        &["--json", "--capacity", "1000,100,100000,1000000"],
    );
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["kind"], "upgrade");
    assert!(v["applied_seq"].is_u64(), "{v}");
    let gates: Vec<(&str, &str)> = v["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gate"].as_str().unwrap(), g["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        gates,
        [
            ("certification_valid", "pass"),
            ("infrastructure_headroom", "pass"),
            ("clean_receipt_state", "pass"),
            ("sla_compliance", "skip"),
            ("resource_availability", "pass"),
        ]
    );

    // The change is in the ledger: the plan in force is now Enterprise.
    let out = upgrade("simulate", "pricing-enterprise", &["--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["from"], "pricing-enterprise");
    assert_eq!(v["path_refusal"], "the tenant is already on `pricing-enterprise`");
    // A headroom the host cannot give fails its gate; a subscription never activated is not
    // changed.
    let out = upgrade("apply", "starter", &["--capacity", "1,1000,1,1"]);
    fails_with(&out, "infrastructure_headroom: the host lacks room for `starter`");
    let out = upgrade("simulate", "pro", &["--subscription", "nope"]);
    fails_with(&out, "subscription nope is pending, not active");
}

/// Only the cooldown refuses: the error names when to try again, as `govern serve`'s
/// `Retry-After` does.
#[test]
fn an_upgrade_inside_its_cooldown_names_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("acme.toml");
    std::fs::write(&scenario, SCENARIO.replace("CATALOG", s(&pricing()))).unwrap();
    let data = dir.path().join("data");
    let out = govern(&["run", s(&scenario), "--data-dir", s(&data)]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let catalog = pricing();
    let apply = |to: &str| {
        let args = [
            "upgrade",
            "apply",
            "--data-dir",
            s(&data),
            "--tenant",
            "acme",
            "--to",
            to,
            "--catalog",
            s(&catalog),
        ];
        govern(&args)
    };
    // Up to Enterprise and back to Pro (a downgrade has no cooldown): the plan changed now.
    for to in ["pricing-enterprise", "pro"] {
        let out = apply(to);
        assert!(out.status.success(), "{to}: {}{}", text(&out.stdout), text(&out.stderr));
    }
    let out = apply("pricing-enterprise");
    fails_with(&out, "upgrade_cooldown: the plan changed less than 1209600000 ms ago");
    let stderr = text(&out.stderr);
    let secs: u64 = stderr
        .split("(in ")
        .nth(1)
        .and_then(|rest| rest.split(" s)").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry time in {stderr}"));
    // 14 days from a change made moments ago, rounded up to seconds.
    assert!((1_209_540..=1_209_600).contains(&secs), "{stderr}");
    assert!(stderr.contains("; retry after 20"), "{stderr}");
    assert!(text(&out.stdout).contains("cooldown: 1209600000 ms, in force until 20"));
}
