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
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::config::Config;
use crate::store::Store;

pub mod auth;
mod catalogue;
pub mod error;
pub mod extract;
mod health;
pub mod openapi;

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
        .route("/health/summary", get(health::summary))
        .route("/health/events", get(health::events));
    Router::new()
        .route("/", get(index))
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
        .layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .layer(middleware::from_fn(access_log))
        .with_state(state)
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
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
