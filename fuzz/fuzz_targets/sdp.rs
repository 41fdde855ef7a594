//! A camera's SDP: the pull's parser, control URL resolution, the
//! parameter sets of `fmtp`, the audio depacketizer set-up, and the probe's
//! codec look-up. Invariant: at most `MAX_MEDIA` sections are kept.
#![no_main]

use camgate::media::Codec;
use camgate::pull::rtsp::{audio, sdp, video};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camgate::pull::describe::sdp_video_codec(&String::from_utf8_lossy(data));
    let Ok(d) = sdp::parse(data) else { return };
    assert!(d.media.len() <= sdp::MAX_MEDIA);
    let base = url::Url::parse("rtsp://10.0.0.1:554/Streaming/Channels/101").unwrap();
    let _ = sdp::resolve_control(&base, d.control.as_deref());
    for m in &d.media {
        let _ = sdp::resolve_control(&base, m.control.as_deref());
        for codec in [Codec::H264, Codec::H265] {
            let sets = video::sdp_param_sets(codec, m.fmtp.as_deref());
            let _ = camgate::pull::rtsp::params::video_track(codec, &sets);
        }
        for codec in [Codec::Aac, Codec::Pcma] {
            let _ = audio::AudioDepacketizer::new(codec, m.clock_rate, m.fmtp.as_deref());
        }
    }
});
