//! `hazgate run`: pollers, the store task and the uplink, started from a site config,
//! reloaded on SIGHUP and stopped in order on SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use firmware_config::SiteConfig;
use hazgate_wire::Reading;

use crate::metrics::Metrics;
use crate::poll::schedule::run_bus;
use crate::store::task::{Origin, StoreHandle};
use crate::store::{status_seq, Store, StoreOptions};
use crate::uplink::{StatusInfo, UplinkSettings};

/// Readings batches the store task may lag behind before pollers wait for it.
const READINGS_QUEUE: usize = 4096;
/// Messages in flight to the broker.
pub const WINDOW: usize = 64;
/// How often the retained status carries fresh health figures.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(30);

struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

pub struct Daemon {
    pub site: SiteConfig,
    pub metrics: Arc<Metrics>,
    pub store: StoreHandle,
    readings: mpsc::Sender<Vec<Reading>>,
    store_task: JoinHandle<()>,
    pollers: Option<Running>,
    uplink: Option<Running>,
    origin: Origin,
    status: StatusInfo,
    status_seq: Arc<AtomicU64>,
    metrics_server: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Opens the store (recovering it after a crash), then starts polling and the uplink.
    pub async fn start(site: SiteConfig) -> Result<Daemon> {
        let options = StoreOptions::new(site.store.dir.clone(), site.store.max_size);
        let (store, recovery) = tokio::task::spawn_blocking(move || Store::open(options))
            .await?
            .with_context(|| format!("cannot open the store in {}", site.store.dir.display()))?;
        for (lane, r) in [
            ("alarm", &recovery.lanes[0]),
            ("telemetry", &recovery.lanes[1]),
        ] {
            if r.corrupt_records > 0 || r.truncated_bytes > 0 {
                warn!(
                    lane,
                    corrupt = r.corrupt_records,
                    truncated_bytes = r.truncated_bytes,
                    "store recovered from an unclean stop: a torn or corrupt tail was cut off"
                );
            }
        }
        let metrics = Arc::new(Metrics::default());
        let origin = Origin {
            site: site.site.id.as_str().into(),
            gateway: site.site.gateway.as_str().into(),
        };
        let (readings, readings_rx) = mpsc::channel(READINGS_QUEUE);
        let restored = match crate::alarm::snapshot::load(&site.store.dir) {
            Ok(s) => s,
            Err(e) => {
                warn!("{e}");
                None
            }
        };
        let alarms = crate::alarm::AlarmEngine::new(&site, restored);
        let (store_handle, store_task) = crate::store::task::spawn(
            store,
            alarms,
            site.store.dir.clone(),
            recovery.max_seq_by_topic.clone(),
            origin.clone(),
            readings_rx,
            site.store.sync_interval,
            metrics.clone(),
        );
        let status_seq = Arc::new(AtomicU64::new(
            status_seq::reserve(&site.store.dir)
                .with_context(|| format!("cannot write to {}", site.store.dir.display()))?,
        ));
        let status = StatusInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_hash: site.hash.clone(),
            boot_ts: crate::poll::cycle::now_ms(),
        };
        let metrics_server = match site.metrics {
            Some(addr) => {
                let listener_metrics = metrics.clone();
                Some(tokio::spawn(async move {
                    if let Err(e) = crate::ops::serve_metrics(addr, listener_metrics).await {
                        error!("metrics endpoint at {addr} could not start: {e}");
                    }
                }))
            }
            None => None,
        };
        let mut daemon = Daemon {
            site,
            metrics,
            store: store_handle,
            readings,
            store_task,
            pollers: None,
            uplink: None,
            origin,
            status,
            status_seq,
            metrics_server,
        };
        daemon.start_pollers().await;
        daemon.start_uplink();
        info!(site = %daemon.site.site.id, gateway = %daemon.site.site.gateway, devices = daemon.site.devices.len(), "hazgate running");
        Ok(daemon)
    }

    async fn start_pollers(&mut self) {
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut writers = crate::alarm::linkage::BusWriters::new();
        for (b, bus) in self.site.buses.iter().enumerate() {
            let devices: Vec<_> = self.site.devices_on(b).cloned().collect();
            if devices.is_empty() {
                continue;
            }
            let (write_tx, write_rx) = mpsc::channel(64);
            writers.insert(b, write_tx);
            tasks.push(tokio::spawn(run_bus(
                bus.clone(),
                devices,
                self.readings.clone(),
                self.metrics.clone(),
                stop_rx.clone(),
                write_rx,
            )));
        }
        // Linkage outputs write through the bus tasks just started.
        let linkage = crate::alarm::linkage::spawn(&self.site, writers, self.store.clone());
        self.store.set_linkage(linkage).await;
        self.pollers = Some(Running { stop, tasks });
    }

    fn start_uplink(&mut self) {
        let Some(uplink) = self.site.uplink.clone() else {
            warn!("no [uplink] in the site config: readings are kept in the store until one is configured");
            return;
        };
        let settings = UplinkSettings {
            uplink,
            origin: self.origin.clone(),
            status: self.status.clone(),
            window: WINDOW,
            health_interval: HEALTH_INTERVAL,
            status_seq: self.status_seq.clone(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(crate::uplink::run(
            settings,
            self.store.clone(),
            self.metrics.clone(),
            stop_rx,
        ));
        self.uplink = Some(Running {
            stop,
            tasks: vec![task],
        });
    }

    /// Applies a new config without losing the store: polling restarts with the new
    /// devices, the uplink reconnects if its settings changed. A config that names another
    /// site, gateway or store is refused: those cannot change under a running store.
    pub async fn reload(&mut self, path: &Path) -> Result<()> {
        let site = crate::commands::load(path)?;
        if site.site.id != self.site.site.id || site.site.gateway != self.site.site.gateway {
            bail!(
                "the new config names another site or gateway; restart hazgate to change identity"
            );
        }
        if site.store != self.site.store {
            bail!("the new config changes [store]; restart hazgate to move or resize the store");
        }
        if site.metrics != self.site.metrics {
            warn!("[metrics] changes take effect at the next restart");
        }
        let uplink_changed = site.uplink != self.site.uplink;
        if let Some(p) = self.pollers.take() {
            p.stop().await;
        }
        self.status.config_hash = site.hash.clone();
        self.store.reconfigure(site.clone()).await;
        self.site = site;
        self.start_pollers().await;
        if uplink_changed {
            if let Some(u) = self.uplink.take() {
                u.stop().await;
            }
            self.start_uplink();
        }
        info!(devices = self.site.devices.len(), hash = %self.site.hash, "config reloaded");
        Ok(())
    }

    /// Stops polling, writes and syncs everything acquired, waits briefly for the broker's
    /// last acknowledgements, says `offline`, and closes the session cleanly.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.pollers.take() {
            p.stop().await;
        }
        drop(self.readings); // the store task flushes and syncs what it holds
        if let Some(u) = self.uplink.take() {
            // Give the uplink one sync interval to send the final flush.
            tokio::time::sleep(Duration::from_millis(50)).await;
            u.stop().await;
        }
        drop(self.store);
        let _ = self.store_task.await;
        if let Some(m) = self.metrics_server {
            m.abort();
        }
        info!("hazgate stopped cleanly");
    }
}

/// Runs until SIGTERM or SIGINT; SIGHUP reloads the config from `path`.
pub async fn run_until_signalled(path: PathBuf) -> Result<()> {
    let site = crate::commands::load(&path)?;
    let mut daemon = Daemon::start(site).await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if let Err(e) = daemon.reload(&path).await {
                    error!("the new config was refused; the running one stays in force:\n{e:#}");
                }
            }
        }
    }
    info!("stopping");
    daemon.shutdown().await;
    Ok(())
}
