//! White-label (custom OAuth app) credentials: `/white_label/create|list|update|delete`.
//! Secrets are stored encrypted and only ever returned masked.

use axum::extract::State;
use carbide_core::enums::is_oauth_connector;
use carbide_store::{Dir, WhiteLabelInput, WhiteLabelOrder};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::OrgAuth;
use crate::error::{ApiError, ErrorDetail, HttpValidationError, ValidationItem};
use crate::extract::JsonBody;
use crate::models::{
    DeleteWhiteLabelRequest, ListWhiteLabelRequest, OrderDir, Pagination, WhiteLabelDeleteResponse,
    WhiteLabelInputBody, WhiteLabelList, WhiteLabelOrderBy, WhiteLabelRecord,
};

/// Connector types Carbon accepts in white-label inputs (all three input variants).
const WHITE_LABEL_TYPES: &[&str] = &[
    "INTERCOM",
    "NOTION",
    "SLACK",
    "ZENDESK",
    "OUTLOOK",
    "GMAIL",
    "SERVICENOW",
    "SALESFORCE",
    "ZOTERO",
    "BOX",
    "CONFLUENCE",
    "DROPBOX",
    "GOOGLE_CLOUD_STORAGE",
    "GONG",
    "GOOGLE_DRIVE",
    "ONEDRIVE",
    "SHAREPOINT",
];

fn loc(prefix: &[Value], rest: &[&str]) -> Vec<Value> {
    let mut l = vec![json!("body")];
    l.extend(prefix.iter().cloned());
    l.extend(rest.iter().map(|s| json!(s)));
    l
}

/// Validates one input and converts it for the store.
fn to_input(b: WhiteLabelInputBody, prefix: &[Value]) -> Result<WhiteLabelInput, ApiError> {
    let t = b.data_source_type;
    if !WHITE_LABEL_TYPES.contains(&t.as_str()) {
        return Err(ApiError::Validation(vec![ValidationItem::new(
            loc(prefix, &["data_source_type"]),
            format!(
                "'{t}' cannot be white-labelled; permitted: {}",
                WHITE_LABEL_TYPES.join(", ")
            ),
            "type_error.enum",
        )]));
    }
    let c = b.credentials;
    let mut errs = Vec::new();
    if c.client_id.trim().is_empty() {
        errs.push(ValidationItem::new(
            loc(prefix, &["credentials", "client_id"]),
            "client_id must not be empty",
            "value_error",
        ));
    }
    let uri_ok = url::Url::parse(&c.redirect_uri)
        .map(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or(false);
    if !uri_ok {
        errs.push(ValidationItem::new(
            loc(prefix, &["credentials", "redirect_uri"]),
            "redirect_uri must be an http(s) URL",
            "value_error.url",
        ));
    } else if t == "DROPBOX"
        && !c
            .redirect_uri
            .trim_end_matches('/')
            .ends_with("/integrations/dropbox")
    {
        errs.push(ValidationItem::new(
            loc(prefix, &["credentials", "redirect_uri"]),
            "the Dropbox redirect_uri must end with /integrations/dropbox",
            "value_error",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    let mut extra = Map::new();
    if t == "GOOGLE_DRIVE"
        && let Some(k) = c.api_key
    {
        extra.insert("api_key".into(), json!(k));
    }
    if t == "ONEDRIVE" || t == "SHAREPOINT" {
        if let Some(v) = c.file_picker_client_id {
            extra.insert("file_picker_client_id".into(), json!(v));
        }
        if let Some(v) = c.file_picker_redirect_uri {
            extra.insert("file_picker_redirect_uri".into(), json!(v));
        }
    }
    Ok(WhiteLabelInput {
        data_source_type: t,
        client_id: c.client_id,
        redirect_uri: c.redirect_uri,
        client_secret: c.client_secret.filter(|s| !s.is_empty()),
        extra,
    })
}

/// Stores custom OAuth credentials (body is a JSON array of inputs).
#[utoipa::path(post, path = "/white_label/create", tag = "White Label",
    request_body = Vec<WhiteLabelInputBody>,
    responses((status = 200, body = WhiteLabelList), (status = 400, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(body): JsonBody<Vec<WhiteLabelInputBody>>,
) -> Result<axum::Json<WhiteLabelList>, ApiError> {
    let mut inputs = Vec::with_capacity(body.len());
    for (i, b) in body.into_iter().enumerate() {
        let inp = to_input(b, &[json!(i)])?;
        if inputs
            .iter()
            .any(|x: &WhiteLabelInput| x.data_source_type == inp.data_source_type)
        {
            return Err(ApiError::bad_request(format!(
                "Duplicate data_source_type {} in request",
                inp.data_source_type
            )));
        }
        inputs.push(inp);
    }
    let org = auth.org_id;
    let rows = state
        .db(move |s| s.create_white_labels(org, &inputs))
        .await?;
    let count = rows.len() as i64;
    Ok(axum::Json(WhiteLabelList {
        results: rows.into_iter().map(WhiteLabelRecord::from).collect(),
        count,
    }))
}

/// Lists white-label entries (secrets masked).
#[utoipa::path(post, path = "/white_label/list", tag = "White Label",
    request_body = ListWhiteLabelRequest,
    responses((status = 200, body = WhiteLabelList), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<ListWhiteLabelRequest>,
) -> Result<axum::Json<WhiteLabelList>, ApiError> {
    let page = Pagination::resolve(req.pagination.as_ref());
    let order = match req.order_by {
        Some(WhiteLabelOrderBy::DataSourceType) => WhiteLabelOrder::DataSourceType,
        _ => WhiteLabelOrder::CreatedAt,
    };
    let dir = OrderDir::resolve(req.order_dir, Dir::Asc);
    let f = req.filters.unwrap_or_default();
    let ids = f.ids.unwrap_or_default();
    let types = f.data_source_type.unwrap_or_default();
    for (i, t) in types.iter().enumerate() {
        if !is_oauth_connector(t) {
            return Err(ApiError::Validation(vec![ValidationItem::new(
                vec![
                    json!("body"),
                    json!("filters"),
                    json!("data_source_type"),
                    json!(i),
                ],
                format!("'{t}' is not a valid OauthBasedConnectors value"),
                "type_error.enum",
            )]));
        }
    }
    let org = auth.org_id;
    let (rows, count) = state
        .db(move |s| s.list_white_labels(org, &ids, &types, order, dir, page))
        .await?;
    Ok(axum::Json(WhiteLabelList {
        results: rows.into_iter().map(WhiteLabelRecord::from).collect(),
        count,
    }))
}

/// Replaces the credentials of an already white-labelled connector.
#[utoipa::path(post, path = "/white_label/update", tag = "White Label",
    request_body = WhiteLabelInputBody,
    responses((status = 200, body = WhiteLabelRecord), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(body): JsonBody<WhiteLabelInputBody>,
) -> Result<axum::Json<WhiteLabelRecord>, ApiError> {
    let inp = to_input(body, &[])?;
    let org = auth.org_id;
    let row = state.db(move |s| s.update_white_label(org, &inp)).await?;
    Ok(axum::Json(row.into()))
}

/// Deletes white-label entries by id.
#[utoipa::path(post, path = "/white_label/delete", tag = "White Label",
    request_body = DeleteWhiteLabelRequest,
    responses((status = 200, body = WhiteLabelDeleteResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<DeleteWhiteLabelRequest>,
) -> Result<axum::Json<WhiteLabelDeleteResponse>, ApiError> {
    let org = auth.org_id;
    let n = state
        .db(move |s| s.delete_white_labels(org, &req.ids))
        .await?;
    Ok(axum::Json(WhiteLabelDeleteResponse {
        success: true,
        count: n as i64,
    }))
}
