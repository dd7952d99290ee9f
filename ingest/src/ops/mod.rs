//! Operations: counters for `/metrics`, and `/health`.

mod http;
mod metrics;

pub use http::router;
pub use metrics::Metrics;
