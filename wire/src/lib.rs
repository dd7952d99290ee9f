//! The MQTT wire format of hazgate, defined once and used by the gateway and the central
//! ingest alike, so the two can never drift. Documented in `docs/wire-format.md`.

mod reading;

pub use reading::{Quality, Reading, Reason, Value};

/// Version carried in every message as `"v"`.
pub const VERSION: u32 = 1;
