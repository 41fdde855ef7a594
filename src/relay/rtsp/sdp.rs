//! The SDP the relay's DESCRIBE answers with, built from the camera's track
//! parameters: H.264 (sprop-parameter-sets from the avcC record), H.265
//! (sprop-vps/sps/pps from the hvcC record), AAC (RFC 3640 with the
//! AudioSpecificConfig) and G.711. Pure.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::media::{Codec, StreamInfo, Track};

/// Dynamic payload types per track.
pub fn payload_type(t: &Track) -> u8 {
    match t.codec {
        Codec::Pcmu => 0,
        Codec::Pcma => 8,
        Codec::Aac => 97,
        _ => 96,
    }
}

/// Parameter-set NAL units, borrowed from a decoder configuration record.
pub type NalList<'a> = Vec<&'a [u8]>;

/// NAL units of an AVCDecoderConfigurationRecord: (SPS list, PPS list).
pub fn avcc_parameter_sets(avcc: &[u8]) -> Option<(NalList<'_>, NalList<'_>)> {
    if avcc.len() < 7 || avcc[0] != 1 {
        return None;
    }
    let mut pos = 5;
    let read_list = |count: usize, pos: &mut usize| -> Option<NalList<'_>> {
        let mut v = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u16::from_be_bytes([*avcc.get(*pos)?, *avcc.get(*pos + 1)?]) as usize;
            v.push(avcc.get(*pos + 2..*pos + 2 + len)?);
            *pos += 2 + len;
        }
        Some(v)
    };
    let n_sps = (*avcc.get(pos)? & 0x1f) as usize;
    pos += 1;
    let sps = read_list(n_sps, &mut pos)?;
    let n_pps = *avcc.get(pos)? as usize;
    pos += 1;
    let pps = read_list(n_pps, &mut pos)?;
    Some((sps, pps))
}

/// NAL units of an HEVCDecoderConfigurationRecord by NAL type (VPS 32,
/// SPS 33, PPS 34).
pub fn hvcc_parameter_sets(hvcc: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    if hvcc.len() < 23 || hvcc[0] != 1 {
        return None;
    }
    let arrays = hvcc[22] as usize;
    let mut pos = 23;
    let mut out = Vec::new();
    for _ in 0..arrays {
        let kind = *hvcc.get(pos)? & 0x3f;
        let n = u16::from_be_bytes([*hvcc.get(pos + 1)?, *hvcc.get(pos + 2)?]) as usize;
        pos += 3;
        for _ in 0..n {
            let len = u16::from_be_bytes([*hvcc.get(pos)?, *hvcc.get(pos + 1)?]) as usize;
            out.push((kind, hvcc.get(pos + 2..pos + 2 + len)?));
            pos += 2 + len;
        }
    }
    Some(out)
}

/// (sample rate, channels) of an AAC AudioSpecificConfig.
pub fn aac_rate_channels(asc: &[u8]) -> Option<(u32, u8)> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    if asc.len() < 2 {
        return None;
    }
    let bits = u32::from_be_bytes([
        asc[0],
        asc[1],
        *asc.get(2).unwrap_or(&0),
        *asc.get(3).unwrap_or(&0),
    ]);
    let object_type = bits >> 27;
    if object_type == 31 {
        return None; // escape: not a camera's AAC-LC
    }
    // Index 15 (an explicit 24-bit rate) is not used by cameras.
    let freq_index = (bits >> 23) & 0xf;
    let rate = *RATES.get(freq_index as usize)?;
    let channels = ((bits >> 19) & 0xf) as u8;
    Some((rate, channels.max(1)))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The media description of one track, or `None` for a track the relay
/// does not re-serve (missing parameters, unknown codec).
fn media(t: &Track, control: &str) -> Option<String> {
    let pt = payload_type(t);
    let mut m = String::new();
    match t.codec {
        Codec::H264 => {
            let (sps, pps) = avcc_parameter_sets(&t.extra_data)?;
            let first = sps.first().filter(|s| s.len() >= 4)?;
            let sets: Vec<String> = sps.iter().chain(pps.iter()).map(|s| b64(s)).collect();
            let _ = write!(
                m,
                "m=video 0 RTP/AVP {pt}\r\na=rtpmap:{pt} H264/90000\r\n\
                 a=fmtp:{pt} packetization-mode=1;profile-level-id={:02X}{:02X}{:02X};sprop-parameter-sets={}\r\n",
                first[1],
                first[2],
                first[3],
                sets.join(",")
            );
        }
        Codec::H265 => {
            let sets = hvcc_parameter_sets(&t.extra_data)?;
            let of = |k: u8| -> Option<String> {
                let v: Vec<String> = sets
                    .iter()
                    .filter(|(t, _)| *t == k)
                    .map(|(_, s)| b64(s))
                    .collect();
                (!v.is_empty()).then(|| v.join(","))
            };
            let _ = write!(
                m,
                "m=video 0 RTP/AVP {pt}\r\na=rtpmap:{pt} H265/90000\r\n\
                 a=fmtp:{pt} sprop-vps={};sprop-sps={};sprop-pps={}\r\n",
                of(32)?,
                of(33)?,
                of(34)?
            );
        }
        Codec::Aac => {
            let (rate, channels) = aac_rate_channels(&t.extra_data)?;
            let _ = write!(
                m,
                "m=audio 0 RTP/AVP {pt}\r\na=rtpmap:{pt} MPEG4-GENERIC/{rate}/{channels}\r\n\
                 a=fmtp:{pt} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={}\r\n",
                hex::encode(&t.extra_data)
            );
        }
        Codec::Pcma | Codec::Pcmu => {
            let name = if t.codec == Codec::Pcma {
                "PCMA"
            } else {
                "PCMU"
            };
            let _ = write!(
                m,
                "m=audio 0 RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/{}\r\n",
                t.clock_rate
            );
        }
        _ => return None,
    }
    if let (Codec::H264 | Codec::H265, Some((w, h))) = (t.codec, t.dimensions) {
        let _ = write!(m, "a=x-dimensions:{w},{h}\r\n");
    }
    let _ = write!(m, "a=control:{control}\r\n");
    Some(m)
}

/// The session description for a camera's stream, with one media section
/// per re-served track (`a=control:trackID={index}`). Returns the SDP and
/// the track indexes it describes; `None` when not even the video can be
/// described yet.
pub fn session(info: &StreamInfo, session_id: u64, name: &str) -> Option<(String, Vec<u8>)> {
    let mut sdp = format!(
        "v=0\r\no=- {session_id} 1 IN IP4 127.0.0.1\r\ns={}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
         a=tool:camgate\r\na=control:*\r\na=range:npt=now-\r\n",
        name.chars().filter(|c| !c.is_control()).collect::<String>()
    );
    let mut tracks = Vec::new();
    for (i, t) in info.tracks.iter().enumerate() {
        if let Some(m) = media(t, &format!("trackID={i}")) {
            sdp.push_str(&m);
            tracks.push(i as u8);
        } else if t.codec.is_video() {
            return None;
        }
    }
    if tracks.is_empty() {
        return None;
    }
    Some((sdp, tracks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const SPS: [u8; 8] = [0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50];
    const PPS: [u8; 4] = [0x68, 0xeb, 0xe3, 0xcb];

    fn avcc() -> Vec<u8> {
        let mut v = vec![1, 0x64, 0x00, 0x1f, 0xff, 0xe1];
        v.extend((SPS.len() as u16).to_be_bytes());
        v.extend(SPS);
        v.push(1);
        v.extend((PPS.len() as u16).to_be_bytes());
        v.extend(PPS);
        v
    }

    fn track(codec: Codec, rate: u32, extra: Vec<u8>) -> Track {
        Track {
            codec,
            clock_rate: rate,
            rfc6381: None,
            dimensions: codec.is_video().then_some((640, 360)),
            extra_data: Bytes::from(extra),
        }
    }

    #[test]
    fn h264_and_g711() {
        let info = StreamInfo {
            tracks: vec![
                track(Codec::H264, 90000, avcc()),
                track(Codec::Pcma, 8000, vec![]),
            ],
        };
        let (sdp, tracks) = session(&info, 42, "凉州区东大街").unwrap();
        assert_eq!(tracks, vec![0, 1]);
        assert!(sdp.starts_with("v=0\r\no=- 42 1 IN IP4"), "{sdp}");
        assert!(sdp.contains("s=凉州区东大街\r\n"));
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\n"));
        assert!(
            sdp.contains("profile-level-id=64001F;sprop-parameter-sets=Z2QAH6zZQFA=,aOvjyw==\r\n"),
            "{sdp}"
        );
        assert!(
            sdp.contains("m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:trackID=1\r\n"),
            "{sdp}"
        );
        assert!(sdp.lines().all(|l| !l.is_empty()));
    }

    #[test]
    fn h265_and_aac() {
        // hvcC: 22 header bytes, then 3 arrays of one NAL each.
        let mut hvcc = vec![1u8];
        hvcc.extend([0u8; 21]);
        hvcc.push(3);
        for (kind, nal) in [
            (32u8, &[0x40u8, 1, 0xc][..]),
            (33, &[0x42, 1, 1]),
            (34, &[0x44, 1, 0xc1]),
        ] {
            hvcc.push(0x80 | kind);
            hvcc.extend(1u16.to_be_bytes());
            hvcc.extend((nal.len() as u16).to_be_bytes());
            hvcc.extend(nal);
        }
        // AAC-LC, 16 kHz (index 8), mono: 00010 1000 0001 000 = 0x14 0x08.
        let info = StreamInfo {
            tracks: vec![
                track(Codec::H265, 90000, hvcc),
                track(Codec::Aac, 16000, vec![0x14, 0x08]),
            ],
        };
        let (sdp, _) = session(&info, 1, "x").unwrap();
        assert!(
            sdp.contains("a=fmtp:96 sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAHB\r\n"),
            "{sdp}"
        );
        assert!(
            sdp.contains("a=rtpmap:97 MPEG4-GENERIC/16000/1\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("config=1408\r\n"), "{sdp}");
    }

    #[test]
    fn aac_configs() {
        assert_eq!(aac_rate_channels(&[0x12, 0x10]), Some((44100, 2)));
        assert_eq!(aac_rate_channels(&[0x11, 0x90]), Some((48000, 2)));
        assert_eq!(aac_rate_channels(&[0x15, 0x88]), Some((8000, 1)));
        assert_eq!(aac_rate_channels(&[0x12]), None);
        assert_eq!(aac_rate_channels(&[0xf8, 0, 0, 0]), None);
    }

    #[test]
    fn video_without_parameters_is_not_described() {
        let info = StreamInfo {
            tracks: vec![track(Codec::H264, 90000, vec![])],
        };
        assert!(session(&info, 1, "x").is_none());
        // Truncated records never panic.
        let a = avcc();
        for cut in 0..a.len() {
            let _ = avcc_parameter_sets(&a[..cut]);
        }
        assert!(avcc_parameter_sets(&a[..a.len() - 1]).is_none());
    }
}

/// Random decoder configuration records (deterministic seed) never panic
/// and never yield a parameter set reaching past the record.
#[cfg(test)]
mod fuzz {
    use super::*;

    #[test]
    fn random_records_never_panic() {
        let mut rng = fastrand::Rng::with_seed(2260);
        for _ in 0..20_000 {
            let len = rng.usize(..64);
            let mut rec: Vec<u8> = (0..len).map(|_| rng.u8(..8)).collect();
            if let Some(b) = rec.first_mut() {
                *b = 1;
            }
            if let Some((sps, pps)) = avcc_parameter_sets(&rec) {
                assert!(sps.iter().chain(&pps).all(|s| s.len() <= rec.len()));
            }
            if let Some(sets) = hvcc_parameter_sets(&rec) {
                assert!(sets.iter().all(|(_, s)| s.len() <= rec.len()));
            }
            let _ = aac_rate_channels(&rec);
        }
    }
}
