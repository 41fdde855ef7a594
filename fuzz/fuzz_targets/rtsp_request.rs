//! The relay's RTSP request parser (`relay::rtsp::message::parse`) and its
//! header helpers, on a client's byte stream.
#![no_main]

use camgate::relay::rtsp::message::{self, Incoming};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((m, n))) = message::parse(rest) {
        assert!(n > 0 && n <= rest.len(), "consumed {n} of {}", rest.len());
        if let Incoming::Request(r) = &m {
            assert!(r.body.len() <= message::MAX_BODY_BYTES);
            let _ = message::camera_path(&r.uri);
            if let Some(t) = r.header("transport") {
                let _ = message::parse_transport(t);
            }
        }
        rest = &rest[n..];
    }
});
