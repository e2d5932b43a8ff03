//! Payment-provider webhooks: signature verification and event mapping, pure.
//!
//! [`mod@signature`] parses and verifies Stripe-style `t=<unix seconds>,v1=<hex>` signature
//! headers (HMAC-SHA256 of `"{t}.{body}"`, several secrets for rotation, a tolerance window);
//! [`mod@event`] parses a provider event and maps it onto the billing or subscription governor
//! command it implies, as plain data carrying the idempotency key `webhook:<event id>`.
//!
//! Architecture invariant: no clock (`now` is an argument), no I/O, no async.

pub mod event;
pub mod signature;

pub use event::{
    Event, EventError, EventKind, Ignored, MappedCommand, Mapping, map_event, parse_event,
};
pub use signature::{
    HeaderError, SignatureHeader, Verified, Verifier, VerifierError, VerifyError, sign, signature,
};
