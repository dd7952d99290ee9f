//! Notification channels: a generic webhook, the DingTalk and WeCom group robots, email
//! over SMTP, and SMS through a provider's HTTP template. Each send has a deadline, so a
//! channel that hangs holds up nothing else; the caller records the outcome and retries.

mod email;
mod robots;
mod sms;
pub mod text;

use std::time::Duration;

use firmware_config::escalation::{Channel, Notify};
use serde_json::json;

/// One send's deadline.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What is sent, whatever the channel.
#[derive(Debug, Clone)]
pub struct Note<'a> {
    pub text: &'a str,
    pub site: &'a str,
    pub gateway: &'a str,
    pub occurrence: &'a str,
    pub level: Option<&'a str>,
    pub tier: usize,
    pub contact: &'a str,
    pub link: Option<&'a str>,
}

pub struct Notifier {
    http: reqwest::Client,
    settings: Notify,
}

impl Notifier {
    pub fn new(settings: Notify) -> Result<Notifier, String> {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Notifier { http, settings })
    }

    pub fn settings(&self) -> &Notify {
        &self.settings
    }

    /// Sends one note on one channel; `Err` says why it did not arrive.
    pub async fn send(&self, channel: &Channel, note: &Note<'_>) -> Result<(), String> {
        let sending = async {
            match channel {
                Channel::Webhook(url) => {
                    let body = json!({
                        "site": note.site, "gateway": note.gateway, "occurrence": note.occurrence,
                        "level": note.level, "tier": note.tier + 1, "contact": note.contact,
                        "text": note.text, "link": note.link,
                    });
                    robots::post_json(&self.http, url, &body, false).await
                }
                Channel::DingTalk { url, secret } => {
                    robots::dingtalk(&self.http, url, secret.as_ref(), note.text).await
                }
                Channel::WeCom(url) => robots::wecom(&self.http, url, note.text).await,
                Channel::Email(to) => match &self.settings.smtp {
                    Some(smtp) => email::send(smtp, to, note).await,
                    None => Err("no [notify.smtp] configured".into()),
                },
                Channel::Sms(to) => match &self.settings.sms {
                    Some(sms) => sms::send(&self.http, sms, to, note.text).await,
                    None => Err("no [notify.sms] configured".into()),
                },
            }
        };
        match tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(1), sending).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", SEND_TIMEOUT.as_secs())),
        }
    }
}
