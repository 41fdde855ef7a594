//! Relay stages: each reads a camera's frames from its fan-out and serves
//! them to viewers in one protocol.

pub mod clip;
pub mod fmp4;
pub mod hls;
pub mod live;
pub mod rtsp;
pub mod snapshot;
