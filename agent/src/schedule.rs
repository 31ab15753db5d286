//! When collectors run: crontab expressions as users write them, or fixed intervals.
//!
//! Crontab syntax here is the standard 5-field form (`*/15 * * * *`, weekday 0 or 7 =
//! Sunday, names like `mon-fri`), optionally with a leading seconds field. The `cron` crate
//! wants a seconds field and counts Sunday as 1, so expressions are translated: a seconds
//! field `0` is added when missing and the weekday field is expanded to day names.

use chrono::{DateTime, Utc};
use std::str::FromStr;
use std::time::Duration;

/// A crontab expression must fire at least once within this many days from now (five years,
/// so February 29 is accepted).
const FIRE_WITHIN_DAYS: i64 = 5 * 365 + 2;

/// Why a crontab expression was refused (the message names the expression or the field).
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// Not 5 fields (or 6 with seconds first).
    #[error(
        "crontab expression needs 5 fields (minute hour day month weekday), or 6 with seconds first; got {0}"
    )]
    FieldCount(usize),
    /// A numeric weekday above 7.
    #[error("weekday {0} is out of range 0-7")]
    WeekdayOutOfRange(u32),
    /// A weekday that is neither a number nor a day name.
    #[error("unknown weekday `{0}`")]
    UnknownWeekday(String),
    /// A step (`*/N`) in the weekday field that is not a positive number.
    #[error("invalid step in weekday field `{0}`")]
    WeekdayStep(String),
    /// A weekday range whose end is before its start (`5-1`).
    #[error("weekday range `{0}` runs backwards")]
    BackwardsRange(String),
    /// The `cron` crate refused the (translated) expression.
    #[error("invalid crontab expression `{expr}`: {source}")]
    Invalid {
        /// As the user wrote it.
        expr: String,
        /// What the `cron` crate said.
        #[source]
        source: cron::error::Error,
    },
    /// The expression parses but never fires (e.g. February 30).
    #[error(
        "crontab expression `{expr}` never fires in the next {years} years (a day that does not exist?)",
        years = FIRE_WITHIN_DAYS / 365
    )]
    NeverFires {
        /// As the user wrote it.
        expr: String,
    },
}

/// A duration that [`parse_duration`] refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid duration `{input}` (use e.g. 30s, 15m, 1h30m, 500ms, 2d): {source}")]
pub struct DurationError {
    /// As the user wrote it.
    pub input: String,
    /// What humantime said.
    #[source]
    pub source: humantime::DurationError,
}

/// A collector's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A crontab expression (UTC).
    Cron {
        /// As the user wrote it.
        source: String,
        /// The translated schedule.
        schedule: Box<cron::Schedule>,
    },
    /// Every so often.
    Every(Duration),
}

impl Schedule {
    /// Parses a crontab expression.
    pub fn cron(expr: &str) -> Result<Schedule, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => return Err(CronError::FieldCount(n)),
        };
        let weekdays = weekday_names(rest[4])?;
        let translated = format!(
            "{seconds} {} {} {} {} {weekdays}",
            rest[0], rest[1], rest[2], rest[3]
        );
        let schedule =
            cron::Schedule::from_str(&translated).map_err(|source| CronError::Invalid {
                expr: expr.to_string(),
                source,
            })?;
        // `0 0 30 2 *` parses but never fires: a collector that would never run is an error.
        let now = Utc::now();
        let horizon = now
            .checked_add_signed(chrono::Duration::days(FIRE_WITHIN_DAYS))
            .unwrap_or(now);
        if schedule.after(&now).next().is_none_or(|t| t > horizon) {
            return Err(CronError::NeverFires {
                expr: expr.to_string(),
            });
        }
        Ok(Schedule::Cron {
            source: expr.to_string(),
            schedule: Box::new(schedule),
        })
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { schedule, .. } => schedule.after(&after).next(),
            Schedule::Every(d) => chrono::Duration::from_std(*d)
                .ok()
                .and_then(|d| after.checked_add_signed(d)),
        }
    }

    /// The nominal period (for freshness expectations): the interval, or the gap between the
    /// next two cron firings.
    pub fn period(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            Schedule::Every(d) => Some(*d),
            Schedule::Cron { .. } => {
                let a = self.next_after(now)?;
                let b = self.next_after(a)?;
                (b - a).to_std().ok()
            }
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Cron { source, .. } => write!(f, "cron `{source}`"),
            Schedule::Every(d) => write!(f, "every {}", format_duration(*d)),
        }
    }
}

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn weekday_number(s: &str) -> Result<u32, CronError> {
    if let Ok(n) = s.parse::<u32>() {
        return if n <= 7 {
            Ok(n % 7)
        } else {
            Err(CronError::WeekdayOutOfRange(n))
        };
    }
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .map(|p| p as u32)
        .ok_or_else(|| CronError::UnknownWeekday(s.to_string()))
}

/// Expands a Unix weekday field (`*`, `1-5`, `0,6`, `*/2`, `mon-fri`, `5-7`) into day names,
/// which the `cron` crate reads without the numbering difference.
fn weekday_names(field: &str) -> Result<String, CronError> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| CronError::WeekdayStep(part.to_string()))?,
            ),
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = weekday_number(a)?;
            // `7` as the end of a range means Sunday at the end of the week.
            let b = if b == "7" { 7 } else { weekday_number(b)? };
            if b < a {
                return Err(CronError::BackwardsRange(range.to_string()));
            }
            (a, b)
        } else {
            let d = weekday_number(range)?;
            (d, if step > 1 { 6 } else { d })
        };
        let mut d = start;
        while d <= end {
            days[(d % 7) as usize] = true;
            d += step;
        }
    }
    let names: Vec<&str> = (0..7).filter(|&i| days[i]).map(|i| DAYS[i]).collect();
    Ok(names.join(","))
}

/// Parses a duration such as `90s`, `15m`, `1h30m`, `500ms` or `2d` (humantime's grammar;
/// a value too large for a duration is an error, never a wrap-around).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(s.trim()).map_err(|source| DurationError {
        input: s.to_string(),
        source,
    })
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `366d`, `500ms`).
///
/// Kept by hand: humantime's formatter counts months of 30.44 days and years of 365.25, so
/// `366d` would read `1year 18h`; config limits and schedules are whole days.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 && s < 60 {
        return format!("{}ms", d.as_millis());
    }
    let (days, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    let out: String = [(days, "d"), (h, "h"), (m, "m"), (sec, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() {
        "0s".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Weekday};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn five_field_crontab_is_accepted() {
        let s = Schedule::cron("*/15 * * * *").expect("valid");
        assert_eq!(
            s.next_after(at(2026, 1, 1, 10, 7)),
            Some(at(2026, 1, 1, 10, 15))
        );
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        // 2026-11-27 is a Friday; the next Sunday is 2026-11-29.
        for expr in ["0 3 * * 0", "0 3 * * 7", "0 3 * * sun"] {
            let next = Schedule::cron(expr)
                .expect(expr)
                .next_after(at(2026, 11, 27, 12, 0));
            let next = next.expect("fires");
            assert_eq!(next.weekday(), Weekday::Sun, "{expr}");
            assert_eq!(next, at(2026, 11, 29, 3, 0), "{expr}");
        }
    }

    #[test]
    fn weekday_ranges_use_unix_numbering() {
        assert_eq!(weekday_names("1-5").expect("ok"), "MON,TUE,WED,THU,FRI");
        assert_eq!(weekday_names("5-7").expect("ok"), "SUN,FRI,SAT");
        assert_eq!(weekday_names("*/2").expect("ok"), "SUN,TUE,THU,SAT");
        assert_eq!(weekday_names("mon,wed").expect("ok"), "MON,WED");
        assert!(weekday_names("8").is_err());
        assert!(weekday_names("5-1").is_err());
    }

    #[test]
    fn month_ends_and_leap_days() {
        // The 31st skips months without one.
        let s = Schedule::cron("0 0 31 * *").expect("valid");
        assert_eq!(
            s.next_after(at(2026, 4, 1, 0, 0)),
            Some(at(2026, 5, 31, 0, 0))
        );
        // 29 February only in leap years.
        let s = Schedule::cron("0 12 29 2 *").expect("valid");
        assert_eq!(
            s.next_after(at(2026, 3, 1, 0, 0)),
            Some(at(2028, 2, 29, 12, 0))
        );
        // Across a year end.
        let s = Schedule::cron("30 23 * * *").expect("valid");
        assert_eq!(
            s.next_after(at(2026, 12, 31, 23, 45)),
            Some(at(2027, 1, 1, 23, 30))
        );
    }

    #[test]
    fn utc_has_no_dst_jumps() {
        // 2026-03-29 is the EU DST change; in UTC every hour exists exactly once.
        let s = Schedule::cron("0 * * * *").expect("valid");
        let mut t = at(2026, 3, 29, 0, 30);
        for h in 1..=4 {
            t = s.next_after(t).expect("next");
            assert_eq!(t, at(2026, 3, 29, h, 0));
        }
    }

    #[test]
    fn bad_expressions_are_rejected() {
        assert!(Schedule::cron("* * *").is_err());
        assert!(Schedule::cron("61 * * * *").is_err());
        assert!(Schedule::cron("*/15 * * * * * *").is_err());
        assert!(Schedule::cron("30 */15 * * * *").is_ok());
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(parse_duration("5 minutes"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("1000000000000000d").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(366 * 86400)), "366d");
    }
}

#[cfg(test)]
mod never_fires {
    use super::*;

    #[test]
    fn a_day_that_never_comes_is_refused_and_leap_days_are_not() {
        for expr in ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"] {
            let e = Schedule::cron(expr).expect_err(expr);
            assert!(matches!(e, CronError::NeverFires { .. }), "{expr}: {e}");
            assert!(e.to_string().contains("never fires"), "{expr}: {e}");
        }
        assert!(Schedule::cron("0 0 29 2 *").is_ok());
    }

    #[test]
    fn an_interval_past_the_calendar_has_no_next_run_instead_of_panicking() {
        let s = Schedule::Every(Duration::from_secs(u64::MAX / 4));
        assert_eq!(s.next_after(Utc::now()), None);
        let s = Schedule::Every(Duration::from_secs(86400 * 365 * 300_000));
        assert_eq!(s.next_after(Utc::now()), None);
    }
}
