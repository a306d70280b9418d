//! A faithful Dropbox API v2 emulator: OAuth 2.0 (consent page, code + PKCE, refresh,
//! revoke), files/users RPC and download routes, longpoll, business accounts with path
//! roots, signed webhooks, fault injection and a test-only admin API — all hosts on one
//! origin over HTTP or HTTPS (self-signed, written as PEM for SDKs to trust).
//!
//! Start it in-process with [`serve`]; the `dropbox-emulator` binary wraps the same call.

pub mod admin;
pub mod emulator;
pub mod error;
pub mod files;
pub mod http;
pub mod oauth;
pub mod seed;
pub mod state;
pub mod store;
pub mod tls;
pub mod util;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use emulator::{
    AccountReq, AdminError, AppReq, FaultReq, PutFile, Settings, Shared, TeamReq, TokenReq,
};
pub use error::EmulatorError;

/// Seed an account's Dropbox from a local folder.
#[derive(Clone, Debug)]
pub struct SeedConfig {
    /// Local folder.
    pub dir: PathBuf,
    /// Account email (created if missing).
    pub email: String,
    /// Keep polling the folder (~1 s) and reflect changes.
    pub watch: bool,
}

/// Emulator configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Serve HTTPS with a generated self-signed certificate.
    pub tls: bool,
    /// Where to write the certificate (PEM) clients should trust.
    pub tls_cert_out: Option<PathBuf>,
    /// Access-token lifetime in seconds.
    pub token_ttl: i64,
    /// Default list_folder page size.
    pub default_page_size: usize,
    /// Authorization-code lifetime in seconds.
    pub code_ttl: i64,
    /// Require this value in `X-Emulator-Admin-Key` on admin routes.
    pub admin_key: Option<String>,
    /// Where file bodies live (default: a fresh temp dir, removed on drop).
    pub blob_dir: Option<PathBuf>,
    /// Apps to register at start.
    pub apps: Vec<AppConfig>,
    /// Optional seed folder.
    pub seed: Option<SeedConfig>,
}

/// An app registered at start.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// App key.
    pub key: String,
    /// App secret.
    pub secret: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Scopes (empty = all).
    pub scopes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            tls_cert_out: None,
            token_ttl: 14_400,
            default_page_size: 500,
            code_ttl: 600,
            admin_key: None,
            blob_dir: None,
            apps: Vec::new(),
            seed: None,
        }
    }
}

/// A running emulator.
pub struct RunningEmulator {
    addr: SocketAddr,
    tls: bool,
    cert_pem: Option<String>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RunningEmulator {
    /// `http(s)://ADDR:PORT` — the one origin serving every Dropbox host.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the certificate to trust (TLS mode).
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// The core, for arranging scenarios in-process (same operations as the admin API).
    pub fn core(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, closes connections and background tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn fallback(uri: Uri) -> Response {
    let path = uri.path();
    if let Some(route) = path.strip_prefix("/2/") {
        (
            StatusCode::BAD_REQUEST,
            format!("Unknown API function: \"{route}\""),
        )
            .into_response()
    } else {
        (StatusCode::NOT_FOUND, "Not Found").into_response()
    }
}

/// Builds the router over a shared core.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/oauth2/authorize",
            get(oauth::authorize_get).post(oauth::authorize_post),
        )
        .route("/oauth2/token", post(oauth::token))
        .route("/2/auth/token/revoke", post(files::token_revoke))
        .route(
            "/2/users/get_current_account",
            post(files::get_current_account),
        )
        .route("/2/files/list_folder", post(files::list_folder))
        .route(
            "/2/files/list_folder/continue",
            post(files::list_folder_continue),
        )
        .route(
            "/2/files/list_folder/get_latest_cursor",
            post(files::get_latest_cursor),
        )
        .route("/2/files/list_folder/longpoll", post(files::longpoll))
        .route("/2/files/get_metadata", post(files::get_metadata))
        .route(
            "/2/files/download",
            get(files::download).post(files::download),
        )
        .nest("/__admin", admin::router())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            http::request_layer,
        ))
        .layer(DefaultBodyLimit::max(1 << 30))
        .with_state(shared)
}

/// Starts the emulator.
pub async fn serve(config: Config) -> Result<RunningEmulator, EmulatorError> {
    let blobs = emulator::Blobs::open(config.blob_dir.clone())?;
    let (webhook_tx, webhook_rx) = mpsc::unbounded_channel();
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| EmulatorError::Config(format!("http client: {e}")))?;
    let shared = Arc::new(Shared {
        state: Mutex::new(state::State::new()),
        blobs,
        settings: Settings {
            token_ttl: config.token_ttl,
            default_page_size: config.default_page_size.clamp(1, 2000),
            admin_key: config.admin_key.clone(),
            code_ttl: config.code_ttl,
        },
        changes: watch::channel(0).0,
        webhook_tx,
        http,
    });
    for app in &config.apps {
        shared
            .create_app(AppReq {
                app_key: app.key.clone(),
                app_secret: app.secret.clone(),
                redirect_uris: app.redirect_uris.clone(),
                scopes: app.scopes.clone(),
            })
            .map_err(|e| EmulatorError::Config(e.to_string()))?;
    }
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (acceptor, cert_pem) = if config.tls {
        let (acc, pem) = tls::acceptor(addr.ip())?;
        if let Some(path) = &config.tls_cert_out {
            std::fs::write(path, &pem)?;
        }
        (Some(acc), Some(pem))
    } else {
        (None, None)
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(webhooks::run(
        Arc::downgrade(&shared),
        webhook_rx,
    )));
    if let Some(seed) = &config.seed {
        let (account_id, snapshot) = seed::load(&shared, seed)?;
        if seed.watch {
            tasks.push(tokio::spawn(seed::watch(
                Arc::downgrade(&shared),
                account_id,
                seed.dir.clone(),
                snapshot,
            )));
        }
    }
    let app = router(shared.clone());
    tasks.push(tokio::spawn(tls::accept_loop(
        listener,
        acceptor,
        app,
        shutdown_rx,
    )));
    Ok(RunningEmulator {
        addr,
        tls: config.tls,
        cert_pem,
        shared,
        shutdown: shutdown_tx,
        tasks: Mutex::new(tasks),
    })
}
