//! Validation of checkpoint and camera input, shared by the REST API and CSV
//! import so both give the same messages. Validation is pure: the districts
//! and checkpoints it needs are looked up beforehand into a [`Lookups`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer, Serialize};

use super::district::{self, District};
use super::gbid::{self, GbId};
use super::model::*;

/// One field's problem. `field` is the API field name (and the CSV column's
/// English header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            code,
            message: message.into(),
        }
    }
}

/// Shortens user text quoted in an error message.
pub fn clip(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Distinguishes a field that is absent (`None`) from one set to null
/// (`Some(None)`), for PATCH.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The message of a `null` given for a field that cannot be cleared; the
/// API answers it with 422 naming the field.
pub const NULL_REFUSED: &str = "must not be null (it cannot be cleared; leave it out to keep it)";

/// A field that may be left out but not given as `null`.
pub fn not_null<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    match Option::<T>::deserialize(d)? {
        None => Err(serde::de::Error::custom(NULL_REFUSED)),
        some => Ok(some),
    }
}

/// Camera fields as a user gives them (API body or CSV row). On create,
/// absent fields take their defaults; on PATCH they keep their stored value,
/// and `null` clears a nullable field.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraInput {
    #[serde(default, deserialize_with = "not_null")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub district: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub checkpoint: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub point_type: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    pub ownership: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub industry_code: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub longitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub latitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "not_null")]
    pub rtsp_url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub password: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub transport: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub pull_mode: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl CameraInput {
    /// District codes (as written) this input refers to, for [`Lookups`].
    pub fn district_refs(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(d) = &self.district {
            v.extend(district::code_candidates(d));
        }
        if let Some(id) = &self.id
            && id.len() >= 6
            && id.is_char_boundary(6)
        {
            v.extend(district::code_candidates(&id[..6]));
        }
        v
    }
    pub fn checkpoint_refs(&self) -> Option<String> {
        self.checkpoint
            .clone()
            .flatten()
            .map(|s| s.trim().to_string())
    }
}

/// Checkpoint fields as a user gives them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointInput {
    #[serde(default, deserialize_with = "not_null")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub district: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub longitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub latitude: Option<Option<f64>>,
}

impl CheckpointInput {
    pub fn district_refs(&self) -> Vec<String> {
        self.district
            .as_deref()
            .map(district::code_candidates)
            .unwrap_or_default()
    }
}

/// The districts and checkpoints validation may consult, fetched beforehand.
#[derive(Debug, Default, Clone)]
pub struct Lookups {
    pub districts: HashMap<String, District>,
    /// Checkpoint ID -> its district code.
    pub checkpoints: HashMap<String, String>,
    /// Network flag (0-8) for generated IDs.
    pub network_flag: u8,
}

impl Lookups {
    /// Resolves a user-written district code to a stored district.
    pub fn district(&self, written: &str) -> Option<&District> {
        district::code_candidates(written)
            .iter()
            .find_map(|c| self.districts.get(c))
    }
}

fn text(
    field: &'static str,
    v: &str,
    max: usize,
    required: bool,
    errs: &mut Vec<FieldError>,
) -> String {
    let t = v.trim();
    if required && t.is_empty() {
        errs.push(FieldError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    } else if t.chars().count() > max {
        errs.push(FieldError::new(
            field,
            "too_long",
            format!(
                "{field} must be at most {max} characters, got {}",
                t.chars().count()
            ),
        ));
    } else if t.chars().any(|c| c.is_control()) {
        errs.push(FieldError::new(
            field,
            "invalid",
            format!("{field} must not contain control characters"),
        ));
    }
    t.to_string()
}

fn coordinates(
    lon: Option<f64>,
    lat: Option<f64>,
    errs: &mut Vec<FieldError>,
) -> (Option<f64>, Option<f64>) {
    match (lon, lat) {
        (None, None) => (None, None),
        (Some(_), None) => {
            errs.push(FieldError::new(
                "latitude",
                "required",
                "latitude must be given with longitude",
            ));
            (None, None)
        }
        (None, Some(_)) => {
            errs.push(FieldError::new(
                "longitude",
                "required",
                "longitude must be given with latitude",
            ));
            (None, None)
        }
        (Some(x), Some(y)) => {
            let mut ok = true;
            if !x.is_finite() || !(-180.0..=180.0).contains(&x) {
                errs.push(FieldError::new(
                    "longitude",
                    "out_of_range",
                    format!("longitude must be between -180 and 180 (WGS-84 degrees), got {x}"),
                ));
                ok = false;
            }
            if !y.is_finite() || !(-90.0..=90.0).contains(&y) {
                let hint = if (-180.0..=180.0).contains(&y) && (-90.0..=90.0).contains(&x) {
                    "; are longitude and latitude swapped?"
                } else {
                    ""
                };
                errs.push(FieldError::new(
                    "latitude",
                    "out_of_range",
                    format!("latitude must be between -90 and 90 (WGS-84 degrees), got {y}{hint}"),
                ));
                ok = false;
            }
            if ok { (Some(x), Some(y)) } else { (None, None) }
        }
    }
}

fn parse_enum<T: std::str::FromStr<Err = String>>(
    field: &'static str,
    v: Option<&str>,
    default: Option<T>,
    errs: &mut Vec<FieldError>,
) -> Option<T> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            if default.is_none() {
                errs.push(FieldError::new(
                    field,
                    "required",
                    format!("{field} is required"),
                ));
            }
            default
        }
        Some(s) => match s.parse::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                errs.push(FieldError::new(field, "invalid", format!("{field} {e}")));
                default
            }
        },
    }
}

/// Validates a checkpoint ID given by a user.
fn checkpoint_id(v: &str, errs: &mut Vec<FieldError>) -> String {
    let t = v.trim();
    if t.is_empty()
        || t.len() > 32
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        errs.push(FieldError::new(
            "id",
            "invalid",
            "checkpoint id must be 1-32 characters of A-Z, a-z, 0-9, '-' or '_'",
        ));
    }
    t.to_string()
}

/// Validates a new checkpoint, or an update of `existing` when given.
pub fn checkpoint(
    input: &CheckpointInput,
    existing: Option<&Checkpoint>,
    lk: &Lookups,
) -> Result<CheckpointWrite, Vec<FieldError>> {
    let mut errs = Vec::new();
    let id = match (existing, &input.id) {
        (Some(e), Some(given)) if given.trim() != e.id => {
            errs.push(FieldError::new("id", "immutable", "id cannot be changed"));
            IdSpec::Given(e.id.clone())
        }
        (Some(e), _) => IdSpec::Given(e.id.clone()),
        (None, Some(given)) => IdSpec::Given(checkpoint_id(given, &mut errs)),
        (None, None) => IdSpec::Generate {
            prefix14: String::new(),
        },
    };
    let name = match (&input.name, existing) {
        (Some(n), _) => text("name", n, 100, true, &mut errs),
        (None, Some(e)) => e.name.clone(),
        (None, None) => text("name", "", 100, true, &mut errs),
    };
    let district_code = match (&input.district, existing) {
        (Some(d), _) => match lk.district(d) {
            Some(d) => d.code.clone(),
            None => {
                errs.push(unknown_district(d));
                String::new()
            }
        },
        (None, Some(e)) => e.district_code.clone(),
        (None, None) => {
            errs.push(FieldError::new(
                "district",
                "required",
                "district is required",
            ));
            String::new()
        }
    };
    let kind = parse_enum::<CheckpointKind>(
        "kind",
        input.kind.as_deref(),
        existing.map(|e| e.kind).or(Some(CheckpointKind::Other)),
        &mut errs,
    )
    .unwrap_or(CheckpointKind::Other);
    let address = match (&input.address, existing) {
        (Some(a), _) => text("address", a, 200, false, &mut errs),
        (None, Some(e)) => e.address.clone(),
        (None, None) => String::new(),
    };
    let lon = input
        .longitude
        .unwrap_or_else(|| existing.and_then(|e| e.longitude));
    let lat = input
        .latitude
        .unwrap_or_else(|| existing.and_then(|e| e.latitude));
    let (longitude, latitude) = coordinates(lon, lat, &mut errs);
    let id = match id {
        IdSpec::Generate { .. } if !district_code.is_empty() => IdSpec::Generate {
            prefix14: gbid::prefix14(
                &district::county_code6(&district_code),
                "00",
                gbid::GENERATED_CHECKPOINT_TYPE,
                lk.network_flag,
            ),
        },
        other => other,
    };
    if errs.is_empty() {
        Ok(CheckpointWrite {
            id,
            name,
            district_code,
            kind,
            address,
            longitude,
            latitude,
        })
    } else {
        Err(errs)
    }
}

fn unknown_district(written: &str) -> FieldError {
    FieldError::new(
        "district",
        "unknown_district",
        format!(
            "district {:?} is not a known GB/T 2260 or township/village code",
            clip(written)
        ),
    )
}

/// Whether one district code is the other or contains it.
fn same_branch(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Validates a new camera, or an update of `existing` when given.
pub fn camera(
    input: &CameraInput,
    existing: Option<&Camera>,
    lk: &Lookups,
) -> Result<CameraWrite, Vec<FieldError>> {
    let mut errs = Vec::new();

    let name = match (&input.name, existing) {
        (Some(n), _) => text("name", n, 100, true, &mut errs),
        (None, Some(e)) => e.name.clone(),
        (None, None) => text("name", "", 100, true, &mut errs),
    };

    let district = match (&input.district, existing) {
        (Some(d), _) => match lk.district(d) {
            Some(d) => Some(d.clone()),
            None => {
                errs.push(unknown_district(d));
                None
            }
        },
        (None, Some(e)) => lk.districts.get(&e.district_code).cloned().or_else(|| {
            Some(District {
                code: e.district_code.clone(),
                parent_code: district::parent_of(&e.district_code),
                name: e.district_name.clone(),
                level: district::level_of(&e.district_code).unwrap_or(3),
            })
        }),
        (None, None) => {
            errs.push(FieldError::new(
                "district",
                "required",
                "district is required",
            ));
            None
        }
    };

    let ownership = parse_enum::<Ownership>(
        "ownership",
        input.ownership.as_deref(),
        existing.map(|e| e.ownership),
        &mut errs,
    );

    // Industry code: given, else from the ID, else from ownership.
    let given_industry = input
        .industry_code
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(ind) = given_industry
        && (ind.len() != 2 || !ind.bytes().all(|b| b.is_ascii_digit()))
    {
        errs.push(FieldError::new(
            "industry_code",
            "invalid",
            format!(
                "industry_code must be 2 digits (GB/T 28181 industry code), got {:?}",
                clip(ind)
            ),
        ));
    }

    // ID: immutable on update; validated when given; generated otherwise.
    let mut industry: Option<String> = given_industry.map(str::to_string);
    let id = match (existing, input.id.as_deref().map(str::trim)) {
        (Some(e), Some(given)) if given != e.id => {
            errs.push(FieldError::new("id", "immutable", "id cannot be changed"));
            Some(IdSpec::Given(e.id.clone()))
        }
        (Some(e), _) => {
            check_id_against(
                &e.id,
                district.as_ref(),
                "district",
                &mut industry,
                existing,
                lk,
                &mut errs,
            );
            Some(IdSpec::Given(e.id.clone()))
        }
        (None, Some(given)) if !given.is_empty() => {
            check_id_against(
                given,
                district.as_ref(),
                "id",
                &mut industry,
                None,
                lk,
                &mut errs,
            );
            Some(IdSpec::Given(given.to_string()))
        }
        (None, _) => None,
    };
    let industry = industry
        .or_else(|| existing.map(|e| e.industry_code.clone()))
        .unwrap_or_else(|| match ownership {
            Some(Ownership::Social) => "01".to_string(),
            _ => "00".to_string(),
        });

    let point_type = match (input.point_type, existing) {
        (Some(p), _) => {
            if !POINT_TYPES.contains(&p) {
                errs.push(FieldError::new(
                    "point_type",
                    "invalid",
                    format!("point_type must be one of 1, 2, 3, 9 (GB/T 28181 PointType), got {p}"),
                ));
            }
            p
        }
        (None, Some(e)) => e.point_type,
        (None, None) => {
            errs.push(FieldError::new(
                "point_type",
                "required",
                "point_type is required: 1, 2, 3 or 9 (GB/T 28181 PointType)",
            ));
            0
        }
    };

    let checkpoint_id = match (&input.checkpoint, existing) {
        (Some(Some(cp)), _) if !cp.trim().is_empty() => {
            let cp = cp.trim();
            match lk.checkpoints.get(cp) {
                None => errs.push(FieldError::new(
                    "checkpoint",
                    "unknown_checkpoint",
                    format!("checkpoint {:?} does not exist", clip(cp)),
                )),
                Some(cp_district) => {
                    if let Some(d) = &district
                        && !same_branch(cp_district, &d.code)
                    {
                        errs.push(FieldError::new(
                            "checkpoint",
                            "district_mismatch",
                            format!(
                                "checkpoint {cp} is in district {cp_district}, which neither contains nor lies in the camera's district {}",
                                d.code
                            ),
                        ));
                    }
                }
            }
            Some(cp.to_string())
        }
        (Some(_), _) => None,
        (None, Some(e)) => e.checkpoint_id.clone(),
        (None, None) => None,
    };

    let address = match (&input.address, existing) {
        (Some(a), _) => text("address", a, 200, false, &mut errs),
        (None, Some(e)) => e.address.clone(),
        (None, None) => String::new(),
    };
    let lon = input
        .longitude
        .unwrap_or_else(|| existing.and_then(|e| e.longitude));
    let lat = input
        .latitude
        .unwrap_or_else(|| existing.and_then(|e| e.latitude));
    let (longitude, latitude) = coordinates(lon, lat, &mut errs);

    // Credentials: explicit fields, or moved out of the URL's userinfo.
    let mut username: Option<String> = match (&input.username, existing) {
        (Some(u), _) => u
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        (None, Some(e)) => e.username.clone(),
        (None, None) => None,
    };
    let mut password: Option<Secret> = match &input.password {
        Some(Some(p)) if !p.is_empty() => Some(Secret::new(p.clone())),
        _ => None,
    };
    // `"password": null` or `""` clears the stored password.
    let clear_password = matches!(&input.password, Some(None))
        || matches!(&input.password, Some(Some(p)) if p.is_empty());
    let rtsp_url = match (&input.rtsp_url, existing) {
        (Some(u), _) => {
            match rtsp_url(
                u,
                input.username.is_some(),
                input.password.is_some(),
                &mut errs,
            ) {
                Some((url, creds)) => {
                    if let Some((u, p)) = creds {
                        username = Some(u);
                        if let Some(p) = p {
                            password = Some(p);
                        }
                    }
                    url
                }
                None => String::new(),
            }
        }
        (None, Some(e)) => e.rtsp_url.clone(),
        (None, None) => {
            errs.push(FieldError::new(
                "rtsp_url",
                "required",
                "rtsp_url is required",
            ));
            String::new()
        }
    };
    if let Some(u) = &username
        && (u.chars().count() > 128 || u.chars().any(|c| c.is_control()))
    {
        errs.push(FieldError::new(
            "username",
            "invalid",
            "username must be at most 128 characters with no control characters",
        ));
    }
    if let Some(p) = &password
        && (p.expose().chars().count() > 128 || p.expose().chars().any(|c| c.is_control()))
    {
        // Never quote a password, not even its length.
        errs.push(FieldError::new(
            "password",
            "invalid",
            "password must be at most 128 characters with no control characters",
        ));
    }
    let has_password_after =
        password.is_some() || (!clear_password && existing.is_some_and(|e| e.password.is_some()));
    if has_password_after && username.is_none() {
        errs.push(FieldError::new(
            "username",
            "required",
            "username is required when a password is set",
        ));
    }

    let transport = parse_enum::<Transport>(
        "transport",
        input.transport.as_deref(),
        Some(existing.map(|e| e.transport).unwrap_or(Transport::Tcp)),
        &mut errs,
    )
    .unwrap_or(Transport::Tcp);
    let pull_mode = parse_enum::<PullMode>(
        "pull_mode",
        input.pull_mode.as_deref(),
        Some(existing.map(|e| e.pull_mode).unwrap_or(PullMode::OnDemand)),
        &mut errs,
    )
    .unwrap_or(PullMode::OnDemand);
    let enabled = input
        .enabled
        .unwrap_or_else(|| existing.is_none_or(|e| e.enabled));
    let tags = match (&input.tags, existing) {
        (Some(t), _) => tags(t, &mut errs),
        (None, Some(e)) => e.tags.clone(),
        (None, None) => BTreeMap::new(),
    };

    if !errs.is_empty() {
        return Err(errs);
    }
    let id = match (id, &district) {
        (Some(id), _) => id,
        (None, Some(d)) => IdSpec::Generate {
            prefix14: gbid::prefix14(
                &district::county_code6(&d.code),
                &industry,
                gbid::GENERATED_CAMERA_TYPE,
                lk.network_flag,
            ),
        },
        (None, None) => unreachable!("a missing district is a validation error"),
    };
    Ok(CameraWrite {
        id,
        name,
        district_code: district.map(|d| d.code).unwrap_or_default(),
        checkpoint_id,
        point_type,
        ownership: ownership.unwrap_or(Ownership::Public),
        industry_code: industry,
        address,
        longitude,
        latitude,
        rtsp_url,
        username,
        password,
        clear_password,
        transport,
        pull_mode,
        enabled,
        tags,
    })
}

/// Checks a camera ID against the camera's district. `blame` is the field
/// reported when they disagree: `id` when the ID was just given, `district`
/// when the district moved away from a stored ID.
fn check_id_against(
    id: &str,
    district: Option<&District>,
    blame: &'static str,
    industry: &mut Option<String>,
    existing: Option<&Camera>,
    lk: &Lookups,
    errs: &mut Vec<FieldError>,
) {
    let parsed = match GbId::parse(id) {
        Ok(p) => p,
        Err(e) => {
            errs.push(FieldError::new(
                "id",
                "invalid",
                format!("id {e} (GB/T 28181 rule A)"),
            ));
            return;
        }
    };
    if existing.is_none() && !gbid::CAMERA_TYPE_CODES.contains(&parsed.type_code()) {
        errs.push(FieldError::new(
            "id",
            "invalid_type",
            format!(
                "id type code (digits 11-13) must be a camera type ({}), got {}",
                gbid::CAMERA_TYPE_CODES.join(", "),
                parsed.type_code()
            ),
        ));
    }
    match industry {
        Some(given) if given != parsed.industry() => errs.push(FieldError::new(
            "industry_code",
            "id_mismatch",
            format!(
                "industry_code {given} does not match the id's industry digits {}",
                parsed.industry()
            ),
        )),
        Some(_) => {}
        None => *industry = Some(parsed.industry().to_string()),
    }
    let Some(id_district) = lk.district(parsed.county6()) else {
        errs.push(FieldError::new(
            "id",
            "unknown_district",
            format!(
                "id's first 6 digits {} are not a known GB/T 2260 code",
                parsed.county6()
            ),
        ));
        return;
    };
    if let Some(d) = district
        && !d.code.starts_with(&id_district.code)
    {
        errs.push(FieldError::new(
            blame,
            "id_district_mismatch",
            format!(
                "id's district {} ({}) does not contain the camera's district {} ({})",
                parsed.county6(),
                id_district.name,
                d.code,
                d.name
            ),
        ));
    }
}

/// Validates an RTSP URL. Credentials in the URL are moved out into the
/// username and password fields (so the stored URL has none); giving them in
/// both places is an error. Messages never quote the URL, which may hold a
/// password.
#[allow(clippy::type_complexity)]
fn rtsp_url(
    v: &str,
    username_given: bool,
    password_given: bool,
    errs: &mut Vec<FieldError>,
) -> Option<(String, Option<(String, Option<Secret>)>)> {
    let t = v.trim();
    if t.is_empty() {
        errs.push(FieldError::new(
            "rtsp_url",
            "required",
            "rtsp_url is required",
        ));
        return None;
    }
    if t.len() > 1024 {
        errs.push(FieldError::new(
            "rtsp_url",
            "too_long",
            "rtsp_url must be at most 1024 characters",
        ));
        return None;
    }
    let mut url = match url::Url::parse(t) {
        Ok(u) => u,
        Err(e) => {
            errs.push(FieldError::new(
                "rtsp_url",
                "invalid",
                format!("rtsp_url is not a valid URL: {e}"),
            ));
            return None;
        }
    };
    if url.scheme() != "rtsp" && url.scheme() != "rtsps" {
        errs.push(FieldError::new(
            "rtsp_url",
            "invalid",
            format!(
                "rtsp_url must start with rtsp:// or rtsps://, got {}://",
                clip(url.scheme())
            ),
        ));
        return None;
    }
    if url.host_str().is_none_or(str::is_empty) {
        errs.push(FieldError::new(
            "rtsp_url",
            "invalid",
            "rtsp_url has no host",
        ));
        return None;
    }
    let mut creds = None;
    if !url.username().is_empty() || url.password().is_some() {
        if username_given || password_given {
            errs.push(FieldError::new(
                "rtsp_url",
                "duplicate_credentials",
                "rtsp_url carries credentials and username/password are given too; give them in one place",
            ));
            return None;
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        // form_urlencoded turns '+' into ' '; RTSP userinfo is percent-encoded only.
        let decode = |s: &str| decode(&s.replace('+', "%2B"));
        let user = decode(url.username());
        let pass = url.password().map(|p| Secret::new(decode(p)));
        creds = Some((user, pass));
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    Some((url.to_string(), creds))
}

fn tags(t: &BTreeMap<String, String>, errs: &mut Vec<FieldError>) -> BTreeMap<String, String> {
    if t.len() > 32 {
        errs.push(FieldError::new(
            "tags",
            "too_many",
            "at most 32 tags per camera",
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in t {
        let k = k.trim();
        let v = v.trim();
        let bad_key = k.is_empty()
            || k.chars().count() > 64
            || k.chars().any(|c| c.is_control() || "=:;；".contains(c));
        let bad_value =
            v.chars().count() > 256 || v.chars().any(|c| c.is_control() || c == ';' || c == '；');
        if bad_key {
            errs.push(FieldError::new(
                "tags",
                "invalid",
                format!(
                    "tag key {:?} must be 1-64 characters without '=', ':' or ';'",
                    clip(k)
                ),
            ));
        } else if bad_value {
            errs.push(FieldError::new(
                "tags",
                "invalid",
                format!(
                    "tag {:?}: value must be at most 256 characters without ';'",
                    clip(k)
                ),
            ));
        } else {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}
