//! `/health`, `/metrics` and `/openapi.json`.

mod common;

use common::{finish, start};
use serde_json::json;

#[tokio::test]
async fn health_metrics_openapi() {
    let s = start().await;
    let (_, key) = s.org("acme");
    let (st, v) = finish(s.client.get(s.url("/health")).send().await.unwrap()).await;
    assert_eq!((st, v), (200, json!({"status": "ok"})));

    s.org_get(&key, "/organization").await;
    s.org_get("bad", "/organization").await;
    let r = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",path="/organization",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",path="/organization",status="401"} 1"#)
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));

    let (st, doc) = finish(s.client.get(s.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(st, 200);
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/health", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/auth/v1/access_token", "get"),
        ("/auth/v1/white_labeling", "get"),
        ("/whoami", "get"),
        ("/user", "post"),
        ("/list_users", "post"),
        ("/delete_users", "post"),
        ("/update_users", "post"),
        ("/modify_user_configuration", "post"),
        ("/organization", "get"),
        ("/organization/update", "post"),
        ("/organization/statistics", "post"),
        ("/add_webhook", "post"),
        ("/webhooks", "post"),
        ("/delete_webhook/{webhook_id}", "delete"),
        ("/white_label/create", "post"),
        ("/white_label/list", "post"),
        ("/white_label/update", "post"),
        ("/white_label/delete", "post"),
    ];
    for (p, m) in expected {
        assert!(
            paths.get(p).and_then(|x| x.get(m)).is_some(),
            "{m} {p} missing from openapi.json"
        );
    }
    assert_eq!(
        paths.len(),
        expected.len(),
        "unexpected paths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    assert!(doc["components"]["schemas"]["UserResponse"].is_object());
    assert!(doc["components"]["securitySchemes"]["apiKey"].is_object());

    // two servers in one process keep separate registries
    let s2 = start().await;
    let text2 = s2
        .client
        .get(s2.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text2.contains("/organization"));
}
