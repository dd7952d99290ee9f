//! `hazgate poll` against `hazsim` over Modbus TCP, RTU on a pseudo-terminal and RTU over
//! TCP: right values, and for every fault the right quality and reason, with the other
//! devices on the line unaffected.

use std::time::{Duration, Instant};

use hazgate_e2e::{find, free_port, poll, Sim, Workdir};
use hazgate_wire::{Quality, Reading, Reason, Value};
use serde_json::json;

/// A site with all three link kinds; returns the workdir (keeps files alive) and the site.
fn site() -> (Workdir, std::path::PathBuf) {
    let w = Workdir::new();
    let tty = w.path().join("ttyRS485-1");
    let text = format!(
        r#"
[site]
id = "T-0001"
gateway = "gw-test"

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}
timeout = "400ms"

[[bus]]
id = "rs485-1"
rtu = {{ port = "{tty}", baud = 19200, parity = "none" }}
timeout = "400ms"

[[bus]]
id = "dtu-1"
rtu_over_tcp = {{ host = "127.0.0.1", port = {dtu} }}
timeout = "400ms"

[[device]]
id = "PT-201"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"

[[device]]
id = "GT-301"
bus = "tcp-1"
unit = 2
profile = "gas-transmitter-4-20ma"
poll = "1s"

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "2s"

[[device]]
id = "GD-102"
bus = "rs485-1"
unit = 2
profile = "gas-detector-4ch"
poll = "2s"

[[device]]
id = "TT-401"
bus = "rs485-1"
unit = 3
profile = "temperature-transmitter"
poll = "2s"

[[device]]
id = "PZ-01"
bus = "dtu-1"
unit = 1
profile = "piezometer"
poll = "10s"

[[device]]
id = "RG-01"
bus = "dtu-1"
unit = 2
profile = "rain-gauge"
poll = "10s"
"#,
        tcp = free_port(),
        dtu = free_port(),
        tty = tty.display()
    );
    let path = w.write("site.toml", &text);
    (w, path)
}

fn number(r: &Reading) -> f64 {
    match &r.value {
        Some(Value::Number(x)) => *x,
        other => panic!(
            "{}.{} has no number: {other:?} ({:?})",
            r.device, r.point, r.quality
        ),
    }
}

fn assert_reason(r: &Reading, bad: bool, reason: Reason) {
    let ok = match &r.quality {
        Quality::Bad { reason: got, .. } => bad && *got == reason,
        Quality::Uncertain { reason: got, .. } => !bad && *got == reason,
        Quality::Good => false,
    };
    assert!(
        ok,
        "{}.{}: expected {} {reason}, got {:?}",
        r.device,
        r.point,
        if bad { "bad" } else { "uncertain" },
        r.quality
    );
    if bad {
        assert_eq!(r.value, None, "a bad reading carries no value");
    }
}

fn all_good(readings: &[Reading], device: &str) {
    let mine: Vec<_> = readings.iter().filter(|r| &*r.device == device).collect();
    assert!(!mine.is_empty(), "no readings for {device}");
    for r in mine {
        assert!(
            r.quality.is_good(),
            "{}.{} is not good: {:?}",
            r.device,
            r.point,
            r.quality
        );
    }
}

#[test]
fn every_link_kind_reads_set_values() {
    let (_w, site) = site();
    let sim = Sim::start(&site, &[]).unwrap();
    sim.ctl(json!({"device": "PT-201", "point": "PRESSURE", "set": 1.6}))
        .unwrap();
    sim.ctl(json!({"device": "GT-301", "point": "GAS", "set": 25.0}))
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 12.3}))
        .unwrap();
    sim.ctl(json!({"device": "TT-401", "point": "TEMPERATURE", "set": -12.5}))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the simulator refreshes its registers on a tick
    let readings = poll(&site, None).unwrap();
    for d in [
        "PT-201", "GT-301", "GD-101", "GD-102", "TT-401", "PZ-01", "RG-01",
    ] {
        all_good(&readings, d);
    }
    assert_eq!(number(find(&readings, "PT-201", "PRESSURE")), 1.6);
    assert!((number(find(&readings, "GT-301", "GAS")) - 25.0).abs() < 0.01);
    let ch1 = find(&readings, "GD-101", "CH1");
    assert_eq!(number(ch1), 12.3);
    assert_eq!(
        ch1.unit.as_deref(),
        Some("%LEL"),
        "unit from the unit code register"
    );
    assert_eq!(number(find(&readings, "TT-401", "TEMPERATURE")), -12.5);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        readings.iter().all(|r| (now - r.ts).abs() < 10_000),
        "acquisition times are now"
    );
}

#[test]
fn one_device_polled_alone() {
    let (_w, site) = site();
    let _sim = Sim::start(&site, &[]).unwrap();
    let readings = poll(&site, Some("PZ-01")).unwrap();
    assert!(readings.iter().all(|r| &*r.device == "PZ-01") && !readings.is_empty());
}

#[test]
fn silent_rtu_device_costs_only_its_timeout() {
    let (_w, site) = site();
    let sim = Sim::start(&site, &[]).unwrap();
    sim.ctl(json!({"device": "GD-102", "fault": {"kind": "silent"}}))
        .unwrap();
    let started = Instant::now();
    let readings = poll(&site, None).unwrap();
    let took = started.elapsed();
    for r in readings.iter().filter(|r| &*r.device == "GD-102") {
        assert_reason(r, true, Reason::Timeout);
    }
    all_good(&readings, "GD-101");
    all_good(&readings, "TT-401");
    // GD-102 needs four requests; were each to wait out its 400ms timeout, that alone is 1.6s.
    assert!(took < Duration::from_millis(1300), "poll took {took:?}");
}

#[test]
fn exceptions_and_corrupt_frames_are_named() {
    let (_w, site) = site();
    let sim = Sim::start(&site, &[]).unwrap();
    sim.ctl(json!({"device": "PT-201", "fault": {"kind": "exception", "code": 2}}))
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "fault": {"kind": "corrupt"}}))
        .unwrap();
    sim.ctl(json!({"device": "PZ-01", "fault": {"kind": "corrupt"}}))
        .unwrap();
    let readings = poll(&site, None).unwrap();
    let pt = find(&readings, "PT-201", "PRESSURE");
    assert_reason(pt, true, Reason::Exception);
    assert!(
        format!("{:?}", pt.quality).contains("illegal data address"),
        "{:?}",
        pt.quality
    );
    assert_reason(find(&readings, "GD-101", "CH1"), true, Reason::Crc);
    assert_reason(find(&readings, "PZ-01", "PRESSURE"), true, Reason::Crc);
    all_good(&readings, "GT-301");
    all_good(&readings, "GD-102");
    all_good(&readings, "TT-401");
    all_good(&readings, "RG-01");

    sim.ctl(json!({"device": "PT-201", "fault": {"kind": "corrupt"}}))
        .unwrap();
    let readings = poll(&site, None).unwrap();
    assert_reason(find(&readings, "PT-201", "PRESSURE"), true, Reason::Framing);
    all_good(&readings, "GT-301");

    for d in ["PT-201", "GD-101", "PZ-01"] {
        sim.ctl(json!({"device": d, "clear_fault": true})).unwrap();
    }
    let readings = poll(&site, None).unwrap();
    for d in ["PT-201", "GD-101", "PZ-01"] {
        all_good(&readings, d);
    }
}

#[test]
fn slow_replies_time_out_and_the_line_recovers() {
    let (_w, site) = site();
    let sim = Sim::start(&site, &[]).unwrap();
    sim.ctl(json!({"device": "GD-101", "fault": {"kind": "slow", "delay": "600ms"}}))
        .unwrap();
    let readings = poll(&site, None).unwrap();
    assert_reason(find(&readings, "GD-101", "CH1"), true, Reason::Timeout);
    // GD-101's late reply must not be taken for GD-102's answer.
    all_good(&readings, "GD-102");
    all_good(&readings, "TT-401");
}

#[test]
fn sensor_faults_and_out_of_range() {
    let (_w, site) = site();
    let sim = Sim::start(&site, &[]).unwrap();
    sim.ctl(json!({"device": "GT-301", "point": "GAS", "fault": {"kind": "sensor_fault"}}))
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "fault": {"kind": "sensor_fault"}}))
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "point": "CH2", "fault": {"kind": "status", "code": 4}}))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let readings = poll(&site, None).unwrap();
    let gas = find(&readings, "GT-301", "GAS");
    assert_reason(gas, true, Reason::SensorFault);
    assert!(
        format!("{:?}", gas.quality).contains("NE43"),
        "{:?}",
        gas.quality
    );
    assert_reason(find(&readings, "GD-101", "CH1"), true, Reason::SensorFault);
    assert_reason(find(&readings, "GD-101", "CH2"), false, Reason::StatusCode);
    assert!(find(&readings, "GD-101", "CH3").quality.is_good());

    sim.ctl(json!({"device": "GT-301", "point": "GAS", "clear_fault": true}))
        .unwrap();
    sim.ctl(json!({"device": "GT-301", "point": "GAS", "fault": {"kind": "out_of_range"}}))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let readings = poll(&site, Some("GT-301")).unwrap();
    let gas = find(&readings, "GT-301", "GAS");
    assert_reason(gas, false, Reason::OutOfRange);
    assert!(gas.value.is_some(), "an uncertain reading keeps its value");
}

#[test]
fn refused_connection_is_named() {
    let w = Workdir::new();
    let site = w.write(
        "site.toml",
        &format!(
            r#"
[site]
id = "T-0002"
gateway = "gw-test"
[[bus]]
id = "tcp-dead"
tcp = {{ host = "127.0.0.1", port = {} }}
[[device]]
id = "PT-9"
bus = "tcp-dead"
unit = 1
profile = "pressure-transmitter-f32"
poll = "5s"
"#,
            free_port()
        ),
    );
    let readings = poll(&site, None).unwrap();
    assert_reason(
        find(&readings, "PT-9", "PRESSURE"),
        true,
        Reason::ConnectionRefused,
    );
}
