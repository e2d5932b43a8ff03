//! Loading a scenario file: TOML parsed with spans ([`toml_edit`]), then every table and value
//! checked against the format of `docs/scenarios.md`. Every problem found is reported, with
//! its line, column and what was expected; a file with any problem yields no [`Scenario`], so
//! nothing runs until the whole file is valid.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{
    Args, CommandSpec, DAY_MS, Governor, GovernorKind, Metadata, MetadataError, Reason, ResourceId,
    StateSpec, TenantId, Timestamp, account, audit, billing, catalog, compliance, entitlement,
    quota, saga, subscription, tenant,
};
use govern_runtime::{CrashPoint, ERROR_CODES};
use toml_edit::{Item, TableLike, Value};

use crate::duration::{self, DurationError};
use crate::spec::{Action, Expect, Location, RunExpect, Scenario, Step, Target, TenantSpec};

/// The clock's start when a scenario names none: 2026-01-01T00:00:00Z.
pub const DEFAULT_START: Timestamp = Timestamp(1_767_225_600_000);

/// The reason recorded when a command step gives none.
pub const DEFAULT_REASON: &str = "scenario step";

/// The most steps a scenario may have.
pub const STEPS_MAX: usize = 10_000;

/// The largest scenario file read, in bytes.
pub const FILE_BYTES_MAX: usize = 1 << 20;

/// The longest one `advance` step may move the clock: ten years (3650 days).
pub const ADVANCE_MAX: Duration = Duration::from_millis(3_650 * DAY_MS);

/// The longest all the `advance` steps of a scenario may move the clock together: a hundred
/// years (36 500 days). tokio's clock is a `std::time::Instant`, which panics when moved past
/// its range; on some platforms that range is a `u64` of nanoseconds since boot, about 584
/// years, so a hundred years keeps well inside it everywhere.
pub const ADVANCE_TOTAL_MAX: Duration = Duration::from_millis(36_500 * DAY_MS);

/// The latest time the virtual clock may read: 9999-12-31T23:59:59.999Z, the last instant
/// RFC 3339 (four-digit years) can write, and so the last a receipt's timestamp is shown as.
/// `start` plus every `advance` must stay at or before it.
pub const CLOCK_END: Timestamp = Timestamp(253_402_300_799_999);

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub at: Location,
    /// What is wrong.
    pub message: String,
    /// What was expected there, if it can be said.
    pub expected: Option<String>,
}

/// Why a scenario file cannot run: every problem found, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .problems))]
pub struct LoadError {
    /// The file, as named by the caller.
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

fn render(file: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{file}:{}: {}", p.at, p.message));
        if let Some(expected) = &p.expected {
            out.push_str(&format!(" (expected {expected})"));
        }
    }
    out
}

/// Reads and validates the scenario in `path`.
///
/// Only a regular file is read (checked before it is opened, and again on the opened file, so
/// that a FIFO or a device is refused without blocking or reading), and at most
/// [`FILE_BYTES_MAX`] bytes of it: one byte more is a problem, however large the file claims
/// to be.
///
/// # Errors
/// [`LoadError`] listing every problem (a file that cannot be read is one problem at 1:1).
pub fn load_file(path: &std::path::Path) -> Result<Scenario, LoadError> {
    let file = path.display().to_string();
    let one = |message: String| LoadError {
        file: file.clone(),
        problems: vec![Problem { at: Location { line: 1, column: 1 }, message, expected: None }],
    };
    let text = read_bounded(path).map_err(one)?;
    load_in(&file, &text, path.parent())
}

/// The text of the regular file at `path`, at most [`FILE_BYTES_MAX`] bytes; or why not
/// ([`govern_ledger::text_file::read_bounded`]).
fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    use govern_ledger::text_file::{ReadError, read_bounded};
    read_bounded(path, FILE_BYTES_MAX).map_err(|e| match e {
        ReadError::Io(e) => format!("cannot read the file: {e}"),
        ReadError::NotRegular(what) => {
            format!("not a regular file: it is {what}; a scenario is read from a regular file")
        }
        ReadError::TooLarge { .. } => {
            format!("the file is more than {FILE_BYTES_MAX} bytes, the most a scenario may be")
        }
        ReadError::NotUtf8 { at } => {
            format!("the file is not UTF-8 text (invalid byte at offset {at})")
        }
        other => format!("cannot read the file: {other}"),
    })
}

/// Validates the scenario in `text`; `file` names it in problems.
///
/// # Errors
/// [`LoadError`] listing every problem.
pub fn load_str(file: &str, text: &str) -> Result<Scenario, LoadError> {
    load_in(file, text, None)
}

/// [`load_str`], with a `catalog`'s files relative to `dir` (the scenario file's directory;
/// `None`: the current directory).
fn load_in(file: &str, text: &str, dir: Option<&std::path::Path>) -> Result<Scenario, LoadError> {
    let mut cx = Cx { text, problems: Vec::new(), start: None, advanced: Duration::ZERO, dir };
    let scenario = match toml_edit::Document::parse(text) {
        Ok(doc) => cx.scenario(doc.as_table()),
        Err(e) => {
            let at = cx.location(e.span());
            cx.problems.push(Problem {
                at,
                message: format!("not valid TOML: {}", e.message().trim_end()),
                expected: None,
            });
            None
        }
    };
    match scenario {
        Some(s) if cx.problems.is_empty() => Ok(s),
        _ => {
            let mut problems = cx.problems;
            problems.sort_by_key(|p| p.at);
            problems.dedup();
            Err(LoadError { file: file.to_owned(), problems })
        }
    }
}

/// The checker: the text (for locations) and the problems found so far.
struct Cx<'t> {
    text: &'t str,
    problems: Vec<Problem>,
    /// The clock's start, once read (for [`CLOCK_END`]).
    start: Option<Timestamp>,
    /// The `advance` steps so far, added up (for [`ADVANCE_TOTAL_MAX`]).
    advanced: Duration,
    /// Where a `catalog`'s relative paths start.
    dir: Option<&'t std::path::Path>,
}

/// Top-level keys.
const TOP_KEYS: &[&str] =
    &["name", "description", "start", "catalog", "tenants", "steps", "expect"];
/// Keys of a `[[tenants]]` table.
const TENANT_KEYS: &[&str] = &["id", "storage_gb", "compute_units", "bandwidth_mbps"];
/// Keys that say what a step does; a step has exactly one.
const ACTION_KEYS: &[&str] = &[
    "command",
    "advance",
    "crash",
    "restart",
    "verify",
    "check",
    "entitled",
    "usage",
    "saga",
    "resume_sagas",
    "close_period",
    "simulate_plan_change",
    "apply_plan_change",
];
/// Codes a plan-change step may be refused with, besides the runtime's and the deciding
/// refusal's (`govern_runtime::PLAN_CHANGE_REFUSAL_CODES`): any refusal of an apply (the path,
/// the cooldown or a gate), the subscription is not active, or the tenant has no single
/// subscription.
pub(crate) const PLAN_CHANGE_CODES: &[&str] =
    &["plan_change_refused", "not_active", "which_subscription"];
/// Keys of `expect` on a step.
const EXPECT_KEYS: &[&str] = &[
    "state",
    "refused",
    "status",
    "timeouts",
    "allowed",
    "retry_after",
    "value",
    "quota",
    "duplicate",
    "saga",
    "total",
    "gates",
];
/// Keys of the run's `[expect]`.
const RUN_EXPECT_KEYS: &[&str] = &["receipts", "verified"];
/// The values of `crash`.
const CRASH_POINTS: &[&str] = &["now", "after_next_append"];

fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("one of {}", quoted.join(", "))
}

impl Cx<'_> {
    fn location(&self, span: Option<Range<usize>>) -> Location {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location { line, column }
    }

    fn problem(&mut self, span: Option<Range<usize>>, message: String, expected: Option<String>) {
        let at = self.location(span);
        self.problems.push(Problem { at, message, expected });
    }

    /// Reports keys of `table` that are not in `allowed`.
    fn unknown_keys(&mut self, table: &dyn TableLike, allowed: &[&str], what: &str) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key) {
                let span = table.key(key).and_then(toml_edit::Key::span);
                self.problem(span, format!("unknown key `{key}` in {what}"), Some(one_of(allowed)));
            }
        }
    }

    /// The span of `key` in `table`, or of the table itself.
    fn key_span(
        table: &dyn TableLike,
        key: &str,
        table_span: Option<Range<usize>>,
    ) -> Option<Range<usize>> {
        table.key(key).and_then(toml_edit::Key::span).or(table_span)
    }

    fn string(
        &mut self,
        table: &dyn TableLike,
        key: &str,
        span: Option<Range<usize>>,
        what: &str,
    ) -> Option<String> {
        match table.get(key) {
            None => {
                self.problem(
                    span,
                    format!("{what} has no `{key}`"),
                    Some(format!("`{key}` = a string")),
                );
                None
            }
            Some(item) => self.as_string(item, key),
        }
    }

    fn optional_string(&mut self, table: &dyn TableLike, key: &str) -> Option<String> {
        table.get(key).and_then(|item| self.as_string(item, key))
    }

    fn as_string(&mut self, item: &Item, key: &str) -> Option<String> {
        match item.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.problem(
                    item.span(),
                    format!("`{key}` is {}", a_type(item)),
                    Some("a string".into()),
                );
                None
            }
        }
    }

    fn optional_u64(
        &mut self,
        table: &dyn TableLike,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let item = table.get(key)?;
        match item
            .as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .filter(|i| (min..=max).contains(i))
        {
            Some(v) => Some(v),
            None => {
                self.problem(
                    item.span(),
                    format!("`{key}` is {}", describe(item)),
                    Some(format!("an integer from {min} to {max}")),
                );
                None
            }
        }
    }

    fn scenario(&mut self, top: &toml_edit::Table) -> Option<Scenario> {
        self.unknown_keys(top, TOP_KEYS, "the scenario");
        let whole = Some(0..0);
        let name = self.string(top, "name", whole.clone(), "the scenario");
        let description = self.string(top, "description", whole.clone(), "the scenario");
        let start = match top.get("start") {
            None => Some(DEFAULT_START),
            Some(item) => self.timestamp(item, "start"),
        };
        self.start = start;
        let catalog = top.get("catalog").and_then(|item| self.catalog(item));
        let tenants = self.tenants(top.get("tenants"));
        let steps = match top.get("steps") {
            None => {
                self.problem(
                    whole,
                    "the scenario has no steps".into(),
                    Some("one or more `[[steps]]` tables".into()),
                );
                Vec::new()
            }
            Some(item) => self.steps(item),
        };
        let expect = match top.get("expect") {
            None => RunExpect { verified: true, ..RunExpect::default() },
            Some(item) => self.run_expect(item),
        };
        Some(Scenario {
            name: name?,
            description: description?,
            start: start?,
            catalog,
            tenants,
            steps,
            expect,
        })
    }

    /// `catalog`: one plan file or a list of them (`docs/plans.md`), relative to the scenario
    /// file, loaded and validated together; each of the catalog's problems is one here.
    fn catalog(&mut self, item: &Item) -> Option<govern_plans::Catalog> {
        let expected = "a plan file's path, or a list of them, relative to the scenario";
        let names: Vec<String> = match (item.as_str(), item.as_array()) {
            (Some(one), _) => vec![one.to_owned()],
            (None, Some(list)) if !list.is_empty() => {
                match list.iter().map(|v| v.as_str().map(str::to_owned)).collect() {
                    Some(names) => names,
                    None => {
                        self.problem(
                            item.span(),
                            "`catalog` holds a value that is not a path".into(),
                            Some(expected.into()),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.problem(
                    item.span(),
                    format!("`catalog` is {}", describe(item)),
                    Some(expected.into()),
                );
                return None;
            }
        };
        let paths: Vec<std::path::PathBuf> = names
            .iter()
            .map(|n| self.dir.map_or_else(|| std::path::PathBuf::from(n), |d| d.join(n)))
            .collect();
        let refs: Vec<&std::path::Path> = paths.iter().map(std::path::PathBuf::as_path).collect();
        match govern_plans::load_files(&refs) {
            Ok(catalog) => Some(catalog),
            Err(problems) => {
                for p in problems {
                    let message = format!(
                        "the catalog: {}:{}:{}: {}{}",
                        p.file,
                        p.line,
                        p.column,
                        if p.field.is_empty() { String::new() } else { format!("{}: ", p.field) },
                        p.message
                    );
                    self.problem(item.span(), message, Some(p.hint));
                }
                None
            }
        }
    }

    fn timestamp(&mut self, item: &Item, key: &str) -> Option<Timestamp> {
        let text = match (item.as_datetime(), item.as_str()) {
            (Some(dt), _) => dt.to_string(),
            (None, Some(s)) => s.to_owned(),
            (None, None) => String::new(),
        };
        let parsed = humantime::parse_rfc3339(&text).ok().and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok())
        });
        if parsed.is_none() {
            self.problem(
                item.span(),
                format!("`{key}` is not a UTC date and time"),
                Some("RFC 3339 in UTC, like 2026-01-01T00:00:00Z".into()),
            );
        }
        parsed.map(Timestamp)
    }

    fn tenants(&mut self, item: Option<&Item>) -> Vec<TenantSpec> {
        let Some(item) = item else { return Vec::new() };
        let Some(array) = item.as_array_of_tables() else {
            self.problem(
                item.span(),
                format!("`tenants` is {}", a_type(item)),
                Some("`[[tenants]]` tables".into()),
            );
            return Vec::new();
        };
        let mut out: Vec<TenantSpec> = Vec::new();
        for table in array.iter() {
            let span = table.span();
            self.unknown_keys(table, TENANT_KEYS, "a tenant");
            let Some(id) = self.string(table, "id", span.clone(), "a tenant") else { continue };
            let id_span = table.get("id").and_then(Item::span);
            let Some(id) = self.tenant_id(&id, id_span.clone()) else { continue };
            if out.iter().any(|t| t.id == id) {
                self.problem(id_span, format!("tenant `{id}` is declared twice"), None);
                continue;
            }
            let max = u64::from(u32::MAX);
            let quota = ResourceQuota {
                storage_gb: self.optional_u64(table, "storage_gb", 1, max).unwrap_or(100),
                compute_units: self.optional_u64(table, "compute_units", 1, max).unwrap_or(8),
                bandwidth_mbps: self.optional_u64(table, "bandwidth_mbps", 1, max).unwrap_or(1_000),
            };
            out.push(TenantSpec { id, quota, at: self.location(span) });
        }
        out
    }

    fn tenant_id(&mut self, text: &str, span: Option<Range<usize>>) -> Option<TenantId> {
        match TenantId::new(text) {
            Ok(id) => Some(id),
            Err(e) => {
                self.problem(span, format!("`{text}` is not a tenant id: {e}"), None);
                None
            }
        }
    }

    fn steps(&mut self, item: &Item) -> Vec<Step> {
        let Some(array) = item.as_array_of_tables() else {
            self.problem(
                item.span(),
                format!("`steps` is {}", a_type(item)),
                Some("`[[steps]]` tables".into()),
            );
            return Vec::new();
        };
        if array.len() > STEPS_MAX {
            self.problem(item.span(), format!("{} steps; at most {STEPS_MAX}", array.len()), None);
            return Vec::new();
        }
        array.iter().filter_map(|table| self.step(table)).collect()
    }

    fn step(&mut self, table: &toml_edit::Table) -> Option<Step> {
        let span = table.span();
        let at = self.location(span.clone());
        let mut actions: Vec<&str> =
            ACTION_KEYS.iter().copied().filter(|k| table.contains_key(k)).collect();
        // In file order, so that a second action is reported where it is written.
        actions.sort_by_key(|k| table.key(k).and_then(toml_edit::Key::span).map(|s| s.start));
        let action_key = match actions.as_slice() {
            [one] => *one,
            [] => {
                self.problem(
                    span,
                    "a step that does nothing".into(),
                    Some(format!("{} (what the step does)", one_of(ACTION_KEYS))),
                );
                return None;
            }
            [_, second, ..] => {
                let second_span = Self::key_span(table, second, span);
                self.problem(
                    second_span,
                    format!(
                        "a step does one thing; this one has both `{}` and `{second}`",
                        actions[0]
                    ),
                    Some("one step per action".into()),
                );
                return None;
            }
        };
        let allowed: &[&str] = match action_key {
            "command" => &[
                "command",
                "tenant",
                "governor",
                "resource",
                "args",
                "reason",
                "idempotency_key",
                "metadata",
                "note",
                "expect",
            ],
            "crash" => &["crash", "tenant", "governor", "resource", "note", "expect"],
            "check" => &["check", "tenant", "governor", "resource", "note", "expect"],
            "entitled" => &["entitled", "tenant", "action", "quantity", "note", "expect"],
            "usage" => &["usage", "tenant", "quantity", "event", "note", "expect"],
            "close_period" => &["close_period", "tenant", "note", "expect"],
            "simulate_plan_change" | "apply_plan_change" => {
                &[action_key, "tenant", "subscription", "note", "expect"]
            }
            "saga" => {
                &["saga", "tenant", "run", "params", "fail_step", "crash_after", "note", "expect"]
            }
            "advance" => &["advance", "note", "expect"],
            _ => &[action_key, "note", "expect"],
        };
        self.unknown_keys(table, allowed, &format!("a `{action_key}` step"));
        let note = self.optional_string(table, "note");
        let action = match action_key {
            "command" => self.command(table, span.clone()),
            "crash" => {
                let target = self.target(table, span.clone(), "a `crash` step");
                let point = table.get("crash").and_then(|item| match item.as_str() {
                    Some("now") => Some(CrashPoint::Now),
                    Some("after_next_append") => Some(CrashPoint::AfterNextAppend),
                    _ => {
                        self.problem(
                            item.span(),
                            format!("`crash` is {}", describe(item)),
                            Some(one_of(CRASH_POINTS)),
                        );
                        None
                    }
                });
                Some(Action::Crash { target: target?, point: point? })
            }
            "check" => {
                if let Some(item) = table.get("check").filter(|i| i.as_str() != Some("state")) {
                    self.problem(
                        item.span(),
                        format!("`check` is {}", describe(item)),
                        Some("`state`".into()),
                    );
                }
                Some(Action::Check { target: self.target(table, span.clone(), "a `check` step")? })
            }
            "advance" => table.get("advance").and_then(|item| self.duration(item)),
            "entitled" => {
                let what = "an `entitled` step";
                let feature = self.string(table, "entitled", span.clone(), what);
                let tenant_span = table.get("tenant").and_then(Item::span);
                let tenant = self
                    .string(table, "tenant", span.clone(), what)
                    .and_then(|t| self.tenant_id(&t, tenant_span));
                let action = self.optional_string(table, "action").unwrap_or_else(|| "use".into());
                let quantity = self.optional_u64(table, "quantity", 1, u64::MAX).unwrap_or(1);
                Some(Action::Entitled { tenant: tenant?, feature: feature?, action, quantity })
            }
            "close_period" => {
                let what = "a `close_period` step";
                let period_span = table.get("close_period").and_then(Item::span);
                let period = self.string(table, "close_period", span.clone(), what).and_then(|p| {
                    if govern_governors::audit::is_month(&p) {
                        Some(p)
                    } else {
                        self.problem(
                            period_span,
                            format!("`close_period` is `{p}`, not a month"),
                            Some("a month, `YYYY-MM`".into()),
                        );
                        None
                    }
                });
                let tenant_span = table.get("tenant").and_then(Item::span);
                let tenant = self
                    .string(table, "tenant", span.clone(), what)
                    .and_then(|t| self.tenant_id(&t, tenant_span));
                Some(Action::ClosePeriod { tenant: tenant?, period: period? })
            }
            "usage" => {
                let what = "a `usage` step";
                let meter = self.string(table, "usage", span.clone(), what);
                let tenant_span = table.get("tenant").and_then(Item::span);
                let tenant = self
                    .string(table, "tenant", span.clone(), what)
                    .and_then(|t| self.tenant_id(&t, tenant_span));
                let event = self.string(table, "event", span.clone(), what);
                let quantity = self.optional_u64(table, "quantity", 0, u64::MAX).unwrap_or(1);
                Some(Action::Usage { tenant: tenant?, meter: meter?, quantity, event: event? })
            }
            "simulate_plan_change" | "apply_plan_change" => {
                let what = format!("a `{action_key}` step");
                let to = self.string(table, action_key, span.clone(), &what);
                let tenant_span = table.get("tenant").and_then(Item::span);
                let tenant = self
                    .string(table, "tenant", span.clone(), &what)
                    .and_then(|t| self.tenant_id(&t, tenant_span));
                let sub_span = table.get("subscription").and_then(Item::span);
                let subscription = match self.optional_string(table, "subscription") {
                    None => Some(None),
                    Some(s) => ResourceId::new(&s)
                        .map_err(|e| self.problem(sub_span, format!("`subscription` {e}"), None))
                        .ok()
                        .map(Some),
                };
                Some(Action::PlanChange {
                    tenant: tenant?,
                    to: to?,
                    subscription: subscription?,
                    apply: action_key == "apply_plan_change",
                })
            }
            "saga" => {
                let what = "a `saga` step";
                let saga = self.string(table, "saga", span.clone(), what);
                let tenant_span = table.get("tenant").and_then(Item::span);
                let tenant = self
                    .string(table, "tenant", span.clone(), what)
                    .and_then(|t| self.tenant_id(&t, tenant_span));
                let run_span = table.get("run").and_then(Item::span);
                let run = self.string(table, "run", span.clone(), what).and_then(|r| {
                    ResourceId::new(&r)
                        .map_err(|e| self.problem(run_span, format!("`run` {e}"), None))
                        .ok()
                });
                let mut params = Vec::new();
                if let Some(item) = table.get("params") {
                    match item.as_table_like() {
                        Some(t) => {
                            for (k, v) in t.iter() {
                                match v.as_str() {
                                    Some(v) => params.push((k.to_owned(), v.to_owned())),
                                    None => self.problem(
                                        v.span(),
                                        format!("parameter `{k}` is {}", describe(v)),
                                        Some("a string".into()),
                                    ),
                                }
                            }
                        }
                        None => self.problem(
                            item.span(),
                            format!("`params` is {}", a_type(item)),
                            Some("a table of strings".into()),
                        ),
                    }
                }
                let fail_step = self
                    .optional_u64(
                        table,
                        "fail_step",
                        0,
                        u64::from(govern_governors::saga::SAGA_STEPS_MAX - 1),
                    )
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
                let crash_after = self
                    .optional_u64(table, "crash_after", 1, 1_000)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
                Some(Action::Saga {
                    tenant: tenant?,
                    run: run?,
                    saga: saga?,
                    params,
                    fail_step,
                    crash_after,
                })
            }
            flag => {
                if let Some(item) = table.get(flag).filter(|i| i.as_bool() != Some(true)) {
                    self.problem(
                        item.span(),
                        format!("`{flag}` is {}", describe(item)),
                        Some("`true`".into()),
                    );
                }
                Some(match flag {
                    "restart" => Action::Restart,
                    "resume_sagas" => Action::ResumeSagas,
                    _ => Action::Verify,
                })
            }
        };
        let expect = match table.get("expect") {
            None => Expect::default(),
            Some(item) => self.expect(item, action.as_ref()),
        };
        // Arguments that do not parse are a mistake in the file, unless the step is there to
        // show the `invalid_argument` rejection.
        if let Some(Action::Command { target, name, args, .. }) = &action
            && expect.refused.as_deref() != Some("invalid_argument")
            && let Err(e) = check_args(target.kind, name, args)
        {
            let span = table
                .get("args")
                .and_then(Item::span)
                .or_else(|| table.get("command").and_then(Item::span));
            self.problem(
                        span,
                        format!("the arguments do not parse: {e}"),
                        Some("arguments the command takes, or `expect = { refused = \"invalid_argument\" }` when the rejection is the point".into()),
                    );
        }
        Some(Step { at, note, action: action?, expect })
    }

    /// An `advance`: a duration in the one grammar, at most [`ADVANCE_MAX`], and within
    /// [`ADVANCE_TOTAL_MAX`] and [`CLOCK_END`] together with the steps before it.
    fn duration(&mut self, item: &Item) -> Option<Action> {
        let Some(text) = item.as_str() else {
            self.problem(
                item.span(),
                format!("`advance` is {}", describe(item)),
                Some(format!("a string: {}", duration::GRAMMAR)),
            );
            return None;
        };
        let by = match duration::parse(text, ADVANCE_MAX) {
            Ok(by) => by,
            Err(e @ DurationError::TooLong { .. }) => {
                self.problem(
                    item.span(),
                    format!("`advance` is {}: {e}, the most one step may advance", describe(item)),
                    Some(format!("at most {}", duration::format_limit(ADVANCE_MAX))),
                );
                return None;
            }
            Err(e) => {
                self.problem(
                    item.span(),
                    format!("`advance` is {}: {e}", describe(item)),
                    Some(duration::GRAMMAR.to_owned()),
                );
                return None;
            }
        };
        let total = self.advanced.saturating_add(by);
        if total > ADVANCE_TOTAL_MAX {
            self.problem(
                item.span(),
                format!(
                    "the `advance` steps come to more than {} in total here, the most a scenario may advance",
                    duration::format_limit(ADVANCE_TOTAL_MAX)
                ),
                Some("fewer or shorter `advance` steps".into()),
            );
            return None;
        }
        if let Some(start) = self.start {
            let ms = u64::try_from(total.as_millis()).unwrap_or(u64::MAX);
            if start.plus_ms(ms) > CLOCK_END {
                self.problem(
                    item.span(),
                    format!(
                        "the clock would read past {CLOCK_END} here (it starts at {start}), the latest time a receipt can carry"
                    ),
                    Some("an earlier `start` or shorter `advance` steps".into()),
                );
                return None;
            }
        }
        self.advanced = total;
        Some(Action::Advance { by, text: text.to_owned() })
    }

    /// The tenant, governor and resource of a step.
    fn target(
        &mut self,
        table: &dyn TableLike,
        span: Option<Range<usize>>,
        what: &str,
    ) -> Option<Target> {
        let tenant_text = self.string(table, "tenant", span.clone(), what);
        let tenant_span = table.get("tenant").and_then(Item::span);
        // A tenant not declared is allowed: an `unknown_tenant` refusal may be the point.
        let tenant = tenant_text.and_then(|t| self.tenant_id(&t, tenant_span));
        let kind = self.string(table, "governor", span.clone(), what).and_then(|k| {
            let found = GovernorKind::ALL.into_iter().find(|g| g.name() == k);
            if found.is_none() {
                let names: Vec<&str> = GovernorKind::ALL.iter().map(|g| g.name()).collect();
                self.problem(
                    table.get("governor").and_then(Item::span),
                    format!("unknown governor `{k}`"),
                    Some(one_of(&names)),
                );
            }
            found
        });
        // The tenant governor is addressed by the tenant id itself.
        let resource = match (table.get("resource"), kind, &tenant) {
            (None, Some(GovernorKind::Tenant), Some(t)) => ResourceId::new(t.as_str()).ok(),
            (None, _, _) => {
                self.problem(
                    span,
                    format!("{what} has no `resource`"),
                    Some("`resource` = a resource id".into()),
                );
                None
            }
            (Some(item), _, _) => {
                self.as_string(item, "resource").and_then(|r| match ResourceId::new(&r) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        self.problem(item.span(), format!("`{r}` is not a resource id: {e}"), None);
                        None
                    }
                })
            }
        };
        Some(Target { tenant: tenant?, kind: kind?, resource: resource? })
    }

    fn command(&mut self, table: &toml_edit::Table, span: Option<Range<usize>>) -> Option<Action> {
        let target = self.target(table, span.clone(), "a `command` step");
        let name = self.string(table, "command", span, "a `command` step");
        let args = self.args(table.get("args"));
        let reason = match table.get("reason") {
            None => Some(DEFAULT_REASON.to_owned()),
            Some(item) => self.reason(item),
        };
        let metadata = self.metadata(table);
        let (target, name) = (target?, name?);
        let names = names(target.kind).0;
        if !names.contains(&name.as_str()) {
            self.problem(
                table.get("command").and_then(Item::span),
                format!("the {} governor has no command `{name}`", target.kind),
                Some(one_of(names)),
            );
            return None;
        }
        Some(Action::Command { target, name, args: args?, reason: reason?, metadata: metadata? })
    }

    /// A command's `reason`, checked by [`Reason::new`] as the runtime will check it.
    fn reason(&mut self, item: &Item) -> Option<String> {
        let text = self.as_string(item, "reason")?;
        match Reason::new(text.as_str()) {
            Ok(_) => Some(text),
            Err(e) => {
                self.problem(item.span(), e.to_string(), Some(e.expected().to_owned()));
                None
            }
        }
    }

    /// A command's `metadata` table and `idempotency_key`, checked entry by entry with
    /// [`Metadata::insert`] as the runtime will check them; the key written both ways is a
    /// problem rather than one silently replacing the other. The entries come sorted by key,
    /// as the receipt records them; `None` if any problem was found here.
    fn metadata(&mut self, table: &toml_edit::Table) -> Option<Vec<(String, String)>> {
        let problems_before = self.problems.len();
        let mut checked = Metadata::new();
        if let Some(item) = table.get("metadata") {
            match item.as_table_like() {
                Some(t) => {
                    for (k, v) in t.iter() {
                        let Some(value) = self.as_string(v, k) else { continue };
                        let key_span = t.key(k).and_then(toml_edit::Key::span).or_else(|| v.span());
                        if let Err(e) = checked.insert(k, value) {
                            let too_many = matches!(e, MetadataError::TooMany { .. });
                            let span = if too_many { item.span() } else { key_span };
                            self.problem(span, e.to_string(), Some(metadata_expected(&e)));
                            if too_many {
                                break;
                            }
                        }
                    }
                }
                None => self.problem(
                    item.span(),
                    format!("`metadata` is {}", a_type(item)),
                    Some("a table of strings".into()),
                ),
            }
        }
        if let Some(item) = table.get(IDEMPOTENCY_KEY) {
            let span = Self::key_span(table, IDEMPOTENCY_KEY, item.span());
            match self.as_string(item, IDEMPOTENCY_KEY) {
                None => {}
                Some(_) if checked.as_map().contains_key(IDEMPOTENCY_KEY) => self.problem(
                    span,
                    format!("`{IDEMPOTENCY_KEY}` is given twice: here and in `metadata`"),
                    Some("one of the two".into()),
                ),
                Some(value) => {
                    if let Err(e) = checked.insert(IDEMPOTENCY_KEY, value) {
                        self.problem(span, e.to_string(), Some(metadata_expected(&e)));
                    }
                }
            }
        }
        (self.problems.len() == problems_before)
            .then(|| checked.as_map().iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// Command arguments: a table whose values are strings, integers, booleans, decimals
    /// written as strings, or dates (turned into milliseconds since the epoch).
    fn args(&mut self, item: Option<&Item>) -> Option<Args> {
        let Some(item) = item else { return Some(Args::new()) };
        let Some(table) = item.as_table_like() else {
            self.problem(
                item.span(),
                format!("`args` is {}", a_type(item)),
                Some("a table, like `args = { plan = \"pro\" }`".into()),
            );
            return None;
        };
        let mut args = Args::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            let text = match value.as_value() {
                Some(Value::String(s)) => Some(s.value().clone()),
                Some(Value::Integer(i)) => Some(i.value().to_string()),
                Some(Value::Boolean(b)) => Some(b.value().to_string()),
                Some(Value::Datetime(_)) => {
                    self.timestamp(value, key).map(|t| t.as_ms().to_string())
                }
                _ => {
                    self.problem(
                        value.span(),
                        format!("argument `{key}` is {}", a_type(value)),
                        Some("a string, an integer, a boolean or a date".into()),
                    );
                    None
                }
            };
            match text {
                Some(t) => {
                    args.insert(key.to_owned(), t);
                }
                None => ok = false,
            }
        }
        ok.then_some(args)
    }

    fn expect(&mut self, item: &Item, action: Option<&Action>) -> Expect {
        let Some(table) = item.as_table_like() else {
            self.problem(
                item.span(),
                format!("`expect` is {}", a_type(item)),
                Some("a table, like `expect = { state = \"active\" }`".into()),
            );
            return Expect::default();
        };
        self.unknown_keys(table, EXPECT_KEYS, "`expect`");
        let mut expect = Expect {
            state: self.optional_string(table, "state"),
            refused: self.optional_string(table, "refused"),
            status: self
                .optional_u64(table, "status", 100, 599)
                .map(|s| u16::try_from(s).unwrap_or(0)),
            timeouts: self
                .optional_u64(table, "timeouts", 0, 1_000_000)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            retry_after: self.optional_u64(table, "retry_after", 0, u64::MAX),
            value: self.optional_u64(table, "value", 0, u64::MAX),
            quota: self.optional_string(table, "quota"),
            duplicate: table.get("duplicate").and_then(Item::as_bool),
            saga: self.optional_string(table, "saga"),
            total: self.optional_string(table, "total"),
            gates: self.gates(table),
            allowed: table.get("allowed").and_then(|item| {
                let b = item.as_bool();
                if b.is_none() {
                    self.problem(
                        item.span(),
                        format!("`allowed` is {}", describe(item)),
                        Some("`true` or `false`".into()),
                    );
                }
                b
            }),
        };
        let span_of = |key: &str| table.get(key).and_then(Item::span);
        // An `entitled` step is refused by the decision's codes, or by the runtime's.
        let codes: Vec<&str> = match action {
            Some(Action::Entitled { .. }) => {
                govern_policy::code::ALL.iter().chain(ERROR_CODES).copied().collect()
            }
            Some(Action::Usage { .. }) => ERROR_CODES.to_vec(),
            Some(Action::PlanChange { .. }) => {
                let deciding = govern_runtime::PLAN_CHANGE_REFUSAL_CODES;
                PLAN_CHANGE_CODES.iter().chain(deciding).chain(ERROR_CODES).copied().collect()
            }
            _ => ERROR_CODES.to_vec(),
        };
        if let Some(code) = &expect.refused {
            if !codes.contains(&code.as_str()) {
                self.problem(
                    span_of("refused"),
                    format!("`{code}` is not a refusal code"),
                    Some(one_of(&codes)),
                );
                expect.refused = None;
            }
            if expect.state.is_some() {
                self.problem(
                    span_of("state"),
                    "a refused command changes no state: `state` and `refused` exclude each other"
                        .into(),
                    None,
                );
            }
        }
        let kind = match action {
            Some(
                Action::Command { target, .. }
                | Action::Check { target }
                | Action::Crash { target, .. },
            ) => Some(target.kind),
            _ => None,
        };
        if let (Some(state), Some(kind)) = (&expect.state, kind) {
            let names = state_names(kind);
            if !names.contains(&state.as_str()) {
                self.problem(
                    span_of("state"),
                    format!("the {kind} governor has no state `{state}`"),
                    Some(one_of(&names)),
                );
            }
        }
        let fits: &[&str] = match action {
            Some(Action::Command { .. }) => &["state", "refused", "status"],
            Some(Action::Check { .. }) => &["state"],
            Some(Action::Advance { .. }) => &["timeouts"],
            Some(Action::Entitled { .. }) => &["allowed", "refused", "status", "retry_after"],
            Some(Action::Usage { .. }) => &["value", "quota", "duplicate", "refused", "status"],
            Some(Action::ClosePeriod { .. }) => &["total", "refused", "status"],
            Some(Action::PlanChange { apply: false, .. }) => &["allowed", "gates", "refused"],
            Some(Action::PlanChange { apply: true, .. }) => {
                &["allowed", "gates", "refused", "status"]
            }
            Some(Action::Saga { .. }) => &["saga", "refused", "status"],
            Some(Action::ResumeSagas) => &["saga"],
            _ => &[],
        };
        for key in EXPECT_KEYS {
            if table.contains_key(key) && !fits.contains(key) && action.is_some() {
                self.problem(
                    span_of(key),
                    format!("`expect.{key}` does not apply to this step"),
                    (!fits.is_empty()).then(|| one_of(fits)),
                );
            }
        }
        expect
    }

    /// `expect.gates`: a table gate = verdict, each a gate of seed 002 and a verdict.
    fn gates(&mut self, table: &dyn TableLike) -> Vec<(String, String)> {
        let Some(item) = table.get("gates") else { return Vec::new() };
        let Some(t) = item.as_table_like() else {
            self.problem(
                item.span(),
                format!("`gates` is {}", a_type(item)),
                Some("a table of gate = \"pass\" | \"fail\" | \"skip\"".into()),
            );
            return Vec::new();
        };
        let names: Vec<&str> = govern_plans::Gate::ALL.iter().map(|g| g.name()).collect();
        let mut gates = Vec::new();
        for (gate, v) in t.iter() {
            if !names.contains(&gate) {
                self.problem(v.span(), format!("no gate `{gate}`"), Some(one_of(&names)));
                continue;
            }
            match v.as_str() {
                Some(verdict @ ("pass" | "fail" | "skip")) => {
                    gates.push((gate.to_owned(), verdict.to_owned()));
                }
                _ => self.problem(
                    v.span(),
                    format!("gate `{gate}` is {}", describe(v)),
                    Some(one_of(&["pass", "fail", "skip"])),
                ),
            }
        }
        gates
    }

    fn run_expect(&mut self, item: &Item) -> RunExpect {
        let at = self.location(item.span());
        let Some(table) = item.as_table_like() else {
            self.problem(
                item.span(),
                format!("`expect` is {}", a_type(item)),
                Some("an `[expect]` table".into()),
            );
            return RunExpect { verified: true, at, ..RunExpect::default() };
        };
        self.unknown_keys(table, RUN_EXPECT_KEYS, "the run's `[expect]`");
        if let Some(v) = table.get("verified").filter(|v| v.as_bool() != Some(true)) {
            self.problem(
                v.span(),
                "the chain is always verified at the end".into(),
                Some("`verified = true` or nothing".into()),
            );
        }
        let mut receipts = BTreeMap::new();
        if let Some(item) = table.get("receipts") {
            match item.as_table_like() {
                None => self.problem(
                    item.span(),
                    format!("`receipts` is {}", a_type(item)),
                    Some("a table of tenant = count".into()),
                ),
                Some(counts) => {
                    for (tenant, count) in counts.iter() {
                        let Some(id) = self
                            .tenant_id(tenant, counts.key(tenant).and_then(toml_edit::Key::span))
                        else {
                            continue;
                        };
                        // A tenant provisioned by the steps themselves may be named.
                        match count.as_integer().and_then(|c| u64::try_from(c).ok()) {
                            Some(c) => {
                                receipts.insert(id, c);
                            }
                            None => self.problem(
                                count.span(),
                                format!("`{tenant}` is {}", describe(count)),
                                Some("a receipt count".into()),
                            ),
                        }
                    }
                }
            }
        }
        RunExpect { receipts, verified: true, at }
    }
}

/// Where an idempotency key goes in a receipt's metadata.
const IDEMPOTENCY_KEY: &str = "idempotency_key";

/// What metadata must look like, for a problem with it: the runtime's hint, and that an
/// idempotency key counts as an entry.
fn metadata_expected(e: &MetadataError) -> String {
    match e {
        MetadataError::TooMany { .. } => format!("{}, `{IDEMPOTENCY_KEY}` included", e.expected()),
        _ => e.expected().to_owned(),
    }
}

/// "a string", "an integer", ... for messages.
fn a_type(item: &Item) -> String {
    let name = item.type_name();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name}")
}

/// The value as written, for short values, else its type.
fn describe(item: &Item) -> String {
    let text = match item.as_value() {
        Some(Value::String(s)) => format!("\"{}\"", s.value()),
        Some(Value::Integer(i)) => i.value().to_string(),
        Some(Value::Float(f)) => f.value().to_string(),
        Some(Value::Boolean(b)) => b.value().to_string(),
        Some(Value::Datetime(d)) => d.value().to_string(),
        _ => return a_type(item),
    };
    if text.chars().count() <= 40 { format!("`{text}`") } else { a_type(item) }
}

fn names_of<G: Governor>() -> (&'static [&'static str], Vec<&'static str>) {
    (
        <G::Command as CommandSpec>::NAMES,
        <G::State as StateSpec>::ALL.iter().map(|s| s.name()).collect(),
    )
}

fn names(kind: GovernorKind) -> (&'static [&'static str], Vec<&'static str>) {
    match kind {
        GovernorKind::Entitlement => names_of::<entitlement::Entitlement>(),
        GovernorKind::Billing => names_of::<billing::Billing>(),
        GovernorKind::Catalog => names_of::<catalog::Product>(),
        GovernorKind::Subscription => names_of::<subscription::Subscription>(),
        GovernorKind::Account => names_of::<account::Account>(),
        GovernorKind::Quota => names_of::<quota::Quota>(),
        GovernorKind::Compliance => names_of::<compliance::Audit>(),
        GovernorKind::Tenant => names_of::<tenant::Tenant>(),
        GovernorKind::Audit => names_of::<audit::Trail>(),
        GovernorKind::Saga => names_of::<saga::Saga>(),
    }
}

fn parses<G: Governor>(name: &str, args: &Args) -> Result<(), String> {
    <G::Command as CommandSpec>::parse(name, args).map(drop).map_err(|e| e.to_string())
}

/// Whether a command's arguments parse, as the runtime will parse them.
fn check_args(kind: GovernorKind, name: &str, args: &Args) -> Result<(), String> {
    match kind {
        GovernorKind::Entitlement => parses::<entitlement::Entitlement>(name, args),
        GovernorKind::Billing => parses::<billing::Billing>(name, args),
        GovernorKind::Catalog => parses::<catalog::Product>(name, args),
        GovernorKind::Subscription => parses::<subscription::Subscription>(name, args),
        GovernorKind::Account => parses::<account::Account>(name, args),
        GovernorKind::Quota => parses::<quota::Quota>(name, args),
        GovernorKind::Compliance => parses::<compliance::Audit>(name, args),
        GovernorKind::Tenant => parses::<tenant::Tenant>(name, args),
        GovernorKind::Audit => parses::<audit::Trail>(name, args),
        GovernorKind::Saga => parses::<saga::Saga>(name, args),
    }
}

/// Every state name of a governor kind.
#[must_use]
pub fn state_names(kind: GovernorKind) -> Vec<&'static str> {
    names(kind).1
}

#[cfg(test)]
mod tests;
