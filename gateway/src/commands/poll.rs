//! `hazgate poll`: reads every point once and prints one JSON line per reading, the
//! commissioning tool a technician uses at the cabinet.

use std::io::Write;

use anyhow::Result;
use firmware_config::SiteConfig;
use tokio::sync::mpsc;

use crate::poll::poll_once;

/// Counts of what a one-shot poll saw, for the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollSummary {
    pub good: usize,
    pub uncertain: usize,
    pub bad: usize,
}

pub async fn run(
    site: &SiteConfig,
    device: Option<&str>,
    out: &mut impl Write,
) -> Result<PollSummary> {
    if let Some(id) = device {
        if site.device(id).is_none() {
            let known: Vec<&str> = site.devices.iter().map(|d| d.id.as_str()).collect();
            return Err(super::refused(format!(
                "no device \"{id}\" in {}; devices: {known:?}",
                site.path.display()
            )));
        }
    }
    let (tx, mut rx) = mpsc::channel(64);
    let site_owned = site.clone();
    let device_owned = device.map(str::to_string);
    let poller =
        tokio::spawn(async move { poll_once(&site_owned, device_owned.as_deref(), tx).await });
    let mut summary = PollSummary::default();
    while let Some(readings) = rx.recv().await {
        for r in readings {
            match r.quality {
                hazgate_wire::Quality::Good => summary.good += 1,
                hazgate_wire::Quality::Uncertain { .. } => summary.uncertain += 1,
                hazgate_wire::Quality::Bad { .. } => summary.bad += 1,
            }
            serde_json::to_writer(&mut *out, &r)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    poller.await?;
    Ok(summary)
}
