//! A problem found in a catalog: where (file, line, column, field), what, and how to fix it.

use std::fmt;

/// Which of seed 002's four validators found a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// The file's shape: TOML syntax, unknown keys, types, missing fields, bounds, ids, money,
    /// durations, duplicate definitions, references to plans and features.
    Schema,
    /// Envelopes and limits agree: within a plan, and along every upgrade path.
    Consistency,
    /// Every refusal code a limit, feature or upgrade path names is in the refusal table.
    Refusals,
    /// Every piece of evidence a plan requires is in the catalog, with a document.
    Evidence,
}

impl Check {
    /// Its name, as `docs/plans.md` writes it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Schema => "schema",
            Self::Consistency => "consistency",
            Self::Refusals => "refusals",
            Self::Evidence => "evidence",
        }
    }
}

/// One problem in a catalog file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// The file, as the caller named it.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
    /// The dotted path of the field (`plans.pro.limits.seats`); empty for the whole file.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Which validator found it.
    pub check: Check,
}

/// `file:line:column: field: message`, then `  hint: ...` on a second line.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}\n  hint: {}", self.message, self.hint)
    }
}
