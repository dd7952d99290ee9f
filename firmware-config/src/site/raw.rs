//! Site files as written. Unknown fields are refused: a typo in a safety config must not
//! pass silently.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

use super::model::Parity;
use crate::profile::raw::RawPoint;
use crate::serde_types::{ByteSize, Interval};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiteFile {
    pub site: RawSiteInfo,
    pub uplink: Option<RawUplink>,
    pub store: Option<RawStore>,
    pub metrics: Option<RawMetrics>,
    #[serde(default, rename = "hazard_source")]
    pub hazard_sources: Vec<RawHazardSource>,
    #[serde(default, rename = "bus")]
    pub buses: Vec<RawBus>,
    #[serde(default, rename = "device")]
    pub devices: Vec<RawDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiteInfo {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub gateway: Spanned<String>,
    /// Folders with the site's own profiles, relative to the site file.
    #[serde(default)]
    pub profile_dirs: Vec<PathBuf>,
    /// The acknowledge (消音/确认) push-button: an input that acknowledges every alarm
    /// not yet acknowledged when it turns on.
    pub ack_button: Option<crate::profile::alarm::RawPointAt>,
    /// Administrative-division code (行政区划代码), e.g. "420100".
    pub division: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
    /// `hazardous_chemicals`, `tailings` or `mine`.
    pub industry: Option<hazgate_wire::Industry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUplink {
    pub broker: Spanned<String>,
    pub prefix: Option<Spanned<String>>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub password_env: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<PathBuf>>,
    pub client_cert: Option<Spanned<PathBuf>>,
    pub client_key: Option<Spanned<PathBuf>>,
    pub keep_alive: Option<Spanned<Interval>>,
    /// Telemetry and statistics payloads: "zstd" (default) or "none" (plain JSON).
    pub compress: Option<Spanned<RawCompress>>,
    /// How often the status with health is sent (default 30 s); a metered 4G site may
    /// send it less often.
    pub health_interval: Option<Spanned<Interval>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawCompress {
    Zstd,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub dir: Option<PathBuf>,
    pub max_size: Option<Spanned<ByteSize>>,
    pub min_free: Option<Spanned<ByteSize>>,
    pub sync_interval: Option<Spanned<Interval>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Where `/metrics` and `/health` answer, e.g. "127.0.0.1:9464".
    pub listen: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHazardSource {
    pub id: Spanned<String>,
    pub name: String,
    pub grade: Spanned<i64>,
    #[serde(default)]
    pub rollup: super::model::Rollup,
    pub cross_item: Option<Spanned<super::model::CountRule>>,
    /// What kind of installation, e.g. "储罐区".
    pub kind: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub host: String,
    pub port: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSerial {
    pub port: PathBuf,
    pub baud: Spanned<i64>,
    #[serde(default)]
    pub parity: Parity,
    pub data_bits: Option<Spanned<i64>>,
    pub stop_bits: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    pub id: Spanned<String>,
    pub tcp: Option<RawEndpoint>,
    pub rtu: Option<RawSerial>,
    pub rtu_over_tcp: Option<RawEndpoint>,
    pub timeout: Option<Spanned<Interval>>,
    /// Extra silence between frames, beyond the 3.5 characters Modbus RTU requires.
    pub gap: Option<Spanned<Interval>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub bus: Spanned<String>,
    pub unit: Spanned<i64>,
    pub profile: Spanned<String>,
    pub hazard_source: Option<Spanned<String>>,
    pub poll: Spanned<Interval>,
    /// Faster polling while any of the device's points is in a process alarm (GB 51108:
    /// abnormal states are measured more often).
    pub poll_in_alarm: Option<Spanned<Interval>>,
    pub timeout: Option<Spanned<Interval>>,
    /// Largest read this device accepts, when smaller than its profile says.
    pub max_registers: Option<Spanned<i64>>,
    /// Unused registers a read may bridge to save a request.
    pub max_gap: Option<Spanned<i64>>,
    /// Report setting for every point of the device that the site does not set itself
    /// (over the profile's), e.g. `report = "every_poll"`.
    pub report: Option<Spanned<crate::profile::report::RawReport>>,
    #[serde(default)]
    pub points: BTreeMap<Spanned<String>, RawPoint>,
    /// Points computed from others (freeboard, rainfall totals, displacement magnitude).
    #[serde(default)]
    pub derived: super::derived::RawDerivedTable,
}
