//! Declarative policy rules: parsed from TOML (docs/policy.md), compiled once into a form that
//! evaluates fast (field paths resolved to an enum and attribute indices, `in` lists sorted for
//! a binary search, rules indexed by the feature they name).
//!
//! Semantics: every rule whose condition holds *matches*; a matching `deny` overrides any
//! `allow` (the first matching deny, in file order, is named); otherwise the first matching
//! `allow` is named; no match: the rules say nothing. A test on a field that is absent (an
//! attribute the tenant does not have) is false, whatever the operator; a comparison between
//! different types (a string with an integer) is false.

mod eval;
mod parse;

use std::sync::Arc;

use foldhash::fast::FixedState;

pub use parse::{RuleError, RuleErrorKind};

/// Largest rule file accepted, in bytes.
pub const RULES_SOURCE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most rules in one rule set.
pub const RULES_MAX: usize = 10_000;
/// Deepest nesting of `all` / `any` / `not` in one rule.
pub const CONDITION_DEPTH_MAX: usize = 16;
/// Most values in one `in` / `not_in` list, and most conditions in one `all` / `any`.
pub const LIST_MAX: usize = 4_096;
/// Most distinct `tenant.attributes.NAME` a rule set reads.
pub const ATTRIBUTES_MAX: usize = 256;
/// Longest rule id, attribute name or string value, in bytes.
pub const TEXT_BYTES_MAX: usize = 1_024;

/// Rules by feature: looked up on every decision, never iterated into an answer.
#[allow(clippy::disallowed_types, reason = "lookup only; never iterated into output")]
type FeatureIndex<V> = std::collections::HashMap<Box<str>, V, FixedState>;

/// A value a rule compares with, and a tenant attribute's value.
///
/// The derived order (strings, then integers, then booleans) sorts `in` lists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The rule allows what it matches (unless a matching deny overrides it).
    Allow,
    /// The rule denies what it matches.
    Deny,
}

/// A field path, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    TenantId,
    TenantState,
    TenantPlan,
    /// Index into [`RuleSet::attributes`].
    Attribute(u16),
    RequestFeature,
    RequestAction,
    RequestQuantity,
}

/// A comparison operator (`in`, `not_in`, `exists` and `starts_with` have their own nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub(crate) enum Cond {
    /// No `when`: always holds.
    True,
    Cmp {
        field: Field,
        op: CmpOp,
        value: Value,
    },
    StartsWith {
        field: Field,
        prefix: Box<str>,
    },
    /// `in` (or `not_in` when `negate`); `set` is sorted and deduplicated.
    In {
        field: Field,
        set: Box<[Value]>,
        negate: bool,
    },
    Exists(Field),
    All(Box<[Cond]>),
    Any(Box<[Cond]>),
    Not(Box<Cond>),
}

/// One compiled rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) id: Arc<str>,
    pub(crate) effect: Effect,
    pub(crate) cond: Cond,
}

/// A versioned, compiled rule set.
#[derive(Clone, Debug)]
pub struct RuleSet {
    /// The version the file declares; named in `decided_by`.
    version: u64,
    /// In file order.
    rules: Vec<Rule>,
    /// The attribute names `Field::Attribute` indexes.
    attributes: Vec<Box<str>>,
    /// For a feature some rule names (`request.feature eq F` or `in [..F..]` at the top of
    /// its condition): the indices of the rules that can match it, in file order.
    by_feature: FeatureIndex<Box<[u32]>>,
    /// The indices of the rules that do not name a feature, for any other feature.
    generic: Box<[u32]>,
    /// The quantities at which some rule's answer can change (every `c` and `c + 1` that
    /// `request.quantity` is compared with), sorted: the decision cache's buckets.
    quantity_boundaries: Vec<u64>,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::empty()
    }
}

impl RuleSet {
    /// A rule set with no rules (version 0).
    #[must_use]
    pub fn empty() -> Self {
        Self {
            version: 0,
            rules: Vec::new(),
            attributes: Vec::new(),
            by_feature: FeatureIndex::default(),
            generic: Box::new([]),
            quantity_boundaries: Vec::new(),
        }
    }

    /// Parses and compiles a rule file (docs/policy.md).
    ///
    /// # Errors
    ///
    /// The first problem, at its line and column: TOML syntax, a missing or unknown key, a
    /// wrong type, an unknown field path, operator or effect, a duplicate rule id, a limit.
    pub fn parse(source: &str) -> Result<Self, RuleError> {
        parse::parse(source)
    }

    /// The version the rule file declares.
    #[must_use]
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// How many rules.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule ids, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| &*rule.id)
    }

    /// The quantities at which the rules' answer can change, sorted.
    #[must_use]
    pub fn quantity_boundaries(&self) -> &[u64] {
        &self.quantity_boundaries
    }

    /// The rules that can match `feature`, in file order.
    fn candidates(&self, feature: &str) -> &[u32] {
        self.by_feature.get(feature).unwrap_or(&self.generic)
    }

    /// Builds the indices from the rules (called once, by the parser).
    fn from_rules(version: u64, rules: Vec<Rule>, attributes: Vec<Box<str>>) -> Self {
        let mut by_feature: FeatureIndex<Vec<u32>> = FeatureIndex::default();
        let mut generic = Vec::new();
        let mut boundaries = Vec::new();
        for (index, rule) in (0u32..).zip(&rules) {
            collect_boundaries(&rule.cond, &mut boundaries);
            match named_features(&rule.cond) {
                Some(features) => {
                    for feature in features {
                        by_feature.entry(feature.into()).or_default().push(index);
                    }
                }
                None => generic.push(index),
            }
        }
        // Every feature's list also holds the generic rules, merged in file order.
        let by_feature = by_feature
            .into_iter()
            .map(|(feature, mut list)| {
                list.extend_from_slice(&generic);
                list.sort_unstable();
                list.dedup();
                (feature, list.into_boxed_slice())
            })
            .collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        Self {
            version,
            rules,
            attributes,
            by_feature,
            generic: generic.into_boxed_slice(),
            quantity_boundaries: boundaries,
        }
    }
}

/// The features a condition requires `request.feature` to be, if it requires any at its top
/// (itself, or a direct child of a top `all`).
fn named_features(cond: &Cond) -> Option<Vec<&str>> {
    fn direct(cond: &Cond) -> Option<Vec<&str>> {
        match cond {
            Cond::Cmp {
                field: Field::RequestFeature,
                op: CmpOp::Eq,
                value: Value::Str(feature),
            } => Some(vec![feature.as_str()]),
            Cond::In { field: Field::RequestFeature, set, negate: false } => Some(
                set.iter()
                    .filter_map(|value| match value {
                        Value::Str(feature) => Some(feature.as_str()),
                        Value::Int(_) | Value::Bool(_) => None,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
    match cond {
        Cond::All(children) => children.iter().find_map(direct),
        other => direct(other),
    }
}

/// Pushes every `c` and `c + 1` that `request.quantity` is compared with.
fn collect_boundaries(cond: &Cond, out: &mut Vec<u64>) {
    let mut push = |value: &Value| {
        if let Value::Int(c) = value
            && let Ok(c) = u64::try_from(*c)
        {
            out.push(c);
            out.push(c.saturating_add(1));
        }
    };
    match cond {
        Cond::Cmp { field: Field::RequestQuantity, value, .. } => push(value),
        Cond::In { field: Field::RequestQuantity, set, .. } => set.iter().for_each(push),
        Cond::All(children) | Cond::Any(children) => {
            for child in children {
                collect_boundaries(child, out);
            }
        }
        Cond::Not(child) => collect_boundaries(child, out),
        Cond::True
        | Cond::Cmp { .. }
        | Cond::StartsWith { .. }
        | Cond::In { .. }
        | Cond::Exists(_) => {}
    }
}
