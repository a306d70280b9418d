//! Webhook URL management: `/add_webhook`, `/webhooks`, `/delete_webhook/{webhook_id}`.

use axum::extract::{Path, State};
use carbide_store::{Dir, WebhookOrder};

use crate::AppState;
use crate::auth::OrgAuth;
use crate::error::{ApiError, ErrorDetail, HttpValidationError, ValidationItem};
use crate::extract::JsonBody;
use crate::models::{
    AddWebhookProps, CreatedUpdated, GenericSuccessResponse, OrderDir, Pagination, WebhookNoKey,
    WebhookQueryInput, WebhookQueryResponse, WebhookResponse,
};

/// Registers a webhook URL (max 3 per organization); the signing key is shown only here.
#[utoipa::path(post, path = "/add_webhook", tag = "Webhooks", request_body = AddWebhookProps,
    responses((status = 200, body = WebhookResponse), (status = 400, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn add_webhook(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<AddWebhookProps>,
) -> Result<axum::Json<WebhookResponse>, ApiError> {
    let ok = url::Url::parse(&req.url)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false);
    if !ok {
        return Err(ApiError::body_field(
            &["url"],
            "invalid or missing URL scheme: expected an http:// or https:// URL",
            "value_error.url",
        ));
    }
    let org = auth.org_id;
    let w = state.db(move |s| s.add_webhook(org, &req.url)).await?;
    Ok(axum::Json(w.into()))
}

/// The organization's webhook URLs (without signing keys).
#[utoipa::path(post, path = "/webhooks", tag = "Webhooks", request_body = WebhookQueryInput,
    responses((status = 200, body = WebhookQueryResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<WebhookQueryInput>,
) -> Result<axum::Json<WebhookQueryResponse>, ApiError> {
    let page = Pagination::resolve(req.pagination.as_ref());
    let order = match req.order_by {
        Some(CreatedUpdated::CreatedAt) => WebhookOrder::CreatedAt,
        _ => WebhookOrder::UpdatedAt,
    };
    let dir = OrderDir::resolve(req.order_dir, Dir::Asc);
    let ids = req.filters.and_then(|f| f.ids).unwrap_or_default();
    let org = auth.org_id;
    let (rows, count) = state
        .db(move |s| s.list_webhooks(org, Some(&ids), order, dir, page))
        .await?;
    Ok(axum::Json(WebhookQueryResponse {
        results: rows.into_iter().map(WebhookNoKey::from).collect(),
        count,
    }))
}

/// Deletes one webhook URL.
#[utoipa::path(delete, path = "/delete_webhook/{webhook_id}", tag = "Webhooks",
    params(("webhook_id" = i64, Path, description = "Webhook id")),
    responses((status = 200, body = GenericSuccessResponse), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(raw_id): Path<String>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let id: i64 = raw_id.parse().map_err(|_| {
        ApiError::Validation(vec![ValidationItem::new(
            vec!["path".into(), "webhook_id".into()],
            "value is not a valid integer",
            "type_error.integer",
        )])
    })?;
    let org = auth.org_id;
    state.db(move |s| s.delete_webhook(org, id)).await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}
