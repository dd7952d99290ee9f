//! Harness for end-to-end tests: finds the workspace's binaries, writes site files, starts
//! `hazsim` and waits until it listens, and talks to its control interface.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod browser;
pub mod central;
pub mod crash;
pub mod daemon;
pub mod faults;
pub mod http;
pub mod mqtt;
pub mod postgres;
pub mod receivers;
pub mod schema;
pub mod victoria;

use anyhow::{bail, Context, Result};
use hazgate_wire::Reading;
use serde_json::{json, Value};

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A binary of the workspace, built by `cargo build --workspace --bins` (the test script
/// does that first; cargo does not build other packages' binaries for a test).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // A test runs from target/<profile>/deps/, a tool (the benchmarks) from target/<profile>/.
    let dir = exe.parent().unwrap();
    let path = [dir.join(name), dir.parent().unwrap().join(name)]
        .into_iter()
        .find(|p| p.exists());
    path.unwrap_or_else(|| panic!("{name} is missing next to {}: run `cargo build --workspace --bins` first (scripts/test does)", exe.display()))
}

/// Ports this test process has handed out: tests of one binary run side by side, and the
/// kernel may offer a port again as soon as it is released, before its test binds it.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port nobody listens on right now, never one handed out before in this process.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports, none handed out before in this process.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    // Held open until all are chosen, so the kernel cannot offer one twice meanwhile.
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if !handed.contains(&port) {
            handed.push(port);
            ports.push(port);
        }
        held.push(l);
    }
    ports
}

/// A temporary folder holding a site file and its pseudo-terminal links.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `hazsim`, stopped when dropped.
pub struct Sim {
    child: Child,
    pub control: String,
}

impl Sim {
    /// Starts `hazsim serve` for a site and waits for its `ready` line.
    pub fn start(site: &Path, extra: &[&str]) -> Result<Sim> {
        let control = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(bin("hazsim"))
            .args(["serve", "-c"])
            .arg(site)
            .args(["--control", &control])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting hazsim")?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => Ok(Sim { child, control }),
            Err(_) => {
                let _ = child.kill();
                bail!("hazsim did not say ready within 20s")
            }
        }
    }

    /// Holds a point at an engineering value.
    pub fn set(&self, device: &str, point: &str, value: f64) -> Result<()> {
        self.ctl(json!({"device": device, "point": point, "set": value}))
            .map(|_| ())
    }

    /// Whether a coil (or input) of a device reads on.
    pub fn coil(&self, device: &str, point: &str) -> Result<bool> {
        let reply = self.ctl(json!({"device": device, "point": point, "read": true}))?;
        Ok(matches!(reply["value"], Value::Bool(true)) || reply["value"].as_f64() == Some(1.0))
    }

    /// Waits up to `limit` for a coil to read `want`.
    pub fn wait_coil(&self, device: &str, point: &str, want: bool, limit: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + limit;
        while self.coil(device, point)? != want {
            if std::time::Instant::now() > deadline {
                bail!("{device}.{point} never became {want} within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Sends one control command and returns its reply; fails if the reply is not ok.
    pub fn ctl(&self, command: Value) -> Result<Value> {
        let mut s = TcpStream::connect(&self.control)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        writeln!(s, "{command}")?;
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line)?;
        let reply: Value =
            serde_json::from_str(&line).with_context(|| format!("control reply {line:?}"))?;
        if reply["ok"] != Value::Bool(true) {
            bail!("control command {command} failed: {reply}");
        }
        Ok(reply)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SIGTERM lets it remove its pseudo-terminal links; kill if it lingers.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hazgate` with arguments and returns its output.
pub fn hazgate(args: &[&str]) -> Output {
    Command::new(bin("hazgate"))
        .args(args)
        .output()
        .expect("hazgate runs")
}

/// Runs `hazgate poll` and parses its JSON lines.
pub fn poll(site: &Path, device: Option<&str>) -> Result<Vec<Reading>> {
    let mut args = vec!["poll", "-c", site.to_str().unwrap()];
    if let Some(d) = device {
        args.extend(["--device", d]);
    }
    let out = hazgate(&args);
    // Exit code 1 with readings: the poll ran and nothing read well, which tests look at.
    let all_bad = out.status.code() == Some(1) && !out.stdout.is_empty();
    if !out.status.success() && !all_bad {
        bail!(
            "hazgate poll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not a reading: {l}")))
        .collect()
}

/// The reading of one point, which must be there.
pub fn find<'a>(readings: &'a [Reading], device: &str, point: &str) -> &'a Reading {
    readings
        .iter()
        .find(|r| &*r.device == device && &*r.point == point)
        .unwrap_or_else(|| panic!("no reading for {device}.{point} in {readings:#?}"))
}

/// SIGTERM, then waits up to `limit` for the process to exit; kills it after that.
/// Returns whether it exited successfully in time.
pub fn terminate(mut child: Child, limit: Duration) -> bool {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Now, ms since the Unix epoch (UTC), as gateways stamp readings.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Checks `done` every 100 ms until it says yes (an error counts as not yet), or fails
/// after `limit` naming `what`.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if done().unwrap_or(false) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
