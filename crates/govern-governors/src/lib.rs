//! The govern governors as pure state machines.
//!
//! Each governor is a transition table: [`Governor::decide`] takes the current machine, a
//! command and a [`Ctx`] carrying the time, and returns a [`Transition`] or a [`Rejection`].
//! [`Governor::evolve`] applies an accepted command; replaying the recorded commands through
//! `evolve` rebuilds a machine exactly ([`replay_step`]); a machine's state also encodes to
//! bytes and back exactly ([`Governor::encode_state`], [`Machine`]), so replay can start
//! from a snapshot.
//!
//! Architecture invariant: this crate does no I/O, reads no clock, spawns nothing and logs
//! nothing. It depends on neither tokio, ractor nor tracing (a workspace test enforces it).

mod args;
mod codec;
mod governor;
mod ids;
mod kind;
mod money;
mod rejection;
mod request;
mod time;

#[cfg(test)]
mod testing;

pub mod graph;
pub mod limits;

pub mod account;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod compliance;
pub mod entitlement;
pub mod quota;
pub mod saga;
pub mod subscription;
pub mod tenant;

pub use args::{ArgError, ArgProblem, ArgReader, Args, CommandSpec};
pub use codec::{
    CodecProblem, Machine, RawTransition, StateCodec, StateCodecError, StateReader, StateWriter,
    kind_of_tag, kind_tag,
};
pub use governor::{Governor, ReplayError, StateSpec, StateTimeout, Transition, replay_step};
pub use ids::{IdError, ResourceId, TenantId};
pub use kind::GovernorKind;
pub use money::{Currency, Money, MoneyError};
pub use rejection::Rejection;
pub use request::{Metadata, MetadataError, Reason, ReasonError, Request};
pub use time::{Ctx, DAY_MS, HOUR_MS, MINUTE_MS, Timestamp, civil_from_days, days_from_civil};
