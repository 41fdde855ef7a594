//! Wiring: open the store, load the built-in districts, serve HTTP until a
//! shutdown signal. The root [`CancellationToken`] is what every long-lived
//! task watches; later stages (pulls, probes) hang their own children off it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::store::{self, Store};

/// Opens the configured store, applies migrations and, when the database
/// has none, loads the built-in district table.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let store = store::open(&url, &config.store_options())
        .await
        .with_context(|| {
            format!(
                "cannot open the {} database (database.url)",
                backend_name(&url)
            )
        })?;
    if config.catalogue.load_builtin_districts {
        store::seed_districts(&*store).await?;
    }
    Ok(store)
}

fn backend_name(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
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

/// Serves HTTP on `config.server.listen` until `shutdown` is cancelled.
/// `on_ready` gets the bound address (useful with port 0).
pub async fn serve(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (server.listen)", config.server.listen))?;
    serve_on(listener, config, store, shutdown, on_ready).await
}

/// Like [`serve`], on a listener already bound.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let router = api::router(AppState {
        store: store.clone(),
        config,
    });
    on_ready(addr);
    let token = shutdown.clone();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move { token.cancelled().await });
    let mut server = tokio::spawn(async move { server.await });
    tokio::select! {
        r = &mut server => r??,
        _ = shutdown.cancelled() => match tokio::time::timeout(grace, &mut server).await {
            Ok(r) => r??,
            Err(_) => tracing::warn!(
                grace_secs = grace.as_secs(),
                "requests still running after the grace period; exiting"
            ),
        },
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
