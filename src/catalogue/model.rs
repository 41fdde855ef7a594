//! Catalogue records (checkpoints and cameras) and the policy enums their
//! fields take. Enums parse from and print as the strings the API, CSV files
//! and config use; CSV files may also use the Chinese words operators write.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $canon:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every accepted canonical value, for error messages and docs.
            pub const ALL: &'static [&'static str] = &[$($canon),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $canon),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let t = s.trim();
                $(
                    if t.eq_ignore_ascii_case($canon) $(|| t == $alias)* { return Ok($name::$variant); }
                )+
                Err(format!("must be one of {}, got {:?}", Self::ALL.join(", "), crate::catalogue::validate::clip(t)))
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum!(
    /// Who owns the camera: public (公共探头) or social (社会探头, community,
    /// business or resident-built).
    Ownership { Public = "public" | "公共" | "公共视频", Social = "social" | "社会" | "社会资源" }
);
string_enum!(
    /// RTSP transport used to pull the camera.
    Transport { Tcp = "tcp", Udp = "udp" }
);
string_enum!(
    /// When the camera is pulled: only while someone watches, or always.
    PullMode { OnDemand = "on_demand" | "on-demand" | "按需" | "按需拉流", Always = "always" | "常驻" | "始终" | "持续拉流" }
);
string_enum!(
    /// GB/T 28181-2022 FunctionType of a checkpoint (卡口).
    CheckpointKind {
        Face = "01" | "face" | "人脸",
        Person = "02" | "person" | "人员",
        MotorVehicle = "03" | "motor_vehicle" | "机动车",
        NonMotorVehicle = "04" | "non_motor_vehicle" | "非机动车",
        Object = "05" | "object" | "物品",
        Other = "99" | "other" | "其他"
    }
);

/// GB/T 28181 PointType: the class of a camera's site (1, 2, 3 or 9).
pub const POINT_TYPES: [i64; 4] = [1, 2, 3, 9];

/// A string that must not be shown: Debug prints `***`, and it has no
/// Serialize, so it cannot end up in a response or a log line by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A checkpoint (卡口): a site with several cameras.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    pub id: String,
    pub name: String,
    pub district_code: String,
    pub kind: CheckpointKind,
    pub address: String,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub camera_count: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A camera as stored. The password is a [`Secret`]; responses use
/// [`CameraView`].
#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub district_code: String,
    pub district_name: String,
    pub checkpoint_id: Option<String>,
    pub point_type: i64,
    pub ownership: Ownership,
    pub industry_code: String,
    pub address: String,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub rtsp_url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub transport: Transport,
    pub pull_mode: PullMode,
    pub enabled: bool,
    pub tags: BTreeMap<String, String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What the API shows of a camera: everything but the password, which is
/// write-only and shown only as `has_password`.
#[derive(Debug, Clone, Serialize)]
pub struct CameraView {
    pub id: String,
    pub name: String,
    pub district: String,
    pub district_name: String,
    pub checkpoint: Option<String>,
    pub point_type: i64,
    pub ownership: Ownership,
    pub industry_code: String,
    pub address: String,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub rtsp_url: String,
    pub username: Option<String>,
    pub has_password: bool,
    pub transport: Transport,
    pub pull_mode: PullMode,
    pub enabled: bool,
    pub tags: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Camera> for CameraView {
    fn from(c: &Camera) -> Self {
        CameraView {
            id: c.id.clone(),
            name: c.name.clone(),
            district: c.district_code.clone(),
            district_name: c.district_name.clone(),
            checkpoint: c.checkpoint_id.clone(),
            point_type: c.point_type,
            ownership: c.ownership,
            industry_code: c.industry_code.clone(),
            address: c.address.clone(),
            longitude: c.longitude,
            latitude: c.latitude,
            rtsp_url: c.rtsp_url.clone(),
            username: c.username.clone(),
            has_password: c.password.is_some(),
            transport: c.transport,
            pull_mode: c.pull_mode,
            enabled: c.enabled,
            tags: c.tags.clone(),
            created_at: rfc3339_ms(c.created_at_ms),
            updated_at: rfc3339_ms(c.updated_at_ms),
        }
    }
}

/// A checkpoint as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    pub id: String,
    pub name: String,
    pub district: String,
    pub kind: CheckpointKind,
    pub address: String,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub camera_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Checkpoint> for CheckpointView {
    fn from(c: &Checkpoint) -> Self {
        CheckpointView {
            id: c.id.clone(),
            name: c.name.clone(),
            district: c.district_code.clone(),
            kind: c.kind,
            address: c.address.clone(),
            longitude: c.longitude,
            latitude: c.latitude,
            camera_count: c.camera_count,
            created_at: rfc3339_ms(c.created_at_ms),
            updated_at: rfc3339_ms(c.updated_at_ms),
        }
    }
}

/// How a new record gets its ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    /// Given by the user and already validated.
    Given(String),
    /// To be generated: the next free serial after this 14-digit prefix.
    Generate { prefix14: String },
}

/// A validated camera ready to be written. `password: None` on an update
/// keeps the stored password; `clear_password` removes it.
#[derive(Debug, Clone)]
pub struct CameraWrite {
    pub id: IdSpec,
    pub name: String,
    pub district_code: String,
    pub checkpoint_id: Option<String>,
    pub point_type: i64,
    pub ownership: Ownership,
    pub industry_code: String,
    pub address: String,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub rtsp_url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub clear_password: bool,
    pub transport: Transport,
    pub pull_mode: PullMode,
    pub enabled: bool,
    pub tags: BTreeMap<String, String>,
}

/// A validated checkpoint ready to be written.
#[derive(Debug, Clone)]
pub struct CheckpointWrite {
    pub id: IdSpec,
    pub name: String,
    pub district_code: String,
    pub kind: CheckpointKind,
    pub address: String,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats Unix milliseconds as RFC 3339 UTC (`2026-11-22T02:30:00.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_aliases_and_print_canonical() {
        assert_eq!("社会".parse::<Ownership>().unwrap(), Ownership::Social);
        assert_eq!("PUBLIC".parse::<Ownership>().unwrap(), Ownership::Public);
        assert_eq!("按需".parse::<PullMode>().unwrap(), PullMode::OnDemand);
        assert_eq!(PullMode::OnDemand.to_string(), "on_demand");
        assert_eq!(
            "机动车".parse::<CheckpointKind>().unwrap(),
            CheckpointKind::MotorVehicle
        );
        assert_eq!(CheckpointKind::Other.as_str(), "99");
        let e = "sctp".parse::<Transport>().unwrap_err();
        assert!(e.contains("tcp, udp"), "{e}");
    }

    #[test]
    fn secret_debug_hides() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
    }

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_500), "1970-01-01T00:00:01.5Z");
    }
}
