//! What the schema cannot say about a message's content, checked the same way everywhere:
//! by the central ingest on every message it takes, by the site config loader
//! (`hazgate check`) on what a gateway will later publish (limit labels, units), and by
//! the gateway before it publishes. One set of functions, so a config that passes
//! `hazgate check` never produces a record that ingest refuses.
//!
//! The rules: ids follow [`ID_RULE`]; texts that become store tags and page text (units,
//! labels) are 1 to [`MAX_TEXT`] characters with no control characters; numbers are
//! finite; a text value is at most [`MAX_TEXT_VALUE`] bytes; no contradictions (a clear
//! with a level, a gap that ends before it begins).
//!
//! Time is not a reason to refuse: a gateway whose clock is wrong still measures real
//! values. [`time_plausible`] tells a time stamp that can be trusted from one that cannot,
//! and the caller decides what to do (ingest keeps such records out of the time-series
//! store, in its quarantine).

use crate::{valid_id, AlarmEvent, EventKind, Gap, Reading, State, Value, ID_RULE};

/// Longest unit or label, in characters.
pub const MAX_TEXT: usize = 128;
/// Longest text value of a reading (a `string` register), in bytes.
pub const MAX_TEXT_VALUE: usize = 4096;
/// 2000-01-01T00:00:00Z in ms: no gateway of ours ever measured before it; an earlier
/// time is a clock that was never set.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// How far ahead of the checking host's clock a time stamp may be, in ms (a day).
pub const FUTURE_SLACK_MS: i64 = 24 * 3600 * 1000;

/// Why a piece of content is refused, in words for the operator. The offending text is
/// quoted escaped (control characters visible) and cut to 80 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("{what} \"{value}\" is not a valid id; {ID_RULE}")]
    Id { what: &'static str, value: String },
    #[error(
        "{what} \"{value}\" must be 1 to {MAX_TEXT} characters, none of them a control character"
    )]
    Text { what: &'static str, value: String },
    #[error("{what} is not a finite number")]
    NotFinite { what: &'static str },
    #[error("a text value of {len} bytes, over the limit of {MAX_TEXT_VALUE}")]
    TextValueTooLong { len: usize },
    #[error("the note \"{0}\" must be at most {MAX_NOTE} characters, with no control characters but line breaks")]
    Note(String),
    #[error("{0}")]
    Contradiction(&'static str),
}

/// The offending text as shown in an error: escaped and cut.
fn shown(text: &str) -> String {
    let mut s: String = text.escape_debug().take(80).collect();
    if text.escape_debug().nth(80).is_some() {
        s.push('…');
    }
    s
}

/// An id (site, gateway, device, point, hazard source) by [`ID_RULE`].
pub fn id(what: &'static str, value: &str) -> Result<(), Invalid> {
    if valid_id(value) {
        Ok(())
    } else {
        Err(Invalid::Id {
            what,
            value: shown(value),
        })
    }
}

/// A text that becomes a store tag and page text: 1 to [`MAX_TEXT`] characters, no
/// control characters (a newline would break a line of line protocol).
pub fn text(what: &'static str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() || value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(Invalid::Text {
            what,
            value: shown(value),
        });
    }
    Ok(())
}

/// An engineering unit, e.g. `%LEL`.
pub fn unit(value: &str) -> Result<(), Invalid> {
    text("unit", value)
}

/// A limit's label, e.g. `二级报警`.
pub fn label(value: &str) -> Result<(), Invalid> {
    text("label", value)
}

/// A number that is there must be finite.
pub fn number(what: &'static str, value: Option<f64>) -> Result<(), Invalid> {
    match value {
        Some(x) if !x.is_finite() => Err(Invalid::NotFinite { what }),
        _ => Ok(()),
    }
}

/// One reading: ids, unit, value. Its time is judged apart ([`time_plausible`]).
pub fn reading(r: &Reading) -> Result<(), Invalid> {
    id("device", &r.device)?;
    id("point", &r.point)?;
    if let Some(u) = &r.unit {
        unit(u)?;
    }
    match &r.value {
        Some(Value::Number(x)) => number("value", Some(*x)),
        Some(Value::Text(t)) if t.len() > MAX_TEXT_VALUE => {
            Err(Invalid::TextValueTooLong { len: t.len() })
        }
        _ => Ok(()),
    }
}

/// One alarm event: ids, texts, numbers, and a level exactly when it is not a clear.
pub fn alarm_event(a: &AlarmEvent) -> Result<(), Invalid> {
    match (&a.device, &a.point) {
        (Some(d), Some(p)) => {
            id("device", d)?;
            id("point", p)?;
        }
        (None, None) => {}
        _ => {
            return Err(Invalid::Contradiction(
                "an alarm with a device but no point, or a point but no device",
            ))
        }
    }
    match a.event {
        // An acknowledgement names its occurrence and who answered; the level is the one
        // it was at (none if it cleared before the acknowledgement reached the edge).
        EventKind::Ack => {
            let (Some(o), Some(ack)) = (&a.occurrence, &a.ack) else {
                return Err(Invalid::Contradiction(
                    "an ack event must name its occurrence and who acknowledged it",
                ));
            };
            id("occurrence", o)?;
            acknowledgement(ack)?;
        }
        kind if (kind == EventKind::Clear) != a.level.is_none() => {
            return Err(Invalid::Contradiction(
                "a clear must have no level, and any other event a level",
            ));
        }
        _ => {}
    }
    if let Some(o) = &a.occurrence {
        id("occurrence", o)?;
    }
    what_it_says(
        a.hazard_source.as_deref(),
        [a.value, a.crossed, a.limit],
        a.unit.as_deref(),
        a.label.as_deref(),
    )
}

/// What an alarm event and an active alarm both say: the hazard source, the numbers
/// (value, crossed, limit), unit and label.
fn what_it_says(
    hazard_source: Option<&str>,
    numbers: [Option<f64>; 3],
    u: Option<&str>,
    l: Option<&str>,
) -> Result<(), Invalid> {
    if let Some(h) = hazard_source {
        id("hazard source", h)?;
    }
    for (what, x) in ["value", "crossed", "limit"].into_iter().zip(numbers) {
        number(what, x)?;
    }
    if let Some(u) = u {
        unit(u)?;
    }
    if let Some(l) = l {
        label(l)?;
    }
    Ok(())
}

/// The retained state: its hazard sources and active alarms.
pub fn state(s: &State) -> Result<(), Invalid> {
    for h in &s.hazard_sources {
        id("hazard source", &h.id)?;
    }
    for a in &s.alarms {
        id("device", &a.device)?;
        id("point", &a.point)?;
        if let Some(o) = &a.occurrence {
            id("occurrence", o)?;
        }
        if let Some(ack) = &a.acknowledged {
            acknowledgement(ack)?;
        }
        what_it_says(
            a.hazard_source.as_deref(),
            [a.value, a.crossed, a.limit],
            a.unit.as_deref(),
            a.label.as_deref(),
        )?;
    }
    Ok(())
}

/// Longest note a person may attach to an acknowledgement, in characters.
pub const MAX_NOTE: usize = 500;

/// Who acknowledged (a text like a label) and the note (up to [`MAX_NOTE`] characters,
/// line breaks allowed, no other control characters).
pub fn acknowledgement(a: &crate::Acknowledgement) -> Result<(), Invalid> {
    text("acknowledged by", &a.by)?;
    if let Some(n) = &a.note {
        note(n)?;
    }
    if let Some(c) = &a.command {
        id("command id", c)?;
    }
    Ok(())
}

fn note(n: &str) -> Result<(), Invalid> {
    if n.chars().count() > MAX_NOTE || n.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Invalid::Note(shown(n)));
    }
    Ok(())
}

/// A command to a gateway: ids, who gave it, and what it says. Whether it is meant for
/// this gateway is the receiver's to check.
pub fn command(c: &crate::Command) -> Result<(), Invalid> {
    id("site", &c.site)?;
    id("gateway", &c.gateway)?;
    id("command id", &c.id)?;
    text("given by", &c.by)?;
    match &c.action {
        crate::Action::Ack {
            occurrence,
            note: n,
        } => {
            id("occurrence", occurrence)?;
            if let Some(n) = n {
                note(n)?;
            }
        }
        crate::Action::Reset { device, point } => {
            id("device", device)?;
            id("point", point)?;
        }
    }
    Ok(())
}

/// Master data: ids, names, units and labels by the same rules as everything else.
pub fn master(m: &crate::MasterData) -> Result<(), Invalid> {
    for t in [&m.name, &m.address].into_iter().flatten() {
        text("name", t)?;
    }
    if let Some(d) = &m.division {
        if d.is_empty() || d.len() > 12 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::Contradiction(
                "an administrative-division code is 1 to 12 digits",
            ));
        }
    }
    for h in &m.hazard_sources {
        id("hazard source", &h.id)?;
        text("name", &h.name)?;
        if let Some(k) = &h.kind {
            text("kind", k)?;
        }
    }
    for d in &m.devices {
        id("device", &d.id)?;
        if let Some(n) = &d.name {
            text("name", n)?;
        }
    }
    for p in &m.points {
        id("device", &p.device)?;
        id("point", &p.point)?;
        text("name", &p.name)?;
        if let Some(u) = &p.unit {
            unit(u)?;
        }
        for l in &p.limits {
            number("limit", Some(l.value))?;
            if let Some(t) = &l.label {
                label(t)?;
            }
        }
    }
    Ok(())
}

/// A data-gap report: it must not end before it begins.
pub fn gap(g: &Gap) -> Result<(), Invalid> {
    if g.from_ts > g.to_ts || g.first_seq > g.last_seq {
        return Err(Invalid::Contradiction("a gap that ends before it begins"));
    }
    Ok(())
}

/// A statistics message: ids, texts and numbers as in readings, one period of
/// [`crate::STATS_PERIOD_MS`], good samples no more than samples, min ≤ mean ≤ max.
pub fn stats(s: &crate::Stats) -> Result<(), Invalid> {
    if s.to_ts - s.from_ts != crate::STATS_PERIOD_MS || s.from_ts % crate::STATS_PERIOD_MS != 0 {
        return Err(Invalid::Contradiction(
            "a statistics period that is not one aligned five-minute period",
        ));
    }
    for p in &s.points {
        id("device", &p.device)?;
        id("point", &p.point)?;
        if let Some(u) = &p.unit {
            unit(u)?;
        }
        for x in [p.min, p.max, p.mean] {
            number("statistic", x)?;
        }
        if p.good > p.samples {
            return Err(Invalid::Contradiction("more good samples than samples"));
        }
        match (p.min, p.mean, p.max) {
            (Some(lo), Some(m), Some(hi))
                if lo <= m + 1e-9 * m.abs().max(1.0) && m <= hi + 1e-9 * m.abs().max(1.0) => {}
            (None, None, None) => {}
            _ => {
                return Err(Invalid::Contradiction(
                    "min, mean and max that do not go together",
                ))
            }
        }
    }
    Ok(())
}

/// Whether a time stamp (ms UTC) can be trusted: from 2000-01-01 up to a day after
/// `now_ms` (the checking host's clock). Not a reason to refuse the value, only to keep
/// it out of a time-series store that would file it under the wrong time.
pub fn time_plausible(ts: i64, now_ms: i64) -> bool {
    (EARLIEST_MS..=now_ms.saturating_add(FUTURE_SLACK_MS)).contains(&ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Condition, Envelope, Level, Quality};

    fn reading_with(unit: Option<&str>, value: Option<Value>) -> Reading {
        Reading {
            device: "GD-101".into(),
            point: "CH1".into(),
            ts: 1,
            value,
            unit: unit.map(Into::into),
            quality: Quality::Good,
            flags: Vec::new(),
        }
    }

    #[test]
    fn readings() {
        assert!(reading(&reading_with(Some("%LEL"), Some(Value::Number(1.0)))).is_ok());
        assert!(reading(&reading_with(None, None)).is_ok());
        let e = reading(&reading_with(Some(""), None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unit \"\" must be 1 to 128 characters, none of them a control character"
        );
        assert!(matches!(
            reading(&reading_with(Some("a\nb"), None)),
            Err(Invalid::Text { .. })
        ));
        assert!(reading(&reading_with(Some(&"x".repeat(129)), None)).is_err());
        assert!(reading(&reading_with(Some(&"x".repeat(128)), None)).is_ok());
        assert_eq!(
            reading(&reading_with(None, Some(Value::Number(f64::NAN)))),
            Err(Invalid::NotFinite { what: "value" })
        );
        assert!(reading(&reading_with(None, Some(Value::Text("x".repeat(5000))))).is_err());
        let mut r = reading_with(None, None);
        r.device = "GD 101".into();
        assert_eq!(
            reading(&r).unwrap_err().to_string(),
            format!("device \"GD 101\" is not a valid id; {ID_RULE}")
        );
    }

    #[test]
    fn long_text_is_cut_in_the_message() {
        let e = label(&"\u{7}".repeat(500)).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("\\u{7}…"), "{e}");
    }

    #[test]
    fn alarms_and_gaps() {
        let mut a = AlarmEvent {
            envelope: Envelope {
                v: 1,
                site: "S".into(),
                gateway: "G".into(),
                seq: 1,
            },
            event: EventKind::Raise,
            condition: Condition::Limit,
            device: Some("D".into()),
            point: Some("P".into()),
            hazard_source: None,
            level: Some(Level::Red),
            previous: None,
            value: Some(1.0),
            crossed: None,
            limit: Some(0.5),
            unit: None,
            label: Some("二级报警".into()),
            ts: 1,
            occurrence: Some("1-0a0b0c0d".into()),
            ack: None,
        };
        assert!(alarm_event(&a).is_ok());
        a.event = EventKind::Clear;
        assert!(matches!(alarm_event(&a), Err(Invalid::Contradiction(_))));
        a.level = None;
        assert!(alarm_event(&a).is_ok());
        a.point = None;
        assert!(matches!(alarm_event(&a), Err(Invalid::Contradiction(_))));
        let g = Gap {
            envelope: a.envelope.clone(),
            from_ts: 2,
            to_ts: 1,
            first_seq: 1,
            last_seq: 1,
            messages: 1,
            unconfirmed: false,
        };
        assert!(gap(&g).is_err());
    }

    #[test]
    fn times() {
        let now = 1_800_000_000_000;
        assert!(time_plausible(now, now));
        assert!(time_plausible(EARLIEST_MS, now));
        assert!(!time_plausible(EARLIEST_MS - 1, now));
        assert!(!time_plausible(0, now));
        assert!(time_plausible(now + FUTURE_SLACK_MS, now));
        assert!(!time_plausible(now + FUTURE_SLACK_MS + 1, now));
        assert!(!time_plausible(i64::MIN, i64::MAX));
        assert!(time_plausible(i64::MAX, i64::MAX));
    }
}
