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
#[command(name = "carbide", version, about = "Self-hosted, Carbon-compatible Dropbox-to-LLM engine")]
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

fn main() -> std::process::ExitCode {
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
        Command::Serve => run_serve(cfg),
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
    Store::open(&cfg.db_path(), key)
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
                writeln!(out, "new API key for organization {id} (shown only once): {api_key}")?;
            }
        }
    }
    Ok(())
}

fn run_serve(cfg: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(cfg))
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
    let state = state.with_embedding_models(load_embedding_models(&cfg));
    let app = carbide_api::router(state);

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
    tracing::info!("carbide stopped");
    Ok(())
}

/// Loads the local MiniLM model from `cfg.model_dir`; it answers Carbon's default model name
/// (`OPENAI`). Without a model the server still runs and searches keyword-only.
fn load_embedding_models(cfg: &Config) -> carbide_api::embedding_models::EmbeddingModels {
    use carbide_api::embedding_models::EmbeddingModels;
    let threads = carbide_embed::default_threads();
    match carbide_embed::MiniLm::load(&cfg.model_dir, threads) {
        Ok(m) => {
            tracing::info!(dir = %cfg.model_dir.display(), "embedding model loaded");
            EmbeddingModels::none().with(&["OPENAI"], std::sync::Arc::new(m))
        }
        Err(e) => {
            tracing::warn!(dir = %cfg.model_dir.display(), error = %e,
                "no embedding model: semantic search unavailable, searches run keyword-only");
            EmbeddingModels::none()
        }
    }
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
