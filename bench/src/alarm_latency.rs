//! Alarm latency on loopback: from the acquisition of the reading that crosses a limit to
//! the alarm message reaching a subscriber through mosquitto (which is after the broker's
//! PUBACK to the gateway, so this is an upper bound of the PUBACK latency).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::mqtt::Broker;
use hazgate_e2e::{free_port, now_ms, Sim};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

use crate::report::{machine, Table};

const CROSSINGS: usize = 100;
const POLL_MS: u64 = 100;

pub fn run() -> Result<Table> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("mq"))?;
    let broker = Broker::start(&dir.path().join("mq"))?;
    let site = dir.path().join("site.toml");
    std::fs::write(
        &site,
        format!(
            "[site]\nid = \"LAT\"\ngateway = \"gw\"\n[uplink]\nbroker = \"{}\"\n[store]\ndir = \"store\"\n[[bus]]\nid = \"tcp-1\"\ntcp = {{ host = \"127.0.0.1\", port = {} }}\n[[device]]\nid = \"GD-1\"\nbus = \"tcp-1\"\nunit = 1\nprofile = \"gas-detector-4ch\"\npoll = \"{POLL_MS}ms\"\ntimeout = \"80ms\"\n[device.points.CH1.alarm]\nlimits = [{{ above = 50.0, level = \"red\" }}]\ndeadband = 1.0\n",
            broker.url(),
            free_port()
        ),
    )?;
    let sim = Sim::start(&site, &[])?;
    // (receive time, event) of every alarm message.
    let received: Arc<Mutex<Vec<(i64, Value)>>> = Arc::default();
    let sink = received.clone();
    let port = broker.port;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut o = MqttOptions::new("latency-sub", "127.0.0.1", port);
            o.set_max_packet_size(1 << 22, 1 << 22);
            let (client, mut eventloop) = AsyncClient::new(o, 100);
            client
                .subscribe("hazard/+/+/alarm", QoS::AtLeastOnce)
                .await
                .unwrap();
            while let Ok(event) = eventloop.poll().await {
                match event {
                    Event::Incoming(Packet::SubAck(_)) => {
                        let _ = ready_tx.send(());
                    }
                    Event::Incoming(Packet::Publish(p)) => {
                        let at = now_ms();
                        if let Ok(v) = serde_json::from_slice::<Value>(&p.payload) {
                            sink.lock().unwrap().push((at, v));
                        }
                    }
                    _ => {}
                }
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("no SUBACK")?;
    let mut gw = Gateway::start(&site, &dir.path().join("hazgate.log"))?;
    std::thread::sleep(Duration::from_secs(2));
    let mut latencies = Vec::new();
    for i in 0..CROSSINGS {
        let (value, event) = if i % 2 == 0 {
            (60.0, "raise")
        } else {
            (5.0, "clear")
        };
        let before = received.lock().unwrap().len();
        sim.ctl(json!({"device": "GD-1", "point": "CH1", "set": value}))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = received.lock().unwrap()[before..]
                .iter()
                .find(|(_, v)| v["point"] == "CH1" && v["event"] == event)
                .map(|(at, v)| at - v["ts"].as_i64().unwrap_or(0));
            if let Some(ms) = got {
                latencies.push(ms.max(0) as f64);
                break;
            }
            if Instant::now() > deadline {
                bail!("no {event} event within 5 s (crossing {i})");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let the next poll settle before the next crossing.
        std::thread::sleep(Duration::from_millis(2 * POLL_MS));
    }
    gw.stop(Duration::from_secs(10));
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    let (p50, p99) = (pct(0.50), pct(0.99));
    Ok(Table {
        title: "Alarm latency: crossing reading acquired -> alarm at a subscriber (loopback)".into(),
        header: vec!["crossings".into(), "p50".into(), "p99".into(), "max".into(), "poll interval".into(), "target".into()],
        rows: vec![vec![
            CROSSINGS.to_string(),
            format!("{p50:.0} ms"),
            format!("{p99:.0} ms"),
            format!("{:.0} ms", latencies[latencies.len() - 1]),
            format!("{POLL_MS} ms"),
            format!("p99 under 50 ms: {}", if p99 < 50.0 { "met" } else { "NOT met" }),
        ]],
        notes: vec![format!(
            "Measured from the acquisition time of the reading that crosses the limit (taken when the device's reply arrives) to the subscriber's receipt, which follows the broker's PUBACK; the alarm event is synced to the store's alarm lane in between. Time until the poll sees the crossing is the poll interval, not counted. Millisecond clock. {}.",
            machine()
        )],
    })
}
