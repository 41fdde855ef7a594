//! Camera health: the state each camera is in, why, and its live stats.
//!
//! The state comes from the pull supervisor's own transitions (connecting,
//! streaming since T, backing off after error E) and, for cameras nobody
//! pulls, from probes; it is never a second guess made elsewhere. Every
//! transition is sent on a channel to the recorder (store, webhooks).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use tokio::time::Instant;

use serde::Serialize;

pub mod kpi;
pub mod probe;
pub mod recorder;
pub mod webhook;

use crate::media::Codec;

/// A camera's health state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    Unknown,
    Connecting,
    Online,
    /// Frames flow but below half the camera's own recent frame rate, or no
    /// key frame for too long.
    Degraded,
    Offline,
    Disabled,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Unknown,
        State::Connecting,
        State::Online,
        State::Degraded,
        State::Offline,
        State::Disabled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Connecting => "connecting",
            State::Online => "online",
            State::Degraded => "degraded",
            State::Offline => "offline",
            State::Disabled => "disabled",
        }
    }
    /// Whether video is available: online or degraded count as up for the
    /// online rate and availability.
    pub fn is_up(self) -> bool {
        matches!(self, State::Online | State::Degraded)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}"))
    }
}

/// Why a camera is offline (or degraded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    Unreachable,
    Refused,
    Timeout,
    AuthFailed,
    NotFound,
    UnsupportedCodec,
    Stalled,
    ProtocolError,
    /// Degraded: the frame rate fell below half its recent norm.
    LowFrameRate,
    /// Degraded: no key frame for longer than the limit.
    NoKeyFrame,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::Unreachable,
        Reason::Refused,
        Reason::Timeout,
        Reason::AuthFailed,
        Reason::NotFound,
        Reason::UnsupportedCodec,
        Reason::Stalled,
        Reason::ProtocolError,
        Reason::LowFrameRate,
        Reason::NoKeyFrame,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unreachable => "unreachable",
            Reason::Refused => "refused",
            Reason::Timeout => "timeout",
            Reason::AuthFailed => "auth_failed",
            Reason::NotFound => "not_found",
            Reason::UnsupportedCodec => "unsupported_codec",
            Reason::Stalled => "stalled",
            Reason::ProtocolError => "protocol_error",
            Reason::LowFrameRate => "low_frame_rate",
            Reason::NoKeyFrame => "no_key_frame",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown reason {s:?}"))
    }
}

/// One state change of one camera.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub camera_id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub from: State,
    pub to: State,
    pub reason: Option<Reason>,
}

/// Per-second counters over a sliding window: frame rate and bitrate.
#[derive(Debug, Clone)]
pub struct RateWindow {
    start: Instant,
    /// (second index, frames, bytes), oldest first.
    buckets: std::collections::VecDeque<(u64, u32, u64)>,
    window_secs: u64,
}

impl RateWindow {
    pub fn new(start: Instant, window_secs: u64) -> Self {
        RateWindow {
            start,
            buckets: Default::default(),
            window_secs,
        }
    }

    pub fn record(&mut self, now: Instant, bytes: usize) {
        let sec = now.duration_since(self.start).as_secs();
        match self.buckets.back_mut() {
            Some(b) if b.0 == sec => {
                b.1 += 1;
                b.2 += bytes as u64;
            }
            _ => self.buckets.push_back((sec, 1, bytes as u64)),
        }
        while self
            .buckets
            .front()
            .is_some_and(|b| b.0 + self.window_secs + 1 < sec)
        {
            self.buckets.pop_front();
        }
    }

    /// Frames per second and bits per second over the last complete seconds
    /// of the window. The current second is partial and left out, and so is
    /// the first second seen (the stream started somewhere inside it).
    pub fn rates(&self, now: Instant) -> (f64, f64) {
        let sec = now.duration_since(self.start).as_secs();
        let Some(first) = self.first_sec() else {
            return (0.0, 0.0);
        };
        let lo = sec.saturating_sub(self.window_secs).max(first + 1);
        let (lo, span) = if lo < sec {
            (lo, (sec - lo) as f64)
        } else {
            // Under two seconds of data: all of it, over the time it spans.
            let elapsed = now.duration_since(self.start).as_secs_f64() - first as f64;
            (first, elapsed.max(0.001))
        };
        let (mut frames, mut bytes) = (0u64, 0u64);
        for &(s, f, b) in &self.buckets {
            if s >= lo && s < sec.max(lo + 1) {
                frames += f as u64;
                bytes += b;
            }
        }
        (frames as f64 / span, bytes as f64 * 8.0 / span)
    }

    fn first_sec(&self) -> Option<u64> {
        self.buckets.front().map(|b| b.0)
    }
}

/// Live stats of a pulled camera.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStats {
    pub frame_rate: f64,
    pub bitrate_bps: f64,
    /// Seconds between the last two key frames.
    pub key_frame_interval_secs: Option<f64>,
    /// Seconds since the last frame.
    pub last_frame_age_secs: Option<f64>,
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub reconnects: u64,
    /// When the camera last came online (RFC 3339).
    pub online_since: Option<String>,
    /// The last error (never with credentials).
    pub last_error: Option<String>,
}

/// The rule for `degraded`, evaluated on live measurements.
#[derive(Debug, Clone)]
pub struct DegradedRule {
    /// A key frame must arrive at least this often.
    pub max_key_frame_interval: Duration,
    /// Frame rate below this fraction of the norm is degraded.
    pub low_rate_fraction: f64,
    /// The norm is only trusted after this long online.
    pub warmup: Duration,
}

impl Default for DegradedRule {
    fn default() -> Self {
        DegradedRule {
            max_key_frame_interval: Duration::from_secs(20),
            low_rate_fraction: 0.5,
            warmup: Duration::from_secs(10),
        }
    }
}

impl DegradedRule {
    /// `None` when healthy, else why it is degraded.
    pub fn judge(
        &self,
        online_for: Duration,
        fps_now: f64,
        fps_norm: f64,
        since_key: Option<Duration>,
    ) -> Option<Reason> {
        if since_key.is_some_and(|d| d > self.max_key_frame_interval) {
            return Some(Reason::NoKeyFrame);
        }
        if online_for >= self.warmup
            && fps_norm > 0.0
            && fps_now < fps_norm * self.low_rate_fraction
        {
            return Some(Reason::LowFrameRate);
        }
        None
    }
}

/// Codec name for stats.
pub fn codec_name(c: Codec) -> String {
    c.as_str().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
        }
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
        }
    }

    #[test]
    fn rate_window_measures_fps_and_bitrate() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(t0, 5);
        // 25 fps of 1000-byte frames for 8 seconds.
        for i in 0..200 {
            w.record(t0 + Duration::from_millis(i * 40), 1000);
        }
        let (fps, bps) = w.rates(t0 + Duration::from_millis(8000));
        assert!((fps - 25.0).abs() < 0.01, "{fps}");
        assert!((bps - 200_000.0).abs() < 1.0, "{bps}");
        // Early on, the rate is over the seconds seen so far.
        let mut w = RateWindow::new(t0, 5);
        for i in 0..50 {
            w.record(t0 + Duration::from_millis(i * 40), 1000);
        }
        let (fps, _) = w.rates(t0 + Duration::from_millis(2000));
        assert!((fps - 25.0).abs() < 0.01, "{fps}");
        // No frames for a while: the rate falls to zero.
        let (fps, _) = w.rates(t0 + Duration::from_secs(30));
        assert_eq!(fps, 0.0);
    }

    #[test]
    fn degraded_rule() {
        let r = DegradedRule::default();
        let s = Duration::from_secs;
        assert_eq!(r.judge(s(60), 25.0, 25.0, Some(s(2))), None);
        assert_eq!(
            r.judge(s(60), 10.0, 25.0, Some(s(2))),
            Some(Reason::LowFrameRate)
        );
        assert_eq!(r.judge(s(5), 10.0, 25.0, Some(s(2))), None, "warming up");
        assert_eq!(
            r.judge(s(60), 25.0, 25.0, Some(s(30))),
            Some(Reason::NoKeyFrame)
        );
    }
}
