//! What every connection to the MQTT broker needs, the gateway's and the central ingest's
//! alike: address, keep-alive, packet limits, credentials and TLS, from an `[uplink]` or
//! `[mqtt]` table. Each side then adds its own session settings (clean session, will,
//! manual acknowledgements).

use rumqttc::{MqttOptions, TlsConfiguration, Transport};

use firmware_config::site::Uplink;

use crate::secret::{read_secret, SecretError};
use crate::tls::{client_config, TlsError};

/// Largest message either way; the gateway's telemetry batches are about 60 KB. rumqttc's
/// own default is 10 KiB.
pub const MAX_PACKET: usize = 1 << 20;

/// Why there are no options to connect with: nothing the broker said, but what this
/// side's config points at.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("credentials: {0}")]
    Secret(#[from] SecretError),
}

/// Options for one connection to the broker `u` names; the password is read now.
pub fn connect_options(u: &Uplink) -> Result<MqttOptions, ConnectError> {
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
