//! Pulling: one supervised task per camera that must be pulled, feeding the
//! camera's fan-out and health.
//!
//! The RTSP boundary is the [`PullSource`] trait: [`rtsp::RtspSource`]
//! in production, an in-memory source in unit tests. The supervisor
//! (`supervisor.rs`) runs "open, stream, on error record and back off" per
//! camera; the manager (`manager.rs`) decides which cameras are pulled
//! (`always` ones, and `on_demand` ones while someone watches) and applies
//! catalogue changes at once.

use std::time::Duration;

use async_trait::async_trait;

use crate::catalogue::{Secret, Transport};
use crate::health::Reason;
use crate::media::{Frame, StreamInfo};

pub mod backoff;
pub mod manager;
pub mod rtsp;
pub mod supervisor;

pub use manager::{PullConfig, PullManager};
/// The probe client, by its earlier name.
pub use rtsp::probe as describe;

/// What a probe found: the video codec from the camera's SDP.
pub type ProbeResult = Result<Option<String>, PullError>;

#[cfg(test)]
mod tests;

/// What to pull. The URL carries no credentials (the catalogue moves them
/// out); they travel here, and never into logs or errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullTarget {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub transport: Transport,
}

/// Why opening or reading a stream failed: the offline reason, and a message
/// for people (first line only, credentials scrubbed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullError {
    pub reason: Reason,
    pub message: String,
    /// The camera had answered DESCRIBE: the failure came at SETUP, PLAY
    /// or while streaming, where a probe (which stops at DESCRIBE) cannot
    /// see it. Such a verdict stands until a pull succeeds.
    pub past_describe: bool,
}

impl PullError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        PullError {
            reason,
            message: message.into(),
            past_describe: false,
        }
    }

    /// Marks the failure as one after DESCRIBE.
    pub fn past_describe(mut self) -> Self {
        self.past_describe = true;
        self
    }
}

impl std::fmt::Display for PullError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// A frame read from a camera, and new track parameters when the camera
/// changed them with this frame.
#[derive(Debug)]
pub struct Pulled {
    pub frame: Frame,
    pub new_info: Option<StreamInfo>,
}

/// Opens streams from cameras.
#[async_trait]
pub trait PullSource: Send + Sync + 'static {
    /// Connects and starts playing. The caller bounds the time it may take.
    async fn open(&self, target: &PullTarget) -> Result<Box<dyn PullStream>, PullError>;

    /// Checks a camera nobody pulls; the video codec when known. The
    /// caller bounds the time. By default: open and drop the stream.
    async fn probe(&self, target: &PullTarget) -> ProbeResult {
        let stream = self.open(target).await?;
        Ok(stream.info().video().map(|v| v.codec.as_str().to_string()))
    }

    /// Checks a camera whose last pull failed after DESCRIBE, the way a
    /// pull would: open, play and wait for the first frame. The caller
    /// bounds the time.
    ///
    /// Frames must keep coming for [`supervisor::RECOVERY_PROBATION`]
    /// after the first, as a pull recovering from such a failure must.
    async fn deep_probe(&self, target: &PullTarget) -> ProbeResult {
        let mut stream = self.open(target).await?;
        let mut first = None;
        loop {
            match stream.next().await? {
                Some(_) => {
                    let t = *first.get_or_insert_with(std::time::Instant::now);
                    if t.elapsed() >= supervisor::RECOVERY_PROBATION {
                        return Ok(stream.info().video().map(|v| v.codec.as_str().to_string()));
                    }
                }
                None => {
                    return Err(PullError::new(
                        crate::health::Reason::ProtocolError,
                        "the camera ended the stream",
                    )
                    .past_describe());
                }
            }
        }
    }
}

/// A playing stream.
#[async_trait]
pub trait PullStream: Send {
    /// Track parameters as known at open.
    fn info(&self) -> StreamInfo;
    /// The next frame; `Ok(None)` when the camera ended the stream.
    async fn next(&mut self) -> Result<Option<Pulled>, PullError>;
}

/// Timeouts and retry policy of the supervisor.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub open_timeout: Duration,
    pub first_frame_timeout: Duration,
    /// No frame for this long: offline/stalled and reconnect.
    pub stall: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Streaming this long resets the backoff.
    pub backoff_reset_after: Duration,
    /// An on-demand pull stops this long after its last subscriber left.
    pub idle_close: Duration,
    /// First connects after start are spread over this window.
    pub start_spread: Duration,
    pub degraded: crate::health::DegradedRule,
    pub fanout: crate::fanout::FanoutOptions,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            open_timeout: Duration::from_secs(10),
            first_frame_timeout: Duration::from_secs(10),
            stall: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            backoff_reset_after: Duration::from_secs(60),
            idle_close: Duration::from_secs(30),
            start_spread: Duration::from_secs(10),
            degraded: Default::default(),
            fanout: Default::default(),
        }
    }
}

/// The first line of an error message, with `secret` (if any) replaced, at
/// most 300 characters.
pub fn scrub(message: &str, secret: Option<&Secret>) -> String {
    let mut line = message.lines().next().unwrap_or("").trim().to_string();
    if let Some(s) = secret
        && !s.expose().is_empty()
    {
        line = line.replace(s.expose(), "***");
    }
    if line.chars().count() > 300 {
        line = line.chars().take(300).collect::<String>() + "…";
    }
    line
}
