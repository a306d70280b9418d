//! The in-process default embedder, all-MiniLM-L6-v2: tokenisation, packing texts into
//! micro-batches, mean pooling + L2 normalisation, and the bounded engine that runs them.
//!
//! Scheduling: the engine owns a dedicated rayon pool of `threads` threads (default
//! [`default_threads`]), so embedding never uses more cores than configured, whatever the number
//! of callers. Work enters the pool one micro-batch (at most `max_batch_tokens` word pieces) at a
//! time through a priority gate: a waiting query ([`Embedder::embed_query`]) always gets the
//! next slot ahead of waiting bulk micro-batches ([`Embedder::embed`]), so a query waits at most
//! for the micro-batch that is running (1024 pieces: ~130 ms on one thread of a Zen 5 core with
//! AVX-512, ~250 ms with AVX2 only), never for a whole
//! ingestion batch. Callers block; async code calls through `spawn_blocking`.
//!
//! Bulk calls are combined across callers: every bulk caller appends its sequences to one shared
//! FIFO queue and then competes for the gate; whoever holds it runs the next micro-batch from the
//! head of the queue, whichever callers those sequences belong to, and hands each result to its
//! owner. So many small files being processed at once (a synced folder of short documents) fill
//! full micro-batches instead of running one tiny forward pass per file, and no caller waits for
//! a timer: when a single caller is active it simply runs its own sequences.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::bert::BertModel;
use crate::tokenizer::Tokenizer;
use crate::{EmbedError, Embedder, MINILM_MODEL_ID};

/// Model input limit of all-MiniLM-L6-v2 in sentence-transformers (`max_seq_length`), special
/// tokens included. The packaged `tokenizer.json` says 128; that value is ignored.
pub const MINILM_MAX_SEQ_LEN: usize = 256;

/// Threads a service should give the local embedder by default: every core. Queries are not
/// starved by bulk work (the priority gate admits a waiting query next), and extraction runs in
/// separate processes the OS schedules alongside; measured on 2 cores, 1 thread left the
/// second core mostly idle during a sync (`scripts/bench/dropbox-initial-sync`).
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .max(1)
}

/// Tuning knobs of [`MiniLm`].
#[derive(Debug, Clone)]
pub struct MiniLmOptions {
    /// Size of the dedicated compute pool.
    pub threads: usize,
    /// Word pieces per forward pass; bounds memory (~10 KiB per piece) and query wait time.
    pub max_batch_tokens: usize,
}

impl Default for MiniLmOptions {
    fn default() -> Self {
        Self {
            threads: default_threads(),
            max_batch_tokens: 1024,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Priority {
    Query,
    Bulk,
}

#[derive(Default)]
struct GateState {
    busy: bool,
    queries_waiting: usize,
}

/// One-at-a-time admission to the compute pool, queries first.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
}

struct GatePass<'a>(&'a Gate);

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        self.0.state.lock().busy = false;
        self.0.freed.notify_all();
    }
}

impl Gate {
    fn enter(&self, prio: Priority) -> GatePass<'_> {
        let mut st = self.state.lock();
        if prio == Priority::Query {
            st.queries_waiting += 1;
            while st.busy {
                self.freed.wait(&mut st);
            }
            st.queries_waiting -= 1;
        } else {
            while st.busy || st.queries_waiting > 0 {
                self.freed.wait(&mut st);
            }
        }
        st.busy = true;
        GatePass(self)
    }
}

/// The results one bulk caller is waiting for.
struct Ticket {
    state: Mutex<TicketState>,
}

struct TicketState {
    out: Vec<Option<Vec<f32>>>,
    remaining: usize,
    error: Option<String>,
}

impl Ticket {
    fn new(n: usize) -> Ticket {
        Ticket {
            state: Mutex::new(TicketState {
                out: vec![None; n],
                remaining: n,
                error: None,
            }),
        }
    }

    fn finished(&self) -> bool {
        let st = self.state.lock();
        st.remaining == 0 || st.error.is_some()
    }
}

/// One sequence in the shared bulk queue.
struct Pending {
    ids: Vec<u32>,
    ticket: Arc<Ticket>,
    slot: usize,
}

/// sentence-transformers all-MiniLM-L6-v2, run in-process.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
    threads: usize,
    max_batch_tokens: usize,
    gate: Gate,
    bulk: Mutex<VecDeque<Pending>>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("threads", &self.threads)
            .field("max_batch_tokens", &self.max_batch_tokens)
            .finish_non_exhaustive()
    }
}

impl MiniLm {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`
    /// (see `scripts/fetch-model.sh`) with a pool of `threads` threads.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        Self::load_with(
            dir,
            MiniLmOptions {
                threads,
                ..MiniLmOptions::default()
            },
        )
    }

    /// Like [`MiniLm::load`] with all options.
    pub fn load_with(dir: &Path, opts: MiniLmOptions) -> Result<Self, EmbedError> {
        if opts.threads == 0 {
            return Err(EmbedError::Config("threads must be at least 1".into()));
        }
        let model = BertModel::load(dir)?;
        let max_len = MINILM_MAX_SEQ_LEN.min(model.max_positions());
        if opts.max_batch_tokens < max_len {
            return Err(EmbedError::Config(format!(
                "max_batch_tokens must be at least {max_len}"
            )));
        }
        let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"), max_len)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .thread_name(|i| format!("embed-{i}"))
            .build()
            .map_err(|e| EmbedError::Config(format!("cannot start embedding threads: {e}")))?;
        Ok(Self {
            model,
            tokenizer,
            pool,
            threads: opts.threads,
            max_batch_tokens: opts.max_batch_tokens,
            gate: Gate::default(),
            bulk: Mutex::new(VecDeque::new()),
        })
    }

    /// The tokenizer, for chunking by word pieces.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Size of the compute pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Model input ids of `text` (with `[CLS]`/`[SEP]`, truncated at 256).
    pub fn input_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.tokenizer.encode_for_model(text)
    }

    fn run(&self, texts: &[&str], prio: Priority) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = texts
            .iter()
            .map(|t| self.tokenizer.encode_for_model(t))
            .collect::<Result<Vec<_>, _>>()?;
        // Longest first, so micro-batches are filled evenly; results go back to input order.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < order.len()
                && (end == start || tokens + ids[order[end]].len() <= self.max_batch_tokens)
            {
                tokens += ids[order[end]].len();
                end += 1;
            }
            let batch: Vec<Vec<u32>> = order[start..end].iter().map(|&i| ids[i].clone()).collect();
            let vecs = {
                let _pass = self.gate.enter(prio);
                self.pool.install(|| self.forward_pooled(&batch))?
            };
            for (&i, v) in order[start..end].iter().zip(vecs) {
                out[i] = v;
            }
            start = end;
        }
        Ok(out)
    }

    /// Bulk embedding through the shared queue (see the module documentation).
    fn run_bulk(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let ids = texts
            .iter()
            .map(|t| self.tokenizer.encode_for_model(t))
            .collect::<Result<Vec<_>, _>>()?;
        let ticket = Arc::new(Ticket::new(ids.len()));
        {
            let mut q = self.bulk.lock();
            for (slot, ids) in ids.into_iter().enumerate() {
                q.push_back(Pending {
                    ids,
                    ticket: ticket.clone(),
                    slot,
                });
            }
        }
        // Results are written before a gate pass ends, so once this caller holds the gate every
        // sequence taken by an earlier runner is complete.
        while !ticket.finished() {
            let _pass = self.gate.enter(Priority::Bulk);
            if ticket.finished() {
                break;
            }
            let batch: Vec<Pending> = {
                let mut q = self.bulk.lock();
                let mut batch = Vec::new();
                let mut tokens = 0;
                while let Some(p) = q.front() {
                    if !batch.is_empty() && tokens + p.ids.len() > self.max_batch_tokens {
                        break;
                    }
                    tokens += p.ids.len();
                    batch.extend(q.pop_front());
                }
                batch
            };
            if batch.is_empty() {
                continue;
            }
            let mut seqs = Vec::with_capacity(batch.len());
            let mut owners = Vec::with_capacity(batch.len());
            for p in batch {
                seqs.push(p.ids);
                owners.push((p.ticket, p.slot));
            }
            match self.pool.install(|| self.forward_pooled(&seqs)) {
                Ok(vecs) => {
                    for ((ticket, slot), v) in owners.iter().zip(vecs) {
                        let mut st = ticket.state.lock();
                        if st.out[*slot].is_none() {
                            st.remaining -= 1;
                        }
                        st.out[*slot] = Some(v);
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for (ticket, _) in &owners {
                        ticket.state.lock().error.get_or_insert_with(|| msg.clone());
                    }
                }
            }
        }
        let mut st = ticket.state.lock();
        if let Some(e) = st.error.take() {
            // sequences of this caller still queued are dropped: nobody waits for them
            self.bulk
                .lock()
                .retain(|p| !Arc::ptr_eq(&p.ticket, &ticket));
            return Err(EmbedError::Model(e));
        }
        std::mem::take(&mut st.out)
            .into_iter()
            .map(|v| v.ok_or_else(|| EmbedError::Model("no vector produced".into())))
            .collect()
    }

    /// Forward pass, then mean over each sequence's tokens and L2 normalisation.
    fn forward_pooled(&self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.model.hidden_size();
        let states = self.model.forward(batch, self.threads)?;
        let mut vecs = Vec::with_capacity(batch.len());
        let mut row = 0;
        for seq in batch {
            let mut acc = vec![0.0f64; h];
            for r in row..row + seq.len() {
                for (a, v) in acc.iter_mut().zip(&states[r * h..(r + 1) * h]) {
                    *a += f64::from(*v);
                }
            }
            row += seq.len();
            let n = seq.len().max(1) as f64;
            let mean: Vec<f64> = acc.iter().map(|a| a / n).collect();
            let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            vecs.push(mean.iter().map(|v| (v / norm) as f32).collect());
        }
        Ok(vecs)
    }
}

impl Embedder for MiniLm {
    fn model_id(&self) -> &str {
        MINILM_MODEL_ID
    }

    fn dims(&self) -> usize {
        self.model.hidden_size()
    }

    fn max_tokens(&self) -> usize {
        self.tokenizer.max_text_tokens()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run_bulk(texts)
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.run(&[text], Priority::Query)?
            .pop()
            .ok_or_else(|| EmbedError::Model("no vector produced".into()))
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        self.tokenizer.count_tokens(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn gate_serves_waiting_queries_before_bulk() {
        let gate = Arc::new(Gate::default());
        let first = gate.enter(Priority::Bulk);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (name, prio) in [("bulk", Priority::Bulk), ("query", Priority::Query)] {
            let (gate, order) = (gate.clone(), order.clone());
            handles.push(std::thread::spawn(move || {
                let _p = gate.enter(prio);
                order.lock().push(name);
            }));
        }
        // Wait until the query is registered as waiting; the bulk waiter may or may not have
        // arrived yet, either way it must come second.
        while gate.state.lock().queries_waiting == 0 {
            std::thread::yield_now();
        }
        drop(first);
        for h in handles {
            h.join().expect("waiter thread");
        }
        assert_eq!(*order.lock(), vec!["query", "bulk"]);
    }
}
