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
        Ok(Config {
            listen,
            data_dir,
            public_url,
            log_format,
            model_dir,
            max_body_bytes: max_body_mb.saturating_mul(1024 * 1024),
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
