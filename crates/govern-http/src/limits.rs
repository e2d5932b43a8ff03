//! Every bound of the HTTP edge, named: the defaults, and [`Limits`], the set a router and
//! [`crate::serve::serve`] take (tests shorten them).

use std::time::Duration;

/// The largest request body read, in bytes; a larger one is answered 413
/// `payload_too_large` before it is parsed. 1 MiB holds a usage batch of
/// [`USAGE_EVENTS_PER_REQUEST_MAX`] events with room to spare.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

/// A request (headers, body and the answer) must be done within this; otherwise 408
/// `request_timeout` (a command that was sent may still be applied: its receipt says so).
/// Longer than the runtime's reply timeout (5 s), so a command's own `timeout` comes first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A client must send a request's whole header within this (from the first byte it is
/// awaited, on a new or kept-alive connection); otherwise the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many connections are served at once; further clients wait in the listen
/// backlog until one closes.
pub const CONNECTIONS_MAX: usize = 1_024;

/// On shutdown, connections in flight get this long to finish their requests; then they are
/// closed.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many usage events in one `POST /v1/tenants/{tenant}/usage`.
pub const USAGE_EVENTS_PER_REQUEST_MAX: usize = 1_000;

/// A receipts page holds at most this many receipts (the ledger's own page bound).
pub const RECEIPTS_PAGE_MAX: usize = govern_runtime::ledger::TENANT_PAGE_MAX;

/// A receipts page's size when the request does not say.
pub const RECEIPTS_PAGE_DEFAULT: usize = 100;

/// `GET /v1/tenants` lists at most this many tenants a page.
pub const TENANTS_PAGE_MAX: usize = 1_000;

/// An `Idempotency-Key` header holds at most this many bytes (the receipt's metadata bound).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = govern_governors::limits::METADATA_VALUE_LEN_MAX;

const _: () =
    assert!(USAGE_EVENTS_PER_REQUEST_MAX <= govern_runtime::limits::USAGE_CALL_EVENTS_MAX);
const _: () = assert!(RECEIPTS_PAGE_DEFAULT <= RECEIPTS_PAGE_MAX);

/// The bounds a server applies; [`Limits::default`] is the constants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// [`BODY_BYTES_MAX`].
    pub body_bytes_max: usize,
    /// [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// [`CONNECTIONS_MAX`].
    pub connections_max: usize,
    /// [`DRAIN_TIMEOUT`].
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes_max: BODY_BYTES_MAX,
            request_timeout: REQUEST_TIMEOUT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            connections_max: CONNECTIONS_MAX,
            drain_timeout: DRAIN_TIMEOUT,
        }
    }
}
