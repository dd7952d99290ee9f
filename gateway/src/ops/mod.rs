//! Operations: the local `/metrics` and `/health` endpoints, and log set-up (shared with
//! hazingest, from hazgate-common).

mod http;
pub mod systemd;

pub use hazgate_common::{init_logging, LogFormat};
pub use http::{health, router, serve_metrics, stalled, HealthRules, LIMITS};
