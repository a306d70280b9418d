//! carbide-sync: background work and the pieces it shares with the API.
//!
//! - [`webhooks`]: outgoing webhook delivery from the durable outbox.
//! - [`files`]: file processing jobs (parse in the sandbox, chunk, embed, index).
//! - [`dropbox`]: the Dropbox connector (OAuth connect flow, token lifecycle, item listing).
//! - [`embedding`]: the registry mapping Carbon `embedding_model` names to providers.
//!
//! Dependencies run one way: `carbide-api` depends on this crate (for the registry and file
//! options), never the reverse.

pub mod dropbox;
pub mod dropbox_sync;
pub mod embedding;
pub mod files;
pub mod webhooks;

pub use embedding::{EmbeddingConfig, EmbeddingRegistry, Provider, ProviderError, ProviderKind};
pub use files::{FileOptions, FileWorkerConfig, ProcessError, run_file_worker};
pub use webhooks::{WebhookWorkerConfig, run_webhook_worker, run_webhook_worker_with};
