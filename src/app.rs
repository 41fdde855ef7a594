//! Wiring: open the store, load the built-in districts, serve HTTP until a
//! shutdown signal. The root [`CancellationToken`] is what every long-lived
//! task watches; later stages (pulls, probes) hang their own children off it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::auth::cipher::{self, CipherError, CredentialCipher};
use crate::config::Config;
use crate::health::{probe, recorder, webhook};
use crate::metrics::Telemetry;
use crate::pull::{PullConfig, PullManager, PullSource};
use crate::store::{self, CameraFilter, Store};

/// Opens the configured store, applies migrations and, when the database
/// has none, loads the built-in district table.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_store_keyed(config).await?.0)
}

/// [`open_store`], also giving the credential key and where it came from.
async fn open_store_keyed(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Store>, Arc<CredentialCipher>, KeySource)> {
    prepare_data_dir(&config.data_dir)?;
    let url = config.database_url();
    let (cipher, source) = credential_key(config)?;
    let cipher = Arc::new(cipher);
    let mut options = config.store_options();
    options.cipher = Some(cipher.clone());
    let store = store::open(&url, &options).await.with_context(|| {
        format!(
            "cannot open the {} database (database.url)",
            backend_name(&url)
        )
    })?;
    check_credentials(&*store, &cipher, &source).await?;
    if config.catalogue.load_builtin_districts {
        store::seed_districts(&*store).await?;
    }
    Ok((store, cipher, source))
}

/// Makes sure `data_dir` is a directory (created owner-only when missing)
/// and warns, naming them, about it or files in it that others may read:
/// the database, its WAL and the key file hold secrets.
pub fn prepare_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => anyhow::bail!(
            "data_dir {} is not a directory (config key `data_dir`)",
            dir.display()
        ),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create data_dir {}", dir.display()))?;
        }
        Err(e) => anyhow::bail!(
            "cannot read data_dir {}: {e} (config key `data_dir`)",
            dir.display()
        ),
    }
    let mut open: Vec<String> = Vec::new();
    let mode_of =
        |p: &std::path::Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    if let Ok(mode) = mode_of(dir)
        && mode & 0o077 != 0
    {
        open.push(format!("{} ({mode:o})", dir.display()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if let Ok(mode) = mode_of(&p)
                && mode & 0o077 != 0
            {
                open.push(format!("{} ({mode:o})", p.display()));
            }
        }
    }
    if !open.is_empty() {
        tracing::warn!(
            paths = %open.join(", "),
            "the data directory or files in it can be read by other users: they hold the \
             database, its WAL and the credential key; run `chmod -R go= {}`",
            dir.display()
        );
    }
    Ok(())
}

/// Where the camera-credential key came from.
enum KeySource {
    /// `security.credential_key` (file or environment).
    Config,
    /// The key file in the data directory.
    File,
    /// None yet: a new key, to be written to this file once the database is
    /// known to hold no password written with another key.
    New(std::path::PathBuf, String),
}

const KEY_HELP: &str = "set security.credential_key (or CAMGATE__SECURITY__CREDENTIAL_KEY)";

fn credential_key(config: &Config) -> anyhow::Result<(CredentialCipher, KeySource)> {
    if !config.security.credential_key.is_empty() {
        let c = CredentialCipher::from_text(&config.security.credential_key)
            .map_err(|e| anyhow::anyhow!("config key `security.credential_key`: {e}"))?;
        return Ok((c, KeySource::Config));
    }
    let path = config.data_dir.join("credential.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let c = CredentialCipher::from_text(&text)
                .map_err(|e| anyhow::anyhow!("the credential key file {}: {e}", path.display()))?;
            Ok((c, KeySource::File))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = CredentialCipher::generate();
            let c = CredentialCipher::from_text(&text).expect("a generated key parses");
            Ok((c, KeySource::New(path, text)))
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot read the credential key file {}: {e}",
            path.display()
        )),
    }
}

/// Checks that every stored camera password opens with `cipher`, encrypts
/// those an earlier version stored in clear, and writes a new key file.
/// Refuses (an error that says what to set) when passwords were written
/// with another key.
async fn check_credentials(
    store: &dyn Store,
    cipher: &CredentialCipher,
    source: &KeySource,
) -> anyhow::Result<()> {
    let stored = store.stored_credentials().await?;
    let mut clear = Vec::new();
    for (id, value) in &stored {
        if !cipher::is_encrypted(value) {
            clear.push((id.clone(), cipher.encrypt(value)));
            continue;
        }
        match (cipher.decrypt(value), source) {
            (Ok(_), _) => {}
            (Err(CipherError::WrongKey { stored, .. }), KeySource::New(path, _)) => {
                anyhow::bail!(
                    "the database holds camera passwords encrypted with key {stored}, and no \
                     credential key is configured: {KEY_HELP} to that key, or put it in {}",
                    path.display()
                )
            }
            (Err(CipherError::WrongKey { stored, configured }), _) => anyhow::bail!(
                "the database holds camera passwords encrypted with key {stored}, not with the \
                 configured key {configured}: {KEY_HELP} to the key that wrote them (after a \
                 change of key, `camgate rotate-key` re-encrypts)"
            ),
            (Err(e), _) => anyhow::bail!("stored credential {id}: {e}"),
        }
    }
    if !clear.is_empty() {
        store.replace_credentials(&clear).await?;
        tracing::info!(
            cameras = clear.len(),
            "encrypted camera passwords that an earlier version stored in clear"
        );
    }
    if let KeySource::New(path, text) = source {
        write_key_file(path, text)?;
        tracing::warn!(
            path = %path.display(),
            "generated the camera-credential key; back it up apart from the database, or \
             {KEY_HELP}"
        );
    }
    Ok(())
}

/// Where `rotate_key` left the new key.
pub enum RotatedKey {
    /// Replaced in the data directory's key file.
    File(std::path::PathBuf),
    /// The key is configured: the new one must be set there (shown once).
    Configure(String),
}

/// Re-encrypts every stored camera password with a new key (`new_key`, or
/// a generated one) in one transaction. With the key file, the new key is
/// written beside it first and moved over it once the database is done, so
/// a failure leaves the old key and the old ciphertexts together.
pub async fn rotate_key(
    config: &Config,
    new_key: Option<&str>,
) -> anyhow::Result<(usize, RotatedKey)> {
    let (store, old, source) = open_store_keyed(config).await?;
    let text = match new_key {
        Some(k) => k.trim().to_string(),
        None => CredentialCipher::generate(),
    };
    let new =
        CredentialCipher::from_text(&text).map_err(|e| anyhow::anyhow!("the new key: {e}"))?;
    let mut rows = Vec::new();
    for (id, value) in store.stored_credentials().await? {
        let plain = old
            .decrypt(&value)
            .map_err(|e| anyhow::anyhow!("stored credential {id}: {e}"))?;
        rows.push((id, new.encrypt(&plain)));
    }
    let outcome = match source {
        KeySource::Config => {
            store.replace_credentials(&rows).await?;
            RotatedKey::Configure(text)
        }
        KeySource::File | KeySource::New(..) => {
            let path = config.data_dir.join("credential.key");
            let staged = config.data_dir.join("credential.key.new");
            let _ = std::fs::remove_file(&staged);
            write_key_file(&staged, &text)?;
            if let Err(e) = store.replace_credentials(&rows).await {
                let _ = std::fs::remove_file(&staged);
                return Err(e.into());
            }
            std::fs::rename(&staged, &path)
                .with_context(|| format!("cannot move the new key to {}", path.display()))?;
            RotatedKey::File(path)
        }
    };
    store.close().await;
    Ok((rows.len(), outcome))
}

/// Writes a key file readable by its owner only; never replaces one.
fn write_key_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write the credential key file {}", path.display()))?;
    writeln!(f, "{text}")?;
    Ok(())
}

fn backend_name(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// Every camera in the catalogue, as pull configs.
pub async fn load_pull_configs(store: &dyn Store) -> anyhow::Result<Vec<PullConfig>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_cameras(&CameraFilter::default(), after.as_deref(), 1000)
            .await?;
        out.extend(page.iter().map(PullConfig::from_camera));
        match page.last() {
            Some(last) if page.len() == 1000 => after = Some(last.id.clone()),
            _ => return Ok(out),
        }
    }
}

/// Makes the pull manager's cameras those of the catalogue.
pub async fn reconcile_from_store(
    store: &dyn Store,
    pulls: &PullManager,
    spread: bool,
) -> anyhow::Result<()> {
    let cfgs = load_pull_configs(store).await?;
    pulls.reconcile(cfgs, spread);
    Ok(())
}

/// The running health machinery: pulls, probes, the transition recorder,
/// webhooks and the telemetry that `/metrics` reads.
pub struct Engine {
    pub pulls: Arc<PullManager>,
    pub telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
    recorder_stop: CancellationToken,
    recorder: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Stops probes and pulls, records every watched camera's move to
    /// `unknown`, then lets the recorder save what it has.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.pulls.shutdown().await;
        self.recorder_stop.cancel();
        let handle = self.recorder.lock().unwrap().take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

/// Starts pulling: the manager, the transition recorder (and webhooks),
/// the catalogue loaded (first connects spread), a periodic re-read of the
/// catalogue, and probes of the cameras nobody pulls.
pub async fn start_pulling(
    store: Arc<dyn Store>,
    config: &Config,
    source: Arc<dyn PullSource>,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<Engine>> {
    let cancel = shutdown.child_token();
    let (events, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let pulls = PullManager::new(
        source.clone(),
        config.pull.options(),
        cancel.child_token(),
        events,
    );
    let telemetry = Arc::new(Telemetry::new(pulls.clone()));
    let mut forward = Vec::new();
    if !config.webhooks.urls.is_empty() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        forward.push(tx);
        let weak = Arc::downgrade(&pulls);
        tokio::spawn(webhook::run(
            config.webhooks.options(),
            rx,
            move |id| {
                weak.upgrade()
                    .and_then(|p| p.config(id))
                    .map(webhook::CameraInfo::from)
                    .unwrap_or_default()
            },
            telemetry.webhooks.clone(),
            cancel.clone(),
        ));
    }
    // Recorded transitions also go to live views (the UI's event stream).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forward.push(tx);
    let weak = Arc::downgrade(&pulls);
    tokio::spawn(async move {
        while let Some(t) = rx.recv().await {
            match weak.upgrade() {
                Some(p) => p.publish(t),
                None => return,
            }
        }
    });
    let weak = Arc::downgrade(&pulls);
    let recorder_stop = CancellationToken::new();
    let recorder = tokio::spawn(recorder::run(
        store.clone(),
        events_rx,
        move |id| {
            weak.upgrade()
                .and_then(|p| p.config(id))
                .map(|c| c.district_code)
        },
        telemetry.recorder.clone(),
        forward,
        recorder_stop.clone(),
    ));
    reconcile_from_store(&*store, &pulls, true).await?;
    let every = Duration::from_secs(config.pull.reconcile_secs);
    let (p, s, c) = (pulls.clone(), store.clone(), cancel.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = reconcile_from_store(&*s, &p, false).await {
                tracing::warn!(error = %e, "cannot re-read the catalogue");
            }
        }
    });
    tokio::spawn(probe::run(
        pulls.clone(),
        source,
        config.health.probe_options(),
        telemetry.probes.clone(),
        cancel.clone(),
    ));
    tracing::info!(
        cameras = pulls.all().len(),
        pulling = pulls.active_pulls(),
        "pulling started"
    );
    Ok(Arc::new(Engine {
        pulls,
        telemetry,
        cancel,
        recorder_stop,
        recorder: Mutex::new(Some(recorder)),
    }))
}

/// A token cancelled at the first SIGINT or SIGTERM. A second signal exits
/// the process at once.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_signal().await;
        tracing::info!("shutting down (send the signal again to exit at once)");
        t.cancel();
        wait_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    token
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The addresses the gateway listens on.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub http: SocketAddr,
    /// The HTTP listener speaks TLS (`https://`).
    pub tls: bool,
    /// The ops listener (`/metrics`), unless turned off.
    pub metrics: Option<SocketAddr>,
    /// The RTSP relay, unless turned off.
    pub rtsp: Option<SocketAddr>,
}

/// Serves HTTP on `config.server.listen` (and metrics on
/// `config.metrics.listen`) until `shutdown` is cancelled. `on_ready` gets
/// the bound addresses (useful with port 0).
pub async fn serve(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (server.listen)", config.server.listen))?;
    serve_on(listener, config, store, engine, shutdown, on_ready).await
}

/// Like [`serve`], on an HTTP listener already bound.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    // Load the certificate before anything starts, so a bad one stops the
    // gateway with a message naming the config key.
    let tls = if config.security.tls_enabled() {
        Some(crate::tls::CertStore::load(
            &config.security.tls_cert,
            &config.security.tls_key,
        )?)
    } else {
        None
    };
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let mut metrics_addr = None;
    if !config.metrics.listen.is_empty() {
        let ops = tokio::net::TcpListener::bind(&config.metrics.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (metrics.listen)",
                    config.metrics.listen
                )
            })?;
        metrics_addr = Some(ops.local_addr()?);
        let router = crate::metrics::router(engine.telemetry.clone());
        let token = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(ops, router)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let state = AppState::build(
        store.clone(),
        config.clone(),
        engine.pulls.clone(),
        engine.telemetry.ws.clone(),
        engine.telemetry.hls.clone(),
        store.credential_cipher(),
    )
    .await?;
    tokio::spawn(state.gate.clone().run(shutdown.clone()));
    tokio::spawn(api::watch_database(
        store.clone(),
        state.db_up.clone(),
        shutdown.clone(),
    ));
    let mut rtsp_addr = None;
    if !config.relay.rtsp_listen.is_empty() {
        let l = tokio::net::TcpListener::bind(&config.relay.rtsp_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (relay.rtsp_listen)",
                    config.relay.rtsp_listen
                )
            })?;
        rtsp_addr = Some(l.local_addr()?);
        let server = crate::relay::rtsp::RtspServer::new(
            engine.pulls.clone(),
            config.relay.rtsp_options(),
            engine.telemetry.rtsp.clone(),
            Some(state.gate.clone()),
        );
        tokio::spawn(server.serve(l, shutdown.clone()));
    }
    let mut state = state;
    state.public = Arc::new(api::PublicAddress::new(&config, Some(addr), rtsp_addr));
    if config.server.public_url.is_empty() {
        tracing::info!(
            origin = %state.public.origin,
            "server.public_url is not set: embed links use this address; set it to the one centres reach"
        );
    }
    let router = api::router(state.clone());
    on_ready(Bound {
        http: addr,
        tls: tls.is_some(),
        metrics: metrics_addr,
        rtsp: rtsp_addr,
    });
    let opts = crate::listen::HttpOptions {
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
        grace,
    };
    let connections = crate::listen::ConnGate::new(crate::listen::ConnLimits {
        total: config.server.max_connections,
        per_ip: config.server.max_connections_per_ip,
    });
    let server = match tls {
        None => tokio::spawn(crate::listen::serve_http(
            listener,
            router,
            connections,
            opts,
            shutdown.clone(),
        )),
        Some(tls) => {
            tokio::spawn(tls.clone().watch(shutdown.clone()));
            let listener =
                crate::tls::TlsListener::spawn(listener, tls.server_config()?, shutdown.clone())?;
            tokio::spawn(crate::listen::serve_http(
                listener,
                router,
                connections,
                opts,
                shutdown.clone(),
            ))
        }
    };
    // The server ends after shutdown, once its requests finished or the
    // grace period ran out.
    server.await?;
    engine.shutdown().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
