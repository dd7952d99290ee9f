//! `hazgate demo` end to end: the real binary, watched from outside through its embedded
//! broker like any MQTT client would, and through its plain output like a script would.
#![cfg(feature = "demo")]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hazgate_wire::{Message, Presence};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

const TANK_FARM: &str = "HB-420100-0001";
const TAILINGS_DAM: &str = "HB-420300-0007";
/// `--for 25s` plus start-up and shutdown, with room for a loaded machine.
const EXIT_DEADLINE: Duration = Duration::from_secs(40);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the demo if the test fails before it exits.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(id: &str, port: u16) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(10))
        .set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(o, 16)
}

/// The next publish on `filter`, reconnecting (and resubscribing) while the demo starts.
async fn next_publish(
    client: &AsyncClient,
    events: &mut EventLoop,
    filter: &str,
) -> rumqttc::Publish {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => return p,
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                client.try_subscribe(filter, QoS::AtLeastOnce).unwrap()
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_publishes_both_sites_plays_the_leak_and_exits_cleanly() {
    let port = free_port();
    let started = Instant::now();
    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_hazgate"))
            .args(["demo", "--port", &port.to_string(), "--speed", "10"])
            .args(["--for", "25s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hazgate starts"),
    );
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = demo.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut stderr = demo.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    // Telemetry from both gateways, as any subscriber sees it.
    let (live, mut live_events) = client("demo-test-live", port);
    let mut telemetry_from = BTreeSet::new();
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while telemetry_from.len() < 2 {
            let p = next_publish(&live, &mut live_events, "hazard/#").await;
            if let Ok(Message::Telemetry(t)) = serde_json::from_slice::<Message>(
                &hazgate_wire::payload::decode(&p.payload, 16 << 20).unwrap_or_default(),
            ) {
                assert_eq!(
                    p.topic,
                    format!(
                        "hazard/{}/{}/telemetry",
                        t.envelope.site, t.envelope.gateway
                    )
                );
                assert!(!t.readings.is_empty());
                telemetry_from.insert(t.envelope.site.to_string());
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "telemetry came only from {telemetry_from:?} within 20 s"
    );
    let _ = live.try_disconnect();

    // A late subscriber is told at once, by the retained status, that both are online.
    let (late, mut late_events) = client("demo-test-late", port);
    let mut online = BTreeSet::new();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while online.len() < 2 {
            let p = next_publish(&late, &mut late_events, "hazard/+/+/status").await;
            if let Ok(Message::Status(s)) = serde_json::from_slice::<Message>(
                &hazgate_wire::payload::decode(&p.payload, 16 << 20).unwrap_or_default(),
            ) {
                if p.retain && s.state == Presence::Online {
                    online.insert(s.envelope.site.to_string());
                }
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "a retained `online` status came only from {online:?}"
    );
    let _ = late.try_disconnect();
    assert_eq!(
        online,
        BTreeSet::from([TANK_FARM.into(), TAILINGS_DAM.into()])
    );

    // The process ends by itself, with status 0.
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < EXIT_DEADLINE,
            "the demo still runs after {EXIT_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stderr = stderr.join().unwrap();
    let out: Vec<String> = lines.try_iter().collect();
    assert!(
        status.success(),
        "exit {status}\nstdout:\n{out:#?}\nstderr:\n{stderr}"
    );

    // The plain output follows the leak through the level 2 alarm (50 %LEL) at speed 10.
    let leak: Vec<f64> = out
        .iter()
        .filter_map(|l| l.strip_prefix("GD-101.CH1 "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    let peak = leak.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        peak > 50.0,
        "GD-101.CH1 never rose above 50: {leak:?}\nstdout:\n{out:#?}\nstderr:\n{stderr}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("GD-101.CH1 ") && l.ends_with(" %LEL good")),
        "{out:#?}"
    );
    assert!(
        out.iter()
            .any(|l| l == &format!("{TANK_FARM}/gw-01 offline")),
        "the gateways did not say offline at the end:\n{out:#?}"
    );
}

/// Two demos at once, with no port given: each takes free ports and its own
/// pseudo-terminals, and both play their sites to the end.
#[test]
fn two_demos_run_side_by_side() {
    let start = || {
        Demo(
            Command::new(env!("CARGO_BIN_EXE_hazgate"))
                .args(["demo", "--speed", "10", "--for", "8s"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("hazgate starts"),
        )
    };
    // Both read at once, so neither blocks on a full pipe.
    let watch = |mut demo: Demo| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut errors = String::new();
            let _ = demo.0.stdout.take().unwrap().read_to_string(&mut text);
            let _ = demo.0.stderr.take().unwrap().read_to_string(&mut errors);
            (demo.0.wait().unwrap(), text, errors)
        })
    };
    let runs = [watch(start()), watch(start())];
    for run in runs {
        let (status, text, errors) = run.join().unwrap();
        assert!(status.success(), "exit {status}\n{text}\n{errors}");
        assert!(
            text.lines().any(|l| l.starts_with("GD-101.CH1 ")),
            "no live values:\n{text}\n{errors}"
        );
    }
}
