//! `dropbox-emulator` binary: parses flags, starts the emulator, prints the listening line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use dropbox_emulator::{AppConfig, Config, SeedConfig, serve};

/// A faithful Dropbox API v2 emulator with a test-only admin API.
#[derive(Parser, Debug)]
#[command(name = "dropbox-emulator", version)]
struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: SocketAddr,
    /// Serve HTTPS with a generated self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// Write the certificate to trust (PEM) here.
    #[arg(long, requires = "tls")]
    tls_cert_out: Option<PathBuf>,
    /// Load this folder as the seed account's Dropbox.
    #[arg(long, requires = "seed_email")]
    seed_dir: Option<PathBuf>,
    /// Email of the seed account.
    #[arg(long)]
    seed_email: Option<String>,
    /// Keep reflecting changes made in the seed folder.
    #[arg(long, requires = "seed_dir")]
    watch: bool,
    /// Register an app with this key.
    #[arg(long, requires = "app_secret")]
    app_key: Option<String>,
    /// Secret of the app.
    #[arg(long)]
    app_secret: Option<String>,
    /// Redirect URI of the app (repeatable).
    #[arg(long)]
    redirect_uri: Vec<String>,
    /// Scope of the app (repeatable; default: all).
    #[arg(long)]
    scope: Vec<String>,
    /// Require this key in `X-Emulator-Admin-Key` on `/__admin/` routes.
    #[arg(long, env = "DROPBOX_EMULATOR_ADMIN_KEY")]
    admin_key: Option<String>,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 14_400)]
    token_ttl: i64,
    /// Default list_folder page size.
    #[arg(long, default_value_t = 500)]
    page_size: usize,
    /// Directory for file bodies (default: a temp dir removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut apps = Vec::new();
    if let (Some(key), Some(secret)) = (args.app_key.clone(), args.app_secret.clone()) {
        apps.push(AppConfig {
            key,
            secret,
            redirect_uris: args.redirect_uri.clone(),
            scopes: args.scope.clone(),
        });
    }
    let seed = match (args.seed_dir.clone(), args.seed_email.clone()) {
        (Some(dir), Some(email)) => Some(SeedConfig {
            dir,
            email,
            watch: args.watch,
        }),
        _ => None,
    };
    let config = Config {
        listen: args.listen,
        tls: args.tls,
        tls_cert_out: args.tls_cert_out.clone(),
        token_ttl: args.token_ttl,
        default_page_size: args.page_size,
        code_ttl: 600,
        admin_key: args.admin_key.clone(),
        blob_dir: args.data_dir.clone(),
        apps,
        seed,
    };
    let running = serve(config).await.context("starting the emulator")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "dropbox-emulator listening on {}", running.base_url())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    running.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM (so the temporary blob directory is removed either way).
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for ctrl-c")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    Ok(())
}
