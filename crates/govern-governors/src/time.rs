//! Time as a value. The pure core never reads a clock: the caller passes `Ctx::now`.

use std::fmt;

/// One minute in milliseconds.
pub const MINUTE_MS: u64 = 60 * 1_000;
/// One hour in milliseconds.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp `ms` milliseconds later, saturating at the end of time.
    #[must_use]
    pub const fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_ms(self) -> u64 {
        self.0
    }
}

/// RFC 3339 in UTC, e.g. `2026-01-15T00:00:00Z`, with `.mmm` when the milliseconds are not zero.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1_000;
        let secs = self.0 / 1_000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3_600,
            rem % 3_600 / 60,
            rem % 60
        )?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

/// (year, month, day) of the `days`-th day after 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative days). Usage periods
/// (`govern-usage`) use it for calendar months.
#[must_use]
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days from 1970-01-01 to `year-month-day` (Howard Hinnant's `days_from_civil`), the inverse
/// of [`civil_from_days`], for dates from 1970 on, saturating for years past the end of time;
/// `None` before 1970 or for a month outside 1 to 12. Usage periods (`govern-usage`) and
/// billing periods use it for the first day of a month.
#[must_use]
pub fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if year < 1970 || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.saturating_mul(146_097).saturating_add(doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::{Timestamp, civil_from_days, days_from_civil};

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in (0..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days));
        }
        assert_eq!(days_from_civil(2026, 1, 1), Some(1_767_225_600_000 / super::DAY_MS));
        assert_eq!(days_from_civil(1969, 12, 31), None);
        assert_eq!(days_from_civil(2026, 13, 1), None);
    }

    #[test]
    fn timestamps_print_as_rfc3339_utc() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(1_767_225_600_000).to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(Timestamp(951_782_400_000 + 3_723_004).to_string(), "2000-02-29T01:02:03.004Z");
        assert_eq!(Timestamp(4_107_542_399_999).to_string(), "2100-02-28T23:59:59.999Z");
        assert_eq!(Timestamp(253_402_300_799_000).to_string(), "9999-12-31T23:59:59Z");
    }
}

/// Everything a decision may know besides the machine and the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// The time of the decision, from the runtime's clock (virtual in tests).
    pub now: Timestamp,
}

impl Ctx {
    /// A context at `now_ms` milliseconds since the epoch.
    #[must_use]
    pub const fn at_ms(now_ms: u64) -> Self {
        Self { now: Timestamp(now_ms) }
    }
}
