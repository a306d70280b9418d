//! The HTTP client: base URLs from configuration, RPC/download/longpoll request styles, error
//! classification, and the retry policy (429 honoured from `Retry-After` and the JSON body,
//! 5xx with jittered exponential backoff, both bounded).

use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::content_hash::ContentHasher;
use crate::error::Error;
use crate::header::header_json;
use crate::oauth::{AuthorizeRequest, authorize_url};
use crate::types::*;

/// Base URLs of the four Dropbox hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://api.dropboxapi.com` (RPC routes and `oauth2/token`).
    pub api: String,
    /// `https://content.dropboxapi.com` (download).
    pub content: String,
    /// `https://notify.dropboxapi.com` (longpoll).
    pub notify: String,
    /// `https://www.dropbox.com` (the browser's authorize page).
    pub www: String,
}

impl Endpoints {
    /// Real Dropbox.
    pub fn dropbox() -> Endpoints {
        Endpoints {
            api: "https://api.dropboxapi.com".into(),
            content: "https://content.dropboxapi.com".into(),
            notify: "https://notify.dropboxapi.com".into(),
            www: "https://www.dropbox.com".into(),
        }
    }

    /// All four hosts on one origin (the emulator).
    pub fn single_origin(origin: &str) -> Endpoints {
        let o = origin.trim_end_matches('/').to_string();
        Endpoints {
            api: o.clone(),
            content: o.clone(),
            notify: o.clone(),
            www: o,
        }
    }
}

/// How hard to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// 429 answers retried before giving up with [`Error::RateLimited`].
    pub max_rate_limit_retries: u32,
    /// 5xx answers and transport errors retried before giving up.
    pub max_server_retries: u32,
    /// First backoff for 5xx; doubles each time, with full jitter.
    pub base_delay: Duration,
    /// Longest single wait (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_rate_limit_retries: 4,
            max_server_retries: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// Client construction options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of ordinary requests (longpoll gets its own).
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), e.g. the emulator's self-signed certificate.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(60),
            extra_root_certs_pem: Vec::new(),
            retry: RetryPolicy::default(),
            user_agent: concat!("carbide-dropbox/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// Who a call acts for: a user's access token, and for team-space accounts the root namespace.
#[derive(Clone)]
pub struct Auth {
    pub access_token: String,
    /// Root namespace id sent as `Dropbox-API-Path-Root` (team folders), if any.
    pub path_root: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("access_token", &"<redacted>")
            .field("path_root", &self.path_root)
            .finish()
    }
}

/// An async Dropbox API v2 client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    retry: RetryPolicy,
}

enum Body {
    Json(String),
    Form(Vec<(&'static str, String)>),
    Empty,
}

impl Client {
    pub fn new(endpoints: Endpoints, options: ClientOptions) -> Result<Client, Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(options.user_agent);
        for pem in &options.extra_root_certs_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| Error::Transport(format!("bad CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Client {
            http,
            endpoints: options_endpoints(endpoints),
            retry: options.retry,
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    // ---- OAuth -------------------------------------------------------------------------

    /// The URL the user's browser opens to grant access.
    pub fn authorize_url(&self, req: &AuthorizeRequest<'_>) -> Result<String, Error> {
        authorize_url(&self.endpoints.www, req).map_err(|e| Error::Decode(e.to_string()))
    }

    /// Exchanges an authorization code for tokens.
    pub async fn exchange_code(
        &self,
        app_key: &str,
        app_secret: Option<&str>,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect_uri.to_string()),
            ("client_id", app_key.to_string()),
        ];
        if let Some(s) = app_secret {
            form.push(("client_secret", s.to_string()));
        }
        if let Some(v) = code_verifier {
            form.push(("code_verifier", v.to_string()));
        }
        self.token_call(form).await
    }

    /// Gets a fresh access token from a refresh token.
    pub async fn refresh(
        &self,
        app_key: &str,
        app_secret: Option<&str>,
        refresh_token: &str,
    ) -> Result<TokenResponse, Error> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.to_string()),
            ("client_id", app_key.to_string()),
        ];
        if let Some(s) = app_secret {
            form.push(("client_secret", s.to_string()));
        }
        self.token_call(form).await
    }

    async fn token_call(&self, form: Vec<(&'static str, String)>) -> Result<TokenResponse, Error> {
        let url = format!("{}/oauth2/token", self.endpoints.api);
        let resp = self
            .send_with_retry(|| self.http.post(&url), &Body::Form(form), None)
            .await;
        match resp {
            Ok(r) => decode_json(r).await,
            Err(Error::BadRequest(text)) => Err(oauth_error(&text)),
            Err(e) => Err(e),
        }
    }

    /// Revokes the access token (and with it the refresh token it came from).
    pub async fn revoke(&self, access_token: &str) -> Result<(), Error> {
        let auth = Auth {
            access_token: access_token.to_string(),
            path_root: None,
        };
        let _: serde_json::Value = self
            .rpc(&auth, "auth/token/revoke", &serde_json::Value::Null)
            .await?;
        Ok(())
    }

    // ---- RPC routes ----------------------------------------------------------------------

    pub async fn get_current_account(&self, auth: &Auth) -> Result<FullAccount, Error> {
        // The account itself is independent of the path root.
        let plain = Auth {
            access_token: auth.access_token.clone(),
            path_root: None,
        };
        self.rpc(
            &plain,
            "users/get_current_account",
            &serde_json::Value::Null,
        )
        .await
    }

    pub async fn list_folder(
        &self,
        auth: &Auth,
        arg: &ListFolderArg,
    ) -> Result<ListFolderResult, Error> {
        self.rpc(auth, "files/list_folder", arg).await
    }

    pub async fn list_folder_continue(
        &self,
        auth: &Auth,
        cursor: &str,
    ) -> Result<ListFolderResult, Error> {
        self.rpc(
            auth,
            "files/list_folder/continue",
            &serde_json::json!({ "cursor": cursor }),
        )
        .await
    }

    pub async fn get_latest_cursor(
        &self,
        auth: &Auth,
        arg: &ListFolderArg,
    ) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        struct R {
            cursor: String,
        }
        let r: R = self
            .rpc(auth, "files/list_folder/get_latest_cursor", arg)
            .await?;
        Ok(r.cursor)
    }

    pub async fn get_metadata(&self, auth: &Auth, path: &str) -> Result<Metadata, Error> {
        self.rpc(
            auth,
            "files/get_metadata",
            &serde_json::json!({ "path": path }),
        )
        .await
    }

    /// Waits up to `timeout_s` (30–480) for changes under `cursor`. No authentication.
    pub async fn longpoll(&self, cursor: &str, timeout_s: u64) -> Result<LongpollResult, Error> {
        let url = format!("{}/2/files/list_folder/longpoll", self.endpoints.notify);
        let body =
            Body::Json(serde_json::json!({ "cursor": cursor, "timeout": timeout_s }).to_string());
        let wait = Duration::from_secs(timeout_s + 120);
        let resp = self
            .send_with_retry(|| self.http.post(&url).timeout(wait), &body, None)
            .await?;
        decode_json(resp).await
    }

    /// Downloads `path` (a path or `id:…`) into `sink`, refusing files over `max_bytes` before
    /// reading their content, and verifying Dropbox's content hash. Returns the file's metadata.
    pub async fn download<W: AsyncWrite + Unpin + Send>(
        &self,
        auth: &Auth,
        path: &str,
        sink: &mut W,
        max_bytes: u64,
    ) -> Result<FileMetadata, Error> {
        let url = format!("{}/2/files/download", self.endpoints.content);
        let arg = header_json(&serde_json::json!({ "path": path }))
            .map_err(|e| Error::Decode(e.to_string()))?;
        let resp = self
            .send_with_retry(
                || self.http.post(&url).header("Dropbox-API-Arg", arg.clone()),
                &Body::Empty,
                Some(auth),
            )
            .await?;
        let meta_header = resp
            .headers()
            .get("dropbox-api-result")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Decode("download without Dropbox-API-Result".into()))?;
        let meta: FileMetadata =
            serde_json::from_str(meta_header).map_err(|e| Error::Decode(e.to_string()))?;
        if meta.size > max_bytes {
            return Err(Error::TooLarge {
                size: meta.size,
                limit: max_bytes,
            });
        }
        let mut hasher = ContentHasher::new();
        let mut received: u64 = 0;
        let mut stream = resp.bytes_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| Error::Transport(e.to_string()))?;
            received += piece.len() as u64;
            if received > max_bytes {
                return Err(Error::TooLarge {
                    size: received,
                    limit: max_bytes,
                });
            }
            hasher.update(&piece);
            sink.write_all(&piece)
                .await
                .map_err(|e| Error::Io(e.to_string()))?;
        }
        sink.flush().await.map_err(|e| Error::Io(e.to_string()))?;
        if let Some(expected) = &meta.content_hash
            && *expected != hasher.finish()
        {
            return Err(Error::ContentHashMismatch);
        }
        Ok(meta)
    }

    /// One RPC call on the api host: JSON in, JSON out.
    async fn rpc<A: Serialize, R: DeserializeOwned>(
        &self,
        auth: &Auth,
        route: &str,
        arg: &A,
    ) -> Result<R, Error> {
        let url = format!("{}/2/{route}", self.endpoints.api);
        let body =
            Body::Json(serde_json::to_string(arg).map_err(|e| Error::Decode(e.to_string()))?);
        let resp = self
            .send_with_retry(|| self.http.post(&url), &body, Some(auth))
            .await?;
        decode_json(resp).await
    }

    /// Sends a request, retrying 429 and 5xx answers and transport errors per the policy.
    /// Returns a 2xx response, or the classified error.
    async fn send_with_retry(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        body: &Body,
        auth: Option<&Auth>,
    ) -> Result<reqwest::Response, Error> {
        let mut rate_limited = 0u32;
        let mut server_errors = 0u32;
        loop {
            let mut req = make();
            if let Some(a) = auth {
                req = req.bearer_auth(&a.access_token);
                if let Some(root) = &a.path_root {
                    req = req.header(
                        "Dropbox-API-Path-Root",
                        serde_json::json!({".tag": "root", "root": root}).to_string(),
                    );
                }
            }
            req = match body {
                Body::Json(s) => req
                    .header("Content-Type", "application/json")
                    .body(s.clone()),
                Body::Form(f) => req.form(f),
                Body::Empty => req,
            };
            let result = req.send().await;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    if server_errors < self.retry.max_server_retries {
                        server_errors += 1;
                        tokio::time::sleep(self.backoff(server_errors)).await;
                        continue;
                    }
                    return Err(Error::Transport(e.to_string()));
                }
            };
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                return Ok(resp);
            }
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap_or_default();
            match status {
                429 => {
                    let retry_after = retry_after(&headers, &text);
                    if rate_limited < self.retry.max_rate_limit_retries {
                        rate_limited += 1;
                        let wait = retry_after
                            .map(Duration::from_secs)
                            .unwrap_or_else(|| self.backoff(rate_limited))
                            .min(self.retry.max_delay);
                        tracing::debug!(?wait, "Dropbox rate limit, waiting");
                        tokio::time::sleep(wait + jitter(Duration::from_millis(250))).await;
                        continue;
                    }
                    return Err(Error::RateLimited { retry_after });
                }
                500..=599 => {
                    if server_errors < self.retry.max_server_retries {
                        server_errors += 1;
                        let wait = retry_after(&headers, &text)
                            .map(Duration::from_secs)
                            .unwrap_or_else(|| self.backoff(server_errors))
                            .min(self.retry.max_delay);
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(Error::Server { status, body: text });
                }
                _ => return Err(classify(status, &text)),
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.retry.max_delay);
        jitter(exp)
    }
}

fn options_endpoints(e: Endpoints) -> Endpoints {
    Endpoints {
        api: e.api.trim_end_matches('/').to_string(),
        content: e.content.trim_end_matches('/').to_string(),
        notify: e.notify.trim_end_matches('/').to_string(),
        www: e.www.trim_end_matches('/').to_string(),
    }
}

/// A uniformly random duration in [d/2, d] ("equal jitter").
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    let extra = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(extra)
}

/// Seconds to wait from `Retry-After` or the JSON body's `error.retry_after`.
fn retry_after(headers: &HeaderMap<HeaderValue>, body: &str) -> Option<u64> {
    if let Some(v) = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(v);
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("error")?.get("retry_after")?.as_u64()
}

fn classify(status: u16, text: &str) -> Error {
    let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
    match (status, json) {
        (400, _) => Error::BadRequest(text.chars().take(500).collect()),
        (401, Some(v)) => {
            let tag = v
                .get("error")
                .and_then(|e| e.get(".tag").and_then(|t| t.as_str()).or(e.as_str()))
                .unwrap_or("other")
                .to_string();
            Error::Auth { tag, body: v }
        }
        (401, None) => Error::Auth {
            tag: "other".into(),
            body: serde_json::Value::String(text.chars().take(500).collect()),
        },
        (403, _) => Error::AccessDenied(text.chars().take(500).collect()),
        (409, Some(v)) => Error::Api {
            summary: v
                .get("error_summary")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string(),
            error: v.get("error").cloned().unwrap_or(serde_json::Value::Null),
        },
        (422, Some(v)) => Error::PathRoot(v),
        _ => Error::Decode(format!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        )),
    }
}

/// Parses the token endpoint's 400 bodies, including the old flat `invalid_client: ...` form.
fn oauth_error(text: &str) -> Error {
    let v: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let raw = v
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.as_str())
        .unwrap_or(text);
    let (error, inline_desc) = match raw.split_once(':') {
        Some((e, d)) => (e.trim().to_string(), Some(d.trim().to_string())),
        None => (raw.trim().to_string(), None),
    };
    let description = v
        .as_ref()
        .and_then(|v| v.get("error_description"))
        .and_then(|d| d.as_str())
        .map(str::to_string)
        .or(inline_desc);
    Error::OAuth { error, description }
}

async fn decode_json<R: DeserializeOwned>(resp: reqwest::Response) -> Result<R, Error> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let e = classify(
            409,
            r#"{"error_summary":"reset/..","error":{".tag":"reset"}}"#,
        );
        assert!(e.is_reset());
        let e = classify(
            409,
            r#"{"error_summary":"path/not_found/...","error":{".tag":"path","path":{".tag":"not_found"}}}"#,
        );
        assert!(e.is_not_found() && !e.is_reset());
        let e = classify(
            401,
            r#"{"error_summary":"expired_access_token/..","error":{".tag":"expired_access_token"}}"#,
        );
        assert!(e.is_expired_token());
        let e = classify(401, r#"{"error":"invalid_access_token"}"#);
        assert!(e.is_revoked());
        assert!(matches!(
            classify(400, "Error in call"),
            Error::BadRequest(_)
        ));
        let e = oauth_error(
            r#"{"error":"invalid_grant","error_description":"refresh token is invalid or revoked"}"#,
        );
        assert!(e.is_revoked());
        let e = oauth_error(r#"{"error":"invalid_client: Invalid client_id or client_secret"}"#);
        assert!(
            matches!(e, Error::OAuth { ref error, ref description } if error == "invalid_client" && description.as_deref() == Some("Invalid client_id or client_secret"))
        );
    }

    #[test]
    fn retry_after_from_header_or_body() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, r#"{"error":{"retry_after":7}}"#), Some(7));
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, "too many requests"), Some(3));
        assert_eq!(retry_after(&HeaderMap::new(), "text"), None);
    }
}
