//! Per-camera fan-out: one producer (the camera's pull), any number of
//! subscribers (relays, snapshots), and a producer that never waits.
//!
//! - Frames are `Arc<Frame>` holding `Bytes`: a subscriber costs a pointer
//!   per queued frame, never a copy of the data.
//! - A GOP cache holds the frames since the last key frame, so a new
//!   subscriber starts at once on a decodable frame.
//! - Each subscriber has a bounded queue. When it is full the subscriber
//!   has fallen behind: its queued frames (which would only arrive late) are
//!   dropped and it resumes at the next key frame, on something decodable (a
//!   "skip", counted). A subscriber that stays behind — does not once drain
//!   its queue — for longer than `lag_limit` is disconnected (counted, logged
//!   rate-limited); it sees the end of its stream.
//!
//! Lag is handled on purpose: a subscriber learns how many frames it missed
//! from [`Delivery::skipped`] instead of being silently cut off.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;

use tokio::sync::{Notify, watch};

use crate::media::{Frame, StreamInfo};

/// Fan-out settings.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// Frames a subscriber may have queued before it falls behind.
    pub queue_frames: usize,
    /// How long a subscriber may stay behind before it is disconnected.
    pub lag_limit: Duration,
    /// Largest GOP cache, in bytes; a longer GOP is not cached past this (a
    /// new subscriber then waits for the next key frame).
    pub gop_cache_bytes: usize,
}

impl Default for FanoutOptions {
    fn default() -> Self {
        FanoutOptions {
            queue_frames: 256,
            lag_limit: Duration::from_secs(5),
            gop_cache_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Counters of one fan-out (for metrics).
#[derive(Debug, Default)]
pub struct FanoutCounters {
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Frames not delivered to some subscriber because it was behind.
    pub frames_dropped: AtomicU64,
    /// Times a subscriber fell behind and skipped to the next key frame.
    pub skips: AtomicU64,
    /// Subscribers disconnected for staying behind.
    pub lagged_out: AtomicU64,
}

/// One delivered frame, and how many frames the subscriber missed just
/// before it (0 normally).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub frame: Arc<Frame>,
    pub skipped: u64,
}

struct SubQueue {
    queue: VecDeque<Arc<Frame>>,
    /// Waiting for a key frame after falling behind (or after joining
    /// without a cached GOP).
    waiting_key: bool,
    /// Frames missed since the last delivered one.
    skipped: u64,
    /// When the subscriber fell behind, while it is behind.
    behind_since: Option<Instant>,
    closed: bool,
    /// Where this subscriber's drops are counted too (its relay protocol).
    drop_counter: Option<Arc<AtomicU64>>,
}

impl SubQueue {
    fn count_drops(&self, counters: &FanoutCounters, n: u64) {
        counters.frames_dropped.fetch_add(n, Ordering::Relaxed);
        if let Some(c) = &self.drop_counter {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
}

struct SubShared {
    q: Mutex<SubQueue>,
    notify: Notify,
}

struct Inner {
    gop: Vec<Arc<Frame>>,
    gop_bytes: usize,
    /// The GOP grew past the cache limit: cache nothing until the next key frame.
    gop_overflow: bool,
    subs: Vec<Arc<SubShared>>,
}

/// The fan-out of one camera. Cheap to share (`Arc`).
pub struct Fanout {
    opts: FanoutOptions,
    inner: Mutex<Inner>,
    info: watch::Sender<Option<Arc<StreamInfo>>>,
    pub counters: FanoutCounters,
    /// Called with the new subscriber count whenever it changes.
    on_count: Box<dyn Fn(usize) + Send + Sync>,
    last_lag_log: Mutex<Option<Instant>>,
}

impl Fanout {
    pub fn new(opts: FanoutOptions) -> Arc<Fanout> {
        Self::with_count_hook(opts, |_| {})
    }

    /// A fan-out that reports subscriber-count changes (the pull supervisor
    /// uses it to start and idle-close on-demand pulls).
    pub fn with_count_hook(
        opts: FanoutOptions,
        on_count: impl Fn(usize) + Send + Sync + 'static,
    ) -> Arc<Fanout> {
        Arc::new(Fanout {
            opts,
            inner: Mutex::new(Inner {
                gop: Vec::new(),
                gop_bytes: 0,
                gop_overflow: false,
                subs: Vec::new(),
            }),
            info: watch::channel(None).0,
            counters: FanoutCounters::default(),
            on_count: Box::new(on_count),
            last_lag_log: Mutex::new(None),
        })
    }

    /// Sets the stream's track parameters (at each (re)connect, and when
    /// the camera changes them mid-stream). Clears the GOP cache, which
    /// belongs to the old parameters.
    pub fn set_info(&self, info: StreamInfo) {
        {
            let mut inner = self.inner.lock().unwrap();
            inner.gop.clear();
            inner.gop_bytes = 0;
            inner.gop_overflow = false;
        }
        self.info.send_replace(Some(Arc::new(info)));
    }

    /// The current track parameters, if a stream has started.
    pub fn info(&self) -> Option<Arc<StreamInfo>> {
        self.info.borrow().clone()
    }

    /// Watches the track parameters.
    pub fn watch_info(&self) -> watch::Receiver<Option<Arc<StreamInfo>>> {
        self.info.subscribe()
    }

    /// Number of subscribers.
    pub fn subscribers(&self) -> usize {
        self.inner.lock().unwrap().subs.len()
    }

    /// Frames in the GOP cache.
    pub fn gop_frames(&self) -> usize {
        self.inner.lock().unwrap().gop.len()
    }

    /// Publishes a frame to every subscriber. Never blocks on a subscriber.
    pub fn publish(&self, frame: Frame) {
        let frame = Arc::new(frame);
        self.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        let now = Instant::now();
        let mut lagged_out = 0usize;
        let mut inner = self.inner.lock().unwrap();
        // GOP cache: restart at each key frame.
        if frame.is_key {
            inner.gop.clear();
            inner.gop_bytes = 0;
            inner.gop_overflow = false;
        }
        if !inner.gop_overflow && (frame.is_key || !inner.gop.is_empty()) {
            if inner.gop_bytes + frame.data.len() > self.opts.gop_cache_bytes {
                inner.gop.clear();
                inner.gop_bytes = 0;
                inner.gop_overflow = true;
            } else {
                inner.gop_bytes += frame.data.len();
                inner.gop.push(frame.clone());
            }
        }
        inner.subs.retain(|sub| {
            let mut q = sub.q.lock().unwrap();
            if q.closed {
                return false;
            }
            if self.lagged_too_long(&q, now) {
                q.closed = true;
                q.queue.clear();
                drop(q);
                sub.notify.notify_one();
                lagged_out += 1;
                return false;
            }
            if q.waiting_key && !frame.is_key {
                q.skipped += 1;
                q.count_drops(&self.counters, 1);
                return true;
            }
            if q.queue.len() >= self.opts.queue_frames {
                // Fallen behind: drop what it has queued (it would only
                // arrive late) and resume at the next key frame.
                // The queued frames, and this one unless it is a key
                // frame (delivered: the subscriber resumes there).
                let stale = q.queue.len() as u64 + u64::from(!frame.is_key);
                q.queue.clear();
                q.skipped += stale;
                q.waiting_key = !frame.is_key;
                q.behind_since.get_or_insert(now);
                self.counters.skips.fetch_add(1, Ordering::Relaxed);
                q.count_drops(&self.counters, stale);
                if !frame.is_key {
                    return true;
                }
            }
            q.waiting_key = false;
            q.queue.push_back(frame.clone());
            drop(q);
            sub.notify.notify_one();
            true
        });
        let count = inner.subs.len();
        drop(inner);
        if lagged_out > 0 {
            self.counters
                .lagged_out
                .fetch_add(lagged_out as u64, Ordering::Relaxed);
            self.log_lag(lagged_out);
            (self.on_count)(count);
        }
    }

    /// Whether a subscriber has been behind (without once draining its
    /// queue) for longer than the limit: a reader that stopped reading.
    fn lagged_too_long(&self, q: &SubQueue, now: Instant) -> bool {
        q.behind_since
            .is_some_and(|since| now.duration_since(since) > self.opts.lag_limit)
    }

    fn log_lag(&self, n: usize) {
        let mut last = self.last_lag_log.lock().unwrap();
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(
                subscribers = n,
                lag_limit_secs = self.opts.lag_limit.as_secs_f64(),
                "disconnected subscribers that stayed behind (further such messages suppressed for 10 s)"
            );
        }
    }

    /// Adds a subscriber. It first receives the cached GOP (from the last
    /// key frame), or, without one, waits for the next key frame.
    pub fn subscribe(self: &Arc<Self>) -> Subscriber {
        let mut inner = self.inner.lock().unwrap();
        let mut q = SubQueue {
            queue: VecDeque::new(),
            waiting_key: true,
            skipped: 0,
            behind_since: None,
            closed: false,
            drop_counter: None,
        };
        if !inner.gop.is_empty() && inner.gop.len() <= self.opts.queue_frames {
            q.queue.extend(inner.gop.iter().cloned());
            q.waiting_key = false;
        }
        let shared = Arc::new(SubShared {
            q: Mutex::new(q),
            notify: Notify::new(),
        });
        inner.subs.push(shared.clone());
        let count = inner.subs.len();
        drop(inner);
        (self.on_count)(count);
        Subscriber {
            shared,
            fanout: Arc::downgrade(self),
        }
    }

    /// Ends every current subscription (the camera was deleted or
    /// disabled); later subscribers are accepted as usual.
    pub fn close(&self) {
        let mut inner = self.inner.lock().unwrap();
        let had = inner.subs.len();
        for sub in inner.subs.drain(..) {
            sub.q.lock().unwrap().closed = true;
            sub.notify.notify_one();
        }
        drop(inner);
        if had > 0 {
            (self.on_count)(0);
        }
    }

    fn unsubscribe(&self, shared: &Arc<SubShared>) {
        let mut inner = self.inner.lock().unwrap();
        let before = inner.subs.len();
        inner.subs.retain(|s| !Arc::ptr_eq(s, shared));
        let count = inner.subs.len();
        drop(inner);
        if count != before {
            (self.on_count)(count);
        }
    }
}

/// A subscription to a camera's frames. Dropping it unsubscribes.
pub struct Subscriber {
    shared: Arc<SubShared>,
    fanout: Weak<Fanout>,
}

impl Subscriber {
    /// The next frame, or `None` when the subscription ended (the camera
    /// went away, or this subscriber stayed behind too long).
    pub async fn recv(&mut self) -> Option<Delivery> {
        loop {
            let notified = self.shared.notify.notified();
            {
                let mut q = self.shared.q.lock().unwrap();
                if let Some(frame) = q.queue.pop_front() {
                    let skipped = std::mem::take(&mut q.skipped);
                    if q.queue.is_empty() {
                        q.behind_since = None; // caught up
                    }
                    return Some(Delivery { frame, skipped });
                }
                if q.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The camera's current track parameters, once its stream is open.
    pub fn info(&self) -> Option<Arc<StreamInfo>> {
        self.fanout.upgrade().and_then(|f| f.info())
    }

    /// Waits up to `limit` for track parameters whose video track is
    /// described ([`StreamInfo::video_ready`]); `None` when the time runs
    /// out or the camera goes away.
    pub async fn video_info(&self, limit: Duration) -> Option<Arc<StreamInfo>> {
        let mut rx = self.fanout.upgrade()?.watch_info();
        let ready = rx.wait_for(|i| i.as_deref().is_some_and(StreamInfo::video_ready));
        let info = tokio::time::timeout(limit, ready).await.ok()?.ok()?;
        info.clone()
    }

    /// Counts this subscriber's dropped frames in `counter` too (besides
    /// the fan-out's own total), e.g. per relay protocol.
    pub fn count_drops_in(&self, counter: Arc<AtomicU64>) {
        self.shared.q.lock().unwrap().drop_counter = Some(counter);
    }

    /// Frames waiting in this subscriber's queue.
    pub fn queued(&self) -> usize {
        self.shared.q.lock().unwrap().queue.len()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(f) = self.fanout.upgrade() {
            f.unsubscribe(&self.shared);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(n: i64, key: bool) -> Frame {
        Frame {
            track: 0,
            pts: n * 3000,
            is_key: key,
            data: Bytes::from(vec![n as u8; 100]),
            arrived: std::time::Instant::now(),
        }
    }

    fn opts(queue: usize) -> FanoutOptions {
        FanoutOptions {
            queue_frames: queue,
            lag_limit: Duration::from_millis(200),
            gop_cache_bytes: 1 << 20,
        }
    }

    #[tokio::test]
    async fn new_subscriber_starts_at_the_cached_key_frame() {
        let f = Fanout::new(opts(100));
        for n in 0..5 {
            f.publish(frame(n, n % 3 == 0)); // keys at 0 and 3
        }
        assert_eq!(f.gop_frames(), 2);
        let mut s = f.subscribe();
        let d = s.recv().await.unwrap();
        assert!(d.frame.is_key);
        assert_eq!(d.frame.pts, 9000);
        assert_eq!(s.recv().await.unwrap().frame.pts, 12000);
        f.publish(frame(5, false));
        assert_eq!(s.recv().await.unwrap().frame.pts, 15000);
    }

    #[tokio::test]
    async fn frames_are_shared_not_copied() {
        let f = Fanout::new(opts(100));
        let mut a = f.subscribe();
        let mut b = f.subscribe();
        f.publish(frame(0, true));
        let fa = a.recv().await.unwrap().frame;
        let fb = b.recv().await.unwrap().frame;
        assert!(Arc::ptr_eq(&fa, &fb));
        assert_eq!(fa.data.as_ptr(), fb.data.as_ptr());
    }

    #[tokio::test]
    async fn without_a_gop_a_subscriber_waits_for_a_key_frame() {
        let f = Fanout::new(opts(100));
        let mut s = f.subscribe();
        f.publish(frame(0, false));
        f.publish(frame(1, true));
        let d = s.recv().await.unwrap();
        assert_eq!((d.frame.pts, d.frame.is_key), (3000, true));
    }

    #[tokio::test]
    async fn a_slow_subscriber_skips_to_the_next_key_frame_without_slowing_others() {
        let f = Fanout::new(opts(4));
        let mut slow = f.subscribe();
        let slow_drops = Arc::new(AtomicU64::new(0));
        slow.count_drops_in(slow_drops.clone());
        let mut fast = f.subscribe();
        let fast_drops = Arc::new(AtomicU64::new(0));
        fast.count_drops_in(fast_drops.clone());
        let mut fast_got = Vec::new();
        for n in 0..10 {
            f.publish(frame(n, n % 8 == 0)); // keys at 0 and 8
            fast_got.push(fast.recv().await.unwrap().frame.pts / 3000);
        }
        assert_eq!(
            fast_got,
            (0..10).collect::<Vec<_>>(),
            "the fast one got everything"
        );
        // The slow one overflowed at 4: its stale 0..3 were dropped, 4..7
        // skipped, and it resumed at key frame 8, told that it missed 8.
        let mut got = Vec::new();
        while slow.queued() > 0 {
            let d = slow.recv().await.unwrap();
            got.push((d.frame.pts / 3000, d.skipped));
        }
        assert_eq!(got, [(8, 8), (9, 0)]);
        assert_eq!(f.counters.skips.load(Ordering::Relaxed), 1);
        assert_eq!(f.counters.frames_dropped.load(Ordering::Relaxed), 8);
        // ...and in the slow one's own counter (its relay protocol's).
        assert_eq!(slow_drops.load(Ordering::Relaxed), 8);
        assert_eq!(fast_drops.load(Ordering::Relaxed), 0);
        // Caught up: it is not disconnected later.
        tokio::time::sleep(Duration::from_millis(250)).await;
        f.publish(frame(10, false));
        assert_eq!(f.subscribers(), 2);
    }

    #[tokio::test]
    async fn a_subscriber_that_stays_behind_is_disconnected() {
        let counts = Arc::new(Mutex::new(Vec::new()));
        let c = counts.clone();
        let f = Fanout::with_count_hook(opts(2), move |n| c.lock().unwrap().push(n));
        let mut stuck = f.subscribe();
        let mut live = f.subscribe();
        for n in 0..6 {
            f.publish(frame(n, n % 2 == 0)); // stuck overflows at 2 and keeps refilling
            assert_eq!(live.recv().await.unwrap().frame.pts, n * 3000);
        }
        assert_eq!(f.subscribers(), 2, "behind, but not yet for long");
        tokio::time::sleep(Duration::from_millis(250)).await;
        f.publish(frame(6, true)); // past the lag limit: stuck is dropped
        assert_eq!(f.subscribers(), 1);
        assert_eq!(f.counters.lagged_out.load(Ordering::Relaxed), 1);
        assert_eq!(live.recv().await.unwrap().frame.pts, 18000);
        assert!(stuck.recv().await.is_none(), "the stuck one sees the end");
        assert_eq!(*counts.lock().unwrap(), [1, 2, 1]);
    }

    #[tokio::test]
    async fn dropping_and_closing_end_subscriptions() {
        let f = Fanout::new(opts(10));
        let s = f.subscribe();
        assert_eq!(f.subscribers(), 1);
        drop(s);
        assert_eq!(f.subscribers(), 0);
        let mut s = f.subscribe();
        let waiter = tokio::spawn(async move { s.recv().await.is_none() });
        tokio::task::yield_now().await;
        f.close();
        assert!(waiter.await.unwrap(), "recv ends when the fan-out closes");
    }

    #[tokio::test]
    async fn gop_cache_is_bounded() {
        let mut o = opts(100);
        o.gop_cache_bytes = 250;
        let f = Fanout::new(o);
        f.publish(frame(0, true));
        f.publish(frame(1, false));
        assert_eq!(f.gop_frames(), 2);
        f.publish(frame(2, false)); // 300 bytes > 250
        assert_eq!(f.gop_frames(), 0);
        f.publish(frame(3, false));
        assert_eq!(f.gop_frames(), 0, "nothing cached until the next key frame");
        f.publish(frame(4, true));
        assert_eq!(f.gop_frames(), 1);
    }
}
