//! RTSP/1.0 as a camera sends it to the gateway's client: responses to our
//! requests, requests of its own (some cameras send keep-alive
//! `GET_PARAMETER`s or `ANNOUNCE`), and interleaved binary data (RFC 2326
//! §10.12: `$`, channel, 16-bit length, payload) on one TCP stream.
//!
//! Pure: bytes in, messages out, every buffer bounded by [`Limits`]. A
//! message that would pass a limit is an error naming the limit, decided
//! from what has arrived so far: a camera that sends header lines forever
//! or announces a `Content-Length` of a terabyte is refused before the
//! gateway buffers any of it.

use bytes::{Buf, Bytes, BytesMut};

/// Bounds on what a camera may send in one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Status line plus headers, in bytes.
    pub head_bytes: usize,
    /// Header lines in one message.
    pub header_lines: usize,
    /// A message body (the SDP of a DESCRIBE reply), in bytes.
    pub body_bytes: usize,
}

impl Limits {
    /// A real camera's DESCRIBE reply is 1-3 KiB of headers and a 0.5-4 KiB
    /// SDP (a Hikvision NVR with many tracks stays under 16 KiB). The
    /// limits leave a wide margin above that and stay small enough that
    /// 30,000 connecting cameras cannot hold much memory between them.
    pub const DEFAULT: Limits = Limits {
        head_bytes: 16 * 1024,
        header_lines: 64,
        body_bytes: 64 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// An interleaved packet's length is a 16-bit field: the format bounds it.
pub const MAX_INTERLEAVED_BYTES: usize = u16::MAX as usize;

/// A response to one of our requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that (lower-case) name.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> Option<u32> {
        self.header("cseq").and_then(|v| v.trim().parse().ok())
    }
}

/// One message from the camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Response(Response),
    /// A request from the camera: its method and CSeq (answered, never
    /// acted on).
    Request {
        method: String,
        cseq: Option<String>,
    },
    /// Interleaved data: channel and payload.
    Data {
        channel: u8,
        payload: Bytes,
    },
}

/// Why the camera's bytes could not be read as RTSP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("reply head over {limit} bytes")]
    HeadTooLong { limit: usize },
    #[error("reply has over {limit} header lines")]
    TooManyHeaders { limit: usize },
    #[error("reply body of {len} bytes is over the {limit}-byte limit")]
    BodyTooLong { len: u64, limit: usize },
    #[error("{0}")]
    Malformed(String),
}

fn malformed(m: impl Into<String>) -> WireError {
    WireError::Malformed(m.into())
}

/// Takes one whole message off the front of `buf`. `Ok(None)`: incomplete,
/// read more. Never buffers past the limits: on `Ok(None)` the caller may
/// read more, and `buf` stays under `limits.head_bytes + limits.body_bytes`
/// or one interleaved packet.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, WireError> {
    // Blank lines between messages (some cameras send CRLF keep-alives).
    let blank = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    buf.advance(blank);
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == b'$' {
        if buf.len() < 4 {
            return Ok(None);
        }
        let channel = buf[1];
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if buf.len() < 4 + len {
            return Ok(None);
        }
        buf.advance(4);
        let payload = buf.split_to(len).freeze();
        return Ok(Some(Message::Data { channel, payload }));
    }
    let Some(head) = scan_head(buf, limits)? else {
        return Ok(None);
    };
    let body_len = match head.content_length {
        Some(n) if n > limits.body_bytes as u64 => {
            return Err(WireError::BodyTooLong {
                len: n,
                limit: limits.body_bytes,
            });
        }
        Some(n) => n as usize,
        None => 0,
    };
    if buf.len() < head.len + body_len {
        return Ok(None);
    }
    let text = std::str::from_utf8(&buf[..head.len])
        .map_err(|_| malformed("message head is not UTF-8"))?;
    let mut lines = text.lines();
    let start = lines.next().unwrap_or("").trim_end_matches('\r');
    let mut headers = Vec::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(malformed(format!(
                "malformed header line {:?}",
                line.chars().take(40).collect::<String>()
            )));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let message = if let Some(rest) = start.strip_prefix("RTSP/") {
        let mut parts = rest.splitn(3, ' ');
        let _version = parts.next();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or_else(|| malformed("bad status code"))?;
        let reason = parts.next().unwrap_or("").chars().take(200).collect();
        buf.advance(head.len);
        let body = buf.split_to(body_len).freeze();
        Message::Response(Response {
            status,
            reason,
            headers,
            body,
        })
    } else {
        let mut parts = start.split(' ');
        let method = parts.next().unwrap_or("");
        let is_request = !method.is_empty()
            && method.len() <= 32
            && method
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
            && parts.next_back().is_some_and(|v| v.starts_with("RTSP/"));
        if !is_request {
            return Err(malformed(format!(
                "not an RTSP message: {:?}",
                start.chars().take(40).collect::<String>()
            )));
        }
        let method = method.to_string();
        let cseq = headers
            .iter()
            .find(|(k, _)| k == "cseq")
            .map(|(_, v)| v.clone());
        buf.advance(head.len + body_len);
        Message::Request { method, cseq }
    };
    Ok(Some(message))
}

struct Head {
    /// Bytes up to and including the blank line.
    len: usize,
    content_length: Option<u64>,
}

/// Finds the end of a message head (an empty line; CRLF or a bare LF, as
/// some cameras end lines), checking the limits line by line.
fn scan_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, WireError> {
    let mut pos = 0;
    let mut lines = 0usize;
    let mut content_length = None;
    loop {
        let window = &buf[pos..buf.len().min(limits.head_bytes + 1)];
        let Some(nl) = window.iter().position(|b| *b == b'\n') else {
            if buf.len() > limits.head_bytes {
                return Err(WireError::HeadTooLong {
                    limit: limits.head_bytes,
                });
            }
            return Ok(None);
        };
        let line = &buf[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if pos > limits.head_bytes {
            return Err(WireError::HeadTooLong {
                limit: limits.head_bytes,
            });
        }
        if line.is_empty() {
            return Ok(Some(Head {
                len: pos,
                content_length,
            }));
        }
        lines += 1;
        // The start line plus `header_lines` headers.
        if lines > limits.header_lines + 1 {
            return Err(WireError::TooManyHeaders {
                limit: limits.header_lines,
            });
        }
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            let v = std::str::from_utf8(&line[15..])
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| malformed("bad Content-Length"))?;
            if v > limits.body_bytes as u64 {
                // Refused now: waiting for the blank line first would let
                // the camera choose how long we wait.
                return Err(WireError::BodyTooLong {
                    len: v,
                    limit: limits.body_bytes,
                });
            }
            content_length = Some(v);
        }
    }
}

/// Formats a request.
pub fn request(
    method: &str,
    url: &str,
    cseq: u32,
    user_agent: &str,
    extra: &[(&str, &str)],
) -> String {
    use std::fmt::Write as _;
    let mut s = format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: {user_agent}\r\n");
    for (k, v) in extra {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    s.push_str("\r\n");
    s
}

/// The answer to a request the camera sent us: 200 to a keep-alive
/// (`GET_PARAMETER`, `OPTIONS`), 501 to anything else.
pub fn answer_camera_request(method: &str, cseq: Option<&str>) -> String {
    let (status, reason) = match method {
        "GET_PARAMETER" | "OPTIONS" | "SET_PARAMETER" => (200, "OK"),
        _ => (501, "Not Implemented"),
    };
    let mut s = format!("RTSP/1.0 {status} {reason}\r\n");
    if let Some(c) = cseq {
        let c: String = c.chars().filter(|c| c.is_ascii_digit()).take(10).collect();
        s.push_str(&format!("CSeq: {c}\r\n"));
    }
    s.push_str("\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8]) -> Result<Option<Message>, WireError> {
        decode(&mut BytesMut::from(bytes), &Limits::DEFAULT)
    }

    #[test]
    fn responses_whole_and_in_pieces() {
        let raw = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n$\x00\x00\x02ab";
        let whole = raw.len() - 6;
        for cut in 0..whole {
            assert_eq!(dec(&raw[..cut]).unwrap(), None, "cut {cut}");
        }
        let mut buf = BytesMut::from(&raw[..]);
        let Some(Message::Response(r)) = decode(&mut buf, &Limits::DEFAULT).unwrap() else {
            panic!("a response")
        };
        assert_eq!(
            (r.status, r.reason.as_str(), r.cseq()),
            (200, "OK", Some(2))
        );
        assert_eq!(r.header("content-type"), Some("application/sdp"));
        assert_eq!(&r.body[..], b"v=0\r\n");
        assert_eq!(
            decode(&mut buf, &Limits::DEFAULT).unwrap(),
            Some(Message::Data {
                channel: 0,
                payload: Bytes::from_static(b"ab")
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn bare_line_feeds_and_camera_requests() {
        let mut buf = BytesMut::from(&b"\r\nRTSP/1.0 401 Unauthorized\nCSeq: 1\n\nGET_PARAMETER rtsp://x RTSP/1.0\r\nCSeq: 9\r\n\r\n"[..]);
        let Some(Message::Response(r)) = decode(&mut buf, &Limits::DEFAULT).unwrap() else {
            panic!()
        };
        assert_eq!(r.status, 401);
        assert_eq!(
            decode(&mut buf, &Limits::DEFAULT).unwrap(),
            Some(Message::Request {
                method: "GET_PARAMETER".into(),
                cseq: Some("9".into())
            })
        );
        assert_eq!(
            answer_camera_request("GET_PARAMETER", Some("9")),
            "RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n"
        );
        assert!(answer_camera_request("ANNOUNCE", Some("1\r\nX: y")).contains("CSeq: 1\r\n\r\n"));
    }

    #[test]
    fn endless_headers_are_refused_by_lines_and_by_bytes() {
        let mut raw = b"RTSP/1.0 200 OK\r\n".to_vec();
        for i in 0..70 {
            raw.extend(format!("X-{i}: y\r\n").as_bytes());
        }
        assert_eq!(
            dec(&raw),
            Err(WireError::TooManyHeaders {
                limit: Limits::DEFAULT.header_lines
            })
        );
        // One header line that never ends.
        let mut raw = b"RTSP/1.0 200 OK\r\nX: ".to_vec();
        raw.resize(Limits::DEFAULT.head_bytes, b'a');
        assert_eq!(dec(&raw), Ok(None));
        raw.push(b'a');
        assert_eq!(
            dec(&raw),
            Err(WireError::HeadTooLong {
                limit: Limits::DEFAULT.head_bytes
            })
        );
    }

    #[test]
    fn a_huge_content_length_is_refused_before_the_body() {
        let raw = b"RTSP/1.0 200 OK\r\nContent-Length: 1099511627776\r\n";
        assert_eq!(
            dec(raw),
            Err(WireError::BodyTooLong {
                len: 1 << 40,
                limit: Limits::DEFAULT.body_bytes
            })
        );
        assert!(matches!(
            dec(b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        for g in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],
            b"\x00\x01\x02\r\n\r\n",
            b"RTSP/1.0 abc OK\r\n\r\n",
            b"RTSP/1.0 200 OK\r\nno colon\r\n\r\n",
            b"RTSP/1.0 200 OK\r\nX: \xff\r\n\r\n",
        ] {
            assert!(matches!(dec(g), Err(WireError::Malformed(_))), "{g:?}");
        }
    }

    #[test]
    fn requests_are_well_formed() {
        let r = request(
            "DESCRIBE",
            "rtsp://h/x",
            3,
            "ua",
            &[("Accept", "application/sdp")],
        );
        assert_eq!(
            r,
            "DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\nUser-Agent: ua\r\nAccept: application/sdp\r\n\r\n"
        );
    }
}
