//! Authentication headers both ways: a client's `Authorization` on the
//! relay (`auth::digest::parse`, nonce checks, URI binding) and a camera's
//! `WWW-Authenticate` on the pull (`pull::rtsp::auth`).
#![no_main]

use camgate::auth::digest;
use camgate::pull::rtsp::auth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(digest::Authorization::Digest(d)) = digest::parse(&text) {
        let _ = digest::nonce_fresh(&d.nonce, b"secret", 1_000, "salt");
        let _ = digest::uri_matches(&d.uri, "rtsp://127.0.0.1:8554/cam/1");
    }
    let _ = auth::params(&text);
    if let Some(ch) = auth::parse_challenges(text.split('\n')) {
        let v = auth::authorization(&ch, "DESCRIBE", "rtsp://h/x", "admin", "pw", "c", 1);
        assert!(!v.contains('\n') || text.contains('\n'));
    }
});
