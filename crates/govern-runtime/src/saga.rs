//! Saga definitions as data: ordered steps across governors, each a command by governor
//! kind, resource and name with templated arguments, and an optional compensating command.
//! A host writes one in TOML (`sagas/onboarding.toml` is the shipped example) and registers
//! it (`RuntimeBuilder::saga`); `RuntimeHandle::run_saga` runs it (`coordinator.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::GovernorKind;
use govern_governors::saga::SAGA_STEPS_MAX;
use toml_edit::{DocumentMut, Item, TableLike};

/// The sagas the runtime ships, by name: tenant onboarding.
pub(crate) const SHIPPED: [(&str, &str); 1] =
    [("sagas/onboarding.toml", include_str!("../../../sagas/onboarding.toml"))];

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
    pub action: StepCommand,
    /// What undoes it.
    pub compensation: Option<StepCommand>,
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
    /// with `name`, `governor`, `resource`, `command`, `args`, an optional `timeout`, and
    /// `compensate`, whose governor and resource default to the step's).
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
            let action = command(t, file, &field, None)?;
            let compensation = match t.get("compensate") {
                None => None,
                Some(c) => {
                    let c = c
                        .as_table_like()
                        .ok_or_else(|| err(file, &format!("{field}.compensate"), "a table"))?;
                    Some(command(c, file, &format!("{field}.compensate"), Some(&action))?)
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
    /// a step names must have a value.
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
        for step in &self.steps {
            for c in std::iter::once(&step.action).chain(&step.compensation) {
                for t in std::iter::once(&c.resource).chain(c.args.values()) {
                    render(t, &p)?;
                }
            }
        }
        Ok(p)
    }
}

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
        let c = defs[0].steps[0].compensation.as_ref().unwrap();
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
