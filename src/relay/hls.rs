//! LL-HLS with fMP4/CMAF: `GET /hls/{camera_id}/index.m3u8`.
//!
//! One muxer per camera (not per viewer) subscribes to the camera's fan-out
//! while anyone reads its playlist or media, and cuts:
//! - segments at key frames (so each starts decodable),
//! - parts of about [`PART_TARGET`] inside them, each one `moof`+`mdat`;
//!   a segment's bytes are its parts' bytes.
//!
//! The playlist (pure: [`playlist`]) lists the last segments with their
//! parts, a preload hint for the next part, and supports blocking reload
//! (`_HLS_msn`, `_HLS_part`). A request for a part or segment not yet
//! finished waits for it. The muxer stops `relay.hls_idle_secs` after the last
//! request, which lets an `on_demand` camera idle out.
//!
//! Every request needs a principal that may see the camera (session
//! cookie, API key, or `?token=`, which the playlist then carries on to
//! every URI it lists). A client's requests make one audited view, which a
//! revoked credential ends: its requests, waiting ones too, answer 401.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::watch;

use super::fmp4::{self, Sample};
use crate::api::auth::{TokenQuery, stream_camera, stream_principal, view_denied};
use crate::api::extract::ClientAddr;
use crate::api::{ApiError, AppState};
use crate::fanout::Subscriber;
use axum::http::HeaderMap;

/// Target duration of a part, seconds.
pub const PART_TARGET: f64 = 0.2;
/// Segments kept in the playlist.
const SEGMENTS_KEPT: usize = 6;
/// A muxer nobody has asked for anything for this long stops.
/// How long a blocking request waits.
const BLOCK_LIMIT: Duration = Duration::from_secs(6);

/// A finished part.
#[derive(Debug, Clone)]
pub struct Part {
    pub duration: f64,
    pub independent: bool,
    pub data: Bytes,
}

/// A segment: finished parts, and whether the segment itself is finished.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    pub msn: u64,
    pub parts: Vec<Part>,
    pub complete: bool,
}

impl Segment {
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
}

/// The media playlist for `segments` (oldest first; the last one may be
/// incomplete).
pub fn playlist(segments: &VecDeque<Segment>) -> String {
    playlist_with(segments, "")
}

/// [`playlist`] with `query` (`?token=...`, or empty) after every URI.
pub fn playlist_with(segments: &VecDeque<Segment>, query: &str) -> String {
    let target = segments
        .iter()
        .filter(|s| s.complete)
        .map(Segment::duration)
        .fold(1.0f64, f64::max)
        .ceil() as u64;
    let first = segments.front().map_or(0, |s| s.msn);
    let mut p = String::new();
    let _ = write!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n\
         #EXT-X-PART-INF:PART-TARGET={PART_TARGET:.3}\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
         #EXT-X-MAP:URI=\"init.mp4{query}\"\n",
        PART_TARGET * 3.0
    );
    for s in segments {
        for (i, part) in s.parts.iter().enumerate() {
            let _ = writeln!(
                p,
                "#EXT-X-PART:DURATION={:.3},URI=\"part/{}.{i}.m4s{query}\"{}",
                part.duration,
                s.msn,
                if part.independent {
                    ",INDEPENDENT=YES"
                } else {
                    ""
                }
            );
        }
        if s.complete {
            let _ = write!(
                p,
                "#EXTINF:{:.3},\nseg/{}.m4s{query}\n",
                s.duration(),
                s.msn
            );
        }
    }
    if let Some(last) = segments.back() {
        let (msn, part) = if last.complete {
            (last.msn + 1, 0)
        } else {
            (last.msn, last.parts.len())
        };
        let _ = writeln!(
            p,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/{msn}.{part}.m4s{query}\""
        );
    }
    p
}

/// What the muxer has produced so far.
#[derive(Default)]
struct Media {
    init: Option<Bytes>,
    segments: VecDeque<Segment>,
}

impl Media {
    /// Whether part `part` of segment `msn` exists (or the segment is
    /// complete and `part` is past its end, meaning the next segment).
    fn has_part(&self, msn: u64, part: usize) -> bool {
        self.segments.iter().any(|s| {
            (s.msn == msn && (s.parts.len() > part || (s.complete && part >= s.parts.len())))
                || s.msn > msn
        })
    }
}

/// One camera's muxer.
struct Muxer {
    media: watch::Sender<Arc<Media>>,
    last_request: Mutex<Instant>,
    /// It stops this long after the last request (`relay.hls_idle_secs`).
    idle: Duration,
}

fn muxers() -> &'static Mutex<HashMap<String, Arc<Muxer>>> {
    static M: OnceLock<Mutex<HashMap<String, Arc<Muxer>>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// The camera's muxer, started on first use.
fn muxer(st: &AppState, id: &str) -> Option<Arc<Muxer>> {
    let mut all = muxers().lock().unwrap();
    if let Some(m) = all.get(id) {
        *m.last_request.lock().unwrap() = Instant::now();
        return Some(m.clone());
    }
    let sub = st.pulls.subscribe(id)?;
    let m = Arc::new(Muxer {
        media: watch::channel(Arc::new(Media::default())).0,
        last_request: Mutex::new(Instant::now()),
        idle: Duration::from_secs(st.config.relay.hls_idle_secs),
    });
    all.insert(id.to_string(), m.clone());
    let (id, mm, counters) = (id.to_string(), m.clone(), st.hls.clone());
    tokio::spawn(async move {
        counters.count_drops_of(&sub);
        run(&mm, sub).await;
        let mut all = muxers().lock().unwrap();
        if all.get(&id).is_some_and(|x| Arc::ptr_eq(x, &mm)) {
            all.remove(&id);
        }
    });
    Some(m)
}

/// Cuts the camera's frames into parts and segments until idle.
async fn run(m: &Muxer, mut sub: Subscriber) {
    let mut media = Media::default();
    let mut pending: Vec<(i64, bool, Bytes)> = Vec::new();
    let mut first_pts: Option<i64> = None;
    let mut sequence = 0u32;
    let mut last_duration = 3600i64;
    let mut video_track = None;
    // One timer for the whole run: a sleep made anew in each pass of the
    // select would be reset by every frame and never fire while the camera
    // streams, keeping the muxer (and an on-demand pull) alive for ever.
    let mut idle_check = tokio::time::interval(Duration::from_secs(1));
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let d = tokio::select! {
            biased;
            _ = idle_check.tick() => {
                if m.last_request.lock().unwrap().elapsed() > m.idle {
                    return;
                }
                continue;
            }
            d = sub.recv() => d,
        };
        let Some(d) = d else { return };
        if media.init.is_none() {
            let Some(info) = sub.info() else { continue };
            let Ok((init, _)) = fmp4::init_segment(&info) else {
                continue;
            };
            media.init = Some(init);
            video_track = info
                .tracks
                .iter()
                .position(|t| t.codec.is_video())
                .map(|i| i as u8);
        }
        let f = &d.frame;
        if Some(f.track) != video_track {
            continue;
        }
        if d.skipped > 0 || (media.segments.is_empty() && pending.is_empty() && !f.is_key) {
            // Behind or not yet started: wait for a key frame, start afresh.
            if !f.is_key {
                continue;
            }
            pending.clear();
        }
        let first = *first_pts.get_or_insert(f.pts);
        // Flush the pending part when this frame starts a segment or the
        // part is long enough.
        let pending_secs = pending
            .first()
            .map_or(0.0, |(t, ..)| (f.pts - t) as f64 / 90_000.0);
        if !pending.is_empty() && (f.is_key || pending_secs >= PART_TARGET) {
            let durations: Vec<i64> = pending
                .windows(2)
                .map(|w| w[1].0 - w[0].0)
                .chain(std::iter::once(f.pts - pending.last().unwrap().0))
                .map(|d| {
                    if d > 0 && d < 90_000 * 5 {
                        d
                    } else {
                        last_duration
                    }
                })
                .collect();
            last_duration = *durations.last().unwrap();
            let samples: Vec<Sample> = pending
                .iter()
                .zip(&durations)
                .map(|((_, key, data), dur)| Sample {
                    duration: *dur as u32,
                    is_key: *key,
                    data: data.clone(),
                })
                .collect();
            sequence = sequence.wrapping_add(1);
            let base = (pending[0].0 - first).max(0) as u64;
            let part = Part {
                duration: durations.iter().sum::<i64>() as f64 / 90_000.0,
                independent: pending[0].1,
                data: fmp4::fragment(sequence, base, &samples),
            };
            pending.clear();
            if part.independent || media.segments.is_empty() {
                if let Some(last) = media.segments.back_mut() {
                    last.complete = true;
                }
                let msn = media.segments.back().map_or(0, |s| s.msn + 1);
                media.segments.push_back(Segment {
                    msn,
                    parts: Vec::new(),
                    complete: false,
                });
                while media.segments.len() > SEGMENTS_KEPT + 1 {
                    media.segments.pop_front();
                }
            }
            media
                .segments
                .back_mut()
                .expect("a segment")
                .parts
                .push(part);
            m.media.send_replace(Arc::new(Media {
                init: media.init.clone(),
                segments: media.segments.clone(),
            }));
        }
        pending.push((f.pts, f.is_key, f.data.clone()));
    }
}

/// Waits until `ready` holds for the muxer's media, up to the block limit.
async fn wait_for(m: &Muxer, ready: impl Fn(&Media) -> bool) -> Option<Arc<Media>> {
    let mut rx = m.media.subscribe();
    let deadline = tokio::time::Instant::now() + BLOCK_LIMIT;
    loop {
        let media = rx.borrow_and_update().clone();
        if ready(&media) {
            return Some(media);
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return None;
        }
    }
}

fn not_found(id: &str) -> Response {
    ApiError::camera_not_found(id).into_response()
}

fn unavailable(what: &str) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "stream_unavailable",
        format!("{what} is not available yet; retry"),
    )
    .into_response()
}

/// A media response, counted in the LL-HLS bytes sent and the view's.
fn body(st: &AppState, v: &View, content_type: &'static str, b: impl Into<Bytes>) -> Response {
    let b: Bytes = b.into();
    st.hls
        .bytes_out
        .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
    v.bytes
        .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        b,
    )
        .into_response()
}

/// A client's audited view: fires when its credential is revoked; counts
/// the bytes sent.
struct View {
    revoked: tokio_util::sync::CancellationToken,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

/// Checks the request's principal and the camera, and notes the client as
/// one of its viewers: the camera's muxer and the client's view.
async fn started(
    st: &AppState,
    id: &str,
    client: ClientAddr,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(Arc<Muxer>, View), Response> {
    let p = stream_principal(st, headers, token).await?;
    stream_camera(st, &p, id).map_err(IntoResponse::into_response)?;
    let ip = client.0.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let (revoked, bytes) = st.gate.hls_view(&p, id, ip).await.map_err(view_denied)?;
    let m = muxer(st, id).ok_or_else(|| not_found(id))?;
    st.hls.touch(id, ip);
    Ok((m, View { revoked, bytes }))
}

/// [`wait_for`], cut short (401) when the view's credential is revoked.
async fn wait_or_revoked(
    m: &Muxer,
    v: &View,
    ready: impl Fn(&Media) -> bool,
) -> Result<Option<Arc<Media>>, Response> {
    tokio::select! {
        media = wait_for(m, ready) => Ok(media),
        _ = v.revoked.cancelled() => Err(revoked()),
    }
}

fn revoked() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the credential of this stream was revoked or has expired",
    )
    .into_response()
}

/// Blocking-reload query, and the token the playlist hands on.
#[derive(Debug, serde::Deserialize)]
pub struct Reload {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<usize>,
    token: Option<String>,
}

/// `GET /hls/{id}/index.m3u8`.
pub async fn index(
    State(st): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<Reload>,
) -> Response {
    let token = q.token.as_deref().filter(|t| !t.is_empty());
    let (m, v) = match started(&st, &id, client, &headers, token).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let media = match q.msn {
        Some(msn) => {
            let part = q.part.unwrap_or(0);
            wait_or_revoked(&m, &v, |md| md.has_part(msn, part)).await
        }
        // Without a blocking request: once a first segment is complete.
        None => wait_or_revoked(&m, &v, |md| md.segments.iter().any(|s| s.complete)).await,
    };
    let query = token.map_or_else(String::new, |t| {
        format!(
            "?token={}",
            url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        )
    });
    match media {
        Ok(Some(md)) => body(
            &st,
            &v,
            "application/vnd.apple.mpegurl",
            playlist_with(&md.segments, &query),
        ),
        Ok(None) => unavailable("the playlist"),
        Err(r) => r,
    }
}

/// `GET /hls/{id}/init.mp4`.
pub async fn init(
    State(st): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let (m, v) = match started(&st, &id, client, &headers, q.token.as_deref()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match wait_or_revoked(&m, &v, |md| md.init.is_some()).await {
        Ok(Some(md)) => body(&st, &v, "video/mp4", md.init.clone().unwrap_or_default()),
        Ok(None) => unavailable("the init segment"),
        Err(r) => r,
    }
}

/// `GET /hls/{id}/seg/{msn}.m4s`.
pub async fn segment(
    State(st): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(msn) = name
        .strip_suffix(".m4s")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return not_found(&id);
    };
    let (m, v) = match started(&st, &id, client, &headers, q.token.as_deref()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let ready = |md: &Media| md.segments.iter().any(|s| s.msn == msn && s.complete);
    match wait_or_revoked(&m, &v, ready).await {
        Ok(Some(md)) => {
            let s = md.segments.iter().find(|s| s.msn == msn).expect("ready");
            let mut out = Vec::with_capacity(s.parts.iter().map(|p| p.data.len()).sum());
            for p in &s.parts {
                out.extend_from_slice(&p.data);
            }
            body(&st, &v, "video/iso.segment", out)
        }
        Ok(None) => not_found(&id),
        Err(r) => r,
    }
}

/// `GET /hls/{id}/part/{msn}.{part}.m4s`.
pub async fn part(
    State(st): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let parsed = name.strip_suffix(".m4s").and_then(|n| {
        let (a, b) = n.split_once('.')?;
        Some((a.parse::<u64>().ok()?, b.parse::<usize>().ok()?))
    });
    let Some((msn, index)) = parsed else {
        return not_found(&id);
    };
    let (m, v) = match started(&st, &id, client, &headers, q.token.as_deref()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match wait_or_revoked(&m, &v, |md| md.has_part(msn, index)).await {
        Ok(Some(md)) => match md
            .segments
            .iter()
            .find(|s| s.msn == msn)
            .and_then(|s| s.parts.get(index))
        {
            Some(p) => body(&st, &v, "video/iso.segment", p.data.clone()),
            None => not_found(&id),
        },
        Ok(None) => not_found(&id),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(d: f64, independent: bool) -> Part {
        Part {
            duration: d,
            independent,
            data: Bytes::new(),
        }
    }

    #[test]
    fn playlist_lists_parts_segments_and_a_preload_hint() {
        let mut segs = VecDeque::new();
        segs.push_back(Segment {
            msn: 7,
            parts: vec![part(0.2, true), part(0.2, false)],
            complete: true,
        });
        segs.push_back(Segment {
            msn: 8,
            parts: vec![part(0.2, true)],
            complete: false,
        });
        let p = playlist(&segs);
        assert!(
            p.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n"),
            "{p}"
        );
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:7\n"));
        assert!(
            p.contains("#EXT-X-PART:DURATION=0.200,URI=\"part/7.0.m4s\",INDEPENDENT=YES\n"),
            "{p}"
        );
        assert!(p.contains("#EXTINF:0.400,\nseg/7.m4s\n"), "{p}");
        assert!(
            !p.contains("seg/8.m4s"),
            "the open segment is not listed whole"
        );
        assert!(
            p.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/8.1.m4s\"\n"),
            "{p}"
        );
        let media = Media {
            init: None,
            segments: segs,
        };
        assert!(media.has_part(8, 0) && !media.has_part(8, 1) && media.has_part(7, 2));
    }
}
