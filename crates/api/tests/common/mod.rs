//! Test harness: an in-process carbide API on a random port with a temp-dir database.
#![allow(dead_code)]

use std::path::PathBuf;

use carbide_api::{ApiConfig, AppState, router};
use carbide_core::secrets::MasterKey;
use carbide_store::Store;
use serde_json::Value;

pub struct Server {
    pub base: String,
    pub store: Store,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub key: MasterKey,
}

pub async fn serve(store: Store) -> String {
    let app = router(AppState::new(
        store,
        ApiConfig {
            public_url: "http://127.0.0.1".into(),
            max_body_bytes: 1 << 20,
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

pub async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = Store::open(&dir.path().join("carbide.db"), key.clone()).unwrap();
    let base = serve(store.clone()).await;
    Server {
        base,
        store,
        client: reqwest::Client::new(),
        dir,
        key,
    }
}

impl Server {
    pub fn url(&self, p: &str) -> String {
        format!("{}{}", self.base, p)
    }

    pub fn org(&self, name: &str) -> (i64, String) {
        let (o, k) = self.store.create_organization(name).unwrap();
        (o.id, k)
    }

    /// POST with `Bearer key` (org call).
    pub async fn org_post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("authorization", format!("Bearer {key}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        finish(r).await
    }

    pub async fn org_get(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap();
        finish(r).await
    }

    /// GET as a customer with `Bearer key` + `customer-id`.
    pub async fn cust_get(&self, key: &str, cid: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .header("authorization", format!("Bearer {key}"))
            .header("customer-id", cid)
            .send()
            .await
            .unwrap();
        finish(r).await
    }

    pub async fn token_get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .header("authorization", format!("Token {token}"))
            .send()
            .await
            .unwrap();
        finish(r).await
    }

    pub async fn token(&self, key: &str, cid: &str) -> String {
        let (s, v) = self.cust_get(key, cid, "/auth/v1/access_token").await;
        assert_eq!(s, 200, "{v}");
        v["access_token"].as_str().unwrap().to_string()
    }
}

pub async fn finish(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text().await.unwrap();
    if s != 200 || !text.is_empty() {
        assert!(
            ct.starts_with("application/json"),
            "status {s} content-type {ct:?} body {text}"
        );
    }
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (s, v)
}

fn spec() -> Value {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "..",
        "shared",
        "spec",
        "carbon-openapi.json",
    ]
    .iter()
    .collect();
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn type_ok(schema: &Value, v: &Value, comps: &Value) -> bool {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        let s = &comps[name];
        if let Some(en) = s.get("enum").and_then(Value::as_array) {
            return en.contains(v);
        }
        return type_ok(s, v, comps);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any.iter().any(|s| type_ok(s, v, comps));
    }
    match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("null") => v.is_null(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        Some(_) => true,
    }
}

/// Asserts `v` satisfies Carbon's schema `name`: every required key present, every known
/// property of an allowed type (what the SDK's `validate=True` checks).
pub fn assert_schema(name: &str, v: &Value) {
    let spec = spec();
    let comps = &spec["components"]["schemas"];
    let s = &comps[name];
    assert!(s.is_object(), "schema {name} missing");
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object: {v}"));
    for req in s["required"].as_array().into_iter().flatten() {
        let k = req.as_str().unwrap();
        assert!(
            obj.contains_key(k),
            "{name}: required key {k} missing in {v}"
        );
    }
    for (k, ps) in s["properties"].as_object().unwrap() {
        if let Some(val) = obj.get(k) {
            assert!(
                type_ok(ps, val, comps),
                "{name}.{k}: value {val} does not match {ps}"
            );
        }
    }
}
