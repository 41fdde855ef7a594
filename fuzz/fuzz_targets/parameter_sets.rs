//! SPS/PPS/VPS from a camera (in the SDP or in band): the H.265 SPS reader
//! and the decoder configuration records built from them, which the fMP4
//! muxer then reads back.
#![no_main]

use bytes::Bytes;
use camgate::media::{Codec, StreamInfo};
use camgate::pull::rtsp::params::{self, ParamSets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = params::h265_sps(data);
    let third = data.len() / 3;
    let sets = ParamSets {
        vps: Some(Bytes::copy_from_slice(&data[..third])),
        sps: Some(Bytes::copy_from_slice(&data[third..2 * third])),
        pps: Some(Bytes::copy_from_slice(&data[2 * third..])),
    };
    for codec in [Codec::H264, Codec::H265] {
        let t = params::video_track(codec, &sets);
        let info = StreamInfo { tracks: vec![t] };
        let _ = camgate::relay::fmp4::init_segment(&info);
    }
});
