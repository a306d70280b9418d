//! Organizations and their API keys.

use carbide_core::enums::{object_types, webhook_types};
use carbide_core::secrets::{hash_token, new_token};
use carbide_core::timefmt::now_unix;
use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::{Store, StoreError, parse_json};

/// Prefix of organization API keys.
pub const API_KEY_PREFIX: &str = "ck_live_";

/// An organization (a Carbon "organization": one app using carbide).
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// Integer id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Optional nickname.
    pub nickname: Option<String>,
    /// Whether Connect UI branding is removed.
    pub remove_branding: bool,
    /// Custom branding object, if any.
    pub custom_branding: Option<Value>,
    /// Organization-level limits.
    pub custom_limits: Value,
    /// Org-wide defaults for customer settings (`/organization/update`).
    pub global_user_config: Value,
    /// Per data-source-type configuration (`/organization/update`).
    pub data_source_configs: Value,
    /// Connector settings.
    pub connector_settings: Value,
    /// When statistics were last aggregated (unix seconds).
    pub file_statistics_aggregated_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Aggregated statistics of an organization or customer (maps keyed by source / format).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrganizationStatistics {
    /// Bytes per source.
    pub aggregate_file_size: serde_json::Map<String, Value>,
    /// Characters per source.
    pub aggregate_num_characters: serde_json::Map<String, Value>,
    /// Tokens per source.
    pub aggregate_num_tokens: serde_json::Map<String, Value>,
    /// Embeddings per source.
    pub aggregate_num_embeddings: serde_json::Map<String, Value>,
    /// Files per source.
    pub aggregate_num_files_by_source: serde_json::Map<String, Value>,
    /// Files per file format.
    pub aggregate_num_files_by_file_format: serde_json::Map<String, Value>,
}

const ORG_COLS: &str = "id, name, nickname, remove_branding, custom_branding, custom_limits, \
    global_user_config, data_source_configs, connector_settings, file_statistics_aggregated_at, \
    created_at, updated_at";

fn org_from_row(r: &Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        id: r.get(0)?,
        name: r.get(1)?,
        nickname: r.get(2)?,
        remove_branding: r.get(3)?,
        custom_branding: r.get::<_, Option<String>>(4)?.map(|s| parse_json(&s)),
        custom_limits: parse_json(&r.get::<_, String>(5)?),
        global_user_config: parse_json(&r.get::<_, String>(6)?),
        data_source_configs: parse_json(&r.get::<_, String>(7)?),
        connector_settings: parse_json(&r.get::<_, String>(8)?),
        file_statistics_aggregated_at: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

impl Store {
    /// Creates an organization and its first API key (returned in plain text, stored hashed).
    pub fn create_organization(&self, name: &str) -> Result<(Organization, String), StoreError> {
        let now = now_unix();
        let key = new_token(API_KEY_PREFIX);
        let id = self.write(|tx| {
            tx.execute(
                "INSERT INTO organizations (name, created_at, updated_at) VALUES (?1, ?2, ?2)",
                params![name, now],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO api_keys (organization_id, key_hash, created_at) VALUES (?1, ?2, ?3)",
                params![id, hash_token(&key), now],
            )?;
            Ok(id)
        })?;
        Ok((self.get_organization(id)?, key))
    }

    /// All organizations, by id.
    pub fn list_organizations(&self) -> Result<Vec<Organization>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {ORG_COLS} FROM organizations ORDER BY id"))?;
            let rows = st.query_map([], org_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// One organization.
    pub fn get_organization(&self, org_id: i64) -> Result<Organization, StoreError> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {ORG_COLS} FROM organizations WHERE id = ?1"),
                [org_id],
                org_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound("organization"))
        })
    }

    /// Replaces every API key of the organization with a new one (old keys stop working).
    pub fn rotate_api_key(&self, org_id: i64) -> Result<String, StoreError> {
        let key = new_token(API_KEY_PREFIX);
        let now = now_unix();
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT id FROM organizations WHERE id = ?1",
                    [org_id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound("organization"));
            }
            tx.execute("DELETE FROM api_keys WHERE organization_id = ?1", [org_id])?;
            tx.execute(
                "INSERT INTO api_keys (organization_id, key_hash, created_at) VALUES (?1, ?2, ?3)",
                params![org_id, hash_token(&key), now],
            )?;
            Ok(())
        })?;
        Ok(key)
    }

    /// The organization owning this API key, if the key is valid.
    pub fn organization_for_api_key(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let h = hash_token(key);
        self.read(|c| {
            Ok(c.query_row(
                "SELECT organization_id FROM api_keys WHERE key_hash = ?1",
                [h],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// `/organization/update`: replaces the given settings (absent = unchanged).
    pub fn update_organization(
        &self,
        org_id: i64,
        global_user_config: Option<Value>,
        data_source_configs: Option<Value>,
    ) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            if let Some(g) = global_user_config {
                tx.execute(
                    "UPDATE organizations SET global_user_config = ?2, updated_at = ?3 WHERE id = ?1",
                    params![org_id, g.to_string(), now],
                )?;
            }
            if let Some(d) = data_source_configs {
                tx.execute(
                    "UPDATE organizations SET data_source_configs = ?2, updated_at = ?3 WHERE id = ?1",
                    params![org_id, d.to_string(), now],
                )?;
            }
            Ok(())
        })
    }

    /// Statistics of the organization's files (every customer), keyed by source / format.
    pub fn organization_statistics(
        &self,
        org_id: i64,
    ) -> Result<OrganizationStatistics, StoreError> {
        self.file_statistics("organization_id = ?1", org_id)
    }

    /// Statistics of one customer's files.
    pub fn customer_statistics(
        &self,
        customer_pk: i64,
    ) -> Result<OrganizationStatistics, StoreError> {
        self.file_statistics("organization_user_id = ?1", customer_pk)
    }

    fn file_statistics(&self, cond: &str, id: i64) -> Result<OrganizationStatistics, StoreError> {
        self.read(|c| {
            let mut out = OrganizationStatistics::default();
            let mut st = c.prepare(&format!(
                "SELECT source, COUNT(*), SUM(coalesce(file_size, 0)), SUM(coalesce(num_characters, 0)), \
                 SUM(coalesce(num_tokens, 0)), SUM(coalesce(num_embeddings, 0)) \
                 FROM files WHERE {cond} AND is_folder = 0 GROUP BY source"
            ))?;
            let rows = st
                .query_map([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (src, n, size, chars, toks, embs) in rows {
                out.aggregate_num_files_by_source.insert(src.clone(), n.into());
                out.aggregate_file_size.insert(src.clone(), size.into());
                out.aggregate_num_characters.insert(src.clone(), chars.into());
                out.aggregate_num_tokens.insert(src.clone(), toks.into());
                out.aggregate_num_embeddings.insert(src, embs.into());
            }
            let mut st = c.prepare(&format!(
                "SELECT coalesce(file_format, 'UNKNOWN'), COUNT(*) FROM files \
                 WHERE {cond} AND is_folder = 0 GROUP BY 1"
            ))?;
            let rows = st
                .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            for (fmt, n) in rows {
                out.aggregate_num_files_by_file_format.insert(fmt, n.into());
            }
            Ok(out)
        })
    }

    /// `/organization/statistics`: recompute aggregates, stamp the time and enqueue
    /// `FILE_STATISTICS_AGGREGATED` for every webhook of the organization.
    pub fn aggregate_statistics(&self, org_id: i64) -> Result<(), StoreError> {
        let now = now_unix();
        let ids = self.write(|tx| {
            tx.execute(
                "UPDATE organizations SET file_statistics_aggregated_at = ?2 WHERE id = ?1",
                params![org_id, now],
            )?;
            crate::outbox::enqueue_tx(
                tx,
                self,
                org_id,
                None,
                webhook_types::FILE_STATISTICS_AGGREGATED,
                object_types::NONE,
                &Value::String(org_id.to_string()),
                None,
            )
        })?;
        tracing::debug!(org_id, events = ids, "statistics aggregated");
        Ok(())
    }
}
