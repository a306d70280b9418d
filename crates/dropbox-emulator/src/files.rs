//! `files/*` and `users/*` routes: list_folder (+continue, get_latest_cursor, longpoll),
//! get_metadata, download (POST/GET, Range), get_current_account and token revoke.

use std::collections::HashMap;
use std::io::SeekFrom;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::emulator::{SharedRef, deleted_json, entry_json, full_account_json, render_items};
use crate::http::{
    ApiErr, AuthCtx, authenticate, decode_arg, json_response, path_root, rpc_arg, void_arg,
};
use crate::state::{Account, State as Model};
use crate::util::{header_safe_json, normalize_path};

const PATH_PATTERN: &str = r"(/(.|[\r\n])*)?|id:.*|(ns:[0-9]+(/.*)?)";
const READ_PATH_PATTERN: &str = r"(/(.|[\r\n])*|id:.*)|(rev:[0-9a-f]{9,})|(ns:[0-9]+(/.*)?)";

/// Where a request path points.
struct Target {
    store: u64,
    /// View prefix used to render output paths.
    prefix: String,
    /// Lowercased absolute path in the store.
    lower: String,
}

fn resolve(
    model: &Model,
    acct: &Account,
    view_ns: u64,
    route: &str,
    path: &str,
    pattern: &str,
) -> Result<Target, ApiErr> {
    let root_store = model
        .namespaces
        .get(&acct.root_ns)
        .map(|n| n.store)
        .unwrap_or_default();
    let view = model.namespaces.get(&view_ns).ok_or_else(|| {
        ApiErr::Plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "namespace missing".into(),
        )
    })?;
    let mismatch = || {
        ApiErr::bad(
            route,
            format!("request body: path: '{path}' did not match pattern '{pattern}'"),
        )
    };
    if path.is_empty() {
        return Ok(Target {
            store: view.store,
            prefix: view.prefix.clone(),
            lower: view.prefix.clone(),
        });
    }
    if let Some(id) = path.strip_prefix("id:") {
        let full = format!("id:{id}");
        let (store, lower) = match model.ids.get(&full) {
            Some((s, l)) if *s == root_store => (*s, l.clone()),
            _ => return Err(ApiErr::route("path/not_found")),
        };
        let in_view = view.prefix.is_empty()
            || lower == view.prefix
            || lower.starts_with(&format!("{}/", view.prefix));
        let prefix = if in_view {
            view.prefix.clone()
        } else {
            String::new()
        };
        return Ok(Target {
            store,
            prefix,
            lower,
        });
    }
    if let Some(rest) = path.strip_prefix("ns:") {
        let (id, sub) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let ns_id: u64 = id.parse().map_err(|_| mismatch())?;
        let ns = match model.namespaces.get(&ns_id) {
            Some(n) if n.store == root_store => n,
            _ => return Err(ApiErr::route("path/not_found")),
        };
        let rel = normalize_path(sub).ok_or_else(|| ApiErr::route("path/malformed_path"))?;
        return Ok(Target {
            store: ns.store,
            prefix: ns.prefix.clone(),
            lower: format!("{}{}", ns.prefix, rel.to_lowercase()),
        });
    }
    if !path.starts_with('/') {
        return Err(mismatch());
    }
    let rel = normalize_path(path).ok_or_else(|| ApiErr::route("path/malformed_path"))?;
    Ok(Target {
        store: view.store,
        prefix: view.prefix.clone(),
        lower: format!("{}{}", view.prefix, rel.to_lowercase()),
    })
}

/// Opaque list_folder cursor contents.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Cursor {
    /// Store id.
    s: u64,
    /// Output prefix.
    x: String,
    /// Scope (lowercased absolute folder path).
    c: String,
    /// Recursive.
    r: bool,
    /// include_deleted.
    d: bool,
    /// Store epoch.
    e: u64,
    /// Change-log position.
    p: u64,
    /// Listing phase: last key returned.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    a: Option<String>,
    /// Page size.
    l: usize,
}

impl Cursor {
    fn encode(&self) -> String {
        let raw = serde_json::to_vec(self).unwrap_or_default();
        format!(
            "AAH{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        )
    }

    fn decode(route: &str, s: &str) -> Result<Self, ApiErr> {
        let bad = || ApiErr::bad(route, "request body: cursor: invalid cursor");
        let body = s.strip_prefix("AAH").ok_or_else(bad)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad())?;
        serde_json::from_slice(&raw).map_err(|_| bad())
    }
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ListFolderArg {
    path: String,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    include_media_info: bool,
    #[serde(default)]
    include_deleted: bool,
    #[serde(default)]
    include_has_explicit_shared_members: bool,
    #[serde(default = "default_true")]
    include_mounted_folders: bool,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    shared_link: Option<Value>,
    #[serde(default)]
    include_property_groups: Option<Value>,
    #[serde(default = "default_true")]
    include_non_downloadable_files: bool,
    #[serde(default)]
    include_restorable_info: bool,
}

fn user_ctx(
    model: &Model,
    route: &str,
    headers: &HeaderMap,
    scope: Option<&str>,
) -> Result<(AuthCtx, u64), ApiErr> {
    let ctx = authenticate(model, route, headers, None, scope)?;
    let view = path_root(model, route, headers, &ctx.account)?;
    Ok((ctx, view))
}

/// Validates list_folder args and returns the target folder.
fn list_target(
    model: &Model,
    route: &str,
    headers: &HeaderMap,
    arg: &ListFolderArg,
) -> Result<Target, ApiErr> {
    let (ctx, view) = user_ctx(model, route, headers, Some("files.metadata.read"))?;
    if arg.path == "/" {
        return Err(ApiErr::bad(
            route,
            "request body: path: Specify the root folder as an empty string rather than as \"/\".",
        ));
    }
    if let Some(l) = arg.limit {
        if !(1..=2000).contains(&l) {
            return Err(ApiErr::bad(
                route,
                format!("request body: limit: {l} is not within range [1, 2000]"),
            ));
        }
    }
    if arg.shared_link.is_some() {
        return Err(ApiErr::route("path/not_found"));
    }
    let t = resolve(model, &ctx.account, view, route, &arg.path, PATH_PATTERN)?;
    if t.lower != t.prefix && !t.lower.is_empty() {
        let store = model
            .stores
            .get(&t.store)
            .ok_or_else(|| ApiErr::route("path/not_found"))?;
        match store.entries.get(&t.lower) {
            None => return Err(ApiErr::route("path/not_found")),
            Some(e) if e.file.is_some() => return Err(ApiErr::route("path/not_folder")),
            Some(_) => {}
        }
    }
    Ok(t)
}

/// `files/list_folder`.
pub async fn list_folder(
    State(sh): State<SharedRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "files/list_folder";
    let arg: ListFolderArg = rpc_arg(route, &headers, &body)?;
    let model = sh.state.lock();
    let t = list_target(&model, route, &headers, &arg)?;
    let store = model
        .stores
        .get(&t.store)
        .ok_or_else(|| ApiErr::route("path/not_found"))?;
    let limit = arg
        .limit
        .map(|l| l as usize)
        .unwrap_or(sh.settings.default_page_size)
        .clamp(1, 2000);
    let pos = store.position();
    let (items, more) = store.list_page(&t.lower, arg.recursive, arg.include_deleted, None, limit);
    let last = items.last().map(|i| match i {
        crate::store::Item::Live(k) | crate::store::Item::Deleted(k, _) => k.clone(),
    });
    let entries = render_items(store, &t.prefix, &items);
    let cursor = Cursor {
        s: t.store,
        x: t.prefix.clone(),
        c: t.lower.clone(),
        r: arg.recursive,
        d: arg.include_deleted,
        e: store.epoch,
        p: pos,
        a: if more { last } else { None },
        l: limit,
    };
    let has_more = more || store.has_changes(&t.lower, arg.recursive, pos);
    Ok(json_response(
        StatusCode::OK,
        &json!({"entries": entries, "cursor": cursor.encode(), "has_more": has_more}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContinueArg {
    cursor: String,
}

fn check_cursor(
    model: &Model,
    route: &str,
    acct: Option<&Account>,
    cur: &Cursor,
) -> Result<(), ApiErr> {
    let store = model
        .stores
        .get(&cur.s)
        .ok_or_else(|| ApiErr::route("reset"))?;
    if store.epoch != cur.e {
        return Err(ApiErr::route("reset"));
    }
    if let Some(a) = acct {
        let root_store = model.namespaces.get(&a.root_ns).map(|n| n.store);
        if root_store != Some(cur.s) {
            return Err(ApiErr::route("reset"));
        }
    }
    if cur.c != cur.x && !cur.c.is_empty() && !store.entries.contains_key(&cur.c) {
        return Err(ApiErr::route("path/not_found"));
    }
    let _ = route;
    Ok(())
}

/// `files/list_folder/continue`.
pub async fn list_folder_continue(
    State(sh): State<SharedRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "files/list_folder/continue";
    let arg: ContinueArg = rpc_arg(route, &headers, &body)?;
    let model = sh.state.lock();
    let ctx = authenticate(&model, route, &headers, None, Some("files.metadata.read"))?;
    let mut cur = Cursor::decode(route, &arg.cursor)?;
    check_cursor(&model, route, Some(&ctx.account), &cur)?;
    let store = model
        .stores
        .get(&cur.s)
        .ok_or_else(|| ApiErr::route("reset"))?;
    let (items, has_more) = match cur.a.clone() {
        Some(after) => {
            let (items, more) = store.list_page(&cur.c, cur.r, cur.d, Some(&after), cur.l);
            if more {
                cur.a = items.last().map(|i| match i {
                    crate::store::Item::Live(k) | crate::store::Item::Deleted(k, _) => k.clone(),
                });
                (items, true)
            } else {
                cur.a = None;
                let pending = store.has_changes(&cur.c, cur.r, cur.p);
                (items, pending)
            }
        }
        None => {
            let (items, pos, more) = store.changes_page(&cur.c, cur.r, cur.p, cur.l);
            cur.p = pos;
            (items, more)
        }
    };
    let entries = render_items(store, &cur.x, &items);
    Ok(json_response(
        StatusCode::OK,
        &json!({"entries": entries, "cursor": cur.encode(), "has_more": has_more}),
    ))
}

/// `files/list_folder/get_latest_cursor`.
pub async fn get_latest_cursor(
    State(sh): State<SharedRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "files/list_folder/get_latest_cursor";
    let arg: ListFolderArg = rpc_arg(route, &headers, &body)?;
    let model = sh.state.lock();
    let t = list_target(&model, route, &headers, &arg)?;
    let store = model
        .stores
        .get(&t.store)
        .ok_or_else(|| ApiErr::route("path/not_found"))?;
    let limit = arg
        .limit
        .map(|l| l as usize)
        .unwrap_or(sh.settings.default_page_size)
        .clamp(1, 2000);
    let cursor = Cursor {
        s: t.store,
        x: t.prefix,
        c: t.lower,
        r: arg.recursive,
        d: arg.include_deleted,
        e: store.epoch,
        p: store.position(),
        a: None,
        l: limit,
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"cursor": cursor.encode()}),
    ))
}

fn default_timeout() -> u64 {
    30
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongpollArg {
    cursor: String,
    #[serde(default = "default_timeout")]
    timeout: u64,
}

/// `files/list_folder/longpoll` (no auth).
pub async fn longpoll(
    State(sh): State<SharedRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "files/list_folder/longpoll";
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(ApiErr::bad(
            route,
            "Your request includes an Authorization header, but this function does not use it.",
        ));
    }
    let arg: LongpollArg = rpc_arg(route, &headers, &body)?;
    if !(30..=480).contains(&arg.timeout) {
        return Err(ApiErr::bad(
            route,
            format!(
                "request body: timeout: {} is not within range [30, 480]",
                arg.timeout
            ),
        ));
    }
    let cur = Cursor::decode(route, &arg.cursor)?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(arg.timeout);
    let mut rx = sh.changes.subscribe();
    loop {
        {
            let model = sh.state.lock();
            check_cursor(&model, route, None, &cur).map_err(|e| match e {
                ApiErr::Route(_) => ApiErr::route("reset"),
                other => other,
            })?;
            let store = model
                .stores
                .get(&cur.s)
                .ok_or_else(|| ApiErr::route("reset"))?;
            if cur.a.is_some() || store.has_changes(&cur.c, cur.r, cur.p) {
                return Ok(json_response(StatusCode::OK, &json!({"changes": true})));
            }
            rx.mark_unchanged();
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(json_response(StatusCode::OK, &json!({"changes": false}))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct GetMetadataArg {
    path: String,
    #[serde(default)]
    include_media_info: bool,
    #[serde(default)]
    include_deleted: bool,
    #[serde(default)]
    include_has_explicit_shared_members: bool,
    #[serde(default)]
    include_property_groups: Option<Value>,
}

fn rev_json(model: &Model, rev: &str) -> Option<Value> {
    let (store_id, id, snap) = model.revs.get(rev)?;
    let store = model.stores.get(store_id)?;
    // Report the current path of the file when it still exists.
    let (lower, display) = match model.ids.get(id) {
        Some((_, l)) => (
            l.clone(),
            store
                .entries
                .get(l)
                .map(|e| e.display.clone())
                .unwrap_or(snap.display.clone()),
        ),
        None => (snap.display.to_lowercase(), snap.display.clone()),
    };
    let mut e = snap.clone();
    e.display = display;
    Some(entry_json("", &lower, &e))
}

/// `files/get_metadata`.
pub async fn get_metadata(
    State(sh): State<SharedRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "files/get_metadata";
    let arg: GetMetadataArg = rpc_arg(route, &headers, &body)?;
    let model = sh.state.lock();
    let (ctx, view) = user_ctx(&model, route, &headers, Some("files.metadata.read"))?;
    if arg.path.is_empty() || arg.path == "/" {
        return Err(ApiErr::bad(
            route,
            "request body: path: The root folder is unsupported.",
        ));
    }
    if let Some(rev) = arg.path.strip_prefix("rev:") {
        let ok = rev.len() >= 9
            && rev
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !ok {
            return Err(ApiErr::bad(
                route,
                format!(
                    "request body: path: '{}' did not match pattern '{READ_PATH_PATTERN}'",
                    arg.path
                ),
            ));
        }
        return match rev_json(&model, rev) {
            Some(v) => Ok(json_response(StatusCode::OK, &v)),
            None => Err(ApiErr::route("path/not_found")),
        };
    }
    let t = resolve(
        &model,
        &ctx.account,
        view,
        route,
        &arg.path,
        READ_PATH_PATTERN,
    )?;
    let store = model
        .stores
        .get(&t.store)
        .ok_or_else(|| ApiErr::route("path/not_found"))?;
    let prefix = if t.lower == t.prefix {
        ""
    } else {
        t.prefix.as_str()
    };
    match store.entries.get(&t.lower) {
        Some(e) => Ok(json_response(
            StatusCode::OK,
            &entry_json(prefix, &t.lower, e),
        )),
        None => match store.deleted.get(&t.lower) {
            Some(d) if arg.include_deleted => Ok(json_response(
                StatusCode::OK,
                &deleted_json(prefix, &t.lower, d),
            )),
            _ => Err(ApiErr::route("path/not_found")),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadArg {
    path: String,
    #[serde(default)]
    rev: Option<String>,
}

enum RangeSpec {
    Full,
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(h: Option<&HeaderValue>, size: u64) -> RangeSpec {
    let Some(raw) = h.and_then(|v| v.to_str().ok()) else {
        return RangeSpec::Full;
    };
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return RangeSpec::Full;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        let n = n.min(size);
        return RangeSpec::Part(size - n, size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Full;
    };
    let end = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return RangeSpec::Full,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(start, end)
}

/// `files/download` (POST or GET; arg in header or `arg` query parameter).
pub async fn download(
    State(sh): State<SharedRef>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "files/download";
    let _ = method;
    if !body.is_empty() {
        return Err(ApiErr::bad(
            route,
            "This function requires its argument in the HTTP header \"Dropbox-API-Arg\" and an empty request body.",
        ));
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").trim().to_ascii_lowercase();
        let ok = ct.is_empty()
            || ct == "application/octet-stream"
            || ct == "text/plain; charset=dropbox-cors-hack"
            || ct == "application/x-www-form-urlencoded";
        if !ok {
            return Err(ApiErr::bad(
                route,
                format!(
                    "Bad HTTP \"Content-Type\" header: {ct:?}.  Expecting one of \"application/octet-stream\", \"text/plain; charset=dropbox-cors-hack\"."
                ),
            ));
        }
    }
    let raw_arg: String = match headers.get("dropbox-api-arg") {
        Some(v) => v
            .to_str()
            .map_err(|_| ApiErr::bad(route, "HTTP header \"Dropbox-API-Arg\": must be ASCII; escape non-ASCII characters as \\uXXXX"))?
            .to_string(),
        None => match q.get("arg") {
            Some(a) => a.clone(),
            None => return Err(ApiErr::bad(route, "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".")),
        },
    };
    let arg: DownloadArg =
        decode_arg(route, "HTTP header \"Dropbox-API-Arg\"", raw_arg.as_bytes())?;
    let (meta, hash, size, etag) = {
        let model = sh.state.lock();
        let ctx = authenticate(
            &model,
            route,
            &headers,
            q.get("authorization").map(String::as_str),
            Some("files.content.read"),
        )?;
        let view = path_root(&model, route, &headers, &ctx.account)?;
        let (meta, file) = if let Some(rev) = arg.path.strip_prefix("rev:").or(arg.rev.as_deref()) {
            let (_, _, snap) = model
                .revs
                .get(rev)
                .ok_or_else(|| ApiErr::route("path/not_found"))?;
            let meta = rev_json(&model, rev).ok_or_else(|| ApiErr::route("path/not_found"))?;
            let f = snap
                .file
                .clone()
                .ok_or_else(|| ApiErr::route("path/not_file"))?;
            (meta, f)
        } else {
            if arg.path.is_empty() {
                return Err(ApiErr::route("path/not_file"));
            }
            let t = resolve(
                &model,
                &ctx.account,
                view,
                route,
                &arg.path,
                READ_PATH_PATTERN,
            )?;
            let store = model
                .stores
                .get(&t.store)
                .ok_or_else(|| ApiErr::route("path/not_found"))?;
            let e = store
                .entries
                .get(&t.lower)
                .ok_or_else(|| ApiErr::route("path/not_found"))?;
            let f = e
                .file
                .clone()
                .ok_or_else(|| ApiErr::route("path/not_file"))?;
            (entry_json(&t.prefix, &t.lower, e), f)
        };
        if !file.is_downloadable {
            return Err(ApiErr::Route(json!({".tag": "unsupported_file"})));
        }
        let etag = format!("W/\"{}\"", file.rev);
        (meta, file.content_hash, file.size, etag)
    };
    let mut resp_headers = HeaderMap::new();
    resp_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&header_safe_json(&meta)) {
        resp_headers.insert("dropbox-api-result", v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp_headers.insert(header::ETAG, v);
    }
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag || v.trim_start_matches("W/") == etag.trim_start_matches("W/"))
    {
        return Ok((StatusCode::NOT_MODIFIED, resp_headers).into_response());
    }
    let (status, start, len) = match parse_range(headers.get(header::RANGE), size) {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Part(a, b) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
                resp_headers.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        RangeSpec::Unsatisfiable => {
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, String::new()).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let mut file = tokio::fs::File::open(sh.blobs.path(&hash))
        .await
        .map_err(|e| {
            ApiErr::Plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("blob missing: {e}"),
            )
        })?;
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiErr::Plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        resp_headers.insert(header::CONTENT_LENGTH, v);
    }
    Ok((status, resp_headers, Body::from_stream(stream)).into_response())
}

/// `users/get_current_account`.
pub async fn get_current_account(
    State(sh): State<SharedRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "users/get_current_account";
    void_arg(route, &headers, &body)?;
    let model = sh.state.lock();
    let ctx = authenticate(&model, route, &headers, None, Some("account_info.read"))?;
    Ok(json_response(
        StatusCode::OK,
        &full_account_json(&model, &ctx.account),
    ))
}

/// `auth/token/revoke`: revokes the token's grant (refresh token and all its tokens).
pub async fn token_revoke(
    State(sh): State<SharedRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiErr> {
    let route = "auth/token/revoke";
    void_arg(route, &headers, &body)?;
    let mut model = sh.state.lock();
    let ctx = authenticate(&model, route, &headers, None, None)?;
    if let Some(g) = model.grants.get_mut(&ctx.grant) {
        g.revoked = true;
        if let Some(r) = g.refresh_token.clone() {
            model.refresh_tokens.remove(&r);
        }
    }
    let grant = ctx.grant;
    model.access_tokens.retain(|_, t| t.grant != grant);
    Ok(json_response(StatusCode::OK, &Value::Null))
}
