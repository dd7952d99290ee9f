//! The whole path with real processes: hazsim -> hazgate -> mosquitto -> hazingest ->
//! victoria-metrics, and the regulator view in headless chromium. An alarm injected through
//! hazsim turns the page red within 2 s and clears; over a minute with a SIGKILL of the
//! gateway, a restart of ingest and a 30 s store outage, every reading published is in the
//! store exactly once, and every alarm is in the store and on the page.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use hazgate_e2e::browser::Browser;
use hazgate_e2e::daemon::{central_toml, CentralSetup, Daemon, Gateway, ADMIN_PASSWORD};
use hazgate_e2e::http::metric;
use hazgate_e2e::mqtt::{wait_port, Broker, Subscriber};
use hazgate_e2e::victoria::VictoriaMetrics;
use hazgate_e2e::{free_port, free_ports, wait_until, Sim, Workdir};

const SITE: &str = "T-REG";

fn site(broker: &str) -> String {
    format!(
        r#"
[site]
id = "{SITE}"
gateway = "gw-reg"
[uplink]
broker = "{broker}"
[store]
dir = "store"
sync_interval = "200ms"

[[hazard_source]]
id = "HS-01"
name = "LPG spheres"
grade = 2

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}
timeout = "150ms"

[[device]]
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
hazard_source = "HS-01"
poll = "200ms"
report = "every_poll"   # the test counts every reading
[device.points.CH1.alarm]
limits = [
  {{ above = 25.0, level = "yellow", label = "一级报警" }},
  {{ above = 50.0, level = "red", label = "二级报警" }},
]
deadband = 1.0

[[device]]
id = "GT-301"
bus = "tcp-1"
unit = 2
profile = "gas-transmitter-4-20ma"
hazard_source = "HS-01"
poll = "500ms"
report = "every_poll"   # the test counts every reading
"#,
        tcp = free_port(),
    )
}

struct Rig {
    w: Workdir,
    broker: Broker,
    vm: VictoriaMetrics,
    sim: Sim,
    gateway: Gateway,
    ingest: Daemon,
    web: u16,
    metrics: u16,
}

fn rig() -> Rig {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start_with(&w.path().join("mq"), "max_inflight_messages 50").unwrap();
    let vm = VictoriaMetrics::start(&w.path().join("vm")).unwrap();
    let ports = free_ports(2);
    let central = w.write(
        "central.toml",
        &central_toml(&CentralSetup {
            broker_port: broker.port,
            store_url: &vm.url(),
            client_id: "hazingest-reg",
            web: ports[0],
            metrics: ports[1],
        }),
    );
    let ingest = Daemon::ingest(&central, &w.path().join("ingest.log")).unwrap();
    wait_port(ports[0], Duration::from_secs(10)).unwrap();
    let site = w.write("site.toml", &site(&broker.url()));
    let sim = Sim::start(&site, &[]).unwrap();
    let gateway = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    Rig {
        w,
        broker,
        vm,
        sim,
        gateway,
        ingest,
        web: ports[0],
        metrics: ports[1],
    }
}

fn set_gas(sim: &Sim, value: f64) {
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": value}))
        .unwrap();
}

/// What the page shows for the gateway and for the CH1 alarm row.
const GATEWAY_LEVEL: &str = r#"const g = document.querySelector('tr.gateway[data-site="T-REG"][data-gateway="gw-reg"]'); return g ? g.dataset.level : null;"#;
const CH1_ALARM: &str = r#"const a = document.querySelector('tr.alarm[data-device="GD-101"][data-point="CH1"]'); return a ? a.dataset.level : "none";"#;
const CH1_COLOUR: &str = r#"const b = document.querySelector('tr.alarm[data-device="GD-101"][data-point="CH1"] .badge'); return b ? getComputedStyle(b).backgroundColor : null;"#;

#[test]
fn an_alarm_from_hazsim_turns_the_page_red_within_2s_and_clears() {
    let r = rig();
    let browser = Browser::start().unwrap();
    browser.login(r.web, "admin", ADMIN_PASSWORD).unwrap();
    browser
        .wait_until(GATEWAY_LEVEL, &json!("none"), Duration::from_secs(20))
        .unwrap();
    assert_eq!(browser.eval(CH1_ALARM).unwrap(), json!("none"));

    let injected = Instant::now();
    set_gas(&r.sim, 60.0);
    browser
        .wait_until(CH1_ALARM, &json!("red"), Duration::from_secs(5))
        .unwrap();
    let took = injected.elapsed();
    assert!(took < Duration::from_secs(2), "red after {took:?}");
    // Red as the eye sees it, not only in the markup.
    assert_eq!(browser.eval(CH1_COLOUR).unwrap(), json!("rgb(211, 47, 47)"));
    assert_eq!(browser.eval(GATEWAY_LEVEL).unwrap(), json!("red"));
    // The event itself arrived live too.
    browser
        .wait_until(
            r#"return document.querySelectorAll('#live li[data-level="red"]').length > 0;"#,
            &json!(true),
            Duration::from_secs(2),
        )
        .unwrap();

    set_gas(&r.sim, 3.0);
    browser
        .wait_until(CH1_ALARM, &json!("none"), Duration::from_secs(5))
        .unwrap();
    browser
        .wait_until(GATEWAY_LEVEL, &json!("none"), Duration::from_secs(5))
        .unwrap();

    // The history from the store shows the raise and the clear, and filters by level.
    let rows = r#"return [...document.querySelectorAll('#history tbody tr')].map(t => t.dataset.event + ':' + t.dataset.level);"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browser
            .eval("document.querySelector('#history-filter button').click(); return 1;")
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let got = browser.eval(rows).unwrap().to_string();
        if got.contains("raise:red") && got.contains("clear:none") {
            break;
        }
        assert!(Instant::now() < deadline, "history shows {got}");
    }
    browser
        .eval("document.querySelector('#history-filter select[name=level]').value = 'red'; document.querySelector('#history-filter button').click(); return 1;")
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let got = browser.eval(rows).unwrap();
    let got: Vec<String> = serde_json::from_value(got).unwrap();
    assert!(
        !got.is_empty() && got.iter().all(|e| e.ends_with(":red")),
        "{got:?}"
    );
    let _ = (&r.w, &r.broker, &r.vm, &r.gateway, &r.ingest, r.metrics);
}

/// (device, point) -> acquisition times.
type Samples = BTreeMap<(String, String), BTreeSet<i64>>;

fn published_readings(sub: &Subscriber) -> Samples {
    let mut out = Samples::new();
    for m in sub
        .snapshot()
        .iter()
        .filter(|m| m.topic.ends_with("/telemetry"))
    {
        let j = m.json();
        assert_ne!(
            j["kind"], "gap",
            "the gateway's store never filled, yet it reports a gap"
        );
        for r in j["readings"].as_array().unwrap() {
            out.entry((
                r["device"].as_str().unwrap().into(),
                r["point"].as_str().unwrap().into(),
            ))
            .or_default()
            .insert(r["ts"].as_i64().unwrap());
        }
    }
    out
}

fn stored_readings(vm: &VictoriaMetrics) -> Result<(Samples, usize)> {
    let mut out = Samples::new();
    let mut total = 0;
    for s in vm.export(&format!(r#"{{__name__="reading_quality",site="{SITE}"}}"#))? {
        total += s.timestamps.len();
        out.entry((s.label("device").into(), s.label("point").into()))
            .or_default()
            .extend(s.timestamps.iter().copied());
    }
    Ok((out, total))
}

/// What tells alarm events apart: device, point, hazard source, condition, event, level.
type AlarmKey = (String, String, String, String, String, String, i64);

/// Distinct alarm events published.
fn published_alarms(sub: &Subscriber) -> BTreeSet<AlarmKey> {
    sub.snapshot()
        .iter()
        .filter(|m| m.topic.ends_with("/alarm"))
        .map(|m| {
            let j = m.json();
            let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
            (
                s("device"),
                s("point"),
                s("hazard_source"),
                s("condition"),
                s("event"),
                s("level"),
                j["ts"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_minute_of_failures_loses_nothing_and_doubles_nothing() {
    let mut r = rig();
    let sub = Subscriber::start(r.broker.port, "hazard/#").unwrap();
    let started = Instant::now();
    let pause = |s: u64| std::thread::sleep(Duration::from_secs(s));
    pause(8);
    set_gas(&r.sim, 60.0); // red
    pause(3);
    r.gateway.kill(); // SIGKILL, as a power cut
    pause(2);
    r.gateway.restart().unwrap();
    pause(4);
    set_gas(&r.sim, 30.0); // de-escalates to yellow
    pause(3);
    assert!(
        r.ingest.stop(Duration::from_secs(20)),
        "ingest stops cleanly"
    );
    r.ingest.restart().unwrap();
    pause(3);
    r.vm.stop(); // the store is gone for 30 s
    let outage = Instant::now();
    pause(5);
    set_gas(&r.sim, 60.0); // red again, while the store is down
    pause(10);
    set_gas(&r.sim, 3.0); // clear
    let rest = Duration::from_secs(30).saturating_sub(outage.elapsed());
    std::thread::sleep(rest);
    r.vm.restart().unwrap();
    pause(8);
    assert!(started.elapsed() >= Duration::from_secs(60));
    assert!(
        r.gateway.stop(Duration::from_secs(20)),
        "gateway stops cleanly"
    );

    // Everything published reaches the store, once.
    let published = published_readings(&sub);
    let expected: usize = published.values().map(BTreeSet::len).sum();
    assert!(expected > 500, "only {expected} readings in a minute");
    wait_until(
        Duration::from_secs(60),
        "every published reading stored",
        || Ok(stored_readings(&r.vm)?.1 >= expected),
    )
    .unwrap_or_else(|e| {
        let (stored, total) = stored_readings(&r.vm).unwrap();
        let missing: usize = published
            .iter()
            .map(|(k, ts)| {
                ts.difference(stored.get(k).unwrap_or(&BTreeSet::new()))
                    .count()
            })
            .sum();
        panic!("{e}: {total} stored of {expected}, {missing} missing");
    });
    std::thread::sleep(Duration::from_secs(2));
    let (stored, total) = stored_readings(&r.vm).unwrap();
    assert_eq!(
        stored, published,
        "the store differs from what was published"
    );
    assert_eq!(total, expected, "a reading is stored twice");
    assert_eq!(
        metric(r.metrics, "hazingest_lines_refused_total").unwrap(),
        0.0
    );

    // Every alarm event is in the store and on the page.
    let alarms = published_alarms(&sub);
    let point_alarms: Vec<_> = alarms.iter().filter(|a| a.0 == "GD-101").collect();
    assert!(point_alarms.len() >= 4, "{alarms:?}");
    let stored_alarms =
        r.vm.export(&format!(r#"{{__name__="alarm_level_code",site="{SITE}"}}"#))
            .unwrap();
    let stored_alarm_set: BTreeSet<_> = stored_alarms
        .iter()
        .flat_map(|s| {
            s.timestamps.iter().map(|ts| {
                (
                    s.label("device").to_string(),
                    s.label("point").to_string(),
                    s.label("hazard_source").to_string(),
                    s.label("condition").to_string(),
                    s.label("event").to_string(),
                    s.label("level").to_string(),
                    *ts,
                )
            })
        })
        .collect();
    assert_eq!(stored_alarm_set, alarms);
    assert_eq!(
        stored_alarms
            .iter()
            .map(|s| s.timestamps.len())
            .sum::<usize>(),
        alarms.len()
    );

    let browser = Browser::start().unwrap();
    browser.login(r.web, "admin", ADMIN_PASSWORD).unwrap();
    let shown = r#"return [...document.querySelectorAll('#history tbody tr')].length;"#;
    browser
        .wait_until(shown, &json!(alarms.len()), Duration::from_secs(20))
        .unwrap();
    let raises: Value = browser
        .eval(r#"return [...document.querySelectorAll('#history tbody tr[data-event="raise"]')].map(t => t.dataset.level);"#)
        .unwrap();
    assert!(
        raises.as_array().unwrap().iter().any(|l| l == "red"),
        "{raises}"
    );
    let _ = &r.w;
}
