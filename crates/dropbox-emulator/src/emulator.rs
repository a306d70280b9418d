//! The shared emulator core: state behind a lock, the content-addressed blob directory,
//! change notification, and the operations the admin API and seeding perform.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::error::EmulatorError;
use crate::state::{Account, App, Fault, Grant, Namespace, State, Team};
use crate::store::{Entry, FileInfo, Item, Store, TreeError};
use crate::util::{self, format_ts, now_secs, random_alnum, random_token};

/// Runtime configuration shared by handlers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Access token lifetime in seconds.
    pub token_ttl: i64,
    /// Default list_folder page size.
    pub default_page_size: usize,
    /// Optional admin key required in `X-Emulator-Admin-Key`.
    pub admin_key: Option<String>,
    /// Authorization code lifetime in seconds.
    pub code_ttl: i64,
}

/// Content-addressed file bodies on disk.
pub struct Blobs {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Blobs {
    /// Opens (or creates) a blob directory; `None` uses a fresh temp dir.
    pub fn open(dir: Option<PathBuf>) -> Result<Self, EmulatorError> {
        match dir {
            Some(d) => {
                std::fs::create_dir_all(&d)?;
                Ok(Self { dir: d, _tmp: None })
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("dropbox-emulator-")
                    .tempdir()?;
                Ok(Self {
                    dir: tmp.path().to_path_buf(),
                    _tmp: Some(tmp),
                })
            }
        }
    }

    /// Path of a blob.
    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    /// Stores bytes; returns (content_hash, size).
    pub fn put(&self, data: &[u8]) -> Result<(String, u64), EmulatorError> {
        let hash = util::content_hash(data);
        let path = self.path(&hash);
        if !path.exists() {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            std::io::Write::write_all(&mut tmp, data)?;
            tmp.persist(&path).map_err(|e| EmulatorError::Io(e.error))?;
        }
        Ok((hash, data.len() as u64))
    }

    /// Stores a local file by streaming it; returns (content_hash, size).
    pub fn put_file(&self, src: &Path) -> Result<(String, u64), EmulatorError> {
        use std::io::{Read, Write};
        let mut input = std::fs::File::open(src)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        let mut hasher = util::ContentHasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
            size += n as u64;
        }
        let hash = hasher.finish();
        let path = self.path(&hash);
        if !path.exists() {
            tmp.persist(&path).map_err(|e| EmulatorError::Io(e.error))?;
        }
        Ok((hash, size))
    }
}

/// The shared core.
pub struct Shared {
    /// Model.
    pub state: Mutex<State>,
    /// File bodies.
    pub blobs: Blobs,
    /// Settings.
    pub settings: Settings,
    /// Bumped on every file change (wakes longpolls).
    pub changes: watch::Sender<u64>,
    /// Webhook deliveries to make: (app key, account id).
    pub webhook_tx: mpsc::UnboundedSender<(String, String)>,
    /// HTTP client for webhooks.
    pub http: reqwest::Client,
}

/// Errors of admin operations, mapped to 400/404 JSON by the admin router.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input.
    #[error("{0}")]
    BadRequest(String),
    /// Unknown entity.
    #[error("{0}")]
    NotFound(String),
    /// Conflicting tree state.
    #[error("{0}")]
    Conflict(String),
    /// Internal failure.
    #[error("{0}")]
    Internal(String),
}

impl From<TreeError> for AdminError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::NotFound(p) => AdminError::NotFound(format!("path not found: {p}")),
            TreeError::Conflict(p) => AdminError::Conflict(format!("path conflict: {p}")),
            TreeError::Invalid(m) => AdminError::BadRequest(m),
        }
    }
}

impl From<EmulatorError> for AdminError {
    fn from(e: EmulatorError) -> Self {
        AdminError::Internal(e.to_string())
    }
}

/// `/__admin/apps` body.
#[derive(Debug, Deserialize, Default)]
pub struct AppReq {
    /// App key.
    pub app_key: String,
    /// App secret.
    pub app_secret: String,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Scopes (empty = all).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Team part of `/__admin/accounts`.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct TeamReq {
    /// Team name (members of the same name share a team).
    pub name: String,
}

/// `/__admin/accounts` body.
#[derive(Debug, Deserialize, Default)]
pub struct AccountReq {
    /// Email.
    pub email: String,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default)]
    pub surname: Option<String>,
    /// basic|pro|business.
    #[serde(default)]
    pub account_type: Option<String>,
    /// Country.
    #[serde(default)]
    pub country: Option<String>,
    /// Locale.
    #[serde(default)]
    pub locale: Option<String>,
    /// Team (business accounts).
    #[serde(default)]
    pub team: Option<TeamReq>,
}

/// `/__admin/tokens` body.
#[derive(Debug, Deserialize, Default)]
pub struct TokenReq {
    /// App key.
    pub app_key: String,
    /// Account id.
    pub account_id: String,
    /// Also mint a refresh token.
    #[serde(default)]
    pub offline: bool,
    /// Lifetime override.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Space-separated scopes (default: the app's).
    #[serde(default)]
    pub scope: Option<String>,
}

/// `/__admin/files` body (content already decoded).
#[derive(Debug, Default)]
pub struct PutFile {
    /// Account id.
    pub account_id: String,
    /// Path (`/a/b.txt` in the home namespace, or `ns:<id>/a/b.txt`).
    pub path: String,
    /// Bytes.
    pub content: Vec<u8>,
    /// client_modified (unix seconds).
    pub client_modified: Option<i64>,
    /// Downloadable flag.
    pub is_downloadable: bool,
}

/// `/__admin/faults` body.
#[derive(Debug, Deserialize, Default)]
pub struct FaultReq {
    /// Route, e.g. `files/list_folder`.
    pub route: String,
    /// Status.
    pub status: u16,
    /// How many responses (default 1).
    #[serde(default)]
    pub times: Option<u32>,
    /// Retry-After seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Error tag.
    #[serde(default)]
    pub reason: Option<String>,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub body: Option<String>,
    /// Delay in milliseconds before answering; with status 200 the request is then
    /// served normally (a slow response).
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// Normalises a route name: strips a leading `/` and `2/`.
pub fn normalize_route(route: &str) -> String {
    let r = route.trim_start_matches('/');
    r.strip_prefix("2/").unwrap_or(r).to_string()
}

/// Metadata JSON for a live entry as seen through a view with `prefix`.
pub fn entry_json(prefix: &str, lower: &str, e: &Entry) -> Value {
    let (pl, pd) = relative(prefix, lower, &e.display);
    let name = Store::name(&e.display).to_string();
    match &e.file {
        Some(f) => json!({
            ".tag": "file",
            "name": name,
            "path_lower": pl,
            "path_display": pd,
            "id": e.id,
            "client_modified": format_ts(f.client_modified),
            "server_modified": format_ts(f.server_modified),
            "rev": f.rev,
            "size": f.size,
            "is_downloadable": f.is_downloadable,
            "content_hash": f.content_hash,
        }),
        None => json!({
            ".tag": "folder",
            "name": name,
            "path_lower": pl,
            "path_display": pd,
            "id": e.id,
        }),
    }
}

/// Metadata JSON for a deleted entry.
pub fn deleted_json(prefix: &str, lower: &str, display: &str) -> Value {
    let (pl, pd) = relative(prefix, lower, display);
    json!({
        ".tag": "deleted",
        "name": Store::name(display),
        "path_lower": pl,
        "path_display": pd,
    })
}

/// Strips a view prefix from a lowercased and a display path.
pub fn relative(prefix: &str, lower: &str, display: &str) -> (String, String) {
    if prefix.is_empty() {
        return (lower.to_string(), display.to_string());
    }
    let k = prefix.split('/').filter(|c| !c.is_empty()).count();
    let pl = lower.get(prefix.len()..).unwrap_or("").to_string();
    let mut pd = String::new();
    for comp in display.split('/').filter(|c| !c.is_empty()).skip(k) {
        pd.push('/');
        pd.push_str(comp);
    }
    (pl, pd)
}

/// Renders listing items; skips the view root itself.
pub fn render_items(store: &Store, prefix: &str, items: &[Item]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|it| match it {
            Item::Live(k) => {
                if k == prefix {
                    return None;
                }
                store.entries.get(k).map(|e| entry_json(prefix, k, e))
            }
            Item::Deleted(k, d) => {
                if k == prefix {
                    return None;
                }
                Some(deleted_json(prefix, k, d))
            }
        })
        .collect()
}

fn full_team_json(team: &Team) -> Value {
    json!({
        "id": team.id,
        "name": team.name,
        "sharing_policies": {
            "shared_folder_member_policy": {".tag": "team"},
            "shared_folder_join_policy": {".tag": "from_anyone"},
            "shared_link_create_policy": {".tag": "default_public"},
            "group_creation_policy": {".tag": "admins_only"},
            "shared_folder_link_restriction_policy": {".tag": "anyone"},
            "enforce_link_password_policy": {".tag": "optional"},
            "default_link_expiration_days_policy": {".tag": "none"},
            "shared_link_default_permissions_policy": {".tag": "default"},
        },
        "office_addin_policy": {".tag": "disabled"},
        "top_level_content_policy": {".tag": "admin_only"},
    })
}

/// `RootInfo` JSON of an account.
pub fn root_info_json(a: &Account) -> Value {
    match &a.home_path {
        Some(hp) if a.root_ns != a.home_ns => json!({
            ".tag": "team",
            "root_namespace_id": a.root_ns.to_string(),
            "home_namespace_id": a.home_ns.to_string(),
            "home_path": hp,
        }),
        _ => json!({
            ".tag": "user",
            "root_namespace_id": a.root_ns.to_string(),
            "home_namespace_id": a.home_ns.to_string(),
        }),
    }
}

/// `FullAccount` JSON.
pub fn full_account_json(state: &State, a: &Account) -> Value {
    let initials: String = [a.given_name.chars().next(), a.surname.chars().next()]
        .into_iter()
        .flatten()
        .collect();
    let mut v = json!({
        "account_id": a.account_id,
        "name": {
            "given_name": a.given_name,
            "surname": a.surname,
            "familiar_name": a.given_name,
            "display_name": a.display_name(),
            "abbreviated_name": initials.to_uppercase(),
        },
        "email": a.email,
        "email_verified": true,
        "disabled": false,
        "country": a.country,
        "locale": a.locale,
        "referral_link": format!("https://db.tt/{}", &a.account_id[5..15]),
        "is_paired": false,
        "account_type": {".tag": a.account_type},
        "root_info": root_info_json(a),
    });
    if let (Some(tid), Some(map)) = (&a.team_id, v.as_object_mut()) {
        if let Some(team) = state.teams.get(tid) {
            map.insert("team".into(), full_team_json(team));
            if let Some(mid) = &a.team_member_id {
                map.insert("team_member_id".into(), json!(mid));
            }
        }
    }
    v
}

impl Shared {
    /// Signals a change at `paths` (lowercased, absolute) in `store`: wakes longpolls and
    /// queues webhooks for linked accounts that can see the change.
    pub fn notify(&self, state: &State, store: u64, paths: &[&str]) {
        self.changes.send_modify(|v| *v += 1);
        let members = state.accounts_of_store(store);
        let home_of = |a: &Account| {
            state
                .namespaces
                .get(&a.home_ns)
                .map(|n| n.prefix.clone())
                .unwrap_or_default()
        };
        let homes: Vec<String> = members.iter().map(home_of).collect();
        let under = |p: &str, pre: &str| {
            pre.is_empty()
                || p == pre
                || (p.starts_with(pre) && p.as_bytes().get(pre.len()) == Some(&b'/'))
        };
        for (acct, home) in members.iter().zip(&homes) {
            let sees = paths
                .iter()
                .any(|p| under(p, home) || !homes.iter().any(|h| !h.is_empty() && under(p, h)));
            if !sees {
                continue;
            }
            if let Some(apps) = state.linked.get(&acct.account_id) {
                for app in apps {
                    if state.apps.get(app).is_some_and(|a| !a.webhooks.is_empty()) {
                        let _ = self.webhook_tx.send((app.clone(), acct.account_id.clone()));
                    }
                }
            }
        }
    }

    /// Wipes everything.
    pub fn reset(&self) {
        let mut st = self.state.lock();
        *st = State::new();
        self.changes.send_modify(|v| *v += 1);
    }

    /// Registers (or replaces) an app.
    pub fn create_app(&self, req: AppReq) -> Result<Value, AdminError> {
        if req.app_key.is_empty() || req.app_secret.is_empty() {
            return Err(AdminError::BadRequest(
                "app_key and app_secret are required".into(),
            ));
        }
        let mut st = self.state.lock();
        let webhooks = st
            .apps
            .get(&req.app_key)
            .map(|a| a.webhooks.clone())
            .unwrap_or_default();
        st.apps.insert(
            req.app_key.clone(),
            App {
                key: req.app_key.clone(),
                secret: req.app_secret,
                redirect_uris: req.redirect_uris,
                scopes: req.scopes,
                webhooks,
            },
        );
        Ok(json!({"app_key": req.app_key}))
    }

    /// Creates an account (or returns the existing one with that email).
    pub fn create_account(&self, req: AccountReq) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        let a = create_account_locked(&mut st, req)?;
        Ok(account_summary(&a))
    }

    /// Finds an account by id.
    pub fn account(&self, account_id: &str) -> Option<Account> {
        self.state.lock().accounts.get(account_id).cloned()
    }

    /// Mints a token for an account directly (links it to the app).
    pub fn issue_token(&self, req: TokenReq) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        let app = st
            .apps
            .get(&req.app_key)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("unknown app {}", req.app_key)))?;
        if !st.accounts.contains_key(&req.account_id) {
            return Err(AdminError::NotFound(format!(
                "unknown account {}",
                req.account_id
            )));
        }
        let scopes = match req.scope {
            Some(s) => s.split_whitespace().map(str::to_string).collect(),
            None => app.scopes.clone(),
        };
        let ttl = req.expires_in.unwrap_or(self.settings.token_ttl);
        Ok(mint_grant(
            &mut st,
            &app.key,
            &req.account_id,
            scopes,
            req.offline,
            false,
            ttl,
        ))
    }

    /// Forces an access token to be expired.
    pub fn expire_token(&self, token: &str) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        match st.access_tokens.get_mut(token) {
            Some(t) => {
                t.expires_at = now_secs() - 1;
                Ok(json!({}))
            }
            None => Err(AdminError::NotFound("unknown access token".into())),
        }
    }

    /// Resolves an admin path for an account: `(store, view prefix, absolute display)`.
    fn admin_target(
        st: &State,
        account_id: &str,
        path: &str,
    ) -> Result<(u64, String, String), AdminError> {
        let acct = st
            .accounts
            .get(account_id)
            .ok_or_else(|| AdminError::NotFound(format!("unknown account {account_id}")))?;
        let (ns_id, rest) = if let Some(r) = path.strip_prefix("ns:") {
            let (id, rest) = match r.find('/') {
                Some(i) => (&r[..i], &r[i..]),
                None => (r, ""),
            };
            let id: u64 = id
                .parse()
                .map_err(|_| AdminError::BadRequest(format!("bad namespace in {path}")))?;
            (id, rest)
        } else {
            (acct.home_ns, path)
        };
        let ns = st
            .namespaces
            .get(&ns_id)
            .ok_or_else(|| AdminError::NotFound(format!("unknown namespace {ns_id}")))?;
        let root_store = st.namespaces.get(&acct.root_ns).map(|n| n.store);
        if Some(ns.store) != root_store {
            return Err(AdminError::BadRequest(format!(
                "namespace {ns_id} not accessible"
            )));
        }
        let rel = util::normalize_path(rest)
            .ok_or_else(|| AdminError::BadRequest(format!("malformed path {path:?}")))?;
        let store = st
            .stores
            .get(&ns.store)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        let prefix_display = if ns.prefix.is_empty() {
            String::new()
        } else {
            store
                .entries
                .get(&ns.prefix)
                .map(|e| e.display.clone())
                .unwrap_or_default()
        };
        Ok((
            ns.store,
            ns.prefix.clone(),
            format!("{prefix_display}{rel}"),
        ))
    }

    /// Adds or replaces a file.
    pub fn put_file(&self, req: PutFile) -> Result<Value, AdminError> {
        let (hash, size) = self.blobs.put(&req.content)?;
        self.put_blob(
            &req.account_id,
            &req.path,
            hash,
            size,
            req.client_modified,
            req.is_downloadable,
        )
    }

    /// Adds or replaces a file whose body is already in the blob store.
    pub fn put_blob(
        &self,
        account_id: &str,
        path: &str,
        hash: String,
        size: u64,
        client_modified: Option<i64>,
        is_downloadable: bool,
    ) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        let (store_id, prefix, display) = Self::admin_target(&st, account_id, path)?;
        if display == prefix_display_of(&st, store_id, &prefix) {
            return Err(AdminError::BadRequest("cannot write to the root".into()));
        }
        let salt = st.salt;
        let mut counter = st.counter;
        let mut new_id = || {
            counter += 1;
            crate::state::id_from(salt, counter)
        };
        let store = st
            .stores
            .get_mut(&store_id)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        let display = store.ensure_parents(&display, &mut new_id)?;
        let lower = display.to_lowercase();
        let existing = store.entries.get(&lower).cloned();
        st.counter = counter;
        let now = now_secs();
        let (id, changed) = match &existing {
            Some(e) => match &e.file {
                None => {
                    return Err(AdminError::Conflict(format!(
                        "a folder exists at {display}"
                    )));
                }
                Some(f) => {
                    let same = f.content_hash == hash
                        && f.is_downloadable == is_downloadable
                        && client_modified.is_none_or(|c| c == f.client_modified);
                    (e.id.clone(), !same)
                }
            },
            None => (st.new_file_id(), true),
        };
        if !changed {
            let store = st
                .stores
                .get(&store_id)
                .ok_or_else(|| AdminError::Internal("store missing".into()))?;
            let e = store
                .entries
                .get(&lower)
                .ok_or_else(|| AdminError::Internal("entry vanished".into()))?;
            return Ok(entry_json(&prefix, &lower, e));
        }
        let rev = st.new_rev(store_id);
        let entry = Entry {
            display: existing.map(|e| e.display).unwrap_or(display),
            id: id.clone(),
            file: Some(FileInfo {
                rev: rev.clone(),
                size,
                content_hash: hash,
                client_modified: client_modified.unwrap_or(now),
                server_modified: now,
                is_downloadable,
            }),
        };
        st.revs.insert(rev, (store_id, id.clone(), entry.clone()));
        st.ids.insert(id, (store_id, lower.clone()));
        self.register_new_ids(&mut st, store_id);
        let store = st
            .stores
            .get_mut(&store_id)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        store.insert_entry(lower.clone(), entry.clone());
        let out = entry_json(&prefix, &lower, &entry);
        self.notify(&st, store_id, &[&lower]);
        Ok(out)
    }

    /// Indexes ids of folders created implicitly (parents).
    fn register_new_ids(&self, st: &mut State, store_id: u64) {
        let Some(store) = st.stores.get_mut(&store_id) else {
            return;
        };
        let created = std::mem::take(&mut store.created_ids);
        for (id, lower) in created {
            st.ids.insert(id, (store_id, lower));
        }
    }

    /// Creates a folder (and parents).
    pub fn create_folder(&self, account_id: &str, path: &str) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        let (store_id, prefix, display) = Self::admin_target(&st, account_id, path)?;
        if display == prefix_display_of(&st, store_id, &prefix) {
            return Err(AdminError::BadRequest("cannot create the root".into()));
        }
        let salt = st.salt;
        let mut counter = st.counter;
        let mut new_id = || {
            counter += 1;
            crate::state::id_from(salt, counter)
        };
        let store = st
            .stores
            .get_mut(&store_id)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        let display = store.ensure_parents(&display, &mut new_id)?;
        let lower = display.to_lowercase();
        if let Some(e) = store.entries.get(&lower) {
            if e.file.is_some() {
                return Err(AdminError::Conflict(format!("a file exists at {display}")));
            }
            let out = entry_json(&prefix, &lower, e);
            st.counter = counter;
            self.register_new_ids(&mut st, store_id);
            return Ok(out);
        }
        let id = new_id();
        st.counter = counter;
        let entry = Entry {
            display,
            id: id.clone(),
            file: None,
        };
        let store = st
            .stores
            .get_mut(&store_id)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        store.insert_entry(lower.clone(), entry.clone());
        self.register_new_ids(&mut st, store_id);
        st.ids.insert(id, (store_id, lower.clone()));
        self.notify(&st, store_id, &[&lower]);
        Ok(entry_json(&prefix, &lower, &entry))
    }

    /// Deletes a file or folder (recursively).
    pub fn delete(&self, account_id: &str, path: &str) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        let (store_id, prefix, display) = Self::admin_target(&st, account_id, path)?;
        let lower = display.to_lowercase();
        if lower == prefix {
            return Err(AdminError::BadRequest("cannot delete the root".into()));
        }
        let store = st
            .stores
            .get_mut(&store_id)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        let keys = store.subtree_keys(&lower);
        let removed_ids: Vec<String> = keys
            .iter()
            .filter_map(|k| store.entries.get(k).map(|e| e.id.clone()))
            .collect();
        let root = store.remove_tree(&lower)?;
        let out = entry_json(&prefix, &lower, &root);
        for id in removed_ids {
            st.ids.remove(&id);
        }
        self.notify(&st, store_id, &[&lower]);
        Ok(json!({"metadata": out}))
    }

    /// Moves/renames a file or folder (ids kept).
    pub fn move_entry(&self, account_id: &str, from: &str, to: &str) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        let (store_id, prefix, from_display) = Self::admin_target(&st, account_id, from)?;
        let (to_store, _, to_display) = Self::admin_target(&st, account_id, to)?;
        if store_id != to_store {
            return Err(AdminError::BadRequest(
                "cannot move across namespaces".into(),
            ));
        }
        let from_lower = from_display.to_lowercase();
        if from_lower == prefix || to_display.to_lowercase() == prefix {
            return Err(AdminError::BadRequest("cannot move the root".into()));
        }
        let salt = st.salt;
        let mut counter = st.counter;
        let mut new_id = || {
            counter += 1;
            crate::state::id_from(salt, counter)
        };
        let store = st
            .stores
            .get_mut(&store_id)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        let new_display = store.move_tree(&from_lower, &to_display, &mut new_id)?;
        let new_lower = new_display.to_lowercase();
        let moved: Vec<(String, String)> = store
            .subtree_keys(&new_lower)
            .into_iter()
            .filter_map(|k| store.entries.get(&k).map(|e| (e.id.clone(), k)))
            .collect();
        st.counter = counter;
        for (id, k) in moved {
            st.ids.insert(id, (store_id, k));
        }
        self.register_new_ids(&mut st, store_id);
        let store = st
            .stores
            .get(&store_id)
            .ok_or_else(|| AdminError::Internal("store missing".into()))?;
        let e = store
            .entries
            .get(&new_lower)
            .ok_or_else(|| AdminError::Internal("moved entry missing".into()))?;
        let out = entry_json(&prefix, &new_lower, e);
        self.notify(&st, store_id, &[&from_lower, &new_lower]);
        Ok(json!({"metadata": out}))
    }

    /// Invalidates every outstanding cursor of an account's stores.
    pub fn reset_cursors(&self, account_id: &str) -> Result<Value, AdminError> {
        let mut st = self.state.lock();
        let acct = st
            .accounts
            .get(account_id)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("unknown account {account_id}")))?;
        let store_id = st
            .namespaces
            .get(&acct.root_ns)
            .map(|n| n.store)
            .unwrap_or_default();
        if let Some(store) = st.stores.get_mut(&store_id) {
            store.epoch += 1;
        }
        self.changes.send_modify(|v| *v += 1);
        Ok(json!({}))
    }

    /// Adds a fault.
    pub fn add_fault(&self, req: FaultReq) -> Result<Value, AdminError> {
        if !(100..=599).contains(&req.status) {
            return Err(AdminError::BadRequest("status must be 100..599".into()));
        }
        let json_body = match req.body.as_deref() {
            None | Some("json") => true,
            Some("text") => false,
            Some(other) => {
                return Err(AdminError::BadRequest(format!(
                    "body must be json or text, not {other}"
                )));
            }
        };
        let id = format!("fault-{}", random_alnum(10));
        self.state.lock().faults.push(Fault {
            id: id.clone(),
            route: normalize_route(&req.route),
            status: req.status,
            remaining: req.times.unwrap_or(1),
            retry_after: req.retry_after,
            reason: req.reason,
            json: json_body,
            delay_ms: req.delay_ms.unwrap_or(0),
        });
        Ok(json!({"fault_id": id}))
    }

    /// Clears faults.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Takes one matching fault, if any.
    pub fn take_fault(&self, route: &str) -> Option<Fault> {
        let mut st = self.state.lock();
        let idx = st
            .faults
            .iter()
            .position(|f| f.route == route && f.remaining > 0)?;
        let f = &mut st.faults[idx];
        f.remaining -= 1;
        let out = f.clone();
        if f.remaining == 0 {
            st.faults.remove(idx);
        }
        Some(out)
    }

    /// Verifies a webhook URI with a challenge and registers it.
    pub async fn register_webhook(&self, app_key: &str, url: &str) -> Result<Value, AdminError> {
        if !self.state.lock().apps.contains_key(app_key) {
            return Err(AdminError::NotFound(format!("unknown app {app_key}")));
        }
        let challenge = random_token(24);
        let mut target =
            url::Url::parse(url).map_err(|e| AdminError::BadRequest(format!("bad url: {e}")))?;
        target
            .query_pairs_mut()
            .append_pair("challenge", &challenge);
        let verified = match self
            .http
            .get(target)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => {
                resp.text().await.map(|b| b == challenge).unwrap_or(false)
            }
            _ => false,
        };
        if verified {
            let mut st = self.state.lock();
            if let Some(app) = st.apps.get_mut(app_key) {
                if !app.webhooks.iter().any(|u| u == url) {
                    app.webhooks.push(url.to_string());
                }
            }
        }
        Ok(json!({"verified": verified}))
    }
}

fn prefix_display_of(st: &State, store_id: u64, prefix: &str) -> String {
    if prefix.is_empty() {
        return String::new();
    }
    st.stores
        .get(&store_id)
        .and_then(|s| s.entries.get(prefix))
        .map(|e| e.display.clone())
        .unwrap_or_default()
}

/// Summary JSON returned by `/__admin/accounts`.
pub fn account_summary(a: &Account) -> Value {
    json!({
        "account_id": a.account_id,
        "uid": a.uid.to_string(),
        "email": a.email,
        "root_namespace_id": a.root_ns.to_string(),
        "home_namespace_id": a.home_ns.to_string(),
        "home_path": a.home_path,
        "team_member_id": a.team_member_id,
    })
}

/// Creates an account under the lock (or returns the one with that email).
pub fn create_account_locked(st: &mut State, req: AccountReq) -> Result<Account, AdminError> {
    let email = req.email.trim().to_string();
    if email.is_empty() || !email.contains('@') {
        return Err(AdminError::BadRequest("a valid email is required".into()));
    }
    if let Some(a) = st
        .accounts
        .values()
        .find(|a| a.email.eq_ignore_ascii_case(&email))
    {
        return Ok(a.clone());
    }
    let local = email.split('@').next().unwrap_or("user");
    let given = req.given_name.unwrap_or_else(|| {
        let mut c = local.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    });
    let surname = req.surname.unwrap_or_default();
    let account_type = match (&req.team, req.account_type.as_deref()) {
        (Some(_), _) => "business".to_string(),
        (None, Some(t @ ("basic" | "pro" | "business"))) => t.to_string(),
        (None, None) => "basic".to_string(),
        (None, Some(other)) => {
            return Err(AdminError::BadRequest(format!(
                "unknown account_type {other}"
            )));
        }
    };
    let account_id = format!("dbid:{}", random_token(35));
    let uid = st.next_id();
    let mut acct = Account {
        account_id: account_id.clone(),
        uid,
        email,
        given_name: given,
        surname,
        account_type,
        country: req.country.unwrap_or_else(|| "US".into()),
        locale: req.locale.unwrap_or_else(|| "en".into()),
        team_id: None,
        team_member_id: None,
        root_ns: 0,
        home_ns: 0,
        home_path: None,
    };
    match req.team {
        None => {
            let ns = st.next_id();
            st.stores.insert(ns, Store::default());
            st.namespaces.insert(
                ns,
                Namespace {
                    store: ns,
                    prefix: String::new(),
                },
            );
            acct.root_ns = ns;
            acct.home_ns = ns;
        }
        Some(t) => {
            let team = match st.teams.values().find(|x| x.name == t.name).cloned() {
                Some(team) => team,
                None => {
                    let root = st.next_id();
                    st.stores.insert(root, Store::default());
                    st.namespaces.insert(
                        root,
                        Namespace {
                            store: root,
                            prefix: String::new(),
                        },
                    );
                    let team = Team {
                        id: format!("dbtid:{}", random_token(35)),
                        name: t.name,
                        root_ns: root,
                    };
                    st.teams.insert(team.id.clone(), team.clone());
                    team
                }
            };
            let home_display = format!("/{}", acct.display_name());
            let home_lower = home_display.to_lowercase();
            let home_ns = st.next_id();
            let folder_id = st.new_file_id();
            let store = st
                .stores
                .get_mut(&team.root_ns)
                .ok_or_else(|| AdminError::Internal("team store missing".into()))?;
            if store.entries.contains_key(&home_lower) {
                return Err(AdminError::Conflict(format!(
                    "home folder {home_display} already exists"
                )));
            }
            store.insert_entry(
                home_lower.clone(),
                Entry {
                    display: home_display.clone(),
                    id: folder_id.clone(),
                    file: None,
                },
            );
            st.ids.insert(folder_id, (team.root_ns, home_lower.clone()));
            st.namespaces.insert(
                home_ns,
                Namespace {
                    store: team.root_ns,
                    prefix: home_lower,
                },
            );
            acct.root_ns = team.root_ns;
            acct.home_ns = home_ns;
            acct.home_path = Some(home_display);
            acct.team_id = Some(team.id.clone());
            acct.team_member_id = Some(format!("dbmid:{}", random_token(35)));
        }
    }
    st.accounts.insert(account_id.clone(), acct.clone());
    st.account_order.push(account_id);
    Ok(acct)
}

/// Creates a grant with an access token (and a refresh token when `offline`); returns the
/// token-endpoint JSON.
pub fn mint_grant(
    st: &mut State,
    app_key: &str,
    account_id: &str,
    scopes: Vec<String>,
    offline: bool,
    pkce: bool,
    ttl: i64,
) -> Value {
    let gid = st.next_id();
    let refresh = offline.then(|| State::new_token("", 64));
    st.grants.insert(
        gid,
        Grant {
            app_key: app_key.to_string(),
            account_id: account_id.to_string(),
            scopes: scopes.clone(),
            refresh_token: refresh.clone(),
            pkce,
            revoked: false,
        },
    );
    if let Some(r) = &refresh {
        st.refresh_tokens.insert(r.clone(), gid);
    }
    st.linked
        .entry(account_id.to_string())
        .or_default()
        .insert(app_key.to_string());
    let access = mint_access(st, gid, ttl, None);
    let uid = st
        .accounts
        .get(account_id)
        .map(|a| a.uid)
        .unwrap_or_default();
    let mut v = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ttl,
        "scope": scopes.join(" "),
        "account_id": account_id,
        "uid": uid.to_string(),
    });
    if let (Some(r), Some(m)) = (refresh, v.as_object_mut()) {
        m.insert("refresh_token".into(), json!(r));
    }
    v
}

/// Mints an access token for a grant (optionally with narrowed scopes).
pub fn mint_access(st: &mut State, grant: u64, ttl: i64, scopes: Option<Vec<String>>) -> String {
    let token = State::new_token("sl.u.", 120);
    st.access_tokens.insert(
        token.clone(),
        crate::state::AccessToken {
            grant,
            expires_at: now_secs() + ttl,
            scopes,
        },
    );
    token
}

/// Shared handle type.
pub type SharedRef = Arc<Shared>;
