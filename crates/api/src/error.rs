//! API errors rendered in FastAPI's shape: `{"detail": "<message>"}` or, for validation
//! errors (422), `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use carbide_store::StoreError;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// One validation problem (`ValidationError` in Carbon's spec).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ValidationItem {
    /// Where: e.g. `["body", "pagination", "limit"]`.
    #[schema(value_type = Vec<Object>)]
    pub loc: Vec<Value>,
    /// Human readable message.
    pub msg: String,
    /// Machine readable type, e.g. `value_error.missing`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl ValidationItem {
    /// Builds an item from location segments.
    pub fn new(loc: Vec<Value>, msg: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind: kind.into(),
        }
    }
}

/// `HTTPValidationError` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpValidationError {
    /// The problems found.
    pub detail: Vec<ValidationItem>,
}

/// `{"detail": "<message>"}` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Message.
    pub detail: String,
}

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// 422 with a list of problems.
    Validation(Vec<ValidationItem>),
    /// Any status with a message.
    Status(StatusCode, String),
    /// 500; the message is logged, never shown.
    Internal(String),
}

impl ApiError {
    /// 422 with one problem in the body.
    pub fn body_field(path: &[&str], msg: impl Into<String>, kind: impl Into<String>) -> Self {
        let mut loc = vec![json!("body")];
        loc.extend(path.iter().map(|p| json!(p)));
        ApiError::Validation(vec![ValidationItem::new(loc, msg, kind)])
    }
    /// 400 with a message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, msg.into())
    }
    /// 404 with a message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::NOT_FOUND, msg.into())
    }
    /// 401 with a message.
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::UNAUTHORIZED, msg.into())
    }
    /// 422 for a missing header, as FastAPI reports it.
    pub fn missing_header(name: &str) -> Self {
        ApiError::Validation(vec![ValidationItem::new(
            vec![json!("header"), json!(name)],
            "field required",
            "value_error.missing",
        )])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => {
                ApiError::not_found(format!("{} not found", capitalize(what)))
            }
            StoreError::Conflict(msg) => ApiError::bad_request(msg),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Validation(items) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(HttpValidationError { detail: items }),
            )
                .into_response(),
            ApiError::Status(code, msg) => {
                (code, axum::Json(ErrorDetail { detail: msg })).into_response()
            }
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                internal_error_response()
            }
        }
    }
}

/// The generic 500 answer.
pub fn internal_error_response() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(ErrorDetail {
            detail: "internal error".into(),
        }),
    )
        .into_response()
}
