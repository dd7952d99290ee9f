//! A site as typed values: what the gateway and the simulator run from.

use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::profile::{Point, Profile};

#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Hash of the file's text, reported at birth so the centre knows which config runs.
    pub hash: String,
    pub site: SiteInfo,
    pub uplink: Option<Uplink>,
    pub store: StoreConfig,
    /// Where the Prometheus `/metrics` and `/health` endpoints listen; off when `None`.
    pub metrics: Option<std::net::SocketAddr>,
    pub hazard_sources: Vec<HazardSource>,
    pub buses: Vec<Bus>,
    pub devices: Vec<Device>,
    /// Points computed at the edge from others, in the order they are computed.
    pub derived: Vec<super::derived::Derived>,
}

impl SiteConfig {
    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// Every point that has alarm settings, register and derived alike.
    pub fn alarmed_points(&self) -> Vec<AlarmedPoint<'_>> {
        let registers = self.devices.iter().flat_map(|d| {
            d.points.iter().filter(|p| p.publish).filter_map(move |p| {
                Some(AlarmedPoint {
                    device: d,
                    point: &p.id,
                    unit: p.unit.as_deref(),
                    item: p.item.as_deref(),
                    alarm: p.alarm.as_ref()?,
                })
            })
        });
        let derived = self.derived.iter().filter_map(|x| {
            Some(AlarmedPoint {
                device: &self.devices[x.device],
                point: &x.id,
                unit: x.unit.as_deref(),
                item: x.item.as_deref(),
                alarm: x.alarm.as_ref()?,
            })
        });
        registers.chain(derived).collect()
    }

    /// Devices on one bus, in config order.
    pub fn devices_on(&self, bus: usize) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(move |d| d.bus == bus)
    }
}

/// A point with alarm settings, where it is and what it is in.
#[derive(Debug, Clone, Copy)]
pub struct AlarmedPoint<'a> {
    pub device: &'a Device,
    pub point: &'a str,
    pub unit: Option<&'a str>,
    /// The monitored item the GB 39496 roll-up counts it in.
    pub item: Option<&'a str>,
    pub alarm: &'a crate::alarm::AlarmSpec,
}

#[derive(Debug, Clone)]
pub struct SiteInfo {
    /// Enterprise code, e.g. "HB-420100-0001".
    pub id: String,
    pub name: Option<String>,
    pub gateway: String,
    /// The acknowledge push-button (消音/确认): acknowledges, as the local operator, every
    /// alarm not yet acknowledged when it turns on.
    pub ack_button: Option<crate::alarm::PointAt>,
    /// Administrative-division code, digits.
    pub division: Option<String>,
    pub address: Option<String>,
    pub industry: Option<hazgate_wire::Industry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Where a secret comes from; never the secret itself, which stays out of config and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Secret {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    pub broker: Broker,
    pub prefix: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub keep_alive: Duration,
    /// How telemetry and statistics payloads are encoded (`[uplink] compress`).
    pub encoding: hazgate_wire::payload::Encoding,
    /// How often the status with health goes out (`[uplink] health_interval`).
    pub health_interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub max_size: u64,
    /// Free space kept on the store's filesystem: telemetry is evicted (and reported as a
    /// gap) before the disk fills, so alarms always find room.
    pub min_free: u64,
    pub sync_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct HazardSource {
    pub id: String,
    pub name: String,
    /// Major-hazard grade 1 (most severe) ..= 4.
    pub grade: u8,
    pub rollup: Rollup,
    /// With `rollup = "gb39496"`: how items combine into the hazard source's level.
    pub cross_item: CountRule,
    /// What kind of installation, e.g. "储罐区".
    pub kind: Option<String>,
}

/// A counting rule: so many at (or above) a level make the next level up. GB 39496-2020
/// §5.5.4 within one monitored item: 4 blue make yellow, 3 yellow make orange, 2 orange
/// make red. Across items the standard gives "4 blue items count as one yellow item"; the
/// rest of its cross-item text is not confirmed, so the same ladder is the default and a
/// site may set its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRule {
    pub blue: u32,
    pub yellow: u32,
    pub orange: u32,
}

impl CountRule {
    pub const GB39496: CountRule = CountRule {
        blue: 4,
        yellow: 3,
        orange: 2,
    };
}

impl Default for CountRule {
    fn default() -> Self {
        Self::GB39496
    }
}

/// How a hazard source's level follows from its points' levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rollup {
    /// The highest level of any of its points.
    #[default]
    Highest,
    /// GB 39496-2020 §5.5.4 for tailings dams: within each monitored item, 4 blue points
    /// make the item yellow, 3 yellow make it orange, 2 orange make it red (counting points
    /// at that level or above); the items then combine by `cross_item`. Points of different
    /// items are never pooled into one count.
    Gb39496,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SerialLine {
    pub port: PathBuf,
    pub baud: u32,
    pub parity: Parity,
    pub data_bits: u8,
    pub stop_bits: u8,
}

impl SerialLine {
    /// Bits on the wire per character: start, data, parity, stop.
    pub fn bits_per_char(&self) -> u32 {
        1 + self.data_bits as u32 + u32::from(self.parity != Parity::None) + self.stop_bits as u32
    }

    /// Time one character takes on the line.
    pub fn char_time(&self) -> Duration {
        Duration::from_secs_f64(self.bits_per_char() as f64 / self.baud as f64)
    }

    /// The silence that ends an RTU frame: 3.5 characters, fixed at 1.75 ms above 19200 baud
    /// (Modbus over serial line, 2.5.1.1).
    pub fn frame_silence(&self) -> Duration {
        if self.baud > 19200 {
            Duration::from_micros(1750)
        } else {
            self.char_time().mul_f64(3.5)
        }
    }
}

/// How the gateway reaches the devices of a bus.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Modbus TCP (MBAP framing).
    Tcp { host: String, port: u16 },
    /// Modbus RTU on a serial line (RS-485).
    Rtu(SerialLine),
    /// RTU frames tunnelled through a TCP socket: serial servers and 4G DTUs.
    RtuOverTcp { host: String, port: u16 },
}

impl Link {
    pub fn describe(&self) -> String {
        match self {
            Link::Tcp { host, port } => format!("Modbus TCP {host}:{port}"),
            Link::Rtu(s) => format!(
                "Modbus RTU {} {} baud {}{}{}",
                s.port.display(),
                s.baud,
                s.data_bits,
                match s.parity {
                    Parity::None => 'N',
                    Parity::Even => 'E',
                    Parity::Odd => 'O',
                },
                s.stop_bits
            ),
            Link::RtuOverTcp { host, port } => format!("Modbus RTU over TCP {host}:{port}"),
        }
    }
}

/// One RS-485 line or one TCP endpoint: it carries one request at a time.
#[derive(Debug, Clone)]
pub struct Bus {
    pub id: String,
    pub link: Link,
    pub timeout: Duration,
    pub gap: Duration,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub name: Option<String>,
    /// Index into `SiteConfig::buses`.
    pub bus: usize,
    /// Modbus unit (slave) id, 1..=247.
    pub unit: u8,
    pub profile: Arc<Profile>,
    /// Index into `SiteConfig::hazard_sources`.
    pub hazard_source: Option<usize>,
    pub poll: Duration,
    /// The poll interval while any of its points is in a process alarm.
    pub poll_in_alarm: Option<Duration>,
    pub timeout: Duration,
    pub max_registers: u16,
    pub max_bits: u16,
    /// Cap on unused registers one read may bridge (0: never read unmapped registers).
    pub max_gap: u16,
    /// The profile's points with the site's overrides applied (the profile's own,
    /// shared, when the site changes none).
    pub points: Arc<[Point]>,
}
