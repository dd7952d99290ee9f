//! A real broker and a real subscriber for tests: Debian's mosquitto started on a free port
//! with a config the test controls, and an MQTT client that records every message.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::free_port;

/// A mosquitto process; stopped when dropped.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    extra: String,
    child: Option<Child>,
}

impl Broker {
    /// Starts mosquitto on a free port. Persistence keeps subscribers' sessions across a
    /// broker restart, and queue limits are lifted, so a test measures the gateway, not the
    /// broker's defaults (mosquitto drops QoS 1 messages beyond 1000 queued per client).
    pub fn start(dir: &Path) -> Result<Broker> {
        Self::start_with(dir, "")
    }

    /// As `start`, with extra lines for mosquitto.conf (e.g. a TLS listener).
    pub fn start_with(dir: &Path, extra: &str) -> Result<Broker> {
        let mut b = Broker {
            port: free_port(),
            dir: dir.to_path_buf(),
            extra: extra.to_string(),
            child: None,
        };
        b.restart()?;
        Ok(b)
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port with the same persistence file.
    pub fn restart(&mut self) -> Result<()> {
        // Run as root, mosquitto drops to its own user, which must still write its
        // persistence file here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o777))?;
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/\nautosave_interval 1\nmax_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 0\nlog_dest stderr\nlog_type error\n{extra}\n",
                port = self.port,
                dir = self.dir.display(),
                extra = self.extra
            ),
        )?;
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context(
                "starting mosquitto (install it: apt-get install mosquitto; scripts/test does)",
            )?;
        self.child = Some(child);
        wait_port(self.port, Duration::from_secs(10))
    }

    /// Stops the process (SIGTERM, so it writes its persistence file).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::terminate(child, Duration::from_secs(10));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Debian installs mosquitto in /usr/sbin, which a non-login PATH may lack.
fn mosquitto_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/mosquitto");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("mosquitto")
    }
}

/// Waits until something accepts connections on the port.
pub fn wait_port(port: u16, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on port {port} after {limit:?}")
}

/// One message taken off the broker: `payload` is its JSON (decompressed if it came as a
/// zstd frame), `wire` what it weighed on the wire and how it came.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub wire_bytes: usize,
    pub encoding: hazgate_wire::payload::Encoding,
}

impl Received {
    pub fn new(topic: &str, wire: &[u8], retain: bool) -> Received {
        let payload = hazgate_wire::payload::decode(wire, 64 << 20)
            .map(|p| p.into_owned())
            .unwrap_or_else(|_| wire.to_vec());
        Received {
            topic: topic.to_string(),
            payload,
            retain,
            wire_bytes: wire.len(),
            encoding: hazgate_wire::payload::Encoding::of(wire),
        }
    }
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("not JSON on {}: {e}", self.topic))
    }
}

/// A subscriber with a persistent session (QoS 1), recording everything it receives and
/// reconnecting by itself when the broker goes away.
pub struct Subscriber {
    pub messages: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    pub fn start(port: u16, filter: &str) -> Result<Subscriber> {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let store = messages.clone();
        let filter = filter.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut o = MqttOptions::new(format!("test-sub-{}", crate::free_port()), "127.0.0.1", port);
                o.set_clean_session(false);
                o.set_max_packet_size(1 << 22, 1 << 22);
                o.set_keep_alive(Duration::from_secs(5));
                let (client, mut eventloop) = AsyncClient::new(o, 100);
                client.subscribe(filter.clone(), QoS::AtLeastOnce).await.unwrap();
                let mut ready = Some(ready_tx);
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => return,
                        event = eventloop.poll() => match event {
                            Ok(Event::Incoming(Packet::SubAck(_))) => {
                                if let Some(r) = ready.take() {
                                    let _ = r.send(());
                                }
                            }
                            Ok(Event::Incoming(Packet::Publish(p))) => {
                                store.lock().unwrap().push(Received::new(&p.topic, &p.payload, p.retain));
                            }
                            Ok(_) => {}
                            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        },
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .context("subscriber got no SUBACK")?;
        Ok(Subscriber {
            messages,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn snapshot(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received, or fails after `limit`.
    pub fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>> {
        let deadline = Instant::now() + limit;
        loop {
            let snap = self.snapshot();
            if done(&snap) {
                return Ok(snap);
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {limit:?} waiting for {what}; got {} messages",
                    snap.len()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Publishes each (topic, payload) at QoS 1 and returns once the broker acknowledged all.
pub fn publish_all(port: u16, messages: &[(String, Vec<u8>)]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut o = MqttOptions::new(
            format!("test-pub-{}", crate::free_port()),
            "127.0.0.1",
            port,
        );
        o.set_max_packet_size(1 << 24, 1 << 24);
        o.set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(o, 1000);
        let owned: Vec<(String, Vec<u8>)> = messages.to_vec();
        let sender = tokio::spawn(async move {
            for (topic, payload) in owned {
                client
                    .publish(topic, QoS::AtLeastOnce, false, payload)
                    .await?;
            }
            anyhow::Ok(client)
        });
        let mut acked = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked < messages.len() {
            if Instant::now() > deadline {
                bail!("only {acked} of {} publishes acknowledged", messages.len());
            }
            match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("publishing: {e}"),
                Err(_) => bail!("publishing: no progress for 10 s"),
            }
        }
        let client = sender.await??;
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
        Ok(())
    })
}
