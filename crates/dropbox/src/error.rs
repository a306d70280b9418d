//! Errors of the Dropbox client, classified the way a sync engine acts on them.

/// Why a Dropbox call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connection refused, reset or timed out.
    #[error("cannot reach Dropbox: {0}")]
    Transport(String),
    /// 400 with Dropbox's plain-text explanation.
    #[error("Dropbox rejected the request: {0}")]
    BadRequest(String),
    /// 401: the access token is expired, invalid or lacks a scope (`tag` is the AuthError tag).
    #[error("Dropbox authentication failed: {tag}")]
    Auth {
        tag: String,
        body: serde_json::Value,
    },
    /// The token endpoint refused a grant (`invalid_grant` means re-authorisation is needed).
    #[error("Dropbox OAuth error: {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        error: String,
        description: Option<String>,
    },
    /// 403.
    #[error("Dropbox denied access: {0}")]
    AccessDenied(String),
    /// 409: an endpoint-specific error (`summary` like `path/not_found/..`).
    #[error("Dropbox API error: {summary}")]
    Api {
        summary: String,
        error: serde_json::Value,
    },
    /// 422: a bad `Dropbox-API-Path-Root`.
    #[error("Dropbox path root error: {0}")]
    PathRoot(serde_json::Value),
    /// 429 after the retry budget was spent.
    #[error("Dropbox rate limit (retry after {retry_after:?} s)")]
    RateLimited { retry_after: Option<u64> },
    /// 5xx after the retry budget was spent.
    #[error("Dropbox server error {status}")]
    Server { status: u16, body: String },
    #[error("unexpected Dropbox response: {0}")]
    Decode(String),
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("downloaded bytes do not match Dropbox's content hash")]
    ContentHashMismatch,
    #[error("writing the download failed: {0}")]
    Io(String),
}

impl Error {
    fn api_tag_path(&self) -> Option<&str> {
        match self {
            Error::Api { summary, .. } => Some(summary.as_str()),
            _ => None,
        }
    }

    /// The cursor was invalidated: list the folder again from scratch.
    pub fn is_reset(&self) -> bool {
        self.api_tag_path().is_some_and(|s| s.starts_with("reset"))
    }

    /// The path or id does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        self.api_tag_path()
            .is_some_and(|s| s.starts_with("path/not_found"))
    }

    /// The access token expired: refresh it and retry.
    pub fn is_expired_token(&self) -> bool {
        matches!(self, Error::Auth { tag, .. } if tag == "expired_access_token")
    }

    /// The grant is gone (token revoked, refresh token invalid): the user must reconnect.
    pub fn is_revoked(&self) -> bool {
        match self {
            Error::Auth { tag, .. } => tag == "invalid_access_token" || tag == "user_suspended",
            Error::OAuth { error, .. } => error == "invalid_grant",
            _ => false,
        }
    }

    /// Worth retrying later (network trouble, rate limits, server errors).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Transport(_) | Error::RateLimited { .. } | Error::Server { .. }
        )
    }
}
