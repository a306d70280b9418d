//! Retrieval: `POST /embeddings` (keyword, semantic and hybrid search over the caller's chunks)
//! and `POST /upload_chunks_and_embeddings` (bring-your-own chunks and vectors).
//!
//! Mode selection (Carbon has no explicit keyword flag):
//! - `hybrid_search` unset/false → semantic; `hybrid_search: true` → hybrid, weighted by
//!   `hybrid_search_tuning_parameters` (`weight_a` semantic, `weight_b` keyword, default 0.5/0.5);
//! - `weight_a = 0` → keyword only (the query is not embedded); `weight_b = 0` → semantic only;
//! - when the customer has no vectors for the model (files stored with
//!   `skip_embedding_generation`, chunks uploaded with `chunks_only`) or the server has no
//!   embedding model, the search runs keyword-only instead of returning nothing.
//!
//! The `Server-Timing` header splits the time into `embed` (query embedding), `retrieve`
//! (filters, both legs, fusion, loading rows) and `total`; `x-carbide-search-mode` says which
//! mode ran.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use carbide_core::enums::{DATA_SOURCE_TYPES, EMBEDDING_GENERATORS};
use carbide_store::{
    ChunkUpload, FileSet, KeywordHit, MediaType, SearchFilter, TagExpr, VectorHit,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::CustomerAuth;
use crate::embedding_models::EmbeddingModel;
use crate::error::{ApiError, ErrorDetail, HttpValidationError, ValidationItem};
use crate::extract::JsonBody;
use crate::models::GenericSuccessResponse;

/// Largest `k` served (larger values are clamped).
pub const MAX_K: i64 = 1000;
/// Candidates each leg contributes to a fusion (at least `k`).
const FUSION_DEPTH: usize = 100;
/// RRF constant.
const RRF_K: f64 = 60.0;

/// `hybrid_search_tuning_parameters`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct HybridSearchTuningParams {
    /// Weight of the semantic leg.
    pub weight_a: f64,
    /// Weight of the keyword leg.
    pub weight_b: f64,
}

/// Body of `POST /embeddings` (Carbon's `GetEmbeddingDocumentsBody` plus two carbide extensions).
#[derive(Debug, Deserialize, ToSchema)]
pub struct GetEmbeddingDocumentsBody {
    /// Query text (used by the keyword leg, and embedded unless `query_vector` is given).
    pub query: String,
    /// Pre-computed query vector of the searched model (preferred over embedding `query`).
    pub query_vector: Option<Vec<f64>>,
    /// Number of chunks to return (≥ 1; at most 1000).
    pub k: i64,
    /// Only these files.
    pub file_ids: Option<Vec<i64>>,
    /// Only files in these folders.
    pub parent_file_ids: Option<Vec<i64>>,
    /// With `parent_file_ids`: all descendants.
    pub include_all_children: Option<bool>,
    /// Deprecated flat tag filter (ignored when `tags_v2` is given).
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    /// AND/OR/negation tag filter.
    #[schema(value_type = Option<Object>)]
    pub tags_v2: Option<Value>,
    /// Return file tags per chunk.
    pub include_tags: Option<bool>,
    /// Return the stored vector per chunk.
    pub include_vectors: Option<bool>,
    /// Return a raw-file URL per chunk.
    pub include_raw_file: Option<bool>,
    /// Keyword + semantic.
    pub hybrid_search: Option<bool>,
    /// Weights of the hybrid legs (must sum to 1 ± 0.001).
    pub hybrid_search_tuning_parameters: Option<HybridSearchTuningParams>,
    /// TEXT (default), IMAGE, AUDIO or VIDEO.
    pub media_type: Option<String>,
    /// Carbon embedding model name (default: the server's default model).
    pub embedding_model: Option<String>,
    /// Merge file metadata into `content_metadata`.
    pub include_file_level_metadata: Option<bool>,
    /// Accepted; carbide's search is always exact.
    #[allow(dead_code)] // accepted for wire compatibility; no effect
    pub high_accuracy: Option<bool>,
    /// Reranking is not available (400 when set).
    #[schema(value_type = Option<Object>)]
    pub rerank: Option<Value>,
    /// Item types at source (helpdesk connectors).
    pub file_types_at_source: Option<Vec<String>>,
    /// Accepted; carbide has no cold storage.
    #[allow(dead_code)] // accepted for wire compatibility; no effect
    pub exclude_cold_storage_files: Option<bool>,
    /// carbide extension: drop results scoring below this (in the mode's score scale).
    pub min_score: Option<f64>,
    /// carbide extension: `convex` (default) or `rrf` fusion for hybrid search.
    pub hybrid_fusion: Option<String>,
    /// carbide extension: only files of these data source types.
    #[schema(value_type = Option<Object>)]
    pub source: Option<Value>,
}

/// One result chunk (`DocumentResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentResponse {
    /// Chunk text.
    pub content: String,
    /// Owning file.
    pub file_id: i64,
    /// Folder of the file.
    pub parent_file_id: Option<i64>,
    /// File name.
    pub source: Option<String>,
    /// File's external URL.
    pub source_url: Option<String>,
    /// Data source type of the file.
    pub source_type: Option<String>,
    /// Raw file URL (with `include_raw_file`).
    pub presigned_url: Option<String>,
    /// File tags (with `include_tags`).
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Value>,
    /// Stored vector (with `include_vectors`).
    pub vector: Option<Vec<f32>>,
    /// Relevance score of the mode (cosine, BM25, or fused).
    pub score: Option<f64>,
    /// 1-based position.
    pub rank: Option<i64>,
    /// Chunk metadata (plus file metadata with `include_file_level_metadata`).
    #[schema(value_type = Option<Object>)]
    pub content_metadata: Option<Value>,
    /// Position of the chunk in its file.
    pub chunk_index: Option<i64>,
}

/// `DocumentResponseList`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentResponseList {
    /// Results, best first.
    pub documents: Vec<DocumentResponse>,
}

/// Search mode that actually ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Keyword,
    Semantic,
    Hybrid,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Keyword => "keyword",
            Mode::Semantic => "semantic",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// Hybrid fusion method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fusion {
    /// α·minmax(semantic) + (1−α)·minmax(keyword) over each leg's candidates.
    Convex,
    /// α/(60+rank_sem) + (1−α)/(60+rank_kw).
    Rrf,
}

fn field_err(path: &[&str], msg: impl Into<String>, kind: &str) -> ApiError {
    ApiError::body_field(path, msg, kind)
}

const MEDIA_TYPES: &[&str] = &["TEXT", "IMAGE", "AUDIO", "VIDEO"];
const FILE_TYPES_AT_SOURCE: &[&str] = &[
    "TICKET",
    "ARTICLE",
    "CONVERSATION",
    "TABLE",
    "INCIDENT",
    "ATTACHMENT",
];

fn enum_err(path: &[&str], got: &str, allowed: &[&str]) -> ApiError {
    field_err(
        path,
        format!(
            "value is not a valid enumeration member; permitted: {}; got {got:?}",
            allowed
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "type_error.enum",
    )
}

/// Parses a `tags_v2` tree (top level AND/OR, nesting ≤ 3 levels of AND/OR blocks).
pub(crate) fn parse_tags_v2(v: &Value) -> Result<TagExpr, String> {
    fn block(v: &Value, depth: usize) -> Result<TagExpr, String> {
        let Some(obj) = v.as_object() else {
            return Err("each filter element must be an object".into());
        };
        if obj.len() == 1
            && let Some((op, items)) = obj.iter().next()
            && (op == "AND" || op == "OR")
        {
            if depth > 3 {
                return Err("tags_v2 nesting is limited to 3 levels".into());
            }
            let Some(items) = items.as_array() else {
                return Err(format!("the value of {op} must be a list"));
            };
            let parsed = items
                .iter()
                .map(|i| block(i, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if op == "AND" {
                TagExpr::And(parsed)
            } else {
                TagExpr::Or(parsed)
            });
        }
        if depth == 1 {
            return Err(
                "the top level of tags_v2 must be {\"AND\": [...]} or {\"OR\": [...]}".into(),
            );
        }
        let Some(key) = obj.get("key").and_then(Value::as_str) else {
            return Err("a tag block needs a string \"key\"".into());
        };
        let Some(value) = obj.get("value") else {
            return Err(format!("tag block {key:?} needs a \"value\""));
        };
        let negate = match obj.get("negate") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(format!("\"negate\" of tag block {key:?} must be a boolean")),
        };
        if let Some(extra) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "key" | "value" | "negate"))
        {
            return Err(format!("unexpected key {extra:?} in tag block {key:?}"));
        }
        Ok(TagExpr::tag(key, value, negate))
    }
    block(v, 1)
}

/// Everything a validated search request decides.
pub(crate) struct Plan {
    k: usize,
    alpha: f64,
    hybrid: bool,
    fusion: Fusion,
    filter: SearchFilter,
    query_vector: Option<Vec<f32>>,
    model: Option<EmbeddingModel>,
    explicit_model: bool,
}

fn plan(state: &AppState, req: &GetEmbeddingDocumentsBody) -> Result<Plan, ApiError> {
    if req.query.chars().count() < 1 {
        return Err(field_err(
            &["query"],
            "ensure this value has at least 1 characters",
            "value_error.any_str.min_length",
        ));
    }
    if req.k < 1 {
        return Err(field_err(
            &["k"],
            "ensure this value is greater than or equal to 1",
            "value_error.number.not_ge",
        ));
    }
    let k = req.k.min(MAX_K) as usize;
    let mut alpha = 0.5;
    if let Some(p) = &req.hybrid_search_tuning_parameters {
        let ok = p.weight_a.is_finite()
            && p.weight_b.is_finite()
            && p.weight_a >= 0.0
            && p.weight_b >= 0.0
            && (p.weight_a + p.weight_b - 1.0).abs() <= 0.001;
        if !ok {
            return Err(field_err(
                &["hybrid_search_tuning_parameters"],
                "weight_a and weight_b must be non-negative and sum to 1 (±0.001)",
                "value_error",
            ));
        }
        alpha = p.weight_a / (p.weight_a + p.weight_b);
    }
    let fusion = match req.hybrid_fusion.as_deref() {
        None | Some("convex") => Fusion::Convex,
        Some("rrf") => Fusion::Rrf,
        Some(other) => return Err(enum_err(&["hybrid_fusion"], other, &["convex", "rrf"])),
    };
    let media_type = match req.media_type.as_deref() {
        None | Some("TEXT") => MediaType::Text,
        Some("IMAGE") => MediaType::Image,
        Some("AUDIO") => MediaType::Audio,
        Some("VIDEO") => MediaType::Video,
        Some(other) => return Err(enum_err(&["media_type"], other, MEDIA_TYPES)),
    };
    if let Some(m) = &req.embedding_model
        && !EMBEDDING_GENERATORS.contains(&m.as_str())
    {
        return Err(enum_err(&["embedding_model"], m, EMBEDDING_GENERATORS));
    }
    if req.rerank.as_ref().is_some_and(|r| !r.is_null()) {
        return Err(ApiError::bad_request(
            "reranking is not available on this server; omit `rerank`",
        ));
    }
    if let Some(types) = &req.file_types_at_source {
        for (i, t) in types.iter().enumerate() {
            if !FILE_TYPES_AT_SOURCE.contains(&t.as_str()) {
                let idx = i.to_string();
                return Err(enum_err(
                    &["file_types_at_source", &idx],
                    t,
                    FILE_TYPES_AT_SOURCE,
                ));
            }
        }
    }
    let sources = match &req.source {
        None | Some(Value::Null) => None,
        Some(v) => {
            let list: Vec<String> = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        field_err(
                            &["source"],
                            "source must be a string or a list of strings",
                            "type_error",
                        )
                    })?,
                _ => {
                    return Err(field_err(
                        &["source"],
                        "source must be a string or a list of strings",
                        "type_error",
                    ));
                }
            };
            if let Some(bad) = list
                .iter()
                .find(|s| !DATA_SOURCE_TYPES.contains(&s.as_str()))
            {
                return Err(enum_err(&["source"], bad, DATA_SOURCE_TYPES));
            }
            Some(list)
        }
    };
    let tags = match (&req.tags_v2, &req.tags) {
        (Some(v), _) if !v.is_null() => {
            Some(parse_tags_v2(v).map_err(|m| field_err(&["tags_v2"], m, "value_error"))?)
        }
        (_, Some(flat)) if !flat.is_empty() => Some(TagExpr::And(
            flat.iter()
                .map(|(k, v)| TagExpr::tag(k.clone(), v, false))
                .collect(),
        )),
        _ => None,
    };
    let query_vector = match &req.query_vector {
        Some(v) => {
            if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
                return Err(field_err(
                    &["query_vector"],
                    "query_vector must be a non-empty list of finite numbers",
                    "value_error",
                ));
            }
            Some(v.iter().map(|x| *x as f32).collect::<Vec<f32>>())
        }
        None => None,
    };
    let model = state
        .embedding_models()
        .resolve(req.embedding_model.as_deref())
        .map_err(ApiError::bad_request)?
        .cloned();
    let filter = SearchFilter {
        file_ids: req.file_ids.clone(),
        parent_file_ids: req.parent_file_ids.clone(),
        include_all_children: req.include_all_children.unwrap_or(false),
        tags,
        media_type,
        file_types_at_source: req.file_types_at_source.clone().filter(|t| !t.is_empty()),
        sources,
    };
    Ok(Plan {
        k,
        alpha,
        hybrid: req.hybrid_search.unwrap_or(false),
        fusion,
        filter,
        query_vector,
        model,
        explicit_model: req.embedding_model.is_some(),
    })
}

/// Min-max normalises `scores` into [0, 1] (all equal → 1).
fn minmax(scores: &[(i64, f64)]) -> HashMap<i64, f64> {
    let (lo, hi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), (_, s)| {
            (l.min(*s), h.max(*s))
        });
    scores
        .iter()
        .map(|(id, s)| {
            let n = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
            (*id, n)
        })
        .collect()
}

/// Fuses the two legs (each best first) into `(chunk_id, score)` best first.
pub(crate) fn fuse(
    semantic: &[(i64, f64)],
    keyword: &[(i64, f64)],
    alpha: f64,
    fusion: Fusion,
) -> Vec<(i64, f64)> {
    let mut fused: HashMap<i64, f64> = HashMap::new();
    match fusion {
        Fusion::Convex => {
            for (id, s) in minmax(semantic) {
                *fused.entry(id).or_default() += alpha * s;
            }
            for (id, s) in minmax(keyword) {
                *fused.entry(id).or_default() += (1.0 - alpha) * s;
            }
        }
        Fusion::Rrf => {
            for (rank, (id, _)) in semantic.iter().enumerate() {
                *fused.entry(*id).or_default() += alpha / (RRF_K + rank as f64 + 1.0);
            }
            for (rank, (id, _)) in keyword.iter().enumerate() {
                *fused.entry(*id).or_default() += (1.0 - alpha) / (RRF_K + rank as f64 + 1.0);
            }
        }
    }
    let mut out: Vec<(i64, f64)> = fused.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn timing_header(embed_ms: f64, retrieve_ms: f64, total_ms: f64) -> HeaderValue {
    let v =
        format!("embed;dur={embed_ms:.3}, retrieve;dur={retrieve_ms:.3}, total;dur={total_ms:.3}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("total"))
}

/// Searches the caller's chunks (keyword, semantic or hybrid; see the module docs).
#[utoipa::path(post, path = "/embeddings", tag = "Embeddings", request_body = GetEmbeddingDocumentsBody,
    responses((status = 200, body = DocumentResponseList), (status = 400, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn get_documents(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<GetEmbeddingDocumentsBody>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let p = plan(&state, &req)?;
    let org = auth.org_id;
    let user = auth.customer.id;
    let alpha = p.alpha;
    // Requested mode before availability checks.
    let mut mode = if !p.hybrid {
        Mode::Semantic
    } else if alpha <= 1e-9 {
        Mode::Keyword
    } else if alpha >= 1.0 - 1e-9 {
        Mode::Semantic
    } else {
        Mode::Hybrid
    };
    let filter = p.filter.clone();
    let files = state
        .db(move |s| s.resolve_search_filter(org, user, &filter))
        .await?;
    let mut embed_ms = 0.0;
    let model_id = p.model.as_ref().map(|m| m.embedder.model_id().to_string());
    let mut qvec = p.query_vector.clone();
    if mode != Mode::Keyword {
        match (&p.model, &model_id) {
            (Some(_), Some(mid)) => {
                // Does the customer have vectors for this model at all?
                let mid = mid.clone();
                let scan = state
                    .db(move |s| s.vector_search(org, user, &mid, &[], &FileSet::All, 0))
                    .await?;
                if scan.indexed == 0 {
                    mode = Mode::Keyword;
                } else if let Some(dims) = scan.dims {
                    if let Some(v) = &qvec
                        && v.len() != dims
                    {
                        return Err(ApiError::bad_request(format!(
                            "query_vector has {} dimensions but the vectors of embedding model {} have {dims}",
                            v.len(),
                            model_id.as_deref().unwrap_or("?")
                        )));
                    }
                }
            }
            _ => {
                if p.explicit_model {
                    // resolve() only returns None without a configured model
                    return Err(ApiError::bad_request("no embedding model is configured"));
                }
                mode = Mode::Keyword;
            }
        }
    }
    if mode != Mode::Keyword && qvec.is_none() {
        let Some(m) = p.model.clone() else {
            return Err(ApiError::bad_request("no embedding model is configured"));
        };
        let t = Instant::now();
        let q = req.query.clone();
        let v = tokio::task::spawn_blocking(move || m.embedder.embed_query(&q))
            .await
            .map_err(|e| ApiError::Internal(format!("embedding task failed: {e}")))?
            .map_err(|e| {
                ApiError::Status(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    format!("the query could not be embedded: {e}"),
                )
            })?;
        embed_ms = t.elapsed().as_secs_f64() * 1000.0;
        qvec = Some(v);
    }
    let retrieve_start = Instant::now();
    let k = p.k;
    let depth = if mode == Mode::Hybrid {
        k.max(FUSION_DEPTH)
    } else {
        k
    };
    let query = req.query.clone();
    let with_vectors = req.include_vectors.unwrap_or(false);
    let fusion = p.fusion;
    let ranked: Vec<(i64, f64)> = {
        let files2 = files.clone();
        let mid = model_id.clone().unwrap_or_default();
        let qv = qvec.clone().unwrap_or_default();
        state
            .db(move |s| {
                let sem: Vec<VectorHit> = if mode == Mode::Keyword {
                    Vec::new()
                } else {
                    s.vector_search(org, user, &mid, &qv, &files2, depth)?.hits
                };
                let kw: Vec<KeywordHit> = if mode == Mode::Semantic {
                    Vec::new()
                } else {
                    s.keyword_search(org, user, &query, &files2, depth)?
                };
                let sem: Vec<(i64, f64)> = sem
                    .iter()
                    .map(|h| (h.chunk_id, f64::from(h.score)))
                    .collect();
                let kw: Vec<(i64, f64)> = kw.iter().map(|h| (h.chunk_id, h.score)).collect();
                Ok(match mode {
                    Mode::Semantic => sem,
                    Mode::Keyword => kw,
                    Mode::Hybrid => fuse(&sem, &kw, alpha, fusion),
                })
            })
            .await?
    };
    let mut ranked: Vec<(i64, f64)> = ranked
        .into_iter()
        .filter(|(_, s)| req.min_score.is_none_or(|m| *s >= m))
        .collect();
    ranked.truncate(k);
    let ids: Vec<i64> = ranked.iter().map(|(id, _)| *id).collect();
    let rows = state
        .db(move |s| s.load_chunk_results(org, user, &ids, with_vectors))
        .await?;
    let scores: HashMap<i64, f64> = ranked.iter().copied().collect();
    let include_tags = req.include_tags.unwrap_or(false);
    let file_meta = req.include_file_level_metadata.unwrap_or(false);
    let raw = req.include_raw_file.unwrap_or(false);
    let documents: Vec<DocumentResponse> = rows
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut meta = match c.metadata {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if file_meta && let Value::Object(fm) = &c.file_metadata {
                for (k, v) in fm {
                    meta.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            DocumentResponse {
                content: c.text,
                file_id: c.file_id,
                parent_file_id: c.parent_id,
                source: c.name.clone(),
                source_url: c.external_url.clone(),
                source_type: DATA_SOURCE_TYPES
                    .contains(&c.source.as_str())
                    .then(|| c.source.clone()),
                presigned_url: (raw && c.has_raw)
                    .then(|| super::files::signed_url(&state, "raw", c.file_id, 3600)),
                tags: include_tags.then(|| match c.tags {
                    Value::Object(_) => c.tags.clone(),
                    _ => json!({}),
                }),
                vector: if with_vectors { c.vector } else { None },
                score: scores.get(&c.chunk_id).copied(),
                rank: Some(i as i64 + 1),
                content_metadata: Some(Value::Object(meta)),
                chunk_index: Some(c.chunk_index),
            }
        })
        .collect();
    let retrieve_ms = retrieve_start.elapsed().as_secs_f64() * 1000.0;
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut resp = axum::Json(DocumentResponseList { documents }).into_response();
    let h = resp.headers_mut();
    h.insert(
        "server-timing",
        timing_header(embed_ms, retrieve_ms, total_ms),
    );
    h.insert(
        "x-carbide-search-mode",
        HeaderValue::from_static(mode.name()),
    );
    Ok(resp)
}

/// One chunk of `/upload_chunks_and_embeddings`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChunksAndEmbeddings {
    /// Position in the file (`null` = next free).
    pub chunk_number: Option<i64>,
    /// Chunk text.
    pub chunk: String,
    /// Vector of the model (computed by the server's model when missing).
    pub embedding: Option<Vec<f64>>,
}

/// Chunks for one file.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SingleChunksAndEmbeddingsUploadInput {
    /// Target file of the caller.
    pub file_id: i64,
    /// Informational.
    #[allow(dead_code)] // accepted for wire compatibility; no effect
    pub chunk_size: Option<i64>,
    /// Informational.
    #[allow(dead_code)] // accepted for wire compatibility; no effect
    pub chunk_overlap: Option<i64>,
    /// The chunks.
    pub chunks_and_embeddings: Vec<ChunksAndEmbeddings>,
}

/// Body of `POST /upload_chunks_and_embeddings`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChunksAndEmbeddingsUploadInput {
    /// Carbon model name the vectors belong to.
    pub embedding_model: String,
    /// Per-file chunk lists.
    pub chunks_and_embeddings: Vec<SingleChunksAndEmbeddingsUploadInput>,
    /// Replace each file's existing chunks (default false: chunk numbers must be new).
    pub overwrite_existing: Option<bool>,
    /// Store text only, no vectors (keyword search only).
    pub chunks_only: Option<bool>,
    /// Ignored.
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)] // accepted for wire compatibility; no effect
    pub custom_credentials: Option<Value>,
}

/// Stores caller-supplied chunks (and vectors) for the caller's files, searchable at once.
#[utoipa::path(post, path = "/upload_chunks_and_embeddings", tag = "Embeddings",
    request_body = ChunksAndEmbeddingsUploadInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 400, body = ErrorDetail), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn upload_chunks_and_embeddings(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<ChunksAndEmbeddingsUploadInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    if !EMBEDDING_GENERATORS.contains(&req.embedding_model.as_str()) {
        return Err(enum_err(
            &["embedding_model"],
            &req.embedding_model,
            EMBEDDING_GENERATORS,
        ));
    }
    let model = state
        .embedding_models()
        .resolve(Some(&req.embedding_model))
        .map_err(ApiError::bad_request)?
        .cloned()
        .ok_or_else(|| ApiError::bad_request("no embedding model is configured"))?;
    let chunks_only = req.chunks_only.unwrap_or(false);
    let dims = model.embedder.dims();
    let mut uploads = Vec::with_capacity(req.chunks_and_embeddings.len());
    let mut missing: Vec<(usize, usize)> = Vec::new();
    for (fi, f) in req.chunks_and_embeddings.into_iter().enumerate() {
        let mut chunks = Vec::with_capacity(f.chunks_and_embeddings.len());
        for (ci, c) in f.chunks_and_embeddings.into_iter().enumerate() {
            let v = if chunks_only {
                None
            } else {
                match c.embedding {
                    Some(e) => {
                        if e.len() != dims || e.iter().any(|x| !x.is_finite()) {
                            let loc = vec![
                                json!("body"),
                                json!("chunks_and_embeddings"),
                                json!(fi),
                                json!("chunks_and_embeddings"),
                                json!(ci),
                                json!("embedding"),
                            ];
                            return Err(ApiError::Validation(vec![ValidationItem::new(
                                loc,
                                format!(
                                    "embedding must hold {dims} finite numbers for {} (got {})",
                                    req.embedding_model,
                                    e.len()
                                ),
                                "value_error",
                            )]));
                        }
                        Some(e.iter().map(|x| *x as f32).collect())
                    }
                    None => {
                        missing.push((fi, ci));
                        None
                    }
                }
            };
            chunks.push((c.chunk_number, c.chunk, v));
        }
        uploads.push(ChunkUpload {
            file_id: f.file_id,
            chunks,
        });
    }
    if !missing.is_empty() {
        let texts: Vec<String> = missing
            .iter()
            .map(|(f, c)| uploads[*f].chunks[*c].1.clone())
            .collect();
        let m = model.clone();
        let vecs = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            m.embedder.embed(&refs)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("embedding task failed: {e}")))?
        .map_err(|e| {
            ApiError::Status(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("chunks could not be embedded: {e}"),
            )
        })?;
        for ((f, c), v) in missing.into_iter().zip(vecs) {
            uploads[f].chunks[c].2 = Some(v);
        }
    }
    let org = auth.org_id;
    let user = auth.customer.id;
    let overwrite = req.overwrite_existing.unwrap_or(false);
    let mid = model.embedder.model_id().to_string();
    state
        .db(move |s| s.upload_chunks(org, user, &mid, &uploads, overwrite))
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_v2_shapes() {
        let ok = json!({"OR": [{"key": "a", "value": "1"}, {"AND": [{"key": "b", "value": ["x"], "negate": true}]}]});
        assert!(parse_tags_v2(&ok).is_ok());
        assert!(parse_tags_v2(&json!({"key": "a", "value": 1})).is_err());
        assert!(parse_tags_v2(&json!({"OR": [{"key": "a"}]})).is_err());
        let deep = json!({"AND": [{"OR": [{"AND": [{"key": "a", "value": 1}]}]}]});
        assert!(parse_tags_v2(&deep).is_ok());
        let too_deep = json!({"AND": [{"OR": [{"AND": [{"OR": [{"key": "a", "value": 1}]}]}]}]});
        assert!(parse_tags_v2(&too_deep).is_err());
    }

    #[test]
    fn fusion_orders() {
        let sem = vec![(1, 0.9), (2, 0.5), (3, 0.1)];
        let kw = vec![(3, 12.0), (2, 11.0), (4, 1.0)];
        let c = fuse(&sem, &kw, 0.5, Fusion::Convex);
        assert_eq!(c[0].0, 2);
        let r = fuse(&sem, &kw, 0.5, Fusion::Rrf);
        assert_eq!(r.len(), 4);
        let pos = |id: i64| r.iter().position(|x| x.0 == id).unwrap();
        assert!(pos(2) < pos(1) && pos(2) < pos(4));
    }
}
