//! Store errors.

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migration failure on open.
    #[error("migration error: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// Could not create the database directory.
    #[error("cannot create database directory: {0}")]
    Io(#[from] std::io::Error),
    /// A stored secret could not be decrypted (wrong master key?).
    #[error("stored secret cannot be decrypted: {0}")]
    Secret(#[from] carbide_core::secrets::SecretError),
    /// The row does not exist (for this organization).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with existing data or a limit; the message is user-facing.
    #[error("{0}")]
    Conflict(String),
}
