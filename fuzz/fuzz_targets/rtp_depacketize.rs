//! RTP from a camera through the whole pull path after the socket:
//! interleaved framing, the RTP header, the receiver (SSRC, sequence,
//! timestamps) and the H.264, H.265 and AAC depacketizers, after every
//! packet. Invariants: no frame exceeds the frame limit, and a receiver's
//! presentation times never move by more than its jump bound (10 s) from
//! one accepted packet to the next (they may go back a little: B-frames
//! are sent in decode order).
#![no_main]

use bytes::{Bytes, BytesMut};
use camgate::media::Codec;
use camgate::pull::rtsp::audio::AudioDepacketizer;
use camgate::pull::rtsp::params::ParamSets;
use camgate::pull::rtsp::rtp::{self, Receiver, Verdict};
use camgate::pull::rtsp::video::{FrameLimits, VideoDepacketizer};
use camgate::pull::rtsp::wire::{self, Limits, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = FrameLimits {
        max_bytes: 64 * 1024,
        max_packets: 256,
    };
    let mut h264 = VideoDepacketizer::new(Codec::H264, ParamSets::default(), limits);
    let mut h265 = VideoDepacketizer::new(Codec::H265, ParamSets::default(), limits);
    let mut aac = AudioDepacketizer::new(
        Codec::Aac,
        16_000,
        Some("mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1408"),
    )
    .unwrap();
    let mut receivers = [Receiver::new(90_000, None), Receiver::new(16_000, Some(7))];
    let mut last_pts: [Option<i64>; 2] = [None; 2];
    let clocks = [90_000i64, 16_000];
    // The input is an interleaved stream; channels 0 and 2 carry RTP.
    let mut buf = BytesMut::from(data);
    let mut alive = [true; 3];
    while let Ok(Some(m)) = wire::decode(&mut buf, &Limits::DEFAULT) {
        let Message::Data { channel, payload } = m else { continue };
        let Ok(p) = rtp::parse(payload) else { continue };
        let r = (channel as usize / 2) % 2;
        let Ok(Verdict::Accept { pts, lost }) = receivers[r].accept(&p) else { continue };
        if let Some(last) = last_pts[r] {
            assert!(
                (pts - last).abs() <= 10 * clocks[r],
                "presentation time jumped: {last} -> {pts}"
            );
        }
        last_pts[r] = Some(pts);
        if r == 0 {
            for (i, d) in [&mut h264, &mut h265].into_iter().enumerate() {
                if alive[i] && d.push(pts, p.marker, lost, &p.payload).is_err() {
                    alive[i] = false;
                }
                while let Some(au) = d.pull() {
                    assert!(au.data.len() <= limits.max_bytes);
                }
                let _ = d.track();
            }
        } else if alive[2] {
            if aac.push(pts, p.marker, lost, Bytes::copy_from_slice(&p.payload)).is_err() {
                alive[2] = false;
            }
            for f in aac.drain() {
                assert!(f.data.len() <= camgate::pull::rtsp::audio::MAX_AAC_FRAME_BYTES);
            }
        }
    }
});
