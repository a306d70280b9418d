//! Dropbox integration endpoints: the connect flow (`/integrations/oauth_url` and the redirect
//! target `GET /integrations/dropbox`), data sources (`/user_data_sources`, `/data_sources`,
//! `/revoke_access_token`, `/data_sources/tags/add|remove`) and item enumeration
//! (`/integrations/items/sync`, `/integrations/items/sync/cancel`, `/integrations/items/list`).
//! The work happens in `carbide_sync::dropbox`; these handlers validate, apply Carbon's
//! defaults and shape the answers.
//!
//! The callback answers with a small HTML page (for the browser and the Connect page's popup:
//! a `<script type="application/json" id="oauth-result">` block with `status`
//! `connected|denied|error`, `data_source_id` and `message`), or with JSON when the query has
//! `format=json` or the request prefers `application/json`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carbide_core::enums::{EMBEDDING_GENERATORS, data_source_status, is_data_source_type};
use carbide_core::timefmt::rfc3339;
use carbide_store::{
    DataSource, DataSourceOrder, DataSourceQuery, Dir, ItemOrder, ItemParent, ItemQuery,
    SourceItem, TagFilter,
};
use carbide_sync::dropbox::{
    CallbackOutcome, ConnectRequest, Dropbox, DropboxError, MAX_FILE_BYTES,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{CustomerAuth, OrgAuth};
use crate::error::{ApiError, ErrorDetail, HttpValidationError};
use crate::extract::JsonBody;
use crate::models::{GenericSuccessResponse, OrderDir, Pagination};

/// `StorageFileFormats` (the item filter's `file_formats`).
const STORAGE_FILE_FORMATS: &[&str] = &[
    "TXT", "CSV", "TSV", "PDF", "DOCX", "PPTX", "XLSX", "XLSM", "MD", "RTF", "JSON", "HTML", "JPG",
    "PNG", "MP3", "MP2", "AAC", "WAV", "FLAC", "PCM", "M4A", "OGG", "OPUS", "MPEG", "MPG", "MP4",
    "WMV", "AVI", "MOV", "MKV", "FLV", "WEBM", "EML", "MSG",
];

/// Defaults of `FileSyncConfig`, merged under a caller's partial object.
pub(crate) fn file_sync_config_defaults() -> Map<String, Value> {
    let v = json!({
        "auto_synced_source_types": ["ARTICLE"],
        "sync_attachments": false,
        "detect_audio_language": false,
        "transcription_service": null,
        "include_speaker_labels": false,
        "split_rows": false,
        "generate_chunks_only": false,
        "store_file_only": false,
        "skip_file_processing": false,
        "parsed_text_format": null,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn dropbox(state: &AppState) -> Result<&Dropbox, ApiError> {
    state
        .dropbox()
        .ok_or_else(|| ApiError::bad_request("Dropbox is not configured on this server"))
}

pub(crate) fn dropbox_error(e: DropboxError) -> ApiError {
    match e {
        DropboxError::NotConfigured(m)
        | DropboxError::InvalidState(m)
        | DropboxError::AuthorizationFailed(m) => ApiError::bad_request(m),
        DropboxError::Revoked | DropboxError::NoCredentials => ApiError::bad_request(e.to_string()),
        DropboxError::RefreshContention => {
            ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        DropboxError::Api(inner) => ApiError::Status(
            StatusCode::BAD_GATEWAY,
            format!("Dropbox request failed: {inner}"),
        ),
        DropboxError::Store(s) => ApiError::from(s),
        DropboxError::Internal(m) => ApiError::Internal(m),
    }
}

// ---- models ----------------------------------------------------------------------------------

/// `OAuthURLRequest` (every field but `service` optional; spec defaults applied server-side).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct OAuthUrlRequest {
    /// `OauthBasedConnectors`; only `DROPBOX` is served.
    service: String,
    #[serde(flatten)]
    options: ConnectOptions,
}

/// The connection options shared by `OAuthURLRequest` and `/integrations/connect`'s
/// `SyncOptions` (the OAuth-only fields are ignored there).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ConnectOptions {
    #[schema(value_type = Option<Object>)]
    tags: Option<Value>,
    scope: Option<String>,
    scopes: Option<Vec<String>>,
    #[schema(default = 1500)]
    chunk_size: Option<i64>,
    #[schema(default = 20)]
    chunk_overlap: Option<i64>,
    skip_embedding_generation: Option<bool>,
    embedding_model: Option<String>,
    zendesk_subdomain: Option<String>,
    microsoft_tenant: Option<String>,
    sharepoint_site_name: Option<String>,
    confluence_subdomain: Option<String>,
    generate_sparse_vectors: Option<bool>,
    prepend_filename_to_chunks: Option<bool>,
    max_items_per_chunk: Option<i64>,
    salesforce_domain: Option<String>,
    sync_files_on_connection: Option<bool>,
    set_page_as_boundary: Option<bool>,
    data_source_id: Option<i64>,
    connecting_new_account: Option<bool>,
    request_id: Option<String>,
    use_ocr: Option<bool>,
    parse_pdf_tables_with_ocr: Option<bool>,
    enable_file_picker: Option<bool>,
    sync_source_items: Option<bool>,
    incremental_sync: Option<bool>,
    #[schema(value_type = Option<Object>)]
    file_sync_config: Option<Value>,
    automatically_open_file_picker: Option<bool>,
    gong_account_email: Option<String>,
    #[schema(value_type = Option<Object>)]
    servicenow_credentials: Option<Value>,
    #[schema(value_type = Option<Object>)]
    data_source_tags: Option<Map<String, Value>>,
}

/// `OAuthAuthentication` (the Dropbox form of `/integrations/connect`'s `authentication`).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ConnectAuthentication {
    /// `SimpleOAuthDataSources`; only `DROPBOX` is served.
    source: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
}

/// `ConnectDataSourceInput`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ConnectDataSourceInput {
    authentication: ConnectAuthentication,
    sync_options: Option<ConnectOptions>,
}

/// `ConnectDataSourceResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectDataSourceResponse {
    data_source: DataSourceResponse,
    /// Carbon's file-picker link; carbide's picker is the Connect page, so always `null`.
    sync_url: Option<String>,
}

/// `OuthURLResponse` (sic).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OAuthUrlResponse {
    oauth_url: String,
}

/// `OrganizationUserDataSourceAPI` (all 18 keys always present).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DataSourceResponse {
    #[schema(value_type = Object)]
    tags: Map<String, Value>,
    id: i64,
    data_source_external_id: Option<String>,
    data_source_type: String,
    /// Never contains secrets: always `null`.
    #[schema(value_type = Option<Object>)]
    token: Option<Value>,
    sync_status: String,
    source_items_synced_at: Option<String>,
    organization_user_id: i64,
    organization_id: i64,
    organization_supplied_user_id: String,
    revoked_access: bool,
    last_synced_at: String,
    last_sync_action: String,
    enable_auto_sync: Option<bool>,
    created_at: String,
    updated_at: String,
    files_synced_at: Option<String>,
    #[schema(value_type = Object)]
    data_source_metadata: Map<String, Value>,
}

impl From<DataSource> for DataSourceResponse {
    fn from(d: DataSource) -> Self {
        let status = d.reported_sync_status().to_string();
        let mut meta = d.data_source_metadata;
        meta.insert("sync_error_message".into(), json!(d.sync_error_message));
        DataSourceResponse {
            tags: d.tags,
            id: d.id,
            data_source_external_id: Some(d.data_source_external_id),
            data_source_type: d.data_source_type,
            token: None,
            sync_status: status,
            source_items_synced_at: d.source_items_synced_at.map(rfc3339),
            organization_user_id: d.organization_user_id,
            organization_id: d.organization_id,
            organization_supplied_user_id: d.organization_supplied_user_id,
            revoked_access: d.revoked_access,
            last_synced_at: rfc3339(d.last_synced_at),
            last_sync_action: d.last_sync_action,
            enable_auto_sync: Some(d.enable_auto_sync),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
            files_synced_at: d.files_synced_at.map(rfc3339),
            data_source_metadata: meta,
        }
    }
}

/// `OrganizationUserDataSourceFilters`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct DataSourceFilters {
    /// tags_v2 grammar (`{"AND": [...]}` / `{"OR": [...]}`).
    #[schema(value_type = Option<Object>)]
    tags: Option<Value>,
    source: Option<String>,
    ids: Option<Vec<i64>>,
    revoked_access: Option<bool>,
}

/// `created_at | updated_at`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DataSourceOrderBy {
    CreatedAt,
    UpdatedAt,
}

/// `OrganizationUserDataSourceQueryInput`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct DataSourceQueryInput {
    pagination: Option<Pagination>,
    order_by: Option<DataSourceOrderBy>,
    order_dir: Option<OrderDir>,
    filters: Option<DataSourceFilters>,
}

/// `OrganizationUserDataSourceResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DataSourceList {
    results: Vec<DataSourceResponse>,
    count: i64,
}

/// `SyncDirectoryRequest` / `RevokeAccessTokenInput`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct DataSourceIdInput {
    data_source_id: i64,
}

/// `AddDataSourceTagsInput`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct AddTagsInput {
    data_source_id: i64,
    #[schema(value_type = Object)]
    tags: Map<String, Value>,
}

/// `RemoveDataSourceTagsInput`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RemoveTagsInput {
    data_source_id: i64,
    tags_to_remove: Option<Vec<String>>,
    remove_all_tags: Option<bool>,
}

/// `ListItemsFilters`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ItemFilters {
    external_ids: Option<Vec<String>>,
    ids: Option<Vec<i64>>,
    /// Case-insensitive substring of the name.
    name: Option<String>,
    /// Only top-level items.
    root_files_only: Option<bool>,
    file_formats: Option<Vec<String>>,
    item_types: Option<Vec<String>>,
}

/// `name | id | directories_first`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ItemOrderBy {
    Name,
    Id,
    DirectoriesFirst,
}

/// `ListDataSourceItemsRequest`. `parent_id` = a folder's external id; `null` lists the top
/// level, except that `external_ids`, `ids` or `name` filters without a `parent_id` search the
/// whole tree (`root_files_only` keeps them to the top level).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ListItemsRequest {
    data_source_id: i64,
    parent_id: Option<String>,
    filters: Option<ItemFilters>,
    pagination: Option<Pagination>,
    order_by: Option<ItemOrderBy>,
    order_dir: Option<OrderDir>,
}

/// `ExternalSourceItem` (all 19 keys) plus `size`, `path_display` and `unselectable_reason`
/// for pickers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExternalSourceItem {
    id: i64,
    external_id: String,
    source: String,
    name: String,
    synced_at: String,
    is_selectable: Option<bool>,
    is_expandable: Option<bool>,
    organization_id: i64,
    organization_supplied_user_id: String,
    organization_user_id: i64,
    organization_user_data_source_id: i64,
    organization_user_file_to_sync_id: Option<i64>,
    parent_external_id: Option<String>,
    item_type: Option<String>,
    root_external_id: Option<String>,
    external_url: Option<String>,
    file_format: Option<String>,
    created_at: String,
    updated_at: String,
    /// Bytes (files only).
    size: Option<i64>,
    /// Path in the account (relative to the team root for team accounts).
    path_display: Option<String>,
    /// Why a file cannot be selected (`null` when it can).
    unselectable_reason: Option<String>,
}

impl From<SourceItem> for ExternalSourceItem {
    fn from(i: SourceItem) -> Self {
        let folder = i.item_type == "FOLDER";
        let reason = if folder || i.is_selectable {
            None
        } else if !i.is_downloadable {
            Some(
                "This file cannot be downloaded from Dropbox (e.g. a Paper or cloud document)"
                    .into(),
            )
        } else if i.size.is_some_and(|s| s as u64 > MAX_FILE_BYTES) {
            Some(format!(
                "Over the {} MB limit",
                MAX_FILE_BYTES / (1024 * 1024)
            ))
        } else {
            Some("File type not supported".into())
        };
        ExternalSourceItem {
            id: i.id,
            external_id: i.external_id,
            source: i.data_source_type,
            name: i.name,
            synced_at: rfc3339(i.synced_at),
            is_selectable: Some(i.is_selectable),
            is_expandable: Some(folder),
            organization_id: i.organization_id,
            organization_supplied_user_id: i.organization_supplied_user_id,
            organization_user_id: i.organization_user_id,
            organization_user_data_source_id: i.data_source_id,
            organization_user_file_to_sync_id: i.organization_user_file_to_sync_id,
            parent_external_id: i.parent_external_id,
            item_type: Some(i.item_type),
            root_external_id: None,
            external_url: i.external_url,
            file_format: i.file_format,
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
            size: i.size,
            path_display: i.path_display,
            unselectable_reason: reason,
        }
    }
}

/// `ListDataSourceItemsResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListItemsResponse {
    items: Vec<ExternalSourceItem>,
    count: i64,
}

// ---- connect ---------------------------------------------------------------------------------

fn opt<T: Serialize>(v: Option<T>, default: Value) -> Value {
    v.map(|x| json!(x)).unwrap_or(default)
}

/// Validated connection options: every option with Carbon's defaults applied (stored with the
/// OAuth state or on the data source), the requested scopes and `connecting_new_account`.
type Validated = (Map<String, Value>, Vec<String>, bool);

/// Validates connection options and applies Carbon's defaults. `prefix` is where the options
/// sit in the request body (for error locations).
fn connect_options(o: ConnectOptions, prefix: &[&str]) -> Result<Validated, ApiError> {
    let path = |field: &'static str| -> Vec<&str> {
        let mut p = prefix.to_vec();
        p.push(field);
        p
    };
    if let Some(m) = &o.embedding_model
        && !EMBEDDING_GENERATORS.contains(&m.as_str())
    {
        return Err(ApiError::body_field(
            &path("embedding_model"),
            "value is not a valid enumeration member",
            "type_error.enum",
        ));
    }
    if o.max_items_per_chunk.is_some_and(|n| n <= 0) {
        return Err(ApiError::body_field(
            &path("max_items_per_chunk"),
            "ensure this value is greater than 0",
            "value_error.number.not_gt",
        ));
    }
    for (name, v) in [
        ("chunk_size", o.chunk_size),
        ("chunk_overlap", o.chunk_overlap),
    ] {
        if v.is_some_and(|n| n < 0) {
            return Err(ApiError::body_field(
                &path(name),
                "ensure this value is not negative",
                "value_error.number.not_ge",
            ));
        }
    }
    let file_sync_config = match o.file_sync_config {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Object(m)) => {
            let mut d = file_sync_config_defaults();
            for (k, v) in m {
                d.insert(k, v);
            }
            Value::Object(d)
        }
        Some(_) => {
            return Err(ApiError::body_field(
                &path("file_sync_config"),
                "file_sync_config must be an object or null",
                "type_error.dict",
            ));
        }
    };
    let scopes: Vec<String> = match (&o.scopes, &o.scope) {
        (Some(list), _) if !list.is_empty() => list.clone(),
        (_, Some(one)) if !one.trim().is_empty() => {
            one.split_whitespace().map(str::to_string).collect()
        }
        _ => Vec::new(),
    };
    let connecting_new_account = o.connecting_new_account.unwrap_or(false);
    let mut options = Map::new();
    let mut put = |k: &str, v: Value| {
        options.insert(k.to_string(), v);
    };
    put("tags", o.tags.unwrap_or(Value::Null));
    put("chunk_size", opt(o.chunk_size, json!(1500)));
    put("chunk_overlap", opt(o.chunk_overlap, json!(20)));
    put(
        "skip_embedding_generation",
        opt(o.skip_embedding_generation, json!(false)),
    );
    put("embedding_model", opt(o.embedding_model, json!("OPENAI")));
    put(
        "generate_sparse_vectors",
        opt(o.generate_sparse_vectors, json!(false)),
    );
    put(
        "prepend_filename_to_chunks",
        opt(o.prepend_filename_to_chunks, json!(false)),
    );
    put(
        "max_items_per_chunk",
        opt(o.max_items_per_chunk, Value::Null),
    );
    put(
        "sync_files_on_connection",
        opt(o.sync_files_on_connection, json!(true)),
    );
    put(
        "set_page_as_boundary",
        opt(o.set_page_as_boundary, json!(false)),
    );
    put("data_source_id", opt(o.data_source_id, Value::Null));
    put("connecting_new_account", json!(connecting_new_account));
    put("request_id", opt(o.request_id, Value::Null));
    put("use_ocr", opt(o.use_ocr, json!(false)));
    put(
        "parse_pdf_tables_with_ocr",
        opt(o.parse_pdf_tables_with_ocr, json!(false)),
    );
    put("enable_file_picker", opt(o.enable_file_picker, json!(true)));
    put("sync_source_items", opt(o.sync_source_items, json!(true)));
    put("incremental_sync", opt(o.incremental_sync, json!(false)));
    put("file_sync_config", file_sync_config);
    put(
        "automatically_open_file_picker",
        opt(o.automatically_open_file_picker, Value::Null),
    );
    put(
        "data_source_tags",
        Value::Object(o.data_source_tags.unwrap_or_default()),
    );
    // connector-specific fields of other services are accepted and ignored
    let _ = (
        o.zendesk_subdomain,
        o.microsoft_tenant,
        o.sharepoint_site_name,
        o.confluence_subdomain,
        o.salesforce_domain,
        o.gong_account_email,
        o.servicenow_credentials,
    );
    Ok((options, scopes, connecting_new_account))
}

/// Generates the Dropbox authorization URL for the customer (PKCE, offline access, single-use
/// state valid 30 minutes that carries the request's options).
#[utoipa::path(post, path = "/integrations/oauth_url", tag = "Integrations",
    request_body = OAuthUrlRequest,
    responses((status = 200, body = OAuthUrlResponse), (status = 400, body = ErrorDetail),
        (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn oauth_url(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<OAuthUrlRequest>,
) -> Result<axum::Json<OAuthUrlResponse>, ApiError> {
    if !carbide_core::enums::is_oauth_connector(&req.service) {
        return Err(ApiError::body_field(
            &["service"],
            format!(
                "value is not a valid enumeration member; permitted: {}",
                carbide_core::enums::OAUTH_BASED_CONNECTORS.join(", ")
            ),
            "type_error.enum",
        ));
    }
    if req.service != "DROPBOX" {
        return Err(ApiError::bad_request(format!(
            "{} is not supported by this server; only DROPBOX can be connected",
            req.service
        )));
    }
    let OAuthUrlRequest { options: o, .. } = req;
    let data_source_id = o.data_source_id;
    let (options, scopes, connecting_new_account) = connect_options(o, &[])?;
    let dbx = dropbox(&state)?.clone();
    let org = auth.org_id;
    let cust = auth.customer.id;
    if let Some(id) = data_source_id {
        let ds = state
            .db(move |s| s.get_data_source(org, Some(cust), id))
            .await?;
        if ds.data_source_type != "DROPBOX" {
            return Err(ApiError::bad_request(format!(
                "data source {id} is not a Dropbox data source"
            )));
        }
    }
    let url = dbx
        .start_connect(ConnectRequest {
            organization_id: org,
            organization_user_id: cust,
            scopes,
            force_reapprove: connecting_new_account,
            options,
        })
        .await
        .map_err(dropbox_error)?;
    Ok(axum::Json(OAuthUrlResponse { oauth_url: url }))
}

/// Connects a Dropbox account with tokens the organization obtained itself (Carbon's
/// `connect_data_source`): the access token is checked by reading the account, the tokens are
/// stored encrypted under the organization's Dropbox app (white label, else server-wide; needed
/// to use a refresh token later), and the customer's data source is created or reconnected
/// (ADD webhook, item listing unless `sync_source_items` is false).
#[utoipa::path(post, path = "/integrations/connect", tag = "Integrations",
    request_body = ConnectDataSourceInput,
    responses((status = 200, body = ConnectDataSourceResponse), (status = 400, body = ErrorDetail),
        (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn connect_data_source(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<ConnectDataSourceInput>,
) -> Result<axum::Json<ConnectDataSourceResponse>, ApiError> {
    let a = req.authentication;
    let Some(source) = a.source else {
        return Err(ApiError::body_field(
            &["authentication", "source"],
            "field required",
            "value_error.missing",
        ));
    };
    if source != "DROPBOX" {
        return Err(ApiError::bad_request(format!(
            "{source} is not supported by this server; only DROPBOX can be connected"
        )));
    }
    let Some(access_token) = a.access_token.filter(|t| !t.trim().is_empty()) else {
        return Err(ApiError::body_field(
            &["authentication", "access_token"],
            "field required",
            "value_error.missing",
        ));
    };
    let (options, _, _) = connect_options(req.sync_options.unwrap_or_default(), &["sync_options"])?;
    let dbx = dropbox(&state)?.clone();
    let (ds, _created) = dbx
        .connect_external(
            auth.org_id,
            auth.customer.id,
            access_token,
            a.refresh_token.filter(|t| !t.trim().is_empty()),
            &options,
        )
        .await
        .map_err(|e| match e {
            DropboxError::Api(carbide_dropbox::Error::Auth { tag, .. }) => ApiError::bad_request(
                format!("Dropbox rejected the access token ({tag}); obtain a new one"),
            ),
            other => dropbox_error(other),
        })?;
    Ok(axum::Json(ConnectDataSourceResponse {
        data_source: ds.into(),
        sync_url: None,
    }))
}

fn wants_json(q: &HashMap<String, String>, headers: &HeaderMap) -> bool {
    if q.get("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"))
    {
        return true;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON made safe inside a `<script type="application/json">` block.
fn json_in_html(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

const RESULT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; base-uri 'none'; form-action 'none'";

fn result_page(status: StatusCode, title: &str, message: &str, result: &Value) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<link rel=\"stylesheet\" href=\"/connect/assets/connect.css\">\n</head>\n\
         <body>\n<main class=\"oauth-result\">\n<h1>{t}</h1>\n<p id=\"message\">{m}</p>\n\
         <p><a id=\"back\" href=\"/connect\" hidden>Back to Connect</a></p>\n</main>\n\
         <script type=\"application/json\" id=\"oauth-result\">{j}</script>\n\
         <script src=\"/connect/assets/oauth-done.js\"></script>\n</body>\n</html>\n",
        t = escape_html(title),
        m = escape_html(message),
        j = json_in_html(result),
    );
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(RESULT_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// Dropbox's redirect target: `?code&state` after "Allow", `?error=access_denied&state` after
/// "Deny". Answers an HTML page, or JSON with `?format=json` (or `Accept: application/json`).
#[utoipa::path(get, path = "/integrations/dropbox", tag = "Integrations",
    params(("code" = Option<String>, Query, description = "authorization code"),
        ("state" = Option<String>, Query, description = "state from the authorize URL"),
        ("error" = Option<String>, Query, description = "e.g. access_denied"),
        ("format" = Option<String>, Query, description = "`json` for a JSON answer")),
    responses((status = 200, description = "connected or denied (HTML or JSON)"),
        (status = 400, body = ErrorDetail, description = "bad, expired or reused state; refused code"),
        (status = 502, body = ErrorDetail, description = "Dropbox unreachable")))]
pub(crate) async fn dropbox_callback(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let json_out = wants_json(&q, &headers);
    let Some(dbx) = state.dropbox().cloned() else {
        let msg = "Dropbox is not configured on this server";
        return if json_out {
            ApiError::bad_request(msg).into_response()
        } else {
            result_page(
                StatusCode::BAD_REQUEST,
                "Dropbox could not be connected",
                msg,
                &json!({"status": "error", "message": msg}),
            )
        };
    };
    let outcome = dbx
        .finish_connect(
            q.get("state").map(String::as_str),
            q.get("code").map(String::as_str),
            q.get("error").map(String::as_str),
            q.get("error_description").map(String::as_str),
        )
        .await;
    match outcome {
        Ok(CallbackOutcome::Connected {
            data_source,
            created,
            email,
            display_name,
        }) => {
            let id = data_source.id;
            if json_out {
                return axum::Json(json!({
                    "status": "connected",
                    "created": created,
                    "email": email,
                    "data_source_id": id,
                    "data_source": DataSourceResponse::from(*data_source),
                }))
                .into_response();
            }
            let who = if display_name.is_empty() {
                email.clone()
            } else {
                format!("{display_name} ({email})")
            };
            result_page(
                StatusCode::OK,
                "Dropbox connected",
                &format!("Dropbox connected: {who}. You can close this window."),
                &json!({"status": "connected", "data_source_id": id, "email": email,
                        "message": "Dropbox connected"}),
            )
        }
        Ok(CallbackOutcome::Denied { error, .. }) => {
            let msg = if error == "access_denied" {
                "You declined access in Dropbox, so nothing was connected.".to_string()
            } else {
                format!("Dropbox did not grant access ({error}), so nothing was connected.")
            };
            if json_out {
                return axum::Json(json!({"status": "denied", "error": error, "message": msg}))
                    .into_response();
            }
            result_page(
                StatusCode::OK,
                "Dropbox not connected",
                &msg,
                &json!({"status": "denied", "data_source_id": null, "message": msg}),
            )
        }
        Err(e) => {
            let api = dropbox_error(e);
            let (status, msg) = match &api {
                ApiError::Status(s, m) => (*s, m.clone()),
                ApiError::Internal(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong while connecting Dropbox; please try again.".to_string(),
                ),
                ApiError::Validation(_) => (StatusCode::BAD_REQUEST, "Invalid request".to_string()),
            };
            if json_out {
                return api.into_response();
            }
            if let ApiError::Internal(m) = &api {
                tracing::error!(error = %m, "Dropbox callback failed");
            }
            result_page(
                status,
                "Dropbox could not be connected",
                &msg,
                &json!({"status": "error", "data_source_id": null, "message": msg}),
            )
        }
    }
}

// ---- data sources ----------------------------------------------------------------------------

fn resolve_ds_query(req: DataSourceQueryInput) -> Result<DataSourceQuery, ApiError> {
    let f = req.filters.unwrap_or_default();
    if let Some(s) = &f.source
        && !is_data_source_type(s)
    {
        return Err(ApiError::body_field(
            &["filters", "source"],
            "value is not a valid enumeration member",
            "type_error.enum",
        ));
    }
    let tags = match &f.tags {
        None | Some(Value::Null) => None,
        Some(v) if v.as_object().is_some_and(Map::is_empty) => None,
        Some(v) => Some(
            TagFilter::parse_v2(v)
                .map_err(|m| ApiError::body_field(&["filters", "tags"], m, "value_error"))?,
        ),
    };
    Ok(DataSourceQuery {
        page: Pagination::resolve(req.pagination.as_ref()),
        order_by: match req.order_by {
            Some(DataSourceOrderBy::CreatedAt) => DataSourceOrder::CreatedAt,
            _ => DataSourceOrder::UpdatedAt,
        },
        dir: OrderDir::resolve(req.order_dir, Dir::Asc),
        ids: f.ids,
        source: f.source,
        revoked_access: f.revoked_access,
        tags,
    })
}

/// The customer's data sources.
#[utoipa::path(post, path = "/user_data_sources", tag = "Data Sources",
    request_body = DataSourceQueryInput,
    responses((status = 200, body = DataSourceList), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn user_data_sources(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<DataSourceQueryInput>,
) -> Result<axum::Json<DataSourceList>, ApiError> {
    let q = resolve_ds_query(req)?;
    let (org, cust) = (auth.org_id, auth.customer.id);
    let (rows, count) = state
        .db(move |s| s.query_data_sources(org, Some(cust), &q))
        .await?;
    Ok(axum::Json(DataSourceList {
        results: rows.into_iter().map(DataSourceResponse::from).collect(),
        count,
    }))
}

/// Every data source of the organization.
#[utoipa::path(post, path = "/data_sources", tag = "Data Sources",
    request_body = DataSourceQueryInput,
    responses((status = 200, body = DataSourceList), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn org_data_sources(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<DataSourceQueryInput>,
) -> Result<axum::Json<DataSourceList>, ApiError> {
    let q = resolve_ds_query(req)?;
    let org = auth.org_id;
    let (rows, count) = state
        .db(move |s| s.query_data_sources(org, None, &q))
        .await?;
    Ok(axum::Json(DataSourceList {
        results: rows.into_iter().map(DataSourceResponse::from).collect(),
        count,
    }))
}

/// Revokes the data source's access: at Dropbox (best effort) and here (`revoked_access`,
/// REVOKE webhook). Reconnect through `/integrations/oauth_url`.
#[utoipa::path(post, path = "/revoke_access_token", tag = "Data Sources",
    request_body = DataSourceIdInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 404, body = ErrorDetail),
        (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn revoke_access_token(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<DataSourceIdInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let (org, cust, id) = (auth.org_id, auth.customer.id, req.data_source_id);
    let ds = state
        .db(move |s| s.get_data_source(org, Some(cust), id))
        .await?;
    if let Some(dbx) = state.dropbox().cloned() {
        if dbx.item_listing_running(id) {
            let _ = dbx.cancel_item_listing(id).await;
        }
        if !ds.revoked_access {
            let client = dbx.client().clone();
            let r = dbx
                .call(id, |auth| {
                    let client = client.clone();
                    async move { client.revoke(&auth.access_token).await }
                })
                .await;
            match r {
                Ok(()) => tracing::info!(data_source_id = id, "Dropbox grant revoked at Dropbox"),
                Err(e) => {
                    tracing::warn!(data_source_id = id, error = %e,
                        "could not revoke the grant at Dropbox; revoking locally")
                }
            }
        }
    }
    state
        .db(move |s| s.mark_data_source_revoked(id, "revoked through /revoke_access_token"))
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}

/// Upserts tags onto a data source.
#[utoipa::path(post, path = "/data_sources/tags/add", tag = "Data Sources",
    request_body = AddTagsInput,
    responses((status = 200, body = DataSourceResponse), (status = 404, body = ErrorDetail),
        (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn add_tags(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<AddTagsInput>,
) -> Result<axum::Json<DataSourceResponse>, ApiError> {
    let (org, cust) = (auth.org_id, auth.customer.id);
    let ds = state
        .db(move |s| s.add_data_source_tags(org, cust, req.data_source_id, &req.tags))
        .await?;
    Ok(axum::Json(ds.into()))
}

/// Removes tags from a data source.
#[utoipa::path(post, path = "/data_sources/tags/remove", tag = "Data Sources",
    request_body = RemoveTagsInput,
    responses((status = 200, body = DataSourceResponse), (status = 404, body = ErrorDetail),
        (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn remove_tags(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<RemoveTagsInput>,
) -> Result<axum::Json<DataSourceResponse>, ApiError> {
    let (org, cust) = (auth.org_id, auth.customer.id);
    let keys = req.tags_to_remove.unwrap_or_default();
    let all = req.remove_all_tags.unwrap_or(false);
    let ds = state
        .db(move |s| s.remove_data_source_tags(org, cust, req.data_source_id, &keys, all))
        .await?;
    Ok(axum::Json(ds.into()))
}

// ---- items -----------------------------------------------------------------------------------

/// Starts (re)listing the account's files and folders; completion shows as
/// `source_items_synced_at` set and `sync_status` READY.
#[utoipa::path(post, path = "/integrations/items/sync", tag = "Integrations",
    request_body = DataSourceIdInput,
    responses((status = 200, body = DataSourceResponse), (status = 400, body = ErrorDetail),
        (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn items_sync(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<DataSourceIdInput>,
) -> Result<axum::Json<DataSourceResponse>, ApiError> {
    let dbx = dropbox(&state)?.clone();
    let (org, cust, id) = (auth.org_id, auth.customer.id, req.data_source_id);
    let ds = state
        .db(move |s| s.get_data_source(org, Some(cust), id))
        .await?;
    if ds.revoked_access {
        return Err(dropbox_error(DropboxError::Revoked));
    }
    if !dbx.item_listing_running(id) {
        state
            .db(move |s| s.set_data_source_status(id, data_source_status::QUEUED_FOR_SYNCING, None))
            .await?;
        dbx.start_item_listing(id);
    }
    let ds = state
        .db(move |s| s.get_data_source(org, Some(cust), id))
        .await?;
    Ok(axum::Json(ds.into()))
}

/// Stops an item listing in progress (last action CANCEL, CANCEL webhook).
#[utoipa::path(post, path = "/integrations/items/sync/cancel", tag = "Integrations",
    request_body = DataSourceIdInput,
    responses((status = 200, body = DataSourceResponse), (status = 404, body = ErrorDetail),
        (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn items_sync_cancel(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<DataSourceIdInput>,
) -> Result<axum::Json<DataSourceResponse>, ApiError> {
    let dbx = dropbox(&state)?.clone();
    let (org, cust, id) = (auth.org_id, auth.customer.id, req.data_source_id);
    state
        .db(move |s| s.get_data_source(org, Some(cust), id))
        .await?;
    let ds = dbx.cancel_item_listing(id).await.map_err(dropbox_error)?;
    Ok(axum::Json(ds.into()))
}

/// Lists enumerated items: one folder level (`parent_id`, `null` = top level) or, with
/// search filters and no `parent_id`, the whole tree.
#[utoipa::path(post, path = "/integrations/items/list", tag = "Integrations",
    request_body = ListItemsRequest,
    responses((status = 200, body = ListItemsResponse), (status = 404, body = ErrorDetail),
        (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn items_list(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<ListItemsRequest>,
) -> Result<axum::Json<ListItemsResponse>, ApiError> {
    let f = req.filters.unwrap_or_default();
    for (name, n) in [
        ("file_formats", f.file_formats.as_ref().map(Vec::len)),
        ("item_types", f.item_types.as_ref().map(Vec::len)),
    ] {
        if n.is_some_and(|n| n > 50) {
            return Err(ApiError::body_field(
                &["filters", name],
                "ensure this value has at most 50 items",
                "value_error.list.max_items",
            ));
        }
    }
    if let Some(bad) = f
        .file_formats
        .iter()
        .flatten()
        .find(|x| !STORAGE_FILE_FORMATS.contains(&x.as_str()))
    {
        return Err(ApiError::body_field(
            &["filters", "file_formats"],
            format!("{bad:?} is not a valid StorageFileFormats value"),
            "type_error.enum",
        ));
    }
    let name = f.name.filter(|n| !n.is_empty());
    let searching = f.external_ids.is_some() || f.ids.is_some() || name.is_some();
    let parent = match (req.parent_id, f.root_files_only.unwrap_or(false)) {
        (_, true) => ItemParent::Root,
        (Some(p), false) => ItemParent::Folder(p),
        (None, false) if searching => ItemParent::Any,
        (None, false) => ItemParent::Root,
    };
    let q = ItemQuery {
        parent,
        external_ids: f.external_ids,
        ids: f.ids,
        name,
        file_formats: f.file_formats,
        item_types: f.item_types,
        page: Pagination::resolve(req.pagination.as_ref()),
        order_by: match req.order_by {
            Some(ItemOrderBy::Id) => ItemOrder::Id,
            Some(ItemOrderBy::DirectoriesFirst) => ItemOrder::DirectoriesFirst,
            _ => ItemOrder::Name,
        },
        dir: OrderDir::resolve(req.order_dir, Dir::Asc),
    };
    let (org, cust, id) = (auth.org_id, auth.customer.id, req.data_source_id);
    let (rows, count) = state
        .db(move |s| s.list_source_items(org, cust, id, &q))
        .await?;
    Ok(axum::Json(ListItemsResponse {
        items: rows.into_iter().map(ExternalSourceItem::from).collect(),
        count,
    }))
}
