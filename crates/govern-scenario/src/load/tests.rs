//! Loading: a valid file becomes a typed scenario; every problem of a bad file is reported
//! at once, each with its line, column and what was expected.

use std::time::Duration;

use govern_governors::GovernorKind;

use super::{DEFAULT_START, load_str};
use crate::spec::{Action, Location};

const VALID: &str = r#"
name = "t"
description = "a test"
start = 2026-02-01T00:00:00Z

[[tenants]]
id = "acme"
storage_gb = 10

[[steps]]
tenant = "acme"
governor = "subscription"
resource = "sub-1"
command = "start_trial"
args = { plan = "pro", trial_days = 14 }
idempotency_key = "k-1"
expect = { state = "free_trial" }

[[steps]]
advance = "15d"
expect = { timeouts = 1 }

[[steps]]
tenant = "acme"
governor = "tenant"
command = "suspend_tenant"

[[steps]]
tenant = "acme"
governor = "quota"
resource = "q"
command = "check_quota"
args = { resource = "api_calls", usage = "lots", limit = 10 }
expect = { refused = "invalid_argument", status = 422 }

[[steps]]
restart = true

[expect]
receipts = { acme = 5 }
"#;

#[test]
fn a_valid_file_becomes_a_typed_scenario() {
    let s = load_str("t.toml", VALID).unwrap();
    assert_eq!((s.name.as_str(), s.start.to_string()), ("t", "2026-02-01T00:00:00Z".into()));
    assert_eq!(s.tenants[0].quota.storage_gb, 10);
    assert_eq!(s.tenants[0].quota.compute_units, 8, "a default");
    assert_eq!(s.steps.len(), 5);
    let Action::Command { target, args, metadata, reason, .. } = &s.steps[0].action else {
        panic!("a command step");
    };
    assert_eq!(target.kind, GovernorKind::Subscription);
    assert_eq!(args.get("trial_days").map(String::as_str), Some("14"));
    assert_eq!(metadata, &[("idempotency_key".to_owned(), "k-1".to_owned())]);
    assert_eq!(reason, super::DEFAULT_REASON);
    assert_eq!(s.steps[0].at, Location { line: 10, column: 1 });
    assert_eq!(
        s.steps[1].action,
        Action::Advance { by: Duration::from_secs(15 * 86_400), text: "15d".into() }
    );
    // The tenant governor is addressed by the tenant id.
    let Action::Command { target, .. } = &s.steps[2].action else { panic!() };
    assert_eq!(target.resource.as_str(), "acme");
    assert_eq!(s.steps[4].action, Action::Restart);
    assert_eq!(s.expect.receipts.len(), 1);
}

#[test]
fn the_clock_starts_at_a_fixed_default() {
    let s = load_str("t.toml", "name = \"t\"\ndescription = \"d\"\n[[steps]]\nverify = true\n")
        .unwrap();
    assert_eq!(s.start, DEFAULT_START);
}

/// The problems of `text`, as `line:column message`.
fn problems(text: &str) -> Vec<String> {
    let err = load_str("bad.toml", text).unwrap_err();
    assert_eq!(err.file, "bad.toml");
    err.problems.iter().map(|p| format!("{} {}", p.at, p.message)).collect()
}

#[test]
fn every_problem_is_reported_at_once_with_its_place() {
    let text = r#"name = "t"
colour = "blue"
start = "yesterday"

[[tenants]]
id = "Not An Id!"

[[steps]]
tenant = "acme"
governor = "subscriptions"
resource = "s"
command = "start_trial"

[[steps]]
tenant = "acme"
governor = "subscription"
resource = "s"
command = "begin"

[[steps]]
advance = "soon"

[[steps]]
verify = true
restart = true

[[steps]]
tenant = "acme"
governor = "subscription"
resource = "s"
command = "activate"
expect = { state = "floating", refused = "nope" }

[[steps]]
tenant = "acme"
governor = "subscription"
resource = "s"
command = "start_trial"
args = { plan = "pro", trial_days = 999 }
"#;
    let got = problems(text);
    let expected = [
        "1:1 the scenario has no `description`",
        "2:1 unknown key `colour` in the scenario",
        "3:9 `start` is not a UTC date and time",
        "6:6 `Not An Id!` is not a tenant id",
        "10:12 unknown governor `subscriptions`",
        "18:11 the subscription governor has no command `begin`",
        "21:11 `advance` is `\"soon\"`",
        "25:1 a step does one thing; this one has both `verify` and `restart`",
        "32:20 a refused command changes no state",
        "32:20 the subscription governor has no state `floating`",
        "32:42 `nope` is not a refusal code",
        "39:8 the arguments do not parse",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "got {g:?}, expected it to start with {e:?}");
    }
}

#[test]
fn problems_say_what_was_expected() {
    let err = load_str(
        "bad.toml",
        "name = \"t\"\ndescription = \"d\"\n[[steps]]\nverify = true\ncrash = \"later\"\n",
    )
    .unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.at, Location { line: 5, column: 1 });
    let text = err.to_string();
    assert!(text.starts_with("bad.toml:5:1: a step does one thing"), "{text}");
    let err = load_str("bad.toml", "name = \"t\"\ndescription = \"d\"\n[[steps]]\ncrash = \"later\"\ntenant = \"a\"\ngovernor = \"quota\"\nresource = \"q\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad.toml:4:9: `crash` is `\"later\"` (expected one of `now`, `after_next_append`)"
    );
}

#[test]
fn invalid_toml_is_one_problem_at_its_place() {
    let got = problems("name = \"t\"\ndescription = \"d\"\n[[steps]\nverify = true\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("3:") && got[0].contains("not valid TOML"), "{got:?}");
}

#[test]
fn any_input_gives_a_scenario_or_problems_never_a_panic() {
    // Every prefix of a valid file: cut anywhere, it must fail cleanly or load.
    for end in (0..VALID.len()).filter(|&i| VALID.is_char_boundary(i)) {
        let _ = load_str("cut.toml", &VALID[..end]);
    }
}
