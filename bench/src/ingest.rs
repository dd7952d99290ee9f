//! Ingest throughput: a backlog of telemetry waits in mosquitto for hazingest's persistent
//! session; hazingest (release) starts and is timed until victoria-metrics holds every
//! reading. CPU and peak RSS are hazingest's own.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use hazgate_e2e::daemon::{central_toml, CentralSetup, Daemon};
use hazgate_e2e::http::metric;
use hazgate_e2e::mqtt::{publish_all, wait_port, Broker};
use hazgate_e2e::victoria::VictoriaMetrics;
use hazgate_e2e::{free_ports, now_ms, wait_until};

use crate::process::{cpu_seconds, peak_rss_mib};
use crate::report::{machine, verdict, Table};

const MESSAGES: usize = 1000;
/// A gateway's telemetry message holds a second of readings; 1000 is a large site.
const READINGS_PER_MESSAGE: usize = 1000;
const TARGET: f64 = 200_000.0;

fn message(seq: usize, t0: i64) -> (String, Vec<u8>) {
    let ts = t0 + seq as i64 * 1000;
    let readings: Vec<_> = (0..READINGS_PER_MESSAGE)
        .map(|i| {
            json!({"device": format!("GD-{:03}", i / 10), "point": format!("CH{}", i % 10),
                   "ts": ts, "value": (i % 97) as f64 * 0.25, "unit": "%LEL", "quality": "good"})
        })
        .collect();
    let m = json!({"kind": "telemetry", "v": 1, "site": "BENCH", "gateway": "gw-1",
                   "seq": seq + 1, "readings": readings});
    (
        "hazard/BENCH/gw-1/telemetry".to_string(),
        serde_json::to_vec(&m).expect("json"),
    )
}

pub fn run() -> Result<Table> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("mq"))?;
    // The backlog lives in the broker's memory; a window of 200 messages in flight.
    let broker = Broker::start_with(
        &dir.path().join("mq"),
        "persistence false\nmax_inflight_messages 200",
    )?;
    let vm = VictoriaMetrics::start(&dir.path().join("vm"))?;
    let ports = free_ports(2);
    let conf = dir.path().join("central.toml");
    std::fs::write(
        &conf,
        central_toml(&CentralSetup {
            broker_port: broker.port,
            store_url: &vm.url(),
            client_id: "hazingest-bench",
            web: ports[0],
            metrics: ports[1],
        })
        .replace("batch_lines = 5000", "batch_lines = 20000")
        .replace("batch_interval = \"100ms\"", "batch_interval = \"200ms\""),
    )?;
    let log = dir.path().join("ingest.log");
    // First start: the broker learns the session and its subscriptions, then keeps the
    // backlog for it while it is stopped.
    let mut ingest = Daemon::ingest(&conf, &log)?;
    wait_port(ports[1], Duration::from_secs(10))?;
    wait_until(Duration::from_secs(10), "hazingest connected", || {
        Ok(metric(ports[1], "hazingest_mqtt_connected")? == 1.0)
    })?;
    ensure!(
        ingest.stop(Duration::from_secs(10)),
        "hazingest did not stop"
    );
    let t0 = now_ms() - 2 * 3_600_000;
    let backlog: Vec<_> = (0..MESSAGES).map(|i| message(i, t0)).collect();
    let bytes: usize = backlog.iter().map(|(_, p)| p.len()).sum();
    publish_all(broker.port, &backlog)?;
    drop(backlog);

    let total = (MESSAGES * READINGS_PER_MESSAGE) as f64;
    let started = Instant::now();
    ingest.restart()?;
    let pid = ingest.pid().context("hazingest pid")?;
    wait_port(ports[1], Duration::from_secs(10))?;
    wait_until(Duration::from_secs(300), "every reading written", || {
        Ok(metric(ports[1], "hazingest_readings_written_total")? >= total)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid);
    let rss = peak_rss_mib(pid);
    let rate = total / elapsed;
    let stored = vm.count(r#"{__name__="reading_quality",site="BENCH"}"#)? as f64;
    ensure!(
        stored == total,
        "victoria-metrics holds {stored} of {total} readings"
    );
    drop(ingest);

    Ok(Table {
        title: "Central ingest: mosquitto -> hazingest -> victoria-metrics".into(),
        header: vec![
            "run".into(),
            "readings/s".into(),
            "hazingest CPU".into(),
            "hazingest peak RSS".into(),
            "target".into(),
        ],
        rows: vec![vec![
            format!(
                "{MESSAGES} messages x {READINGS_PER_MESSAGE} readings ({:.0} MB JSON) from the broker's backlog",
                bytes as f64 / 1e6
            ),
            format!("{rate:.0}"),
            format!("{:.0} % of one core ({cpu:.1} s in {elapsed:.1} s)", cpu / elapsed * 100.0),
            format!("{rss:.0} MiB"),
            verdict(rate >= TARGET, ">= 200,000 readings/s"),
        ]],
        notes: vec![format!(
            "Timed from hazingest's start until it acknowledged the last batch; every reading then counted in victoria-metrics (dedup on). Batches of 20,000 lines, 200 messages in flight (mosquitto max_inflight_messages). mosquitto, victoria-metrics and hazingest share one machine: {}.",
            machine()
        )],
    })
}
