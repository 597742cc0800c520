//! The one way Clearance reads a duration, everywhere one is written: in
//! workflow files (`sla = "10d"`), the API (`"expires_in": "14d"`,
//! `?expiring_within=30d`, the admin clock's `"advance": "3d"`) and the
//! command line (`--ttl 8h`). It is humantime's format: a number and a unit
//! (`s`, `m`, `h`, `d`, `w`; also `min`, `hours`, `days`, `weeks`, …),
//! several of them added together (`1h 30m`). Durations that no date could
//! hold (beyond about 250,000 years) are refused here, so that adding one to
//! a time is then checked once more by the caller, never wraps.

use chrono::TimeDelta;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration such as \"14d\", \"8h\" or \"1h 30m\"")]
    Unreadable(String),
    #[error("`{0}` is longer than any date can reach")]
    TooLong(String),
}

/// Reads `text` (see the module documentation).
pub fn parse(text: &str) -> Result<TimeDelta, DurationError> {
    let shown = || {
        text.chars()
            .filter(|c| !c.is_control())
            .take(40)
            .collect::<String>()
    };
    // humantime reads any whitespace between parts, `1\n4d` too: a duration
    // is one line, so a control character in it is refused first.
    if text
        .trim()
        .chars()
        .any(crate::validation::is_foreign_to_line)
    {
        return Err(DurationError::Unreadable(shown()));
    }
    let duration =
        humantime::parse_duration(text.trim()).map_err(|_| DurationError::Unreadable(shown()))?;
    TimeDelta::from_std(duration)
        .ok()
        .filter(|delta| *delta <= TimeDelta::days(100_000 * 365))
        .ok_or_else(|| DurationError::TooLong(shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse("14d"), Ok(TimeDelta::days(14)));
        assert_eq!(parse("8h"), Ok(TimeDelta::hours(8)));
        assert_eq!(parse("2w"), Ok(TimeDelta::weeks(2)));
        assert_eq!(parse("1h 30m"), Ok(TimeDelta::minutes(90)));
        assert_eq!(parse(" 45s "), Ok(TimeDelta::seconds(45)));
        assert!(matches!(
            parse("ten days"),
            Err(DurationError::Unreadable(_))
        ));
        assert!(matches!(parse("-3d"), Err(DurationError::Unreadable(_))));
        for hostile in ["1\t4d", "1\n4d", "14\u{b}d", "1h\u{2028}30m"] {
            assert!(
                matches!(parse(hostile), Err(DurationError::Unreadable(_))),
                "{hostile:?}"
            );
        }
        assert!(matches!(parse(""), Err(DurationError::Unreadable(_))));
        assert!(matches!(
            parse("99999999999d"),
            Err(DurationError::TooLong(_))
        ));
    }
}
