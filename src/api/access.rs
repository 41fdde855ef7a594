//! Access administration over the API: users and API keys (admin), embed
//! links (operators, within their scope), and the audit trail (admin).
//! Every change here is itself audited, without secrets.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::catalogue::{encode_cursor, limit};
use super::error::ApiError;
use super::extract::{ApiJson, QueryPairs};
use crate::auth::service::{AccessError, check_scope, hex_id};
use crate::auth::token::LinkClaims;
use crate::auth::{Principal, Role};
use crate::catalogue::{now_ms, rfc3339_ms};
use crate::store::access::{AuditFilter, EmbedLinkRow, NewAudit, UserUpdate};

impl AppState {
    /// Writes a change to the audit trail: who, what, and the record
    /// before and after (as the API shows it: never a secret). A failure is
    /// logged; the change itself has happened.
    pub async fn audit_change(
        &self,
        who: &Principal,
        action: &str,
        target: &str,
        camera: Option<&str>,
        before: Option<Value>,
        after: Option<Value>,
    ) {
        let row = NewAudit {
            at_ms: now_ms(),
            kind: "change",
            principal: who.label(),
            action: action.to_string(),
            target: Some(target.to_string()),
            camera_id: camera.map(str::to_string),
            before_json: before.map(|v| v.to_string()),
            after_json: after.map(|v| v.to_string()),
            ..Default::default()
        };
        if let Err(e) = self.store.insert_audit(&row).await {
            tracing::error!(error = %e, action, target, "could not write an audit record");
        }
    }
}

fn access_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Invalid { field, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message).field(field)
        }
        AccessError::Store(e) => e.into(),
    }
}

/// Whether a user or key with `scope` is the caller's to see and manage:
/// an unscoped caller manages all, a scoped one those scoped inside its
/// own.
fn manages(caller: &Caller, scope: Option<&str>) -> bool {
    caller.0.scope.code().is_none() || scope.is_some_and(|s| caller.sees(s))
}

/// A scope a caller may hand out: inside its own.
fn grantable(caller: &Caller, scope: Option<&str>) -> Result<(), ApiError> {
    check_scope(scope).map_err(access_error)?;
    match (caller.0.scope.code(), scope) {
        (None, _) => Ok(()),
        (Some(own), Some(s)) if s.starts_with(own) => Ok(()),
        (Some(own), _) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_scope",
            format!("you may grant scopes inside {own} only"),
        )
        .field("scope")),
    }
}

// ---- users

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    /// Omitted: a password is generated and shown once.
    password: Option<String>,
    role: Role,
    scope: Option<String>,
}

/// `GET /api/v1/users`.
pub async fn list_users(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let users: Vec<_> = st
        .store
        .list_users()
        .await?
        .iter()
        .filter(|u| manages(&caller, u.scope.as_deref()))
        .map(|u| u.public())
        .collect();
    Ok(Json(json!({ "items": users })))
}

/// `POST /api/v1/users`: the user, and a generated password when none was
/// given (shown this once).
pub async fn create_user(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(n): ApiJson<NewUser>,
) -> Result<Response, ApiError> {
    grantable(&caller, n.scope.as_deref())?;
    let generated = n.password.is_none().then(|| crate::auth::token::random(15));
    let pw = n
        .password
        .as_deref()
        .or(generated.as_deref())
        .unwrap_or_default();
    st.auth
        .create_user(&n.username, pw, n.role, n.scope.as_deref())
        .await
        .map_err(access_error)?;
    let user = st
        .auth
        .user(&n.username)
        .await
        .map_err(access_error)?
        .public();
    st.audit_change(
        &caller.0,
        "user.create",
        &format!("user:{}", user.username),
        None,
        None,
        Some(json!(user)),
    )
    .await;
    let mut body = json!({ "user": user });
    if let Some(g) = generated {
        body["password"] = json!(g);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<Role>,
    /// `null` makes the user unscoped.
    #[serde(default, deserialize_with = "present")]
    scope: Option<Option<String>>,
    disabled: Option<bool>,
    password: Option<String>,
}

/// A field that may be present as `null`: `Some(None)`, unlike absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /api/v1/users/{username}`: role, scope, disabled, password.
/// Disabling a user or setting a password ends their sessions; disabling
/// also ends their open streams.
pub async fn update_user(
    State(st): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<Value>, ApiError> {
    let before = st.auth.user(&username).await.map_err(access_error)?;
    if !manages(&caller, before.scope.as_deref()) {
        return Err(ApiError::not_found(format!("no user `{username}`")));
    }
    if let Some(scope) = &patch.scope {
        grantable(&caller, scope.as_deref())?;
    }
    if let Some(pw) = &patch.password {
        st.auth
            .set_password(&username, pw)
            .await
            .map_err(access_error)?;
    }
    let update = UserUpdate {
        role: patch.role.map(|r| r.as_str().to_string()),
        scope: patch.scope.clone(),
        disabled: patch.disabled,
        ..Default::default()
    };
    st.store.update_user(before.id, &update, now_ms()).await?;
    if patch.disabled == Some(true) {
        st.gate.user_disabled(before.id);
    }
    let after = st
        .auth
        .user(&username)
        .await
        .map_err(access_error)?
        .public();
    let mut after_audit = json!(after);
    if patch.password.is_some() {
        after_audit["password"] = json!("changed");
    }
    st.audit_change(
        &caller.0,
        "user.update",
        &format!("user:{username}"),
        None,
        Some(json!(before.public())),
        Some(after_audit),
    )
    .await;
    Ok(Json(json!({ "user": after })))
}

// ---- keys

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    role: Role,
    scope: Option<String>,
    /// Days until the key expires; omitted: never.
    expires_in_days: Option<u32>,
}

/// `GET /api/v1/keys`: keys without their secrets.
pub async fn list_keys(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let keys: Vec<_> = st
        .store
        .list_keys()
        .await?
        .into_iter()
        .filter(|k| manages(&caller, k.scope.as_deref()))
        .collect();
    Ok(Json(json!({ "items": keys })))
}

/// `POST /api/v1/keys`: the key and its secret, shown this once.
pub async fn create_key(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(n): ApiJson<NewKey>,
) -> Result<Response, ApiError> {
    grantable(&caller, n.scope.as_deref())?;
    let expires = match n.expires_in_days {
        Some(0) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "expires_in_days must be at least 1 (omit it for a key that does not expire)",
            )
            .field("expires_in_days"));
        }
        Some(d) => Some(now_ms() + d as i64 * 86_400_000),
        None => None,
    };
    let k = st
        .auth
        .create_key(
            &n.name,
            n.role,
            n.scope.as_deref(),
            expires,
            &caller.0.label(),
        )
        .await
        .map_err(access_error)?;
    st.audit_change(
        &caller.0,
        "key.create",
        &format!("key:{}", k.row.id),
        None,
        None,
        Some(json!(k.row)),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": k.row, "secret": k.secret })),
    )
        .into_response())
}

/// `DELETE /api/v1/keys/{id}`: revokes the key at once, ending its open
/// streams.
pub async fn revoke_key(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key = st
        .store
        .key_by_id(&id)
        .await?
        .filter(|k| manages(&caller, k.scope.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("no key `{}`", clip(&id))))?;
    st.store.revoke_key(&id, now_ms()).await?;
    st.gate.key_revoked(&id);
    st.audit_change(
        &caller.0,
        "key.revoke",
        &format!("key:{id}"),
        None,
        Some(json!(key)),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

fn clip(s: &str) -> String {
    crate::catalogue::validate::clip(s).to_string()
}

// ---- embed links

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    camera_id: Option<String>,
    district: Option<String>,
    /// Lifetime, seconds (60 to 366 days); default one day.
    ttl_secs: Option<u64>,
    #[serde(default)]
    note: String,
}

const MAX_LINK_TTL: u64 = 366 * 86_400;

/// Whether the caller may see the link's camera or district.
fn link_visible(st: &AppState, caller: &Caller, l: &EmbedLinkRow) -> bool {
    match (&l.camera_id, &l.district_code) {
        (Some(c), _) => st
            .pulls
            .config(c)
            .is_some_and(|cfg| caller.sees(&cfg.district_code)),
        (None, Some(d)) => caller.sees(d),
        (None, None) => caller.0.scope.code().is_none(),
    }
}

fn link_json(l: &EmbedLinkRow) -> Value {
    let now = now_ms();
    let state = if l.revoked_at_ms.is_some() {
        "revoked"
    } else if l.expires_at_ms <= now {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": l.id,
        "camera_id": l.camera_id,
        "district": l.district_code,
        "note": l.note,
        "created_by": l.created_by,
        "created_at": rfc3339_ms(l.created_at_ms),
        "expires_at": rfc3339_ms(l.expires_at_ms),
        "revoked_at": l.revoked_at_ms.map(rfc3339_ms),
        "state": state,
    })
}

/// `POST /api/v1/embed-links {camera_id | district, ttl_secs, note}`: a
/// signed link for one camera or a district subtree, with ready URLs for
/// the embed page, LL-HLS and RTSP (`{camera_id}` stands for the camera
/// in a district link's URLs).
pub async fn create_link(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(n): ApiJson<NewLink>,
) -> Result<Response, ApiError> {
    let camera = n.camera_id.as_deref().filter(|c| !c.is_empty());
    let district = n.district.as_deref().filter(|d| !d.is_empty());
    match (camera, district) {
        (Some(c), None) => {
            st.pulls
                .config(c)
                .filter(|cfg| caller.sees(&cfg.district_code))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unknown_camera",
                        format!("camera {:?} does not exist", clip(c)),
                    )
                    .field("camera_id")
                })?;
        }
        (None, Some(d)) => {
            check_scope(Some(d)).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    "district must be a district code of 2, 4, 6, 9 or 12 digits",
                )
                .field("district")
            })?;
            caller.may_write(d, "district")?;
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "give exactly one of camera_id and district",
            )
            .field("camera_id"));
        }
    }
    let ttl = n.ttl_secs.unwrap_or(86_400);
    if !(60..=MAX_LINK_TTL).contains(&ttl) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("ttl_secs must be from 60 to {MAX_LINK_TTL} (366 days), got {ttl}"),
        )
        .field("ttl_secs"));
    }
    if n.note.chars().count() > 200 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "note must be at most 200 characters",
        )
        .field("note"));
    }
    let now = now_ms();
    let row = EmbedLinkRow {
        id: hex_id(),
        camera_id: camera.map(str::to_string),
        district_code: district.map(str::to_string),
        note: n.note.trim().to_string(),
        created_by: caller.0.label(),
        created_at_ms: now,
        expires_at_ms: now + ttl as i64 * 1000,
        revoked_at_ms: None,
    };
    st.store.create_link(&row).await?;
    let token = st.gate.sign(&LinkClaims {
        id: row.id.clone(),
        camera: row.camera_id.clone(),
        district: row.district_code.clone(),
        exp: row.expires_at_ms / 1000,
    });
    // From the configuration, never the request's Host header (which the
    // client chooses: a link to another site carrying a valid token).
    let (origin, host, rtsp_port) = (&st.public.origin, &st.public.host, st.public.rtsp_port);
    let cam = camera.unwrap_or("{camera_id}");
    let urls = json!({
        "embed": format!("{origin}/embed/{cam}?token={token}"),
        "hls": format!("{origin}/hls/{cam}/index.m3u8?token={token}"),
        "rtsp": rtsp_port.map(|p| format!("rtsp://{host}:{p}/cam/{cam}?token={token}")),
        "iframe": format!(
            "<iframe src=\"{origin}/embed/{cam}?token={token}\" width=\"640\" height=\"360\" allow=\"autoplay; fullscreen\" allowfullscreen></iframe>"
        ),
    });
    let link = link_json(&row);
    st.audit_change(
        &caller.0,
        "embed_link.create",
        &format!("link:{}", row.id),
        camera,
        None,
        Some(link.clone()),
    )
    .await;
    let mut body = link;
    body["token"] = json!(token);
    body["urls"] = urls;
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("/api/v1/embed-links/{}", row.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /api/v1/embed-links`: links of the caller's scope, newest first
/// (their tokens are not stored and not shown again).
pub async fn list_links(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = st
        .store
        .list_links()
        .await?
        .iter()
        .filter(|l| link_visible(&st, &caller, l))
        .map(link_json)
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// `DELETE /api/v1/embed-links/{id}`: revokes the link at once; viewers
/// watching through it are disconnected.
pub async fn revoke_link(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let link = st
        .store
        .link(&id)
        .await?
        .filter(|l| link_visible(&st, &caller, l))
        .ok_or_else(|| ApiError::not_found(format!("no embed link `{}`", clip(&id))))?;
    st.store.revoke_link(&id, now_ms()).await?;
    st.gate.link_revoked(&id);
    st.audit_change(
        &caller.0,
        "embed_link.revoke",
        &format!("link:{id}"),
        link.camera_id.as_deref(),
        Some(link_json(&link)),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- audit

/// `GET /api/v1/audit?camera=&principal=&since=&limit=&cursor=`: newest
/// first. Views carry their end and bytes once ended.
pub async fn list_audit(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = QueryPairs::parse(
        raw.as_deref(),
        &["camera", "principal", "since", "limit", "cursor"],
    )?;
    if caller.0.scope.code().is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the audit trail needs an admin without a district scope",
        ));
    }
    let lim = limit(&q)?;
    let since_ms = super::health::since_param(&q, st.config.health.offset())?;
    let before_id = super::health::id_cursor(&q)?;
    let mut rows = st
        .store
        .list_audit(&AuditFilter {
            camera: q.one("camera")?.map(str::to_string),
            principal: q.one("principal")?.map(str::to_string),
            since_ms,
            before_id,
            limit: lim + 1,
        })
        .await?;
    let next = (rows.len() as i64 > lim).then(|| {
        rows.truncate(lim as usize);
        rows.last().map(|r| encode_cursor(&r.id.to_string()))
    });
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let parse = |s: &Option<String>| {
                s.as_deref()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
            };
            json!({
                "id": r.id,
                "at": rfc3339_ms(r.at_ms),
                "kind": r.kind,
                "principal": r.principal,
                "action": r.action,
                "target": r.target,
                "camera_id": r.camera_id,
                "protocol": r.protocol,
                "client": r.client,
                "ended_at": r.ended_ms.map(rfc3339_ms),
                "duration_ms": r.ended_ms.map(|e| e - r.at_ms),
                "bytes": r.bytes,
                "before": parse(&r.before_json),
                "after": parse(&r.after_json),
            })
        })
        .collect();
    Ok(Json(
        json!({ "items": items, "next_cursor": next.flatten() }),
    ))
}
