//! Connection options from the site's `[uplink]`, secrets read at connect time and never
//! logged.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};

use firmware_config::site::{Secret, Uplink};
use hazgate_wire::{topic, Message, Presence, Status, TopicKind};

use super::tls::client_config;
use super::UplinkError;
use crate::clock::ClockWatch;
use crate::envelope::{Origin, Seqs};
use crate::pipeline::StateMessage;

/// Largest message either way; telemetry batches are about 60 KB.
pub const MAX_PACKET: usize = 1 << 20;

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
}

impl UplinkSettings {
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

/// What every connection to the broker needs, the gateway's and the central ingest's alike:
/// address, keep-alive, packet limits, credentials and TLS.
pub fn connect_options(u: &Uplink) -> Result<MqttOptions, UplinkError> {
    let mut o = MqttOptions::new(u.client_id.clone(), u.broker.host.clone(), u.broker.port);
    o.set_keep_alive(u.keep_alive);
    o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &u.username {
        let password = match &u.password {
            Some(secret) => read_secret(secret, "MQTT password")?,
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    if u.broker.tls {
        let client = u.client_cert.as_deref().zip(u.client_key.as_deref());
        let config = client_config(u.ca_file.as_deref(), client)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    }
    Ok(o)
}

/// Reads a secret where the config says it is; `what` names it in the error.
pub fn read_secret(secret: &Secret, what: &str) -> Result<String, UplinkError> {
    match secret {
        Secret::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| {
                UplinkError::Secret(format!(
                    "cannot read the {what} from {}: {e}",
                    path.display()
                ))
            }),
        Secret::Env(name) => std::env::var(name).map_err(|_| {
            UplinkError::Secret(format!(
                "the environment variable {name} with the {what} is not set"
            ))
        }),
    }
}
