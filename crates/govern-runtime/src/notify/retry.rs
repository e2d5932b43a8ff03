//! The retry schedule of outbound notifications, purely: exponential backoff capped at a
//! maximum, with a jitter drawn from the event id and the attempt number (FNV-1a), so that a
//! test, or a second look at the receipts, finds the same delays; and what counts as
//! delivered.

use std::time::Duration;

use crate::limits::{
    NOTIFY_ATTEMPT_TIMEOUT, NOTIFY_ATTEMPTS_MAX, NOTIFY_RETRY_BASE, NOTIFY_RETRY_MAX,
};

/// How a delivery is retried (defaults from [`crate::limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per (event, endpoint), the first included; the last one failed, the event is
    /// given up there. At least 1.
    pub attempts_max: u32,
    /// The backoff after the first failed attempt, before jitter; doubled after each further
    /// one.
    pub base: Duration,
    /// The longest backoff, before jitter.
    pub cap: Duration,
    /// How long one attempt may take (connect, send, the answer's head and body) before it
    /// counts as failed.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: NOTIFY_ATTEMPTS_MAX,
            base: NOTIFY_RETRY_BASE,
            cap: NOTIFY_RETRY_MAX,
            attempt_timeout: NOTIFY_ATTEMPT_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based) of event `event_id`: `d = min(cap,
    /// base × 2^(attempt−1))`, then a jitter in `[d/2, d]` drawn from the id and the attempt
    /// ("equal jitter": never less than half the backoff, so a dead endpoint is not hammered,
    /// and endpoints' retries of one burst spread out).
    #[must_use]
    pub fn delay(&self, attempt: u32, event_id: &str) -> Duration {
        let shift = attempt.saturating_sub(1);
        let full =
            if shift >= 31 { self.cap } else { self.base.saturating_mul(1 << shift).min(self.cap) };
        let ns = u64::try_from(full.as_nanos()).unwrap_or(u64::MAX);
        let half = ns / 2;
        let span = ns - half;
        let jitter = if span == 0 { 0 } else { fnv1a(event_id, attempt) % (span + 1) };
        Duration::from_nanos(half + jitter)
    }

    /// Whether another attempt follows failed attempt `attempt`.
    #[must_use]
    pub fn retries_after(&self, attempt: u32) -> bool {
        attempt < self.attempts_max.max(1)
    }
}

/// Whether an HTTP status is a delivery: any 2xx. Everything else is retried (a 4xx too: an
/// endpoint being redeployed answers 404 for a while; the bound on attempts ends it).
#[must_use]
pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// FNV-1a over the id's bytes and the attempt's: stable across platforms and versions.
fn fnv1a(id: &str, attempt: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes().chain(attempt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
