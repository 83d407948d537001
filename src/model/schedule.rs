//! [`Schedule`]: the `schedule:` key, and the crontab → cron-crate bridge.
//!
//! Users write standard 5-field crontab lines where day-of-week 0 (and 7) is
//! Sunday. The `cron` crate takes 6 or 7 fields with seconds first and
//! numbers day-of-week from 1 = Sunday. [`normalize_cron`] converts once, at
//! parse time, so everything after parsing speaks the crate's dialect.

use std::str::FromStr;

use chrono_tz::Tz;

/// What to do about fires missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Forget them.
    #[default]
    None,
    /// Run once for the most recent missed fire.
    Last,
    /// Run each missed fire (bounded).
    All,
}

/// What to do when a fire comes while `max_active_runs` are already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    #[default]
    Skip,
    Queue,
    CancelPrevious,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Schedule {
    /// As written in the file.
    pub expression: String,
    /// In the `cron` crate's dialect (seconds first, 1 = Sunday).
    pub cron: String,
    pub timezone: Option<String>,
    pub catchup: Catchup,
    pub max_active_runs: u32,
    pub overlap: Overlap,
}

impl Schedule {
    /// The parsed cron schedule; `cron` was validated at parse time.
    pub fn cron_schedule(&self) -> Result<cron::Schedule, cron::error::Error> {
        cron::Schedule::from_str(&self.cron)
    }

    /// The timezone the cron line is read in: UTC when none is given. The
    /// name was checked at parse time ([`parse_timezone`]), so the UTC
    /// fallback only covers a `Schedule` built by hand with a bad name.
    pub fn tz(&self) -> Tz {
        self.timezone
            .as_deref()
            .and_then(parse_timezone)
            .unwrap_or(Tz::UTC)
    }

    /// Whether the schedule repeats within the hour or every hour: its
    /// seconds, minute or hour field begins with `*` (`@hourly` counts).
    /// Such schedules follow the wall clock through daylight-saving changes,
    /// while fixed-time schedules get each wall-clock time once; the rule is
    /// Vixie cron's (it looks at the minute and hour fields).
    pub fn follows_clock(&self) -> bool {
        let cron = self.cron.trim();
        if cron.starts_with('@') {
            return cron == "@hourly";
        }
        cron.split_whitespace()
            .take(3)
            .any(|field| field.starts_with('*'))
    }
}

/// An IANA timezone name (`Europe/Paris`, `America/New_York`, `UTC`), or
/// `None` when the tz database has no such zone. Names are case-sensitive.
pub fn parse_timezone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

/// Converts a 5-field crontab line (or a 6/7-field line, or `@daily`-style
/// shortcut) to the `cron` crate's dialect and checks that it parses.
pub fn normalize_cron(expression: &str) -> Result<String, String> {
    let trimmed = expression.trim();
    let normalized = if trimmed.starts_with('@') {
        match trimmed {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@hourly" => {
                trimmed.to_string()
            }
            "@midnight" => "@daily".to_string(),
            other => return Err(format!("unknown shortcut `{other}`")),
        }
    } else {
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        match fields.len() {
            5 => {
                let dow = crontab_day_of_week(fields[4])?;
                format!(
                    "0 {} {} {} {} {}",
                    fields[0], fields[1], fields[2], fields[3], dow
                )
            }
            6 | 7 => fields.join(" "),
            n => {
                return Err(format!(
                    "expected 5 fields (minute hour day month weekday), found {n}"
                ));
            }
        }
    };
    cron::Schedule::from_str(&normalized).map_err(|error| error.to_string())?;
    Ok(normalized)
}

/// Maps a crontab day-of-week field (0-7, 0 and 7 = Sunday) to 1-7 with
/// 1 = Sunday. Named days pass through: both dialects read them alike.
fn crontab_day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" || field.chars().any(|c| c.is_ascii_alphabetic()) {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<usize>()
                    .map_err(|_| format!("bad step `{step}` in `{field}`"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step 0 in `{field}`"));
        }
        let (start, end) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (day_number(a, field)?, day_number(b, field)?),
                None => {
                    let day = day_number(range, field)?;
                    (day, if part.contains('/') { 6 } else { day })
                }
            },
        };
        if start > end {
            return Err(format!("range `{range}` runs backwards in `{field}`"));
        }
        for day in (start..=end).step_by(step) {
            days[day % 7] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|d| days[*d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

fn day_number(text: &str, field: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= 7 => Ok(n),
        _ => Err(format!("day of week `{text}` in `{field}` is not 0-7")),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Utc, Weekday};

    use super::*;

    fn next_fire_weekday(expression: &str) -> Weekday {
        let cron = normalize_cron(expression).expect("valid expression");
        let schedule = cron::Schedule::from_str(&cron).expect("normalized parses");
        // 2026-11-26 is a Thursday.
        let after = Utc
            .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
            .single()
            .expect("valid date");
        schedule
            .after(&after)
            .next()
            .expect("a next fire")
            .weekday()
    }

    #[test]
    fn crontab_sunday_is_zero_and_seven() {
        assert_eq!(next_fire_weekday("0 3 * * 0"), Weekday::Sun);
        assert_eq!(next_fire_weekday("0 3 * * 7"), Weekday::Sun);
        assert_eq!(next_fire_weekday("0 3 * * 1"), Weekday::Mon);
        assert_eq!(next_fire_weekday("0 3 * * 5-7"), Weekday::Fri);
    }

    #[test]
    fn six_field_lines_and_shortcuts_pass_through() {
        assert_eq!(
            normalize_cron("*/10 * * * * *"),
            Ok("*/10 * * * * *".to_string())
        );
        assert_eq!(normalize_cron("@hourly"), Ok("@hourly".to_string()));
        assert_eq!(
            normalize_cron("0 3 * * MON-FRI"),
            Ok("0 0 3 * * MON-FRI".to_string())
        );
    }

    fn schedule(expression: &str, timezone: Option<&str>) -> Schedule {
        Schedule {
            expression: expression.to_string(),
            cron: normalize_cron(expression).unwrap_or_default(),
            timezone: timezone.map(str::to_string),
            catchup: Catchup::None,
            max_active_runs: 1,
            overlap: Overlap::Skip,
        }
    }

    #[test]
    fn hourly_and_finer_schedules_follow_the_clock() {
        for expression in [
            "0 * * * *",
            "*/15 * * * *",
            "@hourly",
            "*/10 0 3 * * *",
            "0 */2 * * *",
        ] {
            assert!(schedule(expression, None).follows_clock(), "{expression}");
        }
        for expression in [
            "30 2 * * *",
            "0,30 1,2 * * 1-5",
            "@daily",
            "@weekly",
            "0 30 2 * * *",
        ] {
            assert!(!schedule(expression, None).follows_clock(), "{expression}");
        }
    }

    #[test]
    fn timezones_are_iana_names_and_default_to_utc() {
        assert_eq!(schedule("@daily", None).tz(), Tz::UTC);
        assert_eq!(
            schedule("@daily", Some("America/New_York")).tz(),
            Tz::America__New_York
        );
        assert_eq!(parse_timezone("Europe/Paris"), Some(Tz::Europe__Paris));
        assert_eq!(parse_timezone("Mars/Olympus_Mons"), None);
        assert_eq!(parse_timezone("america/new_york"), None);
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(normalize_cron("61 * * * *").is_err());
        assert!(normalize_cron("* * *").is_err());
        assert!(normalize_cron("0 3 * * 8").is_err());
        assert!(normalize_cron("@sometimes").is_err());
    }
}
