//! In-memory BM25 keyword index: one entry per (organization, customer) holding an inverted
//! index over the customer's chunk texts, built lazily from SQLite and kept current from
//! `index_generations` + `chunk_log` by [`crate::derived_cache`] (like the vector cache), with an
//! LRU bound on total memory.
//!
//! Why: FTS5's `bm25()` is computed row by row inside SQLite for every matching chunk, so a
//! claim-like query over 100k chunks (tens of thousands of matches) took ~100 ms. Here scoring
//! is a term-at-a-time pass over compact postings into a dense accumulator (exhaustive, so the
//! top-k is exact), and the statistics (document count, average length, document frequency)
//! are the customer's own rather than the whole table's, so tenants do not skew each other's
//! ranking. FTS5 stays the durable keyword index (written in the same transactions) and serves
//! searches when `CARBIDE_KEYWORD_ENGINE=fts5`.
//!
//! Documents are `index_text(chunk.text)` passed through [`carbide_core::search_text::Analyzer`]
//! (unicode61-style splitting, case and diacritic folding, Snowball English stemming); queries
//! go through the same analyzer. Deleted rows become tombstones (their terms leave the
//! statistics at once through a forward index); the entry compacts itself when a quarter of its
//! rows are dead.

use std::collections::HashMap;

use carbide_core::search_text::{Analyzer, index_text};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::derived_cache::{Derived, DerivedCache};
use crate::search::KeywordHit;
use crate::vector_cache::FileSet;

/// BM25 term-frequency saturation (FTS5's and Lucene's default).
const K1: f32 = 1.2;
/// BM25 length normalisation (FTS5's and Lucene's default).
const B: f32 = 0.75;

#[derive(Clone, Copy)]
struct Posting {
    row: u32,
    tf: u32,
}

/// One customer's inverted index.
struct Entry {
    term_ids: HashMap<Box<str>, u32>,
    /// Live rows containing each term.
    df: Vec<u32>,
    postings: Vec<Vec<Posting>>,
    chunk_ids: Vec<i64>,
    /// `-1` marks a deleted row.
    file_ids: Vec<i64>,
    doc_len: Vec<u32>,
    /// Row `r`'s distinct terms are `fwd[fwd_off[r]..fwd_off[r + 1]]`.
    fwd_off: Vec<u32>,
    fwd: Vec<u32>,
    by_chunk: HashMap<i64, u32>,
    live: usize,
    total_len: u64,
}

impl Entry {
    fn empty() -> Entry {
        Entry {
            term_ids: HashMap::new(),
            df: Vec::new(),
            postings: Vec::new(),
            chunk_ids: Vec::new(),
            file_ids: Vec::new(),
            doc_len: Vec::new(),
            fwd_off: vec![0],
            fwd: Vec::new(),
            by_chunk: HashMap::new(),
            live: 0,
            total_len: 0,
        }
    }

    fn rows(&self) -> usize {
        self.chunk_ids.len()
    }

    fn dead(&self) -> usize {
        self.rows() - self.live
    }

    fn bytes(&self) -> usize {
        let postings: usize = self.postings.iter().map(|p| p.capacity() * 8 + 24).sum();
        let terms: usize = self.term_ids.keys().map(|k| k.len() + 32).sum();
        postings
            + terms
            + self.df.capacity() * 4
            + self.chunk_ids.capacity() * 8
            + self.file_ids.capacity() * 8
            + self.doc_len.capacity() * 4
            + self.fwd_off.capacity() * 4
            + self.fwd.capacity() * 4
            + self.by_chunk.capacity() * 24
    }

    /// Adds one chunk (replacing an earlier row of the same chunk).
    fn push(&mut self, chunk_id: i64, file_id: i64, text: &str, analyzer: &mut Analyzer) {
        self.remove_chunk(chunk_id);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        let mut len = 0u32;
        let indexed = index_text(text);
        let term_ids = &mut self.term_ids;
        let df = &mut self.df;
        let postings = &mut self.postings;
        analyzer.terms(&indexed, |t| {
            len = len.saturating_add(1);
            let id = match term_ids.get(t) {
                Some(id) => *id,
                None => {
                    let id = df.len() as u32;
                    term_ids.insert(t.into(), id);
                    df.push(0);
                    postings.push(Vec::new());
                    id
                }
            };
            *counts.entry(id).or_insert(0) += 1;
        });
        let row = self.chunk_ids.len() as u32;
        let mut terms: Vec<(u32, u32)> = counts.into_iter().collect();
        terms.sort_unstable();
        for (id, tf) in terms {
            self.postings[id as usize].push(Posting { row, tf });
            self.df[id as usize] += 1;
            self.fwd.push(id);
        }
        self.fwd_off.push(self.fwd.len() as u32);
        self.chunk_ids.push(chunk_id);
        self.file_ids.push(file_id);
        self.doc_len.push(len);
        self.by_chunk.insert(chunk_id, row);
        self.live += 1;
        self.total_len += u64::from(len);
    }

    fn remove_chunk(&mut self, chunk_id: i64) {
        let Some(row) = self.by_chunk.remove(&chunk_id) else {
            return;
        };
        let r = row as usize;
        if self.file_ids[r] < 0 {
            return;
        }
        self.file_ids[r] = -1;
        self.live -= 1;
        self.total_len -= u64::from(self.doc_len[r]);
        let (a, b) = (self.fwd_off[r] as usize, self.fwd_off[r + 1] as usize);
        for &id in &self.fwd[a..b] {
            self.df[id as usize] -= 1;
        }
    }

    /// Rebuilds rows, postings and the forward index without dead rows (terms that no live
    /// row uses any more are dropped).
    fn compact(&mut self) {
        let mut remap = vec![u32::MAX; self.rows()];
        let mut next = 0u32;
        for (r, f) in self.file_ids.iter().enumerate() {
            if *f >= 0 {
                remap[r] = next;
                next += 1;
            }
        }
        let mut term_remap = vec![u32::MAX; self.df.len()];
        let mut new_df = Vec::new();
        let mut new_postings = Vec::new();
        for (id, list) in self.postings.iter().enumerate() {
            if self.df[id] == 0 {
                continue;
            }
            term_remap[id] = new_df.len() as u32;
            new_df.push(self.df[id]);
            let kept: Vec<Posting> = list
                .iter()
                .filter(|p| remap[p.row as usize] != u32::MAX)
                .map(|p| Posting {
                    row: remap[p.row as usize],
                    tf: p.tf,
                })
                .collect();
            new_postings.push(kept);
        }
        self.term_ids.retain(|_, id| {
            let new = term_remap[*id as usize];
            *id = new;
            new != u32::MAX
        });
        let mut fwd = Vec::with_capacity(self.fwd.len());
        let mut fwd_off = Vec::with_capacity(next as usize + 1);
        fwd_off.push(0u32);
        let mut chunk_ids = Vec::with_capacity(next as usize);
        let mut file_ids = Vec::with_capacity(next as usize);
        let mut doc_len = Vec::with_capacity(next as usize);
        for (r, new_row) in remap.iter().enumerate() {
            if *new_row == u32::MAX {
                continue;
            }
            let (a, b) = (self.fwd_off[r] as usize, self.fwd_off[r + 1] as usize);
            fwd.extend(self.fwd[a..b].iter().map(|id| term_remap[*id as usize]));
            fwd_off.push(fwd.len() as u32);
            chunk_ids.push(self.chunk_ids[r]);
            file_ids.push(self.file_ids[r]);
            doc_len.push(self.doc_len[r]);
        }
        self.by_chunk = chunk_ids
            .iter()
            .enumerate()
            .map(|(r, c)| (*c, r as u32))
            .collect();
        self.df = new_df;
        self.postings = new_postings;
        self.fwd = fwd;
        self.fwd_off = fwd_off;
        self.chunk_ids = chunk_ids;
        self.file_ids = file_ids;
        self.doc_len = doc_len;
    }

    /// Exact BM25 top-`n` over live rows of allowed files: term-at-a-time accumulation of every
    /// posting of every query term.
    fn search(&self, terms: &[String], files: &FileSet, n: usize) -> Vec<KeywordHit> {
        if self.live == 0 || n == 0 || files.is_empty_only() {
            return Vec::new();
        }
        let n_docs = self.live as f32;
        let avgdl = (self.total_len as f32 / n_docs).max(1.0);
        let mut acc = vec![0f32; self.rows()];
        let mut touched: Vec<u32> = Vec::new();
        for t in terms {
            let Some(&id) = self.term_ids.get(t.as_str()) else {
                continue;
            };
            let df = self.df[id as usize] as f32;
            if df == 0.0 {
                continue;
            }
            // Lucene's BM25 idf: always positive, so very common terms still count a little
            let idf = (1.0 + (n_docs - df + 0.5) / (df + 0.5)).ln();
            for p in &self.postings[id as usize] {
                let r = p.row as usize;
                if self.file_ids[r] < 0 {
                    continue;
                }
                let tf = p.tf as f32;
                let norm = K1 * (1.0 - B + B * self.doc_len[r] as f32 / avgdl);
                let s = idf * tf * (K1 + 1.0) / (tf + norm);
                if acc[r] == 0.0 {
                    touched.push(p.row);
                }
                acc[r] += s;
            }
        }
        let check = !matches!(files, FileSet::All);
        let mut scored: Vec<(f32, u32)> = touched
            .into_iter()
            .filter(|r| !check || files.allows(self.file_ids[*r as usize]))
            .map(|r| (acc[r as usize], r))
            .collect();
        if scored.len() > n {
            scored.select_nth_unstable_by(n - 1, |a, b| cmp_hits(a, b, &self.chunk_ids));
            scored.truncate(n);
        }
        scored.sort_unstable_by(|a, b| cmp_hits(a, b, &self.chunk_ids));
        scored
            .into_iter()
            .map(|(s, r)| KeywordHit {
                chunk_id: self.chunk_ids[r as usize],
                file_id: self.file_ids[r as usize],
                score: f64::from(s),
            })
            .collect()
    }
}

/// Best score first; ties by chunk id so results are deterministic.
fn cmp_hits(a: &(f32, u32), b: &(f32, u32), chunk_ids: &[i64]) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0)
        .then_with(|| chunk_ids[a.1 as usize].cmp(&chunk_ids[b.1 as usize]))
}

/// Stems and de-duplicates query words (already stopword-filtered by the caller).
pub(crate) fn query_terms(words: &[String]) -> Vec<String> {
    let analyzer = Analyzer::new();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let t = analyzer.stem(w).into_owned();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

impl Derived for Entry {
    fn empty() -> Entry {
        Entry::empty()
    }

    fn bytes(&self) -> usize {
        Entry::bytes(self)
    }

    fn remove_chunk(&mut self, chunk_id: i64) {
        Entry::remove_chunk(self, chunk_id);
    }

    fn rows(&self) -> usize {
        Entry::rows(self)
    }

    fn dead(&self) -> usize {
        Entry::dead(self)
    }

    fn compact(&mut self) {
        Entry::compact(self);
    }
}

/// The process-wide keyword index of one [`crate::Store`]: one entry per (organization,
/// customer).
pub(crate) struct KeywordCache {
    cache: DerivedCache<(i64, i64), Entry>,
}

impl KeywordCache {
    pub(crate) fn new(budget_bytes: usize) -> KeywordCache {
        KeywordCache {
            cache: DerivedCache::new(budget_bytes),
        }
    }

    /// Bytes held by all entries.
    pub(crate) fn bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Brings the customer's entry up to date with the database and returns the best `n`
    /// chunks of allowed files for the (stemmed, de-duplicated) `terms`.
    pub(crate) fn search(
        &self,
        conn: &Connection,
        org: i64,
        user: i64,
        terms: &[String],
        files: &FileSet,
        n: usize,
    ) -> Result<Vec<KeywordHit>, StoreError> {
        let mut analyzer = Analyzer::new();
        self.cache.with_current(
            conn,
            &(org, user),
            user,
            |tx| {
                let started = std::time::Instant::now();
                let mut a = Analyzer::new();
                let mut new = Entry::empty();
                let mut stmt = tx.prepare_cached(
                    "SELECT id, file_id, text FROM chunks
                     WHERE organization_user_id = ?1 AND organization_id = ?2 ORDER BY id",
                )?;
                let mut rows = stmt.query(params![user, org])?;
                while let Some(r) = rows.next()? {
                    let text = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
                    new.push(r.get(0)?, r.get(1)?, text, &mut a);
                }
                tracing::info!(
                    customer = user,
                    chunks = new.live,
                    terms = new.term_ids.len(),
                    bytes = new.bytes(),
                    ms = started.elapsed().as_millis() as u64,
                    "keyword index built"
                );
                Ok(new)
            },
            |tx, e, chunk_id| {
                let mut stmt = tx.prepare_cached(
                    "SELECT file_id, text FROM chunks
                     WHERE id = ?1 AND organization_user_id = ?2 AND organization_id = ?3",
                )?;
                let row: Option<(i64, String)> = stmt
                    .query_row(params![chunk_id, user, org], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((file_id, text)) = row {
                    e.push(chunk_id, file_id, &text, &mut analyzer);
                }
                Ok(())
            },
            |e| e.search(terms, files, n),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(docs: &[(i64, i64, &str)]) -> Entry {
        let mut a = Analyzer::new();
        let mut e = Entry::empty();
        for (c, f, t) in docs {
            e.push(*c, *f, t, &mut a);
        }
        e
    }

    fn terms(q: &str) -> Vec<String> {
        query_terms(&Analyzer::words(q))
    }

    fn ids(hits: &[KeywordHit]) -> Vec<i64> {
        hits.iter().map(|h| h.chunk_id).collect()
    }

    #[test]
    fn ranks_by_bm25_with_stemming() {
        let e = entry(&[
            (1, 10, "the cat sat on the mat"),
            (2, 10, "dogs and cats are running"),
            (3, 11, "a dog runs; the dog ran; dogs run"),
            (4, 11, "nothing relevant here at all"),
        ]);
        let hits = e.search(&terms("dog running"), &FileSet::All, 10);
        assert_eq!(ids(&hits), [3, 2]);
        assert!(hits[0].score > hits[1].score && hits[1].score > 0.0);
        // rarer term weighs more: "sat" is in one doc, "cat" in two
        let hits = e.search(&terms("sat cat"), &FileSet::All, 1);
        assert_eq!(ids(&hits), [1]);
        assert!(e.search(&terms("zebra"), &FileSet::All, 10).is_empty());
    }

    #[test]
    fn filters_and_limits() {
        let e = entry(&[
            (1, 10, "alpha beta"),
            (2, 11, "alpha"),
            (3, 12, "alpha alpha"),
        ]);
        let only: FileSet = FileSet::Only([11].into_iter().collect());
        assert_eq!(ids(&e.search(&terms("alpha"), &only, 10)), [2]);
        let except: FileSet = FileSet::Except([12].into_iter().collect());
        assert_eq!(e.search(&terms("alpha"), &except, 10).len(), 2);
        assert_eq!(e.search(&terms("alpha"), &FileSet::All, 1).len(), 1);
        assert!(
            e.search(&terms("alpha"), &FileSet::Only(Default::default()), 5)
                .is_empty()
        );
    }

    #[test]
    fn deletes_update_statistics_and_compaction_keeps_results() {
        let mut e = entry(&[
            (1, 10, "rare common"),
            (2, 10, "common"),
            (3, 10, "common"),
            (4, 10, "common word"),
            (5, 10, "ephemeral"),
        ]);
        e.remove_chunk(5);
        let before = e.search(&terms("common rare word"), &FileSet::All, 10);
        e.remove_chunk(2);
        e.remove_chunk(2);
        assert_eq!(e.live, 3);
        assert_eq!(e.df[e.term_ids["ephemer"] as usize], 0);
        let id = e.term_ids["common"] as usize;
        assert_eq!(e.df[id], 3);
        let after = e.search(&terms("common rare word"), &FileSet::All, 10);
        assert!(!ids(&after).contains(&2));
        e.remove_chunk(3);
        let pre = e.search(&terms("common rare word"), &FileSet::All, 10);
        e.compact();
        assert_eq!(e.rows(), 2);
        assert!(!e.term_ids.contains_key("ephemer"));
        let post = e.search(&terms("common rare word"), &FileSet::All, 10);
        assert_eq!(pre, post);
        assert_eq!(ids(&before)[0], 1);
        // re-adding a chunk replaces its row
        let mut a = Analyzer::new();
        e.push(1, 10, "word", &mut a);
        assert_eq!(e.live, 2);
        assert!(e.search(&terms("rare"), &FileSet::All, 10).is_empty());
    }

    #[test]
    fn identifiers_and_scripts_are_found() {
        let e = entry(&[
            (1, 10, "call parse_pdf_tables on ABC-123"),
            (2, 10, "東京タワーの夜景"),
            (3, 10, "Café naïve résumé"),
        ]);
        assert_eq!(
            ids(&e.search(&terms("parsepdftables"), &FileSet::All, 5)),
            [1]
        );
        assert_eq!(ids(&e.search(&terms("pdf tables"), &FileSet::All, 5)), [1]);
        let q = carbide_core::search_text::query_text("東京");
        assert_eq!(ids(&e.search(&terms(&q), &FileSet::All, 5)), [2]);
        assert_eq!(ids(&e.search(&terms("cafe resume"), &FileSet::All, 5)), [3]);
    }
}
