//! Test harness: a real hazsim process on free ports, its control socket, and raw Modbus
//! clients (TCP, RTU on the pty, RTU over TCP) that can see faults a library would hide.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_hazsim");

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hazsim-test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rand::rng().random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Ports a test's hazsim listens on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub tcp: u16,
    pub dtu: u16,
    pub control: u16,
}

/// The test site: an RS-485 line on a pty, a TCP endpoint and an RTU-over-TCP DTU.
pub fn test_site(dir: &Path, p: Ports) -> String {
    format!(
        r#"
[site]
id = "TEST-1"
gateway = "gw-test"

[[bus]]
id = "rs485-1"
rtu = {{ port = "{dir}/tty/rs485-1", baud = 9600 }}

[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {tcp} }}

[[bus]]
id = "dtu-1"
rtu_over_tcp = {{ host = "127.0.0.1", port = {dtu} }}

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "2s"

[[device]]
id = "GD-102"
bus = "rs485-1"
unit = 2
profile = "gas-detector-4ch"
poll = "2s"

[[device]]
id = "GD-201"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
poll = "2s"

[[device]]
id = "GT-1"
bus = "tcp-1"
unit = 2
profile = "gas-transmitter-4-20ma"
poll = "2s"

[[device]]
id = "DO-1"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "2s"

[[device]]
id = "PT-1"
bus = "dtu-1"
unit = 5
profile = "pressure-transmitter-f32"
poll = "2s"
"#,
        dir = dir.display(),
        tcp = p.tcp,
        dtu = p.dtu
    )
}

/// A running hazsim; stopped with SIGTERM on drop.
pub struct Sim {
    pub child: Child,
    pub ports: Ports,
    pub dir: TempDir,
    pub ready_lines: Vec<String>,
}

fn random_ports() -> Ports {
    let mut rng = rand::rng();
    let base = rng.random_range(20_000u16..60_000);
    Ports {
        tcp: base,
        dtu: base + 1,
        control: base + 2,
    }
}

impl Sim {
    /// Starts hazsim on the test site with extra arguments, retrying on port conflicts.
    pub fn start(extra: &[&str]) -> Sim {
        Sim::start_with(extra, test_site, &[])
    }

    /// Starts hazsim on a site made by `site`, with scenario texts written beside it.
    pub fn start_with(
        extra: &[&str],
        site: impl Fn(&Path, Ports) -> String,
        scenarios: &[(&str, &str)],
    ) -> Sim {
        let mut last_err = String::new();
        for _ in 0..10 {
            let dir = TempDir::new();
            let ports = random_ports();
            let site_path = dir.write("site.toml", &site(&dir.0, ports));
            let mut args: Vec<String> =
                vec!["serve".into(), "-c".into(), site_path.display().to_string()];
            args.push("--control".into());
            args.push(format!("127.0.0.1:{}", ports.control));
            for (name, text) in scenarios {
                args.push("--scenario".into());
                args.push(dir.write(name, text).display().to_string());
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut child = Command::new(BIN)
                .args(&args)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("hazsim starts");
            let mut lines = Vec::new();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            let ready = loop {
                line.clear();
                match out.read_line(&mut line) {
                    Ok(0) | Err(_) => break false,
                    Ok(_) => {
                        let l = line.trim_end().to_string();
                        let done = l == "ready";
                        lines.push(l);
                        if done {
                            break true;
                        }
                    }
                }
            };
            if ready {
                // Keep draining stdout so hazsim never blocks on a full pipe.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut out, &mut std::io::sink());
                });
                let mut err = child.stderr.take().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut err, &mut std::io::stderr());
                });
                return Sim {
                    child,
                    ports,
                    dir,
                    ready_lines: lines,
                };
            }
            let _ = child.wait();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            if !err.contains("in use") {
                panic!("hazsim did not start: {err}");
            }
            last_err = err;
        }
        panic!("no free ports after 10 tries: {last_err}");
    }

    pub fn pty(&self) -> PathBuf {
        self.dir.0.join("tty/rs485-1")
    }

    /// Sends one control command and returns the parsed reply.
    pub fn ctl(&self, json: &str) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.ports.control)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(json.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?}: {e}"))
    }

    /// Sends a control command that must succeed.
    pub fn ok(&self, json: &str) -> Value {
        let v = self.ctl(json);
        assert_eq!(v["ok"], true, "{json} -> {v}");
        v
    }

    /// Registers of a point, through the control socket.
    pub fn registers(&self, device: &str, point: &str) -> Vec<u64> {
        let v = self.ok(&format!(
            r#"{{"device":"{device}","point":"{point}","read":true}}"#
        ));
        v["registers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap())
            .collect()
    }

    /// Stops hazsim with SIGTERM and returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            nix::libc::kill(self.child.id() as i32, nix::libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Modbus CRC-16, written independently of the crate under test.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= b as u16;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

pub fn rtu_frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = vec![unit];
    f.extend_from_slice(pdu);
    let crc = crc16(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

pub fn crc_ok(frame: &[u8]) -> bool {
    frame.len() >= 4 && crc16(&frame[..frame.len() - 2]).to_le_bytes() == frame[frame.len() - 2..]
}

/// A raw Modbus TCP client.
pub struct TcpClient(pub TcpStream);

impl TcpClient {
    pub fn connect(port: u16) -> TcpClient {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        TcpClient(s)
    }

    /// Sends a request; returns the whole reply frame, or None if nothing came in time.
    pub fn request(
        &mut self,
        transaction: u16,
        unit: u8,
        pdu: &[u8],
        wait: Duration,
    ) -> Option<Vec<u8>> {
        let mut f = transaction.to_be_bytes().to_vec();
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
        f.push(unit);
        f.extend_from_slice(pdu);
        self.0.write_all(&f).unwrap();
        self.0.set_read_timeout(Some(wait)).unwrap();
        let mut header = [0u8; 7];
        self.0.read_exact(&mut header).ok()?;
        let len = u16::from_be_bytes([header[4], header[5]]) as usize;
        let mut rest = vec![0u8; len - 1];
        self.0.read_exact(&mut rest).ok()?;
        let mut out = header.to_vec();
        out.extend(rest);
        Some(out)
    }
}

/// Reads whatever an RTU peer sends until `quiet` passes without a byte or `wait` ends.
fn collect(
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    wait: Duration,
    quiet: Duration,
) -> Vec<u8> {
    let start = Instant::now();
    let mut last = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while start.elapsed() < wait {
        match read(&mut buf) {
            Ok(n) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                last = Instant::now();
            }
            _ => {
                if !out.is_empty() && last.elapsed() >= quiet {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    out
}

/// A raw RTU client on the pseudo-terminal, like a serial port opened by a gateway.
pub struct PtyClient(pub std::fs::File);

impl PtyClient {
    pub fn open(path: &Path) -> PtyClient {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let mut t = nix::sys::termios::tcgetattr(&f).unwrap();
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(&f, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
        PtyClient(f)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    /// What came back within `wait` (empty: silence).
    pub fn receive(&mut self, wait: Duration) -> Vec<u8> {
        let f = &mut self.0;
        collect(|b| f.read(b), wait, Duration::from_millis(30))
    }

    pub fn request(&mut self, frame: &[u8], wait: Duration) -> Vec<u8> {
        self.send(frame);
        self.receive(wait)
    }
}

/// A raw RTU-over-TCP client, like a gateway talking to a 4G DTU.
pub struct DtuClient(pub TcpStream);

impl DtuClient {
    pub fn connect(port: u16) -> DtuClient {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        DtuClient(s)
    }

    pub fn request(&mut self, frame: &[u8], wait: Duration) -> Vec<u8> {
        self.0.write_all(frame).unwrap();
        let s = &mut self.0;
        collect(|b| s.read(b), wait, Duration::from_millis(30))
    }
}

/// Runs mbpoll and returns `(reference, value)` pairs it printed, or its output on failure.
pub fn mbpoll(args: &[&str]) -> Result<Vec<(u32, i64)>, String> {
    let out = Command::new("mbpoll")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run mbpoll: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(text);
    }
    // Lines like "[1]: \t300" or "[3]: \t43997 (-21539)".
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix('[')?;
            let (r, v) = rest.split_once("]:")?;
            let v = v.split_whitespace().next()?;
            Some((r.parse().ok()?, v.parse().ok()?))
        })
        .collect())
}

/// Whether mbpoll is installed; the conformance tests need it (apt-get install mbpoll).
pub fn have_mbpoll() -> bool {
    Command::new("mbpoll").arg("-V").output().is_ok()
}

/// Waits until `f` holds or `within` passes.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
