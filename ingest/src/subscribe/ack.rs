//! The acknowledgement of one message, held until what it carried is in the store. It is
//! tied to the connection it came on: after a reconnect the broker sends unacknowledged
//! messages again, and an old packet id must not acknowledge a new message.

use rumqttc::{AsyncClient, Publish, QoS};

#[derive(Debug)]
pub struct AckToken {
    client: AsyncClient,
    /// Packet id and QoS only; the payload is not kept.
    packet: Publish,
}

impl AckToken {
    pub fn new(client: &AsyncClient, publish: &Publish) -> Self {
        let mut packet = Publish::new("", publish.qos, Vec::new());
        packet.pkid = publish.pkid;
        Self {
            client: client.clone(),
            packet,
        }
    }

    /// Sends the PUBACK. If the connection is gone, so is the obligation: the broker sends
    /// the message again on the next one, and its write overwrites itself.
    pub async fn ack(self) {
        if self.packet.qos != QoS::AtMostOnce {
            let _ = self.client.ack(&self.packet).await;
        }
    }
}
