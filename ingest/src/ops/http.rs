//! `/metrics` (Prometheus) and `/health` on the metrics address.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::Metrics;

pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .with_state(metrics)
}

async fn metrics_text(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

/// 200 while connected to the broker and writing; 503 otherwise, saying which.
async fn health(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let ok = m.connected() && m.store_up();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "mqtt_connected": m.connected(),
        "store_up": m.store_up(),
        "pending_bytes": m.pending_bytes(),
        "readings_written": m.readings_written(),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}
