//! Harness for the file-pipeline tests: an in-process carbide API (with the files config) on a
//! random port, the file worker with the sandboxed extractor, the embedding registry (MiniLM
//! when installed), and helpers to call the API and wait for files to finish.
//!
//! The sandbox needs the `carbide-extract` binary: `CARBIDE_EXTRACT_BIN` or
//! `target/debug/carbide-extract` next to the test executable's directory (`make test` builds
//! all binaries first; by hand: `cargo build -p carbide-ingest --bin carbide-extract`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use carbide_api::{AppState, FilesConfig, router};
use carbide_core::secrets::MasterKey;
use carbide_ingest::Sandbox;
use carbide_store::Store;
use carbide_sync::{EmbeddingRegistry, FileWorkerConfig};
use serde_json::{Value, json};
use tokio::sync::watch;

#[path = "../common/mod.rs"]
pub mod common;

pub fn extract_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CARBIDE_EXTRACT_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/files-xxxx → target/debug/carbide-extract
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("carbide-extract");
    assert!(
        p.is_file(),
        "{} missing: run `cargo build -p carbide-ingest --bin carbide-extract` (make test does)",
        p.display()
    );
    p
}

pub fn model_dir() -> PathBuf {
    std::env::var("CARBIDE_MODEL_DIR")
        .ok()
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            [
                env!("CARGO_MANIFEST_DIR"),
                "..",
                "..",
                "models",
                "all-MiniLM-L6-v2",
            ]
            .iter()
            .collect()
        })
}

/// The embedding registry (`OPENAI=local`) and whether the model is installed.
pub fn registry() -> (Arc<EmbeddingRegistry>, bool) {
    let dir = model_dir();
    let have = dir.join("model.safetensors").is_file();
    if !have && std::env::var("CARBIDE_REQUIRE_MODEL").is_ok() {
        panic!(
            "CARBIDE_REQUIRE_MODEL set but no model in {}",
            dir.display()
        );
    }
    if !have {
        eprintln!("embedding model absent: tests skip embeddings");
    }
    let cfg = carbide_sync::EmbeddingConfig {
        model_dir: dir,
        models: carbide_sync::embedding::parse_model_mapping("OPENAI=local").unwrap(),
        openai: Default::default(),
        threads: 1,
    };
    (Arc::new(EmbeddingRegistry::from_config(&cfg)), have)
}

pub fn corpus(rel: &str) -> Vec<u8> {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "..",
        "shared",
        "corpus",
        "docs",
        rel,
    ]
    .iter()
    .collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A running API (and optionally a file worker) over one database.
pub struct Env {
    pub base: String,
    pub store: Store,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    pub master_key: MasterKey,
    pub registry: Arc<EmbeddingRegistry>,
    pub have_model: bool,
    /// Stops the API server (graceful) and the file worker when sent `true`.
    pub stop: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// Options of [`Env::start_with`].
#[derive(Clone)]
pub struct EnvOptions {
    pub files: FilesConfig,
    pub worker: bool,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            files: FilesConfig {
                max_file_bytes: 50 << 20,
                allow_private_urls: true,
                ..Default::default()
            },
            worker: true,
        }
    }
}

/// API + worker in a fresh temp dir, private URLs allowed, `max_file_bytes` limit.
pub async fn start(max_file_bytes: u64) -> Env {
    let mut o = EnvOptions::default();
    o.files.max_file_bytes = max_file_bytes;
    Env::start_with(o).await
}

pub fn worker_config() -> FileWorkerConfig {
    let sandbox = Sandbox {
        exe: extract_bin(),
        timeout: Duration::from_secs(60),
        memory_bytes: 2 << 30,
    };
    let mut cfg = FileWorkerConfig::new(sandbox);
    cfg.poll_interval = Duration::from_millis(50);
    cfg
}

impl Env {
    pub async fn start_with(o: EnvOptions) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("carbide.db");
        let mut env = Env::open(&db_path, MasterKey::generate(), o).await;
        env._dir = Some(dir);
        env
    }

    /// Opens (or reopens) the database at `db_path` and starts the API (and worker) on it.
    pub async fn open(db_path: &Path, master_key: MasterKey, o: EnvOptions) -> Env {
        let store = Store::open(db_path, master_key.clone()).unwrap();
        let (reg, have_model) = registry();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(
            store.clone(),
            carbide_api::ApiConfig {
                public_url: base.clone(),
                max_body_bytes: 64 << 20,
            },
        )
        .with_files(o.files, reg.clone());
        let app = router(state);
        let (stop, rx) = watch::channel(false);
        let mut srx = rx.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = srx.wait_for(|v| *v).await;
                })
                .await
                .unwrap()
        });
        let worker = o.worker.then(|| {
            tokio::spawn(carbide_sync::run_file_worker(
                store.clone(),
                reg.clone(),
                worker_config(),
                rx,
            ))
        });
        Env {
            base,
            store,
            client: reqwest::Client::new(),
            db_path: db_path.to_path_buf(),
            master_key,
            registry: reg,
            have_model,
            stop,
            server: Some(server),
            worker,
            _dir: None,
        }
    }

    /// Stops the server and the worker and waits for both ("process exit"); returns the
    /// temp dir so the database outlives this `Env`.
    pub async fn shutdown(mut self) -> Option<tempfile::TempDir> {
        let _ = self.stop.send(true);
        if let Some(s) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), s)
                .await
                .unwrap()
                .unwrap();
        }
        if let Some(w) = self.worker.take() {
            tokio::time::timeout(Duration::from_secs(120), w)
                .await
                .unwrap()
                .unwrap();
        }
        self._dir.take()
    }

    pub fn key(&self, name: &str) -> String {
        self.store.create_organization(name).unwrap().1
    }
    pub async fn post(&self, key: &str, cid: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .header("customer-id", cid)
            .json(&body)
            .send()
            .await
            .unwrap();
        common::finish(r).await
    }
    pub async fn org_post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        common::finish(r).await
    }
    pub async fn get(&self, key: &str, cid: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .header("customer-id", cid)
            .send()
            .await
            .unwrap();
        common::finish(r).await
    }
    pub async fn upload(
        &self,
        key: &str,
        cid: &str,
        name: &str,
        bytes: Vec<u8>,
        query: &str,
    ) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        let r = self
            .client
            .post(format!("{}/uploadfile?{query}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .header("customer-id", cid)
            .multipart(form)
            .send()
            .await
            .unwrap();
        common::finish(r).await
    }
    pub async fn file(&self, key: &str, cid: &str, id: i64) -> Value {
        let (s, v) = self
            .post(
                key,
                cid,
                "/user_files_v2",
                json!({"filters": {"ids": [id]}}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["results"][0].clone()
    }
    pub async fn wait_terminal(&self, key: &str, cid: &str, id: i64) -> Value {
        for _ in 0..1200 {
            let f = self.file(key, cid, id).await;
            let st = f["sync_status"].as_str().unwrap_or("");
            if ["READY", "SYNC_ERROR", "READY_TO_SYNC"].contains(&st) {
                return f;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("file {id} never finished");
    }
    /// Every chunk of one file (with vectors), in chunk order.
    pub async fn chunks(&self, key: &str, cid: &str, id: i64) -> Vec<Value> {
        let (s, v) = self
            .post(
                key,
                cid,
                "/text_chunks",
                json!({"filters": {"user_file_id": id}, "include_vectors": true,
                       "pagination": {"limit": 250}, "order_by": "chunk_index", "order_dir": "asc"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["results"].as_array().unwrap().clone()
    }
}
