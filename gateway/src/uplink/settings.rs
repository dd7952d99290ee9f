//! Connection options from the site's `[uplink]` (the common part from
//! `hazgate_common::connect_options`, secrets read at connect time and never logged), the
//! will and the status messages.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use rumqttc::{LastWill, MqttOptions, QoS};

use firmware_config::site::Uplink;
use hazgate_common::connect_options;
use hazgate_wire::{topic, Message, Presence, Status, TopicKind};

use super::UplinkError;
use crate::clock::ClockWatch;
use crate::envelope::{Origin, Seqs};
use crate::pipeline::StateMessage;

/// What the gateway says about itself in its status messages.
#[derive(Debug, Clone)]
pub struct StatusInfo {
    pub version: String,
    pub config_hash: String,
    pub boot_ts: i64,
}

#[derive(Clone)]
pub struct UplinkSettings {
    pub uplink: Uplink,
    pub origin: Origin,
    /// What the status says; a reload changes it (config hash) and a new birth follows.
    pub status: watch::Receiver<StatusInfo>,
    /// The latest retained state, published at every connection and change.
    pub state: watch::Receiver<Option<Arc<StateMessage>>>,
    /// Messages in flight (sent, not yet acknowledged).
    pub window: usize,
    pub health_interval: Duration,
    /// Seqs of every topic; the status seq is shared by birth, health and will messages.
    pub seqs: Arc<Seqs>,
    pub clock: Arc<ClockWatch>,
    /// The master data, published retained at every connection and change.
    pub master: watch::Receiver<Arc<hazgate_wire::MasterData>>,
    /// Where commands from the central side go (acknowledgements, resets).
    pub pipeline: Option<crate::pipeline::CommandSink>,
}

impl UplinkSettings {
    /// Where the central side sends this gateway its commands.
    pub fn command_topic(&self) -> String {
        hazgate_wire::command_topic(&self.uplink.prefix, &self.origin.site, &self.origin.gateway)
    }

    pub fn topic(&self, kind: TopicKind) -> String {
        topic(
            &self.uplink.prefix,
            &self.origin.site,
            &self.origin.gateway,
            kind,
        )
    }

    pub fn status_message(
        &self,
        seq: u64,
        state: Presence,
        health: Option<hazgate_wire::Health>,
    ) -> Vec<u8> {
        let status = self.status.borrow().clone();
        Message::Status(Status {
            envelope: self.origin.envelope(seq),
            state,
            ts: crate::clock::wall_ms(),
            version: status.version,
            config_hash: status.config_hash,
            boot_ts: status.boot_ts,
            clock_ok: self.clock.is_plausible(),
            health_every_ms: Some(self.health_interval.as_millis() as u64),
            health,
        })
        .to_json()
    }

    /// Options for one connection; the will says `offline` if the gateway vanishes.
    pub fn mqtt_options(&self, will_seq: u64) -> Result<MqttOptions, UplinkError> {
        let mut o = connect_options(&self.uplink)?;
        // Unacknowledged messages are re-sent from the store on every new connection.
        o.set_clean_session(true);
        o.set_inflight((self.window + 4).min(u16::MAX as usize) as u16);
        o.set_last_will(LastWill::new(
            self.topic(TopicKind::Status),
            self.status_message(will_seq, Presence::Offline, None),
            QoS::AtLeastOnce,
            true,
        ));
        Ok(o)
    }
}
