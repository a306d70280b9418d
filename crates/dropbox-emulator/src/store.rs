//! One namespace tree ("store"): entries keyed by lowercased absolute path, a children
//! index for O(page) listings, remembered deletions, and the append-only change log that
//! cursors point into.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use crate::util::{name_of, parent_of};

/// File-specific metadata of one revision.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// Revision id (lowercase hex, unique).
    pub rev: String,
    /// Size in bytes.
    pub size: u64,
    /// Dropbox content_hash (also the blob key).
    pub content_hash: String,
    /// Client-supplied modification time (unix seconds).
    pub client_modified: i64,
    /// Server modification time (unix seconds).
    pub server_modified: i64,
    /// Whether `files/download` may serve it.
    pub is_downloadable: bool,
}

/// A live file or folder.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Absolute display path inside the store (`/Docs/a.txt`).
    pub display: String,
    /// Stable `id:…`.
    pub id: String,
    /// `Some` for files.
    pub file: Option<FileInfo>,
}

/// What happened to a path.
#[derive(Clone, Debug)]
pub enum ChangeKind {
    /// Created or modified (report the current state).
    Upsert,
    /// Removed; the display path at deletion time.
    Delete(String),
}

/// One change-log record.
#[derive(Clone, Debug)]
pub struct LogRec {
    /// Lowercased absolute path.
    pub path_lower: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// An item of a listing page, resolved against the store later.
#[derive(Clone, Debug)]
pub enum Item {
    /// A live entry at this lowercased path.
    Live(String),
    /// A deleted entry: lowercased path, display path.
    Deleted(String, String),
}

/// Errors of tree mutations.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Something other than a folder is in the way.
    #[error("path conflict at {0}")]
    Conflict(String),
    /// Nothing at that path.
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation is invalid (e.g. moving into itself).
    #[error("{0}")]
    Invalid(String),
}

/// A namespace tree.
#[derive(Debug, Default)]
pub struct Store {
    /// Live entries by lowercased absolute path.
    pub entries: BTreeMap<String, Entry>,
    /// Lowercased parent path → lowercased child paths.
    pub children: HashMap<String, BTreeSet<String>>,
    /// Paths that used to exist: lowercased → display.
    pub deleted: BTreeMap<String, String>,
    /// Change log; position `p` means "records `[p..]` not yet seen".
    pub log: Vec<LogRec>,
    /// Bumped by `cursors/reset`; cursors with another epoch get `reset`.
    pub epoch: u64,
    /// Folders created implicitly by `ensure_parents` (id, lowercased path), drained by
    /// the caller to index ids.
    pub created_ids: Vec<(String, String)>,
}

/// Keys of `map` inside `scope` (the scope itself first, then descendants) after `after`.
fn rec_keys<'a, V>(
    map: &'a BTreeMap<String, V>,
    scope: &'a str,
    after: Option<&'a str>,
) -> impl Iterator<Item = (&'a String, &'a V)> + 'a {
    let prefix = if scope.is_empty() {
        String::new()
    } else {
        format!("{scope}/")
    };
    let head = if after.is_none() && !scope.is_empty() {
        map.get_key_value(scope)
    } else {
        None
    };
    let lo = match after {
        Some(a) if a > prefix.as_str() => Bound::Excluded(a.to_string()),
        _ => Bound::Included(prefix.clone()),
    };
    head.into_iter().chain(
        map.range::<String, _>((lo, Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(&prefix)),
    )
}

fn in_scope(path: &str, scope: &str, recursive: bool) -> bool {
    if recursive {
        scope.is_empty()
            || path == scope
            || (path.starts_with(scope) && path.as_bytes().get(scope.len()) == Some(&b'/'))
    } else {
        parent_of(path) == scope
    }
}

impl Store {
    /// Current log position.
    pub fn position(&self) -> u64 {
        self.log.len() as u64
    }

    fn link(&mut self, lower: &str) {
        self.children
            .entry(parent_of(lower).to_string())
            .or_default()
            .insert(lower.to_string());
    }

    fn unlink(&mut self, lower: &str) {
        let parent = parent_of(lower).to_string();
        if let Some(set) = self.children.get_mut(&parent) {
            set.remove(lower);
            if set.is_empty() {
                self.children.remove(&parent);
            }
        }
    }

    /// Ensures every ancestor of `display` exists as a folder, creating missing ones with
    /// ids from `new_id`. Returns the display path rewritten with existing ancestors' case.
    pub fn ensure_parents(
        &mut self,
        display: &str,
        new_id: &mut dyn FnMut() -> String,
    ) -> Result<String, TreeError> {
        let mut cur_display = String::new();
        let comps: Vec<&str> = display.split('/').filter(|c| !c.is_empty()).collect();
        let Some((last, parents)) = comps.split_last() else {
            return Ok(String::new());
        };
        for comp in parents {
            let candidate = format!("{cur_display}/{comp}");
            let lower = candidate.to_lowercase();
            match self.entries.get(&lower) {
                Some(e) if e.file.is_some() => return Err(TreeError::Conflict(e.display.clone())),
                Some(e) => cur_display = e.display.clone(),
                None => {
                    let id = new_id();
                    self.created_ids.push((id.clone(), lower.clone()));
                    self.insert_entry(
                        lower,
                        Entry {
                            display: candidate.clone(),
                            id,
                            file: None,
                        },
                    );
                    cur_display = candidate;
                }
            }
        }
        Ok(format!("{cur_display}/{last}"))
    }

    /// Inserts (or replaces) an entry and logs an upsert.
    pub fn insert_entry(&mut self, lower: String, entry: Entry) {
        self.deleted.remove(&lower);
        if !self.entries.contains_key(&lower) {
            self.link(&lower);
        }
        self.entries.insert(lower.clone(), entry);
        self.log.push(LogRec {
            path_lower: lower,
            kind: ChangeKind::Upsert,
        });
    }

    /// Removes an entry and all descendants; logs deletions (parent first).
    pub fn remove_tree(&mut self, lower: &str) -> Result<Entry, TreeError> {
        let Some(root) = self.entries.get(lower).cloned() else {
            return Err(TreeError::NotFound(lower.to_string()));
        };
        let keys: Vec<String> = self.subtree_keys(lower);
        for key in &keys {
            if let Some(e) = self.entries.remove(key) {
                self.unlink(key);
                self.children.remove(key);
                self.deleted.insert(key.clone(), e.display.clone());
                self.log.push(LogRec {
                    path_lower: key.clone(),
                    kind: ChangeKind::Delete(e.display),
                });
            }
        }
        Ok(root)
    }

    /// Keys of `lower` and its descendants in order (parents first).
    pub fn subtree_keys(&self, lower: &str) -> Vec<String> {
        let prefix = format!("{lower}/");
        let mut keys = vec![lower.to_string()];
        keys.extend(
            self.entries
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone()),
        );
        keys
    }

    /// Moves `from` (and descendants) to `to_display`. Ids are kept. Logs deletions of
    /// the old paths and upserts of the new ones (case-only renames log nothing).
    pub fn move_tree(
        &mut self,
        from: &str,
        to_display: &str,
        new_id: &mut dyn FnMut() -> String,
    ) -> Result<String, TreeError> {
        let to_lower = to_display.to_lowercase();
        if !self.entries.contains_key(from) {
            return Err(TreeError::NotFound(from.to_string()));
        }
        if to_lower.starts_with(&format!("{from}/")) {
            return Err(TreeError::Invalid(
                "cannot move a folder into itself".into(),
            ));
        }
        if to_lower == from {
            // Case-only rename: update display paths without logging.
            let keys = self.subtree_keys(from);
            let old_root = self
                .entries
                .get(from)
                .map(|e| e.display.clone())
                .unwrap_or_default();
            for key in keys {
                if let Some(e) = self.entries.get_mut(&key) {
                    e.display = format!(
                        "{}{}",
                        to_display,
                        &e.display[old_root.len().min(e.display.len())..]
                    );
                }
            }
            return Ok(to_display.to_string());
        }
        if self.entries.contains_key(&to_lower) {
            return Err(TreeError::Conflict(to_display.to_string()));
        }
        let to_display = self.ensure_parents(to_display, new_id)?;
        let keys = self.subtree_keys(from);
        let old_root_display = self
            .entries
            .get(from)
            .map(|e| e.display.clone())
            .unwrap_or_default();
        let mut moved = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(e) = self.entries.remove(key) {
                self.unlink(key);
                self.children.remove(key);
                self.deleted.insert(key.clone(), e.display.clone());
                self.log.push(LogRec {
                    path_lower: key.clone(),
                    kind: ChangeKind::Delete(e.display.clone()),
                });
                moved.push(e);
            }
        }
        let old_len = old_root_display.len();
        for mut e in moved {
            let rest = e.display.get(old_len..).unwrap_or("").to_string();
            e.display = format!("{to_display}{rest}");
            let lower = e.display.to_lowercase();
            self.insert_entry(lower, e);
        }
        Ok(to_display)
    }

    /// One page of a fresh listing after `after` (exclusive). Returns the items and
    /// whether more remain.
    pub fn list_page(
        &self,
        scope: &str,
        recursive: bool,
        include_deleted: bool,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<Item>, bool) {
        let mut live: Vec<String> = Vec::new();
        let mut more_live = false;
        if recursive {
            for (k, _) in rec_keys(&self.entries, scope, after) {
                if live.len() == limit {
                    more_live = true;
                    break;
                }
                live.push(k.clone());
            }
        } else if let Some(set) = self.children.get(scope) {
            let iter: Box<dyn Iterator<Item = &String>> = match after {
                Some(a) => Box::new(set.range::<str, _>((Bound::Excluded(a), Bound::Unbounded))),
                None => Box::new(set.iter()),
            };
            for k in iter {
                if live.len() == limit {
                    more_live = true;
                    break;
                }
                live.push(k.clone());
            }
        }
        if !include_deleted {
            return (live.into_iter().map(Item::Live).collect(), more_live);
        }
        // Merge remembered deletions in key order, bounded by the live page's last key.
        let bound = if more_live {
            live.last().cloned()
        } else {
            None
        };
        let mut dels: Vec<(String, String)> = Vec::new();
        let mut more_del = false;
        for (k, d) in rec_keys(&self.deleted, scope, after) {
            if !recursive && parent_of(k) != scope {
                continue;
            }
            if let Some(b) = &bound {
                if k > b {
                    break;
                }
            }
            if dels.len() == limit {
                more_del = true;
                break;
            }
            dels.push((k.clone(), d.clone()));
        }
        let mut items: Vec<(String, Item)> = live
            .into_iter()
            .map(|k| (k.clone(), Item::Live(k)))
            .chain(
                dels.into_iter()
                    .map(|(k, d)| (k.clone(), Item::Deleted(k, d))),
            )
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let more = more_live || more_del || items.len() > limit;
        items.truncate(limit);
        (items.into_iter().map(|(_, i)| i).collect(), more)
    }

    /// Changes since `pos` in scope, up to `limit` items. Returns items, the new
    /// position, and whether more records remain.
    pub fn changes_page(
        &self,
        scope: &str,
        recursive: bool,
        pos: u64,
        limit: usize,
    ) -> (Vec<Item>, u64, bool) {
        let mut items = Vec::new();
        let mut p = pos as usize;
        while p < self.log.len() {
            if items.len() == limit {
                return (items, p as u64, true);
            }
            let rec = &self.log[p];
            p += 1;
            if !in_scope(&rec.path_lower, scope, recursive) || rec.path_lower == scope {
                continue;
            }
            match &rec.kind {
                ChangeKind::Upsert => {
                    if self.entries.contains_key(&rec.path_lower) {
                        items.push(Item::Live(rec.path_lower.clone()));
                    }
                }
                ChangeKind::Delete(d) => {
                    items.push(Item::Deleted(rec.path_lower.clone(), d.clone()));
                }
            }
        }
        (items, p as u64, false)
    }

    /// Whether any record in scope exists after `pos`.
    pub fn has_changes(&self, scope: &str, recursive: bool, pos: u64) -> bool {
        self.log
            .iter()
            .skip(pos as usize)
            .any(|r| in_scope(&r.path_lower, scope, recursive) && r.path_lower != scope)
    }

    /// Name of a path's last component.
    pub fn name(display: &str) -> &str {
        name_of(display)
    }
}
