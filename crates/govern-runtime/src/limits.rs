//! Named limits of the runtime, with their defaults. Every queue and wait is bounded.

use std::time::Duration;

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
