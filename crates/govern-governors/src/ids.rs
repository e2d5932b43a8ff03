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

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > ID_LEN_MAX {
        return Err(IdError::TooLong { len: s.len(), max: ID_LEN_MAX });
    }
    match s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        Some((index, found)) => Err(IdError::BadChar { found, index }),
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
                validate(s)?;
                Ok(Self(Arc::from(s)))
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
