//! Call-response (预警叫应) end to end: hazsim -> hazgate -> mosquitto -> hazingest
//! (SQLite supervision database) -> victoria-metrics, and the view in headless chromium.
//! An enterprise user acknowledges an alarm on the page: the command reaches the edge,
//! the siren is released on the simulated relay module while the beacon stays, the `ack`
//! event comes back and the page shows it confirmed; the 叫应记录 exports as CSV. An
//! acknowledgement given while the gateway is down is applied when it returns. Users see
//! only their sites, cannot acknowledge others' (403), and nothing changes without the
//! session's CSRF token.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hazgate_e2e::browser::Browser;
use hazgate_e2e::central::Central;
use hazgate_e2e::daemon::{user_add, Gateway};
use hazgate_e2e::http::{self, request_with};
use hazgate_e2e::{free_port, Sim, Workdir};

const SITE: &str = "HB-420100-0009";
const PLANT_PASSWORD: &str = "plant-password-1";

fn site(broker: &str) -> String {
    format!(
        r#"
[site]
id = "{SITE}"
gateway = "gw-cr"
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
limits = [{{ above = 25.0, level = "yellow", label = "一级报警" }}]
deadband = 1.0
linkage = [
  {{ level = "yellow", device = "RO-01", point = "DO1" }},
  {{ level = "yellow", device = "RO-01", point = "DO2", silence_on_ack = true }},
]

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "200ms"
"#,
        tcp = free_port(),
    )
}

struct Rig {
    w: Workdir,
    _central: Central,
    sim: Sim,
    gateway: Gateway,
    site: std::path::PathBuf,
    web: u16,
}

fn rig() -> Rig {
    let w = Workdir::new();
    let central = Central::start(&w, "hazingest-cr", |t| t).unwrap();
    let config = &central.config;
    user_add(config, "plant", "enterprise", SITE, PLANT_PASSWORD).unwrap();
    user_add(
        config,
        "other",
        "enterprise",
        "HB-420100-0001",
        "other-password-1",
    )
    .unwrap();
    user_add(config, "wuhan", "regulator", "4201", "wuhan-password-1").unwrap();
    user_add(config, "shiyan", "regulator", "4203", "shiyan-password-1").unwrap();
    let (broker, web) = (&central.broker, central.web);
    let site = w.write("site.toml", &site(&broker.url()));
    let sim = Sim::start(&site, &[]).unwrap();
    let gateway = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    Rig {
        w,
        sim,
        gateway,
        site,
        web,
        _central: central,
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

    fn occurrences(&self) -> Vec<Value> {
        let body = http::get(self.web, "/api/occurrences").unwrap();
        serde_json::from_str::<Value>(&body).unwrap()["occurrences"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn wait_occurrence(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(o) = self.occurrences().into_iter().find(|o| ok(o)) {
                return o;
            }
            assert!(
                Instant::now() < deadline,
                "no occurrence {what}: {:#?}",
                self.occurrences()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Logs in over the API: (cookie, csrf).
fn login(web: u16, name: &str, password: &str) -> (String, String) {
    let body = json!({"name": name, "password": password}).to_string();
    let (status, head, body) = request_with(web, "POST", "/api/login", Some(&body), &[]).unwrap();
    assert_eq!(status, 200, "{body}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim().to_string())
        })
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let csrf = serde_json::from_str::<Value>(&body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

fn ack_path(o: &Value) -> String {
    format!(
        "/api/occurrences/{}/{}/{}/ack",
        o["site"].as_str().unwrap(),
        o["gateway"].as_str().unwrap(),
        o["occurrence"].as_str().unwrap()
    )
}

#[test]
fn an_acknowledgement_on_the_page_reaches_the_edge_and_is_confirmed() {
    let r = rig();
    std::thread::sleep(Duration::from_secs(1));
    r.set("GD-101", "CH1", 30.0);
    let o = r.wait_occurrence("raised", |o| o["level"] == "yellow");
    r.wait_coil("DO2", true);

    let browser = Browser::start().unwrap();
    browser.login(r.web, "plant", PLANT_PASSWORD).unwrap();
    let row = format!(
        "const r = document.querySelector('tr.occurrence[data-occurrence=\"{}\"]'); return r ? r.dataset.answer : null;",
        o["occurrence"].as_str().unwrap()
    );
    browser
        .wait_until(&row, &json!("open"), Duration::from_secs(10))
        .unwrap();
    browser
        .eval(&format!(
            "window.prompt = () => '已到现场'; document.querySelector('tr.occurrence[data-occurrence=\"{}\"] button.ack').click(); return true;",
            o["occurrence"].as_str().unwrap()
        ))
        .unwrap();
    browser
        .wait_until(&row, &json!("confirmed"), Duration::from_secs(15))
        .unwrap();
    r.wait_coil("DO2", false);
    assert!(r.coil("DO1"), "the beacon stays until the alarm clears");

    let confirmed = r.wait_occurrence("confirmed", |x| x["confirmed_ts"].is_i64());
    assert_eq!(confirmed["acked_by"], "plant");
    assert_eq!(confirmed["ack_note"], "已到现场");

    // The record: raise, acknowledgement asked, confirmed at the edge, clear.
    r.set("GD-101", "CH1", 0.0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let csv = loop {
        let csv = http::get(r.web, &format!("/api/record.csv?site={SITE}")).unwrap();
        if csv.contains(",clear,") || Instant::now() > deadline {
            break csv;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    for kind in [
        ",raise,yellow",
        ",ack_requested,yellow,plant,已到现场",
        ",ack_confirmed,yellow,plant,已到现场",
        ",clear,",
    ] {
        assert!(csv.contains(kind), "{kind} missing from:\n{csv}");
    }
}

#[test]
fn an_acknowledgement_given_while_the_gateway_is_down_is_applied_when_it_returns() {
    let mut r = rig();
    std::thread::sleep(Duration::from_secs(1));
    r.set("GD-101", "CH1", 30.0);
    let o = r.wait_occurrence("raised", |o| o["level"] == "yellow");
    r.wait_coil("DO2", true);
    assert!(r.gateway.stop(Duration::from_secs(10)));
    let (status, body) = http::request(
        r.web,
        "POST",
        &ack_path(&o),
        Some(r#"{"note":"电话已通知"}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"],
        "sent"
    );
    std::thread::sleep(Duration::from_secs(1));
    let pending = r.wait_occurrence("acknowledged", |x| x["acked_by"] == "admin");
    assert!(
        pending["confirmed_ts"].is_null(),
        "not yet at the edge: {pending}"
    );
    r.gateway = Gateway::start(&r.site, &r.w.path().join("gw.log")).unwrap();
    let done = r.wait_occurrence("confirmed after the restart", |x| {
        x["confirmed_ts"].is_i64()
    });
    assert_eq!(done["occurrence"], o["occurrence"]);
    r.wait_coil("DO2", false);
}

#[test]
fn each_user_sees_and_answers_only_for_their_own_sites() {
    let r = rig();
    std::thread::sleep(Duration::from_secs(1));
    r.set("GD-101", "CH1", 30.0);
    let o = r.wait_occurrence("raised", |o| o["level"] == "yellow");
    let path = ack_path(&o);

    // Without a caller: the page sends to the login, the API says 401.
    let (status, head, _) = request_with(r.web, "GET", "/", None, &[]).unwrap();
    assert_eq!(status, 303, "{head}");
    assert!(head.to_ascii_lowercase().contains("location: /login"));
    for (method, p) in [
        ("GET", "/api/overview"),
        ("GET", "/api/occurrences"),
        ("POST", path.as_str()),
    ] {
        let (status, _, _) = request_with(r.web, method, p, Some("{}"), &[]).unwrap();
        assert_eq!(status, 401, "{method} {p}");
    }
    assert_eq!(
        request_with(r.web, "GET", "/health", None, &[]).unwrap().0,
        200
    );

    let listed = |cookie: &str| -> usize {
        let (_, _, body) = request_with(
            r.web,
            "GET",
            "/api/occurrences",
            None,
            &[("cookie", cookie)],
        )
        .unwrap();
        serde_json::from_str::<Value>(&body).unwrap()["occurrences"]
            .as_array()
            .unwrap()
            .len()
    };
    let overview = |cookie: &str| -> usize {
        let (_, _, body) =
            request_with(r.web, "GET", "/api/overview", None, &[("cookie", cookie)]).unwrap();
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    // Another enterprise, and a regulator of another city: nothing of this site.
    for (name, password) in [
        ("other", "other-password-1"),
        ("shiyan", "shiyan-password-1"),
    ] {
        let (cookie, csrf) = login(r.web, name, password);
        assert_eq!(listed(&cookie), 0, "{name}");
        assert_eq!(overview(&cookie), 0, "{name}");
        let (status, _, _) = request_with(
            r.web,
            "POST",
            &path,
            Some("{}"),
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        )
        .unwrap();
        assert_eq!(
            status, 403,
            "{name} acknowledged another enterprise's alarm"
        );
    }
    // The regulator of Wuhan (4201) sees it.
    let (cookie, _) = login(r.web, "wuhan", "wuhan-password-1");
    assert_eq!(listed(&cookie), 1);
    assert_eq!(overview(&cookie), 1);

    // The plant's own user: refused without the CSRF token or with a wrong one, then taken.
    let (cookie, csrf) = login(r.web, "plant", PLANT_PASSWORD);
    for headers in [
        vec![("cookie", cookie.as_str())],
        vec![("cookie", cookie.as_str()), ("x-csrf-token", "forged")],
    ] {
        let (status, _, body) = request_with(r.web, "POST", &path, Some("{}"), &headers).unwrap();
        assert_eq!(status, 403, "{body}");
    }
    let (status, _, body) = request_with(
        r.web,
        "POST",
        &path,
        Some("{}"),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    // A second acknowledgement changes nothing.
    let (_, _, body) = request_with(
        r.web,
        "POST",
        &path,
        Some("{}"),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"],
        "already"
    );

    // Users are the administrator's: others may not even list them.
    let (cookie, csrf) = login(r.web, "wuhan", "wuhan-password-1");
    let (status, _, _) = request_with(
        r.web,
        "GET",
        "/api/users",
        None,
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .unwrap();
    assert_eq!(status, 403);
    let (status, body) = http::request(
        r.web,
        "POST",
        "/api/users",
        Some(r#"{"name":"night","role":"enterprise","scope":"HB-420100-0009","password":"night-shift-1"}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let (night, _) = login(r.web, "night", "night-shift-1");
    assert_eq!(listed(&night), 1);
    let (status, body) = http::request(
        r.web,
        "POST",
        "/api/users/night/disabled",
        Some(r#"{"disabled":true}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = request_with(
        r.web,
        "GET",
        "/api/occurrences",
        None,
        &[("cookie", &night)],
    )
    .unwrap();
    assert_eq!(status, 401, "a disabled user's session ends");
    let body = json!({"name": "night", "password": "night-shift-1"}).to_string();
    assert_eq!(
        request_with(r.web, "POST", "/api/login", Some(&body), &[])
            .unwrap()
            .0,
        401
    );

    // Guessing passwords: the sixth failure in a row waits.
    let wrong = json!({"name": "plant", "password": "guess"}).to_string();
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            request_with(r.web, "POST", "/api/login", Some(&wrong), &[])
                .unwrap()
                .0
        })
        .collect();
    // (The disabled user's refused login above counts for this address too.)
    assert!(
        statuses.iter().take_while(|s| **s == 401).count() >= 4 && statuses[5] == 429,
        "{statuses:?}"
    );
    // Logging out ends the session.
    request_with(r.web, "POST", "/api/logout", None, &[("cookie", &cookie)]).unwrap();
    let (status, _, _) = request_with(
        r.web,
        "GET",
        "/api/occurrences",
        None,
        &[("cookie", &cookie)],
    )
    .unwrap();
    assert_eq!(status, 401);
}
