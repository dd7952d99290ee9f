//! The lean uplink with real processes: telemetry is sent as soon as it is written, so a
//! SIGKILL loses at most the poll in flight (not the unsynced second); report by exception
//! publishes a change just past the deadband and not one within it, and the integrity
//! report on time; five-minute statistics arrive (the gateway's clock set just before a
//! period ends); compressed and plain payloads both validate and are stored alike.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hazgate_e2e::central::Central;
use hazgate_e2e::crash::judge;
use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::faults::FakeClock;
use hazgate_e2e::mqtt::{publish_all, Broker, Received, Subscriber};
use hazgate_e2e::schema::Schemas;
use hazgate_e2e::{free_ports, now_ms, Sim, Workdir};
use hazgate_wire::payload::{compress, Encoding};

const POLL_MS: i64 = 200;

/// Per device, the acquisition times of every reading received on telemetry topics.
fn times(received: &[Received]) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for m in received.iter().filter(|m| m.topic.ends_with("/telemetry")) {
        let v = m.json();
        for r in v["readings"].as_array().into_iter().flatten() {
            if let (Some(d), Some(ts)) = (r["device"].as_str(), r["ts"].as_i64()) {
                out.entry(d.to_string()).or_default().push(ts);
            }
        }
    }
    out
}

#[test]
fn a_sigkill_loses_at_most_the_poll_in_flight() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let ports = free_ports(4);
    let mut site = format!(
        "[site]\nid = \"T-KILL\"\ngateway = \"gw-kill\"\n[uplink]\nbroker = \"{}\"\n[store]\ndir = \"store\"\nsync_interval = \"1s\"\n",
        broker.url()
    );
    for (i, port) in ports.iter().enumerate() {
        site.push_str(&format!(
            "[[bus]]\nid = \"tcp-{i}\"\ntcp = {{ host = \"127.0.0.1\", port = {port} }}\ntimeout = \"150ms\"\n[[device]]\nid = \"PT-{i}\"\nbus = \"tcp-{i}\"\nunit = 1\nprofile = \"pressure-transmitter-f32\"\npoll = \"{POLL_MS}ms\"\nreport = \"every_poll\"\n"
        ));
    }
    let site = w.write("site.toml", &site);
    let _sim = Sim::start(&site, &[]).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/+/+/telemetry").unwrap();
    let mut gw = Gateway::start(&site, &w.path().join("hazgate.log")).unwrap();
    sub.wait_for(Duration::from_secs(20), "first telemetry", |m| {
        !m.is_empty()
    })
    .unwrap();
    // Kill at moments that fall anywhere in the sync interval.
    let mut kills = Vec::new();
    for i in 0..5u64 {
        std::thread::sleep(Duration::from_millis(900 + (i * 373) % 700));
        kills.push(now_ms());
        gw.kill();
        gw.restart().unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let last_kill = *kills.last().unwrap();
    sub.wait_for(
        Duration::from_secs(20),
        "telemetry after the last restart",
        |m| {
            times(m)
                .values()
                .all(|t| t.iter().any(|&ts| ts > last_kill + 2000))
        },
    )
    .unwrap();
    let loss = judge(&times(&sub.snapshot()), POLL_MS, &kills);
    assert_eq!(
        loss.missing_while_running, 0,
        "polls missing while the gateway ran: {loss:?}"
    );
    assert!(
        loss.worst_at_one_kill <= 1,
        "a kill lost more than the poll in flight: {loss:?} (sync is 1 s: before, up to 5 polls were lost)"
    );
    assert!(loss.received > 4 * 40, "{loss:?}");
}

/// One gateway whose wall clock stands 25 s before a five-minute period ends: report by
/// exception, the integrity report and the period's statistics in one run.
#[test]
fn deadband_integrity_and_statistics_on_the_wire() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let port = free_ports(1)[0];
    let site = w.write(
        "site.toml",
        &format!(
            r#"
[site]
id = "T-RBE"
gateway = "gw-rbe"
[uplink]
broker = "{}"
[store]
dir = "store"
[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {port} }}
[[device]]
id = "TT-401"
bus = "tcp-1"
unit = 1
profile = "temperature-transmitter"
poll = "{POLL_MS}ms"
[device.points.TEMPERATURE]
report = {{ deadband = 1.0, every = "4s" }}
"#,
            broker.url()
        ),
    );
    let sim = Sim::start(&site, &[]).unwrap();
    sim.set("TT-401", "TEMPERATURE", 20.0).unwrap();
    sim.set("TT-401", "HOUSING_TEMP", 30.0).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    let clock = FakeClock::new(w.path()).unwrap();
    let to_boundary = 300_000 - now_ms().rem_euclid(300_000);
    clock.step((to_boundary - 25_000) / 1000).unwrap();
    let env = clock.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _gw = Gateway::start_with_env(&site, &w.path().join("hazgate.log"), &env).unwrap();
    let schemas = Schemas::load().unwrap();

    let temperature = |m: &[Received]| -> Vec<(Instant, f64)> {
        m.iter()
            .filter(|x| x.topic.ends_with("/telemetry"))
            .flat_map(|x| {
                let v = x.json();
                v["readings"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r["point"] == "TEMPERATURE")
                    .filter_map(|r| r["value"].as_f64())
                    .collect::<Vec<_>>()
            })
            .map(|v| (Instant::now(), v))
            .collect()
    };
    let values = |m: &[Received]| {
        temperature(m)
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
    };
    sub.wait_for(Duration::from_secs(20), "the first temperature", |m| {
        values(m).contains(&20.0)
    })
    .unwrap();
    // Every telemetry message so far came compressed (unless zstd would not shrink it: a
    // message of a reading or two goes as JSON) and validates once decoded.
    let all = sub.snapshot();
    let telemetry: Vec<_> = all
        .iter()
        .filter(|m| m.topic.ends_with("/telemetry"))
        .collect();
    for m in &telemetry {
        assert!(
            m.encoding == Encoding::Zstd
                || hazgate_wire::payload::compress(&m.payload) == m.payload,
            "telemetry is compressed by default when that saves bytes"
        );
        schemas.validate(&m.json()).unwrap();
    }
    assert!(
        telemetry.iter().any(|m| m.encoding == Encoding::Zstd),
        "a poll of several points is compressed"
    );
    // Within the deadband: not published.
    sim.set("TT-401", "TEMPERATURE", 20.9).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !values(&sub.snapshot()).contains(&20.9),
        "20.9 is within 1.0 of 20.0 and must not be published: {:?}",
        values(&sub.snapshot())
    );
    // Just past it: published at once.
    sim.set("TT-401", "TEMPERATURE", 21.1).unwrap();
    let t = Instant::now();
    sub.wait_for(Duration::from_secs(3), "21.1, past the deadband", |m| {
        values(m).contains(&21.1)
    })
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Nothing moves: the integrity report comes after `every` (4 s), not before.
    let seen = values(&sub.snapshot())
        .iter()
        .filter(|&&v| v == 21.1)
        .count();
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(
        values(&sub.snapshot())
            .iter()
            .filter(|&&v| v == 21.1)
            .count(),
        seen,
        "no report before the integrity period"
    );
    sub.wait_for(Duration::from_secs(3), "the integrity report", |m| {
        values(m).iter().filter(|&&v| v == 21.1).count() > seen
    })
    .unwrap();

    // The period ends 25 s after start (gateway time) and closes 10 s later.
    let all = sub
        .wait_for(Duration::from_secs(60), "five-minute statistics", |m| {
            m.iter().any(|x| x.topic.ends_with("/stats"))
        })
        .unwrap();
    let stats = all.iter().find(|x| x.topic.ends_with("/stats")).unwrap();
    assert!(
        stats.encoding == Encoding::Zstd
            || hazgate_wire::payload::compress(&stats.payload) == stats.payload
    );
    let v = stats.json();
    schemas.validate(&v).unwrap();
    let housing = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["point"] == "HOUSING_TEMP")
        .unwrap()
        .clone();
    // Every poll of the period is counted, published or not (about 25 s of 5 polls/s).
    let samples = housing["samples"].as_u64().unwrap();
    assert!((40..=200).contains(&samples), "{housing}");
    assert_eq!(housing["good"], housing["samples"]);
    assert_eq!(housing["min"], json!(30.0));
    assert_eq!(housing["max"], json!(30.0));
    assert_eq!(housing["mean"], json!(30.0));
    let published_housing: usize = all
        .iter()
        .filter(|x| x.topic.ends_with("/telemetry"))
        .map(|x| {
            x.json()["readings"].as_array().map_or(0, |r| {
                r.iter().filter(|r| r["point"] == "HOUSING_TEMP").count()
            })
        })
        .sum();
    assert!(
        (published_housing as u64) < samples / 4,
        "a constant point is not published every poll: {published_housing} of {samples}"
    );
}

/// The same readings as plain JSON from one gateway and as a zstd frame from another: both
/// validate, both are stored, and the store holds the same values; a statistics message is
/// stored too, and garbage behind the zstd magic is refused, not stored.
#[test]
fn compressed_and_plain_payloads_are_stored_alike() {
    let w = Workdir::new();
    let central = Central::start(&w, "hazingest-uplink-test", |t| t).unwrap();
    let schemas = Schemas::load().unwrap();
    let ts = now_ms() - 60_000;
    let telemetry = |gateway: &str| -> Value {
        json!({"kind": "telemetry", "v": 1, "site": "T-ZSTD", "gateway": gateway, "seq": 1,
            "readings": (0..50).map(|i| json!({"device": "PT-1", "point": "PRESSURE", "ts": ts + i * 1000,
                "value": 0.5 + i as f64 / 100.0, "unit": "MPa", "quality": "good"})).collect::<Vec<_>>()})
    };
    let period = (ts / 300_000 - 1) * 300_000;
    let stats = json!({"kind": "stats", "v": 1, "site": "T-ZSTD", "gateway": "gw-zstd", "seq": 1,
        "from_ts": period, "to_ts": period + 300_000,
        "points": [{"device": "PT-1", "point": "PRESSURE", "unit": "MPa", "samples": 300, "good": 299,
                    "min": 0.5, "max": 0.99, "mean": 0.74}]});
    for m in [&telemetry("gw-json"), &telemetry("gw-zstd"), &stats] {
        schemas.validate(m).unwrap();
    }
    let plain = telemetry("gw-json").to_string().into_bytes();
    let packed = compress(telemetry("gw-zstd").to_string().as_bytes());
    assert!(
        packed.len() * 4 < plain.len(),
        "{} vs {}",
        packed.len(),
        plain.len()
    );
    let mut garbage = hazgate_wire::payload::ZSTD_MAGIC.to_vec();
    garbage.extend_from_slice(b"no frame here");
    publish_all(
        central.broker.port,
        &[
            ("hazard/T-ZSTD/gw-json/telemetry".into(), plain),
            ("hazard/T-ZSTD/gw-zstd/telemetry".into(), packed),
            (
                "hazard/T-ZSTD/gw-zstd/stats".into(),
                compress(stats.to_string().as_bytes()),
            ),
            ("hazard/T-ZSTD/gw-bad/telemetry".into(), garbage),
        ],
    )
    .unwrap();
    let series = |gateway: &str| {
        central
            .vm
            .export(&format!(
                "{{__name__=\"reading_value\",site=\"T-ZSTD\",gateway=\"{gateway}\"}}"
            ))
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while series("gw-json").first().map_or(0, |s| s.values.len()) < 50
        || series("gw-zstd").first().map_or(0, |s| s.values.len()) < 50
    {
        assert!(Instant::now() < deadline, "both gateways' readings stored");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (a, b) = (&series("gw-json")[0], &series("gw-zstd")[0]);
    assert_eq!(a.values, b.values);
    assert_eq!(a.timestamps, b.timestamps);
    assert_eq!(a.label("unit"), b.label("unit"));
    let stored = || {
        central
            .vm
            .export("{__name__=\"stats_samples\",site=\"T-ZSTD\"}")
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the statistics were not stored: {}",
            central.ingest.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let samples = stored();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(samples[0].values, vec![Some(300.0)]);
    assert_eq!(samples[0].timestamps, vec![period]);
    assert_eq!(
        central
            .vm
            .count("{__name__=\"reading_value\",gateway=\"gw-bad\"}")
            .unwrap(),
        0
    );
    let metrics = hazgate_e2e::http::get(central.metrics, "/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("bad_compression") && !l.starts_with('#') && !l.ends_with(" 0")),
        "the refusal is counted: {}",
        metrics
            .lines()
            .filter(|l| l.contains("reject"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
