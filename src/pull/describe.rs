//! A probe of a camera nobody pulls: RTSP OPTIONS then DESCRIBE on one TCP
//! connection, with Basic or Digest credentials (RFC 2617) when the camera
//! asks. Nothing is set up or played, so a probe costs the camera one short
//! connection and no media.
//!
//! Message formatting, response parsing, Digest arithmetic and the SDP look
//! at the video codec are pure functions with unit tests; [`probe`] wraps
//! them around a socket.

use std::fmt::Write as _;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{PullError, PullTarget, scrub};
use crate::health::Reason;

/// Largest response accepted (head and body).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const USER_AGENT: &str = concat!("camgate/", env!("CARGO_PKG_VERSION"), " probe");

/// A parsed RTSP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one response from the start of `buf`. `Ok(None)`: incomplete,
/// read more. `Ok(Some((response, consumed)))` when whole.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err("response head too long".into());
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("RTSP/") {
        return Err(format!(
            "not an RTSP response: {:?}",
            status_line.chars().take(40).collect::<String>()
        ));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or("bad status code")?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err("malformed header line".into());
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = match headers.iter().find(|(k, _)| k == "content-length") {
        Some((_, v)) => v.parse().map_err(|_| "bad Content-Length")?,
        None => 0,
    };
    let body_start = head_end + 4;
    if len > MAX_RESPONSE_BYTES {
        return Err("response body too long".into());
    }
    if buf.len() < body_start + len {
        return Ok(None);
    }
    Ok(Some((
        Response {
            status,
            reason,
            headers,
            body: buf[body_start..body_start + len].to_vec(),
        },
        body_start + len,
    )))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Formats a request.
pub fn format_request(method: &str, url: &str, cseq: u32, extra: &[(&str, &str)]) -> String {
    let mut s = format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: {USER_AGENT}\r\n");
    for (k, v) in extra {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    s.push_str("\r\n");
    s
}

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
    },
}

/// Picks the challenge to answer: Digest when offered (it does not send the
/// password), else Basic.
pub fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for v in values {
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("digest") {
            let params = auth_params(rest);
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            let qop_auth = get("qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
            return Some(Challenge::Digest {
                realm: get("realm").unwrap_or_default(),
                nonce: get("nonce")?,
                qop_auth,
                opaque: get("opaque"),
            });
        }
        if scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        }
    }
    basic.then_some(Challenge::Basic)
}

/// `k=v` and `k="v"` pairs separated by commas (quoted values may hold commas).
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
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
        } => {
            let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
            let ha2 = md5_hex(&format!("{method}:{uri}"));
            let mut v;
            if *qop_auth {
                let nc = format!("{nc:08x}");
                let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
                v = format!(
                    "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
                     response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
                );
            } else {
                let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
                v = format!(
                    "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\""
                );
            }
            if let Some(o) = opaque {
                let _ = write!(v, ", opaque=\"{o}\"");
            }
            v
        }
    }
}

/// The codec of the first video stream of an SDP (`h264`, `h265`, or the
/// encoding name lower-cased), `None` without a video stream.
pub fn sdp_video_codec(sdp: &str) -> Option<String> {
    let mut in_video = false;
    let mut payload_types: Vec<String> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            if in_video {
                return None; // the video stream had no usable rtpmap
            }
            let mut f = m.split_whitespace();
            in_video = f.next() == Some("video");
            payload_types = f.skip(2).map(str::to_string).collect();
        } else if in_video && let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let (pt, enc) = rest.split_once(' ')?;
            if payload_types.iter().any(|p| p == pt) {
                let name = enc.split('/').next()?.to_ascii_lowercase();
                return Some(match name.as_str() {
                    "hevc" => "h265".into(),
                    _ => name,
                });
            }
        }
    }
    None
}

/// What a probe found: the video codec from the camera's SDP.
pub type ProbeResult = Result<Option<String>, PullError>;

/// OPTIONS + DESCRIBE against `target`. The caller bounds the time.
pub async fn probe(target: &PullTarget) -> ProbeResult {
    let secret = target.password.as_ref();
    let url = url::Url::parse(&target.url)
        .map_err(|e| PullError::new(Reason::ProtocolError, format!("bad URL: {e}")))?;
    if url.scheme() != "rtsp" {
        return Err(PullError::new(
            Reason::ProtocolError,
            format!("probes speak rtsp://, not {}://", url.scheme()),
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| PullError::new(Reason::ProtocolError, "URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port().unwrap_or(554);
    let sock = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| {
            let reason = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Reason::Refused,
                std::io::ErrorKind::TimedOut => Reason::Timeout,
                _ => Reason::Unreachable,
            };
            PullError::new(reason, scrub(&format!("cannot connect: {e}"), secret))
        })?;
    let _ = sock.set_nodelay(true);
    let mut conn = Conn {
        sock,
        buf: Vec::with_capacity(4096),
        cseq: 0,
        auth: None,
        target,
        uri: target.url.clone(),
    };
    let opts = conn.request("OPTIONS", &[]).await?;
    check(&opts, "OPTIONS", secret)?;
    let desc = conn
        .request("DESCRIBE", &[("Accept", "application/sdp")])
        .await?;
    check(&desc, "DESCRIBE", secret)?;
    let sdp = String::from_utf8_lossy(&desc.body);
    match sdp_video_codec(&sdp) {
        Some(c) if c == "h264" || c == "h265" => Ok(Some(c)),
        Some(c) => Err(PullError::new(
            Reason::UnsupportedCodec,
            format!("video codec {c} (H.264 or H.265 needed)"),
        )),
        None => Err(PullError::new(
            Reason::UnsupportedCodec,
            "the camera's SDP has no video stream",
        )),
    }
}

fn check(
    r: &Response,
    method: &str,
    secret: Option<&crate::catalogue::Secret>,
) -> Result<(), PullError> {
    let reason = match r.status {
        200..=299 => return Ok(()),
        // A camera that does not implement OPTIONS may still DESCRIBE.
        405 | 501 if method == "OPTIONS" => return Ok(()),
        401 | 403 => Reason::AuthFailed,
        404 => Reason::NotFound,
        415 => Reason::UnsupportedCodec,
        _ => Reason::ProtocolError,
    };
    Err(PullError::new(
        reason,
        scrub(
            &format!("{method} answered {} {}", r.status, r.reason),
            secret,
        ),
    ))
}

struct Conn<'a> {
    sock: tokio::net::TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    auth: Option<Challenge>,
    target: &'a PullTarget,
    uri: String,
}

impl Conn<'_> {
    /// Sends a request, answering one authentication challenge.
    async fn request(
        &mut self,
        method: &str,
        extra: &[(&str, &str)],
    ) -> Result<Response, PullError> {
        for attempt in 0..2 {
            let mut headers: Vec<(&str, &str)> = extra.to_vec();
            let auth_value;
            if let (Some(ch), Some(user)) = (&self.auth, &self.target.username) {
                let pass = self
                    .target
                    .password
                    .as_ref()
                    .map(|p| p.expose())
                    .unwrap_or("");
                let cnonce = format!("{:016x}", fastrand::u64(..));
                auth_value =
                    authorization(ch, method, &self.uri, user, pass, &cnonce, self.cseq + 1);
                headers.push(("Authorization", &auth_value));
            }
            self.cseq += 1;
            let req = format_request(method, &self.uri, self.cseq, &headers);
            self.sock
                .write_all(req.as_bytes())
                .await
                .map_err(|e| self.io_error(e))?;
            let resp = self.read_response().await?;
            if resp.status == 401
                && attempt == 0
                && self.target.username.is_some()
                && let Some(ch) = parse_challenges(resp.headers_named("www-authenticate"))
            {
                self.auth = Some(ch);
                continue;
            }
            return Ok(resp);
        }
        unreachable!("the loop returns on its second pass")
    }

    async fn read_response(&mut self) -> Result<Response, PullError> {
        loop {
            match parse_response(&self.buf) {
                Ok(Some((r, used))) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => return Err(PullError::new(Reason::ProtocolError, e)),
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .sock
                .read(&mut chunk)
                .await
                .map_err(|e| self.io_error(e))?;
            if n == 0 {
                return Err(PullError::new(
                    Reason::ProtocolError,
                    "the camera closed the connection mid-answer",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn io_error(&self, e: std::io::Error) -> PullError {
        PullError::new(
            Reason::ProtocolError,
            scrub(&e.to_string(), self.target.password.as_ref()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses_whole_and_in_pieces() {
        let raw = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\nRTSP/1.0 404";
        let (r, used) = parse_response(raw).unwrap().unwrap();
        for cut in 0..used {
            assert_eq!(parse_response(&raw[..cut]).unwrap(), None, "cut {cut}");
        }
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.header("cseq"), Some("2"));
        assert_eq!(r.body, b"v=0\r\n");
        assert_eq!(&raw[used..], b"RTSP/1.0 404");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"RTSP/1.0 abc OK\r\n\r\n").is_err());
        assert!(parse_response(b"RTSP/1.0 200 OK\r\nbad header\r\n\r\n").is_err());
        assert!(parse_response(b"RTSP/1.0 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_response(&vec![b'a'; MAX_RESPONSE_BYTES + 1]).is_err());
    }

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
    fn finds_the_video_codec() {
        let sdp = "v=0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n";
        assert_eq!(sdp_video_codec(sdp).as_deref(), Some("h264"));
        let sdp = "m=video 0 RTP/AVP 98\na=rtpmap:97 H264/90000\na=rtpmap:98 H265/90000\n";
        assert_eq!(sdp_video_codec(sdp).as_deref(), Some("h265"));
        assert_eq!(
            sdp_video_codec("m=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000").as_deref(),
            Some("jpeg")
        );
        assert_eq!(
            sdp_video_codec("m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000"),
            None
        );
        assert_eq!(sdp_video_codec(""), None);
    }

    #[test]
    fn requests_are_well_formed() {
        let r = format_request(
            "DESCRIBE",
            "rtsp://h/x",
            3,
            &[("Accept", "application/sdp")],
        );
        assert!(r.starts_with("DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\n"));
        assert!(r.ends_with("Accept: application/sdp\r\n\r\n"));
    }
}
