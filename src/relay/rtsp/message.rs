//! RTSP/1.0 requests as the relay's server reads them, and the responses it
//! writes. Pure: bytes in, values out. A client may also send interleaved
//! binary frames (`$`, channel, length: RTCP receiver reports) between
//! requests; [`parse`] returns those too so the server can skip them.

use std::fmt::Write as _;

/// Largest request head accepted; a client that sends more is cut off.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body accepted (GET_PARAMETER / SET_PARAMETER bodies).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> Option<&str> {
        self.header("cseq")
    }
}

/// What the start of a client's byte stream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Request(Request),
    /// An interleaved binary frame: channel and payload length (skipped).
    Interleaved {
        channel: u8,
        len: usize,
    },
}

/// Why a request could not be read; the server answers 400 and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// Parses one message from the start of `buf`. `Ok(None)`: incomplete, read
/// more. `Ok(Some((incoming, consumed)))` when whole.
pub fn parse(buf: &[u8]) -> Result<Option<(Incoming, usize)>, BadRequest> {
    let bad = |m: &str| BadRequest(m.to_string());
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if buf.len() < 4 + len {
            return Ok(None);
        }
        return Ok(Some((
            Incoming::Interleaved {
                channel: buf[1],
                len,
            },
            4 + len,
        )));
    }
    // Tolerate blank lines between requests (some clients send CRLF
    // keep-alives).
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if skip > 0 {
        return match parse(&buf[skip..])? {
            Some((m, n)) => Ok(Some((m, n + skip))),
            None => Ok(None),
        };
    }
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD_BYTES {
            return Err(bad("request head too long"));
        }
        return Ok(None);
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(bad("request head too long"));
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("request is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or("");
    let mut parts = start.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if version != "RTSP/1.0" {
        return Err(bad("only RTSP/1.0 is served"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Err(bad("malformed method"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err(bad("malformed header line"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = match headers.iter().find(|(k, _)| k == "content-length") {
        Some((_, v)) => v.parse().map_err(|_| bad("bad Content-Length"))?,
        None => 0,
    };
    if len > MAX_BODY_BYTES {
        return Err(bad("request body too long"));
    }
    let body_start = head_end + 4;
    if buf.len() < body_start + len {
        return Ok(None);
    }
    Ok(Some((
        Incoming::Request(Request {
            method: method.to_string(),
            uri: uri.to_string(),
            headers,
            body: buf[body_start..body_start + len].to_vec(),
        }),
        body_start + len,
    )))
}

/// Formats a response. `cseq` is echoed when the request had one.
pub fn response(
    status: u16,
    reason: &str,
    cseq: Option<&str>,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut s = format!("RTSP/1.0 {status} {reason}\r\n");
    if let Some(c) = cseq {
        let _ = write!(s, "CSeq: {c}\r\n");
    }
    let _ = write!(s, "Server: camgate/{}\r\n", env!("CARGO_PKG_VERSION"));
    for (k, v) in headers {
        // A value can never break the framing.
        let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        let _ = write!(s, "{k}: {v}\r\n");
    }
    if !body.is_empty() {
        let _ = write!(s, "Content-Length: {}\r\n", body.len());
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The parts of a `Transport` header the server cares about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transport {
    /// `RTP/AVP/TCP`: interleaved on the RTSP connection.
    pub tcp: bool,
    pub interleaved: Option<(u8, u8)>,
    /// UDP: the client's RTP and RTCP ports.
    pub client_port: Option<(u16, u16)>,
    pub multicast: bool,
}

/// Parses the first acceptable transport of a `Transport` header (a
/// comma-separated list of alternatives, in the client's preference).
pub fn parse_transport(value: &str) -> Option<Transport> {
    value.split(',').find_map(|alt| {
        let mut parts = alt.trim().split(';');
        let proto = parts.next()?.trim().to_ascii_uppercase();
        let tcp = match proto.as_str() {
            "RTP/AVP/TCP" => true,
            "RTP/AVP" | "RTP/AVP/UDP" => false,
            _ => return None,
        };
        let mut t = Transport {
            tcp,
            ..Default::default()
        };
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "interleaved" => {
                    t.interleaved = pair(v)
                        .filter(|(a, b)| *a <= 255 && *b <= 255)
                        .map(|(a, b)| (a as u8, b as u8))
                }
                "client_port" => t.client_port = pair(v),
                "multicast" => t.multicast = true,
                _ => {}
            }
        }
        Some(t)
    })
}

/// `a-b`, or a lone `a` meaning `a-(a+1)`.
fn pair(v: &str) -> Option<(u16, u16)> {
    match v.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let a: u16 = v.trim().parse().ok()?;
            Some((a, a.checked_add(1)?))
        }
    }
}

/// The camera ID and track of a request URI: `rtsp://host:port/cam/{id}`,
/// optionally followed by `/trackID={n}` (SETUP) and a query string.
pub fn camera_path(uri: &str) -> Option<(String, Option<u8>)> {
    let path = match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            &rest[rest.find('/').unwrap_or(rest.len())..]
        }
        None => uri,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let rest = path.strip_prefix("/cam/")?;
    let mut segs = rest.trim_end_matches('/').split('/');
    let id = segs.next().filter(|s| !s.is_empty())?;
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let track = match segs.next() {
        None => None,
        Some(t) => Some(t.strip_prefix("trackID=")?.parse().ok()?),
    };
    if segs.next().is_some() {
        return None;
    }
    Some((id.to_string(), track))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_whole_and_in_pieces() {
        let raw =
            b"DESCRIBE rtsp://h:8554/cam/1 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n";
        let (m, n) = parse(raw).unwrap().unwrap();
        assert_eq!(n, raw.len());
        let Incoming::Request(r) = m else {
            panic!("a request")
        };
        assert_eq!((r.method.as_str(), r.cseq()), ("DESCRIBE", Some("2")));
        assert_eq!(r.header("accept"), Some("application/sdp"));
        // Every cut short of the end is incomplete, never an error.
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn bodies_interleaved_frames_and_blank_lines() {
        let raw = b"\r\nGET_PARAMETER rtsp://h/cam/1 RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 4\r\n\r\nabcd$\x01\x00\x02xyREST";
        let (m, n) = parse(raw).unwrap().unwrap();
        let Incoming::Request(r) = m else {
            panic!("a request")
        };
        assert_eq!(r.body, b"abcd");
        let (m, k) = parse(&raw[n..]).unwrap().unwrap();
        assert_eq!(m, Incoming::Interleaved { channel: 1, len: 2 });
        assert_eq!(&raw[n + k..], b"REST");
        assert_eq!(parse(b"$\x01\x00\x05ab"), Ok(None));
    }

    #[test]
    fn bad_requests_are_refused() {
        for raw in [
            &b"HELLO\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nno colon\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nContent-Length: x\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nContent-Length: 999999\r\n\r\n",
            b"options * RTSP/1.0\r\n\r\n",
        ] {
            assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
        let huge = vec![b'A'; MAX_HEAD_BYTES + 10];
        assert!(parse(&huge).is_err());
    }

    #[test]
    fn responses_echo_cseq_and_cannot_be_split() {
        let r = response(
            200,
            "OK",
            Some("3"),
            &[("Session", "ab\r\nX: 1".into())],
            b"v=0\r\n",
        );
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("RTSP/1.0 200 OK\r\nCSeq: 3\r\n"), "{s}");
        assert!(s.contains("Session: abX: 1\r\n"), "{s}");
        assert!(s.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"), "{s}");
    }

    #[test]
    fn transports() {
        let t = parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3").unwrap();
        assert_eq!((t.tcp, t.interleaved), (true, Some((2, 3))));
        let t = parse_transport("RTP/AVP;unicast;client_port=5000-5001").unwrap();
        assert_eq!((t.tcp, t.client_port), (false, Some((5000, 5001))));
        // The first acceptable alternative wins.
        let t = parse_transport("RTP/SAVP;x, RTP/AVP/TCP;interleaved=0").unwrap();
        assert_eq!(t.interleaved, Some((0, 1)));
        assert_eq!(parse_transport("RAW/RAW/UDP"), None);
    }

    #[test]
    fn camera_paths() {
        assert_eq!(
            camera_path("rtsp://h:8554/cam/62060200001320000001"),
            Some(("62060200001320000001".into(), None))
        );
        assert_eq!(
            camera_path("rtsp://h/cam/abc/trackID=1?token=x"),
            Some(("abc".into(), Some(1)))
        );
        assert_eq!(camera_path("/cam/abc/"), Some(("abc".into(), None)));
        for bad in [
            "rtsp://h/other/1",
            "rtsp://h/cam/",
            "rtsp://h/cam/a/b",
            "rtsp://h/cam/a%2e",
            "rtsp://h/cam/a/trackID=x",
        ] {
            assert_eq!(camera_path(bad), None, "{bad}");
        }
    }
}

/// Bounded random inputs (a deterministic seed, so failures reproduce):
/// the parser never panics, never claims more bytes than it was given, and
/// whatever it accepts it accepts again from a copy followed by more data.
#[cfg(test)]
mod fuzz {
    use super::*;

    const SEEDS: [&[u8]; 4] = [
        b"DESCRIBE rtsp://h/cam/1 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        b"SETUP rtsp://h/cam/1/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n",
        b"SET_PARAMETER rtsp://h/cam/1 RTSP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        b"$\x00\x00\x04abcd",
    ];

    #[test]
    fn mutated_messages_never_panic() {
        let mut rng = fastrand::Rng::with_seed(0x2816_2260);
        for _ in 0..20_000 {
            let mut m = SEEDS[rng.usize(..SEEDS.len())].to_vec();
            for _ in 0..rng.usize(1..6) {
                match rng.u8(..4) {
                    0 if !m.is_empty() => {
                        let i = rng.usize(..m.len());
                        m[i] = rng.u8(..);
                    }
                    1 if !m.is_empty() => {
                        let i = rng.usize(..m.len());
                        m.remove(i);
                    }
                    2 => {
                        let i = rng.usize(..=m.len());
                        m.insert(i, *b":\r\n$ -;=".get(rng.usize(..8)).unwrap());
                    }
                    _ => m.truncate(rng.usize(..=m.len())),
                }
            }
            if let Ok(Some((msg, n))) = parse(&m) {
                assert!(n <= m.len());
                let mut more = m[..n].to_vec();
                more.extend_from_slice(b"OPTIONS * RTSP/1.0\r\n\r\n");
                assert_eq!(parse(&more).unwrap().unwrap(), (msg.clone(), n));
                if let Incoming::Request(r) = msg {
                    let _ = camera_path(&r.uri);
                    let _ = r.header("transport").map(parse_transport);
                }
            }
        }
    }
}
