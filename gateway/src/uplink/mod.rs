//! The MQTT uplink: QoS 1 publishing from the store, PUBACKs advancing it, reconnects with
//! backoff and jitter, TLS, and the retained status (birth, health, last will).

pub mod command;
pub mod master;
mod session;
mod settings;

// The connection pieces the central ingest shares (connect options, secrets, TLS,
// backoff) live in hazgate-common.
use hazgate_common::ConnectError;
pub use session::run;
pub use settings::{StatusInfo, UplinkSettings};

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// TLS files or credentials the config points at (says which).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("broker: {0}")]
    Broker(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}
