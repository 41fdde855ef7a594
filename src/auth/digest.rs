//! HTTP-style authentication on RTSP (RFC 2326 §D, RFC 7616 without
//! `qop`, which is what RTSP clients send): parsing `Authorization`
//! headers, stateless nonces, and the Digest hash arithmetic.
//!
//! Digest needs `MD5(username:realm:secret)` on the server. For users that
//! is a fast hash of a password, so it is stored encrypted with the
//! credential key (never in clear) and only for RTSP; the REST API never
//! uses it.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// The protection space of every RTSP challenge.
pub const REALM: &str = "camgate";
/// How long a nonce is accepted after it was issued.
pub const NONCE_TTL_SECS: i64 = 300;

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// `MD5(username:realm:secret)`, hex.
pub fn ha1(username: &str, secret: &str) -> String {
    md5_hex(&format!("{username}:{REALM}:{secret}"))
}

/// The response a client that knows `ha1` sends for `method` on `uri`.
pub fn response(ha1: &str, nonce: &str, method: &str, uri: &str) -> String {
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
}

fn nonce_mac(secret: &[u8], issued: &str, salt: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(b"rtsp-nonce.");
    m.update(issued.as_bytes());
    m.update(b".");
    m.update(salt.as_bytes());
    hex::encode(&m.finalize().into_bytes()[..12])
}

/// A nonce issued at `now` (Unix seconds) on the connection whose random
/// `salt` it is: the time and a MAC over both, so it is checked without
/// server state and is worth nothing on another connection.
pub fn nonce(secret: &[u8], now: i64, salt: &str) -> String {
    let issued = format!("{now:x}");
    let mac = nonce_mac(secret, &issued, salt);
    format!("{issued}{mac}")
}

/// Whether `n` is a nonce of ours issued within [`NONCE_TTL_SECS`] on the
/// connection of `salt`.
pub fn nonce_fresh(n: &str, secret: &[u8], now: i64, salt: &str) -> bool {
    if n.len() <= 24 || n.len() > 40 || !n.is_ascii() {
        return false;
    }
    let (issued, mac) = n.split_at(n.len() - 24);
    let Ok(t) = i64::from_str_radix(issued, 16) else {
        return false;
    };
    ct_eq(nonce_mac(secret, issued, salt).as_bytes(), mac.as_bytes())
        && t <= now + 5
        && now - t <= NONCE_TTL_SECS
}

/// Whether a Digest answer's `uri` names the request's URI: equal, or the
/// same path and query when one of them is written without the
/// `rtsp://host:port` part (both forms are seen from clients).
pub fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    fn path(u: &str) -> &str {
        match u.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => u,
        }
    }
    digest_uri == request_uri || path(digest_uri) == path(request_uri)
}

/// Equality that takes the same time wherever the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Credentials from an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Basic { user: String, pass: String },
    Digest(DigestAuth),
}

/// The fields of a Digest `Authorization` header that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAuth {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
}

/// Parses an `Authorization` header value; `None` for other schemes or
/// malformed values.
pub fn parse(header: &str) -> Option<Authorization> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, pass) = text.split_once(':')?;
        return Some(Authorization::Basic {
            user: user.to_string(),
            pass: pass.to_string(),
        });
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut d = DigestAuth {
        username: String::new(),
        realm: String::new(),
        nonce: String::new(),
        uri: String::new(),
        response: String::new(),
    };
    for (k, v) in params(rest) {
        let slot = match k.to_ascii_lowercase().as_str() {
            "username" => &mut d.username,
            "realm" => &mut d.realm,
            "nonce" => &mut d.nonce,
            "uri" => &mut d.uri,
            "response" => &mut d.response,
            _ => continue,
        };
        *slot = v;
    }
    (!d.username.is_empty() && !d.nonce.is_empty() && !d.response.is_empty())
        .then_some(Authorization::Digest(d))
}

/// `k=v, k="v, with commas"` pairs.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    out
}

/// The `WWW-Authenticate` values of a challenge: Digest first (clients
/// pick the strongest they know), then Basic.
pub fn challenge(secret: &[u8], now: i64, salt: &str) -> [String; 2] {
    [
        format!(
            "Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=MD5",
            nonce(secret, now, salt)
        ),
        format!("Basic realm=\"{REALM}\""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_rfc_2617_example_arithmetic() {
        // RFC 2617 §3.5 without qop: HA1 of Mufasa in its realm.
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        let r = response(&ha1, "n", "DESCRIBE", "rtsp://h/cam/1");
        assert_eq!(r.len(), 32);
        assert_ne!(r, response(&ha1, "n", "SETUP", "rtsp://h/cam/1"));
    }

    #[test]
    fn headers_parse() {
        let h = "Digest username=\"a1b2c3d4\", realm=\"camgate\", nonce=\"abc\", \
                 uri=\"rtsp://127.0.0.1:8554/cam/1\", response=\"0123\"";
        let Some(Authorization::Digest(d)) = parse(h) else {
            panic!("{h}")
        };
        assert_eq!(d.username, "a1b2c3d4");
        assert_eq!(d.uri, "rtsp://127.0.0.1:8554/cam/1");
        assert_eq!(d.response, "0123");
        // "user:pa:ss" in Basic: the password may hold colons.
        assert_eq!(
            parse("Basic dXNlcjpwYTpzcw=="),
            Some(Authorization::Basic {
                user: "user".into(),
                pass: "pa:ss".into()
            })
        );
        assert_eq!(parse("Bearer x"), None);
        assert_eq!(parse("Basic !!"), None);
        assert_eq!(parse("Digest realm=\"x\""), None);
    }

    #[test]
    fn nonces_expire_belong_to_their_connection_and_cannot_be_forged() {
        let n = nonce(b"k", 1_000, "conn-a");
        assert!(nonce_fresh(&n, b"k", 1_000, "conn-a"));
        assert!(nonce_fresh(&n, b"k", 1_000 + NONCE_TTL_SECS, "conn-a"));
        assert!(!nonce_fresh(&n, b"k", 1_001 + NONCE_TTL_SECS, "conn-a"));
        assert!(!nonce_fresh(&n, b"other", 1_000, "conn-a"));
        assert!(
            !nonce_fresh(&n, b"k", 1_000, "conn-b"),
            "another connection's"
        );
        let forged = format!("{:x}{}", 2_000, &n[n.len() - 24..]);
        assert!(!nonce_fresh(&forged, b"k", 2_000, "conn-a"));
        assert!(!nonce_fresh("", b"k", 0, ""));
        assert!(!nonce_fresh("é".repeat(20).as_str(), b"k", 0, ""));
    }

    #[test]
    fn digest_uris_match_their_request_only() {
        let r = "rtsp://127.0.0.1:8554/cam/A";
        assert!(uri_matches(r, r));
        assert!(uri_matches("/cam/A", r));
        assert!(uri_matches("rtsp://10.0.0.1:554/cam/A", "/cam/A"));
        assert!(!uri_matches("rtsp://127.0.0.1:8554/cam/B", r));
        assert!(!uri_matches("/cam/A/trackID=0", r));
        assert!(!uri_matches("", r));
    }
}
