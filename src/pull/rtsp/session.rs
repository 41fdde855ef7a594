//! The RTSP client session of one pull: connect, DESCRIBE (answering one
//! authentication challenge), SETUP of the chosen tracks (TCP interleaved
//! or UDP), PLAY, then RTP in, keep-alives out, TEARDOWN at the end.
//!
//! Every wait on the camera has a deadline ([`PullLimits::reply_timeout`]
//! per reply; the supervisor bounds the whole open and each frame), and
//! every byte it sends lands in a bounded buffer (`wire` limits, one
//! interleaved packet, one frame). The read buffer of a playing session
//! holds at most one message.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::audio::AudioDepacketizer;
use super::auth::{Challenge, authorization, parse_challenges};
use super::rtp::{self, Receiver, Verdict};
use super::sdp::{self, Media};
use super::video::{FrameLimits, VideoDepacketizer, sdp_param_sets};
use super::wire::{self, Limits, Message, Response, WireError};
use crate::catalogue::{Secret, Transport};
use crate::health::Reason;
use crate::media::{Codec, Frame, StreamInfo};
use crate::pull::{PullError, PullStream, PullTarget, Pulled, scrub};

const USER_AGENT: &str = concat!("camgate/", env!("CARGO_PKG_VERSION"));

/// Bounds on what one camera may make the gateway hold or wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullLimits {
    pub wire: Limits,
    pub frame: FrameLimits,
    /// Longest wait for one reply to a request.
    pub reply_timeout: Duration,
}

impl Default for PullLimits {
    fn default() -> Self {
        PullLimits {
            wire: Limits::DEFAULT,
            frame: FrameLimits::default(),
            reply_timeout: Duration::from_secs(5),
        }
    }
}

/// Bad RTP packets in a row after which the camera is in error.
const BAD_RTP_LIMIT: u32 = 64;
/// Interleaved packets kept while a reply is awaited (data a camera sends
/// before its PLAY reply).
const PENDING_DATA_LIMIT: usize = 256;
/// Keep-alive interval when the camera states no session timeout (RFC
/// 2326's default timeout is 60 s).
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);

/// A wire error as a pull error: `context`, the error, and the limit's key.
fn wire_error(context: &str, e: &WireError) -> PullError {
    let key = match e {
        WireError::HeadTooLong { .. } => " (limit pull.max_reply_head_bytes)",
        WireError::TooManyHeaders { .. } => " (limit pull.max_reply_header_lines)",
        WireError::BodyTooLong { .. } => " (limit pull.max_reply_body_bytes)",
        WireError::Malformed(_) => "",
    };
    PullError::new(Reason::ProtocolError, format!("{context}: {e}{key}"))
}

/// An RTSP control connection to a camera.
pub struct Conn {
    sock: TcpStream,
    buf: BytesMut,
    limits: PullLimits,
    cseq: u32,
    auth: Option<Challenge>,
    nc: u32,
    username: Option<String>,
    password: Option<Secret>,
    session: Option<String>,
    user_agent: &'static str,
    /// Interleaved data read while a reply was awaited.
    pending: VecDeque<(u8, Bytes)>,
}

impl Conn {
    /// Connects to the camera of `url`. The caller bounds the time.
    pub async fn connect(
        target: &PullTarget,
        url: &url::Url,
        limits: PullLimits,
        user_agent: &'static str,
    ) -> Result<Conn, PullError> {
        let secret = target.password.as_ref();
        if url.scheme() != "rtsp" {
            return Err(PullError::new(
                Reason::ProtocolError,
                format!("the gateway speaks rtsp://, not {}://", url.scheme()),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| PullError::new(Reason::ProtocolError, "URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(554);
        let sock = TcpStream::connect((host.as_str(), port))
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
        Ok(Conn {
            sock,
            buf: BytesMut::with_capacity(4096),
            limits,
            cseq: 0,
            auth: None,
            nc: 0,
            username: target.username.clone(),
            password: target.password.clone(),
            session: None,
            user_agent,
            pending: VecDeque::new(),
        })
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        self.sock.peer_addr().ok()
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> PullError {
        PullError::new(
            Reason::ProtocolError,
            scrub(&format!("{what}: {e}"), self.password.as_ref()),
        )
    }

    /// Formats a request with CSeq, session and credentials.
    fn format(&mut self, method: &str, url: &str, extra: &[(&str, &str)]) -> String {
        self.cseq += 1;
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        let auth_value;
        if let (Some(ch), Some(user)) = (&self.auth, &self.username) {
            let pass = self.password.as_ref().map(|p| p.expose()).unwrap_or("");
            self.nc += 1;
            let cnonce = format!("{:016x}", fastrand::u64(..));
            auth_value = authorization(ch, method, url, user, pass, &cnonce, self.nc);
            headers.push(("Authorization", &auth_value));
        }
        let session;
        if let Some(s) = &self.session {
            session = s.clone();
            headers.push(("Session", &session));
        }
        wire::request(method, url, self.cseq, self.user_agent, &headers)
    }

    /// Sends a request and reads its reply, answering one authentication
    /// challenge (and one more when the camera says the nonce went stale).
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        extra: &[(&str, &str)],
    ) -> Result<Response, PullError> {
        let mut stale_retry = true;
        let mut answered = false;
        loop {
            let req = self.format(method, url, extra);
            self.sock
                .write_all(req.as_bytes())
                .await
                .map_err(|e| self.io_error(&format!("sending {method}"), e))?;
            let resp = self.reply(method).await?;
            if resp.status == 401 && self.username.is_some() {
                let ch = parse_challenges(resp.headers_named("www-authenticate"));
                let stale = matches!(ch, Some(Challenge::Digest { stale: true, .. }));
                if let Some(ch) = ch
                    && (!answered || (stale && std::mem::take(&mut stale_retry)))
                {
                    answered = true;
                    self.auth = Some(ch);
                    self.nc = 0;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Reads until the reply to the last request, within the reply timeout.
    async fn reply(&mut self, method: &str) -> Result<Response, PullError> {
        let limit = self.limits.reply_timeout;
        let deadline = Instant::now() + limit;
        let start_len = self.buf.len();
        let mut got_bytes = false;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.message()).await {
                Ok(r) => r.map_err(|e| match e {
                    ReadError::Wire(w) => wire_error(&format!("{method} reply"), &w),
                    ReadError::Closed => PullError::new(
                        Reason::ProtocolError,
                        format!("the camera closed the connection before its {method} reply"),
                    ),
                    ReadError::Io(e) => self.io_error(&format!("reading the {method} reply"), e),
                })?,
                Err(_) => {
                    got_bytes |= self.buf.len() > start_len;
                    return Err(if got_bytes {
                        PullError::new(
                            Reason::ProtocolError,
                            format!(
                                "{method} reply incomplete after {} s (limit pull.reply_timeout_secs)",
                                limit.as_secs_f64()
                            ),
                        )
                    } else {
                        PullError::new(
                            Reason::Timeout,
                            format!("no {method} reply within {} s", limit.as_secs_f64()),
                        )
                    });
                }
            };
            got_bytes = true;
            match msg {
                Message::Response(r) => {
                    if r.cseq().is_some_and(|c| c != self.cseq) {
                        continue; // the reply to an earlier keep-alive
                    }
                    return Ok(r);
                }
                Message::Request { method, cseq } => self.answer(&method, cseq.as_deref()).await?,
                Message::Data { channel, payload } => {
                    if self.pending.len() < PENDING_DATA_LIMIT {
                        self.pending.push_back((channel, payload));
                    }
                }
            }
        }
    }

    async fn answer(&mut self, method: &str, cseq: Option<&str>) -> Result<(), PullError> {
        let a = wire::answer_camera_request(method, cseq);
        self.sock
            .write_all(a.as_bytes())
            .await
            .map_err(|e| self.io_error("answering the camera", e))
    }

    /// The next message, reading as needed (cancel-safe: what was read
    /// stays in the buffer).
    async fn message(&mut self) -> Result<Message, ReadError> {
        loop {
            if let Some(m) =
                wire::decode(&mut self.buf, &self.limits.wire).map_err(ReadError::Wire)?
            {
                return Ok(m);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let n = self
                .sock
                .read_buf(&mut self.buf)
                .await
                .map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
        }
    }

    /// Sends a request without waiting for its reply (keep-alives).
    async fn send(&mut self, method: &str, url: &str) -> Result<(), PullError> {
        let req = self.format(method, url, &[]);
        self.sock
            .write_all(req.as_bytes())
            .await
            .map_err(|e| self.io_error(&format!("sending {method}"), e))
    }
}

#[derive(Debug)]
enum ReadError {
    Wire(WireError),
    Closed,
    Io(std::io::Error),
}

/// Maps a reply's status to an error, `Ok` for 2xx.
pub fn check(r: &Response, method: &str, secret: Option<&Secret>) -> Result<(), PullError> {
    let reason = match r.status {
        200..=299 => return Ok(()),
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

/// A chosen track.
struct TrackPlan {
    media: Media,
    codec: Codec,
}

fn codec_of(encoding: &str) -> Option<Codec> {
    match encoding {
        "h264" => Some(Codec::H264),
        "h265" => Some(Codec::H265),
        "mpeg4-generic" => Some(Codec::Aac),
        "pcmu" => Some(Codec::Pcmu),
        "pcma" => Some(Codec::Pcma),
        _ => None,
    }
}

/// Picks the first H.264/H.265 video and the first carried audio track.
fn choose(d: &sdp::Description) -> Result<Vec<TrackPlan>, PullError> {
    let mut video = None;
    let mut audio = None;
    for m in &d.media {
        match (m.kind.as_str(), codec_of(&m.encoding)) {
            ("video", Some(c)) if c.is_video() && video.is_none() => {
                video = Some(TrackPlan {
                    media: m.clone(),
                    codec: c,
                })
            }
            // AAC with an fmtp we cannot read is left out, not fatal.
            ("audio", Some(c))
                if !c.is_video()
                    && audio.is_none()
                    && AudioDepacketizer::new(c, m.clock_rate, m.fmtp.as_deref()).is_ok() =>
            {
                audio = Some(TrackPlan {
                    media: m.clone(),
                    codec: c,
                })
            }
            _ => {}
        }
    }
    let Some(v) = video else {
        let offered: Vec<String> = d
            .media
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m.kind,
                    if m.encoding.is_empty() {
                        "?"
                    } else {
                        &m.encoding
                    }
                )
            })
            .collect();
        return Err(PullError::new(
            Reason::UnsupportedCodec,
            format!(
                "no H.264 or H.265 video stream (offered: {})",
                if offered.is_empty() {
                    "nothing".into()
                } else {
                    offered.join(", ")
                }
            ),
        ));
    };
    Ok([Some(v), audio].into_iter().flatten().collect())
}

/// `Session: id;timeout=N`: the id and the timeout.
fn session_header(v: &str) -> (String, Option<Duration>) {
    let mut parts = v.split(';');
    let id = parts
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(128)
        .collect();
    let timeout = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| v.trim().parse::<u64>().ok())
            .flatten()
    });
    (id, timeout.filter(|t| *t > 0).map(Duration::from_secs))
}

/// What a SETUP reply's `Transport` says.
#[derive(Debug, Default, PartialEq, Eq)]
struct TransportReply {
    interleaved: Option<(u8, u8)>,
    server_port: Option<(u16, u16)>,
    ssrc: Option<u32>,
}

fn transport_reply(v: &str) -> TransportReply {
    let mut t = TransportReply::default();
    let pair = |s: &str| -> Option<(u32, u32)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    for p in v.split(';') {
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "interleaved" => {
                t.interleaved = pair(val)
                    .and_then(|(a, b)| Some((u8::try_from(a).ok()?, u8::try_from(b).ok()?)))
            }
            "server_port" => {
                t.server_port = pair(val)
                    .and_then(|(a, b)| Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?)))
            }
            // Some cameras pad the SSRC or send fewer than 8 digits.
            "ssrc" => t.ssrc = u32::from_str_radix(val.trim(), 16).ok(),
            _ => {}
        }
    }
    t
}

/// Binds an even/odd UDP port pair for RTP and RTCP.
async fn udp_pair(ip: std::net::IpAddr) -> Result<(UdpSocket, UdpSocket), PullError> {
    let any: std::net::IpAddr = if ip.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    for _ in 0..32 {
        let port = fastrand::u16(10_000..30_000) * 2;
        let Ok(rtp) = UdpSocket::bind((any, port)).await else {
            continue;
        };
        let Ok(rtcp) = UdpSocket::bind((any, port + 1)).await else {
            continue;
        };
        return Ok((rtp, rtcp));
    }
    Err(PullError::new(
        Reason::ProtocolError,
        "no free UDP port pair for RTP",
    ))
}

enum Depack {
    Video(VideoDepacketizer),
    Audio(AudioDepacketizer),
}

struct PlayingTrack {
    /// RTP channel (TCP) or index of the UDP socket.
    rtp_channel: u8,
    payload_type: u8,
    receiver: Receiver,
    depack: Depack,
    udp: Option<(UdpSocket, UdpSocket)>,
}

/// Opens and plays a camera stream.
pub async fn open(
    target: &PullTarget,
    limits: PullLimits,
) -> Result<Box<dyn PullStream>, PullError> {
    let secret = target.password.as_ref();
    let url = url::Url::parse(&target.url)
        .map_err(|e| PullError::new(Reason::ProtocolError, format!("bad URL: {e}")))?;
    let mut conn = Conn::connect(target, &url, limits, USER_AGENT).await?;
    let desc = conn
        .request("DESCRIBE", url.as_str(), &[("Accept", "application/sdp")])
        .await?;
    check(&desc, "DESCRIBE", secret)?;
    let base = desc
        .header("content-base")
        .or(desc.header("content-location"))
        .and_then(|b| url::Url::parse(b).ok())
        .unwrap_or_else(|| url.clone());
    let description = sdp::parse(&desc.body)
        .map_err(|e| PullError::new(Reason::UnsupportedCodec, format!("DESCRIBE: {e}")))?;
    let plans = choose(&description)?;
    set_up_and_play(conn, target, &base, &description, plans, limits)
        .await
        .map_err(PullError::past_describe)
}

/// SETUP of each chosen track, then PLAY.
async fn set_up_and_play(
    mut conn: Conn,
    target: &PullTarget,
    base: &url::Url,
    description: &sdp::Description,
    plans: Vec<TrackPlan>,
    limits: PullLimits,
) -> Result<Box<dyn PullStream>, PullError> {
    let secret = target.password.as_ref();
    let udp = target.transport == Transport::Udp;
    let camera_ip = conn.peer().map(|a| a.ip());
    let mut tracks = Vec::new();
    let mut info = StreamInfo::default();
    let mut keepalive = DEFAULT_KEEPALIVE;
    for (i, plan) in plans.into_iter().enumerate() {
        let setup_url = sdp::resolve_control(base, plan.media.control.as_deref())
            .map_err(|e| PullError::new(Reason::ProtocolError, e))?;
        let channel = (2 * i) as u8;
        let mut sockets = None;
        let transport = if udp {
            let ip = camera_ip
                .ok_or_else(|| PullError::new(Reason::ProtocolError, "no peer address"))?;
            let (rtp, rtcp) = udp_pair(ip).await?;
            let p = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
            sockets = Some((rtp, rtcp));
            format!("RTP/AVP;unicast;client_port={}-{}", p, p + 1)
        } else {
            format!(
                "RTP/AVP/TCP;unicast;interleaved={}-{}",
                channel,
                channel + 1
            )
        };
        let reply = conn
            .request("SETUP", setup_url.as_str(), &[("Transport", &transport)])
            .await?;
        if reply.status == 461 {
            return Err(PullError::new(
                Reason::ProtocolError,
                if udp {
                    "the camera does not send RTP over UDP (set the camera's transport to tcp)"
                } else {
                    "the camera does not send RTP over TCP (set the camera's transport to udp)"
                },
            ));
        }
        check(&reply, "SETUP", secret)?;
        if let Some(s) = reply.header("session") {
            let (id, timeout) = session_header(s);
            if id.is_empty() {
                return Err(PullError::new(
                    Reason::ProtocolError,
                    "SETUP reply with an empty Session",
                ));
            }
            conn.session = Some(id);
            if let Some(t) = timeout {
                keepalive = keepalive.min((t / 2).max(Duration::from_secs(5)));
            }
        } else if conn.session.is_none() {
            return Err(PullError::new(
                Reason::ProtocolError,
                "SETUP reply without a Session",
            ));
        }
        let tr = transport_reply(reply.header("transport").unwrap_or(""));
        let rtp_channel = if udp {
            if let (Some((rtp, _)), Some(ip), Some((sp, _))) = (&sockets, camera_ip, tr.server_port)
            {
                // Sends from elsewhere are ignored (see `next`); connecting
                // the socket lets the kernel drop them.
                let _ = rtp.connect(SocketAddr::new(ip, sp)).await;
            }
            i as u8
        } else {
            match tr.interleaved {
                Some((rtp, _)) => rtp,
                None => {
                    return Err(PullError::new(
                        Reason::ProtocolError,
                        "SETUP reply without interleaved channels for RTP over TCP",
                    ));
                }
            }
        };
        let clock = plan.media.clock_rate.max(1);
        let (depack, track) = if plan.codec.is_video() {
            let d = VideoDepacketizer::new(
                plan.codec,
                sdp_param_sets(plan.codec, plan.media.fmtp.as_deref()),
                limits.frame,
            );
            let t = d.track();
            (Depack::Video(d), t)
        } else {
            let d = AudioDepacketizer::new(plan.codec, clock, plan.media.fmtp.as_deref())
                .map_err(|e| PullError::new(Reason::UnsupportedCodec, e))?;
            let t = d.track();
            (Depack::Audio(d), t)
        };
        info.tracks.push(track);
        tracks.push(PlayingTrack {
            rtp_channel,
            payload_type: plan.media.payload_type,
            receiver: Receiver::new(clock, tr.ssrc),
            depack,
            udp: sockets,
        });
    }
    let play_url = sdp::resolve_control(base, description.control.as_deref())
        .map_err(|e| PullError::new(Reason::ProtocolError, e))?;
    let reply = conn
        .request("PLAY", play_url.as_str(), &[("Range", "npt=0.000-")])
        .await?;
    check(&reply, "PLAY", secret)?;
    Ok(Box::new(RtspStream {
        conn,
        tracks,
        info,
        play_url: play_url.to_string(),
        keepalive,
        keepalive_at: Instant::now() + keepalive,
        ready: VecDeque::new(),
        bad_rtp: 0,
        udp_bufs: if udp {
            vec![vec![0; 65536], vec![0; 65536]]
        } else {
            Vec::new()
        },
    }))
}

struct RtspStream {
    conn: Conn,
    tracks: Vec<PlayingTrack>,
    info: StreamInfo,
    play_url: String,
    keepalive: Duration,
    keepalive_at: Instant,
    ready: VecDeque<Pulled>,
    bad_rtp: u32,
    /// One datagram buffer per track (UDP only).
    udp_bufs: Vec<Vec<u8>>,
}

impl RtspStream {
    fn protocol(&self, m: impl Into<String>) -> PullError {
        PullError::new(
            Reason::ProtocolError,
            scrub(&m.into(), self.conn.password.as_ref()),
        )
    }

    /// Handles one RTP packet of track `ti`.
    fn packet(&mut self, ti: usize, data: Bytes) -> Result<(), PullError> {
        let p = match rtp::parse(data) {
            Ok(p) => p,
            Err(e) => {
                self.bad_rtp += 1;
                if self.bad_rtp >= BAD_RTP_LIMIT {
                    return Err(
                        self.protocol(format!("{} bad RTP packets in a row: {e}", self.bad_rtp))
                    );
                }
                return Ok(());
            }
        };
        let expected = self.tracks[ti].payload_type;
        if p.payload_type != expected {
            // Comfort noise or another format the camera mixes in.
            self.bad_rtp += 1;
            if self.bad_rtp >= BAD_RTP_LIMIT {
                return Err(self.protocol(format!(
                    "{} RTP packets in a row of payload type {} (SDP said {expected})",
                    self.bad_rtp, p.payload_type
                )));
            }
            return Ok(());
        }
        let t = &mut self.tracks[ti];
        let verdict = t
            .receiver
            .accept(&p)
            .map_err(|e| PullError::new(Reason::ProtocolError, e.to_string()))?;
        self.bad_rtp = 0;
        let Verdict::Accept { pts, lost } = verdict else {
            return Ok(());
        };
        let track = ti as u8;
        match &mut t.depack {
            Depack::Video(d) => {
                d.push(pts, p.marker, lost, &p.payload)
                    .map_err(|e| PullError::new(Reason::ProtocolError, e))?;
                while let Some(au) = d.pull() {
                    let new_info = if au.new_params {
                        self.info.tracks[ti] = d.track();
                        Some(self.info.clone())
                    } else {
                        None
                    };
                    self.ready.push_back(Pulled {
                        frame: Frame {
                            track,
                            pts: au.pts,
                            is_key: au.is_key,
                            data: au.data,
                            arrived: std::time::Instant::now(),
                        },
                        new_info,
                    });
                }
            }
            Depack::Audio(d) => {
                d.push(pts, p.marker, lost, p.payload)
                    .map_err(|e| PullError::new(Reason::ProtocolError, e))?;
                for f in d.drain() {
                    self.ready.push_back(Pulled {
                        frame: Frame {
                            track,
                            pts: f.pts,
                            is_key: false,
                            // A copy: a slice would keep the whole read
                            // buffer alive in GOP caches.
                            data: Bytes::copy_from_slice(&f.data),
                            arrived: std::time::Instant::now(),
                        },
                        new_info: None,
                    });
                }
            }
        }
        Ok(())
    }

    fn data(&mut self, channel: u8, payload: Bytes) -> Result<(), PullError> {
        if let Some(ti) = self.tracks.iter().position(|t| t.rtp_channel == channel) {
            self.packet(ti, payload)?;
        }
        // RTCP (odd channels) and channels not set up are skipped.
        Ok(())
    }

    /// A message on the control connection while playing: data, a reply to
    /// a keep-alive, or a request of the camera's, which is answered.
    async fn control(&mut self, m: Message) -> Result<(), PullError> {
        match m {
            Message::Data { channel, payload } => self.data(channel, payload),
            Message::Response(r) => {
                // Replies to keep-alives. A lost session is the end.
                if r.status == 454 {
                    return Err(self.protocol("the camera lost the session (454)"));
                }
                Ok(())
            }
            Message::Request { method, cseq } => self.conn.answer(&method, cseq.as_deref()).await,
        }
    }

    fn read_error(&self, e: ReadError) -> PullError {
        match e {
            ReadError::Wire(w) => wire_error(
                "the stream lost its framing (neither interleaved data nor an RTSP message)",
                &w,
            ),
            ReadError::Closed => self.protocol("the camera closed the connection"),
            ReadError::Io(e) => self.conn.io_error("reading the stream", e),
        }
    }
}

#[async_trait]
impl PullStream for RtspStream {
    fn info(&self) -> StreamInfo {
        self.info.clone()
    }

    async fn next(&mut self) -> Result<Option<Pulled>, PullError> {
        self.next_inner().await.map_err(PullError::past_describe)
    }
}

impl RtspStream {
    async fn next_inner(&mut self) -> Result<Option<Pulled>, PullError> {
        while let Some((c, p)) = self.conn.pending.pop_front() {
            self.data(c, p)?;
        }
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            if Instant::now() >= self.keepalive_at {
                self.keepalive_at = Instant::now() + self.keepalive;
                let url = self.play_url.clone();
                self.conn.send("OPTIONS", &url).await?;
            }
            if self.udp_bufs.is_empty() {
                let m = self.conn.message().await.map_err(|e| self.read_error(e))?;
                self.control(m).await?;
                continue;
            }
            // UDP: the control connection (keep-alive replies, EOF) and
            // each track's RTP socket.
            let got = {
                let conn = &mut self.conn;
                let (b0, b1) = self.udp_bufs.split_at_mut(1);
                let s0 = self.tracks[0].udp.as_ref().map(|s| &s.0);
                let s1 = self
                    .tracks
                    .get(1)
                    .and_then(|t| t.udp.as_ref())
                    .map(|s| &s.0);
                tokio::select! {
                    m = conn.message() => Got::Control(m),
                    r = async { s0.expect("UDP sockets").recv(&mut b0[0]).await }, if s0.is_some() => Got::Rtp(0, r),
                    r = async { s1.expect("UDP sockets").recv(&mut b1[0]).await }, if s1.is_some() => Got::Rtp(1, r),
                }
            };
            match got {
                Got::Control(m) => {
                    let m = m.map_err(|e| self.read_error(e))?;
                    self.control(m).await?;
                }
                Got::Rtp(ti, r) => {
                    let n = r.map_err(|e| self.conn.io_error("reading RTP", e))?;
                    let data = Bytes::copy_from_slice(&self.udp_bufs[ti][..n]);
                    self.packet(ti, data)?;
                }
            }
        }
    }
}

enum Got {
    Control(Result<Message, ReadError>),
    Rtp(usize, std::io::Result<usize>),
}

impl Drop for RtspStream {
    fn drop(&mut self) {
        // Best effort, without waiting: a camera with few session slots
        // frees ours at once instead of at its session timeout.
        let req = self.conn.format("TEARDOWN", &self.play_url.clone(), &[]);
        let _ = self.conn.sock.try_write(req.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_and_transport_headers() {
        assert_eq!(
            session_header("12345678;timeout=60"),
            ("12345678".to_string(), Some(Duration::from_secs(60)))
        );
        assert_eq!(session_header(" abc "), ("abc".to_string(), None));
        assert_eq!(
            transport_reply("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=0A0B0C0D;mode=\"PLAY\""),
            TransportReply {
                interleaved: Some((2, 3)),
                server_port: None,
                ssrc: Some(0x0a0b0c0d)
            }
        );
        assert_eq!(
            transport_reply("RTP/AVP;unicast;client_port=4000-4001;server_port=6970-6971"),
            TransportReply {
                interleaved: None,
                server_port: Some((6970, 6971)),
                ssrc: None
            }
        );
        assert_eq!(
            transport_reply("interleaved=999-1000;ssrc=zz"),
            TransportReply::default()
        );
    }

    #[test]
    fn chooses_video_and_audio() {
        let d = sdp::parse(
            b"m=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\nm=video 0 RTP/AVP 26\r\n",
        )
        .unwrap();
        let plans = choose(&d).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!((plans[0].codec, plans[1].codec), (Codec::H265, Codec::Pcmu));
        let d = sdp::parse(b"m=video 0 RTP/AVP 26\r\nm=audio 0 RTP/AVP 8\r\n").unwrap();
        let e = choose(&d).err().unwrap();
        assert_eq!(e.reason, Reason::UnsupportedCodec);
        assert!(
            e.message.contains("video/jpeg, audio/pcma"),
            "{}",
            e.message
        );
    }
}
