//! The gateway's own RTSP client for pulls and probes (the production
//! [`PullSource`]): TCP interleaved by default, UDP when the camera is
//! configured so; the first H.264 or H.265 video track and, when present,
//! the first AAC or G.711 audio track.
//!
//! Wire formats are pure modules with unit tests and fuzz targets — the
//! RTSP framing (`wire`), SDP (`sdp`), authentication (`auth`), RTP
//! (`rtp`), the H.264/H.265 and audio depacketizers (`video`, `audio`)
//! and parameter sets (`params`); `session` wraps them around sockets, and
//! `probe` is the OPTIONS + DESCRIBE check of cameras nobody pulls.
//! Why our own client and not retina: see "Pull path: bounded by our own
//! RTSP client" in the README.

use async_trait::async_trait;

use super::{ProbeResult, PullError, PullSource, PullStream, PullTarget};

pub mod audio;
pub mod auth;
pub mod params;
pub mod probe;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod video;
pub mod wire;

pub use session::PullLimits;

/// Opens camera streams with the gateway's RTSP client.
#[derive(Debug, Clone, Default)]
pub struct RtspSource {
    pub limits: PullLimits,
}

impl RtspSource {
    pub fn new(limits: PullLimits) -> Self {
        RtspSource { limits }
    }
}

#[async_trait]
impl PullSource for RtspSource {
    /// OPTIONS + DESCRIBE: no SETUP, no media.
    async fn probe(&self, target: &PullTarget) -> ProbeResult {
        probe::probe_with(target, self.limits).await
    }

    async fn open(&self, target: &PullTarget) -> Result<Box<dyn PullStream>, PullError> {
        session::open(target, self.limits).await
    }
}
