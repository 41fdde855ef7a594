//! Hostile cameras beside healthy ones, on the built binary: `camgate
//! serve` pulls every behaviour of the hostile camera server
//! (`tests/hostile_camera`) next to 20 healthy simulator cameras
//! (gst-rtsp-server), and the test checks, from outside, that
//!
//! - the gateway's RSS stays within 64 MiB of its baseline,
//! - each hostile camera is `offline` with the expected reason, and its
//!   `last_error` names the limit, within the open timeout plus one probe,
//! - the healthy cameras keep the simulator's frame rate, and
//! - an on-demand camera whose pulls fail after PLAY is not made `online`
//!   by a probe whose DESCRIBE works.
//!
//! `CAMGATE_HOSTILE_SECS` sets how long the cameras run after the states
//! are reached (default 20; the acceptance run uses 120). Needs the
//! `gstreamer` feature (the simulator); without it the test says it skips.

// Without the simulator only the skip notice below is built.
#![cfg_attr(not(feature = "gstreamer"), allow(dead_code, unused_imports))]

mod hostile_camera;
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hostile_camera::{Behaviour, HostileCamera};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

/// `camgate serve` with its stderr collected.
struct Gateway {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    http: String,
    key: String,
    key_id: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Gateway {
        let cli = |args: &[&str]| {
            Command::new(BIN)
                .args(args)
                .env_remove("CAMGATE_CONFIG")
                .env("CAMGATE__DATA_DIR", dir)
                .env("CAMGATE_ADMIN_PASSWORD", "hostile-Admin-pw-1")
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        };
        let out = cli(&["key", "create", "--name", "hostile-test", "--role", "admin"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created = String::from_utf8_lossy(&out.stdout).to_string();
        let key = created.lines().last().unwrap().to_string();
        let key_id = created.split("created key ").nth(1).unwrap()[..8].to_string();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_remove("CAMGATE_CONFIG")
            .env("CAMGATE__DATA_DIR", dir)
            .env("CAMGATE__SERVER__LISTEN", "127.0.0.1:0")
            .env("CAMGATE__METRICS__LISTEN", "127.0.0.1:0")
            .env("CAMGATE__RELAY__RTSP_LISTEN", "127.0.0.1:0")
            .env("CAMGATE__LOG__FORMAT", "json")
            .env("CAMGATE__PULL__START_SPREAD_SECS", "1")
            .env("CAMGATE__SECURITY__API_RATE_PER_SEC", "1000")
            .env("CAMGATE__SECURITY__API_BURST", "1000")
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut gw = Gateway {
            child,
            log,
            http: String::new(),
            key,
            key_id,
        };
        let start = Instant::now();
        loop {
            let line = gw
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains("camgate is serving"))
                .cloned();
            if let Some(line) = line {
                let v: Value = serde_json::from_str(&line).unwrap();
                gw.http = v["fields"]["addr"].as_str().unwrap().to_string();
                return gw;
            }
            if let Some(s) = gw.child.try_wait().unwrap() {
                panic!("camgate exited ({s}): {:#?}", gw.log.lock().unwrap());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "camgate did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn api(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let json = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (s, text) = support::http_as(&self.http, method, path, Some(&self.key), &json);
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn add_camera(&self, name: &str, url: &str, mode: &str, creds: bool) -> String {
        let mut body = json!({
            "name": name,
            "district": "620602",
            "point_type": 1,
            "ownership": "public",
            "rtsp_url": url,
            "pull_mode": mode,
        });
        if creds {
            body["username"] = json!("admin");
            body["password"] = json!("hostile-camera-pw");
        }
        let (s, v) = self.api("POST", "/api/v1/cameras", &body);
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    fn health(&self, id: &str) -> Value {
        self.api("GET", &format!("/api/v1/cameras/{id}/health"), &Value::Null)
            .1
    }

    /// Resident set size in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

fn run_secs() -> u64 {
    std::env::var("CAMGATE_HOSTILE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[cfg(not(feature = "gstreamer"))]
#[test]
fn hostile_cameras_beside_healthy_ones() {
    eprintln!(
        "SKIPPED: the hostile-camera test needs the gstreamer feature for its healthy cameras \
         (tests/run.sh builds with --all-features)"
    );
}

#[cfg(feature = "gstreamer")]
#[test]
fn hostile_cameras_beside_healthy_ones() {
    use camgate::simulator::{SimOptions, Simulator};

    const HEALTHY: usize = 20;
    const OPEN_TIMEOUT: u64 = 10;
    const PROBE_INTERVAL: u64 = 10;
    let sim = Simulator::start(SimOptions {
        cameras: HEALTHY,
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            (
                "CAMGATE__PULL__OPEN_TIMEOUT_SECS",
                &OPEN_TIMEOUT.to_string(),
            ),
            (
                "CAMGATE__HEALTH__PROBE_INTERVAL_SECS",
                &PROBE_INTERVAL.to_string(),
            ),
            ("CAMGATE__HEALTH__PROBE_FAILURES", "1"),
        ],
    );

    // The healthy fleet first, and the baseline with it streaming.
    let healthy: Vec<String> = (0..HEALTHY)
        .map(|i| gw.add_camera(&format!("healthy-{i}"), &sim.url(i), "always", false))
        .collect();
    let start = Instant::now();
    while !healthy.iter().all(|id| gw.health(id)["state"] == "online") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the healthy cameras did not come online: {}",
            gw.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    let baseline = gw.rss_kib();

    // Every hostile behaviour, one camera each, pulled always; and one
    // on-demand camera that fails after PLAY, for the probe.
    let cams: Vec<HostileCamera> = Behaviour::ALL
        .iter()
        .map(|b| HostileCamera::start(*b))
        .collect();
    let ids: Vec<String> = cams
        .iter()
        .map(|c| {
            gw.add_camera(
                &format!("hostile-{}", c.behaviour.name()),
                &c.url(),
                "always",
                c.behaviour.wants_credentials(),
            )
        })
        .collect();
    let on_demand = HostileCamera::start(Behaviour::CloseAfterPlay);
    let od_id = gw.add_camera("hostile-on-demand", &on_demand.url(), "on_demand", false);
    let added = Instant::now();

    // Every hostile camera reaches its expected state and reason within
    // the open timeout plus one probe.
    let mut reached: Vec<Option<Duration>> = vec![None; cams.len()];
    let mut peak = baseline;
    let deadline = Duration::from_secs(OPEN_TIMEOUT + PROBE_INTERVAL + 5);
    while reached.iter().any(Option::is_none) && added.elapsed() < deadline {
        for (i, c) in cams.iter().enumerate() {
            if reached[i].is_some() {
                continue;
            }
            let h = gw.health(&ids[i]);
            let (reason, text) = c.behaviour.expected();
            let last_error = h["stats"]["last_error"].as_str().unwrap_or("");
            if h["state"] == "offline" && h["reason"] == reason && last_error.contains(text) {
                reached[i] = Some(added.elapsed());
            }
        }
        peak = peak.max(gw.rss_kib());
        std::thread::sleep(Duration::from_millis(250));
    }
    for (i, c) in cams.iter().enumerate() {
        let h = gw.health(&ids[i]);
        assert!(
            reached[i].is_some(),
            "{}: expected offline/{:?} with {:?} in last_error within {deadline:?}, got {h}",
            c.behaviour.name(),
            c.behaviour.expected().0,
            c.behaviour.expected().1,
        );
        eprintln!(
            "{:<22} {:?} after {:.1} s: {}",
            c.behaviour.name(),
            h["reason"].as_str().unwrap_or(""),
            reached[i].unwrap().as_secs_f64(),
            h["stats"]["last_error"].as_str().unwrap_or("")
        );
    }

    // A viewer asks for the on-demand camera: its pull fails after PLAY.
    // Probes reach DESCRIBE, and must not make it online.
    let relay_rtsp = gw
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("camgate is serving"))
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["fields"]["rtsp"].as_str().map(str::to_string))
        .unwrap();
    let view = Command::new("ffprobe")
        .args([
            "-v",
            "quiet",
            "-rtsp_transport",
            "tcp",
            "-timeout",
            "5000000",
        ])
        .arg(format!(
            "rtsp://{}:{}@{relay_rtsp}/cam/{od_id}",
            gw.key_id, gw.key
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut view = view.ok();

    // The viewer's pull fails after PLAY: offline with the pull's reason.
    let waited = Instant::now();
    loop {
        let h = gw.health(&od_id);
        if h["state"] == "offline" && h["reason"] == "protocol_error" {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(OPEN_TIMEOUT + 10),
            "the on-demand camera's failing pull was not recorded: {h}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Run for the soak period, sampling RSS and the on-demand camera's
    // state (probes run every PROBE_INTERVAL meanwhile).
    let run = Duration::from_secs(run_secs().max(PROBE_INTERVAL * 2));
    let until = Instant::now() + run;
    let mut od_states = Vec::new();
    while Instant::now() < until {
        peak = peak.max(gw.rss_kib());
        od_states.push(
            gw.health(&od_id)["state"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Some(v) = view.as_mut() {
        let _ = v.kill();
        let _ = v.wait();
    }
    // Healthy cameras at the simulator's rate: 25 fps within 10 % (read a
    // few times: the simulator shares the two cores).
    let mut slow = Vec::new();
    for id in &healthy {
        let mut best = 0.0f64;
        for _ in 0..8 {
            let h = gw.health(id);
            best = best.max(h["stats"]["frame_rate"].as_f64().unwrap_or(0.0));
            if best >= 22.5 {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if best < 22.5 || gw.health(id)["state"] != "online" {
            slow.push((id.clone(), best));
        }
    }
    let grown_mib = peak.saturating_sub(baseline) as f64 / 1024.0;
    eprintln!(
        "RSS baseline {:.1} MiB, peak {:.1} MiB (+{grown_mib:.1} MiB) over {} s with {} hostile cameras",
        baseline as f64 / 1024.0,
        peak as f64 / 1024.0,
        added.elapsed().as_secs(),
        cams.len() + 1
    );
    assert!(
        slow.is_empty(),
        "healthy cameras below 22.5 fps or not online: {slow:?}"
    );
    assert!(
        grown_mib < 64.0,
        "gateway RSS grew {grown_mib:.1} MiB over its baseline"
    );
    // The on-demand camera was pulled (the hostile server saw connections
    // past the probes') and is never online.
    assert!(
        !od_states.iter().any(|s| s == "online"),
        "a probe made the failing on-demand camera online: {od_states:?}"
    );
    let h = gw.health(&od_id);
    assert_eq!(h["state"], "offline", "{h}");
    // Every hostile camera is still offline with its reason.
    for (i, c) in cams.iter().enumerate() {
        let h = gw.health(&ids[i]);
        assert_eq!(h["state"], "offline", "{}: {h}", c.behaviour.name());
        assert_eq!(
            h["reason"],
            c.behaviour.expected().0,
            "{}: {h}",
            c.behaviour.name()
        );
    }
    // No panic in the gateway's log.
    let log = gw.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
