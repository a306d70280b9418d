//! Organization endpoints: `/organization`, `/organization/update`, `/organization/statistics`.

use axum::extract::State;
use carbide_core::enums::is_data_source_type;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::OrgAuth;
use crate::error::{ApiError, HttpValidationError};
use crate::extract::JsonBody;
use crate::models::{GenericSuccessResponse, OrganizationResponse, UpdateOrganizationInput};

/// The calling organization.
#[utoipa::path(get, path = "/organization", tag = "Organizations",
    responses((status = 200, body = OrganizationResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn get_organization(
    State(state): State<AppState>,
    auth: OrgAuth,
) -> Result<axum::Json<OrganizationResponse>, ApiError> {
    let org = auth.org_id;
    let (o, s) = state
        .db(move |s| Ok((s.get_organization(org)?, s.organization_statistics(org)?)))
        .await?;
    Ok(axum::Json(OrganizationResponse::new(o, s)))
}

/// Sets organization-wide customer defaults and per-source configuration.
#[utoipa::path(post, path = "/organization/update", tag = "Organizations",
    request_body = UpdateOrganizationInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn update_organization(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<UpdateOrganizationInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let global = match &req.global_user_config {
        None => None,
        Some(cfg) => {
            let up = super::users::validate_config(cfg, &["global_user_config"])?;
            let mut m = Map::new();
            if let Some(s) = up.auto_sync_enabled_sources {
                m.insert("auto_sync_enabled_sources".into(), json!(s));
            }
            for (k, v) in up.limits {
                m.insert(k, json!(v));
            }
            if let Some(i) = up.auto_sync_interval {
                m.insert("auto_sync_interval".into(), json!(i.unwrap_or(-1)));
            }
            Some(Value::Object(m))
        }
    };
    let ds = match req.data_source_configs {
        None => None,
        Some(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if !is_data_source_type(&k) {
                    return Err(ApiError::body_field(
                        &["data_source_configs", &k],
                        format!("'{k}' is not a valid DataSourceType"),
                        "type_error.enum",
                    ));
                }
                let v = v.unwrap_or_default();
                out.insert(
                    k,
                    json!({
                        "allowed_file_formats": v.allowed_file_formats.unwrap_or_default(),
                        "google_workspace_docs_save_as": v.google_workspace_docs_save_as,
                    }),
                );
            }
            Some(Value::Object(out))
        }
    };
    let org = auth.org_id;
    state
        .db(move |s| s.update_organization(org, global, ds))
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}

/// Recomputes file statistics; fires `FILE_STATISTICS_AGGREGATED` when done.
#[utoipa::path(post, path = "/organization/statistics", tag = "Organizations",
    responses((status = 200, body = GenericSuccessResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn organization_statistics(
    State(state): State<AppState>,
    auth: OrgAuth,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let org = auth.org_id;
    state.db(move |s| s.aggregate_statistics(org)).await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}
