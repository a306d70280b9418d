//! Shared helpers for the emulator's integration tests: an in-process server and a
//! small client for the admin API and Dropbox routes.
#![allow(dead_code)]

use base64::Engine;
use dropbox_emulator::{Config, RunningEmulator, serve};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub const APP_KEY: &str = "test-app";
pub const APP_SECRET: &str = "test-secret";
pub const REDIRECT: &str = "http://localhost:9999/cb";

pub struct Env {
    pub emu: RunningEmulator,
    pub http: Client,
    pub base: String,
}

pub async fn start() -> Env {
    start_with(Config::default()).await
}

pub async fn start_with(config: Config) -> Env {
    let emu = serve(config).await.expect("emulator starts");
    let base = emu.base_url();
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let env = Env { emu, http, base };
    if env.emu.core().settings.admin_key.is_some() {
        return env;
    }
    env.admin(
        "apps",
        json!({"app_key": APP_KEY, "app_secret": APP_SECRET, "redirect_uris": [REDIRECT],
               "scopes": ["account_info.read", "files.metadata.read", "files.content.read"]}),
    )
    .await;
    env
}

impl Env {
    pub async fn admin(&self, route: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/__admin/{route}", self.base))
            .json(&body)
            .send()
            .await
            .expect("admin request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "{route}: {text}");
        serde_json::from_str(&text).expect("json")
    }

    pub async fn account(&self, email: &str) -> Value {
        self.admin(
            "accounts",
            json!({"email": email, "given_name": "Ada", "surname": "Lane"}),
        )
        .await
    }

    pub async fn token(&self, account_id: &str) -> String {
        let t = self
            .admin(
                "tokens",
                json!({"app_key": APP_KEY, "account_id": account_id}),
            )
            .await;
        t["access_token"].as_str().expect("token").to_string()
    }

    /// Account + token.
    pub async fn user(&self, email: &str) -> (String, String) {
        let a = self.account(email).await;
        let id = a["account_id"].as_str().expect("id").to_string();
        let tok = self.token(&id).await;
        (id, tok)
    }

    pub async fn put(&self, account_id: &str, path: &str, data: &[u8]) -> Value {
        self.admin(
            "files",
            json!({"account_id": account_id, "path": path,
                   "content_b64": base64::engine::general_purpose::STANDARD.encode(data)}),
        )
        .await
    }

    pub async fn rpc(&self, token: &str, route: &str, body: Value) -> Response {
        self.http
            .post(format!("{}/2/{route}", self.base))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("rpc")
    }

    pub async fn rpc_ok(&self, token: &str, route: &str, body: Value) -> Value {
        let resp = self.rpc(token, route, body).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert!(resp.headers().contains_key("x-dropbox-request-id"));
        resp.json().await.expect("json")
    }

    /// Expects a 409 and returns the error summary.
    pub async fn rpc_409(&self, token: &str, route: &str, body: Value) -> String {
        let resp = self.rpc(token, route, body).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let v: Value = resp.json().await.expect("json");
        v["error_summary"].as_str().expect("summary").to_string()
    }
}
