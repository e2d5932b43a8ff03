//! Tenant and resource ids: validated, cheap to clone, printable.

use std::fmt;
use std::sync::Arc;

use crate::limits::ID_LEN_MAX;

/// Why a string is not a valid id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is the empty string.
    #[error("id is empty")]
    Empty,
    /// The id is longer than [`ID_LEN_MAX`] bytes.
    #[error("id is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id holds a character outside `A-Z a-z 0-9 . _ : -`.
    #[error("id has {found:?} at byte {index}; allowed are A-Z a-z 0-9 . _ : -")]
    BadChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
}

/// Whether an id may hold byte `b`: `A-Z a-z 0-9 . _ : -` (all ASCII).
const fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// The id rule, one for tenant and resource ids: 1 to [`ID_LEN_MAX`] bytes, each an id
/// byte ([`is_id_byte`]).
fn validate_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > ID_LEN_MAX {
        return Err(IdError::TooLong { len: s.len(), max: ID_LEN_MAX });
    }
    match s.bytes().position(|b| !is_id_byte(b)) {
        // Every byte before it is ASCII, so a character starts there.
        Some(index) => {
            let found = s.get(index..).and_then(|rest| rest.chars().next());
            Err(IdError::BadChar { found: found.unwrap_or(char::REPLACEMENT_CHARACTER), index })
        }
        None => Ok(()),
    }
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `s` as an id.
            ///
            /// # Errors
            /// [`IdError`] when `s` is empty, too long or has a character outside
            /// `A-Z a-z 0-9 . _ : -`.
            pub fn new(s: &str) -> Result<Self, IdError> {
                validate_id(s)?;
                Ok(Self(Arc::from(s)))
            }

            /// Checks `s` against the id rule without building an id: what [`Self::new`]
            /// checks. The rule is one for tenant and resource ids.
            ///
            /// # Errors
            /// As [`Self::new`].
            pub fn validate(s: &str) -> Result<(), IdError> {
                validate_id(s)
            }

            /// Whether an id may hold byte `b`: `A-Z a-z 0-9 . _ : -` (the same for tenant and
            /// resource ids). Every id byte is ASCII.
            #[must_use]
            pub const fn is_id_byte(b: u8) -> bool {
                is_id_byte(b)
            }

            /// The id as a string slice.
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

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

define_id!(
    /// A tenant: the unit of isolation. No command or query crosses tenants.
    TenantId
);
define_id!(
    /// One resource of a tenant (a subscription, a payment, an account...), unique per kind.
    ResourceId
);

#[cfg(test)]
mod tests {
    use super::{IdError, ResourceId, TenantId};
    use crate::limits::ID_LEN_MAX;

    #[test]
    fn the_id_rule_names_what_is_wrong() {
        assert_eq!(TenantId::validate(""), Err(IdError::Empty));
        let long = "a".repeat(ID_LEN_MAX + 1);
        assert_eq!(
            ResourceId::validate(&long),
            Err(IdError::TooLong { len: ID_LEN_MAX + 1, max: ID_LEN_MAX })
        );
        assert_eq!(TenantId::validate(&long[1..]), Ok(()));
        assert_eq!(TenantId::validate("a b"), Err(IdError::BadChar { found: ' ', index: 1 }));
        // A character of several bytes is named whole, at its first byte.
        assert_eq!(
            ResourceId::new("ab€c").map(drop),
            Err(IdError::BadChar { found: '€', index: 2 })
        );
        assert_eq!(TenantId::new("Az09._:-").map(|id| id.to_string()), Ok("Az09._:-".into()));
    }

    #[test]
    fn id_bytes_are_the_characters_of_the_rule() {
        for b in 0..=u8::MAX {
            let c = char::from(b);
            let rule = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
            assert_eq!(TenantId::is_id_byte(b), rule, "{b:#x}");
            assert_eq!(ResourceId::is_id_byte(b), rule, "{b:#x}");
        }
    }
}
