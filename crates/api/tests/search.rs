//! `/embeddings` and `/upload_chunks_and_embeddings`: every mode, every filter, validation,
//! tenant isolation, and vector-cache invalidation across two `Store` handles on one database.
//! Uses a deterministic bag-of-words test embedder so semantic results are predictable.

mod common;

use std::sync::Arc;

use carbide_api::embedding_models::EmbeddingModels;
use carbide_api::{ApiConfig, AppState, router};
use carbide_embed::{EmbedError, Embedder};
use carbide_store::Store;
use common::assert_schema;
use serde_json::{Value, json};

const DIMS: usize = 64;

/// Test-only embedder: hashed bag of lower-cased words, L2-normalised.
struct BagOfWords;

fn bow(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 1469598103934665603;
        for b in w.to_lowercase().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
        }
        v[(h % DIMS as u64) as usize] += 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

impl Embedder for BagOfWords {
    fn model_id(&self) -> &str {
        "test/bag-of-words"
    }
    fn dims(&self) -> usize {
        DIMS
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| bow(t)).collect())
    }
    fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(text.split_whitespace().count())
    }
}

struct T {
    base: String,
    store: Store,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn serve_on(store: Store) -> String {
    let models = EmbeddingModels::none().with(&["OPENAI"], Arc::new(BagOfWords));
    let app = router(
        AppState::new(
            store,
            ApiConfig {
                public_url: "http://127.0.0.1".into(),
                max_body_bytes: 8 << 20,
            },
        )
        .with_embedding_models(models),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

async fn start() -> T {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("carbide.db"),
        carbide_core::secrets::MasterKey::generate(),
    )
    .unwrap();
    let base = serve_on(store.clone()).await;
    T {
        base,
        store,
        client: reqwest::Client::new(),
        dir,
    }
}

struct Resp {
    status: u16,
    body: Value,
    mode: String,
    timing: String,
}

impl T {
    fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.dir.path().join("carbide.db")).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    /// Creates a file row for customer `cid` of org `org` (test fixture: the file pipeline is
    /// another module's job). Returns the file id.
    #[allow(clippy::too_many_arguments)]
    fn file(
        &self,
        org: i64,
        cid: &str,
        name: &str,
        parent: Option<i64>,
        tags: Value,
        format: &str,
        source: &str,
        meta: Value,
    ) -> i64 {
        let user = self.store.get_or_create_customer(org, cid).unwrap().id;
        let c = self.db();
        c.execute(
            "INSERT INTO files (organization_id, organization_user_id, parent_id, source,
               external_file_id, name, is_folder, sync_status, file_format, tags, file_metadata,
               created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0, 'READY', ?6, ?7, ?8, 0, 0)",
            rusqlite::params![
                org,
                user,
                parent,
                source,
                name,
                format,
                tags.to_string(),
                meta.to_string()
            ],
        )
        .unwrap();
        c.last_insert_rowid()
    }

    async fn post(&self, key: &str, cid: &str, path: &str, body: Value) -> Resp {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .header("customer-id", cid)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (mode, timing) = (h("x-carbide-search-mode"), h("server-timing"));
        let body: Value = r.json().await.unwrap();
        Resp {
            status,
            body,
            mode,
            timing,
        }
    }

    async fn upload(&self, key: &str, cid: &str, file: i64, chunks: &[&str], vectors: bool) {
        let items: Vec<Value> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if vectors {
                    json!({"chunk_number": i, "chunk": c, "embedding": bow(c)})
                } else {
                    json!({"chunk_number": i, "chunk": c})
                }
            })
            .collect();
        let r = self
            .post(
                key,
                cid,
                "/upload_chunks_and_embeddings",
                json!({"embedding_model": "OPENAI", "overwrite_existing": true,
                       "chunks_only": !vectors,
                       "chunks_and_embeddings": [{"file_id": file, "chunks_and_embeddings": items}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"success": true}));
    }

    async fn search(&self, key: &str, cid: &str, body: Value) -> Resp {
        let r = self.post(key, cid, "/embeddings", body).await;
        if r.status == 200 {
            assert_schema("DocumentResponseList", &r.body);
            for d in r.body["documents"].as_array().unwrap() {
                assert_schema("DocumentResponse", d);
            }
        }
        r
    }
}

fn file_ids(r: &Resp) -> Vec<i64> {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file_id"].as_i64().unwrap())
        .collect()
}

fn contents(r: &Resp) -> Vec<String> {
    r.body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["content"].as_str().unwrap().to_string())
        .collect()
}

/// Three files of one customer: a (cats), b (dogs), c (rust code).
async fn corpus(t: &T, key: &str, org: i64) -> (i64, i64, i64) {
    let a = t.file(
        org,
        "u1",
        "cats.txt",
        None,
        json!({"kind": "pet", "n": ["1", "2"]}),
        "TXT",
        "TEXT",
        json!({"origin": "test"}),
    );
    let b = t.file(
        org,
        "u1",
        "dogs.txt",
        None,
        json!({"kind": "pet"}),
        "TXT",
        "DROPBOX",
        json!({}),
    );
    let c = t.file(
        org,
        "u1",
        "code.md",
        None,
        json!({"kind": "code"}),
        "MD",
        "TEXT",
        json!({}),
    );
    t.upload(
        key,
        "u1",
        a,
        &["cats purr and sleep all day", "a kitten is a young cat"],
        true,
    )
    .await;
    t.upload(
        key,
        "u1",
        b,
        &["dogs bark at the mailman", "puppies chew shoes"],
        true,
    )
    .await;
    t.upload(
        key,
        "u1",
        c,
        &[
            "call parse_pdf_tables on the file",
            "rust borrow checker rules",
        ],
        true,
    )
    .await;
    (a, b, c)
}

#[tokio::test]
async fn every_mode_returns_valid_documents() {
    let t = start().await;
    let (org, key) = t.store.create_organization("acme").unwrap();
    let (a, b, _c) = corpus(&t, &key, org.id).await;

    let r = t
        .search(&key, "u1", json!({"query": "dogs bark", "k": 2}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.mode, "semantic");
    assert!(
        r.timing.contains("embed;dur=") && r.timing.contains("retrieve;dur="),
        "{}",
        r.timing
    );
    assert_eq!(file_ids(&r)[0], b);
    let d = &r.body["documents"][0];
    assert_eq!(d["vector"], Value::Null);
    assert_eq!(d["tags"], Value::Null);
    assert_eq!(d["rank"], json!(1));
    assert_eq!(d["chunk_index"], json!(0));
    assert_eq!(d["source"], json!("dogs.txt"));
    assert_eq!(d["source_type"], json!("DROPBOX"));
    assert!(d["score"].as_f64().unwrap() > 0.5);

    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "kitten", "k": 3, "hybrid_search": true,
            "hybrid_search_tuning_parameters": {"weight_a": 0.0, "weight_b": 1.0}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.mode, "keyword");
    assert!(r.timing.contains("embed;dur=0.000"), "{}", r.timing);
    assert_eq!(contents(&r), vec!["a kitten is a young cat"]);

    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "cats sleep", "k": 4, "hybrid_search": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.mode, "hybrid");
    assert_eq!(file_ids(&r)[0], a);
    let scores: Vec<f64> = r.body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // RRF fusion (carbide extension) and weight_b = 0 (semantic only)
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "cats sleep", "k": 4, "hybrid_search": true, "hybrid_fusion": "rrf"}),
        )
        .await;
    assert_eq!((r.status, r.mode.as_str()), (200, "hybrid"));
    assert_eq!(file_ids(&r)[0], a);
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "cats sleep", "k": 1, "hybrid_search": true,
            "hybrid_search_tuning_parameters": {"weight_a": 1.0, "weight_b": 0.0}}),
        )
        .await;
    assert_eq!((r.status, r.mode.as_str()), (200, "semantic"));

    // identifier expansion through the keyword leg; FTS syntax characters are harmless
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "parse_pdf_tables", "k": 1, "hybrid_search": true,
            "hybrid_search_tuning_parameters": {"weight_a": 0, "weight_b": 1}}),
        )
        .await;
    assert_eq!(contents(&r), vec!["call parse_pdf_tables on the file"]);
    for q in [
        "\"",
        "AND OR NOT",
        "(",
        "*",
        "NEAR(a b",
        "^x:y",
        "-",
        "東京",
    ] {
        let r = t
            .search(
                &key,
                "u1",
                json!({"query": q, "k": 3, "hybrid_search": true}),
            )
            .await;
        assert_eq!(r.status, 200, "query {q:?}: {}", r.body);
    }

    // query_vector is preferred over the text
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "dogs", "query_vector": bow("rust borrow checker rules"), "k": 1}),
        )
        .await;
    assert_eq!(contents(&r), vec!["rust borrow checker rules"]);

    // min_score (carbide extension)
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "dogs bark at the mailman", "k": 6, "min_score": 0.99}),
        )
        .await;
    assert_eq!(contents(&r), vec!["dogs bark at the mailman"]);
}

#[tokio::test]
async fn include_flags() {
    let t = start().await;
    let (org, key) = t.store.create_organization("acme").unwrap();
    let (a, _b, _c) = corpus(&t, &key, org.id).await;
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "kitten young cat", "k": 1, "include_vectors": true,
            "include_tags": true, "include_raw_file": true, "include_file_level_metadata": true}),
        )
        .await;
    let d = &r.body["documents"][0];
    assert_eq!(d["file_id"], json!(a));
    assert_eq!(d["vector"].as_array().unwrap().len(), DIMS);
    assert_eq!(d["tags"]["kind"], json!("pet"));
    assert_eq!(d["content_metadata"]["origin"], json!("test"));
    // a fixture file without stored raw bytes has nothing to link to
    assert_eq!(d["presigned_url"], Value::Null);
    t.db()
        .execute("UPDATE files SET raw_sha256 = 'x' WHERE id = ?1", [a])
        .unwrap();
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "kitten young cat", "k": 1, "include_raw_file": true}),
        )
        .await;
    let url = r.body["documents"][0]["presigned_url"].as_str().unwrap();
    assert!(url.contains(&format!("/files/raw/{a}?expires=")), "{url}");
}

#[tokio::test]
async fn filters_apply_inside_both_legs() {
    let t = start().await;
    let (org, key) = t.store.create_organization("acme").unwrap();
    let o = org.id;
    let folder = t.file(
        o,
        "u1",
        "folder",
        None,
        json!({}),
        "TXT",
        "DROPBOX",
        json!({}),
    );
    t.db()
        .execute("UPDATE files SET is_folder = 1 WHERE id = ?1", [folder])
        .unwrap();
    let sub = t.file(
        o,
        "u1",
        "sub",
        Some(folder),
        json!({}),
        "TXT",
        "DROPBOX",
        json!({}),
    );
    t.db()
        .execute("UPDATE files SET is_folder = 1 WHERE id = ?1", [sub])
        .unwrap();
    let child = t.file(
        o,
        "u1",
        "child.txt",
        Some(folder),
        json!({"team": "red"}),
        "TXT",
        "DROPBOX",
        json!({}),
    );
    let grandchild = t.file(
        o,
        "u1",
        "grand.txt",
        Some(sub),
        json!({"team": "blue", "year": ["2023", "2024"]}),
        "TXT",
        "DROPBOX",
        json!({}),
    );
    let loose = t.file(
        o,
        "u1",
        "loose.txt",
        None,
        json!({"team": "red"}),
        "TXT",
        "TEXT",
        json!({}),
    );
    let image = t.file(
        o,
        "u1",
        "scan.png",
        None,
        json!({}),
        "PNG",
        "TEXT",
        json!({}),
    );
    let ticket = t.file(
        o,
        "u1",
        "ticket",
        None,
        json!({}),
        "TXT",
        "TEXT",
        json!({"file_type_at_source": "TICKET"}),
    );
    // the loose file has many strong matches that would fill a short top-k
    let strong: Vec<String> = (0..30)
        .map(|i| format!("budget budget budget report {i}"))
        .collect();
    let strong: Vec<&str> = strong.iter().map(String::as_str).collect();
    t.upload(&key, "u1", loose, &strong, true).await;
    t.upload(&key, "u1", child, &["budget notes"], true).await;
    t.upload(&key, "u1", grandchild, &["annual budget"], true)
        .await;
    t.upload(&key, "u1", image, &["budget scan"], true).await;
    t.upload(&key, "u1", ticket, &["budget ticket"], true).await;

    for mode in [
        json!({}),
        json!({"hybrid_search": true}),
        json!({"hybrid_search": true, "hybrid_search_tuning_parameters": {"weight_a": 0, "weight_b": 1}}),
    ] {
        let q = |extra: Value| {
            let mut b = json!({"query": "budget", "k": 3});
            for (k, v) in mode
                .as_object()
                .unwrap()
                .iter()
                .chain(extra.as_object().unwrap())
            {
                b[k] = v.clone();
            }
            b
        };
        let ids = |r: &Resp| {
            let mut v = file_ids(r);
            v.sort();
            v.dedup();
            v
        };
        let r = t.search(&key, "u1", q(json!({"file_ids": [child]}))).await;
        assert_eq!(ids(&r), vec![child], "{mode}");
        let r = t
            .search(&key, "u1", q(json!({"parent_file_ids": [folder]})))
            .await;
        assert_eq!(ids(&r), vec![child], "{mode}");
        let r = t
            .search(
                &key,
                "u1",
                q(json!({"parent_file_ids": [folder], "include_all_children": true})),
            )
            .await;
        assert_eq!(ids(&r), vec![child, grandchild], "{mode}");
        let r = t
            .search(&key, "u1", q(json!({"tags": {"team": "red"}, "k": 50})))
            .await;
        assert_eq!(ids(&r), vec![child, loose], "{mode}");
        let r = t
            .search(&key, "u1", q(json!({"tags_v2": {"OR": [{"key": "year", "value": "2024"},
                {"AND": [{"key": "team", "value": "red"}, {"key": "team", "value": "red", "negate": false}, {"key": "x", "value": "1", "negate": true}]}]}, "k": 50})))
            .await;
        assert_eq!(ids(&r), vec![child, grandchild, loose], "{mode}");
        let r = t
            .search(&key, "u1", q(json!({"tags_v2": {"AND": [{"key": "team", "value": ["red", "blue"], "negate": true}]}, "k": 50})))
            .await;
        assert_eq!(ids(&r), vec![ticket], "{mode}: images are not TEXT media");
        // tags is ignored when tags_v2 is given
        let r = t
            .search(&key, "u1", q(json!({"tags": {"team": "nobody"}, "tags_v2": {"AND": [{"key": "team", "value": "blue"}]}})))
            .await;
        assert_eq!(ids(&r), vec![grandchild], "{mode}");
        let r = t
            .search(&key, "u1", q(json!({"media_type": "IMAGE"})))
            .await;
        assert_eq!(ids(&r), vec![image], "{mode}");
        let r = t.search(&key, "u1", q(json!({"k": 100}))).await;
        assert!(!file_ids(&r).contains(&image), "{mode}");
        let r = t
            .search(&key, "u1", q(json!({"media_type": "VIDEO"})))
            .await;
        assert_eq!(ids(&r), Vec::<i64>::new(), "{mode}");
        let r = t
            .search(&key, "u1", q(json!({"file_types_at_source": ["TICKET"]})))
            .await;
        assert_eq!(ids(&r), vec![ticket], "{mode}");
        let r = t.search(&key, "u1", q(json!({"source": "DROPBOX"}))).await;
        assert_eq!(ids(&r), vec![child, grandchild], "{mode}");
        let r = t.search(&key, "u1", q(json!({"file_ids": []}))).await;
        assert_eq!(ids(&r), Vec::<i64>::new(), "{mode}");
    }
}

#[tokio::test]
async fn validation_errors() {
    let t = start().await;
    let (org, key) = t.store.create_organization("acme").unwrap();
    corpus(&t, &key, org.id).await;
    let cases = [
        (json!({"query": "x", "k": 0}), 422, "k"),
        (json!({"query": "", "k": 1}), 422, "query"),
        (json!({"k": 1}), 422, "query"),
        (json!({"query": "x"}), 422, "k"),
        (json!({"query": "x", "k": "many"}), 422, "k"),
        (
            json!({"query": "x", "k": 1, "hybrid_search": true, "hybrid_search_tuning_parameters": {"weight_a": 0.5, "weight_b": 0.4}}),
            422,
            "hybrid_search_tuning_parameters",
        ),
        (
            json!({"query": "x", "k": 1, "hybrid_search_tuning_parameters": {"weight_a": 0.5}}),
            422,
            "hybrid_search_tuning_parameters",
        ),
        (
            json!({"query": "x", "k": 1, "tags_v2": {"key": "a", "value": "b"}}),
            422,
            "tags_v2",
        ),
        (
            json!({"query": "x", "k": 1, "tags_v2": {"AND": [{"OR": [{"AND": [{"OR": [{"key": "a", "value": 1}]}]}]}]}}),
            422,
            "tags_v2",
        ),
        (
            json!({"query": "x", "k": 1, "media_type": "SMELL"}),
            422,
            "media_type",
        ),
        (
            json!({"query": "x", "k": 1, "embedding_model": "NOPE"}),
            422,
            "embedding_model",
        ),
        (
            json!({"query": "x", "k": 1, "file_types_at_source": ["PAGE"]}),
            422,
            "file_types_at_source",
        ),
        (
            json!({"query": "x", "k": 1, "query_vector": []}),
            422,
            "query_vector",
        ),
    ];
    for (body, status, field) in cases {
        let r = t.search(&key, "u1", body.clone()).await;
        assert_eq!(r.status, status, "{body} → {}", r.body);
        assert_eq!(
            r.body["detail"][0]["loc"][1],
            json!(field),
            "{body} → {}",
            r.body
        );
    }
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "x", "k": 1, "embedding_model": "COHERE_MULTILINGUAL_V3"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("COHERE_MULTILINGUAL_V3 is not configured"),
        "{}",
        r.body
    );
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "x", "k": 1, "query_vector": [0.1, 0.2]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("dimensions"));
    let r = t
        .search(
            &key,
            "u1",
            json!({"query": "x", "k": 1, "rerank": {"model": "PONGO_RERANKER"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    // upload validation
    let r = t
        .post(&key, "u1", "/upload_chunks_and_embeddings", json!({"embedding_model": "OPENAI",
            "chunks_and_embeddings": [{"file_id": 999999, "chunks_and_embeddings": [{"chunk_number": 0, "chunk": "x", "embedding": bow("x")}]}]}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let f = t.file(
        org.id,
        "u1",
        "v.txt",
        None,
        json!({}),
        "TXT",
        "TEXT",
        json!({}),
    );
    let r = t
        .post(&key, "u1", "/upload_chunks_and_embeddings", json!({"embedding_model": "OPENAI",
            "chunks_and_embeddings": [{"file_id": f, "chunks_and_embeddings": [{"chunk_number": 0, "chunk": "x", "embedding": [1.0, 2.0]}]}]}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = t
        .post(
            &key,
            "u1",
            "/upload_chunks_and_embeddings",
            json!({"embedding_model": "SOLAR_1_MINI",
            "chunks_and_embeddings": []}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // no overwrite: an existing chunk number conflicts; a missing embedding is computed
    let up = |n: i64| {
        json!({"embedding_model": "OPENAI", "chunks_and_embeddings": [{"file_id": f,
        "chunks_and_embeddings": [{"chunk_number": n, "chunk": "zebra stripes"}]}]})
    };
    assert_eq!(
        t.post(&key, "u1", "/upload_chunks_and_embeddings", up(0))
            .await
            .status,
        200
    );
    assert_eq!(
        t.post(&key, "u1", "/upload_chunks_and_embeddings", up(0))
            .await
            .status,
        400
    );
    let r = t
        .search(&key, "u1", json!({"query": "zebra stripes", "k": 1}))
        .await;
    assert_eq!(contents(&r), vec!["zebra stripes"]);
    assert!(r.body["documents"][0]["score"].as_f64().unwrap() > 0.99);
}

#[tokio::test]
async fn keyword_only_when_no_vectors() {
    let t = start().await;
    let (org, key) = t.store.create_organization("acme").unwrap();
    let f = t.file(
        org.id,
        "u1",
        "a.txt",
        None,
        json!({}),
        "TXT",
        "TEXT",
        json!({}),
    );
    t.upload(&key, "u1", f, &["alpha beta", "gamma delta"], false)
        .await;
    for body in [
        json!({"query": "gamma", "k": 5}),
        json!({"query": "gamma", "k": 5, "hybrid_search": true}),
    ] {
        let r = t.search(&key, "u1", body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.mode, "keyword");
        assert_eq!(contents(&r), vec!["gamma delta"]);
    }
    // a customer with nothing at all gets an empty list
    let r = t
        .search(&key, "nobody", json!({"query": "gamma", "k": 5}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"documents": []})));
}

#[tokio::test]
async fn tenants_are_isolated() {
    let t = start().await;
    let mut all = Vec::new();
    for o in ["org1", "org2"] {
        let (org, key) = t.store.create_organization(o).unwrap();
        for c in ["alice", "bob"] {
            let f = t.file(
                org.id,
                c,
                "shared.txt",
                None,
                json!({"owner": c}),
                "TXT",
                "TEXT",
                json!({}),
            );
            t.upload(
                &key,
                c,
                f,
                &[&format!("secret plans of {o} {c}"), "secret plans"],
                true,
            )
            .await;
            all.push((key.clone(), c, f));
        }
    }
    for (key, c, f) in &all {
        for body in [
            json!({"query": "secret plans", "k": 50}),
            json!({"query": "secret plans", "k": 50, "hybrid_search": true}),
            json!({"query": "secret plans", "k": 50, "hybrid_search": true, "hybrid_search_tuning_parameters": {"weight_a": 0, "weight_b": 1}}),
        ] {
            let r = t.search(key, c, body).await;
            assert_eq!(r.status, 200);
            let ids = file_ids(&r);
            assert_eq!(ids.len(), 2, "{}", r.body);
            assert!(ids.iter().all(|i| i == f), "{c}: {ids:?}");
        }
        // naming another tenant's files filters to nothing
        let others: Vec<i64> = all.iter().map(|x| x.2).filter(|x| x != f).collect();
        let r = t
            .search(
                key,
                c,
                json!({"query": "secret", "k": 50, "file_ids": others}),
            )
            .await;
        assert_eq!(file_ids(&r), Vec::<i64>::new());
        // and writing into them is refused
        let r = t
            .post(key, c, "/upload_chunks_and_embeddings", json!({"embedding_model": "OPENAI",
                "chunks_and_embeddings": [{"file_id": others[0], "chunks_and_embeddings": [{"chunk_number": 9, "chunk": "x", "embedding": bow("x")}]}]}))
            .await;
        assert_eq!(r.status, 404);
    }
}

#[tokio::test]
async fn cache_follows_writes_of_another_handle() {
    let t = start().await;
    let (org, key) = t.store.create_organization("acme").unwrap();
    let f = t.file(
        org.id,
        "u1",
        "a.txt",
        None,
        json!({}),
        "TXT",
        "TEXT",
        json!({}),
    );
    t.upload(&key, "u1", f, &["old apples"], true).await;
    let r = t
        .search(&key, "u1", json!({"query": "apples", "k": 5}))
        .await;
    assert_eq!(contents(&r), vec!["old apples"]);

    // a second process: its own Store handle (own cache) on the same database file
    let other = Store::open(
        &t.dir.path().join("carbide.db"),
        carbide_core::secrets::MasterKey::generate(),
    )
    .unwrap();
    let base2 = serve_on(other.clone()).await;
    let t2 = T {
        base: base2,
        store: other,
        client: reqwest::Client::new(),
        dir: tempfile::tempdir().unwrap(),
    };
    // warm the second cache, then write through the first process
    let r = t2
        .search(&key, "u1", json!({"query": "apples", "k": 5}))
        .await;
    assert_eq!(contents(&r), vec!["old apples"]);
    t.upload(&key, "u1", f, &["new apples", "pears"], true)
        .await;
    for srv in [&t, &t2] {
        let r = srv
            .search(&key, "u1", json!({"query": "apples", "k": 5}))
            .await;
        assert_eq!(
            contents(&r),
            vec!["new apples", "pears"],
            "semantic sees the overwrite"
        );
        let kw = json!({"query": "old pears", "k": 5, "hybrid_search": true,
                        "hybrid_search_tuning_parameters": {"weight_a": 0.0, "weight_b": 1.0}});
        let r = srv.search(&key, "u1", kw).await;
        assert_eq!(
            contents(&r),
            vec!["pears"],
            "keyword index sees the overwrite"
        );
    }
    // deletion through SQL (as the file pipeline does) reaches the other cache via chunk_log
    let c = t.db();
    c.execute("DELETE FROM chunks WHERE text = 'pears'", [])
        .unwrap();
    c.execute(
        "UPDATE index_generations SET generation = generation + 1",
        [],
    )
    .unwrap();
    let r = t2
        .search(&key, "u1", json!({"query": "pears", "k": 5}))
        .await;
    assert_eq!(contents(&r), vec!["new apples"]);
    let kw = json!({"query": "pears", "k": 5, "hybrid_search": true,
                    "hybrid_search_tuning_parameters": {"weight_a": 0.0, "weight_b": 1.0}});
    let r = t2.search(&key, "u1", kw).await;
    assert!(contents(&r).is_empty(), "keyword index sees the delete");
    assert!(t2.store.vector_cache_bytes() > 0);
    assert!(t2.store.keyword_cache_bytes() > 0);
}

#[tokio::test]
async fn keyword_engines_agree_and_stay_per_customer() {
    use carbide_store::{FileSet, KeywordEngine};
    let t = start().await;
    let (org, key) = t.store.create_organization("acme").unwrap();
    let docs = [
        "the mitochondria is the powerhouse of the cell",
        "cells divide by mitosis; mitotic spindles form",
        "a review of spindle checkpoint signalling in dividing cells",
        "unrelated text about the weather in Lisbon",
    ];
    let mut ids = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let f = t.file(
            org.id,
            "u1",
            &format!("d{i}.txt"),
            None,
            json!({}),
            "TXT",
            "TEXT",
            json!({}),
        );
        t.upload(&key, "u1", f, &[d], false).await;
        ids.push(f);
    }
    // another customer's chunks must not change u1's ranking or leak into it
    let g = t.file(
        org.id,
        "u2",
        "other.txt",
        None,
        json!({}),
        "TXT",
        "TEXT",
        json!({}),
    );
    t.upload(&key, "u2", g, &["spindle spindle spindle cells"], false)
        .await;
    let user = t.store.get_or_create_customer(org.id, "u1").unwrap().id;
    for q in ["dividing cells spindle", "Mitochondria", "Lisbon weather"] {
        let mem = t
            .store
            .keyword_search_with(KeywordEngine::Memory, org.id, user, q, &FileSet::All, 10)
            .unwrap();
        let fts = t
            .store
            .keyword_search_with(KeywordEngine::Fts5, org.id, user, q, &FileSet::All, 10)
            .unwrap();
        let files =
            |h: &[carbide_store::KeywordHit]| h.iter().map(|x| x.file_id).collect::<Vec<_>>();
        assert!(!mem.is_empty(), "{q}");
        assert!(files(&mem).iter().all(|f| ids.contains(f)), "{q}: {mem:?}");
        assert_eq!(files(&mem)[0], files(&fts)[0], "{q}: best hit differs");
        let mut a = files(&mem);
        let mut b = files(&fts);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{q}: matched sets differ");
    }
}
