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
        text.contains(r#"carbide_search_index_bytes{index="keyword"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"carbide_search_index_bytes{index="vector"} 0"#),
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
        ("/add_webhook", "post"),
        ("/auth/v1/access_token", "get"),
        ("/auth/v1/white_labeling", "get"),
        ("/connect", "get"),
        ("/connect", "post"),
        ("/connect.js", "get"),
        ("/connect/assets/{name}", "get"),
        ("/create_user_file_tags", "post"),
        ("/data_sources", "post"),
        ("/data_sources/tags/add", "post"),
        ("/data_sources/tags/remove", "post"),
        ("/delete_files", "post"),
        ("/delete_files_v2", "post"),
        ("/delete_user_file_tags", "post"),
        ("/delete_users", "post"),
        ("/delete_webhook/{webhook_id}", "delete"),
        ("/embeddings", "post"),
        ("/files/parsed/{file_id}", "get"),
        ("/files/raw/{file_id}", "get"),
        ("/health", "get"),
        ("/integrations/connect", "post"),
        ("/integrations/dropbox", "get"),
        ("/integrations/dropbox/webhook", "get"),
        ("/integrations/dropbox/webhook", "post"),
        ("/integrations/files/sync", "post"),
        ("/integrations/items/list", "post"),
        ("/integrations/items/sync", "post"),
        ("/integrations/items/sync/cancel", "post"),
        ("/integrations/oauth_url", "post"),
        ("/list_chunks_and_embeddings", "post"),
        ("/list_users", "post"),
        ("/metrics", "get"),
        ("/modify_user_configuration", "post"),
        ("/openapi.json", "get"),
        ("/organization", "get"),
        ("/organization/statistics", "post"),
        ("/organization/update", "post"),
        ("/parsed_file/{file_id}", "get"),
        ("/raw_file/{file_id}", "get"),
        ("/resync_file", "post"),
        ("/revoke_access_token", "post"),
        ("/text_chunks", "post"),
        ("/update_users", "post"),
        ("/upload_chunks_and_embeddings", "post"),
        ("/upload_file_from_url", "post"),
        ("/upload_text", "post"),
        ("/uploadfile", "post"),
        ("/user", "post"),
        ("/user_data_sources", "post"),
        ("/user_files", "post"),
        ("/user_files_v2", "post"),
        ("/webhooks", "post"),
        ("/white_label/create", "post"),
        ("/white_label/delete", "post"),
        ("/white_label/list", "post"),
        ("/white_label/update", "post"),
        ("/whoami", "get"),
    ];
    for (p, m) in expected {
        assert!(
            paths.get(p).and_then(|x| x.get(m)).is_some(),
            "{m} {p} missing from openapi.json"
        );
    }
    // Every documented operation is one we expect: nothing served goes undocumented (the
    // OpenApiRouter guarantees that) and nothing documented is unknown to this test.
    let operations: usize = paths
        .values()
        .filter_map(|v| v.as_object())
        .map(|m| {
            m.keys()
                .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                .count()
        })
        .sum();
    assert_eq!(
        operations,
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
