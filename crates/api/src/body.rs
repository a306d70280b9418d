//! Reads every request body to the end before routing and authentication. A server that answers
//! (401, 404, 422 …) without consuming the body must close the connection, and the official SDK
//! reuses keep-alive connections without retrying POSTs, so the *next* call of the application
//! would fail with "remote end closed connection". Buffering first keeps connections reusable;
//! a body over the limit is refused with 413 and `Connection: close`.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Middleware: buffer the body (up to `max_body_bytes`), then continue.
pub async fn buffer_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.max_body_bytes;
    let (parts, body) = req.into_parts();
    match to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => {
            let mut resp = (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(serde_json::json!({
                    "detail": format!("request body is larger than the limit of {limit} bytes")
                })),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}
