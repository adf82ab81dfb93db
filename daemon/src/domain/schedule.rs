//! Scheduled rotation as rules on plain values: when a group is due, how long a failed
//! scheduled rotation waits, when a key is close to expiry, and call pacing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::duration;
use super::groups::Group;

/// What the scheduler remembers about a group (stored per group; survives restarts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// When the last rotation of the group succeeded (forced or scheduled). Rotation is measured
    /// from here, not from the last attempt.
    pub last_success_ms: Option<u64>,
    /// The latest rotation job of the group, and how it ended.
    pub last_job: Option<u64>,
    pub last_result: Option<String>,
    /// Failed rotations since the last success.
    pub failures: u32,
    /// A failed rotation is not tried again before this.
    pub retry_at_ms: Option<u64>,
}

impl ScheduleState {
    pub fn succeeded(&mut self, job: u64, now_ms: u64) {
        self.last_success_ms = Some(now_ms);
        self.last_job = Some(job);
        self.last_result = Some(format!("job {job} succeeded"));
        self.failures = 0;
        self.retry_at_ms = None;
    }

    pub fn failed(&mut self, job: u64, error: &str, now_ms: u64, retry: &Backoff) {
        self.last_job = Some(job);
        self.back_off(format!("job {job} failed: {error}"), now_ms, retry);
    }

    /// A due rotation that could not even start: counted and backed off as a failed one.
    pub fn not_started(&mut self, error: &str, now_ms: u64, retry: &Backoff) {
        self.back_off(format!("could not start: {error}"), now_ms, retry);
    }

    fn back_off(&mut self, result: String, now_ms: u64, retry: &Backoff) {
        self.failures = self.failures.saturating_add(1);
        let wait = retry.after(self.failures);
        self.retry_at_ms = Some(now_ms.saturating_add(ms(wait)));
        self.last_result = Some(result);
    }
}

/// Waits between retries of a failed scheduled rotation: `first`, doubling, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (1 is the first).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max)
    }
}

pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// When a group is next due, or `None` when it is not rotated on a schedule (`rotate_every`
/// is off).
///
/// A group with no active key is due at once. Otherwise it is due `rotate_every` after the
/// last successful rotation (or, if none is on record, after its active key was made). After
/// downtime an overdue group is simply due now: it rotates once, not once per missed period.
/// A failed rotation pushes the time out to its retry time.
pub fn next_due_ms(
    group: &Group,
    state: &ScheduleState,
    active_key_created_ms: Option<u64>,
) -> Option<u64> {
    let every = group.rotate_every_s?;
    let due = match (active_key_created_ms, state.last_success_ms) {
        (None, _) => 0,
        (Some(created), last) => last
            .unwrap_or(created)
            .max(created)
            .saturating_add(every.saturating_mul(1000)),
    };
    Some(due.max(state.retry_at_ms.unwrap_or(0)))
}

/// Where a key stands against its material's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No expiry, or not within the warning time.
    Fine,
    /// Within the warning time of its expiry.
    Soon,
    Expired,
}

pub fn expiry(valid_to_ms: Option<u64>, now_ms: u64, warning: Duration) -> Expiry {
    match valid_to_ms {
        Some(to) if now_ms >= to => Expiry::Expired,
        Some(to) if now_ms.saturating_add(ms(warning)) >= to => Expiry::Soon,
        _ => Expiry::Fine,
    }
}

/// A call rate: at most `calls` in any window of `per`, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Off,
    Limit { calls: u32, per: Duration },
}

impl Rate {
    /// `5/1s`, `1/4s`, `100/1m`, or `off`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(Self::Off);
        }
        let (calls, per) = text.split_once('/').ok_or_else(|| {
            format!("'{text}' is not a rate: write CALLS/DURATION, e.g. 5/1s or 1/4s, or off")
        })?;
        let calls: u32 = calls
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("'{text}': the number of calls must be a whole number above 0")
            })?;
        let per = duration::parse(per)?;
        if per.is_zero() {
            return Err(format!("'{text}': the period must be longer than 0s"));
        }
        Ok(Self::Limit { calls, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Limit { calls, per } => write!(f, "{calls}/{}", duration::format(*per)),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The calls of one rate: those in flight, and when the recent ones ended. A sliding-window
/// limiter that measures from the end of each call: AWS counts a call when it arrives, which is
/// after it was sent and before its answer, so calls spaced from their answers are spaced at
/// AWS too, however long the connection took.
#[derive(Debug, Default)]
pub struct Window {
    in_flight: usize,
    ended: VecDeque<Instant>,
}

/// How often a caller looks again while every slot is held by a call in flight.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(50);

impl Window {
    /// Takes a call slot at `now` if the rate allows one; otherwise says how long to wait.
    /// `margin` is added to every wait. A slot taken must be given back with [`Window::end`].
    pub fn take(&mut self, rate: Rate, now: Instant, margin: Duration) -> Result<(), Duration> {
        let Rate::Limit { calls, per } = rate else {
            return Ok(());
        };
        while self
            .ended
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= per + margin)
        {
            self.ended.pop_front();
        }
        if self.in_flight + self.ended.len() < calls as usize {
            self.in_flight += 1;
            return Ok(());
        }
        Err(match self.ended.front() {
            Some(oldest) => (*oldest + per + margin).saturating_duration_since(now),
            None => IN_FLIGHT_POLL,
        })
    }

    /// The call that took a slot has ended (answered, failed or timed out) at `now`.
    pub fn end(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.ended.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::groups::Group;

    fn group(every_s: Option<u64>) -> Group {
        let mut g = Group::empty("g", 0);
        g.rotate_every_s = every_s;
        g
    }

    #[test]
    fn a_group_without_a_key_is_due_at_once_and_one_without_a_schedule_never() {
        let state = ScheduleState::default();
        assert_eq!(next_due_ms(&group(Some(60)), &state, None), Some(0));
        assert_eq!(next_due_ms(&group(None), &state, None), None);
    }

    #[test]
    fn due_is_measured_from_the_last_success_not_the_last_attempt() {
        let g = group(Some(60));
        let mut state = ScheduleState::default();
        state.succeeded(1, 10_000);
        assert_eq!(next_due_ms(&g, &state, Some(9_000)), Some(70_000));
        // A later failure does not move the due time (beyond its retry wait).
        state.failed(
            2,
            "boom",
            20_000,
            &Backoff {
                first: Duration::from_secs(1),
                max: Duration::from_secs(8),
            },
        );
        assert_eq!(next_due_ms(&g, &state, Some(9_000)), Some(70_000));
        // Without a recorded success, the active key's creation counts.
        assert_eq!(
            next_due_ms(&g, &ScheduleState::default(), Some(5_000)),
            Some(65_000)
        );
    }

    #[test]
    fn an_overdue_group_is_due_once_now_not_once_per_missed_period() {
        let g = group(Some(60));
        let mut state = ScheduleState::default();
        state.succeeded(1, 0);
        // Ten periods of downtime: due is still the one past time, and after the rotation
        // that follows, one period from then.
        assert_eq!(next_due_ms(&g, &state, Some(0)), Some(60_000));
        state.succeeded(2, 600_000);
        assert_eq!(next_due_ms(&g, &state, Some(600_000)), Some(660_000));
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap_and_reset_on_success() {
        let b = Backoff {
            first: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        };
        let waits: Vec<u64> = (1..=8).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(b.after(u32::MAX), Duration::from_secs(3600));
        let g = group(None);
        let mut g2 = g.clone();
        g2.rotate_every_s = Some(10);
        let mut state = ScheduleState::default();
        state.failed(7, "throttled", 1_000, &b);
        assert_eq!(next_due_ms(&g2, &state, None), Some(61_000));
        state.failed(8, "throttled", 61_000, &b);
        assert_eq!(next_due_ms(&g2, &state, None), Some(181_000));
        state.succeeded(9, 200_000);
        assert_eq!(state.failures, 0);
        assert_eq!(next_due_ms(&g2, &state, Some(200_000)), Some(210_000));
    }

    #[test]
    fn expiry_is_soon_within_the_warning_and_expired_past_valid_to() {
        let day = Duration::from_secs(86_400);
        let to = 100 * 86_400_000;
        assert_eq!(expiry(None, to, day), Expiry::Fine);
        assert_eq!(expiry(Some(to), to - 2 * 86_400_000, day), Expiry::Fine);
        assert_eq!(expiry(Some(to), to - 86_400_000, day), Expiry::Soon);
        assert_eq!(expiry(Some(to), to, day), Expiry::Expired);
    }

    #[test]
    fn rates_parse_and_say_what_is_wrong() {
        assert_eq!(
            Rate::parse("1/4s").unwrap(),
            Rate::Limit {
                calls: 1,
                per: Duration::from_secs(4)
            }
        );
        assert_eq!(Rate::parse("off").unwrap(), Rate::Off);
        assert_eq!(Rate::parse("5/1s").unwrap().to_string(), "5/1s");
        assert!(Rate::parse("5").unwrap_err().contains("CALLS/DURATION"));
        assert!(Rate::parse("0/1s").unwrap_err().contains("above 0"));
        assert!(Rate::parse("5/1").unwrap_err().contains("no unit"));
        assert!(Rate::parse("5/0s").unwrap_err().contains("longer than 0s"));
    }

    #[test]
    fn the_window_admits_calls_up_to_the_rate_then_says_how_long_to_wait() {
        let rate = Rate::parse("2/1s").unwrap();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::default();
        let m = ms(10);
        assert_eq!(w.take(rate, t0, m), Ok(()));
        assert_eq!(w.take(rate, t0 + ms(100), m), Ok(()));
        // Both in flight: nothing to count down from yet, so look again shortly.
        assert_eq!(w.take(rate, t0 + ms(150), m), Err(IN_FLIGHT_POLL));
        // They end at 300 ms and 400 ms: the next slot is a period (plus margin) after 300.
        w.end(t0 + ms(300));
        w.end(t0 + ms(400));
        assert_eq!(w.take(rate, t0 + ms(500), m), Err(ms(810)));
        assert_eq!(w.take(rate, t0 + ms(1310), m), Ok(()));
        assert_eq!(w.take(Rate::Off, t0, m), Ok(()));
    }
}
