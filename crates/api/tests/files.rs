//! File endpoints end to end: upload → durable job → sandboxed parse → chunks (+ vectors when
//! the model is installed) → READY; parsed/raw signed downloads; tags; tenancy; delete cascade.
//!
//! Harness and prerequisites (the `carbide-extract` binary): see `files_common`.

mod files_common;

use std::path::PathBuf;

use files_common::{Env, corpus, start};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_text_ready_chunks_download_tags_tenancy_delete() {
    let env = start(50 << 20).await;
    let key = env.key("acme");
    let skip = !env.have_model;
    let (s, f) = env
        .post(
            &key,
            "alice",
            "/upload_text",
            json!({"contents": "The quarterly aurora report.\n\nSecond paragraph about glaciers.",
                   "name": "report.txt", "skip_embedding_generation": skip}),
        )
        .await;
    assert_eq!(s, 200, "{f}");
    assert_eq!(f["sync_status"], "QUEUED_FOR_SYNC");
    let id = f["id"].as_i64().unwrap();
    let f = env.wait_terminal(&key, "alice", id).await;
    assert_eq!(f["sync_status"], "READY", "{f}");
    assert!(f["file_statistics"]["num_characters"].as_i64().unwrap() > 20);

    // chunks (+ vectors when the model is there)
    let (s, v) = env
        .post(
            &key,
            "alice",
            "/text_chunks",
            json!({"filters": {"user_file_id": id}, "include_vectors": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["count"].as_i64().unwrap() >= 1);
    assert!(
        v["results"][0]["source_content"]
            .as_str()
            .unwrap()
            .contains("aurora")
    );
    assert_eq!(v["results"][0]["embedding"].is_array(), !skip);

    // parsed text through the signed link (no auth), tampering refused
    let (s, v) = env.get(&key, "alice", &format!("/parsed_file/{id}")).await;
    assert_eq!(s, 200, "{v}");
    let url = v["presigned_url"].as_str().unwrap().to_string();
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(text.contains("glaciers"));
    let bad = reqwest::get(format!("{url}0")).await.unwrap();
    assert_eq!(bad.status().as_u16(), 403);

    // tags + tags_v2 filter
    let (s, v) = env
        .post(&key, "alice", "/create_user_file_tags",
            json!({"organization_user_file_id": id, "tags": {"team": ["red", "blue"], "year": 2024}}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = env
        .post(&key, "alice", "/user_files_v2",
            json!({"filters": {"tags_v2": {"AND": [{"key": "team", "value": "red"}, {"key": "year", "value": 2024}]}}}))
        .await;
    assert_eq!(v["count"], 1);
    let (_, v) = env
        .post(&key, "alice", "/user_files_v2",
            json!({"filters": {"tags_v2": {"OR": [{"key": "team", "value": "red", "negate": true}]}}}))
        .await;
    assert_eq!(v["count"], 0);

    // another customer sees nothing and cannot touch it
    let (_, v) = env.post(&key, "bob", "/user_files_v2", json!({})).await;
    assert_eq!(v["count"], 0);
    let (s, _) = env.get(&key, "bob", &format!("/raw_file/{id}")).await;
    assert_eq!(s, 404);
    let (s, _) = env
        .post(&key, "bob", "/resync_file", json!({"file_id": id}))
        .await;
    assert_eq!(s, 404);
    env.post(
        &key,
        "bob",
        "/delete_files_v2",
        json!({"filters": {"ids": [id]}}),
    )
    .await;
    let (_, v) = env.post(&key, "alice", "/user_files_v2", json!({})).await;
    assert_eq!(v["count"], 1);

    // an empty delete filter is refused; a real one cascades chunks and fts rows
    let (s, _) = env.post(&key, "alice", "/delete_files_v2", json!({})).await;
    assert_eq!(s, 400);
    let cust = env.store.get_customer(1, "alice").unwrap().unwrap();
    let filter = carbide_store::FileFilter {
        ids: Some(vec![id]),
        ..Default::default()
    };
    let (chunks, _) = env
        .store
        .list_chunks(
            cust.organization_id,
            cust.id,
            &filter,
            None,
            carbide_store::Page::default(),
            carbide_store::ChunkOrder::ChunkIndex,
            carbide_store::Dir::Asc,
            false,
        )
        .unwrap();
    let ids: Vec<i64> = chunks.iter().map(|c| c.id).collect();
    assert!(env.store.fts_rows_for_chunks(&ids).unwrap() > 0);
    let (s, _) = env
        .post(
            &key,
            "alice",
            "/delete_files_v2",
            json!({"filters": {"ids": [id]}, "send_webhook": true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(env.store.fts_rows_for_chunks(&ids).unwrap(), 0);
    let (_, v) = env.post(&key, "alice", "/user_files_v2", json!({})).await;
    assert_eq!(v["count"], 0);
    let _ = env.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_broken_and_oversize() {
    let env = start(3 << 20).await;
    let key = env.key("acme");
    let q = if env.have_model {
        ""
    } else {
        "skip_embedding_generation=true"
    };
    let mut ids = Vec::new();
    for rel in ["pdf", "docx", "pptx", "xlsx", "rtf", "text"] {
        let dir: PathBuf = [
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
        let Some(entry) = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.metadata()
                    .map(|m| m.is_file() && m.len() < (2 << 20) && m.len() > 200)
                    .unwrap_or(false)
            })
            .min_by_key(|e| e.file_name())
        else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().to_string();
        let bytes = corpus(&format!("{rel}/{name}"));
        let (s, f) = env.upload(&key, "u", &name, bytes, q).await;
        assert_eq!(s, 200, "{name}: {f}");
        ids.push((name, f["id"].as_i64().unwrap()));
    }
    for (name, id) in &ids {
        let f = env.wait_terminal(&key, "u", *id).await;
        // a corpus file may legitimately be unparseable; it must say why
        if f["sync_status"] == "SYNC_ERROR" {
            assert!(
                f["sync_error_message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{name}: {f}"
            );
            eprintln!("{name}: SYNC_ERROR {}", f["sync_error_message"]);
        } else {
            assert_eq!(f["sync_status"], "READY", "{name}: {f}");
            let (_, v) = env
                .post(
                    &key,
                    "u",
                    "/text_chunks",
                    json!({"filters": {"user_file_id": id}}),
                )
                .await;
            assert!(v["count"].as_i64().unwrap() > 0, "{name}: no chunks");
        }
    }
    // broken file → SYNC_ERROR with a reason
    let (s, f) = env
        .upload(&key, "u", "broken.pdf", b"%PDF-1.7\n garbage".to_vec(), q)
        .await;
    assert_eq!(s, 200, "{f}");
    let f = env
        .wait_terminal(&key, "u", f["id"].as_i64().unwrap())
        .await;
    assert_eq!(f["sync_status"], "SYNC_ERROR", "{f}");
    assert!(!f["sync_error_message"].as_str().unwrap().is_empty());
    // oversize refused before parsing
    let (s, v) = env
        .upload(&key, "u", "big.txt", vec![b'a'; 4 << 20], q)
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("limit"));
    // an embedding model that is not configured is a 400 naming the configured ones
    let (s, v) = env
        .upload(
            &key,
            "u",
            "x.txt",
            b"hello world".to_vec(),
            "embedding_model=SOLAR_1_MINI",
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("OPENAI"));
    let _ = env.stop.send(true);
}

/// `/delete_files` deletes only the named files unless `delete_child_files` is set: children
/// are detached (`parent_id = NULL`) and kept, with their chunks; with the flag they go too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_files_keeps_or_deletes_children() {
    let env = start(50 << 20).await;
    let key = env.key("acme");
    // create the customer through the API, then a folder tree through the store
    let (s, _) = env.post(&key, "carol", "/user_files_v2", json!({})).await;
    assert_eq!(s, 200);
    let cust = env.store.get_customer(1, "carol").unwrap().unwrap();
    let mk = |parent: Option<i64>, name: &str, folder: bool| carbide_store::NewFile {
        organization_id: cust.organization_id,
        organization_user_id: cust.id,
        parent_id: parent,
        source: "LOCAL".into(),
        name: Some(name.into()),
        is_folder: folder,
        sync_status: "READY_TO_SYNC".into(),
        ..Default::default()
    };
    let tree = |env: &Env| {
        let top = env.store.create_file(&mk(None, "top", true)).unwrap().id;
        let child = env
            .store
            .create_file(&mk(Some(top), "child", false))
            .unwrap()
            .id;
        let sub = env
            .store
            .create_file(&mk(Some(top), "sub", true))
            .unwrap()
            .id;
        let grandchild = env
            .store
            .create_file(&mk(Some(sub), "gc", false))
            .unwrap()
            .id;
        (top, child, sub, grandchild)
    };
    let ids_of = |v: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_i64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };

    // default (delete_child_files unset = false): only `top` goes; children are detached
    let (top, child, sub, gc) = tree(&env);
    let (s, v) = env
        .post(&key, "carol", "/delete_files", json!({"file_ids": [top]}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = env.post(&key, "carol", "/user_files_v2", json!({})).await;
    assert_eq!(ids_of(&v), vec![child, sub, gc]);
    for f in v["results"].as_array().unwrap() {
        let want = if f["id"] == gc {
            json!(sub)
        } else {
            Value::Null
        };
        assert_eq!(f["parent_id"], want, "{f}");
    }
    // explicit false, on the detached `sub`: its child survives
    let (s, _) = env
        .post(
            &key,
            "carol",
            "/delete_files",
            json!({"file_ids": [sub], "delete_child_files": false}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = env.post(&key, "carol", "/user_files_v2", json!({})).await;
    assert_eq!(ids_of(&v), vec![child, gc]);
    assert_eq!(v["results"][0]["parent_id"], Value::Null);
    assert_eq!(v["results"][1]["parent_id"], Value::Null);

    // delete_child_files=true: the whole subtree goes
    let (top2, ..) = tree(&env);
    let (s, _) = env
        .post(
            &key,
            "carol",
            "/delete_files",
            json!({"file_ids": [top2], "delete_child_files": true}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = env.post(&key, "carol", "/user_files_v2", json!({})).await;
    assert_eq!(ids_of(&v), vec![child, gc]);
    let _ = env.stop.send(true);
}
