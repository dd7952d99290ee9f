//! Master data, retained on `{p}/{site}/{gateway}/site`: who the enterprise is and what the
//! gateway measures, so the central side shows names instead of codes, rounds values to
//! each point's decimals, draws limits, and knows how many readings to expect (the poll
//! plan) for its completeness figures. Published at every connection and after a reload.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::messages::Envelope;
use crate::Level;

/// The sector a site belongs to, for the regulator's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Industry {
    /// 危险化学品 (storage, production).
    HazardousChemicals,
    /// 尾矿库.
    Tailings,
    /// 矿山 (coal and metal/non-metal mines).
    Mine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HazardSourceInfo {
    pub id: Arc<str>,
    pub name: String,
    /// What kind of installation, e.g. "储罐区" (tank farm), "尾矿库".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Major-hazard grade 1 (most severe) ..= 4.
    pub grade: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The profile (device model).
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hazard_source: Option<Arc<str>>,
    /// Its poll interval, ms: with its points, how many readings to expect.
    pub poll_ms: u64,
}

/// One limit of a point's alarm ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitInfo {
    /// `above` or `below`.
    pub direction: String,
    pub value: f64,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointInfo {
    pub device: Arc<str>,
    pub point: Arc<str>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Decimals to show.
    pub decimals: u8,
    /// The device says its decimals at run time (a decimals register): values arrive
    /// already rounded to them, so a viewer shows them as sent and `decimals` is only a
    /// fallback.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub device_decimals: bool,
    /// The monitored item (同类监测项目).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Computed at the edge from other points.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub derived: bool,
    /// Reported by exception: published on change, and at least this often (ms); absent
    /// when every poll is published. A viewer takes the point for silent only after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_every_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterData {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Administrative-division code (行政区划代码), e.g. "420100".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<Industry>,
    pub hazard_sources: Vec<HazardSourceInfo>,
    pub devices: Vec<DeviceInfo>,
    /// Every point that becomes a reading, derived ones included.
    pub points: Vec<PointInfo>,
    /// Points left out to keep the message under the size bound (0: complete).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub points_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl MasterData {
    /// Readings expected per hour from the poll plan, by device id.
    pub fn expected_per_hour(&self) -> Vec<(Arc<str>, f64)> {
        self.devices
            .iter()
            .map(|d| {
                let points = self.points.iter().filter(|p| p.device == d.id).count() as f64;
                let polls = 3_600_000.0 / d.poll_ms.max(1) as f64;
                (d.id.clone(), points * polls)
            })
            .collect()
    }
}
