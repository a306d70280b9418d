//! Carbide Connect: the end user's page (`/connect`), its assets, and the embed script
//! (`/connect.js`). Everything is compiled into the binary and served from carbide's own origin
//! under a strict Content-Security-Policy (no inline script, no third-party requests). The
//! customer's access token reaches the page by postMessage or by a POSTed form, never in a URL.

use axum::Form;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../../assets/connect/index.html");
const APP_JS: &str = include_str!("../../assets/connect/app.js");
const CSS: &str = include_str!("../../assets/connect/connect.css");
const OAUTH_DONE_JS: &str = include_str!("../../assets/connect/oauth-done.js");
const EMBED_JS: &str = include_str!("../../assets/connect/connect.js");

/// The Content-Security-Policy of every Connect page. Framing is allowed from anywhere because
/// the page shows nothing until the embedding page hands it a customer token.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors *";

fn page(html: String) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// JSON made safe inside an HTML `<script type="application/json">` block.
pub(crate) fn json_for_html(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The Connect page. It waits for the embedding page (connect.js) to hand it a session.
#[utoipa::path(get, path = "/connect", tag = "Connect",
    responses((status = 200, description = "Carbide Connect page", content_type = "text/html", body = String)))]
pub(crate) async fn connect_page() -> Response {
    page(INDEX_HTML.to_string())
}

/// Form fields of `POST /connect`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct ConnectForm {
    /// Customer access token from `/auth/v1/access_token`.
    access_token: String,
    /// Connect options as a JSON object (tags, chunk_size, chunk_overlap, use_ocr, embedding_model…).
    #[serde(default)]
    options: Option<String>,
}

/// The Connect page opened by a form post (for apps that cannot use connect.js): the token
/// travels in the request body, so it stays out of logs and history.
#[utoipa::path(post, path = "/connect", tag = "Connect",
    request_body(content = ConnectForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Carbide Connect page", content_type = "text/html", body = String)))]
pub(crate) async fn connect_post(Form(form): Form<ConnectForm>) -> Response {
    let options = form
        .options
        .as_deref()
        .filter(|o| !o.trim().is_empty())
        .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    let boot = serde_json::json!({ "token": form.access_token, "options": options });
    let block = format!(
        "<script type=\"application/json\" id=\"boot\">{}</script>\n<script src=\"/connect/assets/app.js\"></script>",
        json_for_html(&boot)
    );
    page(INDEX_HTML.replace("<script src=\"/connect/assets/app.js\"></script>", &block))
}

/// Script and style assets of the Connect page.
#[utoipa::path(get, path = "/connect/assets/{name}", tag = "Connect",
    params(("name" = String, Path, description = "app.js, connect.css or oauth-done.js")),
    responses((status = 200, description = "asset"), (status = 404, description = "unknown asset")))]
pub(crate) async fn connect_asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => asset("text/javascript; charset=utf-8", APP_JS),
        "connect.css" => asset("text/css; charset=utf-8", CSS),
        "oauth-done.js" => asset("text/javascript; charset=utf-8", OAUTH_DONE_JS),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"detail": "Not Found"})),
        )
            .into_response(),
    }
}

/// The embed script developers add to their own pages (`CarbideConnect.open({...})`).
#[utoipa::path(get, path = "/connect.js", tag = "Connect",
    responses((status = 200, description = "embed script", content_type = "text/javascript", body = String)))]
pub(crate) async fn connect_js() -> Response {
    let mut resp = asset("text/javascript; charset=utf-8", EMBED_JS);
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_json_cannot_close_the_script_block() {
        let v = serde_json::json!({"token": "</script><script>alert(1)</script>"});
        let s = json_for_html(&v);
        assert!(!s.contains("</script>"));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
