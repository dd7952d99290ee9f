//! What the view shows: the latest reading of every point and the presence of every
//! gateway, as learnt from the broker. Sites and devices come in config order from the site
//! configs, so a device not heard from yet shows as waiting; its points appear as they are
//! first published (only the gateway knows which registers make a reading).

use firmware_config::SiteConfig;
use hazgate_wire::{Message, Presence, Reading};

/// The latest known state of one site.
#[derive(Debug)]
pub struct SiteBoard {
    pub id: String,
    pub gateway: String,
    pub name: Option<String>,
    pub presence: Option<Presence>,
    /// The site's retained state: its level and active alarms, as the alarm engine says.
    pub state: Option<hazgate_wire::State>,
    pub devices: Vec<DeviceBoard>,
}

#[derive(Debug)]
pub struct DeviceBoard {
    pub id: String,
    pub points: Vec<PointBoard>,
}

#[derive(Debug)]
pub struct PointBoard {
    pub id: String,
    pub latest: Option<Reading>,
}

/// What one message changed, for the plain output.
#[derive(Debug, PartialEq)]
pub enum Update {
    Readings(Vec<Reading>),
    Alarm(Box<hazgate_wire::AlarmEvent>),
    Presence {
        site: String,
        gateway: String,
        state: Presence,
    },
    Nothing,
}

#[derive(Debug, Default)]
pub struct Board {
    pub sites: Vec<SiteBoard>,
    /// Messages taken from the broker.
    pub messages: u64,
    /// Messages that were not a hazgate message, or came from no demo site.
    pub ignored: u64,
    /// Gaps reported by the gateways (telemetry lost in an outage).
    pub gaps: u64,
}

impl Board {
    pub fn new(sites: &[SiteConfig]) -> Board {
        let sites = sites
            .iter()
            .map(|s| SiteBoard {
                id: s.site.id.clone(),
                gateway: s.site.gateway.clone(),
                name: s.site.name.clone(),
                presence: None,
                state: None,
                devices: s
                    .devices
                    .iter()
                    .map(|d| DeviceBoard {
                        id: d.id.clone(),
                        points: Vec::new(),
                    })
                    .collect(),
            })
            .collect();
        Board {
            sites,
            ..Board::default()
        }
    }

    /// Takes one MQTT payload. Anything that is not a message of a demo site is counted
    /// and otherwise ignored: a stray publisher must not stop the demo.
    pub fn apply(&mut self, payload: &[u8]) -> Update {
        self.messages += 1;
        let message = hazgate_wire::payload::decode(payload, 16 << 20)
            .ok()
            .and_then(|json| serde_json::from_slice::<Message>(&json).ok());
        let Some(message) = message else {
            self.ignored += 1;
            return Update::Nothing;
        };
        let envelope = message.envelope();
        let Some(site) = self
            .sites
            .iter_mut()
            .find(|s| *s.id == *envelope.site && *s.gateway == *envelope.gateway)
        else {
            self.ignored += 1;
            return Update::Nothing;
        };
        match message {
            Message::Status(status) => {
                // Periodic health repeats the state; only a change is news.
                if site.presence.replace(status.state) == Some(status.state) {
                    return Update::Nothing;
                }
                Update::Presence {
                    site: site.id.clone(),
                    gateway: site.gateway.clone(),
                    state: status.state,
                }
            }
            Message::Gap(_) => {
                self.gaps += 1;
                Update::Nothing
            }
            // The demo knows its sites from their configs, and shows values, not statistics.
            Message::Site(_) | Message::Stats(_) => Update::Nothing,
            Message::State(state) => {
                if !matches!(&site.state, Some(old) if old.envelope.seq > state.envelope.seq) {
                    site.state = Some(state);
                }
                Update::Nothing
            }
            Message::Alarm(event) => Update::Alarm(Box::new(event)),
            Message::Telemetry(t) => {
                for r in &t.readings {
                    let p = site.point_mut(&r.device, &r.point);
                    // Replayed backlog may arrive after newer readings: keep the newest.
                    if !matches!(&p.latest, Some(old) if old.ts > r.ts) {
                        p.latest = Some(r.clone());
                    }
                }
                Update::Readings(t.readings)
            }
        }
    }

    pub fn point(&self, device: &str, point: &str) -> Option<&PointBoard> {
        self.sites.iter().find_map(|s| {
            s.devices
                .iter()
                .find(|d| d.id == device)?
                .points
                .iter()
                .find(|p| p.id == point)
        })
    }
}

impl SiteBoard {
    /// The point's slot, made on first sight (devices too, should a gateway publish one
    /// its config here does not name).
    fn point_mut(&mut self, device: &str, point: &str) -> &mut PointBoard {
        let d = match self.devices.iter().position(|d| d.id == device) {
            Some(i) => i,
            None => {
                self.devices.push(DeviceBoard {
                    id: device.to_string(),
                    points: Vec::new(),
                });
                self.devices.len() - 1
            }
        };
        let points = &mut self.devices[d].points;
        let p = match points.iter().position(|p| p.id == point) {
            Some(i) => i,
            None => {
                points.push(PointBoard {
                    id: point.to_string(),
                    latest: None,
                });
                points.len() - 1
            }
        };
        &mut points[p]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        Board {
            sites: vec![SiteBoard {
                id: "HB-1".into(),
                gateway: "gw-01".into(),
                name: None,
                presence: None,
                state: None,
                devices: vec![DeviceBoard {
                    id: "GD-101".into(),
                    points: Vec::new(),
                }],
            }],
            ..Board::default()
        }
    }

    fn telemetry(ts: i64, value: f64) -> Vec<u8> {
        format!(
            r#"{{"kind":"telemetry","v":1,"site":"HB-1","gateway":"gw-01","seq":1,"readings":[{{"device":"GD-101","point":"CH1","ts":{ts},"value":{value},"unit":"%LEL","quality":"good"}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn keeps_the_newest_reading_and_counts_what_it_cannot_use() {
        let mut b = board();
        assert!(matches!(b.apply(&telemetry(2, 30.0)), Update::Readings(r) if r.len() == 1));
        b.apply(&telemetry(1, 10.0));
        b.apply(b"not json");
        b.apply(br#"{"kind":"alarm"}"#);
        let p = b.point("GD-101", "CH1").unwrap();
        assert_eq!(p.latest.as_ref().unwrap().ts, 2);
        assert_eq!((b.messages, b.ignored), (4, 2));
    }

    #[test]
    fn status_sets_presence_and_reports_only_changes() {
        let mut b = board();
        let online = br#"{"kind":"status","v":1,"site":"HB-1","gateway":"gw-01","seq":1,"state":"online","ts":1,"version":"0","config_hash":"x","boot_ts":1}"#;
        assert!(matches!(b.apply(online), Update::Presence { .. }));
        assert_eq!(b.apply(online), Update::Nothing);
        assert_eq!(b.sites[0].presence, Some(Presence::Online));
    }
}
