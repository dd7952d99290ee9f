//! Operating the daemon: SIGHUP reloads a good config and refuses a bad one while the old
//! one keeps running; `/metrics` and `/health` answer on the configured local address.

use std::time::Duration;

use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::mqtt::{wait_port, Broker, Subscriber};
use hazgate_e2e::{free_port, http, Sim, Workdir};

fn site_text(broker: &str, tcp: u16, metrics: u16, devices: &[&str]) -> String {
    let mut s = format!(
        "[site]\nid = \"T-OPS\"\ngateway = \"gw-ops\"\n[uplink]\nbroker = \"{broker}\"\n[store]\ndir = \"store\"\nsync_interval = \"200ms\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[[bus]]\nid = \"tcp-1\"\ntcp = {{ host = \"127.0.0.1\", port = {tcp} }}\n"
    );
    for (i, d) in devices.iter().enumerate() {
        s.push_str(&format!("[[device]]\nid = \"{d}\"\nbus = \"tcp-1\"\nunit = {}\nprofile = \"temperature-transmitter\"\npoll = \"200ms\"\ntimeout = \"150ms\"\nreport = \"every_poll\"\n", i + 1));
    }
    s
}

fn devices_seen(sub: &Subscriber) -> std::collections::BTreeSet<String> {
    sub.snapshot()
        .iter()
        .filter(|m| m.topic.ends_with("/telemetry"))
        .flat_map(|m| m.json()["readings"].as_array().cloned().unwrap_or_default())
        .map(|r| r["device"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn sighup_reloads_good_configs_and_refuses_bad_ones() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let (tcp, metrics) = (free_port(), free_port());
    // The simulator serves both devices; the first config polls only one.
    let site = w.write(
        "site.toml",
        &site_text(&broker.url(), tcp, metrics, &["TT-1", "TT-2"]),
    );
    let _sim = Sim::start(&site, &[]).unwrap();
    w.write(
        "site.toml",
        &site_text(&broker.url(), tcp, metrics, &["TT-1"]),
    );
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    let mut gw = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    sub.wait_for(Duration::from_secs(15), "TT-1", |_| {
        devices_seen(&sub).contains("TT-1")
    })
    .unwrap();
    assert!(!devices_seen(&sub).contains("TT-2"));

    // A broken config: refused with its error, the running one goes on.
    w.write(
        "site.toml",
        "[site]\nid = \"T-OPS\"\ngateway = \"gw-ops\"\n[[device]]\nid = \"X\"\n",
    );
    gw.signal("HUP");
    std::thread::sleep(Duration::from_secs(1));
    let log = gw.log_text();
    assert!(log.contains("the new config was refused"), "{log}");
    assert!(
        log.contains("site.toml:"),
        "the refusal names the file and line: {log}"
    );
    let before = sub.snapshot().len();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        sub.snapshot().len() > before,
        "the old config keeps running"
    );

    // A good one: the new device is polled, the store and the session carry on.
    w.write(
        "site.toml",
        &site_text(&broker.url(), tcp, metrics, &["TT-1", "TT-2"]),
    );
    gw.signal("HUP");
    sub.wait_for(Duration::from_secs(15), "TT-2 after reload", |_| {
        devices_seen(&sub).contains("TT-2")
    })
    .unwrap();
    assert!(gw.log_text().contains("config reloaded"));
    assert!(gw.stop(Duration::from_secs(10)));
}

#[test]
fn metrics_and_health_answer() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let (tcp, metrics) = (free_port(), free_port());
    let site = w.write(
        "site.toml",
        &site_text(&broker.url(), tcp, metrics, &["TT-1"]),
    );
    let _sim = Sim::start(&site, &[]).unwrap();
    let mut gw = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    wait_port(metrics, Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let m = http::get(metrics, "/metrics").unwrap();
    for name in [
        "hazgate_polls_total",
        "hazgate_mqtt_acked_total",
        "hazgate_store_depth_telemetry",
        "hazgate_request_seconds_bucket",
        "hazgate_mqtt_connected 1",
    ] {
        assert!(m.contains(name), "{name} missing in\n{m}");
    }
    let polls: u64 = m
        .lines()
        .find(|l| l.starts_with("hazgate_polls_total "))
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(polls >= 5, "{polls} polls in 2s at 200ms");
    let h = http::get(metrics, "/health").unwrap();
    assert!(
        h.contains("\"status\":\"ok\"") && h.contains("\"connected\":true"),
        "{h}"
    );
    assert_eq!(http::request(metrics, "GET", "/nope", None).unwrap().0, 404);
    assert!(gw.stop(Duration::from_secs(10)));
}
