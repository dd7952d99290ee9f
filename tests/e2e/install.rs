//! What an edge box's service manager sees: the shipped systemd unit passes
//! `systemd-analyze verify` without a warning, and the daemon speaks systemd's notify
//! protocol (ready once polling, fed watchdog while alive, stopping at SIGTERM).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hazgate_e2e::{bin, free_port, Sim, Workdir};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn the_systemd_unit_verifies_without_warnings() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed here (Debian: systemd)");
        return;
    };
    assert!(out.status.success());
    let w = Workdir::new();
    // The unit names the packaged binary; here it is the one just built.
    let original = std::fs::read_to_string(repo().join("deploy/hazgate.service")).unwrap();
    let unit = original.replace("/usr/bin/hazgate", bin("hazgate").to_str().unwrap());
    let path = w.write("hazgate.service", &unit);
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify warns");
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/usr/bin/hazgate check",
    ] {
        assert!(original.contains(needed), "{needed}");
    }
    let unit_section = original.split("[Service]").next().unwrap();
    assert!(
        unit_section.contains("StartLimitIntervalSec=0"),
        "restart forever is a [Unit] setting"
    );
}

#[test]
fn the_daemon_tells_systemd_it_is_ready_alive_and_stopping() {
    let w = Workdir::new();
    let port = free_port();
    let site = w.write(
        "site.toml",
        &format!(
            r#"
[site]
id = "T-0001"
gateway = "gw-test"
[store]
dir = "{store}"
[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {port} }}
[[device]]
id = "PT-201"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"
"#,
            store = w.path().join("store").display()
        ),
    );
    let _sim = Sim::start(&site, &[]).unwrap();
    let socket_path = w.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Command::new(bin("hazgate"))
        .args(["run", "-c", site.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut heard: Vec<String> = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && heard.iter().filter(|s| *s == "WATCHDOG=1").count() < 3 {
        if let Ok(n) = socket.recv(&mut buf) {
            heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert_eq!(
        heard.first().map(String::as_str),
        Some("READY=1"),
        "{heard:?}"
    );
    assert!(
        heard.iter().filter(|s| *s == "WATCHDOG=1").count() >= 3,
        "fed twice per second: {heard:?}"
    );
    // SIGTERM: it says it is stopping, then exits cleanly.
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !heard.iter().any(|s| s == "STOPPING=1") {
        if let Ok(n) = socket.recv(&mut buf) {
            heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(heard.iter().any(|s| s == "STOPPING=1"), "{heard:?}");
    assert!(child.wait().unwrap().success());
}
