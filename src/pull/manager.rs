//! Which cameras are pulled, and keeping that in step with the catalogue.
//!
//! `always` cameras are pulled while enabled. `on_demand` cameras are pulled
//! while they have at least one subscriber, and stop `idle_close` after the
//! last one leaves. Catalogue changes apply at once: a new camera starts, a
//! changed URL or credentials reconnect, a disabled or deleted camera stops
//! and its subscribers are disconnected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::supervisor::{self, CameraRuntime};
use super::{PullOptions, PullSource, PullTarget};
use crate::catalogue::{Camera, PullMode};
use crate::fanout::{Fanout, Subscriber};
use crate::health::{State, Transition};

/// Transitions buffered for live views before a slow one lags.
const CHANGES_BUFFER: usize = 4096;

/// What the manager needs to know of a camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullConfig {
    pub id: String,
    pub target: PullTarget,
    pub pull_mode: PullMode,
    pub enabled: bool,
    /// District code (natural length), for metrics labels.
    pub district_code: String,
    /// Name and checkpoint, for webhooks.
    pub name: String,
    pub checkpoint_id: Option<String>,
    /// GB/T 28181 point class (1, 2, 3 or 9): picks the availability target.
    pub point_type: i64,
}

impl PullConfig {
    pub fn from_camera(c: &Camera) -> Self {
        PullConfig {
            id: c.id.clone(),
            target: PullTarget {
                url: c.rtsp_url.clone(),
                username: c.username.clone(),
                password: c.password.clone(),
                transport: c.transport,
            },
            pull_mode: c.pull_mode,
            enabled: c.enabled,
            district_code: c.district_code.clone(),
            name: c.name.clone(),
            checkpoint_id: c.checkpoint_id.clone(),
            point_type: c.point_type,
        }
    }
}

struct Slot {
    rt: Arc<CameraRuntime>,
    config: Mutex<PullConfig>,
    running: Mutex<Option<CancellationToken>>,
    idle_timer: Mutex<Option<CancellationToken>>,
}

/// Owns every camera's runtime and pull task.
pub struct PullManager {
    source: Arc<dyn PullSource>,
    opts: PullOptions,
    cancel: CancellationToken,
    tracker: TaskTracker,
    events: mpsc::UnboundedSender<Transition>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    viewers: mpsc::UnboundedSender<(String, usize)>,
    /// Counts of removed cameras, so gateway totals never go down.
    retired: Mutex<Totals>,
    /// Every recorded transition, for live views (the web UI's stream).
    changes: tokio::sync::broadcast::Sender<Transition>,
}

/// Gateway-wide sums of every camera's fan-out counters,
/// including cameras since removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_dropped: u64,
    pub skips: u64,
    pub lagged_out: u64,
}

impl Totals {
    fn add_camera(&mut self, rt: &CameraRuntime) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &rt.fanout.counters;
        self.frames_in += c.frames_in.load(Relaxed);
        self.bytes_in += c.bytes_in.load(Relaxed);
        self.frames_dropped += c.frames_dropped.load(Relaxed);
        self.skips += c.skips.load(Relaxed);
        self.lagged_out += c.lagged_out.load(Relaxed);
    }
}

impl PullManager {
    /// Creates the manager. Transitions of every camera go to `events`.
    pub fn new(
        source: Arc<dyn PullSource>,
        opts: PullOptions,
        cancel: CancellationToken,
        events: mpsc::UnboundedSender<Transition>,
    ) -> Arc<Self> {
        let (viewers, mut viewers_rx) = mpsc::unbounded_channel::<(String, usize)>();
        let m = Arc::new(PullManager {
            source,
            opts,
            cancel: cancel.clone(),
            tracker: TaskTracker::new(),
            events,
            slots: Mutex::new(HashMap::new()),
            viewers,
            retired: Mutex::new(Totals::default()),
            changes: tokio::sync::broadcast::channel(CHANGES_BUFFER).0,
        });
        let weak = Arc::downgrade(&m);
        m.tracker.spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = cancel.cancelled() => return,
                    m = viewers_rx.recv() => m,
                };
                let Some((id, count)) = msg else { return };
                let Some(m) = weak.upgrade() else { return };
                m.viewers_changed(&id, count);
            }
        });
        m
    }

    pub fn options(&self) -> &PullOptions {
        &self.opts
    }

    fn slot(&self, id: &str) -> Option<Arc<Slot>> {
        self.slots.lock().unwrap().get(id).cloned()
    }

    /// The runtime (fan-out, health) of a camera.
    pub fn runtime(&self, id: &str) -> Option<Arc<CameraRuntime>> {
        self.slot(id).map(|s| s.rt.clone())
    }

    /// Every camera's runtime and config.
    pub fn all(&self) -> Vec<(Arc<CameraRuntime>, PullConfig)> {
        self.slots
            .lock()
            .unwrap()
            .values()
            .map(|s| (s.rt.clone(), s.config.lock().unwrap().clone()))
            .collect()
    }

    /// The IDs of the cameras in one of `states` now, sorted, when they
    /// are at most `share` of the cameras the manager holds; `None` when
    /// there are more (the caller is better off scanning). A camera the
    /// manager does not hold is `unknown`, so ask for `unknown` elsewhere.
    pub fn ids_in(&self, states: &[State], share: f64) -> Option<Vec<String>> {
        let slots = self.slots.lock().unwrap();
        let at_most = (slots.len() as f64 * share) as usize;
        let mut ids = Vec::new();
        for (id, s) in slots.iter() {
            if states.contains(&s.rt.state()) {
                if ids.len() == at_most {
                    return None;
                }
                ids.push(id.clone());
            }
        }
        drop(slots);
        ids.sort_unstable();
        Some(ids)
    }

    /// Calls `f` with every camera's runtime and config, without copying
    /// them; holds the manager's lock meanwhile, so `f` must be quick and
    /// must not call back into the manager.
    pub fn for_each(&self, mut f: impl FnMut(&CameraRuntime, &PullConfig)) {
        let slots = self.slots.lock().unwrap();
        for s in slots.values() {
            f(&s.rt, &s.config.lock().unwrap());
        }
    }

    /// A camera's config, as the manager has it.
    pub fn config(&self, id: &str) -> Option<PullConfig> {
        self.slot(id).map(|s| s.config.lock().unwrap().clone())
    }

    /// Whether the camera is being pulled now.
    pub fn is_pulling(&self, id: &str) -> bool {
        self.slot(id)
            .is_some_and(|s| s.running.lock().unwrap().is_some())
    }

    /// Number of cameras being pulled.
    pub fn active_pulls(&self) -> usize {
        self.slots
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.running.lock().unwrap().is_some())
            .count()
    }

    /// Adds or updates a camera and starts or stops its pull as needed.
    /// Transitions as they are recorded (see [`PullManager::publish`]). A
    /// receiver that falls more than a few thousand behind gets `Lagged`.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Transition> {
        self.changes.subscribe()
    }

    /// Hands a recorded transition to live views.
    pub fn publish(&self, t: Transition) {
        let _ = self.changes.send(t);
    }

    pub fn upsert(&self, cfg: PullConfig) {
        self.upsert_with_delay(cfg, Duration::ZERO);
    }

    fn upsert_with_delay(&self, cfg: PullConfig, delay: Duration) {
        let existing = self.slot(&cfg.id);
        let slot = match existing {
            Some(slot) => {
                let target_changed = slot.rt.set_target(cfg.target.clone());
                *slot.config.lock().unwrap() = cfg.clone();
                if target_changed && slot.running.lock().unwrap().is_some() {
                    // Reconnect to the new URL or credentials now: a new
                    // supervisor starts below, so the reconnect is counted here.
                    self.stop(&slot);
                    slot.rt.reconnected();
                    tracing::info!(camera = %cfg.id, "camera target changed; reconnecting");
                }
                slot
            }
            None => {
                let viewers = self.viewers.clone();
                let id = cfg.id.clone();
                let fanout = Fanout::with_count_hook(self.opts.fanout.clone(), move |n| {
                    let _ = viewers.send((id.clone(), n));
                });
                let initial = if cfg.enabled {
                    State::Unknown
                } else {
                    State::Disabled
                };
                let rt = Arc::new(CameraRuntime::new(
                    cfg.id.clone(),
                    cfg.target.clone(),
                    fanout,
                    initial,
                    self.events.clone(),
                ));
                let slot = Arc::new(Slot {
                    rt,
                    config: Mutex::new(cfg.clone()),
                    running: Mutex::new(None),
                    idle_timer: Mutex::new(None),
                });
                self.slots
                    .lock()
                    .unwrap()
                    .insert(cfg.id.clone(), slot.clone());
                slot
            }
        };
        self.apply(&slot, delay);
    }

    /// Starts or stops the pull to match config and subscribers.
    fn apply(&self, slot: &Arc<Slot>, delay: Duration) {
        let cfg = slot.config.lock().unwrap().clone();
        let viewers = slot.rt.fanout.subscribers();
        let wanted = cfg.enabled && (cfg.pull_mode == PullMode::Always || viewers > 0);
        let running = slot.running.lock().unwrap().is_some();
        if !cfg.enabled {
            if running {
                self.stop(slot);
            }
            slot.rt.fanout.close();
            slot.rt.set_state(State::Disabled, None);
            return;
        }
        if slot.rt.state() == State::Disabled {
            slot.rt.set_state(State::Unknown, None);
        }
        if wanted && !running {
            self.start(slot, delay);
        } else if !wanted && running && viewers == 0 && cfg.pull_mode == PullMode::OnDemand {
            self.arm_idle_close(slot);
        }
    }

    fn start(&self, slot: &Arc<Slot>, delay: Duration) {
        let mut running = slot.running.lock().unwrap();
        if running.is_some() {
            return;
        }
        let token = self.cancel.child_token();
        *running = Some(token.clone());
        drop(running);
        tracing::debug!(camera = %slot.rt.id, "starting pull");
        self.tracker.spawn(supervisor::run(
            slot.rt.clone(),
            self.source.clone(),
            self.opts.clone(),
            token,
            delay,
        ));
    }

    fn stop(&self, slot: &Slot) {
        if let Some(t) = slot.running.lock().unwrap().take() {
            tracing::debug!(camera = %slot.rt.id, "stopping pull");
            t.cancel();
        }
        if let Some(t) = slot.idle_timer.lock().unwrap().take() {
            t.cancel();
        }
    }

    fn arm_idle_close(&self, slot: &Arc<Slot>) {
        let mut timer = slot.idle_timer.lock().unwrap();
        if timer.is_some() {
            return;
        }
        let token = self.cancel.child_token();
        *timer = Some(token.clone());
        drop(timer);
        let slot = slot.clone();
        let idle = self.opts.idle_close;
        self.tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = tokio::time::sleep(idle) => {
                    slot.idle_timer.lock().unwrap().take();
                    let on_demand = slot.config.lock().unwrap().pull_mode == PullMode::OnDemand;
                    if on_demand && slot.rt.fanout.subscribers() == 0
                        && let Some(t) = slot.running.lock().unwrap().take() {
                            tracing::info!(camera = %slot.rt.id, idle_secs = idle.as_secs(), "no subscribers: closing on-demand pull");
                            t.cancel();
                        }
                }
            }
        });
    }

    fn viewers_changed(&self, id: &str, count: usize) {
        let Some(slot) = self.slot(id) else { return };
        if count > 0
            && let Some(t) = slot.idle_timer.lock().unwrap().take()
        {
            t.cancel();
        }
        self.apply(&slot, Duration::ZERO);
    }

    /// Removes a camera: stops its pull and disconnects its subscribers.
    pub fn remove(&self, id: &str) {
        let slot = self.slots.lock().unwrap().remove(id);
        if let Some(slot) = slot {
            self.stop(&slot);
            slot.rt.fanout.close();
            self.retired.lock().unwrap().add_camera(&slot.rt);
        }
    }

    /// Makes the set of cameras exactly `cfgs`. With `spread`, new pulls'
    /// first connects are spread over the configured window (at start, so
    /// thousands of cameras do not dial at once).
    pub fn reconcile(&self, cfgs: Vec<PullConfig>, spread: bool) {
        let keep: std::collections::HashSet<String> = cfgs.iter().map(|c| c.id.clone()).collect();
        let gone: Vec<String> = self
            .slots
            .lock()
            .unwrap()
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for id in gone {
            self.remove(&id);
        }
        let window = self.opts.start_spread;
        for cfg in cfgs {
            let delay = if spread && !window.is_zero() {
                window.mul_f64(fastrand::f64())
            } else {
                Duration::ZERO
            };
            self.upsert_with_delay(cfg, delay);
        }
    }

    /// Subscribes to a camera's frames, starting an on-demand pull. `None`
    /// when the camera is unknown or disabled.
    pub fn subscribe(&self, id: &str) -> Option<Subscriber> {
        let slot = self.slot(id)?;
        if !slot.config.lock().unwrap().enabled {
            return None;
        }
        let sub = slot.rt.fanout.subscribe();
        if let Some(t) = slot.idle_timer.lock().unwrap().take() {
            t.cancel();
        }
        self.apply(&slot, Duration::ZERO);
        Some(sub)
    }

    /// Gateway-wide totals, removed cameras included.
    pub fn totals(&self) -> Totals {
        let mut t = *self.retired.lock().unwrap();
        for (rt, _) in self.all() {
            t.add_camera(&rt);
        }
        t
    }

    /// Stops every pull and waits for the tasks to end. Every camera that
    /// was watched then moves to `unknown`: from now on nobody observes it,
    /// and its history says so (availability counts the gap as unobserved).
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let slots: Vec<Arc<Slot>> = self.slots.lock().unwrap().values().cloned().collect();
        for slot in slots {
            let s = slot.rt.state();
            if s != State::Unknown && s != State::Disabled {
                slot.rt.set_state(State::Unknown, None);
            }
        }
    }
}
