//! The catalog's names: plan ids, features, meters, refusal codes and evidence ids. Each is a
//! newtype over a string checked once, when it is made: 1 to [`ID_LEN_MAX`] characters of
//! lower-case ASCII letters, digits, `_` and `-`, starting with a letter or a digit.

use std::fmt;

/// The longest id, in bytes.
pub const ID_LEN_MAX: usize = 64;

/// Why a string is not an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// Longer than [`ID_LEN_MAX`].
    #[error("is {0} bytes long; at most {ID_LEN_MAX}")]
    TooLong(usize),
    /// A character other than `a-z`, `0-9`, `_`, `-`, or a first character other than a
    /// letter or a digit.
    #[error(
        "has `{0}` at byte {1}; an id is lower-case letters, digits, `_` and `-`, starting with a letter or a digit"
    )]
    BadChar(char, usize),
}

fn check(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > ID_LEN_MAX {
        return Err(IdError::TooLong(s.len()));
    }
    for (i, c) in s.char_indices() {
        let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || (i > 0 && (c == '_' || c == '-'));
        if !ok {
            return Err(IdError::BadChar(c, i));
        }
    }
    Ok(())
}

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `s` (see the module's rules).
            ///
            /// # Errors
            /// [`IdError`] when `s` is not an id.
            pub fn new(s: &str) -> Result<Self, IdError> {
                check(s).map(|()| Self(s.to_owned()))
            }

            /// The id as written.
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

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

id!(
    /// A plan's id: the key of `[plans.<id>]`, what a subscription names.
    PlanId
);
id!(
    /// A feature a plan may include: the key of `[features.<id>]`.
    Feature
);
id!(
    /// A refusal code: the key of `[refusals.<code>]`, stable, what a client branches on.
    RefusalCode
);
id!(
    /// A piece of evidence (a document or certification): the key of `[evidence.<id>]`.
    EvidenceId
);
id!(
    /// A metered quantity a plan limits. The well-known ones are [`Meter::WELL_KNOWN`]; any
    /// other id is a meter too.
    Meter
);

impl Meter {
    /// Seats (users) of the tenant; a gauge.
    pub const SEATS: &str = "seats";
    /// Workflows defined; a gauge.
    pub const WORKFLOWS: &str = "workflows";
    /// Workflow executions; reset monthly unless the limit says otherwise.
    pub const EXECUTIONS: &str = "executions";
    /// Requests per second; a rate, checked against the envelope's throughput.
    pub const REQUESTS_PER_SECOND: &str = "requests_per_second";
    /// Executions running at once; a gauge.
    pub const CONCURRENT_EXECUTIONS: &str = "concurrent_executions";
    /// Bytes stored; a gauge.
    pub const STORAGE_BYTES: &str = "storage_bytes";
    /// AI tokens consumed; reset monthly unless the limit says otherwise.
    pub const AI_TOKENS: &str = "ai_tokens";
    /// The meters every host knows, in the order `govern plans show` prints them.
    pub const WELL_KNOWN: [&str; 7] = [
        Self::SEATS,
        Self::WORKFLOWS,
        Self::EXECUTIONS,
        Self::REQUESTS_PER_SECOND,
        Self::CONCURRENT_EXECUTIONS,
        Self::STORAGE_BYTES,
        Self::AI_TOKENS,
    ];

    /// Whether this is one of [`Meter::WELL_KNOWN`].
    #[must_use]
    pub fn is_well_known(&self) -> bool {
        Self::WELL_KNOWN.contains(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert_eq!(PlanId::new("pro-2").unwrap().as_str(), "pro-2");
        assert_eq!(PlanId::new(""), Err(IdError::Empty));
        assert_eq!(PlanId::new("Pro"), Err(IdError::BadChar('P', 0)));
        assert_eq!(PlanId::new("-pro"), Err(IdError::BadChar('-', 0)));
        assert_eq!(PlanId::new("a b"), Err(IdError::BadChar(' ', 1)));
        assert_eq!(PlanId::new(&"a".repeat(65)), Err(IdError::TooLong(65)));
        assert!(PlanId::new(&"a".repeat(64)).is_ok());
    }
}
