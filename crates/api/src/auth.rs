//! Authentication exactly as Carbon's SDK sends it: `authorization: Bearer <api key>` (+
//! `customer-id` for customer-scoped calls) or `authorization: Token <access token>`; the scheme is
//! case-insensitive and several `authorization` headers may be present (any valid one wins).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use carbide_store::Customer;

use crate::AppState;
use crate::error::ApiError;

/// Credentials presented in the request.
#[derive(Debug, Default)]
struct Presented {
    any_header: bool,
    api_keys: Vec<String>,
    tokens: Vec<String>,
    customer_id: Option<String>,
}

fn presented(parts: &Parts) -> Presented {
    let mut p = Presented::default();
    for v in parts.headers.get_all(axum::http::header::AUTHORIZATION) {
        p.any_header = true;
        let Ok(s) = v.to_str() else { continue };
        let s = s.trim();
        let (scheme, cred) = match s.split_once(char::is_whitespace) {
            Some((a, b)) => (a, b.trim()),
            None => continue,
        };
        if cred.is_empty() {
            continue;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            p.api_keys.push(cred.to_string());
        } else if scheme.eq_ignore_ascii_case("token") {
            p.tokens.push(cred.to_string());
        }
    }
    p.customer_id = parts
        .headers
        .get("customer-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    p
}

/// An organization-level caller (API key only).
#[derive(Debug, Clone, Copy)]
pub struct OrgAuth {
    /// The organization.
    pub org_id: i64,
}

/// A customer-scoped caller (access token, or API key + `customer-id`).
#[derive(Debug, Clone)]
pub struct CustomerAuth {
    /// The organization.
    pub org_id: i64,
    /// The customer (created on first use).
    pub customer: Customer,
}

async fn org_for_keys(state: &AppState, keys: Vec<String>) -> Result<Option<i64>, ApiError> {
    state
        .db(move |s| {
            for k in &keys {
                if let Some(org) = s.organization_for_api_key(k)? {
                    return Ok(Some(org));
                }
            }
            Ok(None)
        })
        .await
}

async fn customer_for_tokens(
    state: &AppState,
    tokens: Vec<String>,
) -> Result<Option<Customer>, ApiError> {
    state
        .db(move |s| {
            for t in &tokens {
                if let Some(c) = s.customer_for_access_token(t)? {
                    return Ok(Some(c));
                }
            }
            Ok(None)
        })
        .await
}

impl FromRequestParts<AppState> for OrgAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let p = presented(parts);
        if !p.any_header {
            return Err(ApiError::missing_header("authorization"));
        }
        if let Some(org_id) = org_for_keys(state, p.api_keys.clone()).await? {
            return Ok(OrgAuth { org_id });
        }
        if !p.tokens.is_empty() && customer_for_tokens(state, p.tokens).await?.is_some() {
            return Err(ApiError::Status(
                axum::http::StatusCode::FORBIDDEN,
                "This endpoint requires an organization API key (Bearer); customer tokens are not accepted".into(),
            ));
        }
        if p.api_keys.is_empty() {
            return Err(ApiError::unauthorized(
                "Invalid authorization header: expected 'Bearer <api key>'",
            ));
        }
        Err(ApiError::unauthorized("Invalid API key"))
    }
}

impl FromRequestParts<AppState> for CustomerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let p = presented(parts);
        if !p.any_header {
            return Err(ApiError::missing_header("authorization"));
        }
        if let Some(c) = customer_for_tokens(state, p.tokens.clone()).await? {
            return Ok(CustomerAuth {
                org_id: c.organization_id,
                customer: c,
            });
        }
        if let Some(org_id) = org_for_keys(state, p.api_keys.clone()).await? {
            let Some(cid) = p.customer_id else {
                return Err(ApiError::missing_header("customer-id"));
            };
            let customer = state
                .db(move |s| s.get_or_create_customer(org_id, &cid))
                .await?;
            return Ok(CustomerAuth { org_id, customer });
        }
        if p.api_keys.is_empty() && p.tokens.is_empty() {
            return Err(ApiError::unauthorized(
                "Invalid authorization header: expected 'Bearer <api key>' or 'Token <access token>'",
            ));
        }
        if !p.tokens.is_empty() && p.api_keys.is_empty() {
            return Err(ApiError::unauthorized("Invalid or expired access token"));
        }
        Err(ApiError::unauthorized("Invalid API key or access token"))
    }
}
