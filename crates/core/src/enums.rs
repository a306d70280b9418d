//! Carbon enums the tenancy endpoints validate against (values exactly as on Carbon's wire).

/// Every `DataSourceType` value in Carbon's spec.
pub const DATA_SOURCE_TYPES: &[&str] = &[
    "GOOGLE_CLOUD_STORAGE",
    "GOOGLE_DRIVE",
    "NOTION",
    "NOTION_DATABASE",
    "INTERCOM",
    "DROPBOX",
    "ONEDRIVE",
    "SHAREPOINT",
    "CONFLUENCE",
    "BOX",
    "ZENDESK",
    "ZOTERO",
    "S3",
    "AZURE_BLOB_STORAGE",
    "GMAIL",
    "OUTLOOK",
    "SERVICENOW",
    "TEXT",
    "CSV",
    "TSV",
    "PDF",
    "DOCX",
    "PPTX",
    "XLSX",
    "XLSM",
    "MD",
    "RTF",
    "JSON",
    "HTML",
    "RAW_TEXT",
    "WEB_SCRAPE",
    "RSS_FEED",
    "FRESHDESK",
    "GITBOOK",
    "SALESFORCE",
    "GITHUB",
    "SLACK",
    "GURU",
    "GONG",
    "DOCUMENT360",
    "JPG",
    "PNG",
    "JPEG",
    "MP3",
    "MP2",
    "AAC",
    "WAV",
    "FLAC",
    "PCM",
    "M4A",
    "OGG",
    "OPUS",
    "MPEG",
    "MPG",
    "MP4",
    "WMV",
    "AVI",
    "MOV",
    "MKV",
    "FLV",
    "WEBM",
    "EML",
    "MSG",
];

/// `OauthBasedConnectors`: services that can be white-labelled or connected through OAuth.
pub const OAUTH_BASED_CONNECTORS: &[&str] = &[
    "BOX",
    "CONFLUENCE",
    "DROPBOX",
    "GMAIL",
    "GOOGLE_DRIVE",
    "GOOGLE_CLOUD_STORAGE",
    "INTERCOM",
    "NOTION",
    "ONEDRIVE",
    "OUTLOOK",
    "SALESFORCE",
    "SHAREPOINT",
    "SLACK",
    "ZENDESK",
    "ZOTERO",
    "GONG",
    "SERVICENOW",
];

/// Allowed `auto_sync_interval` values in hours (`-1` means "use the default").
pub const AUTO_SYNC_INTERVALS: &[i64] = &[3, 6, 12, 24];

/// Webhook event types carbide emits (a subset of Carbon's `webhook_type` enum).
pub mod webhook_types {
    /// A customer was deleted through `/delete_users`.
    pub const ORGANIZATION_USER_DELETED: &str = "ORGANIZATION_USER_DELETED";
    /// `/organization/statistics` finished recomputing.
    pub const FILE_STATISTICS_AGGREGATED: &str = "FILE_STATISTICS_AGGREGATED";
    /// Files were created and queued for their first sync (object: FILE_LIST).
    pub const FILES_CREATED: &str = "FILES_CREATED";
    /// A file moved to SYNCING.
    pub const FILE_SYNCING: &str = "FILE_SYNCING";
    /// A file finished processing.
    pub const FILE_READY: &str = "FILE_READY";
    /// A file failed processing.
    pub const FILE_ERROR: &str = "FILE_ERROR";
    /// A file was deleted (when the caller asked for `send_webhook`).
    pub const FILE_DELETED: &str = "FILE_DELETED";
    /// Every file of one upload request reached a terminal status.
    pub const ALL_FILES_PROCESSED: &str = "ALL_FILES_PROCESSED";
    /// A data source was connected (or reconnected).
    pub const ADD: &str = "ADD";
    /// The user confirmed a file selection of a data source.
    pub const UPDATE: &str = "UPDATE";
    /// The user left the connect flow (denied access) or an item listing was cancelled.
    pub const CANCEL: &str = "CANCEL";
    /// A data source lost its access (revoked by the user, the organization or Dropbox).
    pub const REVOKE: &str = "REVOKE";
    /// The item listing of a data source finished.
    pub const DATA_SOURCE_READY: &str = "DATA_SOURCE_READY";
}

/// File sync statuses (`ExternalFileSyncStatuses`).
pub mod file_status {
    /// Deferred.
    pub const DELAYED: &str = "DELAYED";
    /// Waiting for a worker.
    pub const QUEUED_FOR_SYNC: &str = "QUEUED_FOR_SYNC";
    /// Being processed.
    pub const SYNCING: &str = "SYNCING";
    /// Processed.
    pub const READY: &str = "READY";
    /// Failed; `sync_error_message` says why.
    pub const SYNC_ERROR: &str = "SYNC_ERROR";
    /// Resync deciding whether content changed.
    pub const EVALUATING_RESYNC: &str = "EVALUATING_RESYNC";
    /// Rate limited, requeued.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// Cancelled.
    pub const SYNC_ABORTED: &str = "SYNC_ABORTED";
    /// Waiting for OCR.
    pub const QUEUED_FOR_OCR: &str = "QUEUED_FOR_OCR";
    /// Record only (`skip_file_processing`).
    pub const READY_TO_SYNC: &str = "READY_TO_SYNC";
    /// Every status, in the spec's order.
    pub const ALL: &[&str] = &[
        DELAYED,
        QUEUED_FOR_SYNC,
        SYNCING,
        READY,
        SYNC_ERROR,
        EVALUATING_RESYNC,
        RATE_LIMITED,
        SYNC_ABORTED,
        QUEUED_FOR_OCR,
        READY_TO_SYNC,
    ];
    /// Statuses after which nothing more happens without a new request.
    pub const TERMINAL: &[&str] = &[READY, SYNC_ERROR, SYNC_ABORTED, READY_TO_SYNC];
}

/// Data source sync statuses (`DataSourceSyncStatuses`; note the `-ING` spelling).
pub mod data_source_status {
    /// Connected; the item listing is queued.
    pub const QUEUED_FOR_SYNCING: &str = "QUEUED_FOR_SYNCING";
    /// The item listing is running.
    pub const SYNCING: &str = "SYNCING";
    /// Idle and usable.
    pub const READY: &str = "READY";
    /// The last listing failed or access was lost.
    pub const SYNC_ERROR: &str = "SYNC_ERROR";
    /// Every status, in the spec's order.
    pub const ALL: &[&str] = &[QUEUED_FOR_SYNCING, SYNCING, READY, SYNC_ERROR];
}

/// `DataSourceLastSyncActions`.
pub mod data_source_action {
    /// Connected or reconnected.
    pub const ADD: &str = "ADD";
    /// Selection changed.
    pub const UPDATE: &str = "UPDATE";
    /// A listing was cancelled or the connect flow abandoned.
    pub const CANCEL: &str = "CANCEL";
    /// Access revoked.
    pub const REVOKE: &str = "REVOKE";
}

/// Carbon's `EmbeddingGenerators` enum (default `OPENAI`).
pub const EMBEDDING_GENERATORS: &[&str] = &[
    "OPENAI",
    "AZURE_OPENAI",
    "AZURE_ADA_LARGE_256",
    "AZURE_ADA_LARGE_1024",
    "AZURE_ADA_LARGE_3072",
    "AZURE_ADA_SMALL_512",
    "AZURE_ADA_SMALL_1536",
    "COHERE_MULTILINGUAL_V3",
    "VERTEX_MULTIMODAL",
    "OPENAI_ADA_LARGE_256",
    "OPENAI_ADA_LARGE_1024",
    "OPENAI_ADA_LARGE_3072",
    "OPENAI_ADA_SMALL_512",
    "OPENAI_ADA_SMALL_1536",
    "SOLAR_1_MINI",
];

/// Webhook object types (Carbon's `object_type` enum).
pub mod object_types {
    /// An organization user (customer).
    pub const ORGANIZATION_USER: &str = "ORGANIZATION_USER";
    /// No particular object.
    pub const NONE: &str = "NONE";
    /// A file.
    pub const FILE: &str = "FILE";
    /// A list of files.
    pub const FILE_LIST: &str = "FILE_LIST";
    /// A data source.
    pub const DATA_SOURCE: &str = "DATA_SOURCE";
    /// An upload request (`request_id`).
    pub const UPLOAD_REQUEST_ID: &str = "UPLOAD_REQUEST_ID";
}

/// True if `s` is a valid `DataSourceType`.
pub fn is_data_source_type(s: &str) -> bool {
    DATA_SOURCE_TYPES.contains(&s)
}

/// True if `s` is a valid `OauthBasedConnectors` value.
pub fn is_oauth_connector(s: &str) -> bool {
    OAUTH_BASED_CONNECTORS.contains(&s)
}
