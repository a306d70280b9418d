//! Search over a customer's chunks: filter resolution (file ids, folders and their descendants,
//! tags / tags_v2, media type, source), the BM25 keyword leg over FTS5, the semantic leg over the
//! in-memory [`crate::vector_cache`], loading result rows, and bring-your-own chunk/vector writes
//! (`/upload_chunks_and_embeddings`). Every query is bounded by organization and customer.

use std::collections::HashSet;

use carbide_core::search_text::{Analyzer, index_text, query_text};
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

use crate::vector_cache::{FileSet, VectorScan, decode_vector, encode_vector};
use crate::{Store, StoreError, parse_json};

/// A tags_v2-style boolean filter over file tags.
#[derive(Debug, Clone, PartialEq)]
pub enum TagExpr {
    /// All must hold.
    And(Vec<TagExpr>),
    /// Any must hold.
    Or(Vec<TagExpr>),
    /// The file's tag `key` equals one of `values` (string comparison; list-valued tags match
    /// when any element does); `negate` inverts the block (a missing key then matches).
    Tag {
        /// Tag key.
        key: String,
        /// Accepted values.
        values: Vec<String>,
        /// Invert.
        negate: bool,
    },
}

fn tag_strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(tag_strings).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

impl TagExpr {
    /// Builds a tag block from a JSON value (scalar or list).
    pub fn tag(key: impl Into<String>, value: &Value, negate: bool) -> TagExpr {
        TagExpr::Tag {
            key: key.into(),
            values: tag_strings(value),
            negate,
        }
    }

    /// Evaluates against a file's tags object.
    pub fn matches(&self, tags: &Map<String, Value>) -> bool {
        match self {
            TagExpr::And(xs) => xs.iter().all(|x| x.matches(tags)),
            TagExpr::Or(xs) => xs.iter().any(|x| x.matches(tags)),
            TagExpr::Tag {
                key,
                values,
                negate,
            } => {
                let hit = tags
                    .get(key)
                    .map(tag_strings)
                    .is_some_and(|have| have.iter().any(|h| values.contains(h)));
                hit != *negate
            }
        }
    }
}

/// Carbon's `media_type` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// Everything that is not an image, audio or video file.
    Text,
    /// Image files (their OCR text).
    Image,
    /// Audio files.
    Audio,
    /// Video files.
    Video,
}

const IMAGE_FORMATS: &[&str] = &["JPG", "JPEG", "PNG"];
const AUDIO_FORMATS: &[&str] = &[
    "MP3", "MP2", "AAC", "WAV", "FLAC", "PCM", "M4A", "OGG", "OPUS",
];
const VIDEO_FORMATS: &[&str] = &[
    "MPEG", "MPG", "MP4", "WMV", "AVI", "MOV", "MKV", "FLV", "WEBM",
];

/// Which files a search covers (already validated by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchFilter {
    /// Only these files.
    pub file_ids: Option<Vec<i64>>,
    /// Only files inside these folders (direct children, or all descendants).
    pub parent_file_ids: Option<Vec<i64>>,
    /// With `parent_file_ids`: all descendants rather than direct children.
    pub include_all_children: bool,
    /// Tag filter (`tags_v2`, or the flat `tags` as an AND of equalities).
    pub tags: Option<TagExpr>,
    /// Media type.
    pub media_type: MediaType,
    /// `file_types_at_source`: carbide's connectors (Dropbox, uploads) have no helpdesk item
    /// types, so a non-empty list matches files whose `file_metadata.file_type_at_source` is in it.
    pub file_types_at_source: Option<Vec<String>>,
    /// Only files of these data source types (`files.source`), a carbide extension.
    pub sources: Option<Vec<String>>,
}

impl Default for SearchFilter {
    fn default() -> Self {
        SearchFilter {
            file_ids: None,
            parent_file_ids: None,
            include_all_children: false,
            tags: None,
            media_type: MediaType::Text,
            file_types_at_source: None,
            sources: None,
        }
    }
}

/// One keyword hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordHit {
    /// `chunks.id`.
    pub chunk_id: i64,
    /// Owning file.
    pub file_id: i64,
    /// BM25 score, higher is better (FTS5's `bm25()` negated).
    pub score: f64,
}

/// A result chunk with what the response needs from its file.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkResult {
    /// `chunks.id`.
    pub chunk_id: i64,
    /// Owning file.
    pub file_id: i64,
    /// Position in the file.
    pub chunk_index: i64,
    /// Chunk text.
    pub text: String,
    /// Chunk metadata (object).
    pub metadata: Value,
    /// Stored vector (first window) when asked for.
    pub vector: Option<Vec<f32>>,
    /// File's folder.
    pub parent_id: Option<i64>,
    /// File's data source type.
    pub source: String,
    /// File name.
    pub name: Option<String>,
    /// File's external URL.
    pub external_url: Option<String>,
    /// File tags.
    pub tags: Value,
    /// File-level metadata.
    pub file_metadata: Value,
    /// The raw file is stored (a download link can be given).
    pub has_raw: bool,
}

/// Chunks for one file in `/upload_chunks_and_embeddings`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkUpload {
    /// Target file (must belong to the caller).
    pub file_id: i64,
    /// `(chunk_number, text, vector)`; `chunk_number` `None` = next free index.
    pub chunks: Vec<(Option<i64>, String, Option<Vec<f32>>)>,
}

/// Words dropped from keyword queries (English function words). Matching them in every chunk
/// only adds noise to BM25's ranking.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Most terms a keyword query keeps (bounds the cost of an OR over many terms).
const MAX_QUERY_TERMS: usize = 64;

/// Which index answers keyword searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordEngine {
    /// The in-memory BM25 index ([`crate::keyword_index`]): per-customer statistics, exact
    /// top-k; the default.
    Memory,
    /// SQLite FTS5's `bm25()` over the durable index (table-wide statistics).
    Fts5,
}

impl KeywordEngine {
    /// Reads `CARBIDE_KEYWORD_ENGINE` (`memory` | `fts5`); defaults to [`KeywordEngine::Memory`]
    /// (measured ~50x faster at 100k chunks, see `scripts/bench/search-latency`).
    pub fn from_env() -> KeywordEngine {
        match std::env::var("CARBIDE_KEYWORD_ENGINE").ok().as_deref() {
            Some("fts5") => KeywordEngine::Fts5,
            _ => KeywordEngine::Memory,
        }
    }
}

/// The words a keyword query asks for: the normalised text split into alphanumeric runs
/// (what `unicode61` would produce), lower-cased and diacritic-folded, English stopwords
/// dropped (unless nothing else is left), de-duplicated, at most [`MAX_QUERY_TERMS`].
pub fn query_words(query: &str) -> Vec<String> {
    let normalised = query_text(query);
    let mut all: Vec<String> = Vec::new();
    for t in Analyzer::words(&normalised) {
        if !all.contains(&t) {
            all.push(t);
        }
    }
    let kept: Vec<String> = all
        .iter()
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .cloned()
        .collect();
    let mut terms = if kept.is_empty() { all } else { kept };
    terms.truncate(MAX_QUERY_TERMS);
    terms
}

/// Builds the FTS5 MATCH expression for a user query: [`query_words`], each quoted, OR-ed. Only
/// letters and digits reach the expression, so no input can produce an FTS syntax error.
/// `None` when no term is left.
pub fn fts_match_query(query: &str) -> Option<String> {
    let terms = query_words(query);
    if terms.is_empty() {
        return None;
    }
    Some(
        terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

fn json_ids(ids: &HashSet<i64>) -> String {
    let v: Vec<i64> = ids.iter().copied().collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

fn formats_of(m: MediaType) -> Vec<&'static str> {
    match m {
        MediaType::Text => [IMAGE_FORMATS, AUDIO_FORMATS, VIDEO_FORMATS].concat(),
        MediaType::Image => IMAGE_FORMATS.to_vec(),
        MediaType::Audio => AUDIO_FORMATS.to_vec(),
        MediaType::Video => VIDEO_FORMATS.to_vec(),
    }
}

impl Store {
    /// Resolves a filter into the set of the customer's files a search may return.
    pub fn resolve_search_filter(
        &self,
        org: i64,
        user: i64,
        f: &SearchFilter,
    ) -> Result<FileSet, StoreError> {
        let positive = f.file_ids.is_some()
            || f.parent_file_ids.is_some()
            || f.tags.is_some()
            || f.file_types_at_source.is_some()
            || f.sources.is_some()
            || f.media_type != MediaType::Text;
        self.read(|conn| {
            let media: Vec<Value> = formats_of(f.media_type)
                .into_iter()
                .map(|s| Value::String(s.into()))
                .collect();
            let media = Value::Array(media).to_string();
            if !positive {
                // Only the default TEXT media filter: exclude the (usually few) media files.
                let mut stmt = conn.prepare_cached(
                    "SELECT id FROM files WHERE organization_user_id = ?1 AND organization_id = ?2
                       AND file_format IN (SELECT value FROM json_each(?3))",
                )?;
                let ids: HashSet<i64> = stmt
                    .query_map(params![user, org, media], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                return Ok(if ids.is_empty() {
                    FileSet::All
                } else {
                    FileSet::Except(ids)
                });
            }
            let mut sql = String::from(
                "SELECT id, tags, file_metadata FROM files
                 WHERE organization_user_id = ?1 AND organization_id = ?2 AND is_folder = 0",
            );
            if f.media_type == MediaType::Text {
                sql.push_str(
                    " AND (file_format IS NULL OR file_format NOT IN (SELECT value FROM json_each(?3)))",
                );
            } else {
                sql.push_str(" AND file_format IN (SELECT value FROM json_each(?3))");
            }
            if f.file_ids.is_some() {
                sql.push_str(" AND id IN (SELECT value FROM json_each(?4))");
            }
            if f.sources.is_some() {
                sql.push_str(" AND source IN (SELECT value FROM json_each(?5))");
            }
            if f.parent_file_ids.is_some() {
                if f.include_all_children {
                    sql.push_str(
                        " AND id IN (WITH RECURSIVE d(id) AS (
                              SELECT id FROM files WHERE organization_user_id = ?1
                                AND parent_id IN (SELECT value FROM json_each(?6))
                              UNION SELECT f.id FROM files f JOIN d ON f.parent_id = d.id
                                WHERE f.organization_user_id = ?1)
                            SELECT id FROM d)",
                    );
                } else {
                    sql.push_str(" AND parent_id IN (SELECT value FROM json_each(?6))");
                }
            }
            // reference ?6 so the statement always takes all six parameters
            sql.push_str(" AND ?6 IS NOT NULL");
            let ids = serde_json::to_string(&f.file_ids.clone().unwrap_or_default())
                .unwrap_or_default();
            let sources =
                serde_json::to_string(&f.sources.clone().unwrap_or_default()).unwrap_or_default();
            let parents = serde_json::to_string(&f.parent_file_ids.clone().unwrap_or_default())
                .unwrap_or_default();
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params![user, org, media, ids, sources, parents])?;
            let mut out = HashSet::new();
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                if let Some(t) = &f.tags {
                    let tags: String = r.get(1)?;
                    let tags = match parse_json(&tags) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    if !t.matches(&tags) {
                        continue;
                    }
                }
                if let Some(types) = &f.file_types_at_source {
                    let meta: String = r.get(2)?;
                    let meta = parse_json(&meta);
                    let ty = meta.get("file_type_at_source").and_then(Value::as_str);
                    if !ty.is_some_and(|t| types.iter().any(|x| x == t)) {
                        continue;
                    }
                }
                out.insert(id);
            }
            Ok(FileSet::Only(out))
        })
    }

    /// BM25 keyword search over the customer's chunks (filters applied during scoring, so the
    /// result is never cut short by post-filtering), by this handle's [`KeywordEngine`]. Empty
    /// when the query has no terms.
    pub fn keyword_search(
        &self,
        org: i64,
        user: i64,
        query: &str,
        files: &FileSet,
        n: usize,
    ) -> Result<Vec<KeywordHit>, StoreError> {
        self.keyword_search_with(self.keyword_engine(), org, user, query, files, n)
    }

    /// [`Store::keyword_search`] by an explicit engine (benchmarks and tests compare them).
    pub fn keyword_search_with(
        &self,
        engine: KeywordEngine,
        org: i64,
        user: i64,
        query: &str,
        files: &FileSet,
        n: usize,
    ) -> Result<Vec<KeywordHit>, StoreError> {
        if engine == KeywordEngine::Memory {
            let terms = crate::keyword_index::query_terms(&query_words(query));
            if terms.is_empty() || n == 0 || files.is_empty_only() {
                return Ok(Vec::new());
            }
            let cache = self.keywords();
            return self.read(|conn| cache.search(conn, org, user, &terms, files, n));
        }
        let Some(expr) = fts_match_query(query) else {
            return Ok(Vec::new());
        };
        if n == 0 || files.is_empty_only() {
            return Ok(Vec::new());
        }
        let (clause, set) = match files {
            FileSet::All => ("", String::new()),
            FileSet::Only(s) => (
                " AND c.file_id IN (SELECT value FROM json_each(?5))",
                json_ids(s),
            ),
            FileSet::Except(s) => (
                " AND c.file_id NOT IN (SELECT value FROM json_each(?5))",
                json_ids(s),
            ),
        };
        let sql = keyword_sql(clause);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let map = |r: &rusqlite::Row<'_>| {
                Ok(KeywordHit {
                    chunk_id: r.get(0)?,
                    file_id: r.get(1)?,
                    score: -r.get::<_, f64>(2)?,
                })
            };
            let n = n as i64;
            let hits = if set.is_empty() {
                stmt.query_map(params![expr, user, org, n], map)?
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                stmt.query_map(params![expr, user, org, n, set], map)?
                    .collect::<Result<Vec<_>, _>>()?
            };
            Ok(hits)
        })
    }

    /// Exact semantic search over the customer's vectors for `model` (cached in memory, brought
    /// up to date with other writers first).
    pub fn vector_search(
        &self,
        org: i64,
        user: i64,
        model: &str,
        query: &[f32],
        files: &FileSet,
        n: usize,
    ) -> Result<VectorScan, StoreError> {
        let cache = self.vectors();
        self.read(|conn| cache.search(conn, org, user, model, query, files, n))
    }

    /// Scan precision of this handle's vector cache.
    pub fn vector_cache_precision(&self) -> crate::VectorPrecision {
        self.vectors().precision()
    }

    /// Bytes the in-memory keyword index holds (for metrics and tests).
    pub fn keyword_cache_bytes(&self) -> usize {
        self.keywords().bytes()
    }

    /// Bytes the vector cache holds (for metrics and tests).
    pub fn vector_cache_bytes(&self) -> usize {
        self.vectors().bytes()
    }

    /// Loads result rows for `chunk_ids` (in the given order, skipping vanished ones).
    pub fn load_chunk_results(
        &self,
        org: i64,
        user: i64,
        chunk_ids: &[i64],
        with_vectors: bool,
    ) -> Result<Vec<ChunkResult>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.id, c.file_id, c.chunk_index, c.text, c.metadata, c.vector,
                        f.parent_id, f.source, f.name, f.external_url, f.tags, f.file_metadata,
                        f.raw_sha256 IS NOT NULL
                 FROM chunks c JOIN files f ON f.id = c.file_id
                 WHERE c.id = ?1 AND c.organization_user_id = ?2 AND c.organization_id = ?3",
            )?;
            let mut win = conn.prepare_cached(
                "SELECT vector FROM chunk_vectors WHERE chunk_id = ?1 ORDER BY window LIMIT 1",
            )?;
            let mut out = Vec::with_capacity(chunk_ids.len());
            for id in chunk_ids {
                let row = stmt
                    .query_row(params![id, user, org], |r| {
                        Ok(ChunkResult {
                            chunk_id: r.get(0)?,
                            file_id: r.get(1)?,
                            chunk_index: r.get(2)?,
                            text: r.get(3)?,
                            metadata: parse_json(&r.get::<_, String>(4)?),
                            vector: if with_vectors {
                                r.get::<_, Option<Vec<u8>>>(5)?
                                    .as_deref()
                                    .and_then(decode_vector)
                            } else {
                                None
                            },
                            parent_id: r.get(6)?,
                            source: r.get(7)?,
                            name: r.get(8)?,
                            external_url: r.get(9)?,
                            tags: parse_json(&r.get::<_, String>(10)?),
                            file_metadata: parse_json(&r.get::<_, String>(11)?),
                            has_raw: r.get(12)?,
                        })
                    })
                    .optional()?;
                if let Some(mut c) = row {
                    if with_vectors && c.vector.is_none() {
                        c.vector = win
                            .query_row([c.chunk_id], |r| r.get::<_, Vec<u8>>(0))
                            .optional()?
                            .as_deref()
                            .and_then(decode_vector);
                    }
                    out.push(c);
                }
            }
            Ok(out)
        })
    }

    /// Writes caller-supplied chunks (and vectors, L2-normalised here) for the caller's files in
    /// one transaction: chunk rows, keyword rows, generation bump and `chunk_log` deltas.
    /// `overwrite` first removes each file's existing chunks; otherwise a chunk number that
    /// already exists is a conflict. Unknown or foreign file ids are `NotFound`.
    pub fn upload_chunks(
        &self,
        org: i64,
        user: i64,
        model: &str,
        files: &[ChunkUpload],
        overwrite: bool,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut written = 0usize;
            for f in files {
                let owner: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM files WHERE id = ?1 AND organization_user_id = ?2
                           AND organization_id = ?3",
                        params![f.file_id, user, org],
                        |r| r.get(0),
                    )
                    .optional()?;
                if owner.is_none() {
                    return Err(StoreError::NotFound("file"));
                }
                if overwrite {
                    // the delete trigger removes keyword rows and logs 'del'
                    tx.execute("DELETE FROM chunks WHERE file_id = ?1", [f.file_id])?;
                }
                let mut next: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(chunk_index) + 1, 0) FROM chunks WHERE file_id = ?1",
                    [f.file_id],
                    |r| r.get(0),
                )?;
                let mut seen = HashSet::new();
                let mut ins = tx.prepare_cached(
                    "INSERT INTO chunks (file_id, organization_id, organization_user_id,
                        chunk_index, text, metadata, embedding_model, vector)
                     VALUES (?1, ?2, ?3, ?4, ?5, '{}', ?6, ?7)",
                )?;
                let mut fts =
                    tx.prepare_cached("INSERT INTO chunks_fts (rowid, body) VALUES (?1, ?2)")?;
                let mut log = tx.prepare_cached(
                    "INSERT INTO chunk_log (organization_user_id, chunk_id, op)
                     VALUES (?1, ?2, 'add')",
                )?;
                let mut exists = tx.prepare_cached(
                    "SELECT 1 FROM chunks WHERE file_id = ?1 AND chunk_index = ?2",
                )?;
                for (num, text, vector) in &f.chunks {
                    let idx = match num {
                        Some(n) => *n,
                        None => next,
                    };
                    if !seen.insert(idx) || exists.exists(params![f.file_id, idx])? {
                        return Err(StoreError::Conflict(format!(
                            "file {} already has chunk number {idx}; set overwrite_existing to replace its chunks",
                            f.file_id
                        )));
                    }
                    next = next.max(idx + 1);
                    let blob = vector.as_ref().map(|v| encode_vector(&normalised(v)));
                    let model_col = blob.as_ref().map(|_| model);
                    ins.execute(params![f.file_id, org, user, idx, text, model_col, blob])?;
                    let id = tx.last_insert_rowid();
                    fts.execute(params![id, index_text(text)])?;
                    log.execute(params![user, id])?;
                    written += 1;
                }
                tx.execute(
                    "UPDATE files SET num_embeddings = (SELECT COUNT(*) FROM chunks
                        WHERE file_id = ?1 AND vector IS NOT NULL), updated_at = strftime('%s','now')
                     WHERE id = ?1",
                    [f.file_id],
                )?;
            }
            tx.execute(
                "INSERT INTO index_generations (organization_user_id, generation) VALUES (?1, 1)
                 ON CONFLICT (organization_user_id) DO UPDATE SET generation = generation + 1",
                [user],
            )?;
            Ok(written)
        })
    }
}

/// The keyword-leg statement. CROSS JOIN pins the join order: the MATCH drives and each hit is
/// checked against its chunk row. Left to itself the planner may walk all of the customer's
/// chunks through `chunks_user_model` and probe the FTS index once per chunk (orders of
/// magnitude slower for a large customer).
fn keyword_sql(clause: &str) -> String {
    format!(
        "SELECT c.id, c.file_id, bm25(chunks_fts) AS s
         FROM chunks_fts CROSS JOIN chunks c ON c.id = chunks_fts.rowid
         WHERE chunks_fts MATCH ?1 AND c.organization_user_id = ?2 AND c.organization_id = ?3
           {clause}
         ORDER BY s LIMIT ?4"
    )
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn match_query_is_safe_and_drops_stopwords() {
        assert_eq!(
            fts_match_query("The cells of the BRAIN").as_deref(),
            Some("\"cells\" OR \"brain\"")
        );
        assert_eq!(
            fts_match_query("\"unbalanced AND (NEAR* ^x").as_deref(),
            Some("\"unbalanced\" OR \"near\" OR \"x\"")
        );
        assert_eq!(
            fts_match_query("the who").as_deref(),
            Some("\"the\" OR \"who\"")
        );
        assert_eq!(fts_match_query("  -- ** ()"), None);
        assert_eq!(fts_match_query("東京").as_deref(), Some("\"東\" OR \"京\""));
    }

    #[test]
    fn keyword_leg_is_driven_by_the_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("c.db"),
            carbide_core::secrets::MasterKey::generate(),
        )
        .unwrap();
        let plan: Vec<String> = store
            .read(|c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {}", keyword_sql("")))?;
                let rows = st
                    .query_map(params!["\"x\"", 1, 1, 10], |r| r.get::<_, String>(3))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .unwrap();
        assert!(plan[0].contains("chunks_fts VIRTUAL TABLE"), "{plan:?}");
        assert!(plan[1].contains("USING INTEGER PRIMARY KEY"), "{plan:?}");
    }

    #[test]
    fn tag_expressions() {
        let tags = json!({"a": "1", "b": ["x", "y"], "n": 5});
        let tags = tags.as_object().unwrap();
        assert!(TagExpr::tag("a", &json!("1"), false).matches(tags));
        assert!(TagExpr::tag("b", &json!(["z", "y"]), false).matches(tags));
        assert!(TagExpr::tag("n", &json!(5), false).matches(tags));
        assert!(TagExpr::tag("missing", &json!("1"), true).matches(tags));
        let e = TagExpr::Or(vec![
            TagExpr::tag("a", &json!("2"), false),
            TagExpr::And(vec![
                TagExpr::tag("b", &json!("x"), false),
                TagExpr::tag("a", &json!("1"), true),
            ]),
        ]);
        assert!(!e.matches(tags));
    }
}
