//! hazgate: the edge gateway. Polls Modbus field devices, decodes their registers into
//! readings with quality, and (in later stages) stores, evaluates alarms and uplinks.
//!
//! The data path is mirrored by the modules: `poll` (plans, Modbus client, cycles) ->
//! `decode` (registers to readings).

pub mod alarm;
pub mod commands;
pub mod daemon;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod metrics;
pub mod ops;
pub mod poll;
pub mod store;
pub mod uplink;

pub use hazgate_wire::{Quality, Reading, Reason, Value};
