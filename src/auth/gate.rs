//! Who may watch what. Every stream request — RTSP, the WebSocket path,
//! LL-HLS, the embed page — is resolved here to a principal (a key, a
//! login session, a user's password, or a signed embed link), and every
//! view it opens is counted against the stream caps, written to the audit
//! trail (start, end, bytes) and cut off when its credential is revoked:
//! at once on this node, and within [`GateOptions::recheck`] on others
//! sharing the database.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::digest::{self, DigestAuth};
use super::service::AuthService;
use super::token::{self, LinkClaims};
use super::{Principal, PrincipalKind, Role, Scope};
use crate::catalogue::now_ms;
use crate::store::access::NewAudit;
use crate::store::{Store, StoreError};

/// Stream limits and housekeeping.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Concurrent streams per user or key.
    pub max_streams_per_principal: usize,
    /// Concurrent streams per embed link.
    pub max_streams_per_link: usize,
    /// How often the credentials of open views are checked again (revoked
    /// or expired links and keys, disabled users).
    pub recheck: Duration,
    /// Audit records older than this are deleted.
    pub audit_retention: Duration,
    /// An LL-HLS view ends this long after its client's last request.
    pub hls_idle: Duration,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            max_streams_per_principal: 64,
            max_streams_per_link: 8,
            recheck: Duration::from_secs(2),
            audit_retention: Duration::from_secs(180 * 86_400),
            hls_idle: crate::relay::HTTP_VIEWER_TTL,
        }
    }
}

/// A credential as a request presented it.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: Bearer`: an API key.
    Bearer(&'a str),
    /// The login session cookie.
    Session(&'a str),
    /// `?token=` in the URL: an embed-link token or an API key.
    Token(&'a str),
    /// RTSP Basic: a username and password, or any name and an API key or
    /// link token as the password.
    Basic { user: &'a str, pass: &'a str },
    /// RTSP Digest, for the request's method, on the connection of `salt`
    /// (its nonces are bound to it). The caller checked the `uri`.
    Digest {
        auth: &'a DigestAuth,
        method: &'a str,
        salt: &'a str,
    },
}

/// Why a view was not opened.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("{who} already has {limit} streams open, the most allowed")]
    TooMany { who: String, limit: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A view in progress.
struct Live {
    principal: Principal,
    cancel: CancellationToken,
}

/// An LL-HLS client's view: it has no connection, so it lasts while the
/// client keeps asking.
struct HlsView {
    ticket: ViewTicket,
    last: Instant,
}

/// How long a link's validity, once read from the database, is trusted.
const LINK_CACHE: Duration = Duration::from_secs(2);

/// What a stored link reaches: one camera, or one district subtree. Read
/// from the link's database record, never from a token: a token whose
/// claims differ from its record is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LinkReach {
    camera: Option<String>,
    district: Option<String>,
}

/// The stream gate.
pub struct Gate {
    auth: Arc<AuthService>,
    store: Arc<dyn Store>,
    /// Signs embed links and RTSP nonces; kept in the database's settings
    /// so every node shares it.
    secret: Vec<u8>,
    opts: GateOptions,
    next: AtomicU64,
    views: Mutex<HashMap<u64, Live>>,
    /// Connections authenticated as a principal, not (yet) viewing: ended
    /// like views when the credential is revoked.
    watchers: Mutex<HashMap<u64, Live>>,
    /// Link ID → (what it reaches, when valid; when read).
    links: Mutex<HashMap<String, (Option<LinkReach>, Instant)>>,
    hls: Mutex<HashMap<(String, IpAddr, String), HlsView>>,
}

impl Gate {
    /// The gate, with the link-signing secret read from (or created in)
    /// the database.
    pub async fn new(
        auth: Arc<AuthService>,
        store: Arc<dyn Store>,
        opts: GateOptions,
    ) -> Result<Arc<Gate>, StoreError> {
        let secret = link_secret(&*store).await?;
        Ok(Arc::new(Gate {
            auth,
            store,
            secret,
            opts,
            next: AtomicU64::new(1),
            views: Mutex::default(),
            watchers: Mutex::default(),
            links: Mutex::default(),
            hls: Mutex::default(),
        }))
    }

    /// Signs an embed link's claims.
    pub fn sign(&self, claims: &LinkClaims) -> String {
        token::sign_link(claims, &self.secret)
    }

    /// The `WWW-Authenticate` values of an RTSP challenge on the connection
    /// of `salt`.
    pub fn challenge(&self, salt: &str) -> [String; 2] {
        digest::challenge(&self.secret, now_ms() / 1000, salt)
    }

    /// The principal a credential belongs to; `None` when it is unknown,
    /// wrong, expired or revoked.
    pub async fn resolve(&self, cred: Credential<'_>) -> Result<Option<Principal>, StoreError> {
        match cred {
            Credential::Bearer(k) => self.auth.key_principal(k).await,
            Credential::Session(s) => self.auth.session_principal(s).await,
            Credential::Token(t) => self.token(t).await,
            Credential::Basic { user, pass } => {
                if pass.starts_with(token::KEY_PREFIX) || pass.starts_with("cgl1.") {
                    self.token(pass).await
                } else {
                    self.auth.password_principal(user, pass).await
                }
            }
            Credential::Digest { auth, method, salt } => {
                if !digest::nonce_fresh(&auth.nonce, &self.secret, now_ms() / 1000, salt) {
                    return Ok(None);
                }
                self.auth.digest_principal(auth, method).await
            }
        }
    }

    /// An API key or an embed-link token.
    async fn token(&self, t: &str) -> Result<Option<Principal>, StoreError> {
        if t.starts_with(token::KEY_PREFIX) {
            return self.auth.key_principal(t).await;
        }
        let Ok(claims) = token::verify_link(t, &self.secret, now_ms() / 1000) else {
            return Ok(None);
        };
        let Some(reach) = self.link_reach(&claims.id, LINK_CACHE).await? else {
            return Ok(None);
        };
        if reach.camera != claims.camera || reach.district != claims.district {
            tracing::warn!(link = %claims.id, "a link token's claims differ from its stored link: refused");
            return Ok(None);
        }
        Ok(Some(Principal {
            kind: PrincipalKind::Link {
                id: claims.id,
                camera: reach.camera,
            },
            role: Role::Viewer,
            scope: Scope(reach.district),
        }))
    }

    /// What link `id` reaches, if it exists, is not revoked, has not
    /// expired and reaches a camera or a district, as read from the
    /// database at most `max_age` ago.
    async fn link_reach(
        &self,
        id: &str,
        max_age: Duration,
    ) -> Result<Option<LinkReach>, StoreError> {
        if let Some((reach, at)) = self.links.lock().unwrap().get(id)
            && at.elapsed() <= max_age
        {
            return Ok(reach.clone());
        }
        let reach = self
            .store
            .link(id)
            .await?
            .filter(|l| l.revoked_at_ms.is_none() && l.expires_at_ms > now_ms())
            .filter(|l| l.camera_id.is_some() || l.district_code.is_some())
            .map(|l| LinkReach {
                camera: l.camera_id,
                district: l.district_code,
            });
        let mut links = self.links.lock().unwrap();
        if links.len() >= 10_000 {
            links.retain(|_, (_, at)| at.elapsed() <= LINK_CACHE);
        }
        links.insert(id.to_string(), (reach.clone(), Instant::now()));
        Ok(reach)
    }

    async fn link_valid(&self, id: &str, max_age: Duration) -> Result<bool, StoreError> {
        Ok(self.link_reach(id, max_age).await?.is_some())
    }

    /// After link `id` was revoked: refuses it from now on and ends its
    /// open views.
    pub fn link_revoked(&self, id: &str) {
        self.links
            .lock()
            .unwrap()
            .insert(id.to_string(), (None, Instant::now()));
        self.end_views(|p| matches!(&p.kind, PrincipalKind::Link { id: l, .. } if l == id));
    }

    /// After key `id` was revoked: ends its open views.
    pub fn key_revoked(&self, id: &str) {
        self.end_views(|p| matches!(&p.kind, PrincipalKind::Key { id: k, .. } if k == id));
    }

    /// After user `id` was disabled: ends their open views.
    pub fn user_disabled(&self, id: i64) {
        self.end_views(|p| matches!(&p.kind, PrincipalKind::User { id: u, .. } if *u == id));
    }

    fn end_views(&self, which: impl Fn(&Principal) -> bool) {
        for map in [&self.views, &self.watchers] {
            let live = map.lock().unwrap();
            for v in live.values().filter(|v| which(&v.principal)) {
                v.cancel.cancel();
            }
        }
    }

    /// Watches a connection's principal: the watch's `cancel` fires when
    /// its credential is revoked or found invalid, as a view's does.
    pub fn watch(self: &Arc<Self>, p: &Principal) -> Watch {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        self.watchers.lock().unwrap().insert(
            id,
            Live {
                principal: p.clone(),
                cancel: cancel.clone(),
            },
        );
        Watch {
            gate: self.clone(),
            id,
            cancel,
        }
    }

    /// Whether `p`'s credential is still good (not revoked, expired or
    /// disabled).
    pub async fn still_valid(&self, p: &Principal) -> Result<bool, StoreError> {
        match &p.kind {
            PrincipalKind::Link { id, .. } => self.link_valid(id, LINK_CACHE).await,
            _ => self.auth.still_valid(p).await,
        }
    }

    /// Opens a view of `camera` (which the caller checked `p` may see):
    /// counted against `p`'s cap and written to the audit trail, which the
    /// ticket completes (end, bytes) when dropped.
    pub async fn open_view(
        self: &Arc<Self>,
        p: &Principal,
        camera: &str,
        protocol: &'static str,
        client: Option<IpAddr>,
    ) -> Result<ViewTicket, Denied> {
        let label = p.label();
        let limit = match p.kind {
            PrincipalKind::Link { .. } => self.opts.max_streams_per_link,
            _ => self.opts.max_streams_per_principal,
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        {
            let mut views = self.views.lock().unwrap();
            let open = views
                .values()
                .filter(|v| v.principal.kind == p.kind)
                .count();
            if open >= limit {
                return Err(Denied::TooMany { who: label, limit });
            }
            views.insert(
                id,
                Live {
                    principal: p.clone(),
                    cancel: cancel.clone(),
                },
            );
        }
        let mut ticket = ViewTicket {
            gate: self.clone(),
            id,
            audit: None,
            cancel,
            bytes: Arc::default(),
        };
        let row = NewAudit {
            at_ms: now_ms(),
            kind: "view",
            principal: label,
            action: "view".into(),
            target: Some(camera.to_string()),
            camera_id: Some(camera.to_string()),
            protocol: Some(protocol.to_string()),
            client: client.map(|c| c.to_string()),
            ..Default::default()
        };
        // A view that cannot be audited is not opened (the ticket's drop
        // frees its slot).
        ticket.audit = Some(self.store.insert_audit(&row).await?);
        Ok(ticket)
    }

    /// The LL-HLS view of `client` watching `camera` as `p`: opened on its
    /// first request, kept while it keeps asking. Its cancel token fires
    /// when the credential is revoked; its byte counter takes what is sent.
    pub async fn hls_view(
        self: &Arc<Self>,
        p: &Principal,
        camera: &str,
        client: IpAddr,
    ) -> Result<(CancellationToken, Arc<AtomicU64>), Denied> {
        let key = (camera.to_string(), client, p.label());
        if let Some(v) = self.hls.lock().unwrap().get_mut(&key)
            && !v.ticket.cancel.is_cancelled()
        {
            v.last = Instant::now();
            return Ok((v.ticket.cancel.clone(), v.ticket.bytes.clone()));
        }
        let ticket = self.open_view(p, camera, "hls", Some(client)).await?;
        let out = (ticket.cancel.clone(), ticket.bytes.clone());
        // A cancelled view this replaces ends here (its ticket takes the
        // views lock, not this one).
        self.hls.lock().unwrap().insert(
            key,
            HlsView {
                ticket,
                last: Instant::now(),
            },
        );
        Ok(out)
    }

    /// Housekeeping until `cancel`: ends idle LL-HLS views, re-checks the
    /// credentials of open views, and deletes audit records past retention.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.opts.recheck);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_purge: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let idle = self.opts.hls_idle;
            let ended: Vec<HlsView> = {
                let mut hls = self.hls.lock().unwrap();
                let gone: Vec<_> = hls
                    .iter()
                    .filter(|(_, v)| v.last.elapsed() > idle || v.ticket.cancel.is_cancelled())
                    .map(|(k, _)| k.clone())
                    .collect();
                gone.iter().filter_map(|k| hls.remove(k)).collect()
            };
            drop(ended);
            if let Err(e) = self.recheck().await {
                tracing::warn!(error = %e, "could not re-check the credentials of open views");
            }
            if last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                last_purge = Some(Instant::now());
                let before = now_ms() - self.opts.audit_retention.as_millis() as i64;
                match self.store.purge_audit(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(records = n, "deleted audit records past retention"),
                    Err(e) => tracing::warn!(error = %e, "could not delete old audit records"),
                }
            }
        }
    }

    /// Ends the views whose credential is no longer valid.
    async fn recheck(&self) -> Result<(), StoreError> {
        let principals: Vec<Principal> = {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for map in [&self.views, &self.watchers] {
                let live = map.lock().unwrap();
                out.extend(
                    live.values()
                        .filter(|v| !v.cancel.is_cancelled() && seen.insert(v.principal.label()))
                        .map(|v| v.principal.clone()),
                );
            }
            out
        };
        for p in principals {
            let valid = match &p.kind {
                PrincipalKind::Link { id, .. } => self.link_valid(id, Duration::ZERO).await?,
                _ => self.auth.still_valid(&p).await?,
            };
            if !valid {
                tracing::info!(principal = %p.label(), "credential revoked or expired: ending its views");
                self.end_views(|q| q.kind == p.kind);
            }
        }
        Ok(())
    }
}

/// The secret that signs embed links and RTSP nonces, shared by every node
/// through the database's settings. With a credential key it is stored
/// encrypted like the camera passwords (a copy of the database alone
/// cannot mint links); one an earlier version stored in clear is
/// encrypted at start (`check_credentials`).
async fn link_secret(store: &dyn Store) -> Result<Vec<u8>, StoreError> {
    let cipher = store.credential_cipher();
    let fresh = token::random(32);
    let stored = store
        .setting_or_insert(
            LINK_SECRET,
            &cipher.as_ref().map_or(fresh.clone(), |c| c.encrypt(&fresh)),
        )
        .await?;
    match cipher {
        Some(c) if super::cipher::is_encrypted(&stored) => c
            .decrypt(&stored)
            .map(String::into_bytes)
            .map_err(|e| StoreError::Corrupt(format!("the link-signing secret: {e}"))),
        _ => Ok(stored.into_bytes()),
    }
}

/// The settings key of the link-signing secret.
pub const LINK_SECRET: &str = "link_secret";

/// A watched connection (see [`Gate::watch`]); dropping it stops the watch.
pub struct Watch {
    gate: Arc<Gate>,
    id: u64,
    pub cancel: CancellationToken,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.gate.watchers.lock().unwrap().remove(&self.id);
    }
}

/// An open view. Its `cancel` fires when the credential is revoked (the
/// stream must then end); `bytes` takes what is sent. Dropping it ends the
/// view in the audit trail.
pub struct ViewTicket {
    gate: Arc<Gate>,
    id: u64,
    audit: Option<i64>,
    pub cancel: CancellationToken,
    pub bytes: Arc<AtomicU64>,
}

impl ViewTicket {
    /// Counts `n` bytes sent to the viewer.
    pub fn sent(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Drop for ViewTicket {
    fn drop(&mut self) {
        self.gate.views.lock().unwrap().remove(&self.id);
        let Some(audit) = self.audit else { return };
        let bytes = self.bytes.load(Ordering::Relaxed) as i64;
        let store = self.gate.store.clone();
        let ended = now_ms();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.finish_view(audit, ended, bytes).await {
                    tracing::warn!(error = %e, audit, "could not record the end of a view");
                }
            });
        }
    }
}
