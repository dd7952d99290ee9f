//! What hazgate's two daemons, the edge gateway `hazgate` and the central `hazingest`,
//! share beyond the wire format (`hazgate-wire`), one concept per module:
//!
//! - [`broker`]: options for a connection to the MQTT broker (address, keep-alive, packet
//!   limits, credentials, TLS), with [`secret`] (passwords and tokens read from a file or
//!   the environment) and [`tls`] (the rustls client config);
//! - [`backoff`]: exponential reconnect and retry delays with jitter;
//! - [`logging`]: stderr logs, text or JSON, level from `HAZGATE_LOG`;
//! - [`clock`]: the wall clock, for stamping;
//! - [`exit`]: the exit codes all three binaries use;
//! - [`prometheus`]: the text of a `/metrics` page;
//! - [`http`]: one bounded HTTP server, so every HTTP endpoint (the regulator view,
//!   `/metrics` and `/health` of both daemons) holds the same line against a client that
//!   opens connections and never closes them.

pub mod backoff;
pub mod broker;
pub mod clock;
pub mod exit;
pub mod http;
pub mod logging;
pub mod prometheus;
pub mod secret;
pub mod tls;

pub use backoff::Backoff;
pub use broker::{connect_options, ConnectError, MAX_PACKET};
pub use clock::now_ms;
pub use http::{serve, HttpLimits};
pub use logging::{init_logging, LogFormat};
pub use prometheus::PromText;
pub use secret::{read_secret, SecretError};
pub use tls::{client_config, TlsError};
