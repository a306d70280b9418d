//! carbide-api: Carbon-compatible HTTP API (axum).
//!
//! [`router`] builds the complete application: every route is registered through utoipa-axum's
//! `OpenApiRouter`, so it appears in `GET /openapi.json`; plus `/health`, `/metrics`, request
//! metrics, a body limit and panic catching. Handlers stay thin and call [`carbide_store::Store`]
//! on the blocking pool.

pub mod auth;
mod body;
pub mod embedding_models;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod models;
mod routes;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use carbide_store::{Store, StoreError};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;

/// Server settings the API needs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Externally visible base URL (e.g. `https://carbide.example.com`), no trailing slash.
    pub public_url: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Shared state of the HTTP app. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    config: Arc<ApiConfig>,
    metrics: Arc<metrics::Metrics>,
    openapi: Arc<OnceLock<String>>,
    embedding_models: Arc<embedding_models::EmbeddingModels>,
    files: Arc<FilesConfig>,
    registry: Arc<carbide_sync::EmbeddingRegistry>,
    dropbox: Option<carbide_sync::dropbox::Dropbox>,
    dropbox_sync: Option<carbide_sync::dropbox_sync::DropboxSync>,
}

/// Settings of the file endpoints.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Largest accepted file (`CARBIDE_MAX_FILE_MB`, default 50 MB).
    pub max_file_bytes: u64,
    /// Let `/upload_file_from_url` fetch loopback/private/link-local addresses
    /// (`CARBIDE_ALLOW_PRIVATE_URLS=1`; tests).
    pub allow_private_urls: bool,
    /// Timeout of one URL download.
    pub url_timeout: std::time::Duration,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_file_bytes: 50 * 1024 * 1024,
            allow_private_urls: false,
            url_timeout: std::time::Duration::from_secs(60),
        }
    }
}

impl AppState {
    /// Builds the state (each state has its own Prometheus registry).
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        AppState {
            store,
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
            openapi: Arc::new(OnceLock::new()),
            embedding_models: Arc::new(embedding_models::EmbeddingModels::none()),
            files: Arc::new(FilesConfig::default()),
            registry: Arc::new(carbide_sync::EmbeddingRegistry::default()),
            dropbox: None,
            dropbox_sync: None,
        }
    }

    /// Sets the file endpoints' settings and the embedding provider registry files are
    /// validated against (default: 50 MB, `OPENAI` → local model not installed).
    pub fn with_files(
        mut self,
        files: FilesConfig,
        registry: Arc<carbide_sync::EmbeddingRegistry>,
    ) -> AppState {
        self.files = Arc::new(files);
        self.registry = registry;
        self
    }

    /// File endpoint settings.
    pub fn files_config(&self) -> &FilesConfig {
        &self.files
    }

    /// Enables the Dropbox endpoints with this connector (default: none; they answer 400).
    pub fn with_dropbox(mut self, dropbox: carbide_sync::dropbox::Dropbox) -> AppState {
        self.dropbox = Some(dropbox);
        self
    }

    /// The Dropbox connector, when configured.
    pub fn dropbox(&self) -> Option<&carbide_sync::dropbox::Dropbox> {
        self.dropbox.as_ref()
    }

    /// The Dropbox sync engine this process runs, so `/integrations/files/sync` wakes its
    /// worker at once (without it, a private engine is used and the worker finds the new jobs
    /// at its next poll).
    pub fn with_dropbox_sync(mut self, sync: carbide_sync::dropbox_sync::DropboxSync) -> AppState {
        self.dropbox_sync = Some(sync);
        self
    }

    /// The Dropbox sync engine set by [`AppState::with_dropbox_sync`].
    pub fn dropbox_sync(&self) -> Option<&carbide_sync::dropbox_sync::DropboxSync> {
        self.dropbox_sync.as_ref()
    }

    /// The embedding provider registry.
    pub fn registry(&self) -> &carbide_sync::EmbeddingRegistry {
        &self.registry
    }

    /// Sets the embedding models queries are embedded with (default: none, keyword-only search).
    pub fn with_embedding_models(mut self, models: embedding_models::EmbeddingModels) -> AppState {
        self.embedding_models = Arc::new(models);
        self
    }

    /// The configured embedding models.
    pub fn embedding_models(&self) -> &embedding_models::EmbeddingModels {
        &self.embedding_models
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Runs a blocking store call on the blocking pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => r.map_err(ApiError::from),
            Err(e) => Err(ApiError::Internal(format!("blocking task failed: {e}"))),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "carbide",
        description = "Self-hosted, Carbon-compatible API connecting end users' Dropbox accounts to LLMs."
    ),
    modifiers(&SecurityAddon)
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let comps = openapi.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "authorization",
                "Bearer <organization API key>",
            ))),
        );
        comps.add_security_scheme(
            "customerId",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "customer-id",
                "Organization-supplied customer id",
            ))),
        );
        comps.add_security_scheme(
            "accessToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "authorization",
                "Token <customer access token>",
            ))),
        );
    }
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    let api = routes::all(OpenApiRouter::with_openapi(ApiDoc::openapi()));
    let (app, doc) = api.split_for_parts();
    let doc_json = doc.to_json().unwrap_or_else(|_| "{}".to_string());
    let _ = state.openapi.set(doc_json);
    let max = state.config.max_body_bytes;
    app.fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::buffer_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(max))
        .layer(catch_panic_layer())
        .with_state(state)
}

type PanicHandler = fn(Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response;

/// Turns a panic in any handler into `500 {"detail":"internal error"}` (logged).
fn catch_panic_layer() -> CatchPanicLayer<PanicHandler> {
    fn on_panic(err: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
        let msg = err
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| err.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        tracing::error!(panic = msg, "handler panicked");
        error::internal_error_response()
    }
    CatchPanicLayer::custom(on_panic as PanicHandler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("kaboom")
    }

    #[tokio::test]
    async fn panics_become_500_json() {
        let app: Router = Router::new()
            .route("/boom", axum::routing::get(boom))
            .layer(catch_panic_layer());
        let resp = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"detail":"internal error"}"#);
    }
}
