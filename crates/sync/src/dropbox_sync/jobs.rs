//! The Dropbox job worker: claims `dropbox_download`, `dropbox_poll` and `dropbox_reconcile`
//! jobs with a lease and runs them.
//!
//! - download: streams the file to a temp file beside the blob store (at most
//!   `downloads_per_source` at once per data source), the client verifies Dropbox's content
//!   hash, the bytes become a blob and the file is handed to the `process_file` job in one
//!   transaction. 429 → RATE_LIMITED + RATE_LIMIT_ERROR and a retry after `Retry-After`;
//!   5xx/network → retry with exponential backoff; revoked access, a vanished file or an
//!   oversized one → SYNC_ERROR with a readable reason.
//! - poll: `list_folder/continue` from the stored cursor; pages are applied and the cursor
//!   moved in one transaction (compare-and-swap); a `reset` cursor is replaced by a fresh one
//!   and a full reconciliation is queued.
//! - reconcile: relists watched folders and selected files and diffs against the store (new,
//!   changed, renamed, deleted), the repair path for anything missed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use carbide_core::timefmt::now_unix;
use carbide_dropbox::{ListFolderArg, Metadata};
use carbide_store::{
    JOB_DROPBOX_DOWNLOAD, JOB_DROPBOX_POLL, JOB_DROPBOX_RECONCILE, Job, RemoteEntry, Selection,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::DropboxSync;
use crate::dropbox::DropboxError;

/// How a job attempt ended.
enum Outcome {
    Done,
    /// Try again at this unix time (counts as an attempt).
    RetryAt(i64, String),
    /// Give up; the file (if any) is marked SYNC_ERROR with this reason.
    Fail(String),
}

pub(crate) async fn run_worker(sync: DropboxSync, mut shutdown: watch::Receiver<bool>) {
    let mut idb = [0u8; 8];
    rand::rng().fill_bytes(&mut idb);
    let owner = format!("dropbox-{}-{}", std::process::id(), hex::encode(idb));
    tracing::info!(owner, "Dropbox sync worker started");
    let mut running: JoinSet<Option<i64>> = JoinSet::new();
    // downloads running here per data source (fairness: a full source is not claimed)
    let mut active: HashMap<i64, usize> = HashMap::new();
    let cfg = sync.config().clone();
    let cap = cfg.downloads_per_source.max(1);
    let done = |r: Result<Option<i64>, tokio::task::JoinError>,
                active: &mut HashMap<i64, usize>| {
        if let Ok(Some(ds)) = r
            && let Some(n) = active.get_mut(&ds)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                active.remove(&ds);
            }
        }
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        while let Some(r) = running.try_join_next() {
            done(r, &mut active);
        }
        let free = cfg.concurrency.max(1).saturating_sub(running.len());
        let mut claimed = 0;
        if free > 0 {
            let o = owner.clone();
            let lease = cfg.lease.as_secs() as i64;
            let full: Vec<i64> = active
                .iter()
                .filter(|(_, n)| **n >= cap)
                .map(|(d, _)| *d)
                .collect();
            let r = sync
                .dropbox()
                .db(move |s| s.claim_dropbox_jobs(&o, lease, free, &full))
                .await;
            match r {
                Ok(jobs) => {
                    for job in jobs {
                        let ds = (job.kind == JOB_DROPBOX_DOWNLOAD)
                            .then(|| ds_of(&job))
                            .flatten();
                        if let Some(d) = ds {
                            let n = active.entry(d).or_insert(0);
                            if *n >= cap {
                                // over this source's share: hand it back for later
                                let (id, o) = (job.id, owner.clone());
                                let _ = sync.dropbox().db(move |s| s.release_job(id, &o)).await;
                                continue;
                            }
                            *n += 1;
                        }
                        claimed += 1;
                        let s = sync.clone();
                        running.spawn(async move {
                            run_one(s, job).await;
                            ds
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming Dropbox jobs failed"),
            }
        }
        if claimed == 0 {
            tokio::select! {
                _ = tokio::time::sleep(cfg.poll_interval) => {}
                _ = sync.inner.wake.notified() => {}
                r = running.join_next(), if !running.is_empty() => {
                    if let Some(r) = r {
                        done(r, &mut active);
                    }
                }
                r = shutdown.changed() => { if r.is_err() { break; } }
            }
        }
    }
    running.shutdown().await;
    tracing::info!("Dropbox sync worker stopped");
}

fn ds_of(job: &Job) -> Option<i64> {
    job.payload.get("data_source_id").and_then(|v| v.as_i64())
}

async fn run_one(sync: DropboxSync, job: Job) {
    let hb = {
        let (dbx, id, o) = (sync.dropbox().clone(), job.id, job.lease_owner.clone());
        let lease = sync.config().lease;
        super::AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let o2 = o.clone();
                let secs = lease.as_secs() as i64;
                match dbx.db(move |s| s.extend_job_lease(id, &o2, secs)).await {
                    Ok(true) => {}
                    _ => break,
                }
            }
        }))
    };
    let outcome = match job.kind.as_str() {
        JOB_DROPBOX_DOWNLOAD => download(&sync, &job).await,
        JOB_DROPBOX_POLL => poll(&sync, &job).await,
        JOB_DROPBOX_RECONCILE => reconcile(&sync, &job).await,
        other => Outcome::Fail(format!("unknown job kind {other}")),
    };
    drop(hb);
    let (id, owner, file_id) = (job.id, job.lease_owner.clone(), job.file_id);
    let last_attempt = job.attempts + 1 >= job.max_attempts;
    let r = sync
        .dropbox()
        .db(move |s| match outcome {
            Outcome::Done => s.complete_job(id, &owner),
            Outcome::RetryAt(at, msg) if !last_attempt => s.fail_job(id, &owner, &msg, Some(at)),
            Outcome::RetryAt(_, msg) | Outcome::Fail(msg) => {
                if let Some(f) = file_id {
                    s.fail_file(f, &msg)?;
                }
                tracing::info!(job = id, reason = %msg, "Dropbox job failed");
                s.fail_job(id, &owner, &msg, None)
            }
        })
        .await;
    if let Err(e) = r {
        tracing::error!(job = job.id, error = %e, "recording Dropbox job outcome failed");
    }
    sync.wake();
}

fn backoff(sync: &DropboxSync, attempts: i64) -> i64 {
    let base = sync.config().base_backoff.as_secs_f64();
    let exp = attempts.clamp(0, 10) as i32;
    now_unix() + (base * 2f64.powi(exp)).ceil().max(1.0) as i64
}

/// Classifies a failed Dropbox call for a job.
fn classify(sync: &DropboxSync, job: &Job, e: DropboxError) -> Outcome {
    match e {
        DropboxError::Revoked => Outcome::Fail(
            "access to the Dropbox account was revoked; reconnect it through /integrations/oauth_url"
                .into(),
        ),
        DropboxError::NoCredentials | DropboxError::NotConfigured(_) => Outcome::Fail(e.to_string()),
        DropboxError::Api(carbide_dropbox::Error::RateLimited { retry_after }) => {
            let wait = retry_after
                .map(|s| s as i64)
                .unwrap_or(sync.config().default_rate_limit_wait.as_secs() as i64);
            Outcome::RetryAt(now_unix() + wait.max(1), "Dropbox rate limit".into())
        }
        DropboxError::Api(ref a) if a.is_not_found() => {
            Outcome::Fail("the file no longer exists in Dropbox".into())
        }
        DropboxError::Api(carbide_dropbox::Error::TooLarge { size, limit }) => Outcome::Fail(
            format!("file is {size} bytes, over the limit of {limit} bytes"),
        ),
        other => Outcome::RetryAt(backoff(sync, job.attempts), other.to_string()),
    }
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

async fn download(sync: &DropboxSync, job: &Job) -> Outcome {
    let Some(file_id) = job.file_id else {
        return Outcome::Fail("download job without a file".into());
    };
    let dbx = sync.dropbox().clone();
    let file = match dbx.db(move |s| s.dropbox_file(file_id)).await {
        Ok(Some(f)) => f,
        Ok(None) => return Outcome::Done, // deleted meanwhile
        Err(e) => return Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
    };
    if file.is_folder {
        return Outcome::Done;
    }
    let permits = sync.source_permits(file.data_source_id);
    let Ok(_permit) = permits.acquire_owned().await else {
        return Outcome::RetryAt(backoff(sync, job.attempts), "worker shutting down".into());
    };
    let tmp = match dbx.db(|s| s.download_temp_file()).await {
        Ok(t) => t,
        Err(e) => return Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
    };
    let path = tmp.path().to_path_buf();
    sync.count_download();
    let client = dbx.client().clone();
    let max = sync.config().max_file_bytes;
    let ext = file.external_file_id.clone();
    let r = dbx
        .call(file.data_source_id, |auth| {
            let (client, path, ext) = (client.clone(), path.clone(), ext.clone());
            async move {
                let mut out = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| carbide_dropbox::Error::Io(e.to_string()))?;
                client.download(&auth, &ext, &mut out, max).await
            }
        })
        .await;
    let meta = match r {
        Ok(m) => m,
        Err(DropboxError::Api(carbide_dropbox::Error::RateLimited { retry_after })) => {
            let wait = retry_after
                .map(|s| s as i64)
                .unwrap_or(sync.config().default_rate_limit_wait.as_secs() as i64)
                .max(1);
            if let Err(e) = dbx
                .db(move |s| s.mark_dropbox_rate_limited(file_id, wait))
                .await
            {
                tracing::warn!(file_id, error = %e, "cannot record rate limit");
            }
            return Outcome::RetryAt(now_unix() + wait, "Dropbox rate limit".into());
        }
        Err(e) => {
            let o = classify(sync, job, e);
            if let Outcome::RetryAt(..) = o {
                let _ = dbx.db(move |s| s.set_dropbox_file_queued(file_id)).await;
            }
            return o;
        }
    };
    let p = path.clone();
    let sha = match tokio::task::spawn_blocking(move || sha256_file(&p)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
        Err(e) => return Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
    };
    let size = i64::try_from(meta.size).unwrap_or(i64::MAX);
    let (job_id, owner) = (job.id, job.lease_owner.clone());
    let r = dbx
        .db(move |s| {
            s.finish_dropbox_download(
                job_id,
                &owner,
                file_id,
                tmp,
                &sha,
                size,
                &meta.rev,
                meta.content_hash.as_deref(),
            )
        })
        .await;
    match r {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
    }
}

async fn poll(sync: &DropboxSync, job: &Job) -> Outcome {
    let Some(ds) = ds_of(job) else {
        return Outcome::Fail("poll job without a data source".into());
    };
    let dbx = sync.dropbox().clone();
    let client = dbx.client().clone();
    let start = match dbx.db(move |s| s.dropbox_cursor(ds)).await {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::Done,
        Err(e) => return Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
    };
    let mut expected = start.clone();
    let mut cursor = start;
    let mut batch: Vec<RemoteEntry> = Vec::new();
    loop {
        let c = cursor.clone();
        let r = dbx
            .call(ds, |auth| {
                let (client, c) = (client.clone(), c.clone());
                async move { client.list_folder_continue(&auth, &c).await }
            })
            .await;
        let page = match r {
            Ok(p) => p,
            Err(DropboxError::Api(ref e)) if e.is_reset() => {
                tracing::info!(data_source_id = ds, "Dropbox cursor reset; relisting");
                let fresh = dbx
                    .call(ds, |auth| {
                        let client = client.clone();
                        async move {
                            client
                                .get_latest_cursor(&auth, &DropboxSync::cursor_arg())
                                .await
                        }
                    })
                    .await;
                let fresh = match fresh {
                    Ok(f) => f,
                    Err(e) => return classify(sync, job, e),
                };
                let exp = expected.clone();
                let r = dbx
                    .db(move |s| {
                        if s.replace_dropbox_cursor(ds, Some(&exp), &fresh)? {
                            s.enqueue_dropbox_reconcile(ds, None)?;
                        }
                        Ok(())
                    })
                    .await;
                return match r {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
                };
            }
            Err(e) => return classify(sync, job, e),
        };
        batch.extend(page.entries.iter().filter_map(|m| sync.entry(m)));
        cursor = page.cursor.clone();
        if !page.has_more || batch.len() >= sync.config().max_batch_entries {
            let (exp, next) = (expected.clone(), cursor.clone());
            let entries = std::mem::take(&mut batch);
            let r = dbx
                .db(move |s| s.apply_dropbox_changes(ds, &exp, &next, &entries))
                .await;
            match r {
                Ok(Some(rep)) => {
                    if !(rep.created.is_empty()
                        && rep.changed.is_empty()
                        && rep.moved.is_empty()
                        && rep.deleted.is_empty())
                    {
                        tracing::info!(
                            data_source_id = ds,
                            created = rep.created.len(),
                            changed = rep.changed.len(),
                            moved = rep.moved.len(),
                            deleted = rep.deleted.len(),
                            "Dropbox changes applied"
                        );
                    }
                    sync.wake();
                }
                // another worker applied these changes first
                Ok(None) => return Outcome::Done,
                Err(e) => return Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
            }
            expected = cursor.clone();
            if !page.has_more {
                return Outcome::Done;
            }
        }
    }
}

async fn list_all(sync: &DropboxSync, ds: i64, path: &str) -> Result<Vec<Metadata>, DropboxError> {
    let dbx = sync.dropbox();
    let client = dbx.client().clone();
    let arg = ListFolderArg::recursive(path);
    let mut page = dbx
        .call(ds, |auth| {
            let (client, arg) = (client.clone(), arg.clone());
            async move { client.list_folder(&auth, &arg).await }
        })
        .await?;
    let mut all = std::mem::take(&mut page.entries);
    while page.has_more {
        let c = page.cursor.clone();
        page = dbx
            .call(ds, |auth| {
                let (client, c) = (client.clone(), c.clone());
                async move { client.list_folder_continue(&auth, &c).await }
            })
            .await?;
        all.append(&mut page.entries);
    }
    Ok(all)
}

async fn reconcile(sync: &DropboxSync, job: &Job) -> Outcome {
    let Some(ds) = ds_of(job) else {
        return Outcome::Fail("reconcile job without a data source".into());
    };
    let only: Option<Vec<i64>> = job
        .payload
        .get("selections")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_i64()).collect());
    let dbx = sync.dropbox().clone();
    let sels = match dbx.db(move |s| s.dropbox_selections(ds)).await {
        Ok(s) => s,
        Err(e) => return Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()),
    };
    let sels: Vec<Selection> = sels
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| o.contains(&s.id)))
        .collect();
    for sel in sels {
        if let Err(o) = reconcile_one(sync, job, ds, &sel).await {
            return o;
        }
    }
    Outcome::Done
}

async fn reconcile_one(
    sync: &DropboxSync,
    job: &Job,
    ds: i64,
    sel: &Selection,
) -> Result<(), Outcome> {
    let dbx = sync.dropbox().clone();
    let gone = |sel: &Selection| {
        vec![RemoteEntry::Deleted {
            path_lower: sel.path_lower.clone(),
        }]
    };
    let db_err = |e: DropboxError| Outcome::RetryAt(backoff(sync, job.attempts), e.to_string());
    if sel.is_folder {
        let listing = match list_all(sync, ds, &sel.external_id).await {
            Ok(l) => l,
            Err(DropboxError::Api(ref e)) if e.is_not_found() => {
                let entries = gone(sel);
                dbx.db(move |s| s.apply_dropbox_listing(ds, &entries))
                    .await
                    .map_err(|e| Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()))?;
                return Ok(());
            }
            Err(e) => return Err(classify(sync, job, e)),
        };
        let entries: Vec<RemoteEntry> = listing.iter().filter_map(|m| sync.entry(m)).collect();
        let seen: HashSet<String> = entries
            .iter()
            .filter_map(|e| match e {
                RemoteEntry::File(f) => Some(f.id.clone()),
                _ => None,
            })
            .collect();
        let sid = sel.id;
        let batch = sync.config().max_batch_entries.max(1);
        for part in entries.chunks(batch) {
            let part = part.to_vec();
            dbx.db(move |s| s.apply_dropbox_listing(ds, &part))
                .await
                .map_err(|e| Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()))?;
            sync.wake();
        }
        let seen = Arc::new(seen);
        dbx.db(move |s| s.prune_dropbox_selection(sid, &seen))
            .await
            .map_err(db_err)?;
    } else {
        let client = dbx.client().clone();
        let id = sel.external_id.clone();
        let r = dbx
            .call(ds, |auth| {
                let (client, id) = (client.clone(), id.clone());
                async move { client.get_metadata(&auth, &id).await }
            })
            .await;
        let entries = match r {
            Ok(m) => sync.entry(&m).into_iter().collect::<Vec<_>>(),
            Err(DropboxError::Api(ref e)) if e.is_not_found() => gone(sel),
            Err(e) => return Err(classify(sync, job, e)),
        };
        dbx.db(move |s| s.apply_dropbox_listing(ds, &entries))
            .await
            .map_err(|e| Outcome::RetryAt(backoff(sync, job.attempts), e.to_string()))?;
    }
    sync.wake();
    Ok(())
}
