//! A short H.264 clip replayed in a loop as live cameras: the demo's fleet
//! when the binary has no GStreamer simulator. The replay feeds one shared
//! fan-out at the clip's frame rate; the relay's own RTSP server serves it
//! as `N` cameras, which the gateway then pulls like any other camera.
//!
//! Parsing the Annex B clip into access units and building the avcC record
//! is pure code.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::rtsp::Streams;
use crate::fanout::{Fanout, FanoutOptions, Subscriber};
use crate::media::{Codec, Frame, StreamInfo, Track};

/// The committed demo clip (see assets/demo/README.md).
pub const DEMO_CLIP: &[u8] = include_bytes!("../../assets/demo/clip.h264");
/// Its frame rate.
pub const DEMO_CLIP_FPS: u32 = 25;

/// A clip split into access units.
#[derive(Debug, Clone)]
pub struct Clip {
    pub info: StreamInfo,
    /// (key frame, 4-byte length-prefixed NAL units), starting at a key frame.
    pub frames: Vec<(bool, Bytes)>,
}

/// The NAL units of an Annex B byte stream (start codes removed).
pub fn annex_b_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |n| n - 3);
        // A 4-byte start code leaves a zero before the next 3-byte one, and
        // trailing zeros are not part of a unit.
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            out.push(&data[s..end]);
        }
    }
    out
}

/// Splits an H.264 Annex B stream with access unit delimiters into frames.
pub fn parse_h264(data: &[u8]) -> Result<Clip, String> {
    let mut frames: Vec<(bool, Vec<u8>)> = Vec::new();
    let (mut sps, mut pps): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    let mut current: Option<(bool, Vec<u8>)> = None;
    for nal in annex_b_units(data) {
        let kind = nal[0] & 0x1f;
        match kind {
            9 => {
                if let Some(f) = current.take() {
                    frames.push(f);
                }
                current = Some((false, Vec::new()));
                continue;
            }
            7 if sps.is_none() => sps = Some(nal),
            8 if pps.is_none() => pps = Some(nal),
            _ => {}
        }
        let Some((key, buf)) = current.as_mut() else {
            return Err("the clip must start with an access unit delimiter".into());
        };
        *key |= kind == 5;
        buf.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        buf.extend_from_slice(nal);
    }
    frames.extend(current);
    frames.retain(|(_, b)| !b.is_empty());
    let (Some(sps), Some(pps)) = (sps, pps) else {
        return Err("the clip has no SPS/PPS".into());
    };
    if sps.len() < 4 {
        return Err("SPS too short".into());
    }
    let first_key = frames
        .iter()
        .position(|(k, _)| *k)
        .ok_or("the clip has no key frame")?;
    frames.drain(..first_key);
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(pps);
    Ok(Clip {
        info: StreamInfo {
            tracks: vec![Track {
                codec: Codec::H264,
                clock_rate: 90_000,
                rfc6381: Some(format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3])),
                dimensions: None,
                extra_data: Bytes::from(avcc),
            }],
        },
        frames: frames
            .into_iter()
            .map(|(k, b)| (k, Bytes::from(b)))
            .collect(),
    })
}

/// `cameras` cameras (IDs `0` .. `cameras - 1`) that all show the clip.
pub struct ClipFleet {
    fanout: Arc<Fanout>,
    cameras: usize,
}

impl ClipFleet {
    /// Starts the replay; it stops with `cancel`.
    pub fn start(
        clip: Clip,
        fps: u32,
        cameras: usize,
        cancel: CancellationToken,
    ) -> Arc<ClipFleet> {
        let fanout = Fanout::new(FanoutOptions::default());
        fanout.set_info(clip.info.clone());
        let feed = fanout.clone();
        tokio::spawn(async move {
            let period = Duration::from_secs(1) / fps.max(1);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let step = 90_000 / i64::from(fps.max(1));
            let mut pts = 0i64;
            for (key, data) in clip.frames.iter().cycle() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                feed.publish(Frame {
                    track: 0,
                    pts,
                    is_key: *key,
                    data: data.clone(),
                    arrived: std::time::Instant::now(),
                });
                pts += step;
            }
        });
        Arc::new(ClipFleet { fanout, cameras })
    }

    /// The demo clip's fleet.
    pub fn demo(cameras: usize, cancel: CancellationToken) -> Result<Arc<ClipFleet>, String> {
        Ok(Self::start(
            parse_h264(DEMO_CLIP)?,
            DEMO_CLIP_FPS,
            cameras,
            cancel,
        ))
    }

    fn known(&self, id: &str) -> bool {
        id.parse::<usize>()
            .is_ok_and(|n| n < self.cameras && n.to_string() == id)
    }
}

impl Streams for ClipFleet {
    fn name(&self, id: &str) -> Option<String> {
        self.known(id).then(|| format!("demo camera {id}"))
    }

    fn subscribe(&self, id: &str) -> Option<Subscriber> {
        self.known(id).then(|| self.fanout.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_clip_parses() {
        let clip = parse_h264(DEMO_CLIP).unwrap();
        assert_eq!(clip.frames.len(), 300, "12 s at 25 fps");
        assert!(clip.frames[0].0, "starts at a key frame");
        assert_eq!(
            clip.frames.iter().filter(|f| f.0).count(),
            6,
            "a key frame every 50"
        );
        let t = &clip.info.tracks[0];
        assert_eq!(t.rfc6381.as_deref(), Some("avc1.4d401e"));
        // Every frame is length-prefixed NAL units, none an AUD.
        for (_, f) in &clip.frames {
            let nals = super::super::rtsp::rtp::nal_units(f);
            assert!(!nals.is_empty());
            let total: usize = nals.iter().map(|n| n.len() + 4).sum();
            assert_eq!(total, f.len());
            assert!(nals.iter().all(|n| n[0] & 0x1f != 9));
        }
    }

    #[test]
    fn annex_b_start_codes_of_both_lengths() {
        let data = [
            0, 0, 0, 1, 9, 0x10, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x41, 7, 0,
        ];
        let units = annex_b_units(&data);
        assert_eq!(units, vec![&[9, 0x10][..], &[0x65, 1, 2], &[0x41, 7]]);
        assert!(parse_h264(&data).is_err(), "no SPS/PPS");
        assert!(
            parse_h264(&[0, 0, 1, 0x67, 1, 2, 3]).is_err(),
            "no AUD first"
        );
        assert!(annex_b_units(&[]).is_empty());
    }
}
