//! Commissioning tools against `hazsim`: `hazgate scan` finds the unit ids on a Modbus TCP
//! bus and on an RS-485 line (a pseudo-terminal), `hazgate read` shows a register range in
//! every decoding, and the one-shot tools fail visibly and end quietly on a closed pipe.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hazgate_e2e::mqtt::Broker;
use hazgate_e2e::{bin, free_port, hazgate, Sim, Workdir};
use serde_json::json;

fn site() -> (Workdir, std::path::PathBuf, u16, std::path::PathBuf) {
    let w = Workdir::new();
    let tty = w.path().join("ttyRS485-1");
    let tcp = free_port();
    let text = format!(
        r#"
[site]
id = "T-0001"
gateway = "gw-test"

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}

[[bus]]
id = "rs485-1"
rtu = {{ port = "{tty}", baud = 19200, parity = "none" }}

[[device]]
id = "PT-201"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"

[[device]]
id = "GT-301"
bus = "tcp-1"
unit = 4
profile = "gas-transmitter-4-20ma"
poll = "1s"

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 2
profile = "gas-detector-4ch"
poll = "2s"

[[device]]
id = "TT-401"
bus = "rs485-1"
unit = 3
profile = "temperature-transmitter"
poll = "2s"
"#,
        tty = tty.display()
    );
    let path = w.write("site.toml", &text);
    (w, path, tcp, tty)
}

/// Runs `hazgate` with the words of `command_line` (no word has a space in these tests):
/// its exit, stdout and stderr.
fn run(command_line: &str) -> (std::process::Output, String, String) {
    let args: Vec<&str> = command_line.split_whitespace().collect();
    let out = hazgate(&args);
    let (stdout, stderr) = text_of(&out);
    (out, stdout, stderr)
}

fn text_of(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn units_found(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("unit "))
        .map(|l| l.split(':').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn scan_finds_the_units_on_a_tcp_bus_and_an_rs485_line() {
    let (_w, site, _tcp, tty) = site();
    let _sim = Sim::start(&site, &[]).unwrap();
    let c = site.to_str().unwrap();
    let started = Instant::now();
    let (out, stdout, stderr) = run(&format!(
        "scan -c {c} --bus tcp-1 --units 1-6 --timeout 300ms"
    ));
    assert!(out.status.success(), "{stdout}{stderr}");
    // hazsim, like a Modbus TCP gateway, says "no device" (exception 0B) for other ids.
    assert_eq!(units_found(&stdout), ["1", "4"], "{stdout}");
    assert!(
        stdout.contains("unit 1: holding (FC03) answers;"),
        "{stdout}"
    );
    assert!(
        stderr.contains("6/6 tried, 2 answered"),
        "progress: {stderr}"
    );

    let tty = tty.to_str().unwrap();
    let serial = format!("scan --serial {tty} --baud 19200");
    let (out, stdout, stderr) = run(&format!("{serial} --units 1-4 --timeout 150ms"));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(units_found(&stdout), ["2", "3"], "{stdout}");
    // Both scans together: each missing id costs its timeout, each present one four
    // requests, well within five seconds.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "scans took {:?}",
        started.elapsed()
    );

    // Nobody at those ids: a failure a script sees.
    let (out, stdout, _) = run(&format!("{serial} --units 10-11 --timeout 100ms"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout, "no unit answered\n");
}

#[test]
fn read_shows_a_float_in_the_order_the_device_uses() {
    let (_w, site, tcp, _tty) = site();
    let sim = Sim::start(&site, &[]).unwrap();
    sim.ctl(json!({"device": "PT-201", "point": "PRESSURE", "set": 1.6}))
        .unwrap();
    let port = format!("127.0.0.1:{tcp}");
    let (out, stdout, stderr) = run(&format!("read --tcp {port} --unit 1 --address 0 --count 2"));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!("Modbus TCP {port}, unit 1, holding 0..1")),
        "{stdout}"
    );
    // The profile says CDAB: that row reads 1.6, the standard order does not.
    let row = |order: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("0 ") && l.contains(order))
            .unwrap_or_else(|| panic!("no {order} row in {stdout}"))
            .to_string()
    };
    assert!(row("CDAB").ends_with(" 1.6"), "{}", row("CDAB"));
    assert!(!row("ABCD").ends_with(" 1.6"), "{}", row("ABCD"));

    // An address the device does not have: its exception, and a failure.
    let (out, _, stderr) = run(&format!(
        "read --tcp {port} --unit 1 --address 60000 --count 2"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("exception 02"), "{stderr}");

    // Bad arguments are refused before anything is sent.
    let (out, _, stderr) = run("read --tcp localhost --unit 1 --address 0");
    assert_eq!(out.status.code(), Some(2), "a refused flag is exit code 2");
    assert!(stderr.contains("--tcp wants HOST:PORT"), "{stderr}");
    let (out, _, stderr) = run(&format!(
        "read --tcp {port} --unit 1 --address 0 --count 126"
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("1 to 125"), "{stderr}");
}

#[test]
fn poll_fails_when_nothing_reads_and_tools_end_quietly_on_a_closed_pipe() {
    // No simulator: every reading is bad.
    let (w, site, _tcp, _tty) = site();
    let c = site.to_str().unwrap();
    let out = hazgate(&["poll", "-c", c, "--device", "PT-201"]);
    assert_eq!(out.status.code(), Some(1), "{}", text_of(&out).1);
    assert!(text_of(&out).1.contains("0 good"), "{}", text_of(&out).1);

    // A refused config: nothing is done, exit code 2 (a fault found is 1).
    let broken = w.write("broken.toml", "[site]\nid = \"T\"\n");
    let out = hazgate(&["check", "-c", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text_of(&out).1);
    assert!(text_of(&out).1.contains("nothing was started"));

    // The reader is gone before `check` writes its report (`hazgate check | head -0`).
    let mut child = Command::new(bin("hazgate"))
        .args(["check", "-c", c])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}",
        out.status
    );
}

#[test]
fn check_connect_says_what_answered() {
    let (w, site, _tcp, _tty) = site();
    let _sim = Sim::start(&site, &[]).unwrap();
    std::fs::create_dir_all(w.path().join("mq")).unwrap();
    let mut broker = Broker::start(&w.path().join("mq")).unwrap();
    // The same buses, an uplink, and one unit the simulator does not serve.
    let text = std::fs::read_to_string(&site).unwrap().replace(
        "[[bus]]\nid = \"tcp-1\"",
        &format!(
            "[uplink]\nbroker = \"{}\"\n\n[[bus]]\nid = \"tcp-1\"",
            broker.url()
        ),
    ) + "\n[[device]]\nid = \"PT-209\"\nbus = \"tcp-1\"\nunit = 9\nprofile = \"pressure-transmitter-f32\"\npoll = \"1s\"\n";
    let checked = w.write("connect.toml", &text);
    let c = checked.to_str().unwrap();
    let out = hazgate(&["check", "-c", c, "--connect"]);
    let (stdout, stderr) = text_of(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "PT-209 is missing: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!("broker {}: connected", broker.url())),
        "{stdout}"
    );
    assert!(stdout.contains("  PT-201 (unit 1): answers"), "{stdout}");
    assert!(stdout.contains("  GD-101 (unit 2): answers"), "{stdout}");
    assert!(
        stdout.contains("  PT-209 (unit 9): no reading: Modbus exception 0B"),
        "{stdout}"
    );
    // Without PT-209 all answers; with the broker gone, it says so.
    let complete = w.write(
        "complete.toml",
        text.split("\n[[device]]\nid = \"PT-209\"").next().unwrap(),
    );
    let out = hazgate(&["check", "-c", complete.to_str().unwrap(), "--connect"]);
    assert!(
        out.status.success(),
        "{}{}",
        text_of(&out).0,
        text_of(&out).1
    );
    broker.stop();
    let out = hazgate(&["check", "-c", complete.to_str().unwrap(), "--connect"]);
    let (stdout, _) = text_of(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("nothing listens at the broker's address"),
        "{stdout}"
    );
}

/// Every option in the help of every command, with whether a description follows it (on
/// its line after the flag, or on the next, further indented line).
fn undescribed_options(binary: &str, command: &str) -> Vec<String> {
    let out = Command::new(bin(binary))
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{binary} {command} --help");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let options: Vec<&str> = help
        .split("Options:")
        .nth(1)
        .unwrap_or("")
        .lines()
        .collect();
    let mut missing = Vec::new();
    for (i, line) in options.iter().enumerate() {
        let t = line.trim_start();
        if !t.starts_with('-') {
            continue;
        }
        let same_line = t.split("  ").filter(|s| !s.trim().is_empty()).count() >= 2;
        let next_line = options.get(i + 1).is_some_and(|n| {
            let indent = n.len() - n.trim_start().len();
            !n.trim().is_empty()
                && !n.trim_start().starts_with('-')
                && indent > line.len() - t.len()
        });
        if !same_line && !next_line {
            missing.push(format!("{binary} {command}: {}", t.trim()));
        }
    }
    missing
}

#[test]
fn every_flag_of_every_command_says_what_it_does() {
    let commands: [(&str, &[&str]); 3] = [
        ("hazgate", &["run", "check", "poll", "scan", "read", "demo"]),
        ("hazingest", &["run", "check", "user"]),
        ("hazsim", &["serve", "ctl"]),
    ];
    let missing: Vec<String> = commands
        .iter()
        .flat_map(|(binary, subs)| subs.iter().flat_map(|s| undescribed_options(binary, s)))
        .collect();
    assert!(
        missing.is_empty(),
        "options without help text:\n{}",
        missing.join("\n")
    );
}
