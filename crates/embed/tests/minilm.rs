//! Checks the local MiniLM engine against sentence-transformers: token ids and vectors from
//! `fixtures/minilm_reference.json` (made by `scripts/bench/make_embed_fixture.py`).
//! Needs the model (`scripts/fetch-model.sh`); skipped when it is missing unless
//! `CARBIDE_REQUIRE_MODEL` is set, as CI does.

use std::path::PathBuf;

use carbide_embed::{Embedder, MiniLm, MiniLmOptions};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    max_tokens: usize,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    ids: Vec<u32>,
    untruncated_len: usize,
    embedding: Vec<f32>,
}

fn model_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CARBIDE_MODEL_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
    };
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CARBIDE_REQUIRE_MODEL").is_some() {
        panic!(
            "CARBIDE_REQUIRE_MODEL is set but {} has no model.safetensors; run scripts/fetch-model.sh",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: no model at {} (run scripts/fetch-model.sh; set CARBIDE_REQUIRE_MODEL=1 to fail instead)",
        dir.display()
    );
    None
}

fn fixture() -> Fixture {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    let bytes = std::fs::read(&path).expect("fixture present");
    serde_json::from_slice(&bytes).expect("fixture parses")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn matches_sentence_transformers() {
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    // A small token budget forces several micro-batches, exercising packing and reordering.
    let model = MiniLm::load_with(
        &dir,
        MiniLmOptions {
            threads: 2,
            max_batch_tokens: 300,
        },
    )
    .expect("model loads");
    assert_eq!(model.dims(), 384);
    assert_eq!(model.max_tokens(), fx.max_tokens - 2);
    assert_eq!(model.model_id(), "sentence-transformers/all-MiniLM-L6-v2");

    for it in &fx.items {
        assert_eq!(
            model.input_ids(&it.text).expect("encode"),
            it.ids,
            "ids of {:?}",
            it.text
        );
        assert_eq!(
            model.count_tokens(&it.text).expect("count"),
            it.untruncated_len - 2,
            "count of {:?}",
            it.text
        );
    }

    let texts: Vec<&str> = fx.items.iter().map(|i| i.text.as_str()).collect();
    let got = model.embed(&texts).expect("embed");
    assert_eq!(got.len(), texts.len());
    let mut worst = 1.0f64;
    for (it, v) in fx.items.iter().zip(&got) {
        assert_eq!(v.len(), 384);
        let c = cosine(v, &it.embedding);
        worst = worst.min(c);
        assert!(c >= 0.9999, "cosine {c} for {:?}", it.text);
        let norm: f64 = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    eprintln!(
        "largest 1 - cosine vs sentence-transformers: {:.2e}",
        1.0 - worst
    );

    // One at a time (query path, batch of one) gives the same vectors as the packed batch.
    for (it, v) in fx.items.iter().zip(&got).take(5) {
        let q = model.embed_query(&it.text).expect("query");
        assert!(
            cosine(&q, v) > 0.999_999,
            "query path differs for {:?}",
            it.text
        );
    }
    assert!(model.embed(&[]).expect("empty batch").is_empty());
}

#[test]
fn offsets_cover_word_pieces_without_truncation() {
    let Some(dir) = model_dir() else { return };
    let model = MiniLm::load(&dir, 1).expect("model loads");
    let tok = model.tokenizer();
    let long = "naïve café ".repeat(200);
    let offs = tok.tokenize_offsets(&long).expect("offsets");
    assert_eq!(offs.len(), tok.count_tokens(&long).expect("count"));
    assert!(offs.len() > 256, "not truncated: {}", offs.len());
    for w in offs.windows(2) {
        assert!(w[0].1 <= w[1].0, "ordered, non-overlapping");
    }
    for &(s, e) in &offs {
        assert!(long.is_char_boundary(s) && long.is_char_boundary(e) && s < e);
    }
    // Offsets are bytes into the original text, even where the normaliser strips accents.
    assert_eq!(offs[0].0, 0);
    assert!(
        offs.iter().any(|&(_, e)| e == "naïve".len()),
        "a piece ends after naïve"
    );
    assert_eq!(model.input_ids(&long).expect("ids").len(), 256);
}

#[test]
fn missing_model_dir_is_a_clear_error() {
    let err =
        MiniLm::load(std::path::Path::new("/nonexistent/carbide-model"), 1).expect_err("must fail");
    assert!(err.to_string().contains("config.json"), "{err}");
    let Some(dir) = model_dir() else { return };
    let err = MiniLm::load(&dir, 0).expect_err("zero threads");
    assert!(err.to_string().contains("threads"), "{err}");
}

/// Bulk calls from many threads at once are combined into shared micro-batches; every caller
/// still gets exactly its own vectors, in its own order.
#[test]
fn concurrent_bulk_callers_get_their_own_vectors() {
    let Some(dir) = model_dir() else { return };
    let model = std::sync::Arc::new(
        MiniLm::load_with(
            &dir,
            MiniLmOptions {
                threads: 1,
                max_batch_tokens: 512,
            },
        )
        .expect("model loads"),
    );
    let fx = fixture();
    let texts: Vec<String> = fx.items.iter().map(|i| i.text.clone()).collect();
    let alone: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| model.embed(&[t.as_str()]).expect("embed").remove(0))
        .collect();
    let mut handles = Vec::new();
    for caller in 0..6 {
        let (model, texts) = (model.clone(), texts.clone());
        handles.push(std::thread::spawn(move || {
            // each caller asks for a different rotation of the texts, several times
            let mine: Vec<String> = texts
                .iter()
                .cycle()
                .skip(caller)
                .take(texts.len())
                .cloned()
                .collect();
            let refs: Vec<&str> = mine.iter().map(String::as_str).collect();
            let mut outs = Vec::new();
            for _ in 0..3 {
                outs.push(model.embed(&refs).expect("embed"));
            }
            (caller, outs)
        }));
    }
    for h in handles {
        let (caller, outs) = h.join().expect("caller thread");
        for out in outs {
            assert_eq!(out.len(), texts.len());
            for (k, v) in out.iter().enumerate() {
                let want = &alone[(k + caller) % texts.len()];
                assert!(
                    cosine(v, want) > 0.999_999,
                    "caller {caller}, item {k}: another caller's vector?"
                );
            }
        }
    }
    assert!(model.embed(&[]).expect("empty").is_empty());
}
