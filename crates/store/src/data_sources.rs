//! Data sources (Carbon `OrganizationUserDataSource`s: one per Dropbox account per customer),
//! their encrypted Dropbox tokens with compare-and-swap refresh bookkeeping, and the single-use
//! OAuth states of the connect flow. Webhooks (ADD, REVOKE, CANCEL) are enqueued in the same
//! transaction as the change they announce.

use carbide_core::enums::{data_source_action, data_source_status, object_types, webhook_types};
use carbide_core::secrets::{hash_token, new_token};
use carbide_core::timefmt::now_unix;
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};
use serde_json::{Map, Value, json};

use crate::files::TagFilter;
use crate::outbox::enqueue_tx;
use crate::users::placeholders;
use crate::{Dir, Page, Store, StoreError, parse_json};

/// One data source as Carbon shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    pub id: i64,
    pub organization_id: i64,
    pub organization_user_id: i64,
    pub organization_supplied_user_id: String,
    /// `DROPBOX`.
    pub data_source_type: String,
    /// Dropbox account id.
    pub data_source_external_id: String,
    /// `DataSourceSyncStatuses`.
    pub sync_status: String,
    /// Why the last listing failed (not on Carbon's wire; shown in metadata).
    pub sync_error_message: Option<String>,
    pub revoked_access: bool,
    /// `DataSourceLastSyncActions`.
    pub last_sync_action: String,
    /// Whether the customer has scheduled sync enabled for this source type.
    pub enable_auto_sync: bool,
    pub tags: Map<String, Value>,
    /// Account facts (email, display name, account type, team, namespaces, scopes).
    pub data_source_metadata: Map<String, Value>,
    /// Options of the `oauth_url` call that connected the source.
    pub sync_options: Map<String, Value>,
    /// `list_folder` cursor at the end of the last complete item listing.
    pub items_cursor: Option<String>,
    /// Unix seconds.
    pub source_items_synced_at: Option<i64>,
    pub files_synced_at: Option<i64>,
    pub last_synced_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Some of the source's files are queued or being synced (derived, not stored).
    pub files_in_flight: bool,
}

impl DataSource {
    /// The status Carbon's API shows: the stored listing status, except that a READY source
    /// whose files are still queued or syncing reports SYNCING until they settle.
    pub fn reported_sync_status(&self) -> &str {
        if self.files_in_flight && self.sync_status == data_source_status::READY {
            data_source_status::SYNCING
        } else {
            &self.sync_status
        }
    }
}

/// Order column of `/user_data_sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSourceOrder {
    CreatedAt,
    UpdatedAt,
}

/// `/user_data_sources` and `/data_sources` query (defaults applied).
#[derive(Debug, Clone, PartialEq)]
pub struct DataSourceQuery {
    pub page: Page,
    pub order_by: DataSourceOrder,
    pub dir: Dir,
    pub ids: Option<Vec<i64>>,
    /// `DataSourceType` value.
    pub source: Option<String>,
    pub revoked_access: Option<bool>,
    pub tags: Option<TagFilter>,
}

/// What the connect flow learnt about a Dropbox account and the tokens it obtained.
#[derive(Clone)]
pub struct DropboxConnection {
    pub account_id: String,
    /// Account facts stored as `data_source_metadata` (no secrets).
    pub metadata: Map<String, Value>,
    /// The app (client id) the tokens belong to; refreshes must use the same app.
    pub app_key: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub scopes: String,
    /// Path root for team-space accounts.
    pub root_namespace_id: Option<String>,
}

impl std::fmt::Debug for DropboxConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxConnection")
            .field("account_id", &self.account_id)
            .field("app_key", &self.app_key)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Decrypted credentials of a data source.
#[derive(Clone)]
pub struct DropboxCredentials {
    pub data_source_id: i64,
    pub organization_id: i64,
    pub app_key: String,
    pub account_id: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds; `None` = does not expire.
    pub expires_at: Option<i64>,
    pub root_namespace_id: Option<String>,
    /// Bumped by every stored refresh.
    pub token_version: i64,
    /// The data source lost access.
    pub revoked: bool,
}

impl std::fmt::Debug for DropboxCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxCredentials")
            .field("data_source_id", &self.data_source_id)
            .field("app_key", &self.app_key)
            .field("expires_at", &self.expires_at)
            .field("token_version", &self.token_version)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// A pending OAuth flow to record.
#[derive(Clone)]
pub struct NewOAuthState {
    pub organization_id: i64,
    pub organization_user_id: i64,
    pub service: String,
    pub app_key: String,
    pub redirect_uri: String,
    pub pkce_verifier: String,
    pub options: Map<String, Value>,
    pub ttl_secs: i64,
}

/// A consumed OAuth state.
#[derive(Clone)]
pub struct OAuthState {
    pub organization_id: i64,
    pub organization_user_id: i64,
    pub organization_supplied_user_id: String,
    pub service: String,
    pub app_key: String,
    pub redirect_uri: String,
    pub pkce_verifier: String,
    pub options: Map<String, Value>,
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("organization_id", &self.organization_id)
            .field("organization_user_id", &self.organization_user_id)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Outcome of presenting a state value.
#[derive(Debug, Clone)]
pub enum ConsumedState {
    /// Valid: now marked used.
    Valid(OAuthState),
    /// Already presented once.
    AlreadyUsed,
    /// Older than its lifetime.
    Expired,
    /// Never issued here.
    Unknown,
}

pub(crate) const DS_COLS: &str = concat!(
    "d.id, d.organization_id, d.organization_user_id, u.organization_supplied_user_id, \
    d.data_source_type, d.data_source_external_id, d.sync_status, d.sync_error_message, d.revoked_access, \
    d.last_sync_action, EXISTS (SELECT 1 FROM json_each(u.auto_sync_enabled_sources) e \
        WHERE e.value = 'ALL' OR e.value = d.data_source_type), \
    d.tags, d.data_source_metadata, d.sync_options, d.items_cursor, d.source_items_synced_at, \
    d.files_synced_at, d.last_synced_at, d.created_at, d.updated_at, \
    EXISTS (SELECT 1 FROM files f WHERE f.data_source_id = d.id AND f.sync_status IN ",
    crate::open_statuses_sql!(),
    ")"
);

pub(crate) const FROM_DS: &str =
    "data_sources d JOIN organization_users u ON u.id = d.organization_user_id";

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn ds_from_row(r: &Row<'_>) -> rusqlite::Result<DataSource> {
    Ok(DataSource {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        organization_user_id: r.get(2)?,
        organization_supplied_user_id: r.get(3)?,
        data_source_type: r.get(4)?,
        data_source_external_id: r.get(5)?,
        sync_status: r.get(6)?,
        sync_error_message: r.get(7)?,
        revoked_access: r.get(8)?,
        last_sync_action: r.get(9)?,
        enable_auto_sync: r.get(10)?,
        tags: obj(parse_json(&r.get::<_, String>(11)?)),
        data_source_metadata: obj(parse_json(&r.get::<_, String>(12)?)),
        sync_options: obj(parse_json(&r.get::<_, String>(13)?)),
        items_cursor: r.get(14)?,
        source_items_synced_at: r.get(15)?,
        files_synced_at: r.get(16)?,
        last_synced_at: r.get(17)?,
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        files_in_flight: r.get(20)?,
    })
}

pub(crate) fn get_ds_tx(
    c: &rusqlite::Connection,
    id: i64,
) -> Result<Option<DataSource>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {DS_COLS} FROM {FROM_DS} WHERE d.id = ?1"),
        [id],
        ds_from_row,
    )
    .optional()?)
}

fn data_source_event(ds: &DataSource, extra: &[(&str, Value)]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("data_source_type".into(), json!(ds.data_source_type));
    m.insert(
        "data_source_external_id".into(),
        json!(ds.data_source_external_id),
    );
    m.insert("sync_status".into(), json!(ds.reported_sync_status()));
    for (k, v) in extra {
        m.insert((*k).to_string(), v.clone());
    }
    m
}

/// Enqueues `webhook_type` about `ds` in `tx`.
pub(crate) fn enqueue_ds_event(
    tx: &Transaction<'_>,
    store: &Store,
    ds: &DataSource,
    webhook_type: &str,
    extra: &[(&str, Value)],
) -> Result<(), StoreError> {
    enqueue_tx(
        tx,
        store,
        ds.organization_id,
        Some(&ds.organization_supplied_user_id),
        webhook_type,
        object_types::DATA_SOURCE,
        &json!(ds.id.to_string()),
        Some(&data_source_event(ds, extra)),
    )?;
    Ok(())
}

impl Store {
    fn ds_decrypt(&self, blob: &[u8]) -> Result<String, StoreError> {
        let b = self.key().decrypt(blob)?;
        String::from_utf8(b)
            .map_err(|_| StoreError::Secret(carbide_core::secrets::SecretError::Decrypt))
    }

    // ---- OAuth states ---------------------------------------------------------------------

    /// Records a pending OAuth flow and returns the plain state value (only its hash is kept).
    pub fn create_oauth_state(&self, s: &NewOAuthState) -> Result<String, StoreError> {
        let state = new_token("");
        let now = now_unix();
        let verifier = self.key().encrypt(s.pkce_verifier.as_bytes());
        self.write(|tx| {
            // expired states are useless: drop them while we are here
            tx.execute(
                "DELETE FROM oauth_states WHERE expires_at < ?1",
                [now - 24 * 3600],
            )?;
            tx.execute(
                "INSERT INTO oauth_states (state_hash, organization_id, organization_user_id, service, \
                 app_key, redirect_uri, pkce_verifier_enc, options, expires_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    hash_token(&state),
                    s.organization_id,
                    s.organization_user_id,
                    s.service,
                    s.app_key,
                    s.redirect_uri,
                    verifier,
                    Value::Object(s.options.clone()).to_string(),
                    now + s.ttl_secs,
                    now
                ],
            )?;
            Ok(())
        })?;
        Ok(state)
    }

    /// Presents a state value: valid ones are marked used atomically (single use).
    pub fn consume_oauth_state(&self, state: &str) -> Result<ConsumedState, StoreError> {
        let now = now_unix();
        let h = hash_token(state);
        type Raw = (i64, i64, String, String, String, String, Vec<u8>, String);
        type Hit = (i64, i64, String, String, String, Vec<u8>, String);
        let row: Option<Raw> = self.write(|tx| {
            let hit: Option<Hit> = tx
                .query_row(
                    "UPDATE oauth_states SET used_at = ?2 \
                     WHERE state_hash = ?1 AND used_at IS NULL AND expires_at >= ?2 \
                     RETURNING organization_id, organization_user_id, service, app_key, redirect_uri, \
                     pkce_verifier_enc, options",
                    params![h, now],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((org, cust, service, app, uri, ver, opts)) = hit else {
                return Ok(None);
            };
            let supplied: String = tx.query_row(
                "SELECT organization_supplied_user_id FROM organization_users WHERE id = ?1",
                [cust],
                |r| r.get(0),
            )?;
            Ok(Some((org, cust, supplied, service, app, uri, ver, opts)))
        })?;
        if let Some((org, cust, supplied, service, app_key, redirect_uri, ver, opts)) = row {
            return Ok(ConsumedState::Valid(OAuthState {
                organization_id: org,
                organization_user_id: cust,
                organization_supplied_user_id: supplied,
                service,
                app_key,
                redirect_uri,
                pkce_verifier: self.ds_decrypt(&ver)?,
                options: obj(parse_json(&opts)),
            }));
        }
        let known: Option<(Option<i64>, i64)> = self.read(|c| {
            Ok(c.query_row(
                "SELECT used_at, expires_at FROM oauth_states WHERE state_hash = ?1",
                [&h],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })?;
        Ok(match known {
            None => ConsumedState::Unknown,
            Some((Some(_), _)) => ConsumedState::AlreadyUsed,
            Some((None, _)) => ConsumedState::Expired,
        })
    }

    // ---- data sources ----------------------------------------------------------------------

    /// Creates the Dropbox data source of `(customer, account)` or reconnects the existing one
    /// (clearing `revoked_access`), stores the tokens encrypted and enqueues ADD, all in one
    /// transaction. `data_source_tags` are upserted onto the source's tags. Returns the source
    /// and whether it was created.
    pub fn connect_dropbox_source(
        &self,
        org_id: i64,
        customer_pk: i64,
        conn: &DropboxConnection,
        sync_options: &Map<String, Value>,
        data_source_tags: &Map<String, Value>,
        queue_item_listing: bool,
    ) -> Result<(DataSource, bool), StoreError> {
        let now = now_unix();
        let status = if queue_item_listing {
            data_source_status::QUEUED_FOR_SYNCING
        } else {
            data_source_status::READY
        };
        let access = self.key().encrypt(conn.access_token.as_bytes());
        let refresh = conn
            .refresh_token
            .as_ref()
            .map(|t| self.key().encrypt(t.as_bytes()));
        self.write(|tx| {
            let existing: Option<(i64, String)> = tx
                .query_row(
                    "SELECT id, tags FROM data_sources WHERE organization_user_id = ?1 \
                     AND data_source_type = 'DROPBOX' AND data_source_external_id = ?2",
                    params![customer_pk, conn.account_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let created = existing.is_none();
            let id = match existing {
                Some((id, tags)) => {
                    let mut t = obj(parse_json(&tags));
                    for (k, v) in data_source_tags {
                        t.insert(k.clone(), v.clone());
                    }
                    tx.execute(
                        "UPDATE data_sources SET sync_status = ?2, sync_error_message = NULL, \
                         revoked_access = 0, last_sync_action = ?3, tags = ?4, data_source_metadata = ?5, \
                         sync_options = ?6, last_synced_at = ?7, updated_at = ?7 WHERE id = ?1",
                        params![
                            id,
                            status,
                            data_source_action::ADD,
                            Value::Object(t).to_string(),
                            Value::Object(conn.metadata.clone()).to_string(),
                            Value::Object(sync_options.clone()).to_string(),
                            now
                        ],
                    )?;
                    id
                }
                None => tx.query_row(
                    "INSERT INTO data_sources (organization_id, organization_user_id, data_source_type, \
                     data_source_external_id, sync_status, revoked_access, last_sync_action, tags, \
                     data_source_metadata, sync_options, last_synced_at, created_at, updated_at) \
                     VALUES (?1, ?2, 'DROPBOX', ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?9, ?9) RETURNING id",
                    params![
                        org_id,
                        customer_pk,
                        conn.account_id,
                        status,
                        data_source_action::ADD,
                        Value::Object(data_source_tags.clone()).to_string(),
                        Value::Object(conn.metadata.clone()).to_string(),
                        Value::Object(sync_options.clone()).to_string(),
                        now
                    ],
                    |r| r.get(0),
                )?,
            };
            tx.execute(
                "INSERT INTO dropbox_credentials (data_source_id, app_key, account_id, access_token_enc, \
                 refresh_token_enc, expires_at, scopes, root_namespace_id, token_version, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9) \
                 ON CONFLICT (data_source_id) DO UPDATE SET app_key = excluded.app_key, \
                 account_id = excluded.account_id, access_token_enc = excluded.access_token_enc, \
                 refresh_token_enc = excluded.refresh_token_enc, expires_at = excluded.expires_at, \
                 scopes = excluded.scopes, root_namespace_id = excluded.root_namespace_id, \
                 token_version = dropbox_credentials.token_version + 1, refresh_lease_owner = NULL, \
                 refresh_lease_until = NULL, updated_at = excluded.updated_at",
                params![
                    id,
                    conn.app_key,
                    conn.account_id,
                    access,
                    refresh,
                    conn.expires_at,
                    conn.scopes,
                    conn.root_namespace_id,
                    now
                ],
            )?;
            let ds = get_ds_tx(tx, id)?.ok_or(StoreError::NotFound("data source"))?;
            let mut extra: Vec<(&str, Value)> = Vec::new();
            if let Some(r) = sync_options.get("request_id").filter(|v| !v.is_null()) {
                extra.push(("request_id", r.clone()));
            }
            enqueue_ds_event(tx, self, &ds, webhook_types::ADD, &extra)?;
            Ok((ds, created))
        })
    }

    /// A data source of the organization, optionally restricted to one customer.
    pub fn get_data_source(
        &self,
        org_id: i64,
        customer_pk: Option<i64>,
        id: i64,
    ) -> Result<DataSource, StoreError> {
        let ds = self.read(|c| get_ds_tx(c, id))?;
        match ds {
            Some(d)
                if d.organization_id == org_id
                    && customer_pk.is_none_or(|c| c == d.organization_user_id) =>
            {
                Ok(d)
            }
            _ => Err(StoreError::NotFound("data source")),
        }
    }

    /// A data source by id, without tenancy checks (background workers only).
    pub fn data_source_by_id(&self, id: i64) -> Result<Option<DataSource>, StoreError> {
        self.read(|c| get_ds_tx(c, id))
    }

    /// `/user_data_sources` (customer) and `/data_sources` (`customer_pk = None`: organization).
    pub fn query_data_sources(
        &self,
        org_id: i64,
        customer_pk: Option<i64>,
        q: &DataSourceQuery,
    ) -> Result<(Vec<DataSource>, i64), StoreError> {
        let mut conds = vec!["d.organization_id = ?".to_string()];
        let mut args: Vec<Sql> = vec![org_id.into()];
        if let Some(c) = customer_pk {
            conds.push("d.organization_user_id = ?".into());
            args.push(c.into());
        }
        if let Some(ids) = &q.ids {
            conds.push(format!("d.id IN ({})", placeholders(ids.len())));
            args.extend(ids.iter().map(|i| Sql::from(*i)));
        }
        if let Some(s) = &q.source {
            conds.push("d.data_source_type = ?".into());
            args.push(Sql::Text(s.clone()));
        }
        if let Some(r) = q.revoked_access {
            conds.push("d.revoked_access = ?".into());
            args.push(i64::from(r).into());
        }
        if let Some(t) = &q.tags {
            let s = t.sql_on("d.tags", &mut args);
            conds.push(s);
        }
        let where_ = conds.join(" AND ");
        let mut page_where = where_.clone();
        let mut page_args = args.clone();
        if q.page.starting_id > 0 {
            page_where.push_str(" AND d.id > ?");
            page_args.push(q.page.starting_id.into());
        }
        page_args.push(q.page.limit().into());
        page_args.push(q.page.offset().into());
        let col = match q.order_by {
            DataSourceOrder::CreatedAt => "d.created_at",
            DataSourceOrder::UpdatedAt => "d.updated_at",
        };
        let d = q.dir.sql();
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {DS_COLS} FROM {FROM_DS} WHERE {page_where} ORDER BY {col} {d}, d.id {d} LIMIT ? OFFSET ?"
            ))?;
            let rows = st
                .query_map(params_from_iter(page_args), ds_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let count: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM {FROM_DS} WHERE {where_}"),
                params_from_iter(args),
                |r| r.get(0),
            )?;
            Ok((rows, count))
        })
    }

    /// `/data_sources/tags/add`: upserts `tags` into the source's tags.
    pub fn add_data_source_tags(
        &self,
        org_id: i64,
        customer_pk: i64,
        id: i64,
        tags: &Map<String, Value>,
    ) -> Result<DataSource, StoreError> {
        self.ds_edit_tags(org_id, customer_pk, id, |t| {
            for (k, v) in tags {
                t.insert(k.clone(), v.clone());
            }
        })
    }

    /// `/data_sources/tags/remove`: removes the named keys, or every tag.
    pub fn remove_data_source_tags(
        &self,
        org_id: i64,
        customer_pk: i64,
        id: i64,
        keys: &[String],
        remove_all: bool,
    ) -> Result<DataSource, StoreError> {
        self.ds_edit_tags(org_id, customer_pk, id, |t| {
            if remove_all {
                t.clear();
            } else {
                for k in keys {
                    t.remove(k);
                }
            }
        })
    }

    fn ds_edit_tags(
        &self,
        org_id: i64,
        customer_pk: i64,
        id: i64,
        f: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<DataSource, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let tags: Option<String> = tx
                .query_row(
                    "SELECT tags FROM data_sources WHERE id = ?1 AND organization_id = ?2 \
                     AND organization_user_id = ?3",
                    params![id, org_id, customer_pk],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(tags) = tags else {
                return Err(StoreError::NotFound("data source"));
            };
            let mut t = obj(parse_json(&tags));
            f(&mut t);
            tx.execute(
                "UPDATE data_sources SET tags = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, Value::Object(t).to_string(), now],
            )?;
            get_ds_tx(tx, id)?.ok_or(StoreError::NotFound("data source"))
        })
    }

    /// Marks a data source as having lost access (`revoked_access`, SYNC_ERROR, REVOKE) and
    /// enqueues the REVOKE webhook — once: a source already revoked is returned unchanged and
    /// no second webhook is sent. Returns `(source, changed)`.
    pub fn mark_data_source_revoked(
        &self,
        id: i64,
        reason: &str,
    ) -> Result<(DataSource, bool), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let ds = get_ds_tx(tx, id)?.ok_or(StoreError::NotFound("data source"))?;
            if ds.revoked_access {
                return Ok((ds, false));
            }
            tx.execute(
                "UPDATE data_sources SET revoked_access = 1, sync_status = ?2, sync_error_message = ?3, \
                 last_sync_action = ?4, updated_at = ?5 WHERE id = ?1",
                params![
                    id,
                    data_source_status::SYNC_ERROR,
                    reason,
                    data_source_action::REVOKE,
                    now
                ],
            )?;
            let ds = get_ds_tx(tx, id)?.ok_or(StoreError::NotFound("data source"))?;
            enqueue_ds_event(
                tx,
                self,
                &ds,
                webhook_types::REVOKE,
                &[("reason", json!(reason))],
            )?;
            Ok((ds, true))
        })
    }

    /// Sets a data source's sync status (and error message; `None` clears it).
    pub fn set_data_source_status(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            tx.execute(
                "UPDATE data_sources SET sync_status = ?2, sync_error_message = ?3, updated_at = ?4 \
                 WHERE id = ?1",
                params![id, status, error, now],
            )?;
            Ok(())
        })
    }

    /// A cancelled item listing: READY again, last action CANCEL, CANCEL webhook.
    pub fn cancel_data_source_listing(&self, id: i64) -> Result<DataSource, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let before = get_ds_tx(tx, id)?.ok_or(StoreError::NotFound("data source"))?;
            let status = if before.revoked_access {
                data_source_status::SYNC_ERROR
            } else {
                data_source_status::READY
            };
            tx.execute(
                "UPDATE data_sources SET sync_status = ?2, last_sync_action = ?3, updated_at = ?4 \
                 WHERE id = ?1",
                params![id, status, data_source_action::CANCEL, now],
            )?;
            let ds = get_ds_tx(tx, id)?.ok_or(StoreError::NotFound("data source"))?;
            enqueue_ds_event(tx, self, &ds, webhook_types::CANCEL, &[])?;
            Ok(ds)
        })
    }

    /// Ids of data sources in one of `statuses` (restart recovery of interrupted listings).
    pub fn data_sources_in_status(&self, statuses: &[&str]) -> Result<Vec<i64>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT id FROM data_sources WHERE revoked_access = 0 AND sync_status IN ({}) ORDER BY id",
                placeholders(statuses.len())
            ))?;
            let rows = st
                .query_map(params_from_iter(statuses.iter()), |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            Ok(rows)
        })
    }

    // ---- credentials -----------------------------------------------------------------------

    /// The decrypted tokens of a data source (`None` when it has none).
    pub fn dropbox_credentials(
        &self,
        data_source_id: i64,
    ) -> Result<Option<DropboxCredentials>, StoreError> {
        type Raw = (
            i64,
            String,
            String,
            Vec<u8>,
            Option<Vec<u8>>,
            Option<i64>,
            Option<String>,
            i64,
            bool,
        );
        let row: Option<Raw> = self.read(|c| {
            Ok(c.query_row(
                "SELECT d.organization_id, k.app_key, k.account_id, k.access_token_enc, k.refresh_token_enc, \
                 k.expires_at, k.root_namespace_id, k.token_version, d.revoked_access \
                 FROM dropbox_credentials k JOIN data_sources d ON d.id = k.data_source_id \
                 WHERE k.data_source_id = ?1",
                [data_source_id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?)
        })?;
        let Some((org, app_key, account_id, acc, refr, exp, root, ver, revoked)) = row else {
            return Ok(None);
        };
        Ok(Some(DropboxCredentials {
            data_source_id,
            organization_id: org,
            app_key,
            account_id,
            access_token: self.ds_decrypt(&acc)?,
            refresh_token: match refr {
                Some(b) => Some(self.ds_decrypt(&b)?),
                None => None,
            },
            expires_at: exp,
            root_namespace_id: root,
            token_version: ver,
            revoked,
        }))
    }

    /// Takes the refresh lease of a data source's tokens if they are still at `version` and no
    /// other process holds an unexpired lease. True when taken.
    pub fn try_lease_token_refresh(
        &self,
        data_source_id: i64,
        version: i64,
        owner: &str,
        lease_secs: i64,
    ) -> Result<bool, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE dropbox_credentials SET refresh_lease_owner = ?3, refresh_lease_until = ?4 \
                 WHERE data_source_id = ?1 AND token_version = ?2 \
                 AND (refresh_lease_until IS NULL OR refresh_lease_until < ?5 OR refresh_lease_owner = ?3)",
                params![data_source_id, version, owner, now + lease_secs, now],
            )?;
            Ok(n == 1)
        })
    }

    /// Stores a refreshed access token if the tokens are still at `version` (compare-and-swap);
    /// bumps the version and releases the lease. True when stored.
    pub fn store_refreshed_token(
        &self,
        data_source_id: i64,
        version: i64,
        access_token: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = now_unix();
        let enc = self.key().encrypt(access_token.as_bytes());
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE dropbox_credentials SET access_token_enc = ?3, expires_at = ?4, \
                 token_version = token_version + 1, refresh_lease_owner = NULL, refresh_lease_until = NULL, \
                 updated_at = ?5 WHERE data_source_id = ?1 AND token_version = ?2",
                params![data_source_id, version, enc, expires_at, now],
            )?;
            Ok(n == 1)
        })
    }

    /// Releases a refresh lease held by `owner` (after a failed refresh).
    pub fn release_token_refresh(
        &self,
        data_source_id: i64,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE dropbox_credentials SET refresh_lease_owner = NULL, refresh_lease_until = NULL \
                 WHERE data_source_id = ?1 AND refresh_lease_owner = ?2",
                params![data_source_id, owner],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbide_core::secrets::MasterKey;

    fn conn(account: &str) -> DropboxConnection {
        DropboxConnection {
            account_id: account.into(),
            metadata: Map::new(),
            app_key: "k".into(),
            access_token: "sl.secret-access-token-value".into(),
            refresh_token: Some("secret-refresh-token-value".into()),
            expires_at: Some(now_unix() + 100),
            scopes: "files.metadata.read".into(),
            root_namespace_id: None,
        }
    }

    #[test]
    fn state_single_use_and_tokens_encrypted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("db");
        let s = Store::open(&p, MasterKey::generate()).unwrap();
        let (org, _) = s.create_organization("a").unwrap();
        let c = s.get_or_create_customer(org.id, "c1").unwrap();
        let st = s
            .create_oauth_state(&NewOAuthState {
                organization_id: org.id,
                organization_user_id: c.id,
                service: "DROPBOX".into(),
                app_key: "k".into(),
                redirect_uri: "http://x/integrations/dropbox".into(),
                pkce_verifier: "verifier-value".into(),
                options: Map::new(),
                ttl_secs: 60,
            })
            .unwrap();
        match s.consume_oauth_state(&st).unwrap() {
            ConsumedState::Valid(v) => assert_eq!(v.pkce_verifier, "verifier-value"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.consume_oauth_state(&st).unwrap(),
            ConsumedState::AlreadyUsed
        ));
        assert!(matches!(
            s.consume_oauth_state("nope").unwrap(),
            ConsumedState::Unknown
        ));

        let (ds, created) = s
            .connect_dropbox_source(
                org.id,
                c.id,
                &conn("dbid:a"),
                &Map::new(),
                &Map::new(),
                true,
            )
            .unwrap();
        assert!(created);
        assert_eq!(ds.sync_status, "QUEUED_FOR_SYNCING");
        let (ds2, created) = s
            .connect_dropbox_source(
                org.id,
                c.id,
                &conn("dbid:a"),
                &Map::new(),
                &Map::new(),
                false,
            )
            .unwrap();
        assert!(!created);
        assert_eq!(ds2.id, ds.id);
        let cr = s.dropbox_credentials(ds.id).unwrap().unwrap();
        assert_eq!(cr.token_version, 2);
        assert!(s.try_lease_token_refresh(ds.id, 2, "p1", 30).unwrap());
        assert!(!s.try_lease_token_refresh(ds.id, 2, "p2", 30).unwrap());
        assert!(
            s.store_refreshed_token(ds.id, 2, "sl.new", Some(1))
                .unwrap()
        );
        assert!(
            !s.store_refreshed_token(ds.id, 2, "sl.other", Some(1))
                .unwrap()
        );
        let (r, changed) = s.mark_data_source_revoked(ds.id, "gone").unwrap();
        assert!(changed && r.revoked_access);
        let (_, changed) = s.mark_data_source_revoked(ds.id, "gone").unwrap();
        assert!(!changed);
        drop(s);
        let raw = std::fs::read(&p).unwrap();
        for secret in [&b"secret-refresh-token-value"[..], b"verifier-value"] {
            assert!(!raw.windows(secret.len()).any(|w| w == secret));
        }
    }
}
