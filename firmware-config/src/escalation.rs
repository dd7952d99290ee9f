//! Call-response settings of the central side (`central.toml`): who is told of an alarm
//! nobody has answered, how, and after how long (预警叫应). Contacts have channels
//! (a generic webhook, DingTalk and WeCom group robots, email, SMS through an HTTP
//! template); an escalation policy gives a site ordered tiers, each a set of contacts and a
//! deadline per level. An occurrence not acknowledged by a tier's deadline notifies that
//! tier; an acknowledgement or the clear ends it.
//!
//! ```toml
//! [notify]
//! public_url = "https://supervision.example.org/"   # links in notifications
//! utc_offset = "+08:00"                             # times in notifications
//! [notify.smtp]
//! host = "smtp.example.org"; port = 587; security = "starttls"; from = "hazingest@example.org"
//! username = "hazingest"; password_file = "/etc/hazingest/smtp-password"
//! [notify.sms]
//! url = "https://sms.example.org/send"; token_file = "/etc/hazingest/sms-token"
//! body = '{"mobile":"{to}","content":"{text}"}'
//!
//! [[contact]]
//! id = "duty"; name = "值班员 王五"; dingtalk = "https://oapi.dingtalk.com/robot/send?access_token=..."
//! sms = "13800000000"
//!
//! [[escalation]]
//! sites = ["*"]                                     # site ids, or "*" for every other site
//! tiers = [
//!   { name = "值班员", contacts = ["duty"], red = "0s", orange = "0s", yellow = "0s" },
//!   { name = "安全负责人", contacts = ["safety"], red = "5min", orange = "15min" },
//! ]
//! ```

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

use crate::error::Diagnostics;
use crate::serde_types::Interval;
use crate::site::Secret;
use hazgate_wire::Level;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Notify {
    /// The view's address as people reach it, for the link in a notification.
    pub public_url: Option<String>,
    /// Offset of the regulator's time zone, minutes east of UTC (default +08:00).
    pub utc_offset_minutes: i32,
    pub smtp: Option<Smtp>,
    pub sms: Option<SmsTemplate>,
    pub contacts: Vec<Contact>,
    pub policies: Vec<Policy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP: a relay on the same host or a trusted network only.
    None,
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// An SMS provider's HTTP API: `body` with `{to}` and `{text}` filled in (JSON-escaped
/// when the content type is JSON), POSTed to `url` with the token as a bearer.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsTemplate {
    pub url: String,
    pub body: String,
    pub content_type: String,
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    Webhook(String),
    DingTalk { url: String, secret: Option<Secret> },
    WeCom(String),
    Email(String),
    Sms(String),
}

impl Channel {
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webhook(_) => "webhook",
            Channel::DingTalk { .. } => "dingtalk",
            Channel::WeCom(_) => "wecom",
            Channel::Email(_) => "email",
            Channel::Sms(_) => "sms",
        }
    }

    /// Where it goes, fit for a record (a robot's access token left out).
    pub fn address(&self) -> String {
        match self {
            Channel::Webhook(u) | Channel::DingTalk { url: u, .. } | Channel::WeCom(u) => {
                u.split('?').next().unwrap_or(u).to_string()
            }
            Channel::Email(a) | Channel::Sms(a) => a.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub name: String,
    /// Indexes into `Notify::contacts`.
    pub contacts: Vec<usize>,
    /// How long after the occurrence opened this tier is told, per level (blue..red);
    /// `None`: not for that level.
    pub after: [Option<Duration>; 4],
}

impl Tier {
    pub fn after(&self, level: Level) -> Option<Duration> {
        self.after[Level::ALL.iter().position(|l| *l == level).unwrap_or(3)]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Site ids; `*` matches any site no other policy names.
    pub sites: Vec<String>,
    pub tiers: Vec<Tier>,
}

impl Notify {
    /// The policy of a site: the one that names it, else a `*` one.
    pub fn policy(&self, site: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .find(|p| p.sites.iter().any(|s| s == site))
            .or_else(|| {
                self.policies
                    .iter()
                    .find(|p| p.sites.iter().any(|s| s == "*"))
            })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    public_url: Option<Spanned<String>>,
    utc_offset: Option<Spanned<String>>,
    smtp: Option<RawSmtp>,
    sms: Option<RawSms>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Spanned<String>,
    port: Option<Spanned<i64>>,
    security: Option<SmtpSecurity>,
    from: Spanned<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    url: Spanned<String>,
    body: String,
    content_type: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    id: Spanned<String>,
    name: String,
    webhook: Option<Spanned<String>>,
    dingtalk: Option<Spanned<String>>,
    dingtalk_secret_file: Option<PathBuf>,
    wecom: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    sms: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    sites: Spanned<Vec<String>>,
    tiers: Vec<Spanned<RawTier>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    name: String,
    contacts: Vec<String>,
    blue: Option<Interval>,
    yellow: Option<Interval>,
    orange: Option<Interval>,
    red: Option<Interval>,
}

fn secret(file: &Option<PathBuf>, env: &Option<String>, base: &Path) -> Option<Secret> {
    match (file, env) {
        (Some(f), _) => Some(Secret::File(base.join(f))),
        (None, Some(e)) => Some(Secret::Env(e.clone())),
        (None, None) => None,
    }
}

fn http_url(url: &Spanned<String>, field: &str, diag: &mut Diagnostics) -> String {
    let u = url.get_ref();
    let ok = (u.starts_with("http://") || u.starts_with("https://"))
        && u.split("://").nth(1).is_some_and(|r| !r.is_empty());
    if !ok {
        diag.error(
            Some(url.span()),
            field,
            "use an http:// or https:// address",
        );
    }
    u.clone()
}

/// Parses `[notify]`, `[[contact]]` and `[[escalation]]`.
pub fn resolve(
    raw: Option<&RawNotify>,
    contacts: &[RawContact],
    policies: &[RawPolicy],
    base: &Path,
    diag: &mut Diagnostics,
) -> Notify {
    let mut out = Notify {
        utc_offset_minutes: 8 * 60,
        ..Notify::default()
    };
    if let Some(r) = raw {
        out.public_url = r
            .public_url
            .as_ref()
            .map(|u| http_url(u, "notify.public_url", diag));
        if let Some(o) = &r.utc_offset {
            match parse_offset(o.get_ref()) {
                Some(m) => out.utc_offset_minutes = m,
                None => diag.error(
                    Some(o.span()),
                    "notify.utc_offset",
                    "write an offset like \"+08:00\"",
                ),
            }
        }
        out.smtp = r.smtp.as_ref().map(|s| {
            let port = s.port.as_ref().map_or(25, |p| {
                let v = *p.get_ref();
                if !(1..=65535).contains(&v) {
                    diag.error(Some(p.span()), "notify.smtp.port", "use 1..=65535");
                }
                v.clamp(1, 65535) as u16
            });
            if !s.from.get_ref().contains('@') {
                diag.error(
                    Some(s.from.span()),
                    "notify.smtp.from",
                    "an email address, e.g. hazingest@example.org",
                );
            }
            Smtp {
                host: s.host.get_ref().clone(),
                port,
                security: s.security.unwrap_or(SmtpSecurity::Starttls),
                from: s.from.get_ref().clone(),
                username: s.username.clone(),
                password: secret(&s.password_file, &s.password_env, base),
            }
        });
        out.sms = r.sms.as_ref().map(|s| SmsTemplate {
            url: http_url(&s.url, "notify.sms.url", diag),
            body: s.body.clone(),
            content_type: s
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json".into()),
            token: secret(&s.token_file, &s.token_env, base),
        });
    }
    let mut index = HashMap::new();
    for c in contacts {
        let id = c.id.get_ref().clone();
        if !hazgate_wire::valid_id(&id) {
            diag.error(
                Some(c.id.span()),
                "contact.id",
                format!("\"{id}\" is not a valid id; {}", hazgate_wire::ID_RULE),
            );
        }
        let field = |f: &str| format!("contact \"{id}\".{f}");
        let mut channels = Vec::new();
        if let Some(u) = &c.webhook {
            channels.push(Channel::Webhook(http_url(u, &field("webhook"), diag)));
        }
        if let Some(u) = &c.dingtalk {
            channels.push(Channel::DingTalk {
                url: http_url(u, &field("dingtalk"), diag),
                secret: c
                    .dingtalk_secret_file
                    .as_ref()
                    .map(|f| Secret::File(base.join(f))),
            });
        }
        if let Some(u) = &c.wecom {
            channels.push(Channel::WeCom(http_url(u, &field("wecom"), diag)));
        }
        if let Some(e) = &c.email {
            if !e.get_ref().contains('@') {
                diag.error(Some(e.span()), field("email"), "an email address");
            }
            if out.smtp.is_none() {
                diag.error(Some(e.span()), field("email"), "email needs [notify.smtp]");
            }
            channels.push(Channel::Email(e.get_ref().clone()));
        }
        if let Some(n) = &c.sms {
            if out.sms.is_none() {
                diag.error(Some(n.span()), field("sms"), "SMS needs [notify.sms]");
            }
            channels.push(Channel::Sms(n.get_ref().clone()));
        }
        if channels.is_empty() {
            diag.error(
                Some(c.id.span()),
                "contact",
                format!(
                    "contact \"{id}\" has no channel: give webhook, dingtalk, wecom, email or sms"
                ),
            );
        }
        if index.insert(id.clone(), out.contacts.len()).is_some() {
            diag.error(
                Some(c.id.span()),
                "contact.id",
                format!("contact \"{id}\" is defined twice"),
            );
        }
        out.contacts.push(Contact {
            id,
            name: c.name.clone(),
            channels,
        });
    }
    for p in policies {
        let mut tiers = Vec::new();
        for t in &p.tiers {
            let raw = t.get_ref();
            let mut who = Vec::new();
            for c in &raw.contacts {
                match index.get(c) {
                    Some(&i) => who.push(i),
                    None => diag.error(
                        Some(t.span()),
                        "escalation.tiers.contacts",
                        format!("no contact \"{c}\""),
                    ),
                }
            }
            let after = [raw.blue, raw.yellow, raw.orange, raw.red].map(|d| d.map(|i| i.0));
            if after.iter().all(Option::is_none) {
                diag.error(Some(t.span()), "escalation.tiers", format!("tier \"{}\" gives no deadline: set red, orange, yellow or blue (\"0s\": at once)", raw.name));
            }
            tiers.push(Tier {
                name: raw.name.clone(),
                contacts: who,
                after,
            });
        }
        if tiers.is_empty() {
            diag.error(
                Some(p.sites.span()),
                "escalation.tiers",
                "an escalation policy needs at least one tier",
            );
        }
        out.policies.push(Policy {
            sites: p.sites.get_ref().clone(),
            tiers,
        });
    }
    out
}

/// "+08:00" → 480.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+08:00"), Some(480));
        assert_eq!(parse_offset("-03:30"), Some(-210));
        assert_eq!(parse_offset("08:00"), None);
        assert_eq!(parse_offset("+25:00"), None);
    }
}
