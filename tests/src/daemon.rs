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

    /// Starts `hazingest run -c central`.
    pub fn ingest(central: &Path, log: &Path) -> Result<Daemon> {
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
/// `quarantine-{client_id}` beside the file.
pub fn central_toml(c: &CentralSetup) -> String {
    format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"{}\"\nkeep_alive = \"5s\"\n[ingest]\ngroup = \"hazingest\"\nquarantine_dir = \"quarantine-{1}\"\n[store]\nurl = \"{}\"\nbatch_lines = 5000\nbatch_interval = \"100ms\"\ntimeout = \"2s\"\n[web]\nlisten = \"127.0.0.1:{}\"\n[metrics]\nlisten = \"127.0.0.1:{}\"\n",
        c.broker_port, c.client_id, c.store_url, c.web, c.metrics
    )
}
