//! Camera credentials encrypted at rest: AES-256-GCM with a random 96-bit
//! nonce per value. A stored value reads `enc:v1:<key id>:<base64 of nonce
//! and ciphertext with its tag>`; the key id (the first 8 hex digits of the
//! key's SHA-256) tells which key wrote it, so a wrong key is named as such
//! instead of failing as corrupt data.

use aes_gcm::aead::{Aead, KeyInit, OsRng, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc:v1:";

/// Why a stored credential could not be read. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the credential key must be 32 bytes, as base64 (44 characters) or hex (64)")]
    BadKey,
    #[error(
        "a stored credential was written with key {stored}, not the configured key {configured}"
    )]
    WrongKey { stored: String, configured: String },
    #[error("a stored credential is corrupt")]
    Corrupt,
}

/// The credential key.
#[derive(Clone)]
pub struct CredentialCipher {
    aead: Aes256Gcm,
    id: String,
}

impl std::fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCipher")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl CredentialCipher {
    /// A key given as base64 or hex text.
    pub fn from_text(text: &str) -> Result<Self, CipherError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| CipherError::BadKey)?
        } else {
            B64.decode(t).map_err(|_| CipherError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| CipherError::BadKey)?;
        Ok(Self::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(key)[..4]);
        CredentialCipher {
            aead: Aes256Gcm::new(key.into()),
            id,
        }
    }

    /// A new random key, as base64 text.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        B64.encode(key)
    }

    /// This key's id (not secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn encrypt(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(&Nonce::from(nonce), plain.as_bytes())
            .expect("AES-GCM encrypts any input under 64 GiB");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!("{PREFIX}{}:{}", self.id, B64.encode(blob))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CipherError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(CipherError::Corrupt)?;
        let (id, data) = rest.split_once(':').ok_or(CipherError::Corrupt)?;
        if id != self.id {
            return Err(CipherError::WrongKey {
                stored: id.to_string(),
                configured: self.id.clone(),
            });
        }
        let blob = B64.decode(data).map_err(|_| CipherError::Corrupt)?;
        if blob.len() < 12 + 16 {
            return Err(CipherError::Corrupt);
        }
        let (nonce, ct) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CipherError::Corrupt)?;
        let plain = self
            .aead
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| CipherError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| CipherError::Corrupt)
    }
}

/// Whether a stored value is an encrypted credential (not one stored in
/// clear by a version before encryption).
pub fn is_encrypted(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_random_nonces_and_no_clear_text() {
        let c = CredentialCipher::from_text(&CredentialCipher::generate()).unwrap();
        let a = c.encrypt("s3cret-密码");
        let b = c.encrypt("s3cret-密码");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(is_encrypted(&a) && !a.contains("s3cret"));
        assert!(a.starts_with(&format!("enc:v1:{}:", c.id())));
        assert_eq!(c.decrypt(&a).unwrap(), "s3cret-密码");
        assert_eq!(c.decrypt(&b).unwrap(), "s3cret-密码");
    }

    #[test]
    fn wrong_keys_tampering_and_bad_keys_are_named() {
        let c = CredentialCipher::from_bytes(&[7; 32]);
        let other = CredentialCipher::from_bytes(&[8; 32]);
        let v = c.encrypt("pw");
        assert!(matches!(
            other.decrypt(&v),
            Err(CipherError::WrongKey { .. })
        ));
        // Flip one bit of the ciphertext: the tag no longer matches.
        let (head, data) = v.rsplit_once(':').unwrap();
        let mut blob = B64.decode(data).unwrap();
        *blob.last_mut().unwrap() ^= 1;
        let tampered = format!("{head}:{}", B64.encode(blob));
        assert_eq!(c.decrypt(&tampered), Err(CipherError::Corrupt));
        assert_eq!(c.decrypt("plain"), Err(CipherError::Corrupt));
        assert_eq!(c.decrypt("enc:v1:"), Err(CipherError::Corrupt));
        assert!(CredentialCipher::from_text("too short").is_err());
        assert!(CredentialCipher::from_text(&"ab".repeat(32)).is_ok(), "hex");
        assert!(CredentialCipher::from_text(&"ab".repeat(31)).is_err());
        let dbg = format!("{c:?}");
        assert!(dbg.contains(c.id()) && !dbg.contains("[7"), "{dbg}");
    }
}
