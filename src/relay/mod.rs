//! Relay stages: each reads a camera's frames from its fan-out and serves
//! them to viewers in one protocol.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fanout::{Delivery, Subscriber};
use crate::metrics::Histogram;

/// How long an HTTP client (LL-HLS) counts as a viewer after its last
/// request: it has no connection to hold, so a viewer is a client address
/// seen recently. A player reloads the playlist every part (about 0.25 s)
/// or at worst every target duration, well inside this.
pub const HTTP_VIEWER_TTL: Duration = Duration::from_secs(10);

/// What one relay protocol counts, for metrics.
#[derive(Debug)]
pub struct ViewerCounters {
    /// Viewer sessions started.
    pub sessions: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Frames a viewer (or, for LL-HLS, the camera's muxer) did not get
    /// because it had fallen behind.
    pub frames_dropped: Arc<AtomicU64>,
    /// From a viewer's play request to its first frame sent.
    pub first_frame: Histogram,
    /// From a live frame's arrival at the gateway to the end of its write
    /// to a viewer's socket (frames sent from the GOP cache at the start
    /// are not live and not counted).
    pub delay: Histogram,
    /// Playing viewers per camera (connection-based protocols).
    viewers: Mutex<HashMap<String, usize>>,
    /// Last request per (camera, client address) (HTTP protocols).
    recent: Mutex<HashMap<(String, IpAddr), Instant>>,
}

impl Default for ViewerCounters {
    fn default() -> Self {
        ViewerCounters {
            sessions: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            frames_dropped: Arc::default(),
            first_frame: Histogram::new(&[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            delay: Histogram::new(&[
                0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            viewers: Mutex::default(),
            recent: Mutex::default(),
        }
    }
}

impl ViewerCounters {
    /// Viewers per camera: playing connections, plus client addresses
    /// seen within [`HTTP_VIEWER_TTL`].
    pub fn viewers(&self) -> HashMap<String, usize> {
        let mut out = self.viewers.lock().unwrap().clone();
        let mut recent = self.recent.lock().unwrap();
        recent.retain(|_, seen| seen.elapsed() <= HTTP_VIEWER_TTL);
        for (camera, _) in recent.keys() {
            *out.entry(camera.clone()).or_default() += 1;
        }
        out
    }

    /// Counts a viewer of `camera` (and a session) until the guard drops.
    pub fn join(&self, camera: &str) -> ViewerGuard<'_> {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        *self
            .viewers
            .lock()
            .unwrap()
            .entry(camera.to_string())
            .or_default() += 1;
        ViewerGuard {
            counters: self,
            camera: camera.to_string(),
        }
    }

    /// Notes a request for `camera` from `client` (HTTP protocols): a new
    /// session when that client was not watching it already.
    pub fn touch(&self, camera: &str, client: IpAddr) {
        let mut recent = self.recent.lock().unwrap();
        let now = Instant::now();
        match recent.get_mut(&(camera.to_string(), client)) {
            Some(seen) if now.duration_since(*seen) <= HTTP_VIEWER_TTL => *seen = now,
            _ => {
                if recent.len() >= 1024 {
                    recent.retain(|_, seen| now.duration_since(*seen) <= HTTP_VIEWER_TTL);
                }
                recent.insert((camera.to_string(), client), now);
                self.sessions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts `sub`'s dropped frames under this protocol.
    pub fn count_drops_of(&self, sub: &Subscriber) {
        sub.count_drops_in(self.frames_dropped.clone());
    }

    /// Once a delivery's frame is written: how long it spent inside the
    /// gateway (live frames only: those that arrived after the viewer
    /// started at `since`).
    pub fn delivered(&self, d: &Delivery, since: Instant) {
        if d.frame.arrived >= since {
            self.delay.observe(d.frame.arrived.elapsed().as_secs_f64());
        }
    }
}

/// A counted viewer; dropping it uncounts.
pub struct ViewerGuard<'a> {
    counters: &'a ViewerCounters,
    camera: String,
}

impl Drop for ViewerGuard<'_> {
    fn drop(&mut self) {
        let mut v = self.counters.viewers.lock().unwrap();
        if let Some(n) = v.get_mut(&self.camera) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                v.remove(&self.camera);
            }
        }
    }
}

pub mod clip;
pub mod fmp4;
pub mod hls;
pub mod live;
pub mod rtsp;
pub mod snapshot;
