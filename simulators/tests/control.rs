//! The control socket, scenarios running in simulated time, and a clean exit.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{eventually, Sim, BIN};

#[test]
fn control_protocol() {
    let sim = Sim::start(&[]);
    let v = sim.ctl(r#"{"device":"GD-999","point":"CH1","set":1.0}"#);
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("no device \"GD-999\""),
        "{v}"
    );
    let v = sim.ctl(r#"{"device":"GD-101","point":"CH9","set":1.0}"#);
    assert!(
        v["error"].as_str().unwrap().contains("no point \"CH9\""),
        "{v}"
    );
    let v = sim.ctl("{not json");
    assert_eq!(v["ok"], false);
    let v = sim.ctl(r#"{"device":"GD-101","point":"CH1","set":1.0,"at":"5s"}"#);
    assert_eq!(v["field"], "at");
    let v = sim.ctl(r#"{"device":"GD-101","point":"CH1"}"#);
    assert!(
        v["error"].as_str().unwrap().contains("exactly one action"),
        "{v}"
    );
    let v = sim.ctl(r#"{"device":"GD-101","point":"CH1","sett":1.0}"#);
    assert!(
        v["error"].as_str().unwrap().contains("unknown field"),
        "{v}"
    );
    let v = sim.ctl(r#"{"device":"GD-101","fault":{"kind":"slow"}}"#);
    assert_eq!(v["field"], "fault.delay");

    // Several commands on one connection, one reply line each, in order.
    let mut s = TcpStream::connect(("127.0.0.1", sim.ports.control)).unwrap();
    s.write_all(b"{\"device\":\"GD-101\",\"point\":\"CH1\",\"set\":30.0}\n\n{\"device\":\"GD-101\",\"point\":\"CH1\",\"read\":true}\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "{\"ok\":true}\n");
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "{\"ok\":true,\"value\":30.0,\"registers\":[300]}\n");

    // ramp and release; normal keeps the noise going around a new baseline.
    sim.ok(r#"{"device":"GD-101","point":"CH1","ramp":{"to":10.0,"over":"300ms"}}"#);
    assert!(eventually(Duration::from_secs(3), || sim
        .registers("GD-101", "CH1")
        == [100]));
    sim.ok(r#"{"device":"GD-101","point":"CH1","normal":50.0}"#);
    let r = sim.registers("GD-101", "CH1")[0];
    assert!((480..=520).contains(&r), "{r}");
    sim.ok(r#"{"device":"GD-101","point":"CH1","release":true}"#);
    assert!(sim.registers("GD-101", "CH1")[0] < 20);

    // The ctl subcommand prints the reply and fails on an error.
    let addr = format!("127.0.0.1:{}", sim.ports.control);
    let out = Command::new(BIN)
        .args([
            "ctl",
            "--control",
            &addr,
            r#"{"device":"GD-101","point":"CH1_UNIT","read":true}"#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"ok\":true,\"value\":4.0,\"registers\":[4]}\n"
    );
    let out = Command::new(BIN)
        .args([
            "ctl",
            "--control",
            &addr,
            r#"{"device":"X","clear_fault":true}"#,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn scenario_runs_in_simulated_time() {
    let scenario = r#"
description = "ramp at 10x speed"
[[event]]
at = "5s"
device = "GD-201"
point = "CH1"
set = 20.0
[[event]]
at = "10s"
device = "GD-201"
point = "CH1"
ramp = { to = 60.0, over = "10s" }
[[event]]
at = "30s"
device = "GD-201"
fault = { kind = "exception", code = 6 }
"#;
    let sim = Sim::start_with(
        &["--speed", "10"],
        common::test_site,
        &[("leak.toml", scenario)],
    );
    // 5 simulated seconds = 0.5 s real.
    assert!(eventually(Duration::from_secs(3), || sim
        .registers("GD-201", "CH1")
        == [200]));
    assert!(eventually(Duration::from_secs(4), || sim
        .registers("GD-201", "CH1")
        == [600]));
    let mut c = common::TcpClient::connect(sim.ports.tcp);
    assert!(eventually(Duration::from_secs(4), || c
        .request(1, 1, &[3, 0, 0, 0, 1], Duration::from_millis(500))
        .unwrap()[7..]
        == [0x83, 6]));
}

#[test]
fn sigterm_exits_cleanly_and_removes_the_pty_link() {
    let mut sim = Sim::start(&[]);
    assert!(
        sim.ready_lines
            .iter()
            .any(|l| l.starts_with("ready bus=rs485-1 pty ") && l.contains(" -> /dev/pts/")),
        "{:?}",
        sim.ready_lines
    );
    assert!(sim
        .ready_lines
        .iter()
        .any(|l| *l == format!("ready bus=tcp-1 tcp 127.0.0.1:{}", sim.ports.tcp)));
    assert!(sim
        .ready_lines
        .iter()
        .any(|l| *l == format!("ready bus=dtu-1 rtu-over-tcp 127.0.0.1:{}", sim.ports.dtu)));
    let link = sim.pty();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(sim.stop(), "hazsim must exit 0 on SIGTERM");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the pty symlink must be gone"
    );
}

#[test]
fn control_refuses_non_loopback_addresses() {
    let dir = common::TempDir::new();
    let site = dir.write(
        "site.toml",
        &common::test_site(
            &dir.0,
            common::Ports {
                tcp: 1,
                dtu: 2,
                control: 3,
            },
        ),
    );
    let out = Command::new(BIN)
        .args([
            "serve",
            "-c",
            site.to_str().unwrap(),
            "--control",
            "0.0.0.0:15999",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
