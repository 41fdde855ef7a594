//! Persistence of the catalogue. One [`Store`] trait with two backends:
//! SQLite (the embedded default, WAL journal, busy timeout) and PostgreSQL
//! (a catalogue shared by several nodes). Both run the same SQL, generated
//! from one body in `sql.rs`, and the same test suite against real servers.
//! Migrations are plain SQL files per backend, applied at start and by
//! `camgate migrate`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use crate::catalogue::{Camera, CameraWrite, Checkpoint, CheckpointWrite, District, Ownership};

pub mod access;
mod migrate;
pub mod postgres;
mod sql;
pub mod sqlite;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The write conflicts with what is stored (duplicate ID, a checkpoint
    /// that still has cameras, a reference that vanished meanwhile).
    #[error("{0}")]
    Conflict(String),
    /// No free serial is left for a generated ID.
    #[error("{0}")]
    Exhausted(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting,
    /// unreachable, out of connections), as opposed to a refused query: the
    /// same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(d) => d.code().is_some_and(|c| {
                // PostgreSQL: connection exceptions (08...), shutdown,
                // "cannot connect now" and too many clients; SQLite:
                // busy or locked past the busy timeout, I/O errors.
                c.starts_with("08")
                    || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300")
                    || matches!(sqlite_primary(&c), Some(5 | 6 | 10))
            }),
            _ => false,
        }
    }

    /// Whether a write failed because the database's disk is full.
    pub fn is_disk_full(&self) -> bool {
        // SQLite's SQLITE_FULL (13); PostgreSQL's disk_full (53100).
        matches!(self, StoreError::Database(sqlx::Error::Database(d))
            if d.code().is_some_and(|c| &*c == "53100" || sqlite_primary(&c) == Some(13)))
    }
}

/// The primary result code of an SQLite (extended) result code given as
/// text.
fn sqlite_primary(code: &str) -> Option<i64> {
    code.parse::<i64>().ok().map(|c| c & 0xff)
}

/// Camera list filters; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct CameraFilter {
    /// Substring of name, ID or address (case-insensitive for ASCII).
    pub q: Option<String>,
    /// District code in natural length: the whole subtree matches.
    pub district: Option<String>,
    pub checkpoint: Option<String>,
    pub point_type: Option<i64>,
    pub ownership: Option<Ownership>,
    pub enabled: Option<bool>,
    /// `key`, `value` pairs; each must be present.
    pub tags: Vec<(String, String)>,
    /// Only these IDs (none when empty). Meant for a few thousand at most:
    /// each is a bound parameter.
    pub ids: Option<Vec<String>>,
}

/// Checkpoint list filters.
#[derive(Debug, Clone, Default)]
pub struct CheckpointFilter {
    pub q: Option<String>,
    pub district: Option<String>,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
}

/// A stored state change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TransitionRow {
    pub id: i64,
    pub camera_id: String,
    pub district_code: String,
    pub at_ms: i64,
    pub from_state: String,
    pub to_state: String,
    pub reason: Option<String>,
}

/// What KPIs need of a camera.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct CameraKey {
    pub id: String,
    pub name: String,
    pub district_code: String,
    pub point_type: i64,
    pub enabled: bool,
}

/// A state change to store (the ID is assigned by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransition {
    pub camera_id: String,
    pub district_code: String,
    pub at_ms: i64,
    pub from_state: String,
    pub to_state: String,
    pub reason: Option<String>,
}

/// Progress callback: called with the number of rows written so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// The catalogue store. Implementations are cheap to share (`Arc`).
#[async_trait]
pub trait Store: access::AccessStore + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// The key that encrypts stored credentials, if the store has one.
    fn credential_cipher(&self) -> Option<Arc<crate::auth::cipher::CredentialCipher>>;
    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> Result<usize, StoreError>;
    /// A trivial query, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Whether the database server can be reached now: a new connection
    /// and a trivial query, outside the pool (whose connection attempts
    /// wait out its acquire timeout). The caller bounds the time.
    async fn reach(&self) -> Result<(), StoreError> {
        self.ping().await
    }
    /// Closes the pool, waiting for connections to be returned.
    async fn close(&self);

    // ---- districts
    async fn district_count(&self) -> Result<i64, StoreError>;
    /// Inserts or renames districts, in one transaction.
    async fn upsert_districts(
        &self,
        districts: &[District],
        progress: Progress<'_>,
    ) -> Result<u64, StoreError>;
    async fn districts_by_codes(&self, codes: &[String]) -> Result<Vec<District>, StoreError>;
    /// Children of `parent` (the provinces when `None`), ordered by code.
    async fn district_children(&self, parent: Option<&str>) -> Result<Vec<District>, StoreError>;
    /// Districts whose name contains `q`, shallowest first.
    async fn search_districts(&self, q: &str, limit: i64) -> Result<Vec<District>, StoreError>;
    /// Number of cameras in the subtree of each given district code.
    async fn camera_counts(&self, codes: &[String]) -> Result<HashMap<String, i64>, StoreError>;

    // ---- checkpoints
    /// Checkpoint ID -> district code, for the IDs that exist.
    async fn checkpoint_districts(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;
    async fn list_checkpoints(
        &self,
        filter: &CheckpointFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Checkpoint>, StoreError>;
    async fn get_checkpoint(&self, id: &str) -> Result<Option<Checkpoint>, StoreError>;
    /// Creates a checkpoint; returns its ID (generated if asked).
    async fn create_checkpoint(&self, w: &CheckpointWrite) -> Result<String, StoreError>;
    async fn update_checkpoint(&self, w: &CheckpointWrite) -> Result<(), StoreError>;
    /// Deletes a checkpoint that has no cameras.
    async fn delete_checkpoint(&self, id: &str) -> Result<(), StoreError>;

    // ---- cameras
    /// Cameras matching `filter` with ID greater than `after`, by ID.
    async fn list_cameras(
        &self,
        filter: &CameraFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Camera>, StoreError>;
    /// The IDs alone of what `list_cameras` answers: much cheaper per row
    /// (no row decoding, credentials or tags), for scans that filter on
    /// what the database does not hold.
    async fn list_camera_ids(
        &self,
        filter: &CameraFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError>;
    async fn get_camera(&self, id: &str) -> Result<Option<Camera>, StoreError>;
    /// Creates a camera; returns its ID (generated if asked).
    async fn create_camera(&self, w: &CameraWrite) -> Result<String, StoreError>;
    async fn update_camera(&self, w: &CameraWrite) -> Result<(), StoreError>;
    async fn delete_camera(&self, id: &str) -> Result<(), StoreError>;
    /// Which of `ids` exist.
    async fn existing_camera_ids(&self, ids: &[String]) -> Result<HashSet<String>, StoreError>;
    // ---- health history
    async fn insert_transitions(&self, rows: &[NewTransition]) -> Result<(), StoreError>;
    /// The camera's newest transitions, newest first.
    async fn camera_transitions(
        &self,
        camera_id: &str,
        limit: i64,
    ) -> Result<Vec<TransitionRow>, StoreError>;
    /// One camera's history over `[start_ms, end_ms)`: its last transition
    /// before the window and the first `limit` inside it, oldest first.
    async fn camera_window(
        &self,
        camera_id: &str,
        start_ms: i64,
        end_ms: i64,
        limit: i64,
    ) -> Result<(Option<TransitionRow>, Vec<TransitionRow>), StoreError>;
    /// Transitions in a district subtree (all when `None`), at or after
    /// `since_ms`, with ID greater than `after_id`, oldest first.
    async fn list_transitions(
        &self,
        district: Option<&str>,
        since_ms: Option<i64>,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TransitionRow>, StoreError>;

    /// Every camera in a district subtree (all when `None`), by ID, with
    /// only the columns KPIs need.
    async fn camera_keys(&self, district: Option<&str>) -> Result<Vec<CameraKey>, StoreError>;
    /// The history a window `[start_ms, end_ms)` needs, for transitions
    /// recorded in a district subtree (all when `None`): each camera's last
    /// transition before the window, and every transition inside it, oldest
    /// first.
    async fn window_transitions(
        &self,
        district: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(Vec<TransitionRow>, Vec<TransitionRow>), StoreError>;

    /// Creates or updates all cameras in one transaction: all or nothing.
    /// Existing cameras keep their password when the write has none.
    async fn import_cameras(
        &self,
        writes: &[CameraWrite],
        progress: Progress<'_>,
    ) -> Result<ImportCounts, StoreError>;
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub busy_timeout: std::time::Duration,
    /// The camera-credential key: passwords are written encrypted with it
    /// and read back through it. Without one they are written as given
    /// (only tests and tools that never see passwords open a store so).
    pub cipher: Option<Arc<crate::auth::cipher::CredentialCipher>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            busy_timeout: std::time::Duration::from_secs(5),
            cipher: None,
        }
    }
}

/// Opens the store named by a `sqlite://` or `postgres://` URL and applies
/// pending migrations.
pub async fn open(url: &str, opts: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(sqlite::SqliteStore::connect(url, opts).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(postgres::PgStore::connect(url, opts).await?)
    } else {
        anyhow::bail!("database.url must start with sqlite:// or postgres://");
    };
    store.migrate().await?;
    Ok(store)
}

/// Loads the built-in district table when the store has no districts yet.
/// Returns how many were loaded.
pub async fn seed_districts(store: &dyn Store) -> anyhow::Result<u64> {
    if store.district_count().await? > 0 {
        return Ok(0);
    }
    let all = crate::catalogue::district::builtin_districts()?;
    let n = store.upsert_districts(&all, &|_| {}).await?;
    tracing::info!(districts = n, "loaded the built-in district table");
    Ok(n)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut s = String::with_capacity(q.len() + 2);
    s.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}
