//! Configuration: defaults, then the TOML file, then `CAMGATE__SECTION__KEY`
//! environment variables, then one [`Config::validate`] whose errors name the
//! key. Unknown keys are errors, so a typo never falls back to a default
//! silently. Every key is documented, with its default, in
//! `config/camgate.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database and other state.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub catalogue: CatalogueConfig,
    pub pull: PullConfig,
    pub health: HealthConfig,
    pub metrics: MetricsConfig,
    pub webhooks: WebhooksConfig,
    pub relay: RelayConfig,
    pub security: SecurityConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listener: REST API, web UI, embed pages.
    pub listen: String,
    /// Largest accepted CSV import body.
    pub max_import_bytes: u64,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace_secs: u64,
    /// The address clients reach the gateway at (`https://video.example`),
    /// used in embed-link URLs. Empty: the listen address (with this
    /// machine's host name when it listens on every interface). Never the
    /// request's `Host` header, which the client chooses.
    pub public_url: String,
    /// A client must send a whole request head within this long, on a new
    /// connection and between requests of a kept-alive one.
    pub header_read_timeout_secs: u64,
    /// Open HTTP connections at most, in total.
    pub max_connections: usize,
    /// Open HTTP connections at most from one client address.
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST/DB`; empty means
    /// `sqlite://<data_dir>/camgate.db`.
    pub url: String,
    pub max_connections: u32,
    /// SQLite only: how long a writer waits for the lock.
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter (`info`, `camgate=debug,sqlx=warn`); `RUST_LOG` wins.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueConfig {
    /// GB/T 28181 network flag (15th digit, 0-8) of generated IDs.
    pub id_network_flag: u8,
    /// Load the built-in district table (province..township) on first start.
    pub load_builtin_districts: bool,
}

/// Pulling and its health rules.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullConfig {
    /// Limit on connecting and DESCRIBE/SETUP/PLAY.
    pub open_timeout_secs: u64,
    /// Limit on the first frame after PLAY.
    pub first_frame_timeout_secs: u64,
    /// No frame for this long: offline/stalled and reconnect.
    pub stall_secs: u64,
    /// An on-demand pull stops this long after its last viewer left.
    pub idle_close_secs: u64,
    /// Retry delays double from 1 s up to this.
    pub backoff_max_secs: u64,
    /// First connects after start are spread over this window.
    pub start_spread_secs: u64,
    /// The catalogue is re-read this often (changes made by other nodes or
    /// the CLI); changes through this node's API apply at once.
    pub reconcile_secs: u64,
    /// Degraded when no key frame arrives for this long.
    pub max_key_frame_interval_secs: u64,
    /// Frames a viewer may have queued before it skips to the next key frame.
    pub viewer_queue_frames: usize,
    /// A viewer behind for this long is disconnected.
    pub viewer_lag_limit_secs: u64,
    /// Longest wait for one reply of a camera (DESCRIBE, SETUP, PLAY).
    /// A reply that has begun but is not whole by then is
    /// `offline/protocol_error`; one that never began is `offline/timeout`.
    pub reply_timeout_secs: u64,
    /// Largest status line plus headers of a camera's reply, in bytes.
    pub max_reply_head_bytes: usize,
    /// Most header lines in a camera's reply.
    pub max_reply_header_lines: usize,
    /// Largest body (the SDP) of a camera's reply, in bytes.
    pub max_reply_body_bytes: usize,
    /// Largest video frame (access unit), in bytes; a larger one is
    /// `offline/protocol_error`.
    pub max_frame_bytes: usize,
    /// Most RTP packets of one frame: packets without an end (no marker,
    /// no new timestamp) beyond this are `offline/protocol_error`.
    pub max_frame_packets: usize,
    /// Largest GOP cache of a camera, in bytes (a longer GOP is not cached;
    /// a new viewer then waits for the next key frame).
    pub gop_cache_bytes: usize,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            open_timeout_secs: 10,
            first_frame_timeout_secs: 10,
            stall_secs: 5,
            idle_close_secs: 30,
            backoff_max_secs: 60,
            start_spread_secs: 10,
            reconcile_secs: 60,
            max_key_frame_interval_secs: 20,
            viewer_queue_frames: 256,
            viewer_lag_limit_secs: 5,
            reply_timeout_secs: 5,
            max_reply_head_bytes: crate::pull::rtsp::wire::Limits::DEFAULT.head_bytes,
            max_reply_header_lines: crate::pull::rtsp::wire::Limits::DEFAULT.header_lines,
            max_reply_body_bytes: crate::pull::rtsp::wire::Limits::DEFAULT.body_bytes,
            max_frame_bytes: crate::pull::rtsp::video::FrameLimits::DEFAULT.max_bytes,
            max_frame_packets: crate::pull::rtsp::video::FrameLimits::DEFAULT.max_packets,
            gop_cache_bytes: crate::fanout::FanoutOptions::default().gop_cache_bytes,
        }
    }
}

impl PullConfig {
    pub fn options(&self) -> crate::pull::PullOptions {
        use std::time::Duration;
        let s = Duration::from_secs;
        crate::pull::PullOptions {
            open_timeout: s(self.open_timeout_secs),
            first_frame_timeout: s(self.first_frame_timeout_secs),
            stall: s(self.stall_secs),
            backoff_initial: s(1),
            backoff_max: s(self.backoff_max_secs),
            backoff_reset_after: s(60),
            idle_close: s(self.idle_close_secs),
            start_spread: s(self.start_spread_secs),
            degraded: crate::health::DegradedRule {
                max_key_frame_interval: s(self.max_key_frame_interval_secs),
                ..Default::default()
            },
            fanout: crate::fanout::FanoutOptions {
                queue_frames: self.viewer_queue_frames,
                lag_limit: s(self.viewer_lag_limit_secs),
                gop_cache_bytes: self.gop_cache_bytes,
            },
        }
    }

    /// What a camera may make the gateway hold or wait for.
    pub fn limits(&self) -> crate::pull::rtsp::PullLimits {
        crate::pull::rtsp::PullLimits {
            wire: crate::pull::rtsp::wire::Limits {
                head_bytes: self.max_reply_head_bytes,
                header_lines: self.max_reply_header_lines,
                body_bytes: self.max_reply_body_bytes,
            },
            frame: crate::pull::rtsp::video::FrameLimits {
                max_bytes: self.max_frame_bytes,
                max_packets: self.max_frame_packets,
            },
            reply_timeout: std::time::Duration::from_secs(self.reply_timeout_secs),
        }
    }
}

/// Probes, KPI targets and the calendar of daily availability.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Enabled cameras nobody pulls are probed (OPTIONS + DESCRIBE) this often.
    pub probe_interval_secs: u64,
    /// Probes in flight at once, at most.
    pub probe_concurrency: usize,
    /// A probed camera is offline after this many failed probes in a row.
    pub probe_failures: u32,
    /// Limit on one probe (connect, OPTIONS, DESCRIBE).
    pub probe_timeout_secs: u64,
    /// UTC offset of the calendar days of daily availability (`+08:00`).
    pub utc_offset: String,
    /// Availability target of point class 1 cameras.
    pub target_point_class_1: f64,
    /// Availability target of every other point class.
    pub target_other: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            probe_interval_secs: 60,
            probe_concurrency: 64,
            probe_failures: 3,
            probe_timeout_secs: 5,
            utc_offset: "+08:00".into(),
            target_point_class_1: 0.98,
            target_other: 0.95,
        }
    }
}

impl HealthConfig {
    /// The parsed `utc_offset` (validated at load).
    pub fn offset(&self) -> time::UtcOffset {
        parse_offset(&self.utc_offset).unwrap_or(time::UtcOffset::UTC)
    }

    pub fn probe_options(&self) -> crate::health::probe::ProbeOptions {
        let s = std::time::Duration::from_secs;
        crate::health::probe::ProbeOptions {
            interval: s(self.probe_interval_secs),
            concurrency: self.probe_concurrency,
            failures: self.probe_failures,
            timeout: s(self.probe_timeout_secs),
        }
    }

    /// The availability target of a point class.
    pub fn target(&self, point_type: i64) -> f64 {
        if point_type == 1 {
            self.target_point_class_1
        } else {
            self.target_other
        }
    }
}

/// `+08:00`-style offsets of the world's time zones: -12:00 to +14:00,
/// minutes 00, 30 or 45.
fn parse_offset(s: &str) -> Option<time::UtcOffset> {
    let fmt = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    let o = time::UtcOffset::parse(s, &fmt).ok()?;
    let (h, m, _) = o.as_hms();
    ((-12..=14).contains(&h)
        && [0, 30, 45].contains(&m.abs())
        && !(h == 14 && m != 0)
        && !(h == -12 && m != 0))
        .then_some(o)
}

/// The ops listener: Prometheus metrics.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the ops listener serving `/metrics`; empty turns it off.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9091".into(),
        }
    }
}

/// Re-serving cameras to viewers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// RTSP server address (`rtsp://HOST:PORT/cam/{id}`); empty turns it off.
    pub rtsp_listen: String,
    /// How long a viewer's request waits for a camera's stream to open.
    pub open_timeout_secs: u64,
    /// A viewer whose socket accepts nothing for this long is disconnected.
    pub write_timeout_secs: u64,
    /// An RTSP session that is not playing over TCP (set up but not
    /// playing, or playing over UDP) ends after this long without a request
    /// or an RTCP report from its client.
    pub session_timeout_secs: u64,
    /// A client must authenticate within this long of connecting, and
    /// send each request head within this long; else it is disconnected.
    pub auth_timeout_secs: u64,
    /// Open RTSP connections at most, in total.
    pub max_connections: usize,
    /// Open RTSP connections at most from one client address.
    pub max_connections_per_ip: usize,
    /// A camera's LL-HLS muxer (and the viewer it counts, and the
    /// on-demand pull it holds) stops this long after its last request.
    pub hls_idle_secs: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            rtsp_listen: "0.0.0.0:8554".into(),
            open_timeout_secs: 10,
            write_timeout_secs: 10,
            session_timeout_secs: 60,
            auth_timeout_secs: 10,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            hls_idle_secs: 30,
        }
    }
}

impl RelayConfig {
    pub fn rtsp_options(&self) -> crate::relay::rtsp::RtspOptions {
        crate::relay::rtsp::RtspOptions {
            open_timeout: std::time::Duration::from_secs(self.open_timeout_secs),
            write_timeout: std::time::Duration::from_secs(self.write_timeout_secs),
            session_timeout: std::time::Duration::from_secs(self.session_timeout_secs),
            auth_timeout: std::time::Duration::from_secs(self.auth_timeout_secs),
            limits: crate::listen::ConnLimits {
                total: self.max_connections,
                per_ip: self.max_connections_per_ip,
            },
        }
    }
}

/// Secrets at rest, logins, abuse limits, embedding and the audit trail.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The AES-256 key that encrypts camera passwords in the database: 32
    /// bytes as base64 or hex. Empty: `<data_dir>/credential.key`, created
    /// on first start. Every node of a shared PostgreSQL catalogue needs the
    /// same key.
    pub credential_key: String,
    /// How long a login session lasts.
    pub session_ttl_secs: u64,
    /// Failed logins in a row (API, RTSP) that lock an account.
    pub lockout_after: u32,
    /// How long a locked account stays locked.
    pub lockout_secs: u64,
    /// REST requests per second per key, user or link (sustained); 0 turns
    /// the limit off.
    pub api_rate_per_sec: u32,
    /// REST requests a caller may send at once above the rate.
    pub api_burst: u32,
    /// Login attempts per second per client address (sustained, burst 10).
    pub login_rate_per_sec: u32,
    /// Concurrent streams (RTSP, WebSocket, LL-HLS) per user or key.
    pub max_streams_per_principal: u32,
    /// Concurrent streams per embed link.
    pub max_streams_per_link: u32,
    /// Origins (`https://centre.example`) allowed to frame the embed page
    /// and to fetch streams cross-origin. Empty: same origin only.
    pub embed_origins: Vec<String>,
    /// Audit records older than this are deleted.
    pub audit_retention_days: u32,
    /// TLS for the HTTP listener: a PEM certificate chain and its PEM
    /// private key. Both empty: plain HTTP.
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            credential_key: String::new(),
            session_ttl_secs: 12 * 3600,
            lockout_after: 20,
            lockout_secs: 15 * 60,
            api_rate_per_sec: 50,
            api_burst: 200,
            login_rate_per_sec: 2,
            max_streams_per_principal: 64,
            max_streams_per_link: 8,
            embed_origins: Vec::new(),
            audit_retention_days: 180,
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

impl ServerConfig {
    /// Where clients reach the HTTP listener: `(origin, host)`, as in
    /// `("https://video.example", "video.example")`. From
    /// `server.public_url`, else the listen address (this machine's host
    /// name when it listens on every interface).
    pub fn public_origin(&self, tls: bool) -> (String, String) {
        if let Ok(u) = url::Url::parse(&self.public_url) {
            let origin = u.origin().ascii_serialization();
            return (origin, u.host_str().unwrap_or("").to_string());
        }
        let scheme = if tls { "https" } else { "http" };
        let (host, port) = match self.listen.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_unspecified() => (host_name(), a.port()),
            Ok(SocketAddr::V6(a)) => (format!("[{}]", a.ip()), a.port()),
            Ok(a) => (a.ip().to_string(), a.port()),
            Err(_) => ("127.0.0.1".to_string(), 8080),
        };
        (format!("{scheme}://{host}:{port}"), host)
    }
}

/// This machine's host name (`localhost` when it has none).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes a
    // NUL-terminated name into it (truncated if longer).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name)
            if rc == 0
                && !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)) =>
        {
            name.to_string()
        }
        _ => "localhost".to_string(),
    }
}

impl SecurityConfig {
    /// The HTTP listener speaks TLS.
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert.is_empty()
    }
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field(
                "credential_key",
                &if self.credential_key.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("lockout_after", &self.lockout_after)
            .field("lockout_secs", &self.lockout_secs)
            .field("api_rate_per_sec", &self.api_rate_per_sec)
            .field("api_burst", &self.api_burst)
            .field("login_rate_per_sec", &self.login_rate_per_sec)
            .field("max_streams_per_principal", &self.max_streams_per_principal)
            .field("max_streams_per_link", &self.max_streams_per_link)
            .field("embed_origins", &self.embed_origins)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

/// Webhooks called on every camera state change.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// `http://` URLs that receive each transition as a JSON POST.
    pub urls: Vec<String>,
    /// Key of the `X-Camgate-Signature: sha256=<hex>` HMAC-SHA256 header.
    pub secret: String,
    /// Deliveries waiting per URL, at most; past this the oldest are dropped.
    pub queue: usize,
    /// Limit on one delivery attempt.
    pub timeout_secs: u64,
    /// Attempts per delivery before it is given up.
    pub max_attempts: u32,
}

impl WebhooksConfig {
    pub fn options(&self) -> crate::health::webhook::WebhookOptions {
        crate::health::webhook::WebhookOptions {
            urls: self.urls.clone(),
            secret: self.secret.clone(),
            queue: self.queue,
            timeout: std::time::Duration::from_secs(self.timeout_secs),
            max_attempts: self.max_attempts,
            retry_initial: std::time::Duration::from_secs(1),
        }
    }
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            urls: Vec::new(),
            secret: String::new(),
            queue: 10_000,
            timeout_secs: 5,
            max_attempts: 8,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            catalogue: CatalogueConfig::default(),
            pull: PullConfig::default(),
            health: HealthConfig::default(),
            metrics: MetricsConfig::default(),
            webhooks: WebhooksConfig::default(),
            relay: RelayConfig::default(),
            security: SecurityConfig::default(),
        }
    }
}
impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:8080".into(),
            max_import_bytes: 64 * 1024 * 1024,
            shutdown_grace_secs: 10,
            public_url: String::new(),
            header_read_timeout_secs: 10,
            max_connections: 10_000,
            max_connections_per_ip: 256,
        }
    }
}
impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
            busy_timeout_ms: 5000,
        }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}
impl Default for CatalogueConfig {
    fn default() -> Self {
        CatalogueConfig {
            id_network_flag: 0,
            load_builtin_districts: true,
        }
    }
}

/// Whether `o` is a web origin: `http(s)://host[:port]`, nothing after.
fn valid_origin(o: &str) -> bool {
    match url::Url::parse(o) {
        Ok(u) => {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none()
                && u.path() == "/"
                && !o.ends_with('/')
        }
        Err(_) => false,
    }
}

/// A configuration problem, naming the key and where its value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`{origin}: {message}")]
    Key {
        key: String,
        origin: String,
        message: String,
    },
}

/// Prefix of environment overrides: `CAMGATE__DATABASE__URL`.
pub const ENV_PREFIX: &str = "CAMGATE__";

impl Config {
    /// [`Config::load`] from the text of a config file (`text`), for tools
    /// and fuzzing: defaults, the text, then `env`, then validation.
    pub fn load_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Syntax {
                path: PathBuf::from("<text>"),
                message: e.to_string(),
            })?;
        Config::load_table(table, None, env)
    }

    /// Loads defaults, then `file` (if any), then environment overrides
    /// from `env` (pass `std::env::vars()`), then validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
        }
        Config::load_table(table, file, env)
    }

    /// Defaults, then `table` (read from `file`, if any), then `env`, then
    /// validation.
    fn load_table(
        table: toml::Table,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        // Environment overrides, typed as TOML where they parse (numbers,
        // booleans), else strings; retried as a string when a string was meant.
        let mut env_keys: Vec<(Vec<String>, String, String)> = env
            .into_iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(ENV_PREFIX)?;
                let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
                Some((path, k, v))
            })
            .collect();
        env_keys.sort();
        let mut as_string = std::collections::HashSet::new();
        loop {
            let mut t = table.clone();
            for (path, var, raw) in &env_keys {
                let value = if as_string.contains(var) {
                    toml::Value::String(raw.clone())
                } else {
                    typed(raw)
                };
                set_path(&mut t, path, value).map_err(|message| ConfigError::Key {
                    key: path.join("."),
                    origin: format!(" (from {var})"),
                    message,
                })?;
            }
            match serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(t)) {
                Ok(c) => {
                    // A value that parses but makes no sense: say where it
                    // came from (the variable, else the file).
                    return match c.validate() {
                        Ok(()) => Ok(c),
                        Err(ConfigError::Key { key, message, .. }) => {
                            let base = key.split('[').next().unwrap_or(&key).to_string();
                            let origin = env_keys
                                .iter()
                                .find(|(p, _, _)| p.join(".") == base)
                                .map(|(_, v, _)| format!(" (from {v})"))
                                .or_else(|| file.map(|f| format!(" (in {})", f.display())))
                                .unwrap_or_default();
                            Err(ConfigError::Key {
                                key,
                                origin,
                                message,
                            })
                        }
                        Err(e) => Err(e),
                    };
                }
                Err(e) => {
                    let key = e.path().to_string();
                    let env_var = env_keys
                        .iter()
                        .find(|(p, _, _)| p.join(".") == key)
                        .map(|(_, v, _)| v.clone());
                    if let Some(var) = &env_var
                        && as_string.insert(var.clone())
                    {
                        continue;
                    }
                    let message = e.inner().to_string();
                    // An unknown key is reported at its parent's path; name it.
                    let key = match unknown_field(&message) {
                        Some(f) if key == "." || key.is_empty() => f,
                        Some(f) if key == f || key.ends_with(&format!(".{f}")) => key,
                        Some(f) => format!("{key}.{f}"),
                        None => key,
                    };
                    let origin = env_keys
                        .iter()
                        .find(|(p, _, _)| p.join(".") == key)
                        .map(|(_, v, _)| format!(" (from {v})"))
                        .or_else(|| file.map(|f| format!(" (in {})", f.display())))
                        .unwrap_or_default();
                    return Err(ConfigError::Key {
                        key,
                        origin,
                        message,
                    });
                }
            }
        }
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError::Key {
            key: key.into(),
            origin: String::new(),
            message,
        };
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return Err(err(
                "server.listen",
                format!(
                    "{:?} is not an address like 0.0.0.0:8080",
                    self.server.listen
                ),
            ));
        }
        if !self.server.public_url.is_empty() {
            match url::Url::parse(&self.server.public_url) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.path() == "/"
                        && u.query().is_none()
                        && u.username().is_empty() => {}
                _ => {
                    return Err(err(
                        "server.public_url",
                        format!(
                            "{:?} is not a URL like https://video.example or http://10.0.0.5:8080 \
                             (scheme, host and port only)",
                            self.server.public_url
                        ),
                    ));
                }
            }
        }
        for (key, v, min, max) in [
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs as usize,
                1,
                3600,
            ),
            (
                "server.max_connections",
                self.server.max_connections,
                1,
                1_000_000,
            ),
            (
                "server.max_connections_per_ip",
                self.server.max_connections_per_ip,
                1,
                1_000_000,
            ),
            (
                "relay.auth_timeout_secs",
                self.relay.auth_timeout_secs as usize,
                1,
                3600,
            ),
            (
                "relay.hls_idle_secs",
                self.relay.hls_idle_secs as usize,
                1,
                3600,
            ),
            (
                "relay.max_connections",
                self.relay.max_connections,
                1,
                1_000_000,
            ),
            (
                "relay.max_connections_per_ip",
                self.relay.max_connections_per_ip,
                1,
                1_000_000,
            ),
        ] {
            if v < min || v > max {
                return Err(err(key, format!("must be between {min} and {max}")));
            }
        }
        if self.server.max_import_bytes < 1024 {
            return Err(err(
                "server.max_import_bytes",
                "must be at least 1024".into(),
            ));
        }
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            // Never echo the URL: it may hold a password.
            return Err(err(
                "database.url",
                "must be empty (SQLite in data_dir), sqlite://PATH or postgres://...".into(),
            ));
        }
        if !(1..=1000).contains(&self.database.max_connections) {
            return Err(err(
                "database.max_connections",
                "must be between 1 and 1000".into(),
            ));
        }
        if self.log.format != "text" && self.log.format != "json" {
            return Err(err(
                "log.format",
                format!("must be text or json, got {:?}", self.log.format),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(err("log.level", format!("not a valid filter: {e}")));
        }
        if self.catalogue.id_network_flag > 8 {
            return Err(err("catalogue.id_network_flag", "must be 0-8".into()));
        }
        let p = &self.pull;
        for (key, v, min) in [
            ("pull.open_timeout_secs", p.open_timeout_secs, 1),
            (
                "pull.first_frame_timeout_secs",
                p.first_frame_timeout_secs,
                1,
            ),
            ("pull.stall_secs", p.stall_secs, 1),
            ("pull.backoff_max_secs", p.backoff_max_secs, 1),
            ("pull.reconcile_secs", p.reconcile_secs, 1),
            (
                "pull.max_key_frame_interval_secs",
                p.max_key_frame_interval_secs,
                1,
            ),
            ("pull.viewer_lag_limit_secs", p.viewer_lag_limit_secs, 1),
        ] {
            if v < min {
                return Err(err(key, format!("must be at least {min}")));
            }
        }
        if p.viewer_queue_frames < 8 {
            return Err(err("pull.viewer_queue_frames", "must be at least 8".into()));
        }
        for (key, v, min, max) in [
            (
                "pull.reply_timeout_secs",
                p.reply_timeout_secs as usize,
                1,
                600,
            ),
            (
                "pull.max_reply_head_bytes",
                p.max_reply_head_bytes,
                1024,
                1 << 20,
            ),
            (
                "pull.max_reply_header_lines",
                p.max_reply_header_lines,
                8,
                1024,
            ),
            (
                "pull.max_reply_body_bytes",
                p.max_reply_body_bytes,
                1024,
                16 << 20,
            ),
            (
                "pull.max_frame_bytes",
                p.max_frame_bytes,
                64 * 1024,
                256 << 20,
            ),
            ("pull.max_frame_packets", p.max_frame_packets, 64, 1 << 20),
            (
                "pull.gop_cache_bytes",
                p.gop_cache_bytes,
                64 * 1024,
                1 << 30,
            ),
        ] {
            if v < min || v > max {
                return Err(err(key, format!("must be between {min} and {max}")));
            }
        }
        let h = &self.health;
        for (key, v) in [
            ("health.probe_interval_secs", h.probe_interval_secs),
            ("health.probe_concurrency", h.probe_concurrency as u64),
            ("health.probe_failures", h.probe_failures as u64),
            ("health.probe_timeout_secs", h.probe_timeout_secs),
        ] {
            if v < 1 {
                return Err(err(key, "must be at least 1".into()));
            }
        }
        if parse_offset(&h.utc_offset).is_none() {
            return Err(err(
                "health.utc_offset",
                format!(
                    "{:?} is not a time zone offset like +08:00 (-12:00 to +14:00)",
                    h.utc_offset
                ),
            ));
        }
        for (key, v) in [
            ("health.target_point_class_1", h.target_point_class_1),
            ("health.target_other", h.target_other),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(err(key, format!("must be from 0 to 1, got {v}")));
            }
        }
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return Err(err(
                "metrics.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:9091 (empty turns metrics off)",
                    self.metrics.listen
                ),
            ));
        }
        if !self.relay.rtsp_listen.is_empty()
            && self.relay.rtsp_listen.parse::<SocketAddr>().is_err()
        {
            return Err(err(
                "relay.rtsp_listen",
                format!(
                    "{:?} is not an address like 0.0.0.0:8554 (empty turns RTSP off)",
                    self.relay.rtsp_listen
                ),
            ));
        }
        for (key, v) in [
            ("relay.open_timeout_secs", self.relay.open_timeout_secs),
            ("relay.write_timeout_secs", self.relay.write_timeout_secs),
            (
                "relay.session_timeout_secs",
                self.relay.session_timeout_secs,
            ),
        ] {
            if v == 0 {
                return Err(err(key, "must be at least 1".to_string()));
            }
        }
        let w = &self.webhooks;
        for (i, u) in w.urls.iter().enumerate() {
            let key = format!("webhooks.urls[{i}]");
            match url::Url::parse(u) {
                Ok(parsed) if parsed.scheme() == "http" && parsed.host().is_some() => {}
                Ok(parsed) if parsed.scheme() == "https" => {
                    return Err(err(
                        &key,
                        "https webhooks are not supported yet: use http:// (e.g. through a local TLS proxy)".into(),
                    ));
                }
                // Never echo the URL: it may carry a token.
                _ => return Err(err(&key, "must be an http:// URL".into())),
            }
        }
        if !w.urls.is_empty() && w.secret.is_empty() {
            return Err(err(
                "webhooks.secret",
                "must be set when webhooks.urls is not empty (deliveries are signed)".into(),
            ));
        }
        for (key, v) in [
            ("webhooks.queue", w.queue as u64),
            ("webhooks.timeout_secs", w.timeout_secs),
            ("webhooks.max_attempts", w.max_attempts as u64),
        ] {
            if v < 1 {
                return Err(err(key, "must be at least 1".into()));
            }
        }
        let sec = &self.security;
        for (key, v) in [
            ("security.session_ttl_secs", sec.session_ttl_secs),
            ("security.lockout_after", sec.lockout_after as u64),
            ("security.lockout_secs", sec.lockout_secs),
            ("security.login_rate_per_sec", sec.login_rate_per_sec as u64),
            (
                "security.max_streams_per_principal",
                sec.max_streams_per_principal as u64,
            ),
            (
                "security.max_streams_per_link",
                sec.max_streams_per_link as u64,
            ),
            (
                "security.audit_retention_days",
                sec.audit_retention_days as u64,
            ),
        ] {
            if v < 1 {
                return Err(err(key, "must be at least 1".into()));
            }
        }
        if sec.api_rate_per_sec > 0 && sec.api_burst < 1 {
            return Err(err(
                "security.api_burst",
                "must be at least 1 while security.api_rate_per_sec is set".into(),
            ));
        }
        for (i, o) in sec.embed_origins.iter().enumerate() {
            if !valid_origin(o) {
                return Err(err(
                    &format!("security.embed_origins[{i}]"),
                    format!(
                        "{o:?} is not an origin like https://centre.example or http://10.1.2.3:8080 (scheme, host and port only)"
                    ),
                ));
            }
        }
        if sec.tls_cert.is_empty() != sec.tls_key.is_empty() {
            let key = if sec.tls_cert.is_empty() {
                "security.tls_cert"
            } else {
                "security.tls_key"
            };
            return Err(err(
                key,
                "tls_cert and tls_key go together: set both for TLS, or neither".into(),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(err("data_dir", "must not be empty".into()));
        }
        Ok(())
    }

    /// The database URL, with the default filled in.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("camgate.db").display())
        } else {
            self.database.url.clone()
        }
    }

    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            max_connections: self.database.max_connections,
            busy_timeout: std::time::Duration::from_millis(self.database.busy_timeout_ms),
            cipher: None,
        }
    }
}

fn typed(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set_path(t: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = t;
    for p in parents {
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_file_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/camgate.toml");
        let c = Config::load(Some(&path), env(&[])).unwrap();
        // The shipped file is for the packaged service: state under /var/lib.
        let expected = Config {
            data_dir: PathBuf::from("/var/lib/camgate"),
            ..Default::default()
        };
        assert_eq!(c, expected);
    }

    #[test]
    fn shipped_file_documents_every_key() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/camgate.toml"),
        )
        .unwrap();
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        for (section, v) in defaults.as_table().unwrap() {
            match v.as_table() {
                Some(keys) => {
                    assert!(text.contains(&format!("[{section}]")), "section {section}");
                    for k in keys.keys() {
                        assert!(text.contains(&format!("\n{k} = ")), "key {section}.{k}");
                    }
                }
                None => assert!(text.contains(&format!("\n{section} = ")), "key {section}"),
            }
        }
    }

    #[test]
    fn env_overrides_and_types() {
        let c = Config::load(
            None,
            env(&[
                ("CAMGATE__SERVER__LISTEN", "127.0.0.1:9000"),
                ("CAMGATE__DATABASE__MAX_CONNECTIONS", "3"),
                ("CAMGATE__DATABASE__URL", "postgres://u:p@localhost/db"),
                ("CAMGATE__DATA_DIR", "123"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9000");
        assert_eq!(c.database.max_connections, 3);
        assert_eq!(c.data_dir, PathBuf::from("123"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[server]\nlisen = \"0.0.0.0:1\"\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err().to_string();
        assert!(e.contains("`server.lisen`"), "{e}");
        let e = Config::load(None, env(&[("CAMGATE__DATABASE__URLL", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`database.urll`") && e.contains("CAMGATE__DATABASE__URLL"),
            "{e}"
        );
    }

    #[test]
    fn validation_names_the_key() {
        let e = Config::load(None, env(&[("CAMGATE__SERVER__LISTEN", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`server.listen`"), "{e}");
        let e = Config::load(None, env(&[("CAMGATE__DATABASE__MAX_CONNECTIONS", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`database.max_connections`"), "{e}");
        let e = Config::load(
            None,
            env(&[("CAMGATE__DATABASE__URL", "mysql://u:secret@h/db")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`database.url`") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        let c = Config::default();
        assert_eq!(c.database_url(), "sqlite://./data/camgate.db");
    }
}
