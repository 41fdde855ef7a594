//! Connection hygiene of the HTTP listener, served in-process on
//! 127.0.0.1: request heads that never finish and idle kept-alive
//! connections are closed after `server.header_read_timeout_secs`, and one
//! client address cannot hold more than `server.max_connections_per_ip`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate::config::Config;
use common::{Backend, OfflineSource, TestDb};
use tokio_util::sync::CancellationToken;

/// A gateway on loopback with `tweak` applied to its configuration.
async fn gateway(
    tweak: impl FnOnce(&mut Config),
) -> (SocketAddr, CancellationToken, TestDb, tempfile::TempDir) {
    common::capture_logs();
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.database.url = db.url.clone();
    config.data_dir = dir.path().to_path_buf();
    config.server.listen = "127.0.0.1:0".into();
    config.relay.rtsp_listen = String::new();
    config.metrics.listen = String::new();
    tweak(&mut config);
    let stop = CancellationToken::new();
    let engine = camgate::app::start_pulling(
        store.clone(),
        &config,
        Arc::new(OfflineSource),
        stop.clone(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let c = stop.clone();
    tokio::spawn(async move {
        let _ = camgate::app::serve_on(listener, Arc::new(config), store, engine, c, |b| {
            let _ = tx.send(b);
        })
        .await;
    });
    let bound = rx.await.unwrap();
    (bound.http, stop, db, dir)
}

/// Whether the server closed `s`: a read that ends (EOF or reset) within
/// `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn healthz(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_heads_and_idle_connections_are_closed() {
    let (addr, stop, _db, _dir) = gateway(|c| {
        c.server.header_read_timeout_secs = 2;
        c.server.max_connections_per_ip = 1000;
    })
    .await;
    // 300 clients that start a request and never finish its head, and one
    // kept-alive connection that goes quiet after a request.
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(
        idle.read(&mut first).unwrap() > 0,
        "the first request is answered"
    );
    // Meanwhile the gateway answers others.
    assert_eq!(healthz(addr), 200);
    let started = Instant::now();
    let open_after: usize = tokio::task::spawn_blocking(move || {
        slow.iter_mut()
            .map(|s| closed_within(s, Duration::from_secs(6)))
            .filter(|c| !c)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(
        open_after, 0,
        "unfinished request heads still open after the header timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        tokio::task::spawn_blocking(move || closed_within(&mut idle, Duration::from_secs(4)))
            .await
            .unwrap(),
        "an idle kept-alive connection is closed"
    );
    assert_eq!(healthz(addr), 200);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_connections() {
    let (addr, stop, _db, _dir) = gateway(|c| {
        c.server.header_read_timeout_secs = 30;
        c.server.max_connections_per_ip = 20;
    })
    .await;
    let mut held: Vec<TcpStream> = (0..25)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            s
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Read each without waiting: closed ones end, open ones would block.
    let refused = held
        .iter_mut()
        .map(|s| {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 64];
            !matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .filter(|c| *c)
        .count();
    assert_eq!(
        refused, 5,
        "connections past the per-address cap are closed at once"
    );
    // A place freed is taken again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(healthz(addr), 200);
    stop.cancel();
}
