//! The gateway's master data (`site` topic, retained): the enterprise, its hazard sources,
//! devices with their poll plan, and every point that becomes a reading with its name,
//! unit, decimals, monitored item and limits. Built from the site config; names are cut
//! to the wire's text rule so ingest never refuses them; bounded like the state.

use std::sync::Arc;

use firmware_config::alarm::{AlarmSpec, Direction};
use firmware_config::{DataType, Point, SiteConfig};
use hazgate_wire::{
    DeviceInfo, Envelope, HazardSourceInfo, LimitInfo, MasterData, Message, PointInfo,
};

/// The largest master-data message: points beyond it are counted, not listed.
pub const MAX_MASTER_BYTES: usize = 256 * 1024;

/// A name as the wire takes it: no control characters, at most 128 characters.
fn text(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(hazgate_wire::validate::MAX_TEXT)
        .collect();
    if t.is_empty() {
        "?".into()
    } else {
        t
    }
}

/// Decimals worth showing: what the scale resolves (0.01 → 2), 2 where the device
/// decides (a decimals register, a float, a 4–20 mA span).
pub fn decimals(p: &Point) -> u8 {
    if p.decimals_from.is_some()
        || p.loop_span.is_some()
        || matches!(p.ty, DataType::F32 | DataType::F64)
    {
        return 2;
    }
    if matches!(p.ty, DataType::Bit(_) | DataType::Text(_)) {
        return 0;
    }
    let s = p.scale.abs();
    if s == 0.0 || s >= 1.0 {
        0
    } else {
        (-s.log10() - 1e-9).ceil().clamp(0.0, 6.0) as u8
    }
}

fn limits(alarm: Option<&AlarmSpec>) -> Vec<LimitInfo> {
    alarm
        .map(|a| {
            a.limits
                .iter()
                .map(|l| LimitInfo {
                    direction: match l.direction {
                        Direction::Above => "above".into(),
                        Direction::Below => "below".into(),
                    },
                    value: l.value,
                    level: l.level,
                    label: l.label.as_deref().map(text),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The master data of a site (its envelope is filled in when it is published).
pub fn build(site: &SiteConfig) -> MasterData {
    let mut points = Vec::new();
    for d in &site.devices {
        for p in d.points.iter().filter(|p| p.publish) {
            points.push(PointInfo {
                device: d.id.as_str().into(),
                point: p.id.as_str().into(),
                name: text(&p.name),
                unit: p.unit.clone(),
                decimals: decimals(p),
                device_decimals: p.decimals_from.is_some(),
                item: p.item.clone(),
                derived: false,
                report_every_ms: p.report.every().map(|d| d.as_millis() as u64),
                limits: limits(p.alarm.as_ref()),
            });
        }
    }
    for x in &site.derived {
        points.push(PointInfo {
            device: site.devices[x.device].id.as_str().into(),
            point: x.id.as_str().into(),
            name: text(&x.name),
            unit: x.unit.clone(),
            decimals: 2,
            device_decimals: false,
            item: x.item.clone(),
            derived: true,
            report_every_ms: x.report.every().map(|d| d.as_millis() as u64),
            limits: limits(x.alarm.as_ref()),
        });
    }
    MasterData {
        envelope: Envelope {
            v: hazgate_wire::VERSION,
            site: site.site.id.as_str().into(),
            gateway: site.site.gateway.as_str().into(),
            seq: 0,
        },
        ts: 0,
        name: site.site.name.as_deref().map(text),
        division: site.site.division.clone(),
        address: site.site.address.as_deref().map(text),
        industry: site.site.industry,
        hazard_sources: site
            .hazard_sources
            .iter()
            .map(|h| HazardSourceInfo {
                id: h.id.as_str().into(),
                name: text(&h.name),
                kind: h.kind.as_deref().map(text),
                grade: h.grade,
            })
            .collect(),
        devices: site
            .devices
            .iter()
            .map(|d| DeviceInfo {
                id: d.id.as_str().into(),
                name: d.name.as_deref().map(text),
                model: text(&d.profile.model),
                hazard_source: d
                    .hazard_source
                    .map(|i| site.hazard_sources[i].id.as_str().into()),
                poll_ms: d.poll.as_millis() as u64,
            })
            .collect(),
        points,
        points_omitted: 0,
    }
}

/// The message to publish: this envelope and time, cut to [`MAX_MASTER_BYTES`].
pub fn encode(master: &Arc<MasterData>, envelope: Envelope, ts: i64) -> Vec<u8> {
    let mut m = MasterData {
        envelope,
        ts,
        ..(**master).clone()
    };
    let mut payload = Message::Site(m.clone()).to_json();
    if payload.len() <= MAX_MASTER_BYTES {
        return payload;
    }
    let total = m.points.len();
    let (mut lo, mut hi) = (0usize, total);
    // The most points that fit.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        m.points.truncate(mid);
        m.points_omitted = (total - mid) as u64;
        if Message::Site(m.clone()).to_json().len() <= MAX_MASTER_BYTES {
            lo = mid;
        } else {
            hi = mid - 1;
        }
        m.points = master.points.clone();
    }
    m.points.truncate(lo);
    m.points_omitted = (total - lo) as u64;
    payload = Message::Site(m).to_json();
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_site_is_cut_and_counted() {
        let site = firmware_config::site::parse_site(&firmware_config::error::SourceText::new(
            "/tmp/site.toml",
            "[site]\nid = \"S\"\ngateway = \"G\"\n[[bus]]\nid = \"b\"\ntcp = { host = \"127.0.0.1\", port = 1 }\n[[device]]\nid = \"D\"\nbus = \"b\"\nunit = 1\nprofile = \"gas-detector-4ch\"\npoll = \"1s\"\n",
        ))
        .unwrap();
        let mut m = build(&site);
        let one = m.points[0].clone();
        m.points = (0..5000)
            .map(|i| PointInfo {
                point: format!("P{i}").into(),
                ..one.clone()
            })
            .collect();
        let bytes = encode(&Arc::new(m), site_envelope(), 1);
        assert!(bytes.len() <= MAX_MASTER_BYTES);
        let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let listed = back["points"].as_array().unwrap().len() as u64;
        assert!(listed > 100);
        assert_eq!(listed + back["points_omitted"].as_u64().unwrap(), 5000);
    }

    fn site_envelope() -> Envelope {
        Envelope {
            v: 1,
            site: "S".into(),
            gateway: "G".into(),
            seq: 1,
        }
    }

    #[test]
    fn decimals_follow_the_scale() {
        let site = firmware_config::load_site(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tailings-dam.toml"),
        )
        .unwrap();
        let m = build(&site);
        let find = |d: &str, p: &str| {
            m.points
                .iter()
                .find(|x| &*x.device == d && &*x.point == p)
                .unwrap()
                .decimals
        };
        assert_eq!(find("RG-01", "RAIN_TOTAL"), 1, "0.2 mm per tip");
        assert_eq!(find("RG-01", "BATTERY"), 2, "10 mV steps");
        assert_eq!(find("WL-01", "FREEBOARD"), 2, "derived");
        assert!(m.points.iter().any(|p| p.derived));
        assert_eq!(m.devices.len(), site.devices.len());
    }
}
