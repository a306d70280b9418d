//! OAuth 2.0: the consent page (`GET/POST /oauth2/authorize`), the token endpoint
//! (`authorization_code` and `refresh_token` grants, Basic or body client auth, PKCE),
//! and the authorize-URL validation shared with the admin `oauth/approve` route.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::emulator::{AccountReq, SharedRef, create_account_locked, mint_access, mint_grant};
use crate::http::json_response;
use crate::state::{AuthCode, PendingAuth, State as Model};
use crate::util::{ct_eq, now_secs, random_token};

/// An invalid authorize request (shown as an HTML 400 page, never redirected).
#[derive(Debug)]
pub struct AuthorizeError(pub String);

fn is_loopback_http(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    })
}

/// Validates authorize query parameters against the registered app.
pub fn validate_authorize(
    model: &Model,
    q: &HashMap<String, String>,
) -> Result<PendingAuth, AuthorizeError> {
    let client_id = q.get("client_id").map(String::as_str).unwrap_or("");
    let app = model.apps.get(client_id).ok_or_else(|| {
        AuthorizeError("Invalid client_id. The app key is not recognised.".into())
    })?;
    match q.get("response_type").map(String::as_str) {
        Some("code") => {}
        Some(other) => {
            return Err(AuthorizeError(format!(
                "Invalid response_type \"{other}\". Only \"code\" is supported."
            )));
        }
        None => return Err(AuthorizeError("Missing response_type.".into())),
    }
    let redirect_uri = match q.get("redirect_uri").filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => {
            let registered = app.redirect_uris.iter().any(|u| u == r);
            if !registered {
                return Err(AuthorizeError(format!(
                    "Invalid redirect_uri. It must exactly match one of the URIs registered for the app (got \"{r}\")."
                )));
            }
            if !(r.starts_with("https://") || is_loopback_http(r)) {
                return Err(AuthorizeError(
                    "Invalid redirect_uri. It must use HTTPS (plain http only for localhost)."
                        .into(),
                ));
            }
            Some(r.clone())
        }
    };
    let offline = match q.get("token_access_type").map(String::as_str) {
        None | Some("") | Some("online") | Some("legacy") => false,
        Some("offline") => true,
        Some(other) => {
            return Err(AuthorizeError(format!(
                "Invalid token_access_type \"{other}\"."
            )));
        }
    };
    let challenge = match q.get("code_challenge") {
        None => None,
        Some(c) => {
            let method = q
                .get("code_challenge_method")
                .cloned()
                .unwrap_or_else(|| "plain".into());
            if method != "S256" && method != "plain" {
                return Err(AuthorizeError(format!(
                    "Invalid code_challenge_method \"{method}\"."
                )));
            }
            if c.len() < 43 || c.len() > 128 {
                return Err(AuthorizeError(
                    "Invalid code_challenge: must be 43-128 characters.".into(),
                ));
            }
            Some((c.clone(), method))
        }
    };
    let scopes: Vec<String> = match q.get("scope") {
        Some(s) if !s.trim().is_empty() => {
            let req: Vec<String> = s.split_whitespace().map(str::to_string).collect();
            if !app.scopes.is_empty() {
                if let Some(bad) = req.iter().find(|x| !app.scopes.contains(x)) {
                    return Err(AuthorizeError(format!(
                        "Invalid scope \"{bad}\": the app does not have this scope."
                    )));
                }
            }
            req
        }
        _ => app.scopes.clone(),
    };
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "true");
    Ok(PendingAuth {
        app_key: app.key.clone(),
        redirect_uri,
        state: q.get("state").cloned(),
        challenge,
        offline,
        scopes,
        force_reapprove: flag("force_reapprove"),
        disable_signup: flag("disable_signup"),
        expires_at: now_secs() + 1800,
    })
}

/// Issues an authorization code for a pending request approved by `account_id`.
pub fn issue_code(model: &mut Model, p: &PendingAuth, account_id: &str, code_ttl: i64) -> String {
    let code = random_token(43);
    model
        .approvals
        .insert((account_id.to_string(), p.app_key.clone()));
    model.codes.insert(
        code.clone(),
        AuthCode {
            app_key: p.app_key.clone(),
            account_id: account_id.to_string(),
            redirect_uri: p.redirect_uri.clone(),
            challenge: p.challenge.clone(),
            offline: p.offline,
            scopes: p.scopes.clone(),
            expires_at: now_secs() + code_ttl,
        },
    );
    code
}

/// The redirect target for an approval or a denial.
pub fn redirect_target(p: &PendingAuth, code: Option<&str>) -> Option<String> {
    let base = p.redirect_uri.as_ref()?;
    let mut u = url::Url::parse(base).ok()?;
    {
        let mut qp = u.query_pairs_mut();
        match code {
            Some(c) => {
                qp.append_pair("code", c);
            }
            None => {
                qp.append_pair("error", "access_denied");
                qp.append_pair(
                    "error_description",
                    "The user chose not to give your app access to their Dropbox account.",
                );
            }
        }
        if let Some(s) = &p.state {
            qp.append_pair("state", s);
        }
    }
    Some(u.to_string())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t}</title><style>\
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f7f5f2;color:#1e1919;margin:0}}\
main{{max-width:28rem;margin:3rem auto;background:#fff;border:1px solid #d8d3cb;border-radius:8px;padding:2rem}}\
h1{{font-size:1.4rem;margin-top:0}} .accounts{{list-style:none;padding:0}} .accounts li{{margin:.5rem 0}}\
button{{font:inherit;padding:.6rem 1rem;border-radius:6px;border:1px solid #0061fe;background:#0061fe;color:#fff;cursor:pointer;width:100%;text-align:left}}\
button.secondary{{background:#fff;color:#0061fe}} button:focus-visible,input:focus-visible{{outline:3px solid #ffb000;outline-offset:2px}}\
label{{display:block;margin:.5rem 0 .25rem}} input[type=email]{{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #8c8c8c;border-radius:6px}}\
.row{{display:flex;gap:.75rem}} .row button{{text-align:center}} code{{font-size:1.1rem;word-break:break-all}}\
</style></head><body><main>{b}</main></body></html>",
        t = esc(title),
        b = body
    );
    let mut resp = Response::new(Body::from(page));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn error_page(msg: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "Error (400)",
        &format!("<h1>Error (400)</h1><p role=\"alert\">{}</p>", esc(msg)),
    )
}

fn redirect(to: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn chooser_page(model: &Model, req_id: &str, p: &PendingAuth) -> Response {
    let mut accounts = String::new();
    for id in &model.account_order {
        if let Some(a) = model.accounts.get(id) {
            accounts.push_str(&format!(
                "<li><button type=\"submit\" name=\"account_id\" value=\"{}\">Continue as {} <span>({})</span></button></li>",
                esc(&a.account_id),
                esc(&a.display_name()),
                esc(&a.email)
            ));
        }
    }
    let list = if accounts.is_empty() {
        "<p>No accounts exist in this emulator yet.</p>".to_string()
    } else {
        format!(
            "<form method=\"post\" action=\"/oauth2/authorize\"><input type=\"hidden\" name=\"request_id\" value=\"{}\">\
<fieldset style=\"border:0;padding:0\"><legend>Choose an account</legend><ul class=\"accounts\">{accounts}</ul></fieldset></form>",
            esc(req_id)
        )
    };
    let signup_note = if p.disable_signup {
        " (existing accounts only)"
    } else {
        ""
    };
    let body = format!(
        "<h1>Sign in to Dropbox</h1><p>The app <strong>{app}</strong> wants to connect to your Dropbox.</p>{list}\
<form method=\"post\" action=\"/oauth2/authorize\"><input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
<label for=\"email\">Or sign in with email{signup_note}</label><input id=\"email\" name=\"email\" type=\"email\" required autocomplete=\"email\">\
<p><button type=\"submit\" name=\"action\" value=\"signin\">Sign in</button></p></form>",
        app = esc(&p.app_key),
        rid = esc(req_id),
    );
    html(StatusCode::OK, "Sign in - Dropbox", &body)
}

fn consent_page(model: &Model, req_id: &str, p: &PendingAuth, account_id: &str) -> Response {
    let who = model
        .accounts
        .get(account_id)
        .map(|a| format!("{} ({})", a.display_name(), a.email))
        .unwrap_or_default();
    let scopes = if p.scopes.is_empty() {
        "<li>Full access to your Dropbox</li>".to_string()
    } else {
        p.scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", esc(s)))
            .collect()
    };
    let body = format!(
        "<h1>{app} would like to access your Dropbox</h1><p>Signed in as <strong>{who}</strong>.</p>\
<p>This app will be able to:</p><ul>{scopes}</ul>\
<form method=\"post\" action=\"/oauth2/authorize\"><input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
<input type=\"hidden\" name=\"account_id\" value=\"{aid}\"><div class=\"row\">\
<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button></div></form>",
        app = esc(&p.app_key),
        who = esc(&who),
        rid = esc(req_id),
        aid = esc(account_id),
    );
    html(StatusCode::OK, "Allow access - Dropbox", &body)
}

fn code_page(code: &str) -> Response {
    html(
        StatusCode::OK,
        "Access code - Dropbox",
        &format!(
            "<h1>Enter this code into the app</h1><p><code id=\"code\">{}</code></p>",
            esc(code)
        ),
    )
}

/// `GET /oauth2/authorize`.
pub async fn authorize_get(
    State(sh): State<SharedRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut model = sh.state.lock();
    let now = now_secs();
    model.pending.retain(|_, p| p.expires_at > now);
    match validate_authorize(&model, &q) {
        Err(AuthorizeError(msg)) => error_page(&msg),
        Ok(p) => {
            let id = random_token(32);
            let page = chooser_page(&model, &id, &p);
            model.pending.insert(id, p);
            page
        }
    }
}

/// `POST /oauth2/authorize` (form): choose/sign in, then Allow/Deny.
pub async fn authorize_post(State(sh): State<SharedRef>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut model = sh.state.lock();
    let Some(req_id) = form.get("request_id").cloned() else {
        return error_page("Missing request_id; start again from the app.");
    };
    let Some(p) = model
        .pending
        .get(&req_id)
        .cloned()
        .filter(|p| p.expires_at > now_secs())
    else {
        return error_page("This sign-in request has expired; start again from the app.");
    };
    let account_id = match (form.get("account_id"), form.get("email")) {
        (Some(a), _) if model.accounts.contains_key(a) => a.clone(),
        (Some(_), _) => return error_page("Unknown account."),
        (None, Some(email)) => {
            let existing = model
                .accounts
                .values()
                .find(|a| a.email.eq_ignore_ascii_case(email.trim()))
                .cloned();
            match existing {
                Some(a) => a.account_id,
                None if p.disable_signup => {
                    return error_page(
                        "No account with that email exists and sign-up is disabled.",
                    );
                }
                None => match create_account_locked(
                    &mut model,
                    AccountReq {
                        email: email.clone(),
                        ..Default::default()
                    },
                ) {
                    Ok(a) => a.account_id,
                    Err(e) => return error_page(&e.to_string()),
                },
            }
        }
        (None, None) => return chooser_page(&model, &req_id, &p),
    };
    let decision = form.get("decision").map(String::as_str);
    let already = model
        .approvals
        .contains(&(account_id.clone(), p.app_key.clone()));
    let allow = match decision {
        Some("allow") => true,
        Some("deny") => false,
        Some(_) => return error_page("Unknown decision."),
        None if already && !p.force_reapprove => true,
        None => return consent_page(&model, &req_id, &p, &account_id),
    };
    model.pending.remove(&req_id);
    if !allow {
        return match redirect_target(&p, None) {
            Some(to) => redirect(&to),
            None => html(
                StatusCode::OK,
                "Access denied",
                "<h1>Access denied</h1><p>You chose not to connect the app.</p>",
            ),
        };
    }
    let code = issue_code(&mut model, &p, &account_id, sh.settings.code_ttl);
    match redirect_target(&p, Some(&code)) {
        Some(to) => redirect(&to),
        None => code_page(&code),
    }
}

fn token_error(error: &str, description: Option<&str>) -> Response {
    let v = match description {
        Some(d) => json!({"error": error, "error_description": d}),
        None => json!({"error": error}),
    };
    json_response(StatusCode::BAD_REQUEST, &v)
}

fn pkce_ok(challenge: &(String, String), verifier: &str) -> bool {
    if verifier.len() < 43 || verifier.len() > 128 {
        return false;
    }
    let expect = if challenge.1 == "S256" {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    } else {
        verifier.to_string()
    };
    ct_eq(&expect, &challenge.0)
}

/// `POST /oauth2/token`.
pub async fn token(
    State(sh): State<SharedRef>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut form: HashMap<String, String> = q;
    form.extend(url::form_urlencoded::parse(&body).into_owned());
    // Client authentication: HTTP Basic or body.
    let mut client_id = form.get("client_id").cloned();
    let mut client_secret = form.get("client_secret").cloned();
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(b64) = auth
            .strip_prefix("Basic ")
            .or_else(|| auth.strip_prefix("basic "))
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok());
            match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((k, s)) => {
                    client_id = Some(k.to_string());
                    client_secret = Some(s.to_string());
                }
                None => {
                    return token_error("invalid_client: Invalid client_id or client_secret", None);
                }
            }
        }
    }
    let mut model = sh.state.lock();
    let Some(app) = client_id.as_ref().and_then(|c| model.apps.get(c)).cloned() else {
        return token_error("invalid_client: Invalid client_id or client_secret", None);
    };
    let secret_ok = client_secret.as_deref().map(|s| ct_eq(s, &app.secret));
    if secret_ok == Some(false) {
        return token_error("invalid_client: Invalid client_id or client_secret", None);
    }
    let ttl = sh.settings.token_ttl;
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = form.get("code") else {
                return token_error("invalid_request", Some("No auth code provided"));
            };
            // Codes are single-use: remove on first presentation.
            let Some(c) = model.codes.remove(code) else {
                return token_error("invalid_grant", Some("code doesn't exist or has expired"));
            };
            if c.expires_at <= now_secs() || c.app_key != app.key {
                return token_error("invalid_grant", Some("code doesn't exist or has expired"));
            }
            if c.redirect_uri.as_deref()
                != form
                    .get("redirect_uri")
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
            {
                return token_error("invalid_grant", Some("redirect_uri mismatch"));
            }
            let pkce = match &c.challenge {
                Some(ch) => match form.get("code_verifier") {
                    Some(v) if pkce_ok(ch, v) => true,
                    Some(_) => return token_error("invalid_grant", Some("invalid code verifier")),
                    None => {
                        return token_error("invalid_request", Some("No code verifier provided"));
                    }
                },
                None => {
                    if secret_ok != Some(true) {
                        return token_error(
                            "invalid_client: Invalid client_id or client_secret",
                            None,
                        );
                    }
                    false
                }
            };
            let v = mint_grant(
                &mut model,
                &app.key,
                &c.account_id,
                c.scopes.clone(),
                c.offline,
                pkce,
                ttl,
            );
            json_response(StatusCode::OK, &v)
        }
        Some("refresh_token") => {
            let Some(rt) = form.get("refresh_token") else {
                return token_error("invalid_request", Some("No refresh token provided"));
            };
            if rt.is_empty()
                || !rt
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return token_error("invalid_grant", Some("refresh token is malformed"));
            }
            let Some(gid) = model.refresh_tokens.get(rt).copied() else {
                return token_error("invalid_grant", Some("refresh token is invalid or revoked"));
            };
            let Some(g) = model.grants.get(&gid).cloned() else {
                return token_error("invalid_grant", Some("refresh token is invalid or revoked"));
            };
            if g.revoked || g.app_key != app.key {
                return token_error("invalid_grant", Some("refresh token is invalid or revoked"));
            }
            if !g.pkce && secret_ok != Some(true) {
                return token_error("invalid_client: Invalid client_id or client_secret", None);
            }
            let narrowed = match form.get("scope") {
                Some(s) => {
                    let req: Vec<String> = s.split_whitespace().map(str::to_string).collect();
                    if !g.scopes.is_empty() && req.iter().any(|x| !g.scopes.contains(x)) {
                        return token_error(
                            "invalid_scope",
                            Some("requested scope exceeds the granted scopes"),
                        );
                    }
                    Some(req)
                }
                None => None,
            };
            let scope = narrowed.as_ref().unwrap_or(&g.scopes).join(" ");
            let access = mint_access(&mut model, gid, ttl, narrowed);
            let v: Value = json!({"access_token": access, "token_type": "bearer", "expires_in": ttl, "scope": scope});
            json_response(StatusCode::OK, &v)
        }
        Some(other) => token_error(
            "unsupported_grant_type",
            Some(&format!("grant_type \"{other}\" is not supported")),
        ),
        None => token_error("invalid_request", Some("No grant_type provided")),
    }
}
