//! What the in-memory indexes derived from the `chunks` table (the keyword index and the vector
//! cache) share: one entry per key (a customer, or a customer and model), built lazily, brought
//! up to date before every use from `index_generations` + `chunk_log`, and evicted least
//! recently used first when the cache holds more than its memory budget.
//!
//! Consistency across processes: before every use the entry's generation is compared with
//! `index_generations` (one indexed lookup); when it moved, the `chunk_log` rows after the
//! entry's last sequence number are applied (every logged chunk is removed, and re-added when the
//! op is `add`), or the entry is rebuilt when the backlog is large. Generation, log and chunk
//! data are read in one read transaction, so a delta and its data come from the same snapshot.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::StoreError;

/// Backlog size above which an entry is rebuilt instead of patched.
const RELOAD_AFTER_DELTAS: i64 = 50_000;

/// An index derived from chunk rows.
pub(crate) trait Derived: Send + Sync {
    /// An index with no rows (before the first build).
    fn empty() -> Self;
    /// Bytes held (approximate, for the budget); measured once per refresh, not per use.
    fn bytes(&self) -> usize;
    /// Removes a chunk's rows (tombstones are fine); unknown ids are ignored.
    fn remove_chunk(&mut self, chunk_id: i64);
    /// Rows held, dead ones included.
    fn rows(&self) -> usize;
    /// Rows removed but still held (tombstones).
    fn dead(&self) -> usize;
    /// Drops dead rows (done once a quarter of the rows are dead).
    fn compact(&mut self);
}

struct Slot<E> {
    generation: i64,
    last_seq: i64,
    last_used: AtomicU64,
    built: bool,
    /// `index.bytes()` as of the last refresh.
    bytes: usize,
    index: E,
}

/// A budgeted, lazily built, self-refreshing map of derived indexes.
pub(crate) struct DerivedCache<K, E> {
    entries: Mutex<HashMap<K, Arc<RwLock<Slot<E>>>>>,
    clock: AtomicU64,
    budget_bytes: usize,
}

impl<K: Eq + Hash + Clone, E: Derived> DerivedCache<K, E> {
    pub(crate) fn new(budget_bytes: usize) -> Self {
        DerivedCache {
            entries: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(1),
            budget_bytes,
        }
    }

    /// Bytes held by all entries.
    pub(crate) fn bytes(&self) -> usize {
        let map = self.entries.lock();
        map.values().map(|e| e.read().bytes).sum()
    }

    /// Brings the entry of `key` (chunks of customer `user`) up to date and runs `use_it` on
    /// it. `build` makes the whole entry from a snapshot; `add` adds one chunk by id (a chunk
    /// that no longer exists or does not belong to the entry is skipped by `add` itself).
    pub(crate) fn with_current<T>(
        &self,
        conn: &Connection,
        key: &K,
        user: i64,
        build: impl FnOnce(&Transaction<'_>) -> Result<E, StoreError>,
        add: impl FnMut(&Transaction<'_>, &mut E, i64) -> Result<(), StoreError>,
        use_it: impl FnOnce(&E) -> T,
    ) -> Result<T, StoreError> {
        let slot = {
            let mut map = self.entries.lock();
            map.entry(key.clone())
                .or_insert_with(|| {
                    Arc::new(RwLock::new(Slot {
                        generation: i64::MIN,
                        last_seq: 0,
                        last_used: AtomicU64::new(0),
                        built: false,
                        bytes: 0,
                        index: E::empty(),
                    }))
                })
                .clone()
        };
        refresh(conn, &slot, user, build, add)?;
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let out = {
            let s = slot.read();
            s.last_used.store(tick, Ordering::Relaxed);
            use_it(&s.index)
        };
        self.evict(key);
        Ok(out)
    }

    /// Drops least-recently used entries (never `keep`) until under budget.
    fn evict(&self, keep: &K) {
        let mut map = self.entries.lock();
        loop {
            let total: usize = map
                .values()
                .map(|e| e.try_read().map(|g| g.bytes).unwrap_or(0))
                .sum();
            if total <= self.budget_bytes || map.len() <= 1 {
                return;
            }
            let victim = map
                .iter()
                .filter(|(k, _)| *k != keep)
                .filter_map(|(k, e)| {
                    e.try_read()
                        .map(|g| (k.clone(), g.last_used.load(Ordering::Relaxed)))
                })
                .min_by_key(|(_, t)| *t)
                .map(|(k, _)| k);
            match victim {
                Some(k) => {
                    map.remove(&k);
                }
                None => return,
            }
        }
    }
}

fn refresh<E: Derived>(
    conn: &Connection,
    slot: &RwLock<Slot<E>>,
    user: i64,
    build: impl FnOnce(&Transaction<'_>) -> Result<E, StoreError>,
    mut add: impl FnMut(&Transaction<'_>, &mut E, i64) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let current = current_generation(conn, user)?;
    if slot.read().generation == current {
        return Ok(());
    }
    let mut s = slot.write();
    if s.generation == current {
        return Ok(());
    }
    // One snapshot for generation, backlog and chunk data.
    let tx = conn.unchecked_transaction()?;
    let generation = current_generation(&tx, user)?;
    let max_seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM chunk_log WHERE organization_user_id = ?1",
        [user],
        |r| r.get(0),
    )?;
    if !s.built || max_seq - s.last_seq > RELOAD_AFTER_DELTAS {
        s.index = build(&tx)?;
        s.built = true;
    } else {
        let mut stmt = tx.prepare_cached(
            "SELECT chunk_id, op FROM chunk_log
             WHERE organization_user_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
        )?;
        let deltas: Vec<(i64, String)> = stmt
            .query_map(params![user, s.last_seq, max_seq], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        for (chunk_id, op) in deltas {
            s.index.remove_chunk(chunk_id);
            if op == "add" {
                add(&tx, &mut s.index, chunk_id)?;
            }
        }
        let dead = s.index.dead();
        if dead > 0 && dead * 4 > s.index.rows() {
            s.index.compact();
        }
    }
    s.bytes = s.index.bytes();
    s.generation = generation;
    s.last_seq = max_seq;
    tx.finish()?;
    Ok(())
}

/// The customer's current index generation (0 before any chunk was written).
pub(crate) fn current_generation(conn: &Connection, user: i64) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT generation FROM index_generations WHERE organization_user_id = ?1",
            [user],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0))
}
