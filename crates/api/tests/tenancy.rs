//! End-to-end tests of the tenancy endpoints, auth matrix, defaults and error shapes.

mod common;

use common::{assert_schema, finish, start};
use serde_json::{Value, json};

#[tokio::test]
async fn auth_matrix() {
    let s = start().await;
    let (_org, key) = s.org("acme");

    // missing authorization -> 422 FastAPI shape
    let (st, v) = finish(s.client.get(s.url("/whoami")).send().await.unwrap()).await;
    assert_eq!(st, 422);
    assert_eq!(
        v,
        json!({"detail":[{"loc":["header","authorization"],"msg":"field required","type":"value_error.missing"}]})
    );
    let (st, _) = finish(
        s.client
            .post(s.url("/list_users"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 422);

    // Bearer + customer-id
    let (st, v) = s.cust_get(&key, "alice", "/whoami").await;
    assert_eq!(st, 200, "{v}");
    assert_schema("UserResponse", &v);
    assert_eq!(v["organization_supplied_user_id"], "alice");

    // Bearer without customer-id on a customer endpoint -> 422 on the header
    let (st, v) = s.org_get(&key, "/whoami").await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["header", "customer-id"]));

    // token flow
    let (st, tok) = s.cust_get(&key, "alice", "/auth/v1/access_token").await;
    assert_eq!(st, 200);
    assert_schema("TokenResponse", &tok);
    let token = tok["access_token"].as_str().unwrap();
    let (st, v) = s.token_get(token, "/whoami").await;
    assert_eq!(st, 200);
    assert_eq!(v["organization_supplied_user_id"], "alice");

    // lowercase scheme
    let r = s
        .client
        .get(s.url("/whoami"))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(s.url("/whoami"))
        .header("authorization", format!("bearer {key}"))
        .header("customer-id", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // two authorization headers: bad token + good key, and good token + bad key
    let r = s
        .client
        .get(s.url("/whoami"))
        .header("authorization", "Token nope")
        .header("authorization", format!("Bearer {key}"))
        .header("customer-id", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(s.url("/whoami"))
        .header("authorization", format!("Token {token}"))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // and both on an org endpoint
    let r = s
        .client
        .get(s.url("/organization"))
        .header("authorization", format!("Token {token}"))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // wrong credentials -> 401 {"detail": str}
    let (st, v) = s.cust_get("ck_live_wrong", "alice", "/whoami").await;
    assert_eq!(st, 401);
    assert!(v["detail"].is_string());
    let (st, v) = s.token_get("ct_wrong", "/whoami").await;
    assert_eq!(st, 401);
    assert!(v["detail"].is_string());
    let (st, _) = s.org_get("ck_live_wrong", "/organization").await;
    assert_eq!(st, 401);
    let r = s
        .client
        .get(s.url("/organization"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // org-only endpoints refuse customer tokens
    let (st, v) = s.token_get(token, "/organization").await;
    assert_eq!(st, 403, "{v}");
    assert!(v["detail"].is_string());

    // rotated key stops working
    let new_key = s.store.rotate_api_key(_org).unwrap();
    let (st, _) = s.org_get(&key, "/organization").await;
    assert_eq!(st, 401);
    let (st, _) = s.org_get(&new_key, "/organization").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn users_endpoints() {
    let s = start().await;
    let (org, key) = s.org("acme");
    for c in ["a", "b", "c"] {
        s.cust_get(&key, c, "/whoami").await;
    }
    // /user
    let (st, v) = s.org_post(&key, "/user", json!({"customer_id": "b"})).await;
    assert_eq!(st, 200);
    assert_schema("UserResponse", &v);
    assert_eq!(v["organization_id"], org);
    let (st, v) = s
        .org_post(&key, "/user", json!({"customer_id": "zzz"}))
        .await;
    assert_eq!(st, 404);
    assert!(v["detail"].is_string());
    let (st, v) = s.org_post(&key, "/user", json!({})).await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["body", "customer_id"]));
    assert_eq!(v["detail"][0]["type"], "value_error.missing");

    // /list_users defaults: created_at desc, limit 10, count null
    let (st, v) = s.org_post(&key, "/list_users", json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(v["users"].as_array().unwrap().len(), 3);
    assert!(v["count"].is_null());
    for u in v["users"].as_array().unwrap() {
        assert_schema("ListUserResponse", u);
    }
    // partial nested pagination + explicit nulls
    let (st, v) = s
        .org_post(
            &key,
            "/list_users",
            json!({"pagination": {"limit": 2}, "include_count": true, "order_dir": "asc", "order_by": null}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    assert_eq!(v["count"], 3);
    let ids: Vec<i64> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert!(ids[0] < ids[1]);
    let (_, v) = s
        .org_post(&key, "/list_users", json!({"pagination": {"limit": 10, "offset": null, "starting_id": ids[0]}, "order_dir": "asc"}))
        .await;
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    let (_, v) = s
        .org_post(
            &key,
            "/list_users",
            json!({"filters": {"customer_ids": ["a", "c"]}, "include_count": true}),
        )
        .await;
    assert_eq!(v["count"], 2);
    // wrong enum -> 422 pointing at the field
    let (st, v) = s
        .org_post(&key, "/list_users", json!({"order_dir": "up"}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["body", "order_dir"]));
    let (st, v) = s
        .org_post(&key, "/list_users", json!({"pagination": {"limit": "x"}}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", "pagination", "limit"])
    );

    // /update_users: ALL, creation of unknown ids, limits, interval
    let (st, v) = s
        .org_post(
            &key,
            "/update_users",
            json!({"customer_ids": ["a", "new1"], "auto_sync_enabled_sources": "ALL", "max_files": 5, "auto_sync_interval": 6}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_schema("GenericSuccessResponse", &v);
    let (_, v) = s
        .org_post(&key, "/user", json!({"customer_id": "new1"}))
        .await;
    assert_eq!(v["auto_sync_enabled_sources"], json!(["ALL"]));
    assert_eq!(v["custom_limits"]["max_files"], 5);
    assert_eq!(
        s.store
            .get_customer(org, "new1")
            .unwrap()
            .unwrap()
            .auto_sync_interval,
        Some(6)
    );
    let (st, _) = s
        .org_post(
            &key,
            "/update_users",
            json!({"customer_ids": ["a"], "auto_sync_enabled_sources": ["DROPBOX", "DROPBOX"]}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, v) = s.org_post(&key, "/user", json!({"customer_id": "a"})).await;
    assert_eq!(v["auto_sync_enabled_sources"], json!(["DROPBOX"]));
    assert_eq!(
        v["custom_limits"]["max_files"], 5,
        "unset fields keep their value"
    );
    // invalid values
    let (st, v) = s
        .org_post(
            &key,
            "/update_users",
            json!({"customer_ids": ["a"], "auto_sync_interval": 5}),
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["body", "auto_sync_interval"]));
    let (st, _) = s
        .org_post(
            &key,
            "/update_users",
            json!({"customer_ids": ["a"], "auto_sync_interval": -1}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        s.store
            .get_customer(org, "a")
            .unwrap()
            .unwrap()
            .auto_sync_interval,
        None
    );
    let (st, v) = s
        .org_post(
            &key,
            "/update_users",
            json!({"customer_ids": ["a"], "max_files": -2}),
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["body", "max_files"]));
    let (st, v) = s
        .org_post(
            &key,
            "/update_users",
            json!({"customer_ids": ["a"], "auto_sync_enabled_sources": ["NOPE"]}),
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", "auto_sync_enabled_sources", 0])
    );
    let (st, _) = s
        .org_post(
            &key,
            "/update_users",
            json!({"customer_ids": ["a"], "auto_sync_enabled_sources": "SOME"}),
        )
        .await;
    assert_eq!(st, 422);
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let (st, v) = s
        .org_post(&key, "/update_users", json!({"customer_ids": many}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["body", "customer_ids"]));
    assert!(v["detail"][0]["msg"].as_str().unwrap().contains("100"));
    assert!(s.store.get_customer(org, "u0").unwrap().is_none());

    // /modify_user_configuration -> enabled_features
    let r = s
        .client
        .post(s.url("/modify_user_configuration"))
        .header("authorization", format!("Bearer {key}"))
        .header("customer-id", "b")
        .json(&json!({"configuration_key_name": "sparse_vectors", "value": {"enabled": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = s.org_post(&key, "/user", json!({"customer_id": "b"})).await;
    assert_eq!(
        v["enabled_features"],
        json!({"sparse_vectors": {"enabled": true}})
    );
    let tok = s.token(&key, "b").await;
    let r = s
        .client
        .post(s.url("/modify_user_configuration"))
        .header("authorization", format!("Token {tok}"))
        .json(&json!({"configuration_key_name": "dense", "value": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // /delete_users removes customer + tokens
    let (st, _) = s
        .org_post(
            &key,
            "/delete_users",
            json!({"customer_ids": ["b", "ghost"]}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s.org_post(&key, "/user", json!({"customer_id": "b"})).await;
    assert_eq!(st, 404);
    let (st, _) = s.token_get(&tok, "/whoami").await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn malformed_bodies_and_content_types() {
    let s = start().await;
    let (_, key) = s.org("acme");
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut r = s
            .client
            .post(s.url("/list_users"))
            .header("authorization", format!("Bearer {key}"))
            .body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let (st, v) = finish(post("{not json", Some("application/json")).await.unwrap()).await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["type"], "value_error.jsondecode");
    assert_eq!(v["detail"][0]["loc"][0], "body");
    // no / odd content type is tolerated
    let (st, _) = finish(post(r#"{"pagination":{"limit":1}}"#, None).await.unwrap()).await;
    assert_eq!(st, 200);
    let (st, _) = finish(
        post(r#"{"include_count":true}"#, Some("text/plain"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    // empty body = all defaults
    let (st, _) = finish(post("", None).await.unwrap()).await;
    assert_eq!(st, 200);
    // wrong top-level type
    let (st, v) = finish(post("[1,2]", Some("application/json")).await.unwrap()).await;
    assert_eq!(st, 422, "{v}");
    // unknown fields ignored
    let (st, _) = finish(post(r#"{"whatever": {"x": 1}}"#, None).await.unwrap()).await;
    assert_eq!(st, 200);
    // unknown route / method -> FastAPI-like JSON
    let (st, v) = finish(s.client.get(s.url("/nope")).send().await.unwrap()).await;
    assert_eq!((st, v), (404, json!({"detail": "Not Found"})));
    let (st, v) = finish(s.client.get(s.url("/list_users")).send().await.unwrap()).await;
    assert_eq!((st, v), (405, json!({"detail": "Method Not Allowed"})));
    // body too large (limit is 1 MiB in tests)
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2 << 20));
    let r = s
        .client
        .post(s.url("/list_users"))
        .header("authorization", format!("Bearer {key}"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn organization_endpoints() {
    let s = start().await;
    let (org, key) = s.org("acme");
    let (st, v) = s.org_get(&key, "/organization").await;
    assert_eq!(st, 200);
    assert_schema("OrganizationResponse", &v);
    assert_eq!(v["id"], org);
    assert_eq!(v["name"], "acme");
    assert!(v["file_statistics_aggregated_at"].is_null());
    let (st, v) = s
        .org_post(
            &key,
            "/organization/update",
            json!({"global_user_config": {"auto_sync_enabled_sources": ["DROPBOX"], "auto_sync_interval": 12},
                   "data_source_configs": {"DROPBOX": {}}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.org_get(&key, "/organization").await;
    assert_eq!(
        v["global_user_config"],
        json!({"auto_sync_enabled_sources": ["DROPBOX"], "auto_sync_interval": 12})
    );
    let o = s.store.get_organization(org).unwrap();
    assert_eq!(
        o.data_source_configs,
        json!({"DROPBOX": {"allowed_file_formats": [], "google_workspace_docs_save_as": null}})
    );
    let (st, v) = s
        .org_post(
            &key,
            "/organization/update",
            json!({"global_user_config": {"auto_sync_interval": 7}}),
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", "global_user_config", "auto_sync_interval"])
    );
    let (st, _) = s
        .org_post(
            &key,
            "/organization/update",
            json!({"data_source_configs": {"NOPE": {}}}),
        )
        .await;
    assert_eq!(st, 422);
    // statistics (no body at all, as the SDK sends it)
    let r = s
        .client
        .post(s.url("/organization/statistics"))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    let (st, v) = finish(r).await;
    assert_eq!(st, 200);
    assert_schema("GenericSuccessResponse", &v);
    let (_, v) = s.org_get(&key, "/organization").await;
    assert!(
        v["file_statistics_aggregated_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // white labeling summary (customer scoped)
    let (st, v) = s.cust_get(&key, "c1", "/auth/v1/white_labeling").await;
    assert_eq!(st, 200);
    assert_schema("WhiteLabelingResponse", &v);
    assert_eq!(v["integrations"], json!({}));
}

#[tokio::test]
async fn webhook_management() {
    let s = start().await;
    let (org, key) = s.org("acme");
    let mut ids = Vec::new();
    for i in 0..3 {
        let (st, v) = s
            .org_post(
                &key,
                "/add_webhook",
                json!({"url": format!("http://127.0.0.1:9/h{i}")}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_schema("Webhook", &v);
        let k = v["signing_key"].as_str().unwrap();
        assert_eq!(k.len(), 32);
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["organization_id"], org);
        ids.push(v["id"].as_i64().unwrap());
    }
    let (st, v) = s
        .org_post(
            &key,
            "/add_webhook",
            json!({"url": "http://127.0.0.1:9/h4"}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(v["detail"].as_str().unwrap().contains('3'));
    let (st, v) = s
        .org_post(&key, "/add_webhook", json!({"url": "not a url"}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["body", "url"]));

    let (st, v) = s.org_post(&key, "/webhooks", json!({})).await;
    assert_eq!(st, 200);
    assert_schema("WebhookQueryResponse", &v);
    assert_eq!(v["count"], 3);
    for w in v["results"].as_array().unwrap() {
        assert_schema("WebhookNoKey", w);
        assert!(w.get("signing_key").is_none());
    }
    let (_, v) = s
        .org_post(
            &key,
            "/webhooks",
            json!({"filters": {"ids": [ids[1]]}, "pagination": {"limit": 5}}),
        )
        .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["results"][0]["id"], ids[1]);
    let (_, v) = s
        .org_post(
            &key,
            "/webhooks",
            json!({"filters": {"ids": null}, "order_dir": "desc", "order_by": "created_at"}),
        )
        .await;
    assert_eq!(v["results"][0]["id"], ids[2]);

    let del = |id: String| {
        s.client
            .delete(s.url(&format!("/delete_webhook/{id}")))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    let (st, v) = finish(del(ids[0].to_string()).await.unwrap()).await;
    assert_eq!((st, v), (200, json!({"success": true})));
    let (st, _) = finish(del(ids[0].to_string()).await.unwrap()).await;
    assert_eq!(st, 404);
    let (st, v) = finish(del("abc".into()).await.unwrap()).await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["path", "webhook_id"]));
}

#[tokio::test]
async fn white_label_endpoints() {
    let s = start().await;
    let (org, key) = s.org("acme");
    let secret = "dbx-secret-0123456789-wxyz";
    let input = json!([{"data_source_type": "DROPBOX", "credentials": {
        "client_id": "appkey123", "client_secret": secret,
        "redirect_uri": "https://carbide.example.com/integrations/dropbox"}}]);
    let (st, v) = s.org_post(&key, "/white_label/create", input.clone()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["count"], 1);
    let rec = &v["results"][0];
    assert_eq!(rec["data_source_type"], "DROPBOX");
    assert_eq!(rec["credentials"]["client_secret"], "dbx-…wxyz");
    assert!(!v.to_string().contains(secret));
    let id = rec["id"].as_i64().unwrap();
    // duplicate -> 400
    let (st, v) = s.org_post(&key, "/white_label/create", input).await;
    assert_eq!(st, 400);
    assert!(v["detail"].as_str().unwrap().contains("DROPBOX"));
    // bad redirect
    let (st, v) = s
        .org_post(&key, "/white_label/create", json!([{"data_source_type": "BOX", "credentials": {"client_id": "x", "redirect_uri": "https://x.y/cb"}},
            {"data_source_type": "DROPBOX", "credentials": {"client_id": "x", "redirect_uri": "https://x.y/cb"}}]))
        .await;
    assert_eq!(st, 422);
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", 1, "credentials", "redirect_uri"])
    );
    // not an array
    let (st, _) = s
        .org_post(
            &key,
            "/white_label/create",
            json!({"data_source_type": "DROPBOX"}),
        )
        .await;
    assert_eq!(st, 422);
    // the connector sees the plain secret
    let creds = s.store.dropbox_app_credentials(org).unwrap().unwrap();
    assert_eq!(creds.0, "appkey123");
    assert_eq!(creds.1.as_deref(), Some(secret));
    // list with defaults and filters
    let (st, v) = s.org_post(&key, "/white_label/list", json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 1);
    let (_, v) = s
        .org_post(
            &key,
            "/white_label/list",
            json!({"filters": {"data_source_type": ["BOX"]}}),
        )
        .await;
    assert_eq!(v["count"], 0);
    let (st, _) = s
        .org_post(
            &key,
            "/white_label/list",
            json!({"filters": {"data_source_type": ["FOO"]}}),
        )
        .await;
    assert_eq!(st, 422);
    // update keeps secret when absent
    let (st, v) = s
        .org_post(&key, "/white_label/update", json!({"data_source_type": "DROPBOX", "credentials": {
            "client_id": "appkey456", "redirect_uri": "https://carbide.example.com/integrations/dropbox"}}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["credentials"]["client_id"], "appkey456");
    assert_eq!(v["credentials"]["client_secret"], "dbx-…wxyz");
    let (st, _) = s
        .org_post(
            &key,
            "/white_label/update",
            json!({"data_source_type": "BOX", "credentials": {
            "client_id": "a", "redirect_uri": "https://x.y/cb"}}),
        )
        .await;
    assert_eq!(st, 404);
    // white labeling summary shows it
    let (_, v) = s.cust_get(&key, "c", "/auth/v1/white_labeling").await;
    assert_eq!(v["integrations"], json!({"DROPBOX": true}));
    // delete
    let (st, v) = s
        .org_post(&key, "/white_label/delete", json!({"ids": [id]}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 1);
    assert!(s.store.dropbox_app_credentials(org).unwrap().is_none());
}

#[tokio::test]
async fn tenants_are_isolated() {
    let s = start().await;
    let (o1, k1) = s.org("one");
    let (o2, k2) = s.org("two");
    // same customer ids in both orgs
    for k in [&k1, &k2] {
        for c in ["alice", "bob"] {
            let (st, _) = s.cust_get(k, c, "/whoami").await;
            assert_eq!(st, 200);
        }
    }
    let a1 = s.store.get_customer(o1, "alice").unwrap().unwrap();
    let a2 = s.store.get_customer(o2, "alice").unwrap().unwrap();
    assert_ne!(a1.id, a2.id);
    // a token of org1/alice resolves to org1 only
    let t1 = s.token(&k1, "alice").await;
    let (_, v) = s.token_get(&t1, "/whoami").await;
    assert_eq!(v["id"], a1.id);
    assert_eq!(v["organization_id"], o1);
    // list_users only shows own customers, even when filtering by foreign ids
    let (_, v) = s
        .org_post(
            &k1,
            "/list_users",
            json!({"filters": {"carbon_user_ids": [a1.id, a2.id]}, "include_count": true}),
        )
        .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["users"][0]["id"], a1.id);
    // org2 updating "alice" touches only its own alice
    s.org_post(
        &k2,
        "/update_users",
        json!({"customer_ids": ["alice"], "max_files": 1}),
    )
    .await;
    assert!(
        s.store
            .get_customer(o1, "alice")
            .unwrap()
            .unwrap()
            .custom_limits
            .is_empty()
    );
    // org2 deleting "bob" leaves org1's bob
    s.org_post(&k2, "/delete_users", json!({"customer_ids": ["bob"]}))
        .await;
    assert!(s.store.get_customer(o1, "bob").unwrap().is_some());
    assert!(s.store.get_customer(o2, "bob").unwrap().is_none());
    // webhooks and white labels are per org
    let (_, w) = s
        .org_post(&k1, "/add_webhook", json!({"url": "http://127.0.0.1:9/x"}))
        .await;
    let wid = w["id"].as_i64().unwrap();
    let (_, v) = s
        .org_post(&k2, "/webhooks", json!({"filters": {"ids": [wid]}}))
        .await;
    assert_eq!(v["count"], 0);
    let r = s
        .client
        .delete(s.url(&format!("/delete_webhook/{wid}")))
        .header("authorization", format!("Bearer {k2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, v) = s.org_post(&k1, "/webhooks", json!({})).await;
    assert_eq!(v["count"], 1);
    let (_, wl) = s
        .org_post(&k1, "/white_label/create", json!([{"data_source_type": "DROPBOX", "credentials": {
            "client_id": "k", "client_secret": "s3cr3t-s3cr3t", "redirect_uri": "https://a.b/integrations/dropbox"}}]))
        .await;
    let wlid = wl["results"][0]["id"].as_i64().unwrap();
    let (_, v) = s
        .org_post(&k2, "/white_label/delete", json!({"ids": [wlid]}))
        .await;
    assert_eq!(v["count"], 0);
    let (_, v) = s
        .org_post(
            &k2,
            "/white_label/list",
            json!({"filters": {"ids": [wlid]}}),
        )
        .await;
    assert_eq!(v["count"], 0);
    assert!(s.store.dropbox_app_credentials(o2).unwrap().is_none());
    assert!(s.store.dropbox_app_credentials(o1).unwrap().is_some());
    // organization endpoint shows own org
    let (_, v) = s.org_get(&k2, "/organization").await;
    assert_eq!(v["id"], o2);
    let _: Value = v;
}
