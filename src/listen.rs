//! Connection hygiene for the listeners that face clients (HTTP and RTSP):
//! a cap on open connections in total and per client address, and, for
//! HTTP, a deadline on every request head (a client that opens a
//! connection and trickles or withholds its request is cut off) and a
//! graceful stop.
//!
//! One client address opening thousands of connections, or a thousand
//! clients that never finish a request, would otherwise hold the
//! gateway's file descriptors until it can accept no one else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Caps on open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub total: usize,
    pub per_ip: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            total: 10_000,
            per_ip: 256,
        }
    }
}

/// Counts a listener's open connections against its [`ConnLimits`].
#[derive(Debug, Default)]
pub struct ConnGate {
    limits: ConnLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    /// Connections refused for being over a cap.
    pub refused: AtomicU64,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnSlot {
    gate: Arc<ConnGate>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl ConnGate {
    pub fn new(limits: ConnLimits) -> Arc<ConnGate> {
        Arc::new(ConnGate {
            limits,
            ..Default::default()
        })
    }

    /// Admits a connection from `ip`, or `None` when a cap is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnSlot> {
        let mut open = self.open.lock().unwrap();
        let from_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.limits.total || from_ip >= self.limits.per_ip {
            drop(open);
            let n = self.refused.fetch_add(1, Ordering::Relaxed);
            // Rate-limited: the first, then every 1,000th.
            if n.is_multiple_of(1000) {
                tracing::warn!(
                    client = %ip,
                    total = self.limits.total,
                    per_ip = self.limits.per_ip,
                    refused = n + 1,
                    "connection refused: over the connection cap"
                );
            }
            return None;
        }
        open.0 += 1;
        *open.1.entry(ip).or_insert(0) += 1;
        Some(ConnSlot {
            gate: self.clone(),
            ip,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap().0
    }
}

/// How the HTTP listener treats its connections.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// A whole request head must arrive within this long (on a new
    /// connection, and between the requests of a kept-alive one).
    pub header_read_timeout: Duration,
    /// At shutdown, how long requests in progress may take to finish.
    pub grace: Duration,
}

/// Serves `router` on `listener` (plain TCP or TLS) until `shutdown`, then
/// lets requests in progress finish within the grace period.
pub async fn serve_http<L>(
    mut listener: L,
    router: axum::Router,
    gate: Arc<ConnGate>,
    opts: HttpOptions,
    shutdown: CancellationToken,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);
    let tasks = TaskTracker::new();
    loop {
        let (io, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            c = listener.accept() => c,
        };
        let Some(slot) = gate.admit(peer.ip()) else {
            drop(io);
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            },
        );
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let _slot = slot;
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended");
                    }
                }
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    tasks.close();
    if tokio::time::timeout(opts.grace, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = opts.grace.as_secs(),
            "requests still running after the grace period; exiting"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total() {
        let g = ConnGate::new(ConnLimits {
            total: 3,
            per_ip: 2,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = g.admit(a).unwrap();
        let _s2 = g.admit(a).unwrap();
        assert!(g.admit(a).is_none(), "third from one address");
        let _s3 = g.admit(b).unwrap();
        assert!(g.admit(b).is_none(), "over the total");
        assert_eq!(g.open(), 3);
        drop(s1);
        assert!(g.admit(a).is_some(), "a freed place is reused");
        assert_eq!(g.refused.load(Ordering::Relaxed), 2);
    }
}
