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

/// A scenario whose steps are `advance = "<d>"` for each of `durations` (steps from line 4).
fn advances(start: &str, durations: &[&str]) -> String {
    let mut text = format!("name = \"t\"\ndescription = \"d\"\nstart = {start}\n");
    for d in durations {
        text.push_str(&format!("[[steps]]\nadvance = \"{d}\"\n"));
    }
    text
}

#[test]
fn durations_follow_one_strict_grammar() {
    let ok = [
        ("15d", 15 * 86_400_000),
        ("90m", 90 * 60_000),
        ("2h 30m", 150 * 60_000),
        ("500ms", 500),
        ("1d 2h 3m 4s 5ms", 93_784_005),
        ("36h", 36 * 3_600_000),
    ];
    for (text, ms) in ok {
        let s = load_str("t.toml", &advances("2026-01-01T00:00:00Z", &[text]))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            s.steps[0].action,
            Action::Advance { by: Duration::from_millis(ms), text: text.into() },
            "{text}"
        );
    }
    let refused = [
        "1y", "1.5d", "5 d", "1d 1d 1d", "1d2h", "2h  30m", "30m 2h", "0d", "1d 0h", "01d", "",
        " 1d", "1d ", "1w", "1month", "-1d", "+1d", "1D", "1 day", "1d,2h", "d", "15",
    ];
    for text in refused {
        let err = load_str("bad.toml", &advances("2026-01-01T00:00:00Z", &[text]))
            .err()
            .unwrap_or_else(|| panic!("{text:?} was accepted"));
        assert_eq!(err.problems.len(), 1, "{text:?}: {err}");
        let p = &err.problems[0];
        assert_eq!(p.at, Location { line: 5, column: 11 }, "{text:?}: {err}");
        let hint = p.expected.as_deref().unwrap_or_default();
        assert!(
            hint.contains("`<integer><unit>`") && hint.contains("`d`, `h`, `m`, `s`, `ms`"),
            "{text:?}: the problem states the grammar: {err}"
        );
    }
}

#[test]
fn each_advance_and_their_sum_are_capped_at_load() {
    // Ten years at most in one step.
    assert!(load_str("t.toml", &advances("2026-01-01T00:00:00Z", &["3650d"])).is_ok());
    let err = load_str("bad.toml", &advances("2026-01-01T00:00:00Z", &["3651d"])).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].at, Location { line: 5, column: 11 });
    assert!(err.problems[0].message.contains("more than"), "{err}");
    // What overflowed the runtime's clock before: two huge steps.
    let huge = "5000000000000000000s";
    let err = load_str("bad.toml", &advances("2026-01-01T00:00:00Z", &[huge, huge])).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    let big = "99999999999999999999999d";
    let err = load_str("bad.toml", &advances("2026-01-01T00:00:00Z", &[big])).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    // A hundred years at most in all: the eleventh ten-year step is one too many.
    let ten_years = ["3650d"; 11];
    assert!(load_str("t.toml", &advances("2026-01-01T00:00:00Z", &ten_years[..10])).is_ok());
    let err = load_str("bad.toml", &advances("2026-01-01T00:00:00Z", &ten_years)).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].at, Location { line: 4 + 2 * 10 + 1, column: 11 }, "{err}");
    assert!(err.problems[0].message.contains("in total"), "{err}");
}

#[test]
fn the_clock_never_passes_the_last_rfc_3339_year() {
    let start = "9999-06-01T00:00:00Z";
    // 213 days on, the clock reads 9999-12-31T00:00:00Z; one more day is a day too many.
    assert!(load_str("t.toml", &advances(start, &["213d", "23h 59m 59s 999ms"])).is_ok());
    let err = load_str("bad.toml", &advances(start, &["213d", "1d"])).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].at, Location { line: 7, column: 11 }, "{err}");
    assert!(err.problems[0].message.contains("9999-12-31T23:59:59.999Z"), "{err}");
}

/// A file with one command step whose extra lines are `extra` (the step's table at line 3).
fn command_with(extra: &str) -> String {
    format!(
        "name = \"t\"\ndescription = \"d\"\n[[steps]]\ntenant = \"acme\"\ngovernor = \"quota\"\n\
         resource = \"q\"\ncommand = \"send_warning\"\n{extra}"
    )
}

#[test]
fn reason_and_metadata_are_checked_at_load_as_the_runtime_checks_them() {
    let reason_hint = "1 to 512 bytes, not only white space";
    let too_many_hint = "at most 32 entries, `idempotency_key` included";
    let most = (0..32).map(|i| format!("k{i} = \"v\"")).collect::<Vec<_>>().join(", ");
    let cases: Vec<(String, &str, &str, Location)> = vec![
        (
            "reason = \"  \"\n".into(),
            "reason is empty",
            reason_hint,
            Location { line: 8, column: 10 },
        ),
        (
            format!("reason = \"{}\"\n", "x".repeat(513)),
            "reason is 513 bytes long",
            reason_hint,
            Location { line: 8, column: 10 },
        ),
        (
            "metadata = { \"Bad Key\" = \"x\" }\n".into(),
            "metadata key \"Bad Key\"",
            "keys of 1 to 64 characters of a-z 0-9 _ . -",
            Location { line: 8, column: 14 },
        ),
        (
            format!("metadata = {{ k = \"{}\" }}\n", "v".repeat(1_025)),
            "metadata value of \"k\" is longer than 1024 bytes",
            "values of at most 1024 bytes",
            Location { line: 8, column: 14 },
        ),
        (
            format!(
                "metadata = {{ {} }}\n",
                (0..33).map(|i| format!("k{i} = \"v\"")).collect::<Vec<_>>().join(", ")
            ),
            "metadata has more than 32 entries",
            too_many_hint,
            Location { line: 8, column: 12 },
        ),
        (
            "metadata = { idempotency_key = \"a\" }\nidempotency_key = \"b\"\n".into(),
            "`idempotency_key` is given twice",
            "one of the two",
            Location { line: 9, column: 1 },
        ),
        // An idempotency key counts as an entry: the 33rd, refused where it is written.
        (
            format!("metadata = {{ {most} }}\nidempotency_key = \"k\"\n"),
            "metadata has more than 32 entries",
            too_many_hint,
            Location { line: 9, column: 1 },
        ),
    ];
    for (extra, message, expected, at) in cases {
        let text = command_with(&extra);
        let err = load_str("bad.toml", &text).err().unwrap_or_else(|| panic!("accepted: {extra}"));
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.problems[0].message.contains(message), "{extra}: {err}");
        assert_eq!(err.problems[0].expected.as_deref(), Some(expected), "{extra}: {err}");
        assert_eq!(err.problems[0].at, at, "{extra}: {err}");
    }
    // The limits themselves are accepted.
    let text =
        command_with(&format!("reason = \"{}\"\nmetadata = {{ {most} }}\n", "x".repeat(512)));
    load_str("t.toml", &text).unwrap();
}

mod files {
    //! Reading a scenario file: regular files only, never more than the limit.

    use std::io::Write as _;

    use super::super::{FILE_BYTES_MAX, load_file};

    fn message(path: &std::path::Path) -> String {
        let err = load_file(path).err().unwrap_or_else(|| panic!("{} loaded", path.display()));
        assert_eq!(err.problems.len(), 1, "{err}");
        err.problems[0].message.clone()
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![b'#'; FILE_BYTES_MAX + 1]).unwrap();
        drop(f);
        let m = message(&path);
        assert!(m.contains("more than") && m.contains(&FILE_BYTES_MAX.to_string()), "{m}");
    }

    #[test]
    fn a_file_at_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.toml");
        let head = "name = \"t\"\ndescription = \"d\"\n[[steps]]\nverify = true\n";
        let mut text = head.to_owned();
        text.push_str(&"#".repeat(FILE_BYTES_MAX - head.len()));
        std::fs::write(&path, text).unwrap();
        load_file(&path).unwrap();
    }

    #[test]
    fn a_device_or_a_directory_is_refused_before_reading() {
        for path in ["/dev/zero", "/dev/null"] {
            let m = message(std::path::Path::new(path));
            assert!(m.contains("not a regular file"), "{path}: {m}");
        }
        let dir = tempfile::tempdir().unwrap();
        let m = message(dir.path());
        assert!(m.contains("not a regular file") && m.contains("directory"), "{m}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo.toml");
        let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success());
        let m = message(&path);
        assert!(m.contains("not a regular file") && m.contains("FIFO"), "{m}");
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.toml");
        std::fs::write(&path, b"name = \"caf\xe9\"\n").unwrap();
        assert!(message(&path).contains("UTF-8"));
    }
}

#[test]
fn a_catalog_is_loaded_relative_to_the_scenario_and_its_problems_are_the_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let plans = dir.path().join("plans");
    std::fs::create_dir(&plans).unwrap();
    let pricing = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans/pricing.toml"),
    )
    .unwrap();
    std::fs::write(plans.join("pricing.toml"), &pricing).unwrap();
    let scenario = dir.path().join("s.toml");
    let with = |catalog: &str| {
        VALID.replace("start = 2026", &format!("catalog = {catalog}\nstart = 2026"))
    };

    std::fs::write(&scenario, with("\"plans/pricing.toml\"")).unwrap();
    let s = super::load_file(&scenario).unwrap();
    let ids: Vec<&str> = s.catalog.as_ref().unwrap().plans.keys().map(|p| p.as_str()).collect();
    assert_eq!(ids, ["pricing-enterprise", "pro", "starter"]);

    // A missing file, then a catalog with a problem: each reported at the `catalog` key.
    std::fs::write(&scenario, with("[\"plans/nope.toml\"]")).unwrap();
    let err = super::load_file(&scenario).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err:?}");
    assert_eq!(err.problems[0].at, Location { line: 4, column: 11 });
    assert!(err.problems[0].message.starts_with("the catalog: "), "{err:?}");
    std::fs::write(
        plans.join("pricing.toml"),
        pricing.replacen("currency = \"", "currency = \"X", 1),
    )
    .unwrap();
    std::fs::write(&scenario, with("\"plans/pricing.toml\"")).unwrap();
    let err = super::load_file(&scenario).unwrap_err();
    assert!(!err.problems.is_empty());
    assert!(err.problems.iter().all(|p| p.at == Location { line: 4, column: 11 }), "{err:?}");
    assert!(err.problems[0].message.contains("pricing.toml:"), "{err:?}");

    // Not a path.
    let bad = problems(&VALID.replace("start = 2026", "catalog = 7\nstart = 2026"));
    assert_eq!(bad, ["4:11 `catalog` is `7`"]);
}

#[test]
fn an_entitled_step_takes_the_decisions_codes_and_allowed() {
    let with = |step: &str| VALID.replace("[[steps]]\nrestart = true", step);
    let ok = load_str(
        "s.toml",
        &with("[[steps]]\nentitled = \"forecast\"\ntenant = \"acme\"\naction = \"export\"\nquantity = 3\nexpect = { refused = \"plan_upgrade_required\", status = 402 }"),
    )
    .unwrap();
    assert_eq!(
        ok.steps.last().map(|s| s.action.clone()),
        Some(Action::Entitled {
            tenant: govern_governors::TenantId::new("acme").unwrap(),
            feature: "forecast".into(),
            action: "export".into(),
            quantity: 3,
        })
    );
    let bad = problems(&with(
        "[[steps]]\nentitled = \"forecast\"\ntenant = \"acme\"\nquantity = 0\nexpect = { allowed = \"yes\", state = \"active\" }",
    ));
    assert_eq!(
        bad.iter().map(|p| p.split_once(' ').map_or(p.as_str(), |(_, m)| m)).collect::<Vec<_>>(),
        [
            "`quantity` is `0`",
            "`allowed` is `\"yes\"`",
            "`expect.state` does not apply to this step",
        ]
    );
    // A decision's code is not a command's.
    let bad = problems(&VALID.replace(
        "expect = { state = \"free_trial\" }",
        "expect = { refused = \"plan_upgrade_required\" }",
    ));
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("`plan_upgrade_required` is not a refusal code"), "{bad:?}");
}
