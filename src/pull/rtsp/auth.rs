//! Answering a camera's `WWW-Authenticate` challenge (RFC 2617 / RFC 7616
//! with MD5, as RTSP cameras speak it): Digest when offered, since it does
//! not send the password; Basic otherwise. Pure.

use std::fmt::Write as _;

use base64::Engine as _;
use md5::{Digest as _, Md5};

/// A challenge from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Digest {
        realm: String,
        nonce: String,
        /// `auth` when the camera offered it (then `nc` and `cnonce` are sent).
        qop_auth: bool,
        opaque: Option<String>,
        /// The camera said the previous nonce went stale (retry, the
        /// password was right).
        stale: bool,
    },
}

/// Largest challenge value looked at; cameras send a few hundred bytes.
const MAX_CHALLENGE_BYTES: usize = 2048;

/// Picks the challenge to answer: Digest (MD5) when offered, else Basic.
pub fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for v in values {
        if v.len() > MAX_CHALLENGE_BYTES {
            continue;
        }
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("digest") {
            let params = params(rest);
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
                continue; // SHA-256 Digest: not spoken by cameras we know
            }
            let qop_auth = get("qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
            return Some(Challenge::Digest {
                realm: get("realm").unwrap_or_default(),
                nonce: get("nonce")?,
                qop_auth,
                opaque: get("opaque"),
                stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            });
        }
        if scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        }
    }
    basic.then_some(Challenge::Basic)
}

/// `k=v` and `k="v"` pairs separated by commas. A quoted value may hold
/// commas and backslash-escaped characters (RFC 7230 quoted-string).
pub fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                // Anything between the closing quote and the comma.
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        let key = key.trim().to_string();
        if !key.is_empty() {
            out.push((key, value));
        }
    }
    out
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// Quotes a value for a header (backslash before `"` and `\`).
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The `Authorization` header value answering `challenge`.
pub fn authorization(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    match challenge {
        Challenge::Basic => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ),
        Challenge::Digest {
            realm,
            nonce,
            qop_auth,
            opaque,
            ..
        } => {
            let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
            let ha2 = md5_hex(&format!("{method}:{uri}"));
            let (user, realm_q, nonce_q, uri_q) =
                (quote(user), quote(realm), quote(nonce), quote(uri));
            let mut v;
            if *qop_auth {
                let nc = format!("{nc:08x}");
                let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
                v = format!(
                    "Digest username=\"{user}\", realm=\"{realm_q}\", nonce=\"{nonce_q}\", uri=\"{uri_q}\", \
                     response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
                );
            } else {
                let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
                v = format!(
                    "Digest username=\"{user}\", realm=\"{realm_q}\", nonce=\"{nonce_q}\", uri=\"{uri_q}\", response=\"{response}\""
                );
            }
            if let Some(o) = opaque {
                let _ = write!(v, ", opaque=\"{}\"", quote(o));
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_follows_rfc_2617() {
        // The worked example of RFC 2617 section 3.5 (with its GET method
        // and URI), which fixes the arithmetic.
        let ch = parse_challenges(
            [
                "Basic realm=\"x\"",
                "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
            ]
            .into_iter(),
        )
        .unwrap();
        let v = authorization(
            &ch,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
            1,
        );
        assert!(
            v.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{v}"
        );
        assert!(
            v.contains("nc=00000001") && v.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"")
        );
        // Without qop: MD5(HA1:nonce:HA2).
        let ch = Challenge::Digest {
            realm: "r".into(),
            nonce: "n".into(),
            qop_auth: false,
            opaque: None,
            stale: false,
        };
        let v = authorization(&ch, "DESCRIBE", "rtsp://h/x", "u", "p", "c", 1);
        let ha1 = md5_hex("u:r:p");
        let ha2 = md5_hex("DESCRIBE:rtsp://h/x");
        assert!(v.contains(&format!(
            "response=\"{}\"",
            md5_hex(&format!("{ha1}:n:{ha2}"))
        )));
        assert!(!v.contains("qop"));
        let b = authorization(&Challenge::Basic, "DESCRIBE", "u", "admin", "12345", "", 1);
        assert_eq!(b, "Basic YWRtaW46MTIzNDU=");
        assert_eq!(parse_challenges(["Bearer x"].into_iter()), None);
    }

    #[test]
    fn quoted_values_keep_commas_and_escapes() {
        let p = params(r#"realm="a, \"b\"", nonce=abc , stale=TRUE,qop="auth""#);
        assert_eq!(
            p,
            vec![
                ("realm".to_string(), "a, \"b\"".to_string()),
                ("nonce".into(), "abc".into()),
                ("stale".into(), "TRUE".into()),
                ("qop".into(), "auth".into()),
            ]
        );
        let ch = parse_challenges([r#"Digest realm="x\"y", nonce="n", stale=true"#].into_iter())
            .unwrap();
        let Challenge::Digest { realm, stale, .. } = &ch else {
            panic!()
        };
        assert_eq!((realm.as_str(), *stale), ("x\"y", true));
        assert!(
            authorization(&ch, "DESCRIBE", "rtsp://h", "u", "p", "c", 1)
                .contains(r#"realm="x\"y""#)
        );
        // Unterminated quotes and stray input end the list without a panic.
        assert_eq!(params(r#"a="x"#), vec![("a".into(), "x".into())]);
        assert_eq!(params(",,, ="), vec![]);
        // A SHA-256-only challenge is not answered with MD5.
        assert_eq!(
            parse_challenges([r#"Digest realm="r", nonce="n", algorithm=SHA-256"#].into_iter()),
            None
        );
    }
}
