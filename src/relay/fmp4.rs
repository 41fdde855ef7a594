//! Fragmented MP4 (CMAF) for the browser paths: an init segment (`ftyp` +
//! `moov`) from a camera's video track parameters, and fragments (`moof` +
//! `mdat`) of frames. H.264 as `avc1`, H.265 as `hvc1`. Boxes are encoded
//! with `mp4-atom`; this module only decides what goes in them. Pure.

use bytes::Bytes;
use mp4_atom::{
    Atom, Avc1, Avcc, Dinf, Dref, Encode, Ftyp, Hdlr, Hvc1, Hvcc, Mdhd, Mdia, Mfhd, Minf, Moof,
    Moov, Mvex, Mvhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun,
    TrunEntry, Url, Visual, Vmhd,
};

use crate::media::{Codec, StreamInfo};

/// The timescale of video tracks (RTP's 90 kHz, so frame timestamps carry
/// over unchanged).
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// The track ID of the video track.
pub const VIDEO_TRACK_ID: u32 = 1;

/// One sample of a fragment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    pub is_key: bool,
    /// Length-prefixed NAL units (the MP4 sample format, 4-byte lengths).
    pub data: Bytes,
}

/// The init segment for a camera's video track and its RFC 6381 codec
/// string (for MSE's `addSourceBuffer`), or why it cannot be built.
pub fn init_segment(info: &StreamInfo) -> Result<(Bytes, String), String> {
    let video = info.video().ok_or("the camera has no video track")?;
    let (width, height) = video.dimensions.unwrap_or((0, 0));
    let visual = Visual {
        data_reference_index: 1,
        width: width as u16,
        height: height as u16,
        horizresolution: 72.into(),
        vertresolution: 72.into(),
        frame_count: 1,
        compressor: "".into(),
        depth: 24,
    };
    let mut record = &video.extra_data[..];
    let (codec, brand) = match video.codec {
        Codec::H264 => {
            let avcc = Avcc::decode_body(&mut record).map_err(|e| format!("avcC: {e}"))?;
            (
                Avc1 {
                    visual,
                    avcc,
                    ..Default::default()
                }
                .into(),
                *b"avc1",
            )
        }
        Codec::H265 => {
            let hvcc = Hvcc::decode_body(&mut record).map_err(|e| format!("hvcC: {e}"))?;
            (
                Hvc1 {
                    visual,
                    hvcc,
                    ..Default::default()
                }
                .into(),
                *b"hvc1",
            )
        }
        other => return Err(format!("{other} video is not muxed")),
    };
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into(), brand.into()],
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: VIDEO_TRACK_ID + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            trex: vec![Trex {
                track_id: VIDEO_TRACK_ID,
                default_sample_description_index: 1,
                ..Default::default()
            }],
            ..Default::default()
        }),
        trak: vec![Trak {
            tkhd: Tkhd {
                track_id: VIDEO_TRACK_ID,
                enabled: true,
                width: (width as u16).into(),
                height: (height as u16).into(),
                ..Default::default()
            },
            mdia: Mdia {
                mdhd: Mdhd {
                    timescale: VIDEO_TIMESCALE,
                    language: "und".into(),
                    ..Default::default()
                },
                hdlr: Hdlr {
                    handler: b"vide".into(),
                    name: "camgate".into(),
                },
                minf: Minf {
                    vmhd: Some(Vmhd::default()),
                    dinf: Dinf {
                        dref: Dref {
                            urls: vec![Url {
                                location: "".into(),
                            }],
                        },
                    },
                    stbl: Stbl {
                        stsd: Stsd {
                            codecs: vec![codec],
                        },
                        stts: Stts::default(),
                        stsc: Stsc::default(),
                        stsz: Stsz::default(),
                        stco: Some(Stco::default()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out).map_err(|e| e.to_string())?;
    moov.encode(&mut out).map_err(|e| e.to_string())?;
    let rfc6381 = video
        .rfc6381
        .clone()
        .unwrap_or_else(|| String::from_utf8_lossy(&brand).into_owned());
    Ok((Bytes::from(out), rfc6381))
}

/// Sample flags: a sync sample, or a non-sync one that depends on others.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// One fragment (`moof` + `mdat`) of video samples starting at
/// `base_decode_time` (in the track's timescale).
pub fn fragment(sequence: u32, base_decode_time: u64, samples: &[Sample]) -> Bytes {
    let head = fragment_head(sequence, base_decode_time, samples);
    let mut out =
        Vec::with_capacity(head.len() + samples.iter().map(|s| s.data.len()).sum::<usize>());
    out.extend_from_slice(&head);
    for s in samples {
        out.extend_from_slice(&s.data);
    }
    Bytes::from(out)
}

/// The head of a fragment: the `moof` and the `mdat` box header. The
/// samples' data follows it unchanged, so a sender can write the shared
/// frame buffers after it without copying them.
pub fn fragment_head(sequence: u32, base_decode_time: u64, samples: &[Sample]) -> Bytes {
    let entries: Vec<TrunEntry> = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration),
            size: Some(s.data.len() as u32),
            flags: Some(if s.is_key { SYNC } else { NON_SYNC }),
            cts: None,
        })
        .collect();
    let moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: VIDEO_TRACK_ID,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: base_decode_time,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                entries,
            }],
            ..Default::default()
        }],
    };
    // The data offset counts from the start of the moof to the first
    // sample byte: the moof's own size plus the mdat header. The moof's size
    // does not depend on the offset's value, so it is encoded once and the
    // field patched (this runs per frame for every WebSocket viewer).
    let mut out = Vec::with_capacity(256);
    moof.encode(&mut out).expect("encoding into a Vec");
    let at = trun_data_offset_at(&out).expect("the moof has a traf with a trun");
    let offset = out.len() as u32 + 8;
    out[at..at + 4].copy_from_slice(&offset.to_be_bytes());
    let data_len: usize = samples.iter().map(|s| s.data.len()).sum();
    out.extend_from_slice(&((8 + data_len) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    Bytes::from(out)
}

/// Where the first trun's `data_offset` field sits in an encoded moof: the
/// trun's box header (8), version and flags (4) and sample count (4) come
/// before it.
fn trun_data_offset_at(moof: &[u8]) -> Option<usize> {
    // The child box of `kind` among the boxes in `buf[start..end]`.
    let child = |start: usize, end: usize, kind: &[u8; 4]| -> Option<(usize, usize)> {
        let mut pos = start;
        while pos + 8 <= end {
            let size = u32::from_be_bytes(moof[pos..pos + 4].try_into().ok()?) as usize;
            if size < 8 || pos + size > end {
                return None;
            }
            if &moof[pos + 4..pos + 8] == kind {
                return Some((pos, pos + size));
            }
            pos += size;
        }
        None
    };
    let (traf, traf_end) = child(8, moof.len(), b"traf")?;
    let (trun, trun_end) = child(traf + 8, traf_end, b"trun")?;
    (trun + 20 <= trun_end).then_some(trun + 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::clip::{DEMO_CLIP, parse_h264};

    #[test]
    fn init_and_fragments_of_the_demo_clip() {
        let clip = parse_h264(DEMO_CLIP).unwrap();
        let mut info = clip.info.clone();
        info.tracks[0].dimensions = Some((640, 360));
        let (init, codec) = init_segment(&info).unwrap();
        assert_eq!(codec, "avc1.4d401e");
        assert_eq!(&init[4..8], b"ftyp");
        assert!(init.windows(4).any(|w| w == b"avcC"));
        let samples: Vec<Sample> = clip.frames[..50]
            .iter()
            .map(|(k, d)| Sample {
                duration: 3600,
                is_key: *k,
                data: d.clone(),
            })
            .collect();
        let frag = fragment(1, 0, &samples);
        assert_eq!(&frag[4..8], b"moof");
        let total: usize = samples.iter().map(|s| s.data.len()).sum();
        assert!(frag.len() > total);
        // The first sample starts exactly at the data offset.
        let first = &samples[0].data;
        let at = frag
            .windows(first.len().min(16))
            .position(|w| w == &first[..w.len()])
            .unwrap();
        let moof_len = u32::from_be_bytes([frag[0], frag[1], frag[2], frag[3]]) as usize;
        assert_eq!(at, moof_len + 8);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let clip = parse_h264(DEMO_CLIP).unwrap();
        let mut info = clip.info.clone();
        info.tracks[0].extra_data = Bytes::from_static(&[1, 2]);
        assert!(init_segment(&info).is_err());
        assert!(init_segment(&StreamInfo::default()).is_err());
    }
}
