//! The web UI's video-wall layouts, kept per user or key: `GET
//! /api/v1/me/walls`, `PUT` and `DELETE /api/v1/me/walls/{name}`. A layout
//! is a tile count and the camera of each tile; viewers may keep their own,
//! and a camera that later leaves the caller's scope just shows as not
//! permitted on its tile.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::catalogue::validate::FieldError;
use crate::catalogue::{now_ms, rfc3339_ms};

/// Tile counts a wall may have.
pub const TILES: [usize; 4] = [1, 4, 9, 16];
/// Layouts one principal may keep.
const MAX_WALLS: usize = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallInput {
    tiles: usize,
    cameras: Vec<Option<String>>,
}

fn wall_json(name: &str, layout: &str, at_ms: i64) -> Value {
    let mut v: Value = serde_json::from_str(layout).unwrap_or_else(|_| json!({}));
    v["name"] = json!(name);
    v["updated_at"] = json!(rfc3339_ms(at_ms));
    v
}

/// `GET /api/v1/me/walls`: the caller's layouts by name.
pub async fn list(State(st): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let rows = st.store.walls(&caller.0.label()).await?;
    Ok(Json(json!({
        "items": rows.iter().map(|(n, l, at)| wall_json(n, l, *at)).collect::<Vec<_>>(),
    })))
}

fn check(name: &str, w: &WallInput) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    let len = name.chars().count();
    if len == 0 || len > 64 || name.chars().any(char::is_control) {
        errs.push(FieldError::new(
            "name",
            "invalid_name",
            "a wall's name has 1 to 64 characters, none of them control characters",
        ));
    }
    if !TILES.contains(&w.tiles) {
        errs.push(FieldError::new(
            "tiles",
            "invalid_tiles",
            format!("tiles must be 1, 4, 9 or 16, got {}", w.tiles),
        ));
    } else if w.cameras.len() != w.tiles {
        errs.push(FieldError::new(
            "cameras",
            "invalid_cameras",
            format!(
                "cameras lists one camera ID (or null) per tile: {} tiles, {} given",
                w.tiles,
                w.cameras.len()
            ),
        ));
    }
    if w.cameras
        .iter()
        .flatten()
        .any(|c| c.is_empty() || c.len() > 64)
    {
        errs.push(FieldError::new(
            "cameras",
            "invalid_cameras",
            "each camera is a camera ID (1 to 64 characters) or null",
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errs))
    }
}

/// `PUT /api/v1/me/walls/{name}`: creates or replaces a layout.
pub async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(w): ApiJson<WallInput>,
) -> Result<Json<Value>, ApiError> {
    check(&name, &w)?;
    let owner = caller.0.label();
    let existing = st.store.walls(&owner).await?;
    if existing.len() >= MAX_WALLS && !existing.iter().any(|(n, _, _)| *n == name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_walls",
            format!("at most {MAX_WALLS} walls per user; delete one first"),
        )
        .field("name"));
    }
    let layout = json!({"tiles": w.tiles, "cameras": w.cameras}).to_string();
    let now = now_ms();
    st.store.put_wall(&owner, &name, &layout, now).await?;
    Ok(Json(wall_json(&name, &layout, now)))
}

/// `DELETE /api/v1/me/walls/{name}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if st.store.delete_wall(&caller.0.label(), &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "wall_not_found",
            "no wall of that name",
        ))
    }
}
