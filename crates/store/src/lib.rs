//! carbide-store: persistence in SQLite (WAL, foreign keys, embedded migrations).
//!
//! [`Store`] is a cheap-to-clone handle over one writer connection and a small pool of
//! reader connections. All methods are synchronous; async callers wrap them in
//! `spawn_blocking`. Every query touching customer data filters by organization id and
//! customer id.

/// File statuses that are not settled yet, as an SQL list (the complement of
/// `file_status::TERMINAL`, checked by a test), so "is anything still open" is an index probe.
/// A macro so that `const` SQL can `concat!` it.
macro_rules! open_statuses_sql {
    () => {
        "('DELAYED', 'QUEUED_FOR_SYNC', 'SYNCING', 'EVALUATING_RESYNC', 'RATE_LIMITED', 'QUEUED_FOR_OCR')"
    };
}
pub(crate) use open_statuses_sql;

mod blobs;
mod data_sources;
mod db;
mod derived_cache;
mod dropbox_sync;
mod error;
mod files;
mod jobs;
mod keyword_index;
mod orgs;
mod outbox;
mod search;
mod source_items;
mod users;
mod vector_cache;
mod webhooks;
mod white_label;

pub use blobs::sha256_hex;
pub use data_sources::{
    ConsumedState, DataSource, DataSourceOrder, DataSourceQuery, DropboxConnection,
    DropboxCredentials, NewOAuthState, OAuthState,
};
pub use error::StoreError;
pub use files::{
    ChunkOrder, ChunkRecord, FileFilter, FileOrder, FileQuery, FileRecord, MAX_TAG_FILTER_DEPTH,
    NewChunk, NewFile, ProcessedFile, TagFilter, TagValue, blob_to_vector, vector_to_blob,
};
pub use jobs::{JOB_PROCESS_FILE, Job, NewJob};
pub use orgs::{Organization, OrganizationStatistics};
pub use outbox::{OutboxDelivery, OutboxRow};
pub use search::{
    ChunkResult, ChunkUpload, KeywordEngine, KeywordHit, MediaType, SearchFilter, TagExpr,
    fts_match_query,
};
pub use source_items::{ItemOrder, ItemParent, ItemQuery, NewSourceItem, SourceItem};
pub use users::{AccessTokens, Customer, CustomerConfigUpdate, CustomerOrder, ListCustomers};
pub use vector_cache::{FileSet, VectorHit, VectorPrecision, VectorScan};
pub use webhooks::{Webhook, WebhookOrder};
pub use white_label::{WhiteLabel, WhiteLabelInput, WhiteLabelOrder};

pub use db::Store;
pub use dropbox_sync::{
    ApplyReport, DropboxFileRef, JOB_DROPBOX_DOWNLOAD, JOB_DROPBOX_POLL, JOB_DROPBOX_RECONCILE,
    RATE_LIMIT_ERROR, RemoteEntry, RemoteFile, Selection, SyncSettings,
};

/// Offset/limit/keyset paging as Carbon's `Pagination` object (defaults already applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Maximum rows (clamped to 0..=1000).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
    /// Only rows with `id > starting_id` (0 = off).
    pub starting_id: i64,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 10,
            offset: 0,
            starting_id: 0,
        }
    }
}

impl Page {
    pub(crate) fn limit(&self) -> i64 {
        self.limit.clamp(0, 1000)
    }
    pub(crate) fn offset(&self) -> i64 {
        self.offset.max(0)
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl Dir {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Dir::Asc => "ASC",
            Dir::Desc => "DESC",
        }
    }
}

pub(crate) fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}
