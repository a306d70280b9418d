//! The embedding provider registry: maps Carbon's `embedding_model` names (`OPENAI`,
//! `OPENAI_ADA_SMALL_1536`, …) to the providers the operator configured (`local` MiniLM or an
//! `openai`-compatible service), and gives the chunker a [`TokenCounter`] in each provider's
//! own tokens. Shared by the API (validation, query embedding) and the file worker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use carbide_core::enums::EMBEDDING_GENERATORS;
use carbide_embed::{EmbedError, Embedder, MiniLm, OpenAiCompatible, OpenAiConfig, Tokenizer};
use carbide_ingest::TokenCounter;

/// Carbon's default `embedding_model`.
pub const DEFAULT_MODEL: &str = "OPENAI";

/// Reason given when the local model files are absent.
pub const MODEL_MISSING: &str = "embedding model not installed: run make model";

/// Which provider a Carbon model name maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// The in-process MiniLM model from `CARBIDE_MODEL_DIR`.
    Local,
    /// The OpenAI-compatible service from `CARBIDE_OPENAI_*`.
    OpenAi,
}

/// Settings of the OpenAI-compatible provider.
#[derive(Debug, Clone, Default)]
pub struct OpenAiSettings {
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub model: Option<String>,
    pub dims: Option<usize>,
}

/// Everything needed to build the registry (read from the environment by the binary).
#[derive(Debug, Clone)]
pub struct EmbeddingConfig {
    /// Directory of the local MiniLM model.
    pub model_dir: PathBuf,
    /// Carbon name → provider, e.g. from `OPENAI=local,OPENAI_ADA_SMALL_1536=openai`.
    pub models: Vec<(String, ProviderKind)>,
    /// The OpenAI-compatible provider.
    pub openai: OpenAiSettings,
    /// Threads of the local model's pool.
    pub threads: usize,
}

/// Registry construction errors (bad configuration text).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// `CARBIDE_EMBEDDING_MODELS` could not be parsed.
    #[error("invalid CARBIDE_EMBEDDING_MODELS: {0}")]
    Mapping(String),
}

/// Why a model cannot be used right now.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// The name is valid Carbon but not configured here.
    #[error("embedding_model {requested} is not configured on this server; configured: {}", configured.join(", "))]
    NotConfigured {
        requested: String,
        configured: Vec<String>,
    },
    /// Configured, but the provider could not be set up.
    #[error("{0}")]
    Unavailable(String),
}

/// Parses `OPENAI=local,OPENAI_ADA_SMALL_1536=openai`.
pub fn parse_model_mapping(s: &str) -> Result<Vec<(String, ProviderKind)>, RegistryError> {
    let mut out: Vec<(String, ProviderKind)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, kind) = part
            .split_once('=')
            .ok_or_else(|| RegistryError::Mapping(format!("{part:?} is not NAME=PROVIDER")))?;
        let name = name.trim().to_ascii_uppercase();
        if !EMBEDDING_GENERATORS.contains(&name.as_str()) {
            return Err(RegistryError::Mapping(format!(
                "{name} is not one of Carbon's embedding models ({})",
                EMBEDDING_GENERATORS.join(", ")
            )));
        }
        let kind = match kind.trim().to_ascii_lowercase().as_str() {
            "local" => ProviderKind::Local,
            "openai" => ProviderKind::OpenAi,
            other => {
                return Err(RegistryError::Mapping(format!(
                    "unknown provider {other:?} for {name} (expected local or openai)"
                )));
            }
        };
        if out.iter().any(|(n, _)| *n == name) {
            return Err(RegistryError::Mapping(format!("{name} is mapped twice")));
        }
        out.push((name, kind));
    }
    if out.is_empty() {
        return Err(RegistryError::Mapping("no model configured".into()));
    }
    Ok(out)
}

/// A usable provider.
#[derive(Clone)]
pub struct Provider {
    embedder: Arc<dyn Embedder>,
    local: Option<Arc<MiniLm>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("model_id", &self.embedder.model_id())
            .finish()
    }
}

impl Provider {
    /// Wraps any embedder (tests use fakes); token counting falls back to an estimate.
    pub fn from_embedder(embedder: Arc<dyn Embedder>) -> Provider {
        Provider {
            embedder,
            local: None,
        }
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Largest input embedded whole, in the provider's tokens.
    pub fn max_tokens(&self) -> usize {
        self.embedder.max_tokens()
    }

    /// A token counter in this provider's tokens (exact for the local model; a conservative
    /// over-estimate for remote ones, whose tokenizers are not available offline).
    pub fn token_counter(&self) -> Box<dyn TokenCounter + '_> {
        match &self.local {
            Some(m) => Box::new(WordPieces(m.tokenizer())),
            None => Box::new(EstimatedTokens),
        }
    }
}

/// Exact word-piece spans from the model's tokenizer.
struct WordPieces<'a>(&'a Tokenizer);

impl TokenCounter for WordPieces<'_> {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        match self.0.tokenize_offsets(text) {
            Ok(v) => v,
            // a tokenizer failure on odd input must not lose the text: estimate instead
            Err(_) => EstimatedTokens.token_spans(text),
        }
    }

    fn count_tokens(&self, text: &str) -> usize {
        match self.0.count_tokens(text) {
            Ok(n) => n,
            Err(_) => EstimatedTokens.token_spans(text).len(),
        }
    }
}

/// Token estimate when no tokenizer is at hand: words and punctuation marks split further
/// into pieces of at most four characters (over-counts BPE/word-piece tokens of typical text,
/// so chunks stay within a remote model's window).
#[derive(Debug, Clone, Copy, Default)]
pub struct EstimatedTokens;

impl TokenCounter for EstimatedTokens {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        let mut chars = 0usize;
        for (i, c) in text.char_indices() {
            if c.is_whitespace() {
                if let Some(s) = start.take() {
                    out.push((s, i));
                }
                chars = 0;
                continue;
            }
            let punct = !c.is_alphanumeric();
            if punct {
                if let Some(s) = start.take() {
                    out.push((s, i));
                }
                out.push((i, i + c.len_utf8()));
                chars = 0;
                continue;
            }
            match start {
                Some(s) if chars < 4 => {
                    let _ = s;
                    chars += 1;
                }
                Some(s) => {
                    out.push((s, i));
                    start = Some(i);
                    chars = 1;
                }
                None => {
                    start = Some(i);
                    chars = 1;
                }
            }
        }
        if let Some(s) = start {
            out.push((s, text.len()));
        }
        out
    }
}

enum Slot {
    Ready(Provider),
    Unavailable(String),
}

/// Carbon model name → provider.
pub struct EmbeddingRegistry {
    slots: BTreeMap<String, Slot>,
}

impl std::fmt::Debug for EmbeddingRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingRegistry")
            .field("configured", &self.configured())
            .finish()
    }
}

impl Default for EmbeddingRegistry {
    /// `OPENAI` mapped to a local model that is not installed (tenancy works; files needing
    /// embeddings fail with a clear reason).
    fn default() -> Self {
        let mut slots = BTreeMap::new();
        slots.insert(
            DEFAULT_MODEL.to_string(),
            Slot::Unavailable(MODEL_MISSING.into()),
        );
        EmbeddingRegistry { slots }
    }
}

impl EmbeddingRegistry {
    /// Builds the registry, loading the local model once if any name maps to it. A provider
    /// that cannot be set up is recorded as unavailable with its reason (the server still
    /// starts); it is logged here.
    pub fn from_config(cfg: &EmbeddingConfig) -> EmbeddingRegistry {
        let mut slots = BTreeMap::new();
        let mut local: Option<Result<Arc<MiniLm>, String>> = None;
        let mut remote: Option<Result<Arc<OpenAiCompatible>, String>> = None;
        for (name, kind) in &cfg.models {
            let slot = match kind {
                ProviderKind::Local => {
                    let r = local.get_or_insert_with(|| load_local(cfg));
                    match r {
                        Ok(m) => Slot::Ready(Provider {
                            embedder: m.clone(),
                            local: Some(m.clone()),
                        }),
                        Err(e) => Slot::Unavailable(e.clone()),
                    }
                }
                ProviderKind::OpenAi => {
                    let r = remote.get_or_insert_with(|| load_openai(&cfg.openai));
                    match r {
                        Ok(p) => Slot::Ready(Provider {
                            embedder: p.clone(),
                            local: None,
                        }),
                        Err(e) => Slot::Unavailable(e.clone()),
                    }
                }
            };
            if let Slot::Unavailable(reason) = &slot {
                tracing::warn!(model = %name, %reason, "embedding model unavailable");
            }
            slots.insert(name.clone(), slot);
        }
        EmbeddingRegistry { slots }
    }

    /// A registry of ready providers (tests).
    pub fn with_providers(providers: Vec<(String, Provider)>) -> EmbeddingRegistry {
        EmbeddingRegistry {
            slots: providers
                .into_iter()
                .map(|(n, p)| (n, Slot::Ready(p)))
                .collect(),
        }
    }

    /// Configured Carbon names (available or not), sorted.
    pub fn configured(&self) -> Vec<String> {
        self.slots.keys().cloned().collect()
    }

    /// Whether `name` is configured (it may still be unavailable).
    pub fn is_configured(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// Checks that `name` is configured (for request validation).
    pub fn check_configured(&self, name: &str) -> Result<(), ProviderError> {
        if self.is_configured(name) {
            Ok(())
        } else {
            Err(ProviderError::NotConfigured {
                requested: name.to_string(),
                configured: self.configured(),
            })
        }
    }

    /// Ready providers grouped by embedder (names sharing one loaded model together), the
    /// group answering [`DEFAULT_MODEL`] first: lets the binary hand the same loaded models
    /// to the search endpoint.
    pub fn ready_groups(&self) -> Vec<(Vec<String>, Arc<dyn Embedder>)> {
        let mut groups: Vec<(Vec<String>, Arc<dyn Embedder>)> = Vec::new();
        for (name, slot) in &self.slots {
            let Slot::Ready(p) = slot else { continue };
            match groups.iter_mut().find(|(_, e)| Arc::ptr_eq(e, &p.embedder)) {
                Some((names, _)) => names.push(name.clone()),
                None => groups.push((vec![name.clone()], p.embedder.clone())),
            }
        }
        groups.sort_by_key(|(names, _)| !names.iter().any(|n| n == DEFAULT_MODEL));
        groups
    }

    /// The provider for `name`.
    pub fn get(&self, name: &str) -> Result<&Provider, ProviderError> {
        match self.slots.get(name) {
            Some(Slot::Ready(p)) => Ok(p),
            Some(Slot::Unavailable(r)) => Err(ProviderError::Unavailable(r.clone())),
            None => Err(ProviderError::NotConfigured {
                requested: name.to_string(),
                configured: self.configured(),
            }),
        }
    }
}

fn load_local(cfg: &EmbeddingConfig) -> Result<Arc<MiniLm>, String> {
    if !cfg.model_dir.join("model.safetensors").is_file() {
        return Err(format!(
            "{MODEL_MISSING} (looked in {})",
            cfg.model_dir.display()
        ));
    }
    MiniLm::load(&cfg.model_dir, cfg.threads.max(1))
        .map(Arc::new)
        .map_err(|e: EmbedError| format!("embedding model cannot be loaded: {e}"))
}

fn load_openai(s: &OpenAiSettings) -> Result<Arc<OpenAiCompatible>, String> {
    let (Some(base), Some(model), Some(dims)) = (&s.base_url, &s.model, s.dims) else {
        return Err(
            "OpenAI-compatible embeddings are not configured: set CARBIDE_OPENAI_BASE_URL, \
             CARBIDE_OPENAI_MODEL and CARBIDE_OPENAI_DIMS"
                .into(),
        );
    };
    let mut c = OpenAiConfig::new(base.clone(), model.clone(), dims, 8191);
    c.api_key = s.api_key.clone();
    OpenAiCompatible::new(c)
        .map(Arc::new)
        .map_err(|e| format!("OpenAI-compatible embeddings cannot be set up: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        let m = parse_model_mapping("OPENAI=local, openai_ada_small_1536=openai").unwrap();
        assert_eq!(m[1], ("OPENAI_ADA_SMALL_1536".into(), ProviderKind::OpenAi));
        assert!(parse_model_mapping("FOO=local").is_err());
        assert!(parse_model_mapping("OPENAI=gpu").is_err());
        assert!(parse_model_mapping("").is_err());
    }

    #[test]
    fn missing_model_is_unavailable_not_fatal() {
        let cfg = EmbeddingConfig {
            model_dir: "/nonexistent".into(),
            models: parse_model_mapping("OPENAI=local,OPENAI_ADA_SMALL_1536=openai").unwrap(),
            openai: OpenAiSettings::default(),
            threads: 1,
        };
        let r = EmbeddingRegistry::from_config(&cfg);
        match r.get("OPENAI") {
            Err(ProviderError::Unavailable(s)) => assert!(s.contains("run make model")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.get("SOLAR_1_MINI"),
            Err(ProviderError::NotConfigured { .. })
        ));
        assert!(
            r.check_configured("SOLAR_1_MINI")
                .unwrap_err()
                .to_string()
                .contains("OPENAI, OPENAI_ADA_SMALL_1536")
        );
    }

    #[test]
    fn estimate_spans() {
        let s = "Hello, wonderful world";
        let spans = EstimatedTokens.token_spans(s);
        let pieces: Vec<&str> = spans.iter().map(|&(a, b)| &s[a..b]).collect();
        assert_eq!(pieces, ["Hell", "o", ",", "wond", "erfu", "l", "worl", "d"]);
    }
}
