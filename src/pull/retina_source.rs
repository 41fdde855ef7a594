//! The production [`PullSource`]: RTSP via retina, TCP interleaved by
//! default, UDP when the camera is configured so. Picks the first H.264 or
//! H.265 video stream and, when present, the first AAC or G.711 audio
//! stream; anything else the camera offers is not set up.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, ParametersRef};

use super::{PullError, PullSource, PullStream, PullTarget, Pulled, scrub};
use crate::catalogue::Transport;
use crate::health::Reason;
use crate::media::{Codec, Frame, StreamInfo, Track};

/// Opens camera streams with retina.
#[derive(Debug, Clone, Default)]
pub struct RetinaSource;

const USER_AGENT: &str = concat!("camgate/", env!("CARGO_PKG_VERSION"));

fn codec_of(encoding: &str) -> Option<Codec> {
    match encoding.to_ascii_lowercase().as_str() {
        "h264" => Some(Codec::H264),
        "h265" => Some(Codec::H265),
        "mpeg4-generic" => Some(Codec::Aac),
        "pcmu" => Some(Codec::Pcmu),
        "pcma" => Some(Codec::Pcma),
        _ => None,
    }
}

/// Maps a retina error to an offline reason: RTSP status codes first, then
/// the I/O error underneath, then the message.
pub fn classify(e: &retina::Error, secret: Option<&crate::catalogue::Secret>) -> PullError {
    let message = scrub(&e.to_string(), secret);
    if let Some(status) = e.status_code() {
        let reason = match status {
            401 | 403 => Reason::AuthFailed,
            404 => Reason::NotFound,
            415 => Reason::UnsupportedCodec,
            _ => Reason::ProtocolError,
        };
        return PullError::new(reason, message);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            let reason = match io.kind() {
                ConnectionRefused => Reason::Refused,
                TimedOut => Reason::Timeout,
                HostUnreachable | NetworkUnreachable | AddrNotAvailable | NotFound => {
                    Reason::Unreachable
                }
                _ => Reason::ProtocolError,
            };
            return PullError::new(reason, message);
        }
        source = s.source();
    }
    if message.starts_with("Timeout") {
        return PullError::new(Reason::Timeout, message);
    }
    if message.starts_with("Unable to connect") {
        return PullError::new(Reason::Unreachable, message);
    }
    PullError::new(Reason::ProtocolError, message)
}

fn track_of(codec: Codec, clock_rate: u32, params: Option<ParametersRef<'_>>) -> Track {
    let mut t = Track {
        codec,
        clock_rate,
        rfc6381: None,
        dimensions: None,
        extra_data: Bytes::new(),
    };
    match params {
        Some(ParametersRef::Video(v)) => {
            t.rfc6381 = Some(v.rfc6381_codec().to_string());
            t.dimensions = Some(v.pixel_dimensions());
            t.extra_data = Bytes::copy_from_slice(v.extra_data());
        }
        Some(ParametersRef::Audio(a)) => {
            t.rfc6381 = a.rfc6381_codec().map(str::to_string);
            t.extra_data = Bytes::copy_from_slice(a.extra_data());
        }
        _ => {}
    }
    t
}

#[async_trait]
impl PullSource for RetinaSource {
    /// OPTIONS + DESCRIBE with our own small client: no SETUP, no media.
    async fn probe(&self, target: &PullTarget) -> super::describe::ProbeResult {
        super::describe::probe(target).await
    }

    async fn open(&self, target: &PullTarget) -> Result<Box<dyn PullStream>, PullError> {
        let secret = target.password.as_ref();
        let url = url::Url::parse(&target.url)
            .map_err(|e| PullError::new(Reason::ProtocolError, format!("bad URL: {e}")))?;
        let creds = target.username.as_ref().map(|u| Credentials {
            username: u.clone(),
            password: target
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        });
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(USER_AGENT.to_string());
        let mut session = Session::describe(url, options)
            .await
            .map_err(|e| classify(&e, secret))?;

        // Choose streams: first supported video, first supported audio.
        let mut video = None;
        let mut audio = None;
        for (i, s) in session.streams().iter().enumerate() {
            match codec_of(s.encoding_name()) {
                Some(c) if c.is_video() && s.media() == "video" && video.is_none() => {
                    video = Some((i, c))
                }
                Some(c) if !c.is_video() && s.media() == "audio" && audio.is_none() => {
                    audio = Some((i, c))
                }
                _ => {}
            }
        }
        let Some((vi, vcodec)) = video else {
            let offered: Vec<String> = session
                .streams()
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect();
            return Err(PullError::new(
                Reason::UnsupportedCodec,
                format!(
                    "no H.264 or H.265 video stream (offered: {})",
                    offered.join(", ")
                ),
            ));
        };
        let transport = match target.transport {
            Transport::Udp => retina::client::Transport::Udp(Default::default()),
            _ => retina::client::Transport::Tcp(Default::default()),
        };
        let mut chosen = vec![(vi, vcodec)];
        chosen.extend(audio);
        let mut map = Vec::new(); // retina stream index -> our track index
        let mut info = StreamInfo::default();
        for (track, (i, codec)) in chosen.iter().enumerate() {
            session
                .setup(*i, SetupOptions::default().transport(transport.clone()))
                .await
                .map_err(|e| classify(&e, secret))?;
            let s = &session.streams()[*i];
            info.tracks
                .push(track_of(*codec, s.clock_rate_hz(), s.parameters()));
            map.push((*i, track as u8));
        }
        let playing = session
            .play(PlayOptions::default())
            .await
            .map_err(|e| classify(&e, secret))?;
        let demuxed = playing.demuxed().map_err(|e| classify(&e, secret))?;
        Ok(Box::new(RetinaStream {
            demuxed,
            info,
            map,
            secret: target.password.clone(),
        }))
    }
}

struct RetinaStream {
    demuxed: Demuxed,
    info: StreamInfo,
    map: Vec<(usize, u8)>,
    secret: Option<crate::catalogue::Secret>,
}

impl RetinaStream {
    fn track_of_stream(&self, stream_id: usize) -> Option<u8> {
        self.map
            .iter()
            .find(|(i, _)| *i == stream_id)
            .map(|(_, t)| *t)
    }
}

#[async_trait]
impl PullStream for RetinaStream {
    fn info(&self) -> StreamInfo {
        self.info.clone()
    }

    async fn next(&mut self) -> Result<Option<Pulled>, PullError> {
        loop {
            let item = match self.demuxed.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(classify(&e, self.secret.as_ref())),
                Some(Ok(item)) => item,
            };
            match item {
                CodecItem::VideoFrame(f) => {
                    let Some(track) = self.track_of_stream(f.stream_id()) else {
                        continue;
                    };
                    let new_info = if f.has_new_parameters() {
                        let s = &self.demuxed.streams()[f.stream_id()];
                        let t = &mut self.info.tracks[track as usize];
                        *t = track_of(t.codec, t.clock_rate, s.parameters());
                        Some(self.info.clone())
                    } else {
                        None
                    };
                    let pts = f.timestamp().elapsed();
                    let rap = f.is_random_access_point();
                    let data = Bytes::from(f.into_data());
                    let is_key = rap
                        || (self.info.tracks[track as usize].codec == Codec::H265
                            && crate::media::h265_has_irap(&data));
                    let frame = Frame {
                        track,
                        pts,
                        is_key,
                        data,
                        arrived: std::time::Instant::now(),
                    };
                    return Ok(Some(Pulled { frame, new_info }));
                }
                CodecItem::AudioFrame(f) => {
                    let Some(track) = self.track_of_stream(f.stream_id()) else {
                        continue;
                    };
                    // Audio frames are never key frames: a subscriber
                    // starts at a video key frame and the GOP cache
                    // restarts only there.
                    let frame = Frame {
                        track,
                        pts: f.timestamp().elapsed(),
                        is_key: false,
                        data: Bytes::copy_from_slice(f.data()),
                        arrived: std::time::Instant::now(),
                    };
                    return Ok(Some(Pulled {
                        frame,
                        new_info: None,
                    }));
                }
                _ => continue,
            }
        }
    }
}
