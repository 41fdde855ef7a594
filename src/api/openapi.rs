//! The OpenAPI 3.1 description of the REST API, served at
//! `/api/v1/openapi.json`. A test walks every operation here against the
//! router, so the document and the routes cannot drift apart.

use axum::Json;
use serde_json::{Value, json};

pub async fn handler() -> Json<Value> {
    Json(document())
}

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn p(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": r("Error")}}})
}

fn page(item: &str) -> Value {
    json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": r(item)},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page."}
    }})
}

/// The document.
pub fn document() -> Value {
    let limit = q(
        "limit",
        "Page size, 1-1000 (default 100).",
        json!({"type": "integer", "minimum": 1, "maximum": 1000}),
    );
    let cursor = q(
        "cursor",
        "`next_cursor` of the previous page.",
        json!({"type": "string"}),
    );
    let mut camera_filters = vec![
        q(
            "q",
            "Substring of name, ID or address.",
            json!({"type": "string"}),
        ),
        q(
            "district",
            "District code (padded GB/T 2260 forms accepted); the whole subtree matches.",
            json!({"type": "string"}),
        ),
        q("checkpoint", "Checkpoint ID.", json!({"type": "string"})),
        q(
            "point_type",
            "GB/T 28181 PointType.",
            json!({"type": "integer", "enum": [1, 2, 3, 9]}),
        ),
        q(
            "ownership",
            "public or social.",
            json!({"type": "string", "enum": ["public", "social"]}),
        ),
        q("enabled", "true or false.", json!({"type": "boolean"})),
        json!({"name": "tag", "in": "query", "required": false, "description": "key:value; repeat for several (all must match).",
               "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true}),
    ];
    camera_filters.push(q(
        "state",
        "Health states now, comma-separated or repeated (online, degraded, offline, connecting, unknown, disabled). Pages stay ordered by ID.",
        json!({"type": "string"}),
    ));
    let mut list_params = camera_filters.clone();
    list_params.push(limit.clone());
    list_params.push(cursor.clone());
    let mut export_params = camera_filters;
    export_params.push(q(
        "format",
        "Only csv.",
        json!({"type": "string", "enum": ["csv"]}),
    ));
    export_params.push(q(
        "lang",
        "Header language: en (default) or zh (Chinese headers, with a BOM for spreadsheets).",
        json!({"type": "string", "enum": ["en", "zh"]}),
    ));
    export_params.push(q(
        "template",
        "true: the header row alone, an import template.",
        json!({"type": "boolean"}),
    ));

    let coords = json!({"longitude": {"type": ["number", "null"], "minimum": -180, "maximum": 180, "description": "WGS-84 degrees"},
                        "latitude": {"type": ["number", "null"], "minimum": -90, "maximum": 90, "description": "WGS-84 degrees"}});
    let mut camera_input = json!({"type": "object", "additionalProperties": false, "properties": {
        "id": {"type": "string", "pattern": "^[0-9]{20}$", "description": "GB/T 28181 rule-A ID; generated when absent. Immutable."},
        "name": {"type": "string", "maxLength": 100},
        "district": {"type": "string", "description": "District code of any level."},
        "checkpoint": {"type": ["string", "null"]},
        "point_type": {"type": "integer", "enum": [1, 2, 3, 9]},
        "ownership": {"type": "string", "enum": ["public", "social"]},
        "industry_code": {"type": "string", "pattern": "^[0-9]{2}$", "description": "Default: from the ID, else 00 public / 01 social."},
        "address": {"type": "string", "maxLength": 200},
        "rtsp_url": {"type": "string", "description": "rtsp:// or rtsps://; credentials in it are moved to username/password."},
        "username": {"type": ["string", "null"]},
        "password": {"type": ["string", "null"], "writeOnly": true, "description": "Write-only; null or empty clears it."},
        "transport": {"type": "string", "enum": ["tcp", "udp"], "default": "tcp"},
        "pull_mode": {"type": "string", "enum": ["on_demand", "always"], "default": "on_demand"},
        "enabled": {"type": "boolean", "default": true},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}}
    }});
    camera_input["properties"]
        .as_object_mut()
        .unwrap()
        .extend(coords.as_object().unwrap().clone());
    let mut camera_create = camera_input.clone();
    camera_create["required"] = json!(["name", "district", "point_type", "ownership", "rtsp_url"]);
    let mut camera = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "district": {"type": "string"},
        "district_name": {"type": "string"}, "checkpoint": {"type": ["string", "null"]},
        "point_type": {"type": "integer"}, "ownership": {"type": "string"}, "industry_code": {"type": "string"},
        "address": {"type": "string"}, "rtsp_url": {"type": "string"}, "username": {"type": ["string", "null"]},
        "has_password": {"type": "boolean"}, "transport": {"type": "string"}, "pull_mode": {"type": "string"},
        "enabled": {"type": "boolean"}, "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "state": {"type": "string", "enum": ["unknown", "connecting", "online", "degraded", "offline", "disabled"]},
        "reason": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}
    }});
    camera["properties"]
        .as_object_mut()
        .unwrap()
        .extend(coords.as_object().unwrap().clone());
    let mut checkpoint_input = json!({"type": "object", "additionalProperties": false, "properties": {
        "id": {"type": "string", "pattern": "^[0-9A-Za-z_-]{1,32}$", "description": "Generated (20 digits, type 216) when absent. Immutable."},
        "name": {"type": "string", "maxLength": 100},
        "district": {"type": "string"},
        "kind": {"type": "string", "enum": ["01", "02", "03", "04", "05", "99"], "description": "GB/T 28181-2022 FunctionType: 01 face, 02 person, 03 motor vehicle, 04 non-motor vehicle, 05 object, 99 other (default)."},
        "address": {"type": "string", "maxLength": 200}
    }});
    checkpoint_input["properties"]
        .as_object_mut()
        .unwrap()
        .extend(coords.as_object().unwrap().clone());
    let mut checkpoint_create = checkpoint_input.clone();
    checkpoint_create["required"] = json!(["name", "district"]);
    let mut checkpoint = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "district": {"type": "string"},
        "kind": {"type": "string"}, "address": {"type": "string"}, "camera_count": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}
    }});
    checkpoint["properties"]
        .as_object_mut()
        .unwrap()
        .extend(coords.as_object().unwrap().clone());

    let health_paths = json!({
            "/api/v1/cameras/{id}/health": {"get": {
                "summary": "A camera's health: state, reason, live stats and its last 50 transitions",
                "parameters": [p("id", "Camera ID.")],
                "responses": {"200": ok("Health.", r("CameraHealth")), "404": err("Not found.")}}},
            "/api/v1/cameras/{id}/snapshot.jpg": {"get": {
                "summary": "A JPEG of the camera's latest key frame (cached for 2 s); an on_demand camera is pulled for it",
                "parameters": [p("id", "Camera ID.")],
                "responses": {"200": {"description": "The picture.", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                              "404": err("No enabled camera with this ID."),
                              "501": err("Built without the gstreamer feature; the message says how to enable it."),
                              "503": err("No key frame arrived in time, or it could not be decoded.")}}},
            "/api/v1/health/summary": {"get": {
                "summary": "KPIs of a district: counts, online rate now, the day's availability, per child district and point class, and the cameras below target",
                "parameters": [q("district", "District code; the whole catalogue when absent.", json!({"type": "string"})),
                               q("day", "YYYY-MM-DD at health.utc_offset; today when absent.", json!({"type": "string", "format": "date"}))],
                "responses": {"200": ok("The summary.", r("HealthSummary")), "400": err("Bad query."), "404": err("Unknown district.")}}},
            "/api/v1/health/events": {"get": {
                "summary": "Stored state changes, oldest first",
                "parameters": [q("district", "Subtree filter (the district where the camera was at the change).", json!({"type": "string"})),
                               q("since", "RFC 3339 time, or a day (its start at health.utc_offset).", json!({"type": "string"})),
                               limit.clone(), cursor.clone()],
                "responses": {"200": ok("A page of transitions.", page("Transition")), "400": err("Bad query.")}}},
            "/api/v1/health/stream": {"get": {
                "summary": "State changes in the caller's scope as Server-Sent Events: `transition` (a Transition without id) and `lagged` (changes were missed; reload). The stream ends after 10 minutes; EventSource reconnects",
                "parameters": [q("district", "Subtree filter.", json!({"type": "string"}))],
                "responses": {"200": {"description": "The event stream.", "content": {"text/event-stream": {"schema": {"type": "string"}}}}, "400": err("Bad query.")}}},
            "/api/v1/cameras/{id}/timeline": {"get": {
                "summary": "A camera's states over the last hours, as segments, with its availability there",
                "parameters": [p("id", "Camera ID."), q("hours", "1 to 744; 24 when absent.", json!({"type": "integer", "minimum": 1, "maximum": 744}))],
                "responses": {"200": ok("The timeline.", r("Timeline")), "400": err("Bad query."), "404": err("Not found.")}}},
            "/api/v1/me/walls": {"get": {
                "summary": "The caller's video-wall layouts (any role)",
                "responses": {"200": {"description": "`items`: the layouts by name.", "content": {"application/json": {"schema": {"type": "object", "properties": {"items": {"type": "array", "items": r("Wall")}}}}}}}}},
            "/api/v1/me/walls/{name}": {
                "put": {"summary": "Create or replace a video-wall layout (any role; at most 50)",
                        "parameters": [p("name", "The layout's name, 1 to 64 characters.")],
                        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["tiles", "cameras"],
                            "properties": {"tiles": {"type": "integer", "enum": [1, 4, 9, 16]}, "cameras": {"type": "array", "items": {"type": ["string", "null"]}}}}}}},
                        "responses": {"200": ok("The stored layout.", r("Wall")), "400": err("Malformed JSON."), "415": err("Not JSON."), "422": err("A bad name, tile count or camera list, or too many walls.")}},
                "delete": {"summary": "Delete a video-wall layout", "parameters": [p("name", "The layout's name.")],
                           "responses": {"204": {"description": "Deleted."}, "404": err("No such layout.")}}}
    });
    let health_schemas = json!({
            "Transition": {"type": "object", "properties": {"id": {"type": "integer"}, "camera_id": {"type": "string"}, "district": {"type": "string"},
                "at": {"type": "string", "format": "date-time"}, "from": r("State"), "to": r("State"), "reason": {"type": ["string", "null"]}}},
            "State": {"type": "string", "enum": ["unknown", "connecting", "online", "degraded", "offline", "disabled"]},
            "CameraHealth": {"type": "object", "properties": {"camera_id": {"type": "string"}, "state": r("State"), "reason": {"type": ["string", "null"]},
                "since": {"type": ["string", "null"], "format": "date-time"}, "pulling": {"type": "boolean"}, "viewers": {"type": "integer"},
                "stats": {"type": ["object", "null"], "properties": {"frame_rate": {"type": "number"}, "bitrate_bps": {"type": "number"},
                    "key_frame_interval_secs": {"type": ["number", "null"]}, "last_frame_age_secs": {"type": ["number", "null"]},
                    "codec": {"type": ["string", "null"]}, "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]},
                    "reconnects": {"type": "integer"}, "online_since": {"type": ["string", "null"]}, "last_error": {"type": ["string", "null"]}}},
                "transitions": {"type": "array", "items": r("Transition")}}},
            "KpiGroup": {"type": "object", "properties": {"total": {"type": "integer"}, "enabled": {"type": "integer"}, "online": {"type": "integer"},
                "online_rate": {"type": ["number", "null"], "description": "online / enabled, now"},
                "availability": {"type": ["number", "null"], "description": "Seconds up / seconds observed in the day"},
                "observed_secs": {"type": "integer"},
                "target": {"type": ["number", "null"], "description": "The class's target; for a district, the mean of its enabled cameras' targets"},
                "meets_target": {"type": ["boolean", "null"]}}},
            "HealthSummary": {"type": "object", "properties": {"day": {"type": "string"}, "utc_offset": {"type": "string"},
                "observed_until": {"type": "string", "format": "date-time"},
                "district": r("KpiGroup"), "children": {"type": "array", "items": r("KpiGroup")}, "point_classes": {"type": "array", "items": r("KpiGroup")},
                "below_target_total": {"type": "integer"},
                "below_target": {"type": "array", "description": "The 100 lowest, lowest first", "items": {"type": "object", "properties": {
                    "camera_id": {"type": "string"}, "name": {"type": "string"}, "district": {"type": "string"}, "point_type": {"type": "integer"},
                    "availability": {"type": "number"}, "target": {"type": "number"}, "state": r("State")}}},
                "offline_total": {"type": "integer", "description": "Enabled cameras offline now"},
                "offline_longest": {"type": "array", "description": "The 20 offline longest, longest first", "items": {"type": "object", "properties": {
                    "camera_id": {"type": "string"}, "name": {"type": "string"}, "district": {"type": "string"}, "point_type": {"type": "integer"},
                    "since": {"type": "string", "format": "date-time"}, "reason": {"type": ["string", "null"]}}}}}},
            "Timeline": {"type": "object", "properties": {"camera_id": {"type": "string"},
                "from": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"},
                "availability": {"type": ["number", "null"]}, "target": {"type": "number"}, "transitions": {"type": "integer"},
                "truncated": {"type": "boolean", "description": "More than 50,000 transitions: the timeline stops at the last one read"},
                "segments": {"type": "array", "items": {"type": "object", "properties": {"state": r("State"),
                    "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}, "reason": {"type": ["string", "null"]}}}}}},
            "Wall": {"type": "object", "properties": {"name": {"type": "string"}, "tiles": {"type": "integer", "enum": [1, 4, 9, 16]},
                "cameras": {"type": "array", "items": {"type": ["string", "null"]}, "description": "A camera ID or null per tile"},
                "updated_at": {"type": "string", "format": "date-time"}}}
    });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "camgate API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Camera catalogue of a city video network gateway. Errors are JSON: {\"error\": {\"code\", \"message\", \"field\"}}."
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process answers."}}}},
            "/readyz": {"get": {"summary": "Readiness: the database answers", "responses": {"200": {"description": "Ready."}, "503": {"description": "Database unavailable."}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1 document."}}}},
            "/api/v1/districts": {"get": {
                "summary": "Children of a district (provinces when no parent), or a name search",
                "parameters": [q("parent", "District code.", json!({"type": "string"})), q("q", "Name substring; cannot be combined with parent.", json!({"type": "string"})), limit.clone()],
                "responses": {"200": ok("Districts with camera counts over their whole subtree.", json!({"type": "object", "properties": {"items": {"type": "array", "items": r("District")}}})),
                              "400": err("Bad query."), "404": err("Unknown parent.")}}},
            "/api/v1/districts/{code}": {"get": {
                "summary": "One district with its path from the province",
                "parameters": [p("code", "District code; padded GB/T 2260 forms (620000, 620600) accepted.")],
                "responses": {"200": ok("The district.", r("DistrictDetail")), "404": err("Unknown district.")}}},
            "/api/v1/checkpoints": {
                "get": {"summary": "List checkpoints", "parameters": [q("district", "Subtree filter.", json!({"type": "string"})), q("q", "Substring of name, ID or address.", json!({"type": "string"})), limit.clone(), cursor.clone()],
                        "responses": {"200": ok("A page of checkpoints.", page("Checkpoint")), "400": err("Bad query.")}},
                "post": {"summary": "Create a checkpoint", "requestBody": {"required": true, "content": {"application/json": {"schema": r("CheckpointCreate")}}},
                         "responses": {"201": ok("Created.", r("Checkpoint")), "400": err("Malformed JSON."), "409": err("ID exists."), "415": err("Not JSON."), "422": err("Validation failed.")}}},
            "/api/v1/checkpoints/{id}": {
                "get": {"summary": "Get a checkpoint", "parameters": [p("id", "Checkpoint ID.")], "responses": {"200": ok("The checkpoint.", r("Checkpoint")), "404": err("Not found.")}},
                "patch": {"summary": "Change a checkpoint", "parameters": [p("id", "Checkpoint ID.")], "requestBody": {"required": true, "content": {"application/json": {"schema": r("CheckpointInput")}}},
                          "responses": {"200": ok("The changed checkpoint.", r("Checkpoint")), "400": err("Malformed JSON."), "404": err("Not found."), "422": err("Validation failed.")}},
                "delete": {"summary": "Delete a checkpoint that has no cameras", "parameters": [p("id", "Checkpoint ID.")],
                           "responses": {"204": {"description": "Deleted."}, "404": err("Not found."), "409": err("It still has cameras.")}}},
            "/api/v1/cameras": {
                "get": {"summary": "List cameras", "parameters": list_params,
                        "responses": {"200": ok("A page of cameras, ordered by ID.", page("Camera")), "400": err("Bad query.")}},
                "post": {"summary": "Create a camera", "requestBody": {"required": true, "content": {"application/json": {"schema": r("CameraCreate")}}},
                         "responses": {"201": ok("Created.", r("Camera")), "400": err("Malformed JSON."), "409": err("ID exists or no serial left."), "415": err("Not JSON."), "422": err("Validation failed.")}}},
            "/api/v1/cameras/{id}": {
                "get": {"summary": "Get a camera", "parameters": [p("id", "Camera ID.")], "responses": {"200": ok("The camera (never its password).", r("Camera")), "404": err("Not found.")}},
                "patch": {"summary": "Change a camera; absent fields keep their value, null clears", "parameters": [p("id", "Camera ID.")],
                          "requestBody": {"required": true, "content": {"application/json": {"schema": r("CameraInput")}}},
                          "responses": {"200": ok("The changed camera.", r("Camera")), "400": err("Malformed JSON."), "404": err("Not found."), "422": err("Validation failed.")}},
                "delete": {"summary": "Delete a camera", "parameters": [p("id", "Camera ID.")], "responses": {"204": {"description": "Deleted."}, "404": err("Not found.")}}},
            "/api/v1/cameras/import": {"post": {
                "summary": "Import cameras from CSV, all or nothing",
                "description": "UTF-8 CSV with or without BOM; English or Chinese headers (名称, 国标编码, 行政区划, 卡口, 点位类型, 权属, 行业编码, 地址, 经度, 纬度, RTSP地址, 用户名, 密码, 传输, 拉流方式, 启用, 标签). Rows with an existing ID update that camera; an empty password keeps the stored one.",
                "parameters": [q("dry_run", "Validate and report only.", json!({"type": "boolean", "default": false}))],
                "requestBody": {"required": true, "content": {"text/csv": {"schema": {"type": "string"}}}},
                "responses": {"200": ok("The report. On a dry run it may list errors; otherwise it has none.", r("ImportReport")),
                              "400": err("Bad query."), "413": err("Body over server.max_import_bytes."),
                              "422": err("Some rows are bad; nothing was imported. error.report lists every problem.")}}},
            "/api/v1/cameras/export": {"get": {
                "summary": "Export cameras as CSV (never passwords); the file imports back unchanged",
                "parameters": export_params,
                "responses": {"200": {"description": "CSV file.", "content": {"text/csv": {"schema": {"type": "string"}}}}, "400": err("Bad query.")}}}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message", "field"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]},
                "details": {"type": "array", "items": {"type": "object"}}, "report": r("ImportReport")}}}},
            "District": {"type": "object", "properties": {"code": {"type": "string"}, "name": {"type": "string"}, "level": {"type": "integer", "description": "1 province, 2 prefecture, 3 county, 4 township, 5 village"}, "camera_count": {"type": "integer"}, "online_count": {"type": "integer", "description": "Cameras in the subtree online or degraded now"}, "enabled_count": {"type": "integer", "description": "Enabled cameras in the subtree"}, "online_rate": {"type": ["number", "null"], "description": "online_count / enabled_count"}, "target": {"type": ["number", "null"], "description": "The mean availability target of the enabled cameras"}}},
            "DistrictDetail": {"type": "object", "properties": {"code": {"type": "string"}, "name": {"type": "string"}, "level": {"type": "integer"}, "parent": {"type": ["string", "null"]}, "camera_count": {"type": "integer"},
                "path": {"type": "array", "items": {"type": "object", "properties": {"code": {"type": "string"}, "name": {"type": "string"}, "level": {"type": "integer"}}}}}},
            "Checkpoint": checkpoint,
            "CheckpointInput": checkpoint_input,
            "CheckpointCreate": checkpoint_create,
            "Camera": camera,
            "CameraInput": camera_input,
            "CameraCreate": camera_create,
            "ImportReport": {"type": "object", "properties": {"dry_run": {"type": "boolean"}, "rows": {"type": "integer"}, "created": {"type": "integer"}, "updated": {"type": "integer"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {"line": {"type": "integer"}, "column": {"type": ["string", "null"]}, "column_index": {"type": ["integer", "null"]}, "code": {"type": "string"}, "message": {"type": "string"}}}}}}
        }}
    });
    doc["paths"]
        .as_object_mut()
        .unwrap()
        .extend(health_paths.as_object().unwrap().clone());
    // Access: every /api/v1 route but login needs a key or a session.
    doc["security"] = json!([{"apiKey": []}, {"session": []}]);
    doc["components"]["securitySchemes"] = json!({
        "apiKey": {"type": "http", "scheme": "bearer",
            "description": "An API key (`cgk_...`, from `camgate key create`): `Authorization: Bearer <key>`. Keys have a role and may have a district scope."},
        "session": {"type": "apiKey", "in": "cookie", "name": "camgate_session",
            "description": "The session cookie set by POST /api/v1/auth/login (HttpOnly, SameSite=Strict)."}
    });
    for path in ["/healthz", "/readyz"] {
        doc["paths"][path]["get"]["security"] = json!([]);
    }
    let login = json!({"type": "object", "required": ["username", "password"],
        "properties": {"username": {"type": "string"}, "password": {"type": "string", "writeOnly": true}}});
    doc["paths"]["/api/v1/auth/login"] = json!({"post": {
        "summary": "Log in: sets the session cookie",
        "security": [],
        "requestBody": {"required": true, "content": {"application/json": {"schema": login}}},
        "responses": {"200": {"description": "The user; the session cookie is set."},
                      "400": {"description": "Malformed JSON."},
                      "401": {"description": "Wrong username or password."},
                      "415": {"description": "Not JSON."},
                      "429": {"description": "Locked after repeated failures; Retry-After says for how long."}}}});
    doc["paths"]["/api/v1/auth/logout"] = json!({"post": {
        "summary": "End the session", "responses": {"204": {"description": "Ended; the cookie is cleared."}}}});
    doc["paths"]["/api/v1/auth/me"] = json!({"get": {
        "summary": "Who the caller is: principal, role and scope",
        "responses": {"200": {"description": "The caller."}, "401": {"description": "No valid key or session."}}}});
    let e = |d: &str| json!({"description": d});
    let j = |schema: Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    let role = json!({"type": "string", "enum": ["admin", "operator", "viewer"]});
    let scope = json!({"type": ["string", "null"], "description": "A district code (2, 4, 6, 9 or 12 digits) whose subtree is all the principal may see; null: everything"});
    doc["paths"]["/api/v1/users"] = json!({
        "get": {"summary": "Users (admin)", "responses": {"200": e("The users, without password hashes.")}},
        "post": {"summary": "Create a user (admin); without a password one is generated and shown once",
            "requestBody": j(json!({"type": "object", "required": ["username", "role"], "properties": {
                "username": {"type": "string"}, "password": {"type": "string", "writeOnly": true}, "role": role, "scope": scope}})),
            "responses": {"201": e("The user, and `password` when generated."), "400": e("A bad field."), "409": e("The username is taken."), "422": e("A scope outside the caller's.")}}});
    doc["paths"]["/api/v1/users/{username}"] = json!({"patch": {
        "summary": "Change a user's role, scope, password or disabled flag (admin); disabling ends the user's sessions and streams",
        "requestBody": j(json!({"type": "object", "properties": {"role": role, "scope": scope, "disabled": {"type": "boolean"}, "password": {"type": "string", "writeOnly": true}}})),
        "responses": {"200": e("The user."), "400": e("A bad field."), "404": e("No such user."), "422": e("A scope outside the caller's.")}}});
    doc["paths"]["/api/v1/keys"] = json!({
        "get": {"summary": "API keys (admin), without secrets", "responses": {"200": e("The keys.")}},
        "post": {"summary": "Create an API key (admin): the secret is shown once",
            "requestBody": j(json!({"type": "object", "required": ["name", "role"], "properties": {
                "name": {"type": "string"}, "role": role, "scope": scope, "expires_in_days": {"type": "integer", "minimum": 1}}})),
            "responses": {"201": e("`key` and `secret`."), "400": e("A bad field."), "422": e("A scope outside the caller's.")}}});
    doc["paths"]["/api/v1/keys/{id}"] = json!({"delete": {
        "summary": "Revoke a key (admin): refused from now on, its open streams end",
        "responses": {"204": e("Revoked."), "404": e("No such key.")}}});
    doc["paths"]["/api/v1/embed-links"] = json!({
        "get": {"summary": "Embed links of the caller's scope (their tokens are not shown again)", "responses": {"200": e("The links, with state active, expired or revoked.")}},
        "post": {"summary": "Create a signed embed link for one camera or a district subtree (operator)",
            "requestBody": j(json!({"type": "object", "properties": {
                "camera_id": {"type": "string"}, "district": {"type": "string"},
                "ttl_secs": {"type": "integer", "minimum": 60, "maximum": 31_622_400, "default": 86_400},
                "note": {"type": "string", "maxLength": 200}}})),
            "responses": {"201": e("The link, its `token`, and `urls` for the embed page, LL-HLS, RTSP and an iframe snippet (`{camera_id}` stands for the camera in a district link's URLs)."),
                          "400": e("Neither or both of camera_id and district, or a bad ttl."), "422": e("An unknown camera, or a district outside the caller's scope.")}}});
    doc["paths"]["/api/v1/embed-links/{id}"] = json!({"delete": {
        "summary": "Revoke an embed link (operator): refused at once; viewers watching through it are disconnected",
        "responses": {"204": e("Revoked."), "404": e("No such link in the caller's scope.")}}});
    doc["paths"]["/api/v1/audit"] = json!({"get": {
        "summary": "The audit trail (admin without a scope), newest first: view sessions (principal, camera, protocol, client, start, end, bytes) and changes (who, what, before, after; never secrets)",
        "parameters": [
            {"name": "camera", "in": "query", "schema": {"type": "string"}},
            {"name": "principal", "in": "query", "schema": {"type": "string"}, "description": "user:NAME, key:ID or link:ID"},
            {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time or a day"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": e("`items` and `next_cursor`."), "400": e("A bad parameter."), "403": e("Not an unscoped admin.")}}});
    doc["components"]["schemas"]
        .as_object_mut()
        .unwrap()
        .extend(health_schemas.as_object().unwrap().clone());
    doc
}
