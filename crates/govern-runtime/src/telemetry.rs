//! The runtime's metrics, through the `metrics` facade (`docs/metrics.md` lists them). The
//! runtime never installs a recorder: a host installs one (`govern serve` installs the
//! Prometheus exporter's) before it starts the runtime; with none, every call here is a
//! no-op.
//!
//! The per-command instruments (counters by kind and outcome, the latency histogram by kind)
//! and each domain's and the ledger's are registered once, when the runtime starts, so that
//! a command costs a few atomic additions and no allocation or key lookup. A counter by
//! error code is registered the first time a kind meets that code (a table of `OnceLock`s,
//! one per kind and code of [`ERROR_CODES`]). Tenant ids are label values only when the host
//! opts in ([`crate::RuntimeBuilder::metrics_tenant_labels`]); the command counters are then
//! looked up by the recorder at every command, with the tenant's id copied into the key.

use std::sync::OnceLock;
use std::time::Instant;

use govern_governors::{GovernorKind, TenantId};
use metrics::{Counter, Gauge, Histogram, Unit};

use crate::error::{CommandError, ERROR_CODES};

/// Commands answered, by `governor` and `outcome` (`accepted`, `rejected`, `refused`).
pub const COMMANDS_TOTAL: &str = "govern_commands_total";
/// Commands not accepted, by `governor`, `outcome` (`rejected`, `refused`) and `code`.
pub const COMMAND_REFUSALS_TOTAL: &str = "govern_command_refusals_total";
/// Seconds from a handle's send to its answer, by `governor`.
pub const COMMAND_DURATION_SECONDS: &str = "govern_command_duration_seconds";
/// Crashed governors restarted with replay, by `governor`.
pub const GOVERNOR_RESTARTS_TOTAL: &str = "govern_governor_restarts_total";
/// Governors quarantined after crashing repeatedly, by `governor`.
pub const GOVERNOR_QUARANTINES_TOTAL: &str = "govern_governor_quarantines_total";
/// Governors passivated (idle), by `governor`.
pub const GOVERNORS_PASSIVATED_TOTAL: &str = "govern_governors_passivated_total";
/// Resident governors (routed, in memory), by `governor`.
pub const GOVERNORS_RESIDENT: &str = "govern_governors_resident";
/// Children restarted by a supervisor, by `supervisor` and `child`.
pub const SUPERVISOR_RESTARTS_TOTAL: &str = "govern_supervisor_restarts_total";
/// Supervisors that exceeded their restart intensity and failed to their parent.
pub const SUPERVISOR_ESCALATIONS_TOTAL: &str = "govern_supervisor_escalations_total";
/// Receipts made durable per group commit.
pub const LEDGER_COMMIT_RECEIPTS: &str = "govern_ledger_commit_receipts";
/// Seconds per group commit (write, `fdatasync`, Merkle frontier).
pub const LEDGER_COMMIT_SECONDS: &str = "govern_ledger_commit_duration_seconds";

/// Every metric the runtime records, for docs and tests.
pub const METRIC_NAMES: [&str; 11] = [
    COMMANDS_TOTAL,
    COMMAND_REFUSALS_TOTAL,
    COMMAND_DURATION_SECONDS,
    GOVERNOR_RESTARTS_TOTAL,
    GOVERNOR_QUARANTINES_TOTAL,
    GOVERNORS_PASSIVATED_TOTAL,
    GOVERNORS_RESIDENT,
    SUPERVISOR_RESTARTS_TOTAL,
    SUPERVISOR_ESCALATIONS_TOTAL,
    LEDGER_COMMIT_RECEIPTS,
    LEDGER_COMMIT_SECONDS,
];

const KINDS: usize = GovernorKind::ALL.len();
const CODES: usize = ERROR_CODES.len();

/// When a command was sent, on the monotonic wall clock: read for its latency only, never
/// for a decision.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started(Instant);

impl Started {
    pub(crate) fn now() -> Self {
        #[allow(
            clippy::disallowed_methods,
            reason = "a command's latency for people reading metrics is real elapsed time; it decides nothing"
        )]
        Self(Instant::now())
    }

    fn seconds(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    /// Seconds from this to `now` (zero if `now` is earlier).
    fn seconds_until(self, now: Started) -> f64 {
        now.0.saturating_duration_since(self.0).as_secs_f64()
    }
}

/// One kind's instruments: its commands' and its domain's.
#[derive(Clone, Debug)]
pub(crate) struct KindMetrics {
    accepted: Counter,
    rejected: Counter,
    refused: Counter,
    latency: Histogram,
    /// Set by the domain whenever its routes change.
    pub(crate) resident: Gauge,
    pub(crate) restarts: Counter,
    pub(crate) quarantines: Counter,
    pub(crate) passivated: Counter,
}

impl KindMetrics {
    /// Registers `kind`'s instruments; its command counters only if they carry no tenant
    /// label (otherwise they are registered per tenant, at each command).
    fn register(kind: GovernorKind, tenant_labels: bool) -> Self {
        let governor = kind.name();
        let commands = |outcome: &'static str| {
            if tenant_labels {
                Counter::noop()
            } else {
                metrics::counter!(COMMANDS_TOTAL, "governor" => governor, "outcome" => outcome)
            }
        };
        Self {
            accepted: commands("accepted"),
            rejected: commands("rejected"),
            refused: commands("refused"),
            latency: metrics::histogram!(COMMAND_DURATION_SECONDS, "governor" => governor),
            resident: metrics::gauge!(GOVERNORS_RESIDENT, "governor" => governor),
            restarts: metrics::counter!(GOVERNOR_RESTARTS_TOTAL, "governor" => governor),
            quarantines: metrics::counter!(GOVERNOR_QUARANTINES_TOTAL, "governor" => governor),
            passivated: metrics::counter!(GOVERNORS_PASSIVATED_TOTAL, "governor" => governor),
        }
    }
}

/// The receipt actor's instruments.
#[derive(Clone, Debug)]
pub(crate) struct LedgerMetrics {
    receipts: Histogram,
    seconds: Histogram,
}

impl LedgerMetrics {
    /// Records one group commit that made `receipts` receipts durable in `started`'s time
    /// since (a commit that found nothing new is not a batch).
    pub(crate) fn commit(&self, receipts: u64, started: Started) {
        if receipts > 0 {
            self.seconds.record(started.seconds());
            self.receipts.record(receipts as f64);
        }
    }
}

/// Every instrument of one runtime.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// Whether the command counters carry a `tenant` label (the host opted in).
    tenant_labels: bool,
    kinds: [KindMetrics; KINDS],
    /// Counters by kind and error code, registered at first use.
    codes: [[OnceLock<Counter>; CODES]; KINDS],
    pub(crate) ledger: LedgerMetrics,
}

impl Telemetry {
    /// Describes and registers the instruments with the recorder in force now.
    pub(crate) fn new(tenant_labels: bool) -> Self {
        describe();
        Self {
            tenant_labels,
            kinds: GovernorKind::ALL.map(|kind| KindMetrics::register(kind, tenant_labels)),
            codes: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            ledger: LedgerMetrics {
                receipts: metrics::histogram!(LEDGER_COMMIT_RECEIPTS),
                seconds: metrics::histogram!(LEDGER_COMMIT_SECONDS),
            },
        }
    }

    /// The instruments of `kind`.
    pub(crate) fn kind(&self, kind: GovernorKind) -> &KindMetrics {
        // `ALL` lists the kinds in declaration order (checked by a unit test below).
        &self.kinds[kind as usize]
    }

    /// A batch of acceptances to record, answered together by the receipt actor.
    pub(crate) fn accepted_batch(&self) -> AcceptedBatch<'_> {
        AcceptedBatch { telemetry: self, now: None, counts: [0; KINDS] }
    }

    /// Records a command's outcome and its latency since `started`.
    pub(crate) fn command<T>(
        &self,
        kind: GovernorKind,
        tenant: &TenantId,
        outcome: &Result<T, CommandError>,
        started: Started,
    ) {
        self.record(kind, tenant, outcome.as_ref().err(), started);
    }

    fn record(
        &self,
        kind: GovernorKind,
        tenant: &TenantId,
        error: Option<&CommandError>,
        started: Started,
    ) {
        let k = self.kind(kind);
        k.latency.record(started.seconds());
        let (label, error) = match error {
            None => ("accepted", None),
            Some(e @ CommandError::Rejected(_)) => ("rejected", Some(e)),
            Some(e) => ("refused", Some(e)),
        };
        self.count(kind, tenant, label, error);
    }

    /// Counts a command by outcome (and code), with the tenant's label if opted in.
    fn count(
        &self,
        kind: GovernorKind,
        tenant: &TenantId,
        label: &'static str,
        error: Option<&CommandError>,
    ) {
        let k = self.kind(kind);
        if self.tenant_labels {
            let tenant = tenant.as_str().to_owned();
            let governor = kind.name();
            metrics::counter!(COMMANDS_TOTAL, "governor" => governor, "outcome" => label, "tenant" => tenant.clone())
                .increment(1);
            if let Some(e) = error {
                metrics::counter!(COMMAND_REFUSALS_TOTAL, "governor" => governor, "outcome" => label, "code" => e.code(), "tenant" => tenant)
                    .increment(1);
            }
            return;
        }
        match label {
            "accepted" => k.accepted.increment(1),
            "rejected" => k.rejected.increment(1),
            _ => k.refused.increment(1),
        }
        if let Some(e) = error {
            self.code(kind, label, e.code()).increment(1);
        }
    }

    /// The counter of `kind`'s commands answered `code`.
    fn code(&self, kind: GovernorKind, outcome: &'static str, code: &'static str) -> &Counter {
        static UNLISTED: OnceLock<Counter> = OnceLock::new();
        let cell = ERROR_CODES
            .iter()
            .position(|c| *c == code)
            .and_then(|i| self.codes[kind as usize].get(i))
            // Every code is listed (a test in `error.rs` checks): this is never reached.
            .unwrap_or(&UNLISTED);
        cell.get_or_init(|| {
            metrics::counter!(COMMAND_REFUSALS_TOTAL, "governor" => kind.name(), "outcome" => outcome, "code" => code)
        })
    }
}

/// The acceptances one group commit answers, recorded in one pass by the receipt actor: one
/// read of the clock for all their latencies (the batch is answered within microseconds),
/// and each kind's accepted counter incremented once, by its count, when the batch is
/// dropped. Every acceptance is counted once and timed once, as one at a time would be.
#[derive(Debug)]
pub(crate) struct AcceptedBatch<'a> {
    telemetry: &'a Telemetry,
    /// When the batch is answered: read at its first acceptance.
    now: Option<Started>,
    /// Acceptances by kind not yet added to their counters.
    counts: [u64; KINDS],
}

impl AcceptedBatch<'_> {
    /// Records an acceptance of `kind` sent at `started`.
    pub(crate) fn record(&mut self, kind: GovernorKind, tenant: &TenantId, started: Started) {
        let now = *self.now.get_or_insert_with(Started::now);
        self.telemetry.kind(kind).latency.record(started.seconds_until(now));
        if self.telemetry.tenant_labels {
            // A series per tenant: counted one by one, as the caller would.
            self.telemetry.count(kind, tenant, "accepted", None);
        } else if let Some(n) = self.counts.get_mut(kind as usize) {
            *n += 1;
        }
    }
}

impl Drop for AcceptedBatch<'_> {
    fn drop(&mut self) {
        for (k, n) in self.telemetry.kinds.iter().zip(self.counts) {
            if n > 0 {
                k.accepted.increment(n);
            }
        }
    }
}

/// Gives each metric its unit and help text (the Prometheus exporter's `# HELP`).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        COMMANDS_TOTAL,
        Unit::Count,
        "Commands answered, by governor kind and outcome (accepted, rejected, refused)."
    );
    describe_counter!(
        COMMAND_REFUSALS_TOTAL,
        Unit::Count,
        "Commands not accepted, by governor kind, outcome (rejected: the governor decided; refused: the runtime did) and stable code."
    );
    describe_histogram!(
        COMMAND_DURATION_SECONDS,
        Unit::Seconds,
        "Seconds from a handle's send to the answer (durable receipt, rejection or refusal), by governor kind."
    );
    describe_counter!(
        GOVERNOR_RESTARTS_TOTAL,
        Unit::Count,
        "Crashed governors restarted with replay, by kind."
    );
    describe_counter!(
        GOVERNOR_QUARANTINES_TOTAL,
        Unit::Count,
        "Governors quarantined after crashing more than their restart limit, by kind."
    );
    describe_counter!(
        GOVERNORS_PASSIVATED_TOTAL,
        Unit::Count,
        "Idle governors passivated, by kind."
    );
    describe_gauge!(
        GOVERNORS_RESIDENT,
        Unit::Count,
        "Resident governors (routed, in memory), by kind."
    );
    describe_counter!(
        SUPERVISOR_RESTARTS_TOTAL,
        Unit::Count,
        "Children restarted by a supervisor, by supervisor and child (a domain supervisor is named by its kind)."
    );
    describe_counter!(
        SUPERVISOR_ESCALATIONS_TOTAL,
        Unit::Count,
        "Supervisors that exceeded their restart intensity and failed to their parent (the root's failure stops the runtime)."
    );
    describe_histogram!(
        LEDGER_COMMIT_RECEIPTS,
        Unit::Count,
        "Receipts made durable per group commit."
    );
    describe_histogram!(
        LEDGER_COMMIT_SECONDS,
        Unit::Seconds,
        "Seconds per group commit: write, fdatasync, Merkle frontier."
    );
}

/// A supervisor restarted `child`.
pub(crate) fn supervisor_restart(supervisor: &'static str, child: &'static str) {
    metrics::counter!(SUPERVISOR_RESTARTS_TOTAL, "supervisor" => supervisor, "child" => child)
        .increment(1);
}

/// A supervisor exceeded its restart intensity.
pub(crate) fn supervisor_escalation(supervisor: &'static str) {
    metrics::counter!(SUPERVISOR_ESCALATIONS_TOTAL, "supervisor" => supervisor).increment(1);
}

#[cfg(test)]
mod tests {
    use govern_governors::GovernorKind;

    #[test]
    fn kinds_index_their_declaration_order() {
        for (i, kind) in GovernorKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "{kind}");
        }
    }
}
