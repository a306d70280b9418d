//! OAuth routes: consent page, code exchange (Basic and body auth, PKCE), refresh, revoke.

mod common;

use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn hidden(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let start = html.find(&key).expect("hidden field") + key.len();
    html[start..].split('"').next().expect("value").to_string()
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

async fn authorize(env: &Env, extra: &str) -> reqwest::Response {
    env.http
        .get(format!(
            "{}/oauth2/authorize?client_id={APP_KEY}&response_type=code&redirect_uri={}&state=s1{extra}",
            env.base,
            urlencode(REDIRECT)
        ))
        .send()
        .await
        .expect("authorize")
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn consent(
    env: &Env,
    account_id: &str,
    extra: &str,
    decision: &str,
) -> std::collections::HashMap<String, String> {
    let page = authorize(env, extra).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("<form method=\"post\""));
    assert!(html.contains("<button type=\"submit\""));
    assert!(html.contains("<label for=\"email\">"));
    let rid = hidden(&html, "request_id");
    let step = env
        .http
        .post(format!("{}/oauth2/authorize", env.base))
        .form(&[("request_id", rid.as_str()), ("account_id", account_id)])
        .send()
        .await
        .expect("choose");
    let step = if step.status() == StatusCode::OK {
        let html = step.text().await.expect("consent");
        assert!(html.contains("value=\"allow\"") && html.contains("value=\"deny\""));
        env.http
            .post(format!("{}/oauth2/authorize", env.base))
            .form(&[
                ("request_id", rid.as_str()),
                ("account_id", account_id),
                ("decision", decision),
            ])
            .send()
            .await
            .expect("decide")
    } else {
        step
    };
    assert_eq!(step.status(), StatusCode::FOUND);
    let loc = step.headers()["location"]
        .to_str()
        .expect("loc")
        .to_string();
    assert!(loc.starts_with(REDIRECT));
    query_of(&loc)
}

async fn token_req(env: &Env, form: &[(&str, &str)], basic: bool) -> (StatusCode, Value) {
    let mut req = env
        .http
        .post(format!("{}/oauth2/token", env.base))
        .form(form);
    if basic {
        req = req.basic_auth(APP_KEY, Some(APP_SECRET));
    }
    let resp = req.send().await.expect("token");
    let status = resp.status();
    assert_eq!(resp.headers()["content-type"], "application/json");
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn code_flow_with_basic_auth_refresh_and_revoke() {
    let env = start().await;
    let a = env.account("ada@example.com").await;
    let aid = a["account_id"].as_str().expect("id");
    let q = consent(&env, aid, "&token_access_type=offline", "allow").await;
    assert_eq!(q["state"], "s1");
    let code = q["code"].clone();
    let (st, tok) = token_req(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        true,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{tok}");
    assert_eq!(tok["account_id"], aid);
    assert!(tok["uid"].is_string());
    assert_eq!(tok["expires_in"], 14400);
    let refresh = tok["refresh_token"].as_str().expect("refresh").to_string();
    // Single use.
    let (st, err) = token_req(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        true,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    // Refresh with secret in body.
    let (st, r) = token_req(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ],
        false,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(r["expires_in"].is_number());
    let minted = r["access_token"].as_str().expect("at").to_string();
    env.rpc_ok(&minted, "users/get_current_account", Value::Null)
        .await;
    // Refresh narrowed to a subset of scopes.
    let (st, narrow) = token_req(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("scope", "account_info.read"),
        ],
        true,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(narrow["scope"], "account_info.read");
    let narrow_tok = narrow["access_token"].as_str().expect("at");
    env.rpc_ok(narrow_tok, "users/get_current_account", Value::Null)
        .await;
    let resp = env
        .rpc(narrow_tok, "files/list_folder", json!({"path": ""}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The `authorization` URL parameter works like the header.
    let resp = env
        .http
        .post(format!("{}/2/users/get_current_account", env.base))
        .query(&[("authorization", format!("Bearer {minted}"))])
        .send()
        .await
        .expect("query auth");
    assert_eq!(resp.status(), StatusCode::OK);
    // Wrong secret.
    let (st, e) = token_req(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", APP_KEY),
            ("client_secret", "nope"),
        ],
        false,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]
            .as_str()
            .expect("e")
            .starts_with("invalid_client")
    );
    // Revoke with the original token: the refresh token and minted tokens die too.
    let resp = env
        .http
        .post(format!("{}/2/auth/token/revoke", env.base))
        .bearer_auth(tok["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("b"), "null");
    let resp = env
        .rpc(&minted, "users/get_current_account", Value::Null)
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"][".tag"], "invalid_access_token");
    let (st, e) = token_req(
        &env,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        true,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "invalid_grant");
}

#[tokio::test]
async fn deny_and_reapproval() {
    let env = start().await;
    let a = env.account("ada@example.com").await;
    let aid = a["account_id"].as_str().expect("id");
    let q = consent(&env, aid, "", "deny").await;
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "s1");
    assert!(q.contains_key("error_description"));
    // Approve once; the next authorize skips the consent page unless force_reapprove.
    let q = consent(&env, aid, "", "allow").await;
    assert!(q.contains_key("code"));
    let html = authorize(&env, "").await.text().await.expect("html");
    let rid = hidden(&html, "request_id");
    let resp = env
        .http
        .post(format!("{}/oauth2/authorize", env.base))
        .form(&[("request_id", rid.as_str()), ("account_id", aid)])
        .send()
        .await
        .expect("choose");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let html = authorize(&env, "&force_reapprove=true")
        .await
        .text()
        .await
        .expect("html");
    let rid = hidden(&html, "request_id");
    let resp = env
        .http
        .post(format!("{}/oauth2/authorize", env.base))
        .form(&[("request_id", rid.as_str()), ("account_id", aid)])
        .send()
        .await
        .expect("choose");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn pkce_s256_and_plain() {
    let env = start().await;
    let a = env.account("ada@example.com").await;
    let aid = a["account_id"].as_str().expect("id");
    let verifier = "v".repeat(43) + "erifier-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    for (method, ch) in [("S256", challenge.as_str()), ("plain", verifier.as_str())] {
        let url = format!(
            "{}/oauth2/authorize?client_id={APP_KEY}&response_type=code&redirect_uri={}&code_challenge={ch}&code_challenge_method={method}&token_access_type=offline",
            env.base,
            urlencode(REDIRECT)
        );
        let approved = env
            .admin(
                "oauth/approve",
                json!({"account_id": aid, "authorize_url": url}),
            )
            .await;
        let code = approved["code"].as_str().expect("code").to_string();
        // Wrong verifier fails (and burns the code).
        let (st, e) = token_req(
            &env,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", APP_KEY),
                ("code_verifier", &"x".repeat(50)),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(e["error"], "invalid_grant");
        let approved = env
            .admin(
                "oauth/approve",
                json!({"account_id": aid, "authorize_url": url}),
            )
            .await;
        let code = approved["code"].as_str().expect("code").to_string();
        let (st, tok) = token_req(
            &env,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", APP_KEY),
                ("code_verifier", &verifier),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{tok}");
        let refresh = tok["refresh_token"].as_str().expect("rt");
        let (st, _) = token_req(
            &env,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", APP_KEY),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK);
    }
}

#[tokio::test]
async fn authorize_validation_and_code_expiry() {
    let env = start_with(dropbox_emulator::Config {
        code_ttl: 1,
        ..Default::default()
    })
    .await;
    let resp = env
        .http
        .get(format!(
            "{}/oauth2/authorize?client_id=nope&response_type=code",
            env.base
        ))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = env
        .http
        .get(format!("{}/oauth2/authorize?client_id={APP_KEY}&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2F", env.base))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.expect("t").contains("redirect_uri"));
    let a = env.account("ada@example.com").await;
    let url = format!(
        "{}/oauth2/authorize?client_id={APP_KEY}&response_type=code&redirect_uri={}",
        env.base,
        urlencode(REDIRECT)
    );
    let approved = env
        .admin(
            "oauth/approve",
            json!({"account_id": a["account_id"], "authorize_url": url}),
        )
        .await;
    assert!(
        approved["redirect_to"]
            .as_str()
            .expect("r")
            .contains("code=")
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let code = approved["code"].as_str().expect("code");
    let (st, e) = token_req(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
        true,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["error_description"], "code doesn't exist or has expired");
    let (st, e) = token_req(&env, &[("grant_type", "password")], true).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn no_redirect_flow_shows_code() {
    let env = start().await;
    let a = env.account("ada@example.com").await;
    let aid = a["account_id"].as_str().expect("id");
    let html = env
        .http
        .get(format!(
            "{}/oauth2/authorize?client_id={APP_KEY}&response_type=code",
            env.base
        ))
        .send()
        .await
        .expect("req")
        .text()
        .await
        .expect("html");
    let rid = hidden(&html, "request_id");
    let page = env
        .http
        .post(format!("{}/oauth2/authorize", env.base))
        .form(&[
            ("request_id", rid.as_str()),
            ("account_id", aid),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("allow")
        .text()
        .await
        .expect("page");
    let start = page.find("<code id=\"code\">").expect("code") + 16;
    let code = page[start..].split('<').next().expect("c");
    let (st, _) = token_req(
        &env,
        &[("grant_type", "authorization_code"), ("code", code)],
        true,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
}
