//! `hazgate demo`: the whole chain in one process with nothing installed. Simulated
//! devices play a gas leak and a rising tailings pond, two gateways poll them and publish
//! to an embedded MQTT broker, and a live view watches that broker like any client would.
//!
//! Modules: `examples` (the site files), `sim` (hazsim in-process), `broker` (rumqttd),
//! `feed` (the view's subscription), `board` (what is known), `view` (how it looks),
//! `screen` (where it goes).

mod board;
mod broker;
mod examples;
mod feed;
mod screen;
mod sim;
mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use firmware_config::site::{Broker, Uplink};
use firmware_config::SiteConfig;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::daemon::Daemon;
use board::Board;
use screen::Screen;

/// Log filter while the demo runs: warnings, less the broker's chatter about clients that
/// come and go and the simulator's pseudo-terminal closing at exit; the screen says the rest.
pub const LOG_FILTER: &str = "warn,rumqttd=off,hazsim::serve::pty=error";

/// How long start-up waits for the view's subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the view keeps listening after the gateways stopped, to show them `offline`.
const LAST_WORDS: Duration = Duration::from_millis(500);

/// What `hazgate demo` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port of the embedded broker on 127.0.0.1; a free one when not given.
    pub port: Option<u16>,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Stop by itself after this long; otherwise at Ctrl-C.
    pub duration: Option<Duration>,
}

/// Runs the demo until Ctrl-C, SIGTERM or the duration, then stops everything in order:
/// gateways first (they say `offline`), then the simulators; the store is deleted.
pub async fn run(opts: Options) -> Result<()> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        bail!("--speed must be a positive number, got {}", opts.speed);
    }
    // Taken first, so a Ctrl-C during start-up is seen once the demo runs.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;

    let scratch = tempfile::Builder::new()
        .prefix("hazgate-demo-")
        .tempdir()
        .context("cannot create a temp dir for the demo's stores")?;
    let dir = examples::prepare(scratch.path())?;
    let examples = examples::sites(&dir);
    let port = match opts.port {
        Some(p) => p,
        None => examples::free_port()?,
    };
    let broker = tokio::task::spawn_blocking(move || broker::start(port)).await??;
    let sites = examples
        .iter()
        .map(|e| gateway_site(&e.config, broker.addr, scratch.path()))
        .collect::<Result<Vec<_>>>()?;

    // Every site has an uplink here (`gateway_site`), so there is at least one filter.
    let mut filters: Vec<String> = sites
        .iter()
        .filter_map(|s| s.uplink.as_ref())
        .map(|u| format!("{}/#", u.prefix))
        .collect();
    filters.sort();
    filters.dedup();
    let hint_filter = filters[0].clone();
    // Subscribed before anything publishes, so the view misses nothing; should that take
    // long, the demo goes on and the view catches up.
    let feed = feed::Feed::new(broker.addr, filters).spawn();
    let _ = tokio::time::timeout(SUBSCRIBE_TIMEOUT, feed.subscribed).await;
    let mut payloads = feed.payloads;
    let plant = sim::Plant::start(&examples, &sites, opts.speed).await?;
    let gateways = match start_gateways(&sites).await {
        Ok(g) => g,
        Err(e) => {
            plant.stop();
            return Err(e);
        }
    };

    let mut board = Board::new(&sites);
    let screen = Screen::open(broker.addr, hint_filter, opts.speed, opts.duration);

    let stop = async {
        tokio::select! {
            _ = interrupt.recv() => "Ctrl-C",
            _ = terminate.recv() => "SIGTERM",
            _ = sleep_or_forever(opts.duration) => "time is up",
        }
    };
    let why = show(&mut payloads, &mut board, &screen, stop).await;

    // Gateways first, while their devices still answer; then the simulators.
    shutdown(gateways).await;
    let _ = tokio::time::timeout(
        LAST_WORDS,
        show(
            &mut payloads,
            &mut board,
            &screen,
            std::future::pending::<()>(),
        ),
    )
    .await;
    feed.task.abort();
    plant.shutdown().await;
    screen.close(&board, why);
    drop(scratch);
    Ok(())
}

/// Feeds the board and the screen until `stop` resolves; returns what it said.
async fn show<T>(
    payloads: &mut mpsc::Receiver<Vec<u8>>,
    board: &mut Board,
    screen: &Screen,
    stop: impl Future<Output = T>,
) -> T {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            why = &mut stop => return why,
            Some(payload) = payloads.recv() => screen.update(&board.apply(&payload)),
            _ = tick.tick() => screen.tick(board),
        }
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The example site as a gateway runs it here: publishing to the embedded broker, with its
/// store in the demo's temp dir (the example's own store path is for `hazgate run`).
fn gateway_site(config: &Path, broker: SocketAddr, scratch: &Path) -> Result<SiteConfig> {
    let mut site = crate::commands::load(config)?;
    let id = format!("{}-{}", site.site.id, site.site.gateway);
    let prefix = site
        .uplink
        .as_ref()
        .map_or_else(|| "hazard".to_string(), |u| u.prefix.clone());
    site.uplink = Some(Uplink {
        broker: Broker {
            tls: false,
            host: broker.ip().to_string(),
            port: broker.port(),
        },
        prefix,
        client_id: format!("hazgate-{id}"),
        username: None,
        password: None,
        ca_file: None,
        client_cert: None,
        client_key: None,
        keep_alive: Duration::from_secs(30),
        encoding: site
            .uplink
            .as_ref()
            .map_or(hazgate_wire::payload::Encoding::Zstd, |u| u.encoding),
        health_interval: Duration::from_secs(30),
    });
    site.store.dir = scratch.join("store").join(id);
    // The demo exposes MQTT only; a metrics port could clash with a real gateway.
    site.metrics = None;
    Ok(site)
}

async fn start_gateways(sites: &[SiteConfig]) -> Result<Vec<Daemon>> {
    let mut started = Vec::new();
    for site in sites {
        match Daemon::start(site.clone()).await {
            Ok(d) => started.push(d),
            Err(e) => {
                shutdown(started).await;
                return Err(e.context(format!("the gateway of {} could not start", site.site.id)));
            }
        }
    }
    Ok(started)
}

/// Stops the gateways side by side: each waits for its last acknowledgements.
async fn shutdown(gateways: Vec<Daemon>) {
    let tasks: Vec<_> = gateways
        .into_iter()
        .map(|g| tokio::spawn(g.shutdown()))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}
