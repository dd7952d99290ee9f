//! The MQTT wire format of hazgate, defined once and used by the gateway and the central
//! ingest alike, so the two can never drift. Documented in `docs/wire-format.md`, with a
//! JSON Schema per message kind in `docs/schema/`.

mod alarm;
mod command;
mod ids;
mod master;
mod messages;
pub mod payload;
mod reading;
mod stats;
mod topics;
pub mod validate;

pub use alarm::{
    Acknowledgement, ActiveAlarm, AlarmEvent, Condition, EventKind, Level, OutputRule, OutputState,
    SourceLevel, State,
};
pub use command::{command_topic, occurrence_id, Action, Command, CommandKind};
pub use ids::{valid_id, ID_RULE};
pub use master::{DeviceInfo, HazardSourceInfo, Industry, LimitInfo, MasterData, PointInfo};
pub use messages::{Envelope, Gap, Health, Message, Presence, Status, StoreHealth, Telemetry};
pub use reading::{Flag, Quality, Reading, Reason, Value};
pub use stats::{PointStats, Stats, STATS_PERIOD_MS};
pub use topics::{topic, TopicKind};

/// Version carried in every message as `"v"`.
pub const VERSION: u32 = 1;
