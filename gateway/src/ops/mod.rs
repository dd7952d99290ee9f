//! Operations: the local `/metrics` and `/health` endpoints, and log set-up.

mod http;
mod logging;

pub use http::{serve_metrics, HealthRules};
pub use logging::{init_logging, LogFormat};
