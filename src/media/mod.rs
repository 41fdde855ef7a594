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

    /// Whether the video track's parameters (SPS/PPS and the like) are
    /// known, so a relay can describe it.
    pub fn video_ready(&self) -> bool {
        self.video().is_some_and(|v| !v.extra_data.is_empty())
    }
}

/// One access unit (video) or audio frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Index into [`StreamInfo::tracks`].
    pub track: u8,
    /// Presentation time in the track's clock units, from the stream start.
    pub pts: i64,
    /// A video frame a decoder can start at (IDR / IRAP). Audio frames
    /// are never key: streams start and GOP caches restart at video ones.
    pub is_key: bool,
    /// Frame data: for H.264/H.265, AVC-style length-prefixed NAL units.
    pub data: Bytes,
    /// When the frame arrived at the gateway (its last packet was read from
    /// the camera): relays measure the time it spends inside from here.
    pub arrived: std::time::Instant,
}

/// Whether an H.265 access unit (4-byte length-prefixed NAL units) holds an
/// IRAP picture: BLA, IDR or CRA (NAL unit types 16 to 21). retina marks only
/// IDR as a random access point, but encoders with open GOPs (x265's
/// default, some cameras) send CRA pictures at every GOP, and a decoder can
/// start at one (it drops the leading RASL pictures). A truncated length
/// ends the scan.
pub fn h265_has_irap(data: &[u8]) -> bool {
    let mut rest = data;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(next) = rest.get(4 + len..).filter(|_| len > 0) else {
            break;
        };
        if (16..=21).contains(&((rest[4] >> 1) & 0x3f)) {
            return true;
        }
        rest = next;
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nal(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 2) as u32).to_be_bytes().to_vec();
        v.extend([kind << 1, 1]);
        v.extend(body);
        v
    }

    #[test]
    fn h265_irap_is_found_after_other_units() {
        // Prefix SEI (39) then CRA (21).
        let mut au = nal(39, b"sei");
        au.extend(nal(21, b"slice"));
        assert!(h265_has_irap(&au));
        // IDR_W_RADL (19), IDR_N_LP (20), BLA (16).
        for t in [16, 19, 20] {
            assert!(h265_has_irap(&nal(t, b"x")), "type {t}");
        }
    }

    #[test]
    fn h265_non_irap_and_garbage_are_not_key() {
        let mut au = nal(1, b"trail");
        au.extend(nal(0, b"trail_n"));
        assert!(!h265_has_irap(&au));
        // RSV_IRAP_VCL22 and 23 are reserved, not pictures a decoder knows.
        assert!(!h265_has_irap(&nal(22, b"x")));
        assert!(!h265_has_irap(&[]));
        assert!(!h265_has_irap(&[0, 0, 0]));
        // A length past the end stops the scan after the first unit.
        let mut bad = nal(1, b"x");
        bad.extend([0xff, 0xff, 0xff, 0xff, 21 << 1]);
        assert!(!h265_has_irap(&bad));
        // A zero length does not loop forever.
        assert!(!h265_has_irap(&[0, 0, 0, 0, 2, 0, 0, 0, 0, 2]));
    }
}
