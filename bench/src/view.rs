//! The regulator view at scale: 500 enterprises of 100 points each (50,000 points) known
//! to hazingest (release) from their master data, state and status; how long the overview
//! takes to load (`/api/overview`, and the first event of `/api/events`), how long a change
//! takes to reach an open event stream, and how long a 30-day trend of one point takes
//! from victoria-metrics (a reading a minute: 43,200 samples); and the page itself in
//! headless chromium: until all 500 rows are drawn, and until a change colours its row.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use hazgate_e2e::browser::Browser;
use hazgate_e2e::daemon::{central_toml, CentralSetup, Daemon, ADMIN_PASSWORD};
use hazgate_e2e::http;
use hazgate_e2e::mqtt::{publish_all, wait_port, Broker};
use hazgate_e2e::victoria::VictoriaMetrics;
use hazgate_e2e::{free_ports, now_ms};

use crate::report::{machine, verdict, Table};

const SITES: usize = 500;
const POINTS: usize = 100;
const RUNS: usize = 20;
/// Page loads in the browser (each loads the whole overview, statistics included).
const PAGE_RUNS: usize = 10;

fn site_id(i: usize) -> String {
    format!("HB-4201{:02}-{i:04}", i % 100)
}

fn retained(i: usize, now: i64) -> Vec<(String, Vec<u8>)> {
    let (site, gw) = (site_id(i), "gw-01");
    let topic = |k: &str| format!("hazard/{site}/{gw}/{k}");
    let points: Vec<Value> = (0..POINTS)
        .map(|p| {
            json!({"device": format!("D{}", p / 10), "point": format!("P{}", p % 10),
                        "name": format!("测点 {p}"), "unit": "%LEL", "decimals": 1,
                        "limits": [{"direction": "above", "value": 25.0, "level": "yellow"}]})
        })
        .collect();
    let devices: Vec<Value> = (0..POINTS / 10)
        .map(|d| json!({"id": format!("D{d}"), "model": "gas-detector-4ch", "hazard_source": "HS-01", "poll_ms": 1000}))
        .collect();
    let master = json!({"kind": "site", "v": 1, "site": site, "gateway": gw, "seq": 1, "ts": now,
        "name": format!("企业 {i}"), "division": format!("4201{:02}", i % 100), "industry": "hazardous_chemicals",
        "hazard_sources": [{"id": "HS-01", "name": "储罐区", "grade": 2}], "devices": devices, "points": points});
    let level = if i.is_multiple_of(10) {
        json!("yellow")
    } else {
        Value::Null
    };
    let alarms: Vec<Value> = if i.is_multiple_of(10) {
        vec![
            json!({"device": "D0", "point": "P0", "hazard_source": "HS-01", "condition": "limit", "level": "yellow",
                    "since": now, "value": 30.0, "limit": 25.0, "unit": "%LEL", "label": "一级报警",
                    "occurrence": format!("{now}-0000000{}", i % 10)}),
        ]
    } else {
        Vec::new()
    };
    let state = json!({"kind": "state", "v": 1, "site": site, "gateway": gw, "seq": 1, "ts": now, "level": level,
        "hazard_sources": [{"id": "HS-01", "name": "储罐区", "grade": 2, "level": level}], "alarms": alarms});
    let status = json!({"kind": "status", "v": 1, "site": site, "gateway": gw, "seq": 1, "state": "online",
        "ts": now, "version": "0.1.0", "config_hash": "h", "boot_ts": now});
    vec![
        (topic("site"), master.to_string().into_bytes()),
        (topic("state"), state.to_string().into_bytes()),
        (topic("status"), status.to_string().into_bytes()),
    ]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Opens `/api/events` and reads up to the end of the first event; returns the stream.
fn open_stream(port: u16) -> Result<(BufReader<std::net::TcpStream>, usize)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET /api/events HTTP/1.1\r\nhost: x\r\n{}\r\n",
        http::auth_line(port)
    )?;
    let mut r = BufReader::new(s);
    let mut bytes = 0;
    let mut line = String::new();
    // Head, then the first event (ends with an empty line).
    let mut in_body = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            bail!("the event stream closed");
        }
        bytes += line.len();
        if !in_body {
            in_body = line == "\r\n";
            continue;
        }
        if line.starts_with("data:") && line.len() > 100 {
            return Ok((r, bytes));
        }
    }
}

/// Site `i`'s gateway says its level (and its hazard source's) is `level`.
fn publish_level(broker: u16, i: usize, seq: usize, level: &str) -> Result<()> {
    let state = json!({"kind": "state", "v": 1, "site": site_id(i), "gateway": "gw-01", "seq": seq,
        "ts": now_ms(), "level": level, "hazard_sources": [{"id": "HS-01", "name": "储罐区", "grade": 2, "level": level}],
        "alarms": []});
    publish_all(
        broker,
        &[(
            format!("hazard/{}/gw-01/state", site_id(i)),
            state.to_string().into_bytes(),
        )],
    )
}

pub fn run() -> Result<Table> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("mq"))?;
    let broker = Broker::start_with(&dir.path().join("mq"), "persistence false")?;
    let vm = VictoriaMetrics::start(&dir.path().join("vm"))?;
    let ports = free_ports(2);
    let conf = dir.path().join("central.toml");
    std::fs::write(
        &conf,
        central_toml(&CentralSetup {
            broker_port: broker.port,
            store_url: &vm.url(),
            client_id: "hazingest-view-bench",
            web: ports[0],
            metrics: ports[1],
        }),
    )?;
    let _ingest = Daemon::ingest(&conf, &dir.path().join("ingest.log"))?;
    let web = ports[0];
    wait_port(web, Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_secs(1));
    let now = now_ms();
    let messages: Vec<_> = (0..SITES).flat_map(|i| retained(i, now)).collect();
    publish_all(broker.port, &messages)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = http::get(web, "/api/overview")?;
        let v: Value = serde_json::from_str(&body)?;
        if v.as_array()
            .map(|a| a.iter().filter(|g| !g["name"].is_null()).count())
            == Some(SITES)
        {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the {SITES} enterprises never all arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The overview as the page loads it.
    let mut overview = Vec::new();
    let mut size = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        size = http::get(web, "/api/overview")?.len();
        overview.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut first_event = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let _ = open_stream(web)?;
        first_event.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut site_page = Vec::new();
    for i in 0..RUNS {
        let t = Instant::now();
        http::get(web, &format!("/api/site/{}/gw-01", site_id(i * 7)))?;
        site_page.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Staying live: a state change, until it is on an open stream.
    let (mut stream, _) = open_stream(web)?;
    let mut live = Vec::new();
    for n in 0..RUNS {
        let i = n * 11 % SITES;
        let t = Instant::now();
        publish_level(broker.port, i, 2 + n, "red")?;
        let mut line = String::new();
        loop {
            line.clear();
            if stream
                .read_line(&mut line)
                .context("reading the event stream")?
                == 0
            {
                bail!("the event stream closed");
            }
            if line.starts_with("data:")
                && line.contains(&format!("\"site\":\"{}\"", site_id(i)))
                && line.contains("\"level\":\"red\"")
            {
                break;
            }
        }
        live.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // The page itself in chromium: from opening the overview until all its rows are drawn,
    // and from a publish until the row changes colour.
    let browser = Browser::start()?;
    browser.login(web, "admin", ADMIN_PASSWORD)?;
    let rows = format!(
        "return document.querySelectorAll('#gateways tbody tr.gateway').length === {SITES};"
    );
    let mut page = Vec::new();
    for _ in 0..PAGE_RUNS {
        browser.open("about:blank")?;
        let t = Instant::now();
        browser.open(&format!("http://127.0.0.1:{web}/"))?;
        browser.wait_until(&rows, &json!(true), Duration::from_secs(120))?;
        page.push(t.elapsed().as_secs_f64() * 1000.0);
        let slowest = browser.eval("return [window.hazgateTimings, performance.getEntriesByType('resource').map(e => [e.name.replace(location.origin, ''), Math.round(e.startTime), Math.round(e.duration)]).sort((a, b) => b[2] - a[2]).slice(0, 4)];")?;
        eprintln!("page load {:.0} ms; event stream timings and slowest requests [path, start ms, duration ms]: {slowest}", page.last().unwrap());
    }
    browser.screenshot("bench-view-overview")?;
    let mut page_live = Vec::new();
    for n in 0..PAGE_RUNS {
        let i = (n * 13 + 5) % SITES;
        let level = ["orange", "yellow"][n % 2];
        let t = Instant::now();
        publish_level(broker.port, i, 100 + n, level)?;
        browser.wait_until(
            &format!(
                "const r = document.querySelector('tr.gateway[data-site=\"{}\"]'); return r ? r.dataset.level : null;",
                site_id(i)
            ),
            &json!(level),
            Duration::from_secs(10),
        )?;
        page_live.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(browser);
    // A month of one point, a reading a minute, straight into the store.
    let mut lines = String::new();
    let start = now - 30 * 86_400_000;
    for k in 0..(30 * 24 * 60) {
        let ts = start + k * 60_000;
        lines.push_str(&format!(
            "reading,site={},gateway=gw-01,device=D0,point=P0,unit=%LEL quality=0i,value={} {ts}\n",
            site_id(0),
            (k % 600) as f64 / 10.0
        ));
    }
    let (status, body) = http::request(
        vm.port,
        "POST",
        "/api/v2/write?org=hazard&bucket=hazard&precision=ms",
        Some(&lines),
    )?;
    ensure!(
        (200..300).contains(&status),
        "writing a month: HTTP {status}: {body}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut trend = Vec::new();
    let mut steps = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let body = http::get(
            web,
            &format!(
                "/api/trend?site={}&gateway=gw-01&device=D0&point=P0&span=2592000",
                site_id(0)
            ),
        )?;
        trend.push(t.elapsed().as_secs_f64() * 1000.0);
        steps = serde_json::from_str::<Value>(&body)?["times"]
            .as_array()
            .map_or(0, |a| a.len());
    }
    ensure!(steps > 500, "the month came back as {steps} steps");
    let row = |what: &str, v: Vec<f64>, target: Option<f64>| {
        let (p50, p99) = (percentile(v.clone(), 0.5), percentile(v, 0.99));
        vec![
            what.to_string(),
            format!("{p50:.0} ms"),
            format!("{p99:.0} ms"),
            target.map_or("–".into(), |t| {
                verdict(p99 < t, &format!("p99 under {t:.0} ms"))
            }),
        ]
    };
    Ok(Table {
        title: format!("Regulator view at scale: {SITES} enterprises, {} points", SITES * POINTS),
        header: vec!["what".into(), "p50".into(), "p99".into(), "target".into()],
        rows: vec![
            row(&format!("overview, /api/overview ({:.1} MB)", size as f64 / 1e6), overview, Some(1000.0)),
            row("overview, first event of /api/events", first_event, Some(1000.0)),
            row("a state change, publish to the open stream", live, Some(1000.0)),
            row(&format!("the overview page in chromium, open until all {SITES} rows are drawn"), page, Some(1000.0)),
            row("a state change, publish until the page's row changes colour", page_live, Some(1000.0)),
            row("enterprise drill-down, /api/site (master data and live values)", site_page, None),
            row(&format!("30-day trend of one point ({steps} steps of 43,200 samples)"), trend, Some(1000.0)),
        ],
        notes: vec![format!(
            "hazingest (release) with victoria-metrics and mosquitto on this machine; {RUNS} runs each; the enterprises arrive as retained master data, state and status (10 % with an alarm). Times are what a client waits for the answer over loopback; the page rows are what headless chromium shows, polled every 50 ms over WebDriver (so they include up to that much). {}.",
            machine()
        )],
    })
}
