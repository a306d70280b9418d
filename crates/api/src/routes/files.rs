//! Carbon's file endpoints: uploads (`/uploadfile`, `/upload_text`, `/upload_file_from_url`),
//! listing (`/user_files_v2`, `/user_files`), `/resync_file`, deletion (`/delete_files`,
//! `/delete_files_v2`), tags, chunk listings (`/text_chunks`, `/list_chunks_and_embeddings`)
//! and download links (`/parsed_file/{id}`, `/raw_file/{id}`) that point at carbide-served,
//! HMAC-signed, expiring URLs (`/files/raw/{id}`, `/files/parsed/{id}`).

use std::net::IpAddr;

use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carbide_core::enums::{EMBEDDING_GENERATORS, file_status, is_data_source_type};
use carbide_core::timefmt::{now_unix, rfc3339};
use carbide_ingest::{Format, detect_format};
use carbide_store::{
    ChunkOrder, Dir, FileFilter, FileOrder, FileQuery, FileRecord, NewFile, TagFilter,
};
use carbide_sync::FileOptions;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::auth::CustomerAuth;
use crate::error::{ApiError, ErrorDetail, HttpValidationError, ValidationItem};
use crate::extract::JsonBody;
use crate::models::{GenericSuccessResponse, OrderDir, Pagination};
use crate::{AppState, FilesConfig};

// ---------- request models ----------

/// `OrganizationUserFilesToSyncFilters` (every field optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct FileFilters {
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    pub source: Option<Value>,
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tags_v2: Option<Value>,
    pub ids: Option<Vec<i64>>,
    pub external_file_ids: Option<Vec<String>>,
    pub sync_statuses: Option<Vec<String>>,
    pub parent_file_ids: Option<Vec<i64>>,
    pub organization_user_data_source_id: Option<Vec<i64>>,
    pub embedding_generators: Option<Vec<String>>,
    pub root_files_only: Option<bool>,
    pub include_all_children: Option<bool>,
    pub non_synced_only: Option<bool>,
    pub request_ids: Option<Vec<String>>,
    pub upload_ids: Option<Vec<String>>,
    pub sync_error_message: Option<String>,
    pub include_containers: Option<bool>,
    pub external_urls: Option<Vec<String>>,
    pub file_types_at_source: Option<Vec<String>>,
}

fn field_err(path: &[&str], msg: impl Into<String>, kind: &str) -> ApiError {
    ApiError::body_field(path, msg, kind)
}

fn check_enum(path: &[&str], vals: &[String], allowed: &[&str]) -> Result<(), ApiError> {
    for v in vals {
        if !allowed.contains(&v.as_str()) {
            return Err(field_err(
                path,
                format!("value is not a valid enumeration member; got {v:?}"),
                "type_error.enum",
            ));
        }
    }
    Ok(())
}

impl FileFilters {
    /// Validates and converts to the store filter (`prefix` = location of the object).
    pub fn resolve<'a>(&self, prefix: &[&'a str]) -> Result<FileFilter, ApiError> {
        let at = |f: &'a str| -> Vec<&'a str> {
            let mut v = prefix.to_vec();
            v.push(f);
            v
        };
        let sources = match &self.source {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        field_err(&at("source"), "must be a list of strings", "type_error")
                    })?,
            ),
            Some(_) => return Err(field_err(&at("source"), "invalid source", "type_error")),
        };
        if let Some(s) = &sources
            && let Some(bad) = s.iter().find(|s| !is_data_source_type(s))
        {
            return Err(field_err(
                &at("source"),
                format!("value is not a valid DataSourceType: {bad:?}"),
                "type_error.enum",
            ));
        }
        if let Some(s) = &self.sync_statuses {
            check_enum(&at("sync_statuses"), s, file_status::ALL)?;
        }
        if let Some(s) = &self.embedding_generators {
            check_enum(&at("embedding_generators"), s, EMBEDDING_GENERATORS)?;
        }
        for (name, v) in [
            ("request_ids", &self.request_ids),
            ("upload_ids", &self.upload_ids),
        ] {
            if v.as_ref().is_some_and(|v| v.len() > 100) {
                return Err(field_err(
                    &at(name),
                    "ensure this value has at most 100 items",
                    "value_error.list.max_items",
                ));
            }
        }
        let include_all_children = self.include_all_children.unwrap_or(false);
        let root_files_only = self.root_files_only.unwrap_or(false);
        if root_files_only && (self.parent_file_ids.is_some() || include_all_children) {
            return Err(ApiError::bad_request(
                "root_files_only cannot be combined with parent_file_ids or include_all_children",
            ));
        }
        let mut tag_filters = Vec::new();
        if let Some(t) = &self.tags {
            tag_filters.push(TagFilter::from_flat(t).map_err(ApiError::bad_request)?);
        }
        if let Some(t) = &self.tags_v2
            && !t.is_null()
        {
            tag_filters.push(TagFilter::parse_v2(t).map_err(ApiError::bad_request)?);
        }
        // carbide stores no helpdesk/ServiceNow items: a type filter matches nothing
        let nothing = self
            .file_types_at_source
            .as_ref()
            .is_some_and(|v| !v.is_empty());
        Ok(FileFilter {
            sources,
            name: self.name.clone(),
            tags: match tag_filters.len() {
                0 => None,
                _ => Some(TagFilter::And(tag_filters)),
            },
            ids: if nothing {
                Some(Vec::new())
            } else {
                self.ids.clone()
            },
            external_file_ids: self.external_file_ids.clone(),
            sync_statuses: self.sync_statuses.clone(),
            parent_file_ids: self.parent_file_ids.clone(),
            include_all_children,
            root_files_only,
            non_synced_only: self.non_synced_only.unwrap_or(false),
            data_source_ids: self.organization_user_data_source_id.clone(),
            embedding_generators: self.embedding_generators.clone(),
            request_ids: self.request_ids.clone(),
            upload_ids: self.upload_ids.clone(),
            sync_error_message: self.sync_error_message.clone(),
            include_containers: self.include_containers,
            external_urls: self.external_urls.clone(),
        })
    }
}

/// File order columns.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileOrderBy {
    CreatedAt,
    UpdatedAt,
    Name,
    LastSync,
    FileSize,
    Id,
}

impl FileOrderBy {
    fn resolve(o: Option<FileOrderBy>) -> FileOrder {
        match o {
            Some(FileOrderBy::CreatedAt) => FileOrder::CreatedAt,
            Some(FileOrderBy::Name) => FileOrder::Name,
            Some(FileOrderBy::LastSync) => FileOrder::LastSync,
            Some(FileOrderBy::FileSize) => FileOrder::FileSize,
            Some(FileOrderBy::Id) => FileOrder::Id,
            Some(FileOrderBy::UpdatedAt) | None => FileOrder::UpdatedAt,
        }
    }
}

/// `OrganizationUserFilesToSyncQueryInput`.
// cold storage and additional files are accepted for compatibility and not implemented
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UserFilesQuery {
    pub pagination: Option<Pagination>,
    pub order_by: Option<FileOrderBy>,
    pub order_dir: Option<OrderDir>,
    pub filters: Option<FileFilters>,
    pub include_raw_file: Option<bool>,
    pub include_parsed_text_file: Option<bool>,
    pub include_additional_files: Option<bool>,
    pub presigned_url_expiry_time_seconds: Option<i64>,
}

/// `/resync_file` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResyncFileQueryInput {
    pub file_id: i64,
    pub chunk_size: Option<i64>,
    pub chunk_overlap: Option<i64>,
    pub force_embedding_generation: Option<bool>,
    pub skip_file_processing: Option<bool>,
}

/// `/delete_files_v2` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteFilesV2QueryInput {
    pub filters: Option<FileFilters>,
    pub send_webhook: Option<bool>,
    pub preserve_file_record: Option<bool>,
}

/// `/delete_files` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteFilesQueryInput {
    pub file_ids: Option<Vec<i64>>,
    pub sync_statuses: Option<Vec<String>>,
    pub delete_non_synced_only: Option<bool>,
    pub send_webhook: Option<bool>,
    pub delete_child_files: Option<bool>,
}

/// `ColdStorageProps`.
// cold storage and additional files are accepted for compatibility and not implemented
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ColdStorageProps {
    pub enable_cold_storage: Option<bool>,
    pub hot_storage_time_to_live: Option<i64>,
}

/// `/upload_text` body (`RawTextInput`).
// cold storage and Textract options are accepted for compatibility and not implemented
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
pub struct RawTextInput {
    pub contents: String,
    pub name: Option<String>,
    pub chunk_size: Option<i64>,
    pub chunk_overlap: Option<i64>,
    pub skip_embedding_generation: Option<bool>,
    pub overwrite_file_id: Option<i64>,
    pub embedding_model: Option<String>,
    pub generate_sparse_vectors: Option<bool>,
    pub cold_storage_params: Option<ColdStorageProps>,
    pub generate_chunks_only: Option<bool>,
    pub store_file_only: Option<bool>,
}

/// `/upload_file_from_url` body.
// cold storage and Textract options are accepted for compatibility and not implemented
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
pub struct UploadFileFromUrlInput {
    pub url: String,
    pub file_name: Option<String>,
    pub chunk_size: Option<i64>,
    pub chunk_overlap: Option<i64>,
    pub skip_embedding_generation: Option<bool>,
    pub set_page_as_boundary: Option<bool>,
    pub embedding_model: Option<String>,
    pub generate_sparse_vectors: Option<bool>,
    pub use_textract: Option<bool>,
    pub prepend_filename_to_chunks: Option<bool>,
    pub max_items_per_chunk: Option<i64>,
    pub parse_pdf_tables_with_ocr: Option<bool>,
    pub media_type: Option<String>,
    pub split_rows: Option<bool>,
    pub cold_storage_params: Option<ColdStorageProps>,
    pub generate_chunks_only: Option<bool>,
    pub store_file_only: Option<bool>,
}

/// `OrganizationUserFileTagCreate`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FileTagCreate {
    #[schema(value_type = Object)]
    pub tags: Map<String, Value>,
    pub organization_user_file_id: i64,
}

/// `OrganizationUserFileTagsRemove`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FileTagsRemove {
    pub tags: Vec<String>,
    pub organization_user_file_id: i64,
}

/// `EmbeddingsAndChunksFilters`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChunkFilters {
    pub user_file_id: i64,
    pub embedding_model: Option<String>,
}

/// Chunk order columns.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChunkOrderBy {
    CreatedAt,
    UpdatedAt,
    ChunkIndex,
}

/// `EmbeddingsAndChunksQueryInput` (`/text_chunks`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TextChunksQuery {
    pub pagination: Option<Pagination>,
    pub order_by: Option<ChunkOrderBy>,
    pub order_dir: Option<OrderDir>,
    pub filters: ChunkFilters,
    pub include_vectors: Option<bool>,
}

/// `EmbeddingsAndChunksQueryInputV2` (`/list_chunks_and_embeddings`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ListChunksQuery {
    pub pagination: Option<Pagination>,
    pub order_by: Option<FileOrderBy>,
    pub order_dir: Option<OrderDir>,
    pub filters: FileFilters,
    pub include_vectors: Option<bool>,
}

// ---------- response models ----------

/// `FileStatistics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileStatistics {
    pub file_format: Option<String>,
    pub file_size: Option<i64>,
    pub num_characters: Option<i64>,
    pub num_tokens: Option<i64>,
    pub num_embeddings: Option<i64>,
    pub mime_type: Option<String>,
}

/// `ChunkProperties`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkProperties {
    pub set_page_as_boundary: bool,
    pub prepend_filename_to_chunks: bool,
    pub max_items_per_chunk: Option<i64>,
}

/// `UserFile`: every field of Carbon's schema.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserFile {
    pub id: i64,
    pub source: String,
    pub organization_id: i64,
    pub organization_user_id: Option<i64>,
    pub organization_supplied_user_id: String,
    pub organization_user_data_source_id: Option<i64>,
    pub external_file_id: String,
    pub external_url: Option<String>,
    pub sync_status: String,
    pub sync_error_message: Option<String>,
    pub last_sync: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    pub file_statistics: Option<FileStatistics>,
    #[schema(value_type = Option<Object>)]
    pub file_metadata: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub embedding_properties: Option<Value>,
    pub chunk_size: Option<i64>,
    pub chunk_overlap: Option<i64>,
    pub chunk_properties: Option<ChunkProperties>,
    #[schema(value_type = Object)]
    pub ocr_properties: Value,
    pub ocr_job_started_at: Option<String>,
    pub name: Option<String>,
    pub parent_id: Option<i64>,
    pub enable_auto_sync: Option<bool>,
    pub presigned_url: Option<String>,
    pub parsed_text_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub additional_presigned_urls: Option<Value>,
    pub skip_embedding_generation: bool,
    pub source_created_at: Option<String>,
    pub generate_sparse_vectors: Option<bool>,
    pub request_id: Option<String>,
    pub upload_id: Option<String>,
    #[schema(value_type = Object)]
    pub sync_properties: Value,
    #[schema(value_type = Object)]
    pub messages_metadata: Value,
    pub file_contents_deleted: bool,
    pub supports_cold_storage: bool,
    pub hot_storage_time_to_live: Option<i64>,
    pub embedding_storage_status: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `UserFilesV2`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserFilesV2 {
    pub results: Vec<UserFile>,
    pub count: i64,
}

/// `PresignedURLResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresignedUrlResponse {
    pub presigned_url: String,
}

/// `EmbeddingAndChunk`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingAndChunk {
    pub user_file_id: i64,
    pub chunk_index: Option<i64>,
    pub source_content: String,
    pub embedding: Option<Vec<f32>>,
    #[schema(value_type = Option<Object>)]
    pub content_metadata: Option<Value>,
}

/// `EmbeddingsAndChunksResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsAndChunksResponse {
    pub results: Vec<EmbeddingAndChunk>,
    pub count: i64,
}

// ---------- signed URLs ----------

fn sign(state: &AppState, kind: &str, id: i64, expires: i64) -> String {
    let key = state.store().url_signing_key();
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&key) {
        Ok(m) => m,
        Err(_) => return String::new(), // unreachable: HMAC accepts any key length
    };
    mac.update(format!("{kind}:{id}:{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) fn signed_url(state: &AppState, kind: &str, id: i64, ttl: i64) -> String {
    let expires = now_unix() + ttl.clamp(1, 7 * 24 * 3600);
    format!(
        "{}/files/{kind}/{id}?expires={expires}&sig={}",
        state.config().public_url.trim_end_matches('/'),
        sign(state, kind, id, expires)
    )
}

fn user_file(state: &AppState, f: FileRecord, raw: bool, parsed: bool, ttl: i64) -> UserFile {
    let o = FileOptions::from_map(&f.options);
    let model = f
        .embedding_model
        .clone()
        .unwrap_or_else(|| o.model().to_string());
    let presigned_url =
        (raw && f.raw_sha256.is_some()).then(|| signed_url(state, "raw", f.id, ttl));
    let parsed_text_url =
        (parsed && f.parsed_sha256.is_some()).then(|| signed_url(state, "parsed", f.id, ttl));
    let file_format = f
        .file_format
        .clone()
        .filter(|x| FILE_FORMATS.contains(&x.as_str()));
    UserFile {
        id: f.id,
        source: f.source,
        organization_id: f.organization_id,
        organization_user_id: Some(f.organization_user_id),
        organization_supplied_user_id: f.organization_supplied_user_id,
        organization_user_data_source_id: f.data_source_id,
        external_file_id: f.external_file_id,
        external_url: f.external_url,
        sync_status: f.sync_status,
        sync_error_message: f.sync_error_message,
        last_sync: f.last_sync.map(rfc3339),
        tags: Some(f.tags),
        file_statistics: Some(FileStatistics {
            file_format,
            file_size: f.file_size,
            num_characters: f.num_characters,
            num_tokens: f.num_tokens,
            num_embeddings: f.num_embeddings,
            mime_type: f.mime_type,
        }),
        file_metadata: Some({
            let mut m = if f.file_metadata.is_object() {
                f.file_metadata
            } else {
                json!({})
            };
            // Carbon's UserFile has no folder flag; container records (chosen Dropbox folders)
            // say so here so clients can tell them from files.
            if f.is_folder
                && let Some(obj) = m.as_object_mut()
            {
                obj.insert("is_folder".into(), json!(true));
            }
            m
        }),
        embedding_properties: Some(json!({ model: {
            "chunk_size": o.chunk_size, "chunk_overlap": o.chunk_overlap }})),
        chunk_size: o.chunk_size.map(|v| v as i64),
        chunk_overlap: o.chunk_overlap.map(|v| v as i64),
        chunk_properties: Some(ChunkProperties {
            set_page_as_boundary: o.set_page_as_boundary,
            prepend_filename_to_chunks: o.prepend_filename_to_chunks,
            max_items_per_chunk: o.max_items_per_chunk.map(|v| v as i64),
        }),
        ocr_properties: json!({}),
        ocr_job_started_at: None,
        name: f.name,
        parent_id: f.parent_id,
        enable_auto_sync: None,
        presigned_url,
        parsed_text_url,
        additional_presigned_urls: None,
        skip_embedding_generation: !o.wants_vectors(),
        source_created_at: f.source_created_at.map(rfc3339),
        generate_sparse_vectors: Some(o.generate_sparse_vectors),
        request_id: f.request_id,
        upload_id: f.upload_id,
        sync_properties: json!({}),
        messages_metadata: json!({}),
        file_contents_deleted: f.raw_sha256.is_none() && !f.is_folder,
        supports_cold_storage: false,
        hot_storage_time_to_live: None,
        embedding_storage_status: "HOT_STORAGE".into(),
        created_at: rfc3339(f.created_at),
        updated_at: rfc3339(f.updated_at),
    }
}

/// Carbon's `FileFormats` values carbide can produce.
const FILE_FORMATS: &[&str] = &[
    "TXT", "CSV", "TSV", "PDF", "DOCX", "PPTX", "XLSX", "XLSM", "MD", "RTF", "JSON", "HTML", "JPG",
    "PNG",
];

// ---------- uploads ----------

fn source_for(format: Format, name: &str) -> (&'static str, Option<&'static str>) {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match format {
        Format::Txt => ("TEXT", Some("TXT")),
        Format::Md => ("MD", Some("MD")),
        Format::Csv => ("CSV", Some("CSV")),
        Format::Tsv => ("TSV", Some("TSV")),
        Format::Pdf => ("PDF", Some("PDF")),
        Format::Docx => ("DOCX", Some("DOCX")),
        Format::Pptx => ("PPTX", Some("PPTX")),
        Format::Xlsx => ("XLSX", Some("XLSX")),
        Format::Rtf => ("RTF", Some("RTF")),
        Format::Png => ("PNG", Some("PNG")),
        Format::Jpeg => ("JPG", Some("JPG")),
        Format::Cfb => match ext.as_deref() {
            Some("xls") => ("XLSX", None),
            Some("ppt") => ("PPTX", None),
            _ => ("DOCX", None),
        },
        Format::Unknown => ("TEXT", None),
    }
}

fn default_name(format: Format) -> String {
    let ext = match format {
        Format::Pdf => "pdf",
        Format::Docx => "docx",
        Format::Pptx => "pptx",
        Format::Xlsx => "xlsx",
        Format::Rtf => "rtf",
        Format::Png => "png",
        Format::Jpeg => "jpg",
        Format::Md => "md",
        Format::Csv => "csv",
        Format::Tsv => "tsv",
        Format::Cfb => "doc",
        Format::Txt | Format::Unknown => "txt",
    };
    format!("upload.{ext}")
}

fn check_model(state: &AppState, loc: Vec<Value>, model: Option<&str>) -> Result<(), ApiError> {
    let Some(m) = model else {
        return state
            .registry()
            .check_configured(carbide_sync::embedding::DEFAULT_MODEL)
            .map_err(|e| ApiError::bad_request(e.to_string()));
    };
    if !EMBEDDING_GENERATORS.contains(&m) {
        return Err(ApiError::Validation(vec![ValidationItem::new(
            loc,
            format!("value is not a valid enumeration member; got {m:?}"),
            "type_error.enum",
        )]));
    }
    state
        .registry()
        .check_configured(m)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn chunk_num(v: Option<i64>, loc: &[&str]) -> Result<Option<usize>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as usize)),
        Some(_) => Err(field_err(
            loc,
            "must be a positive integer",
            "value_error.number.not_ge",
        )),
    }
}

/// Stores `bytes` and creates the file record with its processing job.
async fn store_upload(
    state: &AppState,
    auth: &CustomerAuth,
    bytes: Vec<u8>,
    name: Option<String>,
    source_override: Option<&'static str>,
    external_url: Option<String>,
    opts: FileOptions,
) -> Result<UserFile, ApiError> {
    let max = state.files_config().max_file_bytes;
    if bytes.len() as u64 > max {
        return Err(ApiError::bad_request(format!(
            "file is {} bytes, over the limit of {max} bytes",
            bytes.len()
        )));
    }
    let format = detect_format(&bytes, name.as_deref().unwrap_or(""));
    let name = name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| default_name(format));
    let (src, file_format) = source_for(format, &name);
    let source = source_override.unwrap_or(src);
    let status = if opts.skip_file_processing {
        file_status::READY_TO_SYNC
    } else {
        file_status::QUEUED_FOR_SYNC
    };
    let (org, cust) = (auth.org_id, auth.customer.id);
    let size = bytes.len() as i64;
    let mut rid = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut rid);
    let request_id = hex::encode(rid);
    let model = opts.model().to_string();
    let f = state
        .db(move |s| {
            let sha = s.put_blob(&bytes)?;
            s.create_file(&NewFile {
                organization_id: org,
                organization_user_id: cust,
                source: source.to_string(),
                external_url,
                name: Some(name),
                sync_status: status.to_string(),
                file_format: file_format.map(String::from),
                file_size: Some(size),
                raw_sha256: Some(sha),
                options: opts.to_map(),
                request_id: Some(request_id),
                embedding_model: Some(model),
                ..Default::default()
            })
        })
        .await?;
    Ok(user_file(state, f, false, false, 3600))
}

fn parse_query(raw: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(q) = raw {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            m.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    m
}

fn q_bool(q: &Map<String, Value>, k: &str) -> Result<bool, ApiError> {
    match q.get(k).and_then(Value::as_str) {
        None => Ok(false),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ApiError::Validation(vec![ValidationItem::new(
                vec![json!("query"), json!(k)],
                "value could not be parsed to a boolean",
                "type_error.bool",
            )])),
        },
    }
}

fn q_int(q: &Map<String, Value>, k: &str) -> Result<Option<usize>, ApiError> {
    match q.get(k).and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
            ApiError::Validation(vec![ValidationItem::new(
                vec![json!("query"), json!(k)],
                "value is not a valid integer",
                "type_error.integer",
            )])
        }),
    }
}

/// Uploads one file (multipart field `file`; options as query parameters).
#[utoipa::path(post, path = "/uploadfile", tag = "Files",
    responses((status = 200, body = UserFile), (status = 400, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn upload_file(
    State(state): State<AppState>,
    auth: CustomerAuth,
    RawQuery(raw): RawQuery,
    mut mp: Multipart,
) -> Result<axum::Json<UserFile>, ApiError> {
    let q = parse_query(raw.as_deref());
    let model = q
        .get("embedding_model")
        .and_then(Value::as_str)
        .map(String::from);
    check_model(
        &state,
        vec![json!("query"), json!("embedding_model")],
        model.as_deref(),
    )?;
    let opts = FileOptions {
        chunk_size: q_int(&q, "chunk_size")?,
        chunk_overlap: q_int(&q, "chunk_overlap")?,
        embedding_model: model,
        skip_embedding_generation: q_bool(&q, "skip_embedding_generation")?,
        generate_chunks_only: q_bool(&q, "generate_chunks_only")?,
        store_file_only: q_bool(&q, "store_file_only")?,
        skip_file_processing: false,
        use_ocr: q_bool(&q, "use_ocr")?,
        set_page_as_boundary: q_bool(&q, "set_page_as_boundary")?,
        prepend_filename_to_chunks: q_bool(&q, "prepend_filename_to_chunks")?,
        max_items_per_chunk: q_int(&q, "max_items_per_chunk")?,
        split_rows: q_bool(&q, "split_rows")?,
        generate_sparse_vectors: q_bool(&q, "generate_sparse_vectors")?,
        parse_pdf_tables_with_ocr: q_bool(&q, "parse_pdf_tables_with_ocr")?,
        media_type: q
            .get("media_type")
            .and_then(Value::as_str)
            .map(String::from),
    };
    let max = state.files_config().max_file_bytes;
    let mut found: Option<(Option<String>, Vec<u8>)> = None;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_err(e)),
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().map(String::from);
        let mut buf = Vec::new();
        let mut field = field;
        loop {
            match field.chunk().await {
                Ok(Some(c)) => {
                    if (buf.len() + c.len()) as u64 > max {
                        return Err(ApiError::bad_request(format!(
                            "file is over the limit of {max} bytes"
                        )));
                    }
                    buf.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => return Err(multipart_err(e)),
            }
        }
        found = Some((name, buf));
        break;
    }
    let Some((name, bytes)) = found else {
        return Err(ApiError::Validation(vec![ValidationItem::new(
            vec![json!("body"), json!("file")],
            "field required",
            "value_error.missing",
        )]));
    };
    Ok(axum::Json(
        store_upload(&state, &auth, bytes, name, None, None, opts).await?,
    ))
}

fn multipart_err(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::bad_request("file is over the request size limit")
    } else {
        ApiError::Status(
            StatusCode::BAD_REQUEST,
            format!("invalid multipart body: {}", e.body_text()),
        )
    }
}

/// Uploads plain text as a file.
#[utoipa::path(post, path = "/upload_text", tag = "Files", request_body = RawTextInput,
    responses((status = 200, body = UserFile), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn upload_text(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<RawTextInput>,
) -> Result<axum::Json<UserFile>, ApiError> {
    if req.contents.chars().count() < 5 {
        return Err(field_err(
            &["contents"],
            "ensure this value has at least 5 characters",
            "value_error.any_str.min_length",
        ));
    }
    check_model(
        &state,
        vec![json!("body"), json!("embedding_model")],
        req.embedding_model.as_deref(),
    )?;
    let opts = FileOptions {
        chunk_size: chunk_num(req.chunk_size, &["chunk_size"])?,
        chunk_overlap: chunk_num(req.chunk_overlap, &["chunk_overlap"])?,
        embedding_model: req.embedding_model.clone(),
        skip_embedding_generation: req.skip_embedding_generation.unwrap_or(false),
        generate_chunks_only: req.generate_chunks_only.unwrap_or(false),
        store_file_only: req.store_file_only.unwrap_or(false),
        generate_sparse_vectors: req.generate_sparse_vectors.unwrap_or(false),
        ..Default::default()
    };
    if let Some(old) = req.overwrite_file_id {
        let (org, cust) = (auth.org_id, auth.customer.id);
        state
            .db(move |s| {
                if s.get_file(org, cust, old)?.is_none() {
                    return Err(carbide_store::StoreError::NotFound("file"));
                }
                s.delete_files(org, cust, &[old], false, false)
            })
            .await?;
    }
    let name = req.name.clone().or_else(|| Some("text.txt".into()));
    Ok(axum::Json(
        store_upload(
            &state,
            &auth,
            req.contents.into_bytes(),
            name,
            Some("RAW_TEXT"),
            None,
            opts,
        )
        .await?,
    ))
}

fn ip_is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            !(v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_documentation()
                || v.octets()[0] == 0
                || (v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v) => {
            if let Some(v4) = v.to_ipv4_mapped() {
                return ip_is_public(IpAddr::V4(v4));
            }
            let seg = v.segments()[0];
            !(v.is_loopback()
                || v.is_unspecified()
                || (seg & 0xfe00) == 0xfc00
                || (seg & 0xffc0) == 0xfe80)
        }
    }
}

/// Downloads `url` with size, time and address checks (every hop of a redirect is checked,
/// and the connection is pinned to the checked address).
async fn fetch_url(
    state: &AppState,
    url: &str,
) -> Result<(Vec<u8>, Option<String>, String), ApiError> {
    fetch_url_with(state.files_config(), url, ip_is_public).await
}

/// [`fetch_url`] with the address policy as a parameter (`is_public` decides which resolved
/// addresses may be contacted unless the operator allows private URLs).
async fn fetch_url_with(
    cfg: &FilesConfig,
    url: &str,
    is_public: fn(IpAddr) -> bool,
) -> Result<(Vec<u8>, Option<String>, String), ApiError> {
    let mut current = url::Url::parse(url)
        .map_err(|e| field_err(&["url"], format!("invalid URL: {e}"), "value_error.url"))?;
    for _ in 0..5 {
        if !matches!(current.scheme(), "http" | "https") {
            return Err(ApiError::bad_request(
                "only http and https URLs can be fetched",
            ));
        }
        let host = current
            .host_str()
            .ok_or_else(|| ApiError::bad_request("URL has no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = current.port_or_known_default().unwrap_or(80);
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot resolve {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(ApiError::bad_request(format!("cannot resolve {host}")));
        }
        if !cfg.allow_private_urls && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(ApiError::bad_request(format!(
                "refusing to fetch {host}: it resolves to a loopback, private, link-local or unspecified address"
            )));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.url_timeout)
            .resolve(&host, addrs[0])
            .build()
            .map_err(|e| ApiError::Internal(format!("http client: {e}")))?;
        let mut resp = client
            .get(current.clone())
            .send()
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot fetch URL: {e}")))?;
        if resp.status().is_redirection() {
            let loc = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| ApiError::bad_request("redirect without a Location"))?;
            current = current
                .join(loc)
                .map_err(|e| ApiError::bad_request(format!("invalid redirect: {e}")))?;
            continue;
        }
        if !resp.status().is_success() {
            return Err(ApiError::bad_request(format!(
                "fetching the URL returned HTTP {}",
                resp.status().as_u16()
            )));
        }
        let max = cfg.max_file_bytes;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(ApiError::bad_request(format!(
                "file is over the limit of {max} bytes"
            )));
        }
        let mime = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let mut buf = Vec::new();
        while let Some(c) = resp
            .chunk()
            .await
            .map_err(|e| ApiError::bad_request(format!("download failed: {e}")))?
        {
            if (buf.len() + c.len()) as u64 > max {
                return Err(ApiError::bad_request(format!(
                    "file is over the limit of {max} bytes"
                )));
            }
            buf.extend_from_slice(&c);
        }
        return Ok((buf, mime, current.to_string()));
    }
    Err(ApiError::bad_request("too many redirects"))
}

/// Fetches a file from a URL and uploads it.
#[utoipa::path(post, path = "/upload_file_from_url", tag = "Files", request_body = UploadFileFromUrlInput,
    responses((status = 200, body = UserFile), (status = 400, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn upload_file_from_url(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<UploadFileFromUrlInput>,
) -> Result<axum::Json<UserFile>, ApiError> {
    check_model(
        &state,
        vec![json!("body"), json!("embedding_model")],
        req.embedding_model.as_deref(),
    )?;
    let opts = FileOptions {
        chunk_size: chunk_num(req.chunk_size, &["chunk_size"])?,
        chunk_overlap: chunk_num(req.chunk_overlap, &["chunk_overlap"])?,
        embedding_model: req.embedding_model.clone(),
        skip_embedding_generation: req.skip_embedding_generation.unwrap_or(false),
        generate_chunks_only: req.generate_chunks_only.unwrap_or(false),
        store_file_only: req.store_file_only.unwrap_or(false),
        set_page_as_boundary: req.set_page_as_boundary.unwrap_or(false),
        prepend_filename_to_chunks: req.prepend_filename_to_chunks.unwrap_or(false),
        max_items_per_chunk: chunk_num(req.max_items_per_chunk, &["max_items_per_chunk"])?,
        split_rows: req.split_rows.unwrap_or(false),
        generate_sparse_vectors: req.generate_sparse_vectors.unwrap_or(false),
        parse_pdf_tables_with_ocr: req.parse_pdf_tables_with_ocr.unwrap_or(false),
        media_type: req.media_type.clone(),
        ..Default::default()
    };
    let (bytes, _mime, final_url) = fetch_url(&state, &req.url).await?;
    let name = req.file_name.clone().or_else(|| {
        url::Url::parse(&final_url)
            .ok()
            .and_then(|u| u.path_segments()?.next_back().map(String::from))
            .filter(|s| !s.is_empty())
    });
    Ok(axum::Json(
        store_upload(
            &state,
            &auth,
            bytes,
            name,
            None,
            Some(req.url.clone()),
            opts,
        )
        .await?,
    ))
}

// ---------- listing ----------

async fn list_files(
    state: &AppState,
    auth: &CustomerAuth,
    req: UserFilesQuery,
) -> Result<(Vec<UserFile>, i64), ApiError> {
    let filter = req.filters.unwrap_or_default().resolve(&["filters"])?;
    let q = FileQuery {
        filter,
        page: Pagination::resolve(req.pagination.as_ref()),
        order_by: FileOrderBy::resolve(req.order_by),
        order_dir: OrderDir::resolve(req.order_dir, Dir::Asc),
    };
    let (org, cust) = (auth.org_id, auth.customer.id);
    let (rows, count) = state.db(move |s| s.query_files(org, cust, &q)).await?;
    let ttl = req.presigned_url_expiry_time_seconds.unwrap_or(3600);
    let raw = req.include_raw_file.unwrap_or(false);
    let parsed = req.include_parsed_text_file.unwrap_or(false);
    Ok((
        rows.into_iter()
            .map(|f| user_file(state, f, raw, parsed, ttl))
            .collect(),
        count,
    ))
}

/// The customer's files, filtered and paged, with the total count.
#[utoipa::path(post, path = "/user_files_v2", tag = "Files", request_body = UserFilesQuery,
    responses((status = 200, body = UserFilesV2), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn user_files_v2(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<UserFilesQuery>,
) -> Result<axum::Json<UserFilesV2>, ApiError> {
    let (results, count) = list_files(&state, &auth, req).await?;
    Ok(axum::Json(UserFilesV2 { results, count }))
}

/// Deprecated listing: a bare array.
#[utoipa::path(post, path = "/user_files", tag = "Files", request_body = UserFilesQuery,
    responses((status = 200, body = Vec<UserFile>), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn user_files(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<UserFilesQuery>,
) -> Result<axum::Json<Vec<UserFile>>, ApiError> {
    Ok(axum::Json(list_files(&state, &auth, req).await?.0))
}

async fn own_file(state: &AppState, auth: &CustomerAuth, id: i64) -> Result<FileRecord, ApiError> {
    let (org, cust) = (auth.org_id, auth.customer.id);
    state
        .db(move |s| s.get_file(org, cust, id))
        .await?
        .ok_or_else(|| ApiError::not_found("File not found"))
}

/// Re-chunks and re-embeds a file from its stored raw bytes.
#[utoipa::path(post, path = "/resync_file", tag = "Files", request_body = ResyncFileQueryInput,
    responses((status = 200, body = UserFile), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn resync_file(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<ResyncFileQueryInput>,
) -> Result<axum::Json<UserFile>, ApiError> {
    let f = own_file(&state, &auth, req.file_id).await?;
    let from_dropbox = super::dropbox_sync::is_dropbox_file(&f);
    if f.raw_sha256.is_none() && !from_dropbox {
        return Err(ApiError::bad_request(
            "this file's content was deleted (preserve_file_record) and it has no remote source: upload it again",
        ));
    }
    let mut opts = Map::new();
    if let Some(n) = chunk_num(req.chunk_size, &["chunk_size"])? {
        opts.insert("chunk_size".into(), n.into());
    }
    if let Some(n) = chunk_num(req.chunk_overlap, &["chunk_overlap"])? {
        opts.insert("chunk_overlap".into(), n.into());
    }
    if req.force_embedding_generation.unwrap_or(false) {
        opts.insert("skip_embedding_generation".into(), false.into());
        opts.insert("generate_chunks_only".into(), false.into());
        opts.insert("store_file_only".into(), false.into());
    }
    let skip = req.skip_file_processing.unwrap_or(false);
    opts.insert("skip_file_processing".into(), skip.into());
    let status = if skip {
        file_status::READY_TO_SYNC
    } else {
        file_status::QUEUED_FOR_SYNC
    };
    let (org, cust, id) = (auth.org_id, auth.customer.id, req.file_id);
    let f = if from_dropbox && !skip {
        super::dropbox_sync::resync(&state, org, cust, id, opts).await?
    } else {
        state
            .db(move |s| s.requeue_file(org, cust, id, &opts, status))
            .await?
    };
    Ok(axum::Json(user_file(&state, f, false, false, 3600)))
}

// ---------- deletion ----------

/// Deletes the files matching `filters` (refuses a filter that names nothing).
#[utoipa::path(post, path = "/delete_files_v2", tag = "Files", request_body = DeleteFilesV2QueryInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 400, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn delete_files_v2(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<DeleteFilesV2QueryInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let filter = req.filters.unwrap_or_default().resolve(&["filters"])?;
    if !filter.is_restrictive() {
        return Err(ApiError::bad_request(
            "refusing to delete every file: the filters must name something (e.g. ids, sync_statuses, tags)",
        ));
    }
    let (org, cust) = (auth.org_id, auth.customer.id);
    let preserve = req.preserve_file_record.unwrap_or(false);
    let hook = req.send_webhook.unwrap_or(false);
    state
        .db(move |s| {
            let ids = s.file_ids_matching(org, cust, &filter)?;
            s.delete_files(org, cust, &ids, preserve, hook)
        })
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}

/// Deprecated deletion by ids / statuses.
#[utoipa::path(post, path = "/delete_files", tag = "Files", request_body = DeleteFilesQueryInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 400, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn delete_files(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<DeleteFilesQueryInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    if let Some(s) = &req.sync_statuses {
        check_enum(&["sync_statuses"], s, file_status::ALL)?;
    }
    let filter = FileFilter {
        ids: req.file_ids.clone(),
        sync_statuses: req.sync_statuses.clone(),
        non_synced_only: req.delete_non_synced_only.unwrap_or(false),
        ..Default::default()
    };
    if !filter.is_restrictive() {
        return Err(ApiError::bad_request(
            "refusing to delete every file: give file_ids or sync_statuses",
        ));
    }
    let children = req.delete_child_files.unwrap_or(false);
    let (org, cust) = (auth.org_id, auth.customer.id);
    let hook = req.send_webhook.unwrap_or(false);
    state
        .db(move |s| {
            let ids = s.file_ids_matching(org, cust, &filter)?;
            if children {
                s.delete_files(org, cust, &ids, false, hook)
            } else {
                // only the named files: their children are detached and kept
                s.delete_files_keep_children(org, cust, &ids, hook)
            }
        })
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}

// ---------- tags ----------

/// Adds tags to a file.
#[utoipa::path(post, path = "/create_user_file_tags", tag = "Files", request_body = FileTagCreate,
    responses((status = 200, body = UserFile), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn create_user_file_tags(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<FileTagCreate>,
) -> Result<axum::Json<UserFile>, ApiError> {
    for (k, v) in &req.tags {
        let ok = match v {
            Value::String(_) | Value::Bool(_) => true,
            Value::Number(n) => n.is_i64(),
            Value::Array(a) => a
                .iter()
                .all(|i| i.is_string() || i.is_boolean() || i.is_i64()),
            _ => false,
        };
        if !ok {
            return Err(field_err(
                &["tags", k],
                "tag values must be strings, integers, booleans or lists of them",
                "type_error",
            ));
        }
    }
    let (org, cust) = (auth.org_id, auth.customer.id);
    let f = state
        .db(move |s| s.add_file_tags(org, cust, req.organization_user_file_id, &req.tags))
        .await?;
    Ok(axum::Json(user_file(&state, f, false, false, 3600)))
}

/// Removes tags from a file.
#[utoipa::path(post, path = "/delete_user_file_tags", tag = "Files", request_body = FileTagsRemove,
    responses((status = 200, body = UserFile), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn delete_user_file_tags(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<FileTagsRemove>,
) -> Result<axum::Json<UserFile>, ApiError> {
    let (org, cust) = (auth.org_id, auth.customer.id);
    let f = state
        .db(move |s| s.remove_file_tags(org, cust, req.organization_user_file_id, &req.tags))
        .await?;
    Ok(axum::Json(user_file(&state, f, false, false, 3600)))
}

// ---------- chunks ----------

fn chunk_out(c: carbide_store::ChunkRecord) -> EmbeddingAndChunk {
    EmbeddingAndChunk {
        user_file_id: c.file_id,
        chunk_index: Some(c.chunk_index),
        source_content: c.text,
        embedding: c.vector,
        content_metadata: Some(Value::Object(c.metadata)),
    }
}

/// Chunks (and optionally vectors) of one file.
#[utoipa::path(post, path = "/text_chunks", tag = "Embeddings", request_body = TextChunksQuery,
    responses((status = 200, body = EmbeddingsAndChunksResponse), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn text_chunks(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<TextChunksQuery>,
) -> Result<axum::Json<EmbeddingsAndChunksResponse>, ApiError> {
    let f = own_file(&state, &auth, req.filters.user_file_id).await?;
    // a Carbon name selects the vectors of the provider it maps to
    let model_id = match &req.filters.embedding_model {
        None => None,
        Some(m) => {
            check_enum(
                &["filters", "embedding_model"],
                std::slice::from_ref(m),
                EMBEDDING_GENERATORS,
            )?;
            match state.registry().get(m) {
                Ok(p) => Some(p.embedder().model_id().to_string()),
                Err(e) => return Err(ApiError::bad_request(e.to_string())),
            }
        }
    };
    let order = match req.order_by {
        Some(ChunkOrderBy::ChunkIndex) => ChunkOrder::ChunkIndex,
        Some(ChunkOrderBy::CreatedAt) => ChunkOrder::File(FileOrder::CreatedAt),
        _ => ChunkOrder::File(FileOrder::UpdatedAt),
    };
    let filter = FileFilter {
        ids: Some(vec![f.id]),
        ..Default::default()
    };
    let page = Pagination::resolve(req.pagination.as_ref());
    let dir = OrderDir::resolve(req.order_dir, Dir::Asc);
    let vectors = req.include_vectors.unwrap_or(false);
    let (org, cust) = (auth.org_id, auth.customer.id);
    let (rows, count) = state
        .db(move |s| {
            s.list_chunks(
                org,
                cust,
                &filter,
                model_id.as_deref(),
                page,
                order,
                dir,
                vectors,
            )
        })
        .await?;
    Ok(axum::Json(EmbeddingsAndChunksResponse {
        results: rows.into_iter().map(chunk_out).collect(),
        count,
    }))
}

/// Chunks of every file matching the filters.
#[utoipa::path(post, path = "/list_chunks_and_embeddings", tag = "Embeddings", request_body = ListChunksQuery,
    responses((status = 200, body = EmbeddingsAndChunksResponse), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn list_chunks_and_embeddings(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<ListChunksQuery>,
) -> Result<axum::Json<EmbeddingsAndChunksResponse>, ApiError> {
    let filter = req.filters.resolve(&["filters"])?;
    let page = Pagination::resolve(req.pagination.as_ref());
    let order = ChunkOrder::File(FileOrderBy::resolve(req.order_by));
    let dir = OrderDir::resolve(req.order_dir, Dir::Asc);
    let vectors = req.include_vectors.unwrap_or(false);
    let (org, cust) = (auth.org_id, auth.customer.id);
    let (rows, count) = state
        .db(move |s| s.list_chunks(org, cust, &filter, None, page, order, dir, vectors))
        .await?;
    Ok(axum::Json(EmbeddingsAndChunksResponse {
        results: rows.into_iter().map(chunk_out).collect(),
        count,
    }))
}

// ---------- downloads ----------

/// A signed link to the file's parsed text.
#[utoipa::path(get, path = "/parsed_file/{file_id}", tag = "Files",
    params(("file_id" = i64, Path)),
    responses((status = 200, body = PresignedUrlResponse), (status = 404, body = ErrorDetail)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn parsed_file(
    State(state): State<AppState>,
    auth: CustomerAuth,
    Path(file_id): Path<i64>,
) -> Result<axum::Json<PresignedUrlResponse>, ApiError> {
    let f = own_file(&state, &auth, file_id).await?;
    if f.parsed_sha256.is_none() {
        return Err(ApiError::bad_request(format!(
            "the file has no parsed text yet (status {})",
            f.sync_status
        )));
    }
    Ok(axum::Json(PresignedUrlResponse {
        presigned_url: signed_url(&state, "parsed", f.id, 3600),
    }))
}

/// A signed link to the file's raw bytes.
#[utoipa::path(get, path = "/raw_file/{file_id}", tag = "Files",
    params(("file_id" = i64, Path)),
    responses((status = 200, body = PresignedUrlResponse), (status = 404, body = ErrorDetail)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn raw_file(
    State(state): State<AppState>,
    auth: CustomerAuth,
    Path(file_id): Path<i64>,
) -> Result<axum::Json<PresignedUrlResponse>, ApiError> {
    let f = own_file(&state, &auth, file_id).await?;
    if f.raw_sha256.is_none() {
        return Err(ApiError::bad_request("the file's content is not stored"));
    }
    Ok(axum::Json(PresignedUrlResponse {
        presigned_url: signed_url(&state, "raw", f.id, 3600),
    }))
}

async fn serve_signed(
    state: &AppState,
    kind: &str,
    id: i64,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let q = parse_query(query.as_deref());
    let expires: i64 = q
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ApiError::Status(StatusCode::FORBIDDEN, "missing or invalid signature".into())
        })?;
    let sig = q.get("sig").and_then(Value::as_str).unwrap_or("");
    let want = sign(state, kind, id, expires);
    let ok =
        !want.is_empty() && subtle_eq(want.as_bytes(), sig.as_bytes()) && expires >= now_unix();
    if !ok {
        return Err(ApiError::Status(
            StatusCode::FORBIDDEN,
            "invalid or expired link".into(),
        ));
    }
    let f = state
        .db(move |s| s.file_by_id(id))
        .await?
        .ok_or_else(|| ApiError::not_found("File not found"))?;
    let sha = match kind {
        "raw" => f.raw_sha256.clone(),
        _ => f.parsed_sha256.clone(),
    }
    .ok_or_else(|| ApiError::not_found("File content not found"))?;
    let bytes = state.db(move |s| s.read_blob(&sha)).await?;
    let ctype = if kind == "raw" {
        f.mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into())
    } else {
        "text/plain; charset=utf-8".into()
    };
    let name = f.name.clone().unwrap_or_else(|| f.id.to_string());
    let disp = if kind == "raw" {
        name
    } else {
        format!("{name}.txt")
    };
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ctype) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let safe: String = disp
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Raw bytes behind a signed link (no other authentication).
#[utoipa::path(get, path = "/files/raw/{file_id}", tag = "Files",
    params(("file_id" = i64, Path)),
    responses((status = 200, description = "the file's bytes"), (status = 403, body = ErrorDetail)))]
pub(crate) async fn download_raw(
    State(state): State<AppState>,
    Path(file_id): Path<i64>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    serve_signed(&state, "raw", file_id, q).await
}

/// Parsed text behind a signed link (no other authentication).
#[utoipa::path(get, path = "/files/parsed/{file_id}", tag = "Files",
    params(("file_id" = i64, Path)),
    responses((status = 200, description = "the file's parsed text"), (status = 403, body = ErrorDetail)))]
pub(crate) async fn download_parsed(
    State(state): State<AppState>,
    Path(file_id): Path<i64>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    serve_signed(&state, "parsed", file_id, q).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!ip_is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(ip_is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// The test server's own address counts as public; everything else follows the real rule.
    fn loopback_v4_is_public(ip: IpAddr) -> bool {
        ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip_is_public(ip)
    }

    async fn redirecting_server() -> SocketAddr {
        use axum::response::Redirect;
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let port = addr.port();
        let app =
            axum::Router::new()
                .route("/doc.txt", get(|| async { "hello from the url" }))
                .route("/to-doc", get(|| async { Redirect::temporary("/doc.txt") }))
                .route(
                    "/to-v6",
                    get(move || async move {
                        Redirect::temporary(&format!("http://[::1]:{port}/doc.txt"))
                    }),
                )
                .route(
                    "/to-meta",
                    get(|| async {
                        Redirect::temporary("http://169.254.169.254/latest/meta-data")
                    }),
                )
                .route(
                    "/to-ten",
                    get(|| async { Redirect::temporary("http://10.0.0.7/x") }),
                )
                .route("/loop", get(|| async { Redirect::temporary("/loop") }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    #[tokio::test]
    async fn every_redirect_hop_is_checked() {
        let addr = redirecting_server().await;
        let cfg = FilesConfig::default();
        let url = |p: &str| format!("http://{addr}{p}");
        // allowed first hop, allowed redirect
        let (bytes, _, final_url) = fetch_url_with(&cfg, &url("/to-doc"), loopback_v4_is_public)
            .await
            .unwrap();
        assert_eq!(bytes, b"hello from the url");
        assert_eq!(final_url, url("/doc.txt"));
        // redirects to private / link-local / loopback addresses are refused before connecting
        for p in ["/to-v6", "/to-meta", "/to-ten"] {
            let e = fetch_url_with(&cfg, &url(p), loopback_v4_is_public)
                .await
                .unwrap_err();
            let msg = format!("{e:?}");
            assert!(msg.contains("refusing to fetch"), "{p}: {msg}");
        }
        let e = fetch_url_with(&cfg, &url("/loop"), loopback_v4_is_public)
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("too many redirects"));
        // the real policy refuses the loopback server itself
        let e = fetch_url_with(&cfg, &url("/doc.txt"), ip_is_public)
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("refusing to fetch"));
        // and the operator switch lets it through
        let open = FilesConfig {
            allow_private_urls: true,
            ..FilesConfig::default()
        };
        let (bytes, ..) = fetch_url_with(&open, &url("/doc.txt"), ip_is_public)
            .await
            .unwrap();
        assert_eq!(bytes, b"hello from the url");
    }
}
