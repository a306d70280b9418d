//! White-label OAuth app credentials per organization and connector. Secrets (client secret,
//! extra credential fields) are encrypted with the master key and only ever shown masked.

use carbide_core::secrets::mask_secret;
use carbide_core::timefmt::now_unix;
use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value};

use crate::users::placeholders;
use crate::{Dir, Page, Store, StoreError};

/// Credentials for one connector type, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct WhiteLabelInput {
    /// e.g. `DROPBOX`.
    pub data_source_type: String,
    /// OAuth app key / client id.
    pub client_id: String,
    /// Registered redirect URI.
    pub redirect_uri: String,
    /// OAuth client secret (optional).
    pub client_secret: Option<String>,
    /// Connector-specific extra credential fields (e.g. Google `api_key`).
    pub extra: Map<String, Value>,
}

/// A stored white-label entry as shown to the organization (secrets masked).
#[derive(Debug, Clone, PartialEq)]
pub struct WhiteLabel {
    /// Integer id.
    pub id: i64,
    /// Owning organization.
    pub organization_id: i64,
    /// Connector type.
    pub data_source_type: String,
    /// Client id (not secret).
    pub client_id: String,
    /// Redirect URI.
    pub redirect_uri: String,
    /// Masked client secret (`abcd…wxyz`), `None` when not set.
    pub client_secret_masked: Option<String>,
    /// Extra credential fields, each string value masked.
    pub extra_masked: Map<String, Value>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Order column for `/white_label/list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteLabelOrder {
    /// `created_at`.
    CreatedAt,
    /// `data_source_type`.
    DataSourceType,
}

const COLS: &str = "id, organization_id, data_source_type, client_id, redirect_uri, client_secret_enc, \
    extra_enc, created_at, updated_at";

type RawRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    i64,
    i64,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawRow> {
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
}

impl Store {
    fn decrypt_str(&self, blob: &[u8]) -> Result<String, StoreError> {
        let b = self.key().decrypt(blob)?;
        String::from_utf8(b)
            .map_err(|_| StoreError::Secret(carbide_core::secrets::SecretError::Decrypt))
    }

    fn to_white_label(&self, r: RawRow) -> Result<WhiteLabel, StoreError> {
        let (id, org, dst, client_id, redirect_uri, sec, extra, created_at, updated_at) = r;
        let client_secret_masked = match sec {
            Some(b) => Some(mask_secret(&self.decrypt_str(&b)?)),
            None => None,
        };
        let mut extra_masked = Map::new();
        if let Some(b) = extra
            && let Value::Object(m) =
                serde_json::from_str(&self.decrypt_str(&b)?).unwrap_or(Value::Null)
        {
            for (k, v) in m {
                let shown = match v {
                    Value::String(s) => Value::String(mask_secret(&s)),
                    Value::Null => Value::Null,
                    _ => Value::String("…".into()),
                };
                extra_masked.insert(k, shown);
            }
        }
        Ok(WhiteLabel {
            id,
            organization_id: org,
            data_source_type: dst,
            client_id,
            redirect_uri,
            client_secret_masked,
            extra_masked,
            created_at,
            updated_at,
        })
    }

    fn encrypt_extra(&self, extra: &Map<String, Value>) -> Option<Vec<u8>> {
        if extra.is_empty() {
            None
        } else {
            Some(
                self.key()
                    .encrypt(Value::Object(extra.clone()).to_string().as_bytes()),
            )
        }
    }

    /// `/white_label/create`: stores every input, all-or-nothing. A connector type that is
    /// already configured (or repeated in the request) yields `Conflict`.
    pub fn create_white_labels(
        &self,
        org_id: i64,
        inputs: &[WhiteLabelInput],
    ) -> Result<Vec<WhiteLabel>, StoreError> {
        let now = now_unix();
        let ids = self.write(|tx| {
            let mut ids = Vec::new();
            for inp in inputs {
                let exists: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM white_labels WHERE organization_id = ?1 AND data_source_type = ?2",
                        params![org_id, inp.data_source_type],
                        |r| r.get(0),
                    )
                    .optional()?;
                if exists.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "White labeling for {} already exists; use /white_label/update to change it.",
                        inp.data_source_type
                    )));
                }
                let sec = inp.client_secret.as_ref().map(|s| self.key().encrypt(s.as_bytes()));
                tx.execute(
                    "INSERT INTO white_labels (organization_id, data_source_type, client_id, redirect_uri, \
                     client_secret_enc, extra_enc, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                    params![
                        org_id,
                        inp.data_source_type,
                        inp.client_id,
                        inp.redirect_uri,
                        sec,
                        self.encrypt_extra(&inp.extra),
                        now
                    ],
                )?;
                ids.push(tx.last_insert_rowid());
            }
            Ok(ids)
        })?;
        ids.into_iter()
            .map(|id| self.get_white_label(org_id, id))
            .collect()
    }

    /// One entry of the organization.
    pub fn get_white_label(&self, org_id: i64, id: i64) -> Result<WhiteLabel, StoreError> {
        let r = self.read(|c| {
            c.query_row(
                &format!("SELECT {COLS} FROM white_labels WHERE id = ?1 AND organization_id = ?2"),
                params![id, org_id],
                raw,
            )
            .optional()?
            .ok_or(StoreError::NotFound("white label"))
        })?;
        self.to_white_label(r)
    }

    /// `/white_label/list`.
    pub fn list_white_labels(
        &self,
        org_id: i64,
        ids: &[i64],
        types: &[String],
        order_by: WhiteLabelOrder,
        dir: Dir,
        page: Page,
    ) -> Result<(Vec<WhiteLabel>, i64), StoreError> {
        let mut conds = "organization_id = ?".to_string();
        let mut args: Vec<rusqlite::types::Value> = vec![org_id.into()];
        if !ids.is_empty() {
            conds.push_str(&format!(" AND id IN ({})", placeholders(ids.len())));
            args.extend(ids.iter().map(|i| rusqlite::types::Value::from(*i)));
        }
        if !types.is_empty() {
            conds.push_str(&format!(
                " AND data_source_type IN ({})",
                placeholders(types.len())
            ));
            args.extend(
                types
                    .iter()
                    .map(|s| rusqlite::types::Value::from(s.clone())),
            );
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
            WhiteLabelOrder::CreatedAt => "created_at",
            WhiteLabelOrder::DataSourceType => "data_source_type",
        };
        let d = dir.sql();
        let (rows, count) = self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM white_labels WHERE {page_conds} ORDER BY {col} {d}, id {d} LIMIT ? OFFSET ?"
            ))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(page_args), raw)?
                .collect::<Result<Vec<_>, _>>()?;
            let count: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM white_labels WHERE {conds}"),
                rusqlite::params_from_iter(args),
                |r| r.get(0),
            )?;
            Ok((rows, count))
        })?;
        let rows = rows
            .into_iter()
            .map(|r| self.to_white_label(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((rows, count))
    }

    /// `/white_label/update`: replaces the credentials of an existing connector type. An absent
    /// `client_secret` keeps the stored one (it cannot be read back to resend it).
    pub fn update_white_label(
        &self,
        org_id: i64,
        inp: &WhiteLabelInput,
    ) -> Result<WhiteLabel, StoreError> {
        let now = now_unix();
        let id = self.write(|tx| {
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM white_labels WHERE organization_id = ?1 AND data_source_type = ?2",
                    params![org_id, inp.data_source_type],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else { return Err(StoreError::NotFound("white label")) };
            tx.execute(
                "UPDATE white_labels SET client_id = ?3, redirect_uri = ?4, updated_at = ?5 \
                 WHERE id = ?1 AND organization_id = ?2",
                params![id, org_id, inp.client_id, inp.redirect_uri, now],
            )?;
            if let Some(s) = &inp.client_secret {
                tx.execute(
                    "UPDATE white_labels SET client_secret_enc = ?3 WHERE id = ?1 AND organization_id = ?2",
                    params![id, org_id, self.key().encrypt(s.as_bytes())],
                )?;
            }
            if !inp.extra.is_empty() {
                tx.execute(
                    "UPDATE white_labels SET extra_enc = ?3 WHERE id = ?1 AND organization_id = ?2",
                    params![id, org_id, self.encrypt_extra(&inp.extra)],
                )?;
            }
            Ok(id)
        })?;
        self.get_white_label(org_id, id)
    }

    /// `/white_label/delete`: deletes the given ids of this organization; returns how many.
    pub fn delete_white_labels(&self, org_id: i64, ids: &[i64]) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut n = 0;
            for id in ids {
                n += tx.execute(
                    "DELETE FROM white_labels WHERE id = ?1 AND organization_id = ?2",
                    params![id, org_id],
                )?;
            }
            Ok(n)
        })
    }

    /// Connector types the organization has white-labelled.
    pub fn white_labelled_types(&self, org_id: i64) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT data_source_type FROM white_labels WHERE organization_id = ?1 ORDER BY data_source_type",
            )?;
            let rows = st.query_map([org_id], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// The organization's own Dropbox app: `(client_id, client_secret, redirect_uri)`.
    pub fn dropbox_app_credentials(
        &self,
        org_id: i64,
    ) -> Result<Option<(String, Option<String>, String)>, StoreError> {
        let row: Option<(String, Option<Vec<u8>>, String)> = self.read(|c| {
            Ok(c.query_row(
                "SELECT client_id, client_secret_enc, redirect_uri FROM white_labels \
                 WHERE organization_id = ?1 AND data_source_type = 'DROPBOX'",
                [org_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
        })?;
        match row {
            None => Ok(None),
            Some((id, sec, uri)) => {
                let sec = match sec {
                    Some(b) => Some(self.decrypt_str(&b)?),
                    None => None,
                };
                Ok(Some((id, sec, uri)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbide_core::secrets::MasterKey;

    #[test]
    fn secrets_encrypted_and_masked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("db");
        let s = Store::open(&p, MasterKey::generate()).unwrap();
        let (a, _) = s.create_organization("a").unwrap();
        let inp = WhiteLabelInput {
            data_source_type: "DROPBOX".into(),
            client_id: "appkey".into(),
            redirect_uri: "https://x.y/integrations/dropbox".into(),
            client_secret: Some("supersecretvalue1234".into()),
            extra: Map::new(),
        };
        let wl = s
            .create_white_labels(a.id, std::slice::from_ref(&inp))
            .unwrap();
        assert_eq!(wl[0].client_secret_masked.as_deref(), Some("supe…1234"));
        assert!(matches!(
            s.create_white_labels(a.id, &[inp]),
            Err(StoreError::Conflict(_))
        ));
        let creds = s.dropbox_app_credentials(a.id).unwrap().unwrap();
        assert_eq!(creds.1.as_deref(), Some("supersecretvalue1234"));
        drop(s);
        let raw = std::fs::read(&p).unwrap();
        assert!(!raw.windows(20).any(|w| w == b"supersecretvalue1234"));
    }
}
