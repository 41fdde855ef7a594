//! A hostile camera: an RTSP server that misbehaves in one chosen way, as
//! broken and malicious cameras in the field do. Each [`Behaviour`] is one
//! way; the server answers every connection with it until dropped.
//!
//! Plain threads and blocking sockets, apart from the gateway's runtime, so
//! a gateway that stalls cannot stall the camera too. Every loop ends when
//! the camera is dropped or its peer goes away.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One way to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers DESCRIBE with header lines that never end.
    EndlessHeaders,
    /// Announces a `Content-Length` of a terabyte and sends a body forever.
    HugeContentLength,
    /// Sends its DESCRIBE reply one byte at a time, slowly, for ever.
    Slowloris,
    /// Accepts connections and never answers.
    Silent,
    /// An SDP with audio and no video.
    NoVideo,
    /// Challenges with Digest and never accepts an answer.
    DigestNeverAccepts,
    /// Plays, then closes the connection at once.
    CloseAfterPlay,
    /// Plays, then sends random bytes in interleaved frames.
    GarbageRtp,
    /// Plays, then sends interleaved headers whose lengths lie.
    LyingLengths,
    /// Plays, then sends one video frame that never ends (no marker, one
    /// timestamp), as fast as the gateway reads.
    EndlessFrame,
    /// Plays frames at 25 fps, each packet from a random SSRC.
    WrongSsrc,
    /// Plays frames at 25 fps whose timestamps jump 100 s each time.
    TimestampJumps,
    /// A well-behaved camera (for checking the server itself).
    Good,
}

impl Behaviour {
    pub const ALL: [Behaviour; 12] = [
        Behaviour::EndlessHeaders,
        Behaviour::HugeContentLength,
        Behaviour::Slowloris,
        Behaviour::Silent,
        Behaviour::NoVideo,
        Behaviour::DigestNeverAccepts,
        Behaviour::CloseAfterPlay,
        Behaviour::GarbageRtp,
        Behaviour::LyingLengths,
        Behaviour::EndlessFrame,
        Behaviour::WrongSsrc,
        Behaviour::TimestampJumps,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Behaviour::EndlessHeaders => "endless_headers",
            Behaviour::HugeContentLength => "huge_content_length",
            Behaviour::Slowloris => "slowloris",
            Behaviour::Silent => "silent",
            Behaviour::NoVideo => "no_video",
            Behaviour::DigestNeverAccepts => "digest_never_accepts",
            Behaviour::CloseAfterPlay => "close_after_play",
            Behaviour::GarbageRtp => "garbage_rtp",
            Behaviour::LyingLengths => "lying_lengths",
            Behaviour::EndlessFrame => "endless_frame",
            Behaviour::WrongSsrc => "wrong_ssrc",
            Behaviour::TimestampJumps => "timestamp_jumps",
            Behaviour::Good => "good",
        }
    }

    /// The state reason the gateway must give, and a piece of the
    /// `last_error` it must show.
    pub fn expected(self) -> (&'static str, &'static str) {
        match self {
            Behaviour::EndlessHeaders => ("protocol_error", "pull.max_reply_header_lines"),
            Behaviour::HugeContentLength => ("protocol_error", "pull.max_reply_body_bytes"),
            Behaviour::Slowloris => ("protocol_error", "pull.reply_timeout_secs"),
            Behaviour::Silent => ("timeout", "no DESCRIBE reply"),
            Behaviour::NoVideo => ("unsupported_codec", "no H.264 or H.265 video"),
            Behaviour::DigestNeverAccepts => ("auth_failed", "401"),
            Behaviour::CloseAfterPlay => ("protocol_error", "closed the connection"),
            Behaviour::GarbageRtp => ("protocol_error", "bad RTP packets"),
            Behaviour::LyingLengths => ("protocol_error", "lost its framing"),
            Behaviour::EndlessFrame => ("protocol_error", "pull.max_frame_bytes"),
            Behaviour::WrongSsrc => ("protocol_error", "unexpected SSRCs"),
            Behaviour::TimestampJumps => ("protocol_error", "timestamps jumped"),
            Behaviour::Good => ("", ""),
        }
    }

    /// Whether the camera needs credentials configured to show itself.
    pub fn wants_credentials(self) -> bool {
        self == Behaviour::DigestNeverAccepts
    }
}

/// A running hostile camera on 127.0.0.1.
pub struct HostileCamera {
    pub behaviour: Behaviour,
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Bytes written to the gateway so far.
    pub bytes_sent: Arc<AtomicU64>,
}

impl Drop for HostileCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl HostileCamera {
    pub fn start(behaviour: Behaviour) -> HostileCamera {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let (s, c, b) = (stop.clone(), connections.clone(), bytes_sent.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (s, b) = (s.clone(), b.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_nodelay(true);
                    let mut conn = Conn {
                        sock: conn,
                        buf: Vec::new(),
                        stop: s,
                        sent: b,
                    };
                    let _ = serve(&mut conn, behaviour);
                });
            }
        });
        HostileCamera {
            behaviour,
            port,
            stop,
            connections,
            bytes_sent,
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/{}", self.port, self.behaviour.name())
    }
}

struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

type Res = std::io::Result<()>;

fn gone() -> std::io::Error {
    std::io::Error::other("stopped")
}

impl Conn {
    /// The next request: method and CSeq.
    fn request(&mut self) -> std::io::Result<(String, String)> {
        self.sock
            .set_read_timeout(Some(Duration::from_millis(200)))?;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Err(gone());
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                self.buf.drain(..end + 4);
                let method = head.split(' ').next().unwrap_or("").to_string();
                let cseq = head
                    .lines()
                    .find_map(|l| l.strip_prefix("CSeq:"))
                    .unwrap_or("0")
                    .trim()
                    .to_string();
                return Ok((method, cseq));
            }
            let mut chunk = [0u8; 4096];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err(gone()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn write(&mut self, b: &[u8]) -> Res {
        if self.stop.load(Ordering::SeqCst) {
            return Err(gone());
        }
        self.sock.write_all(b)?;
        self.sent.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn reply(&mut self, cseq: &str, extra: &str, body: &str) -> Res {
        let r = format!(
            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.write(r.as_bytes())
    }

    /// Waits until stopped or the peer leaves, reading and discarding.
    fn hold(&mut self) -> Res {
        loop {
            self.request()?;
        }
    }
}

/// A 1920x1080 H.264 stream's parameter sets (a Hikvision camera's).
const SDP_VIDEO: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\na=control:*\r\n\
    m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
    a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z00AKpY1QPAET8s3AQEBAg==,aO48gA==\r\n\
    a=control:track1\r\n";
const SDP_AUDIO_ONLY: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\n\
    m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:track1\r\n";

fn rtp(seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let len = 12 + payload.len();
    let mut v = vec![b'$', 0, (len >> 8) as u8, len as u8];
    v.extend([0x80, if marker { 0x80 | 96 } else { 96 }]);
    v.extend(seq.to_be_bytes());
    v.extend(ts.to_be_bytes());
    v.extend(ssrc.to_be_bytes());
    v.extend(payload);
    v
}

/// Answers OPTIONS/DESCRIBE/SETUP until PLAY; `sdp` is the description.
fn negotiate(c: &mut Conn, sdp: &str) -> Res {
    loop {
        let (method, cseq) = c.request()?;
        match method.as_str() {
            "OPTIONS" => c.reply(&cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n", "")?,
            "DESCRIBE" => c.reply(&cseq, "Content-Type: application/sdp\r\n", sdp)?,
            "SETUP" => c.reply(
                &cseq,
                "Session: 12345678;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
                "",
            )?,
            "PLAY" => {
                return c.reply(&cseq, "Session: 12345678\r\nRange: npt=0.000-\r\n", "");
            }
            _ => c.reply(&cseq, "", "")?,
        }
    }
}

fn serve(c: &mut Conn, b: Behaviour) -> Res {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ c.sock.peer_addr()?.port() as u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    match b {
        Behaviour::Silent => c.hold(),
        Behaviour::EndlessHeaders | Behaviour::HugeContentLength | Behaviour::Slowloris => loop {
            let (method, cseq) = c.request()?;
            if method != "DESCRIBE" {
                c.reply(&cseq, "", "")?;
                continue;
            }
            match b {
                Behaviour::EndlessHeaders => {
                    c.write(format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n").as_bytes())?;
                    let line = format!("X-Padding: {}\r\n", "a".repeat(80));
                    let block = line.repeat(100);
                    loop {
                        c.write(block.as_bytes())?;
                    }
                }
                Behaviour::HugeContentLength => {
                    c.write(
                        format!(
                            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n\
                                 Content-Length: 1099511627776\r\n\r\n"
                        )
                        .as_bytes(),
                    )?;
                    let block = "v=0\r\n".repeat(2000);
                    loop {
                        c.write(block.as_bytes())?;
                    }
                }
                _ => {
                    let reply = format!(
                        "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP_VIDEO}",
                        SDP_VIDEO.len()
                    );
                    for byte in reply.as_bytes().iter().cycle() {
                        c.write(&[*byte])?;
                        std::thread::sleep(Duration::from_millis(300));
                    }
                    return Ok(());
                }
            }
        },
        Behaviour::NoVideo => {
            negotiate(c, SDP_AUDIO_ONLY)?;
            c.hold()
        }
        Behaviour::DigestNeverAccepts => loop {
            let (_, cseq) = c.request()?;
            let r = format!(
                "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n\
                 WWW-Authenticate: Digest realm=\"hostile\", nonce=\"{:016x}\"\r\nContent-Length: 0\r\n\r\n",
                rand()
            );
            c.write(r.as_bytes())?;
        },
        Behaviour::CloseAfterPlay => {
            negotiate(c, SDP_VIDEO)?;
            Ok(())
        }
        Behaviour::GarbageRtp => {
            negotiate(c, SDP_VIDEO)?;
            loop {
                let len = 100 + (rand() % 1200) as usize;
                let mut v = vec![b'$', 0, (len >> 8) as u8, len as u8];
                v.extend((0..len).map(|_| rand() as u8 & 0x3f)); // never version 2
                c.write(&v)?;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Behaviour::LyingLengths => {
            negotiate(c, SDP_VIDEO)?;
            let mut seq = 0u16;
            loop {
                // Says 60,000 bytes, sends one small packet, then the next
                // header: the lengths and the data disagree from here on.
                let mut p = rtp(seq, 0, 1, true, &[0x65, 1, 2, 3]);
                p[2] = 0xea;
                p[3] = 0x60;
                c.write(&p)?;
                seq = seq.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Behaviour::EndlessFrame => {
            negotiate(c, SDP_VIDEO)?;
            c.write(&rtp(0, 0, 1, false, &[0x7c, 0x85, 0]))?;
            let body = vec![0x55u8; 1400];
            let mut payload = vec![0x7c, 0x05];
            payload.extend(&body);
            let mut seq = 1u16;
            loop {
                c.write(&rtp(seq, 0, 1, false, &payload))?;
                seq = seq.wrapping_add(1);
            }
        }
        Behaviour::WrongSsrc | Behaviour::TimestampJumps | Behaviour::Good => {
            negotiate(c, SDP_VIDEO)?;
            let start = Instant::now();
            let mut seq = 0u16;
            for frame in 0u32.. {
                let (ts, ssrc) = match b {
                    Behaviour::WrongSsrc => (frame * 3600, rand() as u32),
                    Behaviour::TimestampJumps => (frame.wrapping_mul(9_000_000), 7),
                    _ => (frame * 3600, 7),
                };
                let nal: &[u8] = if frame % 50 == 0 {
                    &[0x65, 0x88, 1, 2]
                } else {
                    &[0x41, 0x9a, 1, 2]
                };
                c.write(&rtp(seq, ts, ssrc, true, nal))?;
                seq = seq.wrapping_add(1);
                let due = start + Duration::from_millis(40) * (frame + 1);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        }
    }
}
