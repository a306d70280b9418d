//! The `carbide` binary: parses the command line, loads configuration and wires the library
//! crates together (`serve`, organization admin commands). No domain logic lives here.

mod config;
mod keyfile;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use carbide_api::{ApiConfig, AppState};
use carbide_store::Store;
use clap::{Parser, Subcommand};
use config::{Config, LogFormat};
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "carbide",
    version,
    about = "Self-hosted, Carbon-compatible Dropbox-to-LLM engine"
)]
struct Cli {
    /// TOML configuration file (environment variables override it). Also `CARBIDE_CONFIG`.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API server and its background workers.
    Serve,
    /// Run only the background workers (file processing, webhook delivery); several worker
    /// processes may share one data directory.
    Worker,
    /// Manage organizations (the developers holding API keys).
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and print its API key (shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List organizations.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Replace an organization's API key; the old key stops working at once.
    RotateKey {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

const SIGNING_NOTE: &str = "each webhook URL registered with POST /add_webhook gets its own \
hex signing key, returned once; deliveries carry Carbon-Signature (t=..,v1=HMAC-SHA256 over \
\"<t>.<body>\") and Carbon-Signature-Compact (t=..,v2=HMAC-SHA256 over the compact body), keyed \
with the hex-decoded signing key";

/// Caps glibc's malloc arenas at two (unless `MALLOC_ARENA_MAX` is set). With one arena per
/// thread (tokio's blocking pool, the embedding pool), memory freed after a large document stays
/// in the arena of whichever thread used it: a 10,000-file sync measured 461 MB peak RSS with
/// the default and 292 MB with two arenas, and ran faster (39.6 vs 48.4 files/s,
/// `scripts/bench/dropbox-initial-sync --files 10000 --skip-embeddings`).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; called first thing in main,
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("carbide: configuration error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(cfg.log_format);
    let result = match cli.command {
        Command::Serve => run_serve(cfg, true),
        Command::Worker => run_serve(cfg, false),
        Command::Org { command } => run_org(cfg, command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carbide: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARBIDE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Creates the data directory if needed and opens (or creates) the key and the database.
fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let key = keyfile::load_or_create(&cfg.key_path())?;
    Store::open_with_blobs(&cfg.db_path(), key, &cfg.data_dir.join("blobs"))
        .with_context(|| format!("opening database {}", cfg.db_path().display()))
}

fn run_org(cfg: Config, command: OrgCommand) -> anyhow::Result<()> {
    let store = open_store(&cfg)?;
    let mut out = std::io::stdout().lock();
    match command {
        OrgCommand::Create { name, json } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let (org, api_key) = store.create_organization(name)?;
            if json {
                let v = serde_json::json!({
                    "id": org.id,
                    "name": org.name,
                    "api_key": api_key,
                    "webhook_signing": SIGNING_NOTE,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "organization {} created: {}", org.id, org.name)?;
                writeln!(out, "API key (shown only once, store it now): {api_key}")?;
                writeln!(out, "webhook signing: {SIGNING_NOTE}")?;
            }
        }
        OrgCommand::List { json } => {
            let orgs = store.list_organizations()?;
            if json {
                let v: Vec<_> = orgs
                    .iter()
                    .map(|o| serde_json::json!({"id": o.id, "name": o.name}))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(v))?;
            } else {
                for o in &orgs {
                    writeln!(out, "{}\t{}", o.id, o.name)?;
                }
            }
        }
        OrgCommand::RotateKey { id, json } => {
            let api_key = store.rotate_api_key(id)?;
            if json {
                writeln!(out, "{}", serde_json::json!({"id": id, "api_key": api_key}))?;
            } else {
                writeln!(
                    out,
                    "new API key for organization {id} (shown only once): {api_key}"
                )?;
            }
        }
    }
    Ok(())
}

fn run_serve(cfg: Config, http: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if http {
        runtime.block_on(serve(cfg))
    } else {
        runtime.block_on(workers_only(cfg))
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let store = open_store(&cfg)?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let public_url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = AppState::new(
        store.clone(),
        ApiConfig {
            public_url: public_url.clone(),
            max_body_bytes: cfg.max_body_bytes,
        },
    );
    let registry = std::sync::Arc::new(build_registry(&cfg)?);
    let state = state
        .with_embedding_models(search_models(&registry))
        .with_files(files_config()?, registry.clone());
    let dropbox = dropbox_connector(&cfg, &store, &public_url)?;
    let sync_engine =
        carbide_sync::dropbox_sync::DropboxSync::new(dropbox.clone(), dropbox_sync_config()?);
    let state = state
        .with_dropbox(dropbox.clone())
        .with_dropbox_sync(sync_engine.clone());
    let app = carbide_api::router(state);
    {
        let dropbox = dropbox.clone();
        tokio::spawn(async move {
            match dropbox.resume_item_listings().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, "resumed interrupted Dropbox item listings"),
                Err(e) => tracing::warn!(error = %e, "cannot resume Dropbox item listings"),
            }
        });
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let file_worker = tokio::spawn(carbide_sync::run_file_worker(
        store.clone(),
        registry.clone(),
        file_worker_config()?,
        stop_rx.clone(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("carbide/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the webhook HTTP client")?;
    let webhook_worker = tokio::spawn(carbide_sync::run_webhook_worker(
        store.clone(),
        http,
        stop_rx.clone(),
    ));
    let dropbox_sync = tokio::spawn(sync_engine.run(stop_rx.clone()));

    tracing::info!(%addr, %public_url, data_dir = %cfg.data_dir.display(), "carbide serving");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "carbide listening on http://{addr}")?;
        out.flush()?;
    }

    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested: draining requests and jobs");
            let _ = stop_tx.send(true);
        })
        .await
        .context("HTTP server")?;

    match tokio::time::timeout(Duration::from_secs(30), webhook_worker).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "webhook worker ended abnormally"),
        Err(_) => tracing::warn!("webhook worker did not stop within 30 s"),
    }
    match tokio::time::timeout(Duration::from_secs(60), file_worker).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "file worker ended abnormally"),
        Err(_) => {
            tracing::warn!("file worker did not stop within 60 s (its jobs' leases will expire)")
        }
    }
    if tokio::time::timeout(Duration::from_secs(60), dropbox_sync)
        .await
        .is_err()
    {
        tracing::warn!("Dropbox sync did not stop within 60 s (its jobs' leases will expire)");
    }
    tracing::info!("carbide stopped");
    Ok(())
}

/// `carbide worker`: file processing and webhook delivery without the HTTP server.
async fn workers_only(cfg: Config) -> anyhow::Result<()> {
    let store = open_store(&cfg)?;
    let registry = std::sync::Arc::new(build_registry(&cfg)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("carbide/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the webhook HTTP client")?;
    let webhook_worker = tokio::spawn(carbide_sync::run_webhook_worker(
        store.clone(),
        http,
        stop_rx.clone(),
    ));
    let public_url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.listen));
    let dropbox = dropbox_connector(&cfg, &store, &public_url)?;
    let dropbox_sync = tokio::spawn(
        carbide_sync::dropbox_sync::DropboxSync::new(dropbox, dropbox_sync_config()?)
            .run(stop_rx.clone()),
    );
    let file_worker = tokio::spawn(carbide_sync::run_file_worker(
        store,
        registry,
        file_worker_config()?,
        stop_rx,
    ));
    tracing::info!(data_dir = %cfg.data_dir.display(), "carbide workers running");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(60), dropbox_sync).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), webhook_worker).await;
    let _ = tokio::time::timeout(Duration::from_secs(60), file_worker).await;
    tracing::info!("carbide workers stopped");
    Ok(())
}

/// Dropbox file sync tuning: the file size limit of the file endpoints,
/// `CARBIDE_DROPBOX_LONGPOLL` (`0` turns the longpoll change tracker off: changes then arrive
/// by Dropbox webhook and the schedule only) and `CARBIDE_DROPBOX_DOWNLOADS_PER_ACCOUNT`
/// (default 4).
fn dropbox_sync_config() -> anyhow::Result<carbide_sync::dropbox_sync::DropboxSyncConfig> {
    let mut c = carbide_sync::dropbox_sync::DropboxSyncConfig {
        max_file_bytes: files_config()?.max_file_bytes,
        ..Default::default()
    };
    if let Some(secs) = job_lease_secs()? {
        c.lease = Duration::from_secs(secs);
    }
    if let Some(v) = env_var("CARBIDE_DROPBOX_LONGPOLL") {
        c.track_changes = !matches!(v.trim(), "0" | "false" | "no" | "off");
    }
    if let Some(v) = env_var("CARBIDE_DROPBOX_DOWNLOADS_PER_ACCOUNT") {
        c.downloads_per_source = v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .context("CARBIDE_DROPBOX_DOWNLOADS_PER_ACCOUNT must be a positive integer")?;
    }
    Ok(c)
}

/// `CARBIDE_JOB_LEASE_SECS`: how long a claimed job stays reserved for a process that stops
/// renewing it (a killed process's jobs run elsewhere after this); running jobs renew it.
fn job_lease_secs() -> anyhow::Result<Option<u64>> {
    env_var("CARBIDE_JOB_LEASE_SECS")
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 3)
                .context("CARBIDE_JOB_LEASE_SECS must be an integer of at least 3")
        })
        .transpose()
}

/// A positive integer from the environment variable `name`, if set.
fn positive_env(name: &str) -> anyhow::Result<Option<usize>> {
    env_var(name)
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .with_context(|| format!("{name} must be a positive integer"))
        })
        .transpose()
}

/// The Dropbox connector from `CARBIDE_DROPBOX_*` (hosts, CA certificate, server-wide app).
fn dropbox_connector(
    cfg: &Config,
    store: &Store,
    public_url: &str,
) -> anyhow::Result<carbide_sync::dropbox::Dropbox> {
    use carbide_sync::dropbox::{Dropbox, DropboxSettings, Endpoints};
    let d = &cfg.dropbox;
    let mut ca_certs_pem = Vec::new();
    if let Some(p) = &d.ca_cert {
        ca_certs_pem.push(
            std::fs::read(p)
                .with_context(|| format!("reading CARBIDE_DROPBOX_CA_CERT {}", p.display()))?,
        );
    }
    Dropbox::new(
        store.clone(),
        DropboxSettings {
            endpoints: Some(Endpoints {
                api: d.api_url.clone(),
                content: d.content_url.clone(),
                notify: d.notify_url.clone(),
                www: d.www_url.clone(),
            }),
            ca_certs_pem,
            app_key: d.app_key.clone(),
            app_secret: d.app_secret.clone(),
            public_url: public_url.to_string(),
        },
    )
    .context("building the Dropbox client")
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The embedding provider registry from `CARBIDE_EMBEDDING_MODELS` and `CARBIDE_OPENAI_*`.
fn build_registry(cfg: &Config) -> anyhow::Result<carbide_sync::EmbeddingRegistry> {
    use carbide_sync::embedding::{OpenAiSettings, parse_model_mapping};
    let mapping = env_var("CARBIDE_EMBEDDING_MODELS").unwrap_or_else(|| "OPENAI=local".into());
    let models = parse_model_mapping(&mapping)?;
    let dims = match env_var("CARBIDE_OPENAI_DIMS") {
        Some(d) => Some(
            d.trim()
                .parse::<usize>()
                .context("CARBIDE_OPENAI_DIMS must be a number")?,
        ),
        None => None,
    };
    Ok(carbide_sync::EmbeddingRegistry::from_config(
        &carbide_sync::EmbeddingConfig {
            model_dir: cfg.model_dir.clone(),
            models,
            openai: OpenAiSettings {
                base_url: env_var("CARBIDE_OPENAI_BASE_URL"),
                api_key: env_var("CARBIDE_OPENAI_API_KEY"),
                model: env_var("CARBIDE_OPENAI_MODEL"),
                dims,
            },
            threads: positive_env("CARBIDE_EMBED_THREADS")?
                .unwrap_or_else(carbide_embed::default_threads),
        },
    ))
}

/// The search endpoint's models: the registry's loaded providers (each model loaded once).
fn search_models(
    registry: &carbide_sync::EmbeddingRegistry,
) -> carbide_api::embedding_models::EmbeddingModels {
    let mut models = carbide_api::embedding_models::EmbeddingModels::none();
    for (names, embedder) in registry.ready_groups() {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        models = models.with(&names, embedder);
    }
    models
}

/// `CARBIDE_MAX_FILE_MB` (default 50) and `CARBIDE_ALLOW_PRIVATE_URLS`.
fn files_config() -> anyhow::Result<carbide_api::FilesConfig> {
    let mut c = carbide_api::FilesConfig::default();
    if let Some(mb) = env_var("CARBIDE_MAX_FILE_MB") {
        let mb: u64 = mb
            .trim()
            .parse()
            .context("CARBIDE_MAX_FILE_MB must be a number")?;
        c.max_file_bytes = mb.saturating_mul(1024 * 1024);
    }
    c.allow_private_urls = matches!(
        env_var("CARBIDE_ALLOW_PRIVATE_URLS")
            .as_deref()
            .map(str::trim),
        Some("1" | "true" | "yes")
    );
    Ok(c)
}

/// The file worker: the sandboxed extractor installed next to this binary.
fn file_worker_config() -> anyhow::Result<carbide_sync::FileWorkerConfig> {
    let sandbox = carbide_ingest::Sandbox::beside_current_exe(Duration::from_secs(120), 2 << 30)
        .map_err(|e| anyhow::anyhow!("locating carbide-extract: {e}"))?;
    let mut c = carbide_sync::FileWorkerConfig::new(sandbox);
    if let Some(secs) = job_lease_secs()? {
        c.lease = Duration::from_secs(secs);
    }
    // Several files in flight keep the embedder's shared micro-batches full when files are
    // small (each file's extraction runs in its own sandboxed process meanwhile).
    c.concurrency = positive_env("CARBIDE_FILE_WORKERS")?.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(2)
            .max(4)
    });
    if let Some(mb) = env_var("CARBIDE_MAX_FILE_MB")
        && let Ok(mb) = mb.trim().parse::<u64>()
    {
        c.limits.max_bytes = mb.saturating_mul(1024 * 1024);
    }
    Ok(c)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
