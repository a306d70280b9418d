//! Outgoing webhooks end to end: events enqueued by the API are delivered by the
//! `carbide-sync` worker to a local receiver that verifies both Carbon signatures
//! independently, and survive a receiver outage and a worker restart.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use carbide_sync::{WebhookWorkerConfig, run_webhook_worker_with};
use common::start;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, String)>>>);

async fn receive(State(r): State<Received>, headers: HeaderMap, body: String) -> StatusCode {
    r.0.lock().unwrap().push((headers, body));
    StatusCode::OK
}

async fn receiver_on(listener: tokio::net::TcpListener) -> Received {
    let rec = Received::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(rec.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    rec
}

fn hmac_hex(key_hex: &str, msg: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(&hex::decode(key_hex).unwrap()).unwrap();
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Verifies a delivery the way Carbon's official verifier does; returns the inner payload.
fn verify(key: &str, headers: &HeaderMap, body: &str) -> Value {
    assert_eq!(headers["content-type"], "application/json");
    let sig = headers["carbon-signature"].to_str().unwrap();
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let ts = t.strip_prefix("t=").unwrap();
    assert_eq!(v1, hmac_hex(key, &format!("{ts}.{body}")), "v1 signature");
    let outer: Value = serde_json::from_str(body).unwrap();
    assert_eq!(outer.as_object().unwrap().len(), 1);
    let payload = outer["payload"].as_str().unwrap();
    // Python json.dumps default separators
    assert!(body.starts_with("{\"payload\": \""));
    assert!(payload.contains("\", \"") && payload.contains("\": "));
    let compact_sig = headers["carbon-signature-compact"].to_str().unwrap();
    let (t2, v2) = compact_sig.split_once(",v2=").unwrap();
    assert_eq!(t2, t);
    // re-serialise with (",", ":") like the verifier: only the outer separators change
    let compact = format!(
        "{{\"payload\":{}}}",
        serde_json::to_string(payload).unwrap()
    );
    assert_eq!(
        v2,
        hmac_hex(key, &format!("{ts}.{compact}")),
        "v2 signature"
    );
    serde_json::from_str(payload).unwrap()
}

fn fast() -> WebhookWorkerConfig {
    WebhookWorkerConfig {
        poll_interval: Duration::from_millis(50),
        base_backoff: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        ..WebhookWorkerConfig::default()
    }
}

async fn wait_for(rec: &Received, n: usize) {
    for _ in 0..200 {
        if rec.0.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} deliveries, got {}",
        rec.0.lock().unwrap().len()
    );
}

#[tokio::test]
async fn delete_users_and_statistics_are_delivered_signed() {
    let s = start().await;
    let (org, key) = s.org("acme");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rec = receiver_on(listener).await;
    let (_, w) = s.org_post(&key, "/add_webhook", json!({"url": url})).await;
    let signing_key = w["signing_key"].as_str().unwrap().to_string();

    s.cust_get(&key, "alice", "/whoami").await;
    let alice = s.store.get_customer(org, "alice").unwrap().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(run_webhook_worker_with(
        s.store.clone(),
        reqwest::Client::new(),
        rx,
        fast(),
    ));

    let (st, _) = s
        .org_post(&key, "/delete_users", json!({"customer_ids": ["alice"]}))
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .org_post(&key, "/organization/statistics", json!({}))
        .await;
    assert_eq!(st, 200);
    wait_for(&rec, 2).await;

    let got = rec.0.lock().unwrap().clone();
    let p0 = verify(&signing_key, &got[0].0, &got[0].1);
    assert_eq!(p0["webhook_type"], "ORGANIZATION_USER_DELETED");
    assert_eq!(p0["obj"]["object_type"], "ORGANIZATION_USER");
    assert_eq!(p0["obj"]["object_id"], alice.id.to_string());
    assert_eq!(p0["obj"]["additional_information"], "null");
    assert_eq!(p0["customer_id"], "alice");
    assert!(p0["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
    let p1 = verify(&signing_key, &got[1].0, &got[1].1);
    assert_eq!(p1["webhook_type"], "FILE_STATISTICS_AGGREGATED");
    // the receiver answers before the worker records the delivery: wait for the bookkeeping
    let mut rows = s.store.outbox_rows(org).unwrap();
    for _ in 0..100 {
        if rows.iter().all(|r| r.delivered_at.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        rows = s.store.outbox_rows(org).unwrap();
    }
    assert!(rows.iter().all(|r| r.delivered_at.is_some()));

    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn outbox_survives_receiver_outage_and_restart() {
    let s = start().await;
    let (org, key) = s.org("acme");
    // reserve a port, then close it: the receiver is down
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let (_, w) = s.org_post(&key, "/add_webhook", json!({"url": url})).await;
    let signing_key = w["signing_key"].as_str().unwrap().to_string();

    // the API answers immediately although the receiver is down
    s.cust_get(&key, "bob", "/whoami").await;
    let (st, _) = s
        .org_post(&key, "/delete_users", json!({"customer_ids": ["bob"]}))
        .await;
    assert_eq!(st, 200);

    // first worker: fails at least once, then stops
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(run_webhook_worker_with(
        s.store.clone(),
        reqwest::Client::new(),
        rx,
        fast(),
    ));
    for _ in 0..100 {
        if s.store.outbox_rows(org).unwrap()[0].attempts >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .unwrap()
        .unwrap();
    let row = s.store.outbox_rows(org).unwrap()[0].clone();
    assert!(
        row.attempts >= 1 && row.delivered_at.is_none() && row.failed_at.is_none(),
        "{row:?}"
    );
    assert!(row.last_error.is_some());

    // "restart": reopen the database from disk, bring the receiver up, start a new worker
    let reopened =
        carbide_store::Store::open(&s.dir.path().join("carbide.db"), s.key.clone()).unwrap();
    let rec = receiver_on(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    )
    .await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(run_webhook_worker_with(
        reopened.clone(),
        reqwest::Client::new(),
        rx,
        fast(),
    ));
    wait_for(&rec, 1).await;
    let (h, b) = rec.0.lock().unwrap()[0].clone();
    let p = verify(&signing_key, &h, &b);
    assert_eq!(p["webhook_type"], "ORGANIZATION_USER_DELETED");
    assert_eq!(p["customer_id"], "bob");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .unwrap()
        .unwrap();
    let row = reopened.outbox_rows(org).unwrap()[0].clone();
    assert!(row.delivered_at.is_some());
    assert_eq!(rec.0.lock().unwrap().len(), 1, "delivered exactly once");
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let s = start().await;
    let (org, key) = s.org("acme");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fail", listener.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(0usize));
    let h2 = hits.clone();
    let app = axum::Router::new().route(
        "/fail",
        axum::routing::post(move || {
            let h = h2.clone();
            async move {
                *h.lock().unwrap() += 1;
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    s.org_post(&key, "/add_webhook", json!({"url": url})).await;
    s.store
        .enqueue_webhook(org, None, "CHECKUP", "NONE", json!("x"), None)
        .unwrap();
    let cfg = WebhookWorkerConfig {
        max_attempts: 3,
        base_backoff: Duration::from_millis(1),
        ..fast()
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(run_webhook_worker_with(
        s.store.clone(),
        reqwest::Client::new(),
        rx,
        cfg,
    ));
    for _ in 0..200 {
        if s.store.outbox_rows(org).unwrap()[0].failed_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .unwrap()
        .unwrap();
    let row = s.store.outbox_rows(org).unwrap()[0].clone();
    assert!(row.failed_at.is_some(), "{row:?}");
    assert_eq!(row.attempts, 3);
    assert_eq!(*hits.lock().unwrap(), 3);
    assert!(row.last_error.unwrap().contains("500"));
}
