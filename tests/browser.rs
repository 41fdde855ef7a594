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

use std::path::Path;
use std::process::Command;

mod support;

use support::Demo;

#[test]
fn the_embed_page_plays_in_chromium_over_websocket_and_over_ll_hls() {
    if !support::browser_ready() {
        return;
    }
    // Without the gstreamer feature this is the plain demo, as `cargo run
    // --release -- demo` starts it (`auto` is the clip there); with it, the
    // clip fleet is asked for by name (see `support::Demo::start` on why
    // the browser paths are not timed against the simulator).
    let demo = Demo::start(if cfg!(feature = "gstreamer") {
        "clip"
    } else {
        "auto"
    });
    let (addr, id) = (&demo.http, &demo.camera);
    // The page is opened as a centre's page would embed it: through a
    // signed embed link for this camera.
    let (status, body) = support::http_as(
        addr,
        "POST",
        "/api/v1/embed-links",
        Some(&demo.key),
        &format!(r#"{{"camera_id": "{id}", "ttl_secs": 600}}"#),
    );
    assert_eq!(status, 201, "{body}");
    let link: serde_json::Value = serde_json::from_str(&body).unwrap();
    let embed = link["urls"]["embed"].as_str().unwrap().to_string();
    assert!(
        embed.starts_with(&format!("http://{addr}/embed/{id}?token=cgl1.")),
        "{embed}"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/embed.mjs");
    for mode in ["ws", "hls"] {
        let out = Command::new("node")
            .arg(&script)
            .arg(&embed)
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
