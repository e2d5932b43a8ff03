//! Saga definitions as data: ordered steps across governors, each a command by governor
//! kind, resource and name with templated arguments, or one of the runtime's own operations
//! ([`Operation`]: plan changes through their gates, the billing run's invoice, payment,
//! notification and finalization), and an optional compensating command or operation.
//! A host writes one in TOML (`sagas/*.toml` are the shipped ones) and registers it
//! (`RuntimeBuilder::saga`); `RuntimeHandle::run_saga` runs it (`coordinator.rs`, the
//! operations in `saga_ops.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::GovernorKind;
use govern_governors::saga::SAGA_STEPS_MAX;
use toml_edit::{DocumentMut, Item, TableLike};

/// The sagas the runtime ships, by name: tenant onboarding, plan upgrade, billing run.
pub(crate) const SHIPPED: [(&str, &str); 3] = [
    ("sagas/onboarding.toml", include_str!("../../../sagas/onboarding.toml")),
    ("sagas/plan-upgrade.toml", include_str!("../../../sagas/plan-upgrade.toml")),
    ("sagas/billing-run.toml", include_str!("../../../sagas/billing-run.toml")),
];

/// The runtime's own operations a saga step may run instead of a governor command: each
/// reads and decides through the same paths as the handle's methods, and each is idempotent
/// by its receipts and the step's idempotency key, so a run resumed after a crash never does
/// one twice (`docs/runtime-semantics.md`, "Sagas").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `plan_change_gates { to, subscription? }`: the plan change's dry run
    /// (`simulate_plan_change`: path, cooldown, the five gates, the downgrade preflight);
    /// fails the step with every reason when it refuses. Writes nothing. The run itself
    /// and the billing resources its own steps name are not held against it.
    PlanChangeGates,
    /// `change_plan { to, subscription? }`: applies the plan change (`apply_plan_change`,
    /// which judges it again at that moment), receipted with the step's key.
    ChangePlan,
    /// `rollback_plan { subscription? }`: restores the plan the last `change_plan` left
    /// (the subscription's `rollback_plan`, within its window).
    RollbackPlan,
    /// `close_invoice { period }`: records the tenant's invoice for the month (`YYYY-MM`,
    /// ended) on its audit trail, unless recorded already (`close_period`'s first half).
    CloseInvoice,
    /// `request_invoice_payment { period, method? }`: asks the billing governor's
    /// `invoice-YYYY-MM` for the recorded invoice's total (nothing for a zero total;
    /// nothing when asked already).
    RequestInvoicePayment,
    /// `cancel_invoice_payment { period }`: fails a payment the run requested that is still
    /// pending or authorized (`fail_payment`, code `billing_run_abandoned`); nothing when
    /// there is none or it has moved on.
    CancelInvoicePayment,
    /// `notify_invoice { period }`: waits until the invoice's `invoice.closed` event is
    /// delivered to every endpoint of the tenant that takes it (done at once with none); fails
    /// when one gave it up or dropped it, or when the step's time limit (default
    /// `limits::SAGA_NOTIFY_WAIT`) passes first.
    NotifyInvoice,
    /// `finalize_invoice { period }`: records on the audit trail that the month's invoice is
    /// final (`finalize_invoice`), unless it is already.
    FinalizeInvoice,
}

impl Operation {
    /// Every operation, by name.
    pub const ALL: [(&'static str, Self); 8] = [
        ("plan_change_gates", Self::PlanChangeGates),
        ("change_plan", Self::ChangePlan),
        ("rollback_plan", Self::RollbackPlan),
        ("close_invoice", Self::CloseInvoice),
        ("request_invoice_payment", Self::RequestInvoicePayment),
        ("cancel_invoice_payment", Self::CancelInvoicePayment),
        ("notify_invoice", Self::NotifyInvoice),
        ("finalize_invoice", Self::FinalizeInvoice),
    ];

    /// Its name in a definition.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, op)| *op == self).map_or("", |(name, _)| name)
    }

    /// The operation called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }

    /// Its arguments: required, then optional.
    #[must_use]
    pub fn arguments(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Self::PlanChangeGates | Self::ChangePlan => (&["to"], &["subscription"]),
            Self::RollbackPlan => (&[], &["subscription"]),
            Self::RequestInvoicePayment => (&["period"], &["method"]),
            Self::CloseInvoice
            | Self::CancelInvoicePayment
            | Self::NotifyInvoice
            | Self::FinalizeInvoice => (&["period"], &[]),
        }
    }
}

/// A runtime operation of a saga step, with argument templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOperation {
    /// Which operation.
    pub operation: Operation,
    /// Argument templates.
    pub args: BTreeMap<String, String>,
}

/// What a step (or its compensation) does: a governor command, or a runtime operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepAction {
    /// A command of a governor.
    Command(StepCommand),
    /// One of the runtime's operations.
    Operation(StepOperation),
}

impl StepAction {
    /// The templates it renders: a command's resource and arguments, an operation's
    /// arguments.
    fn templates(&self) -> impl Iterator<Item = &String> {
        let (resource, args) = match self {
            Self::Command(c) => (Some(&c.resource), &c.args),
            Self::Operation(o) => (None, &o.args),
        };
        resource.into_iter().chain(args.values())
    }
}

/// A command of a saga step, its resource and arguments written with `{param}` templates
/// (`{tenant}` is the tenant the saga runs for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepCommand {
    /// The governor kind.
    pub governor: GovernorKind,
    /// The resource id template.
    pub resource: String,
    /// The command's name.
    pub command: String,
    /// Argument templates.
    pub args: BTreeMap<String, String>,
}

/// One step: its action and what undoes it (none: nothing to undo, or a later step's
/// compensation does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaStep {
    /// For people and logs.
    pub name: String,
    /// What it does.
    pub action: StepAction,
    /// What undoes it.
    pub compensation: Option<StepAction>,
    /// The step's time limit: once it has passed since the step's first attempt, the step is
    /// not tried again and fails the run (checked before each attempt; an attempt under way
    /// is never abandoned, it is bounded by the runtime's reply timeout).
    pub timeout: Option<Duration>,
}

/// A saga definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaDef {
    /// Its name, recorded in each run's `begin`.
    pub name: String,
    /// The whole run's time limit: a step not begun within it fails the run.
    pub timeout: Option<Duration>,
    /// Parameters and their defaults (a parameter without a default is required).
    pub defaults: BTreeMap<String, String>,
    /// The steps, in order.
    pub steps: Vec<SagaStep>,
}

/// How a saga run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SagaEnd {
    /// Every step completed.
    Completed,
    /// Step `step` failed (`failure`) and the completed steps were undone.
    Compensated {
        /// The step that failed.
        step: u32,
        /// Why.
        failure: String,
    },
    /// A compensation kept failing: an operator must look.
    Stuck {
        /// Why.
        failure: String,
    },
}

/// A saga definition that does not parse: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct SagaDefError {
    /// The file (or name) it came from.
    pub file: String,
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn err(file: &str, field: &str, message: impl Into<String>) -> SagaDefError {
    SagaDefError { file: file.to_owned(), field: field.to_owned(), message: message.into() }
}

fn string(t: &dyn TableLike, file: &str, field: &str, key: &str) -> Result<String, SagaDefError> {
    t.get(key)
        .and_then(Item::as_str)
        .map(str::to_owned)
        .ok_or_else(|| err(file, &format!("{field}.{key}"), "a string is required"))
}

fn strings(
    item: Option<&Item>,
    file: &str,
    field: &str,
) -> Result<BTreeMap<String, String>, SagaDefError> {
    let mut out = BTreeMap::new();
    let Some(item) = item else { return Ok(out) };
    let t = item.as_table_like().ok_or_else(|| err(file, field, "a table of strings"))?;
    for (k, v) in t.iter() {
        let v = v.as_str().ok_or_else(|| err(file, &format!("{field}.{k}"), "a string"))?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// A step's or a compensation's action: `operation` with `args`, or a governor command
/// (`like`: the step's command, whose governor and resource a compensation defaults to).
fn action(
    t: &dyn TableLike,
    file: &str,
    field: &str,
    like: Option<&StepAction>,
) -> Result<StepAction, SagaDefError> {
    let Some(op) = t.get("operation") else {
        let like = match like {
            Some(StepAction::Command(c)) => Some(c),
            _ => None,
        };
        return command(t, file, field, like).map(StepAction::Command);
    };
    let name = op.as_str().ok_or_else(|| err(file, &format!("{field}.operation"), "a string"))?;
    let operation = Operation::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Operation::ALL.iter().map(|(n, _)| *n).collect();
        err(
            file,
            &format!("{field}.operation"),
            format!("no operation `{name}` (known: {})", known.join(", ")),
        )
    })?;
    for key in ["governor", "resource", "command"] {
        if t.contains_key(key) {
            return Err(err(
                file,
                &format!("{field}.{key}"),
                "an operation step names no governor, resource or command",
            ));
        }
    }
    let args = strings(t.get("args"), file, &format!("{field}.args"))?;
    let (required, optional) = operation.arguments();
    for r in required {
        if !args.contains_key(*r) {
            return Err(err(file, &format!("{field}.args.{r}"), format!("`{name}` needs it")));
        }
    }
    if let Some(k) =
        args.keys().find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(err(
            file,
            &format!("{field}.args.{k}"),
            format!("`{name}` takes no such argument"),
        ));
    }
    Ok(StepAction::Operation(StepOperation { operation, args }))
}

fn command(
    t: &dyn TableLike,
    file: &str,
    field: &str,
    like: Option<&StepCommand>,
) -> Result<StepCommand, SagaDefError> {
    let governor = match (t.get("governor").and_then(Item::as_str), like) {
        (Some(g), _) => GovernorKind::from_name(g)
            .ok_or_else(|| err(file, &format!("{field}.governor"), format!("no governor `{g}`")))?,
        (None, Some(l)) => l.governor,
        (None, None) => return Err(err(file, &format!("{field}.governor"), "required")),
    };
    let resource = match (t.get("resource").and_then(Item::as_str), like) {
        (Some(r), _) => r.to_owned(),
        (None, Some(l)) => l.resource.clone(),
        (None, None) => return Err(err(file, &format!("{field}.resource"), "required")),
    };
    Ok(StepCommand {
        governor,
        resource,
        command: string(t, file, field, "command")?,
        args: strings(t.get("args"), file, &format!("{field}.args"))?,
    })
}

/// An optional duration (`30s`, `5m`) at `key` (a dotted `field` names it in errors).
fn duration(t: &dyn TableLike, file: &str, field: &str) -> Result<Option<Duration>, SagaDefError> {
    let key = field.rsplit('.').next().unwrap_or(field);
    match t.get(key) {
        None => Ok(None),
        Some(item) => {
            let text = item.as_str().ok_or_else(|| err(file, field, "a duration like `30s`"))?;
            humantime::parse_duration(text)
                .map(Some)
                .map_err(|e| err(file, field, format!("`{text}`: {e}")))
        }
    }
}

impl SagaDef {
    /// Parses a definition from TOML (`name`, `timeout`, `[params]` defaults, `[[steps]]`
    /// with `name`, either `governor`, `resource`, `command` and `args` or `operation` and
    /// `args`, an optional `timeout`, and `compensate`, a command (whose governor and
    /// resource default to the step's) or an operation).
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn parse(text: &str, file: &str) -> Result<Self, SagaDefError> {
        let doc: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| err(file, "", e.message().to_owned()))?;
        let top = doc.as_table();
        let name = string(top, file, "", "name")?;
        let timeout = duration(top, file, "timeout")?;
        let defaults = strings(top.get("params"), file, "params")?;
        let steps_item = top
            .get("steps")
            .and_then(Item::as_array_of_tables)
            .ok_or_else(|| err(file, "steps", "at least one [[steps]]"))?;
        let mut steps = Vec::new();
        for (i, t) in steps_item.iter().enumerate() {
            let field = format!("steps[{i}]");
            let action = action(t, file, &field, None)?;
            let compensation = match t.get("compensate") {
                None => None,
                Some(c) => {
                    let c = c
                        .as_table_like()
                        .ok_or_else(|| err(file, &format!("{field}.compensate"), "a table"))?;
                    Some(self::action(c, file, &format!("{field}.compensate"), Some(&action))?)
                }
            };
            let timeout = duration(t, file, &format!("{field}.timeout"))?;
            let name = string(t, file, &field, "name")?;
            steps.push(SagaStep { name, action, compensation, timeout });
        }
        if steps.is_empty() || steps.len() > SAGA_STEPS_MAX as usize {
            return Err(err(file, "steps", format!("1 to {SAGA_STEPS_MAX} steps")));
        }
        Ok(Self { name, timeout, defaults, steps })
    }

    /// The shipped definitions.
    ///
    /// # Errors
    /// Never for the shipped files (a test parses them).
    pub fn shipped() -> Result<Vec<Self>, SagaDefError> {
        SHIPPED.iter().map(|(file, text)| Self::parse(text, file)).collect()
    }

    /// The parameters of a run: the defaults, then `given` (and `tenant`); every `{param}`
    /// a step names must have a value (`{run}`, the run's id, always has: the coordinator
    /// adds it when it renders, it is not recorded).
    ///
    /// # Errors
    /// A parameter without a value; a name that is empty or holds `=` or a line break, or a
    /// value with a line break (the run's `begin` records them as `KEY=VALUE` lines, which
    /// must read back as the same parameters).
    pub fn params(
        &self,
        tenant: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        for (k, v) in given {
            if k == RUN_PARAM || k == "tenant" {
                return Err(format!("parameter `{k}` is the run's own: it cannot be given"));
            }
            if k.is_empty() || k.contains(['=', '\n', '\r']) || v.contains(['\n', '\r']) {
                return Err(format!(
                    "parameter `{}`: names are without `=` or line breaks, values without line breaks",
                    k.escape_debug()
                ));
            }
        }
        let mut p = self.defaults.clone();
        p.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
        p.insert("tenant".into(), tenant.to_owned());
        let mut with_run = p.clone();
        with_run.insert(RUN_PARAM.into(), String::new());
        for step in &self.steps {
            for c in std::iter::once(&step.action).chain(&step.compensation) {
                for t in c.templates() {
                    render(t, &with_run)?;
                }
            }
        }
        Ok(p)
    }
}

/// The parameter holding the run's id (`{run}`), which every run has.
pub(crate) const RUN_PARAM: &str = "run";

/// `template` with every `{name}` replaced by its parameter.
///
/// # Errors
/// A parameter without a value, or an unclosed `{`.
pub(crate) fn render(template: &str, params: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| format!("`{template}`: an unclosed `{{`"))?;
        let name = &after[..close];
        let value = params.get(name).ok_or_else(|| format!("parameter `{name}` has no value"))?;
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parameters as a saga's `begin` records them: `KEY=VALUE` lines, sorted.
#[must_use]
pub(crate) fn encode_params(params: &BTreeMap<String, String>) -> String {
    params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

/// The parameters a `begin` recorded.
#[must_use]
pub(crate) fn decode_params(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Whether a saga run whose last receipt left it in `state` is unfinished (it is resumed at
/// start).
pub(crate) fn unfinished(state: &str) -> bool {
    use govern_governors::StateSpec;
    use govern_governors::saga::State;
    State::from_name(state).is_some_and(|s| matches!(s, State::Running | State::Compensating))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

    use super::*;

    #[test]
    fn the_shipped_sagas_parse_and_render() {
        let defs = SagaDef::shipped().unwrap();
        assert_eq!(defs[0].name, "onboarding");
        assert_eq!(defs[0].steps.len(), 7);
        let Some(StepAction::Command(c)) = defs[0].steps[0].compensation.as_ref() else {
            panic!("a command")
        };
        assert_eq!((c.governor, c.resource.as_str()), (GovernorKind::Tenant, "{tenant}"));
        let given: BTreeMap<String, String> =
            [("email", "a@b.example"), ("plan", "pro"), ("feature", "sso")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        let p = defs[0].params("acme", &given).unwrap();
        assert_eq!(render("grant-{feature}", &p).unwrap(), "grant-sso");
        let missing = defs[0].params("acme", &BTreeMap::new()).unwrap_err();
        assert!(missing.contains("has no value"), "{missing}");
        assert_eq!(decode_params(&encode_params(&p)), p);
    }

    #[test]
    fn the_shipped_upgrade_and_billing_run_use_operations_with_their_arguments() {
        let defs = SagaDef::shipped().unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["onboarding", "plan-upgrade", "billing-run"]);
        let upgrade = &defs[1];
        let StepAction::Operation(gates) = &upgrade.steps[0].action else { panic!("an operation") };
        assert_eq!(gates.operation, Operation::PlanChangeGates);
        let Some(StepAction::Operation(undo)) = &upgrade.steps[3].compensation else {
            panic!("an operation")
        };
        assert_eq!(undo.operation, Operation::RollbackPlan);
        // `{run}` is every run's own; it cannot be given.
        let given: BTreeMap<String, String> =
            [("to", "pro"), ("amount", "20"), ("transaction", "tx"), ("feature", "sso")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        assert!(upgrade.params("acme", &given).is_ok());
        let mut smuggled = given.clone();
        smuggled.insert("run".into(), "other".into());
        assert!(upgrade.params("acme", &smuggled).unwrap_err().contains("the run's own"));
        for (name, op) in Operation::ALL {
            assert_eq!((Operation::from_name(name), op.name()), (Some(op), name));
        }
    }

    #[test]
    fn a_bad_operation_step_names_its_field() {
        let step = |body: &str| format!("name = \"x\"\n[[steps]]\nname = \"a\"\n{body}\n");
        let cases = [
            ("operation = \"launch\"", "steps[0].operation", "no operation `launch`"),
            ("operation = \"change_plan\"", "steps[0].args.to", "`change_plan` needs it"),
            (
                "operation = \"close_invoice\"\nargs = { period = \"2026-01\", to = \"x\" }",
                "steps[0].args.to",
                "`close_invoice` takes no such argument",
            ),
            (
                "operation = \"close_invoice\"\ngovernor = \"audit\"\nargs = { period = \"p\" }",
                "steps[0].governor",
                "an operation step names no governor, resource or command",
            ),
        ];
        for (body, field, message) in cases {
            let e = SagaDef::parse(&step(body), "x.toml").unwrap_err();
            assert_eq!(e.field, field, "{body}");
            assert!(e.message.starts_with(message), "{body}: {}", e.message);
        }
    }

    #[test]
    fn a_bad_definition_names_its_field() {
        let e = SagaDef::parse(
            "name = \"x\"\n[[steps]]\nname = \"a\"\ngovernor = \"payroll\"\n",
            "x.toml",
        )
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("steps[0].governor", "no governor `payroll`")
        );
        let e = SagaDef::parse("name = \"x\"\n", "x.toml").unwrap_err();
        assert_eq!(e.field, "steps");
    }
}
