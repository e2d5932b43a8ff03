//! Evaluating a compiled rule set against a tenant and a request.

use std::cmp::Ordering;

use super::{CmpOp, Cond, Effect, Field, Rule, RuleSet, Value};
use crate::input::{Request, Tenant};

/// Most attributes resolved on the stack; a rule set reading more resolves them one by one.
const ATTRIBUTES_INLINE: usize = 16;

/// A field's value for one evaluation, borrowed.
#[derive(Clone, Copy, Debug)]
enum Fv<'a> {
    Str(&'a str),
    Int(i128),
    Bool(bool),
}

impl<'a> Fv<'a> {
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Str(s) => Self::Str(s),
            Value::Int(i) => Self::Int(i128::from(*i)),
            Value::Bool(b) => Self::Bool(*b),
        }
    }

    /// The order of `Value`'s derive (strings, integers, booleans), so a sorted list can be
    /// searched; `None` between different types.
    fn cmp_same_type(self, value: &Value) -> Option<Ordering> {
        match (self, value) {
            (Self::Str(a), Value::Str(b)) => Some(a.cmp(b.as_str())),
            (Self::Int(a), Value::Int(b)) => Some(a.cmp(&i128::from(*b))),
            (Self::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    const fn rank(self) -> u8 {
        match self {
            Self::Str(_) => 0,
            Self::Int(_) => 1,
            Self::Bool(_) => 2,
        }
    }

    /// The total order of `Value`'s derive.
    fn cmp_total(self, value: &Value) -> Ordering {
        self.cmp_same_type(value).unwrap_or_else(|| {
            let rank = match value {
                Value::Str(_) => 0,
                Value::Int(_) => 1,
                Value::Bool(_) => 2,
            };
            self.rank().cmp(&rank)
        })
    }
}

/// One evaluation's context: the tenant, its attributes resolved by index, the request.
struct Ctx<'a> {
    tenant: &'a Tenant,
    request: &'a Request<'a>,
    attributes: &'a [Box<str>],
    resolved: [Option<&'a Value>; ATTRIBUTES_INLINE],
}

impl<'a> Ctx<'a> {
    fn field(&self, field: Field) -> Option<Fv<'a>> {
        Some(match field {
            Field::TenantId => Fv::Str(&self.tenant.id),
            Field::TenantState => Fv::Str(self.tenant.state.name()),
            Field::TenantPlan => Fv::Str(&self.tenant.plan),
            Field::Attribute(index) => {
                let index = usize::from(index);
                let value = match self.resolved.get(index) {
                    Some(resolved) => *resolved,
                    None => {
                        let name = self.attributes.get(index)?;
                        self.tenant.attributes.get(&**name)
                    }
                };
                Fv::of(value?)
            }
            Field::RequestFeature => Fv::Str(self.request.feature),
            Field::RequestAction => Fv::Str(self.request.action),
            Field::RequestQuantity => Fv::Int(i128::from(self.request.quantity)),
        })
    }

    fn holds(&self, cond: &Cond) -> bool {
        match cond {
            Cond::True => true,
            Cond::Cmp { field, op, value } => self.field(*field).is_some_and(|fv| {
                let Some(ordering) = fv.cmp_same_type(value) else {
                    return false;
                };
                match op {
                    CmpOp::Eq => ordering.is_eq(),
                    CmpOp::Ne => ordering.is_ne(),
                    CmpOp::Lt => ordering.is_lt(),
                    CmpOp::Le => ordering.is_le(),
                    CmpOp::Gt => ordering.is_gt(),
                    CmpOp::Ge => ordering.is_ge(),
                }
            }),
            Cond::StartsWith { field, prefix } => {
                matches!(self.field(*field), Some(Fv::Str(s)) if s.starts_with(&**prefix))
            }
            Cond::In { field, set, negate } => self.field(*field).is_some_and(|fv| {
                let found = set.binary_search_by(|value| fv.cmp_total(value).reverse()).is_ok();
                found != *negate
            }),
            Cond::Exists(field) => self.field(*field).is_some(),
            Cond::All(children) => children.iter().all(|child| self.holds(child)),
            Cond::Any(children) => children.iter().any(|child| self.holds(child)),
            Cond::Not(child) => !self.holds(child),
        }
    }
}

impl RuleSet {
    /// The rule that decides, if any: the first matching deny, else the first matching allow
    /// (file order).
    pub(crate) fn evaluate(&self, tenant: &Tenant, request: &Request<'_>) -> Option<&Rule> {
        let candidates = self.candidates(request.feature);
        if candidates.is_empty() {
            return None;
        }
        let mut resolved = [None; ATTRIBUTES_INLINE];
        for (slot, name) in resolved.iter_mut().zip(&self.attributes) {
            *slot = tenant.attributes.get(&**name);
        }
        let ctx = Ctx { tenant, request, attributes: &self.attributes, resolved };
        let mut allow = None;
        for &index in candidates {
            let Some(rule) = self.rules.get(index as usize) else {
                continue;
            };
            match rule.effect {
                Effect::Deny => {
                    if ctx.holds(&rule.cond) {
                        return Some(rule);
                    }
                }
                // Once an allow matched, only a deny can change the answer.
                Effect::Allow => {
                    if allow.is_none() && ctx.holds(&rule.cond) {
                        allow = Some(rule);
                    }
                }
            }
        }
        allow
    }
}
