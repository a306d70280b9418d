//! Load benchmark (ignored by default; run via `scripts/bench/emulator.sh`): creates
//! 100k files in-process, then measures list_folder pages/s (pages of 2,000) over HTTP
//! and download throughput for a large file.

mod common;

use std::time::Instant;

use common::*;
use dropbox_emulator::PutFile;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run scripts/bench/emulator.sh"]
async fn bench_list_and_download() {
    let files: usize = std::env::var("BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let env = start().await;
    let (aid, tok) = env.user("bench@example.com").await;
    let core = env.emu.core().clone();
    let t = Instant::now();
    let aid2 = aid.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..files {
            core.put_file(PutFile {
                account_id: aid2.clone(),
                path: format!("/Data/d{:03}/file-{i:06}.txt", i % 500),
                content: format!("content of file {i}\n").into_bytes(),
                client_modified: None,
                is_downloadable: true,
            })
            .expect("put");
        }
    })
    .await
    .expect("join");
    let create = t.elapsed().as_secs_f64();
    println!(
        "created {files} files in {create:.2}s ({:.0} files/s)",
        files as f64 / create
    );
    if let Some(rss) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .map(str::to_string)
        })
    {
        println!("process {rss} (server + client, after creating {files} files)");
    }

    // Full recursive listing in pages of 2,000.
    let t = Instant::now();
    let mut res = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": "", "recursive": true, "limit": 2000}),
        )
        .await;
    let mut pages = 1usize;
    let mut entries = res["entries"].as_array().map(Vec::len).unwrap_or(0);
    while res["has_more"] == true {
        res = env
            .rpc_ok(
                &tok,
                "files/list_folder/continue",
                json!({"cursor": res["cursor"]}),
            )
            .await;
        pages += 1;
        entries += res["entries"].as_array().map(Vec::len).unwrap_or(0);
    }
    let list = t.elapsed().as_secs_f64();
    assert!(entries >= files);
    println!(
        "listed {entries} entries in {pages} pages in {list:.2}s: {:.1} pages/s, {:.0} entries/s",
        pages as f64 / list,
        entries as f64 / list
    );

    // Change feed: 2,000 edits then continue.
    let core = env.emu.core().clone();
    let aid3 = aid.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..2000 {
            core.put_file(PutFile {
                account_id: aid3.clone(),
                path: format!("/Data/d{:03}/file-{i:06}.txt", i % 500),
                content: format!("edited {i}\n").into_bytes(),
                client_modified: None,
                is_downloadable: true,
            })
            .expect("put");
        }
    })
    .await
    .expect("join");
    let t = Instant::now();
    let ch: Value = env
        .rpc_ok(
            &tok,
            "files/list_folder/continue",
            json!({"cursor": res["cursor"]}),
        )
        .await;
    println!(
        "continue after 2000 edits: {} entries in {:.1} ms",
        ch["entries"].as_array().map(Vec::len).unwrap_or(0),
        t.elapsed().as_secs_f64() * 1000.0
    );

    // Download throughput: a 64 MiB file, 8 times.
    let big: Vec<u8> = (0..64 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    env.emu
        .core()
        .put_file(PutFile {
            account_id: aid.clone(),
            path: "/big.bin".into(),
            content: big,
            client_modified: None,
            is_downloadable: true,
        })
        .expect("big");
    let t = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..8 {
        let resp = env
            .http
            .post(format!("{}/2/files/download", env.base))
            .bearer_auth(&tok)
            .header("Dropbox-API-Arg", r#"{"path": "/big.bin"}"#)
            .send()
            .await
            .expect("dl");
        bytes += resp.bytes().await.expect("body").len();
    }
    let dl = t.elapsed().as_secs_f64();
    println!(
        "downloaded {} MiB in {dl:.2}s: {:.0} MB/s",
        bytes / (1024 * 1024),
        bytes as f64 / dl / 1e6
    );

    // Small-file downloads per second.
    let t = Instant::now();
    for i in 0..1000 {
        let resp = env
            .http
            .post(format!("{}/2/files/download", env.base))
            .bearer_auth(&tok)
            .header(
                "Dropbox-API-Arg",
                json!({"path": format!("/Data/d{:03}/file-{i:06}.txt", i % 500)}).to_string(),
            )
            .send()
            .await
            .expect("dl");
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await;
    }
    println!(
        "small downloads: {:.0}/s",
        1000.0 / t.elapsed().as_secs_f64()
    );
}
