//! File processing as durable jobs: the worker claims `process_file` jobs with a lease, moves
//! the file QUEUED_FOR_SYNC → SYNCING → READY (or SYNC_ERROR with a readable reason), parses
//! the stored raw bytes in the sandboxed extractor, chunks in the embedding model's tokens,
//! embeds in batches (windows of at most the model's input for long chunks), and writes
//! status, chunks, vectors and keyword rows in one store transaction. Transient failures
//! (I/O, an unreachable embedding service) retry with exponential backoff; parse failures are
//! terminal at once.

use std::sync::Arc;
use std::time::Duration;

use carbide_core::enums::file_status;
use carbide_core::timefmt::now_unix;
use carbide_ingest::{
    Chunk, ChunkOptions, ExtractOptions, IngestError, Limits, Sandbox, chunk_document,
};
use carbide_store::{JOB_PROCESS_FILE, Job, NewChunk, ProcessedFile, Store};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::embedding::{DEFAULT_MODEL, EmbeddingRegistry, EstimatedTokens, ProviderError};

/// Carbon's default chunk size (OpenAI tokens) when no embedding model bounds it.
pub const CARBON_DEFAULT_CHUNK_SIZE: usize = 1500;
/// Carbon's default overlap.
pub const DEFAULT_CHUNK_OVERLAP: usize = 20;
/// Texts per embedding call.
pub const EMBED_BATCH: usize = 16;

/// Per-file processing options, stored with the file (`files.options`) as given at upload or
/// resync. Absent keys take Carbon's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_overlap: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    pub skip_embedding_generation: bool,
    pub generate_chunks_only: bool,
    pub store_file_only: bool,
    pub skip_file_processing: bool,
    pub use_ocr: bool,
    pub set_page_as_boundary: bool,
    pub prepend_filename_to_chunks: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_items_per_chunk: Option<usize>,
    pub split_rows: bool,
    pub generate_sparse_vectors: bool,
    pub parse_pdf_tables_with_ocr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

impl FileOptions {
    /// Reads options stored with a file (unknown or malformed keys fall back to defaults).
    pub fn from_map(m: &Map<String, Value>) -> FileOptions {
        serde_json::from_value(Value::Object(m.clone())).unwrap_or_default()
    }

    /// The options as a JSON object for storage.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// Carbon model name used for this file.
    pub fn model(&self) -> &str {
        self.embedding_model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    /// Whether vectors are wanted.
    pub fn wants_vectors(&self) -> bool {
        !(self.skip_embedding_generation || self.generate_chunks_only || self.store_file_only)
    }
}

/// Tuning of the file worker.
#[derive(Debug, Clone)]
pub struct FileWorkerConfig {
    /// How often to look for due jobs when idle.
    pub poll_interval: Duration,
    /// Lease per claim; renewed every third of it while the job runs.
    pub lease: Duration,
    /// Files processed at once by this worker.
    pub concurrency: usize,
    /// Delay after the first transient failure; doubles per further failure.
    pub base_backoff: Duration,
    /// The sandboxed extractor.
    pub sandbox: Sandbox,
    /// Size limits for extraction.
    pub limits: Limits,
}

impl FileWorkerConfig {
    /// Defaults around a given sandbox.
    pub fn new(sandbox: Sandbox) -> FileWorkerConfig {
        FileWorkerConfig {
            poll_interval: Duration::from_millis(300),
            lease: Duration::from_secs(300),
            concurrency: 2,
            base_backoff: Duration::from_secs(10),
            sandbox,
            limits: Limits::default(),
        }
    }

    fn backoff_secs(&self, attempt: i64) -> i64 {
        let exp = attempt.saturating_sub(1).clamp(0, 16) as i32;
        (self.base_backoff.as_secs_f64() * 2f64.powi(exp)).ceil() as i64
    }
}

/// How one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessError {
    /// Worth retrying (I/O, embedding service unreachable, database busy).
    Transient(String),
    /// Retrying cannot help (unparseable file, model not installed).
    Terminal(String),
}

/// Runs the file worker until `shutdown` becomes `true` (running jobs finish first).
pub async fn run_file_worker(
    store: Store,
    registry: Arc<EmbeddingRegistry>,
    cfg: FileWorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut idb = [0u8; 8];
    rand::rng().fill_bytes(&mut idb);
    let owner = format!("files-{}-{}", std::process::id(), hex::encode(idb));
    tracing::info!(owner, "file worker started");
    let cfg = Arc::new(cfg);
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while running.try_join_next().is_some() {}
        let free = cfg.concurrency.max(1).saturating_sub(running.len());
        let mut claimed = 0;
        if free > 0 {
            let (s, o) = (store.clone(), owner.clone());
            let lease = cfg.lease.as_secs() as i64;
            let jobs = tokio::task::spawn_blocking(move || {
                s.claim_jobs(&o, &[JOB_PROCESS_FILE], lease, free)
            })
            .await;
            match jobs {
                Ok(Ok(jobs)) => {
                    claimed = jobs.len();
                    for job in jobs {
                        running.spawn(run_one(store.clone(), registry.clone(), cfg.clone(), job));
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "claiming file jobs failed"),
                Err(e) => tracing::error!(error = %e, "claim task failed"),
            }
        }
        if claimed == 0 {
            tokio::select! {
                _ = tokio::time::sleep(cfg.poll_interval) => {}
                _ = running.join_next(), if !running.is_empty() => {}
                r = shutdown.changed() => { if r.is_err() { break; } }
            }
        }
    }
    while running.join_next().await.is_some() {}
    tracing::info!("file worker stopped");
}

async fn run_one(
    store: Store,
    registry: Arc<EmbeddingRegistry>,
    cfg: Arc<FileWorkerConfig>,
    job: Job,
) {
    let Some(file_id) = job.file_id else {
        let (s, id, o) = (store.clone(), job.id, job.lease_owner.clone());
        let _ =
            tokio::task::spawn_blocking(move || s.fail_job(id, &o, "job without file", None)).await;
        return;
    };
    // keep the lease alive while the file is processed
    let hb = {
        let (s, id, o) = (store.clone(), job.id, job.lease_owner.clone());
        let lease = cfg.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let (s2, o2) = (s.clone(), o.clone());
                let secs = lease.as_secs() as i64;
                match tokio::task::spawn_blocking(move || s2.extend_job_lease(id, &o2, secs)).await
                {
                    Ok(Ok(true)) => {}
                    _ => break,
                }
            }
        })
    };
    let (s, r, c) = (store.clone(), registry.clone(), cfg.clone());
    let result = tokio::task::spawn_blocking(move || process_file(&s, &r, &c, file_id)).await;
    hb.abort();
    let result =
        result.unwrap_or_else(|e| Err(ProcessError::Transient(format!("worker task failed: {e}"))));
    let (s, c) = (store.clone(), cfg.clone());
    let outcome =
        tokio::task::spawn_blocking(move || finish_job(&s, &c, &job, file_id, result)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(file_id, error = %e, "recording job outcome failed"),
        Err(e) => tracing::error!(file_id, error = %e, "job outcome task failed"),
    }
}

fn finish_job(
    store: &Store,
    cfg: &FileWorkerConfig,
    job: &Job,
    file_id: i64,
    result: Result<(), ProcessError>,
) -> Result<(), carbide_store::StoreError> {
    match result {
        Ok(()) => store.complete_job(job.id, &job.lease_owner),
        Err(ProcessError::Transient(msg)) if job.attempts + 1 < job.max_attempts => {
            tracing::warn!(file_id, attempt = job.attempts + 1, error = %msg, "file processing failed; will retry");
            store.set_file_status(file_id, file_status::QUEUED_FOR_SYNC)?;
            let at = now_unix() + cfg.backoff_secs(job.attempts + 1);
            store.fail_job(job.id, &job.lease_owner, &msg, Some(at))
        }
        Err(ProcessError::Transient(msg)) | Err(ProcessError::Terminal(msg)) => {
            tracing::info!(file_id, reason = %msg, "file processing failed");
            store.fail_file(file_id, &msg)?;
            store.fail_job(job.id, &job.lease_owner, &msg, None)
        }
    }
}

fn transient<E: std::fmt::Display>(e: E) -> ProcessError {
    ProcessError::Transient(e.to_string())
}

/// Processes one file synchronously (blocking: sandbox, embeddings, database).
pub fn process_file(
    store: &Store,
    registry: &EmbeddingRegistry,
    cfg: &FileWorkerConfig,
    file_id: i64,
) -> Result<(), ProcessError> {
    let Some(file) = store.file_by_id(file_id).map_err(transient)? else {
        return Ok(()); // deleted meanwhile
    };
    let opts = FileOptions::from_map(&file.options);
    if opts.skip_file_processing {
        store
            .set_file_status(file_id, file_status::READY_TO_SYNC)
            .map_err(transient)?;
        return Ok(());
    }
    if store
        .mark_file_syncing(file_id)
        .map_err(transient)?
        .is_none()
    {
        return Ok(());
    }
    let sha = file.raw_sha256.clone().ok_or_else(|| {
        ProcessError::Terminal("the file's content is not stored; upload it again".into())
    })?;
    let path = store.blob_path(&sha).map_err(transient)?;
    if !path.is_file() {
        return Err(ProcessError::Terminal(
            "the file's stored content is missing; upload it again".into(),
        ));
    }
    if opts.store_file_only {
        store
            .set_file_status(file_id, file_status::READY)
            .map_err(transient)?;
        return Ok(());
    }
    // the provider first: a missing model fails fast, before any parsing
    let want_vectors = opts.wants_vectors();
    let model = opts.model().to_string();
    let provider = match registry.get(&model) {
        Ok(p) => Some(p),
        Err(e @ ProviderError::NotConfigured { .. }) if want_vectors => {
            return Err(ProcessError::Terminal(e.to_string()));
        }
        Err(ProviderError::Unavailable(r)) if want_vectors => {
            return Err(ProcessError::Terminal(r));
        }
        Err(_) => None,
    };
    let name = file.name.clone().unwrap_or_default();
    let doc = cfg
        .sandbox
        .extract_file(
            &path,
            &name,
            &cfg.limits,
            &ExtractOptions {
                use_ocr: opts.use_ocr,
            },
        )
        .map_err(|e| match e {
            IngestError::Io(m) => ProcessError::Transient(format!("cannot read file: {m}")),
            other => ProcessError::Terminal(other.to_string()),
        })?;
    let text = doc.plain_text();
    let parsed_sha = store.put_blob(text.as_bytes()).map_err(transient)?;

    let counter = match provider {
        Some(p) => p.token_counter(),
        None => Box::new(EstimatedTokens),
    };
    let default_size = provider.map_or(CARBON_DEFAULT_CHUNK_SIZE, |p| p.max_tokens());
    let chunk_size = opts.chunk_size.filter(|&n| n > 0).unwrap_or(default_size);
    let chunk_opts = ChunkOptions {
        chunk_size,
        chunk_overlap: opts
            .chunk_overlap
            .unwrap_or(DEFAULT_CHUNK_OVERLAP)
            .min(chunk_size / 2),
        set_page_as_boundary: opts.set_page_as_boundary,
        prepend_filename: opts.prepend_filename_to_chunks.then(|| name.clone()),
        max_items_per_chunk: opts.max_items_per_chunk,
        split_rows: opts.split_rows,
    };
    let chunks = chunk_document(&doc, &chunk_opts, counter.as_ref());
    let num_tokens = counter.count_tokens(&text) as i64;

    let mut new_chunks: Vec<NewChunk> = chunks.iter().map(chunk_record).collect();
    let vector_model_id = match (want_vectors, provider) {
        (true, Some(p)) => {
            embed_chunks(p, counter.as_ref(), &mut new_chunks)?;
            Some(p.embedder().model_id().to_string())
        }
        _ => None,
    };
    let out = ProcessedFile {
        parsed_sha256: Some(parsed_sha),
        file_format: Some(doc.format.name().to_string()).filter(|f| f != "CFB" && f != "UNKNOWN"),
        num_characters: Some(doc.num_characters() as i64),
        num_tokens: Some(num_tokens),
        embedding_model: Some(model),
        vector_model_id,
        chunks: new_chunks,
    };
    store.complete_file(file_id, &out).map_err(transient)?;
    Ok(())
}

fn chunk_record(c: &Chunk) -> NewChunk {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("page_start", c.page_start.map(Value::from));
    put("page_end", c.page_end.map(Value::from));
    put("slide_start", c.slide_start.map(Value::from));
    put("slide_end", c.slide_end.map(Value::from));
    put("sheet", c.sheet.clone().map(Value::from));
    put("heading", c.heading.clone().map(Value::from));
    put("token_count", Some(Value::from(c.token_count)));
    NewChunk {
        text: c.text.clone(),
        metadata: m,
        vector: None,
        windows: Vec::new(),
    }
}

/// Splits `text` into windows of at most `max` tokens (whole text when it fits).
pub fn windows<'a>(
    text: &'a str,
    counter: &dyn carbide_ingest::TokenCounter,
    max: usize,
) -> Vec<&'a str> {
    let spans = counter.token_spans(text);
    if spans.len() <= max || max == 0 {
        return vec![text];
    }
    spans
        .chunks(max)
        .filter_map(|w| {
            let (s, e) = (w.first()?.0, w.last()?.1);
            text.get(s..e)
        })
        .collect()
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

fn embed_chunks(
    p: &crate::embedding::Provider,
    counter: &dyn carbide_ingest::TokenCounter,
    chunks: &mut [NewChunk],
) -> Result<(), ProcessError> {
    // every window of every chunk, in order: (chunk index, text)
    let mut work: Vec<(usize, String)> = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        for w in windows(&c.text, counter, p.max_tokens()) {
            work.push((i, w.to_string()));
        }
    }
    let mut vectors: Vec<Vec<Vec<f32>>> = vec![Vec::new(); chunks.len()];
    for batch in work.chunks(EMBED_BATCH) {
        let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        let out = p.embedder().embed(&texts).map_err(|e| match e {
            carbide_embed::EmbedError::Http { .. } | carbide_embed::EmbedError::Transport(_) => {
                ProcessError::Transient(e.to_string())
            }
            other => ProcessError::Terminal(format!("embedding failed: {other}")),
        })?;
        if out.len() != batch.len() {
            return Err(ProcessError::Terminal(
                "embedding provider returned the wrong number of vectors".into(),
            ));
        }
        for ((i, _), mut v) in batch.iter().zip(out) {
            normalise(&mut v);
            vectors[*i].push(v);
        }
    }
    for (c, ws) in chunks.iter_mut().zip(vectors) {
        match ws.len() {
            0 => {}
            1 => c.vector = ws.into_iter().next(),
            _ => {
                let dims = ws[0].len();
                let mut mean = vec![0f32; dims];
                for w in &ws {
                    for (m, x) in mean.iter_mut().zip(w) {
                        *m += x;
                    }
                }
                normalise(&mut mean);
                c.vector = Some(mean);
                c.metadata.insert("windows".into(), Value::from(ws.len()));
                c.windows = ws;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_roundtrip_and_defaults() {
        let o = FileOptions {
            chunk_size: Some(100),
            skip_embedding_generation: true,
            ..Default::default()
        };
        let m = o.to_map();
        assert_eq!(FileOptions::from_map(&m), o);
        assert_eq!(o.model(), "OPENAI");
        assert!(!o.wants_vectors());
    }

    #[test]
    fn windows_cover_long_text() {
        let text = "one two six ten red big cat";
        let w = windows(text, &EstimatedTokens, 3);
        assert_eq!(w, ["one two six", "ten red big", "cat"]);
        assert_eq!(windows(text, &EstimatedTokens, 100), [text]);
    }
}
