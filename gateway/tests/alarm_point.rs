//! Property tests of the per-point alarm state machine, over any sequence of readings
//! (values, qualities, increasing time stamps) and any valid settings.

use std::collections::HashMap;
use std::time::Duration;

use firmware_config::alarm::{AlarmSpec, Direction, Level, Limit, RateLimit};
use hazgate::alarm::point::{Condition, EventKind, PointAlarm, Transition};
use hazgate_wire::{Quality, Reason};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Input {
    ts: i64,
    value: Option<f64>,
    quality: Quality,
}

impl Input {
    /// The value the limits and the rate look at.
    fn usable(&self) -> Option<f64> {
        match self.quality {
            Quality::Bad { .. } => None,
            _ => self.value.filter(|v| v.is_finite()),
        }
    }

    fn failed_poll(&self) -> bool {
        matches!(
            self.quality.reason(),
            Some(
                Reason::Timeout
                    | Reason::Crc
                    | Reason::Framing
                    | Reason::Exception
                    | Reason::ConnectionRefused
                    | Reason::ConnectionLost
            )
        ) && !matches!(self.quality, Quality::Uncertain { .. })
    }
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        Just(Level::Blue),
        Just(Level::Yellow),
        Just(Level::Orange),
        Just(Level::Red)
    ]
}

/// Above limits from 52 up, below limits from 38 down, so that 45 is normal for any
/// deadband under 5; levels rise away from normal, at most one per level and direction.
fn ladder() -> impl Strategy<Value = Vec<Limit>> {
    (
        prop::collection::vec(any::<bool>(), 4),
        prop::collection::vec(any::<bool>(), 4),
        prop::collection::vec(1.0f64..15.0, 4),
        prop::collection::vec(any::<bool>(), 8),
    )
        .prop_map(|(above, below, steps, labelled)| {
            let mut limits = Vec::new();
            for (direction, pick, start, sign) in [
                (Direction::Above, &above, 52.0, 1.0),
                (Direction::Below, &below, 38.0, -1.0),
            ] {
                let mut value = start;
                for (i, level) in Level::ALL.iter().enumerate() {
                    if pick[i] {
                        let n = limits.len();
                        limits.push(Limit {
                            direction,
                            value,
                            level: *level,
                            label: labelled[n].then(|| format!("{direction:?} {level}")),
                        });
                        value += sign * steps[i].round();
                    }
                }
            }
            limits.sort_by_key(|l| l.level);
            limits
        })
}

fn spec() -> impl Strategy<Value = AlarmSpec> {
    (
        ladder(),
        prop_oneof![Just(0.0), 0.0f64..4.9],
        0i64..5_000,
        0i64..5_000,
        prop::option::of((1.0f64..30.0, 1u64..60, level())),
        prop::option::of((0u64..20, level())),
        prop::option::of(level()),
        prop::option::of(level()),
    )
        .prop_map(
            |(limits, deadband, on, off, rate, comm, fault, range)| AlarmSpec {
                unit: None,
                limits,
                deadband,
                on_delay: Duration::from_millis(on as u64),
                off_delay: Duration::from_millis(off as u64),
                rate: rate.map(|(change, window, level)| RateLimit {
                    change,
                    window: Duration::from_secs(window),
                    direction: firmware_config::alarm::RateDirection::Both,
                    level,
                    label: Some("rate".into()),
                }),
                comm_loss: comm.map(|(after, level)| (Duration::from_secs(after), level)),
                sensor_fault: fault,
                out_of_range: range,
                calibration: None,
                stuck: None,
                jump: None,
                linkage: Vec::new(),
            },
        )
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => 0.0f64..100.0,
        2 => (0i32..100).prop_map(f64::from),
        1 => 35.0f64..55.0,
    ]
}

fn quality(kind: u8) -> Quality {
    match kind {
        0..=5 => Quality::Good,
        6 => Quality::uncertain(Reason::OutOfRange, "20.8 mA"),
        7 => Quality::uncertain(Reason::StatusCode, "warming up"),
        8 => Quality::bad(Reason::Timeout, "no reply"),
        9 => Quality::bad(Reason::Crc, "crc"),
        10 => Quality::bad(Reason::SensorFault, "2.0 mA"),
        11 => Quality::bad(Reason::StatusCode, "fault code 7"),
        _ => Quality::Good,
    }
}

fn inputs() -> impl Strategy<Value = Vec<Input>> {
    prop::collection::vec((1i64..3_000, value(), 0u8..13, 0u8..20), 0..200).prop_map(|v| {
        let mut ts = 1_700_000_000_000;
        v.into_iter()
            .map(|(dt, value, kind, none)| {
                ts += dt;
                let quality = quality(kind);
                let value = match quality {
                    Quality::Bad { .. } => None,
                    _ if kind == 12 || none == 0 => None,
                    _ => Some(value),
                };
                Input { ts, value, quality }
            })
            .collect()
    })
}

fn run(p: &mut PointAlarm, inputs: &[Input]) -> Vec<(usize, Transition)> {
    let mut out = Vec::new();
    for (i, r) in inputs.iter().enumerate() {
        out.extend(
            p.evaluate(r.ts, r.value, &r.quality)
                .into_iter()
                .map(|t| (i, t)),
        );
    }
    out
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// The protocol: per condition, events alternate properly, name the level they reach, and
/// the machine's view of its active alarms follows them.
fn check_protocol(spec: &AlarmSpec, inputs: &[Input]) -> Result<(), TestCaseError> {
    let mut p = PointAlarm::new(spec.clone());
    let mut model: HashMap<Condition, Level> = HashMap::new();
    for r in inputs {
        let events = p.evaluate(r.ts, r.value, &r.quality);
        let mut seen = Vec::new();
        for t in &events {
            prop_assert!(
                !seen.contains(&t.condition),
                "two events of one condition at once: {events:?}"
            );
            seen.push(t.condition);
            prop_assert_eq!(t.ts, r.ts);
            prop_assert_eq!(t.previous, model.get(&t.condition).copied(), "{:?}", t);
            match (t.kind, t.previous, t.level) {
                (EventKind::Raise, None, Some(_)) | (EventKind::Clear, Some(_), None) => {}
                (EventKind::Escalate, Some(a), Some(b)) => prop_assert!(b > a, "{t:?}"),
                (EventKind::Deescalate, Some(a), Some(b)) => prop_assert!(b < a, "{t:?}"),
                _ => prop_assert!(false, "malformed {t:?}"),
            }
            // The level an event names is the level of the limit it names.
            let named = t.level.or(t.previous).unwrap();
            match t.condition {
                Condition::Limit => {
                    prop_assert!(
                        spec.limits.iter().any(|l| Some(l.value) == t.limit
                            && l.level == named
                            && l.label == t.label),
                        "{t:?} names no limit of the ladder"
                    );
                    prop_assert_eq!(t.value, r.usable());
                }
                Condition::Rate => {
                    let rate = spec.rate.as_ref().unwrap();
                    prop_assert_eq!(named, rate.level);
                    prop_assert_eq!(t.limit, Some(rate.change));
                    // Raised once the change has stayed above the clearing threshold for
                    // the on-delay, after it first reached `change`.
                    let clear_below = if spec.deadband > 0.0 {
                        (rate.change - spec.deadband).max(rate.change / 2.0)
                    } else {
                        rate.change
                    };
                    match t.kind {
                        EventKind::Raise => prop_assert!(t.value.unwrap().abs() >= clear_below),
                        _ => prop_assert!(t.value.unwrap().abs() < rate.change),
                    }
                }
                Condition::CommLoss => {
                    prop_assert_eq!(named, spec.comm_loss.unwrap().1);
                    match t.kind {
                        EventKind::Raise => prop_assert!(r.failed_poll(), "{t:?} on {r:?}"),
                        _ => prop_assert!(r.usable().is_some(), "{t:?} on {r:?}"),
                    }
                }
                Condition::SensorFault => {
                    prop_assert_eq!(named, spec.sensor_fault.unwrap());
                    prop_assert!(!r.failed_poll());
                }
                Condition::OutOfRange => {
                    prop_assert_eq!(named, spec.out_of_range.unwrap());
                    prop_assert!(!r.failed_poll());
                }
                other => prop_assert!(false, "{other:?}"),
            }
            if matches!(
                t.condition,
                Condition::CommLoss
                    | Condition::SensorFault
                    | Condition::OutOfRange
                    | Condition::Rate
            ) {
                prop_assert!(
                    matches!(t.kind, EventKind::Raise | EventKind::Clear),
                    "{t:?}"
                );
            }
            match t.level {
                Some(l) => model.insert(t.condition, l),
                None => model.remove(&t.condition),
            };
        }
        let mut active: Vec<(Condition, Level)> =
            p.active().iter().map(|a| (a.condition, a.level)).collect();
        let mut want: Vec<(Condition, Level)> = model.iter().map(|(c, l)| (*c, *l)).collect();
        active.sort();
        want.sort();
        prop_assert_eq!(active, want);
        prop_assert_eq!(p.level(), model.values().copied().max());
    }
    Ok(())
}

/// Delays: a limit level is reached only after every reading of the last on_delay could
/// have held it, and left only after none of the last off_delay crossed it.
fn check_delays(spec: &AlarmSpec, inputs: &[Input]) -> Result<(), TestCaseError> {
    let mut p = PointAlarm::new(spec.clone());
    let (on, off) = (ms(spec.on_delay), ms(spec.off_delay));
    for (i, t) in run(&mut p, inputs) {
        if t.condition != Condition::Limit {
            continue;
        }
        let ts = inputs[i].ts;
        let window = |d: i64| {
            inputs[..=i]
                .iter()
                .filter(move |r| r.ts >= ts - d)
                .filter_map(|r| r.usable())
        };
        match t.kind {
            EventKind::Raise | EventKind::Escalate => {
                let l = t.level.unwrap();
                for v in window(on) {
                    prop_assert!(
                        spec.limits
                            .iter()
                            .any(|x| x.level >= l && !x.cleared(v, spec.deadband)),
                        "{t:?}: {v} within the on-delay could not hold {l}"
                    );
                }
            }
            EventKind::Deescalate | EventKind::Clear => {
                for v in window(off) {
                    prop_assert!(
                        !spec
                            .limits
                            .iter()
                            .any(|x| Some(x.level) > t.level && x.crossed(v)),
                        "{t:?}: {v} within the off-delay crossed a higher limit"
                    );
                }
            }
            // A point's state machine never acknowledges by itself.
            EventKind::Ack => prop_assert!(false, "{t:?}: an ack from evaluation"),
        }
    }
    Ok(())
}

/// Whatever came before: a value far past the top limit is raised to its level within the
/// on-delay, failed polls raise comm loss after its time, and a normal value clears
/// everything within the off-delay and the rate window.
fn check_liveness(spec: &AlarmSpec, inputs: &[Input]) -> Result<(), TestCaseError> {
    let mut p = PointAlarm::new(spec.clone());
    run(&mut p, inputs);
    let mut ts = inputs.last().map_or(0, |r| r.ts) + 1;
    let mut feed = |p: &mut PointAlarm, v: Option<f64>, q: &Quality, dur: i64| {
        let end = ts + dur;
        loop {
            p.evaluate(ts, v, q);
            if ts >= end {
                break;
            }
            ts = (ts + 500).min(end);
        }
        ts += 1;
    };
    let (on, off) = (ms(spec.on_delay), ms(spec.off_delay));
    let slack = spec.rate.as_ref().map_or(0, |r| ms(r.window) * 2) + 1_000;
    let top = spec
        .limits
        .iter()
        .filter(|l| l.direction == Direction::Above)
        .max_by_key(|l| l.level);
    if let Some(top) = top {
        // Up within the on-delay, or down (from a more severe below limit) within the off.
        feed(
            &mut p,
            Some(top.value + 1_000.0),
            &Quality::Good,
            on.max(off),
        );
        prop_assert_eq!(p.condition(Condition::Limit), Some(top.level));
    }
    feed(&mut p, Some(45.0), &Quality::Good, off.max(on) + slack);
    prop_assert_eq!(p.level(), None, "{:?}", p.active());
    if let Some((after, level)) = spec.comm_loss {
        feed(&mut p, None, &Quality::bad(Reason::Timeout, "t"), ms(after));
        prop_assert_eq!(p.condition(Condition::CommLoss), Some(level));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn events_follow_the_protocol(spec in spec(), inputs in inputs()) {
        check_protocol(&spec, &inputs)?;
    }

    #[test]
    fn delays_are_respected(spec in spec(), inputs in inputs()) {
        check_delays(&spec, &inputs)?;
    }

    #[test]
    fn alarms_come_and_go(spec in spec(), inputs in inputs()) {
        check_liveness(&spec, &inputs)?;
    }

    /// A restart at any reading changes nothing that follows; through JSON (whose floats
    /// serde_json may round by an ulp) neither the levels nor their times change.
    #[test]
    fn restore_is_seamless(spec in spec(), inputs in inputs(), at in any::<prop::sample::Index>()) {
        let k = at.index(inputs.len() + 1);
        let mut whole = PointAlarm::new(spec.clone());
        let all = run(&mut whole, &inputs);
        let mut first = PointAlarm::new(spec.clone());
        let before = run(&mut first, &inputs[..k]);

        let mut second = PointAlarm::restore(spec.clone(), first.snapshot());
        prop_assert_eq!(second.active(), first.active());
        let mut got = before.clone();
        got.extend(run(&mut second, &inputs[k..]).into_iter().map(|(i, t)| (i + k, t)));
        prop_assert_eq!(&got, &all);
        prop_assert_eq!(second.active(), whole.active());

        let json = serde_json::to_string(&first.snapshot()).unwrap();
        let mut third = PointAlarm::restore(spec.clone(), serde_json::from_str(&json).unwrap());
        let mut got = before;
        got.extend(run(&mut third, &inputs[k..]).into_iter().map(|(i, t)| (i + k, t)));
        let levels = |v: &[(usize, Transition)]| -> Vec<_> {
            v.iter().map(|(i, t)| (*i, t.condition, t.kind, t.previous, t.level, t.ts)).collect()
        };
        prop_assert_eq!(levels(&got), levels(&all));
    }

    /// Once the value has crossed a limit and then never leaves the deadband around it,
    /// there is exactly one event: the raise, due once the on-delay has passed.
    #[test]
    fn noise_in_the_deadband_is_one_raise(
        spec in spec(),
        below in any::<bool>(),
        db in 0.5f64..4.9,
        before in prop::collection::vec((1i64..3_000, 0.0f64..1.0, 0u8..10), 0..30),
        after in prop::collection::vec((1i64..3_000, 0.0f64..1.0, 0u8..10), 1..100),
    ) {
        // The least severe limit of one direction, its neighbours at least 10 away.
        let direction = if below { Direction::Below } else { Direction::Above };
        let (x, sign) = if below { (38.0, -1.0) } else { (52.0, 1.0) };
        let mut spec = AlarmSpec { deadband: db, rate: None, comm_loss: None, sensor_fault: None, out_of_range: None, ..spec };
        spec.limits.retain(|l| l.direction == direction);
        let mut level = Level::Blue;
        for (i, l) in spec.limits.iter_mut().enumerate() {
            l.value = x + sign * 10.0 * i as f64;
            if i == 0 {
                level = l.level;
            }
        }
        prop_assume!(!spec.limits.is_empty());
        // Safe side of x within the deadband, then the crossing, then anywhere in it;
        // failed polls (kind 0) in between.
        let mut steps: Vec<(i64, f64, u8)> = before
            .iter()
            .map(|(dt, f, kind)| (*dt, x - sign * db * (0.001 + 0.999 * f), *kind))
            .collect();
        let crossing = steps.len();
        steps.push((1, x + sign * db * 0.5, 1));
        steps.extend(after.iter().map(|(dt, f, kind)| (*dt, x + sign * db * (2.0 * f - 1.0), *kind)));
        let mut ts = 0;
        let inputs: Vec<Input> = steps
            .into_iter()
            .map(|(dt, v, kind)| {
                ts += dt;
                let quality = if kind == 0 { Quality::bad(Reason::Timeout, "t") } else { Quality::Good };
                Input { ts, value: (kind != 0).then_some(v), quality }
            })
            .collect();
        let cross_at = inputs[crossing].ts;
        let mut p = PointAlarm::new(spec.clone());
        let events = run(&mut p, &inputs);
        let on = ms(spec.on_delay);
        let due = inputs.iter().find(|r| r.ts >= cross_at + on && r.usable().is_some()).map(|r| r.ts);
        match due {
            None => prop_assert!(events.is_empty(), "{events:?}"),
            Some(due) => {
                prop_assert_eq!(events.len(), 1, "{:?}", events);
                let t = &events[0].1;
                prop_assert_eq!((t.kind, t.level, t.limit, t.ts), (EventKind::Raise, Some(level), Some(x), due));
            }
        }
    }
}

proptest! {
    /// Time stamps that jump back and forth, to the ends of i64, and values that are not
    /// finite: nothing panics and the protocol still holds.
    #[test]
    fn any_time_and_value_is_survived(
        spec in spec(),
        raw in prop::collection::vec((any::<i64>(), any::<f64>(), 0u8..13), 0..100),
    ) {
        let inputs: Vec<Input> = raw
            .into_iter()
            .map(|(ts, value, kind)| Input { ts, value: Some(value), quality: quality(kind) })
            .collect();
        check_protocol(&spec, &inputs)?;
        let mut p = PointAlarm::new(spec.clone());
        run(&mut p, &inputs);
        let mut q = PointAlarm::restore(spec.clone(), p.snapshot());
        for r in &inputs {
            q.evaluate(r.ts, r.value, &r.quality);
        }
    }
}
