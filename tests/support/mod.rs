//! What the process-level tests (live, browser, fmp4) share: the demo as a
//! child process that is killed when dropped, a plain HTTP GET, and the
//! ffprobe presence check that skips loudly (or fails under
//! CAMGATE_REQUIRE_TOOLS=1, as tests/run.sh sets).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The demo fleet the process-level tests play: the GStreamer simulator
/// (gst-rtsp-server, a camera server we did not write) when it is built in,
/// else the committed clip served by the relay's own RTSP code.
pub const FLEET: &str = if cfg!(feature = "gstreamer") {
    "gstreamer"
} else {
    "clip"
};

/// One demo at a time per test binary: each runs a fleet of cameras (with
/// the simulator, about half a core of encoding), and two cores shared by
/// parallel demos deliver frames late, which the tests would see as a
/// relay that loses frames.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running `camgate demo` and what it printed.
pub struct Demo {
    _turn: std::sync::MutexGuard<'static, ()>,
    child: std::process::Child,
    /// The HTTP listener, `127.0.0.1:PORT`.
    pub http: String,
    /// The ops listener (`/metrics`).
    pub metrics: String,
    /// The admin API key the demo printed.
    pub key: String,
    /// The RTSP relay's address (`host:port`).
    pub rtsp: String,
    /// An `always` camera that is online.
    pub camera: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// Starts `camgate demo --fleet FLEET` with 20 cameras on free ports and
    /// waits (20 s at most) until one of its `always` cameras is online.
    pub fn start(fleet: &str) -> Demo {
        Demo::start_with(fleet, &[])
    }

    /// [`Demo::start`] with extra environment (configuration keys).
    pub fn start_with(fleet: &str, env: &[(&str, &str)]) -> Demo {
        // A test that failed while holding the turn poisons it; the next
        // one may still run.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = Command::new(env!("CARGO_BIN_EXE_camgate"))
            .envs(env.iter().copied())
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--cameras",
                "20",
                "--fleet",
                fleet,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut metrics, mut key, mut rtsp) =
            (None, String::new(), String::new(), String::new());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 {
            if let Some(rest) = line.trim().split("web UI at http://").nth(1) {
                http = Some(rest.trim_end_matches('/').to_string());
            }
            if let Some(rest) = line.trim().split("RTSP relay at rtsp://").nth(1) {
                rtsp = rest.split('/').next().unwrap_or("").to_string();
            }
            if let Some(rest) = line.trim().split("API key (admin): ").nth(1) {
                key = rest.split(' ').next().unwrap_or("").to_string();
            }
            if let Some(rest) = line.trim().split("Prometheus metrics at http://").nth(1) {
                metrics = rest.trim_end_matches("/metrics").to_string();
                break;
            }
            line.clear();
        }
        let mut demo = Demo {
            _turn: turn,
            child,
            http: http.expect("the demo prints its address"),
            metrics,
            key,
            rtsp,
            camera: String::new(),
        };
        let start = Instant::now();
        loop {
            let (_, body) = demo.api("/api/v1/cameras?limit=100");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let online = v["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|c| c["pull_mode"] == "always" && c["state"] == "online")
                    .and_then(|c| c["id"].as_str().map(str::to_string))
            });
            if let Some(id) = online {
                demo.camera = id;
                demo.wait_full_rate();
                return demo;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "an always camera online: {body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Demo {
    /// GET from the REST API with the demo's key.
    pub fn api(&self, path: &str) -> (u16, String) {
        http_get_as(&self.http, path, Some(&self.key))
    }

    /// Waits until the camera reports 24 fps or more (20 s at most), so a
    /// test that counts frames measures the relay, not a source still
    /// starting.
    ///
    /// The GStreamer fleet is not used for the frame-counting tests: the
    /// simulator primes a new connection with its last key frame, stamped at
    /// the media's start, and then skips to its next key frame (see the
    /// README's design notes). The gateway relays that as it is, a key
    /// frame and a timestamp gap of up to a GOP, and a muxer that starts on
    /// it (seen with LL-HLS: `seg/0` one frame long) gives a copy 1–2 s
    /// short of frames. Real cameras start on a fresh key frame.
    fn wait_full_rate(&self) {
        let start = Instant::now();
        loop {
            let (_, body) = self.api(&format!("/api/v1/cameras/{}/health", self.camera));
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let fps = v["stats"]["frame_rate"].as_f64().unwrap_or(0.0);
            if fps >= 24.0 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "camera {} at full frame rate: {body}",
                self.camera
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// GET over HTTP/1.1 with `Connection: close`: the status and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_get_as(addr, path, None)
}

/// [`http_get`] with an API key (`Authorization: Bearer`).
pub fn http_get_as(addr: &str, path: &str, key: Option<&str>) -> (u16, String) {
    http_as(addr, "GET", path, key, "")
}

/// A request with a JSON body (none when empty) and an API key.
pub fn http_as(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    json: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let body = if json.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            json.len()
        )
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{body}Connection: close\r\n\r\n{json}"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|b| b.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Whether ffprobe runs; without it the caller skips, saying so, unless
/// CAMGATE_REQUIRE_TOOLS=1 makes that a failure.
pub fn have_ffprobe() -> bool {
    let ok = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CAMGATE_REQUIRE_TOOLS").is_none(),
            "ffprobe is required (CAMGATE_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIPPED: this check needs ffprobe (tests/run.sh installs ffmpeg)");
    }
    ok
}

/// Decodes `path` with `ffmpeg -v error -f null`, which must succeed; the
/// errors it printed (empty when the file decodes cleanly).
pub fn decode_errors(path: &str) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path, "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg could not decode {path}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether node, Chromium and playwright-core (tests/browser) are there;
/// without them the caller skips, saying so, unless CAMGATE_REQUIRE_TOOLS=1
/// makes that a failure.
pub fn browser_ready() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CAMGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()))
        .then_some("node"),
        (!std::path::Path::new(&chromium).exists()).then_some("chromium"),
        (!dir.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci --prefix tests/browser)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CAMGATE_REQUIRE_TOOLS").is_none(),
        "browser tests need {missing:?} (CAMGATE_REQUIRE_TOOLS=1)"
    );
    eprintln!("SKIPPED: browser tests need {missing:?}; tests/run.sh installs them");
    false
}
