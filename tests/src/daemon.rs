//! `hazgate run` and `hazingest run` as real processes: started, signalled, killed and
//! restarted by tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::bin;

/// A daemon of ours, `run -c CONFIG`.
pub struct Daemon {
    program: &'static str,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// `hazgate run`.
pub type Gateway = Daemon;

impl Daemon {
    /// Starts `hazgate run -c site`; its log (stderr) goes to `log`, appended across restarts.
    pub fn start(site: &Path, log: &Path) -> Result<Daemon> {
        Self::start_program("hazgate", site, log)
    }

    /// Starts `hazgate run -c site` with extra environment variables (e.g. libfaketime's).
    pub fn start_with_env(site: &Path, log: &Path, env: &[(&str, &str)]) -> Result<Daemon> {
        let mut d = Daemon {
            program: "hazgate",
            config: site.to_path_buf(),
            log: log.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        d.restart()?;
        Ok(d)
    }

    /// Starts `hazingest run -c central`, with an `admin` user and API token provisioned
    /// (see [`provision_admin`]).
    pub fn ingest(central: &Path, log: &Path) -> Result<Daemon> {
        provision_admin(central)?;
        Self::start_program("hazingest", central, log)
    }

    fn start_program(program: &'static str, config: &Path, log: &Path) -> Result<Daemon> {
        let mut d = Daemon {
            program,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            env: Vec::new(),
            child: None,
        };
        d.restart()?;
        Ok(d)
    }

    pub fn restart(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(bin(self.program))
            .args(["run", "-c"])
            .arg(&self.config)
            .env("HAZGATE_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} run", self.program))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status();
        }
    }

    /// SIGKILL, as a power cut would: nothing gets to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully in time.
    pub fn stop(&mut self, limit: Duration) -> bool {
        self.child
            .take()
            .is_some_and(|c| crate::terminate(c, limit))
    }

    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bytes of all files below a folder.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

/// Where one `hazingest` instance connects and answers.
pub struct CentralSetup<'a> {
    pub broker_port: u16,
    pub store_url: &'a str,
    pub client_id: &'a str,
    pub web: u16,
    pub metrics: u16,
}

/// A central.toml for tests: short batches, the default group, the quarantine in
/// `quarantine-{client_id}` and the supervision database `supervision-{client_id}.db`
/// beside the file.
pub fn central_toml(c: &CentralSetup) -> String {
    format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"{}\"\nkeep_alive = \"5s\"\n[ingest]\ngroup = \"hazingest\"\nquarantine_dir = \"quarantine-{1}\"\n[store]\nurl = \"{}\"\nbatch_lines = 5000\nbatch_interval = \"100ms\"\ntimeout = \"2s\"\n[web]\nlisten = \"127.0.0.1:{}\"\n[metrics]\nlisten = \"127.0.0.1:{}\"\n[supervision]\ndatabase = \"sqlite://supervision-{1}.db\"\n",
        c.broker_port, c.client_id, c.store_url, c.web, c.metrics
    )
}

/// The password of the `admin` user every test central gets.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// `hazingest user add` against a central config; the password goes in on stdin.
pub fn user_add(central: &Path, name: &str, role: &str, scope: &str, password: &str) -> Result<()> {
    let out = hazingest_cli(
        central,
        &["add", "--name", name, "--role", role, "--scope", scope],
        password,
    )?;
    if !out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("exists already") {
        anyhow::bail!("user add: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn hazingest_cli(central: &Path, args: &[&str], stdin: &str) -> Result<std::process::Output> {
    use std::io::Write;
    let mut child = Command::new(bin("hazingest"))
        .args(["user", "-c"])
        .arg(central)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running hazingest user")?;
    if let Some(mut i) = child.stdin.take() {
        writeln!(i, "{stdin}")?;
    }
    Ok(child.wait_with_output()?)
}

/// Gives the central an `admin` user (password [`ADMIN_PASSWORD`]) and an API token, and
/// has [`crate::http`] send that token to its view's port.
pub fn provision_admin(central: &Path) -> Result<()> {
    user_add(central, "admin", "admin", "", ADMIN_PASSWORD)?;
    let out = hazingest_cli(
        central,
        &["token", "--name", "admin", "--label", "tests"],
        "",
    )?;
    if !out.status.success() {
        anyhow::bail!("user token: {}", String::from_utf8_lossy(&out.stderr));
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = std::fs::read_to_string(central)?;
    let web: Option<u16> = text
        .split("[web]")
        .nth(1)
        .and_then(|s| s.split("listen = \"127.0.0.1:").nth(1))
        .and_then(|s| s.split('"').next())
        .and_then(|p| p.parse().ok());
    if let Some(port) = web {
        crate::http::authorize(port, &token);
    }
    Ok(())
}
