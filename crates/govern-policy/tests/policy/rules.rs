//! The rule format: every operator, and parse errors at their exact line:column.

use govern_policy::rules::{RuleError, RuleErrorKind};
use govern_policy::{Decision, RuleSet, Value, decide};

use crate::{NOW, input, req, rules};

fn error(source: &str) -> RuleError {
    match RuleSet::parse(source) {
        Ok(rules) => panic!("parsed {} rules", rules.len()),
        Err(error) => error,
    }
}

fn at(source: &str) -> (u32, u32, RuleErrorKind) {
    let e = error(source);
    (e.line, e.column, e.kind)
}

/// Whether a one-rule allow set with condition `when` allows feature `x`, action `read`,
/// quantity `q` for the fixture tenant (region `eu-west`, seats 40, plan `pro`).
fn matches(when: &str, q: u64) -> bool {
    let mut input = input();
    input.rules =
        rules(&format!("version = 1\n[[rule]]\nid = \"r\"\neffect = \"allow\"\nwhen = {when}\n"));
    let decision = decide(&input, &req("x", "read", q), NOW);
    matches!(decision, Decision::Allowed { .. })
}

#[test]
fn every_operator() {
    let t = |field: &str, op: &str, value: &str| {
        format!("{{ field = \"{field}\", op = \"{op}\", value = {value} }}")
    };
    assert!(matches(&t("tenant.plan", "eq", "\"pro\""), 1));
    assert!(!matches(&t("tenant.plan", "ne", "\"pro\""), 1));
    assert!(matches(&t("tenant.attributes.seats", "lt", "41"), 1));
    assert!(!matches(&t("tenant.attributes.seats", "lt", "40"), 1));
    assert!(matches(&t("tenant.attributes.seats", "le", "40"), 1));
    assert!(matches(&t("request.quantity", "gt", "4"), 5));
    assert!(!matches(&t("request.quantity", "gt", "5"), 5));
    assert!(matches(&t("request.quantity", "ge", "5"), 5));
    assert!(matches(&t("tenant.attributes.region", "in", "[\"us-east\", \"eu-west\"]"), 1));
    assert!(!matches(&t("tenant.attributes.region", "not_in", "[\"us-east\", \"eu-west\"]"), 1));
    assert!(matches(&t("tenant.attributes.region", "not_in", "[\"us-east\"]"), 1));
    assert!(matches(&t("request.quantity", "in", "[1, 5, 9]"), 9));
    assert!(matches(&t("tenant.id", "starts_with", "\"t\""), 1));
    assert!(matches(&t("tenant.state", "eq", "\"active\""), 1));
    assert!(matches(&t("request.action", "eq", "\"read\""), 1));
    assert!(matches("{ field = \"tenant.attributes.region\", op = \"exists\" }", 1));
    assert!(!matches("{ field = \"tenant.attributes.tier\", op = \"exists\" }", 1));
    // An absent field: every test is false, `ne` and `not_in` too.
    assert!(!matches(&t("tenant.attributes.tier", "ne", "\"gold\""), 1));
    assert!(!matches(&t("tenant.attributes.tier", "not_in", "[\"gold\"]"), 1));
    // Different types never compare.
    assert!(!matches(&t("tenant.attributes.seats", "eq", "\"40\""), 1));
    assert!(!matches(&t("tenant.attributes.seats", "ne", "\"40\""), 1));
    // Combinators.
    assert!(matches(&format!("{{ not = {} }}", t("tenant.plan", "eq", "\"free\"")), 1));
    assert!(matches(
        &format!(
            "{{ any = [{}, {}] }}",
            t("tenant.plan", "eq", "\"free\""),
            t("tenant.plan", "eq", "\"pro\"")
        ),
        1
    ));
    assert!(!matches(
        &format!(
            "{{ all = [{}, {}] }}",
            t("tenant.plan", "eq", "\"free\""),
            t("tenant.plan", "eq", "\"pro\"")
        ),
        1
    ));
}

#[test]
fn a_rule_without_when_always_matches_and_tables_work_too() {
    let mut input = input();
    input.rules = rules(
        r#"
version = 9
[[rule]]
id = "eu-only"
effect = "deny"
[rule.when]
not = { field = "tenant.attributes.region", op = "starts_with", value = "eu-" }

[[rule]]
id = "everything"
effect = "allow"
"#,
    );
    assert_eq!(input.rules.version(), 9);
    assert_eq!(input.rules.ids().collect::<Vec<_>>(), ["eu-only", "everything"]);
    assert!(decide(&input, &req("anything", "do", 1), NOW).is_allowed());
    input.tenant.attributes.insert("region".to_owned(), Value::Str("us".to_owned()));
    assert_eq!(
        decide(&input, &req("anything", "do", 1), NOW).decided_by().to_string(),
        "rule:eu-only@v9"
    );
}

#[test]
fn errors_name_their_line_and_column() {
    // TOML syntax: the parser's position.
    let (line, column, kind) = at("version = 1\n[[rule]]\nid = \"a\"\neffect = allow\n");
    assert_eq!((line, column), (4, 10));
    assert!(matches!(kind, RuleErrorKind::Syntax(_)), "{kind:?}");

    assert_eq!(
        at("[[rule]]\nid = \"a\"\neffect = \"allow\"\n"),
        (1, 1, RuleErrorKind::MissingKey("version"))
    );
    assert_eq!(
        at("version = -1\n"),
        (1, 11, RuleErrorKind::WrongType { key: "version", expected: "a non-negative integer" })
    );
    assert_eq!(
        at("version = 1\nrules = []\n"),
        (2, 1, RuleErrorKind::UnknownKey("rules".to_owned()))
    );
    assert_eq!(
        at("version = 1\n[[rule]]\nid = \"a\"\neffect = \"permit\"\n"),
        (4, 10, RuleErrorKind::UnknownEffect("permit".to_owned()))
    );
    assert_eq!(
        at("version = 1\n\n[[rule]]\neffect = \"allow\"\n"),
        (3, 1, RuleErrorKind::MissingKey("id"))
    );
    assert_eq!(
        at(
            "version = 1\n[[rule]]\nid = \"a\"\neffect = \"allow\"\n[[rule]]\nid = \"a\"\neffect = \"deny\"\n"
        ),
        (6, 6, RuleErrorKind::DuplicateId("a".to_owned()))
    );
    let rule = |when: &str| {
        format!("version = 1\n[[rule]]\nid = \"a\"\neffect = \"allow\"\nwhen = {when}\n")
    };
    assert_eq!(
        at(&rule("{ field = \"tenant.planx\", op = \"eq\", value = 1 }")),
        (5, 18, RuleErrorKind::UnknownField("tenant.planx".to_owned()))
    );
    assert_eq!(
        at(&rule("{ field = \"tenant.plan\", op = \"equals\", value = 1 }")),
        (5, 38, RuleErrorKind::UnknownOperator("equals".to_owned()))
    );
    assert_eq!(
        at(&rule("{ field = \"tenant.plan\", op = \"in\", value = \"pro\" }")),
        (5, 52, RuleErrorKind::Operand { op: "in", expected: "takes a list `value`" })
    );
    assert_eq!(
        at(&rule("{ field = \"tenant.plan\", op = \"exists\", value = 1 }")),
        (5, 56, RuleErrorKind::Operand { op: "exists", expected: "takes no `value`" })
    );
    assert_eq!(
        at(&rule("{ field = \"tenant.plan\", op = \"eq\" }")),
        (5, 8, RuleErrorKind::MissingKey("value"))
    );
    assert_eq!(
        at(&rule("{ field = \"tenant.plan\", op = \"eq\", value = 1.5 }")),
        (5, 52, RuleErrorKind::UnsupportedValue("a float"))
    );
    assert_eq!(
        at(&rule("{ all = [{ field = \"tenant.plan\", op = \"eq\", value = \"a\", extra = 1 }] }")),
        (5, 66, RuleErrorKind::UnknownKey("extra".to_owned()))
    );
    assert_eq!(at(&rule("{ any = [] }")), (5, 16, RuleErrorKind::Empty("any")));
    assert_eq!(
        at(&rule("{ all = [1] }")),
        (5, 17, RuleErrorKind::WrongType { key: "when", expected: "a table (a condition)" })
    );
    assert_eq!(
        at(&rule("{ not = { field = \"a\" }, all = [] }")),
        (5, 8, RuleErrorKind::ConditionShape)
    );
    let error = error(&rule("{ field = \"tenant.plan\", op = \"equals\", value = 1 }"));
    assert_eq!(
        error.to_string(),
        "line 5, column 38: unknown operator `equals` (eq, ne, lt, le, gt, ge, in, not_in, exists, starts_with)"
    );
}

#[test]
fn limits_are_errors_not_panics() {
    let mut deep = String::from("{ field = \"tenant.plan\", op = \"eq\", value = \"a\" }");
    for _ in 0..20 {
        deep = format!("{{ not = {deep} }}");
    }
    let e =
        error(&format!("version = 1\n[[rule]]\nid = \"a\"\neffect = \"allow\"\nwhen = {deep}\n"));
    assert!(matches!(e.kind, RuleErrorKind::Limit { max: 16, .. }), "{e}");
    let long = "x".repeat(2_000);
    let e = error(&format!("version = 1\n[[rule]]\nid = \"{long}\"\neffect = \"allow\"\n"));
    assert_eq!((e.line, e.column), (3, 6));
    assert!(matches!(e.kind, RuleErrorKind::Limit { max: 1_024, .. }), "{e}");
}

#[test]
fn the_example_in_docs_parses_and_decides() {
    let doc = include_str!("../../../../docs/policy.md");
    let start = doc.find("```toml\n").map(|at| at + "```toml\n".len());
    let source =
        start.and_then(|start| doc[start..].find("```").map(|end| &doc[start..start + end]));
    let Some(source) = source else { panic!("no toml block in docs/policy.md") };
    let mut input = input();
    input.rules = rules(source);
    assert_eq!(input.rules.version(), 7);
    assert_eq!(
        input.rules.ids().collect::<Vec<_>>(),
        ["sso-eu-paid", "no-export-under-review", "internal-everything"]
    );
    assert_eq!(
        decide(&input, &req("sso", "login", 500), NOW).decided_by().to_string(),
        "rule:sso-eu-paid@v7"
    );
    assert!(!decide(&input, &req("sso", "login", 501), NOW).is_allowed());
    // The tenant has no `kyc` attribute, so the deny rule matches exports; but the plan's
    // features come before the rules.
    assert!(decide(&input, &req("reports", "export", 1), NOW).is_allowed());
    input.tenant.id = "internal".to_owned();
    assert_eq!(
        decide(&input, &req("teleport", "use", 1), NOW).decided_by().to_string(),
        "rule:internal-everything@v7"
    );
    assert_eq!(
        decide(&input, &req("teleport", "export", 1), NOW).decided_by().to_string(),
        "rule:no-export-under-review@v7"
    );
}
