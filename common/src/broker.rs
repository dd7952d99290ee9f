//! What every connection to the MQTT broker needs, the gateway's and the central ingest's
//! alike: address, keep-alive, packet limits, credentials and TLS, from an `[uplink]` or
//! `[mqtt]` table. Each side then adds its own session settings (clean session, will,
//! manual acknowledgements).

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, MqttOptions, Packet, TlsConfiguration, Transport,
};

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

/// A broker's refusal or a transport failure as an operator reads it, with what to check.
pub fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => format!("the broker refused the connection: {code:?} (check username, password and client id)"),
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "nothing listens at the broker's address (connection refused)".into(),
        ConnectionError::Tls(tls) => format!("TLS handshake with the broker failed: {tls} (check `ca_file` and the broker's certificate)"),
        other => other.to_string(),
    }
}

/// Connects once and disconnects: whether the broker takes this side's address, TLS and
/// credentials. It connects as `<client_id>-check`, so a running service with the real id
/// keeps its session.
pub async fn probe(u: &Uplink, limit: Duration) -> Result<(), String> {
    let mut o = connect_options(u).map_err(|e| e.to_string())?;
    o.set_client_id(format!("{}-check", u.client_id));
    o.set_clean_session(true);
    let (client, mut events) = AsyncClient::new(o, 4);
    let connack = tokio::time::timeout(limit, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(describe(&e)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {}s", limit.as_secs())));
    if connack.is_ok() {
        let _ = client.try_disconnect();
        // Let the DISCONNECT go out before the connection is dropped.
        let _ = tokio::time::timeout(Duration::from_millis(500), events.poll()).await;
    }
    connack
}
