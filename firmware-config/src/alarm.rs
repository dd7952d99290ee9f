//! Alarm settings of a point, as typed values: a ladder of limits, hysteresis, delays, rate
//! of change, and the conditions that are alarms in their own right (no answer, sensor
//! fault, out of range), plus linkage outputs. Parsed once at load, checked for sense.

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use hazgate_wire::Level;

/// Which side of a limit is dangerous: gas rises, a tailings beach shrinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Above,
    Below,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub direction: Direction,
    pub value: f64,
    pub level: Level,
    /// The site's own name for it, e.g. "一级报警".
    pub label: Option<String>,
}

impl Limit {
    /// Whether `v` is on the dangerous side of the limit.
    pub fn crossed(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v >= self.value,
            Direction::Below => v <= self.value,
        }
    }

    /// Whether `v` is back on the safe side by more than the deadband.
    pub fn cleared(&self, v: f64, deadband: f64) -> bool {
        match self.direction {
            Direction::Above => v < self.value - deadband,
            Direction::Below => v > self.value + deadband,
        }
    }
}

/// A change faster than `change` within `window` (either way) is an alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub change: f64,
    pub window: Duration,
    pub level: Level,
    pub label: Option<String>,
}

/// What to write when a point reaches a level, released when it falls below it.
#[derive(Debug, Clone, PartialEq)]
pub struct Linkage {
    pub level: Level,
    pub device: String,
    pub point: String,
    /// Written on reaching the level (1 = coil on).
    pub on: f64,
    /// Written on release.
    pub off: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    /// Sorted by severity within each direction.
    pub limits: Vec<Limit>,
    pub deadband: f64,
    pub on_delay: Duration,
    pub off_delay: Duration,
    pub rate: Option<RateLimit>,
    /// No good reading for this long is an alarm at this level.
    pub comm_loss: Option<(Duration, Level)>,
    pub sensor_fault: Option<Level>,
    pub out_of_range: Option<Level>,
    pub linkage: Vec<Linkage>,
}

impl AlarmSpec {
    /// The most severe limit the value has crossed.
    pub fn crossed(&self, v: f64) -> Option<&Limit> {
        self.limits
            .iter()
            .filter(|l| l.crossed(v))
            .max_by_key(|l| l.level)
    }
}
