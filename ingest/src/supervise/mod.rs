//! Supervision (预警叫应 at the centre): every alarm occurrence the gateways report, who
//! answered it and when, in a database of its own (`db`); users, sessions and the audit
//! log; acknowledgements sent to the edge as commands and confirmed by it.
//!
//! Alarm events are recorded by the writer after they are in the time-series store and
//! before their MQTT message is acknowledged, so none is lost if ingest stops between.

pub mod audit;
pub mod commands;
pub mod db;
pub mod escalation;
pub mod interruptions;
pub mod occurrences;
pub mod point_silence;
pub mod sessions;
pub mod statistics;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use firmware_config::central::SupervisionSettings;
use hazgate_common::read_secret;
use hazgate_wire::AlarmEvent;

pub use commands::Outgoing;
use db::{Db, DbError};
use sessions::LoginLimiter;

/// How often unconfirmed commands are sent again while their occurrence is open.
const RESEND_EVERY: Duration = Duration::from_secs(60);

pub struct Supervision {
    pub db: Db,
    /// The topic prefix commands are published under.
    pub prefix: String,
    outbox: mpsc::Sender<Outgoing>,
    pub logins: LoginLimiter,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Secret(#[from] hazgate_common::SecretError),
}

/// The URL to connect with: the password from its file or variable put in.
fn connect_url(settings: &SupervisionSettings) -> Result<String, OpenError> {
    let Some(secret) = &settings.password else {
        return Ok(settings.database.clone());
    };
    let password = read_secret(secret, "supervision database password")?;
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = &settings.database;
    Ok(match (url.split_once("://"), url.find('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (user, host) = rest.split_once('@').unwrap_or((rest, ""));
            format!("{scheme}://{user}:{encoded}@{host}")
        }
        _ => url.clone(),
    })
}

impl Supervision {
    /// Opens the database; commands to publish come out of the returned receiver.
    pub async fn open(
        settings: &SupervisionSettings,
        prefix: &str,
    ) -> Result<(Arc<Supervision>, mpsc::Receiver<Outgoing>), OpenError> {
        let db = Db::open(&connect_url(settings)?).await?;
        let (outbox, rx) = mpsc::channel(1024);
        Ok((
            Arc::new(Supervision {
                db,
                prefix: prefix.to_string(),
                outbox,
                logins: LoginLimiter::default(),
            }),
            rx,
        ))
    }

    /// Records alarm events (their occurrences and timelines).
    pub async fn record(&self, events: &[AlarmEvent]) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        occurrences::record(&self.db, events).await
    }

    /// Publishes (never waits: a full queue leaves the command to the next resend).
    pub fn send(&self, command: Outgoing) {
        if self.outbox.try_send(command).is_err() {
            warn!("the command queue is full; the command goes out with the next resend");
        }
    }

    /// A gateway was born: what it has not confirmed goes to it again.
    pub fn birth(self: &Arc<Self>, site: &str, gateway: &str) {
        let (me, site, gateway) = (self.clone(), site.to_string(), gateway.to_string());
        tokio::spawn(async move {
            match commands::pending(&me.db, &me.prefix, Some((&site, &gateway)), i64::MAX).await {
                Ok(list) => {
                    if !list.is_empty() {
                        info!(
                            site,
                            gateway,
                            commands = list.len(),
                            "sending unconfirmed commands again after the gateway's birth"
                        );
                    }
                    list.into_iter().for_each(|c| me.send(c));
                }
                Err(e) => warn!(site, gateway, "cannot look up unconfirmed commands: {e}"),
            }
        });
    }

    /// Sends unconfirmed commands again every minute until their gateway confirms them.
    pub fn spawn_resender(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESEND_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let before = crate::now_ms() - RESEND_EVERY.as_millis() as i64;
                match commands::pending(&me.db, &me.prefix, None, before).await {
                    Ok(list) => list.into_iter().for_each(|c| me.send(c)),
                    Err(e) => warn!("cannot look up unconfirmed commands: {e}"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_into_the_url_encoded() {
        std::env::set_var("HZ_TEST_DB_PW", "p@ss:w/rd");
        let s = SupervisionSettings {
            database: "postgres://hazingest@127.0.0.1:5432/supervision".into(),
            password: Some(firmware_config::site::Secret::Env("HZ_TEST_DB_PW".into())),
            silence_after: std::time::Duration::from_secs(120),
            point_silence_after: std::time::Duration::from_secs(300),
            interruption_level: hazgate_wire::Level::Yellow,
        };
        assert_eq!(
            connect_url(&s).unwrap(),
            "postgres://hazingest:p%40ss%3Aw%2Frd@127.0.0.1:5432/supervision"
        );
    }
}
