//! Dropbox file sync state: watched selections (`/integrations/files/sync`), the account-wide
//! change cursor, the schedule of full reconciliations, and the one-transaction application of
//! a batch of Dropbox changes to the customer's files (new file → record + download job;
//! changed bytes → download job; rename/move → metadata update in place; deletion → file,
//! chunks and vectors removed with FILE_DELETED). The cursor only moves inside the transaction
//! that applies the changes it covers, with a compare-and-swap on the previous value.

use std::collections::{HashMap, HashSet};

use carbide_core::enums::{file_status, object_types, webhook_types};
use carbide_core::timefmt::now_unix;
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Map, Value, json};

use crate::data_sources::{enqueue_ds_event, get_ds_tx};
use crate::files::bump_generation_tx;
use crate::jobs::{JOB_PROCESS_FILE, Job, NewJob, enqueue_job_tx};
use crate::outbox::enqueue_tx;
use crate::{DataSource, Store, StoreError, parse_json};

/// Job: download a Dropbox file's bytes, store them and hand the file to processing.
pub const JOB_DROPBOX_DOWNLOAD: &str = "dropbox_download";
/// Job: read the changes after a data source's cursor (`list_folder/continue`).
pub const JOB_DROPBOX_POLL: &str = "dropbox_poll";
/// Job: relist watched folders and selected files and diff against the store.
pub const JOB_DROPBOX_RECONCILE: &str = "dropbox_reconcile";
/// Carbon's webhook for a provider rate limit.
pub const RATE_LIMIT_ERROR: &str = "RATE_LIMIT_ERROR";

/// Attempts of a download job (rate-limit waits count too).
const DOWNLOAD_ATTEMPTS: i64 = 12;

/// A file as Dropbox describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteFile {
    pub id: String,
    pub name: String,
    pub path_lower: String,
    pub size: i64,
    pub rev: String,
    pub content_hash: Option<String>,
    pub file_format: Option<String>,
    pub external_url: Option<String>,
    /// Why the file cannot be synced (too large, unsupported type): it is recorded as
    /// SYNC_ERROR with this reason and never downloaded.
    pub reject: Option<String>,
}

/// One entry of a listing or a change page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteEntry {
    File(RemoteFile),
    Folder {
        id: String,
        name: String,
        path_lower: String,
    },
    /// Something at this path (and below) no longer exists.
    Deleted {
        path_lower: String,
    },
}

/// How files of a selection are synced: processing options, tags, request id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncSettings {
    pub options: Map<String, Value>,
    pub tags: Map<String, Value>,
    pub request_id: Option<String>,
}

impl SyncSettings {
    fn to_json(&self) -> String {
        json!({"options": self.options, "tags": self.tags, "request_id": self.request_id})
            .to_string()
    }
    fn from_json(s: &str) -> SyncSettings {
        let v = parse_json(s);
        let m = |k: &str| match v.get(k) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        SyncSettings {
            options: m("options"),
            tags: m("tags"),
            request_id: v
                .get("request_id")
                .and_then(Value::as_str)
                .map(String::from),
        }
    }
}

/// A watched folder or selected file.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub id: i64,
    pub data_source_id: i64,
    pub external_id: String,
    pub is_folder: bool,
    pub path_lower: String,
    /// The selection's UserFile (folder container or the file).
    pub file_id: i64,
    pub settings: SyncSettings,
}

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// New file records (queued for download, or SYNC_ERROR when rejected).
    pub created: Vec<i64>,
    /// Known files whose bytes changed (download queued).
    pub changed: Vec<i64>,
    /// Known files renamed or moved in place.
    pub moved: Vec<i64>,
    /// Files deleted (with their descendants).
    pub deleted: Vec<i64>,
}

/// A Dropbox file record, as the sync needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct DropboxFileRef {
    pub id: i64,
    pub data_source_id: i64,
    pub organization_user_id: i64,
    pub external_file_id: String,
    pub name: Option<String>,
    pub is_folder: bool,
    pub content_hash: Option<String>,
    pub raw_sha256: Option<String>,
    pub sync_status: String,
}

fn selections_tx(c: &rusqlite::Connection, ds: i64) -> Result<Vec<Selection>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, data_source_id, external_id, is_folder, path_lower, file_id, settings \
         FROM dropbox_selections WHERE data_source_id = ?1 ORDER BY id",
    )?;
    let rows = st
        .query_map([ds], |r| {
            Ok(Selection {
                id: r.get(0)?,
                data_source_id: r.get(1)?,
                external_id: r.get(2)?,
                is_folder: r.get(3)?,
                path_lower: r.get(4)?,
                file_id: r.get(5)?,
                settings: SyncSettings::from_json(&r.get::<_, String>(6)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// True when `path` is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// The deepest watched folder strictly containing `path`.
fn watching<'a>(sels: &'a [Selection], path: &str) -> Option<&'a Selection> {
    sels.iter()
        .filter(|s| s.is_folder && path != s.path_lower && under(path, &s.path_lower))
        .max_by_key(|s| s.path_lower.len())
}

/// A known Dropbox record: `(file id, content_hash, name, path_lower, is_folder)`.
type Known = (i64, Option<String>, Option<String>, Option<String>, bool);

fn known_tx(tx: &Transaction<'_>, ds: i64, external_id: &str) -> Result<Option<Known>, StoreError> {
    // cached: called once per entry of every change batch and reconciliation
    Ok(tx
        .prepare_cached(
            "SELECT id, content_hash, name, path_lower, is_folder FROM files \
             WHERE data_source_id = ?1 AND source = 'DROPBOX' AND external_file_id = ?2",
        )?
        .query_row(params![ds, external_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?)
}

fn download_job(file_id: i64, customer_pk: i64, data_source_id: i64, force: bool) -> NewJob {
    NewJob {
        kind: JOB_DROPBOX_DOWNLOAD.into(),
        organization_user_id: Some(customer_pk),
        file_id: Some(file_id),
        payload: json!({"data_source_id": data_source_id, "force": force}),
        run_at: now_unix(),
        max_attempts: DOWNLOAD_ATTEMPTS,
        dedupe_key: Some(format!("dbx-dl:{file_id}")),
    }
}

fn event_tx(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
    webhook_type: &str,
    object_type: &str,
    object_id: Value,
    extra: Option<&Map<String, Value>>,
) -> Result<(), StoreError> {
    enqueue_tx(
        tx,
        store,
        ds.organization_id,
        Some(&ds.organization_supplied_user_id),
        webhook_type,
        object_type,
        &object_id,
        extra,
    )?;
    Ok(())
}

/// Inserts a Dropbox file (or folder container) record; queues its download unless rejected
/// or a folder. Returns the new id.
fn insert_file_tx(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
    parent_id: Option<i64>,
    f: &RemoteFile,
    is_folder: bool,
    settings: &SyncSettings,
) -> Result<i64, StoreError> {
    let now = now_unix();
    let status = if is_folder {
        file_status::READY
    } else if f.reject.is_some() {
        file_status::SYNC_ERROR
    } else {
        file_status::QUEUED_FOR_SYNC
    };
    let model = settings
        .options
        .get("embedding_model")
        .and_then(Value::as_str)
        .map(String::from);
    let id: i64 = tx.query_row(
        "INSERT INTO files (organization_id, organization_user_id, data_source_id, parent_id, source, \
         external_file_id, external_url, name, is_folder, sync_status, sync_error_message, file_format, \
         file_size, tags, options, request_id, embedding_model, rev, path_lower, last_sync, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'DROPBOX', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?20) \
         RETURNING id",
        params![
            ds.organization_id,
            ds.organization_user_id,
            ds.id,
            parent_id,
            f.id,
            f.external_url,
            f.name,
            is_folder,
            status,
            if is_folder { None } else { f.reject.clone() },
            f.file_format,
            if is_folder { None } else { Some(f.size) },
            Value::Object(settings.tags.clone()).to_string(),
            Value::Object(settings.options.clone()).to_string(),
            settings.request_id,
            model,
            if is_folder { None } else { Some(f.rev.clone()) },
            f.path_lower,
            if is_folder { Some(now) } else { None },
            now
        ],
        |r| r.get(0),
    )?;
    if status == file_status::QUEUED_FOR_SYNC {
        enqueue_job_tx(tx, &download_job(id, ds.organization_user_id, ds.id, false))?;
    } else if status == file_status::SYNC_ERROR {
        let mut extra = Map::new();
        extra.insert("sync_error_message".into(), json!(f.reject));
        event_tx(
            tx,
            store,
            ds,
            webhook_types::FILE_ERROR,
            object_types::FILE,
            json!(id.to_string()),
            Some(&extra),
        )?;
    }
    Ok(id)
}

/// Deletes file `id` and its descendants (chunks, keyword rows and vectors by cascade and
/// trigger), FILE_DELETED for each. Returns the deleted ids and their blobs.
fn delete_file_tx(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
    id: i64,
    shas: &mut Vec<String>,
) -> Result<Vec<i64>, StoreError> {
    let mut st = tx.prepare_cached(
        "WITH RECURSIVE d(id) AS (SELECT ?1 UNION SELECT files.id FROM files JOIN d ON files.parent_id = d.id) \
         SELECT id, raw_sha256, parsed_sha256 FROM files WHERE id IN (SELECT id FROM d)",
    )?;
    let rows = st
        .query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    drop(st);
    let had_chunks: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM chunks WHERE file_id IN \
         (WITH RECURSIVE d(id) AS (SELECT ?1 UNION SELECT files.id FROM files JOIN d ON files.parent_id = d.id) SELECT id FROM d))",
        [id],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM files WHERE id = ?1", [id])?;
    if had_chunks {
        bump_generation_tx(tx, ds.organization_user_id)?;
    }
    let mut ids = Vec::new();
    for (fid, a, b) in rows {
        shas.extend(a);
        shas.extend(b);
        event_tx(
            tx,
            store,
            ds,
            webhook_types::FILE_DELETED,
            object_types::FILE,
            json!(fid.to_string()),
            None,
        )?;
        ids.push(fid);
    }
    Ok(ids)
}

fn ds_tx(tx: &rusqlite::Connection, ds: i64) -> Result<DataSource, StoreError> {
    get_ds_tx(tx, ds)?.ok_or(StoreError::NotFound("data source"))
}

fn files_created_tx(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
    ids: &[i64],
    request_id: Option<&str>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut extra = Map::new();
    if let Some(r) = request_id {
        extra.insert("request_id".into(), json!(r));
    }
    event_tx(
        tx,
        store,
        ds,
        webhook_types::FILES_CREATED,
        object_types::FILE_LIST,
        Value::Array(ids.iter().map(|i| json!(i.to_string())).collect()),
        (!extra.is_empty()).then_some(&extra),
    )
}

/// Applies `entries` in order (see the module doc). Entries whose id appears live later in
/// the batch are not deleted by an earlier `deleted` entry (a move reported as delete + add).
fn apply_tx(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
    entries: &[RemoteEntry],
    shas: &mut Vec<String>,
) -> Result<ApplyReport, StoreError> {
    let now = now_unix();
    let mut sels = selections_tx(tx, ds.id)?;
    let live: HashSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            RemoteEntry::File(f) => Some(f.id.as_str()),
            RemoteEntry::Folder { id, .. } => Some(id.as_str()),
            RemoteEntry::Deleted { .. } => None,
        })
        .collect();
    let mut rep = ApplyReport::default();
    let mut gone: HashSet<i64> = HashSet::new();
    let mut created_by_req: HashMap<Option<String>, Vec<i64>> = HashMap::new();
    for e in entries {
        match e {
            RemoteEntry::Deleted { path_lower } => {
                let mut st = tx.prepare_cached(
                    "SELECT id, external_file_id FROM files WHERE data_source_id = ?1 AND source = 'DROPBOX' \
                     AND (path_lower = ?2 OR substr(path_lower, 1, length(?2) + 1) = ?2 || '/') ORDER BY id",
                )?;
                let hits = st
                    .query_map(params![ds.id, path_lower], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                drop(st);
                for (fid, ext) in hits {
                    if live.contains(ext.as_str()) || gone.contains(&fid) {
                        continue;
                    }
                    let exists: bool = tx.query_row(
                        "SELECT EXISTS(SELECT 1 FROM files WHERE id = ?1)",
                        [fid],
                        |r| r.get(0),
                    )?;
                    if !exists {
                        continue;
                    }
                    let ids = delete_file_tx(tx, store, ds, fid, shas)?;
                    gone.extend(ids.iter().copied());
                    rep.deleted.extend(ids);
                }
                sels = selections_tx(tx, ds.id)?;
            }
            RemoteEntry::Folder {
                id,
                name,
                path_lower,
            } => {
                if let Some(s) = sels.iter().find(|s| s.external_id == *id)
                    && s.path_lower != *path_lower
                {
                    tx.execute(
                        "UPDATE dropbox_selections SET path_lower = ?2, updated_at = ?3 WHERE id = ?1",
                        params![s.id, path_lower, now],
                    )?;
                    tx.execute(
                        "UPDATE files SET name = ?2, path_lower = ?3, updated_at = ?4 WHERE id = ?1",
                        params![s.file_id, name, path_lower, now],
                    )?;
                    rep.moved.push(s.file_id);
                    sels = selections_tx(tx, ds.id)?;
                }
            }
            RemoteEntry::File(f) => {
                let parent = watching(&sels, &f.path_lower);
                let own = sels.iter().find(|s| !s.is_folder && s.external_id == f.id);
                match known_tx(tx, ds.id, &f.id)? {
                    Some((fid, hash, name, path, _)) => {
                        if parent.is_none() && own.is_none() {
                            // moved out of every watched folder and not chosen by itself
                            let ids = delete_file_tx(tx, store, ds, fid, shas)?;
                            gone.extend(ids.iter().copied());
                            rep.deleted.extend(ids);
                            continue;
                        }
                        if path.as_deref() != Some(f.path_lower.as_str())
                            || name.as_deref() != Some(f.name.as_str())
                        {
                            tx.execute(
                                "UPDATE files SET name = ?2, path_lower = ?3, external_url = ?4, \
                                 parent_id = ?5, updated_at = ?6 WHERE id = ?1",
                                params![
                                    fid,
                                    f.name,
                                    f.path_lower,
                                    f.external_url,
                                    parent.map(|p| p.file_id),
                                    now
                                ],
                            )?;
                            if let Some(o) = own {
                                tx.execute(
                                    "UPDATE dropbox_selections SET path_lower = ?2, updated_at = ?3 WHERE id = ?1",
                                    params![o.id, f.path_lower, now],
                                )?;
                            }
                            rep.moved.push(fid);
                        }
                        let changed = f.content_hash.is_none() || hash != f.content_hash;
                        if changed {
                            if let Some(reason) = &f.reject {
                                tx.execute(
                                    "UPDATE files SET sync_status = ?2, sync_error_message = ?3, file_size = ?4, \
                                     rev = ?5, updated_at = ?6 WHERE id = ?1",
                                    params![fid, file_status::SYNC_ERROR, reason, f.size, f.rev, now],
                                )?;
                            } else {
                                tx.execute(
                                    "UPDATE files SET sync_status = ?2, sync_error_message = NULL, updated_at = ?3 \
                                     WHERE id = ?1",
                                    params![fid, file_status::QUEUED_FOR_SYNC, now],
                                )?;
                                enqueue_job_tx(
                                    tx,
                                    &download_job(fid, ds.organization_user_id, ds.id, false),
                                )?;
                                rep.changed.push(fid);
                            }
                        } else {
                            tx.execute(
                                "UPDATE files SET rev = ?2 WHERE id = ?1 AND rev IS NOT ?2",
                                params![fid, f.rev],
                            )?;
                        }
                    }
                    None => {
                        let Some(p) = parent else { continue };
                        let id =
                            insert_file_tx(tx, store, ds, Some(p.file_id), f, false, &p.settings)?;
                        created_by_req
                            .entry(p.settings.request_id.clone())
                            .or_default()
                            .push(id);
                        rep.created.push(id);
                    }
                }
            }
        }
    }
    for (req, ids) in created_by_req {
        files_created_tx(tx, store, ds, &ids, req.as_deref())?;
    }
    Ok(rep)
}

impl Store {
    /// The data source's change cursor.
    pub fn dropbox_cursor(&self, data_source_id: i64) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT cursor FROM dropbox_sync_state WHERE data_source_id = ?1",
                [data_source_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
        })
    }

    /// Stores the first cursor of a data source; `false` (nothing changed) when it has one.
    pub fn init_dropbox_cursor(
        &self,
        data_source_id: i64,
        cursor: &str,
    ) -> Result<bool, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO dropbox_sync_state (data_source_id, updated_at) VALUES (?1, ?2) \
                 ON CONFLICT (data_source_id) DO NOTHING",
                params![data_source_id, now],
            )?;
            Ok(tx.execute(
                "UPDATE dropbox_sync_state SET cursor = ?2, cursor_updated_at = ?3, updated_at = ?3 \
                 WHERE data_source_id = ?1 AND cursor IS NULL",
                params![data_source_id, cursor, now],
            )? == 1)
        })
    }

    /// Replaces the cursor if it is still `expected` (after a `reset`).
    pub fn replace_dropbox_cursor(
        &self,
        data_source_id: i64,
        expected: Option<&str>,
        cursor: &str,
    ) -> Result<bool, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO dropbox_sync_state (data_source_id, updated_at) VALUES (?1, ?2) \
                 ON CONFLICT (data_source_id) DO NOTHING",
                params![data_source_id, now],
            )?;
            Ok(tx.execute(
                "UPDATE dropbox_sync_state SET cursor = ?2, cursor_updated_at = ?3, updated_at = ?3 \
                 WHERE data_source_id = ?1 AND cursor IS ?4",
                params![data_source_id, cursor, now, expected],
            )? == 1)
        })
    }

    /// The data source's watched folders and selected files.
    pub fn dropbox_selections(&self, data_source_id: i64) -> Result<Vec<Selection>, StoreError> {
        self.read(|c| selections_tx(c, data_source_id))
    }

    /// `/integrations/files/sync` for one file: a selection row and the file's record (created
    /// with its download job, or SYNC_ERROR when `f.reject`), UPDATE + FILES_CREATED webhooks.
    /// Idempotent: a known file gets the new settings and, when its bytes changed, a download.
    /// Returns the file ids, in order. All files are recorded in one transaction, so no
    /// worker can settle the request before every file of the call is in it. With
    /// `settles_request` (no folder of the same request follows) and a `request_id`, the request
    /// is settled here when nothing of it is left in flight: files refused before download (or
    /// already processed and unchanged) are never reported by a worker.
    pub fn select_dropbox_files(
        &self,
        data_source_id: i64,
        files: &[RemoteFile],
        settings: &SyncSettings,
        settles_request: bool,
    ) -> Result<Vec<i64>, StoreError> {
        let mut shas = Vec::new();
        let ids = self.write(|tx| {
            let ds = ds_tx(tx, data_source_id)?;
            let mut ids = Vec::with_capacity(files.len());
            for f in files {
                ids.push(select_file_tx(tx, self, &ds, f, settings, &mut shas)?);
            }
            touch_selection_tx(tx, self, &ds)?;
            if let Some(req) = settings.request_id.as_deref().filter(|_| settles_request) {
                crate::files::request_settled_tx(
                    tx,
                    self,
                    ds.organization_id,
                    ds.organization_user_id,
                    &ds.organization_supplied_user_id,
                    req,
                )?;
            }
            Ok(ids)
        })?;
        self.collect_blobs(&shas);
        Ok(ids)
    }

    /// `/integrations/files/sync` for one folder: its container record (READY) and a watched
    /// selection; the files below arrive through [`Store::apply_dropbox_listing`]. Returns
    /// `(selection id, folder file id)`.
    pub fn select_dropbox_folder(
        &self,
        data_source_id: i64,
        folder_id: &str,
        name: &str,
        path_lower: &str,
        external_url: Option<&str>,
        settings: &SyncSettings,
    ) -> Result<(i64, i64), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let ds = ds_tx(tx, data_source_id)?;
            let fid = match known_tx(tx, ds.id, folder_id)? {
                Some((fid, ..)) => {
                    tx.execute(
                        "UPDATE files SET name = ?2, path_lower = ?3, tags = ?4, options = ?5, \
                         request_id = coalesce(?6, request_id), updated_at = ?7 WHERE id = ?1",
                        params![
                            fid,
                            name,
                            path_lower,
                            Value::Object(settings.tags.clone()).to_string(),
                            Value::Object(settings.options.clone()).to_string(),
                            settings.request_id,
                            now
                        ],
                    )?;
                    fid
                }
                None => {
                    let rf = RemoteFile {
                        id: folder_id.to_string(),
                        name: name.to_string(),
                        path_lower: path_lower.to_string(),
                        external_url: external_url.map(String::from),
                        ..RemoteFile::default()
                    };
                    let id = insert_file_tx(tx, self, &ds, None, &rf, true, settings)?;
                    files_created_tx(tx, self, &ds, &[id], settings.request_id.as_deref())?;
                    id
                }
            };
            let sid: i64 = tx.query_row(
                "INSERT INTO dropbox_selections (data_source_id, organization_user_id, external_id, is_folder, \
                 path_lower, file_id, settings, created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?7) \
                 ON CONFLICT (data_source_id, external_id) DO UPDATE SET path_lower = excluded.path_lower, \
                 file_id = excluded.file_id, settings = excluded.settings, updated_at = excluded.updated_at \
                 RETURNING id",
                params![ds.id, ds.organization_user_id, folder_id, path_lower, fid, settings.to_json(), now],
                |r| r.get(0),
            )?;
            touch_selection_tx(tx, self, &ds)?;
            Ok((sid, fid))
        })
    }

    /// Applies a change page and moves the cursor from `expected` to `new_cursor` in the same
    /// transaction. `None` (nothing written) when the cursor was no longer `expected` (another
    /// worker applied it first).
    pub fn apply_dropbox_changes(
        &self,
        data_source_id: i64,
        expected: &str,
        new_cursor: &str,
        entries: &[RemoteEntry],
    ) -> Result<Option<ApplyReport>, StoreError> {
        let now = now_unix();
        let mut shas = Vec::new();
        let rep = self.write(|tx| {
            let n = tx.execute(
                "UPDATE dropbox_sync_state SET cursor = ?3, cursor_updated_at = ?4, updated_at = ?4 \
                 WHERE data_source_id = ?1 AND cursor = ?2",
                params![data_source_id, expected, new_cursor, now],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let ds = ds_tx(tx, data_source_id)?;
            Ok(Some(apply_tx(tx, self, &ds, entries, &mut shas)?))
        })?;
        self.collect_blobs(&shas);
        Ok(rep)
    }

    /// Applies a (re)listing of watched content (initial folder sync, scheduled
    /// reconciliation, cursor reset) without touching the cursor.
    pub fn apply_dropbox_listing(
        &self,
        data_source_id: i64,
        entries: &[RemoteEntry],
    ) -> Result<ApplyReport, StoreError> {
        let mut shas = Vec::new();
        let rep = self.write(|tx| {
            let ds = ds_tx(tx, data_source_id)?;
            apply_tx(tx, self, &ds, entries, &mut shas)
        })?;
        self.collect_blobs(&shas);
        Ok(rep)
    }

    /// After a complete relisting of selection `selection_id`: deletes the Dropbox files below
    /// it whose ids were not `seen` (and that no other selection keeps). Returns deleted ids.
    pub fn prune_dropbox_selection(
        &self,
        selection_id: i64,
        seen: &HashSet<String>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut shas = Vec::new();
        let out = self.write(|tx| {
            let Some((ds_id, path, is_folder, sel_file)) = tx
                .query_row(
                    "SELECT data_source_id, path_lower, is_folder, file_id FROM dropbox_selections WHERE id = ?1",
                    [selection_id],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, i64>(3)?)),
                )
                .optional()?
            else {
                return Ok(Vec::new());
            };
            if !is_folder {
                return Ok(Vec::new());
            }
            let ds = ds_tx(tx, ds_id)?;
            let sels = selections_tx(tx, ds_id)?;
            let mut st = tx.prepare(
                "SELECT id, external_file_id, path_lower FROM files WHERE data_source_id = ?1 AND source = 'DROPBOX' \
                 AND is_folder = 0 AND substr(path_lower, 1, length(?2) + 1) = ?2 || '/'",
            )?;
            let rows = st
                .query_map(params![ds_id, path], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            drop(st);
            let mut deleted = Vec::new();
            for (fid, ext, p) in rows {
                if fid == sel_file || seen.contains(&ext) {
                    continue;
                }
                // kept by a selection of the file itself, or by a watched folder not under this one
                let kept = sels.iter().any(|s| {
                    s.id != selection_id
                        && ((!s.is_folder && s.external_id == ext)
                            || (s.is_folder && under(&p, &s.path_lower) && !under(&s.path_lower, &path)))
                });
                if kept {
                    continue;
                }
                deleted.extend(delete_file_tx(tx, self, &ds, fid, &mut shas)?);
            }
            Ok(deleted)
        })?;
        self.collect_blobs(&shas);
        Ok(out)
    }

    /// A Dropbox file record (no tenancy filter: workers only).
    pub fn dropbox_file(&self, file_id: i64) -> Result<Option<DropboxFileRef>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, data_source_id, organization_user_id, external_file_id, name, is_folder, \
                 content_hash, raw_sha256, sync_status FROM files WHERE id = ?1 AND source = 'DROPBOX' \
                 AND data_source_id IS NOT NULL",
                [file_id],
                |r| {
                    Ok(DropboxFileRef {
                        id: r.get(0)?,
                        data_source_id: r.get(1)?,
                        organization_user_id: r.get(2)?,
                        external_file_id: r.get(3)?,
                        name: r.get(4)?,
                        is_folder: r.get(5)?,
                        content_hash: r.get(6)?,
                        raw_sha256: r.get(7)?,
                        sync_status: r.get(8)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// `/resync_file` of a Dropbox file: merges `options`, QUEUED_FOR_SYNC, and queues a
    /// forced re-download. `None` when the file is not the customer's Dropbox file.
    pub fn requeue_dropbox_download(
        &self,
        org_id: i64,
        customer_pk: i64,
        file_id: i64,
        options: &Map<String, Value>,
    ) -> Result<bool, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let row: Option<(i64, String, bool)> = tx
                .query_row(
                    "SELECT data_source_id, options, is_folder FROM files WHERE id = ?1 AND organization_id = ?2 \
                     AND organization_user_id = ?3 AND source = 'DROPBOX' AND data_source_id IS NOT NULL",
                    params![file_id, org_id, customer_pk],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((ds, opts, is_folder)) = row else {
                return Ok(false);
            };
            if is_folder {
                return Ok(false);
            }
            let mut o = match parse_json(&opts) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            for (k, v) in options {
                o.insert(k.clone(), v.clone());
            }
            tx.execute(
                "UPDATE files SET options = ?2, sync_status = ?3, sync_error_message = NULL, updated_at = ?4 \
                 WHERE id = ?1",
                params![file_id, Value::Object(o).to_string(), file_status::QUEUED_FOR_SYNC, now],
            )?;
            enqueue_job_tx(tx, &download_job(file_id, customer_pk, ds, true))?;
            Ok(true)
        })
    }

    /// Moves a streamed download (`tmp`, whose SHA-256 is `sha`) into the blob store, records
    /// Dropbox's revision facts on the file and queues processing, in one transaction — only
    /// while job `job_id` is still leased by `owner`: a job re-armed meanwhile (the file changed
    /// again during the download) must not overwrite the newer download. `false` when nothing
    /// was written (file deleted or job superseded).
    #[allow(clippy::too_many_arguments)]
    pub fn finish_dropbox_download(
        &self,
        job_id: i64,
        owner: &str,
        file_id: i64,
        tmp: tempfile::NamedTempFile,
        sha: &str,
        size: i64,
        rev: &str,
        content_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        let path = self.blob_path(sha)?;
        if !path.exists() {
            let dir = path
                .parent()
                .ok_or_else(|| StoreError::Conflict("blob path has no parent".into()))?;
            std::fs::create_dir_all(dir)?;
            tmp.as_file().sync_data()?;
            tmp.persist(&path).map_err(|e| StoreError::Io(e.error))?;
        }
        let now = now_unix();
        let old =
            self.write(|tx| {
                let row: Option<(i64, Option<String>)> = tx
                    .query_row(
                        "SELECT organization_user_id, raw_sha256 FROM files WHERE id = ?1",
                        [file_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((cust, old)) = row else {
                    return Ok(None);
                };
                let ours: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM jobs WHERE id = ?1 AND lease_owner = ?2)",
                    params![job_id, owner],
                    |r| r.get(0),
                )?;
                if !ours {
                    return Ok(None);
                }
                tx.execute(
                "UPDATE files SET raw_sha256 = ?2, file_size = ?3, rev = ?4, content_hash = ?5, \
                 sync_status = ?6, sync_error_message = NULL, updated_at = ?7 WHERE id = ?1",
                params![file_id, sha, size, rev, content_hash, file_status::QUEUED_FOR_SYNC, now],
            )?;
                enqueue_job_tx(
                    tx,
                    &NewJob {
                        kind: JOB_PROCESS_FILE.into(),
                        organization_user_id: Some(cust),
                        file_id: Some(file_id),
                        payload: Value::Object(Map::new()),
                        run_at: now,
                        max_attempts: 3,
                        dedupe_key: Some(format!("file:{file_id}")),
                    },
                )?;
                Ok(Some(old))
            })?;
        match old {
            None => {
                self.collect_blobs(&[sha.to_string()]);
                Ok(false)
            }
            Some(prev) => {
                if let Some(p) = prev
                    && p != sha
                {
                    self.collect_blobs(&[p]);
                }
                Ok(true)
            }
        }
    }

    /// A download waits on Dropbox's rate limit: RATE_LIMITED and the RATE_LIMIT_ERROR webhook.
    pub fn mark_dropbox_rate_limited(
        &self,
        file_id: i64,
        retry_after: i64,
    ) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let ds: Option<i64> = tx
                .query_row(
                    "SELECT data_source_id FROM files WHERE id = ?1",
                    [file_id],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let Some(ds) = ds else { return Ok(()) };
            tx.execute(
                "UPDATE files SET sync_status = ?2, updated_at = ?3 WHERE id = ?1",
                params![file_id, file_status::RATE_LIMITED, now],
            )?;
            let ds = ds_tx(tx, ds)?;
            let mut extra = Map::new();
            extra.insert("retry_after".into(), json!(retry_after.to_string()));
            event_tx(
                tx,
                self,
                &ds,
                RATE_LIMIT_ERROR,
                object_types::FILE,
                json!(file_id.to_string()),
                Some(&extra),
            )
        })
    }

    /// Sets a Dropbox file's status without webhooks (a download retry going back to the queue).
    pub fn set_dropbox_file_queued(&self, file_id: i64) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            tx.execute(
                "UPDATE files SET sync_status = ?2, updated_at = ?3 WHERE id = ?1",
                params![file_id, file_status::QUEUED_FOR_SYNC, now],
            )?;
            Ok(())
        })
    }

    /// Claims up to `limit` due Dropbox jobs (polls, reconciliations, downloads) for
    /// `lease_secs`, skipping downloads of the data sources in `full_sources` (those already
    /// at their download limit in this process), so one account's backlog never fills the
    /// worker while other accounts wait.
    pub fn claim_dropbox_jobs(
        &self,
        owner: &str,
        lease_secs: i64,
        limit: usize,
        full_sources: &[i64],
    ) -> Result<Vec<Job>, StoreError> {
        let now = now_unix();
        let full = Value::from(full_sources.to_vec()).to_string();
        self.write(|tx| {
            let mut st = tx.prepare_cached(
                "UPDATE jobs SET lease_owner = ?1, lease_until = ?2 \
                 WHERE id IN (SELECT id FROM jobs WHERE run_at <= ?3 \
                     AND (lease_until IS NULL OR lease_until < ?3) \
                     AND kind IN ('dropbox_poll', 'dropbox_reconcile', 'dropbox_download') \
                     AND NOT (kind = 'dropbox_download' AND json_extract(payload, '$.data_source_id') \
                         IN (SELECT value FROM json_each(?4))) \
                     ORDER BY run_at, id LIMIT ?5) \
                 RETURNING id, kind, organization_user_id, file_id, payload, attempts, max_attempts",
            )?;
            let rows = st
                .query_map(
                    params![owner, now + lease_secs, now, full, limit as i64],
                    |r| {
                        Ok(Job {
                            id: r.get(0)?,
                            kind: r.get(1)?,
                            organization_user_id: r.get(2)?,
                            file_id: r.get(3)?,
                            payload: parse_json(&r.get::<_, String>(4)?),
                            attempts: r.get(5)?,
                            max_attempts: r.get(6)?,
                            lease_owner: owner.to_string(),
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Hands a claimed job back untouched (no attempt counted): due again at once for any
    /// worker.
    pub fn release_job(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner],
            )?;
            Ok(())
        })
    }

    /// Data sources to track: Dropbox, not revoked, with a cursor and at least one selection.
    /// `(data source id, cursor)`.
    pub fn tracked_dropbox_sources(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT d.id, s.cursor FROM data_sources d JOIN dropbox_sync_state s ON s.data_source_id = d.id \
                 WHERE d.data_source_type = 'DROPBOX' AND d.revoked_access = 0 AND s.cursor IS NOT NULL \
                 AND EXISTS (SELECT 1 FROM dropbox_selections x WHERE x.data_source_id = d.id) ORDER BY d.id",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Queues a change poll of the data source (coalesced: one pending poll per source).
    pub fn enqueue_dropbox_poll(&self, data_source_id: i64) -> Result<(), StoreError> {
        self.write(|tx| enqueue_poll_tx(tx, data_source_id))
    }

    /// Queues polls of every tracked data source connected to Dropbox account `account_id`
    /// (a Dropbox webhook). Returns how many.
    pub fn enqueue_dropbox_polls_for_account(&self, account_id: &str) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut st = tx.prepare(
                "SELECT d.id FROM data_sources d JOIN dropbox_sync_state s ON s.data_source_id = d.id \
                 WHERE d.data_source_type = 'DROPBOX' AND d.data_source_external_id = ?1 \
                 AND d.revoked_access = 0 AND s.cursor IS NOT NULL",
            )?;
            let ids = st
                .query_map([account_id], |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            drop(st);
            for id in &ids {
                enqueue_poll_tx(tx, *id)?;
            }
            Ok(ids.len())
        })
    }

    /// Queues a reconciliation of the data source: `selection_ids` only, or all (`None`,
    /// coalesced with other full reconciliations).
    pub fn enqueue_dropbox_reconcile(
        &self,
        data_source_id: i64,
        selection_ids: Option<&[i64]>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            enqueue_reconcile_tx(tx, data_source_id, selection_ids)?;
            Ok(())
        })
    }

    /// Every Dropbox app secret webhooks may be signed with: each organization's DROPBOX
    /// white-label secret (decrypted).
    pub fn dropbox_white_label_secrets(&self) -> Result<Vec<String>, StoreError> {
        let blobs: Vec<Vec<u8>> = self.read(|c| {
            let mut st = c.prepare(
                "SELECT client_secret_enc FROM white_labels WHERE data_source_type = 'DROPBOX' \
                 AND client_secret_enc IS NOT NULL",
            )?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        let mut out = Vec::new();
        for b in blobs {
            let plain = self.key().decrypt(&b)?;
            if let Ok(s) = String::from_utf8(plain) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Scheduled sync: for every Dropbox source whose customer enabled auto sync and whose
    /// `next_sync_at` has passed, moves `next_sync_at` one interval ahead and queues a full
    /// reconciliation — one transaction with compare-and-swap, so several processes never
    /// schedule the same run twice. The interval is the customer's `auto_sync_interval`, else
    /// the organization's `global_user_config.auto_sync_interval`, else `default_hours`; the
    /// shorter of customer and organization wins when both are set. A source seen for the first
    /// time gets `next_sync_at = now + interval`. Returns the sources queued.
    pub fn schedule_due_dropbox_syncs(&self, default_hours: i64) -> Result<Vec<i64>, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let mut st = tx.prepare(
                "SELECT d.id, u.auto_sync_interval, o.global_user_config, s.next_sync_at \
                 FROM data_sources d JOIN organization_users u ON u.id = d.organization_user_id \
                 JOIN organizations o ON o.id = d.organization_id \
                 LEFT JOIN dropbox_sync_state s ON s.data_source_id = d.id \
                 WHERE d.data_source_type = 'DROPBOX' AND d.revoked_access = 0 \
                 AND EXISTS (SELECT 1 FROM json_each(u.auto_sync_enabled_sources) e \
                     WHERE e.value = 'ALL' OR e.value = 'DROPBOX') \
                 AND EXISTS (SELECT 1 FROM dropbox_selections x WHERE x.data_source_id = d.id) \
                 AND (s.next_sync_at IS NULL OR s.next_sync_at <= ?1)",
            )?;
            let rows = st
                .query_map([now], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            drop(st);
            let mut queued = Vec::new();
            for (ds, cust_h, org_cfg, next) in rows {
                let org_h = parse_json(&org_cfg)
                    .get("auto_sync_interval")
                    .and_then(Value::as_i64)
                    .filter(|h| *h > 0);
                let cust_h = cust_h.filter(|h| *h > 0);
                let hours = match (cust_h, org_h) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => default_hours,
                };
                let interval = hours.max(1) * 3600;
                tx.execute(
                    "INSERT INTO dropbox_sync_state (data_source_id, updated_at) VALUES (?1, ?2) \
                     ON CONFLICT (data_source_id) DO NOTHING",
                    params![ds, now],
                )?;
                match next {
                    None => {
                        tx.execute(
                            "UPDATE dropbox_sync_state SET next_sync_at = ?2, updated_at = ?3 \
                             WHERE data_source_id = ?1 AND next_sync_at IS NULL",
                            params![ds, now + interval, now],
                        )?;
                    }
                    Some(at) => {
                        let n = tx.execute(
                            "UPDATE dropbox_sync_state SET next_sync_at = ?2, last_full_sync_at = ?3, \
                             updated_at = ?3 WHERE data_source_id = ?1 AND next_sync_at = ?4",
                            params![ds, now + interval, now, at],
                        )?;
                        if n == 1 {
                            enqueue_reconcile_tx(tx, ds, None)?;
                            queued.push(ds);
                        }
                    }
                }
            }
            Ok(queued)
        })
    }

    /// Sets when the next scheduled reconciliation of a source is due (administration, tests).
    pub fn set_dropbox_next_sync_at(&self, data_source_id: i64, at: i64) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO dropbox_sync_state (data_source_id, next_sync_at, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (data_source_id) DO UPDATE SET next_sync_at = excluded.next_sync_at, \
                 updated_at = excluded.updated_at",
                params![data_source_id, at, now],
            )?;
            Ok(())
        })
    }

    /// `(next_sync_at, last_full_sync_at)` of a source.
    pub fn dropbox_schedule(
        &self,
        data_source_id: i64,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT next_sync_at, last_full_sync_at FROM dropbox_sync_state WHERE data_source_id = ?1",
                [data_source_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((None, None)))
        })
    }

    /// Path where a download is streamed before it becomes a blob (same filesystem, so the
    /// final move is a rename).
    pub fn download_temp_file(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        let dir = self.blobs_dir().join("tmp");
        std::fs::create_dir_all(&dir)?;
        Ok(tempfile::NamedTempFile::new_in(&dir)?)
    }
}

/// Records one selected file (see [`Store::select_dropbox_files`]); returns its id.
fn select_file_tx(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
    f: &RemoteFile,
    settings: &SyncSettings,
    shas: &mut Vec<String>,
) -> Result<i64, StoreError> {
    let now = now_unix();
    let id = match known_tx(tx, ds.id, &f.id)? {
        Some((fid, hash, ..)) => {
            tx.execute(
                "UPDATE files SET options = ?2, tags = ?3, request_id = coalesce(?4, request_id), \
                 name = ?5, path_lower = ?6, updated_at = ?7 WHERE id = ?1",
                params![
                    fid,
                    Value::Object(settings.options.clone()).to_string(),
                    Value::Object(settings.tags.clone()).to_string(),
                    settings.request_id,
                    f.name,
                    f.path_lower,
                    now
                ],
            )?;
            if hash.is_none() || hash != f.content_hash {
                apply_tx(tx, store, ds, &[RemoteEntry::File(f.clone())], shas)?;
            }
            fid
        }
        None => {
            let id = insert_file_tx(tx, store, ds, None, f, false, settings)?;
            files_created_tx(tx, store, ds, &[id], settings.request_id.as_deref())?;
            id
        }
    };
    tx.execute(
        "INSERT INTO dropbox_selections (data_source_id, organization_user_id, external_id, is_folder, \
         path_lower, file_id, settings, created_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?7) \
         ON CONFLICT (data_source_id, external_id) DO UPDATE SET path_lower = excluded.path_lower, \
         file_id = excluded.file_id, settings = excluded.settings, updated_at = excluded.updated_at",
        params![ds.id, ds.organization_user_id, f.id, f.path_lower, id, settings.to_json(), now],
    )?;
    Ok(id)
}

fn touch_selection_tx(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
) -> Result<(), StoreError> {
    let now = now_unix();
    tx.execute(
        "UPDATE data_sources SET last_sync_action = 'UPDATE', files_synced_at = ?2, last_synced_at = ?2, \
         updated_at = ?2 WHERE id = ?1",
        params![ds.id, now],
    )?;
    let ds = ds_tx(tx, ds.id)?;
    enqueue_ds_event(tx, store, &ds, webhook_types::UPDATE, &[])
}

fn enqueue_poll_tx(tx: &Transaction<'_>, data_source_id: i64) -> Result<(), StoreError> {
    let cust: Option<i64> = tx
        .query_row(
            "SELECT organization_user_id FROM data_sources WHERE id = ?1",
            [data_source_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(cust) = cust else { return Ok(()) };
    enqueue_job_tx(
        tx,
        &NewJob {
            kind: JOB_DROPBOX_POLL.into(),
            organization_user_id: Some(cust),
            file_id: None,
            payload: json!({"data_source_id": data_source_id}),
            run_at: now_unix(),
            max_attempts: 1000,
            dedupe_key: Some(format!("dbx-poll:{data_source_id}")),
        },
    )?;
    Ok(())
}

fn enqueue_reconcile_tx(
    tx: &Transaction<'_>,
    data_source_id: i64,
    selection_ids: Option<&[i64]>,
) -> Result<(), StoreError> {
    let cust: Option<i64> = tx
        .query_row(
            "SELECT organization_user_id FROM data_sources WHERE id = ?1",
            [data_source_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(cust) = cust else { return Ok(()) };
    enqueue_job_tx(
        tx,
        &NewJob {
            kind: JOB_DROPBOX_RECONCILE.into(),
            organization_user_id: Some(cust),
            file_id: None,
            payload: json!({"data_source_id": data_source_id, "selections": selection_ids}),
            run_at: now_unix(),
            max_attempts: 1000,
            dedupe_key: selection_ids
                .is_none()
                .then(|| format!("dbx-reconcile:{data_source_id}")),
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefixes() {
        assert!(under("/a/b", "/a"));
        assert!(under("/a", "/a"));
        assert!(!under("/ab", "/a"));
        let sel = |id: i64, p: &str| Selection {
            id,
            data_source_id: 1,
            external_id: format!("id:{id}"),
            is_folder: true,
            path_lower: p.into(),
            file_id: id,
            settings: SyncSettings::default(),
        };
        let s = [sel(1, "/a"), sel(2, "/a/b")];
        assert_eq!(watching(&s, "/a/b/c.txt").map(|s| s.id), Some(2));
        assert_eq!(watching(&s, "/a/c.txt").map(|s| s.id), Some(1));
        assert_eq!(watching(&s, "/a"), None);
        assert_eq!(watching(&s, "/z/c.txt"), None);
    }
}
