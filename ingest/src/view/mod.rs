//! The regulator view: every enterprise (site) and gateway with its level, presence and
//! active alarms, kept from the retained state and status messages, pushed live to the
//! page over server-sent events; alarm history comes from the store.

mod admin;
mod assets;
mod auth;
mod callresponse;
mod history;
mod http;
mod model;
mod points;
mod statistics;

pub use history::{alarm_history, HistoryEntry, HistoryError, HistoryQuery};
pub use http::router;
pub use model::{GatewayView, View, ViewEvent};
