//! The simulated plant: hazsim in-process, one server per example site with its scenario.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use firmware_config::{Link, SiteConfig};
use tokio::task::JoinHandle;

use super::examples::Example;

/// How long the simulators may take to open their sockets and pseudo-terminals.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The running simulators.
pub struct Plant {
    servers: Vec<JoinHandle<Result<(), hazsim::SimError>>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Plant {
    /// Starts one hazsim server per site and returns once every bus answers, so the
    /// gateways' first poll finds its devices.
    pub async fn start(examples: &[Example], sites: &[SiteConfig], speed: f64) -> Result<Plant> {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut plant = Plant {
            servers: Vec::new(),
            stop,
        };
        for e in examples {
            plant
                .servers
                .push(tokio::spawn(hazsim::run(hazsim::Options {
                    site: e.config.clone(),
                    scenarios: vec![e.scenario.clone()],
                    speed,
                    control: None,
                    stop: Some(stop_rx.clone()),
                    quiet: true,
                })));
        }
        let started = Instant::now();
        loop {
            // A server that ended already failed: a port taken, a pty that cannot open.
            if let Some(i) = plant.servers.iter().position(|s| s.is_finished()) {
                let result = plant.servers.remove(i).await;
                plant.stop();
                let err = match result {
                    Ok(Err(e)) => anyhow!(e),
                    Ok(Ok(())) => anyhow!("it stopped before it was ready"),
                    Err(e) => anyhow!("it crashed: {e}"),
                };
                let name = examples[i].config.display();
                return Err(err.context(format!(
                    "the simulator of {name} could not start \
                     (is another `hazgate demo` or `hazsim serve` running?)"
                )));
            }
            if all_ready(sites).await {
                return Ok(plant);
            }
            if started.elapsed() > READY_TIMEOUT {
                plant.stop();
                return Err(anyhow!(
                    "the simulated devices were not reachable within {}s",
                    READY_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the simulators: each ends its own tasks and removes its pseudo-terminal links.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for s in self.servers {
            let _ = tokio::time::timeout(Duration::from_secs(2), s).await;
        }
    }

    /// Stops the simulators at once (on a failed start).
    pub fn stop(self) {
        let _ = self.stop.send(true);
        for s in self.servers {
            s.abort();
        }
    }
}

/// Whether every TCP bus accepts a connection and every RTU link exists.
async fn all_ready(sites: &[SiteConfig]) -> bool {
    for bus in sites.iter().flat_map(|s| &s.buses) {
        let ready = match &bus.link {
            Link::Tcp { host, port } | Link::RtuOverTcp { host, port } => {
                tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .is_ok()
            }
            Link::Rtu(line) => Path::new(&line.port).exists(),
        };
        if !ready {
            return false;
        }
    }
    true
}
