//! What the schema cannot say: ids by the id rule, times that are plausible, texts that can
//! be store tags, and no contradictions. A message failing any of it is not written at all.

use hazgate_wire::{valid_id, AlarmEvent, EventKind, Message, Reading, State, Value, ID_RULE};

/// 2000-01-01T00:00:00Z: no gateway of ours ever measured before it; an earlier time is
/// a clock that was never set.
const EARLIEST_MS: i64 = 946_684_800_000;
/// How far ahead of this host's clock a gateway's may run.
const FUTURE_SLACK_MS: i64 = 24 * 3600 * 1000;
const MAX_TEXT: usize = 128;

pub fn check(message: &Message, now_ms: i64) -> Result<(), String> {
    let latest = now_ms.saturating_add(FUTURE_SLACK_MS);
    let ts = |what: &str, ts: i64| {
        if (EARLIEST_MS..=latest).contains(&ts) {
            Ok(())
        } else {
            Err(format!(
                "{what} time {ts} ms is not between the year 2000 and a day from now: the gateway's clock is wrong"
            ))
        }
    };
    match message {
        Message::Telemetry(t) => t.readings.iter().try_for_each(|r| {
            reading(r)?;
            ts("reading", r.ts)
        }),
        Message::Gap(g) => {
            ts("gap", g.from_ts)?;
            ts("gap", g.to_ts)?;
            if g.from_ts > g.to_ts || g.first_seq > g.last_seq {
                return Err("a gap that ends before it begins".into());
            }
            Ok(())
        }
        Message::Alarm(a) => {
            alarm(a)?;
            ts("alarm", a.ts)
        }
        Message::State(s) => {
            state(s)?;
            ts("state", s.ts)
        }
        Message::Status(s) => ts("status", s.ts),
    }
}

fn id(what: &str, id: &str) -> Result<(), String> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(format!(
            "{what} \"{}\" is not a valid id; {ID_RULE}",
            id.escape_debug()
        ))
    }
}

/// Units and labels become store tags and page text: short, printable.
fn text(what: &str, t: &str) -> Result<(), String> {
    if t.is_empty() || t.chars().count() > MAX_TEXT || t.chars().any(char::is_control) {
        return Err(format!(
            "{what} \"{}\" must be 1 to {MAX_TEXT} printable characters",
            t.escape_debug()
        ));
    }
    Ok(())
}

fn number(what: &str, x: Option<f64>) -> Result<(), String> {
    match x {
        Some(x) if !x.is_finite() => Err(format!("{what} is not a finite number")),
        _ => Ok(()),
    }
}

fn reading(r: &Reading) -> Result<(), String> {
    id("device", &r.device)?;
    id("point", &r.point)?;
    if let Some(u) = &r.unit {
        text("unit", u)?;
    }
    match &r.value {
        Some(Value::Number(x)) => number("value", Some(*x)),
        Some(Value::Text(t)) if t.len() > 4096 => Err("a text value over 4 KiB".into()),
        _ => Ok(()),
    }
}

fn alarm(a: &AlarmEvent) -> Result<(), String> {
    match (&a.device, &a.point) {
        (Some(d), Some(p)) => {
            id("device", d)?;
            id("point", p)?;
        }
        (None, None) => {}
        _ => return Err("an alarm with a device but no point, or a point but no device".into()),
    }
    if let Some(h) = &a.hazard_source {
        id("hazard source", h)?;
    }
    if (a.event == EventKind::Clear) != a.level.is_none() {
        return Err("a clear must have no level, and any other event a level".into());
    }
    number("value", a.value)?;
    number("limit", a.limit)?;
    if let Some(u) = &a.unit {
        text("unit", u)?;
    }
    if let Some(l) = &a.label {
        text("label", l)?;
    }
    Ok(())
}

fn state(s: &State) -> Result<(), String> {
    for h in &s.hazard_sources {
        id("hazard source", &h.id)?;
    }
    for a in &s.alarms {
        id("device", &a.device)?;
        id("point", &a.point)?;
        number("value", a.value)?;
        number("limit", a.limit)?;
    }
    Ok(())
}
