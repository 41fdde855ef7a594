//! Stores every transition, in batches, off the pull path: supervisors only
//! send on a channel; this task writes. A database outage delays history,
//! it never blocks a pull; past a bound the oldest unsaved transitions are
//! dropped and counted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Transition;
use crate::store::{NewTransition, Store};

/// Unsaved transitions kept while the database is unavailable.
const MAX_PENDING: usize = 100_000;

/// Counters of the recorder.
#[derive(Debug, Default)]
pub struct RecorderCounters {
    pub stored: AtomicU64,
    pub dropped: AtomicU64,
    pub store_errors: AtomicU64,
}

/// Why the recorder woke up.
enum Wake {
    Got(Transition),
    /// Time to try the unsaved transitions again.
    Retry,
    Closing,
}

/// Runs until `cancel` (then saves what it has). `district_of` names a
/// camera's district at the time of the change.
pub async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Transition>,
    district_of: impl Fn(&str) -> Option<String> + Send + 'static,
    counters: Arc<RecorderCounters>,
    forward: Vec<mpsc::UnboundedSender<Transition>>,
    cancel: CancellationToken,
) {
    let mut pending: VecDeque<NewTransition> = VecDeque::new();
    let mut retry = Duration::from_millis(500);
    loop {
        // With unsaved transitions, the next try comes after the retry
        // delay even if no new transition arrives meanwhile.
        let waiting = !pending.is_empty();
        let wake = tokio::select! {
            _ = cancel.cancelled() => Wake::Closing,
            t = rx.recv() => t.map_or(Wake::Closing, Wake::Got),
            _ = tokio::time::sleep(retry), if waiting => Wake::Retry,
        };
        let closing = matches!(wake, Wake::Closing);
        let mut take = |t: Transition| {
            for f in &forward {
                let _ = f.send(t.clone());
            }
            pending.push_back(NewTransition {
                district_code: district_of(&t.camera_id).unwrap_or_default(),
                camera_id: t.camera_id,
                at_ms: t.at_ms,
                from_state: t.from.as_str().to_string(),
                to_state: t.to.as_str().to_string(),
                reason: t.reason.map(|r| r.as_str().to_string()),
            });
        };
        if let Wake::Got(t) = wake {
            take(t);
        }
        while let Ok(t) = rx.try_recv() {
            take(t);
        }
        while pending.len() > MAX_PENDING {
            pending.pop_front();
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        while !pending.is_empty() {
            let batch: Vec<NewTransition> = pending.iter().take(500).cloned().collect();
            match store.insert_transitions(&batch).await {
                Ok(()) => {
                    pending.drain(..batch.len());
                    counters
                        .stored
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    retry = Duration::from_millis(500);
                }
                Err(e) => {
                    counters.store_errors.fetch_add(1, Ordering::Relaxed);
                    if counters
                        .store_errors
                        .load(Ordering::Relaxed)
                        .is_power_of_two()
                    {
                        tracing::warn!(error = %e, pending = pending.len(), "cannot store camera transitions; will retry");
                    }
                    if closing {
                        return;
                    }
                    retry = (retry * 2).min(Duration::from_secs(5));
                    break;
                }
            }
        }
        if closing {
            return;
        }
    }
}
