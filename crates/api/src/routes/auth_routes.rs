//! `/auth/v1/*`: access tokens for customers and the white-labeling summary.

use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::CustomerAuth;
use crate::error::{ApiError, HttpValidationError};
use crate::models::{TokenResponse, WhiteLabelingResponse};

/// Mints a 10-hour access token for the customer (created on first use).
#[utoipa::path(get, path = "/auth/v1/access_token", tag = "Auth",
    responses((status = 200, body = TokenResponse), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn access_token(
    State(state): State<AppState>,
    auth: CustomerAuth,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let (org, cid) = (auth.org_id, auth.customer.id);
    let t = state.db(move |s| s.issue_access_token(org, cid)).await?;
    Ok(axum::Json(TokenResponse {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
    }))
}

/// Which connectors the organization has white-labelled.
#[utoipa::path(get, path = "/auth/v1/white_labeling", tag = "Auth",
    responses((status = 200, body = WhiteLabelingResponse), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn white_labeling(
    State(state): State<AppState>,
    auth: CustomerAuth,
) -> Result<axum::Json<WhiteLabelingResponse>, ApiError> {
    let org = auth.org_id;
    let (o, types) = state
        .db(move |s| Ok((s.get_organization(org)?, s.white_labelled_types(org)?)))
        .await?;
    let integrations: Map<String, Value> =
        types.into_iter().map(|t| (t, Value::Bool(true))).collect();
    Ok(axum::Json(WhiteLabelingResponse {
        remove_branding: o.remove_branding,
        integrations,
        custom_limits: if o.custom_limits.is_object() {
            o.custom_limits
        } else {
            json!({})
        },
        connector_settings: if o.connector_settings.is_object() {
            o.connector_settings
        } else {
            json!({})
        },
    }))
}
