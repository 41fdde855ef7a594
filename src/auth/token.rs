//! Secrets handed to clients: API keys and session tokens (random, stored
//! only as their SHA-256), and signed embed-link tokens (HMAC-SHA256 over
//! their claims, checked without a database read; revocation is looked up
//! separately).

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefixes that make a leaked secret recognisable (and greppable).
pub const KEY_PREFIX: &str = "cgk_";
pub const SESSION_PREFIX: &str = "cgs_";
const LINK_VERSION: &str = "cgl1";

/// `bytes` random bytes as base64url text.
pub fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

/// A new API key: its secret (shown once) and what is stored of it.
pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", random(32))
}

/// A new login session token.
pub fn new_session() -> String {
    format!("{SESSION_PREFIX}{}", random(32))
}

/// What is stored of a key or session token: its SHA-256, hex. These
/// secrets are 256 random bits, so a fast hash is enough (unlike passwords).
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What an embed link's token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// The link's id (for revocation and audit).
    pub id: String,
    /// One camera, or every camera of a district subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

/// Why a link token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link token is malformed")]
    Malformed,
    #[error("the link token's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// Signs `claims`: `cgl1.<claims>.<signature>`, URL-safe.
pub fn sign_link(claims: &LinkClaims, secret: &[u8]) -> String {
    let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let mut m = mac(secret);
    m.update(LINK_VERSION.as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{LINK_VERSION}.{body}.{sig}")
}

/// Checks a link token's signature (in constant time) and expiry at `now`
/// (Unix seconds).
pub fn verify_link(token: &str, secret: &[u8], now: i64) -> Result<LinkClaims, LinkError> {
    let mut parts = token.split('.');
    let (Some(version), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Malformed);
    };
    if version != LINK_VERSION || body.len() > 4096 {
        return Err(LinkError::Malformed);
    }
    let sig = B64.decode(sig).map_err(|_| LinkError::Malformed)?;
    let mut m = mac(secret);
    m.update(version.as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    m.verify_slice(&sig).map_err(|_| LinkError::BadSignature)?;
    let json = B64.decode(body).map_err(|_| LinkError::Malformed)?;
    let claims: LinkClaims = serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
    if claims.exp <= now {
        return Err(LinkError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> LinkClaims {
        LinkClaims {
            id: "l1".into(),
            camera: Some("62060200001320000001".into()),
            district: None,
            exp: 2_000,
        }
    }

    #[test]
    fn secrets_are_random_prefixed_and_stored_hashed() {
        let a = new_api_key();
        assert!(a.starts_with(KEY_PREFIX) && a.len() > 40, "{a}");
        assert_ne!(a, new_api_key());
        assert!(new_session().starts_with(SESSION_PREFIX));
        assert_eq!(digest(&a), digest(&a));
        assert_eq!(digest(&a).len(), 64);
        assert!(!digest(&a).contains(&a[4..]));
    }

    #[test]
    fn links_verify_and_refuse_tampering_expiry_and_other_secrets() {
        let t = sign_link(&claims(), b"secret");
        assert_eq!(verify_link(&t, b"secret", 1_999), Ok(claims()));
        assert_eq!(verify_link(&t, b"secret", 2_000), Err(LinkError::Expired));
        assert_eq!(
            verify_link(&t, b"other", 1_000),
            Err(LinkError::BadSignature)
        );
        // Another camera in the claims, same signature: refused.
        let (head, sig) = t.rsplit_once('.').unwrap();
        let forged = LinkClaims {
            camera: Some("62060200001320000002".into()),
            ..claims()
        };
        let body = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            verify_link(&format!("cgl1.{body}.{sig}"), b"secret", 1_000),
            Err(LinkError::BadSignature)
        );
        // Every single-character change of the token is refused.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).unwrap();
            if changed != t {
                assert!(verify_link(&changed, b"secret", 1_000).is_err(), "{i}");
            }
        }
        assert_eq!(verify_link("", b"secret", 0), Err(LinkError::Malformed));
        assert_eq!(
            verify_link(&format!("{head}.x.y"), b"secret", 0),
            Err(LinkError::Malformed)
        );
    }
}
