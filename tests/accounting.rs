//! Viewer accounting that balances: on the demo (its clip fleet), rounds
//! of RTSP, WebSocket and LL-HLS viewers of one on-demand camera that play,
//! leave, abort their handshakes half-way or send garbage. After each round
//! the per-protocol viewer gauges return to zero and the camera's pull
//! stops once it is idle, whatever the viewers did.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Demo, http_get, http_get_as};

fn read_some(s: &mut TcpStream, n: usize) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut out[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    out.truncate(got);
    out
}

/// RTSP requests up to `upto` (1 DESCRIBE, 2 SETUP, 3 PLAY and some
/// media), then the connection is dropped.
fn rtsp_viewer(rtsp: &str, id: &str, key: &str, upto: u8) {
    use base64::Engine as _;
    let Ok(mut s) = TcpStream::connect(rtsp) else {
        return;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("demo:{key}"));
    let url = format!("rtsp://{rtsp}/cam/{id}");
    let head = |s: &mut TcpStream, req: String| -> String {
        if s.write_all(req.as_bytes()).is_err() {
            return String::new();
        }
        let mut h = Vec::new();
        let mut b = [0u8; 1];
        while !h.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => h.push(b[0]),
                _ => break,
            }
        }
        let h = String::from_utf8_lossy(&h).to_string();
        if let Some(n) = h
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            let _ = read_some(s, n);
        }
        h
    };
    let _ = head(
        &mut s,
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic {auth}\r\n\r\n"),
    );
    if upto < 2 {
        return;
    }
    let setup = head(
        &mut s,
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Basic {auth}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    let session = setup
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .unwrap_or_default();
    if upto < 3 {
        return;
    }
    let _ = head(
        &mut s,
        format!(
            "PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Basic {auth}\r\nSession: {session}\r\n\r\n"
        ),
    );
    let _ = read_some(&mut s, 20_000);
}

/// A WebSocket viewer that reads a few messages and leaves, or (`abort`)
/// sends half an upgrade request and hangs up.
async fn ws_viewer(http: &str, id: &str, key: &str, abort: bool) {
    if abort {
        if let Ok(mut s) = TcpStream::connect(http) {
            let _ = s.write_all(
                format!(
                    "GET /live/{id}?token={key} HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                )
                .as_bytes(),
            );
        }
        return;
    }
    use futures_util::StreamExt as _;
    let url = format!("ws://{http}/live/{id}?token={key}");
    if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
        for _ in 0..4 {
            if tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .is_err()
            {
                break;
            }
        }
        drop(ws); // no close handshake: the viewer just goes
    }
}

/// An LL-HLS viewer: the playlist and a segment, or (`abort`) a request
/// whose answer it never reads.
fn hls_viewer(http: &str, id: &str, key: &str, abort: bool) {
    if abort {
        if let Ok(mut s) = TcpStream::connect(http) {
            let _ = s.write_all(
                format!("GET /hls/{id}/index.m3u8?token={key} HTTP/1.1\r\nHost: x\r\n\r\n")
                    .as_bytes(),
            );
        }
        return;
    }
    let (_, playlist) = http_get_as(http, &format!("/hls/{id}/index.m3u8"), Some(key));
    if let Some(part) = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PART:"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|r| r.split('"').next())
    {
        let _ = http_get_as(http, &format!("/hls/{id}/{part}"), Some(key));
    }
}

/// The viewer gauges of camera `id`, per protocol, from /metrics.
fn viewers(metrics: &str, id: &str) -> Vec<(String, f64)> {
    let m = http_get(metrics, "/metrics").1;
    m.lines()
        .filter(|l| {
            l.starts_with("camgate_camera_protocol_viewers{")
                && l.contains(&format!("camera_id=\"{id}\""))
        })
        .filter_map(|l| {
            let protocol = l
                .split("protocol=\"")
                .nth(1)?
                .split('"')
                .next()?
                .to_string();
            let v = l.rsplit(' ').next()?.parse().ok()?;
            Some((protocol, v))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_gauges_and_on_demand_idling_balance() {
    let demo = Demo::start_with(
        "clip",
        &[
            ("CAMGATE__PULL__IDLE_CLOSE_SECS", "2"),
            ("CAMGATE__RELAY__HLS_IDLE_SECS", "2"),
        ],
    );
    let (http, key) = (demo.http.clone(), demo.key.clone());
    let (_, list) = http_get_as(&http, "/api/v1/cameras?limit=50", Some(&key));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pull_mode"] == "on_demand")
        .and_then(|c| c["id"].as_str())
        .unwrap()
        .to_string();
    let rtsp = demo.rtsp.clone();
    let pulling = |http: &str| {
        let (_, h) = http_get_as(http, &format!("/api/v1/cameras/{id}/health"), Some(&key));
        serde_json::from_str::<serde_json::Value>(&h).unwrap()["pulling"] == true
    };
    for round in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..12u8 {
            let (rtsp, id, key) = (rtsp.clone(), id.clone(), key.clone());
            tasks.push(tokio::task::spawn_blocking(move || {
                rtsp_viewer(&rtsp, &id, &key, i % 4)
            }));
        }
        for i in 0..6 {
            let (http, id, key) = (http.clone(), id.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                ws_viewer(&http, &id, &key, i % 2 == 1).await
            }));
        }
        for i in 0..6 {
            let (http, id, key) = (http.clone(), id.clone(), key.clone());
            tasks.push(tokio::task::spawn_blocking(move || {
                hls_viewer(&http, &id, &key, i % 3 == 2)
            }));
        }
        // Garbage on the RTSP port.
        if let Ok(mut s) = TcpStream::connect(&rtsp) {
            let _ = s.write_all(b"\x00\x01GARBAGE\r\n\r\n$\x00\xff\xff");
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Everyone has left: the gauges drain (LL-HLS viewers count until
        // 10 s after their last request) and the pull idles out.
        let left = Instant::now();
        loop {
            let v = viewers(&demo.metrics, &id);
            let busy: Vec<_> = v.iter().filter(|(_, n)| *n != 0.0).collect();
            if busy.is_empty() && !pulling(&http) {
                break;
            }
            assert!(
                left.elapsed() < Duration::from_secs(25),
                "round {round}: {busy:?} viewers and pulling={} {:?} after everyone left",
                pulling(&http),
                left.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!(
            "round {round}: balanced {:.1} s after the last viewer left",
            left.elapsed().as_secs_f64()
        );
    }
}
