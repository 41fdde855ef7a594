//! H.264 (RFC 6184) and H.265 (RFC 7798) RTP payloads to access units in
//! the gateway's frame format (4-byte length-prefixed NAL units). Pure.
//!
//! Handles single NAL unit packets, aggregation (STAP-A, AP) and
//! fragmentation (FU-A, FU). An access unit ends at the marker bit or,
//! for cameras that never set it, when the timestamp changes. Bounded: an
//! access unit over [`FrameLimits::max_bytes`] or spread over more than
//! [`FrameLimits::max_packets`] packets without an end is an error (a camera
//! sending a "frame" without end would otherwise grow it without bound).
//! A lost packet drops the access unit it belonged to; the decoder of each
//! viewer conceals up to the next key frame.

use std::collections::VecDeque;

use bytes::Bytes;

use super::params::{ParamSets, video_track};
use crate::media::{Codec, Track};

/// Bounds on one access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    pub max_bytes: usize,
    pub max_packets: usize,
}

impl FrameLimits {
    pub const DEFAULT: FrameLimits = FrameLimits {
        // A 4K H.265 key frame at a high bitrate is 1-2 MiB.
        max_bytes: 4 * 1024 * 1024,
        // 4 MiB in 1,400-byte packets is 3,000 packets; more than that is
        // a camera sending tiny fragments without end.
        max_packets: 8192,
    };
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits::DEFAULT
    }
}

/// A finished access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub pts: i64,
    pub is_key: bool,
    pub data: Bytes,
    /// The parameter sets changed with this unit (the track is new).
    pub new_params: bool,
}

/// One video track's depacketizer.
#[derive(Debug)]
pub struct VideoDepacketizer {
    codec: Codec,
    limits: FrameLimits,
    au: Vec<u8>,
    au_pts: Option<i64>,
    au_packets: usize,
    au_key: bool,
    au_vcl: bool,
    /// Parameter sets already in this unit (bits: VPS, SPS, PPS).
    au_params: u8,
    /// Start of the length prefix of a fragmented NAL unit being joined.
    fragment: Option<usize>,
    /// Packets are being skipped until the next access unit (after a loss
    /// or a broken fragment).
    skipping: bool,
    sets: ParamSets,
    sets_changed: bool,
    out: VecDeque<AccessUnit>,
}

impl VideoDepacketizer {
    /// `sets`: the parameter sets from the SDP (`sprop-*`), if any.
    pub fn new(codec: Codec, sets: ParamSets, limits: FrameLimits) -> Self {
        VideoDepacketizer {
            codec,
            limits,
            au: Vec::new(),
            au_pts: None,
            au_packets: 0,
            au_key: false,
            au_vcl: false,
            au_params: 0,
            fragment: None,
            skipping: false,
            sets,
            sets_changed: false,
            out: VecDeque::new(),
        }
    }

    /// The track as its parameter sets describe it now.
    pub fn track(&self) -> Track {
        video_track(self.codec, &self.sets)
    }

    /// The next finished access unit.
    pub fn pull(&mut self) -> Option<AccessUnit> {
        self.out.pop_front()
    }

    /// Adds one packet's payload. `lost`: packets lost just before it.
    pub fn push(
        &mut self,
        pts: i64,
        marker: bool,
        lost: u16,
        payload: &[u8],
    ) -> Result<(), String> {
        if lost > 0 {
            self.drop_unit();
            self.skipping = true;
        }
        if self.au_pts.is_some_and(|t| t != pts) {
            // A new timestamp: the previous unit ended without a marker.
            self.finish();
            self.skipping = false;
        }
        if self.au_pts.is_none() {
            self.skipping = self.skipping && lost > 0;
        }
        self.au_pts = Some(pts);
        self.au_packets += 1;
        if self.au_packets > self.limits.max_packets {
            return Err(format!(
                "frame over {} packets without an end (limit pull.max_frame_packets)",
                self.limits.max_packets
            ));
        }
        if !self.skipping {
            match self.codec {
                Codec::H265 => self.push_h265(payload)?,
                _ => self.push_h264(payload)?,
            }
        }
        if marker {
            self.finish();
            self.skipping = false;
        }
        Ok(())
    }

    fn reserve(&self, n: usize) -> Result<(), String> {
        if self.au.len() + n > self.limits.max_bytes {
            return Err(format!(
                "frame over {} bytes (limit pull.max_frame_bytes)",
                self.limits.max_bytes
            ));
        }
        Ok(())
    }

    fn push_h264(&mut self, p: &[u8]) -> Result<(), String> {
        let Some(&hdr) = p.first() else {
            return Ok(());
        };
        match hdr & 0x1f {
            1..=23 => self.nal(p),
            24 => {
                // STAP-A: 16-bit sizes, then NAL units.
                let mut rest = &p[1..];
                while rest.len() >= 2 {
                    let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                    let Some(unit) = rest.get(2..2 + n) else {
                        return Err("STAP-A unit past the packet".into());
                    };
                    self.nal(unit)?;
                    rest = &rest[2 + n..];
                }
                Ok(())
            }
            28 => {
                let Some(&fu) = p.get(1) else {
                    return Err("FU-A without its header".into());
                };
                self.fragment(
                    fu & 0x80 != 0,
                    fu & 0x40 != 0,
                    &[(hdr & 0xe0) | (fu & 0x1f)],
                    &p[2..],
                )
            }
            25..=27 | 29 => Err(format!(
                "H.264 packetization type {} (interleaved mode) is not supported",
                hdr & 0x1f
            )),
            _ => Ok(()), // 0, 30, 31: undefined, ignored (RFC 6184 §5.4)
        }
    }

    fn push_h265(&mut self, p: &[u8]) -> Result<(), String> {
        if p.len() < 2 {
            return Ok(());
        }
        match (p[0] >> 1) & 0x3f {
            0..=47 => self.nal(p),
            48 => {
                let mut rest = &p[2..];
                while rest.len() >= 2 {
                    let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                    let Some(unit) = rest.get(2..2 + n) else {
                        return Err("H.265 aggregation unit past the packet".into());
                    };
                    self.nal(unit)?;
                    rest = &rest[2 + n..];
                }
                Ok(())
            }
            49 => {
                let Some(&fu) = p.get(2) else {
                    return Err("H.265 FU without its header".into());
                };
                let header = [(p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]];
                self.fragment(fu & 0x80 != 0, fu & 0x40 != 0, &header, &p[3..])
            }
            50 => Err("H.265 PACI packets are not supported".into()),
            _ => Ok(()),
        }
    }

    fn fragment(
        &mut self,
        start: bool,
        end: bool,
        header: &[u8],
        body: &[u8],
    ) -> Result<(), String> {
        if start {
            if let Some(at) = self.fragment.take() {
                // A new fragment before the old one ended: the old one is
                // incomplete and dropped.
                self.au.truncate(at);
            }
            self.reserve(4 + header.len() + body.len())?;
            self.fragment = Some(self.au.len());
            self.au.extend_from_slice(&[0; 4]);
            self.au.extend_from_slice(header);
        } else if self.fragment.is_none() {
            return Ok(()); // a middle without its start: nothing to join
        } else {
            self.reserve(body.len())?;
        }
        self.au.extend_from_slice(body);
        if end && let Some(at) = self.fragment.take() {
            let len = (self.au.len() - at - 4) as u32;
            self.au[at..at + 4].copy_from_slice(&len.to_be_bytes());
            // Only a parameter set needs its bytes copied out; a slice
            // (the bulk of a frame) is noted by its header alone.
            if self.param_bit(self.au[at + 4]).is_some() {
                let nal = self.au[at + 4..].to_vec();
                self.note(&nal);
            } else {
                self.note_kind(self.au[at + 4]);
            }
        }
        Ok(())
    }

    fn nal(&mut self, nal: &[u8]) -> Result<(), String> {
        if nal.is_empty() {
            return Ok(());
        }
        if let Some(bit) = self.param_bit(nal[0])
            && (self.au_vcl || self.au_params & bit != 0)
        {
            // A parameter set after a slice would start a new access unit
            // for a decoder (H.264 §7.4.1.2.3), and a repeat adds nothing:
            // GStreamer's rtph264pay repeats SPS/PPS before every IDR
            // slice. Noted for the track, not carried.
            self.note(nal);
            return Ok(());
        }
        if let Some(bit) = self.param_bit(nal[0]) {
            self.au_params |= bit;
        }
        self.reserve(4 + nal.len())?;
        self.au.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        self.au.extend_from_slice(nal);
        self.note(nal);
        Ok(())
    }

    /// Notes what a NAL unit of header byte `h` means for the unit: a key
    /// picture, a picture at all.
    fn note_kind(&mut self, h: u8) {
        match self.codec {
            Codec::H265 => {
                let t = (h >> 1) & 0x3f;
                self.au_key |= (16..=21).contains(&t);
                self.au_vcl |= t < 32;
            }
            _ => {
                let t = h & 0x1f;
                self.au_key |= t == 5;
                self.au_vcl |= (1..=5).contains(&t);
            }
        }
    }

    /// Notes what a whole NAL unit means for the unit and the track.
    fn note(&mut self, nal: &[u8]) {
        self.note_kind(nal[0]);
        let slot = match (self.codec, self.param_bit(nal[0])) {
            (Codec::H265, Some(1)) => &mut self.sets.vps,
            (_, Some(2)) => &mut self.sets.sps,
            (_, Some(4)) => &mut self.sets.pps,
            _ => return,
        };
        if slot.as_deref() != Some(nal) {
            *slot = Some(Bytes::copy_from_slice(nal));
            self.sets_changed = true;
        }
    }

    fn drop_unit(&mut self) {
        self.au.clear();
        self.au_pts = None;
        self.au_packets = 0;
        self.au_key = false;
        self.au_vcl = false;
        self.au_params = 0;
        self.fragment = None;
    }

    /// The bit of a parameter set NAL unit type in `au_params`.
    fn param_bit(&self, header: u8) -> Option<u8> {
        match self.codec {
            Codec::H265 => match (header >> 1) & 0x3f {
                32 => Some(1),
                33 => Some(2),
                34 => Some(4),
                _ => None,
            },
            _ => match header & 0x1f {
                7 => Some(2),
                8 => Some(4),
                _ => None,
            },
        }
    }

    fn finish(&mut self) {
        if let Some(at) = self.fragment.take() {
            self.au.truncate(at); // a fragment that never ended
        }
        if !self.au_vcl {
            // Parameter sets or SEI alone: kept for the next picture.
            self.au_pts = None;
            self.au_packets = 0;
            return;
        }
        let unit = AccessUnit {
            pts: self.au_pts.unwrap_or(0),
            is_key: self.au_key,
            data: Bytes::from(std::mem::take(&mut self.au)),
            new_params: std::mem::take(&mut self.sets_changed) && self.sets.complete(self.codec),
        };
        self.out.push_back(unit);
        self.drop_unit();
    }
}

/// Parameter sets from an SDP's `fmtp` (`sprop-parameter-sets` for H.264,
/// `sprop-vps/sps/pps` for H.265). Undecodable values are ignored: the
/// camera repeats its sets in band.
pub fn sdp_param_sets(codec: Codec, fmtp: Option<&str>) -> ParamSets {
    use base64::Engine as _;
    let mut sets = ParamSets::default();
    let Some(fmtp) = fmtp else {
        return sets;
    };
    let decode = |v: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .ok()
            .filter(|b| !b.is_empty() && b.len() <= 4096)
            .map(Bytes::from)
    };
    match codec {
        Codec::H265 => {
            let get = |k| super::sdp::fmtp_param(fmtp, k).and_then(decode);
            sets.vps = get("sprop-vps");
            sets.sps = get("sprop-sps");
            sets.pps = get("sprop-pps");
        }
        _ => {
            if let Some(v) = super::sdp::fmtp_param(fmtp, "sprop-parameter-sets") {
                for nal in v.split(',').filter_map(decode) {
                    match nal[0] & 0x1f {
                        7 if sets.sps.is_none() => sets.sps = Some(nal),
                        8 if sets.pps.is_none() => sets.pps = Some(nal),
                        _ => {}
                    }
                }
            }
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(d: &mut VideoDepacketizer) -> Vec<AccessUnit> {
        std::iter::from_fn(|| d.pull()).collect()
    }

    fn lp(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend((n.len() as u32).to_be_bytes());
            v.extend(*n);
        }
        v
    }

    #[test]
    fn h264_single_aggregated_and_fragmented() {
        let mut d =
            VideoDepacketizer::new(Codec::H264, ParamSets::default(), FrameLimits::default());
        let sps = [0x67, 0x42, 0, 0x1f];
        let pps = [0x68, 0xce];
        // STAP-A with SPS and PPS, then an IDR in three fragments.
        let mut stap = vec![24];
        for n in [&sps[..], &pps[..]] {
            stap.extend((n.len() as u16).to_be_bytes());
            stap.extend(n);
        }
        d.push(0, false, 0, &stap).unwrap();
        d.push(0, false, 0, &[0x7c, 0x85, 1, 2]).unwrap();
        d.push(0, false, 0, &[0x7c, 0x05, 3]).unwrap();
        d.push(0, false, 0, &[0x7c, 0x45, 4]).unwrap();
        // The SPS and PPS again before a second slice: not carried twice.
        d.push(0, false, 0, &stap).unwrap();
        d.push(0, true, 0, &[0x65, 7]).unwrap();
        let got = units(&mut d);
        assert_eq!(got.len(), 1);
        assert!(got[0].is_key && got[0].new_params);
        assert_eq!(
            got[0].data,
            lp(&[&sps, &pps, &[0x65, 1, 2, 3, 4], &[0x65, 7]])
        );
        // A P frame without a marker ends when the timestamp moves on.
        d.push(3000, false, 0, &[0x41, 9]).unwrap();
        assert!(units(&mut d).is_empty());
        d.push(6000, true, 0, &[0x41, 8]).unwrap();
        let got = units(&mut d);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].pts, got[0].is_key, got[0].new_params),
            (3000, false, false)
        );
        assert_eq!(got[1].data, lp(&[&[0x41, 8]]));
    }

    #[test]
    fn losses_drop_the_unit_they_hit() {
        let mut d =
            VideoDepacketizer::new(Codec::H264, ParamSets::default(), FrameLimits::default());
        d.push(0, false, 0, &[0x7c, 0x85, 1]).unwrap();
        // The middle fragment was lost: this unit is dropped.
        d.push(0, true, 1, &[0x7c, 0x45, 3]).unwrap();
        assert!(units(&mut d).is_empty());
        d.push(3000, true, 0, &[0x41, 1]).unwrap();
        assert_eq!(units(&mut d).len(), 1);
    }

    #[test]
    fn endless_frames_are_errors_by_bytes_and_by_packets() {
        let limits = FrameLimits {
            max_bytes: 10_000,
            max_packets: 100,
        };
        let mut d = VideoDepacketizer::new(Codec::H264, ParamSets::default(), limits);
        d.push(0, false, 0, &[0x7c, 0x85]).unwrap();
        let chunk = [0x7c, 0x05]
            .iter()
            .copied()
            .chain([0u8; 1000])
            .collect::<Vec<_>>();
        let err = (0..20)
            .find_map(|_| d.push(0, false, 0, &chunk).err())
            .unwrap();
        assert!(err.contains("over 10000 bytes"), "{err}");
        let mut d = VideoDepacketizer::new(Codec::H264, ParamSets::default(), limits);
        let err = (0..200)
            .find_map(|_| d.push(0, false, 0, &[0x7c, 0x05, 1]).err())
            .unwrap();
        assert!(err.contains("over 100 packets"), "{err}");
        // A marker resets the count: a long stream of small frames is fine.
        let mut d = VideoDepacketizer::new(Codec::H264, ParamSets::default(), limits);
        for i in 0..1000 {
            d.push(i, true, 0, &[0x41, 1]).unwrap();
        }
    }

    #[test]
    fn h265_aggregation_and_fragments() {
        let mut d =
            VideoDepacketizer::new(Codec::H265, ParamSets::default(), FrameLimits::default());
        let (vps, sps, pps) = ([0x40, 1, 7], [0x42, 1, 8], [0x44, 1, 9]);
        let mut ap = vec![48 << 1, 1];
        for n in [&vps[..], &sps[..], &pps[..]] {
            ap.extend((n.len() as u16).to_be_bytes());
            ap.extend(n);
        }
        d.push(0, false, 0, &ap).unwrap();
        // A CRA (21) in two fragments.
        d.push(0, false, 0, &[49 << 1, 1, 0x80 | 21, 5]).unwrap();
        d.push(0, true, 0, &[49 << 1, 1, 0x40 | 21, 6]).unwrap();
        let got = units(&mut d);
        assert_eq!(got.len(), 1);
        assert!(got[0].is_key);
        assert_eq!(got[0].data, lp(&[&vps, &sps, &pps, &[21 << 1, 1, 5, 6]]));
        assert!(d.push(0, true, 0, &[50 << 1, 1, 0]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        for codec in [Codec::H264, Codec::H265] {
            let mut d = VideoDepacketizer::new(codec, ParamSets::default(), FrameLimits::default());
            for i in 0..5000 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let len = (seed >> 56) as usize % 40;
                let p: Vec<u8> = (0..len).map(|j| (seed >> (j % 8 * 8)) as u8).collect();
                let _ = d.push(i / 3, seed & 1 == 0, (seed >> 8) as u16 % 2, &p);
                while d.pull().is_some() {}
            }
        }
    }

    #[test]
    fn sprop_sets_from_the_sdp() {
        let s = sdp_param_sets(
            Codec::H264,
            Some("packetization-mode=1;sprop-parameter-sets=Z0IAHw==,aM4=;profile-level-id=42001f"),
        );
        assert_eq!(s.sps.as_deref(), Some(&[0x67, 0x42, 0, 0x1f][..]));
        assert_eq!(s.pps.as_deref(), Some(&[0x68, 0xce][..]));
        let s = sdp_param_sets(
            Codec::H265,
            Some("sprop-vps=QAE=;sprop-sps=!!;sprop-pps=RAE="),
        );
        assert!(s.vps.is_some() && s.sps.is_none() && s.pps.is_some());
    }
}
