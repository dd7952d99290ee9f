//! The fault matrix of the gateway (docs/faults.md), each row against real processes and
//! real faults: a tmpfs filled to the last byte, libfaketime stepping the wall clock of a
//! running gateway, mosquitto stopped and restarted, thousands of points in comm loss, a
//! connection flood, a relay module that is dead, a serial server whose socket goes silent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::faults::{FakeClock, Relay, Tmpfs};
use hazgate_e2e::http;
use hazgate_e2e::mqtt::{Broker, Received, Subscriber};
use hazgate_e2e::schema::Schemas;
use hazgate_e2e::{free_port, Sim, Workdir};
use serde_json::{json, Value};

/// A gas detector (with a linkage relay) on a TCP bus, and what a test adds.
struct SiteText<'a> {
    broker: &'a str,
    tcp: u16,
    store_dir: &'a str,
    store_extra: &'a str,
    uplink_extra: &'a str,
    metrics: Option<u16>,
    extra: &'a str,
}

fn site_text(s: &SiteText) -> String {
    format!(
        r#"
[site]
id = "T-FLT"
gateway = "gw-flt"
{profile_dirs}
[uplink]
broker = "{broker}"
keep_alive = "5s"
{uplink_extra}
[store]
dir = "{store_dir}"
sync_interval = "200ms"
{store_extra}
{metrics}
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
report = "every_poll"   # the test follows every poll
[device.points.CH1.alarm]
limits = [
  {{ above = 25.0, level = "yellow", label = "一级报警" }},
  {{ above = 50.0, level = "red", label = "二级报警" }},
]
deadband = 1.0
on_delay = "1s"
off_delay = "1s"
{extra}
"#,
        broker = s.broker,
        tcp = s.tcp,
        store_dir = s.store_dir,
        store_extra = s.store_extra,
        uplink_extra = s.uplink_extra,
        metrics = s
            .metrics
            .map(|p| format!("[metrics]\nlisten = \"127.0.0.1:{p}\""))
            .unwrap_or_default(),
        extra = s.extra,
        profile_dirs = if s.extra.contains("profile = \"many-points\"") {
            "profile_dirs = [\"profiles\"]"
        } else {
            ""
        },
    )
}

struct Rig {
    w: Workdir,
    broker: Broker,
    sub: Subscriber,
    schemas: Schemas,
}

fn rig() -> Rig {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    Rig {
        w,
        broker,
        sub,
        schemas: Schemas::load().unwrap(),
    }
}

impl Rig {
    fn site(&self, s: SiteText) -> PathBuf {
        self.w.write("site.toml", &site_text(&s))
    }

    /// The plain site: the gas detector on a fresh port, the store in `store`.
    fn basic_site(&self, metrics: Option<u16>) -> PathBuf {
        self.site(SiteText {
            broker: &self.broker.url(),
            tcp: free_port(),
            store_dir: "store",
            store_extra: "",
            uplink_extra: "",
            metrics,
            extra: "",
        })
    }

    /// The plain site with its store in `store` (on a test filesystem) and `store_extra`.
    fn disk_site(&self, store: &Path, store_extra: &str, metrics: Option<u16>) -> PathBuf {
        self.site(SiteText {
            broker: &self.broker.url(),
            tcp: free_port(),
            store_dir: &store.display().to_string(),
            store_extra,
            uplink_extra: "",
            metrics,
            extra: "",
        })
    }

    /// hazsim for the gas detector (and `extra` devices) on `tcp`: only what answers.
    fn sim(&self, tcp: u16, extra: &str) -> Sim {
        let site = self.w.write(
            "sim.toml",
            &site_text(&SiteText {
                broker: &self.broker.url(),
                tcp,
                store_dir: "store-sim",
                store_extra: "",
                uplink_extra: "",
                metrics: None,
                extra,
            }),
        );
        Sim::start(&site, &[]).unwrap()
    }

    fn gateway(&self, site: &Path) -> Gateway {
        Gateway::start(site, &self.w.path().join("gw.log")).unwrap()
    }

    /// Alarm events in arrival order, each validated against its schema.
    fn alarms(&self, messages: &[Received]) -> Vec<Value> {
        of_kind(messages, "/alarm", &self.schemas)
    }

    fn wait_alarm(&self, limit: Duration, what: &str, f: impl Fn(&Value) -> bool) -> Vec<Value> {
        let m = self
            .sub
            .wait_for(limit, what, |m| self.alarms(m).iter().any(&f))
            .unwrap_or_else(|e| panic!("{e}"));
        self.alarms(&m)
    }
}

fn of_kind(messages: &[Received], suffix: &str, schemas: &Schemas) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.topic.ends_with(suffix))
        .map(|m| {
            let j = m.json();
            schemas.validate(&j).unwrap();
            j
        })
        .collect()
}

fn is(e: &Value, device: &str, point: &str, condition: &str, event: &str) -> bool {
    e["device"] == device
        && e["point"] == point
        && e["condition"] == condition
        && e["event"] == event
}

fn telemetry_seqs(messages: &[Received]) -> Vec<u64> {
    messages
        .iter()
        .filter(|m| m.topic.ends_with("/telemetry"))
        .map(|m| m.json())
        .filter(|j| j["kind"] == "telemetry")
        .filter_map(|j| j["seq"].as_u64())
        .collect()
}

fn tmpfs_or_skip(w: &Workdir, kib: u64) -> Option<Tmpfs> {
    match Tmpfs::mount(&w.path().join("disk"), kib) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("SKIPPED: {e}; the full-disk rows need root to mount a tmpfs");
            None
        }
    }
}

#[test]
fn a_full_disk_holds_alarms_in_memory_raises_store_failed_and_recovers() {
    let r = rig();
    let Some(disk) = tmpfs_or_skip(&r.w, 8 * 1024) else {
        return;
    };
    let metrics = free_port();
    let store = disk.path().join("store");
    let site = r.disk_site(
        &store,
        "max_size = \"2MiB\"\nmin_free = \"0B\"",
        Some(metrics),
    );
    let sim = Sim::start(&site, &[]).unwrap();
    let _gw = r.gateway(&site);
    r.sub
        .wait_for(Duration::from_secs(15), "telemetry", |m| {
            telemetry_seqs(m).len() > 3
        })
        .unwrap();
    disk.fill(0).unwrap();
    // Telemetry still flows (from memory) while nothing can be written.
    let before = telemetry_seqs(&r.sub.snapshot()).len();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 30.0}))
        .unwrap();
    let events = r.wait_alarm(Duration::from_secs(15), "CH1 raised on a full disk", |e| {
        is(e, "GD-101", "CH1", "limit", "raise")
    });
    let failed = r.wait_alarm(Duration::from_secs(15), "store_failed raised", |e| {
        is(e, "gw-flt", "store", "store_failed", "raise")
    });
    assert!(!events.is_empty() && !failed.is_empty());
    r.sub
        .wait_for(Duration::from_secs(10), "telemetry from memory", |m| {
            telemetry_seqs(m).len() > before + 3
        })
        .unwrap();
    let (code, body) = http::request(metrics, "GET", "/health", None).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("store cannot write"), "{body}");
    // The retained state lists the gateway's own equipment alarm.
    let m = r
        .sub
        .wait_for(Duration::from_secs(10), "state with store_failed", |m| {
            of_kind(m, "/state", &r.schemas).iter().any(|s| {
                s["alarms"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a["condition"] == "store_failed"))
            })
        })
        .unwrap();
    assert!(!m.is_empty());
    disk.unfill();
    r.wait_alarm(Duration::from_secs(20), "store_failed cleared", |e| {
        is(e, "gw-flt", "store", "store_failed", "clear")
    });
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 5.0}))
        .unwrap();
    let events = r.wait_alarm(Duration::from_secs(15), "CH1 cleared", |e| {
        is(e, "GD-101", "CH1", "limit", "clear")
    });
    // Each alarm seq arrives (duplicates allowed: a held record also reaches the disk).
    let mut seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    seqs.sort();
    seqs.dedup();
    let (lo, hi) = (seqs[0], *seqs.last().unwrap());
    assert_eq!(
        seqs.len() as u64,
        hi - lo + 1,
        "no alarm seq missing: {seqs:?}"
    );
    let (code, _) = http::request(metrics, "GET", "/health", None).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn a_gateway_starts_polls_and_alarms_on_a_disk_it_cannot_write() {
    let r = rig();
    let Some(disk) = tmpfs_or_skip(&r.w, 2 * 1024) else {
        return;
    };
    disk.fill(0).unwrap();
    let store = disk.path().join("store");
    let site = r.disk_site(&store, "min_free = \"0B\"", None);
    let sim = Sim::start(&site, &[]).unwrap();
    let _gw = r.gateway(&site);
    r.wait_alarm(Duration::from_secs(15), "store_failed at start", |e| {
        is(e, "gw-flt", "store", "store_failed", "raise")
    });
    r.sub
        .wait_for(Duration::from_secs(10), "telemetry without a disk", |m| {
            telemetry_seqs(m).len() >= 3
        })
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 30.0}))
        .unwrap();
    r.wait_alarm(Duration::from_secs(15), "CH1 raised without a disk", |e| {
        is(e, "GD-101", "CH1", "limit", "raise")
    });
    disk.unfill();
    r.wait_alarm(
        Duration::from_secs(20),
        "store opened: store_failed cleared",
        |e| is(e, "gw-flt", "store", "store_failed", "clear"),
    );
    assert!(
        store.join("ledger").exists(),
        "the store opened once there was room"
    );
}

#[test]
fn free_space_is_kept_by_evicting_telemetry_and_the_loss_is_reported() {
    let r = rig();
    let Some(disk) = tmpfs_or_skip(&r.w, 8 * 1024) else {
        return;
    };
    let store = disk.path().join("store");
    let site = r.disk_site(&store, "max_size = \"4MiB\"\nmin_free = \"2MiB\"", None);
    let sim = Sim::start(&site, &[]).unwrap();
    let _gw = r.gateway(&site);
    r.sub
        .wait_for(Duration::from_secs(15), "telemetry", |m| {
            telemetry_seqs(m).len() > 3
        })
        .unwrap();
    // The broker is away, so telemetry piles up; other programs fill the disk to below
    // min_free: telemetry makes room, and the loss is reported once the broker is back.
    let mut r = r;
    r.broker.stop();
    disk.fill(1024 * 1024).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 30.0}))
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    r.broker.restart().unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(20), "a gap report", |m| {
            of_kind(m, "/telemetry", &r.schemas)
                .iter()
                .any(|j| j["kind"] == "gap")
        })
        .unwrap();
    assert!(!m.is_empty());
    r.wait_alarm(Duration::from_secs(15), "CH1 raised below min_free", |e| {
        is(e, "GD-101", "CH1", "limit", "raise")
    });
    // Every telemetry seq is delivered or inside a reported gap.
    disk.unfill();
    std::thread::sleep(Duration::from_secs(2));
    let m = r.sub.snapshot();
    let mut covered: Vec<u64> = telemetry_seqs(&m);
    for g in of_kind(&m, "/telemetry", &r.schemas)
        .iter()
        .filter(|j| j["kind"] == "gap")
    {
        covered.extend(g["first_seq"].as_u64().unwrap()..=g["last_seq"].as_u64().unwrap());
        covered.push(g["seq"].as_u64().unwrap());
    }
    covered.sort();
    covered.dedup();
    let (lo, hi) = (covered[0], *covered.last().unwrap());
    let missing: Vec<u64> = (lo..=hi)
        .filter(|s| covered.binary_search(s).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "telemetry seqs neither delivered nor reported: {missing:?}"
    );
}

#[test]
fn a_wall_clock_step_does_not_delay_a_gas_alarm() {
    let r = rig();
    let clock = match FakeClock::new(r.w.path()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let site = r.basic_site(None);
    let sim = Sim::start(&site, &[]).unwrap();
    let env = clock.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _gw = Gateway::start_with_env(&site, &r.w.path().join("gw.log"), &env).unwrap();
    r.sub
        .wait_for(Duration::from_secs(15), "telemetry", |m| {
            telemetry_seqs(m).len() > 3
        })
        .unwrap();
    for (step, value, want) in [
        (-3600, 30.0, "raise"),
        (3600, 5.0, "clear"),
        (-3600, 31.0, "raise"),
    ] {
        let seen = r.alarms(&r.sub.snapshot()).len();
        clock.step(step).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": value}))
            .unwrap();
        r.sub
            .wait_for(Duration::from_secs(10), want, |m| {
                r.alarms(m)[seen..]
                    .iter()
                    .any(|e| is(e, "GD-101", "CH1", "limit", want))
            })
            .unwrap();
        // On- and off-delay 1 s, poll 200 ms: a step of an hour changes nothing.
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2500),
            "{want} after a {step} s clock step took {took:?}"
        );
    }
    let log = std::fs::read_to_string(r.w.path().join("gw.log")).unwrap();
    assert!(
        log.contains("the wall clock stepped"),
        "the step is reported"
    );
}

#[test]
fn an_implausible_clock_flags_readings_and_says_so_in_status() {
    let r = rig();
    let clock = match FakeClock::new(r.w.path()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    // An edge box without a real-time clock, before NTP: 1970 and a bit.
    let back = -(hazgate_e2e::now_ms() / 1000 - 86_400);
    clock.step(back).unwrap();
    let site = r.basic_site(None);
    let _sim = Sim::start(&site, &[]).unwrap();
    let env = clock.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _gw = Gateway::start_with_env(&site, &r.w.path().join("gw.log"), &env).unwrap();
    let m = r
        .sub
        .wait_for(Duration::from_secs(15), "flagged telemetry", |m| {
            of_kind(m, "/telemetry", &r.schemas).iter().any(|t| {
                t["readings"].as_array().is_some_and(|rs| {
                    rs.iter()
                        .all(|r| r["reason"] == "clock" || r["quality"] == "bad")
                })
            })
        })
        .unwrap();
    let status = of_kind(&m, "/status", &r.schemas);
    assert!(
        status.iter().any(|s| s["clock_ok"] == false),
        "status says the clock is wrong: {status:?}"
    );
}

/// A profile of 100 registers, each alarming on comm loss after a second.
fn many_points_profile(w: &Workdir) {
    let mut p = String::from(
        "model = \"many-points\"\nvendor = \"test\"\ndescription = \"100 registers\"\n",
    );
    for i in 0..100 {
        p.push_str(&format!(
            "[[point]]\nid = \"R{i}\"\nkind = \"holding\"\naddress = {i}\ntype = \"u16\"\nalarm = {{ comm_loss = {{ after = \"1s\", level = \"yellow\" }} }}\n"
        ));
    }
    std::fs::create_dir_all(w.path().join("profiles")).unwrap();
    w.write("profiles/many-points.toml", &p);
}

#[test]
fn thousands_of_standing_alarms_keep_the_state_under_the_packet_limit() {
    let r = rig();
    many_points_profile(&r.w);
    let metrics = free_port();
    let dead = free_port();
    let devices: String = (1..=80)
        .map(|i| {
            format!(
                "[[device]]\nid = \"X-{i}\"\nbus = \"dead\"\nunit = {i}\nprofile = \"many-points\"\npoll = \"500ms\"\n"
            )
        })
        .collect();
    let extra = format!(
        "[[bus]]\nid = \"dead\"\ntcp = {{ host = \"127.0.0.1\", port = {dead} }}\ntimeout = \"100ms\"\n{devices}"
    );
    let tcp = free_port();
    let site = r.site(SiteText {
        broker: &r.broker.url(),
        tcp,
        store_dir: "store",
        store_extra: "",
        uplink_extra: "",
        metrics: Some(metrics),
        extra: &extra,
    });
    let _sim = r.sim(tcp, "");
    let _gw = r.gateway(&site);
    let m = r
        .sub
        .wait_for(
            Duration::from_secs(40),
            "8000 comm-loss alarms in the state",
            |m| {
                m.iter().filter(|m| m.topic.ends_with("/state")).any(|s| {
                    let j = s.json();
                    let listed = j["alarms"].as_array().map_or(0, Vec::len) as u64;
                    listed + j["alarms_omitted"].as_u64().unwrap_or(0) >= 8000
                })
            },
        )
        .unwrap_or_else(|e| {
            let m = r.sub.snapshot();
            let last = m
                .iter()
                .rev()
                .find(|m| m.topic.ends_with("/state"))
                .map(|m| m.json());
            let log = std::fs::read_to_string(r.w.path().join("gw.log")).unwrap_or_default();
            panic!(
                "{e}\nlast state: {} alarms, omitted {:?}\n{}",
                last.as_ref()
                    .and_then(|l| l["alarms"].as_array().map(Vec::len))
                    .unwrap_or(0),
                last.as_ref().map(|l| l["alarms_omitted"].clone()),
                &log[log.len().saturating_sub(3000)..]
            )
        });
    let biggest = m
        .iter()
        .filter(|m| m.topic.ends_with("/state"))
        .map(|m| m.payload.len())
        .max()
        .unwrap();
    assert!(biggest <= 256 * 1024, "state of {biggest} bytes");
    let last = m
        .iter()
        .rev()
        .find(|m| m.topic.ends_with("/state"))
        .unwrap()
        .json();
    r.schemas.validate(&last).unwrap();
    assert!(last["alarms_omitted"].as_u64().unwrap() > 0);
    // The connection held all along, and telemetry keeps flowing.
    let before = telemetry_seqs(&r.sub.snapshot()).len();
    std::thread::sleep(Duration::from_secs(3));
    assert!(telemetry_seqs(&r.sub.snapshot()).len() > before);
    assert_eq!(
        http::metric(metrics, "hazgate_mqtt_reconnects_total").unwrap(),
        0.0
    );
    // The alarm lane holds events, not copies of the state.
    let lane: u64 = std::fs::read_dir(r.w.path().join("store/alarm"))
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(lane < 8 << 20, "alarm lane {lane} bytes for 8000 events");
}

#[test]
fn the_state_is_republished_at_every_connection() {
    let mut r = rig();
    let site = r.basic_site(None);
    let _sim = Sim::start(&site, &[]).unwrap();
    let _gw = r.gateway(&site);
    let calm = |m: &[Received]| m.iter().filter(|m| m.topic.ends_with("/state")).count();
    r.sub
        .wait_for(Duration::from_secs(10), "a calm site's state", |m| {
            calm(m) >= 1
        })
        .unwrap();
    let state = of_kind(&r.sub.snapshot(), "/state", &r.schemas);
    assert_eq!(state[0]["level"], Value::Null);
    // A broker that lost its retained messages gets the state again at reconnection.
    r.broker.stop();
    let _ = std::fs::remove_file(r.w.path().join("mq/mosquitto.db"));
    r.broker.restart().unwrap();
    let fresh = Subscriber::start(r.broker.port, "hazard/+/+/state").unwrap();
    fresh
        .wait_for(Duration::from_secs(30), "state after a reconnection", |m| {
            !m.is_empty()
        })
        .unwrap();
}

#[test]
fn status_follows_a_reload_with_a_hash_that_covers_profiles() {
    let r = rig();
    many_points_profile(&r.w);
    let site = r.site(SiteText {
        broker: &r.broker.url(),
        tcp: free_port(),
        store_dir: "store",
        store_extra: "",
        uplink_extra: "",
        metrics: None,
        extra: "[[device]]\nid = \"X-1\"\nbus = \"tcp-1\"\nunit = 9\nprofile = \"many-points\"\npoll = \"1s\"\n",
    });
    let _sim = Sim::start(&site, &[]).unwrap();
    let gw = r.gateway(&site);
    let hashes = |m: &[Received]| -> Vec<String> {
        m.iter()
            .filter(|m| m.topic.ends_with("/status"))
            .filter_map(|m| m.json()["config_hash"].as_str().map(String::from))
            .collect()
    };
    let m = r
        .sub
        .wait_for(Duration::from_secs(10), "birth", |m| !hashes(m).is_empty())
        .unwrap();
    let first = hashes(&m)[0].clone();
    // Only the profile changes, not the site file.
    let p = std::fs::read_to_string(r.w.path().join("profiles/many-points.toml")).unwrap();
    r.w.write(
        "profiles/many-points.toml",
        &p.replace(
            "description = \"100 registers\"",
            "description = \"100 registers, v2\"",
        ),
    );
    gw.signal("HUP");
    let m = r
        .sub
        .wait_for(Duration::from_secs(10), "a status with the new hash", |m| {
            hashes(m).iter().any(|h| *h != first)
        })
        .unwrap();
    assert!(hashes(&m).iter().any(|h| *h != first));
}

#[test]
fn health_says_503_while_the_broker_is_unreachable() {
    let mut r = rig();
    let metrics = free_port();
    let site = r.basic_site(Some(metrics));
    let _sim = Sim::start(&site, &[]).unwrap();
    let _gw = r.gateway(&site);
    hazgate_e2e::wait_until(Duration::from_secs(10), "healthy", || {
        Ok(http::request(metrics, "GET", "/health", None)?.0 == 200)
    })
    .unwrap();
    r.broker.stop();
    // keep_alive 5 s: unreachable past two keep-alives (10 s) is unhealthy.
    hazgate_e2e::wait_until(Duration::from_secs(20), "503", || {
        let (code, body) = http::request(metrics, "GET", "/health", None)?;
        Ok(code == 503 && body.contains("broker unreachable"))
    })
    .unwrap();
    r.broker.restart().unwrap();
    hazgate_e2e::wait_until(Duration::from_secs(45), "healthy again", || {
        Ok(http::request(metrics, "GET", "/health", None)?.0 == 200)
    })
    .unwrap();
}

#[test]
fn a_connection_flood_on_the_metrics_port_leaves_the_gateway_working() {
    let r = rig();
    let metrics = free_port();
    let site = r.basic_site(Some(metrics));
    let sim = Sim::start(&site, &[]).unwrap();
    let _gw = r.gateway(&site);
    hazgate_e2e::wait_until(Duration::from_secs(10), "metrics up", || {
        Ok(http::request(metrics, "GET", "/health", None)?.0 == 200)
    })
    .unwrap();
    // Connections that never send a request, far more than the gateway serves at once
    // (and than its own descriptor limit would allow if each were kept).
    let mut flood = Vec::new();
    for _ in 0..900 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", metrics)) {
            flood.push(s);
        }
    }
    assert!(flood.len() > 500, "only {} connections opened", flood.len());
    let before = telemetry_seqs(&r.sub.snapshot()).len();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 30.0}))
        .unwrap();
    r.wait_alarm(Duration::from_secs(10), "an alarm during the flood", |e| {
        is(e, "GD-101", "CH1", "limit", "raise")
    });
    assert!(telemetry_seqs(&r.sub.snapshot()).len() > before);
    drop(flood);
    hazgate_e2e::wait_until(
        Duration::from_secs(10),
        "metrics answer after the flood",
        || Ok(http::request(metrics, "GET", "/metrics", None)?.0 == 200),
    )
    .unwrap();
}

#[test]
fn a_dead_relay_module_does_not_delay_the_valve_on_another_bus() {
    let r = rig();
    // A module that takes the connection and never answers: every write costs the bus
    // its whole 3 s timeout (the kernel completes the connection; nobody reads it).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap().port();
    let extra = format!(
        r#"linkage = [
  {{ level = "red", device = "RO-02", point = "DO1" }},
  {{ level = "red", device = "RO-01", point = "DO3" }},
]

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "1s"
report = "every_poll"   # the test follows every poll

[[bus]]
id = "dead"
tcp = {{ host = "127.0.0.1", port = {dead} }}
timeout = "3s"

[[device]]
id = "RO-02"
bus = "dead"
unit = 1
profile = "relay-output-module"
poll = "10s"
report = "every_poll"   # the test follows every poll
"#
    );
    let tcp = free_port();
    let site = r.site(SiteText {
        broker: &r.broker.url(),
        tcp,
        store_dir: "store",
        store_extra: "",
        uplink_extra: "",
        metrics: None,
        extra: &extra,
    });
    let sim = r.sim(
        tcp,
        "[[device]]\nid = \"RO-01\"\nbus = \"tcp-1\"\nunit = 3\nprofile = \"relay-output-module\"\npoll = \"1s\"\n",
    );
    let _gw = r.gateway(&site);
    std::thread::sleep(Duration::from_secs(2));
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 60.0}))
        .unwrap();
    r.wait_alarm(Duration::from_secs(10), "red", |e| {
        e["device"] == "GD-101" && e["condition"] == "limit" && e["level"] == "red"
    });
    let red_at = Instant::now();
    let coil = || {
        let reply = sim
            .ctl(json!({"device": "RO-01", "point": "DO3", "read": true}))
            .unwrap();
        matches!(reply["value"], Value::Bool(true)) || reply["value"].as_f64() == Some(1.0)
    };
    while !coil() {
        assert!(
            red_at.elapsed() < Duration::from_millis(1500),
            "the valve waited for the dead module"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    r.wait_alarm(
        Duration::from_secs(15),
        "the dead output's own alarm",
        |e| e["condition"] == "linkage_failed" && e["event"] == "raise",
    );
}

#[test]
fn a_serial_server_whose_socket_goes_silent_is_reconnected() {
    let r = rig();
    let sim_port = free_port();
    let relay = Relay::start(sim_port).unwrap();
    // The simulator listens on sim_port; the gateway reaches it through the relay.
    let sim_site = r.w.write(
        "sim.toml",
        &site_text(&SiteText {
            broker: &r.broker.url(),
            tcp: sim_port,
            store_dir: "store-sim",
            store_extra: "",
            uplink_extra: "",
            metrics: None,
            extra: "",
        }),
    );
    let site = r.site(SiteText {
        broker: &r.broker.url(),
        tcp: relay.port,
        store_dir: "store",
        store_extra: "",
        uplink_extra: "",
        metrics: None,
        extra: "",
    });
    let _sim = Sim::start(&sim_site, &[]).unwrap();
    let _gw = r.gateway(&site);
    let good = |m: &[Received]| {
        m.iter()
            .filter(|m| m.topic.ends_with("/telemetry"))
            .map(|m| m.json())
            .filter(|j| {
                j["readings"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|r| r["quality"] == "good"))
            })
            .count()
    };
    r.sub
        .wait_for(Duration::from_secs(10), "good readings", |m| good(m) > 0)
        .unwrap();
    let connections = relay.connections.load(std::sync::atomic::Ordering::Relaxed);
    relay.freeze();
    let frozen_at = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let seen = good(&r.sub.snapshot());
    // A few timeouts (150 ms each, at the device's backoff), then a fresh connection.
    r.sub
        .wait_for(Duration::from_secs(15), "good readings again", |m| {
            good(m) > seen + 1
        })
        .unwrap();
    assert!(relay.connections.load(std::sync::atomic::Ordering::Relaxed) > connections);
    assert!(frozen_at.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_broker_that_drops_every_connection_at_once_is_retried_with_backoff() {
    let r = rig();
    // A broker that accepts the connection (CONNACK) and closes it at once, every time, as
    // one with a bad ACL or a full session store may.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut buf = [0u8; 1024];
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(&[0x20, 0x02, 0x00, 0x00]);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let tcp = free_port();
    let site = r.site(SiteText {
        broker: &format!("mqtt://127.0.0.1:{port}"),
        tcp,
        store_dir: "store",
        store_extra: "",
        uplink_extra: "",
        metrics: None,
        extra: "",
    });
    let _sim = r.sim(tcp, "");
    let _gw = r.gateway(&site);
    std::thread::sleep(Duration::from_secs(20));
    let connects = accepted.load(std::sync::atomic::Ordering::Relaxed);
    // 1, 2, 4, 8 s (with jitter, half to all of each): at most 7 in 20 s; about 20 if
    // each CONNACK reset the backoff.
    assert!(connects >= 2, "it keeps trying: {connects}");
    assert!(
        connects <= 7,
        "{connects} connections in 20 s: the backoff was reset"
    );
}
