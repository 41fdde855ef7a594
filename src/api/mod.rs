//! The HTTP API: REST under `/api/v1`, health endpoints, and (in later
//! stages) the web UI and embed pages. Handlers are thin: they parse, call
//! `catalogue` validation and the `store`, and map errors in one place
//! (`error.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::Config;
use crate::store::Store;

mod access;
pub mod auth;
mod catalogue;
pub mod error;
pub mod extract;
mod health;
pub mod limit;
pub mod openapi;
pub mod ui;
mod walls;

pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub pulls: Arc<crate::pull::PullManager>,
    /// The WebSocket live path's counters (shared with metrics).
    pub ws: Arc<crate::relay::ViewerCounters>,
    /// The LL-HLS path's counters (shared with metrics).
    pub hls: Arc<crate::relay::ViewerCounters>,
    /// Users, sessions and keys.
    pub auth: Arc<crate::auth::service::AuthService>,
    /// Who may watch what; open views.
    pub gate: Arc<crate::auth::gate::Gate>,
    /// REST requests per caller.
    pub api_limit: Arc<limit::RateLimiter>,
    /// Login attempts per client address.
    pub login_limit: Arc<limit::RateLimiter>,
    /// Where clients reach this gateway, for the URLs it hands out.
    pub public: Arc<PublicAddress>,
    /// Whether the database answered its last check (see [`watch_database`]).
    pub db_up: Arc<std::sync::atomic::AtomicBool>,
}

/// Checks a database server every second until `cancel` and keeps `up` current,
/// so that while it is unreachable API requests are answered 503 at once
/// instead of waiting out a connection timeout. Logs each change once.
pub async fn watch_database(
    store: Arc<dyn Store>,
    up: Arc<std::sync::atomic::AtomicBool>,
    cancel: tokio_util::sync::CancellationToken,
) {
    use std::sync::atomic::Ordering;
    // A SQLite file is not a server that goes away: its errors (a full
    // disk, a locked database) are answered as they happen.
    if store.backend() == "sqlite" {
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A refused connection marks it down at once; a check that only takes
    // long must do so twice in a row (one slow answer under load is not an
    // outage).
    let mut slow = 0u32;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ok = match tokio::time::timeout(std::time::Duration::from_secs(1), store.reach()).await
        {
            Ok(Ok(())) => {
                slow = 0;
                true
            }
            Ok(Err(_)) => false,
            Err(_) => {
                slow += 1;
                slow < 2
            }
        };
        if up.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!("the database answers again");
            } else {
                tracing::warn!(
                    "the database does not answer: API requests get 503 until it does; pulls and streams go on"
                );
            }
        }
    }
}

/// Where clients reach the gateway: from `server.public_url`, else the
/// bound listeners (never a request's `Host`, which the client chooses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicAddress {
    /// `http(s)://host:port` of the HTTP listener.
    pub origin: String,
    /// The host alone.
    pub host: String,
    /// The RTSP relay's port, when it listens.
    pub rtsp_port: Option<u16>,
}

impl PublicAddress {
    /// From the configuration and, when known, the bound addresses.
    pub fn new(
        config: &Config,
        http: Option<std::net::SocketAddr>,
        rtsp: Option<std::net::SocketAddr>,
    ) -> Self {
        let mut server = config.server.clone();
        if let Some(a) = http {
            server.listen = a.to_string();
        }
        let (origin, host) = server.public_origin(config.security.tls_enabled());
        let rtsp_port = rtsp.map(|a| a.port()).or_else(|| {
            config
                .relay
                .rtsp_listen
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.port())
        });
        PublicAddress {
            origin,
            host,
            rtsp_port,
        }
    }
}

impl AppState {
    /// The state for `config`: the auth service (with `cipher` for RTSP
    /// Digest hashes, when given), the stream gate and the rate limits.
    pub async fn build(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        pulls: Arc<crate::pull::PullManager>,
        ws: Arc<crate::relay::ViewerCounters>,
        hls: Arc<crate::relay::ViewerCounters>,
        cipher: Option<Arc<crate::auth::cipher::CredentialCipher>>,
    ) -> Result<AppState, crate::store::StoreError> {
        use crate::auth::gate::{Gate, GateOptions};
        use crate::auth::service::{AuthOptions, AuthService};
        let sec = &config.security;
        let mut auth = AuthService::new(
            store.clone(),
            AuthOptions {
                session_ttl: std::time::Duration::from_secs(sec.session_ttl_secs),
                lockout_after: sec.lockout_after as i64,
                lockout: std::time::Duration::from_secs(sec.lockout_secs),
            },
        );
        if let Some(c) = cipher {
            auth = auth.with_cipher(c);
        }
        let auth = Arc::new(auth);
        let gate = Gate::new(
            auth.clone(),
            store.clone(),
            GateOptions {
                max_streams_per_principal: sec.max_streams_per_principal as usize,
                max_streams_per_link: sec.max_streams_per_link as usize,
                audit_retention: std::time::Duration::from_secs(
                    sec.audit_retention_days as u64 * 86_400,
                ),
                ..Default::default()
            },
        )
        .await?;
        Ok(AppState {
            api_limit: Arc::new(limit::RateLimiter::new(sec.api_rate_per_sec, sec.api_burst)),
            login_limit: Arc::new(limit::RateLimiter::new(sec.login_rate_per_sec, 10)),
            public: Arc::new(PublicAddress::new(&config, None, None)),
            db_up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            store,
            config,
            pulls,
            ws,
            hls,
            auth,
            gate,
        })
    }
}

/// Builds the HTTP router.
pub fn router(state: AppState) -> Router {
    let import_limit = state.config.server.max_import_bytes as usize;
    let api = Router::new()
        .route("/auth/login", axum::routing::post(auth::login))
        .route("/auth/logout", axum::routing::post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/openapi.json", get(openapi::handler))
        .route("/districts", get(catalogue::list_districts))
        .route("/districts/{code}", get(catalogue::get_district))
        .route(
            "/checkpoints",
            get(catalogue::list_checkpoints).post(catalogue::create_checkpoint),
        )
        .route(
            "/checkpoints/{id}",
            get(catalogue::get_checkpoint)
                .patch(catalogue::update_checkpoint)
                .delete(catalogue::delete_checkpoint),
        )
        .route(
            "/cameras",
            get(catalogue::list_cameras).post(catalogue::create_camera),
        )
        .route(
            "/cameras/import",
            axum::routing::post(catalogue::import_cameras)
                .layer(DefaultBodyLimit::max(import_limit)),
        )
        .route("/cameras/export", get(catalogue::export_cameras))
        .route(
            "/cameras/{id}",
            get(catalogue::get_camera)
                .patch(catalogue::update_camera)
                .delete(catalogue::delete_camera),
        )
        .route("/cameras/{id}/health", get(health::camera_health))
        .route(
            "/cameras/{id}/snapshot.jpg",
            get(crate::relay::snapshot::handler),
        )
        .route("/users", get(access::list_users).post(access::create_user))
        .route(
            "/users/{username}",
            axum::routing::patch(access::update_user),
        )
        .route("/keys", get(access::list_keys).post(access::create_key))
        .route("/keys/{id}", axum::routing::delete(access::revoke_key))
        .route(
            "/embed-links",
            get(access::list_links).post(access::create_link),
        )
        .route(
            "/embed-links/{id}",
            axum::routing::delete(access::revoke_link),
        )
        .route("/audit", get(access::list_audit))
        .route("/me/walls", get(walls::list))
        .route(
            "/me/walls/{name}",
            axum::routing::put(walls::put).delete(walls::delete),
        )
        .route("/cameras/{id}/timeline", get(health::camera_timeline))
        .route("/health/stream", get(health::stream))
        .route("/health/summary", get(health::summary))
        .route("/health/events", get(health::events))
        .layer(middleware::from_fn(extract::clean_input));
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/live/{id}", get(crate::relay::live::handler))
        .route("/embed/{id}", get(crate::relay::live::embed))
        .route("/embed/{id}/state", get(crate::relay::live::embed_state))
        .route("/assets/hls.light.min.js", get(crate::relay::live::hls_js))
        .route("/hls/{id}/index.m3u8", get(crate::relay::hls::index))
        .route("/hls/{id}/init.mp4", get(crate::relay::hls::init))
        .route("/hls/{id}/seg/{name}", get(crate::relay::hls::segment))
        .route("/hls/{id}/part/{name}", get(crate::relay::hls::part))
        .nest("/api/v1", api)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(extract::clean_input))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .layer(middleware::from_fn_with_state(
            Arc::new(EmbedPolicy::new(&state.config.security.embed_origins)),
            embed_policy,
        ))
        .layer(middleware::from_fn(access_log))
        .with_state(state)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers.
async fn readyz(State(st): State<AppState>) -> Response {
    match st.store.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn route_not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!(
            "no route for {} {}; see /api/v1/openapi.json",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// Who may embed: the `frame-ancestors` of embed pages and the origins
/// that may fetch streams cross-origin.
pub struct EmbedPolicy {
    origins: Vec<String>,
    frame_ancestors: axum::http::HeaderValue,
}

impl EmbedPolicy {
    pub fn new(origins: &[String]) -> Self {
        let mut fa = String::from("frame-ancestors 'self'");
        for o in origins {
            fa.push(' ');
            fa.push_str(o);
        }
        EmbedPolicy {
            origins: origins.to_vec(),
            frame_ancestors: axum::http::HeaderValue::from_str(&fa)
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("frame-ancestors 'self'")),
        }
    }
}

/// Security headers: embed pages may be framed by the configured origins
/// only, every other page by none but our own; streams (LL-HLS, the embed
/// state) answer CORS for the configured origins. No page sends a
/// `Referer` (stream URLs may carry tokens).
async fn embed_policy(
    State(policy): State<Arc<EmbedPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    use axum::http::{HeaderValue, header};
    let path = req.uri().path().to_string();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| policy.origins.iter().any(|a| a == o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if path.starts_with("/embed/") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            policy.frame_ancestors.clone(),
        );
    } else {
        // A page's own policy (the UI's) keeps its directives.
        let csp = match h
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
        {
            Some(own) => HeaderValue::from_str(&format!("{own}; frame-ancestors 'self'"))
                .unwrap_or(HeaderValue::from_static("frame-ancestors 'self'")),
            None => HeaderValue::from_static("frame-ancestors 'self'"),
        };
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
        h.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    if path.starts_with("/hls/") || path.starts_with("/embed/") {
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(o) = origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
    }
    resp
}

/// One line per request: method, path (never the query, which may carry
/// tokens in later stages), status and duration.
async fn access_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        target: "camgate::access",
        %method,
        path,
        status = resp.status().as_u16(),
        ms = start.elapsed().as_millis() as u64,
        "request"
    );
    resp
}
