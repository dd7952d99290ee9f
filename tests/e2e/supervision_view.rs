//! The regulator's supervision view in headless chromium, with real processes behind it:
//! hazsim -> hazgate -> mosquitto -> hazingest -> victoria-metrics. The page is Chinese
//! first and shows the enterprise by its name from the gateway's master data, with times
//! as `YYYY-MM-DD HH:mm:ss`; it drills down from the overview to a hazard source whose
//! points show live values to their decimals, and to a point's trend with its limits.
//! Screenshots go to target/test-artifacts/ (not in git).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hazgate_e2e::browser::Browser;
use hazgate_e2e::central::Central;
use hazgate_e2e::daemon::{Gateway, ADMIN_PASSWORD};
use hazgate_e2e::http;
use hazgate_e2e::{free_port, Sim, Workdir};

const SITE: &str = "HB-420100-0021";

fn site(broker: &str) -> String {
    format!(
        r#"
[site]
id = "{SITE}"
name = "示例储罐区"
gateway = "gw-view"
division = "420100"
address = "湖北省武汉市示例路1号"
industry = "hazardous_chemicals"
[uplink]
broker = "{broker}"
[store]
dir = "store"
sync_interval = "200ms"

[[hazard_source]]
id = "HS-01"
name = "液化石油气球罐区"
kind = "储罐区"
grade = 2

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}
timeout = "150ms"

[[device]]
id = "GD-101"
name = "球罐区可燃气体探测器"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
hazard_source = "HS-01"
poll = "500ms"
# By exception, with an integrity report every 2 s: the centre takes a point for silent
# after two of them (or point_silence_after).
report = {{ every = "2s" }}
[device.points.CH1]
simulate = {{ normal = 3.0, noise = 0.0 }}
"#,
        tcp = free_port(),
    )
}

#[test]
fn the_view_is_chinese_shows_names_and_drills_down_to_live_values_and_a_trend() {
    let w = Workdir::new();
    let c = Central::start(&w, "hazingest-view", |t| t).unwrap();
    let (broker, web) = (&c.broker, c.web);
    let site_file = w.write("site.toml", &site(&broker.url()));
    let sim = Sim::start(&site_file, &[]).unwrap();
    let _gateway = Gateway::start(&site_file, &w.path().join("gw.log")).unwrap();

    // The master data arrives and names the site.
    let deadline = Instant::now() + Duration::from_secs(20);
    let master = loop {
        let (status, body) =
            http::request(web, "GET", &format!("/api/site/{SITE}/gw-view"), None).unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if !v["master"].is_null() {
            break v["master"].clone();
        }
        assert!(Instant::now() < deadline, "no master data: {body}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(master["name"], "示例储罐区");
    assert_eq!(master["division"], "420100");
    assert_eq!(master["hazard_sources"][0]["kind"], "储罐区");
    let ch1 = master["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["device"] == "GD-101" && p["point"] == "CH1")
        .unwrap()
        .clone();
    // The gas detector says its decimals in a register: values are shown as sent.
    assert_eq!(ch1["device_decimals"], true, "{ch1}");
    assert_eq!(ch1["limits"].as_array().unwrap().len(), 2, "{ch1}");

    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 30.0}))
        .unwrap();
    let browser = Browser::start().unwrap();
    browser.login(web, "admin", ADMIN_PASSWORD).unwrap();
    // Chinese by default; the enterprise by its name; times as YYYY-MM-DD HH:mm:ss.
    assert_eq!(
        browser
            .eval("return document.querySelector('header h1').textContent;")
            .unwrap(),
        json!("重大危险源监测预警 · 监管视图")
    );
    let name_cell = format!(
        "const r = document.querySelector('tr.gateway[data-site=\"{SITE}\"] a.enterprise'); return r ? r.textContent : null;"
    );
    browser
        .wait_until(
            &name_cell,
            &json!(format!("示例储罐区 ({SITE})")),
            Duration::from_secs(15),
        )
        .unwrap();
    let since = "const r = document.querySelector('tr.alarm[data-point=\"CH1\"] td:last-child'); return r ? /^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d$/.test(r.textContent) : null;";
    browser
        .wait_until(since, &json!(true), Duration::from_secs(15))
        .unwrap();
    browser.screenshot("view-overview-zh").unwrap();

    // The regulator's filters: industry, jurisdiction.
    let rows =
        format!("return document.querySelectorAll('tr.gateway[data-site=\"{SITE}\"]').length;");
    for (field, value, shown) in [
        ("industry", "mine", 0),
        ("industry", "hazardous_chemicals", 1),
        ("division", "4203", 0),
        ("division", "4201", 1),
    ] {
        browser
            .eval(&format!(
                "const e = document.querySelector('#filters [name={field}]'); e.value = '{value}'; e.dispatchEvent(new Event('input', {{bubbles: true}})); return true;"
            ))
            .unwrap();
        browser
            .wait_until(&rows, &json!(shown), Duration::from_secs(5))
            .unwrap();
    }

    // Drill down to the hazard source: live values to the point's decimals.
    browser
        .eval(&format!(
            "location.hash = '#/source/{SITE}/gw-view/HS-01'; return true;"
        ))
        .unwrap();
    let value = "const r = document.querySelector('tr.point-row[data-device=\"GD-101\"][data-point=\"CH1\"] td.value'); return r ? r.textContent : null;";
    browser
        .wait_until(value, &json!("30 %LEL"), Duration::from_secs(20))
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 12.5}))
        .unwrap();
    browser
        .wait_until(value, &json!("12.5 %LEL"), Duration::from_secs(20))
        .unwrap();
    browser.screenshot("view-hazard-source").unwrap();

    // The point's trend, with its two limits drawn.
    browser
        .eval(&format!(
            "location.hash = '#/point/{SITE}/gw-view/GD-101/CH1'; return true;"
        ))
        .unwrap();
    let drawn = "const h = document.getElementById('trend'); return h && h.dataset.points ? [Number(h.dataset.points) > 0, h.dataset.limits, document.querySelectorAll('#trend canvas').length > 0] : null;";
    browser
        .wait_until(drawn, &json!([true, "2", true]), Duration::from_secs(20))
        .unwrap();
    // Above the trend, the point's live value keeps arriving.
    let now = "const r = document.querySelector('#point-live td.value'); return r ? r.textContent : null;";
    browser
        .wait_until(now, &json!("12.5 %LEL"), Duration::from_secs(20))
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 7.5}))
        .unwrap();
    browser
        .wait_until(now, &json!("7.5 %LEL"), Duration::from_secs(20))
        .unwrap();
    browser.screenshot("view-trend").unwrap();

    // The trend API: downsampled by the store, bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (v, body) = loop {
        let body = http::get(
            web,
            &format!("/api/trend?site={SITE}&gateway=gw-view&device=GD-101&point=CH1&span=2592000"),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        if !v["times"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break (v, body);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(v["step"], 4320, "30 days in 600 steps");
    let times = v["times"].as_array().unwrap();
    assert!(
        !times.is_empty() && times.len() <= 601,
        "{}: {body}",
        times.len()
    );
    let (status, _) = http::request(
        web,
        "GET",
        &format!("/api/trend?site={SITE}&gateway=gw-view&device=GD-101&point=CH1&span=60"),
        None,
    )
    .unwrap();
    assert_eq!(status, 400);
}

/// A gateway SIGKILLed is an interruption (断线): its will opens one, recorded on the
/// enterprise page and raised as an alarm through call-response; its return closes it with
/// its duration.
#[test]
fn an_interruption_opens_when_a_gateway_dies_and_closes_with_its_duration() {
    let w = Workdir::new();
    let c = Central::start(&w, "hazingest-int", |t| t).unwrap();
    let (broker, web) = (&c.broker, c.web);
    // A short keep-alive: the broker gives the will 3 s after the gateway dies.
    let text = site(&broker.url()).replace(
        &format!("broker = \"{}\"", broker.url()),
        &format!("broker = \"{}\"\nkeep_alive = \"2s\"", broker.url()),
    );
    let site_file = w.write("site.toml", &text);
    let _sim = Sim::start(&site_file, &[]).unwrap();
    let log = w.path().join("gw.log");
    let mut gateway = Gateway::start(&site_file, &log).unwrap();

    let browser = Browser::start().unwrap();
    browser.login(web, "admin", ADMIN_PASSWORD).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    browser
        .eval(&format!("location.hash = '#/site/{SITE}'; return true;"))
        .unwrap();
    browser
        .wait_until(
            "return document.querySelectorAll('tr.interruption').length;",
            &json!(0),
            Duration::from_secs(10),
        )
        .unwrap();
    let killed = Instant::now();
    gateway.kill();
    let open =
        "const r = document.querySelector('tr.interruption'); return r ? r.dataset.open : null;";
    browser
        .wait_until(open, &json!("true"), Duration::from_secs(20))
        .unwrap();
    // It is an alarm of its own in call-response.
    let body = http::get(web, "/api/occurrences").unwrap();
    let occurrences: Value = serde_json::from_str(&body).unwrap();
    assert!(
        occurrences["occurrences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["condition"] == "interruption" && o["site"] == SITE),
        "{body}"
    );
    std::thread::sleep(Duration::from_secs(4));
    gateway = Gateway::start(&site_file, &log).unwrap();
    browser
        .wait_until(open, &json!("false"), Duration::from_secs(20))
        .unwrap();
    let out = killed.elapsed();
    browser.screenshot("view-interruption").unwrap();
    let body = http::get(web, &format!("/api/interruptions?site={SITE}")).unwrap();
    let list: Value = serde_json::from_str(&body).unwrap();
    let i = &list["interruptions"][0];
    assert_eq!(i["cause"], "offline", "{body}");
    let took = i["duration_ms"].as_i64().unwrap();
    // From the last status heard (at most a health interval before the kill) to the birth.
    assert!(
        took >= 4_000 && took <= out.as_millis() as i64 + 60_000,
        "{took} ms for an outage of {out:?}: {body}"
    );
    let body = http::get(web, "/api/occurrences").unwrap();
    assert!(
        !body.contains("\"interruption\""),
        "the interruption's alarm cleared: {body}"
    );
    drop(gateway);
}

/// The statistics match what the test published, counted independently: a fake gateway
/// promises 2 points every minute (120 readings an hour) and sends 90 readings in a past
/// hour, 80 of them good.
#[test]
fn statistics_match_what_was_published() {
    use hazgate_e2e::mqtt::publish_all;
    let w = Workdir::new();
    let c = Central::start(&w, "hazingest-stats", |t| t).unwrap();
    let (broker, web) = (&c.broker, c.web);
    let site = "HB-420100-0031";
    let now = hazgate_e2e::now_ms();
    let hour = now / 3_600_000 * 3_600_000 - 2 * 3_600_000;
    let master = json!({"kind": "site", "v": 1, "site": site, "gateway": "gw-s", "seq": 1, "ts": now,
        "name": "统计测试企业", "hazard_sources": [],
        "devices": [{"id": "D", "model": "m", "poll_ms": 60000}],
        "points": [{"device": "D", "point": "P1", "name": "p1", "decimals": 1},
                   {"device": "D", "point": "P2", "name": "p2", "decimals": 1}]});
    let mut messages = vec![(
        format!("hazard/{site}/gw-s/site"),
        master.to_string().into_bytes(),
    )];
    let (mut sent, mut good) = (0, 0);
    for i in 0..90i64 {
        let point = if i % 2 == 0 { "P1" } else { "P2" };
        let ts = hour + i * 40_000;
        let reading = if i % 9 == 0 {
            json!({"device": "D", "point": point, "ts": ts, "value": null, "unit": null, "quality": "bad", "reason": "timeout", "detail": "no reply"})
        } else {
            good += 1;
            json!({"device": "D", "point": point, "ts": ts, "value": i as f64, "unit": "m", "quality": "good"})
        };
        sent += 1;
        let t = json!({"kind": "telemetry", "v": 1, "site": site, "gateway": "gw-s", "seq": i + 1, "readings": [reading]});
        messages.push((
            format!("hazard/{site}/gw-s/telemetry"),
            t.to_string().into_bytes(),
        ));
    }
    assert_eq!((sent, good), (90, 80));
    publish_all(broker.port, &messages).unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    let day = loop {
        let body = http::get(web, "/api/statistics?days=7").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        let found = v["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["site"] == site && d["received"] == 90)
            .cloned();
        if let Some(d) = found {
            break d;
        }
        assert!(Instant::now() < deadline, "not counted: {body}");
        std::thread::sleep(Duration::from_secs(2));
    };
    // Its hours: the one with the data, and those after it until now, which it promised
    // and did not send; none before its first data.
    let hours = day["hours"].as_i64().unwrap();
    let done = (now - 120_000) / 3_600_000 * 3_600_000;
    // Days end at midnight in the regulator's zone (+08:00).
    let (h, d) = (3_600_000, 86_400_000);
    let day_end = (hour + 8 * h) / d * d - 8 * h + d;
    assert_eq!(hours, (done.min(day_end) - hour) / h, "{day}");
    assert_eq!(day["expected"], 120.0 * hours as f64, "{day}");
    let completeness = 90.0 / (120.0 * hours as f64);
    assert!(
        (day["completeness"].as_f64().unwrap() - completeness).abs() < 1e-9,
        "{day}"
    );
    assert!(
        (day["good_share"].as_f64().unwrap() - 80.0 / 90.0).abs() < 1e-9,
        "{day}"
    );
    assert_eq!(day["online_rate"], 1.0, "{day}");
    let csv = http::get(web, "/api/statistics.csv?days=7").unwrap();
    assert!(
        csv.contains(&format!("{site},"))
            && csv.contains(&format!(
                ",{:.1},88.9,90,{:.0},",
                completeness * 100.0,
                120.0 * hours as f64
            )),
        "{csv}"
    );

    let browser = Browser::start().unwrap();
    browser.login(web, "admin", ADMIN_PASSWORD).unwrap();
    let row = format!("const r = document.querySelector('tr.stats[data-site=\"{site}\"]'); return r ? r.dataset.completeness : null;");
    browser
        .wait_until(
            &row,
            &json!(format!("{completeness:.4}")),
            Duration::from_secs(15),
        )
        .unwrap();
    browser.screenshot("view-statistics").unwrap();
}

/// A point whose values stop while its gateway stays online (the device went quiet) is an
/// interruption of its own, closed when values return.
#[test]
fn a_point_whose_data_stop_is_an_interruption() {
    let w = Workdir::new();
    let c = Central::start(&w, "hazingest-pint", |t| {
        t.replace(
            "database = \"sqlite://supervision-hazingest-pint.db\"",
            "database = \"sqlite://supervision-hazingest-pint.db\"\npoint_silence_after = \"10s\"",
        )
    })
    .unwrap();
    assert!(std::fs::read_to_string(&c.config)
        .unwrap()
        .contains("point_silence_after"));
    let (broker, web) = (&c.broker, c.web);
    let site_file = w.write("site.toml", &site(&broker.url()));
    let sim = Sim::start(&site_file, &[]).unwrap();
    let _gateway = Gateway::start(&site_file, &w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    sim.ctl(json!({"device": "GD-101", "fault": {"kind": "silent"}}))
        .unwrap();
    let point_open = || -> Option<Value> {
        let body = http::get(web, &format!("/api/interruptions?site={SITE}")).ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["interruptions"]
            .as_array()?
            .iter()
            .find(|i| i["device"] == "GD-101" && i["point"] == "CH1")
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let opened = loop {
        if let Some(i) = point_open() {
            break i;
        }
        assert!(Instant::now() < deadline, "no point interruption");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(opened["cause"], "point_silent");
    assert!(opened["end_ts"].is_null());
    let body = http::get(web, "/api/occurrences").unwrap();
    assert!(
        body.contains("\"interruption\"") && body.contains("\"GD-101\""),
        "{body}"
    );
    sim.ctl(json!({"device": "GD-101", "clear_fault": true}))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if point_open().is_some_and(|i| i["end_ts"].is_i64()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the point interruption never closed"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
