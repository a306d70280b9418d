//! Throughput benchmark of the local MiniLM engine on SciFact texts: ~256-word-piece chunks of
//! abstracts and short queries, at several batch sizes, reporting word pieces per second (wall)
//! and CPU-ms per text (user+sys of the whole process, via getrusage).
//!
//! Standalone: `cargo run --release -p carbide-embed --example embed_bench -- [--threads 2]`.
//! `--mixed` instead measures query latency (`embed_query`) while another thread keeps
//! embedding chunks at batch 32, to show the priority gate at work.
//! With `--serve` it prints its texts as one JSON line, then answers `run SET BS` lines with one
//! JSON result line each; `scripts/bench/embed_bench.py` drives it interleaved with
//! sentence-transformers (see `scripts/bench/embed.sh`).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use carbide_embed::{Embedder, MiniLm, MiniLmOptions};
use serde_json::{Value, json};

struct Args {
    model: PathBuf,
    corpus: PathBuf,
    queries: PathBuf,
    threads: usize,
    n_chunks: usize,
    n_queries: usize,
    reps: usize,
    serve: bool,
    mixed: bool,
    batch_tokens: usize,
}

fn parse_args() -> Result<Args, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let scifact = root.join("../shared/corpus/retrieval/scifact");
    let mut a = Args {
        model: root.join("models/all-MiniLM-L6-v2"),
        corpus: scifact.join("corpus.jsonl"),
        queries: scifact.join("queries.jsonl"),
        threads: 2,
        n_chunks: 64,
        n_queries: 128,
        reps: 3,
        serve: false,
        mixed: false,
        batch_tokens: MiniLmOptions::default().max_batch_tokens,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--serve" || flag == "--mixed" {
            a.serve |= flag == "--serve";
            a.mixed |= flag == "--mixed";
            continue;
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || val.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--model" => a.model = PathBuf::from(&val),
            "--corpus" => a.corpus = PathBuf::from(&val),
            "--queries" => a.queries = PathBuf::from(&val),
            "--threads" => a.threads = num()?,
            "--chunks" => a.n_chunks = num()?,
            "--nqueries" => a.n_queries = num()?,
            "--reps" => a.reps = num()?,
            "--batch-tokens" => a.batch_tokens = num()?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn jsonl(path: &PathBuf) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// Abstracts ("title text") with at least 254 word pieces, cut after the 254th (256 with
/// [CLS]/[SEP]); and the first queries.
fn texts(a: &Args, model: &MiniLm) -> Result<(Vec<String>, Vec<String>), String> {
    let mut chunks = Vec::new();
    for doc in jsonl(&a.corpus)? {
        if chunks.len() == a.n_chunks {
            break;
        }
        let text = format!(
            "{} {}",
            doc["title"].as_str().unwrap_or_default(),
            doc["text"].as_str().unwrap_or_default()
        );
        let offs = model
            .tokenizer()
            .tokenize_offsets(&text)
            .map_err(|e| e.to_string())?;
        if offs.len() >= 254 {
            chunks.push(text[..offs[253].1].to_string());
        }
    }
    let queries = jsonl(&a.queries)?
        .iter()
        .take(a.n_queries)
        .map(|q| q["text"].as_str().unwrap_or_default().to_string())
        .collect();
    Ok((chunks, queries))
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Run {
    wall: f64,
    cpu: f64,
    pieces: usize,
    texts: usize,
}

fn run(model: &MiniLm, texts: &[String], bs: usize) -> Result<Run, String> {
    let pieces = texts
        .iter()
        .map(|t| model.input_ids(t).map(|i| i.len()))
        .sum::<Result<usize, _>>()
        .map_err(|e| e.to_string())?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (c0, t0) = (cpu_seconds(), Instant::now());
    for batch in refs.chunks(bs) {
        let v = model.embed(batch).map_err(|e| e.to_string())?;
        std::hint::black_box(v);
    }
    Ok(Run {
        wall: t0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c0,
        pieces,
        texts: texts.len(),
    })
}

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.95),
        at(1.0)
    )
}

/// Query latency alone, then while a bulk thread embeds chunks at batch 32 without pause.
fn mixed(model: &MiniLm, chunks: &[String], queries: &[String]) -> Result<(), String> {
    let time_queries = || -> Result<Vec<f64>, String> {
        let mut ms = Vec::new();
        for (i, q) in queries.iter().take(40).enumerate() {
            let t = Instant::now();
            model.embed_query(q).map_err(|e| e.to_string())?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            // Varying think time, so arrivals fall at all phases of the bulk micro-batches.
            std::thread::sleep(std::time::Duration::from_millis(10 + (i as u64 * 37) % 190));
        }
        Ok(ms)
    };
    println!("queries alone:          {}", percentiles(time_queries()?));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let (loaded, bulk_chunks) = std::thread::scope(|s| {
        let bulk = s.spawn(|| {
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for b in refs.chunks(32) {
                    if model.embed(b).is_ok() {
                        n += b.len();
                    }
                }
            }
            n
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let r = time_queries();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (r, bulk.join().unwrap_or(0))
    });
    println!(
        "queries during bulk:    {} ({bulk_chunks} chunks embedded meanwhile)",
        percentiles(loaded?)
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let a = parse_args()?;
    let t0 = Instant::now();
    let opts = MiniLmOptions {
        threads: a.threads,
        max_batch_tokens: a.batch_tokens,
    };
    let model = MiniLm::load_with(&a.model, opts).map_err(|e| e.to_string())?;
    let load_s = t0.elapsed().as_secs_f64();
    let (chunks, queries) = texts(&a, &model)?;
    let set = |name: &str| if name == "chunks" { &chunks } else { &queries };
    // Warm up (page in weights, spin up the pool).
    run(&model, &chunks[..chunks.len().min(8)], 8)?;

    if a.mixed {
        return mixed(&model, &chunks, &queries);
    }
    if a.serve {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}",
            json!({"chunks": chunks, "queries": queries, "load_s": load_s})
        )
        .map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| e.to_string())?;
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["run", name, bs] => {
                    let bs: usize = bs.parse().map_err(|e| format!("bs: {e}"))?;
                    let r = run(&model, set(name), bs.max(1))?;
                    let j = json!({"wall_s": r.wall, "cpu_s": r.cpu, "pieces": r.pieces, "texts": r.texts});
                    writeln!(out, "{j}").map_err(|e| e.to_string())?;
                    out.flush().map_err(|e| e.to_string())?;
                }
                ["quit"] | [] => break,
                _ => return Err(format!("bad command {line:?}")),
            }
        }
        return Ok(());
    }

    println!(
        "carbide MiniLM, {} threads, micro-batches of {} pieces, load {:.2} s; {} chunks, {} queries; median of {} reps",
        a.threads,
        a.batch_tokens,
        load_s,
        chunks.len(),
        queries.len(),
        a.reps
    );
    println!("| set | bs | pieces/text | pieces/s (wall) | pieces/CPU-s | CPU-ms/text |");
    println!("|---|---|---|---|---|---|");
    for name in ["chunks", "queries"] {
        for bs in [1, 8, 32] {
            let mut runs = Vec::new();
            for _ in 0..a.reps.max(1) {
                runs.push(run(&model, set(name), bs)?);
            }
            let med = |f: &dyn Fn(&Run) -> f64| {
                let mut v: Vec<f64> = runs.iter().map(f).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let r0 = &runs[0];
            println!(
                "| {name} | {bs} | {:.0} | {:.0} | {:.0} | {:.1} |",
                r0.pieces as f64 / r0.texts as f64,
                med(&|r| r.pieces as f64 / r.wall),
                med(&|r| r.pieces as f64 / r.cpu),
                med(&|r| r.cpu * 1000.0 / r.texts as f64),
            );
        }
    }
    Ok(())
}
