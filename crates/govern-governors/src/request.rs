//! A command as a caller sends it: the typed command, a reason and metadata.
//!
//! The reason and metadata do not steer the decision; they travel into the receipt so that
//! every transition says why it happened and in which context.

use std::collections::BTreeMap;

use crate::limits::{
    METADATA_ENTRIES_MAX, METADATA_KEY_LEN_MAX, METADATA_VALUE_LEN_MAX, REASON_LEN_MAX,
};

/// What a reason must be, for a hint beside a [`ReasonError`] (its numbers are
/// [`REASON_LEN_MAX`]'s; a test holds them to it).
const REASON_EXPECTED: &str = "1 to 512 bytes, not only white space";

/// Why a reason string is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReasonError {
    /// Empty or only white space.
    #[error("reason is empty")]
    Empty,
    /// Longer than [`REASON_LEN_MAX`] bytes.
    #[error("reason is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl ReasonError {
    /// What a reason must be, for a hint beside this error's message.
    #[must_use]
    pub fn expected(&self) -> &'static str {
        REASON_EXPECTED
    }
}

/// Why a command was sent, in the caller's words. Non-empty, bounded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reason(String);

impl Reason {
    /// Validates a reason.
    ///
    /// # Errors
    /// [`ReasonError`] when empty or too long.
    pub fn new(reason: impl Into<String>) -> Result<Self, ReasonError> {
        let reason = reason.into();
        if reason.trim().is_empty() {
            return Err(ReasonError::Empty);
        }
        if reason.len() > REASON_LEN_MAX {
            return Err(ReasonError::TooLong { len: reason.len(), max: REASON_LEN_MAX });
        }
        Ok(Self(reason))
    }

    /// The reason text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why metadata is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// More than [`METADATA_ENTRIES_MAX`] entries.
    #[error("metadata has more than {max} entries")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// A key is empty, too long or not `a-z 0-9 _ . -`.
    #[error("metadata key {key:?} must be 1 to {max} characters of a-z 0-9 _ . -")]
    BadKey {
        /// The key.
        key: String,
        /// The length limit.
        max: usize,
    },
    /// A value is longer than [`METADATA_VALUE_LEN_MAX`] bytes.
    #[error("metadata value of {key:?} is longer than {max} bytes")]
    ValueTooLong {
        /// The key.
        key: String,
        /// The limit.
        max: usize,
    },
}

impl MetadataError {
    /// What metadata must look like, in the terms of the limit this error broke, for a hint
    /// beside its message (the numbers are the limits'; a test holds them to it).
    #[must_use]
    pub fn expected(&self) -> &'static str {
        match self {
            Self::TooMany { .. } => "at most 32 entries",
            Self::BadKey { .. } => "keys of 1 to 64 characters of a-z 0-9 _ . -",
            Self::ValueTooLong { .. } => "values of at most 1024 bytes",
        }
    }
}

/// Free-form context of a command (request id, actor, channel...), sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// No metadata.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one entry.
    ///
    /// # Errors
    /// [`MetadataError`] on a bad key, a long value, or too many entries.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), MetadataError> {
        let (key, value) = (key.into(), value.into());
        let key_ok = !key.is_empty()
            && key.len() <= METADATA_KEY_LEN_MAX
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if !key_ok {
            return Err(MetadataError::BadKey { key, max: METADATA_KEY_LEN_MAX });
        }
        if value.len() > METADATA_VALUE_LEN_MAX {
            return Err(MetadataError::ValueTooLong { key, max: METADATA_VALUE_LEN_MAX });
        }
        if self.0.len() >= METADATA_ENTRIES_MAX && !self.0.contains_key(&key) {
            return Err(MetadataError::TooMany { max: METADATA_ENTRIES_MAX });
        }
        self.0.insert(key, value);
        Ok(())
    }

    /// Builds metadata from pairs.
    ///
    /// # Errors
    /// As [`Self::insert`].
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, MetadataError> {
        let mut m = Self::new();
        for (k, v) in pairs {
            m.insert(k, v)?;
        }
        Ok(m)
    }

    /// The entries, sorted by key.
    #[must_use]
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A typed command with the reason and metadata every command carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<C> {
    /// What to do.
    pub command: C,
    /// Why.
    pub reason: Reason,
    /// In which context.
    pub metadata: Metadata,
}

impl<C> Request<C> {
    /// A request with no metadata.
    #[must_use]
    pub fn new(command: C, reason: Reason) -> Self {
        Self { command, reason, metadata: Metadata::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_state_the_limits() {
        let errors = [
            MetadataError::TooMany { max: METADATA_ENTRIES_MAX },
            MetadataError::BadKey { key: String::new(), max: METADATA_KEY_LEN_MAX },
            MetadataError::ValueTooLong { key: String::new(), max: METADATA_VALUE_LEN_MAX },
        ];
        let hints: Vec<_> = errors.iter().map(MetadataError::expected).collect();
        assert_eq!(
            hints,
            [
                format!("at most {METADATA_ENTRIES_MAX} entries"),
                format!("keys of 1 to {METADATA_KEY_LEN_MAX} characters of a-z 0-9 _ . -"),
                format!("values of at most {METADATA_VALUE_LEN_MAX} bytes"),
            ]
        );
        assert_eq!(
            ReasonError::Empty.expected(),
            format!("1 to {REASON_LEN_MAX} bytes, not only white space")
        );
    }
}
