//! Dropbox file sync endpoints: `POST /integrations/files/sync` (Carbon's `SyncFilesRequest`:
//! files and folders chosen by Dropbox id, every option applied server-side with Carbon's
//! defaults; folders stay watched), Dropbox's webhook (`GET` challenge echo, `POST`
//! notifications verified against the server-wide and every white-label Dropbox app secret),
//! and the `/resync_file` hook that makes a Dropbox file re-download. The work happens in
//! `carbide_sync::dropbox_sync`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carbide_core::enums::EMBEDDING_GENERATORS;
use carbide_store::{FileRecord, SyncSettings};
use carbide_sync::dropbox_sync::{DropboxSync, DropboxSyncConfig, SyncFilesError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::CustomerAuth;
use crate::error::{ApiError, ErrorDetail, HttpValidationError};
use crate::extract::JsonBody;
use crate::models::GenericSuccessResponse;

/// `SyncFilesRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SyncFilesRequest {
    data_source_id: i64,
    /// Dropbox ids (`id:…`) as strings, or `[{"id": …, "root_id": …}]`.
    #[schema(value_type = Vec<Object>)]
    ids: Value,
    #[schema(value_type = Option<Object>)]
    tags: Option<Value>,
    #[schema(default = 1500)]
    chunk_size: Option<i64>,
    #[schema(default = 20)]
    chunk_overlap: Option<i64>,
    skip_embedding_generation: Option<bool>,
    embedding_model: Option<String>,
    generate_sparse_vectors: Option<bool>,
    prepend_filename_to_chunks: Option<bool>,
    max_items_per_chunk: Option<i64>,
    set_page_as_boundary: Option<bool>,
    request_id: Option<String>,
    use_ocr: Option<bool>,
    parse_pdf_tables_with_ocr: Option<bool>,
    incremental_sync: Option<bool>,
    #[schema(value_type = Option<Object>)]
    file_sync_config: Option<Value>,
}

fn field(path: &[&str], msg: &str, kind: &str) -> ApiError {
    ApiError::body_field(path, msg, kind)
}

fn parse_ids(v: &Value) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = v else {
        return Err(field(
            &["ids"],
            "value is not a valid list",
            "type_error.list",
        ));
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let id = match it {
            Value::String(s) => s.clone(),
            Value::Object(m) => match m.get("id") {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    return Err(ApiError::body_field(
                        &["ids", &i.to_string(), "id"],
                        "field required",
                        "value_error.missing",
                    ));
                }
            },
            _ => {
                return Err(ApiError::body_field(
                    &["ids", &i.to_string()],
                    "str type expected",
                    "type_error.str",
                ));
            }
        };
        if id.trim().is_empty() {
            return Err(ApiError::body_field(
                &["ids", &i.to_string()],
                "an id must not be empty",
                "value_error.any_str.min_length",
            ));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err(field(
            &["ids"],
            "ensure this value has at least 1 items",
            "value_error.list.min_items",
        ));
    }
    Ok(out)
}

/// `FileSyncConfig` defaults under a caller's partial object.
fn file_sync_config(v: Option<Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut d = super::integrations::file_sync_config_defaults();
            for (k, v) in m {
                d.insert(k, v);
            }
            Ok(Some(d))
        }
        Some(_) => Err(field(
            &["file_sync_config"],
            "value is not a valid dict",
            "type_error.dict",
        )),
    }
}

/// The processing options of files synced by `req` (`FileOptions` keys, Carbon's defaults).
fn options_of(req: &SyncFilesRequest) -> Result<Map<String, Value>, ApiError> {
    for (name, v) in [
        ("chunk_size", req.chunk_size),
        ("chunk_overlap", req.chunk_overlap),
    ] {
        if v.is_some_and(|n| n < 0) {
            return Err(field(
                &[name],
                "ensure this value is not negative",
                "value_error.number.not_ge",
            ));
        }
    }
    if req.max_items_per_chunk.is_some_and(|n| n <= 0) {
        return Err(field(
            &["max_items_per_chunk"],
            "ensure this value is greater than 0",
            "value_error.number.not_gt",
        ));
    }
    let model = req
        .embedding_model
        .clone()
        .unwrap_or_else(|| "OPENAI".into());
    if !EMBEDDING_GENERATORS.contains(&model.as_str()) {
        return Err(field(
            &["embedding_model"],
            "value is not a valid enumeration member",
            "type_error.enum",
        ));
    }
    let fsc = file_sync_config(req.file_sync_config.clone())?;
    let flag = |k: &str| {
        fsc.as_ref()
            .and_then(|m| m.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut o = Map::new();
    o.insert("chunk_size".into(), json!(req.chunk_size.unwrap_or(1500)));
    o.insert(
        "chunk_overlap".into(),
        json!(req.chunk_overlap.unwrap_or(20)),
    );
    o.insert("embedding_model".into(), json!(model));
    o.insert(
        "skip_embedding_generation".into(),
        json!(req.skip_embedding_generation.unwrap_or(false)),
    );
    o.insert(
        "generate_sparse_vectors".into(),
        json!(req.generate_sparse_vectors.unwrap_or(false)),
    );
    o.insert(
        "prepend_filename_to_chunks".into(),
        json!(req.prepend_filename_to_chunks.unwrap_or(false)),
    );
    if let Some(n) = req.max_items_per_chunk {
        o.insert("max_items_per_chunk".into(), json!(n));
    }
    o.insert(
        "set_page_as_boundary".into(),
        json!(req.set_page_as_boundary.unwrap_or(false)),
    );
    o.insert("use_ocr".into(), json!(req.use_ocr.unwrap_or(false)));
    o.insert(
        "parse_pdf_tables_with_ocr".into(),
        json!(req.parse_pdf_tables_with_ocr.unwrap_or(false)),
    );
    o.insert(
        "incremental_sync".into(),
        json!(req.incremental_sync.unwrap_or(false)),
    );
    o.insert("split_rows".into(), json!(flag("split_rows")));
    o.insert(
        "generate_chunks_only".into(),
        json!(flag("generate_chunks_only")),
    );
    o.insert("store_file_only".into(), json!(flag("store_file_only")));
    o.insert(
        "skip_file_processing".into(),
        json!(flag("skip_file_processing")),
    );
    if let Some(m) = fsc {
        o.insert("file_sync_config".into(), Value::Object(m));
    }
    Ok(o)
}

fn tags_of(v: Option<Value>) -> Result<Map<String, Value>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(field(
            &["tags"],
            "value is not a valid dict",
            "type_error.dict",
        )),
    }
}

/// The process's sync engine (its worker is woken by new selections), else one for this
/// request (cheap: shares the process's Dropbox connector).
fn engine(state: &AppState) -> Result<DropboxSync, ApiError> {
    if let Some(sync) = state.dropbox_sync() {
        return Ok(sync.clone());
    }
    let dbx = state
        .dropbox()
        .ok_or_else(|| ApiError::bad_request("Dropbox is not configured on this server"))?;
    Ok(DropboxSync::new(
        dbx.clone(),
        DropboxSyncConfig {
            max_file_bytes: state.files_config().max_file_bytes,
            ..DropboxSyncConfig::default()
        },
    ))
}

/// Syncs the chosen Dropbox files and folders: one `UserFile` per file (queued, or
/// SYNC_ERROR with a reason when too large or unsupported), one container per folder whose
/// supported files are synced and which stays watched (files added later are synced by
/// themselves). Idempotent.
#[utoipa::path(post, path = "/integrations/files/sync", tag = "Integrations",
    request_body = SyncFilesRequest,
    responses((status = 200, body = GenericSuccessResponse), (status = 400, body = ErrorDetail),
        (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn sync_files(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<SyncFilesRequest>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let ids = parse_ids(&req.ids)?;
    let options = options_of(&req)?;
    let settings = SyncSettings {
        options,
        tags: tags_of(req.tags.clone())?,
        request_id: req.request_id.clone(),
    };
    let (org, cust, id) = (auth.org_id, auth.customer.id, req.data_source_id);
    let ds = state
        .db(move |s| s.get_data_source(org, Some(cust), id))
        .await?;
    if ds.data_source_type != "DROPBOX" {
        return Err(ApiError::bad_request(format!(
            "data source {id} is not a Dropbox data source"
        )));
    }
    if ds.revoked_access {
        return Err(ApiError::bad_request(
            "access to this Dropbox account was revoked; reconnect it through /integrations/oauth_url",
        ));
    }
    let engine = engine(&state)?;
    match engine.sync_files(id, &ids, &settings).await {
        Ok(_) => Ok(axum::Json(GenericSuccessResponse::ok())),
        Err(SyncFilesError::NotFound(x)) => Err(ApiError::bad_request(format!(
            "Dropbox item {x} was not found in this account"
        ))),
        Err(SyncFilesError::Dropbox(e)) => Err(super::integrations::dropbox_error(e)),
    }
}

/// `?challenge=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct Challenge {
    challenge: Option<String>,
}

/// Dropbox's webhook verification: echoes `challenge` as plain text.
#[utoipa::path(get, path = "/integrations/dropbox/webhook", tag = "Integrations",
    params(Challenge),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 400, body = ErrorDetail)))]
pub(crate) async fn webhook_challenge(Query(q): Query<Challenge>) -> Response {
    let Some(c) = q.challenge else {
        return ApiError::bad_request("missing challenge").into_response();
    };
    let mut r = c.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Dropbox change notifications: verified with `X-Dropbox-Signature` (HMAC-SHA256 of the body
/// with the server-wide app secret or any organization's Dropbox white-label secret; 403 when
/// none matches), then one coalesced change poll per known account is queued.
#[utoipa::path(post, path = "/integrations/dropbox/webhook", tag = "Integrations",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, body = Object), (status = 403, body = ErrorDetail)))]
pub(crate) async fn webhook_notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let forbidden = || ApiError::Status(StatusCode::FORBIDDEN, "invalid signature".into());
    let Some(sig) = headers
        .get("x-dropbox-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return Err(forbidden());
    };
    let dbx = state
        .dropbox()
        .ok_or_else(|| ApiError::bad_request("Dropbox is not configured on this server"))?;
    let mut secrets: Vec<String> = state.db(|s| s.dropbox_white_label_secrets()).await?;
    if let Some(s) = &dbx.settings().app_secret {
        secrets.push(s.clone());
    }
    if !secrets
        .iter()
        .any(|s| carbide_dropbox::webhook::verify_signature(s, &body, &sig))
    {
        return Err(forbidden());
    }
    let note: carbide_dropbox::webhook::Notification = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the notification is not valid JSON"))?;
    let accounts: Vec<String> = note.accounts().to_vec();
    let n = state
        .db(move |s| {
            let mut n = 0;
            for a in &accounts {
                n += s.enqueue_dropbox_polls_for_account(a)?;
            }
            Ok(n)
        })
        .await?;
    tracing::debug!(sources = n, "Dropbox webhook: polls queued");
    Ok(axum::Json(json!({})))
}

/// Whether `/resync_file` must fetch this file from Dropbox again.
pub(crate) fn is_dropbox_file(f: &FileRecord) -> bool {
    f.source == "DROPBOX" && f.data_source_id.is_some() && !f.is_folder
}

/// `/resync_file` of a Dropbox file: the new options are merged and the file is downloaded
/// again (then processed as usual).
pub(crate) async fn resync(
    state: &AppState,
    org: i64,
    cust: i64,
    file_id: i64,
    opts: Map<String, Value>,
) -> Result<FileRecord, ApiError> {
    state
        .db(move |s| {
            if !s.requeue_dropbox_download(org, cust, file_id, &opts)? {
                return Err(carbide_store::StoreError::NotFound("file"));
            }
            s.get_file(org, cust, file_id)?
                .ok_or(carbide_store::StoreError::NotFound("file"))
        })
        .await
}
