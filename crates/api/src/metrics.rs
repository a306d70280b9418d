//! Prometheus metrics: request counts and latency histograms per matched route and status, and
//! the memory held by the in-memory search indexes, in a registry owned by each
//! [`crate::AppState`] (no global recorder).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::AppState;

/// The registry and the HTTP collectors.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    index_bytes: IntGaugeVec,
}

impl Metrics {
    /// A fresh registry with the HTTP collectors registered.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // Metric names and label sets are static and valid: construction cannot fail.
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "path", "status"],
        )
        .expect("static metric definition is valid");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency in seconds",
            ),
            &["method", "path", "status"],
        )
        .expect("static metric definition is valid");
        let index_bytes = IntGaugeVec::new(
            Opts::new(
                "carbide_search_index_bytes",
                "Memory held by this process's in-memory search indexes (keyword, vector)",
            ),
            &["index"],
        )
        .expect("static metric definition is valid");
        let _ = registry.register(Box::new(requests.clone()));
        let _ = registry.register(Box::new(latency.clone()));
        let _ = registry.register(Box::new(index_bytes.clone()));
        Metrics {
            registry,
            requests,
            latency,
            index_bytes,
        }
    }

    /// The registry (other crates may register more collectors).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware recording one count and one latency sample per request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [method.as_str(), path.as_str(), status.as_str()];
    state.metrics.requests.with_label_values(&labels).inc();
    state
        .metrics
        .latency
        .with_label_values(&labels)
        .observe(start.elapsed().as_secs_f64());
    resp
}

pub(crate) fn render(state: &AppState) -> String {
    let gauge = |index: &str, bytes: usize| {
        state
            .metrics
            .index_bytes
            .with_label_values(&[index])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    };
    gauge("keyword", state.store.keyword_cache_bytes());
    gauge("vector", state.store.vector_cache_bytes());
    state.metrics.render()
}
