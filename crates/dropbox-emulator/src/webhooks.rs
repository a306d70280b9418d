//! Webhook delivery: coalesces (app, account) change notices, signs the body with
//! HMAC-SHA256(app secret) in `X-Dropbox-Signature`, and POSTs with a few retries.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::emulator::SharedRef;

/// Signs a webhook body.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Runs the delivery loop until the channel closes.
pub async fn run(
    shared: std::sync::Weak<crate::emulator::Shared>,
    mut rx: mpsc::UnboundedReceiver<(String, String)>,
) {
    while let Some(first) = rx.recv().await {
        // Coalesce notices arriving in a short window.
        let mut batch: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        batch.entry(first.0).or_default().insert(first.1);
        let window = tokio::time::sleep(Duration::from_millis(50));
        tokio::pin!(window);
        loop {
            tokio::select! {
                _ = &mut window => break,
                more = rx.recv() => match more {
                    Some((app, acct)) => { batch.entry(app).or_default().insert(acct); }
                    None => break,
                },
            }
        }
        let Some(sh) = shared.upgrade() else { return };
        for (app_key, accounts) in batch {
            deliver(&sh, &app_key, accounts);
        }
    }
}

fn deliver(sh: &SharedRef, app_key: &str, accounts: BTreeSet<String>) {
    let (secret, urls, uids) = {
        let st = sh.state.lock();
        let Some(app) = st.apps.get(app_key) else {
            return;
        };
        let uids: Vec<u64> = accounts
            .iter()
            .filter_map(|a| st.accounts.get(a).map(|x| x.uid))
            .collect();
        (app.secret.clone(), app.webhooks.clone(), uids)
    };
    let accounts: Vec<String> = accounts.into_iter().collect();
    let body = json!({"list_folder": {"accounts": accounts}, "delta": {"users": uids}}).to_string();
    let signature = sign(&secret, body.as_bytes());
    for url in urls {
        let client = sh.http.clone();
        let body = body.clone();
        let signature = signature.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            for attempt in 0..4 {
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-dropbox-signature", &signature)
                    .body(body.clone())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::debug!(status = %r.status(), attempt, "webhook delivery failed")
                    }
                    Err(e) => tracing::debug!(error = %e, attempt, "webhook delivery failed"),
                }
                tokio::time::sleep(delay).await;
                delay *= 3;
            }
        });
    }
}
