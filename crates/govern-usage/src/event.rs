//! A usage event and its ids, checked when built: what a host reports it used.

use crate::UsageError;
use govern_governors::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest id (event, meter, tenant, rate key), in bytes.
pub const ID_LEN_MAX: usize = 128;
/// How far after `now` an event may be dated (clock skew between the host and the runtime):
/// five minutes.
pub const EVENT_FUTURE_SKEW_MS: u64 = 5 * 60 * 1_000;

/// Checks an id: not empty, at most [`ID_LEN_MAX`] bytes, no control characters.
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<(), UsageError> {
    if id.is_empty() {
        return Err(UsageError::EmptyId { what });
    }
    if id.len() > ID_LEN_MAX {
        return Err(UsageError::IdTooLong { what, len: id.len(), max: ID_LEN_MAX });
    }
    if id.chars().any(char::is_control) {
        return Err(UsageError::IdControlChar { what });
    }
    Ok(())
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id, checked: not empty, at most [`ID_LEN_MAX`] bytes, no control characters.
            ///
            /// # Errors
            /// [`UsageError::EmptyId`], [`UsageError::IdTooLong`] or
            /// [`UsageError::IdControlChar`].
            pub fn new(id: impl Into<String>) -> Result<Self, UsageError> {
                let id = id.into();
                check_id($what, &id)?;
                Ok(Self(id))
            }

            /// The id as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = UsageError;
            fn try_from(id: String) -> Result<Self, UsageError> {
                Self::new(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        /// Looked up by `&str` in maps keyed by the id (it hashes and compares as its text).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

define_id!(
    /// The name of a meter (`api_calls`, `ai_tokens`, ...).
    MeterId,
    "meter id"
);
define_id!(
    /// The caller's id of one usage event, unique per tenant: the deduplication key.
    EventId,
    "event id"
);

/// A whole, positive quantity from a signed number.
///
/// # Errors
/// [`UsageError::NegativeQuantity`] or [`UsageError::ZeroQuantity`].
pub fn quantity_from_i64(quantity: i64) -> Result<u64, UsageError> {
    match u64::try_from(quantity) {
        Err(_) => Err(UsageError::NegativeQuantity(quantity)),
        Ok(0) => Err(UsageError::ZeroQuantity),
        Ok(q) => Ok(q),
    }
}

/// A whole, positive quantity from text (a scenario file, a request): `"12"`, not `"1.5"`,
/// `"-3"` or `"0"`.
///
/// # Errors
/// [`UsageError::NegativeQuantity`], [`UsageError::ZeroQuantity`] or
/// [`UsageError::NotWholeQuantity`].
pub fn quantity_from_str(text: &str) -> Result<u64, UsageError> {
    let t = text.trim();
    if let Ok(q) = t.parse::<u64>() {
        return if q == 0 { Err(UsageError::ZeroQuantity) } else { Ok(q) };
    }
    match t.parse::<i64>() {
        Ok(q) => quantity_from_i64(q),
        Err(_) => Err(UsageError::NotWholeQuantity(text.to_owned())),
    }
}

/// One report of usage: `quantity` units of `meter`, used at `at`, identified by `event_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The meter counted.
    pub meter: MeterId,
    /// Units used, greater than zero.
    pub quantity: u64,
    /// The deduplication key.
    pub event_id: EventId,
    /// When the host says the usage happened; checked against `now` (skew, dedup window) but
    /// not used to pick the period, which is the period of `now`.
    #[serde(rename = "at_ms", with = "crate::event::ts")]
    pub at: Timestamp,
}

impl UsageEvent {
    /// An event, checked.
    ///
    /// # Errors
    /// An id error for `meter` or `event_id`, or [`UsageError::ZeroQuantity`].
    pub fn new(
        meter: &str,
        quantity: u64,
        event_id: &str,
        at: Timestamp,
    ) -> Result<Self, UsageError> {
        let meter = MeterId::new(meter)?;
        let event_id = EventId::new(event_id)?;
        if quantity == 0 {
            return Err(UsageError::ZeroQuantity);
        }
        Ok(Self { meter, quantity, event_id, at })
    }
}

/// A [`Timestamp`] in serde as its milliseconds since the epoch (`govern-governors` has no
/// serde).
pub(crate) mod ts {
    use govern_governors::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(at.as_ms())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        u64::deserialize(d).map(Timestamp)
    }
}
