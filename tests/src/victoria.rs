//! Debian's VictoriaMetrics as the time-series store in tests: the InfluxDB v2 write API
//! on a free port, deduplication on (so the same key written twice is one sample, as
//! DESIGN.md promises for the store), and no query lag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::http;
use crate::mqtt::wait_port;

pub struct VictoriaMetrics {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// One series of an export: its labels (with `__name__`) and samples.
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<Option<f64>>,
    pub timestamps: Vec<i64>,
}

impl Series {
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", |s| s.as_str())
    }
}

impl VictoriaMetrics {
    /// Starts victoria-metrics with its data below `dir`.
    pub fn start(dir: &Path) -> Result<VictoriaMetrics> {
        let mut vm = VictoriaMetrics {
            port: crate::free_port(),
            dir: dir.to_path_buf(),
            child: None,
        };
        vm.restart()?;
        Ok(vm)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts on the same port and data.
    pub fn restart(&mut self) -> Result<()> {
        let child = Command::new("victoria-metrics")
            .arg(format!("-storageDataPath={}", self.dir.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg("-dedup.minScrapeInterval=1ms")
            .arg("-search.latencyOffset=0s")
            .arg("-retentionPeriod=2y")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context(
                "starting victoria-metrics (install it: apt-get install victoria-metrics; scripts/test does)",
            )?;
        self.child = Some(child);
        wait_port(self.port, Duration::from_secs(20))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while http::get(self.port, "/health").is_err() {
            if Instant::now() > deadline {
                bail!("victoria-metrics is not healthy after 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM and wait: an outage of the store.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::terminate(child, Duration::from_secs(20));
        }
    }

    /// Every series matching the selector, e.g. `{__name__="reading_value",site="S"}`,
    /// with all samples (deduplicated, as the store keeps them).
    pub fn export(&self, selector: &str) -> Result<Vec<Series>> {
        // Makes what was just written visible to queries.
        let _ = http::get(self.port, "/internal/force_flush");
        // Up to a day ahead: the default end is now, which would hide the newest samples.
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            + 86_400;
        let body = http::get(
            self.port,
            &format!(
                "/api/v1/export?match[]={}&start=0&end={end}",
                http::encode(selector)
            ),
        )?;
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: Value = serde_json::from_str(line)?;
                Ok(Series {
                    labels: serde_json::from_value(v["metric"].clone())?,
                    values: serde_json::from_value(v["values"].clone())?,
                    timestamps: serde_json::from_value(v["timestamps"].clone())?,
                })
            })
            .collect()
    }

    /// Samples matching the selector, summed over series.
    pub fn count(&self, selector: &str) -> Result<usize> {
        Ok(self
            .export(selector)?
            .iter()
            .map(|s| s.timestamps.len())
            .sum())
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
