//! Operational endpoints: `/health`, `/metrics`, `/openapi.json`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::models::HealthResponse;

/// Liveness and database check.
#[utoipa::path(get, path = "/health", tag = "System",
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    match state.db(|s| s.ping()).await {
        Ok(()) => axum::Json(HealthResponse {
            status: "ok".into(),
            detail: None,
        })
        .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthResponse {
                status: "error".into(),
                detail: Some("database unavailable".into()),
            }),
        )
            .into_response(),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "System",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&state),
    )
        .into_response()
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "System",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn openapi_json(State(state): State<AppState>) -> Response {
    let body = state
        .openapi
        .get()
        .cloned()
        .unwrap_or_else(|| "{}".to_string());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
