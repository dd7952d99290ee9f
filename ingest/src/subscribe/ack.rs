//! The acknowledgement of one message, held until what it carried is in the store. It is
//! tied to the connection it came on: after a reconnect the broker sends unacknowledged
//! messages again, and an old packet id must not acknowledge a new message.

use rumqttc::{AsyncClient, Publish, QoS};
use tokio::sync::OwnedSemaphorePermit;

#[derive(Debug)]
pub struct AckToken {
    client: AsyncClient,
    /// Packet id and QoS only; the payload is not kept.
    packet: Publish,
    /// One of the session's slots for unacknowledged messages. There are fewer slots than
    /// room in the client's request queue, so an acknowledgement always fits there at
    /// once, even while the session waits for room and does not drive the connection.
    _slot: OwnedSemaphorePermit,
}

impl AckToken {
    pub fn new(client: &AsyncClient, publish: &Publish, slot: OwnedSemaphorePermit) -> Self {
        let mut packet = Publish::new("", publish.qos, Vec::new());
        packet.pkid = publish.pkid;
        Self {
            client: client.clone(),
            packet,
            _slot: slot,
        }
    }

    /// Queues the PUBACK; never waits. If the connection is gone, so is the obligation:
    /// the broker sends the message again on the next one, and its write overwrites itself.
    pub fn ack(self) {
        if self.packet.qos != QoS::AtMostOnce {
            let _ = self.client.try_ack(&self.packet);
        }
    }
}
