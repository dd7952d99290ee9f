//! Messages to InfluxDB line protocol. Tags are exactly the store's key (site, gateway,
//! device, point) plus what names the series (unit; for alarms condition, event, level), so
//! a redelivered message writes the same series at the same time and overwrites itself.
//! Only numeric fields: VictoriaMetrics would turn a string field into a series of zeros.
//! Timestamps are milliseconds: write with precision `ms`.

use std::io::Write;

use hazgate_wire::{AlarmEvent, Gap, Level, Quality, Reading, Telemetry, Value};

pub const READING: &str = "reading";
pub const ALARM: &str = "alarm";
pub const GAP: &str = "gap";
pub const STATS: &str = "stats";

/// 1 blue .. 4 red; 0 after a clear.
pub fn level_code(level: Option<Level>) -> u8 {
    level.map_or(0, |l| l as u8 + 1)
}

/// 0 good, 1 uncertain, 2 bad.
pub fn quality_code(q: &Quality) -> u8 {
    match q {
        Quality::Good => 0,
        Quality::Uncertain { .. } => 1,
        Quality::Bad { .. } => 2,
    }
}

/// Appends one line per reading; returns how many.
pub fn telemetry(buf: &mut Vec<u8>, t: &Telemetry) -> usize {
    for r in &t.readings {
        reading(buf, &t.envelope.site, &t.envelope.gateway, r);
    }
    t.readings.len()
}

fn reading(buf: &mut Vec<u8>, site: &str, gateway: &str, r: &Reading) {
    buf.extend_from_slice(READING.as_bytes());
    tag(buf, "site", site);
    tag(buf, "gateway", gateway);
    tag(buf, "device", &r.device);
    tag(buf, "point", &r.point);
    if let Some(u) = &r.unit {
        tag(buf, "unit", u);
    }
    let _ = write!(buf, " quality={}i", quality_code(&r.quality));
    if let Some(reason) = r.quality.reason() {
        let _ = write!(buf, ",reason={}i", reason.code());
    }
    if let Some(x) = r.value.as_ref().and_then(Value::as_f64) {
        let _ = write!(buf, ",value={x}");
    }
    let flags: u32 = r.flags.iter().map(|f| f.bit()).fold(0, |a, b| a | b);
    if flags != 0 {
        let _ = write!(buf, ",flags={flags}i");
    }
    let _ = writeln!(buf, " {}", r.ts);
}

/// One line per alarm event.
pub fn alarm(buf: &mut Vec<u8>, a: &AlarmEvent) -> usize {
    buf.extend_from_slice(ALARM.as_bytes());
    tag(buf, "site", &a.envelope.site);
    tag(buf, "gateway", &a.envelope.gateway);
    if let (Some(d), Some(p)) = (&a.device, &a.point) {
        tag(buf, "device", d);
        tag(buf, "point", p);
    }
    if let Some(h) = &a.hazard_source {
        tag(buf, "hazard_source", h);
    }
    tag(buf, "condition", &snake(&a.condition));
    tag(buf, "event", &snake(&a.event));
    if let Some(l) = a.level {
        tag(buf, "level", l.name());
    }
    if let Some(l) = a.previous {
        tag(buf, "previous", l.name());
    }
    if let Some(u) = &a.unit {
        tag(buf, "unit", u);
    }
    if let Some(l) = &a.label {
        tag(buf, "label", l);
    }
    let _ = write!(
        buf,
        " level_code={}i,seq={}i",
        level_code(a.level),
        a.envelope.seq
    );
    if let Some(x) = a.value {
        let _ = write!(buf, ",value={x}");
    }
    if let Some(x) = a.crossed {
        let _ = write!(buf, ",crossed={x}");
    }
    if let Some(x) = a.limit {
        let _ = write!(buf, ",limit={x}");
    }
    if let Some(o) = &a.occurrence {
        string_field(buf, "occurrence", o);
    }
    if let Some(ack) = &a.ack {
        string_field(buf, "ack_by", &ack.by);
    }
    let _ = writeln!(buf, " {}", a.ts);
    1
}

/// `,key="value"`: a string field, with its quotes and backslashes escaped. Intake has
/// already refused control characters in what is stored this way.
fn string_field(buf: &mut Vec<u8>, key: &str, value: &str) {
    buf.push(b',');
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"=\"");
    for b in value.bytes() {
        if matches!(b, b'"' | b'\\') {
            buf.push(b'\\');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

/// One line per data gap, at the first lost acquisition time.
pub fn gap(buf: &mut Vec<u8>, g: &Gap) -> usize {
    buf.extend_from_slice(GAP.as_bytes());
    tag(buf, "site", &g.envelope.site);
    tag(buf, "gateway", &g.envelope.gateway);
    let _ = write!(
        buf,
        " to_ts={}i,first_seq={}i,last_seq={}i,messages={}i",
        g.to_ts, g.first_seq, g.last_seq, g.messages
    );
    if g.unconfirmed {
        buf.extend_from_slice(b",unconfirmed=1i");
    }
    let _ = writeln!(buf, " {}", g.from_ts);
    1
}

/// One line per point and five-minute period, at the period's start: `samples` and `good`
/// always, `min`, `max` and `mean` when there were good values. Sent again, it overwrites
/// itself (same tags and time).
pub fn stats(buf: &mut Vec<u8>, s: &hazgate_wire::Stats) -> usize {
    for p in &s.points {
        buf.extend_from_slice(STATS.as_bytes());
        tag(buf, "site", &s.envelope.site);
        tag(buf, "gateway", &s.envelope.gateway);
        tag(buf, "device", &p.device);
        tag(buf, "point", &p.point);
        if let Some(u) = &p.unit {
            tag(buf, "unit", u);
        }
        let _ = write!(buf, " samples={}i,good={}i", p.samples, p.good);
        for (k, v) in [("min", p.min), ("max", p.max), ("mean", p.mean)] {
            if let Some(v) = v {
                let _ = write!(buf, ",{k}={v}");
            }
        }
        let _ = writeln!(buf, " {}", s.from_ts);
    }
    s.points.len()
}

/// The wire name of an enum, e.g. `comm_loss`: the same words in the store as on the wire.
fn snake<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from("unknown"),
    }
}

/// `,key=value` with the line protocol's escapes. Intake has already refused control
/// characters, so a value can never break a line.
fn tag(buf: &mut Vec<u8>, key: &str, value: &str) {
    buf.push(b',');
    buf.extend_from_slice(key.as_bytes());
    buf.push(b'=');
    for b in value.bytes() {
        if matches!(b, b',' | b'=' | b' ' | b'\\') {
            buf.push(b'\\');
        }
        buf.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazgate_wire::{Condition, Envelope, EventKind, Reason};

    fn envelope() -> Envelope {
        Envelope {
            v: 1,
            site: "HB-1".into(),
            gateway: "gw-01".into(),
            seq: 9,
        }
    }

    #[test]
    fn a_calibration_reading_keeps_its_flag() {
        let t = Telemetry {
            envelope: envelope(),
            readings: vec![Reading {
                device: "CH4-T1".into(),
                point: "CH4".into(),
                ts: 1_700_000_000_000,
                value: Some(Value::Number(2.0)),
                unit: Some("%CH4".into()),
                quality: Quality::uncertain(Reason::StatusCode, "status 4: calibrating"),
                flags: vec![hazgate_wire::Flag::Calibration],
            }],
        };
        let mut buf = Vec::new();
        telemetry(&mut buf, &t);
        let line = String::from_utf8(buf).unwrap();
        assert!(line.contains(",flags=1i "), "{line}");
    }

    #[test]
    fn readings_good_and_bad() {
        let t = Telemetry {
            envelope: envelope(),
            readings: vec![
                Reading {
                    device: "GD-101".into(),
                    point: "CH1".into(),
                    ts: 1_700_000_000_000,
                    value: Some(Value::Number(12.5)),
                    unit: Some("%LEL".into()),
                    quality: Quality::Good,
                    flags: Vec::new(),
                },
                Reading {
                    device: "PT-201".into(),
                    point: "P".into(),
                    ts: 1_700_000_000_001,
                    value: None,
                    unit: Some("m H2O, abs".into()),
                    quality: Quality::bad(Reason::Timeout, "no reply"),
                    flags: Vec::new(),
                },
            ],
        };
        let mut buf = Vec::new();
        assert_eq!(telemetry(&mut buf, &t), 2);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "reading,site=HB-1,gateway=gw-01,device=GD-101,point=CH1,unit=%LEL quality=0i,value=12.5 1700000000000\n\
             reading,site=HB-1,gateway=gw-01,device=PT-201,point=P,unit=m\\ H2O\\,\\ abs quality=2i,reason=6i 1700000000001\n"
        );
    }

    #[test]
    fn alarm_and_gap() {
        let a = AlarmEvent {
            envelope: envelope(),
            event: EventKind::Raise,
            condition: Condition::CommLoss,
            device: Some("GD-101".into()),
            point: Some("CH1".into()),
            hazard_source: Some("HS-01".into()),
            level: Some(Level::Red),
            previous: None,
            value: Some(52.0),
            crossed: None,
            limit: Some(50.0),
            unit: None,
            label: Some("二级 报警".into()),
            ts: 5,
            ack: None,
            occurrence: None,
        };
        let mut buf = Vec::new();
        alarm(&mut buf, &a);
        gap(
            &mut buf,
            &Gap {
                envelope: envelope(),
                from_ts: 10,
                to_ts: 20,
                first_seq: 3,
                last_seq: 4,
                messages: 2,
                unconfirmed: false,
            },
        );
        gap(
            &mut buf,
            &Gap {
                envelope: envelope(),
                from_ts: 30,
                to_ts: 40,
                first_seq: 5,
                last_seq: 5,
                messages: 1,
                unconfirmed: true,
            },
        );
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "alarm,site=HB-1,gateway=gw-01,device=GD-101,point=CH1,hazard_source=HS-01,condition=comm_loss,event=raise,level=red,label=二级\\ 报警 level_code=4i,seq=9i,value=52,limit=50 5\n\
             gap,site=HB-1,gateway=gw-01 to_ts=20i,first_seq=3i,last_seq=4i,messages=2i 10\n\
             gap,site=HB-1,gateway=gw-01 to_ts=40i,first_seq=5i,last_seq=5i,messages=1i,unconfirmed=1i 30\n"
        );
    }

    /// The tags of a line as a line-protocol reader splits and unescapes them.
    fn read_tags(line: &str) -> Vec<(String, String)> {
        let mut parts = Vec::new();
        let (mut current, mut escaped) = (String::new(), false);
        for c in line.chars() {
            match (escaped, c) {
                (true, c) => {
                    current.push(c);
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, ',') => parts.push(std::mem::take(&mut current)),
                (false, ' ') => break,
                (false, c) => current.push(c),
            }
        }
        parts.push(current);
        parts
            .into_iter()
            .skip(1)
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    proptest::proptest! {
        /// Any printable unit and label survive the escapes, and every reading is one line.
        #[test]
        fn escapes_round_trip(unit in "[^\\p{Cc}]{1,20}", label in "[^\\p{Cc}]{1,20}", n in 0usize..20) {
            let t = Telemetry {
                envelope: envelope(),
                readings: (0..n).map(|i| Reading {
                    device: format!("D-{i}").into(),
                    point: "P".into(),
                    ts: i as i64,
                    value: Some(Value::Number(i as f64 / 3.0)),
                    unit: Some(unit.as_str().into()),
                    quality: Quality::Good,
                    flags: Vec::new(),
                }).collect(),
            };
            let mut buf = Vec::new();
            proptest::prop_assert_eq!(telemetry(&mut buf, &t), n);
            let text = String::from_utf8(buf).unwrap();
            proptest::prop_assert_eq!(text.lines().count(), n);
            for line in text.lines() {
                let tags = read_tags(line);
                proptest::prop_assert_eq!(&tags[4], &("unit".to_string(), unit.clone()));
            }
            let mut buf = Vec::new();
            let a = AlarmEvent {
                envelope: envelope(),
                event: EventKind::Clear,
                condition: Condition::Limit,
                device: None,
                point: None,
                hazard_source: None,
                level: None,
                previous: Some(Level::Yellow),
                value: None,
                crossed: None,
                limit: None,
                unit: None,
                label: Some(label.clone()),
                ts: 1,
                ack: None,
                occurrence: None,
            };
            alarm(&mut buf, &a);
            let text = String::from_utf8(buf).unwrap();
            let tags = read_tags(&text);
            proptest::prop_assert_eq!(tags.last().unwrap(), &("label".to_string(), label));
        }
    }
}
