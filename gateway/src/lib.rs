//! hazgate: the edge gateway. Polls Modbus field devices, decodes their registers into
//! readings with quality, evaluates alarms, stores everything durably and uplinks it.
//!
//! The data path is mirrored by the modules: `poll` (plans, Modbus client, cycles) ->
//! `decode` (registers to readings) -> `pipeline` (readings -> `alarm` -> `store`) ->
//! `uplink` (MQTT). `clock` keeps durations on monotonic time; `envelope` gives messages
//! their origin and seqs; `metrics` and `ops` report on it all.
//!
//! What the central `hazingest` needs too (broker connect options, secrets, TLS, backoff,
//! logging, the wall clock, Prometheus text, the bounded HTTP server) is in
//! `hazgate-common`, so that hazingest does not depend on this crate.

pub mod alarm;
pub mod clock;
pub mod commands;
pub mod daemon;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod derive;
pub mod envelope;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod poll;
pub mod store;
pub mod uplink;

pub use hazgate_wire::{Quality, Reading, Reason, Value};
