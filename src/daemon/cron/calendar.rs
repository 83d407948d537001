//! When a [`Schedule`] fires: its cron line read in its timezone, through
//! daylight-saving changes, and the fires missed while the daemon was down.
//! Pure functions of time; the trigger loop in [`super`] does the waiting.
//!
//! The `cron` crate, asked directly for fires in a chrono-tz zone, drops a
//! wall time that a spring-forward change skips, and for a wall time that a
//! fall-back change repeats it answers both instants, the first of them
//! even when asked for a fire after the second (after 01:30 EST it answers
//! 01:45 EDT, three quarters of an hour in the past). So here the crate only
//! lists wall-clock slots, evaluated in UTC where no slot is skipped or
//! repeated, and [`Calendar`] maps slots to instants one stretch of constant
//! UTC offset at a time.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::{Catchup, Schedule};

/// The most fires `catchup: all` replays; older missed fires are dropped so
/// that a daemon that was down for a month under a per-minute schedule does
/// not start tens of thousands of runs.
pub const MAX_CATCHUP_FIRES: usize = 100;

/// Offset changes one search may cross; the `cron` crate stops at the year
/// 2100, about 150 changes away in a zone with daylight saving time.
const MAX_OFFSET_CHANGES: usize = 1000;

/// Offsets are sampled this far apart when looking for a change. No zone in
/// the tz database changes its offset twice within a day, so none is missed.
const SAMPLE_SECONDS: i64 = 86_400;

/// The first fire of `schedule` strictly after `after`, or `None` when the
/// schedule has no more fires (the `cron` crate stops at the year 2100).
///
/// The cron line is read in the schedule's timezone (UTC when none). A wall
/// time skipped by a spring-forward change fires once, at the first instant
/// after the gap; a wall time repeated by a fall-back change fires once, at
/// its first occurrence. Schedules that repeat every hour or more often
/// ([`Schedule::follows_clock`]) instead follow the clock as it reads: their
/// slots inside a gap do not fire and their slots in a repeated hour fire at
/// both instants, so an hourly job keeps an hour between runs.
pub fn next_fire(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Calendar::new(schedule)?.next_after(after)
}

/// The fires to run when the daemon starts, per `schedule.catchup`: none for
/// `none`; the most recent fire in `(last_fire, now]` for `last`; every fire
/// in `(last_fire, now]` for `all`, oldest first, keeping only the newest
/// [`MAX_CATCHUP_FIRES`]. A DAG that never ran (`last_fire` is `None`) has
/// missed nothing.
pub fn missed_fires(
    schedule: &Schedule,
    last_fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let keep = match schedule.catchup {
        Catchup::None => return Vec::new(),
        Catchup::Last => 1,
        Catchup::All => MAX_CATCHUP_FIRES,
    };
    match (last_fire, Calendar::new(schedule)) {
        (Some(last_fire), Some(calendar)) => calendar.newest_between(last_fire, now, keep),
        _ => Vec::new(),
    }
}

/// A schedule made ready to answer "when next": its cron line parsed once.
pub(super) struct Calendar {
    slots: cron::Schedule,
    tz: Tz,
    follows_clock: bool,
}

impl Calendar {
    /// `None` only for a cron line that does not parse, which parsing the
    /// DAG file already rejects.
    pub(super) fn new(schedule: &Schedule) -> Option<Self> {
        Some(Self {
            slots: schedule.cron_schedule().ok()?,
            tz: schedule.tz(),
            follows_clock: schedule.follows_clock(),
        })
    }

    /// See [`next_fire`].
    ///
    /// Within a stretch of constant offset, wall time and UTC move together,
    /// so the first slot after the current wall time is the answer unless an
    /// offset change comes first. At a change the search moves to the new
    /// stretch, deciding what happens to the slots the change skips or
    /// repeats.
    pub(super) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut offset = self.offset_at(after);
        let mut stretch_start = after;
        // Slots must lie strictly after this wall time.
        let mut floor = wall_time(after, offset)?;
        if !self.follows_clock
            && let Some(end) = self.repeat_end(floor, offset)
        {
            // `after` is in the second pass through a repeated hour whose
            // slots already fired on the first pass.
            floor = floor.max(end - Duration::nanoseconds(1));
        }
        for _ in 0..MAX_OFFSET_CHANGES {
            let slot = self.slot_after(floor)?;
            let candidate = instant(slot, offset)?;
            let Some(change) = self.next_change(stretch_start, candidate, offset) else {
                return Some(candidate);
            };
            let new_offset = self.offset_at(change);
            let wall_before = wall_time(change, offset)?;
            let wall_after = wall_time(change, new_offset)?;
            let resume_at = if wall_after > wall_before {
                // Spring forward: wall times in [wall_before, wall_after)
                // never happen. `slot` is the first of them, if any is a slot.
                if !self.follows_clock && slot < wall_after {
                    return Some(change);
                }
                wall_after
            } else if self.follows_clock {
                // Fall back: the clock reads [wall_after, wall_before) again.
                wall_after
            } else {
                wall_before
            };
            floor = resume_at - Duration::nanoseconds(1);
            offset = new_offset;
            stretch_start = change;
        }
        None
    }

    /// The newest `keep` fires in `(since, until]`, oldest first. Looks back
    /// from `until` over a window that doubles until it holds `keep` fires or
    /// reaches `since`, so the cost follows `keep`, not the downtime.
    fn newest_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        keep: usize,
    ) -> Vec<DateTime<Utc>> {
        if until <= since || keep == 0 {
            return Vec::new();
        }
        let mut window = Duration::minutes(1);
        loop {
            let start = until
                .checked_sub_signed(window)
                .map_or(since, |start| start.max(since));
            let mut fires = VecDeque::with_capacity(keep + 1);
            let mut cursor = start;
            while let Some(fire) = self.next_after(cursor).filter(|fire| *fire <= until) {
                fires.push_back(fire);
                if fires.len() > keep {
                    fires.pop_front();
                }
                cursor = fire;
            }
            if fires.len() == keep || start == since {
                return fires.into();
            }
            window = window.checked_mul(2).unwrap_or(Duration::MAX);
        }
    }

    /// The first slot whose wall time is strictly after `floor`.
    fn slot_after(&self, floor: NaiveDateTime) -> Option<NaiveDateTime> {
        self.slots
            .after(&floor.and_utc())
            .next()
            .map(|slot| slot.naive_utc())
    }

    /// UTC offset in seconds at `at`.
    fn offset_at(&self, at: DateTime<Utc>) -> i32 {
        self.tz
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    }

    fn offset_at_second(&self, timestamp: i64) -> Option<i32> {
        DateTime::from_timestamp(timestamp, 0).map(|at| self.offset_at(at))
    }

    /// The first instant in `(from, to]` whose offset is not `offset` (the
    /// offset at `from`). Offset changes fall on whole seconds.
    fn next_change(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        offset: i32,
    ) -> Option<DateTime<Utc>> {
        let end = to.timestamp();
        let mut low = from.timestamp();
        while low < end {
            let high = low.saturating_add(SAMPLE_SECONDS).min(end);
            if self.offset_at_second(high)? != offset {
                let (mut same, mut changed) = (low, high);
                while changed - same > 1 {
                    let middle = same + (changed - same) / 2;
                    if self.offset_at_second(middle)? == offset {
                        same = middle;
                    } else {
                        changed = middle;
                    }
                }
                return DateTime::from_timestamp(changed, 0);
            }
            low = high;
        }
        None
    }

    /// When `wall` is being read for the second time, at offset `offset`,
    /// after a fall-back change: the wall time at which that repetition ends
    /// (the clock's reading just before the change).
    fn repeat_end(&self, wall: NaiveDateTime, offset: i32) -> Option<NaiveDateTime> {
        let LocalResult::Ambiguous(one, other) = self.tz.offset_from_local_datetime(&wall) else {
            return None;
        };
        // The earlier instant of a repeated wall time has the larger offset.
        let first_offset = one
            .fix()
            .local_minus_utc()
            .max(other.fix().local_minus_utc());
        if first_offset == offset {
            return None;
        }
        let change = self.next_change(
            instant(wall, first_offset)?,
            instant(wall, offset)?,
            first_offset,
        )?;
        wall_time(change, first_offset)
    }
}

/// What a clock at `offset` seconds east of UTC reads at `at`.
fn wall_time(at: DateTime<Utc>, offset: i32) -> Option<NaiveDateTime> {
    at.naive_utc()
        .checked_add_signed(Duration::seconds(offset.into()))
}

/// The instant at which a clock at `offset` reads `wall`.
fn instant(wall: NaiveDateTime, offset: i32) -> Option<DateTime<Utc>> {
    wall.checked_sub_signed(Duration::seconds(offset.into()))
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
pub(super) mod tests {
    use std::error::Error;

    use chrono::{NaiveDate, Timelike};

    use super::*;
    use crate::model::{Overlap, normalize_cron};

    pub(in crate::daemon::cron) type TestResult = Result<(), Box<dyn Error>>;

    pub(in crate::daemon::cron) fn at(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
    }

    pub(in crate::daemon::cron) fn schedule(
        expression: &str,
        timezone: Option<&str>,
        catchup: Catchup,
    ) -> Schedule {
        Schedule {
            expression: expression.to_string(),
            cron: normalize_cron(expression).unwrap_or_default(),
            timezone: timezone.map(str::to_string),
            catchup,
            max_active_runs: 1,
            overlap: Overlap::Skip,
        }
    }

    fn new_york(expression: &str) -> Schedule {
        schedule(expression, Some("America/New_York"), Catchup::None)
    }

    /// Every fire in `(from, to]`, found by chaining `next_fire`.
    fn fires_between(
        schedule: &Schedule,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::new();
        let mut cursor = from;
        while let Some(fire) = next_fire(schedule, cursor).filter(|fire| *fire <= to) {
            fires.push(fire);
            cursor = fire;
        }
        fires
    }

    /// Fires whose New York wall-clock date is `date`.
    fn fires_on_new_york_date(schedule: &Schedule, date: NaiveDate) -> Vec<DateTime<Utc>> {
        let from = date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - Duration::days(1);
        fires_between(schedule, from, from + Duration::days(3))
            .into_iter()
            .filter(|fire| {
                fire.with_timezone(&chrono_tz::America::New_York)
                    .date_naive()
                    == date
            })
            .collect()
    }

    fn date(year: i32, month: u32, day: u32) -> Result<NaiveDate, String> {
        NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| "bad date".to_string())
    }

    #[test]
    fn utc_is_the_default_timezone_and_other_zones_read_local_time() -> TestResult {
        let after = at("2026-06-01T12:00:00Z")?;
        let utc = schedule("0 3 * * *", None, Catchup::None);
        assert_eq!(next_fire(&utc, after), Some(at("2026-06-02T03:00:00Z")?));
        let kolkata = schedule("0 9 * * *", Some("Asia/Kolkata"), Catchup::None);
        assert_eq!(
            next_fire(&kolkata, after),
            Some(at("2026-06-02T03:30:00Z")?)
        );
        let summer_new_york = new_york("0 9 * * *");
        assert_eq!(
            next_fire(&summer_new_york, after),
            Some(at("2026-06-01T13:00:00Z")?)
        );
        Ok(())
    }

    #[test]
    fn next_fire_is_strictly_after() -> TestResult {
        let hourly = schedule("0 * * * *", None, Catchup::None);
        let on_the_hour = at("2026-06-01T12:00:00Z")?;
        assert_eq!(
            next_fire(&hourly, on_the_hour),
            Some(at("2026-06-01T13:00:00Z")?)
        );
        let just_before = on_the_hour - Duration::milliseconds(1);
        assert_eq!(next_fire(&hourly, just_before), Some(on_the_hour));
        Ok(())
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_once_right_after_the_gap() -> TestResult {
        // 2026-03-08: New York clocks go from 01:59:59 EST to 03:00:00 EDT.
        let daily = new_york("30 2 * * *");
        let fires = fires_between(
            &daily,
            at("2026-03-07T00:00:00Z")?,
            at("2026-03-10T00:00:00Z")?,
        );
        assert_eq!(
            fires,
            vec![
                at("2026-03-07T07:30:00Z")?,
                at("2026-03-08T07:00:00Z")?,
                at("2026-03-09T06:30:00Z")?,
            ]
        );
        let both_in_gap = new_york("0,30 2 * * *");
        assert_eq!(
            fires_on_new_york_date(&both_in_gap, date(2026, 3, 8)?),
            vec![at("2026-03-08T07:00:00Z")?]
        );
        Ok(())
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() -> TestResult {
        // 2026-11-01: New York clocks go from 01:59:59 EDT back to 01:00:00 EST.
        let daily = new_york("30 1 * * *");
        let fires = fires_between(
            &daily,
            at("2026-10-31T00:00:00Z")?,
            at("2026-11-03T00:00:00Z")?,
        );
        assert_eq!(
            fires,
            vec![
                at("2026-10-31T05:30:00Z")?,
                at("2026-11-01T05:30:00Z")?,
                at("2026-11-02T06:30:00Z")?,
            ]
        );
        assert_eq!(
            fires_on_new_york_date(&new_york("30 2 * * *"), date(2026, 11, 1)?),
            vec![at("2026-11-01T07:30:00Z")?]
        );
        assert_eq!(
            fires_on_new_york_date(&new_york("15,45 1 * * *"), date(2026, 11, 1)?),
            vec![at("2026-11-01T05:15:00Z")?, at("2026-11-01T05:45:00Z")?]
        );
        Ok(())
    }

    #[test]
    fn hourly_schedules_follow_the_clock_through_both_changes() -> TestResult {
        let hourly = new_york("0 * * * *");
        let spring = fires_on_new_york_date(&hourly, date(2026, 3, 8)?);
        assert_eq!(spring.len(), 23);
        let every_utc_hour: Vec<_> = (0..23)
            .map(|hour| at("2026-03-08T05:00:00Z").map(|start| start + Duration::hours(hour)))
            .collect::<Result<_, _>>()?;
        assert_eq!(spring, every_utc_hour);

        let autumn = fires_on_new_york_date(&hourly, date(2026, 11, 1)?);
        assert_eq!(autumn.len(), 25);
        let every_utc_hour: Vec<_> = (0..25)
            .map(|hour| at("2026-11-01T04:00:00Z").map(|start| start + Duration::hours(hour)))
            .collect::<Result<_, _>>()?;
        assert_eq!(autumn, every_utc_hour);

        let quarterly = new_york("*/15 * * * *");
        assert_eq!(
            fires_on_new_york_date(&quarterly, date(2026, 3, 8)?).len(),
            92
        );
        assert_eq!(
            fires_on_new_york_date(&quarterly, date(2026, 11, 1)?).len(),
            100
        );
        assert_eq!(
            fires_on_new_york_date(&quarterly, date(2026, 11, 2)?).len(),
            96
        );
        Ok(())
    }

    /// `next_fire` from any instant must agree with the fire sequence: no
    /// fire skipped and none repeated, whatever instant a search starts at.
    #[test]
    fn next_fire_from_any_instant_agrees_with_the_sequence() -> TestResult {
        let windows = [at("2026-03-08T03:00:00Z")?, at("2026-11-01T03:00:00Z")?];
        for expression in [
            "30 1 * * *",
            "0,30 2 * * *",
            "45 1,2 * * *",
            "0 * * * *",
            "*/20 * * * *",
        ] {
            let schedule = new_york(expression);
            for start in windows {
                let end = start + Duration::hours(8);
                let sequence = fires_between(&schedule, start, end + Duration::days(1));
                assert!(
                    sequence.windows(2).all(|pair| pair[0] < pair[1]),
                    "{expression}: {sequence:?}"
                );
                let mut probe = start;
                while probe < end {
                    let expected = sequence.iter().find(|fire| **fire > probe).copied();
                    assert_eq!(
                        next_fire(&schedule, probe),
                        expected,
                        "{expression} after {probe}"
                    );
                    probe += Duration::seconds(450);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn missed_fires_follow_the_catchup_policy() -> TestResult {
        let nothing: Vec<DateTime<Utc>> = Vec::new();
        let last_fire = at("2026-06-01T03:00:00Z")?;
        let now = at("2026-06-04T12:00:00Z")?;
        let none = schedule("0 3 * * *", None, Catchup::None);
        assert_eq!(missed_fires(&none, Some(last_fire), now), nothing);
        let last = schedule("0 3 * * *", None, Catchup::Last);
        assert_eq!(
            missed_fires(&last, Some(last_fire), now),
            vec![at("2026-06-04T03:00:00Z")?]
        );
        let all = schedule("0 3 * * *", None, Catchup::All);
        assert_eq!(
            missed_fires(&all, Some(last_fire), now),
            vec![
                at("2026-06-02T03:00:00Z")?,
                at("2026-06-03T03:00:00Z")?,
                at("2026-06-04T03:00:00Z")?,
            ]
        );
        assert_eq!(
            missed_fires(&all, None, now),
            nothing,
            "never ran: nothing missed"
        );
        assert_eq!(
            missed_fires(&all, Some(now), last_fire),
            nothing,
            "clock behind"
        );
        let due_now = at("2026-06-04T03:00:00Z")?;
        assert_eq!(missed_fires(&last, Some(last_fire), due_now), vec![due_now]);
        Ok(())
    }

    #[test]
    fn catchup_all_keeps_only_the_newest_fires() -> TestResult {
        let every_minute = schedule("* * * * *", None, Catchup::All);
        let now = at("2026-06-04T12:34:56Z")?;
        let missed = missed_fires(&every_minute, Some(now - Duration::days(365)), now);
        assert_eq!(missed.len(), MAX_CATCHUP_FIRES);
        assert_eq!(missed.last().copied(), Some(at("2026-06-04T12:34:00Z")?));
        assert!(
            missed
                .windows(2)
                .all(|pair| pair[1] - pair[0] == Duration::minutes(1))
        );
        assert!(missed.iter().all(|fire| fire.second() == 0));

        let yearly = schedule("0 0 1 1 *", None, Catchup::All);
        let missed = missed_fires(&yearly, Some(at("2020-06-01T00:00:00Z")?), now);
        assert_eq!(missed.len(), 6, "{missed:?}");
        assert_eq!(missed.first().copied(), Some(at("2021-01-01T00:00:00Z")?));
        Ok(())
    }
}
