//! RTSP re-serving: `rtsp://HOST:PORT/cam/{camera_id}`. The wire formats
//! (`message`, `sdp`, `rtp`) are pure; `server` wraps them around sockets.

pub mod message;
pub mod rtp;
pub mod sdp;
pub mod server;

pub use server::{RtspOptions, RtspServer, Streams};

/// The RTSP server's counters.
pub type RtspCounters = super::ViewerCounters;
