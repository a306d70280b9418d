//! Request and response types of the tenancy endpoints, with Carbon's field names and defaults.
//! Request fields are `Option`s so that an absent key and an explicit `null` both mean "use the
//! spec default"; the `resolve`-style helpers apply those defaults.

use carbide_core::timefmt::rfc3339;
use carbide_store::{
    Customer, Dir, Organization, OrganizationStatistics, Page, Webhook, WhiteLabel,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// `Pagination` (all fields optional; defaults limit 10, offset 0, starting_id 0).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Pagination {
    /// Page size.
    #[schema(default = 10)]
    pub limit: Option<i64>,
    /// Rows to skip.
    #[schema(default = 0)]
    pub offset: Option<i64>,
    /// Keyset cursor: only ids greater than this (0 = off).
    #[schema(default = 0)]
    pub starting_id: Option<i64>,
}

impl Pagination {
    /// Applies defaults to an optional pagination object.
    pub fn resolve(p: Option<&Pagination>) -> Page {
        let d = Page::default();
        match p {
            None => d,
            Some(p) => Page {
                limit: p.limit.unwrap_or(d.limit),
                offset: p.offset.unwrap_or(d.offset),
                starting_id: p.starting_id.unwrap_or(d.starting_id),
            },
        }
    }
}

/// `OrderDir` / `OrderDirV2`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderDir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl OrderDir {
    /// Store direction, with a default.
    pub fn resolve(d: Option<OrderDir>, default: Dir) -> Dir {
        match d {
            Some(OrderDir::Asc) => Dir::Asc,
            Some(OrderDir::Desc) => Dir::Desc,
            None => default,
        }
    }
}

/// `created_at | updated_at` order columns (users, webhooks).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreatedUpdated {
    /// By creation time.
    CreatedAt,
    /// By last update.
    UpdatedAt,
}

/// `GenericSuccessResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenericSuccessResponse {
    /// Always true on success.
    pub success: bool,
}

impl GenericSuccessResponse {
    /// `{"success": true}`.
    pub fn ok() -> Self {
        Self { success: true }
    }
}

/// `TokenResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Opaque access token, valid 10 hours (`authorization: Token <access_token>`).
    pub access_token: String,
    /// Opaque refresh token (no refresh endpoint exists; mint a new access token instead).
    pub refresh_token: String,
}

/// `UserResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: i64,
    pub organization_id: i64,
    pub organization_supplied_user_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub num_files_synced: i64,
    pub num_characters_synced: i64,
    pub num_tokens_synced: i64,
    #[schema(value_type = Object)]
    pub aggregate_file_size: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_characters: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_tokens: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_embeddings: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_files_by_source: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_files_by_file_format: Map<String, Value>,
    #[schema(value_type = Vec<Object>)]
    pub unique_file_tags: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    pub enabled_features: Option<Value>,
    #[schema(value_type = Object)]
    pub custom_limits: Map<String, Value>,
    #[schema(value_type = Vec<String>)]
    pub auto_sync_enabled_sources: Vec<String>,
    #[schema(value_type = Object)]
    pub connector_settings: Value,
}

fn obj_or_empty(v: &Value) -> Value {
    if v.is_object() { v.clone() } else { json!({}) }
}

impl UserResponse {
    /// Builds the response from a customer and its statistics.
    pub fn new(c: Customer, stats: OrganizationStatistics) -> Self {
        let count = |m: &Map<String, Value>| m.values().filter_map(Value::as_i64).sum::<i64>();
        UserResponse {
            id: c.id,
            organization_id: c.organization_id,
            organization_supplied_user_id: c.organization_supplied_user_id,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            deleted_at: None,
            num_files_synced: count(&stats.aggregate_num_files_by_source),
            num_characters_synced: count(&stats.aggregate_num_characters),
            num_tokens_synced: count(&stats.aggregate_num_tokens),
            aggregate_file_size: stats.aggregate_file_size,
            aggregate_num_characters: stats.aggregate_num_characters,
            aggregate_num_tokens: stats.aggregate_num_tokens,
            aggregate_num_embeddings: stats.aggregate_num_embeddings,
            aggregate_num_files_by_source: stats.aggregate_num_files_by_source,
            aggregate_num_files_by_file_format: stats.aggregate_num_files_by_file_format,
            unique_file_tags: Vec::new(),
            enabled_features: c.enabled_features,
            custom_limits: c.custom_limits,
            auto_sync_enabled_sources: c.auto_sync_enabled_sources,
            connector_settings: obj_or_empty(&c.connector_settings),
        }
    }
}

/// `ListUserResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListUserResponse {
    pub id: i64,
    pub organization_id: i64,
    pub organization_supplied_user_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub enabled_features: Option<Value>,
    #[schema(value_type = Object)]
    pub custom_limits: Map<String, Value>,
    #[schema(value_type = Vec<String>)]
    pub auto_sync_enabled_sources: Vec<String>,
}

impl From<Customer> for ListUserResponse {
    fn from(c: Customer) -> Self {
        ListUserResponse {
            id: c.id,
            organization_id: c.organization_id,
            organization_supplied_user_id: c.organization_supplied_user_id,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            deleted_at: None,
            enabled_features: c.enabled_features,
            custom_limits: c.custom_limits,
            auto_sync_enabled_sources: c.auto_sync_enabled_sources,
        }
    }
}

/// `/list_users` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListUsersResponse {
    /// The page of users.
    pub users: Vec<ListUserResponse>,
    /// Total matches (only with `include_count`).
    pub count: Option<i64>,
}

/// `UserRequestContent` (`/user`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserRequestContent {
    /// The organization-supplied customer id.
    pub customer_id: String,
}

/// `ListUsersFilters`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ListUsersFilters {
    pub customer_ids: Option<Vec<String>>,
    pub carbon_user_ids: Option<Vec<i64>>,
}

/// `ListUsersRequest`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ListUsersRequest {
    pub pagination: Option<Pagination>,
    pub filters: Option<ListUsersFilters>,
    /// Default `created_at`.
    pub order_by: Option<CreatedUpdated>,
    /// Default `desc`.
    pub order_dir: Option<OrderDir>,
    /// Default false.
    pub include_count: Option<bool>,
}

/// `DeleteUsersInput`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteUsersInput {
    pub customer_ids: Vec<String>,
}

/// `UserConfiguration` fields shared by `/update_users` and `/organization/update`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UserConfiguration {
    /// A list of `DataSourceType`s, the string `"ALL"`, or null (unchanged).
    #[schema(value_type = Option<Object>)]
    pub auto_sync_enabled_sources: Option<Value>,
    pub max_files: Option<i64>,
    pub max_files_per_upload: Option<i64>,
    pub max_characters: Option<i64>,
    pub max_characters_per_file: Option<i64>,
    pub max_characters_per_upload: Option<i64>,
    /// Hours: 3, 6, 12 or 24; -1 = default.
    pub auto_sync_interval: Option<i64>,
}

/// `UpdateUsersInput`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUsersInput {
    /// At most 100 organization-supplied ids.
    pub customer_ids: Vec<String>,
    /// A list of `DataSourceType`s, the string `"ALL"`, or null (unchanged).
    #[schema(value_type = Option<Object>)]
    pub auto_sync_enabled_sources: Option<Value>,
    pub max_files: Option<i64>,
    pub max_files_per_upload: Option<i64>,
    pub max_characters: Option<i64>,
    pub max_characters_per_file: Option<i64>,
    pub max_characters_per_upload: Option<i64>,
    /// Hours: 3, 6, 12 or 24; -1 = default.
    pub auto_sync_interval: Option<i64>,
}

impl UpdateUsersInput {
    /// The configuration part (everything but `customer_ids`).
    pub fn config(self) -> (Vec<String>, UserConfiguration) {
        (
            self.customer_ids,
            UserConfiguration {
                auto_sync_enabled_sources: self.auto_sync_enabled_sources,
                max_files: self.max_files,
                max_files_per_upload: self.max_files_per_upload,
                max_characters: self.max_characters,
                max_characters_per_file: self.max_characters_per_file,
                max_characters_per_upload: self.max_characters_per_upload,
                auto_sync_interval: self.auto_sync_interval,
            },
        )
    }
}

/// `ConfigurationKeys`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum ConfigurationKeys {
    /// Hybrid search sparse vectors.
    #[serde(rename = "sparse_vectors")]
    SparseVectors,
}

/// `ModifyUserConfigurationInput`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ModifyUserConfigurationInput {
    pub configuration_key_name: ConfigurationKeys,
    #[schema(value_type = Object)]
    pub value: Map<String, Value>,
}

/// `DataSourceConfiguration`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DataSourceConfiguration {
    /// Empty = all formats.
    pub allowed_file_formats: Option<Vec<String>>,
    pub google_workspace_docs_save_as: Option<String>,
}

/// `UpdateOrganizationInput`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateOrganizationInput {
    pub global_user_config: Option<UserConfiguration>,
    #[schema(value_type = Option<std::collections::BTreeMap<String, DataSourceConfiguration>>)]
    pub data_source_configs:
        Option<std::collections::BTreeMap<String, Option<DataSourceConfiguration>>>,
}

/// `OrganizationResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationResponse {
    pub id: i64,
    pub name: String,
    pub nickname: Option<String>,
    pub remove_branding: bool,
    #[schema(value_type = Option<Object>)]
    pub custom_branding: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub custom_limits: Option<Value>,
    #[schema(value_type = Object)]
    pub aggregate_file_size: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_characters: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_tokens: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_embeddings: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_files_by_source: Map<String, Value>,
    #[schema(value_type = Object)]
    pub aggregate_num_files_by_file_format: Map<String, Value>,
    pub file_statistics_aggregated_at: Option<String>,
    pub period_ends_at: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    #[schema(value_type = Object)]
    pub connector_settings: Value,
    #[schema(value_type = Object)]
    pub global_user_config: Value,
    #[schema(value_type = Object)]
    pub file_sync_usage: Value,
    #[schema(value_type = Object)]
    pub logging_settings: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl OrganizationResponse {
    /// Builds the response.
    pub fn new(o: Organization, s: OrganizationStatistics) -> Self {
        OrganizationResponse {
            id: o.id,
            name: o.name,
            nickname: o.nickname,
            remove_branding: o.remove_branding,
            custom_branding: o.custom_branding,
            custom_limits: Some(obj_or_empty(&o.custom_limits)),
            aggregate_file_size: s.aggregate_file_size,
            aggregate_num_characters: s.aggregate_num_characters,
            aggregate_num_tokens: s.aggregate_num_tokens,
            aggregate_num_embeddings: s.aggregate_num_embeddings,
            aggregate_num_files_by_source: s.aggregate_num_files_by_source,
            aggregate_num_files_by_file_format: s.aggregate_num_files_by_file_format,
            file_statistics_aggregated_at: o.file_statistics_aggregated_at.map(rfc3339),
            period_ends_at: None,
            cancel_at_period_end: None,
            connector_settings: obj_or_empty(&o.connector_settings),
            global_user_config: obj_or_empty(&o.global_user_config),
            file_sync_usage: json!({}),
            logging_settings: json!({}),
            created_at: rfc3339(o.created_at),
            updated_at: rfc3339(o.updated_at),
        }
    }
}

/// `WhiteLabelingResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhiteLabelingResponse {
    pub remove_branding: bool,
    /// Connector type → true for every white-labelled connector.
    #[schema(value_type = Object)]
    pub integrations: Map<String, Value>,
    #[schema(value_type = Object)]
    pub custom_limits: Value,
    #[schema(value_type = Object)]
    pub connector_settings: Value,
}

/// `AddWebhookProps`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddWebhookProps {
    /// Receiver URL (http or https).
    pub url: String,
}

/// `WebhookStatus`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookStatus {
    /// Receiving events.
    Active,
    /// Flagged by the server.
    Flagged,
}

/// `Webhook` (with signing key; only returned by `/add_webhook`).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    pub id: i64,
    pub organization_id: i64,
    pub url: String,
    /// 32 hex chars; HMAC key after hex-decoding.
    pub signing_key: String,
    #[schema(value_type = WebhookStatus)]
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        WebhookResponse {
            id: w.id,
            organization_id: w.organization_id,
            url: w.url,
            signing_key: w.signing_key.unwrap_or_default(),
            status: w.status,
            status_reason: w.status_reason,
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

/// `WebhookNoKey`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookNoKey {
    pub id: i64,
    pub organization_id: i64,
    pub url: String,
    #[schema(value_type = WebhookStatus)]
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Webhook> for WebhookNoKey {
    fn from(w: Webhook) -> Self {
        WebhookNoKey {
            id: w.id,
            organization_id: w.organization_id,
            url: w.url,
            status: w.status,
            status_reason: w.status_reason,
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

/// `WebhookFilters`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WebhookFilters {
    /// Default `[]` (no filter).
    pub ids: Option<Vec<i64>>,
}

/// `WebhookQueryInput`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WebhookQueryInput {
    pub pagination: Option<Pagination>,
    /// Default `updated_at`.
    pub order_by: Option<CreatedUpdated>,
    /// Default `asc`.
    pub order_dir: Option<OrderDir>,
    pub filters: Option<WebhookFilters>,
}

/// `WebhookQueryResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookQueryResponse {
    pub results: Vec<WebhookNoKey>,
    pub count: i64,
}

/// White-label `credentials` object (extra per-connector keys are kept when known).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    pub client_id: String,
    pub redirect_uri: String,
    pub client_secret: Option<String>,
    /// GOOGLE_DRIVE only.
    pub api_key: Option<String>,
    /// ONEDRIVE / SHAREPOINT only.
    pub file_picker_client_id: Option<String>,
    /// ONEDRIVE / SHAREPOINT only.
    pub file_picker_redirect_uri: Option<String>,
}

/// One white-label input (`WhiteLabelInput` and its Google Drive / OneDrive variants).
#[derive(Debug, Deserialize, ToSchema)]
pub struct WhiteLabelInputBody {
    /// e.g. `DROPBOX`.
    pub data_source_type: String,
    pub credentials: Credentials,
}

/// `WhiteLabelFilters`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WhiteLabelFilters {
    pub ids: Option<Vec<i64>>,
    pub data_source_type: Option<Vec<String>>,
}

/// `created_at | data_source_type`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhiteLabelOrderBy {
    CreatedAt,
    DataSourceType,
}

/// `ListWhiteLabelRequest`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ListWhiteLabelRequest {
    pub pagination: Option<Pagination>,
    /// Default `created_at`.
    pub order_by: Option<WhiteLabelOrderBy>,
    /// Default `asc`.
    pub order_dir: Option<OrderDir>,
    pub filters: Option<WhiteLabelFilters>,
}

/// `DeleteWhiteLabelRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteWhiteLabelRequest {
    pub ids: Vec<i64>,
}

/// A stored white-label entry; secrets are masked (`abcd…wxyz`).
#[derive(Debug, Serialize, ToSchema)]
pub struct WhiteLabelRecord {
    pub id: i64,
    pub organization_id: i64,
    pub data_source_type: String,
    #[schema(value_type = Object)]
    pub credentials: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<WhiteLabel> for WhiteLabelRecord {
    fn from(w: WhiteLabel) -> Self {
        let mut creds = Map::new();
        creds.insert("client_id".into(), json!(w.client_id));
        creds.insert("redirect_uri".into(), json!(w.redirect_uri));
        creds.insert("client_secret".into(), json!(w.client_secret_masked));
        for (k, v) in w.extra_masked {
            creds.insert(k, v);
        }
        WhiteLabelRecord {
            id: w.id,
            organization_id: w.organization_id,
            data_source_type: w.data_source_type,
            credentials: creds,
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

/// `/white_label/create` and `/white_label/list` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhiteLabelList {
    pub results: Vec<WhiteLabelRecord>,
    pub count: i64,
}

/// `/white_label/delete` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhiteLabelDeleteResponse {
    pub success: bool,
    /// How many entries were deleted.
    pub count: i64,
}

/// `/health` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` or `error`.
    pub status: String,
    /// Present when unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
