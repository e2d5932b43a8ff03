//! `govern plans` as a user runs it: validate exits 0 with a summary or 2 with every problem
//! (file:line:column: field: message, then the hint); list, show and diff print what a person
//! reads; an unknown plan exits 1 naming the catalog's plans.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn govern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_govern")).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example(name: &str) -> String {
    let path: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans").join(name);
    path.to_str().unwrap().to_owned()
}

#[test]
fn validate_the_three_examples_together() {
    let (a, b, c) = (example("licensing.toml"), example("pricing.toml"), example("platform.toml"));
    let out = govern(&["plans", "validate", &a, &b, &c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "valid: 3 file(s), catalog version 2026-12-06: 9 plan(s), 18 feature(s), 7 refusal(s), \
         10 piece(s) of evidence\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn validate_prints_every_problem_with_its_place_and_hint_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"version = "1"

[refusals.quota_exceeded]
status = 418
message = "over"

[plans.free]
name = "Free"
price = { amount = "-1", currency = "USD", interval = "month" }
limits = { seats = 1.5, ai_tokens = { value = 10, refusal = "tokens_gone" } }
evidence = ["soc2"]
"#,
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let out = govern(&["plans", "validate", file]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "{file}:4:10: refusals.quota_exceeded.status: 418 is not a refusal status
  hint: 402 (payment or plan required), 403 (not entitled) or 429 (rate or quota)
{file}:9:20: plans.free.price.amount: is negative (-1)
  hint: a price is 0 (free) or more
{file}:10:20: plans.free.limits.seats: is a float (1.5)
  hint: write a whole number: this is a count, not a fraction
{file}:10:61: plans.free.limits.ai_tokens.refusal: the refusal `tokens_gone` is not in the refusal table
  hint: add [refusals.tokens_gone] with `status = 429` and a `message`, or name a code the table has
{file}:11:13: plans.free.evidence: requires the evidence `soc2`, which the catalog does not hold
  hint: add [evidence.soc2] with a title and the document's path or URL
govern: 5 problem(s) in 1 file(s)
"
        )
    );
}

#[test]
fn a_missing_file_is_a_problem_and_exits_2() {
    let out = govern(&["plans", "list", "/nonexistent/plans.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("/nonexistent/plans.toml:1:1: cannot read the file"), "{stderr}");
    assert!(stderr.ends_with("govern: 1 problem(s) in 1 file(s)\n"), "{stderr}");
}

#[test]
fn list_prints_a_table() {
    let out = govern(&["plans", "list", &example("licensing.toml")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ID            NAME          PRICE       INTERVAL
community     Community     0.00 USD    month
enterprise    Enterprise    999.00 USD  month
professional  Professional  99.00 USD   month
"
    );
}

#[test]
fn show_prints_everything_about_one_plan() {
    let out = govern(&["plans", "show", "professional", "--catalog", &example("licensing.toml")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "plan professional: Professional
price: 99.00 USD per month
features:
  cloud_deployment: Deploy workflows to a managed cloud.
  workflow_engine: Define and run workflows.
limits:
  METER                  LIMIT      RESET    REFUSAL
  compute_gb             unlimited  monthly  quota_exceeded (429)
  concurrent_executions  10         none     rate_limited (429)
  executions             100000     monthly  quota_exceeded (429)
  requests_per_second    100        none     rate_limited (429)
  workflows              100        none     quota_exceeded (429)
envelope: 100 requests/s, p99 latency 250 ms, 1000 connections, queue depth 10000, error rate at most 0.01
upgrades:
  to enterprise (cooldown 30 days; refused inside it with upgrade_cooldown)
evidence:
  (none required)
refusals:
  feature_not_in_plan (402): Your plan does not include this feature; upgrade to use it.
  quota_exceeded (429): You have used your plan's allowance for this period.
  rate_limited (429): Too many requests for your plan; retry after the delay given.
  upgrade_cooldown (429): Your plan changed recently; try the upgrade again after the cooldown.
"
    );
}

#[test]
fn diff_prints_a_comparison_table() {
    let out = govern(&["plans", "diff", "starter", "pro", "--catalog", &example("pricing.toml")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "plan                       starter              pro
name                       Starter              Pro
price                      29.00 USD per month  149.00 USD per month
feature api_access         yes                  yes
feature benchmarking       no                   yes
feature boardroom_live     no                   yes
feature custom_branding    no                   yes
feature export_pdf         yes                  yes
feature forecast           no                   yes
feature gen_ai_reports     no                   yes
feature nlq                no                   yes
feature report_builder     yes                  yes
limit ai_tokens            100000 (monthly)     1000000 (monthly)
limit nlq_queries          -                    2000 (rolling 30d)
limit reports              10 (monthly)         100 (monthly)
limit requests_per_second  5                    25
limit seats                5                    25
limit storage_bytes        10000000000          100000000000
envelope throughput_rps    5                    25
envelope p99_latency_ms    800                  400
envelope connections       20                   200
envelope queue_depth       200                  2000
envelope error_rate_max    0.01                 0.01
upgrades to                pro                  pricing-enterprise
evidence required          0                    0
"
    );
}

#[test]
fn an_unknown_plan_exits_1_and_names_the_plans() {
    let out = govern(&["plans", "show", "gold", "--catalog", &example("licensing.toml")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "govern: no plan `gold` in the catalog; its plans are community, enterprise, professional\n"
    );
}
