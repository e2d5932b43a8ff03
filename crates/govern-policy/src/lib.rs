//! The pure entitlement decision: may tenant T do action A on feature F, quantity Q, now?
//!
//! Nothing here reads a clock, does I/O or knows tokio: [`decide`] is a function of its
//! arguments, and the same arguments always give the same [`Decision`]. The order
//! (docs/policy.md): the tenant's state bars first (suspended or terminated: 403), then the
//! highest-priority unexpired grant for the feature, then the plan's features, then the
//! policy rules; otherwise deny (402 when some plan offers the feature, 403 when none does).
//! An allow is then held to the live limits the caller passes: a rate limiter's verdict
//! (429 with its retry-after, passed through) and the quota (429).
//!
//! [`rules`] parses declarative rules from TOML (errors at line:column) and compiles them
//! once into a form that evaluates fast; [`DecisionCache`] is the per-tenant cache, with an
//! explicit generation that every change to the input bumps.

mod cache;
mod decide;
mod decision;
mod input;
pub mod rules;

pub use cache::{DECISION_CACHE_ENTRIES_MAX, DecisionCache};
pub use decide::{decide, entitle, limits};
pub use decision::{DecidedBy, Decision, Refusal, code};
pub use input::{
    FeatureSet, Grant, GrantEffect, GrantKind, Input, Quota, RateVerdict, Request, Tenant,
    TenantState,
};
pub use rules::{RuleError, RuleSet, Value};

pub use govern_governors::Timestamp;
