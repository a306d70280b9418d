//! Durable job queue: rows in `jobs`, claimed with a lease inside an IMMEDIATE transaction so
//! several workers (or processes sharing the database) never run the same job at once. A job
//! whose lease expires (its worker died) becomes claimable again; failures are rescheduled by
//! the caller with backoff; each job stands alone, so one file's failure never blocks another.

use carbide_core::timefmt::now_unix;
use rusqlite::params;
use serde_json::Value;

use crate::{Store, StoreError, parse_json};

/// Job kind: (re)process a file from its stored raw bytes.
pub const JOB_PROCESS_FILE: &str = "process_file";

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What to do (e.g. [`JOB_PROCESS_FILE`]).
    pub kind: String,
    /// Owning customer (deleting the customer deletes the job).
    pub organization_user_id: Option<i64>,
    /// File concerned (deleting the file deletes the job).
    pub file_id: Option<i64>,
    /// Free-form parameters.
    pub payload: Value,
    /// Earliest start (unix seconds).
    pub run_at: i64,
    /// Attempts before giving up.
    pub max_attempts: i64,
    /// At most one pending job per key: enqueueing again replaces the payload, resets the
    /// attempts and releases any lease (a running worker's completion then leaves the new
    /// request in place).
    pub dedupe_key: Option<String>,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// Owning customer.
    pub organization_user_id: Option<i64>,
    /// File concerned.
    pub file_id: Option<i64>,
    /// Parameters.
    pub payload: Value,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// The lease token this claim holds.
    pub lease_owner: String,
}

pub(crate) fn enqueue_job_tx(
    tx: &rusqlite::Transaction<'_>,
    j: &NewJob,
) -> Result<i64, StoreError> {
    let now = now_unix();
    let id = tx.query_row(
        "INSERT INTO jobs (kind, organization_user_id, file_id, payload, run_at, max_attempts, dedupe_key, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (dedupe_key) DO UPDATE SET payload = excluded.payload, run_at = excluded.run_at, \
             attempts = 0, max_attempts = excluded.max_attempts, lease_owner = NULL, lease_until = NULL, \
             last_error = NULL \
         RETURNING id",
        params![
            j.kind,
            j.organization_user_id,
            j.file_id,
            j.payload.to_string(),
            j.run_at,
            j.max_attempts,
            j.dedupe_key,
            now
        ],
        |r| r.get(0),
    )?;
    Ok(id)
}

impl Store {
    /// Enqueues (or, with a known `dedupe_key`, re-arms) a job; returns its id.
    pub fn enqueue_job(&self, j: &NewJob) -> Result<i64, StoreError> {
        self.write(|tx| enqueue_job_tx(tx, j))
    }

    /// Claims up to `limit` due jobs of `kinds` for `lease_secs` on behalf of `owner`.
    pub fn claim_jobs(
        &self,
        owner: &str,
        kinds: &[&str],
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let now = now_unix();
        let kinds_json = Value::from(kinds.to_vec()).to_string();
        self.write(|tx| {
            let mut st = tx.prepare(
                "UPDATE jobs SET lease_owner = ?1, lease_until = ?2 \
                 WHERE id IN (SELECT id FROM jobs WHERE run_at <= ?3 \
                     AND (lease_until IS NULL OR lease_until < ?3) \
                     AND kind IN (SELECT value FROM json_each(?4)) \
                     ORDER BY run_at, id LIMIT ?5) \
                 RETURNING id, kind, organization_user_id, file_id, payload, attempts, max_attempts",
            )?;
            let rows = st
                .query_map(
                    params![owner, now + lease_secs, now, kinds_json, limit as i64],
                    |r| {
                        Ok(Job {
                            id: r.get(0)?,
                            kind: r.get(1)?,
                            organization_user_id: r.get(2)?,
                            file_id: r.get(3)?,
                            payload: parse_json(&r.get::<_, String>(4)?),
                            attempts: r.get(5)?,
                            max_attempts: r.get(6)?,
                            lease_owner: owner.to_string(),
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Extends the lease of a running job; `false` when the job is no longer ours.
    pub fn extend_job_lease(
        &self,
        id: i64,
        owner: &str,
        lease_secs: i64,
    ) -> Result<bool, StoreError> {
        let until = now_unix() + lease_secs;
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner, until],
            )? == 1)
        })
    }

    /// Removes a finished job (only while `owner` still holds it).
    pub fn complete_job(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM jobs WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner],
            )?;
            Ok(())
        })
    }

    /// Records a failed attempt: `retry_at` reschedules, `None` removes the job (given up).
    pub fn fail_job(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            match retry_at {
                Some(at) => tx.execute(
                    "UPDATE jobs SET attempts = attempts + 1, run_at = ?3, last_error = ?4, \
                     lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2",
                    params![id, owner, at, error],
                )?,
                None => tx.execute(
                    "DELETE FROM jobs WHERE id = ?1 AND lease_owner = ?2",
                    params![id, owner],
                )?,
            };
            Ok(())
        })
    }

    /// Number of jobs waiting or running (all kinds).
    pub fn pending_jobs(&self) -> Result<i64, StoreError> {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbide_core::secrets::MasterKey;

    fn job(key: Option<&str>) -> NewJob {
        NewJob {
            kind: "k".into(),
            organization_user_id: None,
            file_id: None,
            payload: serde_json::json!({"a": 1}),
            run_at: 0,
            max_attempts: 3,
            dedupe_key: key.map(String::from),
        }
    }

    #[test]
    fn lease_retry_dedupe() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("db"), MasterKey::generate()).unwrap();
        let a = s.enqueue_job(&job(Some("x"))).unwrap();
        assert_eq!(s.enqueue_job(&job(Some("x"))).unwrap(), a);
        s.enqueue_job(&job(None)).unwrap();
        let got = s.claim_jobs("w1", &["k"], 60, 1).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload["a"], 1);
        assert!(s.claim_jobs("w2", &["other"], 60, 10).unwrap().is_empty());
        let more = s.claim_jobs("w2", &["k"], 60, 10).unwrap();
        assert_eq!(more.len(), 1, "leased job not handed out twice");
        // expired lease → claimable again
        assert!(s.extend_job_lease(got[0].id, "w1", -10).unwrap());
        let again = s.claim_jobs("w3", &["k"], 60, 10).unwrap();
        assert_eq!(again.len(), 1);
        assert!(!s.extend_job_lease(got[0].id, "w1", 60).unwrap());
        s.fail_job(again[0].id, "w3", "boom", Some(now_unix() + 100))
            .unwrap();
        assert!(s.claim_jobs("w3", &["k"], 60, 10).unwrap().is_empty());
        s.complete_job(more[0].id, "w2").unwrap();
        assert_eq!(s.pending_jobs().unwrap(), 1);
    }
}
