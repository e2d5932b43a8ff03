//! A scenario as it runs: validated, typed, every step with its place in the file. Built by
//! [`crate::load`]; the format is specified in `docs/scenarios.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::tenant::ResourceQuota;
use govern_governors::{Args, GovernorKind, ResourceId, TenantId, Timestamp};
use govern_runtime::CrashPoint;

/// Where something is in a scenario file: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Its name (a short identifier).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// What the virtual clock reads when the run starts.
    pub start: Timestamp,
    /// The plan catalog the runtime is given (`catalog = "..."`), validated at load.
    pub catalog: Option<govern_plans::Catalog>,
    /// Tenants provisioned (and activated) before the first step, in order.
    pub tenants: Vec<TenantSpec>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Expectations on the whole run, checked after the last step.
    pub expect: RunExpect,
}

/// A tenant to provision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSpec {
    /// Its id.
    pub id: TenantId,
    /// Its resource quota.
    pub quota: ResourceQuota,
    /// Where it is declared.
    pub at: Location,
}

/// One step and what is expected of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Where the step's table starts.
    pub at: Location,
    /// A note shown in the transcript.
    pub note: Option<String>,
    /// What the step does.
    pub action: Action,
    /// What must come of it.
    pub expect: Expect,
}

/// Which governor a step addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The tenant.
    pub tenant: TenantId,
    /// The governor kind.
    pub kind: GovernorKind,
    /// The resource.
    pub resource: ResourceId,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.tenant, self.kind, self.resource)
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A command to a governor.
    Command {
        /// The governor.
        target: Target,
        /// The command name.
        name: String,
        /// Its arguments, as text.
        args: Args,
        /// Why (the receipt's reason).
        reason: String,
        /// Caller context recorded in the receipt's metadata (an idempotency key goes here
        /// as `idempotency_key`).
        metadata: Vec<(String, String)>,
    },
    /// Moves the virtual clock forward and delivers every state timeout that falls due.
    Advance {
        /// By how much.
        by: Duration,
        /// As written (`15d`).
        text: String,
    },
    /// Makes a governor panic; its supervisor restarts it and it replays its receipts.
    Crash {
        /// The governor.
        target: Target,
        /// When.
        point: CrashPoint,
    },
    /// Shuts the runtime down and starts a new one on the same data directory.
    Restart,
    /// Re-reads and verifies the whole chain.
    Verify,
    /// Reads a governor's state (with `expect.state`, checks it).
    Check {
        /// The governor.
        target: Target,
    },
    /// Asks whether a tenant may use a feature (`RuntimeHandle::check`; the scenario names a
    /// `catalog`).
    Entitled {
        /// The tenant.
        tenant: TenantId,
        /// The feature.
        feature: String,
        /// The action (default `use`).
        action: String,
        /// How many units (default 1).
        quantity: u64,
    },
    /// Runs a saga (`RuntimeHandle::run_saga`), optionally with a step failing or the
    /// coordinator crashing at a record.
    Saga {
        /// The tenant.
        tenant: TenantId,
        /// The run's id.
        run: ResourceId,
        /// The saga's name.
        saga: String,
        /// Its parameters.
        params: Vec<(String, String)>,
        /// Inject a failure into this step (its command is not sent).
        fail_step: Option<u32>,
        /// The coordinator crashes right after its N-th record (resume with `resume_sagas`
        /// after a `restart`).
        crash_after: Option<usize>,
    },
    /// Resumes the unfinished saga runs (`RuntimeHandle::resume_sagas`).
    ResumeSagas,
    /// Closes a tenant's month into a receipted invoice and a payment request
    /// (`RuntimeHandle::close_period`, paid by card).
    ClosePeriod {
        /// The tenant.
        tenant: TenantId,
        /// The month, `YYYY-MM`.
        period: String,
    },
    /// Records metered usage (`RuntimeHandle::record_usage`, at the scenario's clock).
    Usage {
        /// The tenant.
        tenant: TenantId,
        /// The meter.
        meter: String,
        /// How many units (default 1).
        quantity: u64,
        /// The event's id (deduplication key).
        event: String,
    },
    /// Simulates (`RuntimeHandle::simulate_plan_change`) or applies (`apply_plan_change`) a
    /// change of a tenant's subscription to another plan (`docs/plans.md`, "Plan changes").
    PlanChange {
        /// The tenant.
        tenant: TenantId,
        /// The plan asked for.
        to: String,
        /// The subscription; `None`: the tenant's only one.
        subscription: Option<ResourceId>,
        /// Apply (true) or only simulate.
        apply: bool,
    },
}

/// What a step must come to. Empty: a command must be accepted, other steps must succeed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// The governor's state afterwards (for a command: it was accepted).
    pub state: Option<String>,
    /// The command was refused with this code: a rejection kind or a runtime refusal code.
    pub refused: Option<String>,
    /// The HTTP status of the outcome (200 when accepted).
    pub status: Option<u16>,
    /// How many state timeouts an `advance` delivers.
    pub timeouts: Option<usize>,
    /// Whether an `entitled` check allows.
    pub allowed: Option<bool>,
    /// A refusal's retry-after, in seconds (an `entitled` step's 429).
    pub retry_after: Option<u64>,
    /// A `usage` step: the meter's value after it.
    pub value: Option<u64>,
    /// A `usage` step: the meter's quota governor's state after it.
    pub quota: Option<String>,
    /// A `usage` step: the event was a duplicate.
    pub duplicate: Option<bool>,
    /// A `close_period` step: the invoice's total (`34.00`).
    pub total: Option<String>,
    /// A `saga` or `resume_sagas` step: how the run ended (`completed`, `compensated`,
    /// `stuck`), or `crashed` (the injected coordinator crash).
    pub saga: Option<String>,
    /// A plan-change step: each named gate's verdict (`pass`, `fail`, `skip`).
    pub gates: Vec<(String, String)>,
}

impl Expect {
    /// Whether nothing is expected explicitly.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Expectations on the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunExpect {
    /// Receipts per tenant at the end (tenants not named are not checked).
    pub receipts: BTreeMap<TenantId, u64>,
    /// The chain verifies at the end (always checked; `false` is not allowed).
    pub verified: bool,
    /// Where `[expect]` is, for failure reports.
    pub at: Location,
}
