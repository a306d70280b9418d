//! Secrets helpers: the master key (XChaCha20-Poly1305 encryption at rest), opaque token
//! generation and token hashing. Pure functions, no I/O.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Length in bytes of the random nonce prefixed to every encrypted blob.
const NONCE_LEN: usize = 24;

/// Errors from secret handling.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key material does not have the required 32 bytes.
    #[error("master key must be exactly 32 bytes, got {0}")]
    BadKeyLength(usize),
    /// The blob is too short or was not produced by this key (or was tampered with).
    #[error("cannot decrypt secret: wrong key or corrupted data")]
    Decrypt,
}

/// The 256-bit key that encrypts secrets at rest (white-label secrets, Dropbox tokens).
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Builds a key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SecretError::BadKeyLength(bytes.len()))?;
        Ok(Self(arr))
    }

    /// Generates a fresh random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        Self(k)
    }

    /// The raw key bytes (for writing a key file).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext`; the output is `nonce || ciphertext+tag`.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and in-memory buffer cannot fail for inputs below
        // the AEAD size limit (~256 GiB); fall back to an empty ciphertext is never reached.
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a blob produced by [`MasterKey::encrypt`].
    pub fn decrypt(&self, blob: &[u8]) -> Result<Vec<u8>, SecretError> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Decrypt)
    }
}

/// Hex SHA-256 of a token; tokens are 256-bit random so no salt/KDF is needed.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new opaque token: `<prefix><64 hex chars>` (256 random bits).
pub fn new_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

/// A new webhook signing key: 32 hex chars (16 random bytes), as Carbon's verifiers expect.
pub fn new_signing_key() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Masks a secret for display: `abcd…wxyz`, or `…` alone for short secrets.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_tamper() {
        let k = MasterKey::generate();
        let blob = k.encrypt(b"hello secret");
        assert_ne!(&blob[NONCE_LEN..], b"hello secret");
        assert_eq!(k.decrypt(&blob).unwrap(), b"hello secret");
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.decrypt(&bad).is_err());
        assert!(MasterKey::generate().decrypt(&blob).is_err());
        assert!(k.decrypt(&[1, 2, 3]).is_err());
        // random nonce: two encryptions differ
        assert_ne!(k.encrypt(b"x"), k.encrypt(b"x"));
    }

    #[test]
    fn key_length_checked() {
        assert!(MasterKey::from_bytes(&[0u8; 31]).is_err());
        assert!(MasterKey::from_bytes(&[0u8; 32]).is_ok());
    }

    #[test]
    fn tokens_and_hashes() {
        let t = new_token("ck_live_");
        assert!(t.starts_with("ck_live_"));
        assert_eq!(t.len(), 8 + 64);
        assert_ne!(t, new_token("ck_live_"));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let k = new_signing_key();
        assert_eq!(k.len(), 32);
        assert!(hex::decode(&k).is_ok());
    }

    #[test]
    fn masking() {
        assert_eq!(mask_secret("abcdefghijklmnopwxyz"), "abcd…wxyz");
        assert_eq!(mask_secret("short"), "…");
    }
}
