//! carbide-core: domain types and rules shared by every carbide crate (no I/O).
//!
//! - [`secrets`]: master-key encryption, token generation and hashing.
//! - [`timefmt`]: the timestamp format carbide puts on the wire.
//! - [`enums`]: Carbon enums the tenancy endpoints validate against.
//! - [`webhook`]: Carbon's webhook body and signature algorithm.

pub mod enums;
pub mod search_text;
pub mod secrets;
pub mod timefmt;
pub mod webhook;
