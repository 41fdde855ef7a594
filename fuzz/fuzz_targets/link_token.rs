//! Embed-link tokens as a stranger may send them: verification never
//! accepts a token that was not signed with the secret, and a token signed
//! with it round-trips.
#![no_main]

use camgate::auth::token::{self, LinkClaims};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = token::verify_link(&text, b"fuzz-secret", 1_000) {
        // Only possible for a token signed with this secret: re-signing
        // the claims gives the same token.
        assert_eq!(token::sign_link(&c, b"fuzz-secret"), text);
    }
    let claims = LinkClaims {
        id: text.chars().take(40).collect(),
        camera: Some(text.chars().rev().take(20).collect()),
        district: None,
        exp: 2_000,
    };
    let t = token::sign_link(&claims, b"fuzz-secret");
    assert_eq!(token::verify_link(&t, b"fuzz-secret", 1_000), Ok(claims));
    assert!(token::verify_link(&t, b"other", 1_000).is_err());
});
