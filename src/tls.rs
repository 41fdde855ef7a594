//! Optional TLS for the HTTP listener (`security.tls_cert`, `security.tls_key`).
//!
//! rustls with the ring provider. The certificate and key are PEM files,
//! re-read when either file changes (checked every [`RELOAD_EVERY`]), so a
//! renewed certificate is served without a restart; a renewal that does not
//! load (a half-written file, a key that does not match) keeps the old pair
//! and says why in the log.
//!
//! Handshakes run in their own tasks, off the accept loop, so a slow or
//! silent client cannot hold up the others; a client that speaks plain
//! HTTP to the TLS port gets a plain-text 400 telling it to use `https://`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How often the certificate and key files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// A client must finish its handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; further connections wait in the backlog.
const MAX_HANDSHAKES: usize = 256;

/// The certificate served, reloaded when its files change.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: std::sync::Mutex<Stamp>,
}

/// What the files looked like when last loaded.
type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp_of(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    };
    [one(cert), one(key)]
}

impl CertStore {
    /// Loads the pair; errors name the config key and the file.
    pub fn load(cert: &str, key: &str) -> anyhow::Result<Arc<CertStore>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
        let stamp = stamp_of(&cert, &key);
        let pair = load_pair(&cert, &key, &provider)?;
        Ok(Arc::new(CertStore {
            cert,
            key,
            provider,
            current: RwLock::new(Arc::new(pair)),
            stamp: std::sync::Mutex::new(stamp),
        }))
    }

    /// Re-reads the files if they changed since the last load. `Ok(true)`
    /// when a new pair is now served; on error the old pair stays.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let now = stamp_of(&self.cert, &self.key);
        if *self.stamp.lock().expect("stamp lock") == now {
            return Ok(false);
        }
        let pair = load_pair(&self.cert, &self.key, &self.provider);
        // Remember the stamp either way: a bad file is reported once, not
        // every tick, and is tried again when it changes.
        *self.stamp.lock().expect("stamp lock") = now;
        *self.current.write().expect("cert lock") = Arc::new(pair?);
        Ok(true)
    }

    /// The rustls server configuration (HTTP/1.1 over ALPN).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("rustls: no protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Checks the files every [`RELOAD_EVERY`] until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(
                    cert = %self.cert.display(),
                    "TLS certificate reloaded"
                ),
                Ok(false) => {}
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "the changed TLS certificate or key does not load; still serving the previous one"
                ),
            }
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("cert lock").clone())
    }
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error("security.tls_cert", cert, e))?;
    if certs.is_empty() {
        anyhow::bail!(
            "security.tls_cert: {} holds no PEM certificate (BEGIN CERTIFICATE)",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "security.tls_key: {} holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            key.display()
        ),
        e => pem_error("security.tls_key", key, e),
    })?;
    CertifiedKey::from_der(certs, private, provider).map_err(|e| {
        anyhow::anyhow!(
            "security.tls_key: {} does not go with the certificate in {}: {e}",
            key.display(),
            cert.display()
        )
    })
}

fn pem_error(field: &str, path: &Path, e: rustls::pki_types::pem::Error) -> anyhow::Error {
    match e {
        rustls::pki_types::pem::Error::Io(io) => {
            anyhow::anyhow!("{field}: cannot read {}: {io}", path.display())
        }
        e => anyhow::anyhow!("{field}: {} is not valid PEM: {e}", path.display()),
    }
}

/// A listener for `axum::serve` that hands out finished TLS connections.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and runs handshakes until `shutdown` or until the
    /// listener is dropped.
    pub fn spawn(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        shutdown: CancellationToken,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx, shutdown));
        Ok(TlsListener { rx, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    shutdown: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tx.closed() => return,
            p = handshakes.clone().acquire_owned() => p.expect("semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tx.closed() => return,
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, stream)).await {
                Ok(Ok(Some(tls))) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Ok(None)) => {
                    tracing::debug!(%peer, "plain HTTP on the TLS listener; told to use https")
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The handshake, or `None` after answering a plain-HTTP request.
async fn handshake(
    acceptor: &TlsAcceptor,
    mut stream: TcpStream,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    // A TLS record starts with its content type, 0x16 for a handshake; a
    // plain HTTP request starts with a method in capitals.
    if n == 1 && first[0].is_ascii_uppercase() {
        // Read the request head first: closing with unread bytes would reset
        // the connection before the client reads the answer.
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        let body = "This listener speaks HTTPS: use https:// in the URL.\n";
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        let _ = stream.shutdown().await;
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop stopped (shutdown): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
