//! One camera's pull: "open, stream, on error record and back off", for as
//! long as the pull is wanted. Its transitions are the camera's health.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::{PullError, PullOptions, PullSource, PullTarget};
use crate::catalogue::now_ms;
use crate::fanout::Fanout;
use crate::health::{LiveStats, RateWindow, Reason, State, Transition};
use crate::media::StreamInfo;

/// Health of one camera, as its supervisor and probes see it.
#[derive(Debug)]
pub struct HealthCell {
    pub state: State,
    pub reason: Option<Reason>,
    /// When the state last changed (Unix ms).
    pub since_ms: i64,
    pub stats: LiveStats,
    window: RateWindow,
    last_frame: Option<Instant>,
    last_key: Option<Instant>,
    online_at: Option<Instant>,
    fps_norm: f64,
    last_eval: Option<Instant>,
    /// Consecutive failed probes.
    pub probe_failures: u32,
    /// The last pull failed after DESCRIBE (at SETUP, PLAY or while
    /// streaming): a probe, which stops at DESCRIBE, cannot overrule it.
    /// Cleared by a pull that streams, or a new target.
    pull_verdict: bool,
    /// The first frame of the current pull.
    stream_began: Option<Instant>,
}

/// After a failure past DESCRIBE, a camera is `online` again only once it
/// has streamed this long: a camera that sends a frame and then breaks
/// (wrong SSRCs, jumping timestamps, garbage after the first packets) stays
/// `offline` with its reason instead of flapping at every retry.
pub const RECOVERY_PROBATION: Duration = Duration::from_secs(3);

impl HealthCell {
    fn new(state: State) -> Self {
        HealthCell {
            state,
            reason: None,
            since_ms: now_ms(),
            stats: LiveStats::default(),
            window: RateWindow::new(Instant::now(), 5),
            last_frame: None,
            last_key: None,
            online_at: None,
            fps_norm: 0.0,
            last_eval: None,
            probe_failures: 0,
            pull_verdict: false,
            stream_began: None,
        }
    }
}

/// The runtime side of one camera: its fan-out, its health, and what to
/// pull. Shared by the supervisor, the manager, probes and the API.
pub struct CameraRuntime {
    pub id: String,
    pub fanout: Arc<Fanout>,
    health: Mutex<HealthCell>,
    target: Mutex<PullTarget>,
    events: mpsc::UnboundedSender<Transition>,
}

impl CameraRuntime {
    pub fn new(
        id: String,
        target: PullTarget,
        fanout: Arc<Fanout>,
        initial: State,
        events: mpsc::UnboundedSender<Transition>,
    ) -> Self {
        CameraRuntime {
            id,
            fanout,
            health: Mutex::new(HealthCell::new(initial)),
            target: Mutex::new(target),
            events,
        }
    }

    pub fn target(&self) -> PullTarget {
        self.target.lock().unwrap().clone()
    }

    /// Replaces the target; returns whether it differs.
    pub fn set_target(&self, t: PullTarget) -> bool {
        let mut cur = self.target.lock().unwrap();
        if *cur == t {
            return false;
        }
        *cur = t;
        // A new URL or credentials: earlier verdicts were about another
        // camera.
        self.health.lock().unwrap().pull_verdict = false;
        true
    }

    /// A snapshot of state, reason, since and stats (with the frame age
    /// computed now).
    pub fn snapshot(&self) -> (State, Option<Reason>, i64, LiveStats) {
        let h = self.health.lock().unwrap();
        let mut stats = h.stats.clone();
        stats.last_frame_age_secs = h.last_frame.map(|t| t.elapsed().as_secs_f64());
        if let Some(t) = h.last_frame
            && t.elapsed() > Duration::from_secs(2)
        {
            // Rates over the window end when frames stop.
            let (fps, bps) = h.window.rates(Instant::now());
            stats.frame_rate = fps;
            stats.bitrate_bps = bps;
        }
        (h.state, h.reason, h.since_ms, stats)
    }

    pub fn state(&self) -> State {
        self.health.lock().unwrap().state
    }

    /// Moves to a state; records and announces a transition when state or
    /// reason changed.
    pub fn set_state(&self, to: State, reason: Option<Reason>) {
        let mut h = self.health.lock().unwrap();
        self.set_state_locked(&mut h, to, reason);
    }

    fn set_state_locked(&self, h: &mut HealthCell, to: State, reason: Option<Reason>) {
        if h.state == to && h.reason == reason {
            return;
        }
        let at_ms = now_ms();
        let t = Transition {
            camera_id: self.id.clone(),
            at_ms,
            from: h.state,
            to,
            reason,
        };
        if to.is_up() && !h.state.is_up() {
            h.stats.online_since = Some(crate::catalogue::rfc3339_ms(at_ms));
        } else if !to.is_up() {
            h.stats.online_since = None;
        }
        h.state = to;
        h.reason = reason;
        h.since_ms = at_ms;
        tracing::info!(camera = %self.id, from = %t.from, to = %to, reason = reason.map(Reason::as_str), "camera state");
        let _ = self.events.send(t);
    }

    /// Records a failure: offline with its reason, and the error text.
    pub fn fail(&self, e: &PullError) {
        let mut h = self.health.lock().unwrap();
        h.stats.last_error = Some(e.message.clone());
        h.online_at = None;
        h.pull_verdict = e.past_describe;
        self.set_state_locked(&mut h, State::Offline, Some(e.reason));
    }

    /// Whether the last pull failed after DESCRIBE (see `pull_verdict`):
    /// then only a deep probe (open, play, first frame) can tell.
    pub fn needs_deep_probe(&self) -> bool {
        self.health.lock().unwrap().pull_verdict
    }

    /// Records a deep probe's result: a frame clears the pull's verdict; a
    /// failure is a pull failure.
    pub fn deep_probe_result(&self, result: Result<Option<String>, PullError>) {
        match result {
            Ok(codec) => {
                let mut h = self.health.lock().unwrap();
                h.pull_verdict = false;
                h.probe_failures = 0;
                h.stats.last_error = None;
                if codec.is_some() {
                    h.stats.codec = codec;
                }
                self.set_state_locked(&mut h, State::Online, None);
            }
            Err(mut e) => {
                e.past_describe = e.past_describe || self.needs_deep_probe();
                self.fail(&e);
            }
        }
    }

    /// Records a probe result for a camera nobody pulls. Offline only after
    /// `failures_needed` failures in a row.
    pub fn probe_result(&self, result: Result<Option<String>, PullError>, failures_needed: u32) {
        let mut h = self.health.lock().unwrap();
        match result {
            Ok(codec) => {
                h.probe_failures = 0;
                if codec.is_some() {
                    h.stats.codec = codec;
                }
                if h.pull_verdict {
                    // DESCRIBE works, but the last pull failed past it:
                    // the camera stays offline with the pull's reason.
                    return;
                }
                self.set_state_locked(&mut h, State::Online, None);
            }
            Err(e) => {
                h.probe_failures += 1;
                h.stats.last_error = Some(e.message.clone());
                if h.probe_failures >= failures_needed {
                    self.set_state_locked(&mut h, State::Offline, Some(e.reason));
                }
            }
        }
    }

    fn stream_started(&self, info: &StreamInfo) {
        let mut h = self.health.lock().unwrap();
        if let Some(v) = info.video() {
            h.stats.codec = Some(v.codec.as_str().to_string());
            if let Some((w, ht)) = v.dimensions {
                h.stats.width = Some(w);
                h.stats.height = Some(ht);
            }
        }
        h.window = RateWindow::new(Instant::now(), 5);
        h.last_key = None;
        h.last_frame = None;
    }

    /// A pull has opened the stream (its first frame is yet to come).
    fn opened(&self) {
        self.health.lock().unwrap().stream_began = None;
    }

    /// Accounts one frame; evaluates online/degraded once a second.
    fn frame(&self, bytes: usize, is_video: bool, is_key: bool, opts: &PullOptions) {
        let now = Instant::now();
        let mut h = self.health.lock().unwrap();
        h.last_frame = Some(now);
        if !is_video {
            return;
        }
        h.window.record(now, bytes);
        let began = *h.stream_began.get_or_insert(now);
        if !h.state.is_up() && h.pull_verdict && now.duration_since(began) < RECOVERY_PROBATION {
            return;
        }
        if is_key {
            if let Some(prev) = h.last_key {
                h.stats.key_frame_interval_secs = Some(now.duration_since(prev).as_secs_f64());
            }
            h.last_key = Some(now);
        }
        if !h.state.is_up() {
            h.online_at = Some(now);
            h.stats.last_error = None;
            h.pull_verdict = false;
            self.set_state_locked(&mut h, State::Online, None);
        }
        if h.last_eval
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        h.last_eval = Some(now);
        let (fps, bps) = h.window.rates(now);
        h.stats.frame_rate = fps;
        h.stats.bitrate_bps = bps;
        let online_for = h
            .online_at
            .map(|t| now.duration_since(t))
            .unwrap_or_default();
        let since_key = h
            .last_key
            .map(|t| now.duration_since(t))
            .or(Some(online_for));
        let verdict = opts.degraded.judge(online_for, fps, h.fps_norm, since_key);
        // The norm follows the measured rate slowly (about a minute), and is
        // seeded by the first full window.
        if online_for >= Duration::from_secs(5) {
            h.fps_norm = if h.fps_norm == 0.0 {
                fps
            } else {
                h.fps_norm * 0.98 + fps * 0.02
            };
        }
        match verdict {
            Some(r) => self.set_state_locked(&mut h, State::Degraded, Some(r)),
            None => self.set_state_locked(&mut h, State::Online, None),
        }
    }

    pub(crate) fn reconnected(&self) {
        self.health.lock().unwrap().stats.reconnects += 1;
    }
}

/// Runs the pull of one camera until `cancel`. The first connect waits
/// `initial_delay` (spreading connects after start).
pub async fn run(
    cam: Arc<CameraRuntime>,
    source: Arc<dyn PullSource>,
    opts: PullOptions,
    cancel: CancellationToken,
    initial_delay: Duration,
) {
    let mut backoff = Backoff::new(opts.backoff_initial, opts.backoff_max);
    if !initial_delay.is_zero() {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(initial_delay) => {}
        }
    }
    let mut attempts = 0u64;
    loop {
        if attempts > 0 {
            cam.reconnected();
        }
        attempts += 1;
        // `connecting` only on the way up from unknown: a camera that is
        // offline stays offline, with its reason, while it is retried (its
        // history is not a flap per retry).
        if cam.state() == State::Unknown {
            cam.set_state(State::Connecting, None);
        }
        let target = cam.target();
        let opened = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(opts.open_timeout, source.open(&target)) => r,
        };
        let mut started = None;
        match opened {
            Err(_) => cam.fail(&PullError::new(
                Reason::Timeout,
                format!("no answer within {} s", opts.open_timeout.as_secs()),
            )),
            Ok(Err(e)) => cam.fail(&e),
            Ok(Ok(mut stream)) => {
                cam.opened();
                let info = stream.info();
                cam.stream_started(&info);
                cam.fanout.set_info(info);
                let mut first = true;
                loop {
                    let limit = if first {
                        opts.first_frame_timeout
                    } else {
                        opts.stall
                    };
                    let next = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = tokio::time::timeout(limit, stream.next()) => r,
                    };
                    match next {
                        Err(_) => {
                            let (reason, what) = if first {
                                (Reason::Timeout, "no first frame")
                            } else {
                                (Reason::Stalled, "no frame")
                            };
                            cam.fail(
                                &PullError::new(
                                    reason,
                                    format!("{what} within {} s", limit.as_secs_f64()),
                                )
                                .past_describe(),
                            );
                            break;
                        }
                        Ok(Ok(Some(p))) => {
                            if first {
                                first = false;
                                started = Some(Instant::now());
                            }
                            let is_video = p.frame.track == 0;
                            cam.frame(p.frame.data.len(), is_video, p.frame.is_key, &opts);
                            if let Some(info) = p.new_info {
                                cam.stream_started(&info);
                                cam.fanout.set_info(info);
                            }
                            cam.fanout.publish(p.frame);
                        }
                        Ok(Ok(None)) => {
                            cam.fail(
                                &PullError::new(
                                    Reason::ProtocolError,
                                    "the camera ended the stream",
                                )
                                .past_describe(),
                            );
                            break;
                        }
                        Ok(Err(e)) => {
                            cam.fail(&e);
                            break;
                        }
                    }
                }
            }
        }
        if started.is_some_and(|t| t.elapsed() >= opts.backoff_reset_after) {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::debug!(camera = %cam.id, delay_ms = delay.as_millis() as u64, "retrying after backoff");
        // A changed URL or credentials do not wait for this: the manager
        // cancels this task and starts a new one on the new target.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}
