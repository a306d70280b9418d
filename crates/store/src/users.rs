//! Customers (Carbon "organization users") and their access tokens.

use carbide_core::enums::{object_types, webhook_types};
use carbide_core::secrets::{hash_token, new_token};
use carbide_core::timefmt::now_unix;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde_json::{Map, Value};

use crate::{Dir, Page, Store, StoreError, parse_json};

/// Access tokens live 10 hours (Carbon's documented lifetime).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 10 * 3600;
/// Refresh tokens are issued for compatibility; they live 30 days.
pub const REFRESH_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;

/// A customer of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Carbon's `organization_user` id.
    pub id: i64,
    /// Owning organization.
    pub organization_id: i64,
    /// The id the organization chose (`customer-id` header).
    pub organization_supplied_user_id: String,
    /// Feature toggles (`/modify_user_configuration`), `None` until set.
    pub enabled_features: Option<Value>,
    /// `max_files` & co. from `/update_users`.
    pub custom_limits: Map<String, Value>,
    /// Data source types with scheduled sync (`["ALL"]` = every source).
    pub auto_sync_enabled_sources: Vec<String>,
    /// Scheduled sync interval in hours (`None` = default).
    pub auto_sync_interval: Option<i64>,
    /// Connector settings.
    pub connector_settings: Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Changes `/update_users` applies; `None` fields stay unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerConfigUpdate {
    /// New auto-sync source list (already validated; `["ALL"]` for all).
    pub auto_sync_enabled_sources: Option<Vec<String>>,
    /// Limits to set in `custom_limits` (`-1` = unlimited).
    pub limits: Vec<(String, i64)>,
    /// `Some(None)` resets the interval to the default, `Some(Some(h))` sets it.
    pub auto_sync_interval: Option<Option<i64>>,
}

/// Order column for `/list_users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerOrder {
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
}

/// `/list_users` query (defaults already applied).
#[derive(Debug, Clone, PartialEq)]
pub struct ListCustomers {
    /// Paging.
    pub page: Page,
    /// Restrict to these organization-supplied ids.
    pub customer_ids: Option<Vec<String>>,
    /// Restrict to these carbide ids.
    pub carbon_user_ids: Option<Vec<i64>>,
    /// Order column.
    pub order_by: CustomerOrder,
    /// Direction.
    pub order_dir: Dir,
    /// Also count all matches.
    pub include_count: bool,
}

/// A freshly minted token pair (plain text; only hashes are stored).
#[derive(Debug, Clone)]
pub struct AccessTokens {
    /// `ct_…`, valid 10 hours.
    pub access_token: String,
    /// `cr_…`.
    pub refresh_token: String,
}

const CUST_COLS: &str = "id, organization_id, organization_supplied_user_id, enabled_features, \
    custom_limits, auto_sync_enabled_sources, auto_sync_interval, connector_settings, created_at, updated_at";

fn cust_from_row(r: &Row<'_>) -> rusqlite::Result<Customer> {
    let limits = match parse_json(&r.get::<_, String>(4)?) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let sources = match parse_json(&r.get::<_, String>(5)?) {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Customer {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        organization_supplied_user_id: r.get(2)?,
        enabled_features: r.get::<_, Option<String>>(3)?.map(|s| parse_json(&s)),
        custom_limits: limits,
        auto_sync_enabled_sources: sources,
        auto_sync_interval: r.get(6)?,
        connector_settings: parse_json(&r.get::<_, String>(7)?),
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn get_tx(
    tx: &Transaction<'_>,
    org_id: i64,
    supplied: &str,
) -> Result<Option<Customer>, StoreError> {
    Ok(tx
        .query_row(
            &format!(
                "SELECT {CUST_COLS} FROM organization_users \
                 WHERE organization_id = ?1 AND organization_supplied_user_id = ?2"
            ),
            params![org_id, supplied],
            cust_from_row,
        )
        .optional()?)
}

fn get_or_create_tx(
    tx: &Transaction<'_>,
    org_id: i64,
    supplied: &str,
) -> Result<Customer, StoreError> {
    let now = now_unix();
    tx.execute(
        "INSERT INTO organization_users (organization_id, organization_supplied_user_id, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?3) ON CONFLICT (organization_id, organization_supplied_user_id) DO NOTHING",
        params![org_id, supplied, now],
    )?;
    get_tx(tx, org_id, supplied)?.ok_or(StoreError::NotFound("customer"))
}

impl Store {
    /// The customer `(org_id, supplied_id)`, if it exists.
    pub fn get_customer(
        &self,
        org_id: i64,
        supplied_id: &str,
    ) -> Result<Option<Customer>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {CUST_COLS} FROM organization_users \
                     WHERE organization_id = ?1 AND organization_supplied_user_id = ?2"
                ),
                params![org_id, supplied_id],
                cust_from_row,
            )
            .optional()?)
        })
    }

    /// The customer `(org_id, supplied_id)`, created on first use.
    pub fn get_or_create_customer(
        &self,
        org_id: i64,
        supplied_id: &str,
    ) -> Result<Customer, StoreError> {
        if let Some(c) = self.get_customer(org_id, supplied_id)? {
            return Ok(c);
        }
        self.write(|tx| get_or_create_tx(tx, org_id, supplied_id))
    }

    /// Mints an access token (10 h) and a refresh token for the customer.
    pub fn issue_access_token(
        &self,
        org_id: i64,
        customer_pk: i64,
    ) -> Result<AccessTokens, StoreError> {
        let now = now_unix();
        let access = new_token("ct_");
        let refresh = new_token("cr_");
        self.write(|tx| {
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM organization_users WHERE id = ?1 AND organization_id = ?2",
                params![customer_pk, org_id],
                |r| r.get(0),
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("customer"));
            }
            // housekeeping: drop this customer's expired tokens
            tx.execute(
                "DELETE FROM access_tokens WHERE organization_user_id = ?1 AND expires_at < ?2",
                params![customer_pk, now],
            )?;
            tx.execute(
                "INSERT INTO access_tokens (token_hash, organization_user_id, kind, expires_at, created_at) \
                 VALUES (?1, ?2, 'access', ?3, ?4)",
                params![hash_token(&access), customer_pk, now + ACCESS_TOKEN_TTL_SECS, now],
            )?;
            tx.execute(
                "INSERT INTO access_tokens (token_hash, organization_user_id, kind, expires_at, created_at) \
                 VALUES (?1, ?2, 'refresh', ?3, ?4)",
                params![hash_token(&refresh), customer_pk, now + REFRESH_TOKEN_TTL_SECS, now],
            )?;
            Ok(())
        })?;
        Ok(AccessTokens {
            access_token: access,
            refresh_token: refresh,
        })
    }

    /// The customer an unexpired access token belongs to.
    pub fn customer_for_access_token(&self, token: &str) -> Result<Option<Customer>, StoreError> {
        let h = hash_token(token);
        let now = now_unix();
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {} FROM access_tokens t JOIN organization_users u ON u.id = t.organization_user_id \
                     WHERE t.token_hash = ?1 AND t.kind = 'access' AND t.expires_at > ?2",
                    CUST_COLS
                        .split(", ")
                        .map(|c| format!("u.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                params![h, now],
                cust_from_row,
            )
            .optional()?)
        })
    }

    /// `/list_users`: customers of one organization plus the total when asked.
    pub fn list_customers(
        &self,
        org_id: i64,
        q: &ListCustomers,
    ) -> Result<(Vec<Customer>, Option<i64>), StoreError> {
        let mut conds = vec!["organization_id = ?".to_string()];
        let mut args: Vec<rusqlite::types::Value> = vec![org_id.into()];
        if let Some(ids) = &q.customer_ids {
            conds.push(format!(
                "organization_supplied_user_id IN ({})",
                placeholders(ids.len())
            ));
            args.extend(ids.iter().map(|s| rusqlite::types::Value::from(s.clone())));
        }
        if let Some(ids) = &q.carbon_user_ids {
            conds.push(format!("id IN ({})", placeholders(ids.len())));
            args.extend(ids.iter().map(|i| rusqlite::types::Value::from(*i)));
        }
        let where_all = conds.join(" AND ");
        let mut page_conds = where_all.clone();
        let mut page_args = args.clone();
        if q.page.starting_id > 0 {
            page_conds.push_str(" AND id > ?");
            page_args.push(q.page.starting_id.into());
        }
        let col = match q.order_by {
            CustomerOrder::CreatedAt => "created_at",
            CustomerOrder::UpdatedAt => "updated_at",
        };
        let dir = q.order_dir.sql();
        page_args.push(q.page.limit().into());
        page_args.push(q.page.offset().into());
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {CUST_COLS} FROM organization_users WHERE {page_conds} \
                 ORDER BY {col} {dir}, id {dir} LIMIT ? OFFSET ?"
            ))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(page_args), cust_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let count = if q.include_count {
                Some(c.query_row(
                    &format!("SELECT COUNT(*) FROM organization_users WHERE {where_all}"),
                    rusqlite::params_from_iter(args),
                    |r| r.get(0),
                )?)
            } else {
                None
            };
            Ok((rows, count))
        })
    }

    /// `/delete_users`: deletes the customers (and, by cascade, everything they own) and
    /// enqueues `ORGANIZATION_USER_DELETED` for each one actually deleted, atomically.
    /// Returns the number of customers deleted.
    pub fn delete_customers(
        &self,
        org_id: i64,
        supplied_ids: &[String],
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut n = 0;
            for sid in supplied_ids {
                let Some(cust) = get_tx(tx, org_id, sid)? else {
                    continue;
                };
                tx.execute(
                    "DELETE FROM organization_users WHERE id = ?1 AND organization_id = ?2",
                    params![cust.id, org_id],
                )?;
                n += 1;
                crate::outbox::enqueue_tx(
                    tx,
                    self,
                    org_id,
                    Some(sid),
                    webhook_types::ORGANIZATION_USER_DELETED,
                    object_types::ORGANIZATION_USER,
                    &Value::String(cust.id.to_string()),
                    None,
                )?;
            }
            Ok(n)
        })
    }

    /// `/update_users`: applies `update` to each customer, creating unknown ones.
    pub fn update_customers(
        &self,
        org_id: i64,
        supplied_ids: &[String],
        update: &CustomerConfigUpdate,
    ) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            for sid in supplied_ids {
                let mut cust = get_or_create_tx(tx, org_id, sid)?;
                for (k, v) in &update.limits {
                    cust.custom_limits.insert(k.clone(), Value::from(*v));
                }
                if let Some(s) = &update.auto_sync_enabled_sources {
                    cust.auto_sync_enabled_sources = s.clone();
                }
                if let Some(i) = update.auto_sync_interval {
                    cust.auto_sync_interval = i;
                }
                tx.execute(
                    "UPDATE organization_users SET custom_limits = ?3, auto_sync_enabled_sources = ?4, \
                     auto_sync_interval = ?5, updated_at = ?6 WHERE id = ?1 AND organization_id = ?2",
                    params![
                        cust.id,
                        org_id,
                        Value::Object(cust.custom_limits).to_string(),
                        Value::from(cust.auto_sync_enabled_sources).to_string(),
                        cust.auto_sync_interval,
                        now
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// `/modify_user_configuration`: sets `enabled_features[key] = value` for one customer.
    pub fn set_customer_feature(
        &self,
        org_id: i64,
        customer_pk: i64,
        key: &str,
        value: Value,
    ) -> Result<Customer, StoreError> {
        let now = now_unix();
        self.write(|tx| {
            let cur: Option<Option<String>> = tx
                .query_row(
                    "SELECT enabled_features FROM organization_users WHERE id = ?1 AND organization_id = ?2",
                    params![customer_pk, org_id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(cur) = cur else { return Err(StoreError::NotFound("customer")) };
            let mut feats = match cur.map(|s| parse_json(&s)) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            feats.insert(key.to_string(), value);
            tx.execute(
                "UPDATE organization_users SET enabled_features = ?3, updated_at = ?4 \
                 WHERE id = ?1 AND organization_id = ?2",
                params![customer_pk, org_id, Value::Object(feats).to_string(), now],
            )?;
            Ok(())
        })?;
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {CUST_COLS} FROM organization_users WHERE id = ?1 AND organization_id = ?2"),
                params![customer_pk, org_id],
                cust_from_row,
            )?)
        })
    }
}

pub(crate) fn placeholders(n: usize) -> String {
    if n == 0 {
        // `IN ()` is invalid SQL; NULL never matches, so an empty list selects nothing.
        return "NULL".to_string();
    }
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbide_core::secrets::MasterKey;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("db"), MasterKey::generate()).unwrap();
        (d, s)
    }

    #[test]
    fn tokens_and_isolation() {
        let (_d, s) = store();
        let (a, ka) = s.create_organization("a").unwrap();
        let (b, _) = s.create_organization("b").unwrap();
        assert_eq!(s.organization_for_api_key(&ka).unwrap(), Some(a.id));
        let ca = s.get_or_create_customer(a.id, "u1").unwrap();
        let cb = s.get_or_create_customer(b.id, "u1").unwrap();
        assert_ne!(ca.id, cb.id);
        assert!(s.issue_access_token(b.id, ca.id).is_err());
        let t = s.issue_access_token(a.id, ca.id).unwrap();
        assert_eq!(
            s.customer_for_access_token(&t.access_token)
                .unwrap()
                .unwrap()
                .id,
            ca.id
        );
        assert!(
            s.customer_for_access_token(&t.refresh_token)
                .unwrap()
                .is_none()
        );
        let new = s.rotate_api_key(a.id).unwrap();
        assert_eq!(s.organization_for_api_key(&ka).unwrap(), None);
        assert_eq!(s.organization_for_api_key(&new).unwrap(), Some(a.id));
        // delete cascades tokens
        assert_eq!(
            s.delete_customers(a.id, &["u1".into(), "nope".into()])
                .unwrap(),
            1
        );
        assert!(
            s.customer_for_access_token(&t.access_token)
                .unwrap()
                .is_none()
        );
        assert!(s.get_customer(b.id, "u1").unwrap().is_some());
    }

    #[test]
    fn update_and_list() {
        let (_d, s) = store();
        let (a, _) = s.create_organization("a").unwrap();
        let up = CustomerConfigUpdate {
            auto_sync_enabled_sources: Some(vec!["ALL".into()]),
            limits: vec![("max_files".into(), 5)],
            auto_sync_interval: Some(Some(6)),
        };
        s.update_customers(a.id, &["x".into(), "y".into()], &up)
            .unwrap();
        let x = s.get_customer(a.id, "x").unwrap().unwrap();
        assert_eq!(x.auto_sync_enabled_sources, vec!["ALL".to_string()]);
        assert_eq!(x.custom_limits["max_files"], 5);
        assert_eq!(x.auto_sync_interval, Some(6));
        let q = ListCustomers {
            page: Page {
                limit: 1,
                offset: 0,
                starting_id: 0,
            },
            customer_ids: None,
            carbon_user_ids: None,
            order_by: CustomerOrder::CreatedAt,
            order_dir: Dir::Desc,
            include_count: true,
        };
        let (rows, count) = s.list_customers(a.id, &q).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(count, Some(2));
        let q2 = ListCustomers {
            customer_ids: Some(vec![]),
            ..q
        };
        assert_eq!(s.list_customers(a.id, &q2).unwrap().1, Some(0));
    }
}
