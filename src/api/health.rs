//! Health routes: a camera's state, live stats and recent transitions.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::catalogue::rfc3339_ms;
use crate::catalogue::validate::clip;
use crate::health::State as HealthState;
use crate::store::TransitionRow;

/// Transitions shown with a camera's health.
const RECENT: i64 = 50;

pub fn transition_json(t: &TransitionRow) -> Value {
    json!({
        "id": t.id,
        "camera_id": t.camera_id,
        "district": t.district_code,
        "at": rfc3339_ms(t.at_ms),
        "from": t.from_state,
        "to": t.to_state,
        "reason": t.reason,
    })
}

/// `state` and `reason` of a camera now.
pub fn state_of(st: &AppState, id: &str) -> (HealthState, Option<crate::health::Reason>) {
    st.pulls
        .runtime(id)
        .map(|rt| {
            let (s, r, _, _) = rt.snapshot();
            (s, r)
        })
        .unwrap_or((HealthState::Unknown, None))
}

pub async fn camera_health(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cam = st
        .store
        .get_camera(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("camera {:?} does not exist", clip(&id))))?;
    let transitions = st.store.camera_transitions(&id, RECENT).await?;
    let (state, reason, since_ms, stats) = match st.pulls.runtime(&id) {
        Some(rt) => {
            let (s, r, since, stats) = rt.snapshot();
            (s, r, Some(since), Some(stats))
        }
        None => (
            if cam.enabled {
                HealthState::Unknown
            } else {
                HealthState::Disabled
            },
            None,
            None,
            None,
        ),
    };
    let viewers = st
        .pulls
        .runtime(&id)
        .map(|rt| rt.fanout.subscribers())
        .unwrap_or(0);
    Ok(Json(json!({
        "camera_id": cam.id,
        "state": state,
        "reason": reason,
        "since": since_ms.map(rfc3339_ms),
        "pulling": st.pulls.is_pulling(&id),
        "viewers": viewers,
        "stats": stats,
        "transitions": transitions.iter().map(transition_json).collect::<Vec<_>>(),
    })))
}
