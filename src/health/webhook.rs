//! Webhooks: every camera state change is POSTed as JSON to each configured
//! URL, signed with HMAC-SHA256 over the body
//! (`X-Camgate-Signature: sha256=<hex>`).
//!
//! Deliveries never hold up a pull: supervisors hand transitions to the
//! recorder on a channel, the recorder forwards them here, and each URL has
//! its own bounded queue and task. A receiver that fails is retried with
//! backoff (1 s doubling to 60 s, `max_attempts` tries) while later changes
//! wait behind, in order; when its queue is full the oldest waiting
//! delivery is dropped and counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Transition;
use crate::catalogue::rfc3339_ms;

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub urls: Vec<String>,
    pub secret: String,
    pub queue: usize,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// First retry delay (doubles up to a minute).
    pub retry_initial: Duration,
}

/// Delivery counts over all URLs (for metrics).
#[derive(Debug, Default)]
pub struct WebhookCounters {
    pub delivered: AtomicU64,
    /// Attempts that failed (each retry counts).
    pub attempt_failures: AtomicU64,
    /// Deliveries given up after `max_attempts`.
    pub given_up: AtomicU64,
    /// Deliveries dropped because a receiver's queue was full.
    pub dropped: AtomicU64,
}

/// What a webhook tells about a camera besides the transition.
#[derive(Debug, Clone, Default)]
pub struct CameraInfo {
    pub name: String,
    pub district: String,
    pub checkpoint: Option<String>,
}

impl From<crate::pull::PullConfig> for CameraInfo {
    /// The camera's name, district and checkpoint; never its address or
    /// credentials.
    fn from(c: crate::pull::PullConfig) -> Self {
        CameraInfo {
            name: c.name,
            district: c.district_code,
            checkpoint: c.checkpoint_id,
        }
    }
}

/// The body of one delivery.
pub fn payload(t: &Transition, cam: &CameraInfo) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "camera_id": t.camera_id,
        "name": cam.name,
        "district": cam.district,
        "checkpoint": cam.checkpoint,
        "from": t.from,
        "to": t.to,
        "reason": t.reason,
        "at": rfc3339_ms(t.at_ms),
    }))
    .expect("JSON of plain values")
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Queue {
    items: Mutex<VecDeque<Bytes>>,
    notify: Notify,
}

/// Runs the dispatcher until `cancel`: transitions from `rx`, described by
/// `describe`, to every URL.
pub async fn run(
    opts: WebhookOptions,
    mut rx: mpsc::UnboundedReceiver<Transition>,
    describe: impl Fn(&str) -> CameraInfo + Send + 'static,
    counters: Arc<WebhookCounters>,
    cancel: CancellationToken,
) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut queues = Vec::new();
    for url in &opts.urls {
        let q = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
        });
        queues.push(q.clone());
        tokio::spawn(deliver_loop(
            url.clone(),
            q,
            client.clone(),
            opts.clone(),
            counters.clone(),
            cancel.clone(),
        ));
    }
    loop {
        let t = tokio::select! {
            _ = cancel.cancelled() => return,
            t = rx.recv() => match t { Some(t) => t, None => return },
        };
        let body = Bytes::from(payload(&t, &describe(&t.camera_id)));
        for q in &queues {
            let mut items = q.items.lock().unwrap();
            if items.len() >= opts.queue {
                items.pop_front();
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            items.push_back(body.clone());
            drop(items);
            q.notify.notify_one();
        }
    }
}

async fn deliver_loop(
    url: String,
    q: Arc<Queue>,
    client: Client<HttpConnector, Full<Bytes>>,
    opts: WebhookOptions,
    counters: Arc<WebhookCounters>,
    cancel: CancellationToken,
) {
    let mut last_warn: Option<tokio::time::Instant> = None;
    loop {
        let next = q.items.lock().unwrap().front().cloned();
        let Some(body) = next else {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = q.notify.notified() => continue,
            }
        };
        let sig = signature(&opts.secret, &body);
        let mut delay = opts.retry_initial;
        let mut delivered = false;
        for attempt in 1..=opts.max_attempts {
            let req = hyper::Request::post(url.as_str())
                .header("content-type", "application/json")
                .header("x-camgate-signature", sig.as_str())
                .header("x-camgate-event", "camera.state")
                .header("user-agent", concat!("camgate/", env!("CARGO_PKG_VERSION")))
                .body(Full::new(body.clone()))
                .expect("valid request");
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(opts.timeout, client.request(req)) => r,
            };
            let err = match outcome {
                Ok(Ok(resp)) if resp.status().is_success() => None,
                Ok(Ok(resp)) => Some(format!("answered {}", resp.status().as_u16())),
                Ok(Err(e)) => Some(format!("request failed: {e}")),
                Err(_) => Some(format!("no answer within {} s", opts.timeout.as_secs_f64())),
            };
            match err {
                None => {
                    delivered = true;
                    break;
                }
                Some(e) => {
                    counters.attempt_failures.fetch_add(1, Ordering::Relaxed);
                    if last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                        last_warn = Some(tokio::time::Instant::now());
                        // The URL's host only: its path or query may carry a token.
                        let host = url::Url::parse(&url)
                            .ok()
                            .and_then(|u| u.host_str().map(str::to_string))
                            .unwrap_or_default();
                        tracing::warn!(webhook_host = %host, attempt, error = %e, "webhook delivery failed; retrying (further such warnings suppressed for 30 s)");
                    }
                    if attempt == opts.max_attempts {
                        break;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
        if delivered {
            counters.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.given_up.fetch_add(1, Ordering::Relaxed);
        }
        // Remove what was sent, unless it was dropped meanwhile by a full queue.
        let mut items = q.items.lock().unwrap();
        if items.front().is_some_and(|b| b.as_ptr() == body.as_ptr()) {
            items.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Reason, State};

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn payload_has_every_field() {
        let t = Transition {
            camera_id: "62060200001320000001".into(),
            at_ms: 1_772_294_400_000,
            from: State::Online,
            to: State::Offline,
            reason: Some(Reason::Stalled),
        };
        let v: serde_json::Value = serde_json::from_slice(&payload(
            &t,
            &CameraInfo {
                name: "东大街路口".into(),
                district: "620602".into(),
                checkpoint: None,
            },
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "camera_id": "62060200001320000001", "name": "东大街路口", "district": "620602",
                "checkpoint": null, "from": "online", "to": "offline", "reason": "stalled",
                "at": "2026-02-28T16:00:00Z"
            })
        );
    }
}
