//! `hazgate run`: pollers, the store task and the uplink, started from a site config,
//! reloaded on SIGHUP and stopped in order on SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use firmware_config::SiteConfig;

use crate::clock::ClockWatch;
use crate::envelope::{Origin, Seqs};
use crate::metrics::Metrics;
use crate::ops::systemd::Notifier;
use crate::pipeline::{PipelineHandle, StateMessage};
use crate::poll::schedule::run_bus;
use crate::poll::Acquired;
use crate::store::task::StoreHandle;
use crate::store::{Store, StoreOptions};
use crate::uplink::{StatusInfo, UplinkSettings};

/// Readings batches the pipeline may lag behind before pollers wait for it.
const READINGS_QUEUE: usize = 4096;
/// Messages in flight to the broker.
pub const WINDOW: usize = 64;

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
    pipeline: PipelineHandle,
    readings: mpsc::Sender<Acquired>,
    store_task: JoinHandle<()>,
    pipeline_task: JoinHandle<()>,
    pollers: Option<Running>,
    uplink: Option<Running>,
    origin: Origin,
    seqs: Arc<Seqs>,
    clock: Arc<ClockWatch>,
    status: watch::Sender<StatusInfo>,
    /// The master data the uplink publishes; a reload replaces it.
    master: watch::Sender<Arc<hazgate_wire::MasterData>>,
    state: watch::Receiver<Option<Arc<StateMessage>>>,
    abnormal: Arc<crate::alarm::abnormal::Abnormal>,
    metrics_server: Option<JoinHandle<()>>,
}

/// Opens the store; a store that cannot open (full disk, read-only, a damaged folder) is
/// no reason to stop polling and alarming: the gateway runs degraded, holds records in
/// memory, raises `store_failed`, and retries.
async fn open_store(options: StoreOptions) -> (Option<Store>, Arc<Seqs>) {
    let dir = options.dir.clone();
    match tokio::task::spawn_blocking(move || Store::open(options)).await {
        Ok(Ok((store, recovery))) => {
            for (lane, r) in [
                ("alarm", &recovery.lanes[0]),
                ("telemetry", &recovery.lanes[1]),
            ] {
                if r.corrupt_records > 0 || r.truncated_bytes > 0 || r.unreadable_segments > 0 {
                    warn!(
                        lane,
                        corrupt = r.corrupt_records,
                        truncated_bytes = r.truncated_bytes,
                        unreadable_segments = r.unreadable_segments,
                        "store recovered from an unclean stop or damage: what was lost is reported as a gap"
                    );
                }
            }
            if recovery.ledger == crate::store::LedgerState::Corrupt {
                warn!("the store's ledger was damaged: rebuilt from the segments; what it still had to report is sent as a gap of unknown size");
            }
            (
                Some(store),
                Arc::new(Seqs::after(&recovery.max_seq_by_topic)),
            )
        }
        Ok(Err(e)) => {
            error!("cannot open the store in {}: {e}; running degraded: records are held in memory and sent directly, and the store is retried", dir.display());
            (None, Arc::new(Seqs::from_clock(crate::clock::wall_ms())))
        }
        Err(e) => {
            error!("the store could not be opened: {e}; running degraded");
            (None, Arc::new(Seqs::from_clock(crate::clock::wall_ms())))
        }
    }
}

impl Daemon {
    /// Opens the store (recovering it after a crash, or running degraded without it), then
    /// starts the pipeline, polling and the uplink.
    pub async fn start(site: SiteConfig) -> Result<Daemon> {
        let options = StoreOptions::new(site.store.dir.clone(), site.store.max_size)
            .with_min_free(site.store.min_free);
        let (store, seqs) = open_store(options.clone()).await;
        seqs.reserve(&site.store.dir);
        let metrics = Arc::new(Metrics::default());
        metrics.started_mono_ms.store(
            crate::clock::mono_ms(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let clock = Arc::new(ClockWatch::default());
        clock.look();
        let origin = Origin {
            site: site.site.id.as_str().into(),
            gateway: site.site.gateway.as_str().into(),
        };
        let (store_handle, store_task) = crate::store::task::spawn(
            store,
            options,
            origin.clone(),
            seqs.clone(),
            metrics.clone(),
        );
        let restored = match crate::alarm::snapshot::load(&site.store.dir) {
            Ok(s) => s,
            Err(e) => {
                warn!("{e}");
                None
            }
        };
        let (readings, readings_rx) = mpsc::channel(READINGS_QUEUE);
        let abnormal = Arc::new(crate::alarm::abnormal::Abnormal::default());
        let (pipeline, state, pipeline_task) = crate::pipeline::spawn(
            crate::pipeline::Parts {
                site: site.clone(),
                restored,
                origin: origin.clone(),
                seqs: seqs.clone(),
                store: store_handle.clone(),
                metrics: metrics.clone(),
                clock: clock.clone(),
                abnormal: abnormal.clone(),
            },
            readings_rx,
            site.store.sync_interval,
        );
        let (status, _) = watch::channel(StatusInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_hash: site.hash.clone(),
            boot_ts: crate::clock::wall_ms(),
        });
        let (master, _) = watch::channel(Arc::new(crate::uplink::master::build(&site)));
        let metrics_server = site.metrics.map(|addr| {
            let health = crate::ops::HealthRules::for_site(&site);
            let listener_metrics = metrics.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::ops::serve_metrics(addr, listener_metrics, health).await {
                    error!("metrics endpoint at {addr} could not start: {e}");
                }
            })
        });
        let mut daemon = Daemon {
            master,
            site,
            metrics,
            store: store_handle,
            pipeline,
            readings,
            store_task,
            pipeline_task,
            pollers: None,
            uplink: None,
            origin,
            seqs,
            clock,
            status,
            state,
            abnormal,
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
                self.abnormal.clone(),
            )));
        }
        // Linkage outputs write through the bus tasks just started.
        let linkage = crate::alarm::linkage::spawn(&self.site, writers, self.pipeline.clone());
        self.pipeline.set_linkage(linkage).await;
        self.pollers = Some(Running { stop, tasks });
    }

    fn start_uplink(&mut self) {
        let Some(uplink) = self.site.uplink.clone() else {
            warn!("no [uplink] in the site config: readings are kept in the store until one is configured");
            return;
        };
        let health_interval = uplink.health_interval;
        let settings = UplinkSettings {
            uplink,
            origin: self.origin.clone(),
            status: self.status.subscribe(),
            master: self.master.subscribe(),
            state: self.state.clone(),
            window: WINDOW,
            health_interval,
            seqs: self.seqs.clone(),
            clock: self.clock.clone(),
            pipeline: Some(self.pipeline.command_sink()),
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
    /// devices, the uplink reconnects if its settings changed, and the status tells the new
    /// config hash at once. A config that names another site, gateway or store is refused:
    /// those cannot change under a running store.
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
        self.status
            .send_modify(|s| s.config_hash = site.hash.clone());
        self.master
            .send_replace(Arc::new(crate::uplink::master::build(&site)));
        self.pipeline.reconfigure(site.clone()).await;
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

    /// Stops polling, hands everything acquired to the store and syncs it, waits briefly
    /// for the broker's last acknowledgements, says `offline`, and closes the session.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.pollers.take() {
            p.stop().await;
        }
        drop(self.readings);
        drop(self.pipeline);
        // The pipeline flushes what it holds and ends once the linkage tasks are gone.
        let _ = self.pipeline_task.await;
        if let Some(u) = self.uplink.take() {
            // Give the uplink a moment to send the final flush.
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
    // Handlers first: a signal during start-up is then handled once running, instead of
    // killing the process with the default action.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let site = crate::commands::load(&path)?;
    let mut daemon = Daemon::start(site).await?;
    let systemd = Arc::new(Notifier::from_env());
    systemd.send("READY=1");
    let (rules, rules_rx) = watch::channel(crate::ops::HealthRules::for_site(&daemon.site));
    let watchdog = systemd.watchdog_interval().map(|every| {
        tokio::spawn(keep_watchdog_fed(
            Arc::clone(&systemd),
            every,
            Arc::clone(&daemon.metrics),
            rules_rx,
        ))
    });
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                systemd.send("RELOADING=1");
                if let Err(e) = daemon.reload(&path).await {
                    error!("the new config was refused; the running one stays in force:\n{e:#}");
                }
                let _ = rules.send(crate::ops::HealthRules::for_site(&daemon.site));
                systemd.send("READY=1");
            }
        }
    }
    info!("stopping");
    systemd.send("STOPPING=1");
    if let Some(w) = watchdog {
        w.abort();
    }
    daemon.shutdown().await;
    Ok(())
}

/// Tells systemd twice per watchdog period that the gateway lives, as long as polling and
/// the pipeline do: a hung loop then gets the process restarted. A broker outage or a
/// failing disk does not stop it (the gateway rides those out itself).
async fn keep_watchdog_fed(
    systemd: Arc<Notifier>,
    every: std::time::Duration,
    metrics: Arc<Metrics>,
    rules: watch::Receiver<crate::ops::HealthRules>,
) {
    let mut tick = tokio::time::interval(every / 2);
    let mut starving = false;
    loop {
        tick.tick().await;
        let stalled = crate::ops::stalled(&metrics, &rules.borrow());
        if stalled.is_empty() {
            systemd.send("WATCHDOG=1");
            starving = false;
        } else if !starving {
            error!(
                "not feeding the systemd watchdog ({}): systemd will restart the gateway",
                stalled.join(", ")
            );
            starving = true;
        }
    }
}
