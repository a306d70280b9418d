//! Dropbox file sync: `/integrations/files/sync` selections ([`DropboxSync::sync_files`]), the
//! durable jobs that download, poll changes and reconcile ([`jobs`]), the longpoll change
//! tracker and the auto-sync scheduler ([`tracker`]).
//!
//! Every piece of work is a row in the jobs table (`dropbox_download`, `dropbox_poll`,
//! `dropbox_reconcile`), so a killed process loses nothing and several processes sharing a
//! database never run the same job at once. The change cursor moves only in the transaction
//! that applies (and durably queues the downloads of) the changes it covers.

pub mod jobs;
pub mod tracker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carbide_dropbox::{ListFolderArg, Metadata};
use carbide_store::{RemoteEntry, RemoteFile, SyncSettings};
use tokio::sync::{Notify, Semaphore, watch};

use crate::dropbox::{Dropbox, DropboxError, file_format_for};

/// Formats the ingestion pipeline extracts text from (Carbon's Dropbox list: pdf, docx, pptx,
/// txt, csv, png, rtf, tsv, xlsx, jpeg, md; plus xlsm, which the spreadsheet reader handles).
/// The one list both the picker (`items/list` selectability) and `files/sync` go by.
pub const SUPPORTED_FORMATS: &[&str] = &[
    "PDF", "DOCX", "PPTX", "TXT", "CSV", "PNG", "RTF", "TSV", "XLSX", "XLSM", "JPG", "MD",
];

/// Tuning of the Dropbox sync workers.
#[derive(Debug, Clone)]
pub struct DropboxSyncConfig {
    /// How often to look for due jobs when idle (the tracker also wakes the worker at once).
    pub poll_interval: Duration,
    /// Lease per claimed job; renewed every third of it while the job runs.
    pub lease: Duration,
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// Downloads at once per data source (so one account cannot starve the others).
    pub downloads_per_source: usize,
    /// Largest file synced (checked from metadata before any download).
    pub max_file_bytes: u64,
    /// Longpoll timeout in seconds (30–480).
    pub longpoll_timeout: u64,
    /// How often the tracker looks for sources to start or stop tracking.
    pub tracker_refresh: Duration,
    /// How often the scheduler looks for due scheduled syncs.
    pub scheduler_interval: Duration,
    /// Scheduled sync interval (hours) when neither customer nor organization sets one.
    pub default_auto_sync_hours: i64,
    /// First retry delay of a failed download; doubles per attempt.
    pub base_backoff: Duration,
    /// Wait after a 429 without Retry-After.
    pub default_rate_limit_wait: Duration,
    /// Changes collected before they are applied in one transaction.
    pub max_batch_entries: usize,
    /// Run the longpoll tracker (off: changes arrive only by webhook and schedule).
    pub track_changes: bool,
}

impl Default for DropboxSyncConfig {
    fn default() -> Self {
        DropboxSyncConfig {
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(60),
            concurrency: 16,
            downloads_per_source: 4,
            max_file_bytes: 50 * 1024 * 1024,
            longpoll_timeout: 30,
            tracker_refresh: Duration::from_secs(1),
            scheduler_interval: Duration::from_secs(60),
            default_auto_sync_hours: 24,
            base_backoff: Duration::from_secs(5),
            default_rate_limit_wait: Duration::from_secs(30),
            max_batch_entries: 5000,
            track_changes: true,
        }
    }
}

struct Inner {
    dbx: Dropbox,
    cfg: DropboxSyncConfig,
    per_source: Mutex<HashMap<i64, Arc<Semaphore>>>,
    wake: Notify,
    downloads: AtomicU64,
}

/// The Dropbox file sync of one process. Cheap to clone.
#[derive(Clone)]
pub struct DropboxSync {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DropboxSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxSync")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// Why `/integrations/files/sync` refused.
#[derive(Debug, thiserror::Error)]
pub enum SyncFilesError {
    /// An id does not exist in the account (or is not a file or folder).
    #[error("Dropbox item {0} was not found in this account")]
    NotFound(String),
    #[error(transparent)]
    Dropbox(#[from] DropboxError),
}

/// What `/integrations/files/sync` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncFilesOutcome {
    /// Records of the selected files.
    pub file_ids: Vec<i64>,
    /// Container records of the selected folders (their files follow in the background).
    pub folder_ids: Vec<i64>,
}

impl DropboxSync {
    /// The sync around a Dropbox connector.
    pub fn new(dbx: Dropbox, cfg: DropboxSyncConfig) -> DropboxSync {
        DropboxSync {
            inner: Arc::new(Inner {
                dbx,
                cfg,
                per_source: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                downloads: AtomicU64::new(0),
            }),
        }
    }

    /// The connector.
    pub fn dropbox(&self) -> &Dropbox {
        &self.inner.dbx
    }

    /// The configuration.
    pub fn config(&self) -> &DropboxSyncConfig {
        &self.inner.cfg
    }

    /// Downloads this instance has started (a metric; tests use it to prove a rename did
    /// not download again).
    pub fn downloads_started(&self) -> u64 {
        self.inner.downloads.load(Ordering::Relaxed)
    }

    pub(crate) fn count_download(&self) {
        self.inner.downloads.fetch_add(1, Ordering::Relaxed);
    }

    /// Wakes this process's job worker (new jobs were queued).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    fn source_permits(&self, data_source_id: i64) -> Arc<Semaphore> {
        let mut m = self
            .inner
            .per_source
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        m.entry(data_source_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.cfg.downloads_per_source.max(1))))
            .clone()
    }

    /// Converts a Dropbox entry; `None` for kinds carbide ignores.
    pub fn entry(&self, m: &Metadata) -> Option<RemoteEntry> {
        let www = self.inner.dbx.client().endpoints().www.clone();
        match m {
            Metadata::File(f) => {
                let item = crate::dropbox::items::to_item(&www, m);
                let format = file_format_for(&f.name);
                let reject = if !f.is_downloadable {
                    Some(
                        "the file cannot be downloaded from Dropbox (export-only document)"
                            .to_string(),
                    )
                } else if f.size > self.inner.cfg.max_file_bytes {
                    Some(format!(
                        "file is {} bytes, over the limit of {} bytes",
                        f.size, self.inner.cfg.max_file_bytes
                    ))
                } else if !format.is_some_and(|x| SUPPORTED_FORMATS.contains(&x)) {
                    Some(format!(
                        "unsupported file type: {} (supported: {})",
                        f.name
                            .rsplit_once('.')
                            .map_or("no extension".to_string(), |(_, e)| format!(".{e}")),
                        SUPPORTED_FORMATS.join(", ").to_lowercase()
                    ))
                } else {
                    None
                };
                Some(RemoteEntry::File(RemoteFile {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    path_lower: f.path_lower.clone()?,
                    size: i64::try_from(f.size).unwrap_or(i64::MAX),
                    rev: f.rev.clone(),
                    content_hash: f.content_hash.clone(),
                    file_format: format.map(String::from),
                    external_url: item.and_then(|i| i.external_url),
                    reject,
                }))
            }
            Metadata::Folder(f) => Some(RemoteEntry::Folder {
                id: f.id.clone(),
                name: f.name.clone(),
                path_lower: f.path_lower.clone()?,
            }),
            Metadata::Deleted(d) => Some(RemoteEntry::Deleted {
                path_lower: d.path_lower.clone()?,
            }),
            Metadata::Other => None,
        }
    }

    /// The account-wide listing argument the change cursor follows.
    pub(crate) fn cursor_arg() -> ListFolderArg {
        ListFolderArg::recursive("")
    }

    /// Makes sure the data source has a change cursor (taken before any listing, so no
    /// change is missed; replays are harmless because applying changes is idempotent).
    pub async fn ensure_cursor(&self, data_source_id: i64) -> Result<(), DropboxError> {
        let dbx = &self.inner.dbx;
        if dbx
            .db(move |s| s.dropbox_cursor(data_source_id))
            .await?
            .is_some()
        {
            return Ok(());
        }
        let client = dbx.client().clone();
        let cursor = dbx
            .call(data_source_id, |auth| {
                let client = client.clone();
                async move { client.get_latest_cursor(&auth, &Self::cursor_arg()).await }
            })
            .await?;
        dbx.db(move |s| s.init_dropbox_cursor(data_source_id, &cursor))
            .await?;
        Ok(())
    }

    /// `/integrations/files/sync`: looks every id up in Dropbox first (nothing is recorded when
    /// one is missing), then records every file in one transaction (download queued, or
    /// SYNC_ERROR with a reason when too large or unsupported) and each folder (container record + watched selection;
    /// its files are listed by a queued reconciliation). Idempotent.
    pub async fn sync_files(
        &self,
        data_source_id: i64,
        ids: &[String],
        settings: &SyncSettings,
    ) -> Result<SyncFilesOutcome, SyncFilesError> {
        let dbx = &self.inner.dbx;
        self.ensure_cursor(data_source_id).await?;
        let client = dbx.client().clone();
        let mut found = Vec::new();
        for id in ids {
            let r = dbx
                .call(data_source_id, |auth| {
                    let client = client.clone();
                    let id = id.clone();
                    async move { client.get_metadata(&auth, &id).await }
                })
                .await;
            match r {
                Ok(m) => found.push((id.clone(), m)),
                Err(DropboxError::Api(e)) if e.is_not_found() => {
                    return Err(SyncFilesError::NotFound(id.clone()));
                }
                Err(DropboxError::Api(carbide_dropbox::Error::Api { summary, .. }))
                    if summary.starts_with("path/malformed_path") =>
                {
                    return Err(SyncFilesError::NotFound(id.clone()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut out = SyncFilesOutcome::default();
        let mut selections = Vec::new();
        // every file of the call in one transaction (so the request cannot look settled while
        // its last files are still being recorded), then each folder
        let mut files = Vec::new();
        let mut folders = Vec::new();
        for (id, m) in found {
            match (self.entry(&m), &m) {
                (Some(RemoteEntry::File(f)), _) => files.push(f),
                (
                    Some(RemoteEntry::Folder {
                        id: fid,
                        name,
                        path_lower,
                    }),
                    Metadata::Folder(_),
                ) => {
                    let www = dbx.client().endpoints().www.clone();
                    let url = crate::dropbox::items::to_item(&www, &m).and_then(|i| i.external_url);
                    folders.push((fid, name, path_lower, url));
                }
                _ => return Err(SyncFilesError::NotFound(id)),
            }
        }
        if !files.is_empty() {
            let st = settings.clone();
            let settles = folders.is_empty();
            out.file_ids = dbx
                .db(move |s| s.select_dropbox_files(data_source_id, &files, &st, settles))
                .await?;
        }
        for (fid, name, path_lower, url) in folders {
            let st = settings.clone();
            let (sid, file_id) = dbx
                .db(move |s| {
                    s.select_dropbox_folder(
                        data_source_id,
                        &fid,
                        &name,
                        &path_lower,
                        url.as_deref(),
                        &st,
                    )
                })
                .await?;
            selections.push(sid);
            out.folder_ids.push(file_id);
        }
        if !selections.is_empty() {
            dbx.db(move |s| s.enqueue_dropbox_reconcile(data_source_id, Some(&selections)))
                .await?;
        }
        self.wake();
        Ok(out)
    }

    /// Runs the job worker, the longpoll tracker and the scheduler until `shutdown` turns
    /// `true`.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        // a JoinSet: dropping this future (an aborted task) stops every part at once
        let mut set = tokio::task::JoinSet::new();
        set.spawn(jobs::run_worker(self.clone(), shutdown.clone()));
        if self.inner.cfg.track_changes {
            set.spawn(tracker::run_tracker(self.clone(), shutdown.clone()));
        }
        set.spawn(tracker::run_scheduler(self.clone(), shutdown));
        while let Some(r) = set.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "Dropbox sync task failed");
            }
        }
    }
}

/// Aborts a task when dropped (heartbeats, tracker tasks), so stopping a parent stops it.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
