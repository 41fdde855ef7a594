//! Persistence of access control: users, API keys, login sessions, embed
//! links, the audit trail and settings. One SQL body for both backends, like
//! the catalogue's (`sql.rs`).

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// A stored user. The password hash never leaves the auth code: the API
/// shows [`UserRow::public`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub scope: Option<String>,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// RTSP Digest's MD5(username:realm:password), encrypted.
    pub digest_ha1: Option<String>,
}

/// What the API shows of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicUser {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub scope: Option<String>,
    pub disabled: bool,
    /// Until when the account is locked after failed logins (ms), if it is.
    pub locked_until_ms: Option<i64>,
    pub created_at_ms: i64,
}

impl UserRow {
    pub fn public(&self) -> PublicUser {
        PublicUser {
            id: self.id,
            username: self.username.clone(),
            role: self.role.clone(),
            scope: self.scope.clone(),
            disabled: self.disabled,
            locked_until_ms: self.locked_until_ms,
            created_at_ms: self.created_at_ms,
        }
    }
}

/// A stored API key: the secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub role: String,
    pub scope: Option<String>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    /// RTSP Digest's MD5(id:realm:secret), encrypted.
    #[serde(skip)]
    pub digest_ha1: Option<String>,
}

/// A stored embed link (its token is derived, never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EmbedLinkRow {
    pub id: String,
    pub camera_id: Option<String>,
    pub district_code: Option<String>,
    pub note: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// One audit record: a view session or a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    /// `view`, `change` or `auth`.
    pub kind: String,
    /// `user:NAME`, `key:ID`, `link:ID`, `cli` or `system`.
    pub principal: String,
    pub action: String,
    pub target: Option<String>,
    pub camera_id: Option<String>,
    pub protocol: Option<String>,
    pub client: Option<String>,
    pub ended_ms: Option<i64>,
    pub bytes: Option<i64>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
}

/// An audit record to store (the ID is assigned by the store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAudit {
    pub at_ms: i64,
    pub kind: &'static str,
    pub principal: String,
    pub action: String,
    pub target: Option<String>,
    pub camera_id: Option<String>,
    pub protocol: Option<String>,
    pub client: Option<String>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
}

/// Audit list filters, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub camera: Option<String>,
    pub principal: Option<String>,
    pub since_ms: Option<i64>,
    /// Only records older than this ID (the previous page's last).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub password_hash: Option<String>,
    pub role: Option<String>,
    /// `Some(None)` makes the user unscoped.
    pub scope: Option<Option<String>>,
    pub disabled: Option<bool>,
    /// A new RTSP Digest hash (encrypted), set with a new password or
    /// when a password is next used.
    pub digest_ha1: Option<String>,
}

/// Access-control persistence.
#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn user_count(&self) -> Result<i64, StoreError>;
    /// A new user; `Conflict` when the name is taken.
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
        scope: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, StoreError>;
    async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, StoreError>;
    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError>;
    /// Applies `u`; `NotFound` when there is no such user. A new password
    /// or disabling ends the user's sessions.
    async fn update_user(&self, id: i64, u: &UserUpdate, now_ms: i64) -> Result<(), StoreError>;
    /// Records the failed-login count and lock of a user.
    async fn set_login_state(
        &self,
        id: i64,
        failed_logins: i64,
        locked_until_ms: Option<i64>,
    ) -> Result<(), StoreError>;

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError>;
    /// The user of an unexpired session.
    async fn session_user(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<UserRow>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;

    async fn create_key(&self, key: &ApiKeyRow) -> Result<(), StoreError>;
    async fn key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    async fn list_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError>;
    /// Revokes a key; false when there is none (or it was revoked already).
    async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;
    async fn touch_key(&self, id: &str, now_ms: i64) -> Result<(), StoreError>;

    async fn create_link(&self, link: &EmbedLinkRow) -> Result<(), StoreError>;
    async fn link(&self, id: &str) -> Result<Option<EmbedLinkRow>, StoreError>;
    async fn list_links(&self) -> Result<Vec<EmbedLinkRow>, StoreError>;
    async fn revoke_link(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;

    async fn insert_audit(&self, a: &NewAudit) -> Result<i64, StoreError>;
    /// Ends a view session's record.
    async fn finish_view(&self, id: i64, ended_ms: i64, bytes: i64) -> Result<(), StoreError>;
    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError>;
    /// Deletes records older than `before_ms`; how many.
    async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError>;

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// The web UI's video-wall layouts of `owner` (a principal's label),
    /// by name: (name, layout JSON, updated at).
    async fn walls(&self, owner: &str) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// Creates or replaces a layout.
    async fn put_wall(
        &self,
        owner: &str,
        name: &str,
        layout: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Deletes a layout; false when there was none.
    async fn delete_wall(&self, owner: &str, name: &str) -> Result<bool, StoreError>;

    /// Stores `value` unless `key` has one already; the stored value.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;

    /// Every value encrypted with the credential key, as stored (for key
    /// checks and rotation): camera passwords by camera ID, and the RTSP
    /// Digest hashes of users (`user:ID`) and keys (`key:ID`), and the
    /// link-signing secret (`setting:link_secret`).
    async fn stored_credentials(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Replaces values listed by [`Self::stored_credentials`] (already
    /// encrypted), in one transaction.
    async fn replace_credentials(&self, rows: &[(String, String)]) -> Result<(), StoreError>;
}

/// Implements [`AccessStore`] for a backend store with a `pool` field.
macro_rules! impl_access_store {
    ($store:ident, $db:ty, begin = $begin:literal) => {
        use crate::store::access::{
            AccessStore, ApiKeyRow, AuditFilter, AuditRow, EmbedLinkRow, NewAudit, UserRow,
            UserUpdate,
        };

        const USER_COLS: &str = "id, username, password_hash, role, scope, disabled, \
            failed_logins, locked_until_ms, created_at_ms, updated_at_ms, digest_ha1";
        const KEY_COLS: &str = "id, name, secret_hash, role, scope, created_by, created_at_ms, \
            expires_at_ms, revoked_at_ms, last_used_ms, digest_ha1";
        const LINK_COLS: &str = "id, camera_id, district_code, note, created_by, created_at_ms, \
            expires_at_ms, revoked_at_ms";

        impl $store {
            /// Marks row `id` of `table` (api_keys, embed_links) revoked;
            /// false when there is none or it was revoked already.
            async fn revoke(&self, table: &str, id: &str, now_ms: i64) -> Result<bool, StoreError> {
                let n = sqlx::query(&format!(
                    "UPDATE {table} SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL"
                ))
                .bind(id)
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n > 0)
            }
        }

        #[async_trait::async_trait]
        impl AccessStore for $store {
            async fn user_count(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM users")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn create_user(
                &self,
                username: &str,
                password_hash: &str,
                role: &str,
                scope: Option<&str>,
                now_ms: i64,
            ) -> Result<i64, StoreError> {
                let r = sqlx::query_scalar(
                    "INSERT INTO users (username, password_hash, role, scope, disabled, \
                     failed_logins, created_at_ms, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, 0, $6, $6) RETURNING id",
                )
                .bind(username)
                .bind(password_hash)
                .bind(role)
                .bind(scope)
                .bind(false)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await;
                match r {
                    Ok(id) => Ok(id),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(
                        StoreError::Conflict(format!("user `{username}` already exists")),
                    ),
                    Err(e) => Err(e.into()),
                }
            }

            async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {USER_COLS} FROM users WHERE username = $1"
                ))
                .bind(username)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
                Ok(sqlx::query_as(&format!("SELECT {USER_COLS} FROM users ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn update_user(
                &self,
                id: i64,
                u: &UserUpdate,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let n = sqlx::query(
                    "UPDATE users SET \
                     password_hash = COALESCE($2, password_hash), \
                     role = COALESCE($3, role), \
                     scope = CASE WHEN $4 THEN $5 ELSE scope END, \
                     disabled = COALESCE($6, disabled), \
                     failed_logins = CASE WHEN $2 IS NULL THEN failed_logins ELSE 0 END, \
                     locked_until_ms = CASE WHEN $2 IS NULL THEN locked_until_ms ELSE NULL END, \
                     digest_ha1 = CASE WHEN $2 IS NULL THEN COALESCE($8, digest_ha1) ELSE $8 END, \
                     updated_at_ms = $7 WHERE id = $1",
                )
                .bind(id)
                .bind(u.password_hash.as_deref())
                .bind(u.role.as_deref())
                .bind(u.scope.is_some())
                .bind(u.scope.clone().flatten())
                .bind(u.disabled)
                .bind(now_ms)
                .bind(u.digest_ha1.as_deref())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("no user {id}")));
                }
                if u.password_hash.is_some() || u.disabled == Some(true) {
                    sqlx::query("DELETE FROM user_sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn set_login_state(
                &self,
                id: i64,
                failed_logins: i64,
                locked_until_ms: Option<i64>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE users SET failed_logins = $2, locked_until_ms = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(failed_logins)
                .bind(locked_until_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn create_session(
                &self,
                token_hash: &str,
                user_id: i64,
                now_ms: i64,
                expires_ms: i64,
            ) -> Result<(), StoreError> {
                // Expired sessions go as new ones come.
                sqlx::query("DELETE FROM user_sessions WHERE expires_at_ms <= $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                sqlx::query(
                    "INSERT INTO user_sessions (token_hash, user_id, created_at_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(user_id)
                .bind(now_ms)
                .bind(expires_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session_user(
                &self,
                token_hash: &str,
                now_ms: i64,
            ) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {USER_COLS} FROM users WHERE id = (SELECT user_id FROM user_sessions \
                     WHERE token_hash = $1 AND expires_at_ms > $2)"
                ))
                .bind(token_hash)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM user_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_key(&self, k: &ApiKeyRow) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO api_keys (id, name, secret_hash, role, scope, created_by, \
                     created_at_ms, expires_at_ms, digest_ha1) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&k.id)
                .bind(&k.name)
                .bind(&k.secret_hash)
                .bind(&k.role)
                .bind(k.scope.as_deref())
                .bind(&k.created_by)
                .bind(k.created_at_ms)
                .bind(k.expires_at_ms)
                .bind(k.digest_ha1.as_deref())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn key_by_hash(
                &self,
                secret_hash: &str,
            ) -> Result<Option<ApiKeyRow>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {KEY_COLS} FROM api_keys WHERE secret_hash = $1"
                ))
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn key_by_id(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
                Ok(sqlx::query_as(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {KEY_COLS} FROM api_keys ORDER BY created_at_ms, id"
                ))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
                self.revoke("api_keys", id, now_ms).await
            }

            async fn touch_key(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE api_keys SET last_used_ms = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_link(&self, l: &EmbedLinkRow) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO embed_links (id, camera_id, district_code, note, created_by, \
                     created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&l.id)
                .bind(l.camera_id.as_deref())
                .bind(l.district_code.as_deref())
                .bind(&l.note)
                .bind(&l.created_by)
                .bind(l.created_at_ms)
                .bind(l.expires_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn link(&self, id: &str) -> Result<Option<EmbedLinkRow>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {LINK_COLS} FROM embed_links WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn list_links(&self) -> Result<Vec<EmbedLinkRow>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {LINK_COLS} FROM embed_links ORDER BY created_at_ms DESC, id"
                ))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn revoke_link(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
                self.revoke("embed_links", id, now_ms).await
            }

            async fn insert_audit(&self, a: &NewAudit) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO audit_log (at_ms, kind, principal, action, target, camera_id, \
                     protocol, client, before_json, after_json) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(a.at_ms)
                .bind(a.kind)
                .bind(&a.principal)
                .bind(&a.action)
                .bind(a.target.as_deref())
                .bind(a.camera_id.as_deref())
                .bind(a.protocol.as_deref())
                .bind(a.client.as_deref())
                .bind(a.before_json.as_deref())
                .bind(a.after_json.as_deref())
                .fetch_one(&self.pool)
                .await?)
            }

            async fn finish_view(
                &self,
                id: i64,
                ended_ms: i64,
                bytes: i64,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE audit_log SET ended_ms = $2, bytes = $3 WHERE id = $1")
                    .bind(id)
                    .bind(ended_ms)
                    .bind(bytes)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, at_ms, kind, principal, action, target, camera_id, protocol, \
                     client, ended_ms, bytes, before_json, after_json FROM audit_log WHERE 1 = 1",
                );
                if let Some(c) = &f.camera {
                    qb.push(" AND camera_id = ").push_bind(c.clone());
                }
                if let Some(p) = &f.principal {
                    qb.push(" AND principal = ").push_bind(p.clone());
                }
                if let Some(s) = f.since_ms {
                    qb.push(" AND at_ms >= ").push_bind(s);
                }
                if let Some(b) = f.before_id {
                    qb.push(" AND id < ").push_bind(b);
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM audit_log WHERE at_ms < $1")
                    .bind(before_ms)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn walls(&self, owner: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT name, layout, updated_at_ms FROM wall_layouts WHERE owner = $1 ORDER BY name",
                )
                .bind(owner)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn put_wall(
                &self,
                owner: &str,
                name: &str,
                layout: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO wall_layouts (owner, name, layout, updated_at_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (owner, name) DO UPDATE SET layout = excluded.layout, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(owner)
                .bind(name)
                .bind(layout)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_wall(&self, owner: &str, name: &str) -> Result<bool, StoreError> {
                Ok(sqlx::query("DELETE FROM wall_layouts WHERE owner = $1 AND name = $2")
                    .bind(owner)
                    .bind(name)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn stored_credentials(&self) -> Result<Vec<(String, String)>, StoreError> {
                let mut rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, password FROM cameras WHERE password IS NOT NULL ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                let users: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, digest_ha1 FROM users WHERE digest_ha1 IS NOT NULL ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.extend(users.into_iter().map(|(id, v)| (format!("user:{id}"), v)));
                let keys: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, digest_ha1 FROM api_keys WHERE digest_ha1 IS NOT NULL ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.extend(keys.into_iter().map(|(id, v)| (format!("key:{id}"), v)));
                // The link-signing secret, kept like the passwords.
                let secret: Option<String> =
                    sqlx::query_scalar("SELECT value FROM settings WHERE key = 'link_secret'")
                        .fetch_optional(&self.pool)
                        .await?;
                rows.extend(secret.map(|v| ("setting:link_secret".to_string(), v)));
                Ok(rows)
            }

            async fn replace_credentials(
                &self,
                rows: &[(String, String)],
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                for (id, stored) in rows {
                    let q = if let Some(user) = id.strip_prefix("user:") {
                        let user: i64 = user.parse().map_err(|_| {
                            StoreError::NotFound(format!("no user {user}"))
                        })?;
                        sqlx::query("UPDATE users SET digest_ha1 = $2 WHERE id = $1").bind(user)
                    } else if let Some(key) = id.strip_prefix("key:") {
                        sqlx::query("UPDATE api_keys SET digest_ha1 = $2 WHERE id = $1").bind(key)
                    } else if let Some(key) = id.strip_prefix("setting:") {
                        sqlx::query("UPDATE settings SET value = $2 WHERE key = $1").bind(key)
                    } else {
                        sqlx::query("UPDATE cameras SET password = $2 WHERE id = $1").bind(id)
                    };
                    q.bind(stored).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_access_store;
