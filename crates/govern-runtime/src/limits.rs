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
