//! After intake: what of a taken message goes to the store, and what goes to the
//! quarantine instead. A reading with content no gateway sends (a bad id, an empty unit,
//! a value that is not finite) is refused alone, with its reason; the others of its message
//! are written. A record whose time cannot be trusted (before 2000, more than a day ahead
//! of this host, or flagged `clock` by the gateway) is kept out of the time-series store,
//! which would file it under a wrong time or drop it unseen, and goes to the quarantine
//! with reason `clock`. Alarm events and state of such a gateway are still shown in the view.

use hazgate_wire::validate::{self, time_plausible};
use hazgate_wire::{Message, Reading, Reason};

use super::RejectReason;

/// Why a record is in the quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    /// The whole message, or one reading of it, was refused.
    Refused(RejectReason),
    /// Its time stamp cannot be trusted.
    Clock,
}

impl Why {
    /// Every reason, in a stable order (the refusals, then `clock`).
    pub fn all() -> impl Iterator<Item = Why> {
        RejectReason::ALL
            .into_iter()
            .map(Why::Refused)
            .chain([Why::Clock])
    }

    pub fn index(self) -> usize {
        match self {
            Why::Refused(r) => r as usize,
            Why::Clock => RejectReason::ALL.len(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Why::Refused(r) => r.name(),
            Why::Clock => "clock",
        }
    }
}

/// One record kept out of the store, with its reason.
#[derive(Debug, Clone)]
pub struct Held {
    pub why: Why,
    pub detail: String,
    /// The record as it arrived: a reading, an alarm event or a gap.
    pub record: serde_json::Value,
}

/// What of a message is written, and what is held back.
#[derive(Debug)]
pub struct Triage {
    /// The message with only what may be stored (telemetry: the readings that passed).
    pub message: Message,
    /// Whether `message` goes to the store at all (an alarm or gap with a wrong time does
    /// not; state and status never do).
    pub store: bool,
    pub held: Vec<Held>,
}

pub fn triage(message: Message, now_ms: i64) -> Triage {
    let mut held = Vec::new();
    let mut clock = |what: &str, ts: i64, record: serde_json::Value| {
        held.push(Held {
            why: Why::Clock,
            detail: format!(
                "{what} time {ts} ms is not between the year 2000 and a day from now: the gateway's clock is wrong"
            ),
            record,
        })
    };
    let store = match &message {
        Message::State(_) | Message::Status(_) | Message::Site(_) => false,
        Message::Alarm(a) => {
            let ok = time_plausible(a.ts, now_ms);
            if !ok {
                clock("alarm", a.ts, json(a));
            }
            ok
        }
        Message::Stats(s) => {
            let ok = time_plausible(s.from_ts, now_ms);
            if !ok {
                clock("statistics", s.from_ts, json(s));
            }
            ok
        }
        Message::Gap(g) => {
            let bad = [g.from_ts, g.to_ts]
                .into_iter()
                .find(|ts| !time_plausible(*ts, now_ms));
            if let Some(ts) = bad {
                clock("gap", ts, json(g));
            }
            bad.is_none()
        }
        Message::Telemetry(_) => true,
    };
    let message = match message {
        Message::Telemetry(mut t) => {
            let readings = std::mem::take(&mut t.readings);
            t.readings = readings
                .into_iter()
                .filter(|r| match judge(r, now_ms) {
                    None => true,
                    Some((why, detail)) => {
                        held.push(Held {
                            why,
                            detail,
                            record: json(r),
                        });
                        false
                    }
                })
                .collect();
            Message::Telemetry(t)
        }
        other => other,
    };
    Triage {
        message,
        store,
        held,
    }
}

/// Why a reading is held back, if it is.
fn judge(r: &Reading, now_ms: i64) -> Option<(Why, String)> {
    if let Err(e) = validate::reading(r) {
        return Some((Why::Refused(RejectReason::BadContent), e.to_string()));
    }
    if r.quality.reason() == Some(Reason::Clock) {
        return Some((
            Why::Clock,
            "the gateway flags its clock as wrong (reason clock)".into(),
        ));
    }
    if !time_plausible(r.ts, now_ms) {
        return Some((
            Why::Clock,
            format!(
                "reading time {} ms is not between the year 2000 and a day from now: the gateway's clock is wrong",
                r.ts
            ),
        ));
    }
    None
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
