//! Webhook URLs of an organization (at most three), with signing keys encrypted at rest.

use carbide_core::secrets::new_signing_key;
use carbide_core::timefmt::now_unix;
use rusqlite::{Row, params};

use crate::users::placeholders;
use crate::{Dir, Page, Store, StoreError};

/// Carbon allows at most this many webhook URLs per organization.
pub const MAX_WEBHOOKS_PER_ORG: i64 = 3;

/// A registered webhook URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Integer id.
    pub id: i64,
    /// Owning organization.
    pub organization_id: i64,
    /// Receiver URL.
    pub url: String,
    /// Plain signing key; only filled right after creation.
    pub signing_key: Option<String>,
    /// `ACTIVE` or `FLAGGED`.
    pub status: String,
    /// Why it was flagged.
    pub status_reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Order column for `/webhooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOrder {
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
}

const COLS: &str = "id, organization_id, url, status, status_reason, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        url: r.get(2)?,
        signing_key: None,
        status: r.get(3)?,
        status_reason: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

impl Store {
    /// Registers a webhook URL; fails with `Conflict` beyond three per organization.
    pub fn add_webhook(&self, org_id: i64, url: &str) -> Result<Webhook, StoreError> {
        let key = new_signing_key();
        let enc = self.key().encrypt(key.as_bytes());
        let now = now_unix();
        let id = self.write(|tx| {
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM webhooks WHERE organization_id = ?1",
                [org_id],
                |r| r.get(0),
            )?;
            if n >= MAX_WEBHOOKS_PER_ORG {
                return Err(StoreError::Conflict(format!(
                    "Organization already has the maximum of {MAX_WEBHOOKS_PER_ORG} webhook URLs; delete one first."
                )));
            }
            tx.execute(
                "INSERT INTO webhooks (organization_id, url, signing_key_enc, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![org_id, url, enc, now],
            )?;
            Ok(tx.last_insert_rowid())
        })?;
        Ok(Webhook {
            id,
            organization_id: org_id,
            url: url.to_string(),
            signing_key: Some(key),
            status: "ACTIVE".into(),
            status_reason: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// `/webhooks`: the organization's webhooks and the total count.
    pub fn list_webhooks(
        &self,
        org_id: i64,
        ids: Option<&[i64]>,
        order_by: WebhookOrder,
        dir: Dir,
        page: Page,
    ) -> Result<(Vec<Webhook>, i64), StoreError> {
        let mut conds = "organization_id = ?".to_string();
        let mut args: Vec<rusqlite::types::Value> = vec![org_id.into()];
        if let Some(ids) = ids.filter(|i| !i.is_empty()) {
            conds.push_str(&format!(" AND id IN ({})", placeholders(ids.len())));
            args.extend(ids.iter().map(|i| rusqlite::types::Value::from(*i)));
        }
        let mut page_conds = conds.clone();
        let mut page_args = args.clone();
        if page.starting_id > 0 {
            page_conds.push_str(" AND id > ?");
            page_args.push(page.starting_id.into());
        }
        page_args.push(page.limit().into());
        page_args.push(page.offset().into());
        let col = match order_by {
            WebhookOrder::CreatedAt => "created_at",
            WebhookOrder::UpdatedAt => "updated_at",
        };
        let d = dir.sql();
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM webhooks WHERE {page_conds} ORDER BY {col} {d}, id {d} LIMIT ? OFFSET ?"
            ))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(page_args), from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let count = c.query_row(
                &format!("SELECT COUNT(*) FROM webhooks WHERE {conds}"),
                rusqlite::params_from_iter(args),
                |r| r.get(0),
            )?;
            Ok((rows, count))
        })
    }

    /// Deletes one webhook of the organization (pending deliveries go with it).
    pub fn delete_webhook(&self, org_id: i64, webhook_id: i64) -> Result<(), StoreError> {
        let n = self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM webhooks WHERE id = ?1 AND organization_id = ?2",
                params![webhook_id, org_id],
            )?)
        })?;
        if n == 0 {
            return Err(StoreError::NotFound("webhook"));
        }
        Ok(())
    }
}
