//! `GET /api/v1/cameras/{id}/snapshot.jpg`: a JPEG decoded from the
//! camera's latest key frame (cargo feature `gstreamer`: h264parse /
//! h265parse, avdec_h264 / avdec_h265 from gstreamer1.0-libav, jpegenc),
//! cached for a moment so a page of thumbnails does not decode the same
//! frame many times. An `on_demand` camera is pulled for it and idles out
//! afterwards. Without the feature the route answers 501 and says how to
//! enable it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::api::{ApiError, AppState};

/// How long a snapshot is served from the cache.
const CACHE_FOR: Duration = Duration::from_secs(2);
/// How long a request waits for a key frame.
const KEY_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

fn cache() -> &'static Mutex<HashMap<String, (Instant, Bytes)>> {
    static CACHE: OnceLock<Mutex<HashMap<String, (Instant, Bytes)>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn jpeg(b: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        b,
    )
        .into_response()
}

/// The handler.
pub async fn handler(
    State(st): State<AppState>,
    caller: crate::api::auth::Caller,
    Path(id): Path<String>,
) -> Response {
    let visible = st
        .pulls
        .config(&id)
        .is_some_and(|c| c.enabled && caller.sees(&c.district_code));
    if !visible {
        return ApiError::camera_not_found(&id).into_response();
    }
    if !cfg!(feature = "gstreamer") {
        return ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "snapshots_unavailable",
            "snapshots need the gstreamer feature: build camgate with `cargo build --release --features gstreamer` \
             (GStreamer development packages and gstreamer1.0-libav installed)",
        )
        .into_response();
    }
    {
        let mut c = cache().lock().unwrap();
        c.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
        if let Some((_, b)) = c.get(&id) {
            return jpeg(b.clone());
        }
    }
    match take(&st, &id).await {
        Ok(b) => {
            cache()
                .lock()
                .unwrap()
                .insert(id, (Instant::now(), b.clone()));
            jpeg(b)
        }
        Err(e) => e.into_response(),
    }
}

/// Waits for a key frame and decodes it.
async fn take(st: &AppState, id: &str) -> Result<Bytes, ApiError> {
    let unavailable =
        |m: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stream_unavailable", m);
    let mut sub = st
        .pulls
        .subscribe(id)
        .ok_or_else(|| ApiError::camera_not_found(id))?;
    let deadline = tokio::time::Instant::now() + KEY_FRAME_TIMEOUT;
    let frame = loop {
        let d = tokio::time::timeout_at(deadline, sub.recv())
            .await
            .map_err(|_| {
                unavailable(format!(
                    "no key frame from camera {id} within {} s",
                    KEY_FRAME_TIMEOUT.as_secs()
                ))
            })?
            .ok_or_else(|| unavailable(format!("camera {id}'s stream ended")))?;
        if d.frame.is_key {
            break d.frame;
        }
    };
    let info = sub
        .info()
        .ok_or_else(|| unavailable(format!("camera {id} has no stream parameters")))?;
    drop(sub);
    let track = info
        .tracks
        .get(frame.track as usize)
        .cloned()
        .ok_or_else(|| unavailable("the key frame's track is unknown".into()))?;
    tokio::task::spawn_blocking(move || decode(&track, &frame.data))
        .await
        .map_err(|e| unavailable(format!("decoder task failed: {e}")))?
        .map_err(|e| unavailable(format!("could not decode the key frame: {e}")))
}

#[cfg(feature = "gstreamer")]
fn decode(track: &crate::media::Track, data: &Bytes) -> Result<Bytes, String> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use gstreamer_app as gst_app;

    use crate::media::Codec;

    gst::init().map_err(|e| e.to_string())?;
    let (caps_name, format, parse, dec) = match track.codec {
        Codec::H264 => ("video/x-h264", "avc", "h264parse", "avdec_h264"),
        Codec::H265 => ("video/x-h265", "hvc1", "h265parse", "avdec_h265"),
        other => return Err(format!("{other} is not video")),
    };
    let launch = format!(
        "appsrc name=src format=time ! {parse} ! {dec} ! videoconvert ! jpegenc quality=85 ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| format!("{e} (is gstreamer1.0-libav installed?)"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("no appsrc")?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    let caps = gst::Caps::builder(caps_name)
        .field("stream-format", format)
        .field("alignment", "au")
        .field(
            "codec_data",
            gst::Buffer::from_slice(track.extra_data.clone()),
        )
        .build();
    src.set_caps(Some(&caps));
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut buffer = gst::Buffer::from_slice(data.clone());
    buffer
        .get_mut()
        .expect("new buffer")
        .set_pts(gst::ClockTime::ZERO);
    let pushed = src.push_buffer(buffer).is_ok() && src.end_of_stream().is_ok();
    let sample = if pushed {
        sink.try_pull_sample(gst::ClockTime::from_seconds(5))
    } else {
        None
    };
    let _ = pipeline.set_state(gst::State::Null);
    let sample = sample.ok_or("the decoder produced no picture")?;
    let buf = sample.buffer().ok_or("empty sample")?;
    let map = buf.map_readable().map_err(|e| e.to_string())?;
    Ok(Bytes::copy_from_slice(map.as_slice()))
}

#[cfg(not(feature = "gstreamer"))]
fn decode(_: &crate::media::Track, _: &Bytes) -> Result<Bytes, String> {
    Err("built without the gstreamer feature".into())
}
