//! Pulling benchmark: the gateway's CPU and resident memory per pulled
//! stream at 100, 500 and 1,000 cameras.
//!
//! Real processes on both sides: `camgate simulate` (gst-rtsp-server, one
//! x264 encoder shared by every mount, `snow` pattern so each stream really
//! runs at its 1 Mbit/s bitrate, 25 fps, a key frame every 2 s) and
//! `camgate serve` on SQLite with every camera `always` pulled over TCP.
//! When every camera is online (or the wait runs out: the figure says how
//! many were), the bench samples the gateway's CPU time and RSS from /proc
//! and its received bytes and frames from /metrics over a window split into
//! slices, and reports medians over the slices:
//! - CPU per stream, % of one core, and the same per received Mbit/s;
//! - RSS per stream: (RSS with N pulls - RSS of the same gateway with no
//!   cameras) / N, GOP caches included;
//! - what each stream delivered (Mbit/s, fps) and the simulator's own CPU,
//!   since on a small machine it shares the cores with the gateway.
//!
//! Run: `cargo bench --features gstreamer --bench pull`.
//! CAMGATE_BENCH_CAMERAS (default `100,500,1000`) and
//! CAMGATE_BENCH_SECS (window, default 30) change the runs.
//! Targets from the issue: under 0.1 % of one core and under 1 MiB per
//! pulled 1 Mbit/s stream.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// One slice's sample.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    gw_cpu: f64,
    sim_cpu: f64,
    bytes: f64,
    frames: f64,
}

fn sample(gw: &Gateway, sim: &Proc) -> Sample {
    let m = gw.scrape();
    Sample {
        at: Instant::now(),
        gw_cpu: cpu_secs(gw.proc.pid()),
        sim_cpu: cpu_secs(sim.pid()),
        bytes: metric_sum(&m, "camgate_received_bytes_total"),
        frames: metric_sum(&m, "camgate_received_frames_total"),
    }
}

struct Row {
    n: usize,
    online: usize,
    cpu_pct_per_stream: f64,
    mbps_per_stream: f64,
    fps_per_stream: f64,
    rss_per_stream: f64,
    rss_total: f64,
    sim_cpu_pct: f64,
    gw_cpu_pct: f64,
}

fn run(n: usize, window: Duration, base_rss: f64) -> Row {
    let (sim, port) = start_simulator(&[
        "--cameras",
        &n.to_string(),
        "--pattern",
        "snow",
        "--bitrate-kbps",
        "1000",
        "--fps",
        "25",
        "--gop-frames",
        "50",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("name,district,point_type,ownership,rtsp_url,pull_mode\n");
    for i in 0..n {
        csv.push_str(&format!(
            "bench {i},620602,1,public,rtsp://127.0.0.1:{port}/cam/{i},always\n"
        ));
    }
    // First connects spread over 10 s, as a real start would.
    let gw = Gateway::start(dir.path(), Some(&csv), 10);
    let started = Instant::now();
    let limit = Duration::from_secs(60 + n as u64 / 10);
    let online = || metric_sum(&gw.scrape(), "camgate_district_cameras_online") as usize;
    let all = wait_for(limit, || online() >= n);
    eprintln!(
        "  {n} cameras: {} online after {:.1} s{}",
        online(),
        started.elapsed().as_secs_f64(),
        if all { "" } else { " (wait ran out)" }
    );
    std::thread::sleep(Duration::from_secs(5));

    let slices = 6;
    let mut samples = vec![sample(&gw, &sim)];
    let mut rss = Vec::new();
    for _ in 0..slices {
        std::thread::sleep(window / slices);
        samples.push(sample(&gw, &sim));
        rss.push(rss_bytes(gw.proc.pid()) as f64);
    }
    let online_now = online();
    let rate = |f: &dyn Fn(&Sample) -> f64| {
        let mut v: Vec<f64> = samples
            .windows(2)
            .map(|w| (f(&w[1]) - f(&w[0])) / (w[1].at - w[0].at).as_secs_f64())
            .collect();
        median(&mut v)
    };
    let gw_cpu = rate(&|s| s.gw_cpu);
    let sim_cpu = rate(&|s| s.sim_cpu);
    let bps = rate(&|s| s.bytes) * 8.0;
    let fps = rate(&|s| s.frames);
    let rss_total = median(&mut rss);
    let streams = online_now.max(1) as f64;
    Row {
        n,
        online: online_now,
        cpu_pct_per_stream: gw_cpu * 100.0 / streams,
        mbps_per_stream: bps / streams / 1e6,
        fps_per_stream: fps / streams,
        rss_per_stream: (rss_total - base_rss) / streams,
        rss_total,
        sim_cpu_pct: sim_cpu * 100.0,
        gw_cpu_pct: gw_cpu * 100.0,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ignored too.
    let sizes = sizes("CAMGATE_BENCH_CAMERAS", &[100, 500, 1000]);
    let window = Duration::from_secs(secs("CAMGATE_BENCH_SECS", 30));
    eprintln!(
        "pull bench: {sizes:?} cameras, {} s window, {} cores",
        window.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // The same gateway with no cameras: the baseline for memory.
    let base_rss = {
        let dir = tempfile::tempdir().unwrap();
        let gw = Gateway::start(dir.path(), None, 0);
        std::thread::sleep(Duration::from_secs(3));
        let mut v: Vec<f64> = (0..5)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(200));
                rss_bytes(gw.proc.pid()) as f64
            })
            .collect();
        median(&mut v)
    };
    eprintln!("  baseline RSS {:.1} MiB", base_rss / 1048576.0);

    let rows: Vec<Row> = sizes.iter().map(|&n| run(n, window, base_rss)).collect();

    println!();
    println!(
        "| cameras | online | gateway CPU per stream (% of a core) | per received Mbit/s | RSS per stream (MiB) | gateway RSS (MiB) | received per stream | gateway CPU | simulator CPU |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} % | {:.3} % | {:.2} | {:.0} | {:.2} Mbit/s, {:.1} fps | {:.0} % | {:.0} % |",
            r.n,
            r.online,
            r.cpu_pct_per_stream,
            r.cpu_pct_per_stream / r.mbps_per_stream.max(1e-9),
            r.rss_per_stream / 1048576.0,
            r.rss_total / 1048576.0,
            r.mbps_per_stream,
            r.fps_per_stream,
            r.gw_cpu_pct,
            r.sim_cpu_pct,
        );
    }
    println!(
        "\ntargets: < 0.1 % of one core and < 1 MiB per pulled 1 Mbit/s stream; baseline RSS {:.1} MiB",
        base_rss / 1048576.0
    );
}
