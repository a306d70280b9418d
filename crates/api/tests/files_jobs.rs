//! The file pipeline's durability and side channels end to end: a job that survives a
//! restart (worker gone mid-file or before starting, database reopened, a new worker) ends
//! READY exactly once without duplicate chunks; FILES_CREATED / FILE_SYNCING / FILE_READY /
//! FILE_ERROR reach a local receiver through the outbox; `/upload_file_from_url` fetches and
//! refuses loopback, private and link-local addresses unless allowed; a `chunk_size` above the
//! model window is embedded in windows, each stored, nothing truncated.
//!
//! Harness and prerequisites (the `carbide-extract` binary): see `files_common`.

mod files_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use carbide_core::secrets::MasterKey;
use carbide_store::JOB_PROCESS_FILE;
use carbide_sync::{WebhookWorkerConfig, run_webhook_worker_with};
use files_common::{Env, EnvOptions, start};
use serde_json::{Value, json};

// ---------------------------------------------------------------- webhook receiver

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Value>>>);

async fn receive(State(r): State<Received>, body: String) -> StatusCode {
    let outer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let inner = outer["payload"]
        .as_str()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    r.0.lock().unwrap().push(inner);
    StatusCode::OK
}

/// A local axum receiver; returns its URL and the recorded inner payloads.
async fn receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rec = Received::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(rec.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rec)
}

fn webhook_worker(env: &Env) -> tokio::task::JoinHandle<()> {
    let cfg = WebhookWorkerConfig {
        poll_interval: Duration::from_millis(50),
        base_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        ..WebhookWorkerConfig::default()
    };
    tokio::spawn(run_webhook_worker_with(
        env.store.clone(),
        reqwest::Client::new(),
        env.stop.subscribe(),
        cfg,
    ))
}

impl Received {
    /// (webhook_type, object id(s) as strings) of every delivery so far.
    fn events(&self) -> Vec<(String, Vec<String>, Value)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|p| {
                let ids = match &p["obj"]["object_id"] {
                    Value::Array(a) => a
                        .iter()
                        .map(|v| v.as_str().unwrap_or_default().to_string())
                        .collect(),
                    Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                };
                (
                    p["webhook_type"].as_str().unwrap_or_default().to_string(),
                    ids,
                    p.clone(),
                )
            })
            .collect()
    }
    fn count(&self, kind: &str, id: i64) -> usize {
        self.events()
            .iter()
            .filter(|(k, ids, _)| k == kind && ids.contains(&id.to_string()))
            .count()
    }
    async fn wait(&self, kind: &str, id: i64) -> Value {
        for _ in 0..600 {
            if let Some((.., p)) = self
                .events()
                .into_iter()
                .find(|(k, ids, _)| k == kind && ids.contains(&id.to_string()))
            {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no {kind} webhook for file {id}; got {:?}",
            self.events()
                .iter()
                .map(|(k, i, _)| (k.clone(), i.clone()))
                .collect::<Vec<_>>()
        );
    }
}

fn words(n: usize) -> String {
    (0..n)
        .map(|i| format!("lexeme{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Chunk indexes are 0..n, each once, and together the chunks contain every `lexeme{i}`.
fn assert_chunks_cover(chunks: &[Value], n_words: usize) {
    let idx: Vec<i64> = chunks
        .iter()
        .map(|c| c["chunk_index"].as_i64().unwrap())
        .collect();
    assert_eq!(
        idx,
        (0..chunks.len() as i64).collect::<Vec<_>>(),
        "chunk indexes"
    );
    let joined: String = chunks
        .iter()
        .map(|c| c["source_content"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    for i in [0, n_words / 2, n_words - 1] {
        assert!(
            joined.split_whitespace().any(|w| w == format!("lexeme{i}")),
            "lexeme{i} missing"
        );
    }
}

// ---------------------------------------------------------------- restart

/// Process 1 takes uploads but has no worker; one job is claimed by a worker that then
/// "dies" mid-file (file left SYNCING, short lease), the other was never started. Process 1
/// shuts down; process 2 reopens the database and runs a worker: both files end READY, with
/// one FILE_READY each, chunk indexes 0..n once, and no job left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_survives_restart_ready_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("carbide.db");
    let mk = MasterKey::generate();
    let (hook_url, rec) = receiver().await;

    let p1 = Env::open(
        &db,
        mk.clone(),
        EnvOptions {
            worker: false,
            ..EnvOptions::default()
        },
    )
    .await;
    let key = p1.key("acme");
    let (s, _) = p1
        .org_post(&key, "/add_webhook", json!({"url": hook_url}))
        .await;
    assert_eq!(s, 200);
    let skip = !p1.have_model;
    let mut ids = Vec::new();
    for name in ["mid.txt", "before.txt"] {
        let (s, f) = p1
            .post(
                &key,
                "u",
                "/upload_text",
                json!({"contents": words(600), "name": name, "chunk_size": 100,
                       "skip_embedding_generation": skip}),
            )
            .await;
        assert_eq!(s, 200, "{f}");
        assert_eq!(f["sync_status"], "QUEUED_FOR_SYNC");
        ids.push(f["id"].as_i64().unwrap());
    }
    let (mid, before) = (ids[0], ids[1]);
    // a worker claims the first job with a 2 s lease, starts the file, and is never heard of again
    let claimed = p1
        .store
        .claim_jobs("dead-worker", &[JOB_PROCESS_FILE], 2, 1)
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].file_id, Some(mid));
    p1.store.mark_file_syncing(mid).unwrap().unwrap();
    assert_eq!(p1.file(&key, "u", mid).await["sync_status"], "SYNCING");
    assert_eq!(
        p1.file(&key, "u", before).await["sync_status"],
        "QUEUED_FOR_SYNC"
    );
    assert_eq!(p1.store.pending_jobs().unwrap(), 2);
    p1.shutdown().await;

    // process 2: fresh store handle, API, file worker and webhook worker
    let p2 = Env::open(&db, mk, EnvOptions::default()).await;
    let hooks = webhook_worker(&p2);
    for id in [mid, before] {
        let f = p2.wait_terminal(&key, "u", id).await;
        assert_eq!(f["sync_status"], "READY", "{f}");
        let chunks = p2.chunks(&key, "u", id).await;
        assert!(
            chunks.len() >= 5,
            "600 words in 100-token chunks: {}",
            chunks.len()
        );
        assert_chunks_cover(&chunks, 600);
        if !skip {
            assert!(chunks.iter().all(|c| c["embedding"].is_array()));
        }
        rec.wait("FILE_READY", id).await;
    }
    // the dead worker's late acknowledgement cannot remove anything
    p2.store.complete_job(claimed[0].id, "dead-worker").unwrap();
    assert_eq!(p2.store.pending_jobs().unwrap(), 0);
    // give a duplicate the time to show up, then count
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in [mid, before] {
        assert_eq!(rec.count("FILE_READY", id), 1, "FILE_READY for {id}");
        assert_eq!(rec.count("FILES_CREATED", id), 1, "FILES_CREATED for {id}");
    }
    let org = p2
        .store
        .get_customer(1, "u")
        .unwrap()
        .unwrap()
        .organization_id;
    let ready_rows = p2
        .store
        .outbox_rows(org)
        .unwrap()
        .into_iter()
        .filter(|r| r.webhook_type == "FILE_READY")
        .count();
    assert_eq!(ready_rows, 2, "one FILE_READY outbox row per file");
    p2.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(60), hooks).await;
}

// ---------------------------------------------------------------- webhooks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_webhooks_reach_a_receiver() {
    let env = start(50 << 20).await;
    let (hook_url, rec) = receiver().await;
    let key = env.key("acme");
    let (s, _) = env
        .org_post(&key, "/add_webhook", json!({"url": hook_url}))
        .await;
    assert_eq!(s, 200);
    let hooks = webhook_worker(&env);
    let skip = !env.have_model;
    let (s, good) = env
        .post(
            &key,
            "alice",
            "/upload_text",
            json!({"contents": "Webhooks tell the application when a file is ready.",
                   "name": "good.txt", "skip_embedding_generation": skip}),
        )
        .await;
    assert_eq!(s, 200, "{good}");
    let good = good["id"].as_i64().unwrap();
    let (s, bad) = env
        .upload(
            &key,
            "alice",
            "broken.pdf",
            b"%PDF-1.7\n garbage without objects".to_vec(),
            "skip_embedding_generation=true",
        )
        .await;
    assert_eq!(s, 200, "{bad}");
    let bad = bad["id"].as_i64().unwrap();
    assert_eq!(
        env.wait_terminal(&key, "alice", good).await["sync_status"],
        "READY"
    );
    let f = env.wait_terminal(&key, "alice", bad).await;
    assert_eq!(f["sync_status"], "SYNC_ERROR");
    let reason = f["sync_error_message"].as_str().unwrap().to_string();

    for id in [good, bad] {
        let p = rec.wait("FILES_CREATED", id).await;
        assert_eq!(p["obj"]["object_type"], "FILE_LIST", "{p}");
        assert_eq!(p["customer_id"], "alice");
        let p = rec.wait("FILE_SYNCING", id).await;
        assert_eq!(p["obj"]["object_type"], "FILE", "{p}");
    }
    let p = rec.wait("FILE_READY", good).await;
    assert_eq!(p["obj"]["object_id"], good.to_string());
    assert_eq!(p["customer_id"], "alice");
    let p = rec.wait("FILE_ERROR", bad).await;
    assert!(
        p["obj"]["additional_information"]
            .to_string()
            .contains(&reason[..reason.len().min(30)]),
        "FILE_ERROR should carry the reason {reason:?}: {p}"
    );
    assert_eq!(rec.count("FILE_READY", bad), 0);
    assert_eq!(rec.count("FILE_ERROR", good), 0);
    // each event was delivered once; they were enqueued in order created → syncing → ready
    // (deliveries run concurrently, so the arrival order is not asserted)
    for kind in ["FILES_CREATED", "FILE_SYNCING", "FILE_READY"] {
        assert_eq!(rec.count(kind, good), 1, "{kind}");
    }
    let org = env
        .store
        .get_customer(1, "alice")
        .unwrap()
        .unwrap()
        .organization_id;
    let mut rows = env.store.outbox_rows(org).unwrap();
    rows.sort_by_key(|r| r.id);
    let order: Vec<String> = rows
        .into_iter()
        .filter(|r| {
            let p: Value = serde_json::from_str(&r.payload).unwrap();
            p["obj"]["object_id"] == json!(good.to_string())
                || p["obj"]["object_id"] == json!([good.to_string()])
        })
        .map(|r| r.webhook_type)
        .collect();
    assert_eq!(order, ["FILES_CREATED", "FILE_SYNCING", "FILE_READY"]);
    env.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(60), hooks).await;
}

// ---------------------------------------------------------------- upload from URL

async fn doc_server() -> std::net::SocketAddr {
    use axum::response::Redirect;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/docs/notes.txt",
            get(|| async { "Fetched from a URL: the heron stands in the reeds." }),
        )
        .route(
            "/moved",
            get(|| async { Redirect::permanent("/docs/notes.txt") }),
        )
        .route("/big.txt", get(|| async { "x".repeat(200_000) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_from_url_fetches_and_refuses_private_addresses() {
    let docs = doc_server().await;
    // allowed (tests only): fetch, follow a redirect, process
    let mut o = EnvOptions::default();
    o.files.max_file_bytes = 100_000;
    let open = Env::start_with(o).await;
    let key = open.key("acme");
    let (s, f) = open
        .post(
            &key,
            "u",
            "/upload_file_from_url",
            json!({"url": format!("http://{docs}/moved"), "skip_embedding_generation": true}),
        )
        .await;
    assert_eq!(s, 200, "{f}");
    assert_eq!(f["name"], "notes.txt", "name from the final URL: {f}");
    assert_eq!(f["external_url"], format!("http://{docs}/moved"));
    let id = f["id"].as_i64().unwrap();
    let f = open.wait_terminal(&key, "u", id).await;
    assert_eq!(f["sync_status"], "READY", "{f}");
    let chunks = open.chunks(&key, "u", id).await;
    assert!(
        chunks[0]["source_content"]
            .as_str()
            .unwrap()
            .contains("heron")
    );
    // a 404 and an oversize body are 400s, not files
    for (path, want) in [("/nope", "HTTP 404"), ("/big.txt", "limit")] {
        let (s, v) = open
            .post(
                &key,
                "u",
                "/upload_file_from_url",
                json!({"url": format!("http://{docs}{path}")}),
            )
            .await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(want), "{path}: {v}");
    }
    let (_, v) = open.post(&key, "u", "/user_files_v2", json!({})).await;
    assert_eq!(v["count"], 1);
    open.shutdown().await;

    // the default: loopback, private, link-local and unspecified targets are refused before
    // any connection (also when reached by name)
    let mut o = EnvOptions::default();
    o.files.allow_private_urls = false;
    let closed = Env::start_with(o).await;
    let key = closed.key("acme");
    let port = docs.port();
    for url in [
        format!("http://127.0.0.1:{port}/docs/notes.txt"),
        format!("http://127.0.0.1:{port}/moved"),
        format!("http://localhost:{port}/docs/notes.txt"),
        format!("http://[::1]:{port}/docs/notes.txt"),
        "http://10.0.0.1/file.pdf".to_string(),
        "http://192.168.1.20/file.pdf".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://0.0.0.0/x".to_string(),
        "http://[::ffff:127.0.0.1]/x".to_string(),
    ] {
        let (s, v) = closed
            .post(&key, "u", "/upload_file_from_url", json!({"url": url}))
            .await;
        assert_eq!(s, 400, "{url}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains("refusing to fetch"),
            "{url}: {v}"
        );
    }
    let (s, v) = closed
        .post(
            &key,
            "u",
            "/upload_file_from_url",
            json!({"url": "file:///etc/passwd"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (_, v) = closed.post(&key, "u", "/user_files_v2", json!({})).await;
    assert_eq!(v["count"], 0, "no file record for a refused URL");
    closed.shutdown().await;
}

// ---------------------------------------------------------------- windowed embedding

fn blob(b: &[u8]) -> Vec<f32> {
    carbide_store::blob_to_vector(b)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (na * nb)
}

/// `chunk_size` 700 > MiniLM's 254-token window: every chunk keeps all of its text, each of its
/// windows is embedded and stored in `chunk_vectors` (equal to embedding that window alone),
/// and `chunks.vector` is their normalised mean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_above_model_window_is_embedded_in_windows() {
    let env = start(50 << 20).await;
    if !env.have_model {
        eprintln!("embedding model absent: windowed embedding not testable (run make model)");
        env.shutdown().await;
        return;
    }
    let key = env.key("acme");
    let n = 900;
    let (s, f) = env
        .post(
            &key,
            "u",
            "/upload_text",
            json!({"contents": words(n), "name": "long.txt", "chunk_size": 700, "chunk_overlap": 0}),
        )
        .await;
    assert_eq!(s, 200, "{f}");
    let id = f["id"].as_i64().unwrap();
    let f = env.wait_terminal(&key, "u", id).await;
    assert_eq!(f["sync_status"], "READY", "{f}");
    assert_eq!(f["chunk_size"], 700);
    let chunks = env.chunks(&key, "u", id).await;
    assert_chunks_cover(&chunks, n);

    let provider = env.registry.get("OPENAI").unwrap();
    let max = provider.max_tokens();
    assert!(max < 700, "model window {max}");
    let counter = provider.token_counter();
    let db = rusqlite::Connection::open(&env.db_path).unwrap();
    let mut windowed = 0;
    for c in &chunks {
        let text = c["source_content"].as_str().unwrap();
        let tokens = counter.token_spans(text).len();
        assert!(tokens <= 700, "chunk over chunk_size: {tokens}");
        let (chunk_id, vector): (i64, Vec<u8>) = db
            .query_row(
                "SELECT id, vector FROM chunks WHERE file_id = ?1 AND chunk_index = ?2",
                rusqlite::params![id, c["chunk_index"].as_i64().unwrap()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let mut st = db
            .prepare("SELECT window, vector FROM chunk_vectors WHERE chunk_id = ?1 ORDER BY window")
            .unwrap();
        let stored: BTreeMap<i64, Vec<f32>> = st
            .query_map([chunk_id], |r| {
                Ok((r.get(0)?, blob(&r.get::<_, Vec<u8>>(1)?)))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = carbide_sync::files::windows(text, counter.as_ref(), max);
        if tokens <= max {
            assert_eq!(expected.len(), 1);
            assert!(
                stored.is_empty(),
                "a chunk within the window has no window rows"
            );
            continue;
        }
        windowed += 1;
        assert_eq!(
            stored.len(),
            expected.len(),
            "one stored vector per window ({tokens} tokens, window {max})"
        );
        assert_eq!(
            c["content_metadata"]["windows"].as_u64(),
            Some(expected.len() as u64)
        );
        // nothing truncated: the windows cover the chunk's last word
        let last = text.split_whitespace().last().unwrap();
        assert!(expected.last().unwrap().ends_with(last));
        let fresh = provider.embedder().embed(&expected).unwrap();
        let mut mean = vec![0f32; fresh[0].len()];
        for (w, v) in stored.values().enumerate() {
            assert!(
                cosine(v, &fresh[w]) > 0.9999,
                "window {w} vector differs from embedding the window alone"
            );
            for (m, x) in mean.iter_mut().zip(v) {
                *m += x;
            }
        }
        let vector = blob(&vector);
        assert!(
            cosine(&vector, &mean) > 0.9999,
            "chunk vector = mean of windows"
        );
        let api_vec: Vec<f32> = c["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert!(cosine(&api_vec, &vector) > 0.9999);
    }
    assert!(windowed >= 1, "no chunk exceeded the model window");
    drop((counter, db));
    env.shutdown().await;
}
