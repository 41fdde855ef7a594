//! What the web UI needs from the gateway, through the router on SQLite and
//! PostgreSQL: its files, per-user wall layouts, a camera's timeline, the
//! state filter of the camera list, the import template and the scoped
//! stream of state changes.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use camgate::auth::Role;
use camgate::health::{Reason, State, Transition};
use camgate::store::NewTransition;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::TestApp;

both_backends!(
    ui_files_are_served_with_their_policy,
    walls_are_kept_per_principal,
    timelines_are_segments_of_stored_transitions,
    the_camera_list_filters_by_state,
    the_state_filter_reads_few_cameras_by_id,
    the_import_template_is_the_header_alone,
    the_state_stream_keeps_to_the_scope,
);

async fn camera(app: &TestApp, name: &str, district: &str) -> String {
    let (s, v) = app
        .post(
            "/api/v1/cameras",
            json!({"name": name, "district": district, "point_type": 1,
                   "ownership": "public", "rtsp_url": "rtsp://10.1.2.3/s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn ui_files_are_served_with_their_policy(app: TestApp) {
    // The shell and its files need no login: they hold no data.
    let resp = app
        .router
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("/ui/app.js"));
    let (s, t) = app
        .raw_as(None, Method::GET, "/ui/messages/zh-CN.json", None, vec![])
        .await;
    assert_eq!(s, StatusCode::OK);
    let m: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(m["state.offline"], "离线");
    let (s, t) = app
        .raw_as(None, Method::GET, "/ui/../src/main.rs", None, vec![])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{t}");
    // What the UI calls still needs credentials.
    let (s, _) = app
        .raw_as(None, Method::GET, "/api/v1/me/walls", None, vec![])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn walls_are_kept_per_principal(app: TestApp) {
    let id = camera(&app, "东大街路口", "620602").await;
    let viewer = app
        .auth
        .create_key("wall viewer", Role::Viewer, Some("620602"), None, "tests")
        .await
        .unwrap()
        .secret;
    let as_viewer = format!("Bearer {viewer}");
    let put = |auth: String, name: &str, body: Value| {
        let app = &app;
        let uri = format!("/api/v1/me/walls/{name}");
        async move {
            let (s, t) = app
                .raw_as(
                    Some(&auth),
                    Method::PUT,
                    &uri,
                    Some("application/json"),
                    body.to_string().into_bytes(),
                )
                .await;
            (s, serde_json::from_str::<Value>(&t).unwrap_or(Value::Null))
        }
    };
    // A viewer may keep its own layouts (writes elsewhere need operator).
    let (s, v) = put(
        as_viewer.clone(),
        "%E5%A4%A7%E5%B1%8F",
        json!({"tiles": 4, "cameras": [id, null, null, null]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "大屏");
    let (s, t) = app
        .raw_as(
            Some(&as_viewer),
            Method::GET,
            "/api/v1/me/walls",
            None,
            vec![],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let list: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(list["items"][0]["cameras"][0], id.as_str());
    assert_eq!(list["items"][0]["tiles"], 4);
    // Another principal does not see it.
    let (s, v) = app.get("/api/v1/me/walls").await;
    assert_eq!(
        (s, v["items"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    // Replacing keeps one layout of that name.
    let (s, _) = put(
        as_viewer.clone(),
        "%E5%A4%A7%E5%B1%8F",
        json!({"tiles": 1, "cameras": [null]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Bad layouts name their field.
    for (body, field) in [
        (json!({"tiles": 3, "cameras": [null, null, null]}), "tiles"),
        (json!({"tiles": 4, "cameras": [null]}), "cameras"),
        (json!({"tiles": 1, "cameras": [""]}), "cameras"),
    ] {
        let (s, v) = put(as_viewer.clone(), "x", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (s, v) = put(as_viewer.clone(), "x", json!({"tiles": 1})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "missing cameras: {v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("cameras"),
        "{v}"
    );
    let long = "w".repeat(65);
    let (s, v) = put(
        as_viewer.clone(),
        &long,
        json!({"tiles": 1, "cameras": [null]}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let del = |auth: String| {
        let app = &app;
        async move {
            app.raw_as(
                Some(&auth),
                Method::DELETE,
                "/api/v1/me/walls/%E5%A4%A7%E5%B1%8F",
                None,
                vec![],
            )
            .await
            .0
        }
    };
    assert_eq!(del(as_viewer.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(del(as_viewer).await, StatusCode::NOT_FOUND);
}

async fn timelines_are_segments_of_stored_transitions(app: TestApp) {
    let id = camera(&app, "钟楼", "620602").await;
    let now = camgate::catalogue::now_ms();
    let h = 3_600_000;
    let row = |at: i64, from: &str, to: &str, reason: Option<&str>| NewTransition {
        camera_id: id.clone(),
        district_code: "620602".into(),
        at_ms: at,
        from_state: from.into(),
        to_state: to.into(),
        reason: reason.map(str::to_string),
    };
    app.store
        .insert_transitions(&[
            // Before the 24-hour window: online from 30 hours ago.
            row(now - 30 * h, "unknown", "online", None),
            row(now - 6 * h, "online", "offline", Some("refused")),
            row(now - 3 * h, "offline", "online", None),
        ])
        .await
        .unwrap();
    let (s, v) = app
        .get(&format!("/api/v1/cameras/{id}/timeline?hours=24"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let segs = v["segments"].as_array().unwrap();
    let states: Vec<&str> = segs.iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["online", "offline", "online"], "{v}");
    assert_eq!(segs[1]["reason"], "refused");
    // Offline 3 of 24 hours.
    let a = v["availability"].as_f64().unwrap();
    assert!((a - 21.0 / 24.0).abs() < 0.001, "{a}");
    assert_eq!(v["transitions"], 2);
    // Over 2 hours: online throughout.
    let (_, v) = app
        .get(&format!("/api/v1/cameras/{id}/timeline?hours=2"))
        .await;
    assert_eq!(v["segments"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["availability"], 1.0);
    for bad in ["0", "745", "x"] {
        let (s, v) = app
            .get(&format!("/api/v1/cameras/{id}/timeline?hours={bad}"))
            .await;
        assert_eq!(
            (s, v["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("hours"))
        );
    }
    let (s, _) = app
        .get("/api/v1/cameras/62060200001320099999/timeline")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn the_camera_list_filters_by_state(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(camera(&app, &format!("cam {i}"), "620602").await);
    }
    // Nothing is pulled here: every camera is `unknown`.
    let (s, v) = app.get("/api/v1/cameras?state=online").await;
    assert_eq!(
        (s, v["items"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    // Paged in ID order across the scan.
    let (_, p1) = app
        .get("/api/v1/cameras?state=unknown,offline&limit=3")
        .await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = app
        .get(&format!(
            "/api/v1/cameras?state=unknown&limit=3&cursor={cursor}"
        ))
        .await;
    let mut seen: Vec<String> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(p2["next_cursor"].is_null());
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    let (s, v) = app.get("/api/v1/cameras?state=sleeping").await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("state"))
    );
    // The export takes the same filter (the catalogue's export link
    // carries the current selection, state included).
    let lines = |t: &str| t.lines().filter(|l| !l.trim().is_empty()).count();
    let (s, t) = app
        .raw(
            Method::GET,
            "/api/v1/cameras/export?state=online",
            None,
            vec![],
        )
        .await;
    assert_eq!((s, lines(&t)), (StatusCode::OK, 1), "{t}");
    let (s, t) = app
        .raw(
            Method::GET,
            "/api/v1/cameras/export?state=unknown",
            None,
            vec![],
        )
        .await;
    assert_eq!((s, lines(&t)), (StatusCode::OK, 1 + ids.len()), "{t}");
    let (s, t) = app
        .raw(
            Method::GET,
            "/api/v1/cameras/export?state=sleeping",
            None,
            vec![],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{t}");
    assert!(t.contains("\"field\":\"state\""), "{t}");
}

/// States other than `unknown` are looked up in memory and the store is
/// asked for those IDs only when they are a minority; either way the pages
/// are the same: in ID order, the other filters applied, cursor-paged.
async fn the_state_filter_reads_few_cameras_by_id(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..12 {
        let district = if i % 4 == 3 { "620102" } else { "620602" };
        ids.push(camera(&app, &format!("cam {i:02}"), district).await);
    }
    ids.sort();
    let set = |id: &str, s: State| {
        let reason = (s == State::Offline).then_some(Reason::Unreachable);
        app.pulls.runtime(id).unwrap().set_state(s, reason);
    };
    let list = |uri: String| {
        let app = &app;
        async move {
            let (s, v) = app.get(&uri).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {v}");
            let got: Vec<String> = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect();
            (got, v["next_cursor"].as_str().map(str::to_string))
        }
    };
    // 3 offline (one of them in 620102), 2 online: few, looked up by ID.
    let offline = [ids[1].clone(), ids[4].clone(), ids[9].clone()];
    for id in &offline {
        set(id, State::Offline);
    }
    set(&ids[2], State::Online);
    set(&ids[7], State::Online);
    let (got, next) = list("/api/v1/cameras?state=offline".into()).await;
    assert_eq!((got, next), (offline.to_vec(), None));
    let (p1, next) = list("/api/v1/cameras?state=offline&limit=2".into()).await;
    assert_eq!(p1, offline[..2].to_vec());
    let (p2, next) = list(format!(
        "/api/v1/cameras?state=offline&limit=2&cursor={}",
        next.expect("a second page")
    ))
    .await;
    assert_eq!((p2, next), (offline[2..].to_vec(), None));
    let (got, _) = list("/api/v1/cameras?state=offline,online".into()).await;
    let mut want = vec![
        ids[1].clone(),
        ids[2].clone(),
        ids[4].clone(),
        ids[7].clone(),
        ids[9].clone(),
    ];
    assert_eq!(got, want);
    // With the other filters: the district's offline cameras only.
    let in_620102: Vec<String> = {
        let (v, _) = list("/api/v1/cameras?district=620102&limit=100".into()).await;
        v
    };
    let (got, _) = list("/api/v1/cameras?state=offline&district=620102".into()).await;
    let expect: Vec<String> = offline
        .iter()
        .filter(|id| in_620102.contains(id))
        .cloned()
        .collect();
    assert_eq!(got, expect);
    // And with a search (its own join).
    let (got, _) = list("/api/v1/cameras?state=offline&q=CAM".into()).await;
    assert_eq!(got, offline.to_vec());
    // A majority online (7 of 12): read by scanning, the same answer.
    want = ids[..10]
        .iter()
        .filter(|id| !offline.contains(id))
        .cloned()
        .collect();
    for id in &want {
        set(id, State::Online);
    }
    assert_eq!(want.len(), 7);
    let (got, _) = list("/api/v1/cameras?state=online".into()).await;
    assert_eq!(got, want);
    let (got, _) = list("/api/v1/cameras?state=online&q=cam".into()).await;
    assert_eq!(got, want);
    let (p1, next) = list("/api/v1/cameras?state=online&limit=3".into()).await;
    assert_eq!(p1, want[..3].to_vec());
    let (p2, _) = list(format!(
        "/api/v1/cameras?state=online&limit=3&cursor={}",
        next.unwrap()
    ))
    .await;
    assert_eq!(p2, want[3..6].to_vec());
}

async fn the_import_template_is_the_header_alone(app: TestApp) {
    camera(&app, "有一台", "620602").await;
    let (s, t) = app
        .raw(
            Method::GET,
            "/api/v1/cameras/export?lang=zh&template=true",
            None,
            vec![],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 1, "{t}");
    assert!(
        lines[0].contains("国标编码") && lines[0].contains("行政区划"),
        "{t}"
    );
}

/// Reads SSE events from `body` until `n` arrived or 5 s passed.
async fn events(body: &mut Body, n: usize) -> Vec<(String, Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while out.len() < n {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("")
                .to_string();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                out.push((event, serde_json::from_str(data).unwrap()));
            }
        }
    }
    out
}

async fn the_state_stream_keeps_to_the_scope(app: TestApp) {
    let mine = camera(&app, "凉州", "620602").await;
    let other = camera(&app, "城关", "620102").await;
    let county = app
        .auth
        .create_key("county", Role::Viewer, Some("620602"), None, "tests")
        .await
        .unwrap()
        .secret;
    let open = |auth: String, uri: &'static str| {
        let router = app.router.clone();
        async move {
            let resp = router
                .oneshot(
                    Request::get(uri)
                        .header("authorization", auth)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["content-type"], "text/event-stream");
            resp.into_body()
        }
    };
    let mut scoped = open(format!("Bearer {county}"), "/api/v1/health/stream").await;
    let mut all = open(format!("Bearer {}", app.admin_key), "/api/v1/health/stream").await;
    let mut filtered = open(
        format!("Bearer {}", app.admin_key),
        "/api/v1/health/stream?district=620102",
    )
    .await;
    for id in [&other, &mine] {
        app.pulls.publish(Transition {
            camera_id: id.clone(),
            at_ms: camgate::catalogue::now_ms(),
            from: State::Online,
            to: State::Offline,
            reason: Some(Reason::Refused),
        });
    }
    let got = events(&mut scoped, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "transition");
    assert_eq!(
        got[0].1["camera_id"],
        mine.as_str(),
        "only the county's camera"
    );
    assert_eq!(got[0].1["to"], "offline");
    assert_eq!(got[0].1["reason"], "refused");
    let got = events(&mut all, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let got = events(&mut filtered, 1).await;
    assert_eq!(got[0].1["camera_id"], other.as_str(), "{got:?}");
    let (s, v) = app.get("/api/v1/health/stream?district=999999").await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("district"))
    );
}
