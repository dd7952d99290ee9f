//! Call-response (预警叫应) at the edge, through hazsim and mosquitto: every occurrence has
//! an id that its events and the state carry across a restart; an `ack` command from the
//! central side silences the siren (the beacon stays), is confirmed by one `ack` event and
//! shows in the state; an escalation asks again; the site's acknowledge button does the
//! same as the local operator; commands for another gateway or malformed ones are refused,
//! never applied; a reset command releases a latched valve. Messages validate against
//! docs/schema.

use std::time::Duration;

use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::mqtt::{publish_all, Broker, Received, Subscriber};
use hazgate_e2e::schema::Schemas;
use hazgate_e2e::{free_port, now_ms, Sim, Workdir};
use serde_json::{json, Value};

const COMMANDS: &str = "hazard/T-ACK/gw-ack/command";

fn site(broker: &str) -> String {
    format!(
        r#"
[site]
id = "T-ACK"
gateway = "gw-ack"
ack_button = {{ device = "RO-01", point = "DI7" }}
[uplink]
broker = "{broker}"
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
[device.points.CH1]
simulate = {{ normal = 0.0, noise = 0.0 }}
[device.points.CH1.alarm]
limits = [
  {{ above = 25.0, level = "yellow", label = "一级报警" }},
  {{ above = 50.0, level = "red", label = "二级报警" }},
]
deadband = 1.0
linkage = [
  {{ level = "yellow", device = "RO-01", point = "DO1" }},
  {{ level = "yellow", device = "RO-01", point = "DO2", silence_on_ack = true }},
  {{ level = "red", device = "RO-01", point = "DO3", latch = true }},
]

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "200ms"
"#,
        tcp = free_port()
    )
}

struct Rig {
    w: Workdir,
    broker: Broker,
    sim: Sim,
    sub: Subscriber,
    site: std::path::PathBuf,
    schemas: Schemas,
}

fn rig() -> Rig {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let site = w.write("site.toml", &site(&broker.url()));
    let sim = Sim::start(&site, &[]).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    Rig {
        w,
        broker,
        sim,
        sub,
        site,
        schemas: Schemas::load().unwrap(),
    }
}

impl Rig {
    fn set(&self, device: &str, point: &str, value: f64) {
        self.sim.set(device, point, value).unwrap();
    }

    fn coil(&self, point: &str) -> bool {
        self.sim.coil("RO-01", point).unwrap()
    }

    fn wait_coil(&self, point: &str, want: bool) {
        self.sim
            .wait_coil("RO-01", point, want, Duration::from_secs(10))
            .unwrap();
    }

    fn alarms(&self, m: &[Received]) -> Vec<Value> {
        m.iter()
            .filter(|m| m.topic.ends_with("/alarm"))
            .map(|m| {
                let j = m.json();
                self.schemas.validate(&j).unwrap();
                j
            })
            .collect()
    }

    fn last_state(&self) -> Value {
        let j = self
            .sub
            .snapshot()
            .iter()
            .rev()
            .find(|m| m.topic.ends_with("/state"))
            .unwrap()
            .json();
        self.schemas.validate(&j).unwrap();
        j
    }

    fn command(&self, c: Value) {
        self.schemas.validate(&c).unwrap();
        self.command_raw(c.to_string().into_bytes());
    }

    fn command_raw(&self, payload: Vec<u8>) {
        publish_all(self.broker.port, &[(COMMANDS.to_string(), payload)]).unwrap();
    }

    /// Waits for an event of CH1 and returns it.
    fn wait_event(&self, what: &str, event: &str) -> Value {
        let m = self
            .sub
            .wait_for(Duration::from_secs(15), what, |m| {
                self.alarms(m)
                    .iter()
                    .any(|e| e["point"] == "CH1" && e["event"] == event)
            })
            .unwrap();
        self.alarms(&m)
            .into_iter()
            .rev()
            .find(|e| e["point"] == "CH1" && e["event"] == event)
            .unwrap()
    }
}

fn ack(occurrence: &str, id: &str, gateway: &str) -> Value {
    json!({"v": 1, "kind": "command", "site": "T-ACK", "gateway": gateway, "id": id,
           "ts": now_ms(), "by": "张三", "command": "ack", "occurrence": occurrence,
           "note": "已到现场\n正在处置"})
}

#[test]
fn an_acknowledgement_from_the_centre_silences_the_siren_and_is_confirmed_once() {
    let r = rig();
    let gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    r.set("GD-101", "CH1", 30.0);
    let raise = r.wait_event("the raise", "raise");
    let occ = raise["occurrence"].as_str().unwrap().to_string();
    r.wait_coil("DO1", true);
    r.wait_coil("DO2", true);

    // Refused, never applied: another gateway's, malformed, oversized, unknown action.
    r.command(ack(&occ, "c-0", "gw-other"));
    r.command_raw(b"{not json".to_vec());
    r.command_raw(format!("{{\"note\":\"{}\"}}", "x".repeat(20_000)).into_bytes());
    r.command_raw(
        ack(&occ, "c-9", "gw-ack")
            .to_string()
            .replace("\"ack\"", "\"self_destruct\"")
            .into_bytes(),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !r.alarms(&r.sub.snapshot())
            .iter()
            .any(|e| e["event"] == "ack"),
        "a refused command was applied"
    );
    assert!(r.coil("DO2"), "the siren still sounds");
    let log = gw.log_text();
    assert!(log.matches("command refused").count() >= 4, "{log}");

    r.command(ack(&occ, "c-1", "gw-ack"));
    let confirmed = r.wait_event("the ack event", "ack");
    assert_eq!(confirmed["occurrence"], occ.as_str());
    assert_eq!(confirmed["ack"]["by"], "张三");
    assert_eq!(confirmed["ack"]["command"], "c-1");
    assert_eq!(confirmed["ack"]["note"], "已到现场\n正在处置");
    assert_eq!(confirmed["level"], "yellow");
    r.wait_coil("DO2", false);
    assert!(r.coil("DO1"), "the beacon stays until the alarm clears");
    std::thread::sleep(Duration::from_millis(600));
    let state = r.last_state();
    let active = &state["alarms"][0];
    assert_eq!(active["occurrence"], occ.as_str(), "{state}");
    assert_eq!(active["acknowledged"]["by"], "张三", "{state}");

    // Again (a redelivery, or a second person): harmless, and nothing new is sent.
    r.command(ack(&occ, "c-1", "gw-ack"));
    r.command(ack(&occ, "c-2", "gw-ack"));
    std::thread::sleep(Duration::from_secs(1));
    let acks = r
        .alarms(&r.sub.snapshot())
        .into_iter()
        .filter(|e| e["event"] == "ack")
        .count();
    assert_eq!(acks, 1);

    // An escalation is the same occurrence and asks again: the siren sounds.
    r.set("GD-101", "CH1", 55.0);
    let up = r.wait_event("the escalation", "escalate");
    assert_eq!(up["occurrence"], occ.as_str());
    r.wait_coil("DO2", true);
    std::thread::sleep(Duration::from_millis(600));
    assert!(r.last_state()["alarms"][0].get("acknowledged").is_none());

    // The latched valve stays closed after the clear until a reset command.
    r.set("GD-101", "CH1", 0.0);
    let clear = r.wait_event("the clear", "clear");
    assert_eq!(clear["occurrence"], occ.as_str());
    r.wait_coil("DO1", false);
    std::thread::sleep(Duration::from_secs(1));
    assert!(r.coil("DO3"), "latched until reset");
    r.command(
        json!({"v": 1, "kind": "command", "site": "T-ACK", "gateway": "gw-ack",
                     "id": "c-3", "ts": now_ms(), "by": "张三", "command": "reset",
                     "device": "RO-01", "point": "DO3"}),
    );
    r.wait_coil("DO3", false);
}

#[test]
fn the_acknowledge_button_acknowledges_as_the_local_operator() {
    let r = rig();
    let _gw = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    r.set("GD-101", "CH1", 30.0);
    let raise = r.wait_event("the raise", "raise");
    r.wait_coil("DO2", true);
    r.set("RO-01", "DI7", 1.0);
    let confirmed = r.wait_event("the ack event", "ack");
    assert_eq!(confirmed["occurrence"], raise["occurrence"]);
    assert_eq!(confirmed["ack"]["by"], "本地操作员 (local operator)");
    assert!(confirmed["ack"].get("command").is_none());
    r.wait_coil("DO2", false);
    assert!(r.coil("DO1"));
}

#[test]
fn an_occurrence_keeps_its_id_and_acknowledgement_across_a_restart() {
    let r = rig();
    let log = r.w.path().join("gw.log");
    let mut gw = Gateway::start(&r.site, &log).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    r.set("GD-101", "CH1", 30.0);
    let occ = r.wait_event("the raise", "raise")["occurrence"]
        .as_str()
        .unwrap()
        .to_string();
    r.command(ack(&occ, "c-1", "gw-ack"));
    r.wait_event("the ack event", "ack");
    let boot = |m: &Received| m.json()["boot_ts"].as_i64();
    let first_boot = r
        .sub
        .snapshot()
        .iter()
        .find(|m| m.topic.ends_with("/status"))
        .and_then(boot);
    assert!(gw.stop(Duration::from_secs(10)));
    let _gw = Gateway::start(&r.site, &log).unwrap();
    // The state the new run publishes right after its birth.
    let after_birth = |m: &[Received]| {
        let born = m.iter().position(|x| {
            x.topic.ends_with("/status") && boot(x).is_some() && boot(x) != first_boot
        })?;
        m[born..]
            .iter()
            .find(|x| x.topic.ends_with("/state"))
            .map(|x| x.json())
    };
    let m = r
        .sub
        .wait_for(Duration::from_secs(15), "a state from the new run", |m| {
            after_birth(m).is_some()
        })
        .unwrap();
    let state = after_birth(&m).unwrap();
    assert_eq!(state["alarms"][0]["occurrence"], occ.as_str(), "{state}");
    assert_eq!(state["alarms"][0]["acknowledged"]["by"], "张三", "{state}");
    assert!(!r.coil("DO2"), "the siren stays silenced after the restart");
    r.set("GD-101", "CH1", 0.0);
    assert_eq!(
        r.wait_event("the clear", "clear")["occurrence"],
        occ.as_str()
    );
}
