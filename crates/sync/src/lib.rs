//! carbide-sync: background work. For now only outgoing webhook delivery ([`webhooks`]);
//! connectors, job workers and the scheduler come later.

pub mod webhooks;

pub use webhooks::{WebhookWorkerConfig, run_webhook_worker, run_webhook_worker_with};
