//! Conformance with a real third-party Modbus master: Debian's mbpoll (libmodbus), over
//! TCP and over the pseudo-terminal, reads what the control socket says is served, and
//! its writes are kept.

mod common;

use common::{have_mbpoll, mbpoll, Sim};

fn need_mbpoll() {
    assert!(
        have_mbpoll(),
        "these tests need mbpoll: apt-get install -y mbpoll"
    );
}

#[test]
fn mbpoll_over_tcp_reads_what_control_reports() {
    need_mbpoll();
    let sim = Sim::start(&[]);
    sim.ok(r#"{"device":"GD-201","point":"CH1","set":30.0}"#);
    sim.ok(r#"{"device":"GD-201","point":"CH2","set":7.5}"#);
    let port = sim.ports.tcp.to_string();
    let values = mbpoll(&[
        "-m",
        "tcp",
        "-p",
        &port,
        "-a",
        "1",
        "-r",
        "1",
        "-c",
        "10",
        "-1",
        "127.0.0.1",
    ])
    .unwrap();
    assert_eq!(values.len(), 10, "{values:?}");
    // mbpoll's references are 1-based: [1] is register 0.
    let reg = |r: u32| values.iter().find(|(n, _)| *n == r).unwrap().1 as u64;
    assert_eq!(sim.registers("GD-201", "CH1"), [300]);
    assert_eq!(reg(1), 300);
    assert_eq!(reg(2), sim.registers("GD-201", "CH1_STATUS")[0]);
    assert_eq!(reg(4), sim.registers("GD-201", "CH1_UNIT")[0]);
    assert_eq!(reg(4), 4); // %LEL
    assert_eq!(reg(5), sim.registers("GD-201", "CH1_DP")[0]);
    assert_eq!(reg(3), 0); // inside the map but no point: reads 0
    let v = sim.ok(r#"{"device":"GD-201","point":"CH1","read":true}"#);
    assert_eq!(v["value"], 30.0);

    // Register 17 (CH2) on the same device.
    let values = mbpoll(&[
        "-m",
        "tcp",
        "-p",
        &port,
        "-a",
        "1",
        "-r",
        "17",
        "-c",
        "1",
        "-1",
        "127.0.0.1",
    ])
    .unwrap();
    assert_eq!(values, [(17, 75)]);

    // A unit with no device behind the endpoint: mbpoll reports the failure.
    assert!(mbpoll(&[
        "-m",
        "tcp",
        "-p",
        &port,
        "-a",
        "9",
        "-r",
        "1",
        "-c",
        "1",
        "-1",
        "-o",
        "0.5",
        "127.0.0.1"
    ])
    .is_err());
}

#[test]
fn mbpoll_over_the_pty_reads_what_control_reports() {
    need_mbpoll();
    let sim = Sim::start(&[]);
    sim.ok(r#"{"device":"GD-101","point":"CH1","set":12.3}"#);
    let pty = sim.pty().display().to_string();
    let values = mbpoll(&[
        "-m", "rtu", "-b", "9600", "-P", "none", "-a", "1", "-r", "1", "-c", "5", "-1", &pty,
    ])
    .unwrap();
    assert_eq!(values, [(1, 123), (2, 0), (3, 0), (4, 4), (5, 1)]);
    assert_eq!(sim.registers("GD-101", "CH1"), [123]);
    // The second unit on the same line answers too.
    sim.ok(r#"{"device":"GD-102","point":"CH4","set":50.0}"#);
    let values = mbpoll(&[
        "-m", "rtu", "-b", "9600", "-P", "none", "-a", "2", "-r", "49", "-c", "1", "-1", &pty,
    ])
    .unwrap();
    assert_eq!(values, [(49, 500)]);
}

#[test]
fn mbpoll_writes_are_kept() {
    need_mbpoll();
    let sim = Sim::start(&[]);
    let port = sim.ports.tcp.to_string();
    // Coil DO2 (address 1, reference 2) of the relay module at unit 3.
    assert_eq!(sim.registers("DO-1", "DO2"), [0]);
    mbpoll(&[
        "-m",
        "tcp",
        "-p",
        &port,
        "-a",
        "3",
        "-t",
        "0",
        "-r",
        "2",
        "127.0.0.1",
        "1",
    ])
    .unwrap();
    let v = sim.ok(r#"{"device":"DO-1","point":"DO2","read":true}"#);
    assert_eq!(
        (v["value"].as_f64(), v["registers"].clone()),
        (Some(1.0), serde_json::json!([1]))
    );
    // It stays written: the simulation does not put it back.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sim.registers("DO-1", "DO2"), [1]);
    let coils = mbpoll(&[
        "-m",
        "tcp",
        "-p",
        &port,
        "-a",
        "3",
        "-t",
        "0",
        "-r",
        "1",
        "-c",
        "4",
        "-1",
        "127.0.0.1",
    ])
    .unwrap();
    assert_eq!(coils, [(1, 0), (2, 1), (3, 0), (4, 0)]);

    // A holding register over the pty (function 06 via mbpoll), read back by control.
    let pty = sim.pty().display().to_string();
    mbpoll(&[
        "-m", "rtu", "-b", "9600", "-P", "none", "-a", "1", "-t", "4", "-r", "1", &pty, "777",
    ])
    .unwrap();
    let v = sim.ok(r#"{"device":"GD-101","point":"CH1","read":true}"#);
    assert_eq!(v["registers"], serde_json::json!([777]));
    assert_eq!(v["value"], 77.7);
}
