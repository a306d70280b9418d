//! Dropbox file sync end to end against the in-process emulator: `/integrations/files/sync`
//! of folders and files → download jobs → the file worker → READY and searchable; changes
//! made in the emulator arriving by longpoll with no API call (add, edit, rename, move,
//! delete); expired and revoked tokens; 429/5xx faults; cursor reset; team folders; tenancy;
//! Dropbox webhooks; the auto-sync schedule; a worker killed mid-sync.
//!
//! Needs `carbide-extract` (see `tests/files.rs`).

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use carbide_api::{ApiConfig, AppState, FilesConfig, router};
use carbide_core::secrets::MasterKey;
use carbide_ingest::Sandbox;
use carbide_store::Store;
use carbide_sync::dropbox::{Dropbox, DropboxSettings, Endpoints};
use carbide_sync::dropbox_sync::{DropboxSync, DropboxSyncConfig};
use carbide_sync::{EmbeddingRegistry, FileWorkerConfig, WebhookWorkerConfig};
use common::finish;
use dropbox_emulator::{AccountReq, AppConfig, FaultReq, PutFile, RunningEmulator, TeamReq};
use serde_json::{Value, json};
use tokio::sync::watch;

const APP_KEY: &str = "sync-app-key";
const APP_SECRET: &str = "sync-app-secret";

fn extract_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CARBIDE_EXTRACT_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("carbide-extract");
    assert!(
        p.is_file(),
        "{} missing: run `cargo build -p carbide-ingest --bin carbide-extract`",
        p.display()
    );
    p
}

#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Value>>>);

async fn receive(State(h): State<Hooks>, body: String) -> StatusCode {
    let outer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let inner: Value = outer["payload"]
        .as_str()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    h.0.lock().unwrap().push(inner);
    StatusCode::OK
}

struct Env {
    base: String,
    store: Store,
    dropbox: Dropbox,
    sync: DropboxSync,
    emu: RunningEmulator,
    http: reqwest::Client,
    hooks: Hooks,
    hook_url: String,
    dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    sync_task: Option<tokio::task::JoinHandle<()>>,
}

fn sync_config(max_file_bytes: u64) -> DropboxSyncConfig {
    DropboxSyncConfig {
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(3),
        max_file_bytes,
        tracker_refresh: Duration::from_millis(100),
        scheduler_interval: Duration::from_millis(100),
        base_backoff: Duration::from_millis(500),
        default_rate_limit_wait: Duration::from_secs(1),
        ..DropboxSyncConfig::default()
    }
}

async fn start_with(cfg: DropboxSyncConfig) -> Env {
    start_full(cfg, Arc::new(EmbeddingRegistry::default())).await
}

async fn start_full(cfg: DropboxSyncConfig, registry: Arc<EmbeddingRegistry>) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let emu = dropbox_emulator::serve(dropbox_emulator::Config {
        apps: vec![AppConfig {
            key: APP_KEY.into(),
            secret: APP_SECRET.into(),
            redirect_uris: vec![format!("{base}/integrations/dropbox")],
            scopes: vec![],
        }],
        ..dropbox_emulator::Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("carbide.db"), MasterKey::generate()).unwrap();
    let dropbox = Dropbox::new(
        store.clone(),
        DropboxSettings {
            endpoints: Some(Endpoints::single_origin(&emu.base_url())),
            ca_certs_pem: vec![],
            app_key: Some(APP_KEY.into()),
            app_secret: Some(APP_SECRET.into()),
            public_url: base.clone(),
        },
    )
    .unwrap();
    let max_file_bytes = cfg.max_file_bytes;
    let sync = DropboxSync::new(dropbox.clone(), cfg);
    let app = router(
        AppState::new(
            store.clone(),
            ApiConfig {
                public_url: base.clone(),
                max_body_bytes: 1 << 20,
            },
        )
        .with_files(
            FilesConfig {
                max_file_bytes,
                ..FilesConfig::default()
            },
            registry.clone(),
        )
        .with_dropbox(dropbox.clone())
        .with_dropbox_sync(sync.clone()),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    let hooks = Hooks::default();
    let happ = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(hooks.clone());
    tokio::spawn(async move { axum::serve(hook_listener, happ).await.unwrap() });
    let (stop, rx) = watch::channel(false);
    tokio::spawn(carbide_sync::run_webhook_worker_with(
        store.clone(),
        reqwest::Client::new(),
        rx.clone(),
        WebhookWorkerConfig {
            poll_interval: Duration::from_millis(50),
            ..WebhookWorkerConfig::default()
        },
    ));
    let mut fcfg = FileWorkerConfig::new(Sandbox {
        exe: extract_bin(),
        timeout: Duration::from_secs(60),
        memory_bytes: 2 << 30,
    });
    fcfg.poll_interval = Duration::from_millis(50);
    tokio::spawn(carbide_sync::run_file_worker(
        store.clone(),
        registry,
        fcfg,
        rx.clone(),
    ));
    let sync_task = Some(tokio::spawn(sync.clone().run(rx)));
    Env {
        base,
        store,
        dropbox,
        sync,
        emu,
        http: reqwest::Client::new(),
        hooks,
        hook_url,
        dir,
        stop,
        sync_task,
    }
}

async fn start() -> Env {
    start_with(sync_config(2000)).await
}

impl Env {
    async fn post(&self, key: &str, cid: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .header("customer-id", cid)
            .json(&body)
            .send()
            .await
            .unwrap();
        finish(r).await
    }

    async fn org(&self, name: &str) -> String {
        let (_, key) = self.store.create_organization(name).unwrap();
        let r = self
            .http
            .post(format!("{}/add_webhook", self.base))
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({"url": self.hook_url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        key
    }

    fn account(&self, email: &str, team: Option<&str>) -> String {
        let v = self
            .emu
            .core()
            .create_account(AccountReq {
                email: email.into(),
                given_name: Some("T".into()),
                surname: Some("Test".into()),
                account_type: team.map(|_| "business".to_string()),
                team: team.map(|t| TeamReq { name: t.into() }),
                ..AccountReq::default()
            })
            .unwrap();
        v["account_id"].as_str().unwrap().to_string()
    }

    /// Writes a file in the emulator; returns its Dropbox id.
    fn put(&self, account: &str, path: &str, content: &[u8]) -> String {
        let v = self
            .emu
            .core()
            .put_file(PutFile {
                account_id: account.into(),
                path: path.into(),
                content: content.to_vec(),
                client_modified: None,
                is_downloadable: true,
            })
            .unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    fn folder(&self, account: &str, path: &str) -> String {
        let v = self.emu.core().create_folder(account, path).unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// oauth_url → emulator consent → callback; returns the data source id.
    async fn connect(&self, key: &str, cid: &str, account: &str) -> i64 {
        let (s, v) = self
            .post(
                key,
                cid,
                "/integrations/oauth_url",
                json!({"service": "DROPBOX", "sync_source_items": false}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let url = v["oauth_url"].as_str().unwrap();
        let r = self
            .http
            .post(format!("{}/__admin/oauth/approve", self.emu.base_url()))
            .json(&json!({"account_id": account, "authorize_url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let to: Value = r.json().await.unwrap();
        let to = to["redirect_to"].as_str().unwrap().to_string();
        let r = self
            .http
            .get(format!("{to}&format=json"))
            .send()
            .await
            .unwrap();
        let (s, v) = finish(r).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "connected", "{v}");
        v["data_source_id"].as_i64().unwrap()
    }

    async fn sync_ids(&self, key: &str, cid: &str, ds: i64, ids: &[&str]) -> (u16, Value) {
        self.post(
            key,
            cid,
            "/integrations/files/sync",
            json!({"data_source_id": ds, "ids": ids, "skip_embedding_generation": true,
                   "request_id": "req-1", "tags": {"src": "dbx"}}),
        )
        .await
    }

    async fn files(&self, key: &str, cid: &str) -> Vec<Value> {
        let (s, v) = self
            .post(
                key,
                cid,
                "/user_files_v2",
                json!({"pagination": {"limit": 1000}, "order_by": "id", "order_dir": "asc"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["results"].as_array().unwrap().clone()
    }

    async fn file_named(&self, key: &str, cid: &str, name: &str) -> Option<Value> {
        self.files(key, cid)
            .await
            .into_iter()
            .find(|f| f["name"] == name)
    }

    /// Waits until `pred` holds for the customer's files.
    async fn wait_files(
        &self,
        key: &str,
        cid: &str,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let f = self.files(key, cid).await;
            if pred(&f) {
                return f;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}: {f:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn search(&self, key: &str, cid: &str, q: &str) -> Vec<String> {
        let (s, v) = self
            .post(key, cid, "/embeddings", json!({"query": q, "k": 10}))
            .await;
        assert_eq!(s, 200, "{v}");
        v["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["content"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn wait_hooks(&self, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..400 {
            let got = self.hooks.0.lock().unwrap().clone();
            if pred(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("webhooks not received: {:#?}", self.hooks.0.lock().unwrap());
    }

    fn fault(&self, route: &str, status: u16, times: u32, retry_after: Option<u64>) {
        self.emu
            .core()
            .add_fault(FaultReq {
                route: route.into(),
                status,
                times: Some(times),
                retry_after,
                ..FaultReq::default()
            })
            .unwrap();
    }
}

fn ready(files: &[Value], name: &str) -> bool {
    files
        .iter()
        .any(|f| f["name"] == name && f["sync_status"] == "READY")
}

fn count_type(hooks: &[Value], t: &str) -> usize {
    hooks.iter().filter(|h| h["webhook_type"] == t).count()
}

#[tokio::test]
async fn folder_and_file_sync_then_changes_arrive_by_longpoll() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("ada@example.com", None);
    env.put(&acct, "/Docs/alpha.txt", b"the zebra crossing is striped");
    env.put(
        &acct,
        "/Docs/Sub/beta.md",
        b"# Beta\n\nquokka facts live here",
    );
    env.put(&acct, "/Docs/song.mp3", b"ID3 not really music");
    env.put(&acct, "/Docs/huge.txt", &vec![b'x'; 5000]);
    let single = env.put(&acct, "/single.txt", b"a lonely narwhal");
    env.put(&acct, "/Other/ignored.txt", b"never synced");
    let docs = env.folder(&acct, "/Docs");
    let ds = env.connect(&key, "c1", &acct).await;

    let (s, v) = env.sync_ids(&key, "c1", ds, &[&docs, &single]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"success": true}));
    let files = env
        .wait_files(&key, "c1", "initial sync", |f| {
            ready(f, "alpha.txt") && ready(f, "beta.md") && ready(f, "single.txt")
        })
        .await;
    // folder container + 5 files below or selected; the unrelated folder is not synced
    let names: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
    assert!(!names.contains(&"ignored.txt"), "{names:?}");
    let folder = files.iter().find(|f| f["name"] == "Docs").unwrap();
    assert_eq!(folder["sync_status"], "READY");
    assert_eq!(folder["source"], "DROPBOX");
    let alpha = files
        .iter()
        .find(|f| f["name"] == "alpha.txt")
        .unwrap()
        .clone();
    assert_eq!(alpha["parent_id"], folder["id"]);
    assert_eq!(alpha["source"], "DROPBOX");
    assert_eq!(alpha["organization_user_data_source_id"], ds);
    assert_eq!(alpha["request_id"], "req-1");
    assert_eq!(alpha["tags"]["src"], "dbx");
    assert!(
        alpha["external_file_id"]
            .as_str()
            .unwrap()
            .starts_with("id:")
    );
    let song = files.iter().find(|f| f["name"] == "song.mp3").unwrap();
    assert_eq!(song["sync_status"], "SYNC_ERROR");
    assert!(
        song["sync_error_message"]
            .as_str()
            .unwrap()
            .contains("unsupported file type")
    );
    let huge = files.iter().find(|f| f["name"] == "huge.txt").unwrap();
    assert_eq!(huge["sync_status"], "SYNC_ERROR");
    assert!(
        huge["sync_error_message"]
            .as_str()
            .unwrap()
            .contains("over the limit")
    );
    assert_eq!(
        env.sync.downloads_started(),
        3,
        "rejected files are never downloaded"
    );
    let single_rec = files.iter().find(|f| f["name"] == "single.txt").unwrap();
    assert!(single_rec["parent_id"].is_null());

    assert!(
        env.search(&key, "c1", "zebra")
            .await
            .iter()
            .any(|c| c.contains("zebra"))
    );
    assert!(
        env.search(&key, "c1", "narwhal")
            .await
            .iter()
            .any(|c| c.contains("narwhal"))
    );
    let hooks = env
        .wait_hooks(|h| count_type(h, "FILE_READY") >= 3 && count_type(h, "UPDATE") >= 1)
        .await;
    assert!(count_type(&hooks, "FILES_CREATED") >= 2);

    // idempotent: the same selection again creates nothing new
    let n = files.len();
    let (s, _) = env.sync_ids(&key, "c1", ds, &[&docs, &single]).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.files(&key, "c1").await.len(), n);

    // a file added in Dropbox appears READY with no API call (longpoll)
    let t0 = Instant::now();
    env.put(&acct, "/Docs/Sub/gamma.txt", b"ocelot sightings reported");
    env.wait_files(&key, "c1", "added file", |f| ready(f, "gamma.txt"))
        .await;
    let mut hits = Vec::new();
    while hits.is_empty() && t0.elapsed() < Duration::from_secs(60) {
        hits = env.search(&key, "c1", "ocelot").await;
    }
    eprintln!("change-to-searchable (add): {:?}", t0.elapsed());
    assert!(!hits.is_empty());

    // an edit re-downloads and re-indexes
    let t0 = Instant::now();
    env.put(
        &acct,
        "/Docs/alpha.txt",
        b"the giraffe replaced the zebra entirely now",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = env.search(&key, "c1", "giraffe").await;
        if !h.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "edit never became searchable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("change-to-searchable (edit): {:?}", t0.elapsed());
    let after_edit = env.file_named(&key, "c1", "alpha.txt").await.unwrap();
    assert_eq!(
        after_edit["id"], alpha["id"],
        "an edit keeps the file record"
    );

    // rename: same record, new name, no download, no re-processing
    let before = env.file_named(&key, "c1", "alpha.txt").await.unwrap();
    assert_eq!(before["sync_status"], "READY");
    let alpha_id = alpha["id"].as_i64().unwrap().to_string();
    let readies = |h: &[Value]| {
        h.iter()
            .filter(|x| {
                x["webhook_type"] == "FILE_READY" && x["obj"]["object_id"] == alpha_id.as_str()
            })
            .count()
    };
    env.wait_hooks(|h| readies(h) == 2).await; // first sync + the edit
    let downloads = env.sync.downloads_started();
    env.emu
        .core()
        .move_entry(&acct, "/Docs/alpha.txt", "/Docs/Sub/alpha-renamed.txt")
        .unwrap();
    let files = env
        .wait_files(&key, "c1", "rename", |f| {
            f.iter().any(|x| x["name"] == "alpha-renamed.txt")
        })
        .await;
    let renamed = files
        .iter()
        .find(|f| f["name"] == "alpha-renamed.txt")
        .unwrap();
    assert_eq!(renamed["id"], alpha["id"]);
    assert_eq!(renamed["sync_status"], "READY");
    assert_eq!(
        renamed["last_sync"], before["last_sync"],
        "a rename must not re-process"
    );
    assert!(!files.iter().any(|f| f["name"] == "alpha.txt"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        env.sync.downloads_started(),
        downloads,
        "a rename must not download"
    );
    assert_eq!(
        readies(&env.hooks.0.lock().unwrap()),
        2,
        "a rename must not re-embed"
    );
    assert!(
        !env.search(&key, "c1", "giraffe").await.is_empty(),
        "still searchable"
    );

    // moving out of every watched folder deletes; a selected file moved keeps living
    env.emu
        .core()
        .move_entry(&acct, "/Docs/Sub/beta.md", "/Other/beta.md")
        .unwrap();
    env.emu
        .core()
        .move_entry(&acct, "/single.txt", "/Other/single.txt")
        .unwrap();
    env.wait_files(&key, "c1", "move out", |f| {
        !f.iter().any(|x| x["name"] == "beta.md")
    })
    .await;
    let single_after = env.file_named(&key, "c1", "single.txt").await.unwrap();
    assert_eq!(single_after["id"], single_rec["id"]);

    // deletion: record, chunks and search hits gone, FILE_DELETED fired
    env.emu.core().delete(&acct, "/Docs/Sub/gamma.txt").unwrap();
    env.wait_files(&key, "c1", "delete", |f| {
        !f.iter().any(|x| x["name"] == "gamma.txt")
    })
    .await;
    assert!(env.search(&key, "c1", "ocelot").await.is_empty());
    env.wait_hooks(|h| count_type(h, "FILE_DELETED") >= 2).await;

    // resync re-downloads
    let downloads = env.sync.downloads_started();
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/resync_file",
            json!({"file_id": single_rec["id"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    env.wait_files(&key, "c1", "resync", |f| ready(f, "single.txt"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.sync.downloads_started() == downloads && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(env.sync.downloads_started(), downloads + 1);

    // deleting the watched folder in Dropbox removes the container and everything below
    env.emu.core().delete(&acct, "/Docs").unwrap();
    env.wait_files(&key, "c1", "folder delete", |f| {
        !f.iter()
            .any(|x| x["name"] == "Docs" || x["name"] == "alpha-renamed.txt")
    })
    .await;
    let _ = env.stop.send(true);
}

async fn data_source(env: &Env, key: &str, cid: &str, ds: i64) -> Value {
    let (s, v) = env
        .post(
            key,
            cid,
            "/user_data_sources",
            json!({"filters": {"ids": [ds]}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["results"][0].clone()
}

#[tokio::test]
async fn source_status_follows_file_syncs_and_rejected_selections_settle() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("di@example.com", None);
    let big = env.put(&acct, "/big.txt", &vec![b'x'; 5000]);
    let song = env.put(&acct, "/song.mp3", b"ID3 not really music");
    let slow = env.put(&acct, "/slow.txt", b"a slow heron");
    let ds = env.connect(&key, "c1", &acct).await;
    let before = data_source(&env, &key, "c1", ds).await;
    assert_eq!(before["sync_status"], "READY", "{before}");
    assert!(before["files_synced_at"].is_null(), "{before}");

    // every selected file refused before download: the request is settled at once
    let (s, v) = env.sync_ids(&key, "c1", ds, &[&big, &song]).await;
    assert_eq!(s, 200, "{v}");
    let hooks = env
        .wait_hooks(|h| count_type(h, "ALL_FILES_PROCESSED") == 1)
        .await;
    let done = hooks
        .iter()
        .find(|h| h["webhook_type"] == "ALL_FILES_PROCESSED")
        .unwrap();
    assert_eq!(done["obj"]["object_id"], "req-1", "{done}");
    assert_eq!(env.sync.downloads_started(), 0);

    // a download held up by the emulator: the source shows SYNCING until the file settles
    env.emu
        .core()
        .add_fault(FaultReq {
            route: "files/download".into(),
            status: 200,
            times: Some(1),
            delay_ms: Some(1500),
            ..FaultReq::default()
        })
        .unwrap();
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/files/sync",
            json!({"data_source_id": ds, "ids": [slow], "skip_embedding_generation": true,
                   "request_id": "req-2"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let during = data_source(&env, &key, "c1", ds).await;
    assert_eq!(during["sync_status"], "SYNCING", "{during}");
    env.wait_files(&key, "c1", "slow file", |x| ready(x, "slow.txt"))
        .await;
    let after = data_source(&env, &key, "c1", ds).await;
    assert_eq!(after["sync_status"], "READY", "{after}");
    assert!(after["files_synced_at"].is_string(), "{after}");
    env.wait_hooks(|h| count_type(h, "ALL_FILES_PROCESSED") == 2)
        .await;

    // several files in one call: the request settles once, after the last of them
    let ids: Vec<String> = (0..5)
        .map(|i| {
            env.put(
                &acct,
                &format!("/many/f{i}.txt"),
                format!("file {i}").as_bytes(),
            )
        })
        .collect();
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/files/sync",
            json!({"data_source_id": ds, "ids": ids, "skip_embedding_generation": true,
                   "request_id": "req-3"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    env.wait_files(&key, "c1", "five files", |x| {
        (0..5).all(|i| ready(x, &format!("f{i}.txt")))
    })
    .await;
    let settled = |h: &[Value]| {
        h.iter()
            .filter(|x| {
                x["webhook_type"] == "ALL_FILES_PROCESSED" && x["obj"]["object_id"] == "req-3"
            })
            .count()
    };
    env.wait_hooks(|h| settled(h) >= 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(settled(&env.hooks.0.lock().unwrap().clone()), 1);
}

#[tokio::test]
async fn unknown_ids_and_bad_input_are_rejected() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("bo@example.com", None);
    let ds = env.connect(&key, "c1", &acct).await;
    let (s, v) = env.sync_ids(&key, "c1", ds, &["id:doesnotexist"]).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("not found"));
    let (s, _) = env
        .post(
            &key,
            "c1",
            "/integrations/files/sync",
            json!({"data_source_id": ds, "ids": []}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = env
        .post(
            &key,
            "c1",
            "/integrations/files/sync",
            json!({"data_source_id": ds, "ids": [{"id": 3}]}),
        )
        .await;
    assert_eq!(s, 422);
    // another customer's data source is not found
    let (s, _) = env.sync_ids(&key, "other", ds, &["id:x"]).await;
    assert_eq!(s, 404);
    // ids as objects (Carbon's [{id, root_id}] form) work
    let f = env.put(&acct, "/a.txt", b"object form ids");
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/files/sync",
            json!({"data_source_id": ds, "ids": [{"id": f, "root_id": "x"}],
                   "skip_embedding_generation": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    env.wait_files(&key, "c1", "object ids", |x| ready(x, "a.txt"))
        .await;
}

#[tokio::test]
async fn expired_token_mid_sync_is_refreshed() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("cy@example.com", None);
    let d = env.folder(&acct, "/D");
    env.put(&acct, "/D/one.txt", b"first pangolin");
    let ds = env.connect(&key, "c1", &acct).await;
    let (s, _) = env.sync_ids(&key, "c1", ds, &[&d]).await;
    assert_eq!(s, 200);
    env.wait_files(&key, "c1", "first", |f| ready(f, "one.txt"))
        .await;
    let creds = env.store.dropbox_credentials(ds).unwrap().unwrap();
    env.emu.core().expire_token(&creds.access_token).unwrap();
    env.put(&acct, "/D/two.txt", b"second pangolin");
    env.wait_files(&key, "c1", "after expiry", |f| ready(f, "two.txt"))
        .await;
    let after = env.store.dropbox_credentials(ds).unwrap().unwrap();
    assert!(after.token_version > creds.token_version);
    assert!(!after.revoked);
}

#[tokio::test]
async fn revoked_token_fails_files_with_a_reason_and_marks_the_source() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("di@example.com", None);
    let f = env.put(&acct, "/r.txt", b"revocation test");
    let ds = env.connect(&key, "c1", &acct).await;
    let (s, _) = env.sync_ids(&key, "c1", ds, &[&f]).await;
    assert_eq!(s, 200);
    let files = env
        .wait_files(&key, "c1", "ready", |x| ready(x, "r.txt"))
        .await;
    let id = files[0]["id"].clone();
    // the user revokes the app at Dropbox
    let creds = env.store.dropbox_credentials(ds).unwrap().unwrap();
    let r = env
        .http
        .post(format!("{}/2/auth/token/revoke", env.emu.base_url()))
        .bearer_auth(&creds.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = env
        .post(&key, "c1", "/resync_file", json!({"file_id": id}))
        .await;
    assert_eq!(s, 200, "{v}");
    let files = env
        .wait_files(&key, "c1", "sync error", |x| {
            x.iter().any(|f| f["sync_status"] == "SYNC_ERROR")
        })
        .await;
    assert!(
        files[0]["sync_error_message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{files:?}"
    );
    let ds_row = env.store.data_source_by_id(ds).unwrap().unwrap();
    assert!(ds_row.revoked_access);
    env.wait_hooks(|h| count_type(h, "REVOKE") == 1 && count_type(h, "FILE_ERROR") >= 1)
        .await;
    // a revoked source refuses new selections
    let (s, _) = env.sync_ids(&key, "c1", ds, &[&f]).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn rate_limits_and_server_errors_honour_retry_after() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("ed@example.com", None);
    let f = env.put(&acct, "/slow.txt", b"patience is a virtue");
    let ds = env.connect(&key, "c1", &acct).await;
    // more 429s than the client retries by itself: the file waits RATE_LIMITED, then succeeds
    env.fault("files/download", 429, 6, Some(1));
    let t0 = Instant::now();
    let (s, _) = env.sync_ids(&key, "c1", ds, &[&f]).await;
    assert_eq!(s, 200);
    env.wait_hooks(|h| count_type(h, "RATE_LIMIT_ERROR") >= 1)
        .await;
    env.wait_files(&key, "c1", "ready after 429s", |x| ready(x, "slow.txt"))
        .await;
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "Retry-After was not honoured: {:?}",
        t0.elapsed()
    );

    // 503 with Retry-After on metadata and download: retried by the client
    let g = env.put(&acct, "/flaky.txt", b"server hiccups");
    env.fault("files/get_metadata", 503, 2, Some(1));
    env.fault("files/download", 500, 2, None);
    let t0 = Instant::now();
    let (s, v) = env.sync_ids(&key, "c1", ds, &[&g]).await;
    assert_eq!(s, 200, "{v}");
    assert!(t0.elapsed() >= Duration::from_secs(2));
    env.wait_files(&key, "c1", "ready after 5xx", |x| ready(x, "flaky.txt"))
        .await;
}

#[tokio::test]
async fn cursor_reset_relists_without_duplicates() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("fi@example.com", None);
    let d = env.folder(&acct, "/R");
    env.put(&acct, "/R/a.txt", b"aardvark");
    env.put(&acct, "/R/b.txt", b"bison");
    let ds = env.connect(&key, "c1", &acct).await;
    env.sync_ids(&key, "c1", ds, &[&d]).await;
    env.wait_files(&key, "c1", "initial", |f| {
        ready(f, "a.txt") && ready(f, "b.txt")
    })
    .await;
    let cursor = env.store.dropbox_cursor(ds).unwrap().unwrap();
    env.emu.core().reset_cursors(&acct).unwrap();
    env.emu.core().delete(&acct, "/R/b.txt").unwrap();
    env.put(&acct, "/R/c.txt", b"caribou");
    let files = env
        .wait_files(&key, "c1", "after reset", |f| {
            ready(f, "c.txt") && !f.iter().any(|x| x["name"] == "b.txt")
        })
        .await;
    assert_ne!(env.store.dropbox_cursor(ds).unwrap().unwrap(), cursor);
    let mut names: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["R", "a.txt", "c.txt"],
        "no duplicates after the relist"
    );
}

#[tokio::test]
async fn business_team_folder_syncs() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("gu@acme.example", Some("Acme"));
    let ds = env.connect(&key, "c1", &acct).await;
    let creds = env.store.dropbox_credentials(ds).unwrap().unwrap();
    let ns = creds
        .root_namespace_id
        .clone()
        .expect("a team account has a root namespace");
    let team_file = env.put(
        &acct,
        &format!("ns:{ns}/Team Docs/plan.txt"),
        b"team wombat plan",
    );
    let meta = env
        .dropbox
        .call(ds, |auth| {
            let c = env.dropbox.client().clone();
            let id = team_file.clone();
            async move { c.get_metadata(&auth, &id).await }
        })
        .await
        .unwrap();
    let path = match meta {
        carbide_dropbox::Metadata::File(f) => f.path_lower.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(path, "/team docs/plan.txt");
    let folder = env
        .dropbox
        .call(ds, |auth| {
            let c = env.dropbox.client().clone();
            async move { c.get_metadata(&auth, "/Team Docs").await }
        })
        .await
        .unwrap();
    let folder_id = match folder {
        carbide_dropbox::Metadata::Folder(f) => f.id,
        other => panic!("{other:?}"),
    };
    let (s, v) = env.sync_ids(&key, "c1", ds, &[&folder_id]).await;
    assert_eq!(s, 200, "{v}");
    env.wait_files(&key, "c1", "team file", |f| ready(f, "plan.txt"))
        .await;
    assert!(!env.search(&key, "c1", "wombat").await.is_empty());
    // a later change in the team folder arrives too
    env.put(
        &acct,
        &format!("ns:{ns}/Team Docs/next.txt"),
        b"team koala notes",
    );
    env.wait_files(&key, "c1", "team change", |f| ready(f, "next.txt"))
        .await;
}

#[tokio::test]
async fn customers_never_see_each_others_files() {
    let env = start().await;
    let key = env.org("acme").await;
    let a = env.account("ha@example.com", None);
    let b = env.account("hb@example.com", None);
    let fa = env.put(&a, "/mine.txt", b"alpha secret lynx");
    let fb = env.put(&b, "/mine.txt", b"bravo secret puma");
    let da = env.connect(&key, "alice", &a).await;
    let db = env.connect(&key, "bob", &b).await;
    assert_eq!(env.sync_ids(&key, "alice", da, &[&fa]).await.0, 200);
    assert_eq!(env.sync_ids(&key, "bob", db, &[&fb]).await.0, 200);
    // alice cannot sync through bob's data source
    assert_eq!(env.sync_ids(&key, "alice", db, &[&fb]).await.0, 404);
    env.wait_files(&key, "alice", "alice", |f| ready(f, "mine.txt"))
        .await;
    env.wait_files(&key, "bob", "bob", |f| ready(f, "mine.txt"))
        .await;
    assert_eq!(env.files(&key, "alice").await.len(), 1);
    assert!(env.search(&key, "alice", "puma").await.is_empty());
    assert!(!env.search(&key, "alice", "lynx").await.is_empty());
    assert!(env.search(&key, "bob", "lynx").await.is_empty());
    // another organization sees nothing
    let other = env.org("other").await;
    assert!(env.files(&other, "alice").await.is_empty());
}

#[tokio::test]
async fn dropbox_webhooks_trigger_polls_and_are_verified() {
    let env = start_with(DropboxSyncConfig {
        track_changes: false,
        ..sync_config(2000)
    })
    .await;
    let key = env.org("acme").await;
    let acct = env.account("io@example.com", None);
    let d = env.folder(&acct, "/W");
    let ds = env.connect(&key, "c1", &acct).await;
    env.sync_ids(&key, "c1", ds, &[&d]).await;
    // challenge echo
    let r = env
        .http
        .get(format!(
            "{}/integrations/dropbox/webhook?challenge=abc123",
            env.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "abc123");
    // bad signature
    let r = env
        .http
        .post(format!("{}/integrations/dropbox/webhook", env.base))
        .header("x-dropbox-signature", "00")
        .body(r#"{"list_folder":{"accounts":[]}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // the emulator signs and delivers real notifications
    let r = env
        .http
        .post(format!("{}/__admin/webhooks", env.emu.base_url()))
        .json(&json!({"app_key": APP_KEY, "url": format!("{}/integrations/dropbox/webhook", env.base)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    env.put(&acct, "/W/hooked.txt", b"delivered by webhook");
    env.wait_files(&key, "c1", "webhook change", |f| ready(f, "hooked.txt"))
        .await;
}

#[tokio::test]
async fn scheduled_sync_repairs_missed_changes() {
    let env = start_with(DropboxSyncConfig {
        track_changes: false,
        ..sync_config(2000)
    })
    .await;
    let key = env.org("acme").await;
    let acct = env.account("jo@example.com", None);
    let d = env.folder(&acct, "/S");
    env.put(&acct, "/S/keep.txt", b"keep me");
    env.put(&acct, "/S/drop.txt", b"drop me");
    let ds = env.connect(&key, "c1", &acct).await;
    env.sync_ids(&key, "c1", ds, &[&d]).await;
    env.wait_files(&key, "c1", "initial", |f| {
        ready(f, "keep.txt") && ready(f, "drop.txt")
    })
    .await;
    // not enabled: nothing is scheduled
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.store.dropbox_schedule(ds).unwrap().0, None);
    let r = env
        .http
        .post(format!("{}/update_users", env.base))
        .header("authorization", format!("Bearer {key}"))
        .json(&json!({"customer_ids": ["c1"], "auto_sync_enabled_sources": ["DROPBOX"], "auto_sync_interval": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let next = loop {
        if let (Some(n), _) = env.store.dropbox_schedule(ds).unwrap() {
            break n;
        }
        assert!(Instant::now() < deadline, "never scheduled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let now = carbide_core::timefmt::now_unix();
    assert!(
        (next - now - 3 * 3600).abs() < 30,
        "3-hour interval: {}",
        next - now
    );
    // changes happen while nothing tracks them (no longpoll, no webhook)
    env.put(&acct, "/S/new.txt", b"missed marmot");
    env.emu.core().delete(&acct, "/S/drop.txt").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.file_named(&key, "c1", "new.txt").await.is_none());
    // the run comes due: a full reconciliation repairs both
    env.store.set_dropbox_next_sync_at(ds, now - 1).unwrap();
    env.wait_files(&key, "c1", "repair", |f| {
        ready(f, "new.txt") && !f.iter().any(|x| x["name"] == "drop.txt")
    })
    .await;
    let (next2, last) = env.store.dropbox_schedule(ds).unwrap();
    assert!(next2.unwrap() > now + 3000);
    assert!(last.is_some());
}

#[tokio::test]
async fn killed_worker_restarts_and_every_file_is_ready_exactly_once() {
    let mut env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("ko@example.com", None);
    let d = env.folder(&acct, "/Many");
    for i in 0..40 {
        env.put(
            &acct,
            &format!("/Many/f{i:03}.txt"),
            format!("document number {i} mongoose").as_bytes(),
        );
    }
    // slow downloads so the kill lands mid-sync
    env.emu
        .core()
        .add_fault(FaultReq {
            route: "files/download".into(),
            status: 200,
            times: Some(1000),
            delay_ms: Some(40),
            ..FaultReq::default()
        })
        .unwrap();
    let ds = env.connect(&key, "c1", &acct).await;
    env.sync_ids(&key, "c1", ds, &[&d]).await;
    env.wait_files(&key, "c1", "some progress", |f| {
        f.iter().filter(|x| x["sync_status"] == "READY").count() >= 5
    })
    .await;
    // kill the Dropbox workers abruptly (no graceful shutdown, leases left behind)
    env.sync_task.take().unwrap().abort();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let partial = env
        .files(&key, "c1")
        .await
        .iter()
        .filter(|x| x["sync_status"] == "READY")
        .count();
    assert!(partial < 41, "the kill came too late to mean anything");
    // a new process picks up after the dead leases expire
    let (_stop2, rx2) = watch::channel(false);
    let sync2 = DropboxSync::new(env.dropbox.clone(), sync_config(2000));
    tokio::spawn(sync2.run(rx2));
    let files = env
        .wait_files(&key, "c1", "all ready", |f| {
            f.iter()
                .filter(|x| x["sync_status"] == "READY" && x["name"] != "Many")
                .count()
                == 40
        })
        .await;
    assert_eq!(files.len(), 41, "exactly once: no duplicates");
    let mut names: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 41);
    let _ = env.dir.path();
}

#[tokio::test]
async fn one_big_account_does_not_starve_another() {
    let env = start().await;
    let key = env.org("acme").await;
    let big = env.account("big@example.com", None);
    let small = env.account("small@example.com", None);
    let d = env.folder(&big, "/Bulk");
    for i in 0..80 {
        env.put(
            &big,
            &format!("/Bulk/b{i:03}.txt"),
            format!("bulk file {i}").as_bytes(),
        );
    }
    let one = env.put(&small, "/one.txt", b"small customer file");
    env.emu
        .core()
        .add_fault(FaultReq {
            route: "files/download".into(),
            status: 200,
            times: Some(1000),
            delay_ms: Some(150),
            ..FaultReq::default()
        })
        .unwrap();
    let dbig = env.connect(&key, "big", &big).await;
    let dsmall = env.connect(&key, "small", &small).await;
    env.sync_ids(&key, "big", dbig, &[&d]).await;
    env.wait_files(&key, "big", "big backlog queued", |f| f.len() >= 81)
        .await;
    env.sync_ids(&key, "small", dsmall, &[&one]).await;
    env.wait_files(&key, "small", "small ready", |f| ready(f, "one.txt"))
        .await;
    let big_ready = env
        .files(&key, "big")
        .await
        .iter()
        .filter(|f| f["sync_status"] == "READY" && f["name"] != "Bulk")
        .count();
    assert!(
        big_ready < 30,
        "the small account waited for the big backlog ({big_ready} of 80 done)"
    );
}

#[tokio::test]
async fn moving_a_watched_folder_keeps_every_record_without_downloads() {
    let env = start().await;
    let key = env.org("acme").await;
    let acct = env.account("mo@example.com", None);
    let d = env.folder(&acct, "/Proj");
    env.put(&acct, "/Proj/a.txt", b"project alpha");
    env.put(&acct, "/Proj/deep/b.txt", b"project beta");
    let ds = env.connect(&key, "c1", &acct).await;
    env.sync_ids(&key, "c1", ds, &[&d]).await;
    let before = env
        .wait_files(&key, "c1", "initial", |f| {
            ready(f, "a.txt") && ready(f, "b.txt")
        })
        .await;
    let downloads = env.sync.downloads_started();
    env.emu
        .core()
        .move_entry(&acct, "/Proj", "/Archive/Proj2024")
        .unwrap();
    let after = env
        .wait_files(&key, "c1", "folder moved", |f| {
            f.iter().any(|x| x["name"] == "Proj2024")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after2 = env.files(&key, "c1").await;
    assert_eq!(after.len(), before.len());
    let ids = |v: &[Value]| {
        let mut x: Vec<i64> = v.iter().map(|f| f["id"].as_i64().unwrap()).collect();
        x.sort();
        x
    };
    assert_eq!(ids(&before), ids(&after2), "same records after the move");
    assert!(
        after2.iter().all(|f| f["sync_status"] == "READY"),
        "{after2:#?}"
    );
    assert_eq!(env.sync.downloads_started(), downloads);
    // files added to the moved folder still sync
    env.put(&acct, "/Archive/Proj2024/c.txt", b"project gamma");
    env.wait_files(&key, "c1", "added after move", |f| ready(f, "c.txt"))
        .await;
}

/// The local embedding model when installed (`make model`), else `None`.
fn local_model_registry() -> Option<Arc<EmbeddingRegistry>> {
    let dir: PathBuf = std::env::var("CARBIDE_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            [
                env!("CARGO_MANIFEST_DIR"),
                "..",
                "..",
                "models",
                "all-MiniLM-L6-v2",
            ]
            .iter()
            .collect()
        });
    if !dir.join("model.safetensors").is_file() {
        return None;
    }
    let cfg = carbide_sync::EmbeddingConfig {
        model_dir: dir,
        models: carbide_sync::embedding::parse_model_mapping("OPENAI=local").unwrap(),
        openai: Default::default(),
        threads: 1,
    };
    Some(Arc::new(EmbeddingRegistry::from_config(&cfg)))
}

/// Benchmark (not a test: `scripts/bench/dropbox-change-latency` runs it): change-to-searchable
/// latency over 100 edits of a small file in a watched folder, with embeddings when the local
/// model is installed. Prints p50/p99.
#[tokio::test]
#[ignore = "benchmark; run scripts/bench/dropbox-change-latency"]
async fn bench_change_to_searchable() {
    let registry = local_model_registry();
    let embed = registry.is_some();
    let env = start_full(
        sync_config(50 * 1024 * 1024),
        registry.unwrap_or_else(|| Arc::new(EmbeddingRegistry::default())),
    )
    .await;
    let key = env.org("bench").await;
    let acct = env.account("bench@example.com", None);
    let d = env.folder(&acct, "/Bench");
    env.put(&acct, "/Bench/note.txt", b"initial text");
    let ds = env.connect(&key, "c1", &acct).await;
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/files/sync",
            json!({"data_source_id": ds, "ids": [d], "skip_embedding_generation": !embed}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    env.wait_files(&key, "c1", "initial", |f| ready(f, "note.txt"))
        .await;
    let n: usize = std::env::var("BENCH_EDITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let word = format!("marker{i}x{}", rand_word(i));
        let t0 = Instant::now();
        env.put(
            &acct,
            "/Bench/note.txt",
            format!("edit number {i} carries the word {word}").as_bytes(),
        );
        loop {
            let hits = env.search(&key, "c1", &word).await;
            if hits.iter().any(|h| h.contains(&word)) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "edit {i} never searchable"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lat.push(t0.elapsed());
    }
    if embed {
        let f = env.file_named(&key, "c1", "note.txt").await.unwrap();
        assert!(
            f["file_statistics"]["num_embeddings"].as_i64().unwrap_or(0) > 0,
            "vectors were made: {f}"
        );
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "dropbox change-to-searchable over {n} edits (embeddings {}): p50 {:?}  p99 {:?}  max {:?}",
        if embed { "on, local MiniLM" } else { "skipped" },
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
}

fn rand_word(i: usize) -> String {
    // distinct, tokenizer-friendly words per edit
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|k| letters[(i * 7 + k * 13 + i / 26) % 26] as char)
        .collect()
}
