//! Files (Carbon `UserFile`s) and their chunks: creation with the first processing job and the
//! FILES_CREATED webhook in one transaction, Carbon's `user_files_v2` filters (tags, tags_v2,
//! descendants, …), deletion, tags, the worker's status transitions, and the one transaction
//! that replaces a file's chunks, keyword rows and vectors while bumping the customer's index
//! generation and appending to `chunk_log`.

use carbide_core::enums::{file_status, object_types, webhook_types};
use carbide_core::search_text::index_text;
use carbide_core::timefmt::now_unix;
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};
use serde_json::{Map, Value};

use crate::jobs::{JOB_PROCESS_FILE, NewJob, enqueue_job_tx};
use crate::outbox::enqueue_tx;
use crate::users::placeholders;
use crate::{Dir, Page, Store, StoreError, parse_json};

/// One file record.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub id: i64,
    pub organization_id: i64,
    pub organization_user_id: i64,
    /// The customer's own id (joined from `organization_users`).
    pub organization_supplied_user_id: String,
    pub data_source_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub source: String,
    pub external_file_id: String,
    pub external_url: Option<String>,
    pub name: Option<String>,
    pub is_folder: bool,
    pub sync_status: String,
    pub sync_error_message: Option<String>,
    /// Unix seconds of the last successful processing.
    pub last_sync: Option<i64>,
    pub file_format: Option<String>,
    pub file_size: Option<i64>,
    pub mime_type: Option<String>,
    pub num_characters: Option<i64>,
    pub num_tokens: Option<i64>,
    pub num_embeddings: Option<i64>,
    pub raw_sha256: Option<String>,
    pub parsed_sha256: Option<String>,
    pub tags: Map<String, Value>,
    pub file_metadata: Value,
    /// Processing options (chunk_size, embedding_model, flags…) as given at upload/resync.
    pub options: Map<String, Value>,
    pub request_id: Option<String>,
    pub upload_id: Option<String>,
    pub embedding_model: Option<String>,
    pub rev: Option<String>,
    pub content_hash: Option<String>,
    pub path_lower: Option<String>,
    pub source_created_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const FILE_COLS: &str = "f.id, f.organization_id, f.organization_user_id, u.organization_supplied_user_id, \
    f.data_source_id, f.parent_id, f.source, f.external_file_id, f.external_url, f.name, f.is_folder, \
    f.sync_status, f.sync_error_message, f.last_sync, f.file_format, f.file_size, f.mime_type, \
    f.num_characters, f.num_tokens, f.num_embeddings, f.raw_sha256, f.parsed_sha256, f.tags, \
    f.file_metadata, f.options, f.request_id, f.upload_id, f.embedding_model, f.rev, f.content_hash, \
    f.path_lower, f.source_created_at, f.created_at, f.updated_at";

const FROM_FILES: &str = "files f JOIN organization_users u ON u.id = f.organization_user_id";

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn file_from_row(r: &Row<'_>) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        organization_user_id: r.get(2)?,
        organization_supplied_user_id: r.get(3)?,
        data_source_id: r.get(4)?,
        parent_id: r.get(5)?,
        source: r.get(6)?,
        external_file_id: r.get(7)?,
        external_url: r.get(8)?,
        name: r.get(9)?,
        is_folder: r.get(10)?,
        sync_status: r.get(11)?,
        sync_error_message: r.get(12)?,
        last_sync: r.get(13)?,
        file_format: r.get(14)?,
        file_size: r.get(15)?,
        mime_type: r.get(16)?,
        num_characters: r.get(17)?,
        num_tokens: r.get(18)?,
        num_embeddings: r.get(19)?,
        raw_sha256: r.get(20)?,
        parsed_sha256: r.get(21)?,
        tags: obj(parse_json(&r.get::<_, String>(22)?)),
        file_metadata: parse_json(&r.get::<_, String>(23)?),
        options: obj(parse_json(&r.get::<_, String>(24)?)),
        request_id: r.get(25)?,
        upload_id: r.get(26)?,
        embedding_model: r.get(27)?,
        rev: r.get(28)?,
        content_hash: r.get(29)?,
        path_lower: r.get(30)?,
        source_created_at: r.get(31)?,
        created_at: r.get(32)?,
        updated_at: r.get(33)?,
    })
}

/// A file to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewFile {
    pub organization_id: i64,
    pub organization_user_id: i64,
    pub data_source_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub source: String,
    /// Empty = use the new row's id (uploads have no remote id).
    pub external_file_id: String,
    pub external_url: Option<String>,
    pub name: Option<String>,
    pub is_folder: bool,
    /// Initial status (`QUEUED_FOR_SYNC`, or `READY_TO_SYNC` for record-only files).
    pub sync_status: String,
    pub file_format: Option<String>,
    pub file_size: Option<i64>,
    pub mime_type: Option<String>,
    pub raw_sha256: Option<String>,
    pub tags: Map<String, Value>,
    pub file_metadata: Map<String, Value>,
    pub options: Map<String, Value>,
    pub request_id: Option<String>,
    pub upload_id: Option<String>,
    pub embedding_model: Option<String>,
}

/// A scalar tag value (`tags` / `tags_v2` filters and stored tags).
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl TagValue {
    fn from_json(v: &Value) -> Option<TagValue> {
        match v {
            Value::String(s) => Some(TagValue::Str(s.clone())),
            Value::Bool(b) => Some(TagValue::Bool(*b)),
            Value::Number(n) => n.as_i64().map(TagValue::Int),
            _ => None,
        }
    }
    fn sql(&self) -> Sql {
        match self {
            TagValue::Str(s) => Sql::Text(s.clone()),
            TagValue::Int(i) => Sql::Integer(*i),
            TagValue::Bool(b) => Sql::Integer(i64::from(*b)),
        }
    }
}

/// Carbon's tag filter: `tags` (flat: every key must match) and `tags_v2` (nested AND/OR with
/// `negate`, at most three levels deep).
#[derive(Debug, Clone, PartialEq)]
pub enum TagFilter {
    And(Vec<TagFilter>),
    Or(Vec<TagFilter>),
    /// The file's tag `key` equals one of `values` (or, for a list tag, contains one).
    Leaf {
        key: String,
        values: Vec<TagValue>,
        negate: bool,
    },
}

/// Deepest nesting of AND/OR blocks accepted in `tags_v2`.
pub const MAX_TAG_FILTER_DEPTH: usize = 3;

fn leaf_values(v: &Value) -> Result<Vec<TagValue>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| TagValue::from_json(i).ok_or_else(|| format!("invalid tag value {i}")))
            .collect(),
        other => Ok(vec![
            TagValue::from_json(other).ok_or_else(|| format!("invalid tag value {other}"))?,
        ]),
    }
}

impl TagFilter {
    /// The deprecated flat `tags` filter: every key must match.
    pub fn from_flat(tags: &Map<String, Value>) -> Result<TagFilter, String> {
        let mut out = Vec::new();
        for (k, v) in tags {
            out.push(TagFilter::Leaf {
                key: k.clone(),
                values: leaf_values(v)?,
                negate: false,
            });
        }
        Ok(TagFilter::And(out))
    }

    /// Parses a `tags_v2` object; the error is a user-facing message.
    pub fn parse_v2(v: &Value) -> Result<TagFilter, String> {
        Self::parse_block(v, 1)
    }

    fn parse_block(v: &Value, depth: usize) -> Result<TagFilter, String> {
        if depth > MAX_TAG_FILTER_DEPTH {
            return Err(format!(
                "tags_v2 is nested more than {MAX_TAG_FILTER_DEPTH} levels deep"
            ));
        }
        let Value::Object(m) = v else {
            return Err("tags_v2 blocks must be objects".into());
        };
        if m.len() != 1 {
            return Err("a tags_v2 block must have exactly one key, \"AND\" or \"OR\"".into());
        }
        let (op, items) = m.iter().next().ok_or("empty tags_v2 block")?;
        let Value::Array(items) = items else {
            return Err(format!("tags_v2 \"{op}\" must be a list"));
        };
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            let is_leaf = it.get("key").is_some();
            if is_leaf {
                let key = it
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or("tags_v2 \"key\" must be a string")?;
                let value = it.get("value").ok_or("tags_v2 filter without \"value\"")?;
                let negate = match it.get("negate") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err("tags_v2 \"negate\" must be a boolean".into()),
                };
                out.push(TagFilter::Leaf {
                    key: key.to_string(),
                    values: leaf_values(value)?,
                    negate,
                });
            } else {
                out.push(Self::parse_block(it, depth + 1)?);
            }
        }
        match op.to_ascii_uppercase().as_str() {
            "AND" => Ok(TagFilter::And(out)),
            "OR" => Ok(TagFilter::Or(out)),
            _ => Err(format!(
                "unknown tags_v2 operator {op:?} (expected \"AND\" or \"OR\")"
            )),
        }
    }

    /// SQL condition over the JSON tags column `tags_col` (`f.tags`, `d.tags`), its parameters
    /// appended to `args`.
    pub(crate) fn sql_on(&self, tags_col: &str, args: &mut Vec<Sql>) -> String {
        match self {
            TagFilter::And(v) if v.is_empty() => "1".into(),
            TagFilter::Or(v) if v.is_empty() => "0".into(),
            TagFilter::And(v) => format!(
                "({})",
                v.iter()
                    .map(|f| f.sql_on(tags_col, args))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            TagFilter::Or(v) => format!(
                "({})",
                v.iter()
                    .map(|f| f.sql_on(tags_col, args))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            TagFilter::Leaf {
                key,
                values,
                negate,
            } => {
                args.push(Sql::Text(key.clone()));
                let mut alts = Vec::new();
                for v in values {
                    args.push(v.sql());
                    args.push(v.sql());
                    alts.push(
                        "(t.type != 'array' AND t.value = ?) OR (t.type = 'array' AND EXISTS \
                         (SELECT 1 FROM json_each(t.value) e WHERE e.value = ?))",
                    );
                }
                let inner = if alts.is_empty() {
                    "0".to_string()
                } else {
                    alts.join(" OR ")
                };
                let cond = format!(
                    "EXISTS (SELECT 1 FROM json_each({tags_col}) t WHERE t.key = ? AND ({inner}))"
                );
                if *negate { format!("NOT {cond}") } else { cond }
            }
        }
    }
}

/// `OrganizationUserFilesToSyncFilters` with defaults applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileFilter {
    pub sources: Option<Vec<String>>,
    /// Substring of the name (case-insensitive).
    pub name: Option<String>,
    pub tags: Option<TagFilter>,
    pub ids: Option<Vec<i64>>,
    pub external_file_ids: Option<Vec<String>>,
    pub sync_statuses: Option<Vec<String>>,
    pub parent_file_ids: Option<Vec<i64>>,
    /// With `parent_file_ids`: every descendant, not only direct children.
    pub include_all_children: bool,
    pub root_files_only: bool,
    /// Only files never processed successfully.
    pub non_synced_only: bool,
    pub data_source_ids: Option<Vec<i64>>,
    pub embedding_generators: Option<Vec<String>>,
    pub request_ids: Option<Vec<String>>,
    pub upload_ids: Option<Vec<String>>,
    /// Substring of the error message; `""` = files without an error.
    pub sync_error_message: Option<String>,
    /// `Some(false)` hides folders.
    pub include_containers: Option<bool>,
    pub external_urls: Option<Vec<String>>,
}

impl FileFilter {
    /// True when the filter names something (used to refuse accidental delete-everything).
    pub fn is_restrictive(&self) -> bool {
        self.sources.is_some()
            || self.name.is_some()
            || self.tags.is_some()
            || self.ids.is_some()
            || self.external_file_ids.is_some()
            || self.sync_statuses.is_some()
            || self.parent_file_ids.is_some()
            || self.root_files_only
            || self.non_synced_only
            || self.data_source_ids.is_some()
            || self.embedding_generators.is_some()
            || self.request_ids.is_some()
            || self.upload_ids.is_some()
            || self.sync_error_message.is_some()
            || self.include_containers == Some(false)
            || self.external_urls.is_some()
    }

    fn sql(&self, org_id: i64, customer_pk: i64) -> (String, Vec<Sql>) {
        let mut c = vec![
            "f.organization_id = ?".to_string(),
            "f.organization_user_id = ?".to_string(),
        ];
        let mut a: Vec<Sql> = vec![org_id.into(), customer_pk.into()];
        fn list<T: Clone + Into<Sql>>(
            c: &mut Vec<String>,
            a: &mut Vec<Sql>,
            col: &str,
            v: &Option<Vec<T>>,
        ) {
            if let Some(v) = v {
                c.push(format!("{col} IN ({})", placeholders(v.len())));
                a.extend(v.iter().cloned().map(Into::into));
            }
        }
        list(&mut c, &mut a, "f.source", &self.sources);
        list(&mut c, &mut a, "f.id", &self.ids);
        list(
            &mut c,
            &mut a,
            "f.external_file_id",
            &self.external_file_ids,
        );
        list(&mut c, &mut a, "f.sync_status", &self.sync_statuses);
        list(&mut c, &mut a, "f.data_source_id", &self.data_source_ids);
        list(
            &mut c,
            &mut a,
            "f.embedding_model",
            &self.embedding_generators,
        );
        list(&mut c, &mut a, "f.request_id", &self.request_ids);
        list(&mut c, &mut a, "f.upload_id", &self.upload_ids);
        list(&mut c, &mut a, "f.external_url", &self.external_urls);
        if let Some(n) = &self.name {
            c.push("instr(lower(coalesce(f.name, '')), lower(?)) > 0".into());
            a.push(n.clone().into());
        }
        if let Some(p) = &self.parent_file_ids {
            if self.include_all_children {
                c.push(format!(
                    "f.id IN (WITH RECURSIVE d(id) AS (SELECT id FROM files WHERE parent_id IN ({}) \
                     UNION SELECT files.id FROM files JOIN d ON files.parent_id = d.id) SELECT id FROM d)",
                    placeholders(p.len())
                ));
            } else {
                c.push(format!("f.parent_id IN ({})", placeholders(p.len())));
            }
            a.extend(p.iter().map(|i| Sql::from(*i)));
        }
        if self.root_files_only {
            c.push("f.parent_id IS NULL".into());
        }
        if self.non_synced_only {
            c.push("f.last_sync IS NULL".into());
        }
        match self.sync_error_message.as_deref() {
            None => {}
            Some("") => c.push("coalesce(f.sync_error_message, '') = ''".into()),
            Some(s) => {
                c.push("instr(lower(coalesce(f.sync_error_message, '')), lower(?)) > 0".into());
                a.push(s.to_string().into());
            }
        }
        if self.include_containers == Some(false) {
            c.push("f.is_folder = 0".into());
        }
        if let Some(t) = &self.tags {
            let s = t.sql_on("f.tags", &mut a);
            c.push(s);
        }
        (c.join(" AND "), a)
    }
}

/// Order column of file listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileOrder {
    CreatedAt,
    #[default]
    UpdatedAt,
    Name,
    LastSync,
    FileSize,
    Id,
}

impl FileOrder {
    fn col(self) -> &'static str {
        match self {
            FileOrder::CreatedAt => "f.created_at",
            FileOrder::UpdatedAt => "f.updated_at",
            FileOrder::Name => "f.name",
            FileOrder::LastSync => "f.last_sync",
            FileOrder::FileSize => "f.file_size",
            FileOrder::Id => "f.id",
        }
    }
}

/// A file listing query.
#[derive(Debug, Clone, PartialEq)]
pub struct FileQuery {
    pub filter: FileFilter,
    pub page: Page,
    pub order_by: FileOrder,
    pub order_dir: Dir,
}

/// One chunk to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    pub text: String,
    /// page_start/page_end/slide/sheet/heading/token_count…
    pub metadata: Map<String, Value>,
    /// Whole-chunk vector (L2-normalised).
    pub vector: Option<Vec<f32>>,
    /// Per-window vectors, only when the chunk is longer than the model window.
    pub windows: Vec<Vec<f32>>,
}

/// The result of processing a file, written in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessedFile {
    pub parsed_sha256: Option<String>,
    pub file_format: Option<String>,
    pub num_characters: Option<i64>,
    pub num_tokens: Option<i64>,
    /// Carbon model name requested for the file (`files.embedding_model`).
    pub embedding_model: Option<String>,
    /// The provider's `model_id` the vectors were made with (`chunks.embedding_model`);
    /// `None` = no vectors.
    pub vector_model_id: Option<String>,
    pub chunks: Vec<NewChunk>,
}

/// A stored chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    pub id: i64,
    pub file_id: i64,
    pub chunk_index: i64,
    pub text: String,
    pub metadata: Map<String, Value>,
    pub embedding_model: Option<String>,
    pub vector: Option<Vec<f32>>,
}

/// Chunk listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOrder {
    /// By the file's column, then chunk index.
    File(FileOrder),
    /// By chunk index (within file id).
    ChunkIndex,
}

/// Encodes a vector as little-endian f32 bytes.
pub fn vector_to_blob(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Decodes little-endian f32 bytes (a trailing partial value is ignored).
pub fn blob_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(crate) fn bump_generation_tx(tx: &Transaction<'_>, customer_pk: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO index_generations (organization_user_id, generation) VALUES (?1, 1) \
         ON CONFLICT (organization_user_id) DO UPDATE SET generation = generation + 1",
        [customer_pk],
    )?;
    Ok(())
}

fn file_tx(tx: &Transaction<'_>, file_id: i64) -> Result<Option<FileRecord>, StoreError> {
    Ok(tx
        .query_row(
            &format!("SELECT {FILE_COLS} FROM {FROM_FILES} WHERE f.id = ?1"),
            [file_id],
            file_from_row,
        )
        .optional()?)
}

fn file_event_tx(
    tx: &Transaction<'_>,
    store: &Store,
    f: &FileRecord,
    webhook_type: &str,
    extra: Option<Map<String, Value>>,
) -> Result<(), StoreError> {
    enqueue_tx(
        tx,
        store,
        f.organization_id,
        Some(&f.organization_supplied_user_id),
        webhook_type,
        object_types::FILE,
        &Value::String(f.id.to_string()),
        extra.as_ref(),
    )?;
    Ok(())
}

/// After `f` settled: fires ALL_FILES_PROCESSED when no file of its request is still in flight,
/// and stamps its data source's `files_synced_at` when none of the source's files is.
fn all_processed_tx(tx: &Transaction<'_>, store: &Store, f: &FileRecord) -> Result<(), StoreError> {
    if let Some(req) = &f.request_id {
        request_settled_tx(
            tx,
            store,
            f.organization_id,
            f.organization_user_id,
            &f.organization_supplied_user_id,
            req,
        )?;
    }
    if let Some(ds) = f.data_source_id {
        let open: bool = tx.query_row(
            concat!(
                "SELECT EXISTS (SELECT 1 FROM files WHERE data_source_id = ?1 AND sync_status IN ",
                crate::open_statuses_sql!(),
                ")"
            ),
            [ds],
            |r| r.get(0),
        )?;
        if !open {
            tx.execute(
                "UPDATE data_sources SET files_synced_at = ?2 WHERE id = ?1",
                params![ds, now_unix()],
            )?;
        }
    }
    Ok(())
}

/// Fires ALL_FILES_PROCESSED for `request_id` when none of its files is still in flight.
pub(crate) fn request_settled_tx(
    tx: &Transaction<'_>,
    store: &Store,
    organization_id: i64,
    customer_pk: i64,
    customer_id: &str,
    request_id: &str,
) -> Result<(), StoreError> {
    let open: bool = tx.query_row(
        concat!(
            "SELECT EXISTS (SELECT 1 FROM files WHERE organization_user_id = ?1 \
             AND request_id = ?2 AND sync_status IN ",
            crate::open_statuses_sql!(),
            ")"
        ),
        params![customer_pk, request_id],
        |r| r.get(0),
    )?;
    if !open {
        enqueue_tx(
            tx,
            store,
            organization_id,
            Some(customer_id),
            webhook_types::ALL_FILES_PROCESSED,
            object_types::UPLOAD_REQUEST_ID,
            &Value::String(request_id.to_string()),
            None,
        )?;
    }
    Ok(())
}

fn delete_chunks_tx(
    tx: &Transaction<'_>,
    file_id: i64,
    customer_pk: i64,
) -> Result<usize, StoreError> {
    // the AFTER DELETE trigger removes the FTS rows and logs the deletions
    let n = tx.execute("DELETE FROM chunks WHERE file_id = ?1", [file_id])?;
    if n > 0 {
        bump_generation_tx(tx, customer_pk)?;
    }
    Ok(n)
}

fn process_job(file_id: i64, customer_pk: i64) -> NewJob {
    NewJob {
        kind: JOB_PROCESS_FILE.into(),
        organization_user_id: Some(customer_pk),
        file_id: Some(file_id),
        payload: Value::Object(Map::new()),
        run_at: now_unix(),
        max_attempts: 3,
        dedupe_key: Some(format!("file:{file_id}")),
    }
}

impl Store {
    /// Creates a file; when its status is `QUEUED_FOR_SYNC` also queues its processing job.
    /// FILES_CREATED is enqueued in the same transaction.
    pub fn create_file(&self, nf: &NewFile) -> Result<FileRecord, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let id: i64 = tx.query_row(
                "INSERT INTO files (organization_id, organization_user_id, data_source_id, parent_id, source, \
                 external_file_id, external_url, name, is_folder, sync_status, file_format, file_size, mime_type, \
                 raw_sha256, tags, file_metadata, options, request_id, upload_id, embedding_model, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?21) \
                 RETURNING id",
                params![
                    nf.organization_id,
                    nf.organization_user_id,
                    nf.data_source_id,
                    nf.parent_id,
                    nf.source,
                    nf.external_file_id,
                    nf.external_url,
                    nf.name,
                    nf.is_folder,
                    nf.sync_status,
                    nf.file_format,
                    nf.file_size,
                    nf.mime_type,
                    nf.raw_sha256,
                    Value::Object(nf.tags.clone()).to_string(),
                    Value::Object(nf.file_metadata.clone()).to_string(),
                    Value::Object(nf.options.clone()).to_string(),
                    nf.request_id,
                    nf.upload_id,
                    nf.embedding_model,
                    now
                ],
                |r| r.get(0),
            )?;
            if nf.external_file_id.is_empty() {
                tx.execute(
                    "UPDATE files SET external_file_id = ?2 WHERE id = ?1",
                    params![id, id.to_string()],
                )?;
            }
            if nf.sync_status == file_status::QUEUED_FOR_SYNC {
                enqueue_job_tx(tx, &process_job(id, nf.organization_user_id))?;
            }
            let f = file_tx(tx, id)?.ok_or(StoreError::NotFound("file"))?;
            let mut extra = Map::new();
            if let Some(r) = &f.request_id {
                extra.insert("request_id".into(), Value::String(r.clone()));
            }
            enqueue_tx(
                tx,
                self,
                f.organization_id,
                Some(&f.organization_supplied_user_id),
                webhook_types::FILES_CREATED,
                object_types::FILE_LIST,
                &Value::Array(vec![Value::String(id.to_string())]),
                if extra.is_empty() { None } else { Some(&extra) },
            )?;
            if file_status::TERMINAL.contains(&f.sync_status.as_str()) {
                all_processed_tx(tx, self, &f)?;
            }
            Ok(f)
        })
    }

    /// One file of the customer.
    pub fn get_file(
        &self,
        org_id: i64,
        customer_pk: i64,
        file_id: i64,
    ) -> Result<Option<FileRecord>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {FILE_COLS} FROM {FROM_FILES} \
                     WHERE f.id = ?1 AND f.organization_id = ?2 AND f.organization_user_id = ?3"
                ),
                params![file_id, org_id, customer_pk],
                file_from_row,
            )
            .optional()?)
        })
    }

    /// A file by id without tenancy filtering: for background workers and signed-URL
    /// downloads only (whose authority comes from a job row or a verified signature).
    pub fn file_by_id(&self, file_id: i64) -> Result<Option<FileRecord>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {FILE_COLS} FROM {FROM_FILES} WHERE f.id = ?1"),
                [file_id],
                file_from_row,
            )
            .optional()?)
        })
    }

    /// `/user_files_v2`: a page of the customer's files and the total number of matches.
    pub fn query_files(
        &self,
        org_id: i64,
        customer_pk: i64,
        q: &FileQuery,
    ) -> Result<(Vec<FileRecord>, i64), StoreError> {
        let (conds, args) = q.filter.sql(org_id, customer_pk);
        let mut page_args = args.clone();
        let mut page_conds = conds.clone();
        if q.page.starting_id > 0 {
            page_conds.push_str(" AND f.id > ?");
            page_args.push(q.page.starting_id.into());
        }
        page_args.push(q.page.limit().into());
        page_args.push(q.page.offset().into());
        let col = q.order_by.col();
        let dir = q.order_dir.sql();
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {FILE_COLS} FROM {FROM_FILES} WHERE {page_conds} \
                 ORDER BY {col} {dir}, f.id {dir} LIMIT ? OFFSET ?"
            ))?;
            let rows = st
                .query_map(params_from_iter(page_args), file_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let count = c.query_row(
                &format!("SELECT COUNT(*) FROM files f WHERE {conds}"),
                params_from_iter(args),
                |r| r.get(0),
            )?;
            Ok((rows, count))
        })
    }

    /// Ids of every file of the customer matching `filter`.
    pub fn file_ids_matching(
        &self,
        org_id: i64,
        customer_pk: i64,
        filter: &FileFilter,
    ) -> Result<Vec<i64>, StoreError> {
        let (conds, args) = filter.sql(org_id, customer_pk);
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT f.id FROM files f WHERE {conds} ORDER BY f.id"
            ))?;
            let ids = st
                .query_map(params_from_iter(args), |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            Ok(ids)
        })
    }

    /// Deletes the customer's files `ids` (children and chunks cascade), or with
    /// `preserve_record` drops only their content (chunks, vectors, stored text) and keeps the
    /// record. FILE_DELETED per file when `send_webhook`. Returns the number of files affected.
    pub fn delete_files(
        &self,
        org_id: i64,
        customer_pk: i64,
        ids: &[i64],
        preserve_record: bool,
        send_webhook: bool,
    ) -> Result<usize, StoreError> {
        self.delete_files_impl(
            org_id,
            customer_pk,
            ids,
            preserve_record,
            true,
            send_webhook,
        )
    }

    /// Deletes the customer's files `ids` but not their children: each child is detached
    /// (`parent_id = NULL`) in the same transaction before its parent goes, so the
    /// `parent_id` cascade keeps it. A child that is itself in `ids` is deleted.
    pub fn delete_files_keep_children(
        &self,
        org_id: i64,
        customer_pk: i64,
        ids: &[i64],
        send_webhook: bool,
    ) -> Result<usize, StoreError> {
        self.delete_files_impl(org_id, customer_pk, ids, false, false, send_webhook)
    }

    fn delete_files_impl(
        &self,
        org_id: i64,
        customer_pk: i64,
        ids: &[i64],
        preserve_record: bool,
        with_children: bool,
        send_webhook: bool,
    ) -> Result<usize, StoreError> {
        let now = now_unix();
        let (n, shas) = self.write(|tx| {
            let mut n = 0;
            let mut shas = Vec::new();
            let mut removed_chunks = false;
            for &id in ids {
                let Some(f) = file_tx(tx, id)? else { continue };
                if f.organization_id != org_id || f.organization_user_id != customer_pk {
                    continue;
                }
                shas.extend(f.raw_sha256.clone());
                shas.extend(f.parsed_sha256.clone());
                if preserve_record {
                    removed_chunks |= tx.execute("DELETE FROM chunks WHERE file_id = ?1", [id])? > 0;
                    tx.execute("DELETE FROM jobs WHERE file_id = ?1", [id])?;
                    tx.execute(
                        "UPDATE files SET raw_sha256 = NULL, parsed_sha256 = NULL, num_embeddings = 0, \
                         updated_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                } else if !with_children {
                    tx.execute(
                        "UPDATE files SET parent_id = NULL, updated_at = ?2 WHERE parent_id = ?1",
                        params![id, now],
                    )?;
                    removed_chunks |= tx.execute("DELETE FROM chunks WHERE file_id = ?1", [id])? > 0;
                    tx.execute("DELETE FROM files WHERE id = ?1", [id])?;
                } else {
                    // descendants' blobs too
                    let mut st = tx.prepare(
                        "WITH RECURSIVE d(id) AS (SELECT ?1 UNION SELECT files.id FROM files JOIN d ON files.parent_id = d.id) \
                         SELECT raw_sha256, parsed_sha256 FROM files WHERE id IN (SELECT id FROM d)",
                    )?;
                    let more = st
                        .query_map([id], |r| {
                            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    for (a, b) in more {
                        shas.extend(a);
                        shas.extend(b);
                    }
                    removed_chunks |= tx.query_row(
                        "SELECT EXISTS(SELECT 1 FROM chunks WHERE file_id IN \
                         (WITH RECURSIVE d(id) AS (SELECT ?1 UNION SELECT files.id FROM files JOIN d ON files.parent_id = d.id) SELECT id FROM d))",
                        [id],
                        |r| r.get::<_, bool>(0),
                    )?;
                    tx.execute("DELETE FROM files WHERE id = ?1", [id])?;
                }
                n += 1;
                if send_webhook {
                    file_event_tx(tx, self, &f, webhook_types::FILE_DELETED, None)?;
                }
            }
            if removed_chunks {
                bump_generation_tx(tx, customer_pk)?;
            }
            Ok((n, shas))
        })?;
        self.collect_blobs(&shas);
        Ok(n)
    }

    /// Merges `tags` into the file's tags.
    pub fn add_file_tags(
        &self,
        org_id: i64,
        customer_pk: i64,
        file_id: i64,
        tags: &Map<String, Value>,
    ) -> Result<FileRecord, StoreError> {
        self.edit_tags(org_id, customer_pk, file_id, |m| {
            for (k, v) in tags {
                m.insert(k.clone(), v.clone());
            }
        })
    }

    /// Removes the tag keys `keys` from the file.
    pub fn remove_file_tags(
        &self,
        org_id: i64,
        customer_pk: i64,
        file_id: i64,
        keys: &[String],
    ) -> Result<FileRecord, StoreError> {
        self.edit_tags(org_id, customer_pk, file_id, |m| {
            for k in keys {
                m.remove(k);
            }
        })
    }

    fn edit_tags(
        &self,
        org_id: i64,
        customer_pk: i64,
        file_id: i64,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<FileRecord, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let f = file_tx(tx, file_id)?
                .filter(|f| f.organization_id == org_id && f.organization_user_id == customer_pk)
                .ok_or(StoreError::NotFound("file"))?;
            let mut tags = f.tags;
            edit(&mut tags);
            tx.execute(
                "UPDATE files SET tags = ?2, updated_at = ?3 WHERE id = ?1",
                params![file_id, Value::Object(tags).to_string(), now],
            )?;
            file_tx(tx, file_id)?.ok_or(StoreError::NotFound("file"))
        })
    }

    /// `/resync_file`: merges `options` into the file's options, sets its status and (for
    /// `QUEUED_FOR_SYNC`) queues processing again. The current chunks stay searchable until
    /// the new ones replace them.
    pub fn requeue_file(
        &self,
        org_id: i64,
        customer_pk: i64,
        file_id: i64,
        options: &Map<String, Value>,
        status: &str,
    ) -> Result<FileRecord, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let f = file_tx(tx, file_id)?
                .filter(|f| f.organization_id == org_id && f.organization_user_id == customer_pk)
                .ok_or(StoreError::NotFound("file"))?;
            let mut opts = f.options;
            for (k, v) in options {
                opts.insert(k.clone(), v.clone());
            }
            tx.execute(
                "UPDATE files SET options = ?2, sync_status = ?3, sync_error_message = NULL, updated_at = ?4 \
                 WHERE id = ?1",
                params![file_id, Value::Object(opts).to_string(), status, now],
            )?;
            if status == file_status::QUEUED_FOR_SYNC {
                enqueue_job_tx(tx, &process_job(file_id, customer_pk))?;
            }
            file_tx(tx, file_id)?.ok_or(StoreError::NotFound("file"))
        })
    }

    /// Worker: moves the file to SYNCING and fires FILE_SYNCING. `None` if the file is gone.
    pub fn mark_file_syncing(&self, file_id: i64) -> Result<Option<FileRecord>, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE files SET sync_status = ?2, sync_error_message = NULL, updated_at = ?3 WHERE id = ?1",
                params![file_id, file_status::SYNCING, now],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let f = file_tx(tx, file_id)?.ok_or(StoreError::NotFound("file"))?;
            file_event_tx(tx, self, &f, webhook_types::FILE_SYNCING, None)?;
            Ok(Some(f))
        })
    }

    /// Worker: records a failure: SYNC_ERROR with `reason`, FILE_ERROR, and
    /// ALL_FILES_PROCESSED when it was the request's last open file.
    pub fn fail_file(&self, file_id: i64, reason: &str) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE files SET sync_status = ?2, sync_error_message = ?3, updated_at = ?4 WHERE id = ?1",
                params![file_id, file_status::SYNC_ERROR, reason, now],
            )?;
            if n == 0 {
                return Ok(());
            }
            let f = file_tx(tx, file_id)?.ok_or(StoreError::NotFound("file"))?;
            let mut extra = Map::new();
            extra.insert("sync_error_message".into(), Value::String(reason.to_string()));
            file_event_tx(tx, self, &f, webhook_types::FILE_ERROR, Some(extra))?;
            all_processed_tx(tx, self, &f)
        })
    }

    /// Worker: writes the outcome of processing in ONE transaction: old chunks out (FTS rows
    /// and `chunk_log` 'del' by trigger), new chunks, window vectors, FTS rows and 'add' log
    /// entries in, the customer's index generation bumped, the file READY with its statistics,
    /// FILE_READY and possibly ALL_FILES_PROCESSED enqueued. `false` if the file was deleted
    /// meanwhile (nothing written).
    pub fn complete_file(&self, file_id: i64, out: &ProcessedFile) -> Result<bool, StoreError> {
        let now = now_unix();
        let old = self.write(|tx| {
            let Some(f) = file_tx(tx, file_id)? else {
                return Ok(None);
            };
            let cust = f.organization_user_id;
            delete_chunks_tx(tx, file_id, cust)?;
            let mut ins = tx.prepare_cached(
                "INSERT INTO chunks (file_id, organization_id, organization_user_id, chunk_index, text, metadata, \
                 embedding_model, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            )?;
            let mut fts = tx.prepare_cached("INSERT INTO chunks_fts (rowid, body) VALUES (?1, ?2)")?;
            let mut win = tx.prepare_cached(
                "INSERT INTO chunk_vectors (chunk_id, window, vector) VALUES (?1, ?2, ?3)",
            )?;
            let mut log = tx.prepare_cached(
                "INSERT INTO chunk_log (organization_user_id, chunk_id, op) VALUES (?1, ?2, 'add')",
            )?;
            let mut embeddings = 0i64;
            for (i, ch) in out.chunks.iter().enumerate() {
                let model = ch.vector.as_ref().and(out.vector_model_id.as_deref());
                let id: i64 = ins.query_row(
                    params![
                        file_id,
                        f.organization_id,
                        cust,
                        i as i64,
                        ch.text,
                        Value::Object(ch.metadata.clone()).to_string(),
                        model,
                        ch.vector.as_deref().map(vector_to_blob)
                    ],
                    |r| r.get(0),
                )?;
                if ch.vector.is_some() {
                    embeddings += 1;
                }
                fts.execute(params![id, index_text(&ch.text)])?;
                if ch.windows.len() > 1 {
                    for (w, v) in ch.windows.iter().enumerate() {
                        win.execute(params![id, w as i64, vector_to_blob(v)])?;
                    }
                }
                log.execute(params![cust, id])?;
            }
            drop((ins, fts, win, log));
            if !out.chunks.is_empty() {
                bump_generation_tx(tx, cust)?;
            }
            tx.execute(
                "UPDATE files SET sync_status = ?2, sync_error_message = NULL, last_sync = ?3, updated_at = ?3, \
                 parsed_sha256 = ?4, file_format = coalesce(?5, file_format), num_characters = ?6, num_tokens = ?7, \
                 num_embeddings = ?8, embedding_model = coalesce(?9, embedding_model) WHERE id = ?1",
                params![
                    file_id,
                    file_status::READY,
                    now,
                    out.parsed_sha256,
                    out.file_format,
                    out.num_characters,
                    out.num_tokens,
                    embeddings,
                    out.embedding_model
                ],
            )?;
            let nf = file_tx(tx, file_id)?.ok_or(StoreError::NotFound("file"))?;
            file_event_tx(tx, self, &nf, webhook_types::FILE_READY, None)?;
            all_processed_tx(tx, self, &nf)?;
            Ok(Some(f.parsed_sha256))
        })?;
        match old {
            None => Ok(false),
            Some(prev) => {
                if let Some(p) = prev
                    && Some(&p) != out.parsed_sha256.as_ref()
                {
                    self.collect_blobs(&[p]);
                }
                Ok(true)
            }
        }
    }

    /// Worker: marks a record-only or store-only file READY without chunks.
    pub fn set_file_status(&self, file_id: i64, status: &str) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            tx.execute(
                "UPDATE files SET sync_status = ?2, updated_at = ?3 WHERE id = ?1",
                params![file_id, status, now],
            )?;
            if let Some(f) = file_tx(tx, file_id)?
                && file_status::TERMINAL.contains(&status)
            {
                if status == file_status::READY {
                    file_event_tx(tx, self, &f, webhook_types::FILE_READY, None)?;
                }
                all_processed_tx(tx, self, &f)?;
            }
            Ok(())
        })
    }

    /// Chunks of the customer's files `file_ids` (or of every file matching `filter`), paged,
    /// with the total count. `embedding_model` restricts to chunks embedded with it.
    #[allow(clippy::too_many_arguments)]
    pub fn list_chunks(
        &self,
        org_id: i64,
        customer_pk: i64,
        filter: &FileFilter,
        embedding_model: Option<&str>,
        page: Page,
        order: ChunkOrder,
        dir: Dir,
        include_vectors: bool,
    ) -> Result<(Vec<ChunkRecord>, i64), StoreError> {
        let (mut conds, mut args) = filter.sql(org_id, customer_pk);
        if let Some(m) = embedding_model {
            conds.push_str(" AND c.embedding_model = ?");
            args.push(m.to_string().into());
        }
        let d = dir.sql();
        let order_sql = match order {
            ChunkOrder::ChunkIndex => format!("c.file_id {d}, c.chunk_index {d}"),
            ChunkOrder::File(o) => format!("{} {d}, f.id {d}, c.chunk_index ASC", o.col()),
        };
        let mut page_args = args.clone();
        let mut page_conds = conds.clone();
        if page.starting_id > 0 {
            page_conds.push_str(" AND c.id > ?");
            page_args.push(page.starting_id.into());
        }
        page_args.push(page.limit().into());
        page_args.push(page.offset().into());
        let vec_col = if include_vectors { "c.vector" } else { "NULL" };
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT c.id, c.file_id, c.chunk_index, c.text, c.metadata, c.embedding_model, {vec_col} \
                 FROM chunks c JOIN files f ON f.id = c.file_id WHERE {page_conds} \
                 ORDER BY {order_sql} LIMIT ? OFFSET ?"
            ))?;
            let rows = st
                .query_map(params_from_iter(page_args), |r| {
                    Ok(ChunkRecord {
                        id: r.get(0)?,
                        file_id: r.get(1)?,
                        chunk_index: r.get(2)?,
                        text: r.get(3)?,
                        metadata: obj(parse_json(&r.get::<_, String>(4)?)),
                        embedding_model: r.get(5)?,
                        vector: r.get::<_, Option<Vec<u8>>>(6)?.map(|b| blob_to_vector(&b)),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let count = c.query_row(
                &format!("SELECT COUNT(*) FROM chunks c JOIN files f ON f.id = c.file_id WHERE {conds}"),
                params_from_iter(args),
                |r| r.get(0),
            )?;
            Ok((rows, count))
        })
    }

    /// Current index generation of a customer (0 = never indexed or deleted).
    pub fn index_generation(&self, customer_pk: i64) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT generation FROM index_generations WHERE organization_user_id = ?1",
                [customer_pk],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
        })
    }

    /// Number of keyword-index rows matching `query` among `chunk_ids` (tests, diagnostics).
    pub fn fts_rows_for_chunks(&self, chunk_ids: &[i64]) -> Result<i64, StoreError> {
        let args: Vec<Sql> = chunk_ids.iter().map(|i| Sql::from(*i)).collect();
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT COUNT(*) FROM chunks_fts WHERE rowid IN ({})",
                    placeholders(chunk_ids.len())
                ),
                params_from_iter(args),
                |r| r.get(0),
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbide_core::secrets::MasterKey;
    use serde_json::json;

    #[test]
    fn open_statuses_are_the_non_terminal_ones() {
        let sql = crate::open_statuses_sql!();
        let mut open: Vec<&str> = sql
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|s| s.trim_matches('\''))
            .collect();
        let mut want: Vec<&str> = file_status::ALL
            .iter()
            .copied()
            .filter(|s| !file_status::TERMINAL.contains(s))
            .collect();
        open.sort_unstable();
        want.sort_unstable();
        assert_eq!(open, want);
    }

    #[test]
    fn tags_v2_parse_and_depth() {
        let ok = json!({"OR": [{"key": "a", "value": "x", "negate": false},
            {"AND": [{"key": "b", "value": ["y", 1], "negate": true}]}]});
        assert!(TagFilter::parse_v2(&ok).is_ok());
        let deep = json!({"AND": [{"OR": [{"AND": [{"OR": []}]}]}]});
        assert!(TagFilter::parse_v2(&deep).unwrap_err().contains("levels"));
        assert!(TagFilter::parse_v2(&json!({"XOR": []})).is_err());
    }

    #[test]
    fn chunks_fts_generation_and_cascade() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("db"), MasterKey::generate()).unwrap();
        let (org, _) = s.create_organization("o").unwrap();
        let cu = s.get_or_create_customer(org.id, "u").unwrap();
        let mut tags = Map::new();
        tags.insert("team".into(), json!(["red", "blue"]));
        let nf = NewFile {
            organization_id: org.id,
            organization_user_id: cu.id,
            source: "TEXT".into(),
            sync_status: file_status::QUEUED_FOR_SYNC.into(),
            name: Some("Notes.txt".into()),
            tags,
            request_id: Some("r1".into()),
            ..Default::default()
        };
        let f = s.create_file(&nf).unwrap();
        assert_eq!(f.external_file_id, f.id.to_string());
        assert_eq!(s.pending_jobs().unwrap(), 1);
        let out = ProcessedFile {
            embedding_model: Some("OPENAI".into()),
            vector_model_id: Some("test/model".into()),
            chunks: vec![
                NewChunk {
                    text: "alpha beta".into(),
                    metadata: Map::new(),
                    vector: Some(vec![1.0, 0.0]),
                    windows: vec![],
                },
                NewChunk {
                    text: "gamma".into(),
                    metadata: Map::new(),
                    vector: Some(vec![0.0, 1.0]),
                    windows: vec![vec![0.0, 1.0], vec![1.0, 0.0]],
                },
            ],
            ..Default::default()
        };
        assert!(s.complete_file(f.id, &out).unwrap());
        let g1 = s.index_generation(cu.id).unwrap();
        assert!(g1 > 0);
        let filter = FileFilter {
            ids: Some(vec![f.id]),
            ..Default::default()
        };
        let (chunks, n) = s
            .list_chunks(
                org.id,
                cu.id,
                &filter,
                None,
                Page::default(),
                ChunkOrder::ChunkIndex,
                Dir::Asc,
                true,
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(chunks[1].vector.as_deref(), Some(&[0.0, 1.0][..]));
        let ids: Vec<i64> = chunks.iter().map(|c| c.id).collect();
        assert_eq!(s.fts_rows_for_chunks(&ids).unwrap(), 2);
        // tag filters
        let q = |t: TagFilter| FileQuery {
            filter: FileFilter {
                tags: Some(t),
                ..Default::default()
            },
            page: Page::default(),
            order_by: FileOrder::Id,
            order_dir: Dir::Asc,
        };
        let t = TagFilter::parse_v2(&json!({"AND": [{"key": "team", "value": "red"}]})).unwrap();
        assert_eq!(s.query_files(org.id, cu.id, &q(t)).unwrap().1, 1);
        let t =
            TagFilter::parse_v2(&json!({"AND": [{"key": "team", "value": "red", "negate": true}]}))
                .unwrap();
        assert_eq!(s.query_files(org.id, cu.id, &q(t)).unwrap().1, 0);
        // deleting the customer removes chunks and their fts rows
        s.delete_customers(org.id, &["u".into()]).unwrap();
        assert_eq!(s.fts_rows_for_chunks(&ids).unwrap(), 0);
        assert_eq!(s.index_generation(cu.id).unwrap(), 0);
    }
}
