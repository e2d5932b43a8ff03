//! How a refused plan change is answered: the reason that decides when several refuse
//! (`Simulation::deciding_refusal`: the path, then the first failing gate, then the cooldown),
//! the HTTP status and code it maps to, and, for a cooldown, when to retry. `govern serve`,
//! the CLI and scenario steps all read it from [`super::PlanChangeError::Refused`]. The table:
//! `docs/http.md`, "Plan changes".

use govern_plans::{Catalog, ChangeKind, DecidingRefusal, PathRefusal, Simulation};

/// The code of a refusal by a gate (any of the five, the downgrade preflight included).
pub(crate) const GATE_FAILED: &str = "plan_change_gate_failed";
/// The code of a target the catalog does not have (as `Refusal::UnknownPlan`).
pub(crate) const UNKNOWN_PLAN: &str = "unknown_plan";
/// The code of a subscription whose plan in force the catalog no longer has.
pub(crate) const PLAN_NOT_IN_CATALOG: &str = "plan_not_in_catalog";
/// The code of a change to the plan in force.
pub(crate) const SAME_PLAN: &str = "same_plan";
/// The code of a target no upgrade path, nor chain of them back, connects.
pub(crate) const NO_UPGRADE_PATH: &str = "no_upgrade_path";
/// The code of a cooldown whose path names none (the catalog's default).
pub(crate) const UPGRADE_COOLDOWN: &str = "upgrade_cooldown";
/// The status of a cooldown whose refusal the catalog in force no longer lists (a catalog
/// replaced between the dry run and the answer): 429, come back later.
pub(crate) const COOLDOWN_STATUS_DEFAULT: u16 = 429;

/// Every code [`PlanChangeRefusal::code`] takes but a cooldown's, which is the catalog's
/// (`upgrade_cooldown` by default).
pub const PLAN_CHANGE_REFUSAL_CODES: &[&str] =
    &[GATE_FAILED, UNKNOWN_PLAN, PLAN_NOT_IN_CATALOG, SAME_PLAN, NO_UPGRADE_PATH, UPGRADE_COOLDOWN];

/// A refused plan change as the edge answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanChangeRefusal {
    /// The stable code: one of [`PLAN_CHANGE_REFUSAL_CODES`], or the cooldown path's refusal
    /// code from the catalog.
    pub code: String,
    /// The HTTP status: 422, 409 or 403 for the path, 409 for a gate, the catalog's status of
    /// the path's refusal (429 in the examples) for the cooldown.
    pub status: u16,
    /// What decided: `path`, `gate:NAME` or `cooldown`.
    pub decided_by: String,
    /// For a cooldown: how long until it ends, from the dry run's now (never for anything
    /// else: no wait lifts a path or a gate refusal).
    pub retry_after_ms: Option<u64>,
}

impl PlanChangeRefusal {
    /// Whether `simulation` lets the change through at `now` under `catalog` (which gives a
    /// cooldown's status): the kind of change to apply, or how its refusal is answered.
    ///
    /// # Errors
    /// The refusal, when the path, a gate or the cooldown refuses.
    pub fn judge(
        simulation: &Simulation,
        catalog: &Catalog,
        now_ms: u64,
    ) -> Result<ChangeKind, Self> {
        match (simulation.deciding_refusal(), &simulation.path) {
            (Some(deciding), _) => Err(Self::of(deciding, catalog, now_ms)),
            (None, Ok(path)) => Ok(path.kind),
            (None, Err(e)) => Err(Self::of(DecidingRefusal::Path(e), catalog, now_ms)),
        }
    }

    fn of(deciding: DecidingRefusal<'_>, catalog: &Catalog, now_ms: u64) -> Self {
        let refusal = |code: &str, status: u16, decided_by: String| Self {
            code: code.to_owned(),
            status,
            decided_by,
            retry_after_ms: None,
        };
        match deciding {
            DecidingRefusal::Path(p) => {
                let (code, status) = match p {
                    PathRefusal::UnknownTo(_) => (UNKNOWN_PLAN, 422),
                    PathRefusal::UnknownFrom(_) => (PLAN_NOT_IN_CATALOG, 409),
                    PathRefusal::SamePlan(_) => (SAME_PLAN, 409),
                    PathRefusal::NoPath { .. } => (NO_UPGRADE_PATH, 403),
                };
                refusal(code, status, "path".into())
            }
            DecidingRefusal::Gate(g) => refusal(GATE_FAILED, 409, format!("gate:{}", g.gate)),
            DecidingRefusal::Cooldown { until_ms, refusal: code } => {
                let status = code
                    .and_then(|c| catalog.refusal(c))
                    .map_or(COOLDOWN_STATUS_DEFAULT, |r| r.status.code());
                Self {
                    code: code.map_or(UPGRADE_COOLDOWN, |c| c.as_str()).to_owned(),
                    status,
                    decided_by: "cooldown".into(),
                    retry_after_ms: Some(until_ms.saturating_sub(now_ms)),
                }
            }
        }
    }

    /// [`Self::retry_after_ms`] in whole seconds, rounded up (`Retry-After`).
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_ms.map(|ms| ms.div_ceil(1_000))
    }
}
