//! The Dropbox connector: which Dropbox app an organization uses, the OAuth connect flow
//! ([`connect`]), the token lifecycle of a connected data source ([`connection`]) and the
//! enumeration of its remote tree into `source_items` ([`items`]).
//!
//! [`Dropbox`] is one cheap-to-clone handle per process, shared by the API handlers and
//! background tasks.

pub mod connect;
pub mod connection;
pub mod items;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use carbide_dropbox::{Auth, Endpoints};
use carbide_dropbox::{Client, ClientOptions};
use carbide_store::{Store, StoreError};

pub use connect::{CallbackOutcome, ConnectRequest, DEFAULT_SCOPES, STATE_TTL_SECS};
pub use connection::REFRESH_MARGIN_SECS;
pub use items::{MAX_FILE_BYTES, file_format_for};

/// Server-wide Dropbox settings (from `CARBIDE_DROPBOX_*`).
#[derive(Clone, Default)]
pub struct DropboxSettings {
    /// Base URLs of the four Dropbox hosts (real Dropbox, or the emulator).
    pub endpoints: Option<Endpoints>,
    /// Extra CA certificates to trust (PEM), e.g. the emulator's.
    pub ca_certs_pem: Vec<Vec<u8>>,
    /// The server-wide app, used when an organization has no DROPBOX white label.
    pub app_key: Option<String>,
    /// Its secret (optional: PKCE alone works for public clients).
    pub app_secret: Option<String>,
    /// carbide's externally visible base URL (redirect URI = `{public_url}/integrations/dropbox`).
    pub public_url: String,
}

impl std::fmt::Debug for DropboxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxSettings")
            .field("endpoints", &self.endpoints)
            .field("app_key", &self.app_key)
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The Dropbox app (OAuth client) a flow or refresh uses.
#[derive(Clone)]
pub struct DropboxApp {
    pub key: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
    /// True when it is the organization's white-label app.
    pub white_label: bool,
}

impl std::fmt::Debug for DropboxApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxApp")
            .field("key", &self.key)
            .field("redirect_uri", &self.redirect_uri)
            .field("white_label", &self.white_label)
            .finish_non_exhaustive()
    }
}

/// Why a Dropbox operation failed, classified for the API's answer.
#[derive(Debug, thiserror::Error)]
pub enum DropboxError {
    /// No Dropbox app is configured for the organization (or the one that issued a
    /// connection is gone).
    #[error("{0}")]
    NotConfigured(String),
    /// The OAuth state is unknown, used or expired; the message is user-facing.
    #[error("{0}")]
    InvalidState(String),
    /// Dropbox refused the authorization (bad or expired code); user-facing.
    #[error("{0}")]
    AuthorizationFailed(String),
    /// The data source lost access; the user must reconnect.
    #[error(
        "access to this Dropbox account was revoked; reconnect it through /integrations/oauth_url"
    )]
    Revoked,
    /// The data source has no stored tokens.
    #[error("this data source has no Dropbox credentials")]
    NoCredentials,
    /// Another process is refreshing the token and did not finish in time.
    #[error("the Dropbox token is being refreshed by another process; try again")]
    RefreshContention,
    /// A Dropbox call failed (network, rate limit, server error, unexpected answer).
    #[error("Dropbox request failed: {0}")]
    Api(#[from] carbide_dropbox::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A background task died.
    #[error("internal error: {0}")]
    Internal(String),
}

struct Listing {
    run: u64,
    cancel: tokio::sync::watch::Sender<bool>,
}

struct Inner {
    store: Store,
    client: Client,
    settings: DropboxSettings,
    /// Per-data-source refresh locks (single flight inside the process).
    refresh_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Item listings running in this process.
    listings: Mutex<HashMap<i64, Listing>>,
    next_run: std::sync::atomic::AtomicU64,
    /// Lease owner id of this process for token refreshes.
    owner: String,
}

/// The process-wide Dropbox connector. Cheap to clone.
#[derive(Clone)]
pub struct Dropbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dropbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dropbox")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Dropbox {
    /// Builds the connector (HTTP client with the extra CA certificates).
    pub fn new(store: Store, settings: DropboxSettings) -> Result<Dropbox, DropboxError> {
        let endpoints = settings
            .endpoints
            .clone()
            .unwrap_or_else(Endpoints::dropbox);
        let client = Client::new(
            endpoints,
            ClientOptions {
                extra_root_certs_pem: settings.ca_certs_pem.clone(),
                ..ClientOptions::default()
            },
        )?;
        let owner = format!(
            "{}-{}",
            std::process::id(),
            hex::encode(rand::random::<[u8; 8]>())
        );
        Ok(Dropbox {
            inner: Arc::new(Inner {
                store,
                client,
                settings,
                refresh_locks: Mutex::new(HashMap::new()),
                listings: Mutex::new(HashMap::new()),
                next_run: std::sync::atomic::AtomicU64::new(1),
                owner,
            }),
        })
    }

    /// The Dropbox API client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings.
    pub fn settings(&self) -> &DropboxSettings {
        &self.inner.settings
    }

    fn default_redirect_uri(&self) -> String {
        format!(
            "{}/integrations/dropbox",
            self.inner.settings.public_url.trim_end_matches('/')
        )
    }

    /// Runs a blocking store call on the blocking pool.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, DropboxError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => r.map_err(DropboxError::from),
            Err(e) => Err(DropboxError::Internal(format!("blocking task failed: {e}"))),
        }
    }

    /// The app new connections of `org_id` use: its DROPBOX white label, else the server-wide
    /// app.
    pub async fn app_for_org(&self, org_id: i64) -> Result<DropboxApp, DropboxError> {
        let wl = self.db(move |s| s.dropbox_app_credentials(org_id)).await?;
        if let Some((key, secret, redirect_uri)) = wl {
            return Ok(DropboxApp {
                key,
                secret,
                redirect_uri,
                white_label: true,
            });
        }
        match &self.inner.settings.app_key {
            Some(key) => Ok(DropboxApp {
                key: key.clone(),
                secret: self.inner.settings.app_secret.clone(),
                redirect_uri: self.default_redirect_uri(),
                white_label: false,
            }),
            None => Err(DropboxError::NotConfigured(
                "Dropbox is not configured: create a DROPBOX white label (/white_label/create) or \
                 set CARBIDE_DROPBOX_APP_KEY on the server"
                    .into(),
            )),
        }
    }

    /// The app with client id `key` as seen by `org_id` (the one that issued a state or tokens).
    pub async fn app_by_key(&self, org_id: i64, key: &str) -> Result<DropboxApp, DropboxError> {
        let wl = self.db(move |s| s.dropbox_app_credentials(org_id)).await?;
        if let Some((k, secret, redirect_uri)) = wl
            && k == key
        {
            return Ok(DropboxApp {
                key: k,
                secret,
                redirect_uri,
                white_label: true,
            });
        }
        if self.inner.settings.app_key.as_deref() == Some(key) {
            return Ok(DropboxApp {
                key: key.to_string(),
                secret: self.inner.settings.app_secret.clone(),
                redirect_uri: self.default_redirect_uri(),
                white_label: false,
            });
        }
        Err(DropboxError::NotConfigured(format!(
            "the Dropbox app {key} that issued this connection is no longer configured; reconnect"
        )))
    }
}
