//! Durable webhook outbox: one row per (event, webhook URL), claimed with a lease by the
//! delivery worker so two processes never send the same row at the same time.

use carbide_core::timefmt::now_unix;
use carbide_core::webhook::{ObjectId, WebhookEvent, value_to_string};
use rusqlite::{Transaction, params};
use serde_json::{Map, Value};

use crate::{Store, StoreError};

/// A claimed delivery, ready to send.
#[derive(Debug, Clone)]
pub struct OutboxDelivery {
    /// Outbox row id.
    pub id: i64,
    /// Receiver URL.
    pub url: String,
    /// Plain hex signing key.
    pub signing_key: String,
    /// Inner payload JSON text (goes into `{"payload": …}`).
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// Outbox row state (for inspection and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Target webhook.
    pub webhook_id: i64,
    /// Event type.
    pub webhook_type: String,
    /// Inner payload JSON text.
    pub payload: String,
    /// Attempts made.
    pub attempts: i64,
    /// When delivered (unix seconds).
    pub delivered_at: Option<i64>,
    /// When given up (unix seconds).
    pub failed_at: Option<i64>,
    /// Last delivery error.
    pub last_error: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn enqueue_tx(
    tx: &Transaction<'_>,
    _store: &Store,
    org_id: i64,
    customer_id: Option<&str>,
    webhook_type: &str,
    object_type: &str,
    object_id: &Value,
    additional_information: Option<&Map<String, Value>>,
) -> Result<usize, StoreError> {
    let now = now_unix();
    let event = WebhookEvent {
        webhook_type: webhook_type.to_string(),
        object_type: object_type.to_string(),
        object_id: ObjectId::from_json(object_id),
        additional_information: additional_information.map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), value_to_string(v)))
                .collect()
        }),
        customer_id: customer_id.unwrap_or("").to_string(),
        timestamp: now,
    };
    let payload = event.payload_json();
    let n = tx.execute(
        "INSERT INTO webhook_outbox (webhook_id, organization_id, webhook_type, payload, next_attempt_at, created_at) \
         SELECT id, organization_id, ?2, ?3, ?4, ?4 FROM webhooks WHERE organization_id = ?1",
        params![org_id, webhook_type, payload, now],
    )?;
    Ok(n)
}

impl Store {
    /// Enqueues one event for every webhook URL of the organization; returns rows queued.
    pub fn enqueue_webhook(
        &self,
        org_id: i64,
        customer_id: Option<&str>,
        webhook_type: &str,
        object_type: &str,
        object_id: Value,
        additional_information: Option<Map<String, Value>>,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            enqueue_tx(
                tx,
                self,
                org_id,
                customer_id,
                webhook_type,
                object_type,
                &object_id,
                additional_information.as_ref(),
            )
        })
    }

    /// Claims up to `limit` due deliveries for `lease_secs` on behalf of `owner`.
    pub fn claim_webhook_deliveries(
        &self,
        owner: &str,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        let now = now_unix();
        let rows: Vec<(i64, String, Vec<u8>, String, i64)> = self.write(|tx| {
            let mut st = tx.prepare(
                "UPDATE webhook_outbox SET lease_owner = ?1, lease_until = ?2 \
                 WHERE id IN (SELECT id FROM webhook_outbox \
                     WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?3 \
                       AND (lease_until IS NULL OR lease_until < ?3) ORDER BY id LIMIT ?4) \
                 RETURNING id, webhook_id, payload, attempts",
            )?;
            let claimed = st
                .query_map(params![owner, now + lease_secs, now, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(claimed.len());
            for (id, wid, payload, attempts) in claimed {
                let (url, key): (String, Vec<u8>) = tx.query_row(
                    "SELECT url, signing_key_enc FROM webhooks WHERE id = ?1",
                    [wid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                out.push((id, url, key, payload, attempts));
            }
            Ok(out)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, url, key_enc, payload, attempts) in rows {
            let key = self.key().decrypt(&key_enc)?;
            let signing_key = String::from_utf8(key)
                .map_err(|_| StoreError::Secret(carbide_core::secrets::SecretError::Decrypt))?;
            out.push(OutboxDelivery {
                id,
                url,
                signing_key,
                payload,
                attempts,
            });
        }
        Ok(out)
    }

    /// Marks a claimed delivery as delivered.
    pub fn complete_webhook_delivery(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            tx.execute(
                "UPDATE webhook_outbox SET delivered_at = ?3, attempts = attempts + 1, \
                 lease_owner = NULL, lease_until = NULL, last_error = NULL \
                 WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner, now],
            )?;
            Ok(())
        })
    }

    /// Records a failed attempt; `retry_at` schedules the next one, `None` gives up.
    pub fn fail_webhook_delivery(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = now_unix();
        self.write(|tx| {
            match retry_at {
                Some(at) => tx.execute(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?3, \
                     last_error = ?4, lease_owner = NULL, lease_until = NULL \
                     WHERE id = ?1 AND lease_owner = ?2",
                    params![id, owner, at, error],
                )?,
                None => tx.execute(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, failed_at = ?3, \
                     last_error = ?4, lease_owner = NULL, lease_until = NULL \
                     WHERE id = ?1 AND lease_owner = ?2",
                    params![id, owner, now, error],
                )?,
            };
            Ok(())
        })
    }

    /// All outbox rows of an organization (newest last).
    pub fn outbox_rows(&self, org_id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, webhook_id, webhook_type, payload, attempts, delivered_at, failed_at, last_error \
                 FROM webhook_outbox WHERE organization_id = ?1 ORDER BY id",
            )?;
            let rows = st
                .query_map([org_id], |r| {
                    Ok(OutboxRow {
                        id: r.get(0)?,
                        webhook_id: r.get(1)?,
                        webhook_type: r.get(2)?,
                        payload: r.get(3)?,
                        attempts: r.get(4)?,
                        delivered_at: r.get(5)?,
                        failed_at: r.get(6)?,
                        last_error: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbide_core::secrets::MasterKey;

    #[test]
    fn fan_out_claim_lease_complete() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("db"), MasterKey::generate()).unwrap();
        let (a, _) = s.create_organization("a").unwrap();
        let (b, _) = s.create_organization("b").unwrap();
        let w1 = s.add_webhook(a.id, "http://127.0.0.1:1/a").unwrap();
        s.add_webhook(a.id, "http://127.0.0.1:1/b").unwrap();
        s.add_webhook(b.id, "http://127.0.0.1:1/c").unwrap();
        let n = s
            .enqueue_webhook(a.id, Some("u"), "FILE_READY", "FILE", Value::from(7), None)
            .unwrap();
        assert_eq!(n, 2);
        let got = s.claim_webhook_deliveries("w1", 60, 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].signing_key, w1.signing_key.clone().unwrap());
        assert!(got[0].payload.contains("\"object_id\": \"7\""));
        // leased: a second worker gets nothing
        assert!(s.claim_webhook_deliveries("w2", 60, 10).unwrap().is_empty());
        // a foreign owner cannot complete
        s.complete_webhook_delivery(got[0].id, "w2").unwrap();
        assert!(s.outbox_rows(a.id).unwrap()[0].delivered_at.is_none());
        s.complete_webhook_delivery(got[0].id, "w1").unwrap();
        s.fail_webhook_delivery(got[1].id, "w1", "boom", Some(now_unix() + 100))
            .unwrap();
        let rows = s.outbox_rows(a.id).unwrap();
        assert!(rows[0].delivered_at.is_some());
        assert_eq!(rows[1].attempts, 1);
        assert_eq!(rows[1].last_error.as_deref(), Some("boom"));
        assert!(s.claim_webhook_deliveries("w2", 60, 10).unwrap().is_empty());
        assert!(s.outbox_rows(b.id).unwrap().is_empty());
        // limit of three
        s.add_webhook(a.id, "http://x.y/3").unwrap();
        assert!(matches!(
            s.add_webhook(a.id, "http://x.y/4"),
            Err(StoreError::Conflict(_))
        ));
    }
}
