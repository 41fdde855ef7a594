//! Prometheus metrics, served on the ops listener (`metrics.listen`,
//! loopback by default) at `/metrics`.
//!
//! Nothing is registered ahead of time: every scrape walks the gateway's
//! own state (the pull manager's cameras, the counters of recorder, probes
//! and webhooks) and writes the text then. A deleted camera is simply not
//! there at the next scrape, so it leaves no stale series.
//!
//! Every metric name is in this file. Per-camera series carry `camera_id`
//! and the county-level `district` (the first six digits of its district
//! code), which keeps district aggregation cheap in PromQL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::health::State as HealthState;
use crate::health::probe::ProbeCounters;
use crate::health::recorder::RecorderCounters;
use crate::health::webhook::WebhookCounters;
use crate::pull::PullManager;

pub mod text;

use text::{Exposition, Kind};

/// What the collector reads at scrape time.
pub struct Telemetry {
    pub pulls: Arc<PullManager>,
    pub recorder: Arc<RecorderCounters>,
    pub probes: Arc<ProbeCounters>,
    pub webhooks: Arc<WebhookCounters>,
    /// The RTSP relay's counters.
    pub rtsp: Arc<crate::relay::rtsp::RtspCounters>,
    /// The WebSocket live path's counters.
    pub ws: Arc<crate::relay::ViewerCounters>,
    /// The LL-HLS path's counters.
    pub hls: Arc<crate::relay::ViewerCounters>,
}

impl Telemetry {
    /// Each relay protocol's label and counters.
    pub fn protocols(&self) -> [(&'static str, &crate::relay::ViewerCounters); 3] {
        [("rtsp", &self.rtsp), ("ws", &self.ws), ("hls", &self.hls)]
    }

    pub fn new(pulls: Arc<PullManager>) -> Self {
        Telemetry {
            pulls,
            recorder: Default::default(),
            probes: Default::default(),
            webhooks: Default::default(),
            rtsp: Default::default(),
            ws: Default::default(),
            hls: Default::default(),
        }
    }
}

/// A histogram of durations, updated lock-free.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one counts values above every bound.
    counts: Vec<std::sync::atomic::AtomicU64>,
    sum_micros: std::sync::atomic::AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| Default::default()).collect(),
            sum_micros: Default::default(),
        }
    }

    pub fn observe(&self, secs: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((secs.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// (cumulative buckets, sum in seconds, count).
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            total += c.load(Ordering::Relaxed);
            buckets.push((*b, total));
        }
        total += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, sum, total)
    }
}

/// The county-level district of a district code: its first six digits
/// (the code itself when shorter).
pub fn county_of(code: &str) -> &str {
    code.get(..6).unwrap_or(code)
}

/// The whole exposition, now.
pub fn render(t: &Telemetry) -> String {
    let mut e = Exposition::new();
    let mut cams = t.pulls.all();
    cams.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let snaps: Vec<_> = cams
        .iter()
        .map(|(rt, cfg)| {
            let (state, _, _, stats) = rt.snapshot();
            let pulling = t.pulls.is_pulling(&cfg.id);
            (
                cfg.id.as_str(),
                county_of(&cfg.district_code),
                state,
                stats,
                pulling,
                rt.fanout.subscribers(),
            )
        })
        .collect();

    let name = "camgate_camera_state";
    e.family(
        name,
        "Health state of each camera: one series, value 1, labelled with the current state.",
        Kind::Gauge,
    );
    for (id, d, state, ..) in &snaps {
        e.sample(
            name,
            &[
                ("camera_id", id),
                ("district", d),
                ("state", state.as_str()),
            ],
            1.0,
        );
    }
    let name = "camgate_camera_up";
    e.family(
        name,
        "1 when the camera is online or degraded (video available), else 0.",
        Kind::Gauge,
    );
    for (id, d, state, ..) in &snaps {
        e.sample(
            name,
            &[("camera_id", id), ("district", d)],
            if state.is_up() { 1.0 } else { 0.0 },
        );
    }
    let name = "camgate_camera_reconnects_total";
    e.family(
        name,
        "Reconnects of each camera's pull since the gateway started.",
        Kind::Counter,
    );
    for (id, d, _, stats, ..) in &snaps {
        e.sample(
            name,
            &[("camera_id", id), ("district", d)],
            stats.reconnects as f64,
        );
    }
    let name = "camgate_camera_viewers";
    e.family(
        name,
        "Subscribers of each camera's stream (relay viewers, snapshots).",
        Kind::Gauge,
    );
    for (id, d, .., viewers) in &snaps {
        e.sample(name, &[("camera_id", id), ("district", d)], *viewers as f64);
    }
    let name = "camgate_camera_protocol_viewers";
    e.family(
        name,
        "Viewers of each camera per relay protocol (cameras with viewers).",
        Kind::Gauge,
    );
    for (protocol, c) in t.protocols() {
        let viewers = c.viewers();
        for (id, d, ..) in &snaps {
            if let Some(n) = viewers.get(&**id).filter(|n| **n > 0) {
                e.sample(
                    name,
                    &[("camera_id", id), ("district", d), ("protocol", protocol)],
                    *n as f64,
                );
            }
        }
    }
    // Stream stats only for cameras being pulled: the others have none.
    let pulled: Vec<_> = snaps.iter().filter(|s| s.4).collect();
    type Stat = fn(&crate::health::LiveStats) -> Option<f64>;
    let stream_stats: [(&str, &str, Stat); 4] = [
        (
            "camgate_camera_frames_per_second",
            "Video frame rate over the last seconds, for cameras being pulled.",
            |s| Some(s.frame_rate),
        ),
        (
            "camgate_camera_received_bytes_per_second",
            "Video data rate over the last seconds (bitrate / 8), for cameras being pulled.",
            |s| Some(s.bitrate_bps / 8.0),
        ),
        (
            "camgate_camera_key_frame_interval_seconds",
            "Seconds between the last two key frames, for cameras being pulled.",
            |s| s.key_frame_interval_secs,
        ),
        (
            "camgate_camera_last_frame_age_seconds",
            "Seconds since the last frame, for cameras being pulled.",
            |s| s.last_frame_age_secs,
        ),
    ];
    for (name, help, get) in stream_stats {
        e.family(name, help, Kind::Gauge);
        for (id, d, _, stats, ..) in &pulled {
            if let Some(v) = get(stats) {
                e.sample(name, &[("camera_id", id), ("district", d)], v);
            }
        }
    }

    // Per county-level district.
    let mut districts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for ((_, cfg), (_, d, state, ..)) in cams.iter().zip(&snaps) {
        let entry = districts.entry(d).or_default();
        if cfg.enabled {
            entry.0 += 1;
            if state.is_up() {
                entry.1 += 1;
            }
        }
    }
    for (name, help, online) in [
        (
            "camgate_district_cameras_enabled",
            "Enabled cameras per county-level district.",
            false,
        ),
        (
            "camgate_district_cameras_online",
            "Enabled cameras online or degraded per county-level district.",
            true,
        ),
    ] {
        e.family(name, help, Kind::Gauge);
        for (d, (enabled, up)) in &districts {
            let v = if online { *up } else { *enabled };
            e.sample(name, &[("district", d)], v as f64);
        }
    }

    // Gateway.
    let totals = t.pulls.totals();
    let name = "camgate_cameras";
    e.family(name, "Cameras known to the gateway, by state.", Kind::Gauge);
    for s in HealthState::ALL {
        let n = snaps.iter().filter(|x| x.2 == s).count();
        e.sample(name, &[("state", s.as_str())], n as f64);
    }
    e.single(
        "camgate_pulls_active",
        "Cameras being pulled now.",
        Kind::Gauge,
        snaps.iter().filter(|s| s.4).count() as f64,
    );
    e.single(
        "camgate_received_bytes_total",
        "Media bytes received from cameras.",
        Kind::Counter,
        totals.bytes_in as f64,
    );
    e.single(
        "camgate_received_frames_total",
        "Frames received from cameras.",
        Kind::Counter,
        totals.frames_in as f64,
    );
    type Count = fn(&crate::relay::ViewerCounters) -> u64;
    let counters: [(&str, &str, Count); 3] = [
        (
            "camgate_sent_bytes_total",
            "Media bytes sent to viewers, per relay protocol.",
            |c| c.bytes_out.load(Ordering::Relaxed),
        ),
        (
            "camgate_relay_sessions_total",
            "Viewer sessions started, per relay protocol (RTSP: PLAY; WebSocket: \
             an opened stream; LL-HLS: a client address new to the camera).",
            |c| c.sessions.load(Ordering::Relaxed),
        ),
        (
            "camgate_relay_dropped_frames_total",
            "Frames a relay did not send because its viewer (LL-HLS: the camera's \
             muxer) had fallen behind, per protocol.",
            |c| c.frames_dropped.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, count) in counters {
        e.family(name, help, Kind::Counter);
        for (protocol, c) in t.protocols() {
            e.sample(name, &[("protocol", protocol)], count(c) as f64);
        }
    }
    // Histograms for the connection-based protocols (LL-HLS has no play
    // request, and its frames leave in parts, not one by one).
    type Hist = fn(&crate::relay::ViewerCounters) -> &crate::metrics::Histogram;
    let histograms: [(&str, &str, Hist); 2] = [
        (
            "camgate_time_to_first_frame_seconds",
            "From a viewer's play request (WebSocket: its opening) to its first frame sent.",
            |c| &c.first_frame,
        ),
        (
            "camgate_relay_delay_seconds",
            "From a live frame's arrival at the gateway to the end of its write to a viewer.",
            |c| &c.delay,
        ),
    ];
    for (name, help, hist) in histograms {
        e.family(name, help, Kind::Histogram);
        for (protocol, c) in [("rtsp", &t.rtsp), ("ws", &t.ws)] {
            let (buckets, sum, count) = hist(c).snapshot();
            e.histogram(name, &[("protocol", protocol)], &buckets, sum, count);
        }
    }
    e.single(
        "camgate_dropped_frames_total",
        "Frames not delivered to a subscriber that had fallen behind.",
        Kind::Counter,
        totals.frames_dropped as f64,
    );
    e.single(
        "camgate_subscriber_skips_total",
        "Times a subscriber fell behind and skipped to the next key frame.",
        Kind::Counter,
        totals.skips as f64,
    );
    e.single(
        "camgate_subscribers_lagged_out_total",
        "Subscribers disconnected for staying behind too long.",
        Kind::Counter,
        totals.lagged_out as f64,
    );
    let name = "camgate_probes_total";
    e.family(
        name,
        "Probes (OPTIONS + DESCRIBE) of cameras nobody pulls, by result.",
        Kind::Counter,
    );
    for (result, n) in t.probes.by_result() {
        e.sample(name, &[("result", result)], n as f64);
    }
    let name = "camgate_webhook_deliveries_total";
    e.family(
        name,
        "Webhook deliveries by outcome: delivered, failed (given up after every attempt), dropped (queue full).",
        Kind::Counter,
    );
    let w = &t.webhooks;
    for (result, c) in [
        ("delivered", &w.delivered),
        ("failed", &w.given_up),
        ("dropped", &w.dropped),
    ] {
        e.sample(
            name,
            &[("result", result)],
            c.load(Ordering::Relaxed) as f64,
        );
    }
    e.single(
        "camgate_webhook_attempt_failures_total",
        "Webhook attempts that failed (each retry counts).",
        Kind::Counter,
        w.attempt_failures.load(Ordering::Relaxed) as f64,
    );
    let r = &t.recorder;
    e.single(
        "camgate_transitions_stored_total",
        "Camera state changes written to the database.",
        Kind::Counter,
        r.stored.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "camgate_transitions_dropped_total",
        "Camera state changes lost because the database was unavailable too long.",
        Kind::Counter,
        r.dropped.load(Ordering::Relaxed) as f64,
    );
    if let Some(p) = process_stats() {
        e.single(
            "camgate_process_cpu_seconds_total",
            "CPU time of the gateway process, user and system.",
            Kind::Counter,
            p.cpu_secs,
        );
        e.single(
            "camgate_process_resident_memory_bytes",
            "Resident memory of the gateway process.",
            Kind::Gauge,
            p.rss_bytes as f64,
        );
    }
    e.finish()
}

/// CPU and memory of this process.
#[derive(Debug, Clone, Copy)]
pub struct ProcessStats {
    pub cpu_secs: f64,
    pub rss_bytes: u64,
}

/// Reads `/proc/self`; `None` where there is no procfs.
pub fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 here.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads configuration values.
    let (hz, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(ProcessStats {
        cpu_secs: ticks as f64 / hz.max(1) as f64,
        rss_bytes: pages * page.max(1) as u64,
    })
}

/// The ops router: `GET /metrics`.
pub fn router(t: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(t)
}

async fn metrics_handler(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&t),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        let (buckets, sum, count) = h.snapshot();
        assert_eq!(buckets, vec![(0.1, 2), (1.0, 3)]);
        assert_eq!(count, 4);
        assert!((sum - 3.65).abs() < 1e-6);
        let mut e = text::Exposition::new();
        e.family("x_seconds", "X.", Kind::Histogram);
        e.histogram("x_seconds", &[("protocol", "rtsp")], &buckets, sum, count);
        let t = e.finish();
        assert!(
            t.contains("x_seconds_bucket{protocol=\"rtsp\",le=\"0.1\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("x_seconds_bucket{protocol=\"rtsp\",le=\"+Inf\"} 4\n"),
            "{t}"
        );
        assert!(t.contains("x_seconds_count{protocol=\"rtsp\"} 4\n"), "{t}");
    }

    #[test]
    fn county_labels() {
        assert_eq!(county_of("620602001"), "620602");
        assert_eq!(county_of("6206"), "6206");
    }

    #[test]
    fn reads_its_own_process() {
        let p = process_stats().expect("procfs on Linux");
        assert!(p.rss_bytes > 1024 * 1024, "{p:?}");
        assert!(p.cpu_secs >= 0.0);
    }
}
