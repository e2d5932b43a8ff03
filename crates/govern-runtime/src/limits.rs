//! Named limits of the runtime, with their defaults. Every queue and wait is bounded.

use std::time::Duration;

/// Most tenants whose SLA is monitored at once (`RuntimeHandle::sla_record`): a monitor
/// holds about 5 KiB (six latency histograms of 200 counters), so at most about 20 MiB.
/// A tenant past it is refused `TenantsFull`.
pub const SLA_TENANTS_MAX: usize = 4_096;
/// Most commands queued at one governor (its inbox); one more is refused `busy`.
pub const GOVERNOR_INBOX_MAX: usize = 1_024;
/// Default: most commands in flight (submitted, not yet answered) for one tenant.
pub const TENANT_IN_FLIGHT_MAX: usize = 4_096;
/// Default: how long a caller waits for a governor's reply before `timeout`.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default: how long a governor stays resident without a command before it is passivated.
pub const IDLE_AFTER: Duration = Duration::from_secs(300);
/// Default: how long a supervisor waits for one child to stop gracefully before killing it.
pub const CHILD_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default: how long shutdown waits for in-flight commands to be answered.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

const _: () = assert!(GOVERNOR_INBOX_MAX <= TENANT_IN_FLIGHT_MAX);

/// Most receipts queued at the receipt actor; a governor sending one more waits for room
/// (backpressure), it is not refused.
pub const RECEIPT_QUEUE_MAX: usize = 16_384;
/// Default: crashes of one governor within [`GOVERNOR_CRASH_WINDOW`] after which it is
/// quarantined rather than restarted at once.
pub const GOVERNOR_CRASHES_MAX: u32 = 3;
/// Default: the window in which [`GOVERNOR_CRASHES_MAX`] crashes quarantine a governor.
pub const GOVERNOR_CRASH_WINDOW: Duration = Duration::from_secs(10);
/// A governor's first quarantine lasts this long; each further one twice as long as the one
/// before, up to [`QUARANTINE_MAX`].
pub const QUARANTINE_MIN: Duration = Duration::from_secs(1);
/// The longest quarantine.
pub const QUARANTINE_MAX: Duration = Duration::from_secs(300);

/// Recommended for the host's multi-threaded tokio runtime
/// (`tokio::runtime::Builder::global_queue_interval`): how many tasks a worker takes from its
/// own queue before it looks at the shared one (tokio's default: 61). When a batch of
/// receipts becomes durable the receipt actor wakes every caller in it at once; those that
/// overflow a worker's local queue (256 tasks) wait in the shared queue, which a worker only
/// looks at every `global_queue_interval` tasks, so with a thousand concurrent callers some
/// wait many rounds while others go round again. Measured in `docs/benchmarks.md`
/// ("Fairness at C = 1024"): p99 11.6 ms at 61 and 6.7 ms at 2, throughput unchanged. The
/// `govern` CLI's own runtimes use it.
pub const GLOBAL_QUEUE_INTERVAL: u32 = 2;

/// Decisions cached per tenant by `RuntimeHandle::check` (the cache is emptied when full, and
/// whenever a plan, grant or tenant state changes).
pub const CHECK_CACHE_ENTRIES_MAX: usize = 1_024;

/// How long `RuntimeHandle::check` counts before it receipts the counts (allowed checks per
/// feature, repeats of each refusal) in the tenant's audit trail: one minute.
pub const CHECK_COUNT_WINDOW_MS: u64 = 60_000;
/// Most distinct (feature) and (feature, action, refusal code) keys counted per tenant and
/// window; checks beyond are counted together as `(other)`.
pub const CHECK_COUNT_KEYS_MAX: usize = 256;
/// Rate-limit keys per tenant (one today: the plan's `requests_per_second`).
pub const RATE_KEYS_PER_TENANT: usize = 4;
/// Most usage events one `RuntimeHandle::record_usage_batch` call carries.
pub const USAGE_CALL_EVENTS_MAX: usize = 4_096;

/// Default: how long an idempotency key is kept after its first use (24 hours, as Stripe).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Default: most idempotency keys kept per tenant; past it the oldest is dropped (counted in
/// `IdempotencyStats::evicted`).
pub const IDEMPOTENCY_KEYS_MAX: usize = 100_000;

/// Attempts at a saga step refused momentarily (`busy`, `timeout`, ...), and at a
/// compensation, before the step fails or the run is stuck.
pub const SAGA_ATTEMPTS_MAX: u32 = 5;
/// The wait before a saga's first retry; each further one waits twice as long.
pub const SAGA_RETRY_BASE: Duration = Duration::from_millis(100);
/// The longest wait between a saga's retries.
pub const SAGA_RETRY_MAX: Duration = Duration::from_secs(10);
/// How long a billing-run saga's `notify_invoice` step waits, when its step has no time limit
/// of its own, for the invoice's event to be delivered: past it the step fails. It outlasts
/// the notifier's default retries (`NOTIFY_ATTEMPTS_MAX` attempts, each wait at most
/// `NOTIFY_RETRY_MAX`, each attempt at most `NOTIFY_ATTEMPT_TIMEOUT`: under half an hour).
pub const SAGA_NOTIFY_WAIT: Duration = Duration::from_secs(60 * 60);
/// The longest pause between two readings of the delivery records while `notify_invoice`
/// waits (from 50 ms, doubling).
pub const SAGA_NOTIFY_POLL_MAX: Duration = Duration::from_secs(2);
/// Most saga runs the coordinator runs at once; one more is refused `busy`.
pub const SAGA_RUNS_MAX: usize = 10_000;

/// Locks serialising billing runs, shared by tenants by hash (`billing_run.rs`): two closes of
/// one tenant's period never run together.
pub const BILLING_RUN_LOCKS: usize = 64;

/// The largest start-state file (`runtime.snap`) a start reads; a bigger one is rejected as
/// damaged (and every receipt read instead): 2 GiB, far above what a million armed timeouts
/// and every tenant's idempotency keys take (33 B per timeout, 25 B per plan view, about
/// 100 B and its arguments per idempotency key).
pub const START_STATE_BYTES_MAX: u64 = 2 << 30;

/// Events the receipt actor's feed to the notifier holds; past it an event is counted
/// (`NotifyStats::feed_overflows`) and left to a recovery scan: the receipt actor never waits.
pub const NOTIFY_FEED_MAX: usize = 4_096;
/// Default: events queued per endpoint (new, or waiting for their next attempt); past it an
/// event is dropped there, counted and receipted `dropped`.
pub const NOTIFY_ENDPOINT_QUEUE_MAX: usize = 1_024;
/// Most endpoints per tenant.
pub const NOTIFY_ENDPOINTS_PER_TENANT_MAX: usize = 16;
/// The longest endpoint id, in bytes.
pub const NOTIFY_ENDPOINT_ID_LEN_MAX: usize = 64;
/// Default: attempts per (event, endpoint), the first included.
pub const NOTIFY_ATTEMPTS_MAX: u32 = 10;
/// Default: the backoff after a first failed attempt (doubled after each further one, before
/// jitter).
pub const NOTIFY_RETRY_BASE: Duration = Duration::from_secs(1);
/// Default: the longest backoff, before jitter (with the defaults above the ninth wait is
/// 256 s, so the cap never bites: about 8.5 min from the first attempt to the last).
pub const NOTIFY_RETRY_MAX: Duration = Duration::from_secs(600);
/// Default: how long one attempt may take.
pub const NOTIFY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes of an endpoint's answer read (to keep its connection); a longer answer
/// closes the connection.
pub const NOTIFY_RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// Idle kept-alive connections the built-in transport keeps per `host:port`.
pub const NOTIFY_IDLE_CONNECTIONS_MAX: usize = 4;
/// Event ids remembered per endpoint as finished, against a recovery scan racing a delivery
/// (the receipts say the rest).
pub const NOTIFY_DONE_REMEMBERED_MAX: usize = 65_536;
/// Tries at receipting one attempt refused momentarily (`busy`, ...) before the event is left
/// to a recovery scan.
pub const NOTIFY_RECORD_ATTEMPTS_MAX: u32 = 5;
/// The wait before such a try, times the number of tries so far.
pub const NOTIFY_RECORD_RETRY_WAIT: Duration = Duration::from_millis(20);
/// Default: how far back a recovery scan reads, in sequence numbers of the ledger.
pub const NOTIFY_RECOVERY_WINDOW: u64 = 1 << 20;
/// The most candidate events one recovery scan holds per tenant.
pub const NOTIFY_RECOVERY_EVENTS_MAX: usize = 65_536;
/// Default: the oldest event (by its receipt's time on the runtime's clock) a recovery scan
/// still delivers.
pub const NOTIFY_EVENT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

const _: () = assert!(NOTIFY_ENDPOINT_QUEUE_MAX <= NOTIFY_DONE_REMEMBERED_MAX);
