//! Content-addressed blob storage on disk: raw file bytes and parsed text live under
//! `<blobs_dir>/ab/cdef…` named by their SHA-256, written through a temp file and an atomic
//! rename, so a reader never sees a half-written blob and identical content is stored once.

use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::{Store, StoreError};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn valid_sha(sha: &str) -> bool {
    sha.len() == 64
        && sha
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Store {
    /// Path of the blob `sha` (which may not exist). Refuses anything but a lower-case hex
    /// SHA-256, so a stored value can never point outside the blob directory.
    pub fn blob_path(&self, sha: &str) -> Result<PathBuf, StoreError> {
        if !valid_sha(sha) {
            return Err(StoreError::NotFound("blob"));
        }
        Ok(self.blobs_dir().join(&sha[..2]).join(&sha[2..]))
    }

    /// Stores `bytes` (idempotent) and returns their hex SHA-256.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let sha = sha256_hex(bytes);
        let path = self.blob_path(&sha)?;
        if path.exists() {
            return Ok(sha);
        }
        let dir = path
            .parent()
            .ok_or_else(|| StoreError::Conflict("blob path has no parent".into()))?;
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_data()?;
        tmp.persist(&path).map_err(|e| StoreError::Io(e.error))?;
        Ok(sha)
    }

    /// Reads the blob `sha`.
    pub fn read_blob(&self, sha: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(sha)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound("blob")),
            Err(e) => Err(StoreError::Io(e)),
        }
    }

    /// Removes those of `shas` that no file references any more (best effort; a failure is
    /// logged, never returned: an orphan blob only costs disk space).
    pub(crate) fn collect_blobs(&self, shas: &[String]) {
        for sha in shas {
            let used = self.read(|c| {
                Ok(c.query_row(
                    "SELECT EXISTS(SELECT 1 FROM files WHERE raw_sha256 = ?1 OR parsed_sha256 = ?1)",
                    [sha],
                    |r| r.get::<_, bool>(0),
                )?)
            });
            match used {
                Ok(false) => {
                    if let Ok(p) = self.blob_path(sha)
                        && let Err(e) = std::fs::remove_file(&p)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(error = %e, "cannot remove unreferenced blob");
                    }
                }
                Ok(true) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check blob references"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbide_core::secrets::MasterKey;

    #[test]
    fn put_read_idempotent_and_safe() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("db"), MasterKey::generate()).unwrap();
        let a = s.put_blob(b"hello").unwrap();
        assert_eq!(a, s.put_blob(b"hello").unwrap());
        assert_eq!(s.read_blob(&a).unwrap(), b"hello");
        assert!(s.blob_path("../../etc/passwd").is_err());
        assert!(s.blob_path(&a).unwrap().starts_with(d.path().join("blobs")));
        s.collect_blobs(std::slice::from_ref(&a));
        assert!(matches!(s.read_blob(&a), Err(StoreError::NotFound(_))));
    }
}
