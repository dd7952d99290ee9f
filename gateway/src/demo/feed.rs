//! The view's MQTT subscription: the demo watches its gateways through the broker, like
//! any other client would, so what it shows is exactly what was published.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Payloads of telemetry batches can be large; rumqttc's default limit is 10 KiB.
const MAX_PACKET: usize = 1 << 20;

pub struct Feed {
    client: AsyncClient,
    events: EventLoop,
    filters: Vec<String>,
    subscribed: Option<oneshot::Sender<()>>,
}

/// The running subscription.
pub struct Running {
    pub payloads: mpsc::Receiver<Vec<u8>>,
    /// Fires when the broker acknowledged the first subscription.
    pub subscribed: oneshot::Receiver<()>,
    pub task: JoinHandle<()>,
}

impl Feed {
    /// Subscribes to `filters` (e.g. `hazard/#`) now and after every reconnect.
    pub fn new(broker: SocketAddr, filters: Vec<String>) -> Feed {
        let mut options = MqttOptions::new(
            format!("hazgate-demo-view-{}", std::process::id()),
            broker.ip().to_string(),
            broker.port(),
        );
        options
            .set_keep_alive(Duration::from_secs(10))
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        let (client, events) = AsyncClient::new(options, 64);
        Feed {
            client,
            events,
            filters,
            subscribed: None,
        }
    }

    /// Runs the subscription in its own task (rumqttc's poll is best not cancelled by a
    /// `select!`) and hands over the payloads; it ends when the receiver is dropped.
    pub fn spawn(self) -> Running {
        let (tx, payloads) = mpsc::channel(256);
        let (subscribed_tx, subscribed) = oneshot::channel();
        let mut feed = self;
        feed.subscribed = Some(subscribed_tx);
        let task = tokio::spawn(async move {
            loop {
                let payload = feed.next().await;
                if tx.send(payload).await.is_err() {
                    let _ = feed.client.try_disconnect();
                    return;
                }
            }
        });
        Running {
            payloads,
            subscribed,
            task,
        }
    }

    /// The next published payload. Connection errors are waited out: rumqttc reconnects
    /// on the next poll, and the demo's broker is in this very process.
    async fn next(&mut self) -> Vec<u8> {
        loop {
            match self.events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => return p.payload.to_vec(),
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for f in &self.filters {
                        if let Err(e) = self.client.try_subscribe(f.as_str(), QoS::AtMostOnce) {
                            tracing::warn!("demo view cannot subscribe to {f}: {e}");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = self.subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("demo view lost the broker: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}
