//! Topic names: `{prefix}/{site}/{gateway}/{kind}`.

use std::fmt;

/// The topics of one gateway; the store keeps each message's topic as this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKind {
    Telemetry = 1,
    Alarm = 2,
    State = 3,
    Status = 4,
    /// Master data (names, poll plan, limits), retained.
    Site = 5,
    /// Five-minute statistics per point.
    Stats = 6,
}

impl TopicKind {
    pub const ALL: [TopicKind; 6] = [
        TopicKind::Telemetry,
        TopicKind::Alarm,
        TopicKind::State,
        TopicKind::Status,
        TopicKind::Site,
        TopicKind::Stats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TopicKind::Telemetry => "telemetry",
            TopicKind::Alarm => "alarm",
            TopicKind::State => "state",
            TopicKind::Status => "status",
            TopicKind::Site => "site",
            TopicKind::Stats => "stats",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Whether the broker keeps the last message for late subscribers.
    pub fn retained(self) -> bool {
        matches!(self, TopicKind::State | TopicKind::Status | TopicKind::Site)
    }
}

impl fmt::Display for TopicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The topic of one kind for one gateway.
pub fn topic(prefix: &str, site: &str, gateway: &str, kind: TopicKind) -> String {
    format!("{prefix}/{site}/{gateway}/{}", kind.name())
}
