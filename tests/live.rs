//! Live fMP4 over WebSocket, the embed page, snapshots and LL-HLS, end to
//! end: `camgate demo --fleet clip` (the demo clip served by our RTSP
//! server, pulled by the gateway with retina; snapshots use the GStreamer
//! simulator's cameras, since they need the feature anyway), then
//! `/live/{id}` read over a WebSocket. The bytes received are written to a file that ffprobe and
//! ffmpeg, clients we did not write, must read and decode without error.
//! Without ffmpeg the decode check skips loudly (CAMGATE_REQUIRE_TOOLS=1
//! makes that a failure).

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::{Demo, FLEET, decode_errors, have_ffprobe as have_ffmpeg, http_get, http_get_as};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fmp4_over_websocket_decodes_and_the_embed_page_is_served() {
    let demo = Demo::start("clip");
    let (addr, id, metrics) = (&demo.http, &demo.camera, &demo.metrics);
    let key = Some(demo.key.as_str());

    // Without credentials: nothing, whether or not the camera exists.
    for path in [
        format!("/embed/{id}"),
        format!("/embed/{id}/state"),
        "/embed/nope".to_string(),
    ] {
        assert_eq!(http_get(addr, &path).0, 401, "{path}");
    }
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/live/{id}")).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );

    // The embed page names its camera and plays over /live.
    let (status, page) = http_get_as(addr, &format!("/embed/{id}"), key);
    assert_eq!(status, 200);
    assert!(page.contains(&format!("const ID = \"{id}\"")), "{page}");
    assert!(page.contains("/live/"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external requests"
    );
    assert!(
        page.contains("/assets/hls.light.min.js"),
        "the LL-HLS fallback is served locally"
    );
    let (status, js) = http_get(addr, "/assets/hls.light.min.js");
    assert_eq!(status, 200);
    assert!(
        js.len() > 100_000 && js.contains("Hls"),
        "the vendored hls.js"
    );
    assert!(
        !js.contains("sourceMappingURL"),
        "no request for a missing source map"
    );
    // The embed page's label: name and live state.
    let (status, body) = http_get_as(addr, &format!("/embed/{id}/state"), key);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "online", "{body}");
    assert!(v["name"].as_str().is_some_and(|n| !n.is_empty()), "{body}");
    let (status, body) = http_get_as(addr, "/embed/nope", key);
    assert_eq!(status, 404, "{body}");
    let (status, body) = http_get_as(addr, "/embed/%3Cscript%3E", key);
    assert_eq!(status, 404, "{body}");

    // Five seconds of the live WebSocket, with the key in the URL.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/live/{id}?token={}", demo.key))
            .await
            .unwrap();
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Text(hello) = hello else {
        panic!("first a text message: {hello:?}")
    };
    let hello: serde_json::Value = serde_json::from_str(&hello).unwrap();
    assert_eq!(hello["type"], "init");
    assert!(
        hello["codec"].as_str().unwrap().starts_with("avc1."),
        "{hello}"
    );
    let started = Instant::now();
    let mut bytes = Vec::new();
    let mut binaries = 0;
    while started.elapsed() < Duration::from_secs(5) {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                bytes.extend_from_slice(&b);
                binaries += 1;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the stream kept coming: {other:?}"),
        }
    }
    // While it plays, metrics count a WebSocket viewer of this camera.
    assert!(!metrics.is_empty(), "the demo prints its metrics address");
    let m = http_get(metrics, "/metrics").1;
    assert!(one_viewer(&m, id, "ws"), "{m}");
    assert!(
        m.contains("camgate_time_to_first_frame_seconds_count{protocol=\"ws\"} 1\n"),
        "{m}"
    );
    drop(ws);
    assert_eq!(&bytes[4..8], b"ftyp", "the init segment comes first");
    assert_eq!(
        &bytes[bytes
            .len()
            .min(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)..][4..8],
        b"moov"
    );
    assert!(
        binaries > 100,
        "a fragment head and a frame per frame: {binaries}"
    );
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let path = path.to_str().unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args([
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let fields: Vec<&str> = text.split(',').collect();
    assert_eq!(
        &fields[..fields.len().min(3)],
        ["h264", "640", "360"],
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: u32 = fields.get(3).and_then(|f| f.parse().ok()).unwrap_or(0);
    // 5 s at 25 fps, plus up to one GOP (50 frames) from the cache at once.
    assert!(
        (100..=180).contains(&frames),
        "about 5 s at 25 fps plus the cached GOP: {frames} ({binaries} messages); gaps: {}",
        pts_gaps(path)
    );
    assert_eq!(
        decode_errors(path),
        "",
        "the live stream decodes with no errors"
    );
}

/// GET returning the status line's code, the headers and the raw body.
#[cfg(feature = "gstreamer")]
fn http_get_bytes(addr: &str, path: &str, key: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, head, resp[(split + 4).min(resp.len())..].to_vec())
}

#[cfg(feature = "gstreamer")]
#[test]
fn snapshot_is_a_jpeg_of_the_cameras_resolution() {
    let demo = Demo::start(FLEET);
    let (addr, id) = (&demo.http, &demo.camera);
    let (status, head, body) = http_get_bytes(
        addr,
        &format!("/api/v1/cameras/{id}/snapshot.jpg"),
        &demo.key,
    );
    assert_eq!(status, 200, "{head} {}", String::from_utf8_lossy(&body));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/jpeg"),
        "{head}"
    );
    // Chunked transfer may wrap the body; find the JPEG inside it.
    let start = body
        .windows(3)
        .position(|w| w == [0xff, 0xd8, 0xff])
        .expect("a JPEG start marker");
    let end = body
        .windows(2)
        .rposition(|w| w == [0xff, 0xd9])
        .expect("a JPEG end marker")
        + 2;
    let jpeg = &body[start..end];
    let (_, _, again) = http_get_bytes(
        addr,
        &format!("/api/v1/cameras/{id}/snapshot.jpg"),
        &demo.key,
    );
    assert!(
        again
            .windows(jpeg.len().min(64))
            .any(|w| w == &jpeg[..w.len()]),
        "served from the cache"
    );
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.jpg");
    std::fs::write(&path, jpeg).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mjpeg,640,360",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(not(feature = "gstreamer"))]
#[test]
fn snapshot_without_the_feature_says_how_to_enable_it() {
    let demo = Demo::start(FLEET);
    let (addr, id) = (&demo.http, &demo.camera);
    let (status, body) = demo.api(&format!("/api/v1/cameras/{id}/snapshot.jpg"));
    assert_eq!(status, 501, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "snapshots_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--features gstreamer")
    );
    let (status, _) = demo.api("/api/v1/cameras/nope/snapshot.jpg");
    let (status_anonymous, _) = http_get(addr, &format!("/api/v1/cameras/{id}/snapshot.jpg"));
    assert_eq!(status_anonymous, 401, "snapshots need credentials");
    assert_eq!(status, 404);
}

#[test]
fn ll_hls_is_read_copied_and_decoded_by_ffmpeg() {
    let demo = Demo::start("clip");
    let (addr, id) = (&demo.http, &demo.camera);
    let key = Some(demo.key.as_str());
    // ffmpeg reads with the key in the URL; the playlist hands it on.
    let url = format!("http://{addr}/hls/{id}/index.m3u8?token={}", demo.key);
    let (status, _) = http_get(addr, &format!("/hls/{id}/index.m3u8"));
    assert_eq!(status, 401, "LL-HLS needs credentials");
    let (status, playlist) = http_get_as(addr, &format!("/hls/{id}/index.m3u8"), key);
    assert_eq!(status, 200, "{playlist}");
    assert!(playlist.starts_with("#EXTM3U\n"), "{playlist}");
    assert!(playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""));
    assert!(playlist.contains("#EXT-X-PART:") && playlist.contains("INDEPENDENT=YES"));
    // Blocking reload: ask for the hinted part; the answer lists it.
    let hint = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/"))
        .and_then(|r| r.strip_suffix(".m4s\""))
        .expect("a preload hint")
        .to_string();
    let (msn, part) = hint.split_once('.').unwrap();
    let started = Instant::now();
    let (status, next) = http_get_as(
        addr,
        &format!("/hls/{id}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
        key,
    );
    assert_eq!(status, 200);
    assert!(
        next.contains(&format!("URI=\"part/{hint}.m4s\"")),
        "the reload waited for part {hint}: {next}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Metrics count this client as an LL-HLS viewer of the camera, with
    // the bytes it was sent.
    let m = http_get(&demo.metrics, "/metrics").1;
    assert!(one_viewer(&m, id, "hls"), "{m}");
    assert!(
        m.contains("camgate_relay_sessions_total{protocol=\"hls\"} 1\n"),
        "{m}"
    );
    let sent = m
        .lines()
        .find_map(|l| l.strip_prefix("camgate_sent_bytes_total{protocol=\"hls\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        sent as usize >= playlist.len() + next.len(),
        "both playlists counted: {sent}"
    );
    let (status, _) = http_get_as(addr, "/hls/nope/index.m3u8", key);
    assert_eq!(status, 404);
    let (status, tokened) = http_get(addr, &url.replace(&format!("http://{addr}"), ""));
    assert_eq!(status, 200, "{tokened}");
    assert!(
        tokened.contains(&format!("URI=\"init.mp4?token={}\"", demo.key)),
        "the playlist hands the token on: {tokened}"
    );
    if !have_ffmpeg() {
        return;
    }
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim(),
        "h264,640,360",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hls.mp4");
    let file = file.to_str().unwrap();
    let before = http_get_as(addr, &format!("/hls/{id}/index.m3u8"), key).1;
    let out = Command::new("ffmpeg")
        .args([
            "-v", "error", "-i", &url, "-c", "copy", "-t", "10", "-y", file,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            file,
        ])
        .output()
        .unwrap();
    let frames: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    // The copy is 10 s of the camera's timestamps. Its frame count follows
    // the frame rate the camera really delivered (a simulator sharing two
    // cores with parallel tests can fall below 25 fps), so the bound is
    // that rate's, and the muxer itself must have dropped nothing.
    let m = http_get(&demo.metrics, "/metrics").1;
    let value = |series: &str| {
        m.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let fps = value(&format!(
        "camgate_camera_frames_per_second{{camera_id=\"{id}\""
    ))
    .unwrap_or(25.0);
    let dropped = value("camgate_relay_dropped_frames_total{protocol=\"hls\"}");
    assert_eq!(dropped, Some(0.0), "the LL-HLS muxer kept up");
    let expected = 10.0 * fps.min(25.0);
    assert!(
        (frames as f64) >= expected * 0.9 && frames <= 260,
        "10 s at the camera's {fps} fps: {frames}; gaps: {}; playlist before the copy:\n{before}",
        pts_gaps(file)
    );
    assert_eq!(decode_errors(file), "", "the copy decodes with no errors");
}

/// Where a file's video timestamps jump by more than two frames (25 fps),
/// for failure messages.
fn pts_gaps(path: &str) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .unwrap();
    let pts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    let gaps: Vec<String> = pts
        .windows(2)
        .filter(|w| w[1] - w[0] > 0.08)
        .map(|w| format!("{:.2}->{:.2}", w[0], w[1]))
        .collect();
    format!(
        "{} packets, first {:?}, last {:?}, jumps [{}]",
        pts.len(),
        pts.first(),
        pts.last(),
        gaps.join(" ")
    )
}

/// Whether metrics text `m` counts one `protocol` viewer of camera `id`.
fn one_viewer(m: &str, id: &str, protocol: &str) -> bool {
    m.lines().any(|l| {
        l.starts_with("camgate_camera_protocol_viewers{")
            && l.contains(&format!("camera_id=\"{id}\""))
            && l.contains(&format!("protocol=\"{protocol}\""))
            && l.ends_with(" 1")
    })
}

/// One LL-HLS request holds an on-demand camera's muxer and pull only
/// until `relay.hls_idle_secs` after it, while the camera streams on.
#[test]
fn an_ll_hls_request_holds_an_on_demand_pull_only_until_idle() {
    let demo = Demo::start_with(
        "clip",
        &[
            ("CAMGATE__RELAY__HLS_IDLE_SECS", "3"),
            ("CAMGATE__PULL__IDLE_CLOSE_SECS", "2"),
        ],
    );
    let (addr, key) = (&demo.http, Some(demo.key.as_str()));
    let (_, list) = http_get_as(addr, "/api/v1/cameras?limit=50", key);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pull_mode"] == "on_demand")
        .and_then(|c| c["id"].as_str())
        .expect("an on-demand camera")
        .to_string();
    let pulling = || {
        let (_, h) = http_get_as(addr, &format!("/api/v1/cameras/{id}/health"), key);
        serde_json::from_str::<serde_json::Value>(&h).unwrap()["pulling"] == true
    };
    assert!(!pulling(), "nobody watches yet");
    let (status, playlist) = http_get_as(addr, &format!("/hls/{id}/index.m3u8"), key);
    assert_eq!(status, 200, "{playlist}");
    assert!(pulling(), "the request started the pull");
    let asked = Instant::now();
    while pulling() {
        assert!(
            asked.elapsed() < Duration::from_secs(15),
            "the pull still runs {:?} after the only request",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "not before the idle time: {:?}",
        asked.elapsed()
    );
}
