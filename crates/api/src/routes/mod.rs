//! Route registration. Every route goes through `routes!` so it is documented in `/openapi.json`.

mod auth_routes;
mod connect;
mod dropbox_sync;
mod files;
mod integrations;
mod org;
mod search;
mod system;
mod users;
mod webhooks;
mod white_label;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn all(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(system::health))
        .routes(routes!(files::upload_file))
        .routes(routes!(files::upload_text))
        .routes(routes!(files::upload_file_from_url))
        .routes(routes!(files::user_files_v2))
        .routes(routes!(files::user_files))
        .routes(routes!(files::resync_file))
        .routes(routes!(files::delete_files_v2))
        .routes(routes!(files::delete_files))
        .routes(routes!(files::create_user_file_tags))
        .routes(routes!(files::delete_user_file_tags))
        .routes(routes!(files::text_chunks))
        .routes(routes!(files::list_chunks_and_embeddings))
        .routes(routes!(files::parsed_file))
        .routes(routes!(files::raw_file))
        .routes(routes!(files::download_raw))
        .routes(routes!(files::download_parsed))
        .routes(routes!(connect::connect_page, connect::connect_post))
        .routes(routes!(connect::connect_asset))
        .routes(routes!(connect::connect_js))
        .routes(routes!(integrations::oauth_url))
        .routes(routes!(integrations::connect_data_source))
        .routes(routes!(integrations::dropbox_callback))
        .routes(routes!(integrations::user_data_sources))
        .routes(routes!(integrations::org_data_sources))
        .routes(routes!(integrations::revoke_access_token))
        .routes(routes!(integrations::add_tags))
        .routes(routes!(integrations::remove_tags))
        .routes(routes!(integrations::items_sync))
        .routes(routes!(integrations::items_sync_cancel))
        .routes(routes!(integrations::items_list))
        .routes(routes!(dropbox_sync::sync_files))
        .routes(routes!(
            dropbox_sync::webhook_challenge,
            dropbox_sync::webhook_notify
        ))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi_json))
        .routes(routes!(auth_routes::access_token))
        .routes(routes!(auth_routes::white_labeling))
        .routes(routes!(users::whoami))
        .routes(routes!(users::get_user))
        .routes(routes!(users::list_users))
        .routes(routes!(users::delete_users))
        .routes(routes!(users::update_users))
        .routes(routes!(users::modify_user_configuration))
        .routes(routes!(org::get_organization))
        .routes(routes!(org::update_organization))
        .routes(routes!(org::organization_statistics))
        .routes(routes!(webhooks::add_webhook))
        .routes(routes!(webhooks::list_webhooks))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(white_label::create))
        .routes(routes!(white_label::list))
        .routes(routes!(white_label::update))
        .routes(routes!(white_label::delete))
        .routes(routes!(search::get_documents))
        .routes(routes!(search::upload_chunks_and_embeddings))
}

pub(crate) async fn not_found() -> Response {
    ApiError::Status(StatusCode::NOT_FOUND, "Not Found".into()).into_response()
}

pub(crate) async fn method_not_allowed() -> Response {
    ApiError::Status(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into()).into_response()
}
