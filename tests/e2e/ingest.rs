//! hazingest against real peers (mosquitto, victoria-metrics): untrusted messages are
//! refused by reason and never stored; a bad reading is refused alone while the good ones
//! of its message are stored; whatever is refused, and every record whose time cannot be
//! trusted, is in the quarantine, not in the store; a store outage loses nothing and acknowledges
//! nothing until written; two instances on a shared subscription split the load with
//! nothing lost and nothing doubled.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use hazgate_e2e::daemon::{central_toml, CentralSetup, Daemon};
use hazgate_e2e::http::{self, metric};
use hazgate_e2e::mqtt::{publish_all, wait_port, Broker};
use hazgate_e2e::victoria::VictoriaMetrics;
use hazgate_e2e::{free_ports, now_ms, wait_until, Workdir};

/// A telemetry message of `n` readings of one device, `seq` and times from `t0`.
fn telemetry(site: &str, gw: &str, seq: u64, t0: i64, n: usize) -> (String, Vec<u8>) {
    let readings: Vec<Value> = (0..n)
        .map(|i| {
            json!({"device": format!("D-{}", i % 10), "point": format!("P{}", i / 10), "ts": t0,
                   "value": (seq * 100 + i as u64) as f64 / 10.0, "unit": "%LEL", "quality": "good"})
        })
        .collect();
    let m = json!({"kind": "telemetry", "v": 1, "site": site, "gateway": gw, "seq": seq, "readings": readings});
    (
        format!("hazard/{site}/{gw}/telemetry"),
        serde_json::to_vec(&m).unwrap(),
    )
}

struct Central {
    w: Workdir,
    broker: Broker,
    vm: VictoriaMetrics,
    /// Each instance with its metrics port.
    ingests: Vec<(Daemon, u16)>,
    /// Each instance's view port.
    webs: Vec<u16>,
}

/// mosquitto, victoria-metrics and `instances` hazingest sharing one group. A bounded
/// in-flight window, as a production broker has: the broker, not ingest, holds what is
/// not yet written.
fn central(instances: usize) -> Central {
    central_with(instances, "max_inflight_messages 50")
}

fn central_with(instances: usize, broker_conf: &str) -> Central {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mqtt")).unwrap();
    let broker = Broker::start_with(&w.path().join("mqtt"), broker_conf).unwrap();
    let vm = VictoriaMetrics::start(&w.path().join("vm")).unwrap();
    let mut ingests = Vec::new();
    let mut webs = Vec::new();
    for i in 0..instances {
        let ports = free_ports(2);
        let conf = w.write(
            &format!("central-{i}.toml"),
            &central_toml(&CentralSetup {
                broker_port: broker.port,
                store_url: &vm.url(),
                client_id: &format!("hazingest-{i}"),
                web: ports[0],
                metrics: ports[1],
            }),
        );
        let d = Daemon::ingest(&conf, &w.path().join(format!("ingest-{i}.log"))).unwrap();
        wait_port(ports[1], Duration::from_secs(10)).unwrap();
        wait_until(Duration::from_secs(10), "ingest connected", || {
            Ok(metric(ports[1], "hazingest_mqtt_connected")? == 1.0)
        })
        .unwrap();
        ingests.push((d, ports[1]));
        webs.push(ports[0]);
    }
    Central {
        w,
        broker,
        vm,
        ingests,
        webs,
    }
}

#[test]
fn untrusted_messages_are_refused_by_reason_and_never_stored() {
    let c = central(1);
    let metrics = c.ingests[0].1;
    let t = now_ms();
    let mut good = telemetry("S-1", "gw-1", 1, t, 20);
    // A unit that needs every escape of the line protocol.
    let unit = r"m H2O, a=b\c";
    let mut g: Value = serde_json::from_slice(&good.1).unwrap();
    g["readings"][0]["unit"] = json!(unit);
    good.1 = serde_json::to_vec(&g).unwrap();
    let mut v2: Value = serde_json::from_slice(&good.1).unwrap();
    v2["v"] = json!(2);
    let mut other_site: Value = serde_json::from_slice(&good.1).unwrap();
    other_site["site"] = json!("S-2");
    // A clear that carries a level: refused whole.
    let bad_alarm = json!({"kind": "alarm", "v": 1, "site": "S-1", "gateway": "gw-1", "seq": 1,
        "event": "clear", "condition": "limit", "device": "D-1", "point": "P0", "hazard_source": null,
        "level": "red", "previous": "red", "value": 1.0, "limit": 2.0, "unit": null, "label": null, "ts": t});
    let status = json!({"kind": "status", "v": 1, "site": "S-1", "gateway": "gw-1", "seq": 1,
        "state": "online", "ts": t, "version": "x", "config_hash": "h", "boot_ts": t});
    let topic = good.0.clone();
    let bytes = |v: &Value| serde_json::to_vec(v).unwrap();
    let bad = vec![
        (topic.clone(), vec![b'{'; 2 << 20]),
        (topic.clone(), b"\xff\xfe not json".to_vec()),
        (topic.clone(), bytes(&v2)),
        (
            topic.clone(),
            br#"{"kind":"telemetry","v":1,"site":"S-1"}"#.to_vec(),
        ),
        ("hazard/S-1/gw!1/telemetry".to_string(), good.1.clone()),
        (topic.clone(), bytes(&status)),
        (topic.clone(), bytes(&other_site)),
        ("hazard/S-1/gw-1/alarm".to_string(), bytes(&bad_alarm)),
    ];
    publish_all(c.broker.port, &bad).unwrap();
    publish_all(c.broker.port, &[good]).unwrap();
    wait_until(Duration::from_secs(20), "the good readings written", || {
        Ok(metric(metrics, "hazingest_readings_written_total")? >= 20.0)
    })
    .unwrap();
    for (reason, n) in [
        ("too_large", 1.0),
        ("not_json", 1.0),
        ("unsupported_version", 1.0),
        ("malformed", 1.0),
        ("unknown_topic", 1.0),
        ("kind_mismatch", 1.0),
        ("origin_mismatch", 1.0),
        ("bad_content", 1.0),
    ] {
        let got = metric(
            metrics,
            &format!("hazingest_rejected_total{{reason=\"{reason}\"}}"),
        )
        .unwrap();
        assert_eq!(got, n, "{reason}");
        // Nothing refused vanishes: each is in the quarantine too.
        let kept = metric(
            metrics,
            &format!("hazingest_quarantined_total{{reason=\"{reason}\"}}"),
        )
        .unwrap();
        assert_eq!(kept, n, "{reason} quarantined");
    }
    let records = quarantined(c.webs[0], 100).unwrap();
    assert_eq!(records.len(), 8, "{records:#?}");
    let too_large = records.iter().find(|r| r["reason"] == "too_large").unwrap();
    assert_eq!(too_large["topic"], topic);
    assert_eq!(too_large["bytes"], 2 << 20);
    // Only the good message's readings, each once, with their labels intact.
    assert_eq!(c.vm.count(r#"{__name__="reading_quality"}"#).unwrap(), 20);
    let series =
        c.vm.export(r#"{__name__="reading_value",device="D-0",point="P0"}"#)
            .unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].label("unit"), unit);
    assert_eq!(
        metric(metrics, "hazingest_readings_written_total").unwrap(),
        20.0
    );
    // The refusals were acknowledged: nothing is held, and the broker has nothing to resend.
    assert_eq!(metric(metrics, "hazingest_pending_bytes").unwrap(), 0.0);
}

/// The view's `/api/quarantine`, newest first.
fn quarantined(web: u16, limit: usize) -> Result<Vec<Value>> {
    let body = http::get(web, &format!("/api/quarantine?limit={limit}"))?;
    let v: Value = serde_json::from_str(&body)?;
    Ok(v["records"].as_array().cloned().unwrap_or_default())
}

#[test]
fn a_bad_reading_is_refused_alone_and_kept_in_the_quarantine() {
    let c = central(1);
    let (metrics, web) = (c.ingests[0].1, c.webs[0]);
    let t = now_ms();
    let (topic, payload) = telemetry("S-PR", "gw-1", 1, t, 10);
    let mut m: Value = serde_json::from_slice(&payload).unwrap();
    m["readings"][3]["device"] = json!("D 1,x=y"); // bad id
    m["readings"][5]["unit"] = json!(""); // empty unit
    m["readings"][7]["ts"] = json!(1000); // a clock at 1970
    m["readings"][8]["quality"] = json!("uncertain"); // the gateway says its clock is wrong
    m["readings"][8]["reason"] = json!("clock");
    m["readings"][8]["detail"] = json!("clock before the build date");
    // An alarm stamped in 1970: on the page live, kept out of the store.
    let alarm = json!({"kind": "alarm", "v": 1, "site": "S-PR", "gateway": "gw-1", "seq": 1,
        "event": "raise", "condition": "limit", "device": "D-1", "point": "P0", "hazard_source": null,
        "level": "red", "previous": null, "value": 60.0, "limit": 50.0, "unit": "%LEL", "label": null, "ts": 5000});
    publish_all(
        c.broker.port,
        &[
            (topic.clone(), serde_json::to_vec(&m).unwrap()),
            (
                "hazard/S-PR/gw-1/alarm".into(),
                serde_json::to_vec(&alarm).unwrap(),
            ),
        ],
    )
    .unwrap();
    wait_until(Duration::from_secs(20), "the good readings written", || {
        Ok(metric(metrics, "hazingest_readings_written_total")? >= 6.0)
    })
    .unwrap();
    wait_until(Duration::from_secs(20), "the alarm quarantined", || {
        Ok(metric(metrics, "hazingest_quarantined_total{reason=\"clock\"}")? >= 3.0)
    })
    .unwrap();
    // The six good readings are in the store, each once; none of the four others.
    let stored =
        c.vm.export(r#"{__name__="reading_quality",site="S-PR"}"#)
            .unwrap();
    let mut devices: Vec<(String, String)> = stored
        .iter()
        .map(|s| (s.label("device").to_string(), s.label("point").to_string()))
        .collect();
    devices.sort();
    let want: Vec<(String, String)> = [0, 1, 2, 4, 6, 9]
        .iter()
        .map(|i| (format!("D-{i}"), "P0".to_string()))
        .collect();
    assert_eq!(devices, want);
    assert!(stored.iter().all(|s| s.timestamps == vec![t]));
    assert_eq!(
        c.vm.count(r#"{__name__="alarm_level_code",site="S-PR"}"#)
            .unwrap(),
        0
    );
    // The message itself was taken, not refused.
    assert_eq!(
        metric(metrics, "hazingest_rejected_total{reason=\"bad_content\"}").unwrap(),
        0.0
    );
    assert_eq!(
        metric(
            metrics,
            "hazingest_quarantined_total{reason=\"bad_content\"}"
        )
        .unwrap(),
        2.0
    );
    assert_eq!(
        metric(metrics, "hazingest_quarantined_total{reason=\"clock\"}").unwrap(),
        3.0
    );
    // Each one, with its reason, topic and seq, newest first.
    let records = quarantined(web, 10).unwrap();
    assert_eq!(records.len(), 5, "{records:#?}");
    assert_eq!(records[0]["kind"], "alarm");
    assert_eq!(records[0]["record"]["ts"], 5000);
    let readings: Vec<(String, String)> = records[1..]
        .iter()
        .map(|r| {
            assert_eq!(r["topic"], topic);
            assert_eq!(r["seq"], 1);
            assert_eq!(r["kind"], "reading");
            (
                r["reason"].as_str().unwrap().to_string(),
                r["record"]["device"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        readings,
        [
            ("clock", "D-8"),
            ("clock", "D-7"),
            ("bad_content", "D-5"),
            ("bad_content", "D 1,x=y")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(
        records[4]["detail"]
            .as_str()
            .unwrap()
            .contains("not a valid id"),
        "{records:#?}"
    );
    // The same lines are in the files, for an operator without the view.
    let dir = c.w.path().join("quarantine-hazingest-0");
    let lines: usize = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(lines, 5);
    // A bounded read, and a clear refusal of a bad limit.
    assert_eq!(quarantined(web, 2).unwrap().len(), 2);
    let (status, _) = http::request(web, "GET", "/api/quarantine?limit=x", None).unwrap();
    assert_eq!(status, 400);
    assert_eq!(metric(metrics, "hazingest_pending_bytes").unwrap(), 0.0);
}

#[test]
fn a_store_outage_loses_nothing_and_acknowledges_nothing_unwritten() {
    // No in-flight limit at the broker: ingest's own limits (bytes and messages held
    // unacknowledged) have to hold, and must not stall the session.
    let mut c = central_with(1, "max_inflight_messages 0");
    let metrics = c.ingests[0].1;
    c.vm.stop();
    let t = now_ms() - 3_600_000;
    let mut batch: Vec<_> = (0..100)
        .map(|i| telemetry("S-OUT", "gw-1", i + 1, t + i as i64 * 1000, 50))
        .collect();
    batch.extend((0..6000).map(|i| telemetry("S-OUT", "gw-2", i + 1, t + i as i64 * 100, 1)));
    publish_all(c.broker.port, &batch).unwrap();
    wait_until(Duration::from_secs(20), "write failures", || {
        Ok(metric(metrics, "hazingest_write_failures_total")? >= 1.0)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        metric(metrics, "hazingest_readings_written_total").unwrap(),
        0.0
    );
    assert_eq!(metric(metrics, "hazingest_store_up").unwrap(), 0.0);
    let (status, health) = http::request(metrics, "GET", "/health", None).unwrap();
    assert_eq!(status, 503, "{health}");
    assert!(health.contains("\"store_up\":false"), "{health}");
    // Held memory stays bounded by the broker's window, not the backlog.
    let pending = metric(metrics, "hazingest_pending_bytes").unwrap();
    assert!(
        pending > 0.0 && pending < 64.0 * 1024.0 * 1024.0,
        "{pending}"
    );

    // A restart of ingest during the outage: the broker keeps the unacknowledged messages.
    c.ingests[0].0.stop(Duration::from_secs(30));
    c.ingests[0].0.restart().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    c.vm.restart().unwrap();
    wait_until(Duration::from_secs(60), "the backlog written", || {
        Ok(c.vm.count(r#"{__name__="reading_quality",site="S-OUT"}"#)? >= 11_000)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        c.vm.count(r#"{__name__="reading_quality",site="S-OUT"}"#)
            .unwrap(),
        11_000
    );
    assert_eq!(
        c.vm.count(r#"{__name__="reading_value",site="S-OUT"}"#)
            .unwrap(),
        11_000
    );
    wait_until(Duration::from_secs(20), "store up", || {
        Ok(metric(metrics, "hazingest_store_up")? == 1.0)
    })
    .unwrap();
}

#[test]
fn two_instances_split_the_load_with_nothing_lost_or_doubled() {
    let c = central(2);
    let t = now_ms() - 3_600_000;
    let batch: Vec<_> = (0..400)
        .map(|i| telemetry("S-SPLIT", "gw-1", i + 1, t + i as i64 * 1000, 25))
        .collect();
    publish_all(c.broker.port, &batch).unwrap();
    let taken = || -> Result<Vec<f64>> {
        c.ingests
            .iter()
            .map(|(_, m)| metric(*m, "hazingest_messages_total{kind=\"telemetry\"}"))
            .collect()
    };
    wait_until(Duration::from_secs(60), "all messages taken", || {
        Ok(taken()?.iter().sum::<f64>() >= 400.0)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let per_instance = taken().unwrap();
    // Each message went to exactly one instance, and both took a real share.
    assert_eq!(per_instance.iter().sum::<f64>(), 400.0, "{per_instance:?}");
    assert!(per_instance.iter().all(|&n| n >= 40.0), "{per_instance:?}");
    wait_until(Duration::from_secs(30), "all readings stored", || {
        Ok(c.vm
            .count(r#"{__name__="reading_quality",site="S-SPLIT"}"#)?
            >= 10_000)
    })
    .unwrap();
    let written: f64 = c
        .ingests
        .iter()
        .map(|(_, m)| metric(*m, "hazingest_readings_written_total").unwrap())
        .sum();
    assert_eq!(written, 10_000.0);
    assert_eq!(
        c.vm.count(r#"{__name__="reading_quality",site="S-SPLIT"}"#)
            .unwrap(),
        10_000
    );
}

#[test]
fn check_accepts_the_example_and_locates_errors() {
    let example = hazgate_e2e::workspace().join("examples/central.toml");
    let out = std::process::Command::new(hazgate_e2e::bin("hazingest"))
        .args(["check", "-c"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = Workdir::new();
    let bad = w.write(
        "central.toml",
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:1883\"\n[store]\nurl = \"http://127.0.0.1:8428\"\nbatch_interval = \"forever\"\n",
    );
    let out = std::process::Command::new(hazgate_e2e::bin("hazingest"))
        .args(["run", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("central.toml:5"), "{err}");
}

/// Opens `/api/events` and returns the stream once its head arrived, with the status.
fn open_events(web: u16) -> Result<(u16, std::net::TcpStream)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", web))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /api/events HTTP/1.1\r\nhost: x\r\n{}\r\n",
        http::auth_line(web)
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            anyhow::bail!("closed before the head");
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, s))
}

#[test]
fn the_view_bounds_history_queries_and_event_streams() {
    let c = central(1);
    let (metrics, web) = (c.ingests[0].1, c.webs[0]);
    // Bad parameters: a clear 400, never a panic (this is a debug build).
    for bad in [
        "to=-9223372036854775808",
        "from=-9223372036854775808&to=9223372036854775807",
        "from=yesterday",
        "limit=0",
        "limit=-1",
        "level=purple",
        "site=S%201",
        "from=2000&to=1000",
        "colour=red",
    ] {
        let (status, body) =
            http::request(web, "GET", &format!("/api/history?{bad}"), None).unwrap();
        assert_eq!(status, 400, "{bad}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(!v["error"].as_str().unwrap().is_empty(), "{bad}: {body}");
    }
    // 30 alarm events in the store.
    let t = now_ms() - 600_000;
    let alarms: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| {
            let m = json!({"kind": "alarm", "v": 1, "site": "S-H", "gateway": "gw-1", "seq": i + 1,
                "event": "raise", "condition": "limit", "device": "D-1", "point": "P0", "hazard_source": null,
                "level": "red", "previous": null, "value": 60.0 + i as f64, "limit": 50.0, "unit": "%LEL",
                "label": null, "ts": t + i * 1000});
            ("hazard/S-H/gw-1/alarm".to_string(), serde_json::to_vec(&m).unwrap())
        })
        .collect();
    publish_all(c.broker.port, &alarms).unwrap();
    wait_until(Duration::from_secs(20), "alarms written", || {
        Ok(metric(metrics, "hazingest_alarms_written_total")? >= 30.0)
    })
    .unwrap();
    wait_until(Duration::from_secs(20), "alarms in the store", || {
        Ok(c.vm.count(r#"{__name__="alarm_level_code",site="S-H"}"#)? >= 30)
    })
    .unwrap();
    // A range from 1970 to now is cut to 31 days, and the answer says so.
    let now = now_ms();
    let body = http::get(web, &format!("/api/history?site=S-H&from=0&to={now}")).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["span_capped"], true, "{body}");
    assert_eq!(v["to"], now);
    assert_eq!(v["from"], now - 31 * 86_400_000);
    assert_eq!(v["events"].as_array().unwrap().len(), 30);
    assert_eq!(v["more"], false);
    // A limit stops the read: no more than asked for, and the answer says more exist.
    let body = http::get(web, "/api/history?site=S-H&limit=10").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 10, "{body}");
    assert_eq!(v["more"], true, "{body}");
    // A limit over the cap is cut to it.
    let body = http::get(web, "/api/history?site=S-H&limit=1000000").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["limit"], 5000);
    assert_eq!(v["events"].as_array().unwrap().len(), 30);

    // Live event streams: 64 at once; the 65th is told to come back later.
    let streams: Vec<_> = (0..64)
        .map(|i| {
            let (status, s) = open_events(web).unwrap();
            assert_eq!(status, 200, "stream {i}");
            s
        })
        .collect();
    let (status, _) = open_events(web).unwrap();
    assert_eq!(status, 503);
    // The page and the API still answer meanwhile.
    assert!(http::get(web, "/api/overview").is_ok());
    drop(streams);
    wait_until(Duration::from_secs(10), "a stream slot free again", || {
        Ok(open_events(web)?.0 == 200)
    })
    .unwrap();
}
