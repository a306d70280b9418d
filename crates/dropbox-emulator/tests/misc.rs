//! Faults, business path roots, webhooks, TLS, seeding/watching, admin key.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use common::*;
use dropbox_emulator::{Config, SeedConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[tokio::test]
async fn fault_injection() {
    let env = start().await;
    let (_, tok) = env.user("ada@example.com").await;
    env.admin(
        "faults",
        json!({"route": "files/list_folder", "status": 429, "times": 2, "retry_after": 5}),
    )
    .await;
    for _ in 0..2 {
        let resp = env
            .rpc(&tok, "files/list_folder", json!({"path": ""}))
            .await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "5");
        assert!(resp.headers().contains_key("x-dropbox-request-id"));
        let v: Value = resp.json().await.expect("j");
        assert_eq!(v["error"]["reason"][".tag"], "too_many_requests");
        assert_eq!(v["error"]["retry_after"], 5);
    }
    env.rpc_ok(&tok, "files/list_folder", json!({"path": ""}))
        .await;
    env.admin(
        "faults",
        json!({"route": "/2/files/list_folder", "status": 429, "body": "text", "retry_after": 2}),
    )
    .await;
    let resp = env
        .rpc(&tok, "files/list_folder", json!({"path": ""}))
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    env.admin("faults", json!({"route": "users/get_current_account", "status": 503, "retry_after": 1, "body": "text"})).await;
    let resp = env
        .rpc(&tok, "users/get_current_account", Value::Null)
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    env.admin("faults", json!({"route": "users/get_current_account", "status": 401, "reason": "expired_access_token"})).await;
    let resp = env
        .rpc(&tok, "users/get_current_account", Value::Null)
        .await;
    let v: Value = resp.json().await.expect("j");
    assert_eq!(v["error_summary"], "expired_access_token/..");
    env.admin("faults", json!({"route": "files/get_metadata", "status": 409, "reason": "path/not_found", "times": 5})).await;
    env.admin("faults/clear", json!({})).await;
    // Slow response: delay, then the real answer.
    env.admin(
        "faults",
        json!({"route": "files/list_folder", "status": 200, "delay_ms": 300}),
    )
    .await;
    let t = std::time::Instant::now();
    env.rpc_ok(&tok, "files/list_folder", json!({"path": ""}))
        .await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        env.rpc_409(&tok, "files/get_metadata", json!({"path": "/x"}))
            .await,
        "path/not_found/.."
    );
    let resp = env
        .http
        .post(format!("{}/__admin/faults", env.base))
        .json(&json!({"route": "x", "status": 429, "body": "xml"}))
        .send()
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn business_path_roots() {
    let env = start().await;
    let a = env
        .admin("accounts", json!({"email": "ada@acme.example", "given_name": "Ada", "surname": "Lane", "team": {"name": "Acme"}}))
        .await;
    let aid = a["account_id"].as_str().expect("id").to_string();
    let root = a["root_namespace_id"].as_str().expect("r").to_string();
    let home = a["home_namespace_id"].as_str().expect("h").to_string();
    assert_ne!(root, home);
    assert_eq!(a["home_path"], "/Ada Lane");
    let tok = env.token(&aid).await;
    env.put(&aid, "/mine.txt", b"home").await;
    env.put(&aid, &format!("ns:{root}/Team Folder/plan.md"), b"team")
        .await;
    let with_root = |hdr: Value, body: Value| {
        env.http
            .post(format!("{}/2/files/list_folder", env.base))
            .bearer_auth(&tok)
            .header("Content-Type", "application/json")
            .header("Dropbox-API-Path-Root", hdr.to_string())
            .body(body.to_string())
            .send()
    };
    let home_list = env
        .rpc_ok(&tok, "files/list_folder", json!({"path": ""}))
        .await;
    assert_eq!(home_list["entries"][0]["path_display"], "/mine.txt");
    let resp = with_root(
        json!({".tag": "root", "root": root}),
        json!({"path": "", "recursive": true}),
    )
    .await
    .expect("r");
    let v: Value = resp.json().await.expect("j");
    let paths: Vec<&str> = v["entries"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| e["path_display"].as_str().expect("p"))
        .collect();
    assert_eq!(
        paths,
        vec![
            "/Ada Lane",
            "/Ada Lane/mine.txt",
            "/Team Folder",
            "/Team Folder/plan.md"
        ]
    );
    let resp = with_root(json!({".tag": "home"}), json!({"path": ""}))
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = with_root(json!({".tag": "root", "root": "1"}), json!({"path": ""}))
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = resp.json().await.expect("j");
    assert_eq!(v["error"][".tag"], "invalid_root");
    assert_eq!(v["error"]["invalid_root"]["root_namespace_id"], root);
    let other = env.account("bob@example.com").await;
    let resp = with_root(
        json!({".tag": "namespace_id", "namespace_id": other["root_namespace_id"]}),
        json!({"path": ""}),
    )
    .await
    .expect("r");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = resp.json().await.expect("j");
    assert_eq!(v["error_summary"], "no_permission/..");
    let resp = with_root(
        json!({".tag": "namespace_id", "namespace_id": home}),
        json!({"path": ""}),
    )
    .await
    .expect("r");
    assert_eq!(resp.status(), StatusCode::OK);
    let by_ns = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": format!("ns:{root}/team folder")}),
        )
        .await;
    assert_eq!(by_ns["entries"][0]["name"], "plan.md");
    // Changes in the home folder are visible to a team-root cursor with root-relative paths.
    let resp = with_root(
        json!({".tag": "root", "root": root}),
        json!({"path": "", "recursive": true}),
    )
    .await
    .expect("r");
    let cur = resp.json::<Value>().await.expect("j")["cursor"].clone();
    env.put(&aid, "/second.txt", b"2").await;
    let ch = env
        .rpc_ok(&tok, "files/list_folder/continue", json!({"cursor": cur}))
        .await;
    assert_eq!(ch["entries"][0]["path_display"], "/Ada Lane/second.txt");
}

type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn hook_get(Query(q): Query<std::collections::HashMap<String, String>>) -> String {
    q.get("challenge").cloned().unwrap_or_default()
}

async fn hook_post(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> &'static str {
    let sig = headers
        .get("x-dropbox-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.lock()
        .await
        .push((sig, String::from_utf8_lossy(&body).to_string()));
    "ok"
}

#[tokio::test]
async fn webhooks_are_verified_and_signed() {
    let env = start().await;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::get(hook_get).post(hook_post))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let v = env
        .admin(
            "webhooks",
            json!({"app_key": APP_KEY, "url": format!("http://{addr}/hook")}),
        )
        .await;
    assert_eq!(v, json!({"verified": true}));
    let (aid, _) = env.user("ada@example.com").await;
    let (unlinked, _) = {
        let a = env.account("zed@example.com").await;
        (a["account_id"].as_str().expect("id").to_string(), ())
    };
    env.put(&unlinked, "/ignored.txt", b"x").await;
    env.put(&aid, "/a.txt", b"x").await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = seen.lock().await.clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 1, "{got:?}");
    let (sig, body) = &got[0];
    assert_eq!(
        sig,
        &dropbox_emulator::webhooks::sign(APP_SECRET, body.as_bytes())
    );
    let v: Value = serde_json::from_str(body).expect("json");
    assert_eq!(v["list_folder"]["accounts"], json!([aid]));
    assert!(v["delta"]["users"][0].is_u64());
    // A URL that does not echo the challenge is not registered.
    let v = env
        .admin(
            "webhooks",
            json!({"app_key": APP_KEY, "url": format!("http://{addr}/nothing")}),
        )
        .await;
    assert_eq!(v, json!({"verified": false}));
}

#[tokio::test]
async fn tls_serving_with_written_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let pem_path = dir.path().join("cert.pem");
    let emu = dropbox_emulator::serve(Config {
        tls: true,
        tls_cert_out: Some(pem_path.clone()),
        ..Default::default()
    })
    .await
    .expect("start");
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    let pem = std::fs::read(&pem_path).expect("pem");
    assert_eq!(pem, emu.cert_pem().expect("pem").as_bytes());
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("cert"))
        .build()
        .expect("client");
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/__admin/reset", emu.addr().port());
        let resp = client
            .post(url)
            .json(&json!({}))
            .send()
            .await
            .expect("tls request");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().contains_key("x-dropbox-request-id"));
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn seed_dir_and_watch() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("Docs/Deep")).expect("mkdir");
    std::fs::write(dir.path().join("Docs/Deep/a.txt"), b"hello").expect("write");
    let env = start_with(Config {
        seed: Some(SeedConfig {
            dir: dir.path().to_path_buf(),
            email: "seed@example.com".into(),
            watch: true,
        }),
        ..Default::default()
    })
    .await;
    let acct = env.account("seed@example.com").await;
    let aid = acct["account_id"].as_str().expect("id").to_string();
    let tok = env.token(&aid).await;
    let res = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": "", "recursive": true}),
        )
        .await;
    let paths: Vec<&str> = res["entries"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| e["path_display"].as_str().expect("p"))
        .collect();
    assert_eq!(paths, vec!["/Docs", "/Docs/Deep", "/Docs/Deep/a.txt"]);
    assert_eq!(
        res["entries"][2]["content_hash"],
        "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
    );
    let cursor = res["cursor"].clone();
    std::fs::write(dir.path().join("Docs/dropped.txt"), b"new").expect("write");
    std::fs::remove_file(dir.path().join("Docs/Deep/a.txt")).expect("rm");
    let resp = env
        .http
        .post(format!("{}/2/files/list_folder/longpoll", env.base))
        .header("Content-Type", "application/json")
        .body(json!({"cursor": cursor, "timeout": 30}).to_string())
        .send()
        .await
        .expect("lp");
    assert_eq!(resp.json::<Value>().await.expect("j")["changes"], true);
    let mut seen: Vec<(String, String)> = Vec::new();
    for _ in 0..40 {
        let ch = env
            .rpc_ok(
                &tok,
                "files/list_folder/continue",
                json!({"cursor": cursor}),
            )
            .await;
        seen = ch["entries"]
            .as_array()
            .expect("e")
            .iter()
            .map(|e| {
                (
                    e[".tag"].as_str().expect("t").to_string(),
                    e["path_lower"].as_str().expect("p").to_string(),
                )
            })
            .collect();
        if seen.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.contains(&("file".into(), "/docs/dropped.txt".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("deleted".into(), "/docs/deep/a.txt".into())),
        "{seen:?}"
    );
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let env = start().await;
    let resp = env
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/2/files/list_folder", env.base),
        )
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(
        resp.headers()["access-control-allow-headers"]
            .to_str()
            .expect("h")
            .contains("Dropbox-API-Arg")
    );
    let resp = env
        .rpc("sl.u.x", "users/get_current_account", Value::Null)
        .await;
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn admin_key_is_enforced() {
    let env = start_with(Config {
        admin_key: Some("sekrit".into()),
        ..Default::default()
    })
    .await;
    // `start_with` registered the app without the key: that must have failed, so do it properly.
    let resp = env
        .http
        .post(format!("{}/__admin/reset", env.base))
        .json(&json!({}))
        .send()
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = env
        .http
        .post(format!("{}/__admin/reset", env.base))
        .header("X-Emulator-Admin-Key", "sekrit")
        .json(&json!({}))
        .send()
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn team_webhooks_reach_members_who_see_the_change() {
    let env = start().await;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::get(hook_get).post(hook_post))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    env.admin(
        "webhooks",
        json!({"app_key": APP_KEY, "url": format!("http://{addr}/hook")}),
    )
    .await;
    let ada = env
        .admin("accounts", json!({"email": "ada@acme.example", "given_name": "Ada", "surname": "Lane", "team": {"name": "Acme"}}))
        .await;
    let bob = env
        .admin("accounts", json!({"email": "bob@acme.example", "given_name": "Bob", "surname": "Stone", "team": {"name": "Acme"}}))
        .await;
    let (ada_id, bob_id) = (
        ada["account_id"].as_str().expect("a").to_string(),
        bob["account_id"].as_str().expect("b").to_string(),
    );
    env.token(&ada_id).await;
    env.token(&bob_id).await;
    let wait = |n: usize| {
        let seen = seen.clone();
        async move {
            for _ in 0..100 {
                let got = seen.lock().await.clone();
                if got.len() >= n {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen.lock().await.clone()
        }
    };
    env.put(&ada_id, "/private.txt", b"ada only").await;
    let got = wait(1).await;
    let v: Value = serde_json::from_str(&got[0].1).expect("json");
    assert_eq!(v["list_folder"]["accounts"], json!([ada_id]));
    let root = ada["root_namespace_id"].as_str().expect("r");
    env.put(&ada_id, &format!("ns:{root}/Shared/plan.md"), b"everyone")
        .await;
    let got = wait(2).await;
    let v: Value = serde_json::from_str(&got[1].1).expect("json");
    let mut accounts: Vec<String> =
        serde_json::from_value(v["list_folder"]["accounts"].clone()).expect("list");
    accounts.sort();
    let mut expected = vec![ada_id, bob_id];
    expected.sort();
    assert_eq!(accounts, expected);
}
