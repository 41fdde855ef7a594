//! REST API tests: every route, every validation rule, import/export round
//! trip, restart, concurrent writers — each on SQLite and on PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use common::{SECRET_MARK, TestApp};

both_backends!(
    health_endpoints,
    districts_tree_search_and_detail,
    checkpoint_crud_and_validation,
    camera_crud,
    camera_id_validation,
    camera_field_validation,
    camera_list_filters_and_paging,
    import_export_round_trip,
    import_reports_every_bad_row,
    restart_keeps_data,
    concurrent_writers_lose_nothing,
    openapi_matches_routes,
    malformed_requests,
    health_summary_availability_is_exact,
    health_events_are_paged,
    metrics_follow_the_catalogue,
);

fn cam(name: &str, district: &str) -> Value {
    json!({
        "name": name,
        "district": district,
        "point_type": 1,
        "ownership": "public",
        "rtsp_url": "rtsp://10.1.2.3:554/Streaming/Channels/101",
    })
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}
fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

async fn health_endpoints(app: TestApp) {
    let (s, _) = app.raw(Method::GET, "/healthz", None, vec![]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, t) = app.raw(Method::GET, "/readyz", None, vec![]).await;
    assert_eq!((s, t.as_str()), (StatusCode::OK, "ready\n"));
    app.store.close().await;
    let (s, _) = app.raw(Method::GET, "/readyz", None, vec![]).await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "a closed database is not ready"
    );
    let (s, t) = app.raw(Method::GET, "/", None, vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(t.contains("camgate"));
}

async fn districts_tree_search_and_detail(app: TestApp) {
    // Cameras at a township, a county and a prefecture of Gansu.
    for (name, d) in [
        ("a", "620602001"),
        ("b", "620602"),
        ("c", "620600"),
        ("d", "110101"),
    ] {
        let (s, v) = app.post("/api/v1/cameras", cam(name, d)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = app.get("/api/v1/districts").await;
    assert_eq!(s, StatusCode::OK);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "the test loads four provinces: {v}");
    let gansu = items.iter().find(|i| i["code"] == "62").unwrap();
    assert_eq!(
        (
            gansu["name"].as_str(),
            gansu["level"].as_i64(),
            gansu["camera_count"].as_i64()
        ),
        (Some("甘肃省"), Some(1), Some(3))
    );
    let bj = items.iter().find(|i| i["code"] == "11").unwrap();
    assert_eq!(bj["camera_count"], 1);

    // Padded GB/T 2260 parent codes map to the stored codes.
    for parent in ["62", "620000"] {
        let (s, v) = app.get(&format!("/api/v1/districts?parent={parent}")).await;
        assert_eq!(s, StatusCode::OK);
        let wuwei = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == "6206")
            .unwrap();
        assert_eq!(
            (
                wuwei["name"].as_str(),
                wuwei["level"].as_i64(),
                wuwei["camera_count"].as_i64()
            ),
            (Some("武威市"), Some(2), Some(3))
        );
        let lanzhou = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == "6201")
            .unwrap();
        assert_eq!(lanzhou["camera_count"], 0);
    }
    let (_, v) = app.get("/api/v1/districts?parent=620600").await;
    let lz = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "620602")
        .unwrap();
    assert_eq!(
        lz["camera_count"], 2,
        "the prefecture-level camera is not in the county: {v}"
    );
    let (_, v) = app.get("/api/v1/districts?parent=620602").await;
    let towns = v["items"].as_array().unwrap();
    assert!(towns.iter().all(|t| t["level"] == 4));
    assert_eq!(
        towns.iter().find(|t| t["code"] == "620602001").unwrap()["camera_count"],
        1
    );
    assert_eq!(
        towns
            .iter()
            .map(|t| t["camera_count"].as_i64().unwrap())
            .sum::<i64>(),
        1
    );

    // Dongguan: townships directly under the county-level entry 441900.
    let (_, v) = app.get("/api/v1/districts?parent=4419").await;
    assert_eq!(v["items"][0]["code"], "441900");

    let (s, v) = app.get("/api/v1/districts/620602").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["name"], "凉州区");
    assert_eq!(v["camera_count"], 2);
    let path: Vec<&str> = v["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["甘肃省", "武威市", "凉州区"]);
    let (_, v) = app.get("/api/v1/districts/620000").await;
    assert_eq!(
        (v["code"].as_str(), v["camera_count"].as_i64()),
        (Some("62"), Some(3))
    );

    let (s, v) = app.get("/api/v1/districts?q=%E5%87%89%E5%B7%9E").await; // 凉州
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "620602"),
        "{v}"
    );
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["name"].as_str().unwrap().contains("凉州"))
    );

    let (s, v) = app.get("/api/v1/districts/999999").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = app.get("/api/v1/districts?parent=999999").await;
    assert_eq!((s, field(&v)), (StatusCode::NOT_FOUND, "parent"));
    let (s, v) = app.get("/api/v1/districts?parent=62&q=x").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
}

async fn checkpoint_crud_and_validation(app: TestApp) {
    let (s, v) = app
        .post("/api/v1/checkpoints", json!({"name": "东关卡口", "district": "620602", "kind": "03", "address": "东关街", "longitude": 102.64, "latitude": 37.93}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    assert!(
        id.starts_with("620602000021600"),
        "generated checkpoint ID: {id}"
    );
    assert_eq!(
        (v["kind"].as_str(), v["camera_count"].as_i64()),
        (Some("03"), Some(0))
    );

    let (s, v) = app
        .post(
            "/api/v1/checkpoints",
            json!({"id": "KK-001", "name": "西关", "district": "6206", "kind": "face"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["district"].as_str()),
        (Some("01"), Some("6206"))
    );
    let (s, v) = app
        .post(
            "/api/v1/checkpoints",
            json!({"id": "KK-001", "name": "again", "district": "6206"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"));

    let (s, v) = app.get(&format!("/api/v1/checkpoints/{id}")).await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("东关卡口")));
    let (s, v) = app.get("/api/v1/checkpoints?district=620602").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        1,
        "KK-001 is at the prefecture, outside the county"
    );
    let (_, v) = app.get("/api/v1/checkpoints?district=6206").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (_, v) = app.get("/api/v1/checkpoints?q=%E8%A5%BF").await; // 西
    assert_eq!(v["items"][0]["id"], "KK-001");
    let (_, v) = app.get("/api/v1/checkpoints?limit=1").await;
    let next = v["next_cursor"].as_str().unwrap().to_string();
    let (_, v2) = app
        .get(&format!("/api/v1/checkpoints?limit=1&cursor={next}"))
        .await;
    assert_ne!(v["items"][0]["id"], v2["items"][0]["id"]);
    assert!(v2["next_cursor"].is_null());

    let (s, v) = app
        .patch(
            &format!("/api/v1/checkpoints/{id}"),
            json!({"name": "东关新卡口", "kind": "99", "longitude": null, "latitude": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["name"].as_str(),
            v["kind"].as_str(),
            v["address"].as_str()
        ),
        (Some("东关新卡口"), Some("99"), Some("东关街"))
    );
    assert!(v["longitude"].is_null());

    // Validation, each naming its field.
    let cases = [
        (json!({"district": "620602"}), "name"),
        (json!({"name": "x"}), "district"),
        (json!({"name": "x", "district": "999999"}), "district"),
        (
            json!({"name": "x", "district": "620602", "kind": "07"}),
            "kind",
        ),
        (
            json!({"name": "x", "district": "620602", "longitude": 102.0}),
            "latitude",
        ),
        (
            json!({"name": "x", "district": "620602", "longitude": 102.0, "latitude": 137.0}),
            "latitude",
        ),
        (
            json!({"name": "x", "district": "620602", "id": "bad id!"}),
            "id",
        ),
        (
            json!({"name": "x".repeat(101), "district": "620602"}),
            "name",
        ),
        (
            json!({"name": "x", "district": "620602", "address": "y".repeat(201)}),
            "address",
        ),
    ];
    for (body, f) in cases {
        let (s, v) = app.post("/api/v1/checkpoints", body.clone()).await;
        assert_eq!(
            (s, field(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, f),
            "{body} -> {v}"
        );
    }
    let (s, v) = app
        .patch(&format!("/api/v1/checkpoints/{id}"), json!({"id": "other"}))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "immutable")
    );

    // A checkpoint with cameras cannot be deleted.
    let mut c = cam("卡口相机", "620602");
    c["checkpoint"] = json!(id);
    let (s, v) = app.post("/api/v1/cameras", c).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let cam_id = v["id"].as_str().unwrap().to_string();
    let (_, v) = app.get(&format!("/api/v1/checkpoints/{id}")).await;
    assert_eq!(v["camera_count"], 1);
    let (s, v) = app.delete(&format!("/api/v1/checkpoints/{id}")).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"));
    let (s, _) = app
        .patch(
            &format!("/api/v1/cameras/{cam_id}"),
            json!({"checkpoint": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.delete(&format!("/api/v1/checkpoints/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("/api/v1/checkpoints/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete(&format!("/api/v1/checkpoints/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .patch("/api/v1/checkpoints/nope", json!({"name": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn camera_crud(app: TestApp) {
    let password = format!("{SECRET_MARK}-crud-1");
    let mut body = cam("凉州区东大街路口", "620602001");
    body["username"] = json!("admin");
    body["password"] = json!(password);
    body["tags"] = json!({"zone": "东", "vendor": "hikvision"});
    let (s, v) = app.post("/api/v1/cameras", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        id, "62060200001320000001",
        "centre 62060200, industry 00, type 132, flag 0, serial 1"
    );
    assert_eq!(v["has_password"], true);
    assert!(v.get("password").is_none());
    // A webhook about it, built as the gateway builds one from the pulled
    // camera (whose target holds the password), carries no password.
    let pulled = app.pulls.config(&id).unwrap();
    assert!(
        pulled
            .target
            .password
            .as_ref()
            .is_some_and(|p| p.expose().contains(SECRET_MARK))
    );
    let hook = camgate::health::webhook::payload(
        &camgate::health::Transition {
            camera_id: id.clone(),
            at_ms: 0,
            from: camgate::health::State::Connecting,
            to: camgate::health::State::Online,
            reason: None,
        },
        &pulled.into(),
    );
    assert!(!String::from_utf8_lossy(&hook).contains(SECRET_MARK));
    assert_eq!(
        (v["district"].as_str(), v["district_name"].as_str()),
        (Some("620602001"), Some("东大街街道"))
    );
    assert_eq!(
        (
            v["transport"].as_str(),
            v["pull_mode"].as_str(),
            v["enabled"].as_bool()
        ),
        (Some("tcp"), Some("on_demand"), Some(true))
    );

    // A second one gets the next serial; a social one gets industry 01.
    let (_, v) = app.post("/api/v1/cameras", cam("second", "620602")).await;
    assert_eq!(v["id"], "62060200001320000002");
    let mut social = cam("小区门口", "620602");
    social["ownership"] = json!("social");
    let (_, v) = app.post("/api/v1/cameras", social).await;
    assert_eq!(
        (v["id"].as_str(), v["industry_code"].as_str()),
        (Some("62060200011320000001"), Some("01"))
    );
    // A camera at province level gets the padded centre code.
    let (_, v) = app.post("/api/v1/cameras", cam("province", "62")).await;
    assert_eq!(v["id"], "62000000001320000001");

    let (s, v) = app.get(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["tags"]["zone"], "东");

    let (s, v) = app
        .patch(&format!("/api/v1/cameras/{id}"), json!({"name": "新名字", "tags": {"zone": "西"}, "enabled": false, "pull_mode": "always", "transport": "udp"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["name"].as_str(),
            v["enabled"].as_bool(),
            v["pull_mode"].as_str(),
            v["transport"].as_str()
        ),
        (Some("新名字"), Some(false), Some("always"), Some("udp"))
    );
    assert_eq!(v["tags"], json!({"zone": "西"}));
    assert_eq!(v["has_password"], true, "a PATCH without password keeps it");
    assert_eq!(v["address"], "", "absent fields keep their value");
    let (_, v) = app
        .patch(
            &format!("/api/v1/cameras/{id}"),
            json!({"password": null, "username": null}),
        )
        .await;
    assert_eq!(
        (v["has_password"].as_bool(), v["username"].as_str()),
        (Some(false), None)
    );

    // Credentials inside the URL are moved out of it.
    let mut body = cam("url creds", "620602");
    body["rtsp_url"] = json!(format!("rtsp://op:{SECRET_MARK}%40x@10.0.0.9:554/h264"));
    let (s, v) = app.post("/api/v1/cameras", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["rtsp_url"].as_str(),
            v["username"].as_str(),
            v["has_password"].as_bool()
        ),
        (Some("rtsp://10.0.0.9:554/h264"), Some("op"), Some(true))
    );
    let stored = app
        .store
        .get_camera(v["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.password.unwrap().expose(),
        format!("{SECRET_MARK}@x"),
        "percent-decoded"
    );

    let (s, _) = app.delete(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.get(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, _) = app.delete(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .patch(&format!("/api/v1/cameras/{id}"), json!({"name": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Deleting the camera deleted its tags: a new camera reusing the serial has none.
    let (_, v) = app.get("/api/v1/cameras?tag=zone:%E8%A5%BF").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    // The audit trail recorded every change of this camera, before and
    // after, without its passwords.
    let trail = app
        .store
        .list_audit(&camgate::store::access::AuditFilter {
            camera: Some(id.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(trail.len() >= 3, "create, updates, delete: {trail:?}");
    assert!(
        trail
            .iter()
            .any(|r| r.action == "camera.delete" && r.before_json.is_some())
    );
    for r in &trail {
        let text = format!("{r:?}");
        assert!(
            !text.contains(SECRET_MARK),
            "a password in the audit trail: {text}"
        );
    }
}

async fn camera_id_validation(app: TestApp) {
    let with_id = |id: &str, district: &str| {
        let mut c = cam("x", district);
        c["id"] = json!(id);
        c
    };
    // Valid: the camera's own county, its padded prefecture and province.
    for (id, d) in [
        ("62060200001320000101", "620602"),
        ("62060000001310000102", "620602001"),
        ("62000000001210000103", "620602"),
        ("62060200051210000104", "620602"),
    ] {
        let (s, v) = app.post("/api/v1/cameras", with_id(id, d)).await;
        assert_eq!(s, StatusCode::CREATED, "{id}: {v}");
        assert_eq!(v["id"], id);
    }
    let (_, v) = app.get("/api/v1/cameras/62060200051210000104").await;
    assert_eq!(v["industry_code"], "05", "industry taken from the ID");
    let (s, v) = app
        .post("/api/v1/cameras", with_id("62060200001320000101", "620602"))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"));

    let bad = [
        ("6206020000132000010", "620602", "invalid"), // 19 digits
        ("6206020000132000010X", "620602", "invalid"), // not digits
        ("62060200001329000101", "620602", "invalid"), // network flag 9
        ("99999900001320000101", "620602", "unknown_district"),
        ("11010100001320000101", "620602", "id_district_mismatch"), // Beijing ID, Gansu camera
        ("62062100001320000101", "620602", "id_district_mismatch"), // sibling county
        ("62060200002000000101", "620602", "invalid_type"),         // 200 is a platform
    ];
    for (id, d, c) in bad {
        let (s, v) = app.post("/api/v1/cameras", with_id(id, d)).await;
        assert_eq!(
            (s, field(&v), code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "id", c),
            "{id}: {v}"
        );
    }
    let mut c = with_id("62060200001320000199", "620602");
    c["industry_code"] = json!("01");
    let (s, v) = app.post("/api/v1/cameras", c).await;
    assert_eq!(
        (s, field(&v), code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "industry_code",
            "id_mismatch"
        )
    );

    // The ID is immutable, and the district cannot leave the ID's district.
    let (s, v) = app
        .patch(
            "/api/v1/cameras/62060200001320000101",
            json!({"id": "62060200001320000999"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "immutable")
    );
    let (s, v) = app
        .patch(
            "/api/v1/cameras/62060200001320000101",
            json!({"district": "110101"}),
        )
        .await;
    assert_eq!(
        (s, field(&v), code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "district",
            "id_district_mismatch"
        )
    );
    let (s, v) = app
        .patch(
            "/api/v1/cameras/62060200001320000101",
            json!({"district": "620602001"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "moving within the ID's county is fine: {v}"
    );
}

async fn camera_field_validation(app: TestApp) {
    let (s, v) = app
        .post(
            "/api/v1/checkpoints",
            json!({"id": "BJ1", "name": "北京卡口", "district": "110101"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let base = cam("x", "620602");
    let with = |k: &str, val: Value| {
        let mut c = base.clone();
        if val.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = val;
        }
        c
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (with("name", Value::Null), "name", "required"),
        (with("name", json!("  ")), "name", "required"),
        (with("name", json!("x".repeat(101))), "name", "too_long"),
        (with("name", json!("a\u{7}b")), "name", "invalid"),
        (with("district", Value::Null), "district", "required"),
        (
            with("district", json!("620699")),
            "district",
            "unknown_district",
        ),
        (
            with("district", json!("abc")),
            "district",
            "unknown_district",
        ),
        (with("point_type", Value::Null), "point_type", "required"),
        (with("point_type", json!(4)), "point_type", "invalid"),
        (with("ownership", Value::Null), "ownership", "required"),
        (with("ownership", json!("private")), "ownership", "invalid"),
        (
            with("industry_code", json!("1")),
            "industry_code",
            "invalid",
        ),
        (
            with("address", json!("a".repeat(201))),
            "address",
            "too_long",
        ),
        (with("longitude", json!(200.0)), "latitude", "required"),
        (with("latitude", json!(37.9)), "longitude", "required"),
        (
            json!({"name": "x", "district": "620602", "point_type": 1, "ownership": "public", "rtsp_url": "rtsp://h/1", "longitude": 200.0, "latitude": 37.0}),
            "longitude",
            "out_of_range",
        ),
        (
            json!({"name": "x", "district": "620602", "point_type": 1, "ownership": "public", "rtsp_url": "rtsp://h/1", "longitude": 37.9, "latitude": 102.6}),
            "latitude",
            "out_of_range",
        ),
        (with("rtsp_url", Value::Null), "rtsp_url", "required"),
        (
            with("rtsp_url", json!("http://10.0.0.1/stream")),
            "rtsp_url",
            "invalid",
        ),
        (with("rtsp_url", json!("not a url")), "rtsp_url", "invalid"),
        (
            with(
                "rtsp_url",
                json!(format!("rtsp://10.0.0.1/{}", "a".repeat(1100))),
            ),
            "rtsp_url",
            "too_long",
        ),
        (
            json!({"name": "x", "district": "620602", "point_type": 1, "ownership": "public", "rtsp_url": format!("rtsp://u:{SECRET_MARK}@h/1"), "username": "u"}),
            "rtsp_url",
            "duplicate_credentials",
        ),
        (
            with("password", json!(format!("{SECRET_MARK}-nouser"))),
            "username",
            "required",
        ),
        (
            with("username", json!("u".repeat(129))),
            "username",
            "invalid",
        ),
        (
            json!({"name": "x", "district": "620602", "point_type": 1, "ownership": "public", "rtsp_url": "rtsp://h/1", "username": "u", "password": format!("{SECRET_MARK}{}", "p".repeat(130))}),
            "password",
            "invalid",
        ),
        (with("transport", json!("sctp")), "transport", "invalid"),
        (
            with("pull_mode", json!("sometimes")),
            "pull_mode",
            "invalid",
        ),
        (
            with("checkpoint", json!("NOPE")),
            "checkpoint",
            "unknown_checkpoint",
        ),
        (
            with("checkpoint", json!("BJ1")),
            "checkpoint",
            "district_mismatch",
        ),
        (with("tags", json!({"a=b": "x"})), "tags", "invalid"),
        (with("tags", json!({"k": "v;w"})), "tags", "invalid"),
        (
            with(
                "tags",
                json!(
                    (0..33)
                        .map(|i| (format!("k{i}"), json!("v")))
                        .collect::<serde_json::Map<_, _>>()
                ),
            ),
            "tags",
            "too_many",
        ),
    ];
    for (body, f, c) in cases {
        let (s, v) = app.post("/api/v1/cameras", body.clone()).await;
        assert_eq!(
            (s, field(&v), code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, f, c),
            "{body} -> {v}"
        );
        assert!(
            v["error"]["details"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        );
    }
    // Several problems are all listed.
    let (_, v) = app
        .post(
            "/api/v1/cameras",
            json!({"name": "", "district": "1", "point_type": 7}),
        )
        .await;
    assert!(v["error"]["details"].as_array().unwrap().len() >= 4, "{v}");
    // Nothing was written by any of these.
    assert_eq!(app.all_cameras("").await.len(), 0);
    // Chinese enum words are accepted.
    let mut c = cam("中文", "620602");
    c["ownership"] = json!("社会");
    c["pull_mode"] = json!("按需");
    let (s, v) = app.post("/api/v1/cameras", c).await;
    assert_eq!(
        (s, v["ownership"].as_str(), v["pull_mode"].as_str()),
        (StatusCode::CREATED, Some("social"), Some("on_demand"))
    );
}

async fn camera_list_filters_and_paging(app: TestApp) {
    let (_, v) = app
        .post(
            "/api/v1/checkpoints",
            json!({"id": "CP1", "name": "cp", "district": "620602"}),
        )
        .await;
    assert_eq!(v["id"], "CP1");
    let districts = [
        "620602",
        "620602001",
        "620602002",
        "620621",
        "110101",
        "441900003",
    ];
    for i in 0..36 {
        let d = districts[i % districts.len()];
        let mut c = cam(
            &format!("相机{i:02} {}", if i % 4 == 0 { "Gate" } else { "road" }),
            d,
        );
        c["point_type"] = json!([1, 2, 3, 9][i % 4]);
        c["ownership"] = json!(if i % 3 == 0 { "social" } else { "public" });
        c["enabled"] = json!(i % 5 != 0);
        c["address"] = json!(format!("地址{i} 号 100%_x"));
        c["tags"] =
            json!({"zone": if i % 2 == 0 { "east" } else { "west" }, "floor": (i % 3).to_string()});
        if d.starts_with("620602") && i % 2 == 0 {
            c["checkpoint"] = json!("CP1");
        }
        let (s, v) = app.post("/api/v1/cameras", c).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let all = app.all_cameras("").await;
    assert_eq!(all.len(), 36);
    let count = |pred: &dyn Fn(&Value) -> bool| all.iter().filter(|c| pred(c)).count();

    assert_eq!(
        app.all_cameras("&district=620602").await.len(),
        count(&|c| c["district"].as_str().unwrap().starts_with("620602"))
    );
    assert_eq!(app.all_cameras("&district=620602").await.len(), 18);
    assert_eq!(app.all_cameras("&district=620602001").await.len(), 6);
    assert_eq!(app.all_cameras("&district=620000").await.len(), 24);
    assert_eq!(app.all_cameras("&district=44").await.len(), 6);
    assert_eq!(
        app.all_cameras("&checkpoint=CP1").await.len(),
        count(&|c| c["checkpoint"] == "CP1")
    );
    assert!(count(&|c| c["checkpoint"] == "CP1") > 0);
    assert_eq!(app.all_cameras("&point_type=9").await.len(), 9);
    assert_eq!(app.all_cameras("&ownership=social").await.len(), 12);
    assert_eq!(app.all_cameras("&enabled=false").await.len(), 8);
    assert_eq!(app.all_cameras("&tag=zone:east").await.len(), 18);
    assert_eq!(
        app.all_cameras("&tag=zone:east&tag=floor:0").await.len(),
        count(&|c| c["tags"]["zone"] == "east" && c["tags"]["floor"] == "0")
    );
    assert_eq!(app.all_cameras("&tag=zone:north").await.len(), 0);
    // q: name (case-insensitive for ASCII), ID, address; LIKE wildcards are literal.
    assert_eq!(app.all_cameras("&q=gate").await.len(), 9);
    assert_eq!(app.all_cameras("&q=%E7%9B%B8%E6%9C%BA07").await.len(), 1); // 相机07
    let id = all[5]["id"].as_str().unwrap();
    assert_eq!(app.all_cameras(&format!("&q={}", &id[3..])).await.len(), 1);
    assert_eq!(app.all_cameras("&q=100%25_x").await.len(), 36);
    assert_eq!(
        app.all_cameras("&q=100%25%25").await.len(),
        0,
        "% is not a wildcard"
    );
    // Filters combine.
    assert_eq!(
        app.all_cameras("&district=620602&point_type=1&enabled=true")
            .await
            .len(),
        count(&|c| c["district"].as_str().unwrap().starts_with("620602")
            && c["point_type"] == 1
            && c["enabled"] == true)
    );

    // Paging: stable order, every camera once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, v) = app.get(&format!("/api/v1/cameras?limit=7{cursor}")).await;
        assert_eq!(s, StatusCode::OK);
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages are in ID order without repeats");
    assert_eq!(seen.len(), 36);

    for (q, f) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("cursor=zz", "cursor"),
        ("point_type=4", "point_type"),
        ("ownership=x", "ownership"),
        ("enabled=maybe", "enabled"),
        ("tag=nocolon", "tag"),
        ("district=999999", "district"),
        ("limit=1&limit=2", "limit"),
        ("sort=name", "sort"),
    ] {
        let (s, v) = app.get(&format!("/api/v1/cameras?{q}")).await;
        assert_eq!((s, field(&v)), (StatusCode::BAD_REQUEST, f), "{q}: {v}");
    }
}

const CSV_ZH: &str = "\u{feff}名称,国标编码,行政区划,卡口,点位类型,权属,地址,经度,纬度,RTSP地址,用户名,密码,传输,拉流方式,标签\n\
东大街路口,62060200001320000501,620602,,1,公共,\"东大街1号, 北侧\",102.638,37.928,rtsp://10.0.0.1:554/s1,admin,S3cr3t-a,tcp,按需,zone=东;floor=1\n\
西大街路口,,620602001,CPX,2,社会,西大街2号,,,rtsp://10.0.0.2:554/s1,,,udp,always,\n\
北关公交站,,110101,,3,public,,116.41,39.92,rtsp://viewer:S3cr3t-b@10.0.0.3/live,,,,,\n";

async fn import_export_round_trip(app: TestApp) {
    let (s, _) = app
        .post(
            "/api/v1/checkpoints",
            json!({"id": "CPX", "name": "X", "district": "620602"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, v) = app
        .post_csv("/api/v1/cameras/import?dry_run=true", CSV_ZH)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["dry_run"].as_bool(),
            v["rows"].as_u64(),
            v["created"].as_u64(),
            v["updated"].as_u64()
        ),
        (Some(true), Some(3), Some(3), Some(0))
    );
    assert_eq!(
        app.all_cameras("").await.len(),
        0,
        "a dry run writes nothing"
    );

    let (s, v) = app.post_csv("/api/v1/cameras/import", CSV_ZH).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["created"].as_u64(),
            v["updated"].as_u64(),
            v["errors"].as_array().map(Vec::len)
        ),
        (Some(3), Some(0), Some(0))
    );
    let before = app.all_cameras("").await;
    assert_eq!(before.len(), 3);
    let first = before
        .iter()
        .find(|c| c["id"] == "62060200001320000501")
        .unwrap();
    assert_eq!(
        (first["address"].as_str(), first["has_password"].as_bool()),
        (Some("东大街1号, 北侧"), Some(true))
    );
    assert_eq!(first["tags"], json!({"zone": "东", "floor": "1"}));
    let second = before.iter().find(|c| c["name"] == "西大街路口").unwrap();
    assert_eq!(
        (
            second["checkpoint"].as_str(),
            second["ownership"].as_str(),
            second["industry_code"].as_str(),
            second["transport"].as_str()
        ),
        (Some("CPX"), Some("social"), Some("01"), Some("udp"))
    );
    let third = before.iter().find(|c| c["name"] == "北关公交站").unwrap();
    assert_eq!(
        (
            third["username"].as_str(),
            third["has_password"].as_bool(),
            third["rtsp_url"].as_str()
        ),
        (Some("viewer"), Some(true), Some("rtsp://10.0.0.3/live"))
    );

    for lang in ["en", "zh"] {
        let (s, csv) = app
            .raw(
                Method::GET,
                &format!("/api/v1/cameras/export?format=csv&lang={lang}"),
                None,
                vec![],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(!csv.contains(SECRET_MARK), "exports never carry passwords");
        assert_eq!(csv.lines().count(), 4, "{csv}");
        if lang == "zh" {
            assert!(csv.starts_with('\u{feff}') && csv.contains("国标编码"));
        }
        // Importing the export changes nothing (passwords are kept).
        let (s, v) = app.post_csv("/api/v1/cameras/import", &csv).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["created"].as_u64(), v["updated"].as_u64()),
            (Some(0), Some(3))
        );
        let after = app.all_cameras("").await;
        let strip = |cs: &[Value]| -> Vec<Value> {
            cs.iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.as_object_mut().unwrap().remove("updated_at");
                    c
                })
                .collect()
        };
        assert_eq!(
            strip(&before),
            strip(&after),
            "round trip through the {lang} export"
        );
    }
    // Export honours filters.
    let (_, csv) = app
        .raw(
            Method::GET,
            "/api/v1/cameras/export?district=11",
            None,
            vec![],
        )
        .await;
    assert_eq!(csv.lines().count(), 2);
    let (s, v) = app.get("/api/v1/cameras/export?format=xlsx").await;
    assert_eq!((s, field(&v)), (StatusCode::BAD_REQUEST, "format"));
    let stored = app
        .store
        .get_camera("62060200001320000501")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password.unwrap().expose(), "S3cr3t-a");
}

async fn import_reports_every_bad_row(app: TestApp) {
    let csv = "name,id,district,checkpoint,point_type,ownership,longitude,latitude,rtsp_url,password,enabled\n\
ok one,,620602,,1,public,,,rtsp://h/1,,true\n\
bad district,,999999,,1,public,,,rtsp://h/2,,true\n\
bad lat,,620602,,1,public,102.6,95,rtsp://h/3,,true\n\
dup a,62060200001320000701,620602,,1,public,,,rtsp://h/4,,true\n\
dup b,62060200001320000701,620602,,1,public,,,rtsp://h/5,,true\n\
bad cp,,620602,NOPE,1,public,,,rtsp://h/6,,true\n\
bad type,,620602,,5,public,,,rtsp://h/7,,true\n\
bad bool,,620602,,1,public,,,rtsp://h/8,,sometimes\n\
no user,,620602,,1,public,,,rtsp://h/9,S3cr3t-c,true\n\
ok two,,620602,,1,public,,,rtsp://h/10,,true\n";
    let (s, v) = app.post_csv("/api/v1/cameras/import", csv).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_rows"),
        "{v}"
    );
    let errors = v["error"]["report"]["errors"].as_array().unwrap();
    let got: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["column"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "district"),
            (4, "latitude"),
            (6, "id"),
            (7, "checkpoint"),
            (8, "point_type"),
            (9, "enabled"),
            (10, "username")
        ],
        "{v}"
    );
    assert_eq!(errors[0]["column_index"], 3);
    assert!(errors[2]["message"].as_str().unwrap().contains("line 5"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was imported")
    );
    assert_eq!(app.all_cameras("").await.len(), 0, "all or nothing");

    let (s, v) = app
        .post_csv("/api/v1/cameras/import?dry_run=true", csv)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["errors"].as_array().unwrap().len(), 7);
    assert_eq!(v["rows"], 10);

    // Header problems.
    let (s, v) = app
        .post_csv(
            "/api/v1/cameras/import",
            "name,distrct,rtsp_url\nx,620602,rtsp://h/1\n",
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let e = &v["error"]["report"]["errors"];
    assert_eq!(
        (
            e[0]["line"].as_u64(),
            e[0]["code"].as_str(),
            e[0]["column"].as_str()
        ),
        (Some(1), Some("unknown_column"), Some("distrct"))
    );
    assert_eq!(e[1]["code"], "missing_column");
    let (s, v) = app.post_csv("/api/v1/cameras/import", "").await;
    assert_eq!(
        (s, v["error"]["report"]["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("empty"))
    );
    let (s, v) = app
        .post_csv("/api/v1/cameras/import?dry_run=perhaps", "")
        .await;
    assert_eq!((s, field(&v)), (StatusCode::BAD_REQUEST, "dry_run"));
    // GBK bytes for 名称 are read as GB18030: the row's problem is its
    // missing ownership, not its encoding.
    let mut gbk = b"name,district,rtsp_url\n".to_vec();
    gbk.extend_from_slice(&[0xC3, 0xFB, 0xB3, 0xC6]);
    gbk.extend_from_slice(b",620602,rtsp://h/1\n");
    let (s, text) = app
        .raw(
            Method::POST,
            "/api/v1/cameras/import",
            Some("text/csv"),
            gbk,
        )
        .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["report"]["encoding"], "GB18030", "{v}");
    assert_eq!(
        v["error"]["report"]["errors"][0]["code"].as_str(),
        Some("required"),
        "{v}"
    );
    // Bytes that are neither UTF-8 nor GB18030: the cell is named.
    let mut bad = b"name,district,rtsp_url\n".to_vec();
    bad.extend_from_slice(&[0xff, 0xff, 0x30]);
    bad.extend_from_slice(b",620602,rtsp://h/1\n");
    let (s, text) = app
        .raw(
            Method::POST,
            "/api/v1/cameras/import",
            Some("text/csv"),
            bad,
        )
        .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (
            v["error"]["report"]["errors"][0]["code"].as_str(),
            v["error"]["report"]["errors"][0]["line"].as_u64()
        ),
        (Some("invalid_utf8"), Some(2)),
        "{v}"
    );
}

async fn restart_keeps_data(app: TestApp) {
    let mut c = cam("persist", "620602");
    c["username"] = json!("u");
    c["password"] = json!(format!("{SECRET_MARK}-persist"));
    let (s, v) = app.post("/api/v1/cameras", c).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = v["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .post(
            "/api/v1/checkpoints",
            json!({"id": "P1", "name": "p", "district": "620602"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let TestApp { db, store, .. } = app;
    store.close().await;
    drop(store);

    let store = db.open().await; // migrations already applied: a no-op
    assert_eq!(store.migrate().await.unwrap(), 0);
    let app = TestApp::with(db, store).await;
    let (s, v) = app.get(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!(
        (s, v["name"].as_str(), v["has_password"].as_bool()),
        (StatusCode::OK, Some("persist"), Some(true))
    );
    let (s, _) = app.get("/api/v1/checkpoints/P1").await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = app.get("/api/v1/districts/620602").await;
    assert_eq!(v["camera_count"], 1);
}

async fn concurrent_writers_lose_nothing(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                // All writers generate IDs under the same prefix: the worst case.
                let (s, v) = app
                    .post("/api/v1/cameras", cam(&format!("w{w}-{i}"), "620602"))
                    .await;
                assert_eq!(s, StatusCode::CREATED, "writer {w} row {i}: {v}");
                ids.push(v["id"].as_str().unwrap().to_string());
            }
            ids
        }));
    }
    // An importer writes at the same time.
    let importer = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut csv = String::from("name,district,point_type,ownership,rtsp_url\n");
            for i in 0..50 {
                csv.push_str(&format!("imp{i},620602,1,public,rtsp://h/{i}\n"));
            }
            let (s, v) = app.post_csv("/api/v1/cameras/import", &csv).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        })
    };
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    importer.await.unwrap();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no two writers got the same ID");
    let all = app.all_cameras("").await;
    assert_eq!(all.len(), 250, "200 API rows and 50 imported rows");
    let (_, v) = app.get("/api/v1/districts/620602").await;
    assert_eq!(v["camera_count"], 250);
}

async fn openapi_matches_routes(app: TestApp) {
    let (s, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    for (path, ops) in paths {
        let uri = path
            .replace("{code}", "620602")
            .replace("{id}", "does-not-exist");
        for m in &methods {
            let documented = ops.get(m.as_str().to_ascii_lowercase()).is_some();
            let (ct, body) = match *m {
                Method::POST | Method::PATCH | Method::PUT => {
                    (Some("application/json"), b"{}".to_vec())
                }
                _ => (None, vec![]),
            };
            let (s, text) = app.raw(m.clone(), &uri, ct, body).await;
            if documented {
                assert_ne!(
                    s,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is documented but not routed"
                );
                assert!(
                    !text.contains("route_not_found"),
                    "{m} {path} is documented but not routed"
                );
                let responses = ops[m.as_str().to_ascii_lowercase()]["responses"]
                    .as_object()
                    .unwrap();
                assert!(
                    responses.contains_key(s.as_str()),
                    "{m} {path} answered {s}, which is not documented: {text}"
                );
            } else {
                assert_eq!(
                    s,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} answers but is not documented"
                );
            }
        }
    }
    let (s, v) = app.get("/api/v1/nothing-here").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "route_not_found"));
}

async fn malformed_requests(app: TestApp) {
    let (s, text) = app
        .raw(
            Method::POST,
            "/api/v1/cameras",
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    let (s, text) = app
        .raw(
            Method::POST,
            "/api/v1/cameras",
            Some("application/json"),
            b"{\"name\": ".to_vec(),
        )
        .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"));
    let (s, v) = app.post("/api/v1/cameras", json!({"nmae": "typo"})).await;
    assert_eq!(
        (s, code(&v), field(&v)),
        (StatusCode::BAD_REQUEST, "invalid_field", "nmae")
    );
    let (s, v) = app
        .post("/api/v1/cameras", json!({"name": "x", "point_type": "one"}))
        .await;
    assert_eq!((s, field(&v)), (StatusCode::BAD_REQUEST, "point_type"));
    let (s, v) = app
        .post("/api/v1/cameras", json!({"name": "x", "tags": {"a": 1}}))
        .await;
    assert_eq!((s, field(&v)), (StatusCode::BAD_REQUEST, "tags.a"));
    let (s, v) = app.post("/api/v1/checkpoints", json!([1, 2])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A body over the import limit is refused with 413.
    let big = "x".repeat(app.config.server.max_import_bytes as usize + 1);
    let (s, text) = app
        .raw(
            Method::POST,
            "/api/v1/cameras/import",
            Some("text/csv"),
            big.into_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(common::log_len() > 0, "log capture works");
}

/// 2026-03-01T00:00:00+08:00 in Unix ms.
const DAY_START: i64 = 1_772_294_400_000;
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;

fn tr(
    camera: &str,
    district: &str,
    at_ms: i64,
    from: &str,
    to: &str,
) -> camgate::store::NewTransition {
    camgate::store::NewTransition {
        camera_id: camera.into(),
        district_code: district.into(),
        at_ms,
        from_state: from.into(),
        to_state: to.into(),
        reason: (to == "offline").then(|| "refused".to_string()),
    }
}

async fn create(app: &TestApp, body: Value) -> String {
    let (s, v) = app.post("/api/v1/cameras", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// A day of known transitions (the clock is in the rows), and the summary's
/// figures computed by hand.
async fn health_summary_availability_is_exact(app: TestApp) {
    let a = create(&app, cam("a", "620602001")).await;
    let mut b = cam("b", "620602");
    b["point_type"] = json!(2);
    let b = create(&app, b).await;
    let c = create(&app, cam("c", "110101")).await;
    let mut d = cam("d", "620602");
    d["point_type"] = json!(3);
    d["enabled"] = json!(false);
    create(&app, d).await;
    app.store
        .insert_transitions(&[
            // a: online since before the day; down 02:00-02:31.
            tr(&a, "620602001", DAY_START - 5 * HOUR, "unknown", "online"),
            tr(&a, "620602001", DAY_START + 2 * HOUR, "online", "offline"),
            tr(
                &a,
                "620602001",
                DAY_START + 2 * HOUR + 30 * MIN,
                "offline",
                "connecting",
            ),
            tr(
                &a,
                "620602001",
                DAY_START + 2 * HOUR + 31 * MIN,
                "connecting",
                "online",
            ),
            // The next day does not count.
            tr(&a, "620602001", DAY_START + 25 * HOUR, "online", "offline"),
            // b: first seen at 06:00, online from then on.
            tr(&b, "620602", DAY_START + 6 * HOUR, "unknown", "online"),
            // c: online all day, in another province.
            tr(&c, "110101", DAY_START - HOUR, "connecting", "online"),
        ])
        .await
        .unwrap();
    let (s, v) = app
        .get("/api/v1/health/summary?district=620602&day=2026-03-01")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let close = |v: &Value, want: f64| {
        let got = v.as_f64().unwrap_or(f64::NAN);
        assert!((got - want).abs() < 1e-12, "{got} != {want}");
    };
    let dist = &v["district"];
    assert_eq!(
        (dist["total"].as_i64(), dist["enabled"].as_i64()),
        (Some(3), Some(2)),
        "{v}"
    );
    // a: 1409 of 1440 minutes; b: 1080 of 1080.
    close(&dist["availability"], 2489.0 / 2520.0);
    assert_eq!(dist["observed_secs"], (1440 + 1080) * 60);
    // Nothing is pulled in this test: nothing is online now.
    assert_eq!(dist["online"], 0);
    close(&dist["online_rate"], 0.0);
    close(&dist["target"], (0.98 + 0.95) / 2.0);
    let town = v["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "620602001")
        .unwrap();
    assert_eq!(town["total"], 1);
    close(&town["availability"], 1409.0 / 1440.0);
    let classes = v["point_classes"].as_array().unwrap();
    let class = |pt: i64| classes.iter().find(|c| c["point_type"] == pt).unwrap();
    close(&class(1)["availability"], 1409.0 / 1440.0);
    close(&class(1)["target"], 0.98);
    assert_eq!(class(1)["meets_target"], false);
    close(&class(2)["availability"], 1.0);
    assert_eq!(class(2)["meets_target"], true);
    assert_eq!(class(3)["enabled"], 0);
    assert_eq!(class(3)["availability"], Value::Null);
    assert_eq!(class(9)["total"], 0);
    assert_eq!(v["below_target_total"], 1);
    assert_eq!(v["below_target"][0]["camera_id"], a.as_str());
    close(&v["below_target"][0]["availability"], 1409.0 / 1440.0);

    // The whole catalogue: c (a full day up) joins class 1.
    let (s, v) = app.get("/api/v1/health/summary?day=2026-03-01").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["district"]["total"], 4);
    let classes = v["point_classes"].as_array().unwrap();
    let one = classes.iter().find(|c| c["point_type"] == 1).unwrap();
    close(&one["availability"], (1409.0 + 1440.0) / 2880.0);
    assert!(
        v["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "11" && c["total"] == 1),
        "{v}"
    );

    // Bad input.
    for (uri, status, fld) in [
        (
            "/api/v1/health/summary?day=2026-13-01",
            StatusCode::BAD_REQUEST,
            "day",
        ),
        (
            "/api/v1/health/summary?day=2999-01-01",
            StatusCode::BAD_REQUEST,
            "day",
        ),
        (
            "/api/v1/health/summary?district=999999",
            StatusCode::NOT_FOUND,
            "district",
        ),
        (
            "/api/v1/health/summary?distict=62",
            StatusCode::BAD_REQUEST,
            "distict",
        ),
    ] {
        let (s, v) = app.get(uri).await;
        assert_eq!((s, field(&v)), (status, fld), "{uri}: {v}");
    }
}

async fn health_events_are_paged(app: TestApp) {
    let rows: Vec<_> = (0..5)
        .map(|i| {
            tr(
                "62060200001320000001",
                "620602001",
                DAY_START + i * MIN,
                "unknown",
                "online",
            )
        })
        .chain([tr(
            "11010100001320000001",
            "110101",
            DAY_START,
            "unknown",
            "offline",
        )])
        .collect();
    app.store.insert_transitions(&rows).await.unwrap();
    let mut seen = Vec::new();
    let mut uri = "/api/v1/health/events?district=620600&limit=2".to_string();
    for _ in 0..10 {
        let (s, v) = app.get(&uri).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for t in v["items"].as_array().unwrap() {
            assert_eq!(t["camera_id"], "62060200001320000001");
            seen.push(t["at"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/health/events?district=620600&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first");
    // since: a time, and a day.
    let (_, v) = app
        .get("/api/v1/health/events?since=2026-03-01T00:03:00%2B08:00")
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = app.get("/api/v1/health/events?since=2026-03-01").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 6, "{v}");
    let (_, v) = app.get("/api/v1/health/events?since=2026-03-02").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["items"][0], Value::Null);
    for (uri, fld) in [
        ("/api/v1/health/events?since=yesterday", "since"),
        ("/api/v1/health/events?cursor=zz", "cursor"),
        ("/api/v1/health/events?district=999999", "district"),
    ] {
        let (s, v) = app.get(uri).await;
        assert_eq!((s, field(&v)), (StatusCode::BAD_REQUEST, fld), "{uri}: {v}");
    }
}

/// `promtool check metrics` on an exposition, when promtool is installed
/// (Debian package `prometheus`; tests/run.sh installs it and sets
/// CAMGATE_REQUIRE_TOOLS=1, which turns its absence into a failure).
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CAMGATE_REQUIRE_TOOLS").is_none(),
                "promtool is required: {e}"
            );
            eprintln!(
                "SKIPPED promtool check: promtool not found ({e}); apt-get install prometheus"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn metrics_follow_the_catalogue(app: TestApp) {
    let telemetry = camgate::metrics::Telemetry::new(app.pulls.clone());
    let mut body = cam("指标\"测试\\", "620602001");
    body["pull_mode"] = json!("always");
    let id = create(&app, body).await;
    let other = create(&app, cam("other", "110101")).await;
    let text = camgate::metrics::render(&telemetry);
    let series = format!("camgate_camera_up{{camera_id=\"{id}\",district=\"620602\"}}");
    assert!(text.contains(&series), "{text}");
    assert!(text.contains(&format!("camera_id=\"{other}\"")));
    assert!(
        text.contains("camgate_district_cameras_enabled{district=\"620602\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("camgate_process_resident_memory_bytes "),
        "{text}"
    );
    promtool_check(&text);

    // Deleting the camera removes its series at the next scrape;
    // disabling another keeps it, as disabled.
    let (s, _) = app.delete(&format!("/api/v1/cameras/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app
        .patch(
            &format!("/api/v1/cameras/{other}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let text = camgate::metrics::render(&telemetry);
    assert!(!text.contains(&id), "{text}");
    assert!(
        text.contains(&format!(
            "camgate_camera_state{{camera_id=\"{other}\",district=\"110101\",state=\"disabled\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains("camgate_district_cameras_enabled{district=\"110101\"} 0"),
        "{text}"
    );
    promtool_check(&text);
}
