//! Relay stages: each reads a camera's frames from its fan-out and serves
//! them to viewers in one protocol.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::Histogram;

/// What one relay protocol counts, for metrics.
#[derive(Debug)]
pub struct ViewerCounters {
    /// Viewer sessions started.
    pub sessions: AtomicU64,
    pub bytes_out: AtomicU64,
    /// From a viewer's play request to its first frame sent.
    pub first_frame: Histogram,
    /// Playing viewers per camera.
    viewers: Mutex<HashMap<String, usize>>,
}

impl Default for ViewerCounters {
    fn default() -> Self {
        ViewerCounters {
            sessions: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            first_frame: Histogram::new(&[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            viewers: Mutex::default(),
        }
    }
}

impl ViewerCounters {
    /// Playing viewers per camera.
    pub fn viewers(&self) -> HashMap<String, usize> {
        self.viewers.lock().unwrap().clone()
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
