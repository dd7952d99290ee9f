//! Five-minute statistics of every point, computed at the edge from every poll (report by
//! exception leaves most readings off the wire; the mine rules ask for max, min and mean
//! per period), on `{p}/{site}/{gateway}/stats`.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::messages::Envelope;

/// The length of a statistics period, ms; periods start at multiples of it (UTC).
pub const STATS_PERIOD_MS: i64 = 300_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The period: `[from_ts, to_ts)`, ms UTC.
    pub from_ts: i64,
    pub to_ts: i64,
    pub points: Vec<PointStats>,
}

/// One point over one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointStats {
    pub device: Arc<str>,
    pub point: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Arc<str>>,
    /// Readings acquired (every poll, whatever its quality).
    pub samples: u32,
    /// Of them, good ones.
    pub good: u32,
    /// Over the good numeric readings; absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
}
