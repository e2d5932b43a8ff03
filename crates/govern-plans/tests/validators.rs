//! Each of the four validators on a catalog that breaks it, with the exact problems (line,
//! column, field, check); the shipped examples validate; files combine; bad input never
//! panics.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use govern_plans::{Check, LimitValue, Problem, Reset, Status, validate, validate_files};
use proptest::prelude::*;

/// `(line, column, field, check)` of each problem.
fn places(problems: &[Problem]) -> Vec<(usize, usize, &str, Check)> {
    problems.iter().map(|p| (p.line, p.column, p.field.as_str(), p.check)).collect()
}

fn problems(text: &str) -> Vec<Problem> {
    match validate(text, "c.toml") {
        Ok(c) => panic!("expected problems, got a catalog: {c:?}"),
        Err(p) => p,
    }
}

/// A valid preamble: the refusal table every default code needs, and one feature.
const HEAD: &str = r#"version = "1"
[refusals.quota_exceeded]
status = 429
message = "over"
[refusals.rate_limited]
status = 429
message = "slow down"
[refusals.feature_not_in_plan]
status = 402
message = "upgrade"
[refusals.upgrade_cooldown]
status = 429
message = "later"
[features.sso]
description = "SSO"
"#;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans")
}

#[test]
fn the_three_example_catalogs_validate_alone_and_together() {
    let names = ["licensing.toml", "pricing.toml", "platform.toml"];
    let texts: Vec<String> =
        names.iter().map(|n| std::fs::read_to_string(examples().join(n)).unwrap()).collect();
    for (name, text) in names.iter().zip(&texts) {
        let catalog = validate(text, name).unwrap_or_else(|p| panic!("{name}: {p:#?}"));
        assert_eq!(catalog.plans.len(), 3, "{name}");
    }
    let files: Vec<(&str, &str)> =
        names.iter().copied().zip(texts.iter().map(String::as_str)).collect();
    let all = validate_files(&files).unwrap();
    let ids: Vec<&str> = all.plans.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        ids,
        [
            "community",
            "enterprise",
            "gov",
            "platform-enterprise",
            "pricing-enterprise",
            "pro",
            "professional",
            "starter",
            "team"
        ]
    );
    assert_eq!(all.version, "2026-12-06");
    let pro = all.plan("professional").unwrap();
    assert_eq!(pro.price.to_string(), "99.00 USD/month");
    assert_eq!(pro.limit("executions").unwrap().value, LimitValue::Finite(100_000));
    assert_eq!(pro.limit("executions").unwrap().reset, Reset::Monthly);
    assert_eq!(pro.limit("workflows").unwrap().reset, Reset::None);
    assert_eq!(pro.limit("requests_per_second").unwrap().refusal.as_str(), "rate_limited");
    assert_eq!(pro.upgrades[0].to.as_str(), "enterprise");
    assert_eq!(pro.upgrades[0].cooldown, Duration::from_secs(30 * 86_400));
    let p = all.plan("pro").unwrap();
    assert_eq!(
        p.limit("nlq_queries").unwrap().reset,
        Reset::Rolling(Duration::from_secs(30 * 86_400))
    );
    assert_eq!(p.limit("seats").unwrap().refusal.as_str(), "seats_exhausted");
    assert_eq!(
        all.refusals[&govern_plans::RefusalCode::new("not_certified").unwrap()].status,
        Status::Forbidden
    );
    assert!(all.plan("gov").unwrap().has_feature("fips_mode"));
    assert_eq!(
        all.plan("enterprise").unwrap().limit("workflows").unwrap().value,
        LimitValue::Unlimited
    );
}

#[test]
fn schema_every_problem_at_once_with_line_and_column() {
    let text = format!(
        "{HEAD}{}",
        r#"colour = "blue"
[plans.free]
name = "Free"
price = { amount = 9.99, currency = "usd", interval = "week" }
features = ["sso", "nope", "sso"]
[plans.free.limits]
seats = -1
executions = 1.5
storage_bytes = { value = 10, reset = "rolling" }
[plans.pro]
price = { amount = "5.001", currency = "USD", interval = "month" }
[plans.pro.envelope]
throughput_rps = 10
p99_latency_ms = 0
connections = "many"
queue_depth = 10
[[plans.pro.upgrades]]
to = "ghost"
cooldown = "soon"
[plans.Bad]
"#
    );
    let p = problems(&text);
    assert_eq!(
        places(&p),
        [
            // TOML puts `colour` in the table above it, [features.sso].
            (16, 1, "features.sso.colour", Check::Schema),
            (19, 20, "plans.free.price.amount", Check::Schema),
            (19, 37, "plans.free.price.currency", Check::Schema),
            (19, 55, "plans.free.price.interval", Check::Schema),
            (20, 20, "plans.free.features", Check::Schema),
            (20, 28, "plans.free.features[2]", Check::Schema),
            (22, 9, "plans.free.limits.seats", Check::Schema),
            (23, 14, "plans.free.limits.executions", Check::Schema),
            (24, 39, "plans.free.limits.storage_bytes.window", Check::Schema),
            (25, 8, "plans.pro.name", Check::Schema),
            (26, 20, "plans.pro.price.amount", Check::Schema),
            (29, 18, "plans.pro.envelope.p99_latency_ms", Check::Schema),
            (30, 15, "plans.pro.envelope.connections", Check::Schema),
            (33, 6, "plans.pro.upgrades[0].to", Check::Schema),
            (34, 12, "plans.pro.upgrades[0].cooldown", Check::Schema),
            (35, 8, "plans.Bad", Check::Schema),
        ],
        "{p:#?}"
    );
    assert_eq!(p[1].message, "is a float (9.99): money is never a float");
    assert_eq!(p[4].message, "names the feature `nope`, which is not defined");
    assert_eq!(p[5].message, "`sso` is listed twice");
    assert_eq!(p[6].message, "is an integer (-1)");
    assert_eq!(p[10].message, "5.001 has more decimals than USD has (2)");
    assert_eq!(p[13].message, "names the plan `ghost`, which is not in the catalog");
    assert_eq!(
        p[0].to_string(),
        "c.toml:16:1: features.sso.colour: unknown key `colour`\n  hint: the keys here are \
         `description`, `refusal`, `meter`"
    );
}

#[test]
fn schema_not_toml_is_one_problem_at_its_place() {
    let p = problems("version = \"1\"\n[plans.a]\nname = \n");
    assert_eq!(places(&p), [(3, 8, "", Check::Schema)], "{p:#?}");
    assert!(p[0].message.starts_with("not valid TOML"), "{}", p[0].message);
}

#[test]
fn schema_missing_fields() {
    let p = problems("[plans.a]\n[refusals.x]\n");
    assert_eq!(
        places(&p),
        [
            (1, 1, "version", Check::Schema),
            (1, 8, "plans.a.name", Check::Schema),
            (1, 8, "plans.a.price", Check::Schema),
            (2, 11, "refusals.x.message", Check::Schema),
            (2, 11, "refusals.x.status", Check::Schema),
        ],
        "{p:#?}"
    );
}

/// A plan with a price, at the end of HEAD.
fn plan(id: &str, rest: &str) -> String {
    format!(
        "[plans.{id}]\nname = \"{id}\"\nprice = {{ amount = \"10\", currency = \"EUR\", interval = \"month\" }}\n{rest}"
    )
}

#[test]
fn consistency_along_upgrade_paths_and_within_a_plan() {
    let text = format!(
        "{HEAD}{}{}",
        plan(
            "small",
            "features = [\"sso\"]\nlimits = { seats = 10, requests_per_second = 100 }\n\
             envelope = { throughput_rps = 50, p99_latency_ms = 100, connections = 10, queue_depth = 10 }\n\
             upgrades = [{ to = \"big\" }]\n"
        ),
        "[plans.big]\nname = \"big\"\nprice = { amount = \"5\", currency = \"EUR\", interval = \"month\" }\n\
         limits = { seats = 5 }\n\
         envelope = { throughput_rps = 40, p99_latency_ms = 200, connections = 10, queue_depth = 10 }\n"
    );
    let p = problems(&text);
    let upgrade = (22, 20, "plans.small.upgrades[0].to", Check::Consistency);
    assert_eq!(
        places(&p),
        [
            (20, 24, "plans.small.limits.requests_per_second", Check::Consistency),
            upgrade,
            upgrade,
            upgrade,
            upgrade,
            upgrade,
        ],
        "{p:#?}"
    );
    let messages: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "allows 100 requests per second, more than the envelope's throughput_rps (50)",
            "upgrades to `big`, which costs less (5.00 EUR/month < 10.00 EUR/month)",
            "upgrades to `big`, which lacks the feature `sso` that `small` has",
            "upgrades to `big`, whose envelope p99_latency_ms (200) is slower than `small`'s (100)",
            "upgrades to `big`, whose envelope throughput_rps (40) is lower than `small`'s (50)",
            "upgrades to `big`, whose seats limit (5) is lower than `small`'s (10)",
        ]
    );
}

#[test]
fn the_seeds_enterprise_to_gov_path_is_refused_as_an_upgrade() {
    let text = std::fs::read_to_string(examples().join("platform.toml")).unwrap();
    let text = text.replace(
        "[plans.gov]\n",
        "[[plans.platform-enterprise.upgrades]]\nto = \"gov\"\n\n[plans.gov]\n",
    );
    let p = problems(&text);
    let messages: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "upgrades to `gov`, whose connections limit (256) is lower than `platform-enterprise`'s (100000)",
            "upgrades to `gov`, whose envelope connections (256) is lower than `platform-enterprise`'s (100000)",
            "upgrades to `gov`, whose envelope queue_depth (10000) is lower than `platform-enterprise`'s (500000)",
            "upgrades to `gov`, whose envelope throughput_rps (900) is lower than `platform-enterprise`'s (1500)",
            "upgrades to `gov`, whose requests_per_second limit (900) is lower than `platform-enterprise`'s (1500)",
        ]
    );
    assert!(
        p.iter().all(|p| p.check == Check::Consistency
            && p.field == "plans.platform-enterprise.upgrades[0].to")
    );
}

#[test]
fn refusal_codes_must_be_in_the_table() {
    let text = r#"version = "1"
[refusals.quota_exceeded]
status = 429
message = "over"
[features.sso]
description = "SSO"
[features.api]
description = "API"
refusal = "no_api"
[plans.a]
name = "A"
price = { amount = "0", currency = "USD", interval = "year" }
features = ["sso", "api"]
limits = { seats = 1, requests_per_second = 5, tokens = { value = 9, refusal = "tokens_gone" } }
upgrades = [{ to = "b", cooldown = "1d" }, { to = "b", refusal = "wait" }]
[plans.b]
name = "B"
price = { amount = "1", currency = "USD", interval = "year" }
features = ["sso", "api"]
"#;
    let p = problems(text);
    assert_eq!(
        places(&p),
        [
            (5, 11, "features.sso.refusal", Check::Refusals),
            (9, 11, "features.api.refusal", Check::Refusals),
            (14, 23, "plans.a.limits.requests_per_second.refusal", Check::Refusals),
            (14, 80, "plans.a.limits.tokens.refusal", Check::Refusals),
            (15, 13, "plans.a.upgrades[0].refusal", Check::Refusals),
            (15, 66, "plans.a.upgrades[1].refusal", Check::Refusals),
        ],
        "{p:#?}"
    );
    assert_eq!(
        p[0].message,
        "the refusal `feature_not_in_plan` (the default here, as none is named) is not in the refusal table"
    );
    assert_eq!(p[3].message, "the refusal `tokens_gone` is not in the refusal table");
}

#[test]
fn evidence_must_be_present_with_a_document() {
    let text = format!(
        "{HEAD}[evidence.sbom]\ntitle = \"SBOM\"\ndocument = \"sbom.json\"\n[evidence.fips]\ntitle = \"FIPS\"\ndocument = \" \"\n{}",
        plan("gov", "evidence = [\"sbom\", \"fips\", \"soc2\"]\n")
    );
    let p = problems(&text);
    assert_eq!(
        places(&p),
        [
            (25, 21, "plans.gov.evidence", Check::Evidence),
            (25, 29, "plans.gov.evidence", Check::Evidence)
        ],
        "{p:#?}"
    );
    assert_eq!(p[0].message, "requires the evidence `fips`, which has no document");
    assert_eq!(p[1].message, "requires the evidence `soc2`, which the catalog does not hold");
}

#[test]
fn files_combine_a_plan_defined_twice_is_a_problem_at_both_places() {
    let a = format!("{HEAD}{}", plan("pro", "upgrades = [{ to = \"max\" }]\n"));
    let b = format!(
        "version = \"1\"\n{}{}[refusals.quota_exceeded]\nstatus = 402\nmessage = \"over\"\n",
        plan("pro", ""),
        plan("max", "")
    );
    let err = validate_files(&[("a.toml", &a), ("b.toml", &b)]).unwrap_err();
    let got: Vec<(&str, usize, usize, &str)> =
        err.iter().map(|p| (p.file.as_str(), p.line, p.column, p.message.as_str())).collect();
    assert_eq!(
        got,
        [
            ("a.toml", 2, 11, "is defined differently at b.toml:8:11"),
            ("a.toml", 16, 8, "is defined again at b.toml:2:8"),
            ("b.toml", 2, 8, "is defined again at a.toml:16:8"),
            ("b.toml", 8, 11, "is defined differently at a.toml:2:11"),
        ],
        "{err:#?}"
    );
    // The upgrade path from a.toml resolved to b.toml's plan: no problem about `max`.
    let fixed = b.replace("status = 402", "status = 429").replace(&plan("pro", ""), "");
    let catalog = validate_files(&[("a.toml", &a), ("b.toml", &fixed)]).unwrap();
    assert_eq!(catalog.plans.len(), 2);
}

#[test]
fn files_of_one_catalog_carry_one_version() {
    let a = format!("{HEAD}{}", plan("a", ""));
    let b = format!("{}{}", "version = \"2\"\n", plan("b", ""));
    let err = validate_files(&[("a.toml", &a), ("b.toml", &b)]).unwrap_err();
    assert_eq!(places(&err), [(1, 11, "version", Check::Schema)]);
    assert_eq!(err[0].file, "b.toml");
    assert_eq!(err[0].message, "is `2`, but a.toml:1:11 says `1`");
}

#[test]
fn an_unreadable_file_is_a_problem_at_1_1() {
    let err = govern_plans::load(Path::new("/nonexistent/plans.toml")).unwrap_err();
    assert_eq!(places(&err), [(1, 1, "", Check::Schema)]);
    assert!(err[0].message.starts_with("cannot read the file"), "{}", err[0].message);
    let none = govern_plans::load_files(&[]).unwrap_err();
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].message, "no catalog file given");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the text, `validate` answers (a catalog or problems) and never panics; every
    /// problem's place is inside the text.
    #[test]
    fn random_text_never_panics(text in any::<String>()) {
        if let Err(problems) = validate(&text, "x.toml") {
            prop_assert!(!problems.is_empty());
            let lines = text.split('\n').count();
            for p in &problems {
                prop_assert!(p.line >= 1 && p.line <= lines.max(1), "{p:?}");
                prop_assert!(p.column >= 1);
            }
        }
    }

    /// Catalog-shaped text with random values in random places never panics either.
    #[test]
    fn random_values_in_a_catalog_never_panic(
        value in prop_oneof![
            Just("-1".to_owned()), Just("1.5".to_owned()), Just("\"unlimited\"".to_owned()),
            Just("{}".to_owned()), Just("[]".to_owned()), Just("9223372036854775807".to_owned()),
            Just("\"9999999999999999999999999999.99\"".to_owned()), Just("true".to_owned()),
            "\"[a-z0-9 ._-]{0,12}\"", "-?[0-9]{1,20}",
        ],
        key in prop_oneof![
            Just("amount"), Just("currency"), Just("interval"), Just("seats"), Just("window"),
            Just("cooldown"), Just("to"), Just("status"), Just("throughput_rps"),
        ],
    ) {
        let text = format!(
            "{HEAD}[plans.a]\nname = \"A\"\nprice = {{ {key} = {value} }}\n\
             limits = {{ seats = {{ value = {value}, reset = \"rolling\", window = {value} }} }}\n\
             envelope = {{ throughput_rps = {value} }}\nupgrades = [{{ to = {value}, cooldown = {value} }}]\n"
        );
        let _ = validate(&text, "x.toml");
    }
}

/// docs/plans.md's complete example is a valid catalog.
#[test]
fn the_documented_example_validates() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plans.md"))
            .unwrap();
    let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let catalog = validate(&doc[start..end], "docs/plans.md").unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(catalog.plans.len(), 2);
    let community = catalog.plan("community").unwrap();
    assert_eq!(
        community.limit("api_calls").unwrap().reset,
        Reset::Rolling(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(community.limit("executions").unwrap().reset, Reset::Monthly);
}

/// Deep nesting is a problem, not a stack overflow.
#[test]
fn deep_nesting_is_a_problem_not_a_crash() {
    let text = format!("version = \"1\"\nx = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let p = problems(&text);
    assert_eq!(p[0].line, 2, "{p:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A generated valid plan reads back exactly: price, limits (short and table forms, every
    /// reset), features and the envelope.
    #[test]
    fn a_generated_plan_reads_back_exactly(
        cents in 0_u64..10_000_000,
        yearly in any::<bool>(),
        limits in proptest::collection::btree_map("[a-z][a-z0-9_]{0,10}", (proptest::option::of(0_u64..1 << 40), 0_u8..5, 1_u64..=366), 0..8),
        rps in 1_u64..1_000_000,
        sso in any::<bool>(),
    ) {
        let interval = if yearly { "year" } else { "month" };
        let mut text = format!(
            "{HEAD}[plans.p]\nname = \"P\"\nprice = {{ amount = \"{}.{:02}\", currency = \"EUR\", interval = \"{interval}\" }}\nfeatures = [{}]\n\
             envelope = {{ throughput_rps = {rps}, p99_latency_ms = 5, connections = 5, queue_depth = 5 }}\n[plans.p.limits]\n",
            cents / 100, cents % 100, if sso { "\"sso\"" } else { "" }
        );
        let mut expected = std::collections::BTreeMap::new();
        for (meter, (value, reset, days)) in &limits {
            if meter == "requests_per_second" {
                continue;
            }
            let v = value.map_or("\"unlimited\"".to_owned(), |n| n.to_string());
            let (line, reset) = match reset {
                0 => (format!("{meter} = {v}\n"), if matches!(meter.as_str(), "executions" | "ai_tokens") { Reset::Monthly } else { Reset::None }),
                1 => (format!("{meter} = {{ value = {v}, reset = \"none\" }}\n"), Reset::None),
                2 => (format!("{meter} = {{ value = {v}, reset = \"daily\" }}\n"), Reset::Daily),
                3 => (format!("{meter} = {{ value = {v}, reset = \"monthly\" }}\n"), Reset::Monthly),
                _ => (format!("{meter} = {{ value = {v}, reset = \"rolling\", window = \"{days}d\" }}\n"), Reset::Rolling(Duration::from_secs(days * 86_400))),
            };
            text.push_str(&line);
            expected.insert(meter.clone(), (value.map_or(LimitValue::Unlimited, LimitValue::Finite), reset));
        }
        let catalog = validate(&text, "gen.toml").map_err(|p| TestCaseError::fail(format!("{p:#?}\n{text}")))?;
        let plan = catalog.plan("p").unwrap();
        prop_assert_eq!(plan.price.amount, rust_decimal::Decimal::new(i64::try_from(cents).unwrap(), 2).normalize());
        prop_assert_eq!(plan.price.interval.name(), interval);
        prop_assert_eq!(plan.has_feature("sso"), sso);
        prop_assert_eq!(plan.envelope.unwrap().throughput_rps, rps);
        let got: std::collections::BTreeMap<String, (LimitValue, Reset)> =
            plan.limits.iter().map(|(m, l)| (m.as_str().to_owned(), (l.value, l.reset))).collect();
        prop_assert_eq!(got, expected);
    }
}

/// A directory is refused, not read.
#[test]
fn a_directory_is_not_a_catalog() {
    let err = govern_plans::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap_err();
    assert_eq!(err[0].message, "not a regular file");
}

#[test]
fn a_metered_feature_names_a_meter_some_plan_limits() {
    let text = format!(
        r#"{HEAD}[features.reports]
description = "Reports"
meter = "reports"
[features.nlq]
description = "Queries"
meter = "nlq_queries"
[features.bad]
description = "Bad"
meter = "Not A Meter"
[plans.a]
name = "A"
price = {{ amount = "0", currency = "USD", interval = "year" }}
features = ["sso", "reports", "nlq"]
limits = {{ reports = {{ value = 10, reset = "monthly" }} }}
"#
    );
    let p = problems(&text);
    assert_eq!(
        places(&p),
        [
            (21, 9, "features.nlq.meter", Check::Schema),
            (24, 9, "features.bad.meter", Check::Schema),
        ],
        "{p:#?}"
    );
    assert_eq!(p[0].message, "no plan has a limit on meter `nlq_queries`");
    let fixed =
        text.replace("meter = \"nlq_queries\"\n", "").replace("meter = \"Not A Meter\"\n", "");
    let catalog = validate(&fixed, "c.toml").unwrap();
    let reports = catalog.features.iter().find(|(k, _)| k.as_str() == "reports").unwrap().1;
    assert_eq!(reports.meter.as_ref().map(|m| m.as_str()), Some("reports"));
}

#[test]
fn pricing_tables_are_checked_like_prices() {
    let rest = r#"[plans.p.pricing.api_calls]
included = -1
mode = "stepped"
tiers = [{ up_to = 100, unit = 0.5 }, { up_to = 50, unit = "-1" }, { up_to = "inf", unit = "0.1" }]
[plans.p.pricing.seats]
tiers = [{ up_to = "inf", unit = "1" }, { up_to = 10, unit = "0.0000000000001" }]
aggregation = "avg"
"#;
    let p = problems(&format!("{HEAD}{}", plan("p", rest)));
    assert_eq!(
        places(&p),
        vec![
            (20, 12, "plans.p.pricing.api_calls.included", Check::Schema),
            (21, 8, "plans.p.pricing.api_calls.mode", Check::Schema),
            (22, 32, "plans.p.pricing.api_calls.tiers[0].unit", Check::Schema),
            (22, 49, "plans.p.pricing.api_calls.tiers[1].up_to", Check::Schema),
            (22, 60, "plans.p.pricing.api_calls.tiers[1].unit", Check::Schema),
            (24, 20, "plans.p.pricing.seats.tiers[0].up_to", Check::Schema),
            (24, 51, "plans.p.pricing.seats.tiers[1].up_to", Check::Schema),
            (24, 62, "plans.p.pricing.seats.tiers[1].unit", Check::Schema),
            (25, 15, "plans.p.pricing.seats.aggregation", Check::Schema),
        ],
        "{p:#?}"
    );
    let messages: Vec<&str> = p.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "is an integer (-1)",
            "`stepped` is not a valid mode",
            // The same words as a float price (`schema_every_problem_at_once...`).
            "is a float (0.5): money is never a float",
            "is 50, not more than the tier before (100)",
            "is negative (-1)",
            "is \"inf\" but is not the last tier",
            "is 10: the last tier must be unbounded",
            "0.0000000000001 has more than 12 decimals",
            "`avg` is not a valid aggregation",
        ]
    );
    assert_eq!(p[2].hint, "write the unit price as a decimal string: unit = \"0.00002\"");
}

#[test]
fn the_pricing_example_prices_two_plans() {
    let text = std::fs::read_to_string(examples().join("pricing.toml")).unwrap();
    let c = validate(&text, "pricing.toml").unwrap();
    let starter = &c.plan("starter").unwrap().pricing["api_calls"];
    assert_eq!(starter.included, 10_000);
    assert_eq!(starter.mode, govern_plans::TierMode::Graduated);
    assert_eq!(starter.aggregation, govern_plans::Aggregation::Sum);
    assert_eq!(
        starter.tiers,
        vec![
            govern_plans::Tier { up_to: Some(90_000), unit: "0.001".parse().unwrap() },
            govern_plans::Tier { up_to: None, unit: "0.0005".parse().unwrap() },
        ]
    );
    let users = &c.plan("pro").unwrap().pricing["active_users"];
    assert_eq!(users.mode, govern_plans::TierMode::Volume);
    assert_eq!(users.aggregation, govern_plans::Aggregation::UniqueCount);
    assert!(c.plan("pricing-enterprise").unwrap().pricing.is_empty());
}

#[test]
fn an_envelope_error_rate_max_is_optional_a_fraction_and_no_higher_along_an_upgrade() {
    let env = |extra: &str| {
        format!(
            "{HEAD}{}",
            plan(
                "p",
                &format!(
                    "envelope = {{ throughput_rps = 5, p99_latency_ms = 5, connections = 5, queue_depth = 5{extra} }}\n"
                )
            )
        )
    };
    let rate = |extra: &str| {
        validate(&env(extra), "c.toml").map(|c| c.plans["p"].envelope.unwrap().error_rate_max)
    };
    // Absent: the documented default, 1 %.
    assert_eq!(rate("").unwrap(), govern_plans::ERROR_RATE_MAX_DEFAULT);
    assert_eq!(govern_plans::ERROR_RATE_MAX_DEFAULT.to_string(), "0.01");
    assert_eq!(rate(", error_rate_max = \"0.005\"").unwrap().to_string(), "0.005");
    assert_eq!(rate(", error_rate_max = 0.02").unwrap().to_string(), "0.02");
    assert_eq!(rate(", error_rate_max = 0").unwrap().to_string(), "0");
    for (bad, message) in [
        ("\"1.5\"", "is 1.5, not between 0 and 1"),
        ("-0.1", "is -0.1, not between 0 and 1"),
        ("\"0.00001\"", "0.00001 has more than 4 decimals"),
        ("\"lots\"", "`lots` is not a decimal number"),
    ] {
        let p = rate(&format!(", error_rate_max = {bad}")).unwrap_err();
        let found: Vec<(&str, &str)> =
            p.iter().map(|p| (p.field.as_str(), p.message.as_str())).collect();
        assert_eq!(found, [("plans.p.envelope.error_rate_max", message)], "{bad}");
    }
    // Along an upgrade path, the higher tier promises no more errors.
    let text = format!(
        "{HEAD}{}{}",
        plan(
            "small",
            "envelope = { throughput_rps = 5, p99_latency_ms = 5, connections = 5, queue_depth = 5, error_rate_max = \"0.01\" }\n\
             upgrades = [{ to = \"big\" }]\n"
        ),
        plan(
            "big",
            "envelope = { throughput_rps = 5, p99_latency_ms = 5, connections = 5, queue_depth = 5, error_rate_max = \"0.02\" }\n"
        )
    );
    let messages: Vec<String> = problems(&text).into_iter().map(|p| p.message).collect();
    assert_eq!(
        messages,
        ["upgrades to `big`, whose envelope error_rate_max (0.02) is higher than `small`'s (0.01)"]
    );
}
