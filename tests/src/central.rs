//! The central side for a test: mosquitto, victoria-metrics and `hazingest run` with an
//! `admin` user and API token (see [`crate::daemon::provision_admin`]), in a workdir.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::daemon::{central_toml, CentralSetup, Daemon};
use crate::mqtt::{wait_port, Broker};
use crate::victoria::VictoriaMetrics;
use crate::{free_ports, Workdir};

pub struct Central {
    pub broker: Broker,
    pub vm: VictoriaMetrics,
    pub ingest: Daemon,
    /// The view's port.
    pub web: u16,
    pub metrics: u16,
    /// The central config written.
    pub config: PathBuf,
}

impl Central {
    /// Starts all three; `edit` may change the central config (add `[notify]`, settings).
    pub fn start(
        w: &Workdir,
        client_id: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Result<Central> {
        std::fs::create_dir_all(w.path().join("mq"))?;
        let broker = Broker::start(&w.path().join("mq"))?;
        let vm = VictoriaMetrics::start(&w.path().join("vm"))?;
        let ports = free_ports(2);
        let text = central_toml(&CentralSetup {
            broker_port: broker.port,
            store_url: &vm.url(),
            client_id,
            web: ports[0],
            metrics: ports[1],
        });
        let config = w.write("central.toml", &edit(text));
        Self::with_config(broker, vm, config, ports[0], ports[1], w)
    }

    fn with_config(
        broker: Broker,
        vm: VictoriaMetrics,
        config: PathBuf,
        web: u16,
        metrics: u16,
        w: &Workdir,
    ) -> Result<Central> {
        let ingest = Daemon::ingest(&config, &w.path().join("ingest.log"))?;
        wait_port(web, Duration::from_secs(10))?;
        Ok(Central {
            broker,
            vm,
            ingest,
            web,
            metrics,
            config,
        })
    }
}
