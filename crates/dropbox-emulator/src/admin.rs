//! The test-only admin API under `/__admin/` (JSON POST), as listed in the reference §13.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::emulator::{AccountReq, AdminError, AppReq, FaultReq, PutFile, SharedRef, TokenReq};
use crate::http::json_response;
use crate::oauth::{AuthorizeError, issue_code, redirect_target, validate_authorize};
use crate::util::{ct_eq, parse_ts};

fn err(status: StatusCode, msg: &str) -> Response {
    json_response(status, &json!({"error": msg}))
}

fn reply(r: Result<Value, AdminError>) -> Response {
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(AdminError::BadRequest(m)) => err(StatusCode::BAD_REQUEST, &m),
        Err(AdminError::NotFound(m)) => err(StatusCode::NOT_FOUND, &m),
        Err(AdminError::Conflict(m)) => err(StatusCode::CONFLICT, &m),
        Err(AdminError::Internal(m)) => err(StatusCode::INTERNAL_SERVER_ERROR, &m),
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, AdminError> {
    let src: &[u8] = if body.trim_ascii().is_empty() {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(src).map_err(|e| AdminError::BadRequest(format!("invalid body: {e}")))
}

fn check_key(sh: &SharedRef, headers: &HeaderMap) -> Result<(), Box<Response>> {
    match &sh.settings.admin_key {
        None => Ok(()),
        Some(k) => {
            let given = headers
                .get("x-emulator-admin-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if ct_eq(given, k) {
                Ok(())
            } else {
                Err(Box::new(err(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong X-Emulator-Admin-Key",
                )))
            }
        }
    }
}

macro_rules! guarded {
    ($sh:ident, $headers:ident) => {
        if let Err(r) = check_key(&$sh, &$headers) {
            return *r;
        }
    };
}

async fn reset(State(sh): State<SharedRef>, headers: HeaderMap, _body: Bytes) -> Response {
    guarded!(sh, headers);
    sh.reset();
    json_response(StatusCode::OK, &json!({}))
}

async fn apps(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<AppReq>(&body).and_then(|r| sh.create_app(r)))
}

async fn accounts(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<AccountReq>(&body).and_then(|r| sh.create_account(r)))
}

#[derive(Deserialize)]
struct ApproveReq {
    account_id: String,
    authorize_url: String,
}

async fn approve(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    let r = parse::<ApproveReq>(&body).and_then(|req| {
        let url = url::Url::parse(&req.authorize_url)
            .map_err(|e| AdminError::BadRequest(format!("bad authorize_url: {e}")))?;
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let mut model = sh.state.lock();
        if !model.accounts.contains_key(&req.account_id) {
            return Err(AdminError::NotFound(format!(
                "unknown account {}",
                req.account_id
            )));
        }
        let p = validate_authorize(&model, &q)
            .map_err(|AuthorizeError(m)| AdminError::BadRequest(m))?;
        let code = issue_code(&mut model, &p, &req.account_id, sh.settings.code_ttl);
        Ok(json!({"code": code, "redirect_to": redirect_target(&p, Some(&code))}))
    });
    reply(r)
}

async fn tokens(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<TokenReq>(&body).and_then(|r| sh.issue_token(r)))
}

#[derive(Deserialize)]
struct ExpireReq {
    access_token: String,
}

async fn tokens_expire(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<ExpireReq>(&body).and_then(|r| sh.expire_token(&r.access_token)))
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
struct FileReq {
    account_id: String,
    path: String,
    #[serde(default)]
    content_b64: String,
    #[serde(default)]
    client_modified: Option<String>,
    #[serde(default = "default_true")]
    is_downloadable: bool,
}

async fn files(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    let r = parse::<FileReq>(&body).and_then(|req| {
        let content = base64::engine::general_purpose::STANDARD
            .decode(req.content_b64.as_bytes())
            .map_err(|e| AdminError::BadRequest(format!("content_b64: {e}")))?;
        let client_modified = match req.client_modified.as_deref() {
            None => None,
            Some(s) => Some(parse_ts(s).ok_or_else(|| {
                AdminError::BadRequest(format!("client_modified: bad timestamp {s:?}"))
            })?),
        };
        sh.put_file(PutFile {
            account_id: req.account_id,
            path: req.path,
            content,
            client_modified,
            is_downloadable: req.is_downloadable,
        })
    });
    reply(r)
}

#[derive(Deserialize)]
struct PathReq {
    account_id: String,
    path: String,
}

async fn folders(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<PathReq>(&body).and_then(|r| sh.create_folder(&r.account_id, &r.path)))
}

async fn delete(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<PathReq>(&body).and_then(|r| sh.delete(&r.account_id, &r.path)))
}

#[derive(Deserialize)]
struct MoveReq {
    account_id: String,
    from_path: String,
    to_path: String,
}

async fn move_(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(
        parse::<MoveReq>(&body)
            .and_then(|r| sh.move_entry(&r.account_id, &r.from_path, &r.to_path)),
    )
}

#[derive(Deserialize)]
struct AccountOnly {
    account_id: String,
}

async fn cursors_reset(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<AccountOnly>(&body).and_then(|r| sh.reset_cursors(&r.account_id)))
}

async fn faults(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    reply(parse::<FaultReq>(&body).and_then(|r| sh.add_fault(r)))
}

async fn faults_clear(State(sh): State<SharedRef>, headers: HeaderMap, _body: Bytes) -> Response {
    guarded!(sh, headers);
    sh.clear_faults();
    json_response(StatusCode::OK, &json!({}))
}

#[derive(Deserialize)]
struct WebhookReq {
    app_key: String,
    url: String,
}

async fn webhooks(State(sh): State<SharedRef>, headers: HeaderMap, body: Bytes) -> Response {
    guarded!(sh, headers);
    let req = match parse::<WebhookReq>(&body) {
        Ok(r) => r,
        Err(e) => return reply(Err(e)),
    };
    reply(sh.register_webhook(&req.app_key, &req.url).await)
}

/// The admin router (mounted at `/__admin`).
pub fn router() -> Router<SharedRef> {
    Router::new()
        .route("/reset", post(reset))
        .route("/apps", post(apps))
        .route("/accounts", post(accounts))
        .route("/oauth/approve", post(approve))
        .route("/tokens", post(tokens))
        .route("/tokens/expire", post(tokens_expire))
        .route("/files", post(files))
        .route("/folders", post(folders))
        .route("/delete", post(delete))
        .route("/move", post(move_))
        .route("/cursors/reset", post(cursors_reset))
        .route("/faults", post(faults))
        .route("/faults/clear", post(faults_clear))
        .route("/webhooks", post(webhooks))
}
