//! Item enumeration: lists a connected account recursively (from the team root for team-space
//! accounts, so team folders appear) into `source_items`, page by page, as a background task
//! that survives errors (the data source ends READY or SYNC_ERROR, never stuck in SYNCING) and
//! can be cancelled (in this process at once; from another process at the next page, because
//! every page write checks the source is still SYNCING under the same generation).

use carbide_core::enums::data_source_status;
use carbide_dropbox::{ListFolderArg, Metadata};
use carbide_store::{DataSource, NewSourceItem};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::{Dropbox, DropboxError, Listing};

/// Dropbox files larger than this are listed but not selectable (Carbon's 50 MB limit).
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;

/// Characters escaped in a path put into a web URL.
const PATH_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Carbon's `StorageFileFormats` value for a file name, from its extension (`None` when the
/// type has no such value).
pub fn file_format_for(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "text" => "TXT",
        "csv" => "CSV",
        "tsv" => "TSV",
        "pdf" => "PDF",
        "docx" => "DOCX",
        "pptx" => "PPTX",
        "xlsx" => "XLSX",
        "xlsm" => "XLSM",
        "md" | "markdown" => "MD",
        "rtf" => "RTF",
        "json" => "JSON",
        "html" | "htm" => "HTML",
        "jpg" | "jpeg" => "JPG",
        "png" => "PNG",
        "mp3" => "MP3",
        "mp2" => "MP2",
        "aac" => "AAC",
        "wav" => "WAV",
        "flac" => "FLAC",
        "pcm" => "PCM",
        "m4a" => "M4A",
        "ogg" => "OGG",
        "opus" => "OPUS",
        "mpeg" => "MPEG",
        "mpg" => "MPG",
        "mp4" => "MP4",
        "wmv" => "WMV",
        "avi" => "AVI",
        "mov" => "MOV",
        "mkv" => "MKV",
        "flv" => "FLV",
        "webm" => "WEBM",
        "eml" => "EML",
        "msg" => "MSG",
        _ => return None,
    })
}

fn parent_of(path_lower: &str) -> Option<String> {
    let (parent, _) = path_lower.rsplit_once('/')?;
    if parent.is_empty() {
        None
    } else {
        Some(parent.to_string())
    }
}

fn web_url(www: &str, kind: &str, path_display: Option<&str>) -> Option<String> {
    let p = path_display?;
    Some(format!(
        "{}/{kind}{}",
        www.trim_end_matches('/'),
        utf8_percent_encode(p, PATH_SET)
    ))
}

/// Converts one listing entry (files and folders; deletions and others are skipped).
pub(crate) fn to_item(www: &str, m: &Metadata) -> Option<NewSourceItem> {
    match m {
        Metadata::File(f) => {
            let path_lower = f.path_lower.clone()?;
            let format = file_format_for(&f.name);
            let selectable = f.is_downloadable
                && f.size <= MAX_FILE_BYTES
                && format.is_some_and(|x| crate::dropbox_sync::SUPPORTED_FORMATS.contains(&x));
            Some(NewSourceItem {
                external_id: f.id.clone(),
                name: f.name.clone(),
                item_type: "FILE".into(),
                parent_path_lower: parent_of(&path_lower),
                path_lower,
                path_display: f.path_display.clone(),
                file_format: format.map(str::to_string),
                size: i64::try_from(f.size).ok(),
                rev: Some(f.rev.clone()),
                content_hash: f.content_hash.clone(),
                server_modified: Some(f.server_modified.clone()),
                is_downloadable: f.is_downloadable,
                is_selectable: selectable,
                external_url: web_url(www, "preview", f.path_display.as_deref()),
            })
        }
        Metadata::Folder(f) => {
            let path_lower = f.path_lower.clone()?;
            Some(NewSourceItem {
                external_id: f.id.clone(),
                name: f.name.clone(),
                item_type: "FOLDER".into(),
                parent_path_lower: parent_of(&path_lower),
                path_lower,
                path_display: f.path_display.clone(),
                file_format: None,
                size: None,
                rev: None,
                content_hash: None,
                server_modified: None,
                is_downloadable: true,
                is_selectable: true,
                external_url: web_url(www, "home", f.path_display.as_deref()),
            })
        }
        Metadata::Deleted(_) | Metadata::Other => None,
    }
}

enum Ended {
    Done,
    Cancelled,
}

impl Dropbox {
    /// Whether an item listing of the source runs in this process.
    pub fn item_listing_running(&self, data_source_id: i64) -> bool {
        self.inner
            .listings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&data_source_id)
    }

    /// Starts listing the source's items in the background unless a listing already runs in
    /// this process. Returns whether a new listing was started.
    pub fn start_item_listing(&self, data_source_id: i64) -> bool {
        let run = self
            .inner
            .next_run
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::watch::channel(false);
        {
            let mut l = self
                .inner
                .listings
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if l.contains_key(&data_source_id) {
                return false;
            }
            l.insert(data_source_id, Listing { run, cancel: tx });
        }
        let this = self.clone();
        tokio::spawn(async move {
            let worker = this.clone();
            let inner =
                tokio::spawn(async move { worker.run_item_listing(data_source_id, rx).await });
            let outcome = match inner.await {
                Ok(r) => r,
                Err(e) => Err(DropboxError::Internal(format!("listing task ended: {e}"))),
            };
            match outcome {
                Ok(Ended::Done) => {}
                Ok(Ended::Cancelled) => {
                    tracing::info!(data_source_id, "Dropbox item listing cancelled");
                }
                Err(DropboxError::Revoked) => {
                    tracing::warn!(
                        data_source_id,
                        "Dropbox item listing stopped: access revoked"
                    );
                }
                Err(e) => {
                    tracing::warn!(data_source_id, error = %e, "Dropbox item listing failed");
                    let msg = e.to_string();
                    let r = this
                        .db(move |s| {
                            s.set_data_source_status(
                                data_source_id,
                                data_source_status::SYNC_ERROR,
                                Some(&msg),
                            )
                        })
                        .await;
                    if let Err(e) = r {
                        tracing::error!(data_source_id, error = %e, "cannot record listing failure");
                    }
                }
            }
            let mut l = this
                .inner
                .listings
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if l.get(&data_source_id).is_some_and(|x| x.run == run) {
                l.remove(&data_source_id);
            }
        });
        true
    }

    /// Restarts the listings a stopped process left QUEUED_FOR_SYNCING or SYNCING. Returns how
    /// many were started.
    pub async fn resume_item_listings(&self) -> Result<usize, DropboxError> {
        let ids = self
            .db(|s| {
                s.data_sources_in_status(&[
                    data_source_status::QUEUED_FOR_SYNCING,
                    data_source_status::SYNCING,
                ])
            })
            .await?;
        let mut n = 0;
        for id in ids {
            if self.start_item_listing(id) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Cancels the source's item listing: stops a listing running here, and (through the
    /// status check on every page) one running in another process. Enqueues CANCEL when a
    /// listing was queued or running; otherwise returns the source unchanged.
    pub async fn cancel_item_listing(
        &self,
        data_source_id: i64,
    ) -> Result<DataSource, DropboxError> {
        let local = {
            let l = self
                .inner
                .listings
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match l.get(&data_source_id) {
                Some(x) => {
                    let _ = x.cancel.send(true);
                    true
                }
                None => false,
            }
        };
        let ds = self
            .db(move |s| {
                s.data_source_by_id(data_source_id)?
                    .ok_or(carbide_store::StoreError::NotFound("data source"))
            })
            .await?;
        let active = ds.sync_status == data_source_status::SYNCING
            || ds.sync_status == data_source_status::QUEUED_FOR_SYNCING;
        if local || active {
            return self
                .db(move |s| s.cancel_data_source_listing(data_source_id))
                .await;
        }
        Ok(ds)
    }

    async fn run_item_listing(
        &self,
        data_source_id: i64,
        mut cancel: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Ended, DropboxError> {
        let generation = self
            .db(move |s| s.begin_item_listing(data_source_id))
            .await?;
        let www = self.client().endpoints().www.clone();
        let arg = ListFolderArg {
            path: String::new(),
            recursive: true,
            include_deleted: false,
            limit: None,
            include_non_downloadable_files: true,
        };
        let client = self.client().clone();
        let mut page = {
            let call = self.call(data_source_id, |auth| {
                let client = client.clone();
                let arg = arg.clone();
                async move { client.list_folder(&auth, &arg).await }
            });
            tokio::select! {
                r = call => r?,
                _ = cancel.changed() => return Ok(Ended::Cancelled),
            }
        };
        let mut total = 0usize;
        loop {
            let items: Vec<NewSourceItem> = page
                .entries
                .iter()
                .filter_map(|m| to_item(&www, m))
                .collect();
            total += items.len();
            let still = self
                .db(move |s| s.upsert_source_items(data_source_id, generation, &items))
                .await?;
            if !still || *cancel.borrow() {
                return Ok(Ended::Cancelled);
            }
            if !page.has_more {
                break;
            }
            let cursor = page.cursor.clone();
            let call = self.call(data_source_id, |auth| {
                let client = client.clone();
                let cursor = cursor.clone();
                async move { client.list_folder_continue(&auth, &cursor).await }
            });
            page = tokio::select! {
                r = call => r?,
                _ = cancel.changed() => return Ok(Ended::Cancelled),
            };
        }
        let cursor = page.cursor.clone();
        let done = self
            .db(move |s| s.finish_item_listing(data_source_id, generation, &cursor))
            .await?;
        if done.is_none() {
            return Ok(Ended::Cancelled);
        }
        tracing::info!(
            data_source_id,
            items = total,
            "Dropbox item listing finished"
        );
        Ok(Ended::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parents() {
        assert_eq!(file_format_for("A.PDF"), Some("PDF"));
        assert_eq!(file_format_for("photo.jpeg"), Some("JPG"));
        assert_eq!(file_format_for("archive.zip"), None);
        assert_eq!(file_format_for("README"), None);
        assert_eq!(parent_of("/a/b.txt").as_deref(), Some("/a"));
        assert_eq!(parent_of("/b.txt"), None);
        assert_eq!(
            web_url("https://www.dropbox.com", "home", Some("/My Docs/#1")).as_deref(),
            Some("https://www.dropbox.com/home/My%20Docs/%231")
        );
    }
}
