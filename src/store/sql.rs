//! The SQL both backends run. SQLite and PostgreSQL accept the same
//! statements here (`$N` parameters, `ON CONFLICT`, `substr`), so one body,
//! expanded per backend by [`impl_store!`], keeps them from drifting apart.
//! What differs is passed in: how a write transaction begins, the lock taken
//! before generating IDs, and the case-insensitive LIKE operator.

use std::collections::BTreeMap;

use crate::auth::cipher::{self, CredentialCipher};
use crate::catalogue::{Camera, CameraWrite, Checkpoint, District, Secret};

/// A camera password as it is written: encrypted when there is a key.
pub(crate) fn stored_password(
    w: &CameraWrite,
    cipher: Option<&CredentialCipher>,
) -> Option<String> {
    let p = w.password.as_ref()?.expose();
    Some(cipher.map_or_else(|| p.to_string(), |c| c.encrypt(p)))
}

use super::StoreError;

/// Camera rows are selected as `CAMERA_HEAD <query over cameras c that
/// filters, orders and limits> CAMERA_TAIL`: district names are joined onto
/// that page only, so the join never touches more districts than the page
/// has rows.
pub(crate) const CAMERA_HEAD: &str = "SELECT c.id, c.name, c.district_code, \
    COALESCE(d.name, '') AS district_name, c.checkpoint_id, c.point_type, c.ownership, \
    c.industry_code, c.address, c.longitude, c.latitude, c.rtsp_url, c.username, c.password, \
    c.transport, c.pull_mode, c.enabled, c.created_at_ms, c.updated_at_ms FROM (";
pub(crate) const CAMERA_TAIL: &str =
    ") c LEFT JOIN districts d ON d.code = c.district_code ORDER BY c.id";

/// The text substring search runs on: name, ID and address, lower-cased
/// (Unicode-aware, so the query is lower-cased the same way), separated by a
/// control character no query contains.
pub(crate) fn search_text(id: &str, name: &str, address: &str) -> String {
    format!("{name}\u{1f}{id}\u{1f}{address}").to_lowercase()
}

pub(crate) const CHECKPOINT_COLS: &str = "k.id, k.name, k.district_code, k.kind, k.address, k.longitude, k.latitude, \
    (SELECT count(*) FROM cameras c WHERE c.checkpoint_id = k.id) AS camera_count, \
    k.created_at_ms, k.updated_at_ms FROM checkpoints k";

/// Rows per multi-row INSERT: well under both backends' bind limits.
pub(crate) const BATCH: usize = 200;

#[derive(sqlx::FromRow)]
pub(crate) struct CameraRow {
    id: String,
    name: String,
    district_code: String,
    district_name: String,
    checkpoint_id: Option<String>,
    point_type: i64,
    ownership: String,
    industry_code: String,
    address: String,
    longitude: Option<f64>,
    latitude: Option<f64>,
    rtsp_url: String,
    username: Option<String>,
    password: Option<String>,
    transport: String,
    pull_mode: String,
    enabled: bool,
    created_at_ms: i64,
    updated_at_ms: i64,
}

fn parse<T: std::str::FromStr<Err = String>>(what: &str, v: &str) -> Result<T, StoreError> {
    v.parse()
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl CameraRow {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
    pub(crate) fn into_camera(
        self,
        tags: BTreeMap<String, String>,
        cipher: Option<&CredentialCipher>,
    ) -> Result<Camera, StoreError> {
        let password = match self.password {
            Some(v) if cipher::is_encrypted(&v) => {
                let c = cipher.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "camera {}: an encrypted password, and no credential key",
                        self.id
                    ))
                })?;
                let plain = c
                    .decrypt(&v)
                    .map_err(|e| StoreError::Corrupt(format!("camera {}: {e}", self.id)))?;
                Some(Secret::new(plain))
            }
            // Written in clear before encryption existed (or by a store
            // opened without a key); `open_store` encrypts these at start.
            other => other.map(Secret::new),
        };
        Ok(Camera {
            ownership: parse("cameras.ownership", &self.ownership)?,
            transport: parse("cameras.transport", &self.transport)?,
            pull_mode: parse("cameras.pull_mode", &self.pull_mode)?,
            id: self.id,
            name: self.name,
            district_code: self.district_code,
            district_name: self.district_name,
            checkpoint_id: self.checkpoint_id,
            point_type: self.point_type,
            industry_code: self.industry_code,
            address: self.address,
            longitude: self.longitude,
            latitude: self.latitude,
            rtsp_url: self.rtsp_url,
            username: self.username,
            password,
            enabled: self.enabled,
            tags,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CheckpointRow {
    id: String,
    name: String,
    district_code: String,
    kind: String,
    address: String,
    longitude: Option<f64>,
    latitude: Option<f64>,
    camera_count: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl CheckpointRow {
    pub(crate) fn into_checkpoint(self) -> Result<Checkpoint, StoreError> {
        Ok(Checkpoint {
            kind: parse("checkpoints.kind", &self.kind)?,
            id: self.id,
            name: self.name,
            district_code: self.district_code,
            address: self.address,
            longitude: self.longitude,
            latitude: self.latitude,
            camera_count: self.camera_count,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DistrictRow {
    code: String,
    parent_code: Option<String>,
    name: String,
    level: i64,
}

impl From<DistrictRow> for District {
    fn from(r: DistrictRow) -> Self {
        District {
            code: r.code,
            parent_code: r.parent_code,
            name: r.name,
            level: r.level,
        }
    }
}

/// Maps a constraint violation to a conflict; other errors pass through.
pub(crate) fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && (db.is_unique_violation() || db.is_foreign_key_violation())
    {
        return StoreError::Conflict(what());
    }
    StoreError::Database(e)
}

/// Longest common prefix of district codes: the range every count query
/// can be limited to.
pub(crate) fn common_prefix(codes: &[String]) -> String {
    let Some(first) = codes.first() else {
        return String::new();
    };
    let mut len = first.len();
    for c in &codes[1..] {
        len = len.min(
            first
                .bytes()
                .zip(c.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    first[..len].to_string()
}

macro_rules! impl_store {
    ($store:ident, $db:ty, backend = $backend:literal, begin = $begin:literal,
     lock = $lock:literal, like = $like:literal, after_bulk = $after_bulk:expr,
     push_ids = $push_ids:path, migrations = $migrations:path) => {
        use std::collections::{BTreeMap, HashMap, HashSet};

        use sqlx::{QueryBuilder, Row};

        use crate::catalogue::{
            Camera, CameraWrite, Checkpoint, CheckpointWrite, District, IdSpec, gbid, now_ms,
        };
        use crate::catalogue::district::prefix_upper_bound;
        use crate::store::sql::{
            BATCH, CAMERA_HEAD, CAMERA_TAIL, CHECKPOINT_COLS, CameraRow, CheckpointRow, DistrictRow,
            common_prefix, conflict_or, search_text,
        };
        use crate::store::{
            CameraFilter, CameraKey, CheckpointFilter, ImportCounts, NewTransition, Progress, Store,
            StoreError, TransitionRow, like_pattern,
        };

        type Tx = sqlx::Transaction<'static, $db>;

        /// Adds `AND <col> >= lo AND <col> < hi`: the subtree of a district.
        fn push_subtree(qb: &mut QueryBuilder<'_, $db>, col: &str, prefix: &str) {
            qb.push(format!(" AND {col} >= ")).push_bind(prefix.to_string());
            if let Some(hi) = prefix_upper_bound(prefix) {
                qb.push(format!(" AND {col} < ")).push_bind(hi);
            }
        }

        /// The query of a camera list: full rows (with the district's name,
        /// in ID order), or, with `ids_only`, the IDs alone.
        fn camera_query(
            filter: &CameraFilter,
            after: Option<&str>,
            limit: i64,
            ids_only: bool,
        ) -> QueryBuilder<'static, $db> {
            let (head, cols, tail) = if ids_only {
                ("", "c.id", "")
            } else {
                (CAMERA_HEAD, "c.*", CAMERA_TAIL)
            };
            // With a search text, the narrow search table drives the scan, in
            // ID order, and only matching cameras are read; the scan stops
            // when the page is full. CROSS JOIN fixes that join order in
            // SQLite (left free, it drove the join from the district index,
            // several times slower); PostgreSQL reads camera_search with an
            // index-only scan of its covering primary key.
            let (mut qb, order) = match &filter.q {
                Some(q) => {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "{head}SELECT {cols} FROM camera_search s CROSS JOIN cameras c \
                         WHERE c.id = s.camera_id"
                    ));
                    push_contains(&mut qb, "s.text", &q.to_lowercase());
                    (qb, "s.camera_id")
                }
                None => (
                    QueryBuilder::<$db>::new(format!(
                        "{head}SELECT {cols} FROM cameras c WHERE 1 = 1"
                    )),
                    "c.id",
                ),
            };
            if let Some(a) = after {
                qb.push(format!(" AND {order} > ")).push_bind(a.to_string());
            }
            if let Some(d) = &filter.district {
                push_subtree(&mut qb, "c.district_code", d);
            }
            if let Some(cp) = &filter.checkpoint {
                qb.push(" AND c.checkpoint_id = ").push_bind(cp.clone());
            }
            if let Some(p) = filter.point_type {
                qb.push(" AND c.point_type = ").push_bind(p);
            }
            if let Some(o) = filter.ownership {
                qb.push(" AND c.ownership = ").push_bind(o.as_str());
            }
            if let Some(e) = filter.enabled {
                qb.push(" AND c.enabled = ").push_bind(e);
            }
            if let Some(ids) = &filter.ids {
                if ids.is_empty() {
                    qb.push(" AND 1 = 0");
                } else {
                    $push_ids(&mut qb, "c.id", ids);
                }
            }
            for (k, v) in &filter.tags {
                qb.push(" AND EXISTS (SELECT 1 FROM camera_tags t WHERE t.camera_id = c.id AND t.key = ")
                    .push_bind(k.clone())
                    .push(" AND t.value = ")
                    .push_bind(v.clone())
                    .push(")");
            }
            qb.push(format!(" ORDER BY {order} LIMIT "))
                .push_bind(limit)
                .push(tail);
            qb
        }

        impl $store {
            async fn begin_write(&self) -> Result<Tx, StoreError> {
                Ok(self.pool.begin_with($begin).await?)
            }

            /// Next free serial after `prefix14` in `table`, under the ID lock.
            async fn next_serial(
                tx: &mut Tx,
                table: &str,
                prefix14: &str,
            ) -> Result<u32, StoreError> {
                let lo = gbid::with_serial(prefix14, 0);
                let hi = gbid::with_serial(prefix14, gbid::MAX_SERIAL);
                let sql = format!(
                    "SELECT max(id) FROM {table} WHERE id >= $1 AND id <= $2 AND length(id) = 20"
                );
                let max: Option<String> = sqlx::query_scalar(&sql)
                    .bind(lo)
                    .bind(hi)
                    .fetch_one(&mut **tx)
                    .await?;
                let next = match max {
                    None => 1,
                    Some(id) => id[14..].parse::<u32>().unwrap_or(0) + 1,
                };
                if next > gbid::MAX_SERIAL {
                    return Err(StoreError::Exhausted(format!(
                        "no free serial left for IDs starting {prefix14}"
                    )));
                }
                Ok(next)
            }

            async fn load_tags(
                &self,
                ids: &[&str],
            ) -> Result<HashMap<String, BTreeMap<String, String>>, StoreError> {
                let mut out: HashMap<String, BTreeMap<String, String>> = HashMap::new();
                for chunk in ids.chunks(500) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT camera_id, key, value FROM camera_tags WHERE camera_id IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.to_string());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&self.pool).await? {
                        let id: String = row.try_get(0)?;
                        out.entry(id)
                            .or_default()
                            .insert(row.try_get(1)?, row.try_get(2)?);
                    }
                }
                Ok(out)
            }

            async fn rows_to_cameras(&self, rows: Vec<CameraRow>) -> Result<Vec<Camera>, StoreError> {
                let ids: Vec<&str> = rows.iter().map(|r| r.id()).collect();
                let mut tags = if ids.is_empty() {
                    HashMap::new()
                } else {
                    self.load_tags(&ids).await?
                };
                rows.into_iter()
                    .map(|r| {
                        let t = tags.remove(r.id()).unwrap_or_default();
                        r.into_camera(t, self.cipher.as_deref())
                    })
                    .collect()
            }

            async fn replace_tags(
                tx: &mut Tx,
                id: &str,
                tags: &BTreeMap<String, String>,
            ) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM camera_tags WHERE camera_id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                if !tags.is_empty() {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO camera_tags (camera_id, key, value) ",
                    );
                    qb.push_values(tags, |mut b, (k, v)| {
                        b.push_bind(id.to_string())
                            .push_bind(k.clone())
                            .push_bind(v.clone());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Writes camera rows (insert, or update on an existing ID) in batches.
            async fn upsert_camera_rows(
                &self,
                tx: &mut Tx,
                rows: &[(&str, &CameraWrite)],
                now: i64,
            ) -> Result<(), StoreError> {
                for chunk in rows.chunks(BATCH) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO cameras (id, name, district_code, checkpoint_id, point_type, \
                         ownership, industry_code, address, longitude, latitude, rtsp_url, username, \
                         password, transport, pull_mode, enabled, created_at_ms, updated_at_ms) ",
                    );
                    qb.push_values(chunk, |mut b, (id, w)| {
                        b.push_bind(id.to_string())
                            .push_bind(w.name.clone())
                            .push_bind(w.district_code.clone())
                            .push_bind(w.checkpoint_id.clone())
                            .push_bind(w.point_type)
                            .push_bind(w.ownership.as_str())
                            .push_bind(w.industry_code.clone())
                            .push_bind(w.address.clone())
                            .push_bind(w.longitude)
                            .push_bind(w.latitude)
                            .push_bind(w.rtsp_url.clone())
                            .push_bind(w.username.clone())
                            .push_bind(crate::store::sql::stored_password(w, self.cipher.as_deref()))
                            .push_bind(w.transport.as_str())
                            .push_bind(w.pull_mode.as_str())
                            .push_bind(w.enabled)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.push(
                        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                         district_code = excluded.district_code, checkpoint_id = excluded.checkpoint_id, \
                         point_type = excluded.point_type, ownership = excluded.ownership, \
                         industry_code = excluded.industry_code, address = excluded.address, \
                         longitude = excluded.longitude, latitude = excluded.latitude, \
                         rtsp_url = excluded.rtsp_url, username = excluded.username, \
                         password = COALESCE(excluded.password, cameras.password), \
                         transport = excluded.transport, pull_mode = excluded.pull_mode, \
                         enabled = excluded.enabled, updated_at_ms = excluded.updated_at_ms",
                    );
                    qb.build().execute(&mut **tx).await.map_err(|e| {
                        conflict_or(e, || {
                            "a referenced district or checkpoint no longer exists".to_string()
                        })
                    })?;
                    let mut qb = QueryBuilder::<$db>::new("INSERT INTO camera_search (camera_id, text) ");
                    qb.push_values(chunk, |mut b, (id, w)| {
                        b.push_bind(id.to_string())
                            .push_bind(search_text(id, &w.name, &w.address));
                    });
                    qb.push(" ON CONFLICT (camera_id) DO UPDATE SET text = excluded.text");
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn resolve_id(
                tx: &mut Tx,
                table: &str,
                spec: &IdSpec,
                next: &mut HashMap<String, u32>,
            ) -> Result<String, StoreError> {
                match spec {
                    IdSpec::Given(id) => Ok(id.clone()),
                    IdSpec::Generate { prefix14 } => {
                        let serial = match next.get(prefix14) {
                            Some(s) => *s,
                            None => Self::next_serial(tx, table, prefix14).await?,
                        };
                        if serial > gbid::MAX_SERIAL {
                            return Err(StoreError::Exhausted(format!(
                                "no free serial left for IDs starting {prefix14}"
                            )));
                        }
                        next.insert(prefix14.clone(), serial + 1);
                        Ok(gbid::with_serial(prefix14, serial))
                    }
                }
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn credential_cipher(
                &self,
            ) -> Option<std::sync::Arc<crate::auth::cipher::CredentialCipher>> {
                self.cipher.clone()
            }

            async fn migrate(&self) -> Result<usize, StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query($lock).execute(&mut *tx).await?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS camgate_migrations (version BIGINT PRIMARY KEY, \
                     name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
                )
                .execute(&mut *tx)
                .await?;
                let applied: Vec<i64> =
                    sqlx::query_scalar("SELECT version FROM camgate_migrations")
                        .fetch_all(&mut *tx)
                        .await?;
                let mut n = 0;
                for (version, name, sql) in $migrations {
                    if applied.contains(version) {
                        continue;
                    }
                    // One statement at a time. Migration files hold no ';' or
                    // "--" inside literals, so dropping comments and splitting is exact.
                    let code: String = sql
                        .lines()
                        .map(|l| l.split("--").next().unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join("\n");
                    for stmt in code.split(';').filter(|s| !s.trim().is_empty()) {
                        sqlx::query(stmt).execute(&mut *tx).await.map_err(|source| {
                            StoreError::Migration {
                                version: *version,
                                name,
                                source,
                            }
                        })?;
                    }
                    sqlx::query(
                        "INSERT INTO camgate_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
                    )
                    .bind(*version)
                    .bind(*name)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
                    tracing::info!(backend = $backend, version, name, "applied migration");
                    n += 1;
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn reach(&self) -> Result<(), StoreError> {
                use sqlx::Connection as _;
                let opts = self.pool.connect_options();
                let mut c = <<$db as sqlx::Database>::Connection as sqlx::Connection>::connect_with(&*opts).await?;
                sqlx::query("SELECT 1").execute(&mut c).await?;
                let _ = c.close().await;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn district_count(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM districts")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn upsert_districts(
                &self,
                districts: &[District],
                progress: Progress<'_>,
            ) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let mut done = 0u64;
                for chunk in districts.chunks(1000) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO districts (code, parent_code, name, level) ",
                    );
                    qb.push_values(chunk, |mut b, d| {
                        b.push_bind(d.code.clone())
                            .push_bind(d.parent_code.clone())
                            .push_bind(d.name.clone())
                            .push_bind(d.level);
                    });
                    qb.push(
                        " ON CONFLICT (code) DO UPDATE SET name = excluded.name, \
                         parent_code = excluded.parent_code, level = excluded.level",
                    );
                    qb.build().execute(&mut *tx).await?;
                    done += chunk.len() as u64;
                    progress(done);
                }
                tx.commit().await?;
                Ok(done)
            }

            async fn districts_by_codes(
                &self,
                codes: &[String],
            ) -> Result<Vec<District>, StoreError> {
                let mut out = Vec::new();
                for chunk in codes.chunks(500) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT code, parent_code, name, level FROM districts WHERE code IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for c in chunk {
                        sep.push_bind(c.clone());
                    }
                    qb.push(")");
                    let rows: Vec<DistrictRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                    out.extend(rows.into_iter().map(District::from));
                }
                Ok(out)
            }

            async fn district_children(
                &self,
                parent: Option<&str>,
            ) -> Result<Vec<District>, StoreError> {
                let rows: Vec<DistrictRow> = match parent {
                    Some(p) => sqlx::query_as(
                        "SELECT code, parent_code, name, level FROM districts \
                         WHERE parent_code = $1 ORDER BY code",
                    )
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await?,
                    None => sqlx::query_as(
                        "SELECT code, parent_code, name, level FROM districts \
                         WHERE parent_code IS NULL ORDER BY code",
                    )
                    .fetch_all(&self.pool)
                    .await?,
                };
                Ok(rows.into_iter().map(District::from).collect())
            }

            async fn search_districts(
                &self,
                q: &str,
                limit: i64,
            ) -> Result<Vec<District>, StoreError> {
                let sql = format!(
                    "SELECT code, parent_code, name, level FROM districts \
                     WHERE name {} $1 ESCAPE '\\' ORDER BY level, code LIMIT $2",
                    $like
                );
                let rows: Vec<DistrictRow> = sqlx::query_as(&sql)
                    .bind(like_pattern(q))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(District::from).collect())
            }

            async fn camera_counts(
                &self,
                codes: &[String],
            ) -> Result<HashMap<String, i64>, StoreError> {
                let mut out: HashMap<String, i64> =
                    codes.iter().map(|c| (c.clone(), 0)).collect();
                let mut lens: Vec<usize> = codes.iter().map(|c| c.len()).collect();
                lens.sort_unstable();
                lens.dedup();
                for len in lens {
                    let same: Vec<String> =
                        codes.iter().filter(|c| c.len() == len).cloned().collect();
                    let prefix = common_prefix(&same);
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT substr(district_code, 1, {len}) AS p, count(*) AS n \
                         FROM cameras WHERE 1 = 1"
                    ));
                    if !prefix.is_empty() {
                        push_subtree(&mut qb, "district_code", &prefix);
                    }
                    qb.push(" GROUP BY substr(district_code, 1, ")
                        .push(len.to_string())
                        .push(")");
                    for row in qb.build().fetch_all(&self.pool).await? {
                        let p: String = row.try_get(0)?;
                        let n: i64 = row.try_get(1)?;
                        if let Some(slot) = out.get_mut(&p) {
                            *slot = n;
                        }
                    }
                }
                Ok(out)
            }

            async fn checkpoint_districts(
                &self,
                ids: &[String],
            ) -> Result<HashMap<String, String>, StoreError> {
                let mut out = HashMap::new();
                for chunk in ids.chunks(500) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT id, district_code FROM checkpoints WHERE id IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for c in chunk {
                        sep.push_bind(c.clone());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&self.pool).await? {
                        out.insert(row.try_get(0)?, row.try_get(1)?);
                    }
                }
                Ok(out)
            }

            async fn list_checkpoints(
                &self,
                filter: &CheckpointFilter,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<Checkpoint>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {CHECKPOINT_COLS} WHERE 1 = 1"));
                if let Some(a) = after {
                    qb.push(" AND k.id > ").push_bind(a.to_string());
                }
                if let Some(d) = &filter.district {
                    push_subtree(&mut qb, "k.district_code", d);
                }
                if let Some(q) = &filter.q {
                    let pat = like_pattern(q);
                    qb.push(format!(" AND (k.name {} ", $like)).push_bind(pat.clone());
                    qb.push(format!(" ESCAPE '\\' OR k.id {} ", $like)).push_bind(pat.clone());
                    qb.push(format!(" ESCAPE '\\' OR k.address {} ", $like)).push_bind(pat);
                    qb.push(" ESCAPE '\\')");
                }
                qb.push(" ORDER BY k.id LIMIT ").push_bind(limit);
                let rows: Vec<CheckpointRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(CheckpointRow::into_checkpoint).collect()
            }

            async fn get_checkpoint(&self, id: &str) -> Result<Option<Checkpoint>, StoreError> {
                let sql = format!("SELECT {CHECKPOINT_COLS} WHERE k.id = $1");
                let row: Option<CheckpointRow> =
                    sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.map(CheckpointRow::into_checkpoint).transpose()
            }

            async fn create_checkpoint(&self, w: &CheckpointWrite) -> Result<String, StoreError> {
                let mut tx = self.begin_write().await?;
                if matches!(w.id, IdSpec::Generate { .. }) {
                    sqlx::query($lock).execute(&mut *tx).await?;
                }
                let id = Self::resolve_id(&mut tx, "checkpoints", &w.id, &mut HashMap::new()).await?;
                let now = now_ms();
                sqlx::query(
                    "INSERT INTO checkpoints (id, name, district_code, kind, address, longitude, \
                     latitude, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&id)
                .bind(&w.name)
                .bind(&w.district_code)
                .bind(w.kind.as_str())
                .bind(&w.address)
                .bind(w.longitude)
                .bind(w.latitude)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, || format!("checkpoint {id} already exists")))?;
                tx.commit().await?;
                Ok(id)
            }

            async fn update_checkpoint(&self, w: &CheckpointWrite) -> Result<(), StoreError> {
                let IdSpec::Given(id) = &w.id else {
                    return Err(StoreError::NotFound("checkpoint without an id".into()));
                };
                let r = sqlx::query(
                    "UPDATE checkpoints SET name = $1, district_code = $2, kind = $3, address = $4, \
                     longitude = $5, latitude = $6, updated_at_ms = $7 WHERE id = $8",
                )
                .bind(&w.name)
                .bind(&w.district_code)
                .bind(w.kind.as_str())
                .bind(&w.address)
                .bind(w.longitude)
                .bind(w.latitude)
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| conflict_or(e, || "the district no longer exists".to_string()))?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("checkpoint {id} does not exist")));
                }
                Ok(())
            }

            async fn delete_checkpoint(&self, id: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM cameras WHERE checkpoint_id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                if n > 0 {
                    return Err(StoreError::Conflict(format!(
                        "checkpoint {id} still has {n} cameras; move or delete them first"
                    )));
                }
                let r = sqlx::query("DELETE FROM checkpoints WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("checkpoint {id} does not exist")));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_cameras(
                &self,
                filter: &CameraFilter,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<Camera>, StoreError> {
                let mut qb = camera_query(filter, after, limit, false);
                let rows: Vec<CameraRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                self.rows_to_cameras(rows).await
            }

            async fn list_camera_ids(
                &self,
                filter: &CameraFilter,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<String>, StoreError> {
                let mut qb = camera_query(filter, after, limit, true);
                Ok(qb.build_query_scalar().fetch_all(&self.pool).await?)
            }

            async fn get_camera(&self, id: &str) -> Result<Option<Camera>, StoreError> {
                let sql = format!("{CAMERA_HEAD}SELECT * FROM cameras c WHERE c.id = $1{CAMERA_TAIL}");
                let row: Option<CameraRow> =
                    sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?;
                match row {
                    None => Ok(None),
                    Some(r) => Ok(self.rows_to_cameras(vec![r]).await?.pop()),
                }
            }

            async fn create_camera(&self, w: &CameraWrite) -> Result<String, StoreError> {
                let mut tx = self.begin_write().await?;
                if matches!(w.id, IdSpec::Generate { .. }) {
                    sqlx::query($lock).execute(&mut *tx).await?;
                }
                let id = Self::resolve_id(&mut tx, "cameras", &w.id, &mut HashMap::new()).await?;
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT id FROM cameras WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_some() {
                    return Err(StoreError::Conflict(format!("camera {id} already exists")));
                }
                self.upsert_camera_rows(&mut tx, &[(id.as_str(), w)], now_ms()).await?;
                Self::replace_tags(&mut tx, &id, &w.tags).await?;
                tx.commit().await.map_err(|e| conflict_or(e, || format!("camera {id} already exists")))?;
                Ok(id)
            }

            async fn update_camera(&self, w: &CameraWrite) -> Result<(), StoreError> {
                let IdSpec::Given(id) = &w.id else {
                    return Err(StoreError::NotFound("camera without an id".into()));
                };
                let mut tx = self.begin_write().await?;
                let r = sqlx::query(
                    "UPDATE cameras SET name = $1, district_code = $2, checkpoint_id = $3, \
                     point_type = $4, ownership = $5, industry_code = $6, address = $7, \
                     longitude = $8, latitude = $9, rtsp_url = $10, username = $11, \
                     password = CASE WHEN $12 THEN NULL ELSE COALESCE($13, password) END, \
                     transport = $14, pull_mode = $15, enabled = $16, updated_at_ms = $17 \
                     WHERE id = $18",
                )
                .bind(&w.name)
                .bind(&w.district_code)
                .bind(&w.checkpoint_id)
                .bind(w.point_type)
                .bind(w.ownership.as_str())
                .bind(&w.industry_code)
                .bind(&w.address)
                .bind(w.longitude)
                .bind(w.latitude)
                .bind(&w.rtsp_url)
                .bind(&w.username)
                .bind(w.clear_password && w.password.is_none())
                .bind(crate::store::sql::stored_password(w, self.cipher.as_deref()))
                .bind(w.transport.as_str())
                .bind(w.pull_mode.as_str())
                .bind(w.enabled)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    conflict_or(e, || "a referenced district or checkpoint no longer exists".into())
                })?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("camera {id} does not exist")));
                }
                Self::replace_tags(&mut tx, id, &w.tags).await?;
                sqlx::query("UPDATE camera_search SET text = $1 WHERE camera_id = $2")
                    .bind(search_text(id, &w.name, &w.address))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_camera(&self, id: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                for sql in [
                    "DELETE FROM camera_tags WHERE camera_id = $1",
                    "DELETE FROM camera_search WHERE camera_id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                let r = sqlx::query("DELETE FROM cameras WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("camera {id} does not exist")));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn existing_camera_ids(
                &self,
                ids: &[String],
            ) -> Result<HashSet<String>, StoreError> {
                let mut out = HashSet::new();
                for chunk in ids.chunks(500) {
                    let mut qb = QueryBuilder::<$db>::new("SELECT id FROM cameras WHERE id IN (");
                    let mut sep = qb.separated(", ");
                    for c in chunk {
                        sep.push_bind(c.clone());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&self.pool).await? {
                        out.insert(row.try_get(0)?);
                    }
                }
                Ok(out)
            }

            async fn insert_transitions(&self, rows: &[NewTransition]) -> Result<(), StoreError> {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                for chunk in rows.chunks(BATCH) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO camera_transitions (camera_id, district_code, at_ms, from_state, to_state, reason) ",
                    );
                    qb.push_values(chunk, |mut b, t| {
                        b.push_bind(t.camera_id.clone())
                            .push_bind(t.district_code.clone())
                            .push_bind(t.at_ms)
                            .push_bind(t.from_state.clone())
                            .push_bind(t.to_state.clone())
                            .push_bind(t.reason.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn camera_transitions(
                &self,
                camera_id: &str,
                limit: i64,
            ) -> Result<Vec<TransitionRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, camera_id, district_code, at_ms, from_state, to_state, reason \
                     FROM camera_transitions WHERE camera_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
                )
                .bind(camera_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn camera_window(
                &self,
                camera_id: &str,
                start_ms: i64,
                end_ms: i64,
                limit: i64,
            ) -> Result<(Option<TransitionRow>, Vec<TransitionRow>), StoreError> {
                let before = sqlx::query_as(
                    "SELECT id, camera_id, district_code, at_ms, from_state, to_state, reason \
                     FROM camera_transitions WHERE camera_id = $1 AND at_ms < $2 \
                     ORDER BY at_ms DESC, id DESC LIMIT 1",
                )
                .bind(camera_id)
                .bind(start_ms)
                .fetch_optional(&self.pool)
                .await?;
                let during = sqlx::query_as(
                    "SELECT id, camera_id, district_code, at_ms, from_state, to_state, reason \
                     FROM camera_transitions WHERE camera_id = $1 AND at_ms >= $2 AND at_ms < $3 \
                     ORDER BY at_ms, id LIMIT $4",
                )
                .bind(camera_id)
                .bind(start_ms)
                .bind(end_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok((before, during))
            }

            async fn list_transitions(
                &self,
                district: Option<&str>,
                since_ms: Option<i64>,
                after_id: Option<i64>,
                limit: i64,
            ) -> Result<Vec<TransitionRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT id, camera_id, district_code, at_ms, from_state, to_state, reason \
                     FROM camera_transitions WHERE 1 = 1",
                );
                if let Some(d) = district {
                    push_subtree(&mut qb, "district_code", d);
                }
                if let Some(s) = since_ms {
                    qb.push(" AND at_ms >= ").push_bind(s);
                }
                if let Some(a) = after_id {
                    qb.push(" AND id > ").push_bind(a);
                }
                qb.push(" ORDER BY id LIMIT ").push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn camera_keys(
                &self,
                district: Option<&str>,
            ) -> Result<Vec<CameraKey>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT id, name, district_code, point_type, enabled FROM cameras WHERE 1 = 1",
                );
                if let Some(d) = district {
                    push_subtree(&mut qb, "district_code", d);
                }
                qb.push(" ORDER BY id");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn window_transitions(
                &self,
                district: Option<&str>,
                start_ms: i64,
                end_ms: i64,
            ) -> Result<(Vec<TransitionRow>, Vec<TransitionRow>), StoreError> {
                const COLS: &str = "id, camera_id, district_code, at_ms, from_state, to_state, reason";
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {COLS} FROM (SELECT {COLS}, row_number() OVER \
                     (PARTITION BY camera_id ORDER BY at_ms DESC, id DESC) AS rn \
                     FROM camera_transitions WHERE at_ms < "
                ));
                qb.push_bind(start_ms);
                if let Some(d) = district {
                    push_subtree(&mut qb, "district_code", d);
                }
                qb.push(") x WHERE rn = 1 ORDER BY camera_id");
                let before = qb.build_query_as().fetch_all(&self.pool).await?;
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {COLS} FROM camera_transitions WHERE at_ms >= "
                ));
                qb.push_bind(start_ms).push(" AND at_ms < ").push_bind(end_ms);
                if let Some(d) = district {
                    push_subtree(&mut qb, "district_code", d);
                }
                qb.push(" ORDER BY at_ms, id");
                let during = qb.build_query_as().fetch_all(&self.pool).await?;
                Ok((before, during))
            }

            async fn import_cameras(
                &self,
                writes: &[CameraWrite],
                progress: Progress<'_>,
            ) -> Result<ImportCounts, StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query($lock).execute(&mut *tx).await?;
                let given: Vec<String> = writes
                    .iter()
                    .filter_map(|w| match &w.id {
                        IdSpec::Given(id) => Some(id.clone()),
                        _ => None,
                    })
                    .collect();
                let mut existing = HashSet::new();
                for chunk in given.chunks(500) {
                    let mut qb = QueryBuilder::<$db>::new("SELECT id FROM cameras WHERE id IN (");
                    let mut sep = qb.separated(", ");
                    for c in chunk {
                        sep.push_bind(c.clone());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&mut *tx).await? {
                        existing.insert(row.try_get::<String, _>(0)?);
                    }
                }
                let mut next = HashMap::new();
                let mut ids = Vec::with_capacity(writes.len());
                for w in writes {
                    ids.push(Self::resolve_id(&mut tx, "cameras", &w.id, &mut next).await?);
                }
                let now = now_ms();
                let pairs: Vec<(&str, &CameraWrite)> =
                    ids.iter().map(String::as_str).zip(writes.iter()).collect();
                let mut done = 0u64;
                for chunk in pairs.chunks(BATCH * 5) {
                    self.upsert_camera_rows(&mut tx, chunk, now).await?;
                    // Tags: replace the set of every imported camera.
                    for ids in chunk.chunks(500) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "DELETE FROM camera_tags WHERE camera_id IN (",
                        );
                        let mut sep = qb.separated(", ");
                        for (id, _) in ids {
                            sep.push_bind(id.to_string());
                        }
                        qb.push(")");
                        qb.build().execute(&mut *tx).await?;
                    }
                    let tags: Vec<(&str, &String, &String)> = chunk
                        .iter()
                        .flat_map(|(id, w)| w.tags.iter().map(move |(k, v)| (*id, k, v)))
                        .collect();
                    for t in tags.chunks(BATCH * 3) {
                        let mut qb = QueryBuilder::<$db>::new(
                            "INSERT INTO camera_tags (camera_id, key, value) ",
                        );
                        qb.push_values(t, |mut b, (id, k, v)| {
                            b.push_bind(id.to_string())
                                .push_bind((*k).clone())
                                .push_bind((*v).clone());
                        });
                        qb.build().execute(&mut *tx).await?;
                    }
                    done += chunk.len() as u64;
                    progress(done);
                }
                tx.commit().await?;
                if writes.len() >= 1000 {
                    // Fresh statistics after a bulk load, so the planner picks
                    // the district index or the ID order by what the data holds.
                    for t in $after_bulk {
                        sqlx::query(t).execute(&self.pool).await?;
                    }
                }
                let updated = ids.iter().filter(|id| existing.contains(*id)).count() as u64;
                Ok(ImportCounts {
                    created: ids.len() as u64 - updated,
                    updated,
                })
            }
        }
    };
}

pub(crate) use impl_store;
