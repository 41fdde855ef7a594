//! The relay's RTSP server: `rtsp://HOST:PORT/cam/{camera_id}`.
//!
//! One task per connection. DESCRIBE subscribes to the camera's fan-out
//! (which starts an `on_demand` pull) and answers once the camera's track
//! parameters are known; SETUP takes RTP over TCP interleaved; PLAY streams
//! from the GOP cache's key frame on. Every viewer of a camera shares its one
//! pull: payloads are slices of the frames' shared buffers, written with
//! vectored writes next to per-viewer headers.
//!
//! With a gate (the gateway's), every connection authenticates before
//! DESCRIBE: Digest or Basic (a username and password, or an API key, or
//! an embed-link token as the password), or `?token=` in the URL. Without
//! credentials the answer is 401 whether or not the camera exists; a camera
//! outside the principal's scope answers 404. PLAY opens an audited view,
//! and a revoked credential ends the connection.
//!
//! A viewer that cannot keep up is handled by the fan-out (it skips to the
//! next key frame, and one that stays behind is dropped, which ends its
//! connection); a write that makes no progress for `write_timeout` ends it
//! too, so a reader that stopped reading holds nothing.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::super::{ViewerCounters as RtspCounters, ViewerGuard};
use super::message::{self, Incoming, Request};
use super::{rtp, sdp};
use crate::auth::Principal;
use crate::auth::digest::{self, Authorization};
use crate::auth::gate::{Credential, Denied, Gate, ViewTicket};
use crate::fanout::Subscriber;
use crate::media::{Codec, StreamInfo};
use crate::pull::PullManager;

/// Server settings.
#[derive(Debug, Clone)]
pub struct RtspOptions {
    /// How long DESCRIBE waits for a camera's stream to open.
    pub open_timeout: Duration,
    /// A write that makes no progress for this long ends the connection.
    pub write_timeout: Duration,
    /// A session not playing over TCP ends after this long without a
    /// request (or, over UDP, an RTCP packet) from its client.
    pub session_timeout: Duration,
    /// A client must authenticate, and send each request head, within this
    /// long (with a gate); else it is disconnected.
    pub auth_timeout: Duration,
    /// Caps on open connections.
    pub limits: crate::listen::ConnLimits,
}

impl Default for RtspOptions {
    fn default() -> Self {
        RtspOptions {
            open_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            limits: Default::default(),
        }
    }
}

/// Where the server's cameras come from: the pull manager in the gateway,
/// a replayed clip in the Rust-only demo.
pub trait Streams: Send + Sync + 'static {
    /// The camera's display name, when it exists and may be viewed.
    fn name(&self, id: &str) -> Option<String>;
    /// A subscription to its frames (starting an on-demand pull).
    fn subscribe(&self, id: &str) -> Option<Subscriber>;
    /// The camera's district code, for scope checks (an unknown camera
    /// has none).
    fn district(&self, _id: &str) -> Option<String> {
        None
    }
}

impl Streams for PullManager {
    fn name(&self, id: &str) -> Option<String> {
        self.config(id).filter(|c| c.enabled).map(|c| c.name)
    }

    fn subscribe(&self, id: &str) -> Option<Subscriber> {
        PullManager::subscribe(self, id)
    }

    fn district(&self, id: &str) -> Option<String> {
        self.config(id).map(|c| c.district_code)
    }
}

/// The server's shared state.
pub struct RtspServer {
    streams: Arc<dyn Streams>,
    opts: RtspOptions,
    pub counters: Arc<RtspCounters>,
    /// Authentication, scopes, caps and audit; `None` serves anyone (the
    /// demo's simulated cameras, which stand in for real ones).
    gate: Option<Arc<Gate>>,
    /// Caps on open connections.
    pub connections: Arc<crate::listen::ConnGate>,
}

/// Socket send buffer per viewer connection.
const SEND_BUFFER: usize = 256 * 1024;

const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

impl RtspServer {
    pub fn new(
        streams: Arc<dyn Streams>,
        opts: RtspOptions,
        counters: Arc<RtspCounters>,
        gate: Option<Arc<Gate>>,
    ) -> Arc<RtspServer> {
        Arc::new(RtspServer {
            streams,
            connections: crate::listen::ConnGate::new(opts.limits),
            opts,
            counters,
            gate,
        })
    }

    /// Accepts connections until `cancel`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, cancel: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = self.connections.admit(peer.ip()) else {
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    // A modest send buffer: a viewer that stops reading
                    // blocks our writes within about a second instead of
                    // after the kernel has queued megabytes for it.
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
                    let server = self.clone();
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            r = server.connection(stream, peer) => {
                                if let Err(e) = r {
                                    tracing::debug!(%peer, error = %e, "RTSP connection ended");
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "RTSP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn connection(&self, stream: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
        let (mut rd, mut wr) = stream.into_split();
        let mut conn = Conn::default();
        let mut buf = BytesMut::with_capacity(4096);
        let mut guard: Option<ViewerGuard<'_>> = None;
        let mut play_started: Option<Instant> = None;
        let mut since = Instant::now();
        // When the session expires unless its client is heard from: one
        // timer per connection, moved on by each request.
        let timeout = self.opts.session_timeout;
        let expiry = tokio::time::sleep(timeout);
        tokio::pin!(expiry);
        // An unauthenticated client is cut off after this, whatever it
        // sends meanwhile.
        let auth_deadline = tokio::time::sleep(self.opts.auth_timeout);
        tokio::pin!(auth_deadline);
        // Fires when the view's credential is revoked.
        let mut revoked = None;
        loop {
            if conn.playing && guard.is_none() {
                guard = Some(self.counters.join(&conn.camera.clone().unwrap_or_default()));
                since = Instant::now();
                play_started = Some(since);
            }
            // Handle whatever whole messages are buffered.
            loop {
                match message::parse(&buf) {
                    Ok(None) => break,
                    Ok(Some((m, n))) => {
                        let _ = buf.split_to(n);
                        if let Incoming::Request(req) = m {
                            // Requests keep a session alive; interleaved
                            // data alone (RTCP over TCP) only once playing.
                            expiry.as_mut().reset(tokio::time::Instant::now() + timeout);
                            let (resp, close) = self.handle(&mut conn, &req, peer).await;
                            self.write_all(&mut wr, &resp).await?;
                            if close {
                                return Ok(());
                            }
                        }
                    }
                    Err(e) => {
                        let resp = message::response(400, "Bad Request", None, &[], e.0.as_bytes());
                        let _ = self.write_all(&mut wr, &resp).await;
                        return Ok(());
                    }
                }
            }
            // The watch may have begun with a request just handled.
            if revoked.is_none()
                && let Some(w) = &conn.watch
            {
                revoked = Some(Box::pin(w.cancel.clone().cancelled_owned()));
            }
            // A session playing over TCP lives as long as its connection
            // (the write timeout and the fan-out's lag limit end a dead
            // one); any other ends when its client stays silent.
            let timed = !conn.playing || conn.tracks.iter().any(|t| t.udp.is_some());
            if conn.playing {
                let sub = conn.sub.as_mut().expect("playing has a subscriber");
                tokio::select! {
                    _ = async { if let Some(r) = revoked.as_mut() { r.await } }, if revoked.is_some() => {
                        tracing::info!(%peer, "RTSP viewer's credential revoked: disconnected");
                        return Ok(());
                    }
                    _ = &mut expiry, if timed => {
                        // Over UDP the client's RTCP reports count as
                        // signs of life too; they wait in our sockets.
                        if !rtcp_heard(&conn.rtcp, peer) {
                            tracing::debug!(%peer, "RTSP session timed out");
                            return Ok(());
                        }
                        expiry.as_mut().reset(tokio::time::Instant::now() + timeout);
                    }
                    d = sub.recv() => {
                        let Some(d) = d else {
                            tracing::debug!(%peer, "RTSP viewer dropped by the fan-out");
                            return Ok(());
                        };
                        let frame = &d.frame;
                        let Some(out) = conn.tracks.iter_mut().find(|t| t.index == frame.track) else {
                            continue;
                        };
                        let pieces = rtp::packetize(out.codec, frame);
                        let ts = out.ts_base.wrapping_add(frame.pts as u32);
                        let mut heads: Vec<[u8; 16]> = Vec::with_capacity(pieces.len());
                        for p in &pieces {
                            let len = 12 + p.prefix.len as usize + p.payload.len();
                            let mut h = [0u8; 16];
                            h[0] = b'$';
                            h[1] = out.channel;
                            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                            h[4..16].copy_from_slice(&rtp::header(out.pt, p.marker, out.seq, ts, out.ssrc));
                            out.seq = out.seq.wrapping_add(1);
                            heads.push(h);
                        }
                        if let Some((sock, to)) = &out.udp {
                            // One datagram per packet: RTP header, prefix
                            // and the shared payload, gathered by the kernel.
                            for (h, p) in heads.iter().zip(&pieces) {
                                let parts = [
                                    IoSlice::new(&h[4..]),
                                    IoSlice::new(p.prefix.as_slice()),
                                    IoSlice::new(&p.payload),
                                ];
                                let n = send_udp(sock, *to, &parts).await?;
                                self.counters.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                                if let Some(t) = &conn.ticket {
                                    t.sent(n);
                                }
                            }
                        } else {
                            let mut slices = Vec::with_capacity(pieces.len() * 3);
                            for (h, p) in heads.iter().zip(&pieces) {
                                slices.push(IoSlice::new(h));
                                if p.prefix.len > 0 {
                                    slices.push(IoSlice::new(p.prefix.as_slice()));
                                }
                                slices.push(IoSlice::new(&p.payload));
                            }
                            let n = self.write_vectored_all(&mut wr, &mut slices).await?;
                            if let Some(t) = &conn.ticket {
                                t.sent(n);
                            }
                        }
                        if let Some(t) = play_started.take() {
                            self.counters.first_frame.observe(t.elapsed().as_secs_f64());
                        }
                        self.counters.delivered(&d, since);
                    }
                    n = read_more(&mut rd, &mut buf) => {
                        if n? == 0 {
                            return Ok(());
                        }
                    }
                }
            } else {
                tokio::select! {
                    _ = &mut expiry => {
                        tracing::debug!(%peer, "RTSP connection timed out before playing");
                        return Ok(());
                    }
                    _ = &mut auth_deadline, if self.gate.is_some() && conn.principal.is_none() => {
                        tracing::debug!(%peer, "RTSP client did not authenticate in time: disconnected");
                        return Ok(());
                    }
                    _ = async { if let Some(r) = revoked.as_mut() { r.await } }, if revoked.is_some() => {
                        tracing::info!(%peer, "RTSP client's credential revoked: disconnected");
                        return Ok(());
                    }
                    n = read_more(&mut rd, &mut buf) => {
                        if n? == 0 {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    async fn write_all<W: AsyncWrite + Unpin>(&self, w: &mut W, b: &[u8]) -> std::io::Result<()> {
        tokio::time::timeout(self.opts.write_timeout, w.write_all(b))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))??;
        self.counters
            .bytes_out
            .fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Writes every slice, each write bounded by the write timeout: the
    /// bytes written.
    async fn write_vectored_all<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        mut slices: &mut [IoSlice<'_>],
    ) -> std::io::Result<usize> {
        let mut total = 0;
        while !slices.is_empty() {
            let n = tokio::time::timeout(self.opts.write_timeout, w.write_vectored(slices))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "viewer stopped reading")
                })??;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.counters
                .bytes_out
                .fetch_add(n as u64, Ordering::Relaxed);
            total += n;
            IoSlice::advance_slices(&mut slices, n);
        }
        Ok(total)
    }

    /// Answers one request: the response bytes, and whether to close.
    async fn handle(&self, conn: &mut Conn, req: &Request, peer: SocketAddr) -> (Vec<u8>, bool) {
        let cseq = req.cseq();
        let simple = |status: u16, reason: &str| message::response(status, reason, cseq, &[], &[]);
        // Every request but OPTIONS and TEARDOWN is authorised anew: a
        // credential revoked meanwhile answers no further request.
        if !matches!(req.method.as_str(), "OPTIONS" | "TEARDOWN")
            && let Err(refusal) = self.authorize(conn, req, peer).await
        {
            return refusal;
        }
        match req.method.as_str() {
            "OPTIONS" => (
                message::response(200, "OK", cseq, &[("Public", PUBLIC.into())], &[]),
                false,
            ),
            "DESCRIBE" => {
                let Some((id, None)) = message::camera_path(&req.uri) else {
                    return (simple(404, "Not Found"), false);
                };
                if !self.may_see(conn, &id) {
                    return (simple(404, "Not Found"), false);
                }
                let info = match self.open(conn, &id).await {
                    Ok(info) => info,
                    Err((status, reason)) => return (simple(status, reason), false),
                };
                let name = self.streams.name(&id).unwrap_or_default();
                let Some((body, _)) = sdp::session(&info, conn.session_id(), &name) else {
                    return (simple(415, "Unsupported Media Type"), false);
                };
                let base = format!(
                    "{}/",
                    req.uri
                        .split('?')
                        .next()
                        .unwrap_or("")
                        .trim_end_matches('/')
                );
                let headers = [
                    ("Content-Type", "application/sdp".to_string()),
                    ("Content-Base", base),
                ];
                (
                    message::response(200, "OK", cseq, &headers, body.as_bytes()),
                    false,
                )
            }
            "SETUP" => {
                let Some((id, track)) = message::camera_path(&req.uri) else {
                    return (simple(404, "Not Found"), false);
                };
                if !self.may_see(conn, &id) {
                    return (simple(404, "Not Found"), false);
                }
                if conn.playing {
                    return (simple(455, "Method Not Valid in This State"), false);
                }
                let info = match self.open(conn, &id).await {
                    Ok(info) => info,
                    Err((status, reason)) => return (simple(status, reason), false),
                };
                let Some((_, described)) = sdp::session(&info, 0, "") else {
                    return (simple(415, "Unsupported Media Type"), false);
                };
                let index = match track {
                    Some(t) => t,
                    None if described.len() == 1 => described[0],
                    None => return (simple(459, "Aggregate Operation Not Allowed"), false),
                };
                if !described.contains(&index) {
                    return (simple(404, "Not Found"), false);
                }
                let Some(t) = req.header("transport").and_then(message::parse_transport) else {
                    return (simple(461, "Unsupported Transport"), false);
                };
                if t.multicast || (!t.tcp && t.client_port.is_none()) {
                    return (simple(461, "Unsupported Transport"), false);
                }
                // UDP unicast: a socket pair of ours per track, sending to
                // the client's ports at the address its RTSP connection
                // comes from (never to a third party named in the header).
                let udp = match (t.tcp, t.client_port) {
                    (false, Some((rtp_port, _))) => match udp_pair().await {
                        Ok((rtp, rtcp)) => Some((rtp, rtcp, SocketAddr::new(peer.ip(), rtp_port))),
                        Err(e) => {
                            tracing::warn!(error = %e, "no UDP ports for an RTSP viewer");
                            return (simple(461, "Unsupported Transport"), false);
                        }
                    },
                    _ => None,
                };
                let channel = t.interleaved.map_or(index * 2, |(a, _)| a);
                if let Some(session) = req.header("session") {
                    let sid = session.split(';').next().unwrap_or("").trim();
                    if conn.session.as_deref().is_some_and(|s| s != sid) {
                        return (simple(454, "Session Not Found"), false);
                    }
                }
                let tr = &info.tracks[index as usize];
                let out = TrackOut {
                    index,
                    channel,
                    udp: udp.as_ref().map(|(rtp, _, to)| (rtp.clone(), *to)),
                    codec: tr.codec,
                    pt: sdp::payload_type(tr),
                    seq: fastrand::u16(..),
                    ssrc: fastrand::u32(..),
                    ts_base: fastrand::u32(..),
                };
                let transport = match (&udp, t.client_port) {
                    (Some((rtp, rtcp, _)), Some((a, b))) => format!(
                        "RTP/AVP;unicast;client_port={a}-{b};server_port={}-{};ssrc={:08X};mode=\"PLAY\"",
                        rtp.local_addr().map_or(0, |x| x.port()),
                        rtcp.local_addr().map_or(0, |x| x.port()),
                        out.ssrc
                    ),
                    _ => format!(
                        "RTP/AVP/TCP;unicast;interleaved={channel}-{};ssrc={:08X};mode=\"PLAY\"",
                        channel.wrapping_add(1),
                        out.ssrc
                    ),
                };
                if let Some((_, rtcp, _)) = udp {
                    conn.rtcp.push(rtcp);
                }
                conn.tracks.retain(|o| o.index != index);
                conn.tracks.push(out);
                let session = conn
                    .session
                    .get_or_insert_with(|| format!("{:016X}", fastrand::u64(..)))
                    .clone();
                let headers = [
                    ("Transport", transport),
                    (
                        "Session",
                        format!("{session};timeout={}", self.opts.session_timeout.as_secs()),
                    ),
                ];
                (message::response(200, "OK", cseq, &headers, &[]), false)
            }
            "PLAY" => {
                if conn.tracks.is_empty() || conn.session.is_none() {
                    return (simple(455, "Method Not Valid in This State"), false);
                }
                if !session_matches(conn, req) {
                    return (simple(454, "Session Not Found"), false);
                }
                let base = req
                    .uri
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_string();
                let rtp_info: Vec<String> = conn
                    .tracks
                    .iter()
                    .map(|t| format!("url={base}/trackID={};seq={}", t.index, t.seq))
                    .collect();
                let headers = [
                    ("Range", "npt=0.000-".to_string()),
                    ("Session", conn.session.clone().unwrap_or_default()),
                    ("RTP-Info", rtp_info.join(",")),
                ];
                if !conn.playing {
                    if let (Some(gate), Some(p), Some(camera)) =
                        (&self.gate, &conn.principal, &conn.camera)
                    {
                        match gate.open_view(p, camera, "rtsp", Some(peer.ip())).await {
                            Ok(t) => conn.ticket = Some(t),
                            Err(Denied::TooMany { who, limit }) => {
                                tracing::info!(%peer, principal = %who, limit, "RTSP stream refused: too many open");
                                return (simple(453, "Not Enough Bandwidth"), false);
                            }
                            Err(Denied::Store(e)) => {
                                tracing::warn!(error = %e, "could not audit an RTSP view; refused");
                                return (simple(503, "Service Unavailable"), false);
                            }
                        }
                    }
                    conn.playing = true;
                    tracing::debug!(%peer, camera = conn.camera.as_deref().unwrap_or(""), "RTSP play");
                }
                (message::response(200, "OK", cseq, &headers, &[]), false)
            }
            "TEARDOWN" => (simple(200, "OK"), true),
            "GET_PARAMETER" | "SET_PARAMETER" => {
                if req.header("session").is_some() && !session_matches(conn, req) {
                    return (simple(454, "Session Not Found"), false);
                }
                (simple(200, "OK"), false)
            }
            "PAUSE" | "RECORD" | "ANNOUNCE" => (simple(405, "Method Not Allowed"), false),
            _ => (simple(501, "Not Implemented"), false),
        }
    }

    /// With a gate: the connection's principal, from this request's
    /// `Authorization` header or `?token=` when it carries one, else the
    /// one found earlier on this connection, checked again (revoked,
    /// expired, disabled). The error is the answer (a 401 challenge) and
    /// whether to close: a credential that stopped being valid ends the
    /// connection.
    async fn authorize(
        &self,
        conn: &mut Conn,
        req: &Request,
        peer: SocketAddr,
    ) -> Result<(), (Vec<u8>, bool)> {
        let Some(gate) = &self.gate else {
            return Ok(());
        };
        if conn.salt.is_empty() {
            conn.salt = crate::auth::token::random(9);
        }
        let header = req.header("authorization").and_then(digest::parse);
        let token = url_token(&req.uri);
        let cred = match (&header, &token) {
            (Some(Authorization::Basic { user, pass }), _) => {
                Some(Credential::Basic { user, pass })
            }
            (Some(Authorization::Digest(d)), _) => {
                // A Digest answer covers one request URI: a captured header
                // is no key to other cameras.
                if !digest::uri_matches(&d.uri, &req.uri) {
                    tracing::info!(%peer, "RTSP Digest answer for another URI refused");
                    return Err((self.challenge(gate, conn, req), false));
                }
                Some(Credential::Digest {
                    auth: d,
                    method: &req.method,
                    salt: &conn.salt,
                })
            }
            (None, Some(t)) => Some(Credential::Token(t)),
            (None, None) => None,
        };
        let found = match (cred, &conn.principal) {
            (Some(c), _) => gate.resolve(c).await,
            (None, Some(p)) => match gate.still_valid(p).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    tracing::info!(%peer, principal = %p.label(), "RTSP credential no longer valid: disconnected");
                    return Err((self.challenge(gate, conn, req), true));
                }
                Err(e) => Err(e),
            },
            (None, None) => Ok(None),
        };
        match found {
            Ok(Some(p)) => {
                if conn.principal.as_ref().is_none_or(|q| q.kind != p.kind) {
                    conn.watch = Some(gate.watch(&p));
                }
                conn.principal = Some(p);
                Ok(())
            }
            Ok(None) => {
                if header.is_some() || token.is_some() {
                    tracing::info!(%peer, "RTSP credentials refused");
                }
                // Credentials that fail after others succeeded on this
                // connection end it.
                let close = conn.principal.is_some();
                Err((self.challenge(gate, conn, req), close))
            }
            Err(e) => {
                tracing::warn!(error = %e, "RTSP authentication failed on the database");
                Err((
                    message::response(503, "Service Unavailable", req.cseq(), &[], &[]),
                    false,
                ))
            }
        }
    }

    /// A 401 with Digest (a nonce bound to this connection) and Basic.
    fn challenge(&self, gate: &Gate, conn: &Conn, req: &Request) -> Vec<u8> {
        let [d, b] = gate.challenge(&conn.salt);
        let headers = [("WWW-Authenticate", d), ("WWW-Authenticate", b)];
        message::response(401, "Unauthorized", req.cseq(), &headers, &[])
    }

    /// Whether the connection's principal may see camera `id` (always,
    /// without a gate).
    fn may_see(&self, conn: &Conn, id: &str) -> bool {
        if self.gate.is_none() {
            return true;
        }
        match (&conn.principal, self.streams.district(id)) {
            (Some(p), Some(d)) => p.may_see(id, &d),
            _ => false,
        }
    }

    /// Subscribes this connection to camera `id` (once) and waits for the
    /// stream's track parameters.
    async fn open(
        &self,
        conn: &mut Conn,
        id: &str,
    ) -> Result<Arc<StreamInfo>, (u16, &'static str)> {
        if conn.camera.as_deref().is_some_and(|c| c != id) {
            return Err((459, "Aggregate Operation Not Allowed"));
        }
        if conn.sub.is_none() {
            if self.streams.name(id).is_none() {
                return Err((404, "Not Found"));
            }
            let sub = self.streams.subscribe(id).ok_or((404, "Not Found"))?;
            self.counters.count_drops_of(&sub);
            conn.sub = Some(sub);
            conn.camera = Some(id.to_string());
        }
        let sub = conn.sub.as_ref().expect("subscribed");
        sub.video_info(self.opts.open_timeout)
            .await
            .ok_or((503, "Service Unavailable"))
    }
}

/// Two UDP sockets (any address, free ports) for one track's RTP and RTCP.
async fn udp_pair() -> std::io::Result<(Arc<UdpSocket>, Arc<UdpSocket>)> {
    let rtp = UdpSocket::bind("0.0.0.0:0").await?;
    let rtcp = UdpSocket::bind("0.0.0.0:0").await?;
    Ok((Arc::new(rtp), Arc::new(rtcp)))
}

/// Sends one datagram gathered from `parts`. A datagram the kernel cannot
/// take now waits for the socket; an error (the client's port closed) ends
/// the viewer.
async fn send_udp(
    sock: &UdpSocket,
    to: SocketAddr,
    parts: &[IoSlice<'_>],
) -> std::io::Result<usize> {
    loop {
        sock.writable().await?;
        match sock.try_io(tokio::io::Interest::WRITABLE, || {
            socket2::SockRef::from(sock).send_to_vectored(parts, &to.into())
        }) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

/// Whether an RTCP packet (a receiver report: the client is alive) from
/// the viewer's address waits on any of its tracks' RTCP sockets; drains
/// them. Checked when the session would expire, not per frame.
fn rtcp_heard(socks: &[Arc<UdpSocket>], peer: SocketAddr) -> bool {
    let mut heard = false;
    let mut b = [0u8; 1500];
    for s in socks {
        while let Ok((_, from)) = s.try_recv_from(&mut b) {
            heard |= from.ip() == peer.ip();
        }
    }
    heard
}

fn session_matches(conn: &Conn, req: &Request) -> bool {
    let sid = req
        .header("session")
        .map(|s| s.split(';').next().unwrap_or("").trim());
    sid.is_some() && sid == conn.session.as_deref()
}

async fn read_more<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    if buf.len() > message::MAX_HEAD_BYTES + message::MAX_BODY_BYTES + 65_536 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "client sent too much",
        ));
    }
    buf.reserve(4096);
    rd.read_buf(buf).await
}

/// The `token` query parameter of an RTSP URL, if any.
fn url_token(uri: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// A connection's state.
#[derive(Default)]
struct Conn {
    /// Who authenticated on this connection (with a gate).
    principal: Option<Principal>,
    /// Fires when that principal's credential is revoked.
    watch: Option<crate::auth::gate::Watch>,
    /// Binds this connection's Digest nonces to it.
    salt: String,
    /// The audited view, once playing.
    ticket: Option<ViewTicket>,
    camera: Option<String>,
    sub: Option<Subscriber>,
    session: Option<String>,
    session_num: u64,
    tracks: Vec<TrackOut>,
    /// Our RTCP sockets for UDP tracks, held open for the session.
    rtcp: Vec<Arc<UdpSocket>>,
    playing: bool,
}

impl Conn {
    fn session_id(&mut self) -> u64 {
        if self.session_num == 0 {
            self.session_num = fastrand::u64(1..u64::MAX / 2);
        }
        self.session_num
    }
}

/// One set-up track of a viewer.
#[derive(Debug, Clone)]
struct TrackOut {
    index: u8,
    channel: u8,
    /// UDP unicast: our RTP socket and the client's RTP address.
    udp: Option<(Arc<UdpSocket>, SocketAddr)>,
    codec: Codec,
    pt: u8,
    seq: u16,
    ssrc: u32,
    ts_base: u32,
}
