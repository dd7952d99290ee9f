//! Alarm events and the retained state of a site: levels named by colour.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

use crate::messages::Envelope;

/// Warning levels, low to high (GB 39496 §5.5.4; the four colours of emergency plans).
/// Named by colour on the wire, because level numbers run opposite ways in different
/// standards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Blue,
    Yellow,
    Orange,
    Red,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Blue, Level::Yellow, Level::Orange, Level::Red];

    pub fn name(self) -> &'static str {
        match self {
            Level::Blue => "blue",
            Level::Yellow => "yellow",
            Level::Orange => "orange",
            Level::Red => "red",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What makes a point alarm, or that the alarm is a roll-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Limit,
    Rate,
    CommLoss,
    SensorFault,
    OutOfRange,
    /// A sensor stayed in calibration (test gas) longer than allowed (AQ 1029).
    Calibration,
    /// A point's value has not changed over its configured number of samples (AQ 1029
    /// false data: a frozen sensor).
    StuckValue,
    /// A point's value moved faster than physically possible (AQ 1029 false data).
    ImpossibleJump,
    /// A linkage output could not be written.
    LinkageFailed,
    /// The gateway's store cannot write: alarms are held in memory and sent directly.
    /// An equipment alarm of the gateway itself (device: the gateway id, point `store`).
    StoreFailed,
    /// A hazard source's or the site's level, rolled up from its points.
    Rollup,
}

impl Condition {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Condition::Limit => "limit",
            Condition::Rate => "rate",
            Condition::CommLoss => "comm_loss",
            Condition::SensorFault => "sensor_fault",
            Condition::OutOfRange => "out_of_range",
            Condition::Calibration => "calibration",
            Condition::StuckValue => "stuck_value",
            Condition::ImpossibleJump => "impossible_jump",
            Condition::LinkageFailed => "linkage_failed",
            Condition::StoreFailed => "store_failed",
            Condition::Rollup => "rollup",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Raise,
    Escalate,
    Deescalate,
    Clear,
    /// The occurrence was acknowledged (预警叫应): by a named person through the central
    /// side (a command), or at the edge by the acknowledge button. Not a level change.
    Ack,
}

/// Who acknowledged an occurrence, when, and through what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The person, as the central side names them; `本地操作员` for the edge's button.
    pub by: String,
    /// When (ms UTC).
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The command that carried it; absent when acknowledged at the edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Arc<str>>,
}

/// One change of one alarm, on `{p}/{site}/{gateway}/alarm`. For a point, `device` and
/// `point` are set; for a hazard source's roll-up only `hazard_source`; for the site's,
/// neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvent {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub event: EventKind,
    pub condition: Condition,
    pub device: Option<Arc<str>>,
    pub point: Option<Arc<str>>,
    pub hazard_source: Option<Arc<str>>,
    /// The new level; `null` after a clear.
    pub level: Option<Level>,
    pub previous: Option<Level>,
    /// The reading's value at emission (after any on- or off-delay).
    pub value: Option<f64>,
    /// The value that crossed into this level (for a limit: the reading at which the
    /// level was first reached, before the delay ran); absent where it is `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossed: Option<f64>,
    pub limit: Option<f64>,
    pub unit: Option<Arc<str>>,
    pub label: Option<String>,
    /// When the condition was seen (acquisition time of the reading, ms UTC).
    pub ts: i64,
    /// The occurrence (raise to clear) this event belongs to; absent for roll-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<Arc<str>>,
    /// On an `ack` event: who acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Acknowledgement>,
}

/// One active alarm in the state message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlarm {
    pub device: Arc<str>,
    pub point: Arc<str>,
    pub hazard_source: Option<Arc<str>>,
    pub condition: Condition,
    pub level: Level,
    /// Since when (ms UTC).
    pub since: i64,
    pub value: Option<f64>,
    /// The value that crossed into this level; absent where it is `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossed: Option<f64>,
    pub limit: Option<f64>,
    pub unit: Option<Arc<str>>,
    pub label: Option<String>,
    /// The occurrence, as its events name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<Arc<str>>,
    /// Who acknowledged it, while acknowledged (an escalation asks again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Acknowledgement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceLevel {
    pub id: Arc<str>,
    pub name: String,
    pub grade: u8,
    pub level: Option<Level>,
}

/// Retained on `{p}/{site}/{gateway}/state`: the site's level, each hazard source's, and
/// every active alarm, so a regulator who connects later sees the situation at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub ts: i64,
    pub level: Option<Level>,
    pub hazard_sources: Vec<SourceLevel>,
    /// The active alarms, most severe first. Bounded so the message stays under the
    /// packet limit: what did not fit is counted in `alarms_omitted`.
    pub alarms: Vec<ActiveAlarm>,
    /// Active alarms left out of `alarms` for size (0: the list is complete).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alarms_omitted: u64,
    /// Linkage outputs (beacons, sirens, shut-off valves, power cuts) as the gateway drives
    /// them; absent on a site without linkage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputState>,
}

/// A linkage output as the gateway drives it: operated while any of its rules is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputState {
    /// The output: a coil or register of a device.
    pub device: Arc<str>,
    pub point: Arc<str>,
    /// Operated (the alarm value is what it should hold).
    pub operated: bool,
    /// Held operated by a latched rule until a reset.
    pub latched: bool,
    /// The device holds what it should (the last write succeeded).
    pub written: bool,
    /// The position feedback agrees; `null` without feedback.
    pub confirmed: Option<bool>,
    /// The points whose linkage drives it, each with its own state.
    pub rules: Vec<OutputRule>,
}

/// One point's linkage rule onto an output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputRule {
    /// The point it follows.
    pub device: Arc<str>,
    pub point: Arc<str>,
    /// The level that operates it.
    pub level: Level,
    pub operated: bool,
    pub latched: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
