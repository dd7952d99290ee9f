//! `hazgate run` against Debian's mosquitto and `hazsim`: every reading reaches a
//! subscriber in the documented format with `seq` without gaps, across a broker outage,
//! across SIGKILLs at random moments, and with a store too small for an outage, where the
//! loss is reported exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hazgate_e2e::daemon::{dir_size, Gateway};
use hazgate_e2e::mqtt::{Broker, Received, Subscriber};
use hazgate_e2e::schema::Schemas;
use hazgate_e2e::{free_port, now_ms, Sim, Workdir};
use serde_json::Value;

const POLL_MS: i64 = 200;
const SYNC_MS: i64 = 200;

/// A site with a TCP bus (two transmitters) and an RS-485 line (a gas controller).
fn site(w: &Workdir, broker: &str, store_extra: &str, extra_devices: &str) -> PathBuf {
    let tty = w.path().join("ttyRS485");
    w.write(
        "site.toml",
        &format!(
            r#"
[site]
id = "T-0001"
gateway = "gw-test"

[uplink]
broker = "{broker}"
# Plain JSON: the full-store test sizes its store for uncompressed telemetry.
compress = "none"

[store]
dir = "store"
sync_interval = "{SYNC_MS}ms"
{store_extra}

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}
timeout = "150ms"

[[bus]]
id = "rs485-1"
rtu = {{ port = "{tty}", baud = 115200 }}
timeout = "150ms"

[[device]]
id = "PT-201"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "{POLL_MS}ms"
report = "every_poll"   # these tests count every poll on the wire

[[device]]
id = "TT-401"
bus = "tcp-1"
unit = 2
profile = "temperature-transmitter"
poll = "{POLL_MS}ms"
report = "every_poll"   # these tests count every poll on the wire

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "{POLL_MS}ms"
report = "every_poll"   # these tests count every poll on the wire
{extra_devices}
"#,
            tcp = free_port(),
            tty = tty.display()
        ),
    )
}

/// Telemetry readings by (device, point, ts), with how often each arrived.
struct Telemetry {
    seqs: Vec<u64>,
    readings: BTreeMap<(String, String, i64), u32>,
    gaps: Vec<Value>,
}

fn telemetry(messages: &[Received], schemas: &Schemas) -> Telemetry {
    let mut t = Telemetry {
        seqs: Vec::new(),
        readings: BTreeMap::new(),
        gaps: Vec::new(),
    };
    for m in messages {
        let json = m.json();
        schemas.validate(&json).unwrap();
        assert_eq!(json["site"], "T-0001");
        assert_eq!(json["gateway"], "gw-test");
        if !m.topic.ends_with("/telemetry") {
            continue;
        }
        assert_eq!(m.topic, "hazard/T-0001/gw-test/telemetry");
        t.seqs.push(json["seq"].as_u64().unwrap());
        match json["kind"].as_str() {
            Some("gap") => t.gaps.push(json),
            Some("telemetry") => {
                for r in json["readings"].as_array().unwrap() {
                    let key = (
                        r["device"].as_str().unwrap().to_string(),
                        r["point"].as_str().unwrap().to_string(),
                        r["ts"].as_i64().unwrap(),
                    );
                    *t.readings.entry(key).or_default() += 1;
                }
            }
            other => panic!("unexpected kind {other:?} on the telemetry topic"),
        }
    }
    t
}

/// Acquisition times of one device's cycles.
fn cycles(t: &Telemetry, device: &str) -> Vec<i64> {
    t.readings
        .keys()
        .filter(|(d, _, _)| d == device)
        .map(|(_, _, ts)| *ts)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Asserts a device was polled on its grid between `from` and `to`: no hole longer than
/// two intervals.
fn assert_continuous(t: &Telemetry, device: &str, from: i64, to: i64) {
    let c: Vec<i64> = cycles(t, device)
        .into_iter()
        .filter(|ts| *ts >= from && *ts <= to)
        .collect();
    assert!(
        !c.is_empty(),
        "{device}: no readings between {from} and {to}"
    );
    assert!(
        c[0] - from <= 3 * POLL_MS,
        "{device}: first reading {}ms after {from}",
        c[0] - from
    );
    assert!(
        to - c[c.len() - 1] <= 3 * POLL_MS,
        "{device}: last reading {}ms before {to}",
        to - c[c.len() - 1]
    );
    for w in c.windows(2) {
        assert!(
            w[1] - w[0] <= 2 * POLL_MS + 100,
            "{device}: no readings for {}ms after {}",
            w[1] - w[0],
            w[0]
        );
    }
}

/// Every telemetry seq was received, or reported lost by a gap message.
fn assert_seq_without_gaps(t: &Telemetry) {
    let mut distinct: BTreeSet<u64> = t.seqs.iter().copied().collect();
    for g in &t.gaps {
        distinct.extend(g["first_seq"].as_u64().unwrap()..=g["last_seq"].as_u64().unwrap());
    }
    let (first, last) = (*distinct.first().unwrap(), *distinct.last().unwrap());
    assert_eq!(first, 1, "telemetry seq starts at 1");
    let missing: Vec<u64> = (first..=last).filter(|s| !distinct.contains(s)).collect();
    assert!(missing.is_empty(), "telemetry seq has gaps: {missing:?}");
}

/// Whether the subscriber holds every telemetry message so far (seq without holes) and
/// readings acquired after `after`: the backlog and the present have both arrived.
fn caught_up(messages: &[Received], after: i64) -> bool {
    let mut seqs = BTreeSet::new();
    let mut newest = 0;
    for m in messages.iter().filter(|m| m.topic.ends_with("/telemetry")) {
        let json = m.json();
        seqs.insert(json["seq"].as_u64().unwrap_or(0));
        if json["kind"] == "gap" {
            seqs.extend(
                json["first_seq"].as_u64().unwrap_or(1)..=json["last_seq"].as_u64().unwrap_or(0),
            );
        }
        for r in json["readings"].as_array().into_iter().flatten() {
            newest = newest.max(r["ts"].as_i64().unwrap_or(0));
        }
    }
    newest > after
        && seqs.first() == Some(&1)
        && seqs.last().map(|l| *l as usize) == Some(seqs.len())
}

fn offline_received(messages: &[Received]) -> bool {
    messages
        .iter()
        .any(|m| m.topic.ends_with("/status") && m.json()["state"] == "offline")
}

struct Rig {
    w: Workdir,
    broker: Broker,
    _sim: Sim,
    sub: Subscriber,
    site: PathBuf,
    schemas: Schemas,
}

fn rig(store_extra: &str, extra_devices: &str) -> Rig {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mosquitto")).unwrap();
    let broker = Broker::start(&w.path().join("mosquitto")).unwrap();
    let site = site(&w, &broker.url(), store_extra, extra_devices);
    let sim = Sim::start(&site, &[]).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    Rig {
        w,
        broker,
        _sim: sim,
        sub,
        site,
        schemas: Schemas::load().unwrap(),
    }
}

/// Stops the gateway cleanly, waits until its `offline` reached the subscriber, and
/// checks that every telemetry seq arrived or was reported lost.
fn finish(r: &Rig, gw: &mut Gateway, wait: Duration) -> (Vec<Received>, Telemetry) {
    assert!(
        gw.stop(Duration::from_secs(15)),
        "clean exit on SIGTERM:\n{}",
        gw.log_text()
    );
    let messages = r
        .sub
        .wait_for(wait, "offline status", offline_received)
        .unwrap();
    let t = telemetry(&messages, &r.schemas);
    assert_seq_without_gaps(&t);
    (messages, t)
}

fn log_path(w: &Workdir) -> PathBuf {
    w.path().join("hazgate.log")
}

fn store_dir(w: &Workdir) -> PathBuf {
    w.path().join("store")
}

#[test]
fn every_reading_reaches_the_subscriber_in_order_and_format() {
    let r = rig("", "");
    let started = now_ms();
    let mut gw = Gateway::start(&r.site, &log_path(&r.w)).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let stopped = now_ms();
    let (messages, t) = finish(&r, &mut gw, Duration::from_secs(10));
    for d in ["PT-201", "TT-401", "GD-101"] {
        assert_continuous(&t, d, started + 1000, stopped - 300);
    }
    assert!(
        t.readings.values().all(|&n| n == 1),
        "a clean run sends nothing twice"
    );
    let status: Vec<Value> = messages
        .iter()
        .filter(|m| m.topic.ends_with("/status"))
        .map(|m| m.json())
        .collect();
    assert_eq!(status.first().unwrap()["state"], "online", "birth first");
    assert_eq!(
        status.last().unwrap()["state"],
        "offline",
        "clean shutdown says offline"
    );
}

#[test]
fn broker_outage_of_a_minute_loses_nothing() {
    let mut r = rig("", "");
    let started = now_ms();
    let mut gw = Gateway::start(&r.site, &log_path(&r.w)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    r.broker.stop();
    std::thread::sleep(Duration::from_secs(60));
    r.broker.restart().unwrap();
    // The gateway retries with backoff (at most 30 s); then backlog and live data flow.
    let back = now_ms();
    r.sub
        .wait_for(Duration::from_secs(90), "the backlog and live data", |m| {
            caught_up(m, back + 1000)
        })
        .unwrap();
    let stopped = now_ms();
    let (_, t) = finish(&r, &mut gw, Duration::from_secs(30));
    assert!(t.gaps.is_empty(), "nothing was evicted");
    for d in ["PT-201", "TT-401", "GD-101"] {
        assert_continuous(&t, d, started + 1000, stopped - 300);
    }
}

#[test]
fn sigkill_twenty_times_loses_nothing_older_than_one_sync_interval() {
    let r = rig("", "");
    let log = log_path(&r.w);
    let mut gw = Gateway::start(&r.site, &log).unwrap();
    let mut lives: Vec<(i64, i64)> = Vec::new();
    let mut seed = now_ms() as u64;
    for _ in 0..20 {
        let born = now_ms();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let life = 1200 + (seed >> 33) % 1500;
        std::thread::sleep(Duration::from_millis(life));
        let killed = now_ms();
        gw.kill();
        lives.push((born, killed));
        gw.restart().unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let (_, t) = finish(&r, &mut gw, Duration::from_secs(30));
    // Everything acquired earlier than one sync interval before each kill arrived (with
    // 100ms for the sync itself); the first 600ms of a life are start-up.
    for (born, killed) in &lives {
        for d in ["PT-201", "TT-401"] {
            assert_continuous(&t, d, born + 600, killed - SYNC_MS - 100);
        }
    }
    // Duplicates only within the in-flight window (plus acks not yet persisted) per kill.
    let duplicated_seqs = t.seqs.len() - t.seqs.iter().collect::<BTreeSet<_>>().len();
    assert!(
        duplicated_seqs <= 20 * (64 + 10),
        "{duplicated_seqs} messages sent twice"
    );
}

#[test]
fn full_store_evicts_oldest_and_reports_the_exact_gap() {
    // Eight more detectors polled every 50ms make about 85 KB/s of telemetry: 1 MiB holds
    // about 12 s of it, and the outage lasts 40 s.
    let busy: String = (1..=8)
        .map(|u| format!("[[device]]\nid = \"GD-2{u:02}\"\nbus = \"tcp-1\"\nunit = {}\nprofile = \"gas-detector-4ch\"\npoll = \"50ms\"\ntimeout = \"40ms\"\nreport = \"every_poll\"\n", u + 10))
        .collect();
    let mut r = rig("max_size = \"1MiB\"", &busy);
    let mut gw = Gateway::start(&r.site, &log_path(&r.w)).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    r.broker.stop();
    let outage_start = now_ms();
    let mut peak_rss = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        peak_rss = peak_rss.max(gw.rss_kib().unwrap_or(0));
        let size = dir_size(&store_dir(&r.w));
        assert!(
            size <= (1 << 20) + (256 << 10) + 4096,
            "store grew to {size} bytes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let outage_end = now_ms();
    r.broker.restart().unwrap();
    r.sub
        .wait_for(Duration::from_secs(90), "the backlog and live data", |m| {
            caught_up(m, outage_end + 1000)
        })
        .unwrap();
    let (_, t) = finish(&r, &mut gw, Duration::from_secs(30));
    assert!(!t.gaps.is_empty(), "an eviction must be reported");
    assert!(
        peak_rss < 64 * 1024,
        "memory stays bounded: peak RSS {peak_rss} KiB"
    );
    // Every acquisition time of the outage is either received or inside a reported gap.
    let lost: Vec<(i64, i64)> = t
        .gaps
        .iter()
        .map(|g| (g["from_ts"].as_i64().unwrap(), g["to_ts"].as_i64().unwrap()))
        .collect();
    // Two evicted segments may leave a few ms between the last reading of one and the
    // first of the next, in which no device was polled: a poll slot that falls there is
    // covered when it lies within half a poll of a gap.
    let covered = |ts: i64| {
        lost.iter()
            .any(|(a, b)| ts >= *a - POLL_MS / 2 && ts <= *b + POLL_MS / 2)
    };
    for d in ["PT-201", "GD-101"] {
        let got = cycles(&t, d);
        // Under load a poll cycle that overruns is skipped (and counted), so a single missing
        // slot is no loss. Evictions take whole segments, seconds of data: any hole longer
        // than a second in what arrived must lie inside a reported gap.
        let mut edges: Vec<i64> = got
            .iter()
            .copied()
            .filter(|ts| *ts > outage_start && *ts < outage_end)
            .collect();
        edges.insert(0, outage_start);
        edges.push(outage_end);
        for w in edges.windows(2) {
            if w[1] - w[0] > 1000 {
                let mut ts = w[0] + POLL_MS;
                while ts < w[1] - POLL_MS {
                    assert!(covered(ts), "{d}: no readings between {} and {}, and no gap reported at {ts} (gaps {lost:?})", w[0], w[1]);
                    ts += POLL_MS;
                }
            }
        }
        // Nothing is reported lost that arrived (at the edges, one message's readings may
        // reach a little into the next one's time span). Messages sent but never
        // acknowledged before they were evicted may have arrived: their gaps say so.
        let certain: Vec<(i64, i64)> = t
            .gaps
            .iter()
            .filter(|g| g["unconfirmed"] != true)
            .map(|g| (g["from_ts"].as_i64().unwrap(), g["to_ts"].as_i64().unwrap()))
            .collect();
        for ts in &got {
            assert!(
                !certain
                    .iter()
                    .any(|(a, b)| *ts > a + POLL_MS && *ts < b - POLL_MS),
                "{d}: reading at {ts} arrived but lies inside a reported gap"
            );
        }
    }
}
