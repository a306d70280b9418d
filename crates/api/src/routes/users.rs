//! Customer endpoints: `/whoami`, `/user`, `/list_users`, `/delete_users`, `/update_users`,
//! `/modify_user_configuration`.

use axum::extract::State;
use carbide_core::enums::{AUTO_SYNC_INTERVALS, is_data_source_type};
use carbide_store::{CustomerConfigUpdate, CustomerOrder, Dir, ListCustomers};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{CustomerAuth, OrgAuth};
use crate::error::{ApiError, ErrorDetail, HttpValidationError, ValidationItem};
use crate::extract::JsonBody;
use crate::models::{
    CreatedUpdated, DeleteUsersInput, GenericSuccessResponse, ListUserResponse, ListUsersRequest,
    ListUsersResponse, ModifyUserConfigurationInput, OrderDir, Pagination, UpdateUsersInput,
    UserConfiguration, UserRequestContent, UserResponse,
};

/// Carbon's (and the SDK's) cap on `customer_ids` per `/update_users` call.
const MAX_UPDATE_IDS: usize = 100;

fn loc(prefix: &[&str], field: &str) -> Vec<Value> {
    let mut v = vec![json!("body")];
    v.extend(prefix.iter().map(|p| json!(p)));
    v.push(json!(field));
    v
}

/// Validates a `UserConfiguration` (shared by `/update_users` and `/organization/update`).
pub(crate) fn validate_config(
    cfg: &UserConfiguration,
    prefix: &[&str],
) -> Result<CustomerConfigUpdate, ApiError> {
    let mut errs = Vec::new();
    let mut up = CustomerConfigUpdate::default();
    match &cfg.auto_sync_enabled_sources {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "ALL" => {
            up.auto_sync_enabled_sources = Some(vec!["ALL".into()])
        }
        Some(Value::Array(items)) => {
            let mut out: Vec<String> = Vec::new();
            for (i, it) in items.iter().enumerate() {
                match it.as_str() {
                    Some(s) if is_data_source_type(s) => {
                        if !out.iter().any(|o| o == s) {
                            out.push(s.to_string());
                        }
                    }
                    _ => {
                        let mut l = loc(prefix, "auto_sync_enabled_sources");
                        l.push(json!(i));
                        errs.push(ValidationItem::new(
                            l,
                            format!("value is not a valid DataSourceType: {it}"),
                            "type_error.enum",
                        ));
                    }
                }
            }
            up.auto_sync_enabled_sources = Some(out);
        }
        Some(other) => errs.push(ValidationItem::new(
            loc(prefix, "auto_sync_enabled_sources"),
            format!("must be a list of data source types or the string \"ALL\", got {other}"),
            "type_error",
        )),
    }
    for (name, val) in [
        ("max_files", cfg.max_files),
        ("max_files_per_upload", cfg.max_files_per_upload),
        ("max_characters", cfg.max_characters),
        ("max_characters_per_file", cfg.max_characters_per_file),
        ("max_characters_per_upload", cfg.max_characters_per_upload),
    ] {
        if let Some(v) = val {
            if v < -1 {
                errs.push(ValidationItem::new(
                    loc(prefix, name),
                    "ensure this value is greater than or equal to -1",
                    "value_error.number.not_ge",
                ));
            } else {
                up.limits.push((name.to_string(), v));
            }
        }
    }
    match cfg.auto_sync_interval {
        None => {}
        Some(-1) => up.auto_sync_interval = Some(None),
        Some(h) if AUTO_SYNC_INTERVALS.contains(&h) => up.auto_sync_interval = Some(Some(h)),
        Some(_) => errs.push(ValidationItem::new(
            loc(prefix, "auto_sync_interval"),
            "auto_sync_interval must be one of [3, 6, 12, 24] (or -1 for the default)",
            "value_error",
        )),
    }
    if errs.is_empty() {
        Ok(up)
    } else {
        Err(ApiError::Validation(errs))
    }
}

/// The calling customer.
#[utoipa::path(get, path = "/whoami", tag = "Users",
    responses((status = 200, body = UserResponse), (status = 401, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn whoami(
    State(state): State<AppState>,
    auth: CustomerAuth,
) -> Result<axum::Json<UserResponse>, ApiError> {
    let cid = auth.customer.id;
    let stats = state.db(move |s| s.customer_statistics(cid)).await?;
    Ok(axum::Json(UserResponse::new(auth.customer, stats)))
}

/// One customer of the organization.
#[utoipa::path(post, path = "/user", tag = "Users", request_body = UserRequestContent,
    responses((status = 200, body = UserResponse), (status = 404, body = ErrorDetail), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<UserRequestContent>,
) -> Result<axum::Json<UserResponse>, ApiError> {
    let org = auth.org_id;
    let (c, stats) = state
        .db(move |s| {
            let c = s.get_customer(org, &req.customer_id)?;
            let stats = match &c {
                Some(c) => s.customer_statistics(c.id)?,
                None => Default::default(),
            };
            Ok((c, stats))
        })
        .await?;
    let c = c.ok_or_else(|| ApiError::not_found("User not found"))?;
    Ok(axum::Json(UserResponse::new(c, stats)))
}

/// Customers of the organization.
#[utoipa::path(post, path = "/list_users", tag = "Users", request_body = ListUsersRequest,
    responses((status = 200, body = ListUsersResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<ListUsersRequest>,
) -> Result<axum::Json<ListUsersResponse>, ApiError> {
    let filters = req.filters.unwrap_or_default();
    let q = ListCustomers {
        page: Pagination::resolve(req.pagination.as_ref()),
        customer_ids: filters.customer_ids,
        carbon_user_ids: filters.carbon_user_ids,
        order_by: match req.order_by {
            Some(CreatedUpdated::UpdatedAt) => CustomerOrder::UpdatedAt,
            _ => CustomerOrder::CreatedAt,
        },
        order_dir: OrderDir::resolve(req.order_dir, Dir::Desc),
        include_count: req.include_count.unwrap_or(false),
    };
    let org = auth.org_id;
    let (rows, count) = state.db(move |s| s.list_customers(org, &q)).await?;
    Ok(axum::Json(ListUsersResponse {
        users: rows.into_iter().map(ListUserResponse::from).collect(),
        count,
    }))
}

/// Deletes customers and everything they own; fires `ORGANIZATION_USER_DELETED`.
#[utoipa::path(post, path = "/delete_users", tag = "Users", request_body = DeleteUsersInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn delete_users(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<DeleteUsersInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let org = auth.org_id;
    state
        .db(move |s| s.delete_customers(org, &req.customer_ids))
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}

/// Sets limits and scheduled-sync settings for up to 100 customers (unknown ones are created).
#[utoipa::path(post, path = "/update_users", tag = "Users", request_body = UpdateUsersInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 422, body = HttpValidationError)),
    security(("apiKey" = [])))]
pub(crate) async fn update_users(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(req): JsonBody<UpdateUsersInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let (ids, cfg) = req.config();
    if ids.len() > MAX_UPDATE_IDS {
        return Err(ApiError::body_field(
            &["customer_ids"],
            format!(
                "ensure this value has at most {MAX_UPDATE_IDS} items (got {})",
                ids.len()
            ),
            "value_error.list.max_items",
        ));
    }
    let up = validate_config(&cfg, &[])?;
    let org = auth.org_id;
    state
        .db(move |s| s.update_customers(org, &ids, &up))
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}

/// Toggles a customer feature (`sparse_vectors`), stored in `enabled_features`.
#[utoipa::path(post, path = "/modify_user_configuration", tag = "Users",
    request_body = ModifyUserConfigurationInput,
    responses((status = 200, body = GenericSuccessResponse), (status = 422, body = HttpValidationError)),
    security(("accessToken" = []), ("apiKey" = [], "customerId" = [])))]
pub(crate) async fn modify_user_configuration(
    State(state): State<AppState>,
    auth: CustomerAuth,
    JsonBody(req): JsonBody<ModifyUserConfigurationInput>,
) -> Result<axum::Json<GenericSuccessResponse>, ApiError> {
    let key = match req.configuration_key_name {
        crate::models::ConfigurationKeys::SparseVectors => "sparse_vectors",
    };
    let (org, cid) = (auth.org_id, auth.customer.id);
    let value = Value::Object(req.value);
    state
        .db(move |s| s.set_customer_feature(org, cid, key, value))
        .await?;
    Ok(axum::Json(GenericSuccessResponse::ok()))
}
