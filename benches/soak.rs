//! Soak: `camgate serve` pulling N simulator cameras (gst-rtsp-server, in
//! this process) that suffer random faults — stopped and restarted mounts,
//! stalls, restarts, URL edits — while V viewers churn on every protocol
//! (RTSP over TCP, fMP4 over WebSocket, LL-HLS), some leaving mid-stream
//! and some aborting their handshakes. Every 10 s it samples the gateway's
//! RSS, open file descriptors, threads and CPU, and prints the trend; at
//! the end it checks:
//!
//! - RSS after the first tenth of the run stays within ±5 % of its median
//!   (reported; enforced for runs of 30 minutes or more),
//! - file descriptors and threads do not grow (the last quarter's median at
//!   most 10 % above the second quarter's, plus a small slack),
//! - every faulted camera is `online` again within its backoff after its
//!   fault ended (`pull.backoff_max_secs` is 8 s here),
//! - no panic, and no ERROR line in the gateway's log (a camera's own
//!   faults are warnings).
//!
//! Run: `cargo bench --features gstreamer --bench soak`. SOAK_CAMERAS
//! (default 100), SOAK_VIEWERS (default 100), SOAK_MINUTES (default 60),
//! SOAK_FAULT_EVERY_SECS (default 3) change it. tests/run.sh runs a
//! 3-minute version (`SOAK_MINUTES=3 cargo test --bench soak`, the debug
//! build) and fails on a failed check.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camgate::simulator::{SimOptions, Simulator};
use support::*;

fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn threads(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A fault on one camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The mount answers nothing (404), then comes back.
    Stop,
    /// The mount stops sending frames, then resumes.
    Stall,
    /// The mount's stream restarts (a camera reboot that is quick).
    Restart,
    /// The camera's URL is edited to another mount, then back.
    UrlEdit,
}

struct Faulted {
    camera: usize,
    fault: Fault,
    ends: Instant,
    ended: Option<Instant>,
    back_after: Option<Duration>,
}

/// A tiny xorshift, seeded from the clock.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One RTSP viewer: DESCRIBE, SETUP, PLAY (or fewer: an aborted
/// handshake), media for `hold`, then a hang-up without TEARDOWN.
fn rtsp_viewer(rtsp: &str, id: &str, key: &str, steps: u8, hold: Duration) -> u64 {
    use base64::Engine as _;
    let Ok(mut s) = TcpStream::connect(rtsp) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("soak:{key}"));
    let url = format!("rtsp://{rtsp}/cam/{id}");
    let mut cseq = 0;
    let mut request = |s: &mut TcpStream, method: &str, uri: &str, extra: &str| -> String {
        cseq += 1;
        let req = format!(
            "{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\nAuthorization: Basic {auth}\r\n{extra}\r\n"
        );
        if s.write_all(req.as_bytes()).is_err() {
            return String::new();
        }
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len.min(65536)];
        let _ = s.read_exact(&mut body);
        head
    };
    let _ = request(&mut s, "DESCRIBE", &url, "Accept: application/sdp\r\n");
    if steps < 2 {
        return 0;
    }
    let setup = request(
        &mut s,
        "SETUP",
        &format!("{url}/trackID=0"),
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    let session = setup
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .unwrap_or_default();
    if steps < 3 {
        return 0;
    }
    let _ = request(&mut s, "PLAY", &url, &format!("Session: {session}\r\n"));
    let until = Instant::now() + hold;
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    got
}

/// One LL-HLS viewer: playlists and parts for `hold`, or (`abort`) one
/// request whose answer it never reads.
fn hls_viewer(http: &str, id: &str, key: &str, abort: bool, hold: Duration) -> u64 {
    if abort {
        if let Ok(mut s) = TcpStream::connect(http) {
            let _ = s.write_all(
                format!("GET /hls/{id}/index.m3u8?token={key} HTTP/1.1\r\nHost: x\r\n\r\n")
                    .as_bytes(),
            );
        }
        return 0;
    }
    let until = Instant::now() + hold;
    let mut got = 0u64;
    while Instant::now() < until {
        let playlist = http_get_as(http, &format!("/hls/{id}/index.m3u8"), Some(key));
        got += playlist.len() as u64;
        let Some(part) = playlist
            .lines()
            .rfind(|l| l.starts_with("#EXT-X-PART:"))
            .and_then(|l| l.split("URI=\"").nth(1))
            .and_then(|r| r.split('"').next())
        else {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        got += http_get_as(http, &format!("/hls/{id}/{part}"), Some(key)).len() as u64;
        std::thread::sleep(Duration::from_millis(300));
    }
    got
}

/// One WebSocket viewer: messages for `hold`, or (`abort`) half an upgrade.
async fn ws_viewer(http: &str, id: &str, key: &str, abort: bool, hold: Duration) -> u64 {
    use futures_util::StreamExt as _;
    if abort {
        if let Ok(mut s) = TcpStream::connect(http) {
            let _ = s.write_all(
                format!(
                    "GET /live/{id}?token={key} HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\n"
                )
                .as_bytes(),
            );
        }
        return 0;
    }
    let url = format!("ws://{http}/live/{id}?token={key}");
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    else {
        return 0;
    };
    let until = tokio::time::Instant::now() + hold;
    let mut got = 0u64;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
        got += m.len() as u64;
    }
    got
}

struct Sample {
    at_secs: f64,
    rss_mib: f64,
    fds: usize,
    threads: usize,
    cpu_pct: f64,
    online: usize,
    viewers: u64,
}

fn main() {
    let cameras = env_num("SOAK_CAMERAS", 100) as usize;
    let viewers = env_num("SOAK_VIEWERS", 100) as usize;
    let minutes = env_num("SOAK_MINUTES", 60);
    let fault_every = Duration::from_secs(env_num("SOAK_FAULT_EVERY_SECS", 3));
    let run = Duration::from_secs(minutes * 60);
    println!(
        "soak: {cameras} cameras, {viewers} churning viewers, {minutes} min, a fault every {fault_every:?}"
    );

    let sim = Simulator::start(SimOptions {
        cameras,
        width: 320,
        height: 180,
        bitrate_kbps: 300,
        ..Default::default()
    })
    .expect("the simulator (GStreamer)");
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("name,district,point_type,ownership,rtsp_url,pull_mode\n");
    for i in 0..cameras {
        csv.push_str(&format!("soak-{i},620602,1,public,{},always\n", sim.url(i)));
    }
    let log_path = dir.path().join("camgate.log");
    // SAFETY: set before any other thread reads the environment.
    unsafe {
        std::env::set_var("CAMGATE__PULL__BACKOFF_MAX_SECS", "8");
        std::env::set_var("CAMGATE__LOG__FORMAT", "json");
        std::env::set_var("CAMGATE__LOG__LEVEL", "warn");
        std::env::set_var("CAMGATE__SECURITY__API_RATE_PER_SEC", "0");
    }
    let gw = Gateway::start_logged(dir.path(), Some(&csv), 5, &log_path);
    let pid = gw.proc.pid();
    let ids: Vec<String> = {
        let v: serde_json::Value =
            serde_json::from_str(&gw.api("/api/v1/cameras?limit=1000")).unwrap();
        let mut by_url: HashMap<String, String> = HashMap::new();
        for c in v["items"].as_array().unwrap() {
            by_url.insert(
                c["rtsp_url"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
            );
        }
        (0..cameras).map(|i| by_url[&sim.url(i)].clone()).collect()
    };
    let online = || {
        let v: serde_json::Value =
            serde_json::from_str(&gw.api("/api/v1/cameras?limit=1000&state=online"))
                .unwrap_or_default();
        v["items"].as_array().map_or(0, |a| a.len())
    };
    let t0 = Instant::now();
    wait_for(Duration::from_secs(120), || online() >= cameras);
    println!(
        "soak: {} of {cameras} online after {:.1} s",
        online(),
        t0.elapsed().as_secs_f64()
    );

    // Churning viewers, on their own runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sessions = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    for v in 0..viewers {
        let (http, rtsp, key, ids) = (
            gw.http.clone(),
            gw.rtsp.clone(),
            gw.key.clone(),
            ids.clone(),
        );
        let (stop, sessions, bytes) = (stop.clone(), sessions.clone(), bytes.clone());
        rt.spawn(async move {
            let mut rng =
                Rng(0x9E37_79B9_7F4A_7C15 ^ (v as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            while !stop.load(Ordering::Relaxed) {
                let id = ids[rng.below(ids.len() as u64) as usize].clone();
                let hold = Duration::from_millis(1000 + rng.below(6000));
                let abort = rng.below(5) == 0;
                let got = match rng.below(3) {
                    0 => {
                        let steps = if abort { 1 + rng.below(2) as u8 } else { 3 };
                        let (rtsp, key) = (rtsp.clone(), key.clone());
                        tokio::task::spawn_blocking(move || {
                            rtsp_viewer(&rtsp, &id, &key, steps, hold)
                        })
                        .await
                        .unwrap_or(0)
                    }
                    1 => ws_viewer(&http, &id, &key, abort, hold).await,
                    _ => {
                        let (http, key) = (http.clone(), key.clone());
                        tokio::task::spawn_blocking(move || {
                            hls_viewer(&http, &id, &key, abort, hold)
                        })
                        .await
                        .unwrap_or(0)
                    }
                };
                sessions.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(got, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
            }
        });
    }

    // Faults and samples.
    let mut rng = Rng(t0.elapsed().as_nanos() as u64 | 1);
    let faults: Arc<Mutex<Vec<Faulted>>> = Arc::default();
    let mut samples: Vec<Sample> = Vec::new();
    let start = Instant::now();
    let mut next_fault = start;
    let mut next_sample = start;
    let mut last_cpu = (cpu_secs(pid), Instant::now());
    // Faults stop a backoff-and-a-half before the end, so that every one of
    // them has had its time to recover.
    let fault_until = start + run.saturating_sub(Duration::from_secs(25));
    while start.elapsed() < run {
        let now = Instant::now();
        if now >= next_fault && now < fault_until {
            next_fault = now + fault_every;
            let mut f = faults.lock().unwrap();
            let busy: Vec<usize> = f
                .iter()
                .filter(|x| x.ended.is_none())
                .map(|x| x.camera)
                .collect();
            let camera = rng.below(cameras as u64) as usize;
            if !busy.contains(&camera) && busy.len() < cameras / 5 + 1 {
                let fault = match rng.below(4) {
                    0 => Fault::Stop,
                    1 => Fault::Stall,
                    2 => Fault::Restart,
                    _ => Fault::UrlEdit,
                };
                match fault {
                    Fault::Stop => sim.stop(camera),
                    Fault::Stall => sim.set_stalled(camera, true),
                    Fault::Restart => {
                        let _ = sim.restart(camera);
                    }
                    Fault::UrlEdit => {
                        let other = (camera + 1) % cameras;
                        let _ = http_as(
                            &gw.http,
                            "PATCH",
                            &format!("/api/v1/cameras/{}", ids[camera]),
                            &gw.key,
                            &format!(r#"{{"rtsp_url":"{}"}}"#, sim.url(other)),
                        );
                    }
                }
                let lasts = match fault {
                    Fault::Restart => Duration::ZERO,
                    _ => Duration::from_secs(5 + rng.below(10)),
                };
                f.push(Faulted {
                    camera,
                    fault,
                    ends: now + lasts,
                    ended: None,
                    back_after: None,
                });
            }
        }
        // End faults whose time is up; then watch for recovery.
        {
            let mut f = faults.lock().unwrap();
            for x in f.iter_mut().filter(|x| x.ended.is_none() && now >= x.ends) {
                match x.fault {
                    Fault::Stop => {
                        let _ = sim.restart(x.camera);
                    }
                    Fault::Stall => sim.set_stalled(x.camera, false),
                    Fault::Restart => {}
                    Fault::UrlEdit => {
                        let _ = http_as(
                            &gw.http,
                            "PATCH",
                            &format!("/api/v1/cameras/{}", ids[x.camera]),
                            &gw.key,
                            &format!(r#"{{"rtsp_url":"{}"}}"#, sim.url(x.camera)),
                        );
                    }
                }
                x.ended = Some(Instant::now());
            }
            for x in f
                .iter_mut()
                .filter(|x| x.ended.is_some() && x.back_after.is_none())
            {
                let h: serde_json::Value = serde_json::from_str(
                    &gw.api(&format!("/api/v1/cameras/{}/health", ids[x.camera])),
                )
                .unwrap_or_default();
                if h["state"] == "online" || h["state"] == "degraded" {
                    x.back_after = Some(x.ended.unwrap().elapsed());
                }
            }
        }
        if now >= next_sample {
            next_sample = now + Duration::from_secs(10);
            let cpu = cpu_secs(pid);
            let cpu_pct =
                100.0 * (cpu - last_cpu.0) / last_cpu.1.elapsed().as_secs_f64().max(0.001);
            last_cpu = (cpu, Instant::now());
            let s = Sample {
                at_secs: start.elapsed().as_secs_f64(),
                rss_mib: rss_bytes(pid) as f64 / 1048576.0,
                fds: fds(pid),
                threads: threads(pid),
                cpu_pct,
                online: online(),
                viewers: sessions.load(Ordering::Relaxed),
            };
            println!(
                "soak: {:>7.0} s  RSS {:>6.1} MiB  fds {:>5}  threads {:>3}  CPU {:>5.1} %  online {:>4}/{cameras}  viewer sessions {}",
                s.at_secs, s.rss_mib, s.fds, s.threads, s.cpu_pct, s.online, s.viewers
            );
            samples.push(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    rt.shutdown_timeout(Duration::from_secs(15));

    // The checks.
    let mut failed: Vec<String> = Vec::new();
    let med = |v: Vec<f64>| {
        let mut v = v;
        median(&mut v)
    };
    let n = samples.len();
    let after_warmup: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_secs >= run.as_secs_f64() / 10.0)
        .collect();
    let rss: Vec<f64> = after_warmup.iter().map(|s| s.rss_mib).collect();
    let rss_med = med(rss.clone());
    let rss_dev = rss
        .iter()
        .map(|r| (r - rss_med).abs() / rss_med.max(1.0))
        .fold(0.0, f64::max);
    println!(
        "soak: RSS after the first tenth: median {rss_med:.1} MiB, largest deviation {:.1} %",
        rss_dev * 100.0
    );
    if minutes >= 30 && rss_dev > 0.05 {
        failed.push(format!(
            "RSS deviated {:.1} % from its median",
            rss_dev * 100.0
        ));
    }
    if n >= 8 {
        let q = n / 4;
        for (what, v) in [
            (
                "fds",
                samples.iter().map(|s| s.fds as f64).collect::<Vec<_>>(),
            ),
            (
                "threads",
                samples.iter().map(|s| s.threads as f64).collect::<Vec<_>>(),
            ),
        ] {
            let second = med(v[q..2 * q].to_vec());
            let last = med(v[3 * q..].to_vec());
            println!(
                "soak: {what}: second quarter median {second:.0}, last quarter median {last:.0}"
            );
            if last > second * 1.10 + 8.0 {
                failed.push(format!("{what} grew from {second:.0} to {last:.0}"));
            }
        }
    }
    let f = faults.lock().unwrap();
    let mut by_kind: HashMap<String, (usize, f64)> = HashMap::new();
    for x in f.iter() {
        let e = by_kind.entry(format!("{:?}", x.fault)).or_default();
        e.0 += 1;
        match x.back_after {
            Some(d) => e.1 = e.1.max(d.as_secs_f64()),
            None => failed.push(format!(
                "camera {} ({:?} fault) not online {:.0} s after its fault ended",
                x.camera,
                x.fault,
                x.ended.map_or(0.0, |t| t.elapsed().as_secs_f64())
            )),
        }
    }
    for (k, (count, worst)) in &by_kind {
        println!("soak: {count} {k} faults, back online at most {worst:.1} s after each ended");
    }
    // Backoff here is capped at 8 s (jittered); a camera is back within
    // one backoff plus its first frame.
    for x in f.iter() {
        if let Some(d) = x.back_after
            && d > Duration::from_secs(20)
        {
            failed.push(format!(
                "camera {} back only {:.1} s after its {:?} fault",
                x.camera,
                d.as_secs_f64(),
                x.fault
            ));
        }
    }
    drop(f);
    println!(
        "soak: {} viewer sessions, {:.1} MiB sent to them",
        sessions.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed) as f64 / 1048576.0
    );
    drop(gw);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let panics = log.lines().filter(|l| l.contains("panicked")).count();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    println!(
        "soak: {panics} panics, {} ERROR lines in the gateway's log",
        errors.len()
    );
    if panics > 0 {
        failed.push(format!("{panics} panics"));
    }
    for e in errors.iter().take(5) {
        failed.push(format!("error in the log: {e}"));
    }
    drop(sim);
    if failed.is_empty() {
        println!("soak: all checks held");
    } else {
        for f in &failed {
            println!("soak: FAILED: {f}");
        }
        std::process::exit(1);
    }
}
