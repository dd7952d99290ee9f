//! Every message is untrusted input: a message is taken only when its size, JSON, version,
//! kind, topic and content are all right. Anything else becomes a [`Rejection`] with a
//! reason, so it is counted, logged and quarantined, never written. A telemetry message is
//! judged reading by reading ([`triage`]): one bad reading is refused alone.

mod content;
mod rejects;
mod topic;
mod triage;

pub use rejects::RejectCounter;
pub use topic::{parse_topic, subscriptions, TopicOrigin};
pub use triage::{triage, Held, Triage, Why};

use hazgate_wire::{Message, TopicKind, VERSION};

/// Why a message was refused; stable names for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Larger than `ingest.max_message_size`.
    TooLarge,
    /// Not UTF-8 JSON at all.
    NotJson,
    /// Begins with the zstd magic number but is no valid zstd frame.
    BadCompression,
    /// JSON with a `v` this version does not understand.
    UnsupportedVersion,
    /// JSON that does not fit the schema of any message kind.
    Malformed,
    /// A topic outside `{prefix}/{site}/{gateway}/{kind}`.
    UnknownTopic,
    /// A message kind that does not belong on its topic (an alarm on a status topic).
    KindMismatch,
    /// The payload's site or gateway differs from its topic's.
    OriginMismatch,
    /// Well-formed, but with a value no gateway sends: a bad id, an empty unit, a number
    /// that is not finite, a contradiction. For telemetry, per reading.
    BadContent,
}

impl RejectReason {
    pub const ALL: [RejectReason; 9] = [
        RejectReason::TooLarge,
        RejectReason::NotJson,
        RejectReason::BadCompression,
        RejectReason::UnsupportedVersion,
        RejectReason::Malformed,
        RejectReason::UnknownTopic,
        RejectReason::KindMismatch,
        RejectReason::OriginMismatch,
        RejectReason::BadContent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RejectReason::TooLarge => "too_large",
            RejectReason::NotJson => "not_json",
            RejectReason::BadCompression => "bad_compression",
            RejectReason::UnsupportedVersion => "unsupported_version",
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownTopic => "unknown_topic",
            RejectReason::KindMismatch => "kind_mismatch",
            RejectReason::OriginMismatch => "origin_mismatch",
            RejectReason::BadContent => "bad_content",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", reason.name())]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Limits for [`inspect`].
#[derive(Debug, Clone)]
pub struct IntakeRules {
    pub prefix: String,
    pub max_message_size: usize,
}

/// Takes a message off the wire: the typed message, or why not. Time stamps are not
/// judged here ([`triage`] does, and never refuses for them).
pub fn inspect(rules: &IntakeRules, topic: &str, payload: &[u8]) -> Result<Message, Rejection> {
    if payload.len() > rules.max_message_size {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!(
                "{} bytes, over the limit of {}",
                payload.len(),
                rules.max_message_size
            ),
        ));
    }
    let origin = parse_topic(&rules.prefix, topic).ok_or_else(|| {
        Rejection::new(
            RejectReason::UnknownTopic,
            format!(
                "\"{}\" is not {}/SITE/GATEWAY/KIND",
                topic.escape_debug(),
                rules.prefix
            ),
        )
    })?;
    // Plain JSON, or JSON in one zstd frame (told by its first bytes); decompressed no
    // further than the size limit.
    let json = hazgate_wire::payload::decode(payload, rules.max_message_size).map_err(|e| {
        let reason = match e {
            hazgate_wire::payload::PayloadError::TooLarge { .. } => RejectReason::TooLarge,
            hazgate_wire::payload::PayloadError::Corrupt(_) => RejectReason::BadCompression,
        };
        Rejection::new(reason, e.to_string())
    })?;
    let message = match serde_json::from_slice::<Message>(&json) {
        Ok(m) => m,
        Err(e) => return Err(classify_parse_error(&json, e)),
    };
    let envelope = message.envelope();
    if envelope.v != VERSION {
        return Err(Rejection::new(
            RejectReason::UnsupportedVersion,
            format!("v {} (this ingest reads v {VERSION})", envelope.v),
        ));
    }
    let fits = matches!(
        (&message, origin.kind),
        (
            Message::Telemetry(_) | Message::Gap(_),
            TopicKind::Telemetry
        ) | (Message::Alarm(_), TopicKind::Alarm)
            | (Message::State(_), TopicKind::State)
            | (Message::Status(_), TopicKind::Status)
            | (Message::Site(_), TopicKind::Site)
            | (Message::Stats(_), TopicKind::Stats)
    );
    if !fits {
        return Err(Rejection::new(
            RejectReason::KindMismatch,
            format!("{} message on a {} topic", message.kind(), origin.kind),
        ));
    }
    if *envelope.site != *origin.site || *envelope.gateway != *origin.gateway {
        return Err(Rejection::new(
            RejectReason::OriginMismatch,
            format!(
                "payload says {}/{}, topic says {}/{}",
                envelope.site.escape_debug(),
                envelope.gateway.escape_debug(),
                origin.site,
                origin.gateway
            ),
        ));
    }
    content::check(&message)
        .map_err(|e| Rejection::new(RejectReason::BadContent, e.to_string()))?;
    Ok(message)
}

/// Tells a foreign version from broken JSON from a wrong shape, only once parsing failed.
fn classify_parse_error(payload: &[u8], error: serde_json::Error) -> Rejection {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return Rejection::new(RejectReason::NotJson, error.to_string());
    };
    match value.get("v") {
        Some(v) if *v != serde_json::json!(VERSION) => Rejection::new(
            RejectReason::UnsupportedVersion,
            format!("v {v} (this ingest reads v {VERSION})"),
        ),
        _ => Rejection::new(RejectReason::Malformed, error.to_string()),
    }
}

#[cfg(test)]
mod tests;
