//! The alarm engine end to end, through hazsim and mosquitto: a leak ramp raises level 1
//! then level 2 after the on-delay and clears after the off-delay; silence raises comm
//! loss; an NE43 fault current raises a sensor fault; the tailings counting rule; a
//! restart mid-alarm keeps the state; an alarm raised during a broker outage arrives
//! before the telemetry backlog. Every message validates against docs/schema.

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
id = "T-ALM"
gateway = "gw-alm"
[uplink]
broker = "{broker}"
[store]
dir = "store"
sync_interval = "200ms"

[[hazard_source]]
id = "HS-01"
name = "LPG spheres"
grade = 2

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
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
hazard_source = "HS-01"
poll = "200ms"
[device.points.CH1.alarm]
limits = [
  {{ above = 25.0, level = "yellow", label = "一级报警" }},
  {{ above = 50.0, level = "red", label = "二级报警" }},
]
deadband = 1.0
on_delay = "1s"
off_delay = "2s"
sensor_fault = "yellow"
comm_loss = {{ after = "2s", level = "orange" }}
linkage = [{{ level = "red", device = "RO-01", point = "DO3" }}]

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "500ms"

[[device]]
id = "GT-301"
bus = "tcp-1"
unit = 2
profile = "gas-transmitter-4-20ma"
hazard_source = "HS-01"
poll = "200ms"
{piezometers}
"#,
        tcp = free_port(),
        piezometers = (1..=3)
            .map(|i| format!(
                "[[device]]\nid = \"PZ-{i}\"\nbus = \"tcp-1\"\nunit = {}\nprofile = \"piezometer\"\nhazard_source = \"TD-01\"\npoll = \"200ms\"\n[device.points.BURIED_DEPTH.alarm]\nlimits = [{{ below = 5.0, level = \"yellow\" }}, {{ below = 2.0, level = \"red\" }}]\ndeadband = 0.1\ncomm_loss = {{ after = \"1s\", level = \"yellow\" }}\n",
                10 + i
            ))
            .collect::<String>()
    )
}

struct Rig {
    w: Workdir,
    broker: Broker,
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
        broker,
        sim,
        sub,
        site,
        schemas: Schemas::load().unwrap(),
    }
}

/// Alarm events in arrival order, validated against the schema.
fn alarms(messages: &[Received], schemas: &Schemas) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.topic.ends_with("/alarm"))
        .map(|m| {
            let j = m.json();
            schemas.validate(&j).unwrap();
            j
        })
        .collect()
}

fn point_events<'a>(
    events: &'a [Value],
    device: &str,
    point: &str,
    condition: &str,
) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["device"] == device && e["point"] == point && e["condition"] == condition)
        .collect()
}

fn has(events: &[Value], device: &str, point: &str, condition: &str, event: &str) -> bool {
    point_events(events, device, point, condition)
        .iter()
        .any(|e| e["event"] == event)
}

#[test]
fn leak_ramp_raises_both_levels_then_clears_with_delays() {
    let r = rig();
    let mut gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "ramp": {"to": 60.0, "over": "12s"}}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(30), "red", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "escalate")
        })
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "ramp": {"to": 0.0, "over": "12s"}}))
        .unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(40), "clear", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "clear")
        })
        .unwrap();
    let events = alarms(&m, &r.schemas);
    let ch1 = point_events(&events, "GD-101", "CH1", "limit");
    let kinds: Vec<&str> = ch1.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["raise", "escalate", "deescalate", "clear"],
        "{ch1:#?}"
    );
    assert_eq!(ch1[0]["level"], "yellow");
    assert_eq!(ch1[0]["label"], "一级报警");
    assert_eq!(ch1[1]["level"], "red");
    assert_eq!(ch1[1]["previous"], "yellow");
    assert_eq!(ch1[3]["level"], Value::Null);
    // The on-delay: raised only once the value had stayed above 25 for a second, so the
    // value at raise is well above the limit on a 12 s ramp (about 4.2 %LEL per second).
    assert!(ch1[0]["value"].as_f64().unwrap() >= 27.0, "{}", ch1[0]);
    assert!(ch1[1]["value"].as_f64().unwrap() >= 52.0, "{}", ch1[1]);
    // The hazard source and the site follow.
    assert!(events.iter().any(|e| e["condition"] == "rollup"
        && e["hazard_source"] == "HS-01"
        && e["level"] == "red"));
    assert!(events.iter().any(|e| e["condition"] == "rollup"
        && e["hazard_source"].is_null()
        && e["level"] == "red"));
    // The retained state says the situation now: cleared.
    let states: Vec<Value> = m
        .iter()
        .filter(|m| m.topic.ends_with("/state"))
        .map(|m| m.json())
        .collect();
    states.iter().for_each(|s| r.schemas.validate(s).unwrap());
    assert!(states.iter().any(|s| s["level"] == "red"
        && s["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["point"] == "CH1")));
    assert!(gw.stop(Duration::from_secs(10)));
}

#[test]
fn noise_within_the_deadband_gives_one_raise_and_one_clear() {
    let r = rig();
    let mut gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Around the 25 %LEL limit, within the 1 %LEL deadband.
    for v in [25.5, 24.6, 25.8, 24.3, 25.2, 24.5, 25.9] {
        r.sim
            .ctl(json!({"device": "GD-101", "point": "CH1", "set": v}))
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
    }
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 10.0}))
        .unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(20), "clear", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "clear")
        })
        .unwrap();
    let events = alarms(&m, &r.schemas);
    let kinds: Vec<&str> = point_events(&events, "GD-101", "CH1", "limit")
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["raise", "clear"]);
    assert!(gw.stop(Duration::from_secs(10)));
}

#[test]
fn silence_and_sensor_faults_are_alarms() {
    let r = rig();
    let mut gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    r.sim
        .ctl(json!({"device": "GD-101", "fault": {"kind": "silent"}}))
        .unwrap();
    r.sim
        .ctl(json!({"device": "GT-301", "point": "GAS", "fault": {"kind": "sensor_fault"}}))
        .unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(20), "comm loss and sensor fault", |m| {
            let e = alarms(m, &r.schemas);
            has(&e, "GD-101", "CH1", "comm_loss", "raise")
                && has(&e, "GT-301", "GAS", "sensor_fault", "raise")
        })
        .unwrap();
    let events = alarms(&m, &r.schemas);
    assert_eq!(
        point_events(&events, "GD-101", "CH1", "comm_loss")[0]["level"],
        "orange"
    );
    r.sim
        .ctl(json!({"device": "GD-101", "clear_fault": true}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(20), "comm loss cleared", |m| {
            has(
                &alarms(m, &r.schemas),
                "GD-101",
                "CH1",
                "comm_loss",
                "clear",
            )
        })
        .unwrap();
    assert!(gw.stop(Duration::from_secs(10)));
}

#[test]
fn three_yellow_points_make_a_tailings_item_orange() {
    let r = rig();
    let mut gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    for i in 1..=3 {
        r.sim
            .ctl(json!({"device": format!("PZ-{i}"), "point": "BURIED_DEPTH", "set": 4.0}))
            .unwrap();
    }
    let m = r
        .sub
        .wait_for(Duration::from_secs(20), "TD-01 orange", |m| {
            alarms(m, &r.schemas).iter().any(|e| {
                e["condition"] == "rollup"
                    && e["hazard_source"] == "TD-01"
                    && e["level"] == "orange"
            })
        })
        .unwrap();
    let events = alarms(&m, &r.schemas);
    for i in 1..=3 {
        assert_eq!(
            point_events(&events, &format!("PZ-{i}"), "BURIED_DEPTH", "limit")[0]["level"],
            "yellow"
        );
    }
    assert!(gw.stop(Duration::from_secs(10)));
}

/// A 4G DTU outage silences every piezometer of the dam: three comm-loss alarms reach
/// people, but an equipment fault never colours the dam (three yellow comm-loss points
/// made it orange before).
#[test]
fn a_dtu_outage_raises_comm_loss_but_leaves_the_dams_colour() {
    let r = rig();
    let _gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    for i in 1..=3 {
        r.sim
            .ctl(json!({"device": format!("PZ-{i}"), "fault": {"kind": "silent"}}))
            .unwrap();
    }
    let m = r
        .sub
        .wait_for(Duration::from_secs(20), "three comm-loss alarms", |m| {
            let e = alarms(m, &r.schemas);
            (1..=3).all(|i| has(&e, &format!("PZ-{i}"), "BURIED_DEPTH", "comm_loss", "raise"))
        })
        .unwrap();
    // Give a roll-up every chance to follow: none may.
    std::thread::sleep(Duration::from_secs(2));
    let events = alarms(&r.sub.snapshot(), &r.schemas);
    assert!(
        !events.iter().any(|e| e["condition"] == "rollup"),
        "an equipment fault coloured the dam or the site: {events:#?}"
    );
    let state = m
        .iter()
        .rev()
        .find(|m| m.topic.ends_with("/state"))
        .unwrap()
        .json();
    assert_eq!(state["level"], Value::Null, "{state}");
    let comm: Vec<_> = state["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["condition"] == "comm_loss")
        .collect();
    assert_eq!(
        comm.len(),
        3,
        "the alarms themselves are in the state: {state}"
    );
}

#[test]
fn restart_mid_alarm_keeps_the_state() {
    let r = rig();
    let log = r.w.path().join("gw.log");
    let mut gw = Gateway::start(&r.site, &log).unwrap();
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 55.0}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(20), "red", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "raise")
        })
        .unwrap();
    assert!(gw.stop(Duration::from_secs(10)));
    gw.restart().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let events = alarms(&r.sub.snapshot(), &r.schemas);
    let kinds: Vec<&str> = point_events(&events, "GD-101", "CH1", "limit")
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["raise"],
        "after a restart mid-alarm: no second raise, no spurious clear"
    );
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 5.0}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(20), "clear", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "clear")
        })
        .unwrap();
    assert!(gw.stop(Duration::from_secs(10)));
}

#[test]
fn alarm_raised_during_an_outage_arrives_before_the_backlog() {
    let mut r = rig();
    let mut gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    r.broker.stop();
    let outage_from = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    std::thread::sleep(Duration::from_secs(3));
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 55.0}))
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    r.broker.restart().unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(60), "the alarm", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "raise")
        })
        .unwrap();
    // Backlog: telemetry acquired during the outage. Messages of before it may still trickle in.
    let backlog = |m: &Received| {
        m.topic.ends_with("/telemetry")
            && m.json()["readings"].as_array().is_some_and(|r| {
                r.iter()
                    .all(|r| r["ts"].as_i64().unwrap_or(0) >= outage_from)
            })
    };
    let first_alarm = m.iter().position(|m| m.topic.ends_with("/alarm")).unwrap();
    let first_backlog = m.iter().position(backlog);
    assert!(
        first_backlog.is_none_or(|t| first_alarm < t),
        "the alarm came after the backlog: alarm at {first_alarm}, backlog from {first_backlog:?}"
    );
    assert!(gw.stop(Duration::from_secs(10)));
}

fn coil(sim: &Sim, device: &str, point: &str) -> f64 {
    let reply = sim
        .ctl(json!({"device": device, "point": point, "read": true}))
        .unwrap();
    match &reply["value"] {
        Value::Bool(b) => f64::from(u8::from(*b)),
        v => v.as_f64().unwrap_or(f64::NAN),
    }
}

fn wait_coil(sim: &Sim, want: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while coil(sim, "RO-01", "DO3") != want {
        assert!(
            std::time::Instant::now() < deadline,
            "RO-01.DO3 never became {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn red_sets_the_linkage_coil_and_clear_releases_it() {
    let r = rig();
    let mut gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(coil(&r.sim, "RO-01", "DO3"), 0.0);
    // Yellow alone does not close the valve.
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 30.0}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(15), "yellow", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "raise")
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(coil(&r.sim, "RO-01", "DO3"), 0.0);
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 55.0}))
        .unwrap();
    wait_coil(&r.sim, 1.0);
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 5.0}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(15), "clear", |m| {
            has(&alarms(m, &r.schemas), "GD-101", "CH1", "limit", "clear")
        })
        .unwrap();
    wait_coil(&r.sim, 0.0);
    assert!(gw.stop(Duration::from_secs(10)));
}

#[test]
fn an_output_that_cannot_be_written_is_an_alarm_until_it_is() {
    let r = rig();
    let mut gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    r.sim
        .ctl(json!({"device": "RO-01", "fault": {"kind": "silent"}}))
        .unwrap();
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 55.0}))
        .unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(20), "linkage failure", |m| {
            has(
                &alarms(m, &r.schemas),
                "GD-101",
                "CH1",
                "linkage_failed",
                "raise",
            )
        })
        .unwrap();
    assert_eq!(
        point_events(&alarms(&m, &r.schemas), "GD-101", "CH1", "linkage_failed")[0]["level"],
        "red"
    );
    r.sim
        .ctl(json!({"device": "RO-01", "clear_fault": true}))
        .unwrap();
    wait_coil(&r.sim, 1.0);
    r.sub
        .wait_for(Duration::from_secs(20), "linkage recovered", |m| {
            has(
                &alarms(m, &r.schemas),
                "GD-101",
                "CH1",
                "linkage_failed",
                "clear",
            )
        })
        .unwrap();
    assert!(gw.stop(Duration::from_secs(10)));
}

/// GB 51108: an abnormal state is measured more often. A piezometer polled every 3 s is
/// polled every 500 ms while one of its points is in a process alarm, and every 3 s again
/// once it clears.
#[test]
fn a_device_in_alarm_is_polled_faster_until_it_clears() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let site = w.write(
        "site.toml",
        &format!(
            r#"
[site]
id = "T-FAST"
gateway = "gw-fast"
[uplink]
broker = "{broker}"
[store]
dir = "store"
sync_interval = "200ms"
[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}
timeout = "150ms"
[[device]]
id = "PZ-1"
bus = "tcp-1"
unit = 1
profile = "piezometer"
poll = "3s"
poll_in_alarm = "500ms"
report = "every_poll"           # the test counts polls by their readings
[device.points.BURIED_DEPTH.alarm]
limits = [{{ below = 5.0, level = "yellow" }}]
deadband = 0.1
"#,
            broker = broker.url(),
            tcp = free_port()
        ),
    );
    let sim = Sim::start(&site, &[]).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/+/+/telemetry").unwrap();
    let _gw = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    let depth_readings = |m: &[Received]| -> Vec<i64> {
        m.iter()
            .flat_map(|m| m.json()["readings"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["point"] == "BURIED_DEPTH")
            .filter_map(|r| r["ts"].as_i64())
            .collect()
    };
    let count_over = |secs: u64| {
        let before = depth_readings(&sub.snapshot()).len();
        std::thread::sleep(Duration::from_secs(secs));
        depth_readings(&sub.snapshot()).len() - before
    };
    std::thread::sleep(Duration::from_secs(2));
    let calm = count_over(6);
    assert!(calm <= 3, "every 3 s while calm: {calm} readings in 6 s");
    sim.ctl(json!({"device": "PZ-1", "point": "BURIED_DEPTH", "set": 4.0}))
        .unwrap();
    // Picked up at the next 3 s poll; from then on every 500 ms.
    std::thread::sleep(Duration::from_secs(4));
    let abnormal = count_over(6);
    assert!(
        abnormal >= 9,
        "every 500 ms in alarm: {abnormal} readings in 6 s"
    );
    sim.ctl(json!({"device": "PZ-1", "point": "BURIED_DEPTH", "set": 8.0}))
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let again = count_over(6);
    assert!(
        again <= 3,
        "every 3 s once cleared: {again} readings in 6 s"
    );
}

/// A channel whose unit-code register switches to ppm is not judged against its %LEL
/// ladder: 30 "ppm" raises no gas alarm, but a sensor fault until the unit is right.
#[test]
fn a_reading_in_another_unit_than_the_limits_is_a_sensor_fault_not_a_gas_alarm() {
    let r = rig();
    let _gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1_UNIT", "set": 1.0}))
        .unwrap();
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 30.0}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(10), "sensor fault", |m| {
            has(
                &alarms(m, &r.schemas),
                "GD-101",
                "CH1",
                "sensor_fault",
                "raise",
            )
        })
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let events = alarms(&r.sub.snapshot(), &r.schemas);
    assert!(
        !has(&events, "GD-101", "CH1", "limit", "raise"),
        "30 ppm judged against 25 %LEL: {events:#?}"
    );
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1_UNIT", "set": 4.0}))
        .unwrap();
    r.sub
        .wait_for(Duration::from_secs(10), "the unit right again", |m| {
            let e = alarms(m, &r.schemas);
            has(&e, "GD-101", "CH1", "sensor_fault", "clear")
                && has(&e, "GD-101", "CH1", "limit", "raise")
        })
        .unwrap();
}
