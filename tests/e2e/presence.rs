//! Presence is true: the regulator view takes a gateway's presence from the latest status
//! it received, not from seq order. A SIGKILLed hazgate (whose last will carries a lower seq
//! than its birth) shows offline within 1.5 × its keep-alive, and so does a frozen one
//! (SIGSTOP: no FIN, only the keep-alive runs out); restarted with a fresh store (its seqs
//! start again) it shows online; a gateway that says its clock is wrong is shown
//! with a warning. Real processes: hazsim -> hazgate -> mosquitto -> hazingest.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hazgate_e2e::browser::Browser;
use hazgate_e2e::daemon::{central_toml, CentralSetup, Daemon, Gateway, ADMIN_PASSWORD};
use hazgate_e2e::http;
use hazgate_e2e::mqtt::{publish_all, wait_port, Broker, Subscriber};
use hazgate_e2e::victoria::VictoriaMetrics;
use hazgate_e2e::{free_port, free_ports, now_ms, wait_until, Sim, Workdir};

const KEEP_ALIVE: Duration = Duration::from_secs(2);

fn site(broker: &str) -> String {
    format!(
        r#"
[site]
id = "T-PRES"
gateway = "gw-p"
[uplink]
broker = "{broker}"
keep_alive = "{}s"
[store]
dir = "store"
sync_interval = "200ms"

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}
timeout = "150ms"

[[device]]
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
poll = "200ms"
"#,
        KEEP_ALIVE.as_secs(),
        tcp = free_port(),
    )
}

/// The gateway's row of `/api/overview`, if there is one.
fn row(web: u16, site: &str, gateway: &str) -> Option<Value> {
    let body = http::get(web, "/api/overview").ok()?;
    let all: Vec<Value> = serde_json::from_str(&body).ok()?;
    all.into_iter()
        .find(|g| g["site"] == site && g["gateway"] == gateway)
}

fn presence(web: u16) -> Option<String> {
    row(web, "T-PRES", "gw-p")?["presence"]
        .as_str()
        .map(String::from)
}

/// Status seqs seen on the broker, in order, with their state.
fn statuses(sub: &Subscriber) -> Vec<(u64, String)> {
    sub.snapshot()
        .iter()
        .filter(|m| m.topic.ends_with("/status"))
        .map(|m| {
            let j = m.json();
            (
                j["seq"].as_u64().unwrap(),
                j["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_killed_gateway_goes_offline_and_a_restarted_one_with_a_fresh_store_comes_back() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let vm = VictoriaMetrics::start(&w.path().join("vm")).unwrap();
    let ports = free_ports(2);
    let central = w.write(
        "central.toml",
        &central_toml(&CentralSetup {
            broker_port: broker.port,
            store_url: &vm.url(),
            client_id: "hazingest-pres",
            web: ports[0],
            metrics: ports[1],
        }),
    );
    let web = ports[0];
    let _ingest = Daemon::ingest(&central, &w.path().join("ingest.log")).unwrap();
    wait_port(web, Duration::from_secs(10)).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/T-PRES/+/status").unwrap();
    let site = w.write("site.toml", &site(&broker.url()));
    let _sim = Sim::start(&site, &[]).unwrap();
    let mut gateway = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    wait_until(Duration::from_secs(20), "the gateway online", || {
        Ok(presence(web).as_deref() == Some("online"))
    })
    .unwrap();

    // SIGKILL: nothing says goodbye but the broker, with the last will.
    gateway.kill();
    let killed = Instant::now();
    let limit = KEEP_ALIVE.mul_f64(1.5) + Duration::from_secs(1);
    wait_until(Duration::from_secs(15), "the gateway offline", || {
        Ok(presence(web).as_deref() == Some("offline"))
    })
    .unwrap();
    let took = killed.elapsed();
    eprintln!("offline {took:?} after the kill");
    assert!(
        took <= limit,
        "offline after {took:?}, over 1.5 × keep-alive ({KEEP_ALIVE:?}) and 1 s for the path"
    );
    // It was the will, with a lower seq than the birth before it: seq order would have
    // kept the gateway online.
    let seen = statuses(&sub);
    let (birth, will) = (&seen[seen.len() - 2], &seen[seen.len() - 1]);
    assert_eq!(
        (birth.1.as_str(), will.1.as_str()),
        ("online", "offline"),
        "{seen:?}"
    );
    assert!(will.0 < birth.0, "{seen:?}");

    // Restarted with a fresh store: its seqs start again, no higher than the birth the
    // view showed before, so seq order would ignore the new birth.
    std::fs::remove_dir_all(w.path().join("store")).unwrap();
    gateway.restart().unwrap();
    wait_until(Duration::from_secs(20), "the gateway online again", || {
        Ok(presence(web).as_deref() == Some("online"))
    })
    .unwrap();
    let seen = statuses(&sub);
    let reborn = seen.last().unwrap();
    assert_eq!(reborn.1, "online");
    assert!(reborn.0 <= birth.0, "{seen:?}");

    // Frozen (SIGSTOP), as a box whose power or link is cut: no FIN reaches the broker,
    // only its keep-alive runs out. The broker's own check adds its granularity (mosquitto
    // 2.0 took 1.5 × keep-alive plus about 3 s here), so the bound is 1.5 × keep-alive
    // plus 4 s.
    gateway.signal("STOP");
    let frozen = Instant::now();
    wait_until(
        Duration::from_secs(15),
        "the frozen gateway offline",
        || Ok(presence(web).as_deref() == Some("offline")),
    )
    .unwrap();
    let took = frozen.elapsed();
    eprintln!("offline {took:?} after freezing");
    assert!(
        took <= KEEP_ALIVE.mul_f64(1.5) + Duration::from_secs(4),
        "offline after {took:?}"
    );
    gateway.signal("CONT");
    wait_until(Duration::from_secs(20), "the thawed gateway online", || {
        Ok(presence(web).as_deref() == Some("online"))
    })
    .unwrap();
    assert!(gateway.stop(Duration::from_secs(20)));
    wait_until(
        Duration::from_secs(10),
        "offline after a clean stop",
        || Ok(presence(web).as_deref() == Some("offline")),
    )
    .unwrap();
}

#[test]
fn a_gateway_whose_clock_is_wrong_is_shown_with_a_warning() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let ports = free_ports(2);
    let central = w.write(
        "central.toml",
        &central_toml(&CentralSetup {
            broker_port: broker.port,
            // No store is needed for status messages.
            store_url: &format!("http://127.0.0.1:{}", free_port()),
            client_id: "hazingest-clock",
            web: ports[0],
            metrics: ports[1],
        }),
    );
    let web = ports[0];
    let _ingest = Daemon::ingest(&central, &w.path().join("ingest.log")).unwrap();
    wait_port(web, Duration::from_secs(10)).unwrap();
    let status = |gateway: &str, clock_ok: bool| {
        let m = json!({"kind": "status", "v": 1, "site": "T-CLK", "gateway": gateway, "seq": 1,
            "state": "online", "ts": if clock_ok { now_ms() } else { 1000 }, "version": "0.1.0",
            "config_hash": "h", "boot_ts": 1000, "clock_ok": clock_ok});
        (
            format!("hazard/T-CLK/{gateway}/status"),
            serde_json::to_vec(&m).unwrap(),
        )
    };
    publish_all(
        broker.port,
        &[status("gw-bad", false), status("gw-good", true)],
    )
    .unwrap();
    // Generous: under a loaded CI machine hazingest's first connection may need a retry.
    wait_until(Duration::from_secs(30), "both gateways in the view", || {
        Ok(row(web, "T-CLK", "gw-bad").is_some() && row(web, "T-CLK", "gw-good").is_some())
    })
    .unwrap();
    assert_eq!(row(web, "T-CLK", "gw-bad").unwrap()["clock_ok"], false);
    assert_eq!(row(web, "T-CLK", "gw-good").unwrap()["clock_ok"], true);

    let browser = Browser::start().unwrap();
    browser.login(web, "admin", ADMIN_PASSWORD).unwrap();
    let warning = |gateway: &str| {
        format!(
            r#"const g = document.querySelector('tr.gateway[data-site="T-CLK"][data-gateway="{gateway}"]'); const w = g && g.querySelector('.clock-warning'); return g ? (w ? w.textContent : "") : null;"#
        )
    };
    browser
        .wait_until(
            &warning("gw-bad"),
            &json!("⚠ 网关时钟错误"),
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(browser.eval(&warning("gw-good")).unwrap(), json!(""));
}
