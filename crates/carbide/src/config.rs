//! Server configuration: environment variables override an optional TOML file, which overrides
//! built-in defaults. This is the only place that reads `CARBIDE_*` settings.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Settings as they may appear in the TOML file (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    public_url: Option<String>,
    log_format: Option<String>,
    max_body_mb: Option<usize>,
    model_dir: Option<PathBuf>,
    dropbox_url: Option<String>,
    dropbox_api_url: Option<String>,
    dropbox_content_url: Option<String>,
    dropbox_notify_url: Option<String>,
    dropbox_www_url: Option<String>,
    dropbox_ca_cert: Option<PathBuf>,
    dropbox_app_key: Option<String>,
    dropbox_app_secret: Option<String>,
}

/// How logs are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration of one carbide process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds (`CARBIDE_LISTEN`, default `127.0.0.1:8080`).
    pub listen: String,
    /// Directory holding the SQLite database, raw files and the master key (`CARBIDE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Externally visible base URL (`CARBIDE_PUBLIC_URL`); `None` means "derive from the bound address".
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// Largest accepted request body (`CARBIDE_MAX_BODY_MB`, default 64).
    pub max_body_bytes: usize,
    /// Local embedding model directory (`CARBIDE_MODEL_DIR`, default `models/all-MiniLM-L6-v2`).
    pub model_dir: PathBuf,
    /// Dropbox hosts, CA certificate and server-wide app (`CARBIDE_DROPBOX_*`).
    pub dropbox: DropboxConfig,
}

/// Where Dropbox is and which app carbide uses when an organization has no white label.
#[derive(Clone, Default, PartialEq)]
pub struct DropboxConfig {
    /// `CARBIDE_DROPBOX_API_URL` (else `CARBIDE_DROPBOX_URL`, else `https://api.dropboxapi.com`).
    pub api_url: String,
    /// `CARBIDE_DROPBOX_CONTENT_URL` (else `CARBIDE_DROPBOX_URL`, else `https://content.dropboxapi.com`).
    pub content_url: String,
    /// `CARBIDE_DROPBOX_NOTIFY_URL` (else `CARBIDE_DROPBOX_URL`, else `https://notify.dropboxapi.com`).
    pub notify_url: String,
    /// `CARBIDE_DROPBOX_WWW_URL` (else `CARBIDE_DROPBOX_URL`, else `https://www.dropbox.com`).
    pub www_url: String,
    /// `CARBIDE_DROPBOX_CA_CERT`: a PEM file of extra CA certificates to trust.
    pub ca_cert: Option<PathBuf>,
    /// `CARBIDE_DROPBOX_APP_KEY`.
    pub app_key: Option<String>,
    /// `CARBIDE_DROPBOX_APP_SECRET`.
    pub app_secret: Option<String>,
}

impl std::fmt::Debug for DropboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxConfig")
            .field("api_url", &self.api_url)
            .field("content_url", &self.content_url)
            .field("notify_url", &self.notify_url)
            .field("www_url", &self.www_url)
            .field("ca_cert", &self.ca_cert)
            .field("app_key", &self.app_key)
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

fn http_url(name: &str, v: String) -> anyhow::Result<String> {
    let v = v.trim().trim_end_matches('/').to_string();
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        bail!("{name} must start with http:// or https:// (got {v:?})");
    }
    Ok(v)
}

impl Config {
    /// Loads the configuration from the process environment and, when `CARBIDE_CONFIG` or
    /// `explicit_file` names one, a TOML file.
    pub fn load(explicit_file: Option<&Path>) -> anyhow::Result<Config> {
        Self::from_sources(explicit_file, |k| std::env::var(k).ok())
    }

    fn from_sources(
        explicit_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let file_path = explicit_file
            .map(Path::to_path_buf)
            .or_else(|| env("CARBIDE_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", p.display()))?
            }
            None => FileConfig::default(),
        };

        let listen = env("CARBIDE_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let data_dir = env("CARBIDE_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let public_url = env("CARBIDE_PUBLIC_URL")
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        if let Some(u) = &public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("CARBIDE_PUBLIC_URL must start with http:// or https:// (got {u:?})");
        }
        let log_format = match env("CARBIDE_LOG_FORMAT")
            .or(file.log_format)
            .as_deref()
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("CARBIDE_LOG_FORMAT must be text or json (got {other:?})"),
        };
        let max_body_mb = match env("CARBIDE_MAX_BODY_MB") {
            Some(v) => v
                .parse::<usize>()
                .with_context(|| format!("CARBIDE_MAX_BODY_MB must be a number (got {v:?})"))?,
            None => file.max_body_mb.unwrap_or(64),
        };
        let model_dir = env("CARBIDE_MODEL_DIR")
            .map(PathBuf::from)
            .or(file.model_dir)
            .unwrap_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"));
        let base = env("CARBIDE_DROPBOX_URL").or(file.dropbox_url);
        let host = |name: &str, file_v: Option<String>, default: &str| -> anyhow::Result<String> {
            let v = env(name)
                .or(file_v)
                .or_else(|| base.clone())
                .unwrap_or_else(|| default.to_string());
            http_url(name, v)
        };
        let nonempty =
            |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let dropbox = DropboxConfig {
            api_url: host(
                "CARBIDE_DROPBOX_API_URL",
                file.dropbox_api_url,
                "https://api.dropboxapi.com",
            )?,
            content_url: host(
                "CARBIDE_DROPBOX_CONTENT_URL",
                file.dropbox_content_url,
                "https://content.dropboxapi.com",
            )?,
            notify_url: host(
                "CARBIDE_DROPBOX_NOTIFY_URL",
                file.dropbox_notify_url,
                "https://notify.dropboxapi.com",
            )?,
            www_url: host(
                "CARBIDE_DROPBOX_WWW_URL",
                file.dropbox_www_url,
                "https://www.dropbox.com",
            )?,
            ca_cert: env("CARBIDE_DROPBOX_CA_CERT")
                .map(PathBuf::from)
                .or(file.dropbox_ca_cert)
                .filter(|p| !p.as_os_str().is_empty()),
            app_key: nonempty(env("CARBIDE_DROPBOX_APP_KEY").or(file.dropbox_app_key)),
            app_secret: nonempty(env("CARBIDE_DROPBOX_APP_SECRET").or(file.dropbox_app_secret)),
        };
        Ok(Config {
            listen,
            data_dir,
            public_url,
            log_format,
            model_dir,
            max_body_bytes: max_body_mb.saturating_mul(1024 * 1024),
            dropbox,
        })
    }

    /// Path of the SQLite database inside the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("carbide.db")
    }

    /// Path of the master secret key file inside the data directory.
    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_sources(None, env_of(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.public_url, None);
        assert_eq!(c.max_body_bytes, 64 * 1024 * 1024);
        assert_eq!(c.dropbox.api_url, "https://api.dropboxapi.com");
        assert_eq!(c.dropbox.www_url, "https://www.dropbox.com");
        assert_eq!(c.dropbox.app_key, None);
    }

    #[test]
    fn dropbox_hosts() {
        let c = Config::from_sources(
            None,
            env_of(&[
                ("CARBIDE_DROPBOX_URL", "https://127.0.0.1:9/"),
                ("CARBIDE_DROPBOX_NOTIFY_URL", "http://127.0.0.1:10"),
                ("CARBIDE_DROPBOX_APP_KEY", "k"),
                ("CARBIDE_DROPBOX_APP_SECRET", "s3cr3t-value"),
            ]),
        )
        .unwrap();
        assert_eq!(c.dropbox.api_url, "https://127.0.0.1:9");
        assert_eq!(c.dropbox.content_url, "https://127.0.0.1:9");
        assert_eq!(c.dropbox.www_url, "https://127.0.0.1:9");
        assert_eq!(c.dropbox.notify_url, "http://127.0.0.1:10");
        assert_eq!(c.dropbox.app_key.as_deref(), Some("k"));
        assert_eq!(c.dropbox.app_secret.as_deref(), Some("s3cr3t-value"));
        assert!(!format!("{:?}", c.dropbox).contains("s3cr3t-value"));
        assert!(Config::from_sources(None, env_of(&[("CARBIDE_DROPBOX_URL", "ftp://x")])).is_err());
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/c\"\npublic_url = \"https://x.example/\"\n",
        )
        .unwrap();
        let c =
            Config::from_sources(Some(&f), env_of(&[("CARBIDE_LISTEN", "127.0.0.1:1")])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        assert_eq!(c.data_dir, PathBuf::from("/srv/c"));
        assert_eq!(c.public_url.as_deref(), Some("https://x.example"));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(Config::from_sources(None, env_of(&[("CARBIDE_PUBLIC_URL", "ftp://x")])).is_err());
        assert!(Config::from_sources(None, env_of(&[("CARBIDE_LOG_FORMAT", "xml")])).is_err());
        assert!(Config::from_sources(None, env_of(&[("CARBIDE_MAX_BODY_MB", "big")])).is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "unknown_key = 1\n").unwrap();
        assert!(Config::from_sources(Some(&f), env_of(&[])).is_err());
    }
}
