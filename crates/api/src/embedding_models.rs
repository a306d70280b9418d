//! Which Carbon `embedding_model` names this server can serve, and with which [`Embedder`].
//!
//! Vectors are stored under the provider's [`Embedder::model_id`] (e.g.
//! `sentence-transformers/all-MiniLM-L6-v2`), never under the Carbon alias, so re-pointing an alias
//! at another model can never mix vectors of two models in one search. A request without
//! `embedding_model` uses the default model; a Carbon name no configured model answers is a 400.

use std::sync::Arc;

use carbide_embed::Embedder;

/// One configured model and the Carbon names it answers.
#[derive(Clone)]
pub struct EmbeddingModel {
    /// Carbon `EmbeddingGenerators` names served by this model (upper case).
    pub carbon_names: Vec<String>,
    /// The provider.
    pub embedder: Arc<dyn Embedder>,
}

impl std::fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingModel")
            .field("carbon_names", &self.carbon_names)
            .field("model_id", &self.embedder.model_id())
            .finish()
    }
}

/// The configured models; the first one is the default.
#[derive(Clone, Debug, Default)]
pub struct EmbeddingModels {
    models: Vec<EmbeddingModel>,
}

impl EmbeddingModels {
    /// No model: semantic search is unavailable and searches run keyword-only.
    pub fn none() -> EmbeddingModels {
        EmbeddingModels::default()
    }

    /// Adds a model answering `carbon_names` (the first added model is the default).
    pub fn with(mut self, carbon_names: &[&str], embedder: Arc<dyn Embedder>) -> EmbeddingModels {
        self.models.push(EmbeddingModel {
            carbon_names: carbon_names.iter().map(|s| s.to_uppercase()).collect(),
            embedder,
        });
        self
    }

    /// The default model, if any.
    pub fn default_model(&self) -> Option<&EmbeddingModel> {
        self.models.first()
    }

    /// The model for a requested Carbon name (`None` = default). `Err` carries a user-facing
    /// message for a name no configured model answers.
    pub fn resolve(&self, requested: Option<&str>) -> Result<Option<&EmbeddingModel>, String> {
        let Some(name) = requested else {
            return Ok(self.default_model());
        };
        let upper = name.to_uppercase();
        if let Some(m) = self.models.iter().find(|m| m.carbon_names.contains(&upper)) {
            return Ok(Some(m));
        }
        let configured: Vec<String> = self
            .models
            .iter()
            .map(|m| format!("{} ({})", m.carbon_names.join("/"), m.embedder.model_id()))
            .collect();
        Err(if configured.is_empty() {
            format!(
                "embedding model {name} is not configured on this server (no embedding model is configured)"
            )
        } else {
            format!(
                "embedding model {name} is not configured on this server; configured: {}",
                configured.join(", ")
            )
        })
    }
}
