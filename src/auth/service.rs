//! The access-control service: users and their logins (with lockout), API
//! keys, and who a presented credential belongs to.

use std::sync::Arc;
use std::time::Duration;

use super::cipher::CredentialCipher;
use super::digest::{self, DigestAuth};
use super::{Principal, PrincipalKind, Role, Scope, password, token};
use crate::catalogue::now_ms;
use crate::store::access::{ApiKeyRow, UserRow, UserUpdate};
use crate::store::{Store, StoreError};

/// Login and session settings.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Failed logins in a row that lock an account.
    pub lockout_after: i64,
    /// How long a locked account stays locked.
    pub lockout: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            session_ttl: Duration::from_secs(12 * 3600),
            lockout_after: 20,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// Why a login was refused. The messages never say whether the user exists.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many failures: refused, even with the right password, until then.
    #[error("the account is locked after repeated failed logins; try again later")]
    Locked { until_ms: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a user or key could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> AccessError {
    AccessError::Invalid {
        field,
        message: message.into(),
    }
}

/// Checks a username: 1–64 letters, digits, `.`, `_` or `-` (any script).
pub fn check_username(name: &str) -> Result<(), AccessError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "username",
            "must be 1 to 64 letters, digits, `.`, `_` or `-`",
        ))
    }
}

/// Checks a scope: a district code of 2, 4, 6, 9 or 12 digits.
pub fn check_scope(scope: Option<&str>) -> Result<(), AccessError> {
    match scope {
        None => Ok(()),
        Some(s)
            if matches!(s.len(), 2 | 4 | 6 | 9 | 12) && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(())
        }
        Some(_) => Err(invalid(
            "scope",
            "must be a district code of 2, 4, 6, 9 or 12 digits",
        )),
    }
}

/// A key as created: its one-time secret and what is stored.
pub struct NewKey {
    pub secret: String,
    pub row: ApiKeyRow,
}

/// The access-control service.
pub struct AuthService {
    store: Arc<dyn Store>,
    opts: AuthOptions,
    /// Encrypts the RTSP Digest hashes; without it none are kept (Digest
    /// is then refused, Basic still works).
    cipher: Option<Arc<CredentialCipher>>,
    /// A real hash to verify against when the user does not exist, so the
    /// time taken does not tell who does.
    decoy: String,
}

impl AuthService {
    pub fn new(store: Arc<dyn Store>, opts: AuthOptions) -> Self {
        AuthService {
            store,
            opts,
            cipher: None,
            decoy: password::hash("decoy password, never valid"),
        }
    }

    /// Keeps RTSP Digest hashes, encrypted with `cipher`.
    pub fn with_cipher(mut self, cipher: Arc<CredentialCipher>) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// The encrypted Digest hash of `username` and `secret`, if a cipher is set.
    fn sealed_ha1(&self, username: &str, secret: &str) -> Option<String> {
        self.cipher
            .as_ref()
            .map(|c| c.encrypt(&digest::ha1(username, secret)))
    }

    pub fn options(&self) -> &AuthOptions {
        &self.opts
    }

    /// On a database without users: creates `admin` with `password`, or a
    /// generated one, which is returned (to be shown once). `None` when
    /// there are users already.
    pub async fn bootstrap_admin(
        &self,
        password: Option<&str>,
    ) -> Result<Option<String>, AccessError> {
        if self.store.user_count().await? > 0 {
            return Ok(None);
        }
        let pw = match password {
            Some(p) => p.to_string(),
            None => token::random(15),
        };
        match self.create_user("admin", &pw, Role::Admin, None).await {
            Ok(_) => Ok(Some(pw)),
            // Another node created it meanwhile.
            Err(AccessError::Store(StoreError::Conflict(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_user(
        &self,
        username: &str,
        pw: &str,
        role: Role,
        scope: Option<&str>,
    ) -> Result<i64, AccessError> {
        check_username(username)?;
        check_scope(scope)?;
        password::check_new(pw).map_err(|m| invalid("password", m))?;
        let hash = hash_blocking(pw).await;
        let id = self
            .store
            .create_user(username, &hash, role.as_str(), scope, now_ms())
            .await?;
        self.remember_digest(id, username, pw).await?;
        Ok(id)
    }

    /// Stores the user's RTSP Digest hash (encrypted), once the password is
    /// known to be right.
    async fn remember_digest(&self, id: i64, username: &str, pw: &str) -> Result<(), StoreError> {
        let Some(ha1) = self.sealed_ha1(username, pw) else {
            return Ok(());
        };
        let update = UserUpdate {
            digest_ha1: Some(ha1),
            ..Default::default()
        };
        self.store.update_user(id, &update, now_ms()).await
    }

    pub async fn user(&self, username: &str) -> Result<UserRow, AccessError> {
        self.store
            .user_by_name(username)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user `{username}`")).into())
    }

    pub async fn set_password(&self, username: &str, pw: &str) -> Result<(), AccessError> {
        password::check_new(pw).map_err(|m| invalid("password", m))?;
        let user = self.user(username).await?;
        let hash = hash_blocking(pw).await;
        let update = UserUpdate {
            password_hash: Some(hash),
            digest_ha1: self.sealed_ha1(username, pw),
            ..Default::default()
        };
        Ok(self.store.update_user(user.id, &update, now_ms()).await?)
    }

    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), AccessError> {
        let user = self.user(username).await?;
        let update = UserUpdate {
            disabled: Some(disabled),
            ..Default::default()
        };
        Ok(self.store.update_user(user.id, &update, now_ms()).await?)
    }

    /// Checks a login; on success a new session token (shown to the client
    /// only, stored hashed). `lockout_after` failures in a row lock the
    /// account for the lockout time, during which even the right password
    /// is refused.
    pub async fn login(&self, username: &str, pw: &str) -> Result<(String, UserRow), LoginError> {
        let user = self.check_password(username, pw).await?;
        let now = now_ms();
        let session = token::new_session();
        let expires = now + self.opts.session_ttl.as_millis() as i64;
        self.store
            .create_session(&token::digest(&session), user.id, now, expires)
            .await?;
        Ok((session, user))
    }

    /// Checks a username and password, counting failures towards the
    /// lockout and clearing them on success.
    async fn check_password(&self, username: &str, pw: &str) -> Result<UserRow, LoginError> {
        let now = now_ms();
        let Some(user) = self.store.user_by_name(username).await? else {
            let _ = verify_blocking(pw, &self.decoy).await;
            return Err(LoginError::BadCredentials);
        };
        if let Some(until) = user.locked_until_ms.filter(|u| *u > now) {
            return Err(LoginError::Locked { until_ms: until });
        }
        let ok = verify_blocking(pw, &user.password_hash).await;
        if !ok || user.disabled {
            return Err(self.failed(&user, now).await);
        }
        self.succeeded(&user).await?;
        if user.digest_ha1.is_none() {
            self.remember_digest(user.id, &user.username, pw).await?;
        }
        Ok(user)
    }

    /// Counts a failed login of `user` towards the lockout: the error to
    /// answer with.
    async fn failed(&self, user: &UserRow, now: i64) -> LoginError {
        // A lock that has run out starts the count afresh.
        let before = if user.locked_until_ms.is_some() {
            0
        } else {
            user.failed_logins
        };
        let failed = before + 1;
        let lock =
            (failed >= self.opts.lockout_after).then(|| now + self.opts.lockout.as_millis() as i64);
        if let Err(e) = self.store.set_login_state(user.id, failed, lock).await {
            return e.into();
        }
        match lock {
            Some(until_ms) => LoginError::Locked { until_ms },
            None => LoginError::BadCredentials,
        }
    }

    /// Clears the failure count after a successful login.
    async fn succeeded(&self, user: &UserRow) -> Result<(), StoreError> {
        if user.failed_logins > 0 || user.locked_until_ms.is_some() {
            self.store.set_login_state(user.id, 0, None).await?;
        }
        Ok(())
    }

    /// Checks an RTSP Digest response (whose nonce the caller checked) for
    /// `method`: an API key (by its ID as the username) or a user, whose
    /// failures count towards the lockout like logins.
    pub async fn digest_principal(
        &self,
        d: &DigestAuth,
        method: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let Some(cipher) = &self.cipher else {
            return Ok(None);
        };
        let matches = |sealed: &Option<String>| {
            sealed
                .as_deref()
                .and_then(|s| cipher.decrypt(s).ok())
                .is_some_and(|ha1| {
                    let want = digest::response(&ha1, &d.nonce, method, &d.uri);
                    digest::ct_eq(want.as_bytes(), d.response.to_ascii_lowercase().as_bytes())
                })
        };
        if d.realm != digest::REALM {
            return Ok(None);
        }
        if let Some(k) = self.store.key_by_id(&d.username).await? {
            return Ok(if matches(&k.digest_ha1) {
                key_principal_of(k)
            } else {
                None
            });
        }
        let Some(user) = self.store.user_by_name(&d.username).await? else {
            return Ok(None);
        };
        let now = now_ms();
        if user.locked_until_ms.is_some_and(|u| u > now) {
            return Ok(None);
        }
        if user.disabled || !matches(&user.digest_ha1) {
            return match self.failed(&user, now).await {
                LoginError::Store(e) => Err(e),
                _ => Ok(None),
            };
        }
        self.succeeded(&user).await?;
        Ok(user_principal(&user))
    }

    pub async fn logout(&self, session: &str) -> Result<(), StoreError> {
        self.store.delete_session(&token::digest(session)).await
    }

    /// The principal of a login session token.
    pub async fn session_principal(&self, session: &str) -> Result<Option<Principal>, StoreError> {
        let user = self
            .store
            .session_user(&token::digest(session), now_ms())
            .await?;
        Ok(user
            .filter(|u| !u.disabled)
            .and_then(|u| user_principal(&u)))
    }

    /// Checks a username and password without a session (RTSP Basic).
    /// Counts failures like a login.
    pub async fn password_principal(
        &self,
        username: &str,
        pw: &str,
    ) -> Result<Option<Principal>, StoreError> {
        match self.check_password(username, pw).await {
            Ok(user) => Ok(user_principal(&user)),
            Err(LoginError::Store(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// A new API key.
    pub async fn create_key(
        &self,
        name: &str,
        role: Role,
        scope: Option<&str>,
        expires_ms: Option<i64>,
        created_by: &str,
    ) -> Result<NewKey, AccessError> {
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(invalid("name", "must be 1 to 100 characters"));
        }
        check_scope(scope)?;
        let secret = token::new_api_key();
        let id = hex_id();
        let row = ApiKeyRow {
            digest_ha1: self.sealed_ha1(&id, &secret),
            id,
            name: name.trim().to_string(),
            secret_hash: token::digest(&secret),
            role: role.as_str().to_string(),
            scope: scope.map(str::to_string),
            created_by: created_by.to_string(),
            created_at_ms: now_ms(),
            expires_at_ms: expires_ms,
            revoked_at_ms: None,
            last_used_ms: None,
        };
        self.store.create_key(&row).await?;
        Ok(NewKey { secret, row })
    }

    /// The principal of an API key secret: unknown, revoked and expired
    /// keys have none.
    pub async fn key_principal(&self, secret: &str) -> Result<Option<Principal>, StoreError> {
        if !secret.starts_with(token::KEY_PREFIX) {
            return Ok(None);
        }
        let Some(k) = self.store.key_by_hash(&token::digest(secret)).await? else {
            return Ok(None);
        };
        Ok(key_principal_of(k))
    }

    /// Whether the principal's user or key is still valid (for viewers
    /// already watching: a disabled user or revoked key is cut off).
    pub async fn still_valid(&self, p: &Principal) -> Result<bool, StoreError> {
        Ok(match &p.kind {
            PrincipalKind::User { id, .. } => self
                .store
                .user_by_id(*id)
                .await?
                .is_some_and(|u| !u.disabled),
            PrincipalKind::Key { id, .. } => self
                .store
                .key_by_id(id)
                .await?
                .and_then(key_principal_of)
                .is_some(),
            PrincipalKind::Link { .. } => true,
        })
    }
}

/// The principal of a stored key: none once revoked or expired.
fn key_principal_of(k: ApiKeyRow) -> Option<Principal> {
    let now = now_ms();
    if k.revoked_at_ms.is_some() || k.expires_at_ms.is_some_and(|e| e <= now) {
        return None;
    }
    let role = k.role.parse::<Role>().ok()?;
    Some(Principal {
        kind: PrincipalKind::Key {
            id: k.id,
            name: k.name,
        },
        role,
        scope: Scope(k.scope),
    })
}

fn user_principal(u: &UserRow) -> Option<Principal> {
    Some(Principal {
        kind: PrincipalKind::User {
            id: u.id,
            username: u.username.clone(),
        },
        role: u.role.parse().ok()?,
        scope: Scope(u.scope.clone()),
    })
}

/// 8 random hex digits: a key's or link's public id.
pub fn hex_id() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    format!("{:08x}", OsRng.next_u32())
}

/// argon2 takes tens of milliseconds of CPU: off the async workers.
async fn hash_blocking(pw: &str) -> String {
    let pw = pw.to_string();
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .expect("hashing does not panic")
}

async fn verify_blocking(pw: &str, hash: &str) -> bool {
    let (pw, hash) = (pw.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_scopes_are_checked() {
        assert!(check_username("admin").is_ok());
        assert!(check_username("凉州区-值班员.1").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_username(&"a".repeat(65)).is_err());
        assert!(check_scope(None).is_ok());
        assert!(check_scope(Some("620602")).is_ok());
        assert!(check_scope(Some("62060")).is_err());
        assert!(check_scope(Some("62060a")).is_err());
        let id = hex_id();
        assert!(id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
