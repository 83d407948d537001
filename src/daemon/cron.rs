//! Cron triggers: `schedule:` → [`super::Fire`]s.
//!
//! [`run`] is one DAG's trigger loop: it sends the fires missed while the
//! daemon was down (per `catchup:`), then sleeps until each next fire and
//! sends it. It decides when, never whether: `max_active_runs` and
//! `overlap:` belong to the dispatcher on the other end of the channel.
//!
//! When a schedule fires is the pure arithmetic in `calendar`:
//!
//! - The cron line is read in the schedule's `timezone:` (UTC when none).
//! - A wall time skipped by a spring-forward change fires once, at the first
//!   instant after the gap (as Vixie cron does): `30 2 * * *` in
//!   `America/New_York` fires at 03:00 EDT on the day clocks go forward.
//! - A wall time repeated by a fall-back change fires once, at its first
//!   occurrence: `30 1 * * *` fires at 01:30 EDT, not again at 01:30 EST.
//! - Schedules whose seconds, minute or hour field begins with `*`
//!   (`0 * * * *`, `*/15 * * * *`, `@hourly`) follow the clock as it reads,
//!   again as Vixie cron does: their slots inside a gap do not fire and their
//!   slots in a repeated hour fire twice, so an hourly job runs 23 times on
//!   the spring-forward day and 25 times on the fall-back day, an hour apart.
//! - `catchup: all` replays at most [`MAX_CATCHUP_FIRES`] fires, the newest.
//!
//! The loop never sends the same fire twice: each next fire is sought
//! strictly after both the clock and the last fire sent, so a clock that
//! jumps backwards does not repeat fires. Sleeps run on tokio's monotonic
//! timer, for exactly the time left; on waking the wall clock is read again
//! and, if it is still early, the loop sleeps for the rest. A wall clock
//! that jumps forward during a sleep is noticed on waking; the fire that
//! was due is sent then, and the slots the jump passed over are not.

mod calendar;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use dag_state::Trigger;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

pub use calendar::{MAX_CATCHUP_FIRES, missed_fires, next_fire};

use super::Fire;
use super::clock::WallClock;
use crate::model::Schedule;
use calendar::Calendar;

/// Sends the fires of `dag`'s `schedule` on `fires` until `cancel` is
/// cancelled or the receiver is dropped. `last_fire` is the fire time of
/// the DAG's last cron run (from the state store), if any: catch-up starts
/// after it and no fire at or before it is sent again.
pub async fn run(
    dag: String,
    schedule: Schedule,
    last_fire: Option<DateTime<Utc>>,
    clock: Arc<dyn WallClock>,
    fires: UnboundedSender<Fire>,
    cancel: CancellationToken,
) {
    let Some(calendar) = Calendar::new(&schedule) else {
        tracing::warn!(dag = %dag, cron = %schedule.cron, "cron line does not parse; no fires");
        return;
    };
    let label = match &schedule.timezone {
        Some(timezone) => format!("{} {timezone}", schedule.expression),
        None => schedule.expression.clone(),
    };
    let mut last_sent = last_fire;
    for due in missed_fires(&schedule, last_fire, clock.now()) {
        if cancel.is_cancelled() || fires.send(fire(&dag, &label, due, true)).is_err() {
            return;
        }
        last_sent = Some(due);
    }
    loop {
        let now = clock.now();
        let after = last_sent.map_or(now, |sent| sent.max(now));
        let Some(due) = calendar.next_after(after) else {
            tracing::info!(dag = %dag, cron = %schedule.cron, "schedule has no more fires");
            return;
        };
        if !wait_until(clock.as_ref(), due, &fires, &cancel).await {
            return;
        }
        if fires.send(fire(&dag, &label, due, false)).is_err() {
            return;
        }
        last_sent = Some(due);
    }
}

/// Sleeps until the wall clock reads `due`; `false` when cancelled or when
/// nobody is listening any more.
async fn wait_until(
    clock: &dyn WallClock,
    due: DateTime<Utc>,
    fires: &UnboundedSender<Fire>,
    cancel: &CancellationToken,
) -> bool {
    loop {
        if cancel.is_cancelled() || fires.is_closed() {
            return false;
        }
        let remaining = match (due - clock.now()).to_std() {
            Ok(remaining) if !remaining.is_zero() => remaining,
            _ => return true,
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return false,
            () = fires.closed() => return false,
            () = tokio::time::sleep(remaining) => {}
        }
    }
}

fn fire(dag: &str, label: &str, due: DateTime<Utc>, catch_up: bool) -> Fire {
    let logical_date = due.to_rfc3339_opts(SecondsFormat::Secs, true);
    let detail = if catch_up {
        format!("{label} catch-up due {logical_date}")
    } else {
        format!("{label} due {logical_date}")
    };
    Fire {
        dag: dag.to_string(),
        trigger: Trigger {
            kind: "cron".to_string(),
            detail,
        },
        logical_date: Some(logical_date),
        params: BTreeMap::new(),
        due_ms: due.timestamp_millis(),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::sync::atomic::{AtomicI64, Ordering};

    use chrono::{Datelike, Duration, Timelike, Weekday};
    use tokio::sync::mpsc::unbounded_channel;

    use super::*;
    use crate::daemon::clock::TokioClock;
    use crate::model::Catchup;

    use super::calendar::tests::{TestResult, at, schedule};

    /// A fire and the wall-clock time it reached the receiver.
    struct Received {
        fire: Fire,
        at: DateTime<Utc>,
    }

    impl Received {
        fn due(&self) -> Option<DateTime<Utc>> {
            DateTime::from_timestamp_millis(self.fire.due_ms)
        }

        fn logical_date(&self) -> Result<DateTime<Utc>, Box<dyn Error>> {
            let text = self.fire.logical_date.as_deref().ok_or("no logical date")?;
            Ok(at(text)?)
        }

        fn is_catch_up(&self) -> bool {
            self.fire.trigger.detail.contains("catch-up")
        }
    }

    /// Runs the trigger loop on the paused clock from `start` for `span`, then
    /// cancels it and returns what it sent.
    async fn simulate(
        schedule: Schedule,
        last_fire: Option<DateTime<Utc>>,
        clock: Arc<dyn WallClock>,
        span: Duration,
    ) -> Result<Vec<Received>, Box<dyn Error>> {
        let (sender, mut receiver) = unbounded_channel();
        let cancel = CancellationToken::new();
        let trigger = tokio::spawn(run(
            "nightly".to_string(),
            schedule,
            last_fire,
            Arc::clone(&clock),
            sender,
            cancel.clone(),
        ));
        let collector = tokio::spawn(async move {
            let mut received = Vec::new();
            while let Some(fire) = receiver.recv().await {
                received.push(Received {
                    fire,
                    at: clock.now(),
                });
            }
            received
        });
        tokio::time::sleep(span.to_std()?).await;
        cancel.cancel();
        trigger.await?;
        Ok(collector.await?)
    }

    fn clock_at(start: DateTime<Utc>) -> Arc<dyn WallClock> {
        Arc::new(TokioClock::starting_at(start))
    }

    /// Every fire is sent once, in order, at its due time.
    fn assert_on_time_and_unique(received: &[Received]) -> TestResult {
        for pair in received.windows(2) {
            assert!(
                pair[0].fire.due_ms < pair[1].fire.due_ms,
                "repeated or out of order"
            );
        }
        for one in received.iter().filter(|one| !one.is_catch_up()) {
            let due = one.due().ok_or("bad due_ms")?;
            assert_eq!(one.logical_date()?, due);
            let latency = one.at - due;
            assert!(
                latency >= Duration::zero() && latency <= Duration::milliseconds(100),
                "fired {latency} after its due time"
            );
        }
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn hourly_for_a_simulated_week_fires_168_times_on_the_hour() -> TestResult {
        let start = at("2026-03-02T00:30:00Z")?;
        let hourly = schedule("0 * * * *", None, Catchup::None);
        let received = simulate(hourly, None, clock_at(start), Duration::days(7)).await?;
        assert_eq!(received.len(), 168);
        assert_on_time_and_unique(&received)?;
        for (hour, one) in (1..).zip(&received) {
            let expected = at("2026-03-02T00:00:00Z")? + Duration::hours(hour);
            assert_eq!(one.logical_date()?, expected);
            assert_eq!(one.fire.dag, "nightly");
            assert_eq!(one.fire.trigger.kind, "cron");
            assert_eq!(
                one.fire.trigger.detail,
                format!(
                    "0 * * * * due {}",
                    expected.to_rfc3339_opts(SecondsFormat::Secs, true)
                )
            );
            assert!(one.fire.params.is_empty());
        }
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn every_quarter_hour_for_a_day_fires_96_times() -> TestResult {
        let start = at("2026-03-02T00:05:00Z")?;
        let quarterly = schedule("*/15 * * * *", None, Catchup::None);
        let received = simulate(quarterly, None, clock_at(start), Duration::days(1)).await?;
        assert_eq!(received.len(), 96);
        assert_on_time_and_unique(&received)?;
        assert!(
            received
                .iter()
                .all(|one| one.logical_date().is_ok_and(|date| date.minute() % 15 == 0))
        );
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn new_york_change_days_fire_per_the_dst_rules() -> TestResult {
        let new_york = Some("America/New_York");
        let daily = schedule("30 2 * * *", new_york, Catchup::None);
        let start = at("2026-03-07T12:00:00Z")?;
        let received = simulate(daily.clone(), None, clock_at(start), Duration::days(2)).await?;
        let dates: Vec<_> = received
            .iter()
            .map(Received::logical_date)
            .collect::<Result<_, _>>()?;
        assert_eq!(
            dates,
            vec![at("2026-03-08T07:00:00Z")?, at("2026-03-09T06:30:00Z")?]
        );
        assert_eq!(
            received[0].fire.trigger.detail,
            "30 2 * * * America/New_York due 2026-03-08T07:00:00Z"
        );
        assert_on_time_and_unique(&received)?;

        let start = at("2026-10-31T12:00:00Z")?;
        let received = simulate(daily, None, clock_at(start), Duration::days(1)).await?;
        let dates: Vec<_> = received
            .iter()
            .map(Received::logical_date)
            .collect::<Result<_, _>>()?;
        assert_eq!(dates, vec![at("2026-11-01T07:30:00Z")?]);

        // The New York day of 2026-11-01 runs from 04:00Z to 05:00Z next day.
        let hourly = schedule("0 * * * *", new_york, Catchup::None);
        let start = at("2026-11-01T03:30:00Z")?;
        let received = simulate(hourly, None, clock_at(start), Duration::hours(25)).await?;
        assert_eq!(received.len(), 25);
        assert_on_time_and_unique(&received)?;
        assert_eq!(received[1].logical_date()?, at("2026-11-01T05:00:00Z")?);
        assert_eq!(received[2].logical_date()?, at("2026-11-01T06:00:00Z")?);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn day_of_week_fields_use_crontab_numbering() -> TestResult {
        // 2026-03-02 is a Monday.
        let start = at("2026-03-02T00:00:00Z")?;
        let weekdays = schedule("0 9 * * 1-5", None, Catchup::None);
        let received = simulate(weekdays, None, clock_at(start), Duration::days(14)).await?;
        assert_eq!(received.len(), 10);
        for one in &received {
            let date = one.logical_date()?;
            assert!(
                !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                "{date}"
            );
            assert_eq!(date.hour(), 9);
        }
        let sundays = schedule("0 9 * * 0", None, Catchup::None);
        let received = simulate(sundays, None, clock_at(start), Duration::days(14)).await?;
        let dates: Vec<_> = received
            .iter()
            .map(Received::logical_date)
            .collect::<Result<_, _>>()?;
        assert_eq!(
            dates,
            vec![at("2026-03-08T09:00:00Z")?, at("2026-03-15T09:00:00Z")?]
        );
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn catch_up_fires_are_sent_first_per_the_policy() -> TestResult {
        let start = at("2026-06-10T12:30:00Z")?;
        let last_fire = at("2026-06-04T06:00:00Z")?; // 150 hourly fires ago
        let expected_newest = at("2026-06-10T12:00:00Z")?;

        let all = schedule("0 * * * *", None, Catchup::All);
        let received = simulate(all, Some(last_fire), clock_at(start), Duration::hours(2)).await?;
        assert_eq!(received.len(), MAX_CATCHUP_FIRES + 2);
        let (catch_up, live) = received.split_at(MAX_CATCHUP_FIRES);
        assert!(
            catch_up
                .iter()
                .all(|one| one.is_catch_up() && one.at == start)
        );
        assert!(live.iter().all(|one| !one.is_catch_up()));
        assert_eq!(
            catch_up[MAX_CATCHUP_FIRES - 1].logical_date()?,
            expected_newest
        );
        assert_eq!(
            catch_up[0].logical_date()?,
            expected_newest - Duration::hours(99)
        );
        assert_eq!(live[0].logical_date()?, at("2026-06-10T13:00:00Z")?);
        assert_eq!(
            catch_up[0].fire.trigger.detail,
            "0 * * * * catch-up due 2026-06-06T09:00:00Z"
        );
        assert_on_time_and_unique(&received)?;

        let last = schedule("0 * * * *", None, Catchup::Last);
        let received = simulate(last, Some(last_fire), clock_at(start), Duration::hours(2)).await?;
        assert_eq!(received.len(), 3);
        assert!(received[0].is_catch_up());
        assert_eq!(received[0].logical_date()?, expected_newest);
        assert!(!received[1].is_catch_up());

        let none = schedule("0 * * * *", None, Catchup::None);
        let received = simulate(none, Some(last_fire), clock_at(start), Duration::hours(2)).await?;
        assert_eq!(received.len(), 2);
        assert!(received.iter().all(|one| !one.is_catch_up()));

        let never_ran = schedule("0 * * * *", None, Catchup::All);
        let received = simulate(never_ran, None, clock_at(start), Duration::hours(2)).await?;
        assert_eq!(received.len(), 2);
        assert!(received.iter().all(|one| !one.is_catch_up()));
        Ok(())
    }

    /// The clock a test can step backwards or forwards.
    struct JumpingClock {
        ticking: TokioClock,
        shift_seconds: AtomicI64,
    }

    impl WallClock for JumpingClock {
        fn now(&self) -> DateTime<Utc> {
            self.ticking.now() + Duration::seconds(self.shift_seconds.load(Ordering::SeqCst))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_jumping_backwards_does_not_repeat_fires() -> TestResult {
        let start = at("2026-06-10T00:30:00Z")?;
        let clock = Arc::new(JumpingClock {
            ticking: TokioClock::starting_at(start),
            shift_seconds: AtomicI64::new(0),
        });
        let jumper = Arc::clone(&clock);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(2 * 3600)).await;
            jumper.shift_seconds.store(-2 * 3600, Ordering::SeqCst);
        });
        // Seven hours pass; the wall clock, set back two of them, ends at 05:30.
        let hourly = schedule("0 * * * *", None, Catchup::None);
        let received = simulate(hourly, None, clock, Duration::hours(7)).await?;
        let dates: Vec<_> = received
            .iter()
            .map(Received::logical_date)
            .collect::<Result<_, _>>()?;
        let expected: Vec<_> = (1..=5)
            .map(|hour| at("2026-06-10T00:00:00Z").map(|t| t + Duration::hours(hour)))
            .collect::<Result<_, _>>()?;
        assert_eq!(dates, expected);
        assert_on_time_and_unique(&received)?;
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_last_fire_ahead_of_the_clock_is_not_repeated() -> TestResult {
        let start = at("2026-06-10T00:30:00Z")?;
        let last_fire = at("2026-06-10T02:00:00Z")?;
        let hourly = schedule("0 * * * *", None, Catchup::All);
        let received =
            simulate(hourly, Some(last_fire), clock_at(start), Duration::hours(3)).await?;
        let dates: Vec<_> = received
            .iter()
            .map(Received::logical_date)
            .collect::<Result<_, _>>()?;
        assert_eq!(dates, vec![at("2026-06-10T03:00:00Z")?]);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_stops_the_loop_without_waiting_for_the_next_fire() -> TestResult {
        let start = at("2026-06-10T00:30:00Z")?;
        let (sender, mut receiver) = unbounded_channel();
        let cancel = CancellationToken::new();
        let hourly = schedule("0 * * * *", None, Catchup::None);
        let trigger = tokio::spawn(run(
            "nightly".to_string(),
            hourly,
            None,
            clock_at(start),
            sender,
            cancel.clone(),
        ));
        // 01:30: the loop is asleep until 02:00.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert!(receiver.try_recv().is_ok(), "the 01:00 fire");
        cancel.cancel();
        let ended = tokio::time::timeout(std::time::Duration::from_millis(1), trigger).await;
        assert!(ended.is_ok(), "still running after cancel");
        assert!(receiver.recv().await.is_none(), "no fire after cancel");
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_receiver_ends_the_loop() -> TestResult {
        let start = at("2026-06-10T00:30:00Z")?;
        let (sender, receiver) = unbounded_channel();
        let hourly = schedule("0 * * * *", None, Catchup::None);
        let trigger = tokio::spawn(run(
            "nightly".to_string(),
            hourly,
            None,
            clock_at(start),
            sender,
            CancellationToken::new(),
        ));
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(receiver);
        let ended = tokio::time::timeout(std::time::Duration::from_millis(1), trigger).await;
        assert!(ended.is_ok(), "still running with nobody listening");
        Ok(())
    }
}
