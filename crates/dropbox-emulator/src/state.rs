//! The emulator's in-memory model: apps, accounts, teams, namespaces (views onto
//! stores), OAuth grants/tokens/codes, injected faults and webhook registrations.

use std::collections::{HashMap, HashSet};

use crate::store::Store;
use crate::util::random_token;

/// A registered Dropbox app.
#[derive(Clone, Debug)]
pub struct App {
    /// App key (client_id).
    pub key: String,
    /// App secret.
    pub secret: String,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// Scopes the app has; empty = every scope.
    pub scopes: Vec<String>,
    /// Verified webhook URIs.
    pub webhooks: Vec<String>,
}

/// A team (business accounts).
#[derive(Clone, Debug)]
pub struct Team {
    /// `dbtid:…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Team root namespace id.
    pub root_ns: u64,
}

/// A Dropbox user.
#[derive(Clone, Debug)]
pub struct Account {
    /// `dbid:` + 35 chars.
    pub account_id: String,
    /// Legacy numeric uid.
    pub uid: u64,
    /// Email address.
    pub email: String,
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// `basic`, `pro` or `business`.
    pub account_type: String,
    /// Two-letter country code.
    pub country: String,
    /// Locale.
    pub locale: String,
    /// Team id for business accounts.
    pub team_id: Option<String>,
    /// `dbmid:…` for team members.
    pub team_member_id: Option<String>,
    /// Root namespace.
    pub root_ns: u64,
    /// Home namespace.
    pub home_ns: u64,
    /// Home folder display path inside the root (team accounts).
    pub home_path: Option<String>,
}

impl Account {
    /// Display name.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.surname)
            .trim()
            .to_string()
    }
}

/// A namespace: a view onto a store below a path prefix.
#[derive(Clone, Debug)]
pub struct Namespace {
    /// Store holding the tree.
    pub store: u64,
    /// Lowercased absolute prefix inside the store (`""` for a root).
    pub prefix: String,
}

/// An OAuth grant: one approval of an app by an account (one refresh token at most).
#[derive(Clone, Debug)]
pub struct Grant {
    /// App key.
    pub app_key: String,
    /// Account id.
    pub account_id: String,
    /// Granted scopes (space separated in responses).
    pub scopes: Vec<String>,
    /// Refresh token (offline access).
    pub refresh_token: Option<String>,
    /// Whether the grant came from a PKCE flow (refresh without secret allowed).
    pub pkce: bool,
    /// Revoked grants invalidate every token minted from them.
    pub revoked: bool,
}

/// A minted access token.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// Grant it belongs to.
    pub grant: u64,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// Narrowed scopes (refresh with `scope`); `None` = the grant's scopes.
    pub scopes: Option<Vec<String>>,
}

/// An authorization code.
#[derive(Clone, Debug)]
pub struct AuthCode {
    /// App key.
    pub app_key: String,
    /// Account that approved.
    pub account_id: String,
    /// Redirect URI used at authorize time (must be repeated at /oauth2/token).
    pub redirect_uri: Option<String>,
    /// PKCE challenge and method.
    pub challenge: Option<(String, String)>,
    /// Offline access requested.
    pub offline: bool,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

/// A validated `/oauth2/authorize` request awaiting the user's decision.
#[derive(Clone, Debug)]
pub struct PendingAuth {
    /// App key.
    pub app_key: String,
    /// Redirect URI (None = show the code on a page).
    pub redirect_uri: Option<String>,
    /// Echoed state.
    pub state: Option<String>,
    /// PKCE challenge and method.
    pub challenge: Option<(String, String)>,
    /// Offline access requested.
    pub offline: bool,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Always show the consent page.
    pub force_reapprove: bool,
    /// Refuse to create accounts from the sign-in form.
    pub disable_signup: bool,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

/// An injected fault.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Id returned to the caller.
    pub id: String,
    /// Route (`files/list_folder`, `oauth2/token`, …).
    pub route: String,
    /// HTTP status.
    pub status: u16,
    /// Remaining responses.
    pub remaining: u32,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
    /// Error tag (`too_many_requests`, `path/not_found`, `reset`, …).
    pub reason: Option<String>,
    /// JSON (true) or text (false) body.
    pub json: bool,
    /// Delay before answering (status 200 = delay, then serve normally).
    pub delay_ms: u64,
}

/// Everything the emulator knows.
#[derive(Default)]
pub struct State {
    /// Apps by key.
    pub apps: HashMap<String, App>,
    /// Accounts by account id.
    pub accounts: HashMap<String, Account>,
    /// Account ids in creation order.
    pub account_order: Vec<String>,
    /// Teams by id.
    pub teams: HashMap<String, Team>,
    /// Namespaces by id.
    pub namespaces: HashMap<u64, Namespace>,
    /// Stores by id.
    pub stores: HashMap<u64, Store>,
    /// File/folder id → (store, lowercased path).
    pub ids: HashMap<String, (u64, String)>,
    /// Revision → (store, file id, snapshot).
    pub revs: HashMap<String, (u64, String, crate::store::Entry)>,
    /// Grants by id.
    pub grants: HashMap<u64, Grant>,
    /// Refresh token → grant id.
    pub refresh_tokens: HashMap<String, u64>,
    /// Access token → token.
    pub access_tokens: HashMap<String, AccessToken>,
    /// Authorization codes.
    pub codes: HashMap<String, AuthCode>,
    /// Pending authorize requests.
    pub pending: HashMap<String, PendingAuth>,
    /// Approvals already given: (account id, app key).
    pub approvals: HashSet<(String, String)>,
    /// Apps an account is (or was) linked to: account id → app keys.
    pub linked: HashMap<String, HashSet<String>>,
    /// Injected faults.
    pub faults: Vec<Fault>,
    /// Counter for ids, namespaces, revisions.
    pub counter: u64,
    /// Per-process salt mixed into ids.
    pub salt: u64,
}

impl State {
    /// A fresh, empty state.
    pub fn new() -> Self {
        Self {
            counter: 1000,
            salt: rand::random(),
            ..Default::default()
        }
    }

    /// Next counter value.
    pub fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A new `id:…` (22 url-safe chars, stable and unique).
    pub fn new_file_id(&mut self) -> String {
        let n = self.next_id();
        id_from(self.salt, n)
    }

    /// A new revision id (≥ 9 lowercase hex).
    pub fn new_rev(&mut self, store: u64) -> String {
        let n = self.next_id();
        format!("{:08x}{:09x}", store as u32 ^ 0x015f_0000, n)
    }

    /// New opaque token.
    pub fn new_token(prefix: &str, len: usize) -> String {
        format!("{prefix}{}", random_token(len))
    }

    /// Accounts whose root store is `store`.
    pub fn accounts_of_store(&self, store: u64) -> Vec<Account> {
        self.accounts
            .values()
            .filter(|a| self.namespaces.get(&a.root_ns).map(|n| n.store) == Some(store))
            .cloned()
            .collect()
    }
}

/// Encodes a 22-char url-safe id from salt and counter.
pub fn id_from(salt: u64, n: u64) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&salt.to_be_bytes());
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    format!(
        "id:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}
