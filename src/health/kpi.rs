//! Availability from stored transitions: pure arithmetic over a camera's
//! state changes, so a day with a known history gives an exact figure.
//!
//! A camera's state holds from one transition to the next. Time in `online`
//! or `degraded` is up; time in `connecting` or `offline` is observed but
//! down; time in `unknown` (the gateway was not watching) or `disabled` is
//! not observed and counts neither way. Daily availability is up time over
//! observed time.
//!
//! When the gateway stops gracefully it records every camera's move to
//! `unknown`. When it crashes it cannot: the next start records a
//! transition *from* `unknown` while the last stored one went *to*, say,
//! `online`. Such a mismatch means nobody knows what happened in between,
//! so that stretch counts as not observed rather than as up.

use time::{Date, OffsetDateTime, Time, UtcOffset};

use super::State;

/// One state change, as far as availability needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub from: State,
    pub to: State,
}

/// Up and observed time of one camera (or a sum over cameras).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uptime {
    pub up_ms: i64,
    pub observed_ms: i64,
}

impl Uptime {
    /// Up time over observed time; `None` when nothing was observed.
    pub fn availability(&self) -> Option<f64> {
        (self.observed_ms > 0).then(|| self.up_ms as f64 / self.observed_ms as f64)
    }

    pub fn add(&mut self, other: Uptime) {
        self.up_ms += other.up_ms;
        self.observed_ms += other.observed_ms;
    }

    fn account(&mut self, state: Option<State>, len_ms: i64) {
        if len_ms <= 0 {
            return;
        }
        match state {
            Some(s) if s.is_up() => {
                self.up_ms += len_ms;
                self.observed_ms += len_ms;
            }
            Some(State::Connecting | State::Offline) => self.observed_ms += len_ms,
            _ => {}
        }
    }
}

/// Up and observed time in `[start_ms, end_ms)`. `before` is the camera's
/// last change before `start_ms` (its state when the window opens);
/// `during` are its changes inside the window, oldest first. Changes outside
/// the window are ignored.
pub fn uptime(before: Option<Change>, during: &[Change], start_ms: i64, end_ms: i64) -> Uptime {
    let mut out = Uptime::default();
    if end_ms <= start_ms {
        return out;
    }
    let mut state = before.map(|c| c.to);
    let mut at = start_ms;
    for c in during
        .iter()
        .filter(|c| c.at_ms >= start_ms && c.at_ms < end_ms)
    {
        let held = match state {
            // No earlier history: the change says what came before it.
            None => Some(c.from),
            Some(s) if s == c.from => Some(s),
            // The gateway lost track (a crash): nobody observed this stretch.
            Some(_) => None,
        };
        out.account(held, c.at_ms - at);
        state = Some(c.to);
        at = c.at_ms;
    }
    out.account(state, end_ms - at);
    out
}

/// The start and end (Unix ms) of a calendar day at a UTC offset.
pub fn day_bounds_ms(day: Date, offset: UtcOffset) -> (i64, i64) {
    let start = day.with_time(Time::MIDNIGHT).assume_offset(offset);
    let end = start + time::Duration::days(1);
    (
        (start.unix_timestamp_nanos() / 1_000_000) as i64,
        (end.unix_timestamp_nanos() / 1_000_000) as i64,
    )
}

/// The calendar day that `at_ms` falls on at a UTC offset.
pub fn day_of(at_ms: i64, offset: UtcOffset) -> Date {
    OffsetDateTime::from_unix_timestamp_nanos(at_ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
        .date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, offset};

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    fn ch(at_ms: i64, from: State, to: State) -> Change {
        Change { at_ms, from, to }
    }

    #[test]
    fn a_known_day_is_computed_exactly() {
        // 2026-03-01 in China (UTC+8): the camera was online since the day
        // before; offline from 02:00 to 02:30, connecting for 1 min, online
        // until 13:00, degraded until 14:00, online for the rest of the day.
        let (start, end) = day_bounds_ms(date!(2026 - 03 - 01), offset!(+8));
        assert_eq!(end - start, 24 * H);
        use State::*;
        let before = Some(ch(start - 5 * H, Connecting, Online));
        let during = [
            ch(start + 2 * H, Online, Offline),
            ch(start + 2 * H + 30 * M, Offline, Connecting),
            ch(start + 2 * H + 31 * M, Connecting, Online),
            ch(start + 13 * H, Online, Degraded),
            ch(start + 14 * H, Degraded, Online),
        ];
        let u = uptime(before, &during, start, end);
        assert_eq!(u.observed_ms, 24 * H);
        assert_eq!(u.up_ms, 24 * H - 31 * M);
        assert_eq!(u.availability(), Some((24.0 * 60.0 - 31.0) / (24.0 * 60.0)));
    }

    #[test]
    fn unknown_and_disabled_are_not_observed() {
        use State::*;
        let (start, end) = (0, 10 * H);
        // Unknown for 1 h (gateway starting), online 4 h, disabled 5 h.
        let during = [ch(H, Unknown, Online), ch(5 * H, Online, Disabled)];
        let u = uptime(None, &during, start, end);
        assert_eq!(
            u,
            Uptime {
                up_ms: 4 * H,
                observed_ms: 4 * H
            }
        );
    }

    #[test]
    fn a_crash_leaves_a_gap_unobserved() {
        use State::*;
        // Online from 0; the gateway died unseen and restarted at 6 h.
        let before = Some(ch(-H, Connecting, Online));
        let during = [
            ch(6 * H, Unknown, Connecting),
            ch(6 * H + M, Connecting, Offline),
        ];
        let u = uptime(before, &during, 0, 8 * H);
        // 0..6 h unknown; 1 min connecting and the rest offline: observed, down.
        assert_eq!(
            u,
            Uptime {
                up_ms: 0,
                observed_ms: 2 * H
            }
        );
        assert_eq!(u.availability(), Some(0.0));
    }

    #[test]
    fn nothing_observed_has_no_availability() {
        assert_eq!(uptime(None, &[], 0, H).availability(), None);
        assert_eq!(uptime(None, &[], H, 0), Uptime::default());
        // Changes outside the window are ignored; the state before holds.
        let before = Some(ch(-1, State::Unknown, State::Offline));
        let u = uptime(before, &[ch(2 * H, State::Offline, State::Online)], 0, H);
        assert_eq!(
            u,
            Uptime {
                up_ms: 0,
                observed_ms: H
            }
        );
    }

    #[test]
    fn days_follow_the_offset() {
        let (start, _) = day_bounds_ms(date!(2026 - 03 - 01), offset!(+8));
        // 2026-02-28T16:00:00Z
        assert_eq!(start, 1_772_294_400_000);
        assert_eq!(day_of(start, offset!(+8)), date!(2026 - 03 - 01));
        assert_eq!(day_of(start - 1, offset!(+8)), date!(2026 - 02 - 28));
        assert_eq!(day_of(start, offset!(UTC)), date!(2026 - 02 - 28));
    }
}
