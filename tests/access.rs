//! Access-control persistence on SQLite and PostgreSQL: users, login
//! sessions, API keys, embed links, the audit trail, settings and the
//! stored camera credentials.

mod common;

use camgate::auth::Role;
use camgate::auth::service::{AuthOptions, AuthService, LoginError};
use camgate::store::StoreError;
use camgate::store::access::{ApiKeyRow, AuditFilter, EmbedLinkRow, NewAudit, UserUpdate};

use axum::http::StatusCode;
use common::TestApp;

both_backends!(
    users_and_sessions,
    keys_links_and_settings,
    audit_trail_pages_and_purges,
    clear_passwords_are_encrypted_at_start,
    logins_lock_out_after_repeated_failures,
    api_keys_resolve_until_revoked_or_expired,
    the_api_needs_a_key_or_a_session,
    a_scoped_key_sees_its_county_only,
);

async fn a_scoped_key_sees_its_county_only(app: TestApp) {
    let mut ids = std::collections::HashMap::new();
    for (name, district) in [
        ("凉州区东大街", "620602"),
        ("城关区南关", "620102"),
        ("凉州区乡镇", "620602"),
    ] {
        let cam = serde_json::json!({"name": name, "district": district, "point_type": 1,
            "ownership": "public", "rtsp_url": "rtsp://10.0.0.1/s"});
        let (s, v) = app.post("/api/v1/cameras", cam).await;
        assert_eq!(s, 201, "{v}");
        ids.insert(name, v["id"].as_str().unwrap().to_string());
    }
    let key = app
        .auth
        .create_key("county", Role::Operator, Some("620602"), None, "tests")
        .await
        .unwrap()
        .secret;
    let bearer = format!("Bearer {key}");
    let get = |uri: String| {
        let bearer = bearer.clone();
        let app = &app;
        async move {
            let (s, _, body) = send(app, "GET", &uri, &[("authorization", &bearer)], None).await;
            (s, body)
        }
    };
    let (s, body) = get("/api/v1/cameras".into()).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("凉州区")), "{names:?}");
    let (s, body) = get("/api/v1/cameras?district=6201".into()).await;
    assert!(s == 200 && body.contains("\"items\":[]"), "{body}");
    let other = &ids["城关区南关"];
    for uri in [
        format!("/api/v1/cameras/{other}"),
        format!("/api/v1/cameras/{other}/health"),
        format!("/api/v1/cameras/{other}/snapshot.jpg"),
        "/api/v1/districts/620102".to_string(),
        "/api/v1/districts?parent=62".to_string(),
        "/api/v1/health/summary?district=620102".to_string(),
    ] {
        let (s, body) = get(uri.clone()).await;
        assert_eq!(s, 404, "{uri}: {body}");
    }
    let (s, _) = get(format!("/api/v1/cameras/{}", ids["凉州区东大街"])).await;
    assert_eq!(s, 200);
    let (s, body) = get("/api/v1/districts".into()).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["items"][0]["code"], "620602",
        "the tree starts at the scope: {body}"
    );
    assert_eq!(v["items"][0]["camera_count"], 2, "{body}");
    let (s, body) = get("/api/v1/health/summary".into()).await;
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["district"]["code"], "620602", "{body}");
    let (s, body) = get("/api/v1/cameras/export".into()).await;
    assert_eq!(s, 200);
    assert!(
        body.contains("凉州区东大街") && !body.contains("城关区南关"),
        "{body}"
    );
    // A state change in each county: the scoped key's events show its own.
    let changes: Vec<_> = [("凉州区东大街", "620602"), ("城关区南关", "620102")]
        .into_iter()
        .map(|(name, district)| camgate::store::NewTransition {
            camera_id: ids[name].clone(),
            district_code: district.into(),
            at_ms: camgate::catalogue::now_ms(),
            from_state: "unknown".into(),
            to_state: "online".into(),
            reason: None,
        })
        .collect();
    app.store.insert_transitions(&changes).await.unwrap();
    let (s, body) = get("/api/v1/health/events".into()).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(ids["凉州区东大街"].as_str()) && !body.contains(other.as_str()),
        "{body}"
    );
    let (s, body) = get("/api/v1/health/events?district=620102".into()).await;
    assert!(
        s == 404 || (s == 200 && !body.contains(other.as_str())),
        "{s} {body}"
    );
    // Writes outside the scope are refused; an import needs no scope.
    let cam = serde_json::json!({"name": "越界", "district": "620102", "point_type": 1,
        "ownership": "public", "rtsp_url": "rtsp://10.0.0.1/s"});
    let (s, _, body) = send(
        &app,
        "POST",
        "/api/v1/cameras",
        &[("authorization", &bearer)],
        Some(cam),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("out_of_scope"), "{body}");
    let (s, _, body) = send(
        &app,
        "DELETE",
        &format!("/api/v1/cameras/{other}"),
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    // A scoped import checks every row: one in another county is reported
    // with its line and column, and nothing is imported.
    let import = |csv: &'static str| {
        let bearer = bearer.clone();
        let app = &app;
        async move {
            let headers = [
                ("authorization", bearer.as_str()),
                ("content-type", "text/csv"),
            ];
            let (s, _, body) =
                send_raw(app, "POST", "/api/v1/cameras/import", &headers, csv.into()).await;
            (s, serde_json::from_str::<serde_json::Value>(&body).unwrap())
        }
    };
    let (s, v) = import(
        "name,district,point_type,ownership,rtsp_url\n\
         凉州区新点,620602,1,public,rtsp://10.0.0.2/s\n\
         城关区新点,620102,1,public,rtsp://10.0.0.3/s\n",
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let errors = v["error"]["report"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(
        (
            errors[0]["line"].as_u64(),
            errors[0]["column"].as_str(),
            errors[0]["code"].as_str()
        ),
        (Some(3), Some("district"), Some("out_of_scope")),
        "{v}"
    );
    // Nor may a row overwrite a camera of another county by its ID.
    let other_id = ids["城关区南关"].clone();
    let csv: &'static str = Box::leak(
        format!("id,name,district,point_type,ownership,rtsp_url\n{other_id},改名,620602,1,public,rtsp://10.0.0.4/s\n")
            .into_boxed_str(),
    );
    let (s, v) = import(csv).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["report"]["errors"][0]["column"], "id", "{v}");
    let (s, v) = import(
        "name,district,point_type,ownership,rtsp_url\n凉州区新点,620602,1,public,rtsp://10.0.0.2/s\n",
    )
    .await;
    assert_eq!((s, v["created"].as_u64()), (200, Some(1)), "{v}");
    // The admin still sees everything.
    let (s, v) = app.get("/api/v1/cameras").await;
    assert_eq!(
        (s, v["items"].as_array().unwrap().len()),
        (StatusCode::OK, 4)
    );
}

/// Sends a request through the router with the given headers; status,
/// headers and body.
async fn send(
    app: &TestApp,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (u16, axum::http::HeaderMap, String) {
    match body {
        Some(b) => {
            let mut h = headers.to_vec();
            h.push(("content-type", "application/json"));
            send_raw(app, method, uri, &h, b.to_string().into_bytes()).await
        }
        None => send_raw(app, method, uri, headers, Vec::new()).await,
    }
}

/// [`send`] with a body of any type (its content type among `headers`).
async fn send_raw(
    app: &TestApp,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, axum::http::HeaderMap, String) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .router
        .clone()
        .oneshot(req.body(axum::body::Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).to_string())
}

async fn the_api_needs_a_key_or_a_session(app: TestApp) {
    // No credentials, or bad ones: 401, with the error shape.
    let (s, h, body) = send(&app, "GET", "/api/v1/cameras", &[], None).await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(h["www-authenticate"], "Bearer");
    assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
    for bad in ["Bearer cgk_nope", "Bearer ", "Basic YWRtaW46eA=="] {
        let (s, _, _) = send(
            &app,
            "GET",
            "/api/v1/cameras",
            &[("authorization", bad)],
            None,
        )
        .await;
        assert_eq!(s, 401, "{bad}");
    }
    let (s, _, _) = send(&app, "GET", "/api/v1/openapi.json", &[], None).await;
    assert_eq!(s, 401, "the API description too");
    let (s, _, _) = send(&app, "GET", "/healthz", &[], None).await;
    assert_eq!(s, 200, "health needs none");

    // A viewer key reads but does not write; user admin is admin only.
    let viewer = app
        .auth
        .create_key("v", Role::Viewer, None, None, "tests")
        .await
        .unwrap()
        .secret;
    let bearer = format!("Bearer {viewer}");
    let (s, _, _) = send(
        &app,
        "GET",
        "/api/v1/cameras",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(s, 200);
    let cam = serde_json::json!({"name": "x", "district": "620602", "point_type": 1,
        "ownership": "public", "rtsp_url": "rtsp://10.0.0.1/s"});
    let (s, _, body) = send(
        &app,
        "POST",
        "/api/v1/cameras",
        &[("authorization", &bearer)],
        Some(cam),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("operator"), "{body}");
    let (s, _, body) = send(
        &app,
        "GET",
        "/api/v1/auth/me",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("\"role\":\"viewer\""), "{body}");

    // Login: a session cookie, HttpOnly and SameSite=Strict, that works.
    let pw = app
        .auth
        .bootstrap_admin(Some("an admin passphrase"))
        .await
        .unwrap();
    assert!(pw.is_some());
    let login = serde_json::json!({"username": "admin", "password": "an admin passphrase"});
    let (s, h, body) = send(&app, "POST", "/api/v1/auth/login", &[], Some(login)).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        !body.contains("passphrase") && !body.contains("argon2"),
        "{body}"
    );
    let set = h["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age="),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let (s, _, body) = send(&app, "GET", "/api/v1/auth/me", &[("cookie", &cookie)], None).await;
    assert_eq!(s, 200);
    assert!(body.contains("user:admin"), "{body}");
    let (s, h, _) = send(
        &app,
        "POST",
        "/api/v1/auth/logout",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (s, _, _) = send(&app, "GET", "/api/v1/auth/me", &[("cookie", &cookie)], None).await;
    assert_eq!(s, 401, "the session ended");

    // Wrong passwords: 401 until the lock, then 429 with Retry-After,
    // also for the right password.
    let wrong = serde_json::json!({"username": "admin", "password": "wrong"});
    for i in 1..=20 {
        let (s, _, _) = send(&app, "POST", "/api/v1/auth/login", &[], Some(wrong.clone())).await;
        assert_eq!(s, if i < 20 { 401 } else { 429 }, "attempt {i}");
    }
    let right = serde_json::json!({"username": "admin", "password": "an admin passphrase"});
    let (s, h, body) = send(&app, "POST", "/api/v1/auth/login", &[], Some(right)).await;
    assert_eq!(s, 429, "{body}");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
}

fn service(app: &TestApp) -> AuthService {
    AuthService::new(
        app.store.clone(),
        AuthOptions {
            lockout: std::time::Duration::from_secs(600),
            ..Default::default()
        },
    )
}

/// 20 wrong passwords in a row lock the account; the right password is
/// refused until the lock runs out; a success resets the count.
async fn logins_lock_out_after_repeated_failures(app: TestApp) {
    let auth = service(&app);
    let pw = auth
        .bootstrap_admin(None)
        .await
        .unwrap()
        .expect("a first admin");
    assert!(
        auth.bootstrap_admin(None).await.unwrap().is_none(),
        "only once"
    );
    let (session, user) = auth.login("admin", &pw).await.unwrap();
    assert_eq!(user.role, "admin");
    let p = auth.session_principal(&session).await.unwrap().unwrap();
    assert_eq!((p.label(), p.role), ("user:admin".to_string(), Role::Admin));
    auth.logout(&session).await.unwrap();
    assert!(auth.session_principal(&session).await.unwrap().is_none());
    assert!(matches!(
        auth.login("nobody", &pw).await,
        Err(LoginError::BadCredentials)
    ));

    for i in 1..=20 {
        let r = auth.login("admin", "wrong password!").await;
        match (i, r) {
            (20, Err(LoginError::Locked { .. })) => {}
            (i, Err(LoginError::BadCredentials)) if i < 20 => {}
            (i, other) => panic!("attempt {i}: {:?}", other.map(|_| ())),
        }
    }
    assert!(
        matches!(
            auth.login("admin", &pw).await,
            Err(LoginError::Locked { .. })
        ),
        "the 21st, right, password is refused while locked"
    );
    assert!(
        auth.password_principal("admin", &pw)
            .await
            .unwrap()
            .is_none()
    );
    // The lock runs out: the right password works again and resets the count.
    let u = auth.user("admin").await.unwrap();
    app.store.set_login_state(u.id, 20, Some(1)).await.unwrap();
    auth.login("admin", &pw).await.unwrap();
    let u = auth.user("admin").await.unwrap();
    assert_eq!((u.failed_logins, u.locked_until_ms), (0, None));

    // Users: checked names and passwords, disable ends logins.
    assert!(
        auth.create_user("bad name", "long enough pw", Role::Viewer, None)
            .await
            .is_err()
    );
    assert!(
        auth.create_user("v", "short", Role::Viewer, None)
            .await
            .is_err()
    );
    assert!(
        auth.create_user("v", "long enough pw", Role::Viewer, Some("6206x"))
            .await
            .is_err()
    );
    auth.create_user("v", "long enough pw", Role::Viewer, Some("620602"))
        .await
        .unwrap();
    let (s, _) = auth.login("v", "long enough pw").await.unwrap();
    let p = auth.session_principal(&s).await.unwrap().unwrap();
    assert_eq!(p.scope.code(), Some("620602"));
    auth.set_disabled("v", true).await.unwrap();
    assert!(
        auth.session_principal(&s).await.unwrap().is_none(),
        "sessions end"
    );
    assert!(auth.login("v", "long enough pw").await.is_err());
    auth.set_disabled("v", false).await.unwrap();
    auth.set_password("v", "another long pw").await.unwrap();
    assert!(auth.login("v", "long enough pw").await.is_err());
    auth.login("v", "another long pw").await.unwrap();
}

async fn api_keys_resolve_until_revoked_or_expired(app: TestApp) {
    let auth = service(&app);
    let k = auth
        .create_key("县平台", Role::Viewer, Some("620602"), None, "cli")
        .await
        .unwrap();
    assert!(k.secret.starts_with("cgk_"));
    let p = auth.key_principal(&k.secret).await.unwrap().unwrap();
    assert_eq!(p.label(), format!("key:{}", k.row.id));
    assert_eq!((p.role, p.scope.code()), (Role::Viewer, Some("620602")));
    assert!(auth.key_principal("cgk_unknown").await.unwrap().is_none());
    assert!(
        auth.key_principal(&k.secret[..k.secret.len() - 1])
            .await
            .unwrap()
            .is_none()
    );
    let expired = auth
        .create_key("old", Role::Admin, None, Some(1), "cli")
        .await
        .unwrap();
    assert!(auth.key_principal(&expired.secret).await.unwrap().is_none());
    assert!(app.store.revoke_key(&k.row.id, 1).await.unwrap());
    assert!(
        auth.key_principal(&k.secret).await.unwrap().is_none(),
        "revoked"
    );
    let stored = app.store.list_keys().await.unwrap();
    assert!(
        stored.iter().all(|r| r.secret_hash != k.secret),
        "only the hash is stored"
    );
}

/// A password an earlier version stored in clear is encrypted when the
/// gateway opens the database, and still reads back the same.
async fn clear_passwords_are_encrypted_at_start(app: TestApp) {
    use base64::Engine as _;
    let (status, body) = app
        .post(
            "/api/v1/cameras",
            serde_json::json!({
                "name": "旧版本摄像机",
                "district": "620602",
                "point_type": 1,
                "ownership": "public",
                "rtsp_url": "rtsp://10.1.2.3:554/s",
                "username": "admin",
                "password": "S3cr3t-new",
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let stored = app.store.stored_credentials().await.unwrap();
    assert!(stored[0].1.starts_with("enc:v1:") && !stored[0].1.contains("S3cr3t"));
    // As an earlier version left it: in clear.
    app.store
        .replace_credentials(&[(id.clone(), "S3cr3t-legacy".into())])
        .await
        .unwrap();
    let mut config = camgate::config::Config::default();
    config.database.url = app.db.url.clone();
    config.data_dir = std::env::temp_dir();
    config.catalogue.load_builtin_districts = false;
    config.security.credential_key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let reopened = camgate::app::open_store(&config).await.unwrap();
    let stored = reopened.stored_credentials().await.unwrap();
    assert!(stored[0].1.starts_with("enc:v1:"), "encrypted at start");
    let cam = reopened.get_camera(&id).await.unwrap().unwrap();
    assert_eq!(cam.password.unwrap().expose(), "S3cr3t-legacy");
    // Another key: refused, naming what to set.
    config.security.credential_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let err = camgate::app::open_store(&config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("security.credential_key") && !err.contains("S3cr3t"),
        "{err}"
    );
    reopened.close().await;
}

async fn users_and_sessions(app: TestApp) {
    let s = &app.store;
    assert_eq!(s.user_count().await.unwrap(), 0);
    let id = s
        .create_user("admin", "$argon2id$x", "admin", None, 1_000)
        .await
        .unwrap();
    let dup = s.create_user("admin", "h", "viewer", None, 1_001).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let v = s
        .create_user("liangzhou", "h2", "viewer", Some("620602"), 1_002)
        .await
        .unwrap();
    assert_eq!(s.user_count().await.unwrap(), 2);
    let u = s.user_by_name("liangzhou").await.unwrap().unwrap();
    assert_eq!(
        (u.id, u.role.as_str(), u.scope.as_deref()),
        (v, "viewer", Some("620602"))
    );
    assert!(!u.disabled && u.failed_logins == 0 && u.locked_until_ms.is_none());
    assert!(s.user_by_name("nobody").await.unwrap().is_none());

    // Sessions: valid until they expire; a new password ends them.
    s.create_session("h-a", id, 2_000, 5_000).await.unwrap();
    s.create_session("h-b", v, 2_000, 5_000).await.unwrap();
    assert_eq!(s.session_user("h-a", 4_999).await.unwrap().unwrap().id, id);
    assert!(
        s.session_user("h-a", 5_000).await.unwrap().is_none(),
        "expired"
    );
    assert!(s.session_user("nope", 2_000).await.unwrap().is_none());
    s.update_user(
        id,
        &UserUpdate {
            password_hash: Some("new".into()),
            ..Default::default()
        },
        3_000,
    )
    .await
    .unwrap();
    assert!(
        s.session_user("h-a", 3_000).await.unwrap().is_none(),
        "ended by the new password"
    );
    assert_eq!(s.session_user("h-b", 3_000).await.unwrap().unwrap().id, v);
    s.delete_session("h-b").await.unwrap();
    assert!(s.session_user("h-b", 3_000).await.unwrap().is_none());

    // Lockout state, and a new password clears it.
    s.set_login_state(v, 20, Some(9_000)).await.unwrap();
    let u = s.user_by_id(v).await.unwrap().unwrap();
    assert_eq!((u.failed_logins, u.locked_until_ms), (20, Some(9_000)));
    s.update_user(
        v,
        &UserUpdate {
            scope: Some(None),
            role: Some("operator".into()),
            disabled: Some(true),
            ..Default::default()
        },
        4_000,
    )
    .await
    .unwrap();
    let u = s.user_by_id(v).await.unwrap().unwrap();
    assert_eq!(
        (u.role.as_str(), u.scope.as_deref(), u.disabled),
        ("operator", None, true)
    );
    assert_eq!(u.failed_logins, 20, "only a new password clears the lock");
    s.update_user(
        v,
        &UserUpdate {
            password_hash: Some("p".into()),
            ..Default::default()
        },
        5_000,
    )
    .await
    .unwrap();
    let u = s.user_by_id(v).await.unwrap().unwrap();
    assert_eq!((u.failed_logins, u.locked_until_ms), (0, None));
    assert_eq!(u.updated_at_ms, 5_000);
    let missing = s.update_user(999, &UserUpdate::default(), 1).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let names: Vec<String> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["admin", "liangzhou"]);
    let public = serde_json::to_string(&u.public()).unwrap();
    assert!(
        !public.contains("password") && !public.contains("\"p\""),
        "{public}"
    );
}

async fn keys_links_and_settings(app: TestApp) {
    let s = &app.store;
    let key = ApiKeyRow {
        id: "k1".into(),
        name: "县综治中心平台".into(),
        secret_hash: "hash1".into(),
        role: "viewer".into(),
        scope: Some("620602".into()),
        created_by: "user:admin".into(),
        created_at_ms: 1_000,
        expires_at_ms: None,
        revoked_at_ms: None,
        last_used_ms: None,
        digest_ha1: None,
    };
    s.create_key(&key).await.unwrap();
    assert_eq!(s.key_by_id("k1").await.unwrap().unwrap(), key);
    assert_eq!(s.key_by_hash("hash1").await.unwrap().unwrap(), key);
    assert!(s.key_by_hash("hash2").await.unwrap().is_none());
    s.touch_key("k1", 1_500).await.unwrap();
    assert!(s.revoke_key("k1", 2_000).await.unwrap());
    assert!(!s.revoke_key("k1", 2_001).await.unwrap(), "already revoked");
    assert!(!s.revoke_key("k9", 2_001).await.unwrap());
    let k = &s.list_keys().await.unwrap()[0];
    assert_eq!(
        (k.revoked_at_ms, k.last_used_ms),
        (Some(2_000), Some(1_500))
    );
    assert!(
        !serde_json::to_string(k).unwrap().contains("hash1"),
        "no hash in JSON"
    );

    let link = EmbedLinkRow {
        id: "l1".into(),
        camera_id: Some("62060200001320000001".into()),
        district_code: None,
        note: "街道大屏".into(),
        created_by: "user:admin".into(),
        created_at_ms: 1_000,
        expires_at_ms: 90_000,
        revoked_at_ms: None,
    };
    s.create_link(&link).await.unwrap();
    assert_eq!(s.link("l1").await.unwrap().unwrap(), link);
    assert!(s.revoke_link("l1", 3_000).await.unwrap());
    assert!(!s.revoke_link("l1", 3_001).await.unwrap());
    assert_eq!(s.list_links().await.unwrap()[0].revoked_at_ms, Some(3_000));

    assert_eq!(s.setting("test_setting").await.unwrap(), None);
    assert_eq!(s.setting_or_insert("test_setting", "a").await.unwrap(), "a");
    assert_eq!(
        s.setting_or_insert("test_setting", "b").await.unwrap(),
        "a",
        "first wins"
    );
    assert_eq!(
        s.setting("test_setting").await.unwrap().as_deref(),
        Some("a")
    );

    // No camera passwords; the only encrypted values are the RTSP Digest
    // hashes of the keys the service created (the test's admin key) and
    // the link-signing secret, never in clear.
    let stored = s.stored_credentials().await.unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored.iter().all(
            |(id, v)| (id.starts_with("key:") || id == "setting:link_secret")
                && v.starts_with("enc:v1:")
        ),
        "{stored:?}"
    );
    assert!(
        stored.iter().any(|(id, _)| id == "setting:link_secret"),
        "{stored:?}"
    );
}

async fn audit_trail_pages_and_purges(app: TestApp) {
    let s = &app.store;
    let mut ids = Vec::new();
    for i in 0..5i64 {
        ids.push(
            s.insert_audit(&NewAudit {
                at_ms: 1_000 * (i + 1),
                kind: "view",
                principal: if i % 2 == 0 { "key:k1" } else { "user:admin" }.into(),
                action: "view".into(),
                camera_id: Some(format!("c{}", i % 2)),
                protocol: Some("rtsp".into()),
                client: Some("127.0.0.1".into()),
                ..Default::default()
            })
            .await
            .unwrap(),
        );
    }
    s.finish_view(ids[0], 1_500, 12_345).await.unwrap();
    let all = s
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let first = all.iter().find(|r| r.id == ids[0]).unwrap();
    assert_eq!((first.ended_ms, first.bytes), (Some(1_500), Some(12_345)));
    // Paging by cursor, and filters.
    let page1 = s
        .list_audit(&AuditFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let page2 = s
        .list_audit(&AuditFilter {
            limit: 2,
            before_id: Some(page1[1].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2[0].id, all[2].id);
    let by_key = s
        .list_audit(&AuditFilter {
            principal: Some("key:k1".into()),
            camera: Some("c0".into()),
            since_ms: Some(2_000),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_key.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
        [5_000, 3_000]
    );
    assert_eq!(s.purge_audit(3_000).await.unwrap(), 2);
    let left = s
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 3);
}
