//! End to end through a real broker: `hazsim` -> `hazgate run` -> Debian's mosquitto -> a
//! subscriber, with the store synced as configured. Throughput, peak load (500,000
//! readings/s), backlog drain after an outage, memory footprint with 10,000 points, CPU at
//! 1,000 readings/s, read → broker latency and SIGKILLs at 50,000 readings/s.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::mqtt::Broker;
use hazgate_e2e::{free_port, free_ports, now_ms, Sim};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::process::{cpu_seconds, peak_rss_mib};
use crate::report::{machine, verdict, Table};

/// What the counting subscriber has seen.
#[derive(Default)]
struct Counts {
    readings: AtomicU64,
    messages: AtomicU64,
    /// Readings acquired inside the watched window (the outage).
    in_window: AtomicU64,
    window_from: AtomicI64,
    window_to: AtomicI64,
    /// Telemetry seqs seen, to tell when the backlog is complete.
    seqs: Mutex<std::collections::BTreeSet<u64>>,
    newest_ts: AtomicI64,
    /// While set: read → subscriber latency per reading, in 1 ms buckets.
    timing: AtomicBool,
    latency: Mutex<Vec<u64>>,
    /// While set: every reading's acquisition time per device (for the crash run).
    tracing: AtomicBool,
    times: Mutex<std::collections::BTreeMap<String, Vec<i64>>>,
}

impl Counts {
    /// The latency at quantile `q` of what was timed, ms.
    fn latency_quantile(&self, q: f64) -> u64 {
        let buckets = self.latency.lock().unwrap();
        let total: u64 = buckets.iter().sum();
        let want = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (ms, n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return ms as u64;
            }
        }
        buckets.len() as u64
    }
}

/// A QoS 1 subscriber with a persistent session that counts readings and keeps no payloads.
struct Counter {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Counter {
    fn start(port: u16) -> Result<Counter> {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut o = MqttOptions::new(format!("bench-{}", free_port()), "127.0.0.1", port);
                o.set_clean_session(false);
                o.set_max_packet_size(1 << 22, 1 << 22);
                o.set_inflight(1000);
                let (client, mut eventloop) = AsyncClient::new(o, 100);
                client
                    .subscribe("hazard/+/+/telemetry", QoS::AtLeastOnce)
                    .await
                    .unwrap();
                let mut ready = Some(ready_tx);
                while !s.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await {
                        Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                        Ok(Ok(Event::Incoming(Packet::Publish(p)))) => count(&c, &p.payload),
                        Ok(Ok(_)) | Err(_) => {}
                        Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .context("subscriber got no SUBACK")?;
        Ok(Counter {
            counts,
            stop,
            thread: Some(thread),
        })
    }

    fn readings(&self) -> u64 {
        self.counts.readings.load(Ordering::Relaxed)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn count(c: &Counts, payload: &[u8]) {
    let Ok(payload) = hazgate_wire::payload::decode(payload, 64 << 20) else {
        return;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&payload) else {
        return;
    };
    c.messages.fetch_add(1, Ordering::Relaxed);
    if let Some(seq) = json["seq"].as_u64() {
        c.seqs.lock().unwrap().insert(seq);
    }
    let (from, to) = (
        c.window_from.load(Ordering::Relaxed),
        c.window_to.load(Ordering::Relaxed),
    );
    let readings = json["readings"]
        .as_array()
        .map(|r| r.as_slice())
        .unwrap_or(&[]);
    c.readings
        .fetch_add(readings.len() as u64, Ordering::Relaxed);
    let mut newest = 0;
    let mut inside = 0;
    for r in readings {
        let ts = r["ts"].as_i64().unwrap_or(0);
        newest = newest.max(ts);
        if ts >= from && ts <= to {
            inside += 1;
        }
    }
    c.in_window.fetch_add(inside, Ordering::Relaxed);
    c.newest_ts.fetch_max(newest, Ordering::Relaxed);
    if c.timing.load(Ordering::Relaxed) {
        let now = now_ms();
        let mut buckets = c.latency.lock().unwrap();
        if buckets.is_empty() {
            buckets.resize(10_001, 0);
        }
        for r in readings {
            let ms = (now - r["ts"].as_i64().unwrap_or(now)).clamp(0, 10_000) as usize;
            buckets[ms] += 1;
        }
    }
    if c.tracing.load(Ordering::Relaxed) {
        let mut times = c.times.lock().unwrap();
        for r in readings {
            if let (Some(d), Some(ts)) = (r["device"].as_str(), r["ts"].as_i64()) {
                times.entry(d.to_string()).or_default().push(ts);
            }
        }
    }
}

/// One rig: a broker, a simulator and a gateway for a generated site.
struct Rig {
    _dir: tempfile::TempDir,
    broker: Broker,
    _sim: Sim,
    counter: Counter,
    gateway: Gateway,
}

/// A site of `devices` Modbus TCP devices (one endpoint each, polled concurrently) with
/// `points` holding registers each, polled every `poll`.
fn rig(devices: usize, points: u16, poll: &str, sync: &str) -> Result<Rig> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("profiles"))?;
    std::fs::create_dir_all(root.join("mq"))?;
    let mut profile = format!("model = \"bench-{points}\"\nvendor = \"bench\"\n");
    for i in 0..points {
        // Every poll on the wire: these runs measure the transport, not report by exception.
        profile.push_str(&format!("[[point]]\nid = \"R{i}\"\nkind = \"holding\"\naddress = {i}\nunit = \"kPa\"\nsimulate = {{ normal = {}, noise = 0.5 }}\nreport = \"every_poll\"\n", 100 + i));
    }
    std::fs::write(root.join(format!("profiles/bench-{points}.toml")), profile)?;
    let broker = Broker::start(&root.join("mq"))?;
    let mut site = format!(
        "[site]\nid = \"BENCH\"\ngateway = \"gw\"\nprofile_dirs = [\"profiles\"]\n[uplink]\nbroker = \"{}\"\n[store]\ndir = \"store\"\nmax_size = \"2GiB\"\nsync_interval = \"{sync}\"\n",
        broker.url()
    );
    let ports = free_ports(devices);
    for (d, port) in ports.iter().enumerate() {
        site.push_str(&format!(
            "[[bus]]\nid = \"tcp-{d}\"\ntcp = {{ host = \"127.0.0.1\", port = {} }}\n[[device]]\nid = \"D{d:03}\"\nbus = \"tcp-{d}\"\nunit = 1\nprofile = \"bench-{points}\"\npoll = \"{poll}\"\ntimeout = \"40ms\"\n",
            port
        ));
    }
    let site_path = root.join("site.toml");
    std::fs::write(&site_path, site)?;
    let sim = Sim::start(&site_path, &[])?;
    let counter = Counter::start(broker.port)?;
    let gateway = Gateway::start(&site_path, &root.join("hazgate.log"))?;
    Ok(Rig {
        _dir: dir,
        broker,
        _sim: sim,
        counter,
        gateway,
    })
}

struct Measured {
    readings_per_s: f64,
    cpu_percent: f64,
    peak_rss_mib: f64,
}

/// Lets a rig warm up, then measures over `window`.
fn measure(r: &Rig, warm: Duration, window: Duration) -> Measured {
    std::thread::sleep(warm);
    let pid = r.gateway.pid().unwrap_or(0);
    let (c0, n0, t0) = (cpu_seconds(pid), r.counter.readings(), Instant::now());
    std::thread::sleep(window);
    let secs = t0.elapsed().as_secs_f64();
    Measured {
        readings_per_s: (r.counter.readings() - n0) as f64 / secs,
        cpu_percent: (cpu_seconds(pid) - c0) / secs * 100.0,
        peak_rss_mib: peak_rss_mib(pid),
    }
}

pub fn run(_root: &Path) -> Result<Vec<Table>> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // 1. Throughput: 50 devices x 120 registers every 50ms = 120,000 readings/s offered.
    let r = rig(50, 120, "50ms", "1s")?;
    let m = measure(&r, Duration::from_secs(4), Duration::from_secs(10));
    rows.push(vec![
        "throughput: 50 devices x 120 points every 50ms (120,000 readings/s offered)".into(),
        format!("{:.0} readings/s", m.readings_per_s),
        format!("{:.0} %", m.cpu_percent),
        format!("{:.1} MiB", m.peak_rss_mib),
        verdict(m.readings_per_s >= 100_000.0, "at least 100,000 readings/s"),
    ]);
    drop(r);

    // 2. Peak load: 100 devices x 250 registers every 50 ms = 500,000 readings/s offered.
    let r = rig(100, 250, "50ms", "1s")?;
    let m = measure(&r, Duration::from_secs(5), Duration::from_secs(10));
    rows.push(vec![
        "peak load: 100 devices x 250 points every 50ms (500,000 readings/s offered)".into(),
        format!("{:.0} readings/s", m.readings_per_s),
        format!("{:.0} %", m.cpu_percent),
        format!("{:.1} MiB", m.peak_rss_mib),
        verdict(
            m.readings_per_s >= 475_000.0 && m.peak_rss_mib <= 64.0,
            "at least 95 % delivered, peak RSS at most 64 MB",
        ),
    ]);
    drop(r);

    // 3. Footprint: 10,000 points every second.
    let r = rig(100, 100, "1s", "1s")?;
    let m = measure(&r, Duration::from_secs(5), Duration::from_secs(15));
    rows.push(vec![
        "footprint: 100 devices x 100 points every 1s (10,000 readings/s)".into(),
        format!("{:.0} readings/s", m.readings_per_s),
        format!("{:.1} %", m.cpu_percent),
        format!("{:.1} MiB", m.peak_rss_mib),
        verdict(m.peak_rss_mib <= 32.0, "peak RSS at most 32 MB"),
    ]);
    drop(r);

    // 4. CPU at 1,000 readings/s.
    let r = rig(10, 100, "1s", "1s")?;
    let m = measure(&r, Duration::from_secs(5), Duration::from_secs(30));
    rows.push(vec![
        "idle load: 10 devices x 100 points every 1s (1,000 readings/s)".into(),
        format!("{:.0} readings/s", m.readings_per_s),
        format!("{:.2} %", m.cpu_percent),
        format!("{:.1} MiB", m.peak_rss_mib),
        verdict(m.cpu_percent < 5.0, "under 5 % of one core"),
    ]);
    drop(r);

    // 5. Latency and crashes at 50 devices x 100 points every 100 ms, synced every 1 s.
    let mut r = rig(50, 100, "100ms", "1s")?;
    std::thread::sleep(Duration::from_secs(4));
    r.counter.counts.timing.store(true, Ordering::Relaxed);
    let m = measure(&r, Duration::ZERO, Duration::from_secs(15));
    r.counter.counts.timing.store(false, Ordering::Relaxed);
    let (p50, p99) = (
        r.counter.counts.latency_quantile(0.5),
        r.counter.counts.latency_quantile(0.99),
    );
    rows.push(vec![
        "latency: 50 devices x 100 points every 100ms, read -> subscriber".into(),
        format!(
            "p50 {p50} ms, p99 {p99} ms ({:.0} readings/s)",
            m.readings_per_s
        ),
        format!("{:.0} %", m.cpu_percent),
        format!("{:.1} MiB", m.peak_rss_mib),
        verdict(p99 <= 50, "p99 at most 50 ms"),
    ]);
    r.counter.counts.tracing.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    let mut kills = Vec::new();
    for i in 0..10u64 {
        std::thread::sleep(Duration::from_millis(1200 + (i * 389) % 900));
        kills.push(now_ms());
        r.gateway.kill();
        r.gateway.restart()?;
    }
    let last = *kills.last().unwrap_or(&0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while r.counter.counts.newest_ts.load(Ordering::Relaxed) < last + 5000
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    r.counter.counts.tracing.store(false, Ordering::Relaxed);
    let loss = hazgate_e2e::crash::judge(&r.counter.counts.times.lock().unwrap(), 100, &kills);
    rows.push(vec![
        "crashes: 10 SIGKILLs under that load, every device's polls counted".into(),
        format!(
            "{} readings; polls missing while running: {}; lost at the kills: {} (at most {} of one device at one kill)",
            loss.received, loss.missing_while_running, loss.lost_at_kills, loss.worst_at_one_kill
        ),
        "-".into(),
        "-".into(),
        verdict(
            loss.missing_while_running == 0 && loss.lost_at_kills == 0,
            "nothing lost",
        ),
    ]);
    notes.push("Crashes: a poll counts as lost when a device's readings skip a poll interval; a skip across a kill is attributed to it (polls read from the device but not yet written when the process died), any other skip counts as missing while running. The time the process is dead is not a loss: nothing is polled then.".to_string());
    drop(r);

    // 6. Backlog: 60 s outage at 10,000 readings/s stores 600,000 readings (the volume of a
    // 10-minute outage at 1,000/s), then the broker returns while live data keeps flowing.
    let mut r = rig(100, 100, "1s", "1s")?;
    std::thread::sleep(Duration::from_secs(5));
    let outage_from = now_ms();
    r.counter
        .counts
        .window_from
        .store(outage_from, Ordering::Relaxed);
    r.counter
        .counts
        .window_to
        .store(i64::MAX, Ordering::Relaxed);
    r.broker.stop();
    std::thread::sleep(Duration::from_secs(60));
    let outage_to = now_ms();
    r.counter
        .counts
        .window_to
        .store(outage_to, Ordering::Relaxed);
    let in_before = r.counter.counts.in_window.load(Ordering::Relaxed);
    r.broker.restart()?;
    let restarted = Instant::now();
    // The gateway reconnects after its backoff (at most 30 s); time the drain from then.
    let mut reconnected = None;
    let mut drained = None;
    let limit = Instant::now() + Duration::from_secs(150);
    let mut last_count = r.counter.counts.messages.load(Ordering::Relaxed);
    while Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(100));
        let messages = r.counter.counts.messages.load(Ordering::Relaxed);
        if reconnected.is_none() && messages > last_count {
            reconnected = Some(Instant::now());
        }
        last_count = messages;
        let seqs = r.counter.counts.seqs.lock().unwrap();
        let complete =
            seqs.first() == Some(&1) && seqs.last().map(|l| *l as usize) == Some(seqs.len());
        drop(seqs);
        let newest = r.counter.counts.newest_ts.load(Ordering::Relaxed);
        if complete && newest > outage_to + 2000 {
            drained = Some(Instant::now());
            break;
        }
    }
    let stored = r.counter.counts.in_window.load(Ordering::Relaxed) - in_before;
    let live = measure(&r, Duration::ZERO, Duration::from_secs(5));
    match (reconnected, drained) {
        (Some(back), Some(done)) => {
            let drain = done.duration_since(back).as_secs_f64();
            rows.push(vec![
                format!(
                    "backlog: {stored} readings stored in a 60 s outage, drained behind live data"
                ),
                format!(
                    "{:.1} s to drain ({:.0} readings/s)",
                    drain,
                    stored as f64 / drain.max(0.001)
                ),
                format!("{:.0} % (live)", live.cpu_percent),
                format!("{:.1} MiB", live.peak_rss_mib),
                verdict(
                    drain <= 30.0 && stored >= 550_000,
                    "600,000 readings within 30 s",
                ),
            ]);
            notes.push(format!(
                "Backlog: the gateway reconnected {:.1} s after the broker returned (backoff with jitter, at most 30 s); the drain is timed from the first message after it. Live data kept arriving meanwhile: {:.0} readings/s after the drain.",
                back.duration_since(restarted).as_secs_f64(),
                live.readings_per_s
            ));
        }
        _ => rows.push(vec![
            "backlog".into(),
            "did not drain within 150 s".into(),
            "-".into(),
            "-".into(),
            "NOT met".into(),
        ]),
    }
    drop(r);

    notes.push(format!(
        "hazsim, hazgate (release), mosquitto and the subscriber share one machine: {}. CPU and peak RSS are hazgate's own (/proc: utime+stime, VmHWM). Store synced every 1 s.",
        machine()
    ));
    Ok(vec![Table {
        title: "End to end: hazsim -> hazgate -> mosquitto -> subscriber".into(),
        header: vec![
            "run".into(),
            "result".into(),
            "hazgate CPU".into(),
            "hazgate peak RSS".into(),
            "target".into(),
        ],
        rows,
        notes,
    }])
}
