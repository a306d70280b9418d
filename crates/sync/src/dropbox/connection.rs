//! Token lifecycle of a connected data source: [`Dropbox::auth`] hands out a valid
//! [`Auth`] (refreshing when the access token is within [`REFRESH_MARGIN_SECS`] of expiry),
//! [`Dropbox::call`] runs a Dropbox call and, on a 401 `expired_access_token` /
//! `invalid_access_token`, refreshes once and retries once.
//!
//! Refreshes are single-flight per data source: a per-source async mutex inside the process,
//! plus a lease and a compare-and-swap on `token_version` in the store so that two processes
//! sharing the database never refresh the same token twice. A refresh refused with
//! `invalid_grant` marks the data source revoked (SYNC_ERROR + REVOKE webhook, once) and is
//! never retried. Tokens are never logged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use carbide_core::timefmt::now_unix;
use carbide_dropbox::Auth;
use carbide_store::DropboxCredentials;

use super::{Dropbox, DropboxError};

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_MARGIN_SECS: i64 = 300;
/// How long one process may hold the refresh lease.
const LEASE_SECS: i64 = 30;
/// How long to wait for another process's refresh.
const CONTENTION_WAIT: Duration = Duration::from_secs(35);

fn auth_of(c: &DropboxCredentials) -> Auth {
    Auth {
        access_token: c.access_token.clone(),
        path_root: c.root_namespace_id.clone(),
    }
}

fn needs_refresh(c: &DropboxCredentials, now: i64) -> bool {
    c.refresh_token.is_some() && c.expires_at.is_some_and(|e| e - now < REFRESH_MARGIN_SECS)
}

/// A 401 that a refresh may cure.
fn token_rejected(e: &carbide_dropbox::Error) -> bool {
    matches!(e, carbide_dropbox::Error::Auth { tag, .. }
        if tag == "expired_access_token" || tag == "invalid_access_token")
}

impl Dropbox {
    fn refresh_lock(&self, data_source_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self
            .inner
            .refresh_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        m.entry(data_source_id)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    async fn credentials(&self, data_source_id: i64) -> Result<DropboxCredentials, DropboxError> {
        let c = self
            .db(move |s| s.dropbox_credentials(data_source_id))
            .await?
            .ok_or(DropboxError::NoCredentials)?;
        if c.revoked {
            return Err(DropboxError::Revoked);
        }
        Ok(c)
    }

    /// Marks the source revoked (SYNC_ERROR, REVOKE webhook — once).
    pub(crate) async fn mark_revoked(
        &self,
        data_source_id: i64,
        reason: &str,
    ) -> Result<(), DropboxError> {
        let reason = reason.to_string();
        let (_, changed) = self
            .db(move |s| s.mark_data_source_revoked(data_source_id, &reason))
            .await?;
        if changed {
            tracing::warn!(
                data_source_id,
                "Dropbox access lost; data source marked revoked"
            );
        }
        Ok(())
    }

    /// A valid [`Auth`] for the data source (access token + path root for team accounts),
    /// refreshed first when it expires within [`REFRESH_MARGIN_SECS`].
    pub async fn auth(&self, data_source_id: i64) -> Result<Auth, DropboxError> {
        Ok(auth_of(&self.valid_credentials(data_source_id).await?))
    }

    async fn valid_credentials(
        &self,
        data_source_id: i64,
    ) -> Result<DropboxCredentials, DropboxError> {
        let c = self.credentials(data_source_id).await?;
        if needs_refresh(&c, now_unix()) {
            return self.refresh(data_source_id, c.token_version).await;
        }
        Ok(c)
    }

    /// Runs `f` with a valid [`Auth`]; when Dropbox answers 401 `expired_access_token` or
    /// `invalid_access_token`, refreshes once and retries once. A second rejection of a freshly
    /// refreshed token marks the source revoked.
    pub async fn call<T, F, Fut>(&self, data_source_id: i64, f: F) -> Result<T, DropboxError>
    where
        F: Fn(Auth) -> Fut,
        Fut: Future<Output = Result<T, carbide_dropbox::Error>>,
    {
        let c = self.valid_credentials(data_source_id).await?;
        match f(auth_of(&c)).await {
            Ok(v) => Ok(v),
            Err(e) if token_rejected(&e) => {
                tracing::info!(
                    data_source_id,
                    "Dropbox rejected the access token; refreshing"
                );
                let fresh = self.refresh(data_source_id, c.token_version).await?;
                match f(auth_of(&fresh)).await {
                    Ok(v) => Ok(v),
                    Err(e) if token_rejected(&e) => {
                        self.mark_revoked(
                            data_source_id,
                            "Dropbox rejected a freshly refreshed access token",
                        )
                        .await?;
                        Err(DropboxError::Revoked)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) if e.is_revoked() => {
                self.mark_revoked(data_source_id, &format!("{e}")).await?;
                Err(DropboxError::Revoked)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Refreshes the access token unless someone already replaced version `seen_version`.
    /// Single flight per source in this process (mutex) and across processes (store lease +
    /// compare-and-swap).
    pub async fn refresh(
        &self,
        data_source_id: i64,
        seen_version: i64,
    ) -> Result<DropboxCredentials, DropboxError> {
        let lock = self.refresh_lock(data_source_id);
        let _guard = lock.lock().await;
        let deadline = tokio::time::Instant::now() + CONTENTION_WAIT;
        loop {
            let c = self.credentials(data_source_id).await?;
            if c.token_version != seen_version {
                return Ok(c);
            }
            let Some(refresh_token) = c.refresh_token.clone() else {
                self.mark_revoked(
                    data_source_id,
                    "the access token expired and no refresh token was granted",
                )
                .await?;
                return Err(DropboxError::Revoked);
            };
            let owner = self.inner.owner.clone();
            let o = owner.clone();
            let leased = self
                .db(move |s| {
                    s.try_lease_token_refresh(data_source_id, seen_version, &o, LEASE_SECS)
                })
                .await?;
            if !leased {
                if tokio::time::Instant::now() >= deadline {
                    return Err(DropboxError::RefreshContention);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let app = match self.app_by_key(c.organization_id, &c.app_key).await {
                Ok(a) => a,
                Err(e) => {
                    let o = owner.clone();
                    self.db(move |s| s.release_token_refresh(data_source_id, &o))
                        .await?;
                    return Err(e);
                }
            };
            let result = self
                .client()
                .refresh(&app.key, app.secret.as_deref(), &refresh_token)
                .await;
            match result {
                Ok(tr) => {
                    let expires_at = tr.expires_in.map(|s| now_unix() + s as i64);
                    let stored = self
                        .db(move |s| {
                            s.store_refreshed_token(
                                data_source_id,
                                seen_version,
                                &tr.access_token,
                                expires_at,
                            )
                        })
                        .await?;
                    tracing::info!(data_source_id, stored, "Dropbox access token refreshed");
                    // stored or not, the newest credentials are in the store now
                    return self.credentials(data_source_id).await;
                }
                Err(e) if e.is_revoked() => {
                    self.mark_revoked(data_source_id, &format!("token refresh refused: {e}"))
                        .await?;
                    return Err(DropboxError::Revoked);
                }
                Err(e) => {
                    let o = owner.clone();
                    self.db(move |s| s.release_token_refresh(data_source_id, &o))
                        .await?;
                    tracing::warn!(data_source_id, error = %e, "Dropbox token refresh failed");
                    return Err(e.into());
                }
            }
        }
    }
}
