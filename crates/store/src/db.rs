//! Connection handling: one writer connection, a small reader pool, pragmas and migrations.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use carbide_core::secrets::MasterKey;
use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use crate::StoreError;

/// Upper bound on concurrently open reader connections; callers beyond it wait.
const MAX_READERS: usize = 8;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_tenancy.sql")),
        M::up(include_str!("migrations/0002_files.sql")),
        M::up(include_str!("migrations/0003_search.sql")),
        M::up(include_str!("migrations/0004_dropbox.sql")),
        M::up(include_str!("migrations/0005_dropbox_sync.sql")),
        M::up(include_str!("migrations/0006_source_progress.sql")),
    ])
}

struct Inner {
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    reader_returned: Condvar,
    key: MasterKey,
    blobs_dir: std::path::PathBuf,
    vectors: crate::vector_cache::VectorCache,
    keywords: crate::keyword_index::KeywordCache,
    keyword_engine: crate::search::KeywordEngine,
}

struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// Handle to the carbide database. Clone freely.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// A memory budget in bytes from the environment variable `name` (MiB), else `default_mib`.
/// Used for `CARBIDE_VECTOR_CACHE_MB` (1024) and `CARBIDE_KEYWORD_CACHE_MB` (512).
fn budget_from_env(name: &str, default_mib: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(default_mib)
        .saturating_mul(1024 * 1024)
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database at `db_path` and applies pending migrations.
    /// Blobs (raw files, parsed text) go to `blobs/` beside the database.
    pub fn open(db_path: &Path, key: MasterKey) -> Result<Store, StoreError> {
        let blobs = db_path
            .parent()
            .map(|p| p.join("blobs"))
            .unwrap_or_else(|| std::path::PathBuf::from("blobs"));
        Store::open_with_blobs(db_path, key, &blobs)
    }

    /// [`Store::open`] with an explicit blob directory (created when missing).
    pub fn open_with_blobs(
        db_path: &Path,
        key: MasterKey,
        blobs_dir: &Path,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(blobs_dir)?;
        if let Some(dir) = db_path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut writer = open_conn(db_path)?;
        migrations().to_latest(&mut writer)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: db_path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Readers {
                    idle: Vec::new(),
                    open: 0,
                }),
                reader_returned: Condvar::new(),
                key,
                blobs_dir: blobs_dir.to_path_buf(),
                vectors: crate::vector_cache::VectorCache::new(
                    budget_from_env("CARBIDE_VECTOR_CACHE_MB", 1024),
                    crate::vector_cache::VectorPrecision::from_env(),
                ),
                keywords: crate::keyword_index::KeywordCache::new(budget_from_env(
                    "CARBIDE_KEYWORD_CACHE_MB",
                    512,
                )),
                keyword_engine: crate::search::KeywordEngine::from_env(),
            }),
        })
    }

    /// Directory of content-addressed blobs.
    pub fn blobs_dir(&self) -> &Path {
        &self.inner.blobs_dir
    }

    /// A key for signing download URLs, derived from the master key (stable across restarts
    /// and shared by every process using the same data directory).
    pub fn url_signing_key(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"carbide url signing v1\0");
        h.update(self.inner.key.as_bytes());
        h.finalize().into()
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.inner.key
    }

    pub(crate) fn vectors(&self) -> &crate::vector_cache::VectorCache {
        &self.inner.vectors
    }

    pub(crate) fn keywords(&self) -> &crate::keyword_index::KeywordCache {
        &self.inner.keywords
    }

    /// The engine serving keyword searches on this handle.
    pub fn keyword_engine(&self) -> crate::search::KeywordEngine {
        self.inner.keyword_engine
    }

    /// Runs `f` inside an immediate write transaction on the writer connection.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.writer.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on a reader connection (WAL: sees the last committed state).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = {
            let mut r = self.inner.readers.lock();
            loop {
                if let Some(c) = r.idle.pop() {
                    break c;
                }
                if r.open < MAX_READERS {
                    r.open += 1;
                    drop(r);
                    match open_conn(&self.inner.path) {
                        Ok(c) => break c,
                        Err(e) => {
                            self.inner.readers.lock().open -= 1;
                            self.inner.reader_returned.notify_one();
                            return Err(e);
                        }
                    }
                }
                self.inner.reader_returned.wait(&mut r);
            }
        };
        let out = f(&conn);
        self.inner.readers.lock().idle.push(conn);
        self.inner.reader_returned.notify_one();
        out
    }

    /// Health check: the database answers a trivial query.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_twice_reuses_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/carbide.db");
        let key = MasterKey::generate();
        let s = Store::open(&p, key.clone()).unwrap();
        let (org, _) = s.create_organization("acme").unwrap();
        drop(s);
        let s = Store::open(&p, key).unwrap();
        assert_eq!(s.list_organizations().unwrap()[0].id, org.id);
        s.ping().unwrap();
    }
}
