//! Change tracking without a public URL, and the auto-sync schedule.
//!
//! The tracker keeps one task per tracked data source (not revoked, with a cursor and at
//! least one selection) that blocks in `list_folder/longpoll` on the stored cursor; when
//! Dropbox reports changes it queues a coalesced `dropbox_poll` job, wakes the worker, and
//! waits for the cursor to move before polling again. Longpoll needs no authentication and no
//! inbound connection, so it works behind NAT. Dropbox webhooks (when configured) queue the
//! same job.
//!
//! The scheduler periodically moves due `next_sync_at` values one interval ahead and queues
//! a full reconciliation for each, in one transaction per run (see
//! `Store::schedule_due_dropbox_syncs`), so several processes never schedule the same run.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;

use super::{AbortOnDrop, DropboxSync};

pub(crate) async fn run_tracker(sync: DropboxSync, mut shutdown: watch::Receiver<bool>) {
    let mut tasks: HashMap<i64, AbortOnDrop> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        match sync.dropbox().db(|s| s.tracked_dropbox_sources()).await {
            Ok(list) => {
                let want: std::collections::HashSet<i64> = list.iter().map(|(d, _)| *d).collect();
                tasks.retain(|ds, h| want.contains(ds) && !h.0.is_finished());
                for (ds, _) in list {
                    tasks
                        .entry(ds)
                        .or_insert_with(|| AbortOnDrop(tokio::spawn(track_one(sync.clone(), ds))));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list tracked Dropbox sources"),
        }
        tokio::select! {
            _ = tokio::time::sleep(sync.config().tracker_refresh) => {}
            r = shutdown.changed() => { if r.is_err() { break; } }
        }
    }
    drop(tasks);
}

async fn current_cursor(sync: &DropboxSync, ds: i64) -> Option<String> {
    sync.dropbox()
        .db(move |s| s.dropbox_cursor(ds))
        .await
        .ok()
        .flatten()
}

/// Queues a poll and waits (bounded) until the stored cursor is no longer `cursor`.
async fn poll_and_wait(sync: &DropboxSync, ds: i64, cursor: &str) {
    if let Err(e) = sync.dropbox().db(move |s| s.enqueue_dropbox_poll(ds)).await {
        tracing::warn!(data_source_id = ds, error = %e, "cannot queue Dropbox poll");
        tokio::time::sleep(Duration::from_secs(2)).await;
        return;
    }
    sync.wake();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if current_cursor(sync, ds).await.as_deref() != Some(cursor) {
            return;
        }
    }
}

async fn track_one(sync: DropboxSync, ds: i64) {
    let timeout = sync.config().longpoll_timeout.clamp(30, 480);
    loop {
        let Some(cursor) = current_cursor(&sync, ds).await else {
            return;
        };
        match sync.dropbox().client().longpoll(&cursor, timeout).await {
            Ok(r) => {
                if r.changes {
                    poll_and_wait(&sync, ds, &cursor).await;
                }
                if let Some(b) = r.backoff {
                    tokio::time::sleep(Duration::from_secs(b)).await;
                }
            }
            Err(e) if e.is_reset() => poll_and_wait(&sync, ds, &cursor).await,
            Err(e) => {
                tracing::debug!(data_source_id = ds, error = %e, "Dropbox longpoll failed");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

pub(crate) async fn run_scheduler(sync: DropboxSync, mut shutdown: watch::Receiver<bool>) {
    let hours = sync.config().default_auto_sync_hours;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match sync
            .dropbox()
            .db(move |s| s.schedule_due_dropbox_syncs(hours))
            .await
        {
            Ok(q) if !q.is_empty() => {
                tracing::info!(sources = ?q, "scheduled Dropbox syncs queued");
                sync.wake();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Dropbox scheduler failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(sync.config().scheduler_interval) => {}
            r = shutdown.changed() => { if r.is_err() { break; } }
        }
    }
}
