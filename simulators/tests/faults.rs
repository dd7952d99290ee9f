//! Faults and protocol edge cases, seen through raw clients that show exactly what a
//! device sent: exceptions, silence, damaged frames, late replies, RS-485 semantics.

mod common;

use std::time::{Duration, Instant};

use common::{crc_ok, rtu_frame, DtuClient, PtyClient, Sim, TcpClient};

const WAIT: Duration = Duration::from_millis(500);
const READ_CH1: [u8; 5] = [0x03, 0, 0, 0, 1];

#[test]
fn tcp_exceptions() {
    let sim = Sim::start(&[]);
    let mut c = TcpClient::connect(sim.ports.tcp);
    let pdu = |reply: Vec<u8>| reply[7..].to_vec();
    // No device at unit 9 behind this endpoint: gateway target failed to respond.
    assert_eq!(pdu(c.request(1, 9, &READ_CH1, WAIT).unwrap()), [0x83, 0x0B]);
    // The gas detector's holding registers end with CH4_DP at 52: 54 registers from 0 run past.
    assert_eq!(
        pdu(c.request(2, 1, &[0x03, 0, 0, 0, 54], WAIT).unwrap()),
        [0x83, 0x02]
    );
    assert_eq!(
        pdu(c.request(3, 1, &[0x03, 0, 0, 0, 53], WAIT).unwrap())[..2],
        [0x03, 106]
    );
    // It has no input registers at all.
    assert_eq!(
        pdu(c.request(4, 1, &[0x04, 0, 0, 0, 1], WAIT).unwrap()),
        [0x84, 0x02]
    );
    assert_eq!(
        pdu(c.request(5, 1, &[0x03, 0, 0, 0, 0], WAIT).unwrap()),
        [0x83, 0x03]
    );
    assert_eq!(
        pdu(c.request(6, 1, &[0x03, 0, 0, 0, 126], WAIT).unwrap()),
        [0x83, 0x03]
    );
    assert_eq!(
        pdu(c.request(7, 1, &[0x2B, 0x0E, 1, 0], WAIT).unwrap()),
        [0xAB, 0x01]
    );
    // Byte count disagreeing with the quantity.
    assert_eq!(
        pdu(c.request(8, 1, &[0x10, 0, 0, 0, 2, 2, 0, 1], WAIT).unwrap()),
        [0x90, 0x03]
    );

    // Injected exception, default code 4 and an explicit one.
    sim.ok(r#"{"device":"GD-201","fault":{"kind":"exception"}}"#);
    assert_eq!(pdu(c.request(9, 1, &READ_CH1, WAIT).unwrap()), [0x83, 0x04]);
    sim.ok(r#"{"device":"GD-201","fault":{"kind":"exception","code":6}}"#);
    assert_eq!(
        pdu(c.request(10, 1, &READ_CH1, WAIT).unwrap()),
        [0x83, 0x06]
    );
    // Other devices behind the same endpoint are unaffected.
    assert_eq!(
        c.request(11, 2, &[0x04, 0, 0, 0, 1], WAIT).unwrap()[7],
        0x04
    );
    sim.ok(r#"{"device":"GD-201","clear_fault":true}"#);
    let reply = c.request(12, 1, &READ_CH1, WAIT).unwrap();
    assert_eq!((reply[0..2].to_vec(), reply[7]), (vec![0, 12], 0x03));
}

#[test]
fn tcp_silent_corrupt_and_slow() {
    let sim = Sim::start(&[]);
    let mut c = TcpClient::connect(sim.ports.tcp);
    sim.ok(r#"{"device":"GD-201","fault":{"kind":"silent"}}"#);
    assert_eq!(c.request(1, 1, &READ_CH1, WAIT), None);
    sim.ok(r#"{"device":"GD-201","clear_fault":true}"#);
    let mut c = TcpClient::connect(sim.ports.tcp);
    assert!(c.request(2, 1, &READ_CH1, WAIT).is_some());

    sim.ok(r#"{"device":"GD-201","fault":{"kind":"corrupt"}}"#);
    let reply = c.request(0x0102, 1, &READ_CH1, WAIT).unwrap();
    assert_ne!(
        u16::from_be_bytes([reply[0], reply[1]]),
        0x0102,
        "transaction id must be wrong"
    );
    sim.ok(r#"{"device":"GD-201","clear_fault":true}"#);

    sim.ok(r#"{"device":"GD-201","fault":{"kind":"slow","delay":"600ms"}}"#);
    // While one connection waits for the slow device, another is served at once.
    let port = sim.ports.tcp;
    let slow = std::thread::spawn(move || {
        let mut c = TcpClient::connect(port);
        let start = Instant::now();
        let reply = c.request(3, 1, &READ_CH1, Duration::from_secs(3));
        (reply, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut fast = TcpClient::connect(sim.ports.tcp);
    let start = Instant::now();
    assert!(fast.request(4, 2, &[0x04, 0, 0, 0, 1], WAIT).is_some());
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "another device waited {:?}",
        start.elapsed()
    );
    let (reply, took) = slow.join().unwrap();
    assert_eq!(reply.unwrap()[7], 0x03);
    assert!(
        took >= Duration::from_millis(550),
        "slow reply came after {took:?}"
    );
}

#[test]
fn faults_expire_after_their_duration() {
    let sim = Sim::start(&[]);
    let mut c = TcpClient::connect(sim.ports.tcp);
    sim.ok(r#"{"device":"GD-201","fault":{"kind":"exception","code":4,"for":"400ms"}}"#);
    assert_eq!(c.request(1, 1, &READ_CH1, WAIT).unwrap()[7..], [0x83, 0x04]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.request(2, 1, &READ_CH1, WAIT).unwrap()[7], 0x03);
}

#[test]
fn rtu_on_the_pty() {
    let sim = Sim::start(&[]);
    let mut p = PtyClient::open(&sim.pty());
    sim.ok(r#"{"device":"GD-101","point":"CH1","set":42.0}"#);
    let reply = p.request(&rtu_frame(1, &READ_CH1), WAIT);
    assert_eq!(reply, rtu_frame(1, &[0x03, 2, 0x01, 0xA4]));

    // No device at unit 7: silence, as on a real RS-485 line.
    assert!(p.request(&rtu_frame(7, &READ_CH1), WAIT).is_empty());
    // A damaged request is dropped silently, and the next good one is answered.
    let mut bad = rtu_frame(1, &READ_CH1);
    bad[6] ^= 0xFF;
    assert!(p.request(&bad, WAIT).is_empty());
    assert!(crc_ok(&p.request(&rtu_frame(1, &READ_CH1), WAIT)));
    // Exceptions come back framed.
    assert_eq!(
        p.request(&rtu_frame(1, &[0x03, 0, 60, 0, 1]), WAIT),
        rtu_frame(1, &[0x83, 0x02])
    );
    // An unknown function code is framed by silence and refused.
    assert_eq!(
        p.request(&rtu_frame(1, &[0x2B, 0x0E, 0x01, 0x00]), WAIT),
        rtu_frame(1, &[0xAB, 0x01])
    );

    // Broadcast write (unit 0): both detectors act, nobody answers.
    assert!(p
        .request(&rtu_frame(0, &[0x06, 0, 5, 0, 250]), WAIT)
        .is_empty());
    let read5 = [0x03, 0, 5, 0, 1];
    assert_eq!(
        p.request(&rtu_frame(1, &read5), WAIT),
        rtu_frame(1, &[0x03, 2, 0, 250])
    );
    assert_eq!(
        p.request(&rtu_frame(2, &read5), WAIT),
        rtu_frame(2, &[0x03, 2, 0, 250])
    );

    // Silent device: no reply; the other unit on the line still answers.
    sim.ok(r#"{"device":"GD-101","fault":{"kind":"silent"}}"#);
    assert!(p.request(&rtu_frame(1, &READ_CH1), WAIT).is_empty());
    assert!(crc_ok(&p.request(&rtu_frame(2, &READ_CH1), WAIT)));

    // Corrupt: a reply whose CRC is wrong.
    sim.ok(r#"{"device":"GD-101","fault":{"kind":"corrupt"}}"#);
    let reply = p.request(&rtu_frame(1, &READ_CH1), WAIT);
    assert_eq!(reply.len(), 7);
    assert!(!crc_ok(&reply), "{reply:02X?}");

    // Slow: the reply comes after the delay.
    sim.ok(r#"{"device":"GD-101","fault":{"kind":"slow","delay":"300ms"}}"#);
    let start = Instant::now();
    p.send(&rtu_frame(1, &READ_CH1));
    let reply = p.receive(Duration::from_secs(2));
    assert!(crc_ok(&reply));
    assert!(
        start.elapsed() >= Duration::from_millis(280),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn rtu_over_tcp() {
    let sim = Sim::start(&[]);
    let mut d = DtuClient::connect(sim.ports.dtu);
    // The f32 pressure (holding 0..1) of PT-1 at unit 5.
    let reply = d.request(&rtu_frame(5, &[0x03, 0, 0, 0, 2]), WAIT);
    assert!(crc_ok(&reply) && reply[..3] == [5, 3, 4], "{reply:02X?}");
    assert!(d
        .request(&rtu_frame(6, &[0x03, 0, 0, 0, 2]), WAIT)
        .is_empty());
    sim.ok(r#"{"device":"PT-1","fault":{"kind":"corrupt"}}"#);
    let reply = d.request(&rtu_frame(5, &[0x03, 0, 0, 0, 2]), WAIT);
    assert!(reply.len() == 9 && !crc_ok(&reply), "{reply:02X?}");
    // A request split across two TCP segments is still one frame.
    sim.ok(r#"{"device":"PT-1","clear_fault":true}"#);
    let frame = rtu_frame(5, &[0x03, 0, 0, 0, 2]);
    use std::io::Write;
    d.0.write_all(&frame[..3]).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    assert!(crc_ok(&d.request(&frame[3..], WAIT)));
}

#[test]
fn point_faults_show_in_registers() {
    let sim = Sim::start(&[]);
    // 4-20 mA transmitter: NE43 sensor fault drives the loop to 2.0 mA (2000 µA raw).
    sim.ok(r#"{"device":"GT-1","point":"GAS","fault":{"kind":"sensor_fault"}}"#);
    assert_eq!(sim.registers("GT-1", "GAS"), [2000]);
    sim.ok(r#"{"device":"GT-1","point":"GAS","fault":{"kind":"out_of_range"}}"#);
    assert_eq!(sim.registers("GT-1", "GAS"), [20800]);
    sim.ok(r#"{"device":"GT-1","point":"GAS","clear_fault":true}"#);
    let loop_ua = sim.registers("GT-1", "GAS")[0];
    assert!((4000..6000).contains(&loop_ua), "{loop_ua}");

    // Digital detector: the status register shows the first "bad" code (3, sensor fault).
    sim.ok(r#"{"device":"GD-201","point":"CH1","fault":{"kind":"sensor_fault"}}"#);
    assert_eq!(sim.registers("GD-201", "CH1_STATUS"), [3]);
    sim.ok(r#"{"device":"GD-201","point":"CH1","fault":{"kind":"status","code":4}}"#);
    assert_eq!(sim.registers("GD-201", "CH1_STATUS"), [4]);
    sim.ok(r#"{"device":"GD-201","point":"CH1","fault":{"kind":"out_of_range"}}"#);
    assert_eq!(sim.registers("GD-201", "CH1"), [1100]); // 110 %LEL, 10 % past the range
    sim.ok(r#"{"device":"GD-201","clear_fault":true}"#);
    assert_eq!(sim.registers("GD-201", "CH1_STATUS"), [0]);
}
