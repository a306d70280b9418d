//! Webhook delivery worker: drains the durable outbox in the store, signs each body exactly as
//! Carbon does (`Carbon-Signature` v1 and `Carbon-Signature-Compact` v2) and retries failures
//! with exponential backoff. Rows are claimed with a lease, so several workers (or processes)
//! never send the same row concurrently, and nothing is lost across restarts.

use std::time::Duration;

use carbide_core::timefmt::now_unix;
use carbide_core::webhook::{outer_body, signature_headers};
use carbide_store::{OutboxDelivery, Store};
use rand::RngCore;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Tuning of the delivery worker.
#[derive(Debug, Clone)]
pub struct WebhookWorkerConfig {
    /// How often to look for due rows when idle.
    pub poll_interval: Duration,
    /// Total attempts before a row is given up (marked failed).
    pub max_attempts: i64,
    /// Delay after the first failure; each further failure multiplies it by 3
    /// (defaults: 15 s, 45 s, 135 s, 405 s ≈ 10 minutes over 5 attempts).
    pub base_backoff: Duration,
    /// How long a claimed row stays reserved for this worker.
    pub lease: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Rows claimed (and sent concurrently) per round.
    pub batch: usize,
}

impl Default for WebhookWorkerConfig {
    fn default() -> Self {
        WebhookWorkerConfig {
            poll_interval: Duration::from_millis(500),
            max_attempts: 5,
            base_backoff: Duration::from_secs(15),
            lease: Duration::from_secs(60),
            request_timeout: Duration::from_secs(15),
            batch: 16,
        }
    }
}

impl WebhookWorkerConfig {
    /// Seconds to wait after the `attempt`-th failure (1-based).
    pub fn backoff_secs(&self, attempt: i64) -> i64 {
        let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
        let base = self.base_backoff.as_secs_f64() * 3f64.powi(exp as i32);
        base.ceil() as i64
    }
}

/// Runs the delivery loop with default settings until `shutdown` becomes `true` (or its
/// sender is dropped).
pub async fn run_webhook_worker(
    store: Store,
    http: reqwest::Client,
    shutdown: watch::Receiver<bool>,
) {
    run_webhook_worker_with(store, http, shutdown, WebhookWorkerConfig::default()).await
}

/// [`run_webhook_worker`] with explicit settings.
pub async fn run_webhook_worker_with(
    store: Store,
    http: reqwest::Client,
    mut shutdown: watch::Receiver<bool>,
    cfg: WebhookWorkerConfig,
) {
    let mut idb = [0u8; 8];
    rand::rng().fill_bytes(&mut idb);
    let owner = format!("{}-{}", std::process::id(), hex::encode(idb));
    tracing::info!(owner, "webhook worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let sent = match round(&store, &http, &owner, &cfg).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "webhook outbox round failed");
                0
            }
        };
        if sent > 0 {
            continue; // more may be due
        }
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() { break; }
            }
            _ = tokio::time::sleep(cfg.poll_interval) => {}
        }
    }
    tracing::info!(owner, "webhook worker stopped");
}

#[derive(Debug)]
struct WorkerError(String);

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, carbide_store::StoreError> + Send + 'static,
) -> Result<T, WorkerError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(WorkerError(e.to_string())),
        Err(e) => Err(WorkerError(format!("blocking task failed: {e}"))),
    }
}

/// One claim-and-send round; returns how many rows were processed.
async fn round(
    store: &Store,
    http: &reqwest::Client,
    owner: &str,
    cfg: &WebhookWorkerConfig,
) -> Result<usize, WorkerError> {
    let (s, o, lease, batch) = (
        store.clone(),
        owner.to_string(),
        cfg.lease.as_secs() as i64,
        cfg.batch,
    );
    let claimed = blocking(move || s.claim_webhook_deliveries(&o, lease, batch)).await?;
    let n = claimed.len();
    let mut set = JoinSet::new();
    for d in claimed {
        let (store, http, owner, cfg) =
            (store.clone(), http.clone(), owner.to_string(), cfg.clone());
        set.spawn(async move {
            let result = send(&http, &d, cfg.request_timeout).await;
            let id = d.id;
            let outcome = match result {
                Ok(()) => blocking(move || store.complete_webhook_delivery(id, &owner)).await,
                Err(err) => {
                    let attempt = d.attempts + 1;
                    let retry_at = (attempt < cfg.max_attempts).then(|| now_unix() + cfg.backoff_secs(attempt));
                    if retry_at.is_none() {
                        tracing::warn!(outbox_id = id, url = %d.url, error = %err, "webhook delivery given up");
                    } else {
                        tracing::info!(outbox_id = id, url = %d.url, attempt, error = %err, "webhook delivery failed; will retry");
                    }
                    blocking(move || store.fail_webhook_delivery(id, &owner, &err, retry_at)).await
                }
            };
            if let Err(e) = outcome {
                tracing::error!(outbox_id = id, error = %e, "cannot record webhook delivery outcome");
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(n)
}

/// Sends one signed delivery; `Err` carries a short reason.
async fn send(http: &reqwest::Client, d: &OutboxDelivery, timeout: Duration) -> Result<(), String> {
    let ts = now_unix();
    let (v1, v2) = signature_headers(&d.signing_key, ts, &d.payload).map_err(|e| e.to_string())?;
    let body = outer_body(&d.payload, false);
    let resp = http
        .post(&d.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("Carbon-Signature", v1)
        .header("Carbon-Signature-Compact", v2)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered HTTP {}", resp.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_schedule_spans_about_ten_minutes() {
        let c = WebhookWorkerConfig::default();
        let total: i64 = (1..c.max_attempts).map(|a| c.backoff_secs(a)).sum();
        assert_eq!(c.backoff_secs(1), 15);
        assert_eq!(c.backoff_secs(2), 45);
        assert_eq!(total, 15 + 45 + 135 + 405);
    }
}
