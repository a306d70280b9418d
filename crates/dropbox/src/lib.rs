//! An async client of the Dropbox API v2, written for carbide's connector but knowing nothing of
//! carbide: OAuth 2.0 (authorize URL with PKCE and state, code exchange, refresh, revoke),
//! account info, `list_folder`/`continue`/`get_latest_cursor`, `get_metadata`, streaming
//! download with content-hash verification, longpoll, and webhook signature checks. Base URLs
//! come from configuration so the same client talks to Dropbox or to the emulator.

pub mod client;
pub mod content_hash;
pub mod error;
pub mod header;
pub mod oauth;
pub mod types;
pub mod webhook;

pub use client::{Auth, Client, ClientOptions, Endpoints, RetryPolicy};
pub use content_hash::ContentHasher;
pub use error::Error;
pub use types::*;
