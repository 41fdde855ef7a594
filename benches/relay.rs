//! Relay benchmark: one camera re-served over RTSP to 1, 100 and 1,000
//! viewers, the time from a viewer's PLAY to its first key frame, and the
//! time a frame's RTP packets spend inside the gateway.
//!
//! Real processes: `camgate simulate` (gst-rtsp-server, one camera, `snow`
//! at 1 Mbit/s, 25 fps, a key frame every 2 s) and `camgate serve` pulling
//! it over TCP. The viewers are this bench's own minimal RTSP clients (TCP
//! interleaved, video track), all on one thread of their own, so 1,000 of
//! them cost little next to the gateway: each reads the interleaved RTP,
//! counts bytes and frames (marker bits) and checks that its first packet
//! starts a key frame.
//!
//! Per viewer count, over a window split into slices (medians over slices):
//! - gateway CPU (% of one core) and the same per viewer;
//! - egress, Mbit/s, from `camgate_sent_bytes_total{protocol="rtsp"}`;
//! - frames dropped for slow viewers (`camgate_relay_dropped_frames_total`)
//!   and viewers that ended early;
//! - frames each viewer received per second (median and minimum over viewers);
//! - the time a live frame spent inside the gateway, from its arrival (its
//!   last RTP packet read from the camera) to the end of its write to the
//!   viewer's socket: p50 and p99 over the window, interpolated within the
//!   buckets of `camgate_relay_delay_seconds{protocol="rtsp"}`.
//!
//! Then 200 viewers one after another, each timed from sending PLAY to
//! receiving the last packet of its first frame (a key frame, from the GOP
//! cache): median, p90 and max.
//!
//! Run: `cargo bench --features gstreamer --bench relay`.
//! CAMGATE_BENCH_VIEWERS (default `1,100,1000`), CAMGATE_BENCH_SECS (window,
//! default 20) and CAMGATE_BENCH_KBPS (camera bitrate, default 1000) change
//! the runs. Targets from the issue: PLAY to first key frame median ≤ 50 ms
//! on loopback; p99 time inside the gateway ≤ 5 ms.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use support::*;

/// What one viewer has seen.
#[derive(Default)]
struct Seen {
    bytes: AtomicU64,
    frames: AtomicU64,
    /// Microseconds from sending PLAY to the end of the first frame.
    first_frame_us: AtomicU64,
    /// The first packet did not start a key frame.
    first_not_key: AtomicBool,
    ended: AtomicBool,
}

/// Reads one RTSP response (head and body) from the front of `buf`,
/// reading more from `s` as needed; returns the head.
async fn response(s: &mut TcpStream, buf: &mut BytesMut) -> Result<String, String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let body = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + body {
                read(s, buf).await?;
            }
            buf.advance(end + 4 + body);
            if !head.starts_with("RTSP/1.0 200") {
                return Err(head);
            }
            return Ok(head);
        }
        read(s, buf).await?;
    }
}

async fn read(s: &mut TcpStream, buf: &mut BytesMut) -> Result<(), String> {
    buf.reserve(64 * 1024);
    match s.read_buf(buf).await {
        Ok(0) => Err("closed".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether an H.264 RTP payload starts a key frame: parameter sets, an IDR
/// slice, an aggregation packet, or the first fragment of an IDR slice.
fn starts_key(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        Some(5 | 7 | 8 | 24) => true,
        Some(28) => payload
            .get(1)
            .is_some_and(|b| b & 0x80 != 0 && b & 0x1f == 5),
        _ => false,
    }
}

/// The DESCRIBE's credentials: Basic with the gateway's API key (the
/// connection stays authenticated for SETUP and PLAY).
fn rtsp_auth(gw: &Gateway) -> Arc<str> {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("bench:{}", gw.key));
    format!("Authorization: Basic {basic}\r\n").into()
}

async fn send(s: &mut TcpStream, req: String) -> Result<(), String> {
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())
}

/// One viewer: DESCRIBE, SETUP (TCP interleaved), PLAY, then reads until
/// `stop`, or only until its first frame when `first_only`.
async fn viewer(
    addr: String,
    url: String,
    auth: Arc<str>,
    seen: Arc<Seen>,
    stop: CancellationToken,
    first_only: bool,
) -> Result<(), String> {
    let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    send(
        &mut s,
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n{auth}\r\n"),
    )
    .await?;
    response(&mut s, &mut buf).await?;
    send(
        &mut s,
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    )
    .await?;
    let head = response(&mut s, &mut buf).await?;
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .ok_or("no session")?
        .to_string();
    let play = Instant::now();
    send(
        &mut s,
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"),
    )
    .await?;
    response(&mut s, &mut buf).await?;
    let mut first_packet = true;
    loop {
        // Every whole interleaved packet in the buffer.
        while buf.len() >= 4 {
            if buf[0] != b'$' {
                return Err(format!("lost framing at byte {:#04x}", buf[0]));
            }
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let channel = buf[1];
            if channel == 0 && len >= 12 {
                let rtp = &buf[4..4 + len];
                let header = 12 + 4 * (rtp[0] & 0x0f) as usize;
                if first_packet {
                    first_packet = false;
                    if !starts_key(rtp.get(header..).unwrap_or(&[])) {
                        seen.first_not_key.store(true, Ordering::Relaxed);
                    }
                }
                // A marker bit ends a frame; the first one is timed.
                if rtp[1] & 0x80 != 0 && seen.frames.fetch_add(1, Ordering::Relaxed) == 0 {
                    seen.first_frame_us
                        .store(play.elapsed().as_micros() as u64, Ordering::Relaxed);
                    if first_only {
                        return Ok(());
                    }
                }
            }
            seen.bytes.fetch_add(4 + len as u64, Ordering::Relaxed);
            buf.advance(4 + len);
        }
        tokio::select! {
            r = read(&mut s, &mut buf) => r?,
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

/// Cumulative histogram buckets `(le, count)` of `name` with `label`.
fn buckets(text: &str, name: &str, label: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{{label},le=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|r| {
            let (le, rest) = r.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, rest.trim().parse().ok()?))
        })
        .collect()
}

/// Quantile `q` of the observations between two snapshots of a histogram,
/// interpolated linearly within its bucket; `None` without observations.
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let b = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, c - b)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = q * total;
    let mut lower = (0.0, 0.0);
    for (le, cum) in delta {
        if cum >= want {
            if le.is_infinite() {
                return Some(f64::INFINITY);
            }
            let span = (cum - lower.1).max(1.0);
            return Some(lower.0 + (le - lower.0) * (want - lower.1) / span);
        }
        lower = (le, cum);
    }
    None
}

/// A labelled sample's value.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn self_cpu() -> f64 {
    cpu_secs(std::process::id())
}

struct Row {
    viewers: usize,
    playing: usize,
    gw_cpu: f64,
    egress_mbps: f64,
    fps_median: f64,
    fps_min: f64,
    dropped: f64,
    ended: usize,
    delay_p50: Option<f64>,
    delay_p99: Option<f64>,
    client_cpu: f64,
    sim_cpu: f64,
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.is_infinite() => "> 1000 ms".into(),
        Some(v) => format!("{:.2} ms", v * 1000.0),
    }
}

fn run(
    rt: &tokio::runtime::Runtime,
    gw: &Gateway,
    sim: &Proc,
    url: &str,
    n: usize,
    window: Duration,
) -> Row {
    let stop = CancellationToken::new();
    let seen: Vec<Arc<Seen>> = (0..n).map(|_| Arc::default()).collect();
    let start = Instant::now();
    for (i, s) in seen.iter().enumerate() {
        let (addr, url, s, stop) = (gw.rtsp.clone(), url.to_string(), s.clone(), stop.clone());
        let auth = rtsp_auth(gw);
        rt.spawn(async move {
            let r = viewer(addr, url, auth, s.clone(), stop.clone(), false).await;
            if let (Err(e), false) = (r, stop.is_cancelled()) {
                eprintln!("  viewer ended: {e}");
            }
            s.ended.store(true, Ordering::Relaxed);
        });
        // About 500 new viewers a second, as a burst of centres would.
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let playing = || {
        seen.iter()
            .filter(|s| s.frames.load(Ordering::Relaxed) > 0)
            .count()
    };
    wait_for(Duration::from_secs(30 + n as u64 / 20), || playing() >= n);
    eprintln!(
        "  {n} viewers: {} playing after {:.1} s",
        playing(),
        start.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(3));

    #[derive(Clone)]
    struct Snap {
        at: Instant,
        gw_cpu: f64,
        sim_cpu: f64,
        client_cpu: f64,
        sent: f64,
        dropped: f64,
        delay: Vec<(f64, f64)>,
        frames: Vec<u64>,
    }
    let snap = || {
        let m = gw.scrape();
        Snap {
            at: Instant::now(),
            gw_cpu: cpu_secs(gw.proc.pid()),
            sim_cpu: cpu_secs(sim.pid()),
            client_cpu: self_cpu(),
            sent: sample(&m, "camgate_sent_bytes_total{protocol=\"rtsp\"}"),
            dropped: sample(&m, "camgate_relay_dropped_frames_total{protocol=\"rtsp\"}"),
            delay: buckets(&m, "camgate_relay_delay_seconds", "protocol=\"rtsp\""),
            frames: seen
                .iter()
                .map(|s| s.frames.load(Ordering::Relaxed))
                .collect(),
        }
    };
    let slices = 5;
    let mut snaps = vec![snap()];
    for _ in 0..slices {
        std::thread::sleep(window / slices);
        snaps.push(snap());
    }
    let rate = |f: &dyn Fn(&Snap) -> f64| {
        let mut v: Vec<f64> = snaps
            .windows(2)
            .map(|w| (f(&w[1]) - f(&w[0])) / (w[1].at - w[0].at).as_secs_f64())
            .collect();
        median(&mut v)
    };
    let (first, last) = (&snaps[0], &snaps[snaps.len() - 1]);
    let secs = (last.at - first.at).as_secs_f64();
    let mut fps: Vec<f64> = first
        .frames
        .iter()
        .zip(&last.frames)
        .map(|(a, b)| (b - a) as f64 / secs)
        .collect();
    let fps_min = fps.iter().copied().fold(f64::INFINITY, f64::min);
    let row = Row {
        viewers: n,
        playing: playing(),
        gw_cpu: rate(&|s| s.gw_cpu) * 100.0,
        egress_mbps: rate(&|s| s.sent) * 8.0 / 1e6,
        fps_median: median(&mut fps),
        fps_min,
        dropped: last.dropped - first.dropped,
        ended: seen
            .iter()
            .filter(|s| s.ended.load(Ordering::Relaxed))
            .count(),
        delay_p50: quantile(&first.delay, &last.delay, 0.5),
        delay_p99: quantile(&first.delay, &last.delay, 0.99),
        client_cpu: rate(&|s| s.client_cpu) * 100.0,
        sim_cpu: rate(&|s| s.sim_cpu) * 100.0,
    };
    stop.cancel();
    // Every viewer gone before the next run.
    let gone = wait_for(Duration::from_secs(30), || {
        !gw.scrape()
            .lines()
            .any(|l| l.starts_with("camgate_camera_protocol_viewers{"))
    });
    if !gone {
        eprintln!("  viewers still counted 30 s after they left");
    }
    row
}

/// PLAY to the end of the first frame for `count` viewers, one at a time.
fn first_frames(
    rt: &tokio::runtime::Runtime,
    gw: &Gateway,
    url: &str,
    count: usize,
) -> (Vec<f64>, usize) {
    let mut times = Vec::new();
    let mut not_key = 0;
    for _ in 0..count {
        let seen = Arc::new(Seen::default());
        let one = viewer(
            gw.rtsp.clone(),
            url.to_string(),
            rtsp_auth(gw),
            seen.clone(),
            CancellationToken::new(),
            true,
        );
        let r = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), one).await });
        match r {
            Ok(Ok(())) => {
                times.push(seen.first_frame_us.load(Ordering::Relaxed) as f64 / 1000.0);
                not_key += usize::from(seen.first_not_key.load(Ordering::Relaxed));
            }
            Ok(Err(e)) => eprintln!("  first-frame viewer failed: {e}"),
            Err(_) => eprintln!("  first-frame viewer timed out"),
        }
        // Spread the joins over the GOP (a key frame every 2 s).
        std::thread::sleep(Duration::from_millis(fastrand::u64(10..60)));
    }
    (times, not_key)
}

fn main() {
    let sizes = sizes("CAMGATE_BENCH_VIEWERS", &[1, 100, 1000]);
    let window = Duration::from_secs(secs("CAMGATE_BENCH_SECS", 20));
    let kbps = secs("CAMGATE_BENCH_KBPS", 1000);
    eprintln!(
        "relay bench: {sizes:?} RTSP viewers of one {kbps} kbit/s camera, {} s window, {} cores",
        window.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (sim, port) = start_simulator(&[
        "--cameras",
        "1",
        "--pattern",
        "snow",
        "--bitrate-kbps",
        &kbps.to_string(),
        "--fps",
        "25",
        "--gop-frames",
        "50",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "name,district,point_type,ownership,rtsp_url,pull_mode\n\
         relay bench,620602,1,public,rtsp://127.0.0.1:{port}/cam/0,always\n"
    );
    let gw = Gateway::start(dir.path(), Some(&csv), 0);
    let online = wait_for(Duration::from_secs(30), || {
        metric_sum(&gw.scrape(), "camgate_district_cameras_online") >= 1.0
    });
    assert!(online, "the camera came online");
    let id = gw
        .api("/api/v1/cameras?limit=1")
        .split("\"id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the camera's id")
        .to_string();
    let url = format!("rtsp://{}/cam/{id}", gw.rtsp);
    // The viewers' own thread: one worker, apart from the gateway's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));

    let idle = {
        let (a, t) = (cpu_secs(gw.proc.pid()), Instant::now());
        std::thread::sleep(Duration::from_secs(5));
        (cpu_secs(gw.proc.pid()) - a) / t.elapsed().as_secs_f64() * 100.0
    };
    eprintln!("  gateway CPU with no viewers: {idle:.1} %");

    let (mut ttff, not_key) = first_frames(&rt, &gw, &url, 200);
    let n = ttff.len();
    let ttff_median = median(&mut ttff);
    let p90 = ttff[(n * 9 / 10).min(n.saturating_sub(1))];
    let max = ttff.last().copied().unwrap_or(f64::NAN);

    let rows: Vec<Row> = sizes
        .iter()
        .map(|&n| run(&rt, &gw, &sim, &url, n, window))
        .collect();

    println!();
    println!(
        "| viewers | playing | gateway CPU | per viewer | egress | frames/s per viewer (median, min) | dropped frames | ended early | inside the gateway p50 | p99 | client CPU | simulator CPU |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} % | {:.3} % | {:.1} Mbit/s | {:.1}, {:.1} | {:.0} | {} | {} | {} | {:.0} % | {:.0} % |",
            r.viewers,
            r.playing,
            r.gw_cpu,
            (r.gw_cpu - idle).max(0.0) / r.viewers as f64,
            r.egress_mbps,
            r.fps_median,
            r.fps_min,
            r.dropped,
            r.ended,
            fmt_ms(r.delay_p50),
            fmt_ms(r.delay_p99),
            r.client_cpu,
            r.sim_cpu,
        );
    }
    println!(
        "\ngateway CPU with no viewers: {idle:.1} % (per viewer = (CPU - that) / viewers)\n\
         PLAY to the end of the first key frame, {n} viewers one at a time: \
         median {ttff_median:.1} ms, p90 {p90:.1} ms, max {max:.1} ms; \
         first frame not a key frame: {not_key}\n\
         targets: PLAY to first key frame median <= 50 ms; p99 inside the gateway <= 5 ms"
    );
}
