//! hazingest: the central side. Takes what gateways publish off an MQTT broker (as one of a
//! group of instances sharing the load), checks it as untrusted input, writes readings,
//! alarm events and data gaps to an InfluxDB v2 write API, and serves the regulator view.
//!
//! The data path is mirrored by the modules: `subscribe` (MQTT session, manual
//! acknowledgements) -> `intake` (validation) -> `write` (line protocol, batches, the
//! store) and `view` (the page); what is refused or kept out of the store goes to the
//! `quarantine`; `supervise` keeps the call-response record (occurrences, who answered,
//! users and sessions) in its own database; `run` wires them, `ops` reports on them.

pub mod intake;
pub mod notify;
pub mod ops;
pub mod quarantine;
pub mod run;
pub mod subscribe;
pub mod supervise;
pub mod view;
pub mod write;

/// Now, ms since the Unix epoch (UTC), from the wall clock.
pub use hazgate_common::now_ms;
