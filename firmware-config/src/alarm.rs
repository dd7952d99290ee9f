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

/// Which way a change must go to count against a rate limit: a pond rising fast is a
/// danger, one falling fast is not (and the label "库水位快速上涨" says rising).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateDirection {
    Rising,
    Falling,
    #[default]
    Both,
}

/// A change faster than `change` within `window`, in `direction`, is an alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub change: f64,
    pub window: Duration,
    pub direction: RateDirection,
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
    /// A release threshold of its own (AQ 1029: methane power is restored only below
    /// 1.0 %, not at the cut threshold less a deadband). `None`: released when the point
    /// falls below `level`.
    pub release: Option<Release>,
    /// Stays operated after the condition has gone, until reset: by the `reset` input or a
    /// command (a valve closed by an interlock stays closed until an operator resets it).
    pub latch: bool,
    /// An input that resets a latched output when it reads on (a reset push-button).
    pub reset: Option<PointAt>,
    /// A position feedback (a valve's limit switch) that must confirm the output within
    /// `within`: no confirmation is a `linkage_failed` alarm.
    pub feedback: Option<Feedback>,
    /// Fail-safe (故障闭锁): also operate while the point is in comm loss or sensor fault
    /// (a methane sensor that fails or goes silent cuts power where the design says so).
    pub fail_safe: bool,
    /// Released once the alarm that operates it is acknowledged (a siren: 消音); a beacon
    /// stays until the alarm clears. A new or higher alarm operates it again.
    pub silence_on_ack: bool,
}

/// Where an output is released: once the value is on the safe side of this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Release {
    Below(f64),
    Above(f64),
}

impl Release {
    /// Whether `v` is on the safe side; no value is never safe (fail-safe).
    pub fn released(self, v: Option<f64>) -> bool {
        match (self, v) {
            (Release::Below(x), Some(v)) => v < x,
            (Release::Above(x), Some(v)) => v > x,
            (_, None) => false,
        }
    }
}

/// A point of another device of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointAt {
    pub device: String,
    pub point: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub at: PointAt,
    pub within: Duration,
}

/// How calibration is told and how long it may last (AQ 1029).
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Longer than this is an equipment alarm at `level`.
    pub max: Duration,
    pub level: Level,
    /// A switch that says the sensor is being calibrated (the key switch on the
    /// station): while it reads on, the point's readings are flagged `calibration`, as
    /// they are by a status code meaning calibration.
    pub input: Option<PointAt>,
}

/// A sensor that should vary but repeats the same value `samples` times in a row is
/// suspected frozen: its readings are flagged `stuck_value` and it is an equipment alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stuck {
    pub samples: u32,
    pub level: Level,
}

/// A reading more than `change` per `per` away from the last accepted one cannot be the
/// plant: it is flagged `impossible_jump`, not judged, and an equipment alarm; a next
/// reading that confirms the step is accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jump {
    pub change: f64,
    pub per: Duration,
    pub level: Level,
}

impl Jump {
    /// Whether going from `from` to `to` in `elapsed_ms` is faster than possible.
    pub fn exceeded(&self, from: f64, to: f64, elapsed_ms: i64) -> bool {
        let per_ms = self.per.as_millis().max(1) as f64;
        (to - from).abs() > self.change * (elapsed_ms.max(0) as f64 / per_ms)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    /// The unit the limits, deadband and rate are in: the point's unit unless the alarm
    /// table states its own, which must then be the point's (`check` refuses a ladder in
    /// %LEL on a head that reports ppm). A reading in another unit at run time (a unit-code
    /// register) is not judged against the limits: it is a sensor fault.
    pub unit: Option<String>,
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
    /// A calibration (readings flagged `calibration`) lasting longer than this is an
    /// equipment alarm at this level.
    pub calibration: Option<Calibration>,
    /// No change at all over so many samples is flagged (AQ 1029 false data).
    pub stuck: Option<Stuck>,
    /// A change faster than physically possible is flagged (AQ 1029 false data).
    pub jump: Option<Jump>,
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
