//! Embedding providers for carbide: the [`Embedder`] trait, its errors, and two providers.
//!
//! - [`MiniLm`]: sentence-transformers all-MiniLM-L6-v2 run in-process (own BERT forward on a
//!   fast SGEMM, mean pooling, L2 normalisation), on a dedicated, bounded thread pool where
//!   queries are served before bulk ingestion.
//! - [`OpenAiCompatible`]: any `POST {base}/v1/embeddings` service speaking OpenAI's format.
//!
//! All calls are blocking; async callers use `tokio::task::spawn_blocking`.
//!
//! Why a hand-written encoder instead of candle or ort: candle's BERT ran at about half of
//! PyTorch's speed on this class of machine and costs ~10 CPU-minutes to compile; ort needs a
//! native library and an fp32 ONNX export that no registry ships. MiniLM is six small BERT
//! layers, so the forward pass is a few hundred lines around one well-kept SGEMM crate
//! (`gemm`, pure Rust, runtime-dispatched AVX2/AVX-512 kernels), and packing sequences without
//! padding plus fused bias/residual/activation passes make it several times faster than
//! sentence-transformers per CPU-second (`scripts/bench/embed.sh`). Correctness is pinned by
//! reference vectors from sentence-transformers (`tests/minilm.rs`).

mod bert;
mod minilm;
mod openai;
mod ops;
mod tokenizer;

use std::path::PathBuf;

pub use minilm::{MiniLm, MiniLmOptions, default_threads};
pub use openai::{OpenAiCompatible, OpenAiConfig};
pub use tokenizer::Tokenizer;

/// Model identifier of the embedded default model.
pub const MINILM_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// A text-embedding provider.
///
/// Token counts and limits are in the provider's own tokens and exclude special tokens that the
/// provider adds itself (for MiniLM: `[CLS]` and `[SEP]`), so a text `t` is embedded whole iff
/// `count_tokens(t)? <= max_tokens()`. Longer texts are truncated (MiniLM) or rejected by the
/// remote service; cutting them into windows is the chunker's job.
pub trait Embedder: Send + Sync {
    /// Stable identifier of the model, stored next to vectors.
    fn model_id(&self) -> &str;
    /// Length of every returned vector.
    fn dims(&self) -> usize;
    /// Largest number of text tokens that is embedded without truncation.
    fn max_tokens(&self) -> usize;
    /// Embeds `texts` for indexing (bulk priority). Returns one vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Embeds one search query. Providers with a local pool serve it before bulk work.
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.embed(&[text])?
            .pop()
            .ok_or_else(|| EmbedError::BadResponse("provider returned no vector".into()))
    }
    /// Number of tokens of `text` (without special tokens); see the trait docs for exactness.
    fn count_tokens(&self, text: &str) -> Result<usize, EmbedError>;
}

/// Errors of the embedding providers.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Model files are present but unusable (wrong shapes, missing tensors, bad config).
    #[error("invalid model: {0}")]
    Model(String),
    /// The tokenizer failed to load or to encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Invalid provider configuration.
    #[error("invalid embedding configuration: {0}")]
    Config(String),
    /// The remote provider answered with a non-success HTTP status (after retries).
    #[error("embedding service returned HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The remote provider could not be reached (after retries).
    #[error("embedding service unreachable: {0}")]
    Transport(String),
    /// The remote provider answered with something that is not a valid embedding response.
    #[error("invalid embedding response: {0}")]
    BadResponse(String),
}
