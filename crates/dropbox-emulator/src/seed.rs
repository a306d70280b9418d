//! Seeding an account from a local folder and, with `--watch`, polling that folder about
//! once a second (size/mtime, then content hash) to mirror additions, edits and deletions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, UNIX_EPOCH};

use crate::SeedConfig;
use crate::emulator::{AccountReq, Shared};
use crate::error::EmulatorError;

/// What the watcher remembers about a path: (is_dir, size, mtime nanos).
pub type Snapshot = BTreeMap<String, (bool, u64, u128)>;

fn walk(root: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for ent in rd.flatten() {
            let Ok(ft) = ent.file_type() else { continue };
            if ft.is_symlink() {
                continue;
            }
            let name = ent.file_name().to_string_lossy().to_string();
            let rel_path = format!("{rel}/{name}");
            if ft.is_dir() {
                out.insert(rel_path.clone(), (true, 0, 0));
                stack.push((ent.path(), rel_path));
            } else if ft.is_file() {
                let Ok(md) = ent.metadata() else { continue };
                let mtime = md
                    .modified()
                    .ok()
                    .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                out.insert(rel_path, (false, md.len(), mtime));
            }
        }
    }
    out
}

fn apply(sh: &Shared, account_id: &str, root: &Path, old: &Snapshot, new: &Snapshot) {
    // Deletions first (parents before children; errors for already-removed children ignored).
    for path in old.keys() {
        if !new.contains_key(path) {
            let _ = sh.delete(account_id, path);
        }
    }
    for (path, meta) in new {
        if old.get(path) == Some(meta) {
            continue;
        }
        if meta.0 {
            if let Err(e) = sh.create_folder(account_id, path) {
                tracing::warn!(path, error = %e, "seed: cannot create folder");
            }
            continue;
        }
        let local: PathBuf = root.join(path.trim_start_matches('/'));
        match sh.blobs.put_file(&local) {
            Ok((hash, size)) => {
                let mtime = (meta.2 / 1_000_000_000) as i64;
                if let Err(e) = sh.put_blob(account_id, path, hash, size, Some(mtime), true) {
                    tracing::warn!(path, error = %e, "seed: cannot add file");
                }
            }
            Err(e) => tracing::warn!(path, error = %e, "seed: cannot read file"),
        }
    }
}

/// Loads the folder into the account (created if missing); returns the account id and
/// the snapshot the watcher starts from.
pub fn load(sh: &Arc<Shared>, seed: &SeedConfig) -> Result<(String, Snapshot), EmulatorError> {
    if !seed.dir.is_dir() {
        return Err(EmulatorError::Config(format!(
            "seed dir {} is not a directory",
            seed.dir.display()
        )));
    }
    let acct = sh
        .create_account(AccountReq {
            email: seed.email.clone(),
            ..Default::default()
        })
        .map_err(|e| EmulatorError::Config(e.to_string()))?;
    let account_id = acct
        .get("account_id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| EmulatorError::Config("account creation failed".into()))?
        .to_string();
    let snap = walk(&seed.dir);
    apply(sh, &account_id, &seed.dir, &Snapshot::new(), &snap);
    Ok((account_id, snap))
}

/// Polls the folder about once a second and mirrors changes.
pub async fn watch(sh: Weak<Shared>, account_id: String, dir: PathBuf, mut prev: Snapshot) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(shared) = sh.upgrade() else { return };
        let d = dir.clone();
        let Ok(next) = tokio::task::spawn_blocking(move || walk(&d)).await else {
            continue;
        };
        if next != prev {
            let (s, a, d, old, new) = (
                shared.clone(),
                account_id.clone(),
                dir.clone(),
                prev.clone(),
                next.clone(),
            );
            let _ = tokio::task::spawn_blocking(move || apply(&s, &a, &d, &old, &new)).await;
            prev = next;
        }
    }
}
