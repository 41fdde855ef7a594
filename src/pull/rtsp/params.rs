//! Video parameter sets to track parameters: the decoder configuration
//! record (avcC / hvcC, via `mp4-atom`), the RFC 6381 codec string and the
//! picture size from the SPS (H.264 via `h264-reader`; H.265 read here up to
//! the conformance window, which is all a gateway needs). Pure.

use bytes::Bytes;
use mp4_atom::{Atom as _, Avcc, HvcCArray, Hvcc};

use crate::media::{Codec, Track};

/// The parameter sets last seen for a video track.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamSets {
    /// H.265 only.
    pub vps: Option<Bytes>,
    pub sps: Option<Bytes>,
    pub pps: Option<Bytes>,
}

impl ParamSets {
    /// Whether a decoder has everything it needs.
    pub fn complete(&self, codec: Codec) -> bool {
        self.sps.is_some() && self.pps.is_some() && (codec != Codec::H265 || self.vps.is_some())
    }
}

/// A video track from its parameter sets. Without a complete set (or with
/// an SPS that does not parse) the track has no configuration yet, and the
/// relays wait for one.
pub fn video_track(codec: Codec, sets: &ParamSets) -> Track {
    let mut t = Track {
        codec,
        clock_rate: 90_000,
        rfc6381: None,
        dimensions: None,
        extra_data: Bytes::new(),
    };
    if !sets.complete(codec) {
        return t;
    }
    let (sps, pps) = (sets.sps.as_ref().unwrap(), sets.pps.as_ref().unwrap());
    match codec {
        Codec::H264 => {
            if sps.len() < 4 {
                return t;
            }
            let Ok(avcc) = Avcc::new(sps, pps) else {
                return t;
            };
            let mut rec = Vec::new();
            if avcc.encode_body(&mut rec).is_err() {
                return t;
            }
            t.extra_data = Bytes::from(rec);
            t.rfc6381 = Some(format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]));
            t.dimensions = h264_dimensions(sps);
        }
        Codec::H265 => {
            let Some(info) = h265_sps(sps) else {
                return t;
            };
            let vps = sets.vps.as_ref().unwrap();
            let hvcc = Hvcc {
                configuration_version: 1,
                general_profile_space: info.ptl[0] >> 6,
                general_tier_flag: info.ptl[0] & 0x20 != 0,
                general_profile_idc: info.ptl[0] & 0x1f,
                general_profile_compatibility_flags: [
                    info.ptl[1],
                    info.ptl[2],
                    info.ptl[3],
                    info.ptl[4],
                ],
                general_constraint_indicator_flags: [
                    info.ptl[5],
                    info.ptl[6],
                    info.ptl[7],
                    info.ptl[8],
                    info.ptl[9],
                    info.ptl[10],
                ],
                general_level_idc: info.ptl[11],
                min_spatial_segmentation_idc: 0,
                parallelism_type: 0,
                chroma_format_idc: info.chroma_format_idc,
                bit_depth_luma_minus8: info.bit_depth_luma_minus8,
                bit_depth_chroma_minus8: info.bit_depth_chroma_minus8,
                avg_frame_rate: 0,
                constant_frame_rate: 0,
                num_temporal_layers: info.max_sub_layers,
                temporal_id_nested: info.temporal_id_nesting,
                length_size_minus_one: 3,
                arrays: [(32u8, vps), (33, sps), (34, pps)]
                    .into_iter()
                    .map(|(kind, nal)| HvcCArray {
                        completeness: true,
                        nal_unit_type: kind,
                        nalus: vec![nal.to_vec()],
                    })
                    .collect(),
            };
            let mut rec = Vec::new();
            if hvcc.encode_body(&mut rec).is_err() {
                return t;
            }
            t.extra_data = Bytes::from(rec);
            t.rfc6381 = Some(hevc_codec_string(&info.ptl));
            t.dimensions = Some((info.width, info.height));
        }
        _ => {}
    }
    t
}

fn h264_dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = h264_reader::rbsp::decode_nal(sps).ok()?;
    let sps = h264_reader::nal::sps::SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(
        &*rbsp,
    ))
    .ok()?;
    sps.pixel_dimensions().ok()
}

/// RFC 6381 / ISO 14496-15 E.3: `hvc1.<space><profile>.<compat>.<tier><level>.<constraints>`.
fn hevc_codec_string(ptl: &[u8; 12]) -> String {
    let space = ["", "A", "B", "C"][(ptl[0] >> 6) as usize];
    let compat = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let tier = if ptl[0] & 0x20 != 0 { 'H' } else { 'L' };
    let mut s = format!("hvc1.{space}{}.{compat:x}.{tier}{}", ptl[0] & 0x1f, ptl[11]);
    let constraints = &ptl[5..11];
    let used = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// What the gateway reads from an H.265 SPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H265Sps {
    /// general profile_tier_level: space/tier/profile, 4 compatibility
    /// bytes, 6 constraint bytes, level.
    pub ptl: [u8; 12],
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u8,
    pub width: u32,
    pub height: u32,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
}

/// Removes emulation prevention bytes (`00 00 03` -> `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(b as u32)
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }
    /// Exp-Golomb, at most 31 leading zeros.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)? as u64;
        u32::try_from((1u64 << zeros) - 1 + rest).ok()
    }
}

/// Reads an H.265 SPS NAL unit (with its 2-byte header) up to the bit
/// depths (ITU-T H.265 §7.3.2.2.1).
pub fn h265_sps(nal: &[u8]) -> Option<H265Sps> {
    if nal.len() < 3 || (nal[0] >> 1) & 0x3f != 33 {
        return None;
    }
    let rbsp = unescape(&nal[2..]);
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    let _vps_id = r.bits(4)?;
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    let temporal_id_nesting = r.bit()? == 1;
    let mut ptl = [0u8; 12];
    for b in ptl.iter_mut() {
        *b = r.bits(8)? as u8;
    }
    let mut sub = Vec::with_capacity(max_sub_layers_minus1);
    for _ in 0..max_sub_layers_minus1 {
        sub.push((r.bit()?, r.bit()?));
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for (profile, level) in sub {
        if profile == 1 {
            r.skip(88)?;
        }
        if level == 1 {
            r.skip(8)?;
        }
    }
    let _sps_id = r.ue()?;
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return None;
    }
    if chroma_format_idc == 3 {
        r.bit()?;
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.bit()? == 1 {
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        width = width.checked_sub(sub_w * left.checked_add(right)?)?;
        height = height.checked_sub(sub_h * top.checked_add(bottom)?)?;
    }
    let bit_depth_luma_minus8 = r.ue()?;
    let bit_depth_chroma_minus8 = r.ue()?;
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return None;
    }
    Some(H265Sps {
        ptl,
        max_sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nesting,
        chroma_format_idc: chroma_format_idc as u8,
        width,
        height,
        bit_depth_luma_minus8: bit_depth_luma_minus8.min(7) as u8,
        bit_depth_chroma_minus8: bit_depth_chroma_minus8.min(7) as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> Bytes {
        Bytes::from(base64::engine::general_purpose::STANDARD.decode(s).unwrap())
    }

    #[test]
    fn h264_track_from_a_hikvision_sps() {
        // Hikvision DS-2CD2xx, 1920x1080 (sprop-parameter-sets of its SDP).
        let sets = ParamSets {
            vps: None,
            sps: Some(b64("Z00AKpY1QPAET8s3AQEBAg==")),
            pps: Some(b64("aO48gA==")),
        };
        let t = video_track(Codec::H264, &sets);
        assert_eq!(t.rfc6381.as_deref(), Some("avc1.4d002a"));
        assert_eq!(t.dimensions, Some((1920, 1080)));
        let mut rec = &t.extra_data[..];
        let avcc = Avcc::decode_body(&mut rec).unwrap();
        assert_eq!(avcc.sequence_parameter_sets[0], sets.sps.unwrap().to_vec());
        // Incomplete sets: no configuration yet.
        let t = video_track(
            Codec::H264,
            &ParamSets {
                pps: None,
                ..Default::default()
            },
        );
        assert!(t.extra_data.is_empty() && t.rfc6381.is_none());
    }

    #[test]
    fn h265_track_from_an_x265_sps() {
        // x265 Main profile, level 3.1, 640x360 (as the simulator streams).
        let sets = ParamSets {
            vps: Some(b64("QAEMAf//AWAAAAMAkAAAAwAAAwBdlZgJ")),
            sps: Some(b64(
                "QgEBAWAAAAMAkAAAAwAAAwBdoAUCAWlllmZJJC7gQAAAAwBAAAAGQg==",
            )),
            pps: Some(b64("RAHBcrRiQA==")),
        };
        let info = h265_sps(sets.sps.as_ref().unwrap()).unwrap();
        assert_eq!((info.width, info.height), (640, 360));
        let t = video_track(Codec::H265, &sets);
        assert_eq!(t.rfc6381.as_deref(), Some("hvc1.1.6.L93.90"));
        let mut rec = &t.extra_data[..];
        let hvcc = Hvcc::decode_body(&mut rec).unwrap();
        assert_eq!(hvcc.arrays.len(), 3);
        assert_eq!(hvcc.general_level_idc, 93);
    }

    #[test]
    fn truncated_and_garbage_sps_do_not_panic() {
        let sps = b64("QgEBAWAAAAMAkAAAAwAAAwBdoAUCAWlllmZJJC7gQAAAAwBAAAAGQg==");
        for cut in 0..sps.len() {
            let _ = h265_sps(&sps[..cut]);
        }
        assert_eq!(h265_sps(&[0x42, 1, 0xff, 0xff, 0xff, 0xff]), None);
        let _ = h264_dimensions(&[0x67, 0xff, 0xff]);
    }
}
