//! Source items: the remote tree of a data source as last enumerated
//! (`/integrations/items/sync`), listed by `/integrations/items/list`. A listing runs as a
//! generation: pages are upserted with the new generation number, and finishing it resolves
//! parent ids from paths and drops items the listing no longer saw.

use carbide_core::enums::{data_source_status, webhook_types};
use carbide_core::timefmt::now_unix;
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use crate::data_sources::{DataSource, enqueue_ds_event, get_ds_tx};
use crate::users::placeholders;
use crate::{Dir, Page, Store, StoreError};

/// One entry of a listing page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewSourceItem {
    /// Dropbox id (`id:…`).
    pub external_id: String,
    pub name: String,
    /// `FILE` or `FOLDER`.
    pub item_type: String,
    pub path_lower: String,
    pub path_display: Option<String>,
    /// Lower-cased path of the parent folder; `None` for top-level entries.
    pub parent_path_lower: Option<String>,
    /// `StorageFileFormats` value, `None` for folders and unknown types.
    pub file_format: Option<String>,
    pub size: Option<i64>,
    pub rev: Option<String>,
    pub content_hash: Option<String>,
    pub server_modified: Option<String>,
    pub is_downloadable: bool,
    /// Whether carbide can sync it (folder, or a supported, downloadable file within limits).
    pub is_selectable: bool,
    pub external_url: Option<String>,
}

/// A stored item.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceItem {
    pub id: i64,
    pub data_source_id: i64,
    pub organization_id: i64,
    pub organization_user_id: i64,
    pub organization_supplied_user_id: String,
    pub data_source_type: String,
    pub external_id: String,
    pub name: String,
    pub item_type: String,
    pub path_lower: String,
    pub path_display: Option<String>,
    pub parent_external_id: Option<String>,
    pub file_format: Option<String>,
    pub size: Option<i64>,
    pub rev: Option<String>,
    pub content_hash: Option<String>,
    pub server_modified: Option<String>,
    pub is_downloadable: bool,
    pub is_selectable: bool,
    pub external_url: Option<String>,
    pub organization_user_file_to_sync_id: Option<i64>,
    pub synced_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which level of the tree to list.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemParent {
    /// Top-level entries.
    Root,
    /// Children of the folder with this external id.
    Folder(String),
    /// The whole tree.
    Any,
}

/// Order of `/integrations/items/list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOrder {
    Name,
    Id,
    /// Folders before files, then by name.
    DirectoriesFirst,
}

/// `/integrations/items/list` query (defaults applied).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemQuery {
    pub parent: ItemParent,
    pub external_ids: Option<Vec<String>>,
    pub ids: Option<Vec<i64>>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    pub file_formats: Option<Vec<String>>,
    pub item_types: Option<Vec<String>>,
    pub page: Page,
    pub order_by: ItemOrder,
    pub dir: Dir,
}

const ITEM_COLS: &str = "i.id, i.data_source_id, i.organization_id, i.organization_user_id, \
    u.organization_supplied_user_id, d.data_source_type, i.external_id, i.name, i.item_type, i.path_lower, \
    i.path_display, i.parent_external_id, i.file_format, i.size, i.rev, i.content_hash, i.server_modified, \
    i.is_downloadable, i.is_selectable, i.external_url, i.organization_user_file_to_sync_id, i.synced_at, \
    i.created_at, i.updated_at";

const FROM_ITEMS: &str = "source_items i JOIN data_sources d ON d.id = i.data_source_id \
    JOIN organization_users u ON u.id = i.organization_user_id";

fn item_from_row(r: &Row<'_>) -> rusqlite::Result<SourceItem> {
    Ok(SourceItem {
        id: r.get(0)?,
        data_source_id: r.get(1)?,
        organization_id: r.get(2)?,
        organization_user_id: r.get(3)?,
        organization_supplied_user_id: r.get(4)?,
        data_source_type: r.get(5)?,
        external_id: r.get(6)?,
        name: r.get(7)?,
        item_type: r.get(8)?,
        path_lower: r.get(9)?,
        path_display: r.get(10)?,
        parent_external_id: r.get(11)?,
        file_format: r.get(12)?,
        size: r.get(13)?,
        rev: r.get(14)?,
        content_hash: r.get(15)?,
        server_modified: r.get(16)?,
        is_downloadable: r.get(17)?,
        is_selectable: r.get(18)?,
        external_url: r.get(19)?,
        organization_user_file_to_sync_id: r.get(20)?,
        synced_at: r.get(21)?,
        created_at: r.get(22)?,
        updated_at: r.get(23)?,
    })
}

impl Store {
    /// Starts an item listing: status SYNCING, a new generation number (returned).
    pub fn begin_item_listing(&self, data_source_id: i64) -> Result<i64, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let generation: i64 = tx.query_row(
                "UPDATE data_sources SET items_generation = items_generation + 1, sync_status = ?2, \
                 sync_error_message = NULL, updated_at = ?3 WHERE id = ?1 RETURNING items_generation",
                params![data_source_id, data_source_status::SYNCING, now],
                |r| r.get(0),
            )?;
            Ok(generation)
        })
    }

    /// Upserts one page of a listing under `generation` (one transaction). Returns false, and
    /// writes nothing, when the listing was cancelled or superseded (the source is no longer
    /// SYNCING under this generation).
    pub fn upsert_source_items(
        &self,
        data_source_id: i64,
        generation: i64,
        items: &[NewSourceItem],
    ) -> Result<bool, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let row: Option<(i64, i64, i64, String)> = tx
                .query_row(
                    "SELECT organization_id, organization_user_id, items_generation, sync_status \
                     FROM data_sources WHERE id = ?1",
                    [data_source_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((org, cust, current, status)) = row else {
                return Ok(false);
            };
            if current != generation || status != data_source_status::SYNCING {
                return Ok(false);
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO source_items (data_source_id, organization_id, organization_user_id, external_id, \
                 name, item_type, path_lower, path_display, parent_path_lower, file_format, size, rev, \
                 content_hash, server_modified, is_downloadable, is_selectable, external_url, generation, \
                 synced_at, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?19, ?19) \
                 ON CONFLICT (data_source_id, external_id) DO UPDATE SET name = excluded.name, \
                 item_type = excluded.item_type, path_lower = excluded.path_lower, \
                 path_display = excluded.path_display, parent_path_lower = excluded.parent_path_lower, \
                 file_format = excluded.file_format, size = excluded.size, rev = excluded.rev, \
                 content_hash = excluded.content_hash, server_modified = excluded.server_modified, \
                 is_downloadable = excluded.is_downloadable, is_selectable = excluded.is_selectable, \
                 external_url = excluded.external_url, generation = excluded.generation, \
                 synced_at = excluded.synced_at, \
                 updated_at = CASE WHEN source_items.rev IS excluded.rev AND source_items.path_lower = excluded.path_lower \
                     AND source_items.name = excluded.name THEN source_items.updated_at ELSE excluded.updated_at END",
            )?;
            for it in items {
                st.execute(params![
                    data_source_id,
                    org,
                    cust,
                    it.external_id,
                    it.name,
                    it.item_type,
                    it.path_lower,
                    it.path_display,
                    it.parent_path_lower,
                    it.file_format,
                    it.size,
                    it.rev,
                    it.content_hash,
                    it.server_modified,
                    it.is_downloadable,
                    it.is_selectable,
                    it.external_url,
                    generation,
                    now
                ])?;
            }
            Ok(true)
        })
    }

    /// Completes a listing: resolves parents, drops items the listing did not see, stores the
    /// cursor, sets `source_items_synced_at` and READY, and enqueues DATA_SOURCE_READY.
    /// Returns `None` (and changes nothing) when the listing was cancelled or superseded.
    pub fn finish_item_listing(
        &self,
        data_source_id: i64,
        generation: i64,
        cursor: &str,
    ) -> Result<Option<DataSource>, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let (current, status): (i64, String) = tx.query_row(
                "SELECT items_generation, sync_status FROM data_sources WHERE id = ?1",
                [data_source_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if current != generation || status != data_source_status::SYNCING {
                return Ok(None);
            }
            tx.execute(
                "DELETE FROM source_items WHERE data_source_id = ?1 AND generation != ?2",
                params![data_source_id, generation],
            )?;
            tx.execute(
                "UPDATE source_items SET parent_external_id = (SELECT p.external_id FROM source_items p \
                 WHERE p.data_source_id = source_items.data_source_id AND p.path_lower = source_items.parent_path_lower \
                 AND p.item_type = 'FOLDER') WHERE data_source_id = ?1",
                [data_source_id],
            )?;
            tx.execute(
                "UPDATE data_sources SET sync_status = ?2, sync_error_message = NULL, items_cursor = ?3, \
                 source_items_synced_at = ?4, last_synced_at = ?4, updated_at = ?4 WHERE id = ?1",
                params![data_source_id, data_source_status::READY, cursor, now],
            )?;
            let ds = get_ds_tx(tx, data_source_id)?.ok_or(StoreError::NotFound("data source"))?;
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM source_items WHERE data_source_id = ?1",
                [data_source_id],
                |r| r.get(0),
            )?;
            enqueue_ds_event(
                tx,
                self,
                &ds,
                webhook_types::DATA_SOURCE_READY,
                &[("num_items", serde_json::json!(n))],
            )?;
            Ok(Some(ds))
        })
    }

    /// `/integrations/items/list` for a data source of the customer.
    pub fn list_source_items(
        &self,
        org_id: i64,
        customer_pk: i64,
        data_source_id: i64,
        q: &ItemQuery,
    ) -> Result<(Vec<SourceItem>, i64), StoreError> {
        // tenancy first: a foreign data source is "not found"
        self.get_data_source(org_id, Some(customer_pk), data_source_id)?;
        let mut conds = vec![
            "i.data_source_id = ?".to_string(),
            "i.organization_id = ?".to_string(),
            "i.organization_user_id = ?".to_string(),
        ];
        let mut args: Vec<Sql> = vec![data_source_id.into(), org_id.into(), customer_pk.into()];
        match &q.parent {
            ItemParent::Root => conds.push("i.parent_external_id IS NULL".into()),
            ItemParent::Folder(p) => {
                conds.push("i.parent_external_id = ?".into());
                args.push(Sql::Text(p.clone()));
            }
            ItemParent::Any => {}
        }
        if let Some(v) = &q.external_ids {
            conds.push(format!("i.external_id IN ({})", placeholders(v.len())));
            args.extend(v.iter().map(|s| Sql::Text(s.clone())));
        }
        if let Some(v) = &q.ids {
            conds.push(format!("i.id IN ({})", placeholders(v.len())));
            args.extend(v.iter().map(|i| Sql::from(*i)));
        }
        if let Some(n) = &q.name {
            conds.push("instr(lower(i.name), lower(?)) > 0".into());
            args.push(Sql::Text(n.clone()));
        }
        if let Some(v) = &q.file_formats {
            conds.push(format!("i.file_format IN ({})", placeholders(v.len())));
            args.extend(v.iter().map(|s| Sql::Text(s.clone())));
        }
        if let Some(v) = &q.item_types {
            conds.push(format!("i.item_type IN ({})", placeholders(v.len())));
            args.extend(v.iter().map(|s| Sql::Text(s.clone())));
        }
        let where_ = conds.join(" AND ");
        let mut page_where = where_.clone();
        let mut page_args = args.clone();
        if q.page.starting_id > 0 {
            page_where.push_str(" AND i.id > ?");
            page_args.push(q.page.starting_id.into());
        }
        page_args.push(q.page.limit().into());
        page_args.push(q.page.offset().into());
        let d = q.dir.sql();
        let order = match q.order_by {
            ItemOrder::Name => format!("i.name COLLATE NOCASE {d}, i.id {d}"),
            ItemOrder::Id => format!("i.id {d}"),
            ItemOrder::DirectoriesFirst => {
                format!("(i.item_type = 'FOLDER') DESC, i.name COLLATE NOCASE {d}, i.id {d}")
            }
        };
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ITEM_COLS} FROM {FROM_ITEMS} WHERE {page_where} ORDER BY {order} LIMIT ? OFFSET ?"
            ))?;
            let rows = st
                .query_map(params_from_iter(page_args), item_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let count: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM {FROM_ITEMS} WHERE {where_}"),
                params_from_iter(args),
                |r| r.get(0),
            )?;
            Ok((rows, count))
        })
    }

    /// Number of items stored for a data source.
    pub fn source_item_count(&self, data_source_id: i64) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM source_items WHERE data_source_id = ?1",
                [data_source_id],
                |r| r.get(0),
            )?)
        })
    }
}
