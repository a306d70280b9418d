//! In-memory exact vector index: one entry per (organization, customer, model) holding every
//! chunk vector of that customer contiguously, loaded lazily from SQLite and kept current from
//! `index_generations` + `chunk_log` deltas by [`crate::derived_cache`], with an LRU bound on
//! total memory.
//!
//! Two precisions, chosen per cache: `F32` scans the f32 rows; `Int8` scans per-row
//! symmetric-quantised rows (4× less memory traffic) and rescores the best candidates with the
//! exact f32 vectors. Tombstones mark deleted rows; the entry compacts itself when a quarter of its
//! rows are dead.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::derived_cache::{Derived, DerivedCache};

/// Scan precision of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorPrecision {
    /// Exact f32 dot products over every row.
    F32,
    /// int8 dot products over every row, then exact f32 rescoring of the best candidates.
    Int8,
}

impl VectorPrecision {
    /// Reads `CARBIDE_VECTOR_PRECISION` (`f32` | `int8`); defaults to [`VectorPrecision::Int8`]
    /// (measured 3.8x faster at 100k chunks with identical top-10, see `scripts/bench/search-latency`).
    pub fn from_env() -> VectorPrecision {
        match std::env::var("CARBIDE_VECTOR_PRECISION").ok().as_deref() {
            Some("f32") => VectorPrecision::F32,
            _ => VectorPrecision::Int8,
        }
    }
}

/// Which files a search may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSet {
    /// Every file of the customer.
    All,
    /// Only these files.
    Only(std::collections::HashSet<i64>),
    /// Every file except these.
    Except(std::collections::HashSet<i64>),
}

impl FileSet {
    /// True when `file_id` may be returned.
    #[inline]
    pub fn allows(&self, file_id: i64) -> bool {
        match self {
            FileSet::All => true,
            FileSet::Only(s) => s.contains(&file_id),
            FileSet::Except(s) => !s.contains(&file_id),
        }
    }

    /// True when nothing can match.
    pub fn is_empty_only(&self) -> bool {
        matches!(self, FileSet::Only(s) if s.is_empty())
    }
}

/// One semantic hit: a chunk and its best window's cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorHit {
    /// `chunks.id`.
    pub chunk_id: i64,
    /// Owning file.
    pub file_id: i64,
    /// Cosine similarity (vectors are L2-normalised).
    pub score: f32,
}

/// Result of a vector scan.
#[derive(Debug, Clone, Default)]
pub struct VectorScan {
    /// Best chunks, best first.
    pub hits: Vec<VectorHit>,
    /// Live vectors the customer has for the model (0 = nothing embedded with it).
    pub indexed: usize,
    /// Dimension of the stored vectors (`None` when there are none).
    pub dims: Option<usize>,
}

type Key = (i64, i64, String);

struct Entry {
    precision: VectorPrecision,
    dims: usize,
    chunk_ids: Vec<i64>,
    /// `-1` marks a deleted row.
    file_ids: Vec<i64>,
    data: Vec<f32>,
    q: Vec<i8>,
    scales: Vec<f32>,
    by_chunk: HashMap<i64, Vec<u32>>,
    dead: usize,
    multi_window: bool,
}

impl Entry {
    fn empty(precision: VectorPrecision) -> Entry {
        Entry {
            precision,
            dims: 0,
            chunk_ids: Vec::new(),
            file_ids: Vec::new(),
            data: Vec::new(),
            q: Vec::new(),
            scales: Vec::new(),
            by_chunk: HashMap::new(),
            dead: 0,
            multi_window: false,
        }
    }

    fn rows(&self) -> usize {
        self.chunk_ids.len()
    }

    fn live(&self) -> usize {
        self.rows() - self.dead
    }

    fn bytes(&self) -> usize {
        self.data.len() * 4
            + self.q.len()
            + self.scales.len() * 4
            + self.chunk_ids.len() * 16
            + self.by_chunk.len() * 48
    }

    fn push(&mut self, chunk_id: i64, file_id: i64, v: &[f32]) {
        if self.dims == 0 {
            self.dims = v.len();
        }
        if v.len() != self.dims {
            tracing::warn!(
                chunk_id,
                got = v.len(),
                want = self.dims,
                "vector with a different dimension ignored"
            );
            return;
        }
        let row = self.chunk_ids.len() as u32;
        let rows = self.by_chunk.entry(chunk_id).or_default();
        if !rows.is_empty() {
            self.multi_window = true;
        }
        rows.push(row);
        self.chunk_ids.push(chunk_id);
        self.file_ids.push(file_id);
        self.data.extend_from_slice(v);
        if self.precision == VectorPrecision::Int8 {
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            self.q.extend(
                v.iter()
                    .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
            );
            self.scales.push(scale);
        }
    }

    fn remove_chunk(&mut self, chunk_id: i64) {
        if let Some(rows) = self.by_chunk.remove(&chunk_id) {
            for r in rows {
                let r = r as usize;
                if self.file_ids[r] >= 0 {
                    self.file_ids[r] = -1;
                    self.dead += 1;
                }
            }
        }
    }

    fn compact(&mut self) {
        let old = std::mem::replace(self, Entry::empty(self.precision));
        self.dims = old.dims;
        for r in 0..old.chunk_ids.len() {
            if old.file_ids[r] >= 0 {
                let v = &old.data[r * old.dims..(r + 1) * old.dims];
                self.push(old.chunk_ids[r], old.file_ids[r], v);
            }
        }
    }
}

impl Derived for Entry {
    fn empty() -> Entry {
        // replaced by the first build, which knows the cache's precision
        Entry::empty(VectorPrecision::F32)
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
        self.dead
    }

    fn compact(&mut self) {
        Entry::compact(self);
    }
}

/// Decodes a little-endian f32 blob; `None` when its length is not a multiple of 4.
pub(crate) fn decode_vector(blob: &[u8]) -> Option<Vec<f32>> {
    if blob.is_empty() || blob.len() % 4 != 0 {
        return None;
    }
    Some(
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// Encodes a vector as a little-endian f32 blob.
pub(crate) fn encode_vector(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Dot product, using AVX2 code generation when the CPU has it (checked once, cached by std).
#[inline]
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { dot_f32_avx2(a, b) };
    }
    dot_f32_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_f32_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_portable(a, b)
}

/// int8 dot product, using AVX2 code generation when the CPU has it.
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { dot_i8_avx2(a, b) };
    }
    dot_i8_portable(a, b)
}

#[inline(always)]
fn dot_f32_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        // plain multiply-add (not f32::mul_add, a libm call without the fma target feature);
        // 16 independent lanes let LLVM vectorise
        for ((s, a), b) in acc.iter_mut().zip(x).zip(y) {
            *s += a * b;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[inline(always)]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 32];
    let ca = a.chunks_exact(32);
    let cb = b.chunks_exact(32);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, a), b) in acc.iter_mut().zip(x).zip(y) {
            *s += i32::from(*a as i16 * *b as i16);
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += i32::from(*x as i16 * *y as i16);
    }
    s
}

/// Keeps the `n` best `(score, row)` pairs of `scored` (any order on return).
fn top_n(scored: &mut Vec<(f32, u32)>, n: usize) {
    if scored.len() > n && n > 0 {
        scored.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(n);
    } else if n == 0 {
        scored.clear();
    }
}

/// The process-wide vector cache of one [`crate::Store`].
pub(crate) struct VectorCache {
    cache: DerivedCache<Key, Entry>,
    precision: VectorPrecision,
}

impl VectorCache {
    pub(crate) fn new(budget_bytes: usize, precision: VectorPrecision) -> VectorCache {
        VectorCache {
            cache: DerivedCache::new(budget_bytes),
            precision,
        }
    }

    pub(crate) fn precision(&self) -> VectorPrecision {
        self.precision
    }

    /// Bytes held by all entries.
    pub(crate) fn bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Brings the entry up to date with the database and scans it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search(
        &self,
        conn: &Connection,
        org: i64,
        user: i64,
        model: &str,
        query: &[f32],
        files: &FileSet,
        n: usize,
    ) -> Result<VectorScan, StoreError> {
        let key = (org, user, model.to_string());
        self.cache.with_current(
            conn,
            &key,
            user,
            |tx| {
                let mut e = Entry::empty(self.precision);
                load_all(tx, &mut e, org, user, model)?;
                Ok(e)
            },
            |tx, e, chunk_id| load_chunk(tx, e, org, user, model, chunk_id),
            |e| self.scan(e, query, files, n),
        )
    }

    fn scan(&self, e: &Entry, query: &[f32], files: &FileSet, n: usize) -> VectorScan {
        let dims = (e.dims > 0).then_some(e.dims);
        let mut out = VectorScan {
            hits: Vec::new(),
            indexed: e.live(),
            dims,
        };
        if e.live() == 0 || query.len() != e.dims || n == 0 || files.is_empty_only() {
            return out;
        }
        let d = e.dims;
        let check_files = !matches!(files, FileSet::All);
        let rows = e.rows();
        // windows of one chunk share a chunk: ask for extra rows so dedup keeps n chunks
        let want = if e.multi_window { n * 2 + 8 } else { n };
        let mut scored: Vec<(f32, u32)> = Vec::with_capacity(rows.min(1 << 20));
        match self.precision {
            VectorPrecision::F32 => {
                for r in 0..rows {
                    let f = e.file_ids[r];
                    if f < 0 || (check_files && !files.allows(f)) {
                        continue;
                    }
                    scored.push((dot_f32(query, &e.data[r * d..(r + 1) * d]), r as u32));
                }
                top_n(&mut scored, want);
            }
            VectorPrecision::Int8 => {
                let max = query.iter().fold(0f32, |m, x| m.max(x.abs()));
                let qs = if max > 0.0 { max / 127.0 } else { 1.0 };
                let qq: Vec<i8> = query
                    .iter()
                    .map(|x| (x / qs).round().clamp(-127.0, 127.0) as i8)
                    .collect();
                for r in 0..rows {
                    let f = e.file_ids[r];
                    if f < 0 || (check_files && !files.allows(f)) {
                        continue;
                    }
                    let s = dot_i8(&qq, &e.q[r * d..(r + 1) * d]) as f32 * qs * e.scales[r];
                    scored.push((s, r as u32));
                }
                // rescore a generous candidate pool exactly
                top_n(&mut scored, (want * 4).max(want + 64));
                for s in scored.iter_mut() {
                    let r = s.1 as usize;
                    s.0 = dot_f32(query, &e.data[r * d..(r + 1) * d]);
                }
                top_n(&mut scored, want);
            }
        }
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut seen = std::collections::HashSet::with_capacity(scored.len());
        for (s, r) in scored {
            let r = r as usize;
            if e.multi_window && !seen.insert(e.chunk_ids[r]) {
                continue;
            }
            out.hits.push(VectorHit {
                chunk_id: e.chunk_ids[r],
                file_id: e.file_ids[r],
                score: s,
            });
            if out.hits.len() == n {
                break;
            }
        }
        out
    }
}

fn load_all(
    conn: &Connection,
    e: &mut Entry,
    org: i64,
    user: i64,
    model: &str,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, file_id, vector FROM chunks
         WHERE organization_user_id = ?1 AND organization_id = ?2 AND embedding_model = ?3
           AND vector IS NOT NULL ORDER BY id",
    )?;
    let mut rows = stmt.query(params![user, org, model])?;
    while let Some(r) = rows.next()? {
        let blob = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        if let Some(v) = decode_vector(blob) {
            e.push(r.get(0)?, r.get(1)?, &v);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.file_id, w.vector FROM chunk_vectors w JOIN chunks c ON c.id = w.chunk_id
         WHERE c.organization_user_id = ?1 AND c.organization_id = ?2 AND c.embedding_model = ?3
         ORDER BY c.id, w.window",
    )?;
    let mut rows = stmt.query(params![user, org, model])?;
    while let Some(r) = rows.next()? {
        let blob = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        if let Some(v) = decode_vector(blob) {
            e.push(r.get(0)?, r.get(1)?, &v);
        }
    }
    Ok(())
}

fn load_chunk(
    conn: &Connection,
    e: &mut Entry,
    org: i64,
    user: i64,
    model: &str,
    chunk_id: i64,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT file_id, vector FROM chunks
         WHERE id = ?1 AND organization_user_id = ?2 AND organization_id = ?3
           AND embedding_model = ?4",
    )?;
    let row: Option<(i64, Option<Vec<u8>>)> = stmt
        .query_row(params![chunk_id, user, org, model], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((file_id, blob)) = row else {
        return Ok(());
    };
    if let Some(v) = blob.as_deref().and_then(decode_vector) {
        e.push(chunk_id, file_id, &v);
    }
    let mut stmt = conn
        .prepare_cached("SELECT vector FROM chunk_vectors WHERE chunk_id = ?1 ORDER BY window")?;
    let blobs: Vec<Vec<u8>> = stmt
        .query_map([chunk_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for b in blobs {
        if let Some(v) = decode_vector(&b) {
            e.push(chunk_id, file_id, &v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_agree() {
        let a: Vec<f32> = (0..384)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0)
            .collect();
        let b: Vec<f32> = (0..384)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0)
            .collect();
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot_f32(&a, &b) - exact).abs() < 1e-3);
        let qa: Vec<i8> = (0..100).map(|i| (i % 50) as i8 - 25).collect();
        let exact: i32 = qa.iter().map(|x| i32::from(*x) * i32::from(*x)).sum();
        assert_eq!(dot_i8(&qa, &qa), exact);
    }

    #[test]
    fn vector_blob_roundtrip() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(decode_vector(&encode_vector(&v)), Some(v));
        assert_eq!(decode_vector(&[1, 2, 3]), None);
    }

    #[test]
    fn tombstones_and_compaction() {
        let mut e = Entry::empty(VectorPrecision::Int8);
        for i in 0..8 {
            e.push(i, 100 + i, &[i as f32, 1.0]);
        }
        e.remove_chunk(3);
        e.remove_chunk(3);
        assert_eq!(e.live(), 7);
        e.compact();
        assert_eq!(e.rows(), 7);
        assert!(!e.by_chunk.contains_key(&3));
        assert_eq!(e.q.len(), 14);
    }
}
