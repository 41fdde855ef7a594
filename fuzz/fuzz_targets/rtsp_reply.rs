//! The pull's RTSP reader (`pull::rtsp::wire::decode`): a camera's byte
//! stream, fed in pieces of the sizes the input chooses. Invariants: the
//! buffer never holds more than the limits allow, every message decoded is
//! within them, and the reader makes progress or asks for more.
#![no_main]

use bytes::BytesMut;
use camgate::pull::rtsp::wire::{self, Limits, MAX_INTERLEAVED_BYTES, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        head_bytes: 1024,
        header_lines: 16,
        body_bytes: 2048,
    };
    let bound = limits.head_bytes + limits.body_bytes + 4 + MAX_INTERLEAVED_BYTES;
    let mut buf = BytesMut::new();
    let mut rest = data;
    while !rest.is_empty() {
        // The first byte of each piece chooses its length.
        let n = 1 + (rest[0] as usize % 64).min(rest.len() - 1);
        buf.extend_from_slice(&rest[1..n.max(1)]);
        rest = &rest[n.max(1)..];
        loop {
            let before = buf.len();
            match wire::decode(&mut buf, &limits) {
                Ok(Some(m)) => {
                    assert!(buf.len() < before, "a message consumed nothing");
                    match m {
                        Message::Response(r) => {
                            assert!(r.body.len() <= limits.body_bytes);
                            assert!(r.headers.len() <= limits.header_lines);
                        }
                        Message::Data { payload, .. } => assert!(payload.len() <= MAX_INTERLEAVED_BYTES),
                        Message::Request { method, .. } => assert!(method.len() <= 32),
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(buf.len() <= bound, "the buffer grew to {}", buf.len());
    }
});
