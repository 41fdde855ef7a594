//! Catalogue routes: districts, checkpoints, cameras, CSV import and export.

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, QueryPairs, body_bytes};
use crate::catalogue::csv::HeaderLang;
use crate::catalogue::district::{self, LEVEL_CODE_LEN};
use crate::catalogue::validate::{self, clip};
use crate::catalogue::{
    CameraInput, CameraView, CheckpointInput, CheckpointView, District, IdSpec, Ownership,
};
use crate::health::State as HealthState;
use crate::importer;
use crate::pull::PullConfig;
use crate::store::{CameraFilter, CheckpointFilter};

/// Default and largest page sizes.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Serialize)]
struct DistrictView {
    code: String,
    name: String,
    level: i64,
    camera_count: i64,
    /// Cameras in the subtree that are online or degraded now.
    online_count: i64,
    /// Enabled cameras in the subtree.
    enabled_count: i64,
    /// `online_count / enabled_count`, or null without enabled cameras.
    online_rate: Option<f64>,
    /// The mean availability target of the enabled cameras (by point
    /// class, `[health]`), or null without any.
    target: Option<f64>,
}

/// A camera with its health state now.
#[derive(Serialize)]
pub struct CameraOut {
    #[serde(flatten)]
    camera: CameraView,
    state: crate::health::State,
    reason: Option<crate::health::Reason>,
}

fn camera_out(st: &AppState, c: &crate::catalogue::Camera) -> CameraOut {
    let (state, reason) = super::health::state_of(st, &c.id);
    CameraOut {
        camera: CameraView::from(c),
        state,
        reason,
    }
}

/// Live counts of a district subtree, from the pull manager.
#[derive(Default, Clone, Copy)]
struct Live {
    online: i64,
    enabled: i64,
    target_sum: f64,
}

/// Online and enabled cameras now, and the sum of their targets, in the
/// subtree of each code.
fn live_counts(st: &AppState, codes: &[String]) -> std::collections::HashMap<String, Live> {
    let mut lens: Vec<usize> = codes.iter().map(String::len).collect();
    lens.sort_unstable();
    lens.dedup();
    let mut out: std::collections::HashMap<String, Live> =
        codes.iter().map(|c| (c.clone(), Live::default())).collect();
    st.pulls.for_each(|rt, cfg| {
        if !cfg.enabled {
            return;
        }
        let up = rt.state().is_up();
        let target = st.config.health.target(cfg.point_type);
        for &l in &lens {
            if cfg.district_code.len() >= l
                && let Some(n) = out.get_mut(&cfg.district_code[..l])
            {
                n.enabled += 1;
                n.target_sum += target;
                n.online += i64::from(up);
            }
        }
    });
    out
}

/// Resolves a district code as a user writes it (padded forms allowed).
pub(super) async fn resolve_district(
    st: &AppState,
    written: &str,
) -> Result<Option<District>, ApiError> {
    let cands = district::code_candidates(written);
    if cands.is_empty() {
        return Ok(None);
    }
    let found = st.store.districts_by_codes(&cands).await?;
    Ok(cands
        .iter()
        .find_map(|c| found.iter().find(|d| &d.code == c))
        .cloned())
}

async fn with_counts(st: &AppState, ds: Vec<District>) -> Result<Vec<DistrictView>, ApiError> {
    let codes: Vec<String> = ds.iter().map(|d| d.code.clone()).collect();
    let counts = st.store.camera_counts(&codes).await?;
    let live = live_counts(st, &codes);
    Ok(ds
        .into_iter()
        .map(|d| {
            let l = live.get(&d.code).copied().unwrap_or_default();
            let per = |x: f64| (l.enabled > 0).then(|| x / l.enabled as f64);
            DistrictView {
                camera_count: counts.get(&d.code).copied().unwrap_or(0),
                online_count: l.online,
                enabled_count: l.enabled,
                online_rate: per(l.online as f64),
                target: per(l.target_sum),
                code: d.code,
                name: d.name,
                level: d.level,
            }
        })
        .collect())
}

pub(super) fn limit(q: &QueryPairs) -> Result<i64, ApiError> {
    let l = q
        .parse_one::<i64>("limit", "a whole number from 1 to 1000")?
        .unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&l) {
        return Err(ApiError::bad_query(
            "limit",
            format!("limit must be from 1 to {MAX_LIMIT}, got {l}"),
        ));
    }
    Ok(l)
}

/// Cursors are the last ID of the previous page, hex-encoded so they are
/// opaque and URL-safe.
pub(super) fn encode_cursor(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Turns the `limit + 1` rows a list query fetched into a page: at most
/// `limit` items and, when there were more, the cursor of the next page.
fn page<T, V: Serialize>(
    mut rows: Vec<T>,
    limit: i64,
    id: impl for<'a> Fn(&'a T) -> &'a str,
    view: impl Fn(&T) -> V,
) -> Json<serde_json::Value> {
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(id(r)))
    } else {
        None
    };
    let items: Vec<V> = rows.iter().map(view).collect();
    Json(json!({ "items": items, "next_cursor": next }))
}

pub(super) fn decode_cursor(c: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_query("cursor", "cursor is not one this API returned");
    if !c.len().is_multiple_of(2) || c.len() > 256 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&c[i..i + 2], 16))
        .collect();
    String::from_utf8(bytes.map_err(|_| bad())?)
        .ok()
        .filter(|id| !id.contains('\0'))
        .ok_or_else(bad)
}

pub async fn list_districts(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = QueryPairs::parse(raw.as_deref(), &["parent", "q", "limit"])?;
    let parent = q.one("parent")?;
    let text = q.one("q")?;
    let items = match (parent, text) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_query(
                "q",
                "give either parent or q, not both",
            ));
        }
        (_, Some(text)) => {
            let lim = limit(&q)?;
            let mut found = st.store.search_districts(text.trim(), lim).await?;
            found.retain(|d| caller.sees(&d.code));
            with_counts(&st, found).await?
        }
        (Some(p), None) => {
            let d = resolve_district(&st, p)
                .await?
                .filter(|d| caller.sees(&d.code))
                .ok_or_else(|| {
                    ApiError::not_found(format!("district {:?} does not exist", clip(p)))
                        .field("parent")
                })?;
            with_counts(&st, st.store.district_children(Some(&d.code)).await?).await?
        }
        // A scoped caller's tree starts at its scope.
        (None, None) => match caller.0.scope.code() {
            Some(s) => {
                let root = st.store.districts_by_codes(&[s.to_string()]).await?;
                with_counts(&st, root).await?
            }
            None => with_counts(&st, st.store.district_children(None).await?).await?,
        },
    };
    Ok(Json(json!({ "items": items })))
}

pub async fn get_district(
    State(st): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let d = resolve_district(&st, &code)
        .await?
        .filter(|d| caller.sees(&d.code))
        .ok_or_else(|| ApiError::not_found(format!("district {:?} does not exist", clip(&code))))?;
    let ancestors: Vec<String> = LEVEL_CODE_LEN
        .iter()
        .filter(|&&l| l <= d.code.len())
        .map(|&l| d.code[..l].to_string())
        .collect();
    let mut path = st.store.districts_by_codes(&ancestors).await?;
    path.sort_by_key(|p| p.level);
    let parent = d.parent_code.clone();
    let view = with_counts(&st, vec![d]).await?.pop().expect("one");
    Ok(Json(json!({
        "code": view.code,
        "name": view.name,
        "level": view.level,
        "parent": parent,
        "camera_count": view.camera_count,
        "online_count": view.online_count,
        "enabled_count": view.enabled_count,
        "online_rate": view.online_rate,
        "target": view.target,
        "path": path.iter().map(|p| json!({"code": p.code, "name": p.name, "level": p.level})).collect::<Vec<_>>(),
    })))
}

// ---- checkpoints

pub async fn list_checkpoints(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = QueryPairs::parse(raw.as_deref(), &["district", "q", "limit", "cursor"])?;
    let mut filter = CheckpointFilter {
        q: q.one("q")?.map(str::to_string),
        district: None,
    };
    if let Some(d) = q.one("district")? {
        let d = resolve_district(&st, d).await?.ok_or_else(|| {
            ApiError::bad_query("district", format!("district {:?} does not exist", clip(d)))
        })?;
        filter.district = Some(d.code);
    }
    filter.district = caller.narrow(filter.district);
    let lim = limit(&q)?;
    let after = q.one("cursor")?.map(decode_cursor).transpose()?;
    let rows = st
        .store
        .list_checkpoints(&filter, after.as_deref(), lim + 1)
        .await?;
    Ok(page(rows, lim, |c| &c.id, |c| CheckpointView::from(c)))
}

pub async fn get_checkpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CheckpointView>, ApiError> {
    let cp = visible_checkpoint(&st, &caller, &id).await?;
    Ok(Json(CheckpointView::from(&cp)))
}

/// A checkpoint the caller may see; any other is "does not exist".
async fn visible_checkpoint(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::catalogue::Checkpoint, ApiError> {
    st.store
        .get_checkpoint(id)
        .await?
        .filter(|c| caller.sees(&c.district_code))
        .ok_or_else(|| ApiError::not_found(format!("checkpoint {:?} does not exist", clip(id))))
}

/// A camera the caller may see; any other is "does not exist", so IDs
/// outside a scope do not leak.
pub(super) async fn visible_camera(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::catalogue::Camera, ApiError> {
    st.store
        .get_camera(id)
        .await?
        .filter(|c| caller.sees(&c.district_code))
        .ok_or_else(|| ApiError::not_found(format!("camera {:?} does not exist", clip(id))))
}

pub async fn create_checkpoint(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<CheckpointInput>,
) -> Result<Response, ApiError> {
    let lk = importer::lookups(
        &*st.store,
        input.district_refs(),
        [],
        st.config.catalogue.id_network_flag,
    )
    .await?;
    let w = validate::checkpoint(&input, None, &lk).map_err(ApiError::validation)?;
    caller.may_write(&w.district_code, "district")?;
    let id = st.store.create_checkpoint(&w).await?;
    let cp = st
        .store
        .get_checkpoint(&id)
        .await?
        .ok_or_else(|| ApiError::internal("checkpoint vanished after create"))?;
    tracing::info!(checkpoint = %id, "created checkpoint");
    st.audit_change(
        &caller.0,
        "checkpoint.create",
        &format!("checkpoint:{id}"),
        None,
        None,
        Some(json!(CheckpointView::from(&cp))),
    )
    .await;
    Ok(created(
        &format!("/api/v1/checkpoints/{id}"),
        CheckpointView::from(&cp),
    ))
}

pub async fn update_checkpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CheckpointInput>,
) -> Result<Json<CheckpointView>, ApiError> {
    let existing = visible_checkpoint(&st, &caller, &id).await?;
    let lk = importer::lookups(
        &*st.store,
        input.district_refs(),
        [],
        st.config.catalogue.id_network_flag,
    )
    .await?;
    let w = validate::checkpoint(&input, Some(&existing), &lk).map_err(ApiError::validation)?;
    caller.may_write(&w.district_code, "district")?;
    st.store.update_checkpoint(&w).await?;
    let cp = st
        .store
        .get_checkpoint(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("checkpoint was deleted meanwhile"))?;
    tracing::info!(checkpoint = %id, "updated checkpoint");
    st.audit_change(
        &caller.0,
        "checkpoint.update",
        &format!("checkpoint:{id}"),
        None,
        Some(json!(CheckpointView::from(&existing))),
        Some(json!(CheckpointView::from(&cp))),
    )
    .await;
    Ok(Json(CheckpointView::from(&cp)))
}

pub async fn delete_checkpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let existing = visible_checkpoint(&st, &caller, &id).await?;
    st.store.delete_checkpoint(&id).await?;
    tracing::info!(checkpoint = %id, "deleted checkpoint");
    st.audit_change(
        &caller.0,
        "checkpoint.delete",
        &format!("checkpoint:{id}"),
        None,
        Some(json!(CheckpointView::from(&existing))),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- cameras

const CAMERA_FILTERS: [&str; 7] = [
    "q",
    "district",
    "checkpoint",
    "point_type",
    "ownership",
    "enabled",
    "tag",
];

async fn camera_filter(
    st: &AppState,
    caller: &Caller,
    q: &QueryPairs,
) -> Result<CameraFilter, ApiError> {
    let mut f = CameraFilter {
        q: q.one("q")?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        checkpoint: q.one("checkpoint")?.map(str::to_string),
        ..Default::default()
    };
    if let Some(d) = q.one("district")? {
        let d = resolve_district(st, d).await?.ok_or_else(|| {
            ApiError::bad_query("district", format!("district {:?} does not exist", clip(d)))
        })?;
        f.district = Some(d.code);
    }
    f.district = caller.narrow(f.district);
    if let Some(p) = q.parse_one::<i64>("point_type", "1, 2, 3 or 9")? {
        if !crate::catalogue::POINT_TYPES.contains(&p) {
            return Err(ApiError::bad_query(
                "point_type",
                format!("point_type must be 1, 2, 3 or 9, got {p}"),
            ));
        }
        f.point_type = Some(p);
    }
    if let Some(o) = q.one("ownership")? {
        f.ownership = Some(
            o.parse::<Ownership>()
                .map_err(|e| ApiError::bad_query("ownership", format!("ownership {e}")))?,
        );
    }
    f.enabled = q.parse_one::<bool>("enabled", "true or false")?;
    for t in q.all("tag") {
        let (k, v) = t.split_once(':').ok_or_else(|| {
            ApiError::bad_query("tag", format!("tag must be key:value, got {:?}", clip(t)))
        })?;
        f.tags.push((k.to_string(), v.to_string()));
    }
    Ok(f)
}

pub async fn list_cameras(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut allowed = CAMERA_FILTERS.to_vec();
    allowed.extend(["limit", "cursor", "state"]);
    let q = QueryPairs::parse(raw.as_deref(), &allowed)?;
    let mut filter = camera_filter(&st, &caller, &q).await?;
    let lim = limit(&q)?;
    let mut after = q.one("cursor")?.map(decode_cursor).transpose()?;
    let states = state_filter(&q)?;
    if states.is_empty() {
        let rows = st
            .store
            .list_cameras(&filter, after.as_deref(), lim + 1)
            .await?;
        return Ok(page(rows, lim, |c| &c.id, |c| camera_out(&st, c)));
    }
    // The state lives in memory, not in the database: find the IDs of the
    // page (and one more) first, in ID order, then read those cameras.
    let in_states = |id: &str| in_any(&st, &states, id);
    let mut found: Vec<String> = Vec::new();
    let few = if states.contains(&HealthState::Unknown) {
        None
    } else {
        st.pulls.ids_in(&states, 0.5)
    };
    if let Some(mut ids) = few {
        // Few cameras are in these states (offline, degraded, connecting
        // in a healthy network): ask the store which of them pass the other
        // filters, a batch at a time.
        if let Some(a) = &after {
            let from = ids.partition_point(|id| id.as_str() <= a.as_str());
            ids.drain(..from);
        }
        for chunk in ids.chunks(STATE_ID_BATCH) {
            filter.ids = Some(chunk.to_vec());
            let passing = st
                .store
                .list_camera_ids(&filter, None, chunk.len() as i64)
                .await?;
            found.extend(passing.into_iter().filter(|id| in_states(id)));
            if found.len() as i64 > lim {
                break;
            }
        }
    } else {
        // Most cameras are in them, or `unknown` is asked for: scan the
        // IDs passing the filters in ID order and keep those in the
        // states. The first batch is twice a page (enough when most
        // cameras match), then each is four times the last.
        let mut size = ((lim + 1) * 2).min(STATE_SCAN_BATCH);
        loop {
            let batch = st
                .store
                .list_camera_ids(&filter, after.as_deref(), size)
                .await?;
            let done = (batch.len() as i64) < size;
            after = batch.last().cloned();
            found.extend(batch.into_iter().filter(|id| in_states(id)));
            if done || found.len() as i64 > lim {
                break;
            }
            size = (size * 4).min(STATE_SCAN_BATCH);
        }
    }
    found.truncate(lim as usize + 1);
    let rows = if found.is_empty() {
        Vec::new()
    } else {
        filter.ids = Some(found);
        st.store.list_cameras(&filter, None, lim + 1).await?
    };
    Ok(page(rows, lim, |c| &c.id, |c| camera_out(&st, c)))
}

/// Whether the camera is in one of `states` now (the state its row shows).
fn in_any(st: &AppState, states: &[HealthState], id: &str) -> bool {
    states.contains(&super::health::state_of(st, id).0)
}

/// IDs asked about per query when few cameras are in the states.
const STATE_ID_BATCH: usize = 1000;

/// IDs read per batch at most when scanning for a state.
const STATE_SCAN_BATCH: i64 = 5000;

/// `state=online,degraded` (or repeated): the states asked for.
fn state_filter(q: &QueryPairs) -> Result<Vec<HealthState>, ApiError> {
    let mut out = Vec::new();
    for v in q.all("state") {
        for s in v.split(',').filter(|s| !s.is_empty()) {
            out.push(s.parse::<HealthState>().map_err(|_| {
                ApiError::bad_query(
                    "state",
                    format!(
                        "state must be one of unknown, connecting, online, degraded, offline, disabled; got {:?}",
                        clip(s)
                    ),
                )
            })?);
        }
    }
    Ok(out)
}

pub async fn get_camera(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CameraOut>, ApiError> {
    let cam = visible_camera(&st, &caller, &id).await?;
    Ok(Json(camera_out(&st, &cam)))
}

fn created<T: Serialize>(location: &str, body: T) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub async fn create_camera(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<CameraInput>,
) -> Result<Response, ApiError> {
    let lk = importer::lookups(
        &*st.store,
        input.district_refs(),
        input.checkpoint_refs(),
        st.config.catalogue.id_network_flag,
    )
    .await?;
    let w = validate::camera(&input, None, &lk).map_err(ApiError::validation)?;
    caller.may_write(&w.district_code, "district")?;
    let id = st.store.create_camera(&w).await?;
    let cam = st
        .store
        .get_camera(&id)
        .await?
        .ok_or_else(|| ApiError::internal("camera vanished after create"))?;
    tracing::info!(camera = %id, district = %cam.district_code, "created camera");
    st.audit_change(
        &caller.0,
        "camera.create",
        &format!("camera:{id}"),
        Some(&id),
        None,
        Some(json!(CameraView::from(&cam))),
    )
    .await;
    st.pulls.upsert(PullConfig::from_camera(&cam));
    Ok(created(
        &format!("/api/v1/cameras/{id}"),
        camera_out(&st, &cam),
    ))
}

pub async fn update_camera(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CameraInput>,
) -> Result<Json<CameraOut>, ApiError> {
    let existing = visible_camera(&st, &caller, &id).await?;
    let mut refs = input.district_refs();
    refs.push(existing.district_code.clone());
    if existing.id.len() >= 6 {
        refs.extend(district::code_candidates(&existing.id[..6]));
    }
    let lk = importer::lookups(
        &*st.store,
        refs,
        input.checkpoint_refs(),
        st.config.catalogue.id_network_flag,
    )
    .await?;
    let w = validate::camera(&input, Some(&existing), &lk).map_err(ApiError::validation)?;
    caller.may_write(&w.district_code, "district")?;
    debug_assert!(matches!(w.id, IdSpec::Given(_)));
    st.store.update_camera(&w).await?;
    let cam = st
        .store
        .get_camera(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("camera was deleted meanwhile"))?;
    tracing::info!(camera = %id, "updated camera");
    st.audit_change(
        &caller.0,
        "camera.update",
        &format!("camera:{id}"),
        Some(&id),
        Some(json!(CameraView::from(&existing))),
        Some(json!(CameraView::from(&cam))),
    )
    .await;
    st.pulls.upsert(PullConfig::from_camera(&cam));
    Ok(Json(camera_out(&st, &cam)))
}

pub async fn delete_camera(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let existing = visible_camera(&st, &caller, &id).await?;
    st.store.delete_camera(&id).await?;
    st.pulls.remove(&id);
    tracing::info!(camera = %id, "deleted camera");
    st.audit_change(
        &caller.0,
        "camera.delete",
        &format!("camera:{id}"),
        Some(&id),
        Some(json!(CameraView::from(&existing))),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn import_cameras(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let q = QueryPairs::parse(raw.as_deref(), &["dry_run", "encoding"])?;
    let dry_run = q
        .parse_one::<bool>("dry_run", "true or false")?
        .unwrap_or(false);
    let body = body_bytes(req, &()).await?;
    let (text, encoding) = crate::catalogue::csv::decode(&body, q.one("encoding")?)
        .map_err(|m| ApiError::bad_query("encoding", m))?;
    let mut report = importer::import_csv(
        &*st.store,
        &text,
        dry_run,
        st.config.catalogue.id_network_flag,
        caller.0.scope.code(),
        &|_, _, _| {},
    )
    .await?;
    report.encoding = encoding.to_string();
    if report.errors.is_empty() && !dry_run {
        crate::app::reconcile_from_store(&*st.store, &st.pulls, false)
            .await
            .map_err(ApiError::internal)?;
        st.audit_change(
            &caller.0,
            "camera.import",
            "cameras",
            None,
            None,
            Some(
                json!({"rows": report.rows, "created": report.created, "updated": report.updated}),
            ),
        )
        .await;
    }
    if !report.errors.is_empty() && !dry_run {
        let first = &report.errors[0];
        let message = format!(
            "{} problems in {} rows, nothing was imported; first: line {}{}: {}",
            report.errors.len(),
            report.bad_rows(),
            first.line,
            first
                .column
                .as_deref()
                .map(|c| format!(", column {c}"))
                .unwrap_or_default(),
            first.message
        );
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_rows", message)
                .with("report", json!(report)),
        );
    }
    Ok(Json(report).into_response())
}

pub async fn export_cameras(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut allowed = CAMERA_FILTERS.to_vec();
    allowed.extend(["format", "lang", "template", "state"]);
    let q = QueryPairs::parse(raw.as_deref(), &allowed)?;
    let states = state_filter(&q)?;
    let template = q
        .parse_one::<bool>("template", "true or false")?
        .unwrap_or(false);
    match q.one("format")? {
        None | Some("csv") => {}
        Some(other) => {
            return Err(ApiError::bad_query(
                "format",
                format!("format must be csv, got {:?}", clip(other)),
            ));
        }
    }
    let lang = q
        .one("lang")?
        .map(|l| l.parse::<HeaderLang>())
        .transpose()
        .map_err(|e| ApiError::bad_query("lang", format!("lang {e}")))?
        .unwrap_or(HeaderLang::En);
    let mut filter = camera_filter(&st, &caller, &q).await?;
    if template {
        // The header row alone: an import template in the chosen language.
        filter.district = Some(super::auth::NOWHERE.to_string());
    }
    // States live in memory, not in the store: filtered page by page.
    let keep = |c: &crate::catalogue::Camera| states.is_empty() || in_any(&st, &states, &c.id);
    let body = importer::export_csv(&*st.store, &filter, &keep, lang).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                if template {
                    "attachment; filename=\"cameras-template.csv\""
                } else {
                    "attachment; filename=\"cameras.csv\""
                },
            ),
        ],
        body,
    )
        .into_response())
}
