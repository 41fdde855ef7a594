//! Codec-neutral frames and track parameters, shared by every stage of the
//! data path: `pull/` produces them, `fanout/` shares them, `relay/*` reads
//! them. A frame's payload is a [`Bytes`]: cloning a frame for another viewer
//! copies a pointer, never the data.

use std::fmt;

use bytes::Bytes;

/// A codec the gateway carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    H264,
    H265,
    Aac,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Anything else a camera offered; carried through as-is where possible.
    Other,
}

impl Codec {
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Aac => "aac",
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
            Codec::Other => "other",
        }
    }
    pub fn is_video(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265)
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parameters of one track, as far as the camera told them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub codec: Codec,
    /// RTP clock rate (90,000 for video).
    pub clock_rate: u32,
    /// RFC 6381 codec string (`avc1.64001f`), when known.
    pub rfc6381: Option<String>,
    /// Pixel width and height, for video, when known.
    pub dimensions: Option<(u32, u32)>,
    /// Codec configuration (e.g. AVCDecoderConfigurationRecord), when known.
    pub extra_data: Bytes,
}

/// The tracks of a camera's stream. Index 0 is the video track.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub tracks: Vec<Track>,
}

impl StreamInfo {
    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.codec.is_video())
    }
}

/// One access unit (video) or audio frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Index into [`StreamInfo::tracks`].
    pub track: u8,
    /// Presentation time in the track's clock units, from the stream start.
    pub pts: i64,
    /// A video frame a decoder can start at (IDR / IRAP).
    pub is_key: bool,
    /// Frame data: for H.264/H.265, AVC-style length-prefixed NAL units.
    pub data: Bytes,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("track", &self.track)
            .field("pts", &self.pts)
            .field("is_key", &self.is_key)
            .field("bytes", &self.data.len())
            .finish()
    }
}
