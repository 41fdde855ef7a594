//! The embed page in a real browser: headless Chromium (Debian `chromium`,
//! driven by `playwright-core` from npm, tests/browser/) against the
//! Rust-only demo (`camgate demo --fleet clip`: the committed clip served
//! by camgate's own RTSP server code, pulled and relayed by the gateway).
//! The video's currentTime must advance by at least 3 s within 6 s, once
//! over the WebSocket path and once with every WebSocket to /live/ closed
//! (the page falls back to LL-HLS), with no request leaving the machine.
//!
//! Needs node, Chromium and `npm ci --prefix tests/browser`; tests/run.sh
//! provides them and sets CAMGATE_REQUIRE_TOOLS=1, which turns their
//! absence into a failure. Otherwise the test says it skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_once("\r\n\r\n")
        .map(|b| b.1.to_string())
        .unwrap_or_default()
}

fn browser_ready() -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CAMGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()))
        .then_some("node"),
        (!Path::new(&chromium).exists()).then_some("chromium"),
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

#[test]
fn the_embed_page_plays_in_chromium_over_websocket_and_over_ll_hls() {
    if !browser_ready() {
        return;
    }
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--cameras",
            "20",
            "--fleet",
        ])
        // Without the gstreamer feature this is the plain demo (`auto` is
        // the clip there); with it, the clip fleet is asked for by name.
        .arg(if cfg!(feature = "gstreamer") {
            "clip"
        } else {
            "auto"
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _demo = Demo(child);
    let mut addr = None;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.trim().split("web UI at http://").nth(1) {
            addr = Some(rest.trim_end_matches('/').to_string());
            break;
        }
        line.clear();
    }
    let addr = addr.expect("the demo prints its address");
    let start = Instant::now();
    let id = loop {
        let v: serde_json::Value =
            serde_json::from_str(&http_get(&addr, "/api/v1/cameras?limit=100")).unwrap_or_default();
        let online = v["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|c| c["pull_mode"] == "always" && c["state"] == "online")
                .and_then(|c| c["id"].as_str().map(str::to_string))
        });
        if let Some(id) = online {
            break id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "an always camera online"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/embed.mjs");
    for mode in ["ws", "hls"] {
        let out = Command::new("node")
            .arg(&script)
            .arg(format!("http://{addr}/embed/{id}"))
            .arg(mode)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{mode}: {e}: {stdout}"));
        eprintln!("{mode}: {r}");
        assert!(
            r["advanced"].as_f64().unwrap() >= 3.0,
            "{mode}: currentTime advanced 3 s within 6 s: {r}"
        );
        assert!(r["seconds"].as_f64().unwrap() <= 6.5, "{mode}: {r}");
        assert_eq!(r["transport"], mode, "{r}");
        assert_eq!(
            r["external"],
            serde_json::json!([]),
            "no external requests: {r}"
        );
    }
}
