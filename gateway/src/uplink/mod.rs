//! The MQTT uplink: QoS 1 publishing from the store, PUBACKs advancing it, reconnects with
//! backoff and jitter, TLS, and the retained status (birth, health, last will).

mod backoff;
mod session;
mod settings;
mod tls;

pub use backoff::Backoff;
pub use session::run;
pub use settings::{connect_options, read_secret, StatusInfo, UplinkSettings, MAX_PACKET};
pub use tls::client_config;

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("TLS: {0}")]
    Tls(String),
    #[error("credentials: {0}")]
    Secret(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}
