//! The schema check of one file: TOML parsed with spans ([`toml_edit`]), every table and value
//! checked against the format of `docs/plans.md`. What parses is kept, with where it was
//! written, for the checks across plans and files (`check`); what does not is a problem.

use std::ops::Range;
use std::time::Duration;

use rust_decimal::Decimal;
use toml_edit::{Item, TableLike};

use crate::ids::{EvidenceId, Feature, IdError, Meter, PlanId, RefusalCode};
use crate::model::{
    Aggregation, ERROR_RATE_DECIMALS_MAX, ERROR_RATE_MAX_DEFAULT, Envelope, Evidence, FeatureDef,
    Interval, LimitValue, MeterPricing, Price, Refusal, Reset, Status, Tier, TierMode,
};
use crate::problem::{Check, Problem};
use crate::{
    COOLDOWN_MAX, DESCRIPTION_LEN_MAX, ENTRIES_MAX, NAME_LEN_MAX, PLANS_MAX, TIERS_MAX,
    UNIT_DECIMALS_MAX, WINDOW_MAX, WINDOW_MIN,
};

/// Where something was written: a file (its index among those validated together), line and
/// column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct At {
    pub(crate) file: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// A value and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Located<T> {
    pub(crate) value: T,
    pub(crate) at: At,
}

/// One file, as far as it parsed.
#[derive(Debug, Default)]
pub(crate) struct FileSrc {
    pub(crate) version: Option<Located<String>>,
    pub(crate) features: Vec<(Located<Feature>, FeatureSrc)>,
    pub(crate) refusals: Vec<(Located<RefusalCode>, Refusal)>,
    pub(crate) evidence: Vec<(Located<EvidenceId>, Evidence)>,
    pub(crate) plans: Vec<PlanSrc>,
}

/// A feature's definition, with where its refusal code was written (or its table, when the
/// default code applies).
#[derive(Debug, Clone)]
pub(crate) struct FeatureSrc {
    pub(crate) def: FeatureDef,
    pub(crate) refusal_at: At,
    /// Where its meter was named.
    pub(crate) meter_at: Option<At>,
}

/// A plan as far as it parsed (`None`: missing or invalid, already a problem).
#[derive(Debug)]
pub(crate) struct PlanSrc {
    pub(crate) id: Located<PlanId>,
    pub(crate) name: Option<String>,
    pub(crate) price: Option<Price>,
    pub(crate) features: Vec<Located<Feature>>,
    pub(crate) limits: Vec<LimitSrc>,
    pub(crate) envelope: Option<Located<Envelope>>,
    pub(crate) upgrades: Vec<UpgradeSrc>,
    pub(crate) evidence: Vec<Located<EvidenceId>>,
    pub(crate) pricing: Vec<(Located<Meter>, MeterPricing)>,
    /// Whether every part of the plan parsed.
    pub(crate) complete: bool,
}

/// A limit as parsed.
#[derive(Debug)]
pub(crate) struct LimitSrc {
    pub(crate) meter: Located<Meter>,
    pub(crate) value: LimitValue,
    pub(crate) reset: Reset,
    pub(crate) refusal: Located<RefusalCode>,
}

/// An upgrade path as parsed.
#[derive(Debug)]
pub(crate) struct UpgradeSrc {
    pub(crate) index: usize,
    /// Where the upgrade's table is written.
    pub(crate) at: At,
    pub(crate) to: Located<PlanId>,
    /// `None`: invalid, already a problem.
    pub(crate) cooldown: Option<Duration>,
    /// `None`: invalid, already a problem.
    pub(crate) refusal: Option<Located<RefusalCode>>,
}

/// The refusal code of a limit on `meter` that names none.
pub(crate) fn default_limit_refusal(meter: &str) -> &'static str {
    match meter {
        Meter::REQUESTS_PER_SECOND | Meter::CONCURRENT_EXECUTIONS => "rate_limited",
        _ => "quota_exceeded",
    }
}

/// The refusal code of a feature that names none.
pub(crate) const DEFAULT_FEATURE_REFUSAL: &str = "feature_not_in_plan";
/// The refusal code of an upgrade path that names none.
pub(crate) const DEFAULT_UPGRADE_REFUSAL: &str = "upgrade_cooldown";

/// The reset of a limit on `meter` that names none.
fn default_reset(meter: &str) -> Reset {
    match meter {
        Meter::EXECUTIONS | Meter::AI_TOKENS => Reset::Monthly,
        _ => Reset::None,
    }
}

const TOP_KEYS: &[&str] = &["version", "features", "refusals", "evidence", "plans"];
const FEATURE_KEYS: &[&str] = &["description", "refusal", "meter"];
const REFUSAL_KEYS: &[&str] = &["status", "message"];
const EVIDENCE_KEYS: &[&str] = &["title", "document"];
const PLAN_KEYS: &[&str] =
    &["name", "price", "features", "limits", "envelope", "upgrades", "evidence", "pricing"];
const PRICING_KEYS: &[&str] = &["included", "mode", "tiers", "aggregation"];
const TIER_KEYS: &[&str] = &["up_to", "unit"];
const PRICE_KEYS: &[&str] = &["amount", "currency", "interval"];
const LIMIT_KEYS: &[&str] = &["value", "reset", "window", "refusal"];
const ENVELOPE_KEYS: &[&str] = &["throughput_rps", "p99_latency_ms", "connections", "queue_depth"];
/// The envelope's optional keys (beside [`ENVELOPE_KEYS`], all required).
const ENVELOPE_OPTIONAL_KEYS: &[&str] = &["error_rate_max"];
const UPGRADE_KEYS: &[&str] = &["to", "cooldown", "refusal"];

fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

fn one_of(names: &[&str]) -> String {
    format!("one of {}", list(names))
}

/// What an item is, for a message: "a string", "an integer (-3)", "a table".
fn describe(item: &Item) -> String {
    match item {
        Item::None => "nothing".into(),
        Item::Value(v) => match v {
            toml_edit::Value::String(_) => "a string".into(),
            toml_edit::Value::Integer(i) => format!("an integer ({})", i.value()),
            toml_edit::Value::Float(f) => format!("a float ({})", f.value()),
            toml_edit::Value::Boolean(b) => format!("a boolean ({})", b.value()),
            toml_edit::Value::Datetime(_) => "a date-time".into(),
            toml_edit::Value::Array(_) => "an array".into(),
            toml_edit::Value::InlineTable(_) => "a table".into(),
        },
        Item::Table(_) => "a table".into(),
        Item::ArrayOfTables(_) => "an array of tables".into(),
    }
}

/// The schema checker of one file.
pub(crate) struct Cx<'a> {
    file_index: usize,
    file: &'a str,
    text: &'a str,
    /// Byte offset of the start of every line.
    line_starts: Vec<usize>,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(
        file_index: usize,
        file: &'a str,
        text: &'a str,
        problems: &'a mut Vec<Problem>,
    ) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { file_index, file, text, line_starts, problems }
    }

    fn at(&self, span: Option<Range<usize>>) -> At {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self.text.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        At { file: self.file_index, line, column }
    }

    /// `t`'s `key`; when it has none, the problem "is missing" at `at`, with `hint`.
    fn required<'t>(
        &mut self,
        t: &'t dyn TableLike,
        key: &str,
        field: &str,
        at: At,
        hint: &str,
    ) -> Option<&'t Item> {
        let item = t.get(key);
        if item.is_none() {
            self.problem(at, field, "is missing".into(), hint.into());
        }
        item
    }

    fn problem(&mut self, at: At, field: &str, message: String, hint: String) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            field: field.to_owned(),
            message,
            hint,
            check: Check::Schema,
        });
    }

    /// Where `key` of `table` is written, else `fallback`.
    fn key_at(&self, table: &dyn TableLike, key: &str, fallback: At) -> At {
        table.key(key).and_then(toml_edit::Key::span).map_or(fallback, |s| self.at(Some(s)))
    }

    /// Where `item` is written, else `fallback`.
    fn item_at(&self, item: &Item, fallback: At) -> At {
        item.span().map_or(fallback, |s| self.at(Some(s)))
    }

    fn unknown_keys(&mut self, table: &dyn TableLike, allowed: &[&str], path: &str, at: At) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key) {
                let at = self.key_at(table, key, at);
                let field = join(path, key);
                self.problem(
                    at,
                    &field,
                    format!("unknown key `{key}`"),
                    format!("the keys here are {}", list(allowed)),
                );
            }
        }
    }

    /// `item` as a table, or a problem.
    fn table<'i>(&mut self, item: &'i Item, path: &str, at: At) -> Option<&'i dyn TableLike> {
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                let at = self.item_at(item, at);
                self.problem(at, path, format!("is {}", describe(item)), "write a table".into());
                None
            }
        }
    }

    fn id<T>(
        &mut self,
        make: fn(&str) -> Result<T, IdError>,
        s: &str,
        at: At,
        field: &str,
        what: &str,
    ) -> Option<Located<T>> {
        match make(s) {
            Ok(value) => Some(Located { value, at }),
            Err(e) => {
                self.problem(
                    at,
                    field,
                    format!("`{s}` is not a {what} id: it {e}"),
                    "write lower-case letters, digits, `_` and `-` (`pro`, `ai_tokens`)".into(),
                );
                None
            }
        }
    }

    /// The string at `key`; a problem if it is missing (when `required`), not a string,
    /// empty, or longer than `max` characters.
    fn string(
        &mut self,
        table: &dyn TableLike,
        key: &str,
        path: &str,
        at: At,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let field = join(path, key);
        let Some(item) = table.get(key) else {
            if required {
                self.problem(at, &field, "is missing".into(), format!("add `{key} = \"...\"`"));
            }
            return None;
        };
        let at = self.item_at(item, at);
        match item.as_str() {
            Some("") => {
                self.problem(at, &field, "is empty".into(), "write some text".into());
                None
            }
            Some(s) if s.chars().count() > max => {
                self.problem(
                    at,
                    &field,
                    format!("is {} characters long", s.chars().count()),
                    format!("at most {max} characters"),
                );
                None
            }
            Some(s) => Some(s.to_owned()),
            None => {
                self.problem(
                    at,
                    &field,
                    format!("is {}", describe(item)),
                    "write a string in quotes".into(),
                );
                None
            }
        }
    }

    /// The non-negative integer `item`, or a problem.
    fn count(&mut self, item: &Item, field: &str, at: At, positive: bool) -> Option<u64> {
        let at = self.item_at(item, at);
        let min = u64::from(positive);
        match item.as_integer().map(u64::try_from) {
            Some(Ok(n)) if n >= min => Some(n),
            Some(_) => {
                let message = format!("is {}", describe(item));
                let hint = if positive {
                    "write an integer of 1 or more"
                } else {
                    "write an integer of 0 or more"
                };
                self.problem(at, field, message, hint.into());
                None
            }
            None => {
                let hint = match item.as_float() {
                    Some(_) => "write a whole number: this is a count, not a fraction",
                    None => "write an integer",
                };
                self.problem(at, field, format!("is {}", describe(item)), hint.into());
                None
            }
        }
    }

    fn duration(
        &mut self,
        item: &Item,
        field: &str,
        at: At,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let at = self.item_at(item, at);
        let Some(s) = item.as_str() else {
            self.problem(
                at,
                field,
                format!("is {}", describe(item)),
                "write a duration in quotes: \"30d\", \"12h\"".into(),
            );
            return None;
        };
        match humantime::parse_duration(s) {
            Ok(d) if d >= min && d <= max => Some(d),
            Ok(_) => {
                self.problem(
                    at,
                    field,
                    format!("`{s}` is out of range"),
                    format!("from {} to {}", show_duration(min), show_duration(max)),
                );
                None
            }
            Err(e) => {
                self.problem(
                    at,
                    field,
                    format!("`{s}` is not a duration: {e}"),
                    "write a duration like \"30d\", \"12h\" or \"90m\"".into(),
                );
                None
            }
        }
    }

    /// The refusal code at `key` of `table`, or `default` located at `fallback`.
    fn refusal_ref(
        &mut self,
        table: Option<&dyn TableLike>,
        path: &str,
        fallback: At,
        default: &str,
    ) -> Option<Located<RefusalCode>> {
        let Some(item) = table.and_then(|t| t.get("refusal")) else {
            return RefusalCode::new(default).ok().map(|value| Located { value, at: fallback });
        };
        let field = join(path, "refusal");
        let at = self.item_at(item, fallback);
        match item.as_str() {
            Some(s) => self.id(RefusalCode::new, s, at, &field, "refusal code"),
            None => {
                self.problem(
                    at,
                    &field,
                    format!("is {}", describe(item)),
                    "write a refusal code in quotes".into(),
                );
                None
            }
        }
    }

    /// The whole file.
    pub(crate) fn file(&mut self, top: &toml_edit::Table) -> FileSrc {
        let start = self.at(None);
        let mut src = FileSrc::default();
        self.unknown_keys(top, TOP_KEYS, "", start);
        match top.get("version") {
            None => self.problem(start, "version", "is missing".into(), "add `version = \"2026-12-01\"` (the catalog's revision; every file of a catalog writes the same)".into()),
            Some(item) => {
                if let Some(v) = self.string(top, "version", "", start, NAME_LEN_MAX, true) {
                    let at = self.item_at(item, start);
                    src.version = Some(Located { value: v, at });
                }
            }
        }
        if let Some(item) = top.get("features") {
            let at = self.key_at(top, "features", start);
            if let Some(t) = self.table(item, "features", at) {
                self.bounded(t, "features", at);
                for (key, item) in t.iter() {
                    let path = format!("features.{key}");
                    let at = self.key_at(t, key, at);
                    let id = self.id(Feature::new, key, at, &path, "feature");
                    let def = self.feature(item, &path, at);
                    if let (Some(id), Some(def)) = (id, def) {
                        src.features.push((id, def));
                    }
                }
            }
        }
        if let Some(item) = top.get("refusals") {
            let at = self.key_at(top, "refusals", start);
            if let Some(t) = self.table(item, "refusals", at) {
                self.bounded(t, "refusals", at);
                for (key, item) in t.iter() {
                    let path = format!("refusals.{key}");
                    let at = self.key_at(t, key, at);
                    let id = self.id(RefusalCode::new, key, at, &path, "refusal code");
                    let def = self.refusal(item, &path, at);
                    if let (Some(id), Some(def)) = (id, def) {
                        src.refusals.push((id, def));
                    }
                }
            }
        }
        if let Some(item) = top.get("evidence") {
            let at = self.key_at(top, "evidence", start);
            if let Some(t) = self.table(item, "evidence", at) {
                self.bounded(t, "evidence", at);
                for (key, item) in t.iter() {
                    let path = format!("evidence.{key}");
                    let at = self.key_at(t, key, at);
                    let id = self.id(EvidenceId::new, key, at, &path, "evidence");
                    let def = self.evidence(item, &path, at);
                    if let (Some(id), Some(def)) = (id, def) {
                        src.evidence.push((id, def));
                    }
                }
            }
        }
        if let Some(item) = top.get("plans") {
            let at = self.key_at(top, "plans", start);
            if let Some(t) = self.table(item, "plans", at) {
                if t.len() > PLANS_MAX {
                    self.problem(
                        at,
                        "plans",
                        format!("has {} plans", t.len()),
                        format!("at most {PLANS_MAX} plans"),
                    );
                }
                for (key, item) in t.iter().take(PLANS_MAX) {
                    let path = format!("plans.{key}");
                    let at = self.key_at(t, key, at);
                    if let Some(id) = self.id(PlanId::new, key, at, &path, "plan")
                        && let Some(plan) = self.plan(id, item, &path)
                    {
                        src.plans.push(plan);
                    }
                }
            }
        }
        src
    }

    /// A problem when `table` has more than [`ENTRIES_MAX`] entries.
    fn bounded(&mut self, table: &dyn TableLike, path: &str, at: At) -> bool {
        if table.len() > ENTRIES_MAX {
            self.problem(
                at,
                path,
                format!("has {} entries", table.len()),
                format!("at most {ENTRIES_MAX}"),
            );
            return false;
        }
        true
    }

    fn feature(&mut self, item: &Item, path: &str, at: At) -> Option<FeatureSrc> {
        let t = self.table(item, path, at)?;
        self.unknown_keys(t, FEATURE_KEYS, path, at);
        let description = self.string(t, "description", path, at, DESCRIPTION_LEN_MAX, true);
        let refusal = self.refusal_ref(Some(t), path, at, DEFAULT_FEATURE_REFUSAL);
        let refusal_at = refusal.as_ref().map_or(at, |r| r.at);
        let field = join(path, "meter");
        let meter = match self.string(t, "meter", path, at, DESCRIPTION_LEN_MAX, false) {
            None => None,
            Some(m) => {
                let mat = t.get("meter").map_or(at, |item| self.item_at(item, at));
                Some(self.id(Meter::new, &m, mat, &field, "meter")?)
            }
        };
        Some(FeatureSrc {
            def: FeatureDef {
                description: description?,
                refusal: refusal?.value,
                meter: meter.as_ref().map(|m| m.value.clone()),
            },
            refusal_at,
            meter_at: meter.map(|m| m.at),
        })
    }

    fn refusal(&mut self, item: &Item, path: &str, at: At) -> Option<Refusal> {
        let t = self.table(item, path, at)?;
        self.unknown_keys(t, REFUSAL_KEYS, path, at);
        let message = self.string(t, "message", path, at, DESCRIPTION_LEN_MAX, true);
        let field = join(path, "status");
        let status =
            match self.required(t, "status", &field, at, "add `status = 402`, `403` or `429`") {
                None => None,
                Some(item) => {
                    let s = item.as_integer().and_then(Status::from_code);
                    if s.is_none() {
                        let at = self.item_at(item, at);
                        let message = match item.as_integer() {
                            Some(code) => format!("{code} is not a refusal status"),
                            None => format!("is {}", describe(item)),
                        };
                        self.problem(
                        at,
                        &field,
                        message,
                        "402 (payment or plan required), 403 (not entitled) or 429 (rate or quota)"
                            .into(),
                    );
                    }
                    s
                }
            };
        Some(Refusal { status: status?, message: message? })
    }

    fn evidence(&mut self, item: &Item, path: &str, at: At) -> Option<Evidence> {
        let t = self.table(item, path, at)?;
        self.unknown_keys(t, EVIDENCE_KEYS, path, at);
        let title = self.string(t, "title", path, at, NAME_LEN_MAX, true);
        // An empty or missing document is the evidence check's to report (`check`).
        let document = match t.get("document") {
            None => String::new(),
            Some(item) => match item.as_str() {
                Some(s) if s.chars().count() <= DESCRIPTION_LEN_MAX => s.to_owned(),
                _ => {
                    let at = self.item_at(item, at);
                    self.problem(at, &join(path, "document"), format!("is {}", describe(item)), format!("write the document's path or URL in quotes, at most {DESCRIPTION_LEN_MAX} characters"));
                    String::new()
                }
            },
        };
        Some(Evidence { title: title?, document })
    }

    fn plan(&mut self, id: Located<PlanId>, item: &Item, path: &str) -> Option<PlanSrc> {
        let at = id.at;
        let Some(t) = self.table(item, path, at) else {
            return Some(PlanSrc {
                id,
                name: None,
                price: None,
                features: Vec::new(),
                limits: Vec::new(),
                envelope: None,
                upgrades: Vec::new(),
                evidence: Vec::new(),
                pricing: Vec::new(),
                complete: false,
            });
        };
        let before = self.problems.len();
        self.unknown_keys(t, PLAN_KEYS, path, at);
        let name = self.string(t, "name", path, at, NAME_LEN_MAX, true);
        let price_field = join(path, "price");
        let price = self
            .required(
                t,
                "price",
                &price_field,
                at,
                "add `price = { amount = \"99.00\", currency = \"USD\", interval = \"month\" }`",
            )
            .and_then(|item| self.price(item, &price_field, self.key_at(t, "price", at)));
        let features = match t.get("features") {
            None => Vec::new(),
            Some(item) => self.id_list(
                item,
                &join(path, "features"),
                self.key_at(t, "features", at),
                Feature::new,
                "feature",
            ),
        };
        let evidence = match t.get("evidence") {
            None => Vec::new(),
            Some(item) => self.id_list(
                item,
                &join(path, "evidence"),
                self.key_at(t, "evidence", at),
                EvidenceId::new,
                "evidence",
            ),
        };
        let limits = match t.get("limits") {
            None => Vec::new(),
            Some(item) => self.limits(item, &join(path, "limits"), self.key_at(t, "limits", at)),
        };
        let envelope = match t.get("envelope") {
            None => None,
            Some(item) => {
                self.envelope(item, &join(path, "envelope"), self.key_at(t, "envelope", at))
            }
        };
        let upgrades = match t.get("upgrades") {
            None => Vec::new(),
            Some(item) => {
                self.upgrades(item, &join(path, "upgrades"), self.key_at(t, "upgrades", at))
            }
        };
        let pricing = match t.get("pricing") {
            None => Vec::new(),
            Some(item) => self.pricing(item, &join(path, "pricing"), self.key_at(t, "pricing", at)),
        };
        let complete = self.problems.len() == before;
        Some(PlanSrc {
            id,
            name,
            price,
            features,
            limits,
            envelope,
            upgrades,
            evidence,
            pricing,
            complete,
        })
    }

    fn price(&mut self, item: &Item, path: &str, at: At) -> Option<Price> {
        let t = self.table(item, path, at)?;
        let at = self.item_at(item, at);
        self.unknown_keys(t, PRICE_KEYS, path, at);
        let currency = match self.string(t, "currency", path, at, 3, true) {
            None => None,
            Some(code) => {
                let c = iso_currency::Currency::from_code(&code);
                if c.is_none() {
                    let at = self.item_at(&t.get("currency").cloned().unwrap_or_default(), at);
                    self.problem(
                        at,
                        &join(path, "currency"),
                        format!("`{code}` is not an ISO 4217 currency code"),
                        "write a three-letter code in capitals: \"USD\", \"EUR\"".into(),
                    );
                }
                c
            }
        };
        let interval = match self.string(t, "interval", path, at, 5, true) {
            None => None,
            Some(s) => match s.as_str() {
                "month" => Some(Interval::Month),
                "year" => Some(Interval::Year),
                _ => {
                    let at = t.get("interval").map_or(at, |i| self.item_at(i, at));
                    self.problem(
                        at,
                        &join(path, "interval"),
                        format!("`{s}` is not an interval"),
                        "`month` or `year`".into(),
                    );
                    None
                }
            },
        };
        let field = join(path, "amount");
        let amount = match self.required(
            t,
            "amount",
            &field,
            at,
            "add `amount = \"99.00\"` (a string: money is exact)",
        ) {
            None => None,
            Some(item) => {
                let at = self.item_at(item, at);
                let parsed = money_value(item);
                match parsed {
                    Ok(d) if d.is_sign_negative() && !d.is_zero() => {
                        self.problem(
                            at,
                            &field,
                            format!("is negative ({d})"),
                            "a price is 0 (free) or more".into(),
                        );
                        None
                    }
                    Ok(d) => Some(d),
                    Err(message) => {
                        self.problem(
                            at,
                            &field,
                            message,
                            "write the amount as a decimal string: amount = \"99.00\"".into(),
                        );
                        None
                    }
                }
            }
        };
        let (amount, currency) = (amount?, currency?);
        let decimals = currency.exponent().map_or(0, u32::from);
        if amount.normalize().scale() > decimals {
            let at = t.get("amount").map_or(at, |i| self.item_at(i, at));
            self.problem(
                at,
                &field,
                format!("{amount} has more decimals than {} has ({decimals})", currency.code()),
                format!("round it to {decimals} decimals"),
            );
            return None;
        }
        Some(Price { amount: amount.normalize(), currency, interval: interval? })
    }

    /// A plan's pricing table: meter -> allowance, mode, tiers, aggregation.
    fn pricing(&mut self, item: &Item, path: &str, at: At) -> Vec<(Located<Meter>, MeterPricing)> {
        let Some(t) = self.table(item, path, at) else { return Vec::new() };
        if !self.bounded(t, path, at) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (key, item) in t.iter() {
            let field = join(path, key);
            let kat = self.key_at(t, key, at);
            let Some(meter) = self.id(Meter::new, key, kat, &field, "meter") else { continue };
            if let Some(p) = self.meter_pricing(item, &field, kat) {
                out.push((meter, p));
            }
        }
        out
    }

    /// A string among `names` at `key` of `t`, or `default` when absent.
    fn choice<'n>(
        &mut self,
        t: &dyn TableLike,
        key: &str,
        path: &str,
        at: At,
        names: &[&'n str],
        default: &'n str,
    ) -> Option<&'n str> {
        let Some(item) = t.get(key) else { return Some(default) };
        let at = self.item_at(item, at);
        if let Some(s) = item.as_str()
            && let Some(n) = names.iter().find(|n| **n == s)
        {
            return Some(n);
        }
        let message = match item.as_str() {
            Some(s) => format!("`{s}` is not a valid {key}"),
            None => format!("is {}", describe(item)),
        };
        self.problem(at, &join(path, key), message, one_of(names));
        None
    }

    fn meter_pricing(&mut self, item: &Item, path: &str, at: At) -> Option<MeterPricing> {
        let t = self.table(item, path, at)?;
        self.unknown_keys(t, PRICING_KEYS, path, at);
        let included = match t.get("included") {
            None => Some(0),
            Some(v) => self.count(v, &join(path, "included"), at, false),
        };
        let mode = self
            .choice(t, "mode", path, at, &["graduated", "volume"], "graduated")
            .map(|m| if m == "volume" { TierMode::Volume } else { TierMode::Graduated });
        let aggregation = self
            .choice(t, "aggregation", path, at, &["sum", "count", "max", "unique_count"], "sum")
            .map(|a| match a {
                "count" => Aggregation::Count,
                "max" => Aggregation::Max,
                "unique_count" => Aggregation::UniqueCount,
                _ => Aggregation::Sum,
            });
        let tiers = self.tiers(t, path, at);
        Some(MeterPricing {
            included: included?,
            mode: mode?,
            tiers: tiers?,
            aggregation: aggregation?,
        })
    }

    fn tiers(&mut self, t: &dyn TableLike, path: &str, at: At) -> Option<Vec<Tier>> {
        let field = join(path, "tiers");
        let item = self.required(
            t,
            "tiers",
            &field,
            at,
            "add `tiers = [{ up_to = \"inf\", unit = \"0.01\" }]`",
        )?;
        let tat = self.item_at(item, at);
        let tables: Vec<(&dyn TableLike, At)> = if let Some(aot) = item.as_array_of_tables() {
            aot.iter()
                .map(|t| (t as &dyn TableLike, t.span().map_or(tat, |s| self.at(Some(s)))))
                .collect()
        } else if let Some(array) = item.as_array() {
            let mut v = Vec::new();
            for (i, value) in array.iter().enumerate() {
                let vat = value.span().map_or(tat, |s| self.at(Some(s)));
                match value.as_inline_table() {
                    Some(t) => v.push((t as &dyn TableLike, vat)),
                    None => {
                        self.problem(
                            vat,
                            &format!("{field}[{i}]"),
                            "is not a table".into(),
                            "write `{ up_to = 1000, unit = \"0.01\" }`".into(),
                        );
                        return None;
                    }
                }
            }
            v
        } else {
            self.problem(
                tat,
                &field,
                format!("is {}", describe(item)),
                "write an array of tables: [{ up_to = 1000, unit = \"0.01\" }, ...]".into(),
            );
            return None;
        };
        if tables.is_empty() || tables.len() > TIERS_MAX {
            self.problem(
                tat,
                &field,
                format!("has {} tiers", tables.len()),
                format!("from 1 to {TIERS_MAX} tiers, the last with `up_to = \"inf\"`"),
            );
            return None;
        }
        let last = tables.len() - 1;
        let mut out = Vec::new();
        let mut ok = true;
        let mut previous: Option<u64> = None;
        for (i, (t, at)) in tables.into_iter().enumerate() {
            let field = format!("{field}[{i}]");
            self.unknown_keys(t, TIER_KEYS, &field, at);
            let up_field = join(&field, "up_to");
            let up_to = match self.required(
                t,
                "up_to",
                &up_field,
                at,
                "add `up_to = 1000`, or `up_to = \"inf\"` for the last tier",
            ) {
                None => None,
                Some(v) if v.as_str() == Some("inf") => Some(None),
                Some(v) if v.is_str() => {
                    let vat = self.item_at(v, at);
                    self.problem(
                        vat,
                        &up_field,
                        format!("is the string `{}`", v.as_str().unwrap_or_default()),
                        "write an integer of 1 or more, or \"inf\"".into(),
                    );
                    None
                }
                Some(v) => self.count(v, &up_field, at, true).map(Some),
            };
            let up_at = t.get("up_to").map_or(at, |v| self.item_at(v, at));
            match up_to {
                Some(None) if i != last => {
                    self.problem(
                        up_at,
                        &up_field,
                        "is \"inf\" but is not the last tier".into(),
                        "only the last tier is unbounded".into(),
                    );
                    ok = false;
                }
                Some(Some(n)) if i == last => {
                    self.problem(
                        up_at,
                        &up_field,
                        format!("is {n}: the last tier must be unbounded"),
                        "write `up_to = \"inf\"` on the last tier".into(),
                    );
                    ok = false;
                }
                Some(Some(n)) => {
                    if let Some(p) = previous
                        && n <= p
                    {
                        self.problem(
                            up_at,
                            &up_field,
                            format!("is {n}, not more than the tier before ({p})"),
                            "tiers' `up_to` increase strictly".into(),
                        );
                        ok = false;
                    }
                    previous = Some(n);
                }
                Some(None) => {}
                None => ok = false,
            }
            let unit = self.unit_price(t, &field, at);
            match (up_to, unit) {
                (Some(up_to), Some(unit)) => out.push(Tier { up_to, unit }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A tier's unit price: a decimal string (or an integer), never a float, 0 or more.
    /// It may be finer than the currency's minor unit: a line's amount is rounded
    /// (`docs/pricing.md`).
    fn unit_price(&mut self, t: &dyn TableLike, path: &str, at: At) -> Option<Decimal> {
        let field = join(path, "unit");
        let item = self.required(
            t,
            "unit",
            &field,
            at,
            "add `unit = \"0.01\"` (a string: money is exact)",
        )?;
        let at = self.item_at(item, at);
        let parsed = money_value(item);
        match parsed {
            Ok(d) if d.is_sign_negative() && !d.is_zero() => {
                self.problem(
                    at,
                    &field,
                    format!("is negative ({d})"),
                    "a unit price is 0 or more".into(),
                );
                None
            }
            Ok(d) if d.normalize().scale() > UNIT_DECIMALS_MAX => {
                self.problem(
                    at,
                    &field,
                    format!("{d} has more than {UNIT_DECIMALS_MAX} decimals"),
                    format!("round it to {UNIT_DECIMALS_MAX} decimals"),
                );
                None
            }
            Ok(d) => Some(d.normalize()),
            Err(message) => {
                self.problem(
                    at,
                    &field,
                    message,
                    "write the unit price as a decimal string: unit = \"0.00002\"".into(),
                );
                None
            }
        }
    }

    /// An array of ids (`features = ["sso", "api"]`).
    fn id_list<T: PartialEq>(
        &mut self,
        item: &Item,
        path: &str,
        at: At,
        make: fn(&str) -> Result<T, IdError>,
        what: &str,
    ) -> Vec<Located<T>> {
        let Some(array) = item.as_array() else {
            let at = self.item_at(item, at);
            self.problem(
                at,
                path,
                format!("is {}", describe(item)),
                format!("write an array of {what} ids: [\"a\", \"b\"]"),
            );
            return Vec::new();
        };
        if array.len() > ENTRIES_MAX {
            self.problem(
                at,
                path,
                format!("has {} entries", array.len()),
                format!("at most {ENTRIES_MAX}"),
            );
            return Vec::new();
        }
        let mut out: Vec<Located<T>> = Vec::new();
        for (i, value) in array.iter().enumerate() {
            let field = format!("{path}[{i}]");
            let vat = value.span().map_or(at, |s| self.at(Some(s)));
            match value.as_str() {
                Some(s) => {
                    if let Some(id) = self.id(make, s, vat, &field, what) {
                        if out.iter().any(|o| o.value == id.value) {
                            self.problem(
                                vat,
                                &field,
                                format!("`{s}` is listed twice"),
                                "list it once".into(),
                            );
                        } else {
                            out.push(id);
                        }
                    }
                }
                None => self.problem(
                    vat,
                    &field,
                    "is not a string".into(),
                    format!("write a {what} id in quotes"),
                ),
            }
        }
        out
    }

    fn limits(&mut self, item: &Item, path: &str, at: At) -> Vec<LimitSrc> {
        let Some(t) = self.table(item, path, at) else { return Vec::new() };
        if !self.bounded(t, path, at) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (key, item) in t.iter() {
            let field = join(path, key);
            let kat = self.key_at(t, key, at);
            let Some(meter) = self.id(Meter::new, key, kat, &field, "meter") else { continue };
            if let Some(limit) = self.limit(meter, item, &field, kat) {
                out.push(limit);
            }
        }
        out
    }

    fn limit_value(&mut self, item: &Item, field: &str, at: At) -> Option<LimitValue> {
        if item.as_str() == Some("unlimited") {
            return Some(LimitValue::Unlimited);
        }
        if item.is_str() {
            let at = self.item_at(item, at);
            self.problem(
                at,
                field,
                format!(
                    "is the string {}",
                    item.as_str().map(|s| format!("`{s}`")).unwrap_or_default()
                ),
                "write an integer of 0 or more, or \"unlimited\"".into(),
            );
            return None;
        }
        self.count(item, field, at, false).map(LimitValue::Finite)
    }

    fn limit(
        &mut self,
        meter: Located<Meter>,
        item: &Item,
        field: &str,
        at: At,
    ) -> Option<LimitSrc> {
        let default_refusal = default_limit_refusal(meter.value.as_str());
        let Some(t) = item.as_table_like() else {
            // The short form: `seats = 5` or `seats = "unlimited"`.
            let value = self.limit_value(item, field, at)?;
            let reset = default_reset(meter.value.as_str());
            let refusal = self.refusal_ref(None, field, at, default_refusal)?;
            return Some(LimitSrc { meter, value, reset, refusal });
        };
        self.unknown_keys(t, LIMIT_KEYS, field, at);
        let value_field = join(field, "value");
        let value = self
            .required(t, "value", &value_field, at, "add `value = 100` (or \"unlimited\")")
            .and_then(|v| self.limit_value(v, &value_field, at));
        let window = t.get("window").map(|w| (w, self.item_at(w, at)));
        let reset = match t.get("reset") {
            None => {
                if let Some((_, wat)) = window {
                    self.problem(
                        wat,
                        &join(field, "window"),
                        "is set, but `reset` is not `rolling`".into(),
                        "add `reset = \"rolling\"`, or remove `window`".into(),
                    );
                }
                Some(default_reset(meter.value.as_str()))
            }
            Some(r) => {
                let rat = self.item_at(r, at);
                match r.as_str() {
                    Some(s @ ("none" | "daily" | "monthly")) => {
                        if let Some((_, wat)) = window {
                            self.problem(
                                wat,
                                &join(field, "window"),
                                format!("is set, but `reset` is `{s}`"),
                                "a window goes with `reset = \"rolling\"` only".into(),
                            );
                        }
                        Some(match s {
                            "daily" => Reset::Daily,
                            "monthly" => Reset::Monthly,
                            _ => Reset::None,
                        })
                    }
                    Some("rolling") => match window {
                        None => {
                            self.problem(
                                rat,
                                &join(field, "window"),
                                "is missing: a rolling reset needs one".into(),
                                "add `window = \"30d\"`".into(),
                            );
                            None
                        }
                        Some((w, wat)) => self
                            .duration(w, &join(field, "window"), wat, WINDOW_MIN, WINDOW_MAX)
                            .map(Reset::Rolling),
                    },
                    _ => {
                        self.problem(
                            rat,
                            &join(field, "reset"),
                            format!("is {}", describe(r)),
                            one_of(&["none", "daily", "monthly", "rolling"]),
                        );
                        None
                    }
                }
            }
        };
        let refusal = self.refusal_ref(Some(t), field, at, default_refusal);
        Some(LimitSrc { meter, value: value?, reset: reset?, refusal: refusal? })
    }

    fn envelope(&mut self, item: &Item, path: &str, at: At) -> Option<Located<Envelope>> {
        let t = self.table(item, path, at)?;
        let allowed: Vec<&str> =
            ENVELOPE_KEYS.iter().chain(ENVELOPE_OPTIONAL_KEYS).copied().collect();
        self.unknown_keys(t, &allowed, path, at);
        let mut values = [0_u64; 4];
        let mut ok = true;
        for (i, key) in ENVELOPE_KEYS.iter().enumerate() {
            let field = join(path, key);
            match t.get(key) {
                None => {
                    self.problem(
                        at,
                        &field,
                        "is missing".into(),
                        format!("an envelope has {}", ENVELOPE_KEYS.join(", ")),
                    );
                    ok = false;
                }
                Some(v) => match self.count(v, &field, at, true) {
                    Some(n) => values[i] = n,
                    None => ok = false,
                },
            }
        }
        let error_rate_max = match t.get("error_rate_max") {
            None => Some(ERROR_RATE_MAX_DEFAULT),
            Some(v) => self.error_rate(v, &join(path, "error_rate_max"), at),
        };
        let [throughput_rps, p99_latency_ms, connections, queue_depth] = values;
        let error_rate_max = error_rate_max?;
        ok.then_some(Located {
            value: Envelope {
                throughput_rps,
                p99_latency_ms,
                connections,
                queue_depth,
                error_rate_max,
            },
            at,
        })
    }

    /// An error rate: a fraction from 0 to 1, a decimal string (`"0.01"`) or a float as
    /// written (`0.01`; its shortest decimal form is taken), at most
    /// [`ERROR_RATE_DECIMALS_MAX`] decimals.
    fn error_rate(&mut self, item: &Item, field: &str, at: At) -> Option<Decimal> {
        let at = self.item_at(item, at);
        let parsed = if let Some(s) = item.as_str() {
            Decimal::from_str_exact(s).map_err(|_| format!("`{s}` is not a decimal number"))
        } else if let Some(f) = item.as_float() {
            Decimal::from_str_exact(&f.to_string())
                .map_err(|_| format!("{f} is not a decimal fraction"))
        } else if let Some(i) = item.as_integer() {
            Ok(Decimal::from(i))
        } else {
            Err(format!("is {}", describe(item)))
        };
        let hint = "a fraction from 0 to 1: error_rate_max = \"0.01\" is 1 %";
        match parsed {
            Ok(d) if (d.is_sign_negative() && !d.is_zero()) || d > Decimal::ONE => {
                self.problem(at, field, format!("is {d}, not between 0 and 1"), hint.into());
                None
            }
            Ok(d) if d.normalize().scale() > ERROR_RATE_DECIMALS_MAX => {
                self.problem(
                    at,
                    field,
                    format!("{d} has more than {ERROR_RATE_DECIMALS_MAX} decimals"),
                    format!("round it to {ERROR_RATE_DECIMALS_MAX} decimals (0.01 %)"),
                );
                None
            }
            Ok(d) => Some(d.normalize()),
            Err(message) => {
                self.problem(at, field, message, hint.into());
                None
            }
        }
    }

    fn upgrades(&mut self, item: &Item, path: &str, at: At) -> Vec<UpgradeSrc> {
        let tables: Vec<(&dyn TableLike, At)> = if let Some(aot) = item.as_array_of_tables() {
            aot.iter()
                .map(|t| (t as &dyn TableLike, t.span().map_or(at, |s| self.at(Some(s)))))
                .collect()
        } else if let Some(array) = item.as_array() {
            let mut v = Vec::new();
            for (i, value) in array.iter().enumerate() {
                let vat = value.span().map_or(at, |s| self.at(Some(s)));
                match value.as_inline_table() {
                    Some(t) => v.push((t as &dyn TableLike, vat)),
                    None => self.problem(
                        vat,
                        &format!("{path}[{i}]"),
                        "is not a table".into(),
                        "write `{ to = \"pro\", cooldown = \"30d\" }`".into(),
                    ),
                }
            }
            v
        } else {
            let at = self.item_at(item, at);
            self.problem(
                at,
                path,
                format!("is {}", describe(item)),
                "write `[[plans.<id>.upgrades]]` tables, or an array of inline tables".into(),
            );
            return Vec::new();
        };
        if tables.len() > ENTRIES_MAX {
            self.problem(
                at,
                path,
                format!("has {} entries", tables.len()),
                format!("at most {ENTRIES_MAX}"),
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for (index, (t, tat)) in tables.into_iter().enumerate() {
            let field = format!("{path}[{index}]");
            self.unknown_keys(t, UPGRADE_KEYS, &field, tat);
            let to_field = join(&field, "to");
            let to = match self.required(t, "to", &to_field, tat, "add `to = \"<plan id>\"`") {
                None => None,
                Some(v) => {
                    let vat = self.item_at(v, tat);
                    match v.as_str() {
                        Some(s) => self.id(PlanId::new, s, vat, &join(&field, "to"), "plan"),
                        None => {
                            self.problem(
                                vat,
                                &join(&field, "to"),
                                format!("is {}", describe(v)),
                                "write a plan id in quotes".into(),
                            );
                            None
                        }
                    }
                }
            };
            let cooldown = match t.get("cooldown") {
                None => Some(Duration::ZERO),
                Some(v) => {
                    self.duration(v, &join(&field, "cooldown"), tat, Duration::ZERO, COOLDOWN_MAX)
                }
            };
            let refusal = self.refusal_ref(Some(t), &field, tat, DEFAULT_UPGRADE_REFUSAL);
            if let Some(to) = to {
                out.push(UpgradeSrc { index, at: tat, to, cooldown, refusal });
            }
        }
        out
    }
}

/// A duration as a catalog writes it: `366d` when whole days, else humantime's (`1s`).
fn show_duration(d: Duration) -> String {
    if d.as_secs().is_multiple_of(86_400) && d.subsec_nanos() == 0 && !d.is_zero() {
        format!("{}d", d.as_secs() / 86_400)
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// `path.key`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// Parses `text` as TOML and checks its schema; `None` when it is not TOML at all.
pub(crate) fn parse(cx: &mut Cx<'_>) -> Option<FileSrc> {
    match toml_edit::Document::parse(cx.text) {
        Ok(doc) => Some(cx.file(doc.as_table())),
        Err(e) => {
            let at = cx.at(e.span());
            cx.problem(
                at,
                "",
                format!("not valid TOML: {}", e.message().trim_end()),
                "fix the syntax; see docs/plans.md for the format".into(),
            );
            None
        }
    }
}

/// An amount of money as written: a decimal string (exact) or an integer; a float is refused
/// (money is never a float), anything else too. The message says what was found.
fn money_value(item: &Item) -> Result<Decimal, String> {
    if let Some(s) = item.as_str() {
        Decimal::from_str_exact(s).map_err(|_| format!("`{s}` is not a decimal number"))
    } else if let Some(i) = item.as_integer() {
        Ok(Decimal::from(i))
    } else if item.as_float().is_some() {
        Err(format!("is {}: money is never a float", describe(item)))
    } else {
        Err(format!("is {}", describe(item)))
    }
}
