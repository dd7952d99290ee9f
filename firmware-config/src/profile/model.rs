//! A device model's register map as typed values: what the gateway reads and decodes, and
//! what the simulator serves.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{DataType, WordOrder};

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterKind {
    Coil,
    Discrete,
    Input,
    Holding,
}

impl RegisterKind {
    /// Coils and discrete inputs hold bits; input and holding registers hold 16-bit words.
    pub fn is_bit(self) -> bool {
        matches!(self, RegisterKind::Coil | RegisterKind::Discrete)
    }

    /// The Modbus function code that reads this table.
    pub fn read_function(self) -> u8 {
        match self {
            RegisterKind::Coil => 0x01,
            RegisterKind::Discrete => 0x02,
            RegisterKind::Holding => 0x03,
            RegisterKind::Input => 0x04,
        }
    }

    /// The most a single read of this table may ask for (Modbus application protocol 1.1b3).
    pub fn protocol_max(self) -> u16 {
        if self.is_bit() {
            2000
        } else {
            125
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RegisterKind::Coil => "coil",
            RegisterKind::Discrete => "discrete",
            RegisterKind::Input => "input",
            RegisterKind::Holding => "holding",
        }
    }
}

/// Quality a vendor status code gives the value it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeQuality {
    #[default]
    Good,
    Uncertain,
    Bad,
}

/// What one vendor status code means.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCode {
    pub text: String,
    #[serde(default)]
    pub quality: CodeQuality,
    /// A flag the code puts on the reading: `calibration` (test gas on the sensor: no
    /// process alarm, no output driven).
    #[serde(default)]
    pub flag: Option<hazgate_wire::Flag>,
}

/// A vendor's status code table: the map is data, not code, because every vendor differs.
pub type StatusTable = BTreeMap<u16, StatusCode>;

/// The engineering span a 4–20 mA loop maps onto (NAMUR NE43 judges the current).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopSpan {
    /// Value at 4 mA.
    pub low: f64,
    /// Value at 20 mA.
    pub high: f64,
}

impl LoopSpan {
    pub fn value_at(self, milliamps: f64) -> f64 {
        self.low + (milliamps - 4.0) / 16.0 * (self.high - self.low)
    }

    pub fn current_for(self, value: f64) -> f64 {
        4.0 + (value - self.low) / (self.high - self.low) * 16.0
    }
}

/// The device's measuring range; a value outside it is uncertain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasuringRange {
    pub low: f64,
    pub high: f64,
}

impl MeasuringRange {
    pub fn contains(self, v: f64) -> bool {
        v >= self.low && v <= self.high
    }
}

/// How the simulator makes the value move when no scenario says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Simulate {
    /// The value in normal operation, in engineering units.
    pub normal: f64,
    /// Standard deviation of the noise around it.
    pub noise: f64,
    /// Amplitude of a daily cycle (temperatures, levels).
    pub daily: f64,
    /// Increase per second, for counters (rain gauges, totals).
    pub per_second: f64,
    /// Index of another point of the device whose value this one takes (a feedback input
    /// follows its output); the simulator applies it, the gateway ignores it.
    pub follows: Option<usize>,
}

/// Another point of the same device that feeds this one (decimals, unit code, status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointRef {
    pub id: String,
    /// Index in the device's point list.
    pub index: usize,
}

/// One value of a device and everything needed to read, decode and judge it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: String,
    pub name: String,
    pub kind: RegisterKind,
    pub address: u16,
    pub ty: DataType,
    pub order: WordOrder,
    pub scale: f64,
    pub offset: f64,
    /// A register that holds the number of decimal places (0..=4): value = raw / 10^n.
    pub decimals_from: Option<PointRef>,
    pub unit: Option<String>,
    /// A register holding a unit code, looked up in the profile's `unit_codes`.
    pub unit_from: Option<PointRef>,
    /// A register holding a vendor status code for this value.
    pub status_from: Option<PointRef>,
    /// For a status register: the name of its code table.
    pub status_codes: Option<String>,
    pub range: Option<MeasuringRange>,
    /// For a 4–20 mA point: the raw value (after scale) is loop current in mA.
    pub loop_span: Option<LoopSpan>,
    /// Whether the point becomes a reading (helper registers usually do not).
    pub publish: bool,
    pub simulate: Simulate,
    /// The monitored item (同类监测项目) the point belongs to, e.g. `phreatic_line`: the
    /// GB 39496 roll-up counts points within one item, never across items.
    pub item: Option<String>,
    pub alarm: Option<crate::alarm::AlarmSpec>,
    /// When its readings are published (every poll is judged for alarms either way).
    pub report: super::report::Report,
}

impl Point {
    /// Registers (or bits) the point occupies.
    pub fn width(&self) -> u16 {
        if self.kind.is_bit() {
            1
        } else {
            self.ty.width()
        }
    }

    /// One past the last register, as u32 so 65535 + width cannot overflow.
    pub fn end(&self) -> u32 {
        self.address as u32 + self.width() as u32
    }

    /// The signal before any 4–20 mA mapping: raw × scale + offset, then decimals. For a
    /// current-loop point this is the loop current in mA, which NE43 judges.
    pub fn to_engineering_signal(&self, raw: f64, decimals: Option<u8>) -> f64 {
        let v = raw * self.scale + self.offset;
        match decimals {
            Some(n) => v / 10f64.powi(n as i32),
            None => v,
        }
    }

    /// Engineering value from the raw number: the signal, mapped onto the loop span if any.
    pub fn to_engineering(&self, raw: f64, decimals: Option<u8>) -> f64 {
        let v = self.to_engineering_signal(raw, decimals);
        match self.loop_span {
            Some(span) => span.value_at(v),
            None => v,
        }
    }

    /// Raw number for an engineering value: the inverse of `to_engineering`.
    pub fn to_raw(&self, value: f64, decimals: Option<u8>) -> f64 {
        let v = match self.loop_span {
            Some(span) => span.current_for(value),
            None => value,
        };
        let v = match decimals {
            Some(n) => v * 10f64.powi(n as i32),
            None => v,
        };
        (v - self.offset) / self.scale
    }
}

/// A device model.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub model: String,
    pub vendor: String,
    pub description: String,
    /// The largest register read the device accepts.
    pub max_registers: u16,
    /// The largest coil or discrete read the device accepts.
    pub max_bits: u16,
    pub unit_codes: BTreeMap<u16, String>,
    pub status_tables: BTreeMap<String, StatusTable>,
    /// Shared, not copied, by the devices that use them unchanged: a site of many devices
    /// of one model holds them once.
    pub points: Arc<[Point]>,
}

impl Profile {
    pub fn point(&self, id: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.id == id)
    }
}
