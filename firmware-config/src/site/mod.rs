//! Site config: one TOML file per site, checked fully before anything starts.

pub mod derived;
pub mod model;
pub mod raw;
mod resolve;
pub(crate) mod sections;

pub use model::*;
pub use resolve::{load_site, parse_broker, parse_site, DEFAULT_MAX_GAP};
