//! Supervisor and manager behaviour through the `PullSource` seam, on
//! tokio's paused clock (no sleeps, no sockets).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::catalogue::PullMode;
use crate::health::{Reason, State, Transition};
use crate::media::{Codec, Frame, StreamInfo, Track};

/// How a fake camera behaves, by URL.
#[derive(Clone, Copy)]
enum Behaviour {
    /// 25 fps, a key frame every second, forever.
    Ok,
    /// 10 frames, then nothing (the connection stays open).
    StallAfter10,
    Fail(Reason),
}

#[derive(Default)]
struct FakeSource {
    behaviours: Mutex<HashMap<String, Behaviour>>,
    opens: Mutex<Vec<String>>,
    live: Arc<AtomicUsize>,
}

impl FakeSource {
    fn set(&self, url: &str, b: Behaviour) {
        self.behaviours.lock().unwrap().insert(url.into(), b);
    }
    fn opens(&self, url: &str) -> usize {
        self.opens
            .lock()
            .unwrap()
            .iter()
            .filter(|u| *u == url)
            .count()
    }
}

struct FakeStream {
    behaviour: Behaviour,
    n: i64,
    live: Arc<AtomicUsize>,
}

impl Drop for FakeStream {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl PullSource for FakeSource {
    async fn open(&self, target: &PullTarget) -> Result<Box<dyn PullStream>, PullError> {
        self.opens.lock().unwrap().push(target.url.clone());
        let b = *self
            .behaviours
            .lock()
            .unwrap()
            .get(&target.url)
            .unwrap_or(&Behaviour::Ok);
        if let Behaviour::Fail(r) = b {
            return Err(PullError::new(r, format!("fake {r}")));
        }
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FakeStream {
            behaviour: b,
            n: 0,
            live: self.live.clone(),
        }))
    }
}

#[async_trait]
impl PullStream for FakeStream {
    fn info(&self) -> StreamInfo {
        StreamInfo {
            tracks: vec![Track {
                codec: Codec::H264,
                clock_rate: 90_000,
                rfc6381: Some("avc1.42c01e".into()),
                dimensions: Some((640, 360)),
                extra_data: Bytes::new(),
            }],
        }
    }
    async fn next(&mut self) -> Result<Option<Pulled>, PullError> {
        if matches!(self.behaviour, Behaviour::StallAfter10) && self.n >= 10 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        let n = self.n;
        self.n += 1;
        Ok(Some(Pulled {
            frame: Frame {
                track: 0,
                pts: n * 3600,
                is_key: n % 25 == 0,
                data: Bytes::from(vec![0u8; 5000]),
                arrived: std::time::Instant::now(),
            },
            new_info: None,
        }))
    }
}

fn cfg(id: &str, url: &str, mode: PullMode) -> PullConfig {
    PullConfig {
        id: id.into(),
        target: PullTarget {
            url: url.into(),
            username: None,
            password: None,
            transport: crate::catalogue::Transport::Tcp,
        },
        pull_mode: mode,
        enabled: true,
        district_code: "620602".into(),
        name: id.to_string(),
        checkpoint_id: None,
        point_type: 1,
    }
}

fn setup() -> (
    Arc<FakeSource>,
    Arc<PullManager>,
    mpsc::UnboundedReceiver<Transition>,
) {
    let source = Arc::new(FakeSource::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let opts = PullOptions {
        idle_close: Duration::from_secs(30),
        start_spread: Duration::ZERO,
        ..Default::default()
    };
    let m = PullManager::new(source.clone(), opts, CancellationToken::new(), tx);
    (source, m, rx)
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Transition>) -> Vec<(State, Option<Reason>)> {
    let mut v = Vec::new();
    while let Ok(t) = rx.try_recv() {
        v.push((t.to, t.reason));
    }
    v
}

/// Lets `secs` of paused time pass: the runtime jumps from timer to timer,
/// so every task runs exactly when it would have.
async fn advance(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn always_camera_comes_online_with_its_frame_rate() {
    let (_src, m, mut rx) = setup();
    m.upsert(cfg("a", "fake://a", PullMode::Always));
    advance(4.0).await;
    let rt = m.runtime("a").unwrap();
    let (state, reason, _, stats) = rt.snapshot();
    assert_eq!((state, reason), (State::Online, None));
    assert!(
        (stats.frame_rate - 25.0).abs() < 1.0,
        "{}",
        stats.frame_rate
    );
    assert!(
        (stats.bitrate_bps - 1_000_000.0).abs() < 50_000.0,
        "{}",
        stats.bitrate_bps
    );
    assert_eq!(stats.codec.as_deref(), Some("h264"));
    assert_eq!((stats.width, stats.height), (Some(640), Some(360)));
    assert!((stats.key_frame_interval_secs.unwrap() - 1.0).abs() < 0.1);
    assert_eq!(
        drain(&mut rx),
        [(State::Connecting, None), (State::Online, None)]
    );
    assert!(m.is_pulling("a"));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_camera_goes_offline_and_is_reconnected() {
    let (src, m, mut rx) = setup();
    src.set("fake://s", Behaviour::StallAfter10);
    m.upsert(cfg("s", "fake://s", PullMode::Always));
    advance(1.0).await;
    assert_eq!(m.runtime("s").unwrap().state(), State::Online);
    advance(5.5).await; // stall_secs = 5
    let t = drain(&mut rx);
    assert!(
        t.contains(&(State::Offline, Some(Reason::Stalled))),
        "{t:?}"
    );
    advance(3.0).await;
    assert!(src.opens("fake://s") >= 2, "reconnected after the backoff");
    assert!(m.runtime("s").unwrap().snapshot().3.reconnects >= 1);
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_and_keep_retrying() {
    let (src, m, mut rx) = setup();
    src.set("fake://r", Behaviour::Fail(Reason::Refused));
    m.upsert(cfg("r", "fake://r", PullMode::Always));
    advance(0.5).await;
    let t = drain(&mut rx);
    assert_eq!(
        t,
        [
            (State::Connecting, None),
            (State::Offline, Some(Reason::Refused))
        ]
    );
    advance(60.0).await;
    let n = src.opens("fake://r");
    // Delays of about 1, 2, 4, 8, 16, 32 s (jittered to half..full): 5-9 tries in a minute.
    assert!((5..=10).contains(&n), "{n} opens in 60 s");
    // Retries keep it offline with its reason: no flap per retry.
    assert_eq!(drain(&mut rx), []);
    // It recovers when the camera does.
    src.set("fake://r", Behaviour::Ok);
    advance(61.0).await;
    assert_eq!(m.runtime("r").unwrap().state(), State::Online);
}

#[tokio::test(start_paused = true)]
async fn on_demand_pulls_only_while_watched() {
    let (src, m, _rx) = setup();
    m.upsert(cfg("d", "fake://d", PullMode::OnDemand));
    advance(2.0).await;
    assert_eq!(src.opens("fake://d"), 0, "not pulled without subscribers");
    assert!(!m.is_pulling("d"));
    let mut sub = m.subscribe("d").unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.frame.is_key, "a subscriber starts on a key frame");
    assert!(m.is_pulling("d"));
    drop(sub);
    advance(29.0).await;
    assert!(m.is_pulling("d"), "kept for idle_close_secs");
    advance(2.0).await;
    assert!(!m.is_pulling("d"), "closed after idle_close_secs");
    assert_eq!(src.live.load(Ordering::SeqCst), 0, "the stream was closed");
    // A new subscriber within the idle window cancels the close.
    let sub = m.subscribe("d").unwrap();
    advance(1.0).await;
    drop(sub);
    advance(10.0).await;
    let _sub = m.subscribe("d").unwrap();
    advance(25.0).await;
    assert!(m.is_pulling("d"));
}

#[tokio::test(start_paused = true)]
async fn catalogue_changes_apply_at_once() {
    let (src, m, mut rx) = setup();
    m.upsert(cfg("c", "fake://old", PullMode::Always));
    advance(1.0).await;
    let mut sub = m.subscribe("c").unwrap();
    // A new URL reconnects to it.
    m.upsert(cfg("c", "fake://new", PullMode::Always));
    advance(1.0).await;
    assert_eq!(src.opens("fake://new"), 1);
    assert_eq!(
        src.live.load(Ordering::SeqCst),
        1,
        "the old stream was closed"
    );
    // Disabling stops the pull and disconnects subscribers.
    let mut c = cfg("c", "fake://new", PullMode::Always);
    c.enabled = false;
    m.upsert(c.clone());
    advance(0.5).await;
    assert!(!m.is_pulling("c"));
    assert_eq!(m.runtime("c").unwrap().state(), State::Disabled);
    while sub.recv().await.is_some() {}
    assert!(
        m.subscribe("c").is_none(),
        "a disabled camera cannot be watched"
    );
    // Re-enabling resumes; deleting removes everything.
    c.enabled = true;
    m.upsert(c);
    advance(1.0).await;
    assert_eq!(m.runtime("c").unwrap().state(), State::Online);
    m.remove("c");
    advance(0.5).await;
    assert!(m.runtime("c").is_none());
    assert_eq!(src.live.load(Ordering::SeqCst), 0);
    let t = drain(&mut rx);
    assert!(t.contains(&(State::Disabled, None)), "{t:?}");
}

#[tokio::test(start_paused = true)]
async fn reconcile_adds_and_removes() {
    let (_src, m, _rx) = setup();
    m.reconcile(
        vec![
            cfg("a", "fake://a", PullMode::Always),
            cfg("b", "fake://b", PullMode::OnDemand),
        ],
        true,
    );
    advance(1.0).await;
    assert_eq!(m.active_pulls(), 1);
    m.reconcile(vec![cfg("b", "fake://b", PullMode::Always)], false);
    advance(1.0).await;
    assert!(m.runtime("a").is_none());
    assert_eq!(m.active_pulls(), 1);
    assert!(m.is_pulling("b"));
}
