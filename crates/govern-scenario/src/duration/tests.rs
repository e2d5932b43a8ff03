//! The duration grammar: what it takes, what it refuses and why, and the limit.

use std::time::Duration;

use govern_governors::DAY_MS;

use super::{DurationError, format_limit, parse};

const MAX: Duration = Duration::from_millis(10 * DAY_MS);

#[test]
fn groups_add_up() {
    assert_eq!(parse("1d 2h 3m 4s 5ms", MAX), Ok(Duration::from_millis(93_784_005)));
    assert_eq!(parse("10d", MAX), Ok(MAX));
    assert_eq!(parse("90m", MAX), Ok(Duration::from_secs(5_400)));
}

#[test]
fn each_refusal_says_why() {
    let cases = [
        ("", DurationError::Layout),
        ("1d  2h", DurationError::Layout),
        ("1.5d", DurationError::Unit { group: "1.5d".into(), unit: ".5d".into() }),
        ("1y", DurationError::Unit { group: "1y".into(), unit: "y".into() }),
        ("0d", DurationError::Number("0d".into())),
        ("-1d", DurationError::Number("-1d".into())),
        ("d", DurationError::Number("d".into())),
        ("5 d", DurationError::NoUnit("5".into())),
        ("1d 1d", DurationError::Order("1d".into())),
        ("1ms 1s", DurationError::Order("1s".into())),
        ("11d", DurationError::TooLong { max: "10d".into() }),
        ("9d 24h 1ms", DurationError::TooLong { max: "10d".into() }),
        ("99999999999999999999d", DurationError::TooLong { max: "10d".into() }),
        ("18446744073709551615d", DurationError::TooLong { max: "10d".into() }),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text, MAX), Err(want), "{text:?}");
    }
}

#[test]
fn limits_print_in_the_largest_unit_that_divides_them() {
    assert_eq!(format_limit(MAX), "10d");
    assert_eq!(format_limit(Duration::from_secs(90)), "90s");
    assert_eq!(format_limit(Duration::from_millis(1_001)), "1001ms");
}
