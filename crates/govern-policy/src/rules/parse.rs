//! The rule file (TOML, docs/policy.md) to a compiled [`RuleSet`], with every error at its
//! line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use toml_edit::{Document, Item, Key, TableLike, Value as TomlValue};

use super::{
    ATTRIBUTES_MAX, CONDITION_DEPTH_MAX, CmpOp, Cond, Effect, Field, LIST_MAX, RULES_MAX,
    RULES_SOURCE_BYTES_MAX, Rule, RuleSet, TEXT_BYTES_MAX, Value,
};

/// A rule file's problem, at a 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct RuleError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What is wrong.
    pub kind: RuleErrorKind,
}

/// What is wrong in a rule file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleErrorKind {
    /// Not TOML; the parser's message.
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// A required key is absent.
    #[error("missing key `{0}`")]
    MissingKey(&'static str),
    /// A key this place does not know.
    #[error("unknown key `{0}`")]
    UnknownKey(String),
    /// A key holds the wrong type.
    #[error("`{key}` must be {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field path that does not exist.
    #[error(
        "unknown field `{0}` (tenant.id, tenant.state, tenant.plan, tenant.attributes.NAME, request.feature, request.action, request.quantity)"
    )]
    UnknownField(String),
    /// An operator that does not exist.
    #[error("unknown operator `{0}` (eq, ne, lt, le, gt, ge, in, not_in, exists, starts_with)")]
    UnknownOperator(String),
    /// An effect other than allow or deny.
    #[error("unknown effect `{0}` (allow, deny)")]
    UnknownEffect(String),
    /// Two rules with one id.
    #[error("duplicate rule id `{0}`")]
    DuplicateId(String),
    /// A condition table must hold exactly one of `field`, `all`, `any`, `not`.
    #[error("a condition holds exactly one of `field`, `all`, `any`, `not`")]
    ConditionShape,
    /// `exists` takes no value; every other operator takes one.
    #[error("operator `{op}` {expected}")]
    Operand {
        /// The operator.
        op: &'static str,
        /// What it takes.
        expected: &'static str,
    },
    /// An empty `all` / `any` or `in` list.
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    /// A value of a type rules do not compare (float, date, table).
    #[error("unsupported value: {0} (strings, integers and booleans only)")]
    UnsupportedValue(&'static str),
    /// Past one of the named limits.
    #[error("{what} exceeds {max}")]
    Limit {
        /// What.
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

/// Position 0 when the source has no span to give (the document's start).
type Span = Option<Range<usize>>;

struct Parser<'s> {
    source: &'s str,
    attributes: BTreeMap<String, u16>,
}

pub(super) fn parse(source: &str) -> Result<RuleSet, RuleError> {
    let mut parser = Parser { source, attributes: BTreeMap::new() };
    if source.len() > RULES_SOURCE_BYTES_MAX {
        return Err(parser.error(
            None,
            RuleErrorKind::Limit {
                what: "the rule file's size in bytes",
                max: RULES_SOURCE_BYTES_MAX,
            },
        ));
    }
    let document = Document::parse(source).map_err(|error| {
        parser.error(error.span(), RuleErrorKind::Syntax(error.message().trim_end().to_owned()))
    })?;
    parser.document(document.as_table())
}

impl Parser<'_> {
    fn error(&self, span: Span, kind: RuleErrorKind) -> RuleError {
        let offset = span.map_or(0, |span| span.start).min(self.source.len());
        let before = self.source.get(..offset).unwrap_or("");
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        RuleError {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            kind,
        }
    }

    /// Refuses any key of `table` not in `known`.
    fn known_keys(&self, table: &dyn TableLike, known: &[&str]) -> Result<(), RuleError> {
        for (name, _) in table.iter() {
            if !known.contains(&name) {
                let span = table.get_key_value(name).and_then(|(key, _)| key.span());
                return Err(self.error(span, RuleErrorKind::UnknownKey(name.to_owned())));
            }
        }
        Ok(())
    }

    /// The key's item and the span to blame for it (the key, else `fallback`).
    fn get<'t>(
        &self,
        table: &'t dyn TableLike,
        key: &'static str,
        fallback: &Span,
    ) -> Option<(&'t Key, &'t Item, Span)> {
        let (k, item) = table.get_key_value(key)?;
        let span = item.span().or_else(|| k.span()).or_else(|| fallback.clone());
        Some((k, item, span))
    }

    fn require<'t>(
        &self,
        table: &'t dyn TableLike,
        key: &'static str,
        at: &Span,
    ) -> Result<(&'t Item, Span), RuleError> {
        self.get(table, key, at)
            .map(|(_, item, span)| (item, span))
            .ok_or_else(|| self.error(at.clone(), RuleErrorKind::MissingKey(key)))
    }

    fn string<'t>(
        &self,
        item: &'t Item,
        key: &'static str,
        span: &Span,
    ) -> Result<&'t str, RuleError> {
        let text = item.as_str().ok_or_else(|| {
            self.error(span.clone(), RuleErrorKind::WrongType { key, expected: "a string" })
        })?;
        self.text_limit(text, span)?;
        Ok(text)
    }

    fn text_limit(&self, text: &str, span: &Span) -> Result<(), RuleError> {
        if text.len() > TEXT_BYTES_MAX {
            return Err(self.error(
                span.clone(),
                RuleErrorKind::Limit { what: "a string's length in bytes", max: TEXT_BYTES_MAX },
            ));
        }
        Ok(())
    }

    fn document(&mut self, root: &dyn TableLike) -> Result<RuleSet, RuleError> {
        self.known_keys(root, &["version", "rule"])?;
        let (item, span) = self.require(root, "version", &None)?;
        let version = item.as_integer().and_then(|v| u64::try_from(v).ok()).ok_or_else(|| {
            self.error(
                span,
                RuleErrorKind::WrongType { key: "version", expected: "a non-negative integer" },
            )
        })?;
        let mut rules = Vec::new();
        let mut ids = BTreeSet::new();
        if let Some((_, item, span)) = self.get(root, "rule", &None) {
            let tables = item.as_array_of_tables().ok_or_else(|| {
                self.error(
                    span.clone(),
                    RuleErrorKind::WrongType {
                        key: "rule",
                        expected: "an array of tables (`[[rule]]`)",
                    },
                )
            })?;
            for table in tables {
                let at = table.span().or_else(|| span.clone());
                if rules.len() == RULES_MAX {
                    return Err(self.error(
                        at,
                        RuleErrorKind::Limit { what: "the number of rules", max: RULES_MAX },
                    ));
                }
                let rule = self.rule(table, &at)?;
                if !ids.insert(rule.id.clone()) {
                    let id_span = self.get(table, "id", &at).and_then(|(_, _, s)| s);
                    return Err(
                        self.error(id_span, RuleErrorKind::DuplicateId(rule.id.to_string()))
                    );
                }
                rules.push(rule);
            }
        }
        let mut attributes: Vec<(u16, Box<str>)> = std::mem::take(&mut self.attributes)
            .into_iter()
            .map(|(name, index)| (index, name.into_boxed_str()))
            .collect();
        attributes.sort_unstable();
        let attributes = attributes.into_iter().map(|(_, name)| name).collect();
        Ok(RuleSet::from_rules(version, rules, attributes))
    }

    fn rule(&mut self, table: &dyn TableLike, at: &Span) -> Result<Rule, RuleError> {
        self.known_keys(table, &["id", "effect", "description", "when"])?;
        let (item, span) = self.require(table, "id", at)?;
        let id = self.string(item, "id", &span)?;
        if id.is_empty() {
            return Err(self.error(span, RuleErrorKind::Empty("id")));
        }
        let (item, span) = self.require(table, "effect", at)?;
        let effect = match self.string(item, "effect", &span)? {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny,
            other => return Err(self.error(span, RuleErrorKind::UnknownEffect(other.to_owned()))),
        };
        if let Some((_, item, span)) = self.get(table, "description", at) {
            self.string(item, "description", &span)?;
        }
        let cond = match self.get(table, "when", at) {
            Some((_, item, span)) => self.condition(item, &span, 1)?,
            None => Cond::True,
        };
        Ok(Rule { id: Arc::from(id), effect, cond })
    }

    fn condition(&mut self, item: &Item, at: &Span, depth: usize) -> Result<Cond, RuleError> {
        if depth > CONDITION_DEPTH_MAX {
            return Err(self.error(
                at.clone(),
                RuleErrorKind::Limit {
                    what: "the nesting of conditions",
                    max: CONDITION_DEPTH_MAX,
                },
            ));
        }
        let table = item.as_table_like().ok_or_else(|| {
            self.error(
                at.clone(),
                RuleErrorKind::WrongType { key: "when", expected: "a table (a condition)" },
            )
        })?;
        let shapes =
            ["field", "all", "any", "not"].iter().filter(|key| table.contains_key(key)).count();
        if shapes != 1 {
            return Err(self.error(at.clone(), RuleErrorKind::ConditionShape));
        }
        if let Some((_, item, span)) = self.get(table, "not", at) {
            self.known_keys(table, &["not"])?;
            return Ok(Cond::Not(Box::new(self.condition(item, &span, depth + 1)?)));
        }
        for (key, any) in [("all", false), ("any", true)] {
            if let Some((_, item, span)) = self.get(table, key, at) {
                self.known_keys(table, &[key])?;
                let children = self.condition_list(item, key, &span, depth)?;
                return Ok(if any {
                    Cond::Any(children.into_boxed_slice())
                } else {
                    Cond::All(children.into_boxed_slice())
                });
            }
        }
        self.test(table, at)
    }

    fn condition_list(
        &mut self,
        item: &Item,
        key: &'static str,
        at: &Span,
        depth: usize,
    ) -> Result<Vec<Cond>, RuleError> {
        let wrong = || {
            self.error(
                at.clone(),
                RuleErrorKind::WrongType { key, expected: "an array of conditions" },
            )
        };
        // `all = [{..}, {..}]` (inline) or `[[rule.when.all]]` (an array of tables).
        let items: Vec<(Item, Span)> = if let Some(array) = item.as_array() {
            array.iter().map(|value| (Item::Value(value.clone()), value.span())).collect()
        } else if let Some(tables) = item.as_array_of_tables() {
            tables.iter().map(|table| (Item::Table(table.clone()), table.span())).collect()
        } else {
            return Err(wrong());
        };
        if items.is_empty() {
            return Err(self.error(at.clone(), RuleErrorKind::Empty(key)));
        }
        if items.len() > LIST_MAX {
            return Err(self.error(
                at.clone(),
                RuleErrorKind::Limit { what: "the length of a list", max: LIST_MAX },
            ));
        }
        items
            .iter()
            .map(|(child, span)| {
                let span = span.clone().or_else(|| at.clone());
                self.condition(child, &span, depth + 1)
            })
            .collect()
    }

    /// `{ field = "...", op = "...", value = ... }`.
    fn test(&mut self, table: &dyn TableLike, at: &Span) -> Result<Cond, RuleError> {
        self.known_keys(table, &["field", "op", "value"])?;
        let (item, span) = self.require(table, "field", at)?;
        let path = self.string(item, "field", &span)?;
        let field = self.field(path, &span)?;
        let (item, op_span) = self.require(table, "op", at)?;
        let op = self.string(item, "op", &op_span)?;
        let value = self.get(table, "value", at);
        let operand = |expected| RuleErrorKind::Operand { op: op_name(op), expected };
        match op {
            "exists" => match value {
                Some((_, _, span)) => Err(self.error(span, operand("takes no `value`"))),
                None => Ok(Cond::Exists(field)),
            },
            "in" | "not_in" => {
                let (_, item, span) = value
                    .ok_or_else(|| self.error(at.clone(), RuleErrorKind::MissingKey("value")))?;
                let array = item
                    .as_array()
                    .ok_or_else(|| self.error(span.clone(), operand("takes a list `value`")))?;
                if array.is_empty() {
                    return Err(self.error(span, RuleErrorKind::Empty("value")));
                }
                if array.len() > LIST_MAX {
                    return Err(self.error(
                        span,
                        RuleErrorKind::Limit { what: "the length of a list", max: LIST_MAX },
                    ));
                }
                let mut set = array
                    .iter()
                    .map(|value| {
                        let span = value.span().or_else(|| span.clone());
                        self.scalar(value, &span)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                set.sort_unstable();
                set.dedup();
                Ok(Cond::In { field, set: set.into_boxed_slice(), negate: op == "not_in" })
            }
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "starts_with" => {
                let (_, item, span) = value
                    .ok_or_else(|| self.error(at.clone(), RuleErrorKind::MissingKey("value")))?;
                let value = item
                    .as_value()
                    .filter(|value| !value.is_array())
                    .ok_or_else(|| self.error(span.clone(), operand("takes one `value`")))?;
                let value = self.scalar(value, &span)?;
                if op == "starts_with" {
                    return match value {
                        Value::Str(prefix) => {
                            Ok(Cond::StartsWith { field, prefix: prefix.into_boxed_str() })
                        }
                        Value::Int(_) | Value::Bool(_) => {
                            Err(self.error(span, operand("takes a string `value`")))
                        }
                    };
                }
                let op = match op {
                    "eq" => CmpOp::Eq,
                    "ne" => CmpOp::Ne,
                    "lt" => CmpOp::Lt,
                    "le" => CmpOp::Le,
                    "gt" => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                Ok(Cond::Cmp { field, op, value })
            }
            other => Err(self.error(op_span, RuleErrorKind::UnknownOperator(other.to_owned()))),
        }
    }

    fn scalar(&self, value: &TomlValue, span: &Span) -> Result<Value, RuleError> {
        let unsupported = |what| self.error(span.clone(), RuleErrorKind::UnsupportedValue(what));
        match value {
            TomlValue::String(s) => {
                self.text_limit(s.value(), span)?;
                Ok(Value::Str(s.value().clone()))
            }
            TomlValue::Integer(i) => Ok(Value::Int(*i.value())),
            TomlValue::Boolean(b) => Ok(Value::Bool(*b.value())),
            TomlValue::Float(_) => Err(unsupported("a float")),
            TomlValue::Datetime(_) => Err(unsupported("a date-time")),
            TomlValue::Array(_) => Err(unsupported("a list")),
            TomlValue::InlineTable(_) => Err(unsupported("a table")),
        }
    }

    fn field(&mut self, path: &str, span: &Span) -> Result<Field, RuleError> {
        Ok(match path {
            "tenant.id" => Field::TenantId,
            "tenant.state" => Field::TenantState,
            "tenant.plan" => Field::TenantPlan,
            "request.feature" => Field::RequestFeature,
            "request.action" => Field::RequestAction,
            "request.quantity" => Field::RequestQuantity,
            other => {
                let Some(name) =
                    other.strip_prefix("tenant.attributes.").filter(|name| !name.is_empty())
                else {
                    return Err(
                        self.error(span.clone(), RuleErrorKind::UnknownField(other.to_owned()))
                    );
                };
                if let Some(&index) = self.attributes.get(name) {
                    return Ok(Field::Attribute(index));
                }
                let index = self.attributes.len();
                let index = u16::try_from(index)
                    .ok()
                    .filter(|_| index < ATTRIBUTES_MAX)
                    .ok_or_else(|| {
                        self.error(
                            span.clone(),
                            RuleErrorKind::Limit {
                                what: "the number of distinct attributes",
                                max: ATTRIBUTES_MAX,
                            },
                        )
                    })?;
                self.attributes.insert(name.to_owned(), index);
                Field::Attribute(index)
            }
        })
    }
}

/// The operator's name as a static string, for errors (`?` for one that does not exist).
fn op_name(op: &str) -> &'static str {
    const OPS: [&str; 10] =
        ["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists", "starts_with"];
    OPS.iter().find(|known| **known == op).copied().unwrap_or("?")
}
