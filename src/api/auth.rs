//! Who is calling the REST API, and whether their role allows the request:
//! an API key (`Authorization: Bearer cgk_...`) or a login session (the
//! `camgate_session` cookie). Every `/api/v1` route needs one except
//! `POST /api/v1/auth/login`. Reads need any role, writes `operator`, and
//! users, keys and the audit trail `admin`. Embed links never reach the API.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::auth::gate::{Credential, Denied};
use crate::auth::service::LoginError;
use crate::auth::{Principal, Role};

/// The login session cookie.
pub const SESSION_COOKIE: &str = "camgate_session";

/// The role a request needs.
fn required_role(method: &Method, path: &str) -> Role {
    let admin_only = ["/api/v1/users", "/api/v1/keys", "/api/v1/audit"];
    let under = |p: &str| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if admin_only.into_iter().any(under) {
        Role::Admin
    } else if under("/api/v1/embed-links") {
        // Links hand out access: listing them shows who can watch what.
        Role::Operator
    } else if under("/api/v1/me")
        || under("/api/v1/auth")
        || matches!(*method, Method::GET | Method::HEAD)
    {
        // `/me/...` is the caller's own (its wall layouts), `/auth/...` its
        // session (logout): any role.
        Role::Viewer
    } else {
        Role::Operator
    }
}

fn unauthorized() -> Response {
    let mut r = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "log in (POST /api/v1/auth/login) or send an API key as `Authorization: Bearer <key>`",
    )
    .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The principal of a request's key or session, if any is valid.
pub async fn principal(st: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(key) = bearer {
        return Ok(st.gate.resolve(Credential::Bearer(key)).await?);
    }
    if let Some(session) = cookie(headers, SESSION_COOKIE) {
        return Ok(st.gate.resolve(Credential::Session(session)).await?);
    }
    Ok(None)
}

/// The `token` query parameter of a stream URL: an embed-link token or an
/// API key. Other parameters (the embed page's `transport`, LL-HLS's
/// blocking-reload ones) are the route's own.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// The principal of a stream request (the embed page, the WebSocket path,
/// LL-HLS): an API key (`Authorization: Bearer`), the login session cookie
/// or `?token=` (an embed link or an API key). 401 without a valid one.
pub async fn stream_principal(
    st: &AppState,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Principal, Response> {
    let found = match token.filter(|t| !t.is_empty()) {
        Some(t) => st
            .gate
            .resolve(Credential::Token(t))
            .await
            .map_err(ApiError::from),
        None => principal(st, headers).await,
    };
    match found {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(e.into_response()),
    }
}

/// Whether a stream request authenticates with the session cookie alone
/// (no `?token=`, no bearer key): the case a browser adds by itself, so a
/// page of another site could use it.
pub fn by_cookie(headers: &HeaderMap, token: Option<&str>) -> bool {
    token.is_none_or(str::is_empty)
        && headers.get(header::AUTHORIZATION).is_none()
        && cookie(headers, SESSION_COOKIE).is_some()
}

/// Whether the request's `Origin` (if any) is the gateway's own — the
/// request's `Host`, or `server.public_url` — or one of
/// `security.embed_origins`. Non-browser clients send no `Origin`.
pub fn same_or_embed_origin(st: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let own = &st.public.origin;
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| Some(authority) == host)
        || origin == own.as_str()
        || st.config.security.embed_origins.iter().any(|o| o == origin)
}

/// The camera `id` when `p` may watch it; 404 otherwise, alike for unknown,
/// disabled and out-of-scope cameras (so IDs do not leak).
pub fn stream_camera(
    st: &AppState,
    p: &Principal,
    id: &str,
) -> Result<crate::pull::PullConfig, ApiError> {
    st.pulls
        .config(id)
        .filter(|c| c.enabled && p.may_see(id, &c.district_code))
        .ok_or_else(|| ApiError::camera_not_found(id))
}

/// A view the gate refused: too many streams (429), or no audit (503).
pub fn view_denied(e: Denied) -> Response {
    match e {
        Denied::TooMany { .. } => {
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                e.to_string(),
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            r
        }
        Denied::Store(e) => ApiError::from(e).into_response(),
    }
}

/// Middleware: resolves the caller of every `/api/v1` request (but login),
/// checks the role, and hands the [`Principal`] to the handler.
pub async fn require(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/v1/") && !st.db_up.load(std::sync::atomic::Ordering::Relaxed) {
        return ApiError::database_unavailable().into_response();
    }
    if path == "/api/v1/auth/login" {
        // Throttled per client address, before the password is checked.
        let client = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "-".to_string(), |c| c.0.ip().to_string());
        if let Err(wait) = st.login_limit.check(&client) {
            return too_many(
                "too_many_logins",
                "too many login attempts from this address; wait",
                wait,
            );
        }
        return next.run(req).await;
    }
    if !path.starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let p = match principal(&st, req.headers()).await {
        Ok(Some(p)) => p,
        Ok(None) => return unauthorized(),
        Err(e) => return e.into_response(),
    };
    if let Err(wait) = st.api_limit.check(&p.label()) {
        return too_many(
            "rate_limited",
            "too many requests for this key or user; slow down",
            wait,
        );
    }
    let needed = required_role(req.method(), path);
    if !p.role.at_least(needed) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {needed} role; yours is {}", p.role),
        )
        .into_response();
    }
    req.extensions_mut().insert(p);
    next.run(req).await
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn too_many(code: &'static str, message: &str, wait: std::time::Duration) -> Response {
    let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).into_response();
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// The session cookie; `Secure` when the listener speaks TLS, so the
/// browser never sends it over plain HTTP.
fn session_cookie(st: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if st.config.security.tls_enabled() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie text is ASCII")
}

/// `POST /api/v1/auth/login`: a session cookie (HttpOnly, SameSite=Strict,
/// expiring) for the right username and password.
pub async fn login(State(st): State<AppState>, ApiJson(l): ApiJson<Login>) -> Response {
    match st.auth.login(&l.username, &l.password).await {
        Ok((session, user)) => {
            let ttl = st.auth.options().session_ttl.as_secs();
            let mut r = axum::Json(json!({ "user": user.public() })).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&st, &session, ttl));
            r
        }
        Err(LoginError::BadCredentials) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong username or password",
        )
        .into_response(),
        Err(LoginError::Locked { until_ms }) => {
            let secs = ((until_ms - crate::catalogue::now_ms()) / 1000).max(1);
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "account_locked",
                "the account is locked after repeated failed logins; try again later",
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
            r
        }
        Err(LoginError::Store(e)) => ApiError::from(e).into_response(),
    }
}

/// `POST /api/v1/auth/logout`: ends the session and clears the cookie.
pub async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(s) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = st.auth.logout(s).await
    {
        return ApiError::from(e).into_response();
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&st, "", 0));
    r
}

/// `GET /api/v1/auth/me`: who the caller is.
pub async fn me(axum::Extension(p): axum::Extension<Principal>) -> Response {
    axum::Json(json!({
        "principal": p.label(),
        "role": p.role,
        "scope": p.scope.code(),
    }))
    .into_response()
}

/// A district code no district is under: a filter on it answers nothing,
/// in the usual shape (an empty page, a header-only CSV).
pub const NOWHERE: &str = "-";

/// The caller of an API request, as the `require` middleware found them.
pub struct Caller(pub Principal);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(unauthorized)
    }
}

impl Caller {
    /// Whether district `code` is within the caller's scope.
    pub fn sees(&self, code: &str) -> bool {
        self.0.scope.contains(code)
    }

    /// The district filter for a request for `requested`: the narrower of
    /// it and the scope, or [`NOWHERE`] when they do not overlap.
    pub fn narrow(&self, requested: Option<String>) -> Option<String> {
        self.0
            .scope
            .narrow(requested.as_deref())
            .unwrap_or_else(|| Some(NOWHERE.to_string()))
    }

    /// A write into district `code`: refused (422 `out_of_scope`, naming
    /// `field`) outside the caller's scope.
    pub fn may_write(&self, code: &str, field: &str) -> Result<(), ApiError> {
        if self.sees(code) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_scope",
                format!(
                    "district {code} is outside your scope ({})",
                    self.0.scope.code().unwrap_or("")
                ),
            )
            .field(field))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_needed_by_method_and_path() {
        assert_eq!(required_role(&Method::GET, "/api/v1/cameras"), Role::Viewer);
        assert_eq!(
            required_role(&Method::POST, "/api/v1/cameras"),
            Role::Operator
        );
        assert_eq!(
            required_role(&Method::DELETE, "/api/v1/cameras/x"),
            Role::Operator
        );
        assert_eq!(required_role(&Method::GET, "/api/v1/users"), Role::Admin);
        assert_eq!(required_role(&Method::GET, "/api/v1/keys/x"), Role::Admin);
        assert_eq!(required_role(&Method::GET, "/api/v1/audit"), Role::Admin);
        assert_eq!(required_role(&Method::GET, "/api/v1/usersx"), Role::Viewer);
        assert_eq!(
            required_role(&Method::POST, "/api/v1/auth/logout"),
            Role::Viewer
        );
        assert_eq!(
            required_role(&Method::GET, "/api/v1/embed-links"),
            Role::Operator
        );
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; camgate_session=cgs_x; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("cgs_x"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
