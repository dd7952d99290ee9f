//! The messages a gateway publishes, one type per kind. Every message carries `v`, `kind`,
//! `site`, `gateway` and `seq`; `seq` grows per topic of a gateway across restarts, so the
//! central side can see a missing message as a hole in that topic's sequence.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::Reading;

/// Who sent a message and where it stands in its topic's sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub site: Arc<str>,
    pub gateway: Arc<str>,
    pub seq: u64,
}

/// A batch of readings, on `{p}/{site}/{gateway}/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub readings: Vec<Reading>,
}

/// Telemetry the gateway had to drop because its store was full during an outage, also on
/// the telemetry topic: exactly which span of acquisition time of this gateway is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Earliest acquisition time lost (ms UTC).
    pub from_ts: i64,
    /// Latest acquisition time lost (ms UTC).
    pub to_ts: i64,
    /// The telemetry messages lost, by their seq.
    pub first_seq: u64,
    pub last_seq: u64,
    pub messages: u64,
    /// The messages had gone to the broker but were never acknowledged: those the
    /// central side holds arrived, and only the rest are lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
}

/// Connection state in the retained status message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Offline,
}

/// Store figures in a health report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// Messages waiting for the broker's acknowledgement.
    pub depth: u64,
    pub bytes: u64,
    /// Age of the oldest unacknowledged data, ms; 0 when nothing waits.
    pub oldest_unsent_age_ms: u64,
    /// Telemetry messages dropped because the store was full, since installation.
    pub evicted: u64,
}

/// Periodic health, inside status messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub telemetry: StoreHealth,
    pub alarm: StoreHealth,
    /// Failed reads since start.
    pub poll_errors: u64,
    /// Poll cycles skipped because the previous one overran.
    pub overruns: u64,
    /// Time from a publish to its acknowledgement, ms (the latest one).
    pub broker_rtt_ms: Option<u64>,
    /// The store cannot write (full disk, I/O error): alarms are held in memory.
    #[serde(default)]
    pub store_failed: bool,
    /// Wall-clock steps seen since start (the wall clock moved against monotonic time).
    #[serde(default)]
    pub clock_steps: u64,
}

/// Retained on `{p}/{site}/{gateway}/status`: birth, periodic health, and (as the last
/// will, or on a clean shutdown) `offline`.
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub state: Presence,
    /// When this was said (ms UTC).
    pub ts: i64,
    pub version: String,
    pub config_hash: String,
    /// When the gateway started (ms UTC).
    pub boot_ts: i64,
    /// `false` while the gateway's wall clock is implausible (before its build date or
    /// far in the future): its time stamps are then flagged (reason `clock`).
    #[serde(default = "yes")]
    pub clock_ok: bool,
    /// How often this gateway sends its health (ms): the central side takes it for silent
    /// only after two such intervals without a message. Absent from older gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_every_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Any message on a gateway's topics, told apart by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Message {
    Telemetry(Telemetry),
    Gap(Gap),
    Status(Status),
    Alarm(crate::AlarmEvent),
    State(crate::State),
    Site(crate::MasterData),
    Stats(crate::Stats),
}

impl Message {
    /// Every `kind` on the wire, in declaration order.
    pub const KINDS: [&'static str; 7] = [
        "telemetry",
        "gap",
        "status",
        "alarm",
        "state",
        "site",
        "stats",
    ];

    /// The `kind` this message carries on the wire.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    /// Its position in [`Message::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            Message::Telemetry(_) => 0,
            Message::Gap(_) => 1,
            Message::Status(_) => 2,
            Message::Alarm(_) => 3,
            Message::State(_) => 4,
            Message::Site(_) => 5,
            Message::Stats(_) => 6,
        }
    }

    pub fn envelope(&self) -> &Envelope {
        match self {
            Message::Telemetry(m) => &m.envelope,
            Message::Gap(m) => &m.envelope,
            Message::Status(m) => &m.envelope,
            Message::Alarm(m) => &m.envelope,
            Message::State(m) => &m.envelope,
            Message::Site(m) => &m.envelope,
            Message::Stats(m) => &m.envelope,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Quality, Value};

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            v: 1,
            site: "HB-1".into(),
            gateway: "gw-01".into(),
            seq,
        }
    }

    #[test]
    fn telemetry_json_round_trip() {
        let m = Message::Telemetry(Telemetry {
            envelope: envelope(7),
            readings: vec![Reading {
                device: "GD-101".into(),
                point: "CH1".into(),
                ts: 1,
                value: Some(Value::Number(3.5)),
                unit: Some("%LEL".into()),
                quality: Quality::Good,
                flags: Vec::new(),
            }],
        });
        let json = String::from_utf8(m.to_json()).unwrap();
        assert!(json.starts_with(r#"{"kind":"telemetry","v":1,"site":"HB-1","gateway":"gw-01","seq":7,"readings":[{"device":"GD-101""#), "{json}");
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
    }

    #[test]
    fn gap_and_status_round_trip() {
        for m in [
            Message::Gap(Gap {
                envelope: envelope(9),
                from_ts: 10,
                to_ts: 20,
                first_seq: 3,
                last_seq: 5,
                messages: 3,
                unconfirmed: true,
            }),
            Message::Status(Status {
                envelope: envelope(1),
                state: Presence::Online,
                ts: 5,
                version: "0.1.0".into(),
                config_hash: "abc".into(),
                boot_ts: 4,
                clock_ok: true,
                health_every_ms: Some(30_000),
                health: Some(Health::default()),
            }),
        ] {
            let json = m.to_json();
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(value["kind"], m.kind());
            assert_eq!(serde_json::from_slice::<Message>(&json).unwrap(), m);
        }
    }
}
