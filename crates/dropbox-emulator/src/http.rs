//! Wire plumbing shared by the Dropbox routes: response builders with the exact content
//! types, the error envelope, Bearer authentication, `Dropbox-API-Path-Root`, RPC argument
//! decoding with Stone defaults, request ids and fault injection.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::emulator::{SharedRef, normalize_route, root_info_json};
use crate::state::{Account, Fault, State as Model};
use crate::util::{now_secs, request_id};

/// A JSON response with `Content-Type: application/json` exactly.
pub fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut resp = Response::new(Body::from(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A plain-text response.
pub fn text_response(status: StatusCode, text: String) -> Response {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Tag path of a union value (`path/not_found`).
pub fn summary_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get(".tag").and_then(Value::as_str) {
            Some(tag) => match m.get(tag) {
                Some(inner @ Value::Object(im)) if im.contains_key(".tag") => {
                    format!("{tag}/{}", summary_of(inner))
                }
                _ => tag.to_string(),
            },
            None => String::new(),
        },
        _ => String::new(),
    }
}

/// Builds a nested union from a slash path: `path/not_found` →
/// `{".tag":"path","path":{".tag":"not_found"}}`.
pub fn union_from_path(path: &str) -> Value {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut v: Option<Value> = None;
    for (i, part) in parts.iter().enumerate().rev() {
        let mut m = serde_json::Map::new();
        m.insert(".tag".into(), json!(part));
        if let Some(inner) = v.take() {
            m.insert(parts[i].to_string(), inner);
        }
        v = Some(Value::Object(m));
    }
    v.unwrap_or_else(|| json!({".tag": "other"}))
}

/// The Dropbox error envelope.
pub fn envelope(error: Value) -> Value {
    json!({"error_summary": format!("{}/..", summary_of(&error)), "error": error})
}

/// A Dropbox API error response.
#[derive(Debug)]
pub enum ApiErr {
    /// 400 text: `Error in call to API function "<route>": <msg>`.
    BadRequest(String, String),
    /// 401 with an `AuthError` union.
    Auth(Value),
    /// 409 with the route's error union.
    Route(Value),
    /// 422 with a `PathRootError`.
    PathRoot(Value),
    /// Any other status with a text body.
    Plain(StatusCode, String),
}

impl ApiErr {
    /// 400 for `route`.
    pub fn bad(route: &str, msg: impl Into<String>) -> Self {
        ApiErr::BadRequest(route.to_string(), msg.into())
    }

    /// 409 from a tag path.
    pub fn route(path: &str) -> Self {
        ApiErr::Route(union_from_path(path))
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        match self {
            ApiErr::BadRequest(route, msg) => text_response(
                StatusCode::BAD_REQUEST,
                format!("Error in call to API function \"{route}\": {msg}"),
            ),
            ApiErr::Auth(v) => json_response(StatusCode::UNAUTHORIZED, &envelope(v)),
            ApiErr::Route(v) => json_response(StatusCode::CONFLICT, &envelope(v)),
            ApiErr::PathRoot(v) => json_response(StatusCode::UNPROCESSABLE_ENTITY, &envelope(v)),
            ApiErr::Plain(status, text) => text_response(status, text),
        }
    }
}

/// The authenticated caller of a user route.
#[derive(Clone, Debug)]
pub struct AuthCtx {
    /// The account.
    pub account: Account,
    /// Grant id.
    pub grant: u64,
    /// Access token.
    pub token: String,
}

fn token_is_well_formed(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 4096
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

/// Checks `Authorization: Bearer` (or the `authorization` query parameter) and the scope.
pub fn authenticate(
    model: &Model,
    route: &str,
    headers: &HeaderMap,
    query_auth: Option<&str>,
    required_scope: Option<&str>,
) -> Result<AuthCtx, ApiErr> {
    let raw = match headers.get(header::AUTHORIZATION) {
        Some(v) => v
            .to_str()
            .map_err(|_| ApiErr::bad(route, "The given OAuth 2 access token is malformed."))?
            .to_string(),
        None => match query_auth {
            Some(q) => q.to_string(),
            None => {
                return Err(ApiErr::bad(
                    route,
                    "Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".",
                ));
            }
        },
    };
    let token = match raw.split_once(' ') {
        Some((scheme, tok)) if scheme.eq_ignore_ascii_case("bearer") => tok.trim(),
        _ => {
            return Err(ApiErr::bad(
                route,
                format!(
                    "Invalid authorization value in HTTP header \"Authorization\": {raw:?}.  Expecting \"Bearer <oauth2-access-token>\"."
                ),
            ));
        }
    };
    if !token_is_well_formed(token) {
        return Err(ApiErr::bad(
            route,
            "The given OAuth 2 access token is malformed.",
        ));
    }
    let invalid = || ApiErr::Auth(json!({".tag": "invalid_access_token"}));
    let at = model.access_tokens.get(token).ok_or_else(invalid)?;
    let grant = model.grants.get(&at.grant).ok_or_else(invalid)?;
    if grant.revoked {
        return Err(invalid());
    }
    if at.expires_at <= now_secs() {
        return Err(ApiErr::Auth(json!({".tag": "expired_access_token"})));
    }
    if let Some(scope) = required_scope {
        let scopes = at.scopes.as_ref().unwrap_or(&grant.scopes);
        if !scopes.is_empty() && !scopes.iter().any(|s| s == scope) {
            return Err(ApiErr::Auth(
                json!({".tag": "missing_scope", "required_scope": scope}),
            ));
        }
    }
    let account = model
        .accounts
        .get(&grant.account_id)
        .cloned()
        .ok_or_else(invalid)?;
    Ok(AuthCtx {
        account,
        grant: at.grant,
        token: token.to_string(),
    })
}

/// Resolves the request's root namespace from `Dropbox-API-Path-Root` (default: home).
pub fn path_root(
    model: &Model,
    route: &str,
    headers: &HeaderMap,
    acct: &Account,
) -> Result<u64, ApiErr> {
    let Some(raw) = headers.get("dropbox-api-path-root") else {
        return Ok(acct.home_ns);
    };
    let bad = || {
        ApiErr::bad(
            route,
            "Invalid value for HTTP header \"Dropbox-API-Path-Root\": could not decode input as JSON",
        )
    };
    let v: Value = serde_json::from_str(raw.to_str().map_err(|_| bad())?).map_err(|_| bad())?;
    let tag = v.get(".tag").and_then(Value::as_str).ok_or_else(bad)?;
    match tag {
        "home" => Ok(acct.home_ns),
        "root" => {
            let id = v.get("root").and_then(Value::as_str).ok_or_else(bad)?;
            if id == acct.root_ns.to_string() {
                Ok(acct.root_ns)
            } else {
                Err(ApiErr::PathRoot(
                    json!({".tag": "invalid_root", "invalid_root": root_info_json(acct)}),
                ))
            }
        }
        "namespace_id" => {
            let id = v
                .get("namespace_id")
                .and_then(Value::as_str)
                .ok_or_else(bad)?;
            let ns: u64 = id
                .parse()
                .map_err(|_| ApiErr::PathRoot(json!({".tag": "no_permission"})))?;
            let root_store = model.namespaces.get(&acct.root_ns).map(|n| n.store);
            match model.namespaces.get(&ns) {
                Some(n) if Some(n.store) == root_store => Ok(ns),
                _ => Err(ApiErr::PathRoot(json!({".tag": "no_permission"}))),
            }
        }
        other => Err(ApiErr::bad(
            route,
            format!(
                "Invalid value for HTTP header \"Dropbox-API-Path-Root\": unknown tag '{other}'"
            ),
        )),
    }
}

/// Decodes an RPC argument (Stone defaults via serde; `null`/empty = `{}` or Void).
pub fn rpc_arg<T: DeserializeOwned>(
    route: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiErr> {
    let trimmed = body.trim_ascii();
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let ok = [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain; charset=dropbox-cors-hack",
        ]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(ct.trim()));
        if !ok {
            return Err(ApiErr::bad(
                route,
                format!(
                    "Bad HTTP \"Content-Type\" header: {ct:?}.  Expecting one of \"application/json\", \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\"."
                ),
            ));
        }
    } else if !trimmed.is_empty() && trimmed != b"null" {
        return Err(ApiErr::bad(
            route,
            "Bad HTTP \"Content-Type\" header: \"\".  Expecting one of \"application/json\", \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\".",
        ));
    }
    let src: &[u8] = if trimmed.is_empty() || trimmed == b"null" {
        b"{}"
    } else {
        trimmed
    };
    decode_arg(route, "request body", src)
}

/// Decodes JSON argument bytes with Dropbox-like messages.
pub fn decode_arg<T: DeserializeOwned>(route: &str, what: &str, src: &[u8]) -> Result<T, ApiErr> {
    let value: Value = serde_json::from_slice(src)
        .map_err(|_| ApiErr::bad(route, format!("{what}: could not decode input as JSON")))?;
    serde_json::from_value(value).map_err(|e| ApiErr::bad(route, format!("{what}: {e}")))
}

/// Checks a Void argument.
pub fn void_arg(route: &str, headers: &HeaderMap, body: &Bytes) -> Result<(), ApiErr> {
    let v: Value = rpc_arg(route, headers, body)?;
    match v {
        Value::Object(m) if m.is_empty() => Ok(()),
        _ => Err(ApiErr::bad(route, "request body: expected null, got value")),
    }
}

fn fault_response(f: &Fault) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if f.json && f.status != 400 {
        let body = match f.status {
            429 => {
                let reason = f
                    .reason
                    .clone()
                    .unwrap_or_else(|| "too_many_requests".into());
                let mut err = json!({"reason": {".tag": reason}});
                if let (Some(ra), Some(m)) = (f.retry_after, err.as_object_mut()) {
                    m.insert("retry_after".into(), json!(ra));
                }
                json!({"error_summary": format!("{reason}/.."), "error": err})
            }
            401 => envelope(union_from_path(
                f.reason.as_deref().unwrap_or("expired_access_token"),
            )),
            _ => envelope(union_from_path(f.reason.as_deref().unwrap_or("other"))),
        };
        json_response(status, &body)
    } else {
        let text = match f.status {
            429 => "Too Many Requests".to_string(),
            400 => format!(
                "Error in call to API function \"{}\": {}",
                f.route,
                f.reason
                    .clone()
                    .unwrap_or_else(|| "injected bad request".into())
            ),
            _ => f
                .reason
                .clone()
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string()),
        };
        text_response(status, text)
    };
    if let Some(ra) = f.retry_after {
        if let Ok(v) = HeaderValue::from_str(&ra.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Adds `X-Dropbox-Request-Id` and applies injected faults.
pub async fn request_layer(
    State(shared): State<SharedRef>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    let api = path.starts_with("/2/") || path == "/oauth2/token";
    if api && req.method() == axum::http::Method::OPTIONS {
        // CORS preflight, as the real API hosts answer it.
        let mut resp = Response::new(Body::empty());
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("POST, GET, OPTIONS"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(
                "Authorization, Content-Type, Dropbox-API-Arg, Dropbox-API-Path-Root, Dropbox-API-Select-User, Dropbox-API-Select-Admin, Range, If-None-Match",
            ),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
        if let Ok(v) = HeaderValue::from_str(&request_id()) {
            h.insert("x-dropbox-request-id", v);
        }
        return resp;
    }
    // `authorization` URL parameter = Authorization header (not for the no-auth longpoll).
    if path.starts_with("/2/")
        && path != "/2/files/list_folder/longpoll"
        && !req.headers().contains_key(header::AUTHORIZATION)
    {
        let from_query = req.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.into_owned())
        });
        if let Some(v) = from_query.and_then(|v| HeaderValue::from_str(&v).ok()) {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
    }
    let mut resp = if path.starts_with("/__admin") {
        next.run(req).await
    } else {
        match shared.take_fault(&normalize_route(&path)) {
            Some(f) => {
                if f.delay_ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(f.delay_ms)).await;
                }
                if f.status == 200 {
                    next.run(req).await
                } else {
                    // Drain the request body so the keep-alive connection stays usable.
                    let _ = axum::body::to_bytes(req.into_body(), 1 << 30).await;
                    fault_response(&f)
                }
            }
            None => next.run(req).await,
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        resp.headers_mut().insert("x-dropbox-request-id", v);
    }
    if api {
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static(
                "Dropbox-API-Result, X-Dropbox-Request-Id, Content-Range, Retry-After, ETag",
            ),
        );
    }
    resp
}
