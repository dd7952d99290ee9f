//! `hazsim serve`: a listener per bus of the site, the scenario timeline, the control
//! socket, and a clean exit on SIGINT/SIGTERM.

pub mod pty;
pub mod rtu_over_tcp;
pub mod rtu_stream;
pub mod tcp;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use firmware_config::{load_site, ConfigErrors, Link};
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

use crate::control;
use crate::error::SimError;
use crate::scenario::{self, Timeline};
use crate::sim::Sim;

/// How often values are recomputed and scenario events applied (real time).
pub const TICK: Duration = Duration::from_millis(100);

/// What `hazsim serve` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub site: PathBuf,
    pub scenarios: Vec<PathBuf>,
    /// Simulated seconds per real second.
    pub speed: f64,
    pub control: Option<SocketAddr>,
    /// When embedded (the gateway's demo): ends the run when it turns true, and signals are
    /// left to the host program. Standalone (`None`): SIGINT or SIGTERM end it.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// No `ready` lines on stdout (for a host program that draws its own screen).
    pub quiet: bool,
}

/// Runs until SIGINT or SIGTERM, or `stop` when embedded. Prints `ready ...` per listener and then `ready` alone
/// on stdout, which is what scripts and tests wait for.
pub async fn run(opts: Options) -> Result<(), SimError> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        return Err(SimError::Speed(opts.speed));
    }
    let site = load_site(&opts.site)?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for path in &opts.scenarios {
        match scenario::load(path, &site) {
            Ok(s) => scenarios.push(s),
            Err(e) => errors.extend(e.0),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors).into());
    }
    let quiet = opts.quiet;
    let say = |line: String| {
        if !quiet {
            println!("{line}");
        }
    };

    // Handlers before the first `ready` line: a SIGTERM sent as soon as a script sees
    // `ready` must stop us cleanly, not kill us with the default action.
    let stop = match opts.stop {
        Some(stop) => StopOn::Host(stop),
        None => StopOn::Signals(
            signal(SignalKind::interrupt()).map_err(SimError::Signals)?,
            signal(SignalKind::terminate()).map_err(SimError::Signals)?,
        ),
    };
    let sim = Arc::new(Sim::new(site, opts.speed));
    let mut tasks = Vec::new();
    // Sockets first: a port in use then fails the start before any pty symlink is touched.
    for (i, bus) in sim.site.buses.iter().enumerate() {
        let (host, port, kind) = match &bus.link {
            Link::Tcp { host, port } => (host, *port, "tcp"),
            Link::RtuOverTcp { host, port } => (host, *port, "rtu-over-tcp"),
            Link::Rtu(_) => continue,
        };
        let listener = tcp::bind(&bus.id, host, port).await?;
        say(format!("ready bus={} {kind} {}", bus.id, local(&listener)));
        tasks.push(match kind {
            "tcp" => tokio::spawn(tcp::accept_loop(listener, sim.clone(), i, tcp::serve)),
            _ => tokio::spawn(tcp::accept_loop(
                listener,
                sim.clone(),
                i,
                rtu_over_tcp::serve,
            )),
        });
    }
    if let Some(addr) = opts.control {
        let listener = control::bind(addr).await?;
        say(format!("ready control {}", local(&listener)));
        tasks.push(tokio::spawn(control::accept_loop(listener, sim.clone())));
    }
    // Dropping these removes the pty symlinks, on every way out of this function.
    let mut ptys = Vec::new();
    for (i, bus) in sim.site.buses.iter().enumerate() {
        if let Link::Rtu(line) = &bus.link {
            let mut p = pty::Pty::open(&bus.id, &line.port)?;
            say(format!(
                "ready bus={} pty {} -> {}",
                bus.id,
                p.link.display(),
                p.slave_path.display()
            ));
            tasks.push(p.spawn(sim.clone(), i));
            ptys.push(p);
        }
    }
    for s in &scenarios {
        let description = s.description.as_deref().unwrap_or("");
        info!(
            events = s.events.len(),
            "scenario {}: {description}",
            s.path.display()
        );
    }
    tasks.push(tokio::spawn(run_timeline(
        sim.clone(),
        Timeline::new(scenarios),
    )));
    say("ready".to_string());
    info!(devices = sim.devices.len(), speed = opts.speed, "serving");

    match stop {
        StopOn::Host(mut stop) => {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        }
        StopOn::Signals(mut sigint, mut sigterm) => {
            tokio::select! {
                _ = sigint.recv() => info!("SIGINT: stopping"),
                _ = sigterm.recv() => info!("SIGTERM: stopping"),
            }
        }
    }
    for t in &tasks {
        t.abort();
    }
    drop(ptys);
    let _ = std::io::stdout().flush();
    Ok(())
}

/// What ends a run: the host program's flag when embedded, else SIGINT or SIGTERM.
enum StopOn {
    Host(tokio::sync::watch::Receiver<bool>),
    Signals(tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

fn local(listener: &tokio::net::TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Applies scenario events as their simulated time comes and keeps values moving.
async fn run_timeline(sim: Arc<Sim>, mut timeline: Timeline) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = sim.clock.now();
        for e in timeline.due(now) {
            let device = &sim.devices[e.command.device];
            let point = e
                .command
                .point
                .map(|p| device.points[p].id.as_str())
                .unwrap_or("");
            info!(at = e.at, device = %device.id, point, action = %e.command.action, "scenario event ({})", e.origin);
            sim.apply(&e.command, e.at);
        }
        sim.refresh();
    }
}
