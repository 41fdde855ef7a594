//! Probe benchmark: how many OPTIONS + DESCRIBE probes per second the
//! gateway's probe client completes against idle cameras.
//!
//! The cameras are `camgate simulate` (gst-rtsp-server) in its own process,
//! none of them pulled. Workers share a round-robin over the mounts, each
//! probe on a new TCP connection as the gateway's scheduler makes them, at
//! the default `probe_concurrency` (64) and at 16. Reported per concurrency
//! (median of one-second slices): completed good DESCRIBEs per second,
//! failures, latency p50/p99, this process's CPU per 1,000 probes, and the
//! simulator's CPU (it shares the machine's cores with the client).
//!
//! Run: `cargo bench --features gstreamer --bench probe`.
//! CAMGATE_BENCH_CAMERAS (mounts, default 200), CAMGATE_BENCH_SECS (window
//! per concurrency, default 10); CAMGATE_BENCH_VERBOSE=1 prints each failure. Target from the issue: >= 500 DESCRIBE/s.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camgate::catalogue::Transport;
use camgate::pull::PullTarget;
use camgate::pull::describe;

use support::*;

fn target(port: u16, i: usize) -> PullTarget {
    PullTarget {
        url: format!("rtsp://127.0.0.1:{port}/cam/{i}"),
        username: None,
        password: None,
        transport: Transport::Tcp,
    }
}

struct Result {
    concurrency: usize,
    per_sec: f64,
    failures: u64,
    /// Failures by reason.
    reasons: BTreeMap<String, u64>,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_1000: f64,
    sim_cpu_pct: f64,
}

async fn run(port: u16, mounts: usize, concurrency: usize, window: Duration, sim: u32) -> Result {
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let reasons = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let deadline = Instant::now() + window;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, ok, failed) = (next.clone(), ok.clone(), failed.clone());
        let reasons = reasons.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) % mounts;
                let t = Instant::now();
                match describe::probe(&target(port, i)).await {
                    Ok(Some(_)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let why = match other {
                            Err(e) => {
                                if std::env::var_os("CAMGATE_BENCH_VERBOSE").is_some() {
                                    eprintln!(
                                        "  probe of mount {i}: {}: {}",
                                        e.reason.as_str(),
                                        e.message
                                    );
                                }
                                e.reason.as_str().to_string()
                            }
                            Ok(_) => "no video codec".into(),
                        };
                        *reasons.lock().unwrap().entry(why).or_default() += 1;
                    }
                }
            }
            lat
        }));
    }
    // One-second slices of the completed count, and CPU over the window.
    let me = std::process::id();
    let (cpu0, sim0, start) = (cpu_secs(me), cpu_secs(sim), Instant::now());
    let mut rates = Vec::new();
    let mut last = (Instant::now(), 0u64);
    while Instant::now() + Duration::from_millis(500) < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (Instant::now(), ok.load(Ordering::Relaxed));
        rates.push((now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64());
        last = now;
    }
    let (cpu1, sim1, elapsed) = (cpu_secs(me), cpu_secs(sim), start.elapsed());
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    let done = ok.load(Ordering::Relaxed).max(1) as f64;
    Result {
        concurrency,
        per_sec: median(&mut rates),
        failures: failed.load(Ordering::Relaxed),
        reasons: reasons.lock().unwrap().clone(),
        p50_ms: pct(0.5).copied().unwrap_or(f64::NAN),
        p99_ms: pct(0.99).copied().unwrap_or(f64::NAN),
        cpu_ms_per_1000: (cpu1 - cpu0) * 1000.0 / done * 1000.0,
        sim_cpu_pct: (sim1 - sim0) / elapsed.as_secs_f64() * 100.0,
    }
}

fn main() {
    let mounts = sizes("CAMGATE_BENCH_CAMERAS", &[200])[0];
    let window = Duration::from_secs(secs("CAMGATE_BENCH_SECS", 10));
    let (sim, port) = start_simulator(&["--cameras", &mounts.to_string(), "--gop-frames", "25"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    eprintln!(
        "probe bench: {mounts} idle mounts, {} s per concurrency",
        window.as_secs()
    );
    let results: Vec<Result> = rt.block_on(async {
        // Warm up: the first DESCRIBE of a mount builds its media.
        let warm = run(port, mounts, 64, Duration::from_secs(3), sim.pid()).await;
        eprintln!("  warm-up: {:.0} DESCRIBE/s", warm.per_sec);
        let mut out = Vec::new();
        for c in [16, 64] {
            out.push(run(port, mounts, c, window, sim.pid()).await);
        }
        out
    });
    println!();
    println!(
        "| concurrency | DESCRIBE/s | failures | p50 | p99 | client CPU per 1,000 probes | simulator CPU |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        let why: Vec<String> = r.reasons.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let failures = if why.is_empty() {
            "0".to_string()
        } else {
            format!("{} ({})", r.failures, why.join(", "))
        };
        println!(
            "| {} | {:.0} | {} | {:.1} ms | {:.1} ms | {:.0} ms | {:.0} % |",
            r.concurrency,
            r.per_sec,
            failures,
            r.p50_ms,
            r.p99_ms,
            r.cpu_ms_per_1000,
            r.sim_cpu_pct
        );
    }
    println!("\ntarget: >= 500 DESCRIBE/s");
}
