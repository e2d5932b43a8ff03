//! The one duration grammar of scenario files (`docs/scenarios.md`, "Durations"): one or more
//! `<integer><unit>` groups separated by single spaces, units from a closed list, each unit at
//! most once and the largest first, no zero, no fractions, no signs. `15d`, `2h 30m`, `500ms`.
//!
//! Written by hand rather than with `humantime::parse_duration`, which also takes years and
//! months (whose length is ambiguous), fractions (`1.5d`), spaces inside a group (`5 d`) and
//! repeated units (`1d 1d 1d`): a file should have one spelling for one duration.

use std::time::Duration;

use govern_governors::{DAY_MS, HOUR_MS, MINUTE_MS};

/// The units, largest first, with their length in milliseconds.
const UNITS: &[(&str, u64)] =
    &[("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", 1_000), ("ms", 1)];

/// What a duration looks like, for problems.
pub(crate) const GRAMMAR: &str = "one or more `<integer><unit>` groups separated by single \
    spaces, units from `d`, `h`, `m`, `s`, `ms`, each at most once and the largest first, \
    integers from 1 without leading zeros, like `15d`, `90m`, `2h 30m` or `500ms`";

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DurationError {
    /// Empty, or a space out of place (leading, trailing, doubled, inside a group).
    #[error("a duration is groups like `15d` separated by single spaces")]
    Layout,
    /// A group without its integer, or with a sign, a fraction or a leading zero.
    #[error("`{0}` does not start with a whole number from 1 without leading zeros")]
    Number(String),
    /// A group with no unit (`5 d`, `15`).
    #[error("`{0}` has no unit")]
    NoUnit(String),
    /// A unit not in the list (`y`, `w`, `month`, `D`...).
    #[error("`{unit}` in `{group}` is not a unit")]
    Unit {
        /// The group.
        group: String,
        /// What stands where the unit should.
        unit: String,
    },
    /// A unit repeated or after a smaller one (`1d 1d`, `30m 2h`).
    #[error("`{0}` comes after a unit as small or smaller")]
    Order(String),
    /// More than `max` in all.
    #[error("more than {max}")]
    TooLong {
        /// The limit, as written in the grammar.
        max: String,
    },
}

/// Parses `text` in the grammar; durations longer than `max` are refused.
pub(crate) fn parse(text: &str, max: Duration) -> Result<Duration, DurationError> {
    let too_long = || DurationError::TooLong { max: format_limit(max) };
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if text.is_empty() {
        return Err(DurationError::Layout);
    }
    let mut total: u64 = 0;
    // Index in UNITS of the last unit seen: the next must come strictly after it.
    let mut last: Option<usize> = None;
    for group in text.split(' ') {
        if group.is_empty() {
            return Err(DurationError::Layout);
        }
        let digits = group.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = group.split_at(digits);
        if number.is_empty() || number.starts_with('0') {
            return Err(DurationError::Number(group.to_owned()));
        }
        if unit.is_empty() {
            return Err(DurationError::NoUnit(group.to_owned()));
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(DurationError::Unit { group: group.to_owned(), unit: unit.to_owned() });
        };
        if last.is_some_and(|l| index <= l) {
            return Err(DurationError::Order(group.to_owned()));
        }
        last = Some(index);
        // Digits only: a parse failure is an overflow of u64.
        let n: u64 = number.parse().map_err(|_| too_long())?;
        let ms = n.checked_mul(UNITS[index].1).ok_or_else(too_long)?;
        total = total.checked_add(ms).filter(|t| *t <= max_ms).ok_or_else(too_long)?;
    }
    Ok(Duration::from_millis(total))
}

/// `max` in the grammar's largest unit that divides it (`3650d`).
pub(crate) fn format_limit(max: Duration) -> String {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    let (name, size) = UNITS.iter().copied().find(|(_, size)| ms % size == 0).unwrap_or(("ms", 1));
    format!("{}{name}", ms / size)
}

#[cfg(test)]
mod tests;
