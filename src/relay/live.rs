//! Live fMP4 over WebSocket for Media Source Extensions:
//! `GET /live/{camera_id}` upgrades to a WebSocket that carries
//! - a text message `{"type":"init","codec":"avc1.4d401e","width":..,"height":..}`,
//! - the init segment (binary),
//! - then, per video frame from the GOP cache's key frame on, a binary
//!   fragment head (`moof` + `mdat` header) followed by the frame's data as
//!   its own binary message: the shared frame buffer, never copied per
//!   viewer. MSE's parser takes a box split over two appends.
//!
//! The request needs a principal (session cookie, API key or `?token=`)
//! that may see the camera; the view is audited and ends when its
//! credential is revoked.
//!
//! A viewer that falls behind is skipped to the next key frame and dropped
//! by the fan-out, like every other output; a send that makes no progress
//! for the write timeout ends the connection.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

use super::fmp4::{self, Sample};
use crate::api::auth::{
    TokenQuery, by_cookie, same_or_embed_origin, stream_camera, stream_principal, view_denied,
};
use crate::api::extract::ClientAddr;
use crate::api::{ApiError, AppState};
use crate::auth::gate::ViewTicket;
use crate::fanout::Subscriber;

/// How long a new viewer waits for the camera's stream to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// A send that makes no progress for this long ends the connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The frame duration assumed until two frames have been seen (25 fps).
const DEFAULT_DURATION: u32 = 3600;

/// `GET /live/{id}`.
pub async fn handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    client: ClientAddr,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // Cross-site WebSocket hijacking: a page elsewhere cannot ride the
    // operator's session cookie (links and keys name themselves).
    if by_cookie(&headers, q.token.as_deref()) && !same_or_embed_origin(&st, &headers) {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden_origin",
            "a WebSocket opened with the session cookie must come from the gateway's own pages \
             or an origin in security.embed_origins",
        )
        .into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => return r.into_response(),
    };
    let p = match stream_principal(&st, &headers, q.token.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = stream_camera(&st, &p, &id) {
        return e.into_response();
    }
    // `subscribe` answers None for unknown and disabled cameras alike.
    let Some(sub) = st.pulls.subscribe(&id) else {
        return ApiError::camera_not_found(&id).into_response();
    };
    let ticket = match st.gate.open_view(&p, &id, "ws", client.0).await {
        Ok(t) => t,
        Err(e) => return view_denied(e),
    };
    let counters = st.ws.clone();
    ws.on_upgrade(move |socket| async move {
        let _viewer = counters.join(&id);
        if let Err(e) = stream(socket, sub, &counters, &ticket).await {
            tracing::debug!(camera = %id, error = %e, "live viewer ended");
        }
    })
}

async fn send(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    m: Message,
) -> anyhow::Result<()> {
    tokio::time::timeout(SEND_TIMEOUT, tx.send(m))
        .await
        .map_err(|_| anyhow::anyhow!("viewer stopped reading"))??;
    Ok(())
}

async fn stream(
    socket: WebSocket,
    mut sub: Subscriber,
    counters: &crate::relay::ViewerCounters,
    ticket: &ViewTicket,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let started = std::time::Instant::now();
    counters.count_drops_of(&sub);
    let (mut tx, mut rx) = socket.split();
    let Some(info) = sub.video_info(OPEN_TIMEOUT).await else {
        let _ = send(
            &mut tx,
            Message::Text(r#"{"type":"error","error":"the camera's stream did not open"}"#.into()),
        )
        .await;
        return Ok(());
    };
    let (init, codec) = fmp4::init_segment(&info).map_err(|e| anyhow::anyhow!(e))?;
    let video_track = info
        .tracks
        .iter()
        .position(|t| t.codec.is_video())
        .unwrap_or(0) as u8;
    let (w, h) = info.video().and_then(|v| v.dimensions).unwrap_or((0, 0));
    let hello = serde_json::json!({"type": "init", "codec": codec, "width": w, "height": h});
    send(&mut tx, Message::Text(hello.to_string().into())).await?;
    send(&mut tx, Message::Binary(init)).await?;

    let mut first_pts: Option<i64> = None;
    let mut last_pts: Option<i64> = None;
    let mut duration = DEFAULT_DURATION;
    let mut sequence = 0u32;
    loop {
        tokio::select! {
            d = sub.recv() => {
                let Some(d) = d else { return Ok(()) };
                let f = &d.frame;
                if f.track != video_track {
                    continue;
                }
                // After a skip (or at the start) the stream resumes at a key frame.
                if d.skipped > 0 && !f.is_key {
                    continue;
                }
                let first = *first_pts.get_or_insert(f.pts);
                if let Some(prev) = last_pts {
                    let gap = f.pts - prev;
                    if gap > 0 && gap < 90_000 * 5 {
                        duration = gap as u32;
                    }
                }
                last_pts = Some(f.pts);
                sequence = sequence.wrapping_add(1);
                let sample = Sample { duration, is_key: f.is_key, data: f.data.clone() };
                let head = fmp4::fragment_head(sequence, (f.pts - first).max(0) as u64, std::slice::from_ref(&sample));
                let bytes = head.len() + f.data.len();
                send(&mut tx, Message::Binary(head)).await?;
                send(&mut tx, Message::Binary(f.data.clone())).await?;
                counters.bytes_out.fetch_add(bytes as u64, Relaxed);
                ticket.sent(bytes);
                if sequence == 1 {
                    counters.first_frame.observe(started.elapsed().as_secs_f64());
                }
                counters.delivered(&d, started);
            }
            _ = ticket.cancel.cancelled() => {
                let _ = send(&mut tx, Message::Close(None)).await;
                return Ok(());
            }
            m = rx.next() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// `GET /embed/{id}`: a minimal page for an iframe that plays the camera
/// over the WebSocket path, for a viewer logged in (session cookie) or
/// holding an embed link (`?token=`). The ID is checked before it goes
/// into the page.
pub async fn embed(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return ApiError::camera_not_found(&id).into_response();
    }
    let p = match stream_principal(&st, &headers, q.token.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = stream_camera(&st, &p, &id) {
        return e.into_response();
    }
    let page = include_str!("../web/embed.html").replace("{{CAMERA_ID}}", &id);
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// `GET /embed/{id}/state`: the camera's name and live state for the embed
/// page's label. It answers with the embed page's own access (not the
/// API's), so a page opened through an embed link can show them.
pub async fn embed_state(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let p = match stream_principal(&st, &headers, q.token.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let cfg = match stream_camera(&st, &p, &id) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let state = st
        .pulls
        .runtime(&id)
        .map_or("unknown", |rt| rt.state().as_str());
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "name": cfg.name, "state": state })),
    )
        .into_response()
}

/// `GET /assets/hls.light.min.js`: the vendored hls.js (Apache-2.0, see
/// NOTICE) for the embed page's LL-HLS fallback.
pub async fn hls_js() -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../web/vendor/hls.light.min.js"),
    )
        .into_response()
}
