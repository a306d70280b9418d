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
}

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
}

/// True if `s` is a valid `DataSourceType`.
pub fn is_data_source_type(s: &str) -> bool {
    DATA_SOURCE_TYPES.contains(&s)
}

/// True if `s` is a valid `OauthBasedConnectors` value.
pub fn is_oauth_connector(s: &str) -> bool {
    OAUTH_BASED_CONNECTORS.contains(&s)
}
