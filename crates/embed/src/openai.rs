//! Remote embeddings from any OpenAI-compatible service (`POST {base}/v1/embeddings`), with
//! batching, response validation, and retries with exponential backoff on 429, 5xx and
//! connection failures. Blocking (reqwest's blocking client): call it from `spawn_blocking`.

use std::time::Duration;

use serde::Deserialize;

use crate::{EmbedError, Embedder};

/// Settings of an [`OpenAiCompatible`] provider.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Base URL without the `/v1/embeddings` path, e.g. `https://api.openai.com`.
    pub base_url: String,
    /// Bearer token; `None` sends no `Authorization` header (local servers).
    pub api_key: Option<String>,
    /// Model name sent as `"model"`.
    pub model: String,
    /// Expected vector length; responses of another length are rejected.
    pub dims: usize,
    /// The model's input limit in its own tokens.
    pub max_tokens: usize,
    /// Texts per request.
    pub batch_size: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt (429, 5xx, connection errors).
    pub max_retries: u32,
    /// First backoff; doubles per retry, capped at `max_backoff`. `Retry-After` is honoured up
    /// to the cap.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("dims", &self.dims)
            .field("max_tokens", &self.max_tokens)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl OpenAiConfig {
    /// Settings with the usual defaults: 64 texts per request, 60 s timeout, 5 retries from
    /// 0.5 s up to 8 s.
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        dims: usize,
        max_tokens: usize,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            dims,
            max_tokens,
            batch_size: 64,
            timeout: Duration::from_secs(60),
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// An OpenAI-compatible embedding service.
#[derive(Debug)]
pub struct OpenAiCompatible {
    cfg: OpenAiConfig,
    endpoint: String,
    client: reqwest::blocking::Client,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    index: usize,
}

enum Attempt {
    Done(Vec<Vec<f32>>),
    Retry(EmbedError, Option<Duration>),
}

impl OpenAiCompatible {
    /// Validates `cfg` and builds the HTTP client. Must not be called from inside an async
    /// runtime's worker thread (reqwest's blocking client); use `spawn_blocking`.
    pub fn new(cfg: OpenAiConfig) -> Result<Self, EmbedError> {
        let base = cfg.base_url.trim_end_matches('/');
        let url =
            reqwest::Url::parse(base).map_err(|e| EmbedError::Config(format!("base_url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EmbedError::Config("base_url must be http or https".into()));
        }
        if cfg.dims == 0 || cfg.batch_size == 0 || cfg.model.is_empty() {
            return Err(EmbedError::Config(
                "model, dims and batch_size must be set".into(),
            ));
        }
        let endpoint = format!("{base}/v1/embeddings");
        let client = reqwest::blocking::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| EmbedError::Config(format!("http client: {e}")))?;
        Ok(Self {
            cfg,
            endpoint,
            client,
        })
    }

    fn request(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut backoff = self.cfg.initial_backoff;
        let mut attempt = 0;
        loop {
            match self.try_once(texts)? {
                Attempt::Done(v) => return Ok(v),
                Attempt::Retry(err, retry_after) => {
                    if attempt >= self.cfg.max_retries {
                        return Err(err);
                    }
                    attempt += 1;
                    let wait = retry_after.unwrap_or(backoff).min(self.cfg.max_backoff);
                    tracing::warn!(error = %err, attempt, wait_ms = wait.as_millis() as u64, "embedding request failed, retrying");
                    std::thread::sleep(wait);
                    backoff = (backoff * 2).min(self.cfg.max_backoff);
                }
            }
        }
    }

    fn try_once(&self, texts: &[&str]) -> Result<Attempt, EmbedError> {
        let body = serde_json::json!({ "model": self.cfg.model, "input": texts });
        let mut req = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.cfg.api_key {
            req = req.bearer_auth(key);
        }
        let resp = match req.send() {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Retry(transport(e), None)),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match resp.bytes() {
            Ok(b) => b,
            Err(e) => return Ok(Attempt::Retry(transport(e), None)),
        };
        if !status.is_success() {
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if text.len() > 512 {
                let mut cut = 512;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            let err = EmbedError::Http {
                status: status.as_u16(),
                body: text,
            };
            return if status.as_u16() == 429 || status.is_server_error() {
                Ok(Attempt::Retry(err, retry_after))
            } else {
                Err(err)
            };
        }
        let parsed: Response =
            serde_json::from_slice(&bytes).map_err(|e| EmbedError::BadResponse(e.to_string()))?;
        Ok(Attempt::Done(self.order(parsed, texts.len())?))
    }

    /// Orders `data` by `index` and checks it holds exactly one vector of `dims` per input.
    fn order(&self, resp: Response, n: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if resp.data.len() != n {
            return Err(EmbedError::BadResponse(format!(
                "{} embeddings for {n} inputs",
                resp.data.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
        for item in resp.data {
            if item.embedding.len() != self.cfg.dims {
                return Err(EmbedError::BadResponse(format!(
                    "embedding of length {}, expected {}",
                    item.embedding.len(),
                    self.cfg.dims
                )));
            }
            match out.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                _ => {
                    return Err(EmbedError::BadResponse(format!(
                        "index {} out of range or repeated",
                        item.index
                    )));
                }
            }
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| EmbedError::BadResponse("missing index".into())))
            .collect()
    }
}

/// A transport error with its causes (reqwest's top-level message alone says little), without
/// the URL.
fn transport(e: reqwest::Error) -> EmbedError {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    EmbedError::Transport(msg)
}

impl Embedder for OpenAiCompatible {
    fn model_id(&self) -> &str {
        &self.cfg.model
    }

    fn dims(&self) -> usize {
        self.cfg.dims
    }

    fn max_tokens(&self) -> usize {
        self.cfg.max_tokens
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.cfg.batch_size) {
            out.extend(self.request(batch)?);
        }
        Ok(out)
    }

    /// An upper bound: the UTF-8 length in bytes. Byte-level BPE tokenizers (OpenAI's and most
    /// others) never produce more tokens than bytes, so a text within this count fits.
    fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(text.len())
    }
}
