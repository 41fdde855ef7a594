//! Hostile input on both backends: NUL characters and bytes that are not
//! UTF-8 anywhere a client can put them (query, path IDs, JSON fields,
//! cursors, CSV cells) are JSON 400s naming the field, never a database
//! error; `null` for a field that cannot be cleared is a 422 naming it and
//! changes nothing.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use common::TestApp;

both_backends!(
    nul_and_bad_utf8_are_named,
    nulls_for_required_fields_are_refused,
    spreadsheets_in_gbk_and_utf16_import
);

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

async fn camera(app: &TestApp) -> String {
    let (s, v) = app
        .post(
            "/api/v1/cameras",
            json!({"name": "东关", "district": "620602", "point_type": 1, "ownership": "public",
                   "rtsp_url": "rtsp://10.1.2.3/s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn nul_and_bad_utf8_are_named(app: TestApp) {
    let id = camera(&app).await;
    // Query parameters, path IDs and cursors.
    for (uri, want) in [
        ("/api/v1/cameras?q=%00", "q"),
        ("/api/v1/cameras?q=a%00b", "q"),
        ("/api/v1/cameras?district=62%00", "district"),
        ("/api/v1/cameras?q=%ff%fe", "q"),
        ("/api/v1/districts?q=%00", "q"),
        ("/api/v1/checkpoints?q=%00", "q"),
        ("/api/v1/health/events?since=%00", "since"),
        ("/api/v1/audit?principal=%00", "principal"),
        ("/api/v1/cameras/%00", "id"),
        ("/api/v1/cameras/6206%00", "id"),
        ("/api/v1/cameras/%ff", "id"),
        ("/api/v1/cameras/%ff/health", "id"),
        ("/api/v1/districts/%00", "code"),
        ("/api/v1/cameras?cursor=00", "cursor"),
        ("/api/v1/cameras?cursor=6100", "cursor"),
        ("/api/v1/cameras?cursor=%C3%A9%C3%A9", "cursor"),
        ("/api/v1/cameras?cursor=zz", "cursor"),
    ] {
        let (s, text) = app.raw(Method::GET, uri, None, Vec::new()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {text}");
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{uri}: not JSON: {text}"));
        common::assert_error_shape(&v);
        assert_eq!(field(&v), want, "{uri}: {v}");
    }
    // Streams: the same for their path IDs.
    for uri in ["/embed/%00", "/embed/%ff", "/hls/%00/index.m3u8"] {
        let (s, text) = app.raw(Method::GET, uri, None, Vec::new()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {text}");
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{uri}: not JSON: {text}"));
        assert_eq!(field(&v), "id", "{uri}: {v}");
    }
    // JSON fields: a login name, a key name, a link note, a camera name, a
    // tag, a checkpoint name.
    for (method, uri, body, want) in [
        (
            Method::POST,
            "/api/v1/auth/login",
            r#"{"username":"ad\u0000min","password":"x"}"#.to_string(),
            "username",
        ),
        (
            Method::POST,
            "/api/v1/keys",
            r#"{"name":"k\u0000","role":"viewer"}"#.to_string(),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/embed-links",
            format!(r#"{{"camera_id":"{id}","note":"n\u0000"}}"#),
            "note",
        ),
        (
            Method::PATCH,
            &format!("/api/v1/cameras/{id}"),
            r#"{"name":"\u0000"}"#.to_string(),
            "name",
        ),
        (
            Method::PATCH,
            &format!("/api/v1/cameras/{id}"),
            r#"{"tags":{"zone":"\u0000x"}}"#.to_string(),
            "tags.zone",
        ),
        (
            Method::POST,
            "/api/v1/checkpoints",
            r#"{"name":"卡\u0000口","district":"620602"}"#.to_string(),
            "name",
        ),
    ] {
        let (s, text) = app
            .raw(method, uri, Some("application/json"), body.into_bytes())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(field(&v), want, "{uri}: {v}");
    }
    // An escaped backslash before u0000 is text, not a NUL.
    let (s, v) = app
        .patch(
            &format!("/api/v1/cameras/{id}"),
            json!({"address": "a\\u0000b"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // CSV: a NUL in a cell names its line and column; nothing is imported.
    let csv = "name,district,point_type,ownership,rtsp_url\n好,620602,1,public,rtsp://10.0.0.1/a\n坏\0,620602,1,public,rtsp://10.0.0.2/a\n";
    let (s, v) = app.post_csv("/api/v1/cameras/import", csv).await;
    assert!(s.is_client_error(), "{s}: {v}");
    let text = v.to_string();
    assert!(text.contains("\"line\":3"), "{v}");
    assert_eq!(app.all_cameras("").await.len(), 1, "all or nothing");
    // Everything still answers.
    let (s, _) = app.get(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!(s, StatusCode::OK);
}

async fn nulls_for_required_fields_are_refused(app: TestApp) {
    let id = camera(&app).await;
    for f in [
        "name",
        "district",
        "point_type",
        "ownership",
        "rtsp_url",
        "transport",
        "pull_mode",
        "enabled",
        "tags",
    ] {
        let (s, v) = app
            .patch(&format!("/api/v1/cameras/{id}"), json!({ f: null }))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{f}: {v}");
        assert_eq!(field(&v), f, "{v}");
    }
    let (_, v) = app.get(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!(v["name"], "东关", "{v}");
    // Nullable fields still clear with null.
    let (s, v) = app
        .patch(
            &format!("/api/v1/cameras/{id}"),
            json!({"longitude": null, "username": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn spreadsheets_in_gbk_and_utf16_import(app: TestApp) {
    // As Excel saves "CSV" on a Chinese Windows machine: GBK, Chinese
    // headers.
    let text = "名称,行政区划,点位类型,权属,RTSP地址\n东关街口,620602,1,public,rtsp://10.0.0.1/a\n西关卡口,620602,2,public,rtsp://10.0.0.2/a\n";
    let (gbk, _, _) = encoding_rs::GB18030.encode(text);
    let (s, text_out) = app
        .raw(
            Method::POST,
            "/api/v1/cameras/import",
            Some("text/csv"),
            gbk.to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{text_out}");
    let v: Value = serde_json::from_str(&text_out).unwrap();
    assert_eq!(v["encoding"], "GB18030", "{v}");
    assert_eq!(v["created"], 2, "{v}");
    let names: Vec<String> = app
        .all_cameras("")
        .await
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"东关街口".to_string()) && names.contains(&"西关卡口".to_string()),
        "{names:?}"
    );
    // UTF-16 with a byte-order mark, and named explicitly.
    let mut utf16 = vec![0xff, 0xfe];
    for u in "名称,行政区划,点位类型,权属,RTSP地址\n南关,620602,1,public,rtsp://10.0.0.3/a\n"
        .encode_utf16()
    {
        utf16.extend(u.to_le_bytes());
    }
    let (s, t) = app
        .raw(
            Method::POST,
            "/api/v1/cameras/import?encoding=utf-16le",
            Some("text/csv"),
            utf16,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert!(t.contains("\"encoding\":\"UTF-16LE\""), "{t}");
    // An unknown encoding names the parameter.
    let (s, t) = app
        .raw(
            Method::POST,
            "/api/v1/cameras/import?encoding=latin9",
            Some("text/csv"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{t}");
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(field(&v), "encoding", "{v}");
    assert_eq!(app.all_cameras("").await.len(), 3);
}
