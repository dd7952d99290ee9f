//! Email over SMTP (lettre): plain for a relay on a trusted network, STARTTLS, or implicit
//! TLS, with credentials from a file or the environment.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use firmware_config::escalation::{Smtp, SmtpSecurity};
use hazgate_common::read_secret;

use super::{text, Note, SEND_TIMEOUT};

pub async fn send(smtp: &Smtp, to: &str, note: &Note<'_>) -> Result<(), String> {
    let subject = format!(
        "【{}预警】{} {}",
        note.level.map(text::level_zh).unwrap_or(""),
        note.site,
        note.occurrence
    );
    let message = Message::builder()
        .from(smtp.from.parse().map_err(|e| format!("from: {e}"))?)
        .to(to.parse().map_err(|e| format!("to {to}: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(note.text.to_string())
        .map_err(|e| e.to_string())?;
    let builder = match smtp.security {
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| e.to_string())?,
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(|e| e.to_string())?
        }
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(secret)) = (&smtp.username, &smtp.password) {
        let password = read_secret(secret, "SMTP password").map_err(|e| e.to_string())?;
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
