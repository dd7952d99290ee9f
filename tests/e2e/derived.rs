//! Warning models end to end, through hazsim and mosquitto: derived points (a rainstorm
//! raising the 1 h rainfall total, a rising pond eating the freeboard) are computed at the
//! edge, sent and judged like measured ones and colour the dam by their monitored item;
//! false data (a stuck value, an impossible jump) is flagged in telemetry and raised as
//! an equipment alarm. Every message validates against docs/schema.

use std::time::Duration;

use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::mqtt::{Broker, Received, Subscriber};
use hazgate_e2e::schema::Schemas;
use hazgate_e2e::{free_port, Sim, Workdir};
use serde_json::{json, Value};

fn site(broker: &str) -> String {
    format!(
        r#"
[site]
id = "T-DRV"
gateway = "gw-drv"
[uplink]
broker = "{broker}"
[store]
dir = "store"
sync_interval = "200ms"

[[hazard_source]]
id = "TD-01"
name = "Tailings dam"
grade = 3
rollup = "gb39496"

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}
timeout = "150ms"

[[device]]
id = "RG-01"
bus = "tcp-1"
unit = 10
profile = "rain-gauge"
hazard_source = "TD-01"
poll = "200ms"

[device.derived.RAIN_1H]
item = "rainfall"
total = {{ of = "RAIN_TOTAL", over = "1h" }}
alarm = {{ limits = [{{ above = 16.0, level = "yellow", label = "1小时降雨达暴雨量级" }}] }}

[[device]]
id = "WL-01"
bus = "tcp-1"
unit = 1
profile = "tailings-pond-level"
hazard_source = "TD-01"
poll = "200ms"

[device.derived.FREEBOARD]
item = "freeboard"
difference = [316.0, "WATER_LEVEL"]
alarm = {{ limits = [{{ below = 2.0, level = "orange" }}, {{ below = 1.5, level = "red" }}], deadband = 0.05 }}

[[device]]
id = "PZ-1"
bus = "tcp-1"
unit = 2
profile = "piezometer"
hazard_source = "TD-01"
poll = "200ms"
report = "every_poll"   # the test reads the flags of every poll

[device.points.BURIED_DEPTH.alarm]
limits = [{{ below = 5.0, level = "yellow" }}]
stuck = {{ samples = 5, level = "blue" }}
jump = {{ change = 1.0, per = "1s", level = "blue" }}
"#,
        tcp = free_port(),
    )
}

struct Rig {
    w: Workdir,
    _broker: Broker,
    sim: Sim,
    sub: Subscriber,
    site: std::path::PathBuf,
    schemas: Schemas,
}

fn rig() -> Rig {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let site = w.write("site.toml", &site(&broker.url()));
    let sim = Sim::start(&site, &[]).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    Rig {
        w,
        _broker: broker,
        sim,
        sub,
        site,
        schemas: Schemas::load().unwrap(),
    }
}

fn of_kind(messages: &[Received], kind: &str, schemas: &Schemas) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.topic.ends_with(&format!("/{kind}")))
        .map(|m| {
            let j = m.json();
            schemas.validate(&j).unwrap();
            j
        })
        .collect()
}

fn readings(messages: &[Received], schemas: &Schemas, device: &str, point: &str) -> Vec<Value> {
    of_kind(messages, "telemetry", schemas)
        .iter()
        .flat_map(|t| t["readings"].as_array().unwrap().clone())
        .filter(|r| r["device"] == device && r["point"] == point)
        .collect()
}

fn event<'a>(events: &'a [Value], point: &str, condition: &str, kind: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["point"] == point && e["condition"] == condition && e["event"] == kind)
}

#[test]
fn a_rainstorm_and_a_rising_pond_raise_their_derived_points() {
    let r = rig();
    let _gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // 25 mm of rain within 4 s: far past 16 mm in the last hour.
    r.sim
        .ctl(
            json!({"device": "RG-01", "point": "RAIN_TOTAL", "ramp": {"to": 1275.4, "over": "4s"}}),
        )
        .unwrap();
    r.sim
        .ctl(json!({"device": "WL-01", "point": "WATER_LEVEL", "set": 314.3}))
        .unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(30), "both derived alarms", |m| {
            let e = of_kind(m, "alarm", &r.schemas);
            event(&e, "RAIN_1H", "limit", "raise").is_some()
                && event(&e, "FREEBOARD", "limit", "raise").is_some()
        })
        .unwrap();
    let events = of_kind(&m, "alarm", &r.schemas);
    let rain = event(&events, "RAIN_1H", "limit", "raise").unwrap();
    assert_eq!(rain["device"], "RG-01");
    assert_eq!(rain["level"], "yellow");
    assert_eq!(rain["unit"], "mm");
    assert!(
        rain["crossed"].as_f64().or(rain["value"].as_f64()).unwrap() >= 16.0,
        "{rain}"
    );
    let fb = event(&events, "FREEBOARD", "limit", "raise").unwrap();
    assert_eq!(fb["level"], "orange", "{fb}");
    assert!((fb["value"].as_f64().unwrap() - 1.7).abs() < 0.01, "{fb}");
    // Derived readings travel like measured ones; the hour is not yet covered and says so.
    let totals = readings(&m, &r.schemas, "RG-01", "RAIN_1H");
    let last = totals.last().unwrap();
    assert_eq!(last["unit"], "mm");
    assert_eq!(last["quality"], "uncertain", "{last}");
    assert_eq!(last["reason"], "partial_window", "{last}");
    let boards = readings(&m, &r.schemas, "WL-01", "FREEBOARD");
    assert!(boards
        .iter()
        .any(|b| (b["value"].as_f64().unwrap() - 1.7).abs() < 0.01));
    // Two items (rainfall yellow, freeboard orange) never pool: the dam takes the highest.
    let m = r
        .sub
        .wait_for(Duration::from_secs(10), "the dam orange", |m| {
            of_kind(m, "alarm", &r.schemas).iter().any(|e| {
                e["condition"] == "rollup"
                    && e["hazard_source"] == "TD-01"
                    && e["level"] == "orange"
            })
        })
        .unwrap();
    assert!(
        !of_kind(&m, "alarm", &r.schemas)
            .iter()
            .any(|e| e["condition"] == "rollup" && e["level"] == "red"),
        "one orange and one yellow item make no red"
    );
}

#[test]
fn stuck_values_and_impossible_jumps_are_flagged_and_raised_as_equipment() {
    let r = rig();
    let _gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // A frozen converter: the same value poll after poll.
    r.sim
        .ctl(json!({"device": "PZ-1", "point": "BURIED_DEPTH", "set": 12.0}))
        .unwrap();
    let m = r
        .sub
        .wait_for(
            Duration::from_secs(20),
            "a stuck_value alarm and flag",
            |m| {
                event(
                    &of_kind(m, "alarm", &r.schemas),
                    "BURIED_DEPTH",
                    "stuck_value",
                    "raise",
                )
                .is_some()
                    && readings(m, &r.schemas, "PZ-1", "BURIED_DEPTH")
                        .iter()
                        .any(|x| x["flags"] == json!(["stuck_value"]))
            },
        )
        .unwrap();
    let before: Vec<Value> = readings(&m, &r.schemas, "PZ-1", "BURIED_DEPTH");
    let first = before
        .iter()
        .position(|x| x["flags"] == json!(["stuck_value"]))
        .unwrap();
    assert!(
        first >= 4
            && before[first - 4..first]
                .iter()
                .all(|x| x["value"] == 12.0 && x.get("flags").is_none()),
        "flagged from the fifth equal sample on: {before:#?}"
    );
    // 12 m to 3 m within one 200 ms poll: faster than the 1 m/s the site allows.
    r.sim
        .ctl(json!({"device": "PZ-1", "point": "BURIED_DEPTH", "set": 3.0}))
        .unwrap();
    let m = r
        .sub
        .wait_for(
            Duration::from_secs(20),
            "the step judged once confirmed",
            |m| {
                event(
                    &of_kind(m, "alarm", &r.schemas),
                    "BURIED_DEPTH",
                    "limit",
                    "raise",
                )
                .is_some()
                    && readings(m, &r.schemas, "PZ-1", "BURIED_DEPTH")
                        .iter()
                        .any(|x| x["value"] == 3.0 && x.get("flags").is_none())
            },
        )
        .unwrap();
    let events = of_kind(&m, "alarm", &r.schemas);
    let position = |c: &str, k: &str| {
        events
            .iter()
            .position(|e| e["point"] == "BURIED_DEPTH" && e["condition"] == c && e["event"] == k)
            .unwrap_or_else(|| panic!("no {c} {k} in {events:#?}"))
    };
    assert!(
        position("impossible_jump", "raise") < position("limit", "raise"),
        "the jumped reading is not judged; the one that confirms it is"
    );
    let jumped: Vec<Value> = readings(&m, &r.schemas, "PZ-1", "BURIED_DEPTH")
        .into_iter()
        .filter(|x| {
            x["flags"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("impossible_jump")))
        })
        .collect();
    assert_eq!(
        jumped.len(),
        1,
        "only the first reading after the step: {jumped:#?}"
    );
    assert_eq!(jumped[0]["value"], 3.0);
    // Neither colours the dam: only the limit (yellow) does.
    assert!(!events
        .iter()
        .any(|e| e["condition"] == "rollup" && e["level"] == "blue"));
}
