//! The govern runtime: governors as supervised actors (ractor on tokio), a tenant registry
//! that admits and routes commands, and a receipt ledger that is the system of record.
//!
//! A command travels: [`GovernorHandle::send`] → tenant admission (the registry's table) → the
//! governor's bounded inbox (a miss goes through the registry actor, which has the domain
//! supervisor start the governor) → its actor: pure `decide` → the receipt to the receipt
//! actor, state applied → the receipt actor writes, commits and, once the receipt is
//! durable, answers the caller. A crashed governor is restarted by its domain supervisor and
//! replays its receipts; nothing queued or acknowledged is lost. See
//! `docs/runtime-semantics.md`.
//!
//! API boundary: no ractor type appears in this crate's public API. Fault injection and
//! introspection for tests (`inject_crash`, `passivate_idle`, `ledger_store_bytes`, ...) are
//! behind the `testing` feature.

mod billing_run;
mod billing_state;
mod clock;
mod commercial;
mod coordinator;
mod domain;
mod domains;
mod error;
mod governor;
mod handle;
mod hosted;
mod idempotency;
mod ingest;
mod injected;
pub mod limits;
mod notifier;
pub mod notify;
mod plan_change;
mod receipts;
mod registry;
mod retention;
mod router;
mod runtime;
mod saga;
mod saga_actor;
mod saga_ops;
mod schedule;
mod sla;
mod start_state;
mod status;
mod supervisor;
mod telemetry;
mod timers;
mod usage;
mod webhook;

/// A concurrent map with a fast seeded hasher (foldhash) instead of SipHash: routing lookups
/// are on every command's path.
pub(crate) type FastMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;

/// The names of the metrics the runtime records through the `metrics` facade
/// (`docs/metrics.md`).
pub mod metric_names {
    pub use crate::telemetry::{
        COMMAND_DURATION_SECONDS, COMMAND_REFUSALS_TOTAL, COMMANDS_TOTAL,
        GOVERNOR_QUARANTINES_TOTAL, GOVERNOR_RESTARTS_TOTAL, GOVERNORS_PASSIVATED_TOTAL,
        GOVERNORS_RESIDENT, LEDGER_COMMIT_RECEIPTS, LEDGER_COMMIT_SECONDS, METRIC_NAMES,
        SUPERVISOR_ESCALATIONS_TOTAL, SUPERVISOR_RESTARTS_TOTAL,
    };
}

/// The ledger types hosts configure and receive (re-exported from `govern-ledger`).
pub mod ledger {
    pub use govern_ledger::{
        Appended, CheckpointSigner, CheckpointSink, Checkpointer, CommitOptions, DirSink,
        Durability, Ledger, LedgerError, LedgerStore, MemoryStore, SegmentOptions, SegmentStore,
        StoreError, TENANT_PAGE_MAX,
    };
}

pub use billing_run::{
    BillingPeriod, ClosedInvoice, InvoiceDoc, InvoiceView, LineDoc, NotInvoiceable, invoice_of,
    recorded_invoice, recorded_lines,
};
#[cfg(feature = "testing")]
pub use coordinator::SagaFaults;
pub use domains::Domains;
pub use error::{Accepted, CommandError, ERROR_CODES, Outcome, Refusal, RuntimeError};
#[cfg(feature = "testing")]
pub use governor::CrashPoint;
pub use governor::Snapshot;
pub use handle::{GovernorHandle, RawCommand};
pub use hosted::Hosted;
pub use idempotency::{IDEMPOTENCY_KEY, IdempotencyStats};
pub use injected::{INJECTED_CRASH_PREFIX, is_injected_crash, quiet_injected_panics};
pub use plan_change::{
    PLAN_CHANGE_REFUSAL_CODES, PlanChangeApplied, PlanChangeError, PlanChangeRefusal,
    simulation_json,
};
pub use retention::{RETENTION_CHECK_RECORDS, Retention};
pub use runtime::{LedgerStatus, ReceiptPage, Runtime, RuntimeBuilder, RuntimeHandle};
pub use saga::{
    Operation, SagaDef, SagaDefError, SagaEnd, SagaStep, StepAction, StepCommand, StepOperation,
};
pub use sla::SlaError;
pub use status::{MeterUsage, TenantUsageView};
pub use usage::UsageRecorded;
pub use webhook::{DELIVERY_KEY_PREFIX, WebhookDelivery, WebhookError, WebhookStats};
