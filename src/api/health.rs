//! Health routes: a camera's state, live stats and recent transitions; the
//! KPI summary of a district (online rate now, availability of a day); the
//! stored transitions, paged.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::catalogue::{decode_cursor, encode_cursor, limit, resolve_district, visible_camera};
use super::error::ApiError;
use super::extract::QueryPairs;
use crate::catalogue::validate::clip;
use crate::catalogue::{now_ms, rfc3339_ms};
use crate::health::State as HealthState;
use crate::health::kpi::{self, Change, Uptime};
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
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cam = visible_camera(&st, &caller, &id).await?;
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

/// Cameras listed under `below_target`, at most.
const BELOW_TARGET_SHOWN: usize = 100;

/// Counts and rates of one group of cameras (a district, a point class).
#[derive(Default)]
struct Group {
    total: i64,
    enabled: i64,
    online: i64,
    uptime: Uptime,
    target_sum: f64,
}

impl Group {
    fn add(&mut self, enabled: bool, up_now: bool, uptime: Uptime, target: f64) {
        self.total += 1;
        if enabled {
            self.enabled += 1;
            self.target_sum += target;
            if up_now {
                self.online += 1;
            }
        }
        self.uptime.add(uptime);
    }

    /// `target` is the group's own (a point class), or `None` for the mean
    /// of its enabled cameras' targets (a district mixing classes).
    fn json(&self, target: Option<f64>) -> Value {
        let target =
            target.or_else(|| (self.enabled > 0).then(|| self.target_sum / self.enabled as f64));
        let availability = self.uptime.availability();
        json!({
            "total": self.total,
            "enabled": self.enabled,
            "online": self.online,
            "online_rate": (self.enabled > 0).then(|| self.online as f64 / self.enabled as f64),
            "availability": availability,
            "observed_secs": self.uptime.observed_ms / 1000,
            "target": target,
            "meets_target": availability.zip(target).map(|(a, t)| a >= t),
        })
    }
}

fn changes_of(rows: &[TransitionRow]) -> HashMap<&str, Vec<Change>> {
    let mut out: HashMap<&str, Vec<Change>> = HashMap::new();
    for r in rows {
        // A state this build does not know counts as not observed.
        let parse = |s: &str| s.parse::<HealthState>().unwrap_or(HealthState::Unknown);
        out.entry(r.camera_id.as_str()).or_default().push(Change {
            at_ms: r.at_ms,
            from: parse(&r.from_state),
            to: parse(&r.to_state),
        });
    }
    out
}

/// The day a query names (`YYYY-MM-DD`), today when absent.
fn day_param(q: &QueryPairs, offset: time::UtcOffset) -> Result<time::Date, ApiError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    match q.one("day")? {
        None => Ok(kpi::day_of(now_ms(), offset)),
        Some(d) => time::Date::parse(d, &fmt).map_err(|_| {
            ApiError::bad_query("day", format!("day must be YYYY-MM-DD, got {:?}", clip(d)))
        }),
    }
}

/// `GET /api/v1/health/summary?district=CODE&day=YYYY-MM-DD`: counts, the
/// online rate now and the day's availability for the district, each child
/// district and each point class, and the cameras below their target.
pub async fn summary(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = QueryPairs::parse(raw.as_deref(), &["district", "day"])?;
    let hc = &st.config.health;
    let offset = hc.offset();
    let day = day_param(&q, offset)?;
    let (start, end) = kpi::day_bounds_ms(day, offset);
    let now = now_ms();
    if start > now {
        return Err(ApiError::bad_query(
            "day",
            format!("{day} has not begun yet (days are at UTC{})", hc.utc_offset),
        ));
    }
    let until = end.min(now);
    let district = match q.one("district")? {
        Some(d) => Some(
            resolve_district(&st, d)
                .await?
                .filter(|x| caller.sees(&x.code))
                .ok_or_else(|| {
                    ApiError::not_found(format!("district {:?} does not exist", clip(d)))
                        .field("district")
                })?,
        ),
        // A scoped caller's summary is of its scope.
        None => match caller.0.scope.code() {
            Some(s) => Some(resolve_district(&st, s).await?.ok_or_else(|| {
                ApiError::not_found(format!("your scope's district {s} does not exist"))
            })?),
            None => None,
        },
    };
    let code = district.as_ref().map(|d| d.code.as_str());
    let cams = st.store.camera_keys(code).await?;
    let (before, during) = st.store.window_transitions(code, start, until).await?;
    let before: HashMap<&str, Change> = changes_of(&before)
        .into_iter()
        .filter_map(|(k, v)| v.last().copied().map(|c| (k, c)))
        .collect();
    let during = changes_of(&during);
    let children = st.store.district_children(code).await?;

    let mut whole = Group::default();
    let mut by_child: Vec<Group> = children.iter().map(|_| Group::default()).collect();
    let mut by_class: BTreeMap<i64, Group> = [1, 2, 3, 9].map(|c| (c, Group::default())).into();
    let mut below = Vec::new();
    let mut offline = Vec::new();
    for c in &cams {
        let target = hc.target(c.point_type);
        let up_now = c.enabled && state_of(&st, &c.id).0.is_up();
        if c.enabled
            && let Some(rt) = st.pulls.runtime(&c.id)
            && let (HealthState::Offline, reason, since, _) = rt.snapshot()
        {
            offline.push((since, c, reason));
        }
        let u = kpi::uptime(
            before.get(c.id.as_str()).copied(),
            during.get(c.id.as_str()).map(Vec::as_slice).unwrap_or(&[]),
            start,
            until,
        );
        whole.add(c.enabled, up_now, u, target);
        by_class
            .entry(c.point_type)
            .or_default()
            .add(c.enabled, up_now, u, target);
        if let Some(i) = children
            .iter()
            .position(|d| c.district_code.starts_with(&d.code))
        {
            by_child[i].add(c.enabled, up_now, u, target);
        }
        if let Some(a) = u.availability()
            && c.enabled
            && a < target
        {
            below.push((a, c, target));
        }
    }
    below.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    offline.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let below_total = below.len();
    let mut head = match &district {
        Some(d) => json!({"code": d.code, "name": d.name, "level": d.level}),
        None => json!({"code": null, "name": null, "level": 0}),
    };
    merge(&mut head, whole.json(None));
    Ok(Json(json!({
        "day": day.to_string(),
        "utc_offset": hc.utc_offset,
        "observed_until": rfc3339_ms(until),
        "district": head,
        "children": children.iter().zip(&by_child).map(|(d, g)| {
            let mut v = json!({"code": d.code, "name": d.name, "level": d.level});
            merge(&mut v, g.json(None));
            v
        }).collect::<Vec<_>>(),
        "point_classes": by_class.iter().map(|(pt, g)| {
            let mut v = json!({"point_type": pt});
            merge(&mut v, g.json(Some(hc.target(*pt))));
            v
        }).collect::<Vec<_>>(),
        "below_target_total": below_total,
        "below_target": below.iter().take(BELOW_TARGET_SHOWN).map(|(a, c, t)| json!({
            "camera_id": c.id,
            "name": c.name,
            "district": c.district_code,
            "point_type": c.point_type,
            "availability": a,
            "target": t,
            "state": state_of(&st, &c.id).0,
        })).collect::<Vec<_>>(),
        "offline_total": offline.len(),
        "offline_longest": offline.iter().take(OFFLINE_SHOWN).map(|(since, c, reason)| json!({
            "camera_id": c.id,
            "name": c.name,
            "district": c.district_code,
            "point_type": c.point_type,
            "since": rfc3339_ms(*since),
            "reason": reason,
        })).collect::<Vec<_>>(),
    })))
}

/// Cameras listed under `offline_longest`, at most.
const OFFLINE_SHOWN: usize = 20;

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// The `district` parameter of a list, narrowed to the caller's scope
/// (the `NOWHERE` code when outside it).
async fn district_filter(
    st: &AppState,
    caller: &Caller,
    q: &QueryPairs,
) -> Result<Option<String>, ApiError> {
    let district = match q.one("district")? {
        Some(d) => Some(
            resolve_district(st, d)
                .await?
                .ok_or_else(|| {
                    ApiError::bad_query(
                        "district",
                        format!("district {:?} does not exist", clip(d)),
                    )
                })?
                .code,
        ),
        None => None,
    };
    Ok(caller.narrow(district))
}

/// `GET /api/v1/health/events?district=&since=&limit=&cursor=`: stored
/// transitions, oldest first, paged by cursor.
pub async fn events(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = QueryPairs::parse(raw.as_deref(), &["district", "since", "limit", "cursor"])?;
    let district = district_filter(&st, &caller, &q).await?;
    let since = since_param(&q, st.config.health.offset())?;
    let lim = limit(&q)?;
    let after = id_cursor(&q)?;
    let mut rows = st
        .store
        .list_transitions(district.as_deref(), since, after, lim + 1)
        .await?;
    let next = if rows.len() as i64 > lim {
        rows.truncate(lim as usize);
        rows.last().map(|r| encode_cursor(&r.id.to_string()))
    } else {
        None
    };
    Ok(Json(json!({
        "items": rows.iter().map(transition_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// An RFC 3339 time, or a day (its start at the configured offset).
/// The `since` parameter (RFC 3339 or a day at `offset`) as Unix ms.
pub(super) fn since_param(
    q: &QueryPairs,
    offset: time::UtcOffset,
) -> Result<Option<i64>, ApiError> {
    let Some(s) = q.one("since")? else {
        return Ok(None);
    };
    parse_since(s, offset).map(Some).ok_or_else(|| {
        ApiError::bad_query(
            "since",
            format!(
                "since must be an RFC 3339 time (2026-03-01T08:00:00+08:00) or a day (2026-03-01), got {:?}",
                clip(s)
            ),
        )
    })
}

/// The `cursor` parameter of a list paged by numeric row ID.
pub(super) fn id_cursor(q: &QueryPairs) -> Result<Option<i64>, ApiError> {
    let Some(c) = q.one("cursor")? else {
        return Ok(None);
    };
    decode_cursor(c)?
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::bad_query("cursor", "cursor is not one this API returned"))
}

fn parse_since(s: &str, offset: time::UtcOffset) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt).ok()?;
    Some(kpi::day_bounds_ms(d, offset).0)
}

/// Transitions read for one timeline, at most (a camera flapping every
/// minute for a month).
const TIMELINE_MAX: i64 = 50_000;

/// `GET /api/v1/cameras/{id}/timeline?hours=24`: the camera's states over
/// the last `hours` (1 to 744) as segments, and its availability there.
pub async fn camera_timeline(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = QueryPairs::parse(raw.as_deref(), &["hours"])?;
    let hours = q
        .parse_one::<i64>("hours", "a whole number of hours from 1 to 744")?
        .unwrap_or(24);
    if !(1..=744).contains(&hours) {
        return Err(ApiError::bad_query(
            "hours",
            format!("hours must be from 1 to 744 (31 days), got {hours}"),
        ));
    }
    let cam = visible_camera(&st, &caller, &id).await?;
    let until = now_ms();
    let start = until - hours * 3_600_000;
    let (before, during) = st
        .store
        .camera_window(&cam.id, start, until, TIMELINE_MAX)
        .await?;
    let parse = |s: &str| s.parse::<HealthState>().unwrap_or(HealthState::Unknown);
    let change = |r: &TransitionRow| Change {
        at_ms: r.at_ms,
        from: parse(&r.from_state),
        to: parse(&r.to_state),
    };
    let changes: Vec<Change> = during.iter().map(change).collect();
    let uptime = kpi::uptime(before.as_ref().map(change), &changes, start, until);
    // Segments: the state before the window, then each change's state.
    let mut segments: Vec<(HealthState, i64, i64, Option<String>)> = Vec::new();
    let mut state = before
        .as_ref()
        .map_or(HealthState::Unknown, |b| parse(&b.to_state));
    let mut reason = before.as_ref().and_then(|b| b.reason.clone());
    let mut at = start;
    for r in &during {
        if r.at_ms > at {
            segments.push((state, at, r.at_ms, reason.clone()));
        }
        state = parse(&r.to_state);
        reason = r.reason.clone();
        at = r.at_ms.max(at);
    }
    if until > at {
        segments.push((state, at, until, reason));
    }
    // Join neighbours in the same state (a reason change while offline).
    let mut joined: Vec<(HealthState, i64, i64, Option<String>)> = Vec::new();
    for seg in segments {
        match joined.last_mut() {
            Some(last) if last.0 == seg.0 => last.2 = seg.2,
            _ => joined.push(seg),
        }
    }
    Ok(Json(json!({
        "camera_id": cam.id,
        "from": rfc3339_ms(start),
        "until": rfc3339_ms(until),
        "availability": uptime.availability(),
        "target": st.config.health.target(cam.point_type),
        "transitions": during.len(),
        "truncated": during.len() as i64 >= TIMELINE_MAX,
        "segments": joined.iter().map(|(s, a, b, r)| json!({
            "state": s,
            "from": rfc3339_ms(*a),
            "to": rfc3339_ms(*b),
            "reason": r,
        })).collect::<Vec<_>>(),
    })))
}

/// A live stream ends after this; `EventSource` reconnects by itself, and
/// the reconnection checks the credentials again.
const STREAM_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// `GET /api/v1/health/stream?district=CODE`: camera state changes in the
/// caller's scope as Server-Sent Events, as they are recorded. Events:
/// `transition` (the JSON of a stored transition, without its id) and
/// `lagged` (changes were missed: reload what is shown).
pub async fn stream(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event, KeepAlive, Sse};
    let q = QueryPairs::parse(raw.as_deref(), &["district"])?;
    let district = district_filter(&st, &caller, &q).await?;
    let rx = st.pulls.changes();
    let pulls = st.pulls.clone();
    let deadline = tokio::time::Instant::now() + STREAM_FOR;
    let events = futures_util::stream::unfold(rx, move |mut rx| {
        let (pulls, district) = (pulls.clone(), district.clone());
        async move {
            loop {
                let got = tokio::time::timeout_at(deadline, rx.recv()).await.ok()?;
                let event = match got {
                    Ok(t) => {
                        let Some(code) = pulls.config(&t.camera_id).map(|c| c.district_code) else {
                            continue;
                        };
                        if district.as_deref().is_some_and(|d| !code.starts_with(d)) {
                            continue;
                        }
                        Event::default().event("transition").data(
                            json!({
                                "camera_id": t.camera_id,
                                "district": code,
                                "at": rfc3339_ms(t.at_ms),
                                "from": t.from,
                                "to": t.to,
                                "reason": t.reason,
                            })
                            .to_string(),
                        )
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => Event::default()
                        .event("lagged")
                        .data(json!({ "missed": n }).to_string()),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok::<_, std::convert::Infallible>(event), rx));
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
