//! Escalation (叫应 chain) end to end: hazsim -> hazgate -> mosquitto -> hazingest (SQLite)
//! -> victoria-metrics, with local receivers for the generic webhook, the DingTalk and WeCom
//! robots, the SMS template and an SMTP sink. A red alarm nobody answers tells tier after
//! tier at its deadlines, each exactly once, in Chinese; an acknowledgement stops the
//! next tier. An endpoint that hangs or answers 500 is retried and recorded and holds up
//! no other. A SIGKILL of hazingest in the middle of an escalation neither loses nor
//! repeats a notification.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hazgate_e2e::central::Central;
use hazgate_e2e::daemon::{central_toml, CentralSetup, Daemon, Gateway};
use hazgate_e2e::http;
use hazgate_e2e::mqtt::{wait_port, Broker};
use hazgate_e2e::receivers::{Answer, HttpReceiver, SmtpSink};
use hazgate_e2e::victoria::VictoriaMetrics;
use hazgate_e2e::{free_port, free_ports, Sim, Workdir};

const SITE: &str = "HB-420100-0010";

fn site(broker: &str) -> String {
    format!(
        r#"
[site]
id = "{SITE}"
gateway = "gw-esc"
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
[device.points.CH1]
simulate = {{ normal = 0.0, noise = 0.0 }}
[device.points.CH1.alarm]
limits = [{{ above = 50.0, level = "red", label = "二级报警" }}]
deadband = 1.0
"#,
        tcp = free_port(),
    )
}

struct Receivers {
    webhook: HttpReceiver,
    dingtalk: HttpReceiver,
    wecom: HttpReceiver,
    sms: HttpReceiver,
    broken: HttpReceiver,
    hanging: HttpReceiver,
    smtp: SmtpSink,
}

impl Receivers {
    fn start() -> Receivers {
        let robot =
            || HttpReceiver::start(Answer::Ok(r#"{"errcode":0,"errmsg":"ok"}"#.into())).unwrap();
        Receivers {
            webhook: HttpReceiver::start(Answer::Ok("{}".into())).unwrap(),
            dingtalk: robot(),
            wecom: robot(),
            sms: HttpReceiver::start(Answer::Ok(r#"{"code":"OK"}"#.into())).unwrap(),
            broken: HttpReceiver::start(Answer::Status(500)).unwrap(),
            hanging: HttpReceiver::start(Answer::Hang).unwrap(),
            smtp: SmtpSink::start().unwrap(),
        }
    }

    /// Tier 1 at once (duty operator: DingTalk and SMS; a broken and a hanging webhook
    /// beside them), tier 2 after `second` (safety manager: WeCom and email), tier 3 after
    /// `third` (regulator on duty: webhook).
    fn config(&self, second: &str, third: &str) -> String {
        format!(
            r#"
[notify]
public_url = "https://supervision.example.org/"
utc_offset = "+08:00"
[notify.smtp]
host = "127.0.0.1"
port = {smtp}
security = "none"
from = "hazingest@example.org"
[notify.sms]
url = "{sms}"
body = '{{"mobile":"{{to}}","content":"{{text}}"}}'

[[contact]]
id = "duty"
name = "值班员 王五"
dingtalk = "{dingtalk}"
sms = "13800000000"

[[contact]]
id = "flaky"
name = "坏掉的接收端"
webhook = "{broken}"

[[contact]]
id = "stuck"
name = "不回应的接收端"
webhook = "{hanging}"

[[contact]]
id = "safety"
name = "安全负责人 李四"
wecom = "{wecom}"
email = "safety@example.org"

[[contact]]
id = "regulator"
name = "应急局值班"
webhook = "{webhook}"

[[escalation]]
sites = ["*"]
tiers = [
  {{ name = "值班员", contacts = ["duty", "flaky", "stuck"], red = "0s" }},
  {{ name = "安全负责人", contacts = ["safety"], red = "{second}" }},
  {{ name = "监管值班", contacts = ["regulator"], red = "{third}" }},
]
"#,
            smtp = self.smtp.port,
            sms = self.sms.url("/sms"),
            dingtalk = self.dingtalk.url("/robot/send?access_token=t"),
            broken = self.broken.url("/hook"),
            hanging = self.hanging.url("/hook"),
            wecom = self.wecom.url("/cgi-bin/webhook/send?key=k"),
            webhook = self.webhook.url("/hook"),
        )
    }
}

struct Rig {
    w: Workdir,
    c: Central,
    sim: Sim,
    _gateway: Gateway,
    web: u16,
}

fn rig(r: &Receivers, second: &str, third: &str) -> Rig {
    let w = Workdir::new();
    let c = Central::start(&w, "hazingest-esc", |t| t + &r.config(second, third)).unwrap();
    let site = w.write("site.toml", &site(&c.broker.url()));
    let sim = Sim::start(&site, &[]).unwrap();
    let gateway = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    Rig {
        w,
        web: c.web,
        c,
        sim,
        _gateway: gateway,
    }
}

fn open_occurrence(web: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http::get(web, "/api/occurrences").unwrap();
        let list = serde_json::from_str::<Value>(&body).unwrap()["occurrences"].clone();
        if let Some(o) = list.as_array().and_then(|l| l.first()) {
            return o.clone();
        }
        assert!(Instant::now() < deadline, "no occurrence");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn timeline(web: u16, o: &Value) -> Vec<Value> {
    let path = format!(
        "/api/occurrences/{}/{}/{}",
        o["site"].as_str().unwrap(),
        o["gateway"].as_str().unwrap(),
        o["occurrence"].as_str().unwrap()
    );
    let body = http::get(web, &path).unwrap();
    serde_json::from_str::<Value>(&body).unwrap()["timeline"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_red_alarm_climbs_tier_by_tier_until_someone_answers() {
    let rc = Receivers::start();
    let r = rig(&rc, "3s", "8s");
    std::thread::sleep(Duration::from_secs(1));
    let raised = Instant::now();
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 60.0}))
        .unwrap();
    let o = open_occurrence(r.web);

    // Tier 1 at once, on both its channels, despite its broken and hanging neighbours.
    wait("tier 1 by DingTalk and SMS", Duration::from_secs(4), || {
        rc.dingtalk.received().len() == 1 && rc.sms.received().len() == 1
    });
    let ding: Value = serde_json::from_str(&rc.dingtalk.received()[0].body).unwrap();
    let text = ding["text"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("【红色预警】HB-420100-0010 HS-01 GD-101.CH1 超限（二级报警）"),
        "{text}"
    );
    assert!(
        text.contains("限值 50%LEL") && text.contains("第1级通知（值班员）"),
        "{text}"
    );
    assert!(
        text.contains("https://supervision.example.org/?occurrence="),
        "{text}"
    );
    let sms: Value = serde_json::from_str(&rc.sms.received()[0].body).unwrap();
    assert_eq!(sms["mobile"], "13800000000");
    assert_eq!(sms["content"].as_str().unwrap(), text);
    assert!(
        rc.wecom.received().is_empty() && rc.smtp.mails().is_empty(),
        "tier 2 too early"
    );

    // Tier 2 after 3 s: WeCom and email.
    wait("tier 2", Duration::from_secs(8), || {
        rc.wecom.received().len() == 1 && rc.smtp.mails().len() == 1
    });
    assert!(raised.elapsed() >= Duration::from_secs(3));
    let mail = &rc.smtp.mails()[0];
    assert_eq!(mail.to, ["safety@example.org"]);
    assert!(
        mail.data.contains("Content-Type: text/plain"),
        "{}",
        mail.data
    );

    // The endpoint that answers 500 is tried again (after 5 s), the others meanwhile went.
    wait("the 500 retried", Duration::from_secs(8), || {
        rc.broken.received().len() >= 2
    });
    assert!(
        raised.elapsed() < Duration::from_secs(7),
        "too late for the test"
    );

    // Answered before tier 3 (8 s): the regulator on duty is never called.
    let path = format!(
        "/api/occurrences/{}/{}/{}/ack",
        o["site"].as_str().unwrap(),
        o["gateway"].as_str().unwrap(),
        o["occurrence"].as_str().unwrap()
    );
    let (status, body) = http::request(r.web, "POST", &path, Some(r#"{"note":"已处置"}"#)).unwrap();
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(
        Duration::from_secs(9).saturating_sub(raised.elapsed()) + Duration::from_secs(2),
    );
    assert!(
        rc.webhook.received().is_empty(),
        "tier 3 after the acknowledgement"
    );
    // Each tier once.
    assert_eq!(rc.dingtalk.received().len(), 1);
    assert_eq!(rc.wecom.received().len(), 1);
    assert_eq!(rc.smtp.mails().len(), 1);
    assert_eq!(rc.sms.received().len(), 1);

    // The broken endpoint was tried again and recorded; the hanging one recorded too.
    let log = timeline(r.web, &o);
    let kinds: Vec<(&str, &str)> = log
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(kinds.contains(&("escalated", "值班员")), "{kinds:?}");
    assert!(kinds.contains(&("escalated", "安全负责人")), "{kinds:?}");
    assert!(
        !kinds.iter().any(|k| k == &("escalated", "监管值班")),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|(k, a)| *k == "notify_retry" && a.starts_with("flaky")),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|(k, a)| *k == "notified" && a.starts_with("duty (dingtalk")),
        "{kinds:?}"
    );
    assert_eq!(
        rc.hanging.received().len(),
        1,
        "the hanging one is still being waited for"
    );
}

#[test]
fn a_sigkill_in_the_middle_of_an_escalation_loses_and_repeats_nothing() {
    let rc = Receivers::start();
    let mut r = rig(&rc, "4s", "8s");
    std::thread::sleep(Duration::from_secs(1));
    r.sim
        .ctl(json!({"device": "GD-101", "point": "CH1", "set": 60.0}))
        .unwrap();
    wait("tier 1", Duration::from_secs(5), || {
        rc.dingtalk.received().len() == 1
    });
    r.c.ingest.kill();
    std::thread::sleep(Duration::from_secs(2));
    r.c.ingest = Daemon::ingest(&r.c.config, &r.w.path().join("ingest.log")).unwrap();
    wait_port(r.web, Duration::from_secs(10)).unwrap();
    wait("tier 3", Duration::from_secs(15), || {
        rc.webhook.received().len() == 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rc.dingtalk.received().len(), 1, "tier 1 once");
    assert_eq!(rc.sms.received().len(), 1, "tier 1 once");
    assert_eq!(rc.wecom.received().len(), 1, "tier 2 once");
    assert_eq!(rc.smtp.mails().len(), 1, "tier 2 once");
    assert_eq!(rc.webhook.received().len(), 1, "tier 3 once");
}

/// Several instances share the load through PostgreSQL: each tier is claimed by one of
/// them, so every notification goes out exactly once.
#[test]
fn two_instances_on_postgresql_notify_each_tier_exactly_once() {
    let pg = hazgate_e2e::postgres::Postgres::start().unwrap();
    let database = pg.database("supervision_two").unwrap();
    let rc = Receivers::start();
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let broker = Broker::start(&w.path().join("mq")).unwrap();
    let vm = VictoriaMetrics::start(&w.path().join("vm")).unwrap();
    let mut instances = Vec::new();
    let mut webs = Vec::new();
    for n in 0..2 {
        let ports = free_ports(2);
        let client_id = format!("hazingest-pg-{n}");
        let text = central_toml(&CentralSetup {
            broker_port: broker.port,
            store_url: &vm.url(),
            client_id: &client_id,
            web: ports[0],
            metrics: ports[1],
        })
        .replace(
            &format!("database = \"sqlite://supervision-{client_id}.db\""),
            &format!("database = \"{database}\""),
        ) + &rc.config("3s", "6s");
        assert!(text.contains("postgres://"));
        let central = w.write(&format!("central-{n}.toml"), &text);
        instances
            .push(Daemon::ingest(&central, &w.path().join(format!("ingest-{n}.log"))).unwrap());
        wait_port(ports[0], Duration::from_secs(20)).unwrap();
        webs.push(ports[0]);
    }
    let site_file = w.write("site.toml", &site(&broker.url()));
    let sim = Sim::start(&site_file, &[]).unwrap();
    let _gateway = Gateway::start(&site_file, &w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 60.0}))
        .unwrap();
    // Both instances see the same occurrence.
    let o = open_occurrence(webs[0]);
    assert_eq!(open_occurrence(webs[1])["occurrence"], o["occurrence"]);
    wait("all three tiers", Duration::from_secs(20), || {
        rc.webhook.received().len() == 1 && rc.wecom.received().len() == 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rc.dingtalk.received().len(), 1, "tier 1 once");
    assert_eq!(rc.sms.received().len(), 1, "tier 1 once");
    assert_eq!(rc.wecom.received().len(), 1, "tier 2 once");
    assert_eq!(rc.smtp.mails().len(), 1, "tier 2 once");
    assert_eq!(rc.webhook.received().len(), 1, "tier 3 once");
    let escalated = timeline(webs[1], &o)
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .count();
    assert_eq!(escalated, 3);
}
