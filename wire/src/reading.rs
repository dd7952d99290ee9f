//! One acquired value: device, point, acquisition time, value, unit and quality.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A value as it travels: a number, a switch state or a text; `null` when there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Bool(bool),
    Text(String),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(x) => Some(*x),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Text(_) => None,
        }
    }
}

/// Why a reading is not good. Stable snake_case codes on the wire; `detail` says more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Outside the device's measuring range, or a 4–20 mA loop in the NE43 saturation band.
    OutOfRange,
    /// The device's own status register says the value is not to be trusted.
    StatusCode,
    /// The unit code register holds a code the profile does not know.
    UnknownUnit,
    /// Sensor fault: a fault status code or an NE43 fault current.
    SensorFault,
    /// The device answered with a Modbus exception.
    Exception,
    /// No answer within the timeout.
    Timeout,
    /// An RTU reply whose checksum does not match.
    Crc,
    /// A reply that is not a well-formed answer to the request.
    Framing,
    /// The device or serial server refused the connection.
    ConnectionRefused,
    /// The connection or port failed.
    ConnectionLost,
    /// The gateway's wall clock is implausible (before its build date or far in the
    /// future): the value is real, its time stamp is not to be trusted.
    Clock,
    /// A derived total or rate covers less than its window: the gateway started within
    /// it, or its input was silent for part of it. The value is a lower bound (a total)
    /// or taken over a shorter span (a rate).
    PartialWindow,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::OutOfRange,
        Reason::StatusCode,
        Reason::UnknownUnit,
        Reason::SensorFault,
        Reason::Exception,
        Reason::Timeout,
        Reason::Crc,
        Reason::Framing,
        Reason::ConnectionRefused,
        Reason::ConnectionLost,
        Reason::Clock,
        Reason::PartialWindow,
    ];

    /// A stable number for stores that keep numbers only (1 = out_of_range ... 10 =
    /// connection_lost, in the order above); never reused.
    pub fn code(self) -> u8 {
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .map_or(0, |i| i as u8 + 1)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OutOfRange => "out_of_range",
            Reason::StatusCode => "status_code",
            Reason::UnknownUnit => "unknown_unit",
            Reason::SensorFault => "sensor_fault",
            Reason::Exception => "exception",
            Reason::Timeout => "timeout",
            Reason::Crc => "crc",
            Reason::Framing => "framing",
            Reason::ConnectionRefused => "connection_refused",
            Reason::ConnectionLost => "connection_lost",
            Reason::Clock => "clock",
            Reason::PartialWindow => "partial_window",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a reading can be trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "quality", rename_all = "lowercase")]
pub enum Quality {
    Good,
    Uncertain { reason: Reason, detail: String },
    Bad { reason: Reason, detail: String },
}

impl Quality {
    pub fn bad(reason: Reason, detail: impl Into<String>) -> Self {
        Quality::Bad {
            reason,
            detail: detail.into(),
        }
    }

    pub fn uncertain(reason: Reason, detail: impl Into<String>) -> Self {
        Quality::Uncertain {
            reason,
            detail: detail.into(),
        }
    }

    pub fn is_good(&self) -> bool {
        matches!(self, Quality::Good)
    }

    pub fn reason(&self) -> Option<Reason> {
        match self {
            Quality::Good => None,
            Quality::Uncertain { reason, .. } | Quality::Bad { reason, .. } => Some(*reason),
        }
    }

    /// Keeps the worse of two qualities: bad over uncertain over good.
    pub fn worst(self, other: Quality) -> Quality {
        fn rank(q: &Quality) -> u8 {
            match q {
                Quality::Good => 0,
                Quality::Uncertain { .. } => 1,
                Quality::Bad { .. } => 2,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

/// One point's value at one acquisition.
/// What a reading is flagged as (AQ 1029 伪数据标注): a real value that must not be
/// judged as a measurement of the plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Taken while the sensor was being calibrated with test gas: raises no process alarm
    /// and drives no output.
    Calibration,
    /// The value has not changed at all over the point's configured number of samples: a
    /// frozen sensor or converter is suspected. Still judged (a steady value may be real).
    StuckValue,
    /// The value moved faster than the point's configured physical limit since the last
    /// accepted reading: not judged, drives no output; a second reading confirming the
    /// step is judged.
    ImpossibleJump,
}

impl Flag {
    /// Bit in the central store's `flags` field.
    pub fn bit(self) -> u32 {
        match self {
            Flag::Calibration => 1,
            Flag::StuckValue => 2,
            Flag::ImpossibleJump => 4,
        }
    }

    /// Whether a reading with this flag is kept out of process alarms and linkage: it
    /// says nothing about the plant (test gas, a physically impossible value).
    pub fn withholds_judgement(self) -> bool {
        matches!(self, Flag::Calibration | Flag::ImpossibleJump)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Shared, not copied: a gateway emits the same ids every cycle.
    pub device: Arc<str>,
    pub point: Arc<str>,
    /// Acquisition time, milliseconds since the Unix epoch, UTC.
    pub ts: i64,
    /// `null` when there is no value (the device did not answer, or the sensor failed).
    pub value: Option<Value>,
    pub unit: Option<Arc<str>>,
    #[serde(flatten)]
    pub quality: Quality,
    /// Flags (absent when none): e.g. taken during calibration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_reading_json() {
        let r = Reading {
            device: "GD-101".into(),
            point: "CH1".into(),
            ts: 1_700_000_000_000,
            value: Some(Value::Number(12.5)),
            unit: Some("%LEL".into()),
            quality: Quality::Good,
            flags: Vec::new(),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"device":"GD-101","point":"CH1","ts":1700000000000,"value":12.5,"unit":"%LEL","quality":"good"}"#
        );
        assert_eq!(serde_json::from_str::<Reading>(&json).unwrap(), r);
    }

    #[test]
    fn bad_reading_json() {
        let r = Reading {
            device: "PT-201".into(),
            point: "P".into(),
            ts: 1,
            value: None,
            unit: Some("MPa".into()),
            quality: Quality::bad(Reason::Timeout, "no reply within 500ms"),
            flags: Vec::new(),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"device":"PT-201","point":"P","ts":1,"value":null,"unit":"MPa","quality":"bad","reason":"timeout","detail":"no reply within 500ms"}"#
        );
        assert_eq!(serde_json::from_str::<Reading>(&json).unwrap(), r);
    }
}
