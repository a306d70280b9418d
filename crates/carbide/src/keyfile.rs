//! The master secret key file: created once with 0600 permissions in the data directory and
//! reused on every start. Everything encrypted at rest (Dropbox tokens, white-label secrets)
//! depends on it, so it is never overwritten.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use carbide_core::secrets::MasterKey;

/// Reads the key at `path`, or creates it (32 random bytes, hex encoded) if it does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<MasterKey> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "master key file {} is accessible by other users (mode {:o}); run `chmod 600` on it",
                    path.display(),
                    mode
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading master key {}", path.display()))?;
            let bytes = hex::decode(text.trim())
                .with_context(|| format!("master key {} is not hex", path.display()))?;
            MasterKey::from_bytes(&bytes)
                .map_err(|e| anyhow::anyhow!("master key {} is invalid: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating master key {}", path.display()))?;
            f.write_all(hex::encode(bytes).as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "created a new master key");
            MasterKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("new master key: {e}"))
        }
        Err(e) => Err(e).with_context(|| format!("reading master key {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let k1 = load_or_create(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = std::fs::read_to_string(&p).unwrap();
        let k2 = load_or_create(&p).unwrap();
        assert_eq!(first, std::fs::read_to_string(&p).unwrap());
        // Same key: what one encrypts, the other decrypts.
        let blob = k1.encrypt(b"secret");
        assert_eq!(k2.decrypt(&blob).unwrap(), b"secret");
    }

    #[test]
    fn refuses_world_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        load_or_create(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&p).is_err());
    }
}
