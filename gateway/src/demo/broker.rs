//! The embedded MQTT broker: rumqttd configured in code, one MQTT 3.1.1 listener on
//! loopback, so the demo needs no mosquitto and any MQTT client can still watch it.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// How long the broker may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running broker. rumqttd has no stop call: its threads end with the process, which
/// is what the demo does right after the gateways said `offline`.
pub struct Broker {
    pub addr: SocketAddr,
    _thread: JoinHandle<()>,
}

/// Starts the broker on 127.0.0.1:`port` and returns once it accepts connections.
pub fn start(port: u16) -> Result<Broker> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // rumqttd only logs a failed bind from its own thread; try it here first to say why.
    match TcpListener::bind(addr) {
        Ok(probe) => drop(probe),
        Err(e) if e.kind() == ErrorKind::AddrInUse => bail!(
            "{addr} is already in use (another MQTT broker such as mosquitto?); \
             run the demo on a free port, e.g. `hazgate demo --port {}`",
            port.checked_add(1).unwrap_or(1884)
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
    let mut broker = rumqttd::Broker::new(config(addr));
    let thread = std::thread::Builder::new()
        .name("demo-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!("embedded MQTT broker stopped: {e}");
            }
        })
        .context("cannot start the broker thread")?;
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if thread.is_finished() || started.elapsed() > START_TIMEOUT {
            return Err(anyhow!(
                "the embedded MQTT broker did not start on {addr}; try another --port"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Broker {
        addr,
        _thread: thread,
    })
}

/// A single-node broker sized for a demo: a few clients, small in-memory logs.
fn config(addr: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        // A telemetry batch of a large site stays well below this.
        max_payload_size: 1 << 20,
        max_inflight_count: 256,
        auth: None,
        external_auth: None,
        // Gateways publish before anyone subscribes; without this rumqttd drops them.
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "demo-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    }
}
