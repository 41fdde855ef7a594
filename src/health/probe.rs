//! Probes: enabled cameras that nobody pulls (on-demand cameras without
//! viewers) are checked with RTSP OPTIONS + DESCRIBE every interval, spread
//! evenly over it, at most `concurrency` at once. A camera turns `offline`
//! after `failures` failed probes in a row and `online` on one good
//! DESCRIBE — unless its last pull failed after DESCRIBE (at SETUP, PLAY or
//! while streaming): then DESCRIBE proves nothing, and the probe plays the
//! stream to its first frame instead ("deep probe"); until one succeeds the
//! camera keeps the pull's verdict. Results for a camera that started being
//! pulled meanwhile are dropped: the pull's own transitions are its health.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Reason;
use crate::pull::{PullError, PullManager, PullSource};

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub interval: Duration,
    pub concurrency: usize,
    pub failures: u32,
    pub timeout: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            interval: Duration::from_secs(60),
            concurrency: 64,
            failures: 3,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Probes done, by result (for metrics).
#[derive(Debug, Default)]
pub struct ProbeCounters {
    pub ok: AtomicU64,
    /// Indexed like [`Reason::ALL`].
    pub failed: [AtomicU64; Reason::ALL.len()],
}

impl ProbeCounters {
    fn count(&self, r: &Result<Option<String>, PullError>) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                let i = Reason::ALL.iter().position(|x| *x == e.reason).unwrap_or(0);
                self.failed[i].fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// `(result, count)` pairs: `ok` and every failure reason.
    pub fn by_result(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![("ok", self.ok.load(Ordering::Relaxed))];
        for (i, r) in Reason::ALL.iter().enumerate() {
            v.push((r.as_str(), self.failed[i].load(Ordering::Relaxed)));
        }
        v
    }
}

/// Runs probe rounds until `cancel`.
pub async fn run(
    pulls: Arc<PullManager>,
    source: Arc<dyn PullSource>,
    opts: ProbeOptions,
    counters: Arc<ProbeCounters>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    loop {
        let round = Instant::now();
        let mut due: Vec<_> = pulls
            .all()
            .into_iter()
            .filter(|(rt, cfg)| cfg.enabled && !pulls.is_pulling(&rt.id))
            .collect();
        due.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        let gap = if due.is_empty() {
            Duration::ZERO
        } else {
            opts.interval / due.len() as u32
        };
        for (i, (rt, _)) in due.into_iter().enumerate() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(round + gap * i as u32) => {}
            }
            let permit = tokio::select! {
                _ = cancel.cancelled() => return,
                p = permits.clone().acquire_owned() => p.expect("never closed"),
            };
            // Still wanted? The camera may have been removed, disabled or
            // started being pulled while it waited.
            if pulls
                .runtime(&rt.id)
                .is_none_or(|cur| !Arc::ptr_eq(&cur, &rt))
                || pulls.is_pulling(&rt.id)
                || !pulls.config(&rt.id).is_some_and(|c| c.enabled)
            {
                continue;
            }
            let (pulls, source, counters, cancel) = (
                pulls.clone(),
                source.clone(),
                counters.clone(),
                cancel.clone(),
            );
            let (timeout, failures) = (opts.timeout, opts.failures);
            tokio::spawn(async move {
                let _permit = permit;
                let target = rt.target();
                // A camera whose last pull failed after DESCRIBE is probed
                // as a pull would use it (play and a first frame), since a
                // DESCRIBE cannot see that failure.
                let deep = rt.needs_deep_probe();
                let limit = if deep { timeout * 2 } else { timeout };
                let result = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = tokio::time::timeout(limit, async {
                        if deep { source.deep_probe(&target).await } else { source.probe(&target).await }
                    }) => r.unwrap_or_else(|_| {
                        Err(PullError::new(
                            Reason::Timeout,
                            format!("probe: no answer within {} s", limit.as_secs_f64()),
                        ))
                    }),
                };
                counters.count(&result);
                if !pulls.is_pulling(&rt.id) && rt.target() == target {
                    if deep {
                        rt.deep_probe_result(result);
                    } else {
                        rt.probe_result(result, failures);
                    }
                }
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(round + opts.interval) => {}
        }
    }
}
