//! What the gateway publishes passes the same content rules ingest applies
//! (`hazgate_wire::validate`), so a gateway never sends what ingest refuses. Ids, limit
//! labels and configured units were checked when the config was loaded; what can still go
//! wrong comes from devices at run time (a unit code mapped to an odd text, a NaN, a long
//! string register) or from error texts. Such content is repaired, never dropped: the
//! value keeps its place, and the quality says what was wrong.

use hazgate_wire::validate::{self, MAX_TEXT, MAX_TEXT_VALUE};
use hazgate_wire::{AlarmEvent, Quality, Reading, Reason, Value};

/// Makes a reading sendable; returns what was wrong, if anything.
pub fn repair_reading(r: &mut Reading) -> Option<validate::Invalid> {
    let problem = validate::reading(r).err()?;
    if r.unit
        .as_deref()
        .is_some_and(|u| validate::unit(u).is_err())
    {
        r.unit = None;
        take_quality(r, |q| {
            q.worst(Quality::uncertain(
                Reason::UnknownUnit,
                "the device reported a unit that cannot be sent; unit left out",
            ))
        });
    }
    match &mut r.value {
        Some(Value::Number(x)) if !x.is_finite() => {
            r.value = None;
            take_quality(r, |q| {
                q.worst(Quality::bad(
                    Reason::SensorFault,
                    "the device reported a value that is not a finite number",
                ))
            });
        }
        Some(Value::Text(t)) if t.len() > MAX_TEXT_VALUE => truncate(t, MAX_TEXT_VALUE),
        _ => {}
    }
    Some(problem)
}

/// Makes an alarm event sendable: a unit or label that breaks the rules is cut or left
/// out, a non-finite number left out. The event itself always goes.
pub fn repair_event(e: &mut AlarmEvent) -> Option<validate::Invalid> {
    let problem = validate::alarm_event(e).err()?;
    if e.unit
        .as_deref()
        .is_some_and(|u| validate::unit(u).is_err())
    {
        e.unit = None;
    }
    if let Some(label) = &mut e.label {
        let clean: String = label
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TEXT)
            .collect();
        e.label = (!clean.is_empty()).then_some(clean);
    }
    e.value = e.value.filter(|x| x.is_finite());
    e.crossed = e.crossed.filter(|x| x.is_finite());
    e.limit = e.limit.filter(|x| x.is_finite());
    Some(problem)
}

fn take_quality(r: &mut Reading, f: impl FnOnce(Quality) -> Quality) {
    let q = std::mem::replace(&mut r.quality, Quality::Good);
    r.quality = f(q);
}

fn truncate(t: &mut String, max: usize) {
    let mut end = max;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    t.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazgate_wire::{Condition, Envelope, EventKind, Level};

    fn reading(value: Value, unit: &str) -> Reading {
        Reading {
            device: "GD-101".into(),
            point: "CH1".into(),
            ts: 1,
            value: Some(value),
            unit: Some(unit.into()),
            quality: Quality::Good,
            flags: Vec::new(),
        }
    }

    #[test]
    fn what_ingest_would_refuse_is_repaired_not_dropped() {
        let mut ok = reading(Value::Number(1.0), "%LEL");
        assert!(repair_reading(&mut ok).is_none());
        assert!(ok.quality.is_good());

        let mut odd_unit = reading(Value::Number(1.0), "");
        assert!(repair_reading(&mut odd_unit).is_some());
        assert_eq!(odd_unit.unit, None);
        assert_eq!(odd_unit.quality.reason(), Some(Reason::UnknownUnit));
        assert!(validate::reading(&odd_unit).is_ok());

        let mut nan = reading(Value::Number(f64::NAN), "%LEL");
        assert!(repair_reading(&mut nan).is_some());
        assert_eq!(nan.value, None);
        assert!(matches!(nan.quality, Quality::Bad { .. }));

        let mut long = reading(Value::Text("é".repeat(3000)), "%LEL");
        assert!(repair_reading(&mut long).is_some());
        assert!(validate::reading(&long).is_ok());
    }

    #[test]
    fn an_event_with_a_long_label_still_goes() {
        let mut e = AlarmEvent {
            envelope: Envelope {
                v: 1,
                site: "S".into(),
                gateway: "G".into(),
                seq: 1,
            },
            event: EventKind::Raise,
            condition: Condition::LinkageFailed,
            device: Some("GD-101".into()),
            point: Some("CH1".into()),
            hazard_source: None,
            level: Some(Level::Red),
            previous: None,
            value: Some(f64::INFINITY),
            crossed: None,
            limit: None,
            unit: Some("\u{7}".into()),
            label: Some("x".repeat(300)),
            ts: 1,
            ack: None,
            occurrence: None,
        };
        assert!(repair_event(&mut e).is_some());
        assert!(validate::alarm_event(&e).is_ok(), "{e:?}");
    }
}
