//! Unit tests of the per-point alarm state machine.

use super::*;
use firmware_config::alarm::RateLimit;

const S: i64 = 1000;

fn lim(direction: Direction, value: f64, level: Level, label: &str) -> Limit {
    Limit {
        direction,
        value,
        level,
        label: (!label.is_empty()).then(|| label.to_string()),
    }
}

fn spec(mut limits: Vec<Limit>) -> AlarmSpec {
    limits.sort_by_key(|l| l.level);
    AlarmSpec {
        unit: None,
        limits,
        deadband: 0.0,
        on_delay: Duration::ZERO,
        off_delay: Duration::ZERO,
        rate: None,
        comm_loss: None,
        sensor_fault: None,
        out_of_range: None,
        calibration: None,
        stuck: None,
        jump: None,
        linkage: Vec::new(),
    }
}

fn leak() -> AlarmSpec {
    AlarmSpec {
        deadband: 2.0,
        on_delay: Duration::from_secs(2),
        off_delay: Duration::from_secs(5),
        ..spec(vec![
            lim(Direction::Above, 25.0, Level::Yellow, "一级报警"),
            lim(Direction::Above, 50.0, Level::Red, "二级报警"),
        ])
    }
}

fn good(p: &mut PointAlarm, ts: i64, v: f64) -> Vec<Transition> {
    p.evaluate(ts, Some(v), &Quality::Good)
}

fn timeout() -> Quality {
    Quality::bad(Reason::Timeout, "no reply")
}

/// (kind, previous, level, value, limit, ts)
type Ev = (
    EventKind,
    Option<Level>,
    Option<Level>,
    Option<f64>,
    Option<f64>,
    i64,
);

fn ev(t: &Transition) -> Ev {
    (t.kind, t.previous, t.level, t.value, t.limit, t.ts)
}

use EventKind::*;
use Level::*;

#[test]
fn leak_ramp_up_and_down() {
    let mut p = PointAlarm::new(leak());
    let mut all = Vec::new();
    // Up 1 %LEL a second to 60, hold, then down 1 a second to 0.
    for t in 0..=60 {
        all.extend(good(&mut p, t * S, t as f64));
    }
    for t in 61..70 {
        all.extend(good(&mut p, t * S, 60.0));
    }
    for j in 0..=60 {
        all.extend(good(&mut p, (70 + j) * S, 60.0 - j as f64));
    }
    let got: Vec<Ev> = all.iter().map(ev).collect();
    assert_eq!(
        got,
        vec![
            // 25 crossed at 25 s, held 2 s.
            (Raise, None, Some(Yellow), Some(27.0), Some(25.0), 27 * S),
            (
                Escalate,
                Some(Yellow),
                Some(Red),
                Some(52.0),
                Some(50.0),
                52 * S
            ),
            // Below 50 - 2 at 83 s (47), held 5 s.
            (
                Deescalate,
                Some(Red),
                Some(Yellow),
                Some(42.0),
                Some(25.0),
                88 * S
            ),
            // Below 25 - 2 at 108 s (22), held 5 s.
            (Clear, Some(Yellow), None, Some(17.0), Some(25.0), 113 * S),
        ]
    );
    assert_eq!(all[0].label.as_deref(), Some("一级报警"));
    assert_eq!(all[1].label.as_deref(), Some("二级报警"));
    assert_eq!(all[3].label.as_deref(), Some("一级报警"));
    assert_eq!(p.level(), None);
}

#[test]
fn a_jump_goes_straight_to_its_level_and_back() {
    let mut p = PointAlarm::new(leak());
    assert!(good(&mut p, 0, 0.0).is_empty());
    assert!(good(&mut p, S, 70.0).is_empty());
    let e = good(&mut p, 3 * S, 70.0);
    assert_eq!(
        ev(&e[0]),
        (Raise, None, Some(Red), Some(70.0), Some(50.0), 3 * S)
    );
    assert!(good(&mut p, 4 * S, 0.0).is_empty());
    let e = good(&mut p, 9 * S, 0.0);
    assert_eq!(
        ev(&e[0]),
        (Clear, Some(Red), None, Some(0.0), Some(50.0), 9 * S)
    );
    assert_eq!(e.len(), 1);
}

#[test]
fn a_short_spike_under_the_on_delay_is_nothing() {
    let mut p = PointAlarm::new(leak());
    assert!(good(&mut p, 0, 30.0).is_empty());
    assert!(good(&mut p, 1500, 10.0).is_empty());
    assert!(good(&mut p, 2500, 10.0).is_empty());
    assert_eq!(p.level(), None);
}

#[test]
fn noise_within_the_deadband_raises_once_and_clears_once() {
    let mut p = PointAlarm::new(AlarmSpec {
        deadband: 2.0,
        ..spec(vec![lim(Direction::Above, 25.0, Yellow, "")])
    });
    let noise = [
        24.0, 25.5, 24.0, 25.9, 23.1, 26.0, 23.5, 24.9, 25.0, 23.0, 24.5,
    ];
    let mut all = Vec::new();
    for (i, v) in noise.iter().enumerate() {
        all.extend(good(&mut p, i as i64 * S, *v));
    }
    all.extend(good(&mut p, 20 * S, 22.9));
    let got: Vec<Ev> = all.iter().map(ev).collect();
    assert_eq!(
        got,
        vec![
            (Raise, None, Some(Yellow), Some(25.5), Some(25.0), S),
            (Clear, Some(Yellow), None, Some(22.9), Some(25.0), 20 * S),
        ]
    );
}

#[test]
fn dry_beach_below_limits_and_both_directions() {
    // Dry beach length: below 100 m orange, below 80 m red; and a pond-side limit above.
    let mut p = PointAlarm::new(AlarmSpec {
        deadband: 2.0,
        ..spec(vec![
            lim(Direction::Below, 100.0, Orange, ""),
            lim(Direction::Below, 80.0, Red, ""),
            lim(Direction::Above, 400.0, Yellow, ""),
        ])
    });
    let steps = [
        150.0, 95.0, 75.0, 81.0, 83.0, 101.0, 103.0, 450.0, 399.0, 397.0,
    ];
    let got: Vec<Ev> = steps
        .iter()
        .enumerate()
        .flat_map(|(i, v)| good(&mut p, i as i64 * S, *v))
        .map(|t| ev(&t))
        .collect();
    assert_eq!(
        got,
        vec![
            (Raise, None, Some(Orange), Some(95.0), Some(100.0), S),
            (
                Escalate,
                Some(Orange),
                Some(Red),
                Some(75.0),
                Some(80.0),
                2 * S
            ),
            // 81 is within the deadband of 80; 83 is past it.
            (
                Deescalate,
                Some(Red),
                Some(Orange),
                Some(83.0),
                Some(100.0),
                4 * S
            ),
            (Clear, Some(Orange), None, Some(103.0), Some(100.0), 6 * S),
            (Raise, None, Some(Yellow), Some(450.0), Some(400.0), 7 * S),
            (Clear, Some(Yellow), None, Some(397.0), Some(400.0), 9 * S),
        ]
    );
}

#[test]
fn comm_loss_after_ten_seconds_of_timeouts() {
    let mut p = PointAlarm::new(AlarmSpec {
        comm_loss: Some((Duration::from_secs(10), Orange)),
        ..leak()
    });
    assert!(good(&mut p, 0, 30.0).is_empty());
    let mut all = Vec::new();
    for t in 1..=12 {
        all.extend(p.evaluate(t * S, None, &timeout()));
    }
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].condition, Condition::CommLoss);
    assert_eq!(ev(&all[0]), (Raise, None, Some(Orange), None, None, 10 * S));
    // The limit stays where it was: pending yellow is not lost, nothing cleared.
    assert_eq!(p.condition(Condition::Limit), None);
    let e = good(&mut p, 13 * S, 30.0);
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].condition, Condition::CommLoss);
    assert_eq!(
        ev(&e[0]),
        (Clear, Some(Orange), None, Some(30.0), None, 13 * S)
    );
    // 30 has been above 25 since 0 s: the yellow is due.
    assert_eq!((e[1].condition, e[1].kind), (Condition::Limit, Raise));
    assert_eq!(p.level(), Some(Yellow));
}

#[test]
fn comm_loss_with_no_reading_ever() {
    let mut p = PointAlarm::new(AlarmSpec {
        comm_loss: Some((Duration::from_secs(10), Red)),
        ..spec(vec![])
    });
    let refused = Quality::bad(Reason::ConnectionRefused, "refused");
    assert!(p.evaluate(100 * S, None, &refused).is_empty());
    assert!(p.evaluate(109 * S, None, &refused).is_empty());
    let e = p.evaluate(110 * S, None, &refused);
    assert_eq!(ev(&e[0]), (Raise, None, Some(Red), None, None, 110 * S));
    assert!(p.evaluate(111 * S, None, &refused).is_empty());
    assert_eq!(p.level(), Some(Red));
}

#[test]
fn sensor_fault_with_delays_and_untouched_by_failed_polls() {
    let mut p = PointAlarm::new(AlarmSpec {
        sensor_fault: Some(Yellow),
        on_delay: Duration::from_secs(2),
        off_delay: Duration::from_secs(3),
        ..spec(vec![lim(Direction::Above, 25.0, Red, "")])
    });
    let fault = Quality::bad(Reason::SensorFault, "loop current 2.1 mA");
    let mut all = Vec::new();
    for t in 0..5 {
        all.extend(p.evaluate(t * S, None, &fault));
    }
    // Failed polls say nothing about the sensor.
    for t in 5..20 {
        all.extend(p.evaluate(t * S, None, &timeout()));
    }
    for t in 20..30 {
        all.extend(good(&mut p, t * S, 5.0));
    }
    let got: Vec<(Condition, Ev)> = all.iter().map(|t| (t.condition, ev(t))).collect();
    assert_eq!(
        got,
        vec![
            (
                Condition::SensorFault,
                (Raise, None, Some(Yellow), None, None, 2 * S)
            ),
            (
                Condition::SensorFault,
                (Clear, Some(Yellow), None, Some(5.0), None, 23 * S)
            ),
        ]
    );
}

#[test]
fn out_of_range_alongside_the_limits() {
    let mut p = PointAlarm::new(AlarmSpec {
        out_of_range: Some(Blue),
        ..spec(vec![lim(Direction::Above, 50.0, Red, "")])
    });
    let oor = Quality::uncertain(Reason::OutOfRange, "20.8 mA");
    let e = p.evaluate(0, Some(101.0), &oor);
    let got: Vec<(Condition, EventKind, Option<Level>)> =
        e.iter().map(|t| (t.condition, t.kind, t.level)).collect();
    assert_eq!(
        got,
        vec![
            (Condition::OutOfRange, Raise, Some(Blue)),
            (Condition::Limit, Raise, Some(Red)),
        ]
    );
    assert!(p.evaluate(S, Some(101.0), &oor).is_empty());
    let e = good(&mut p, 2 * S, 10.0);
    let got: Vec<(Condition, EventKind)> = e.iter().map(|t| (t.condition, t.kind)).collect();
    assert_eq!(
        got,
        vec![(Condition::OutOfRange, Clear), (Condition::Limit, Clear)]
    );
}

fn pond() -> AlarmSpec {
    AlarmSpec {
        deadband: 0.05,
        rate: Some(RateLimit {
            change: 0.5,
            window: Duration::from_secs(600),
            direction: firmware_config::alarm::RateDirection::Both,
            level: Orange,
            label: Some("rising fast".into()),
        }),
        ..spec(vec![lim(Direction::Above, 1000.0, Red, "")])
    }
}

#[test]
fn pond_rising_half_a_metre_within_ten_minutes() {
    let min = 60 * S;
    // Slow: 3.125 cm a minute for an hour, 0.31 m per 10 min: nothing.
    let mut p = PointAlarm::new(pond());
    for m in 0..=60 {
        assert!(good(&mut p, m * min, 100.0 + 0.03125 * m as f64).is_empty());
    }
    // Fast: 12.5 cm a minute from minute 10 to 19; 0.5 m above minute 9 at minute 13.
    let mut p = PointAlarm::new(pond());
    let mut all = Vec::new();
    let mut level = 100.0;
    for m in 0..=40 {
        if (10..20).contains(&m) {
            level += 0.125;
        }
        all.extend(good(&mut p, m * min, level));
    }
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!((all[0].kind, all[0].ts), (Raise, 13 * min));
    assert_eq!(all[0].condition, Condition::Rate);
    assert_eq!(all[0].value, Some(0.5));
    assert_eq!(all[0].limit, Some(0.5));
    assert_eq!(all[0].label.as_deref(), Some("rising fast"));
    // Level from minute 19 (101.25); the change drops below 0.45 once the window no
    // longer reaches minute 15 (100.75): at minute 26.
    assert_eq!((all[1].kind, all[1].ts), (Clear, 26 * min));
    assert_eq!(all[1].value, Some(0.375));
    // A fall counts too.
    let mut p = PointAlarm::new(pond());
    good(&mut p, 0, 100.0);
    let e = good(&mut p, min, 99.4);
    assert_eq!(
        (e[0].kind, e[0].value.map(|v| (v * 10.0).round())),
        (Raise, Some(-6.0))
    );
}

/// A rate that states its direction: a pond rising fast is an alarm, the same change
/// falling (a release, a pump) is not; `falling` the other way round.
#[test]
fn a_rate_with_a_direction_counts_only_that_way() {
    let min = 60 * S;
    let rising = || AlarmSpec {
        rate: pond().rate.map(|r| RateLimit {
            direction: firmware_config::alarm::RateDirection::Rising,
            ..r
        }),
        ..pond()
    };
    let mut p = PointAlarm::new(rising());
    good(&mut p, 0, 100.0);
    assert!(good(&mut p, min, 99.4).is_empty(), "a fall is not a rise");
    let e = good(&mut p, 2 * min, 100.1);
    assert_eq!((e[0].kind, e[0].condition), (Raise, Condition::Rate));
    assert!(e[0].value.unwrap() > 0.0);

    let falling = || AlarmSpec {
        rate: pond().rate.map(|r| RateLimit {
            direction: firmware_config::alarm::RateDirection::Falling,
            ..r
        }),
        ..pond()
    };
    let mut p = PointAlarm::new(falling());
    good(&mut p, 0, 100.0);
    assert!(good(&mut p, min, 100.6).is_empty(), "a rise is not a fall");
    let e = good(&mut p, 2 * min, 100.0);
    assert_eq!(
        (e[0].kind, e[0].value.map(|v| (v * 10.0).round())),
        (Raise, Some(-6.0))
    );
}

#[test]
fn restore_mid_alarm_neither_raises_again_nor_clears() {
    let s = AlarmSpec {
        comm_loss: Some((Duration::from_secs(10), Orange)),
        sensor_fault: Some(Yellow),
        ..leak()
    };
    let mut p = PointAlarm::new(s.clone());
    for t in 0..=60 {
        good(&mut p, t * S, t as f64);
    }
    assert_eq!(p.level(), Some(Red));
    // Falling: the red's deadband is passed at 47, the de-escalation pending.
    for (i, v) in [49.0, 47.0, 46.0].iter().enumerate() {
        assert!(good(&mut p, (61 + i as i64) * S, *v).is_empty());
    }
    let json = serde_json::to_string(&p.snapshot()).unwrap();
    let mut q = PointAlarm::restore(s.clone(), serde_json::from_str(&json).unwrap());
    assert_eq!(q.active(), p.active());
    assert_eq!(q.level(), Some(Red));
    // Pending since 62 s: due at 67 s, exactly once, as without the restart.
    assert!(good(&mut q, 66 * S, 45.0).is_empty());
    let e = good(&mut q, 67 * S, 45.0);
    assert_eq!(
        ev(&e[0]),
        (
            Deescalate,
            Some(Red),
            Some(Yellow),
            Some(45.0),
            Some(25.0),
            67 * S
        )
    );

    // Within the deadband of a raised limit after a restart: still raised, no events.
    let mut p = PointAlarm::new(s.clone());
    good(&mut p, 0, 60.0);
    good(&mut p, 2 * S, 60.0);
    for t in 3..20 {
        p.evaluate(t * S, None, &timeout());
    }
    assert_eq!(p.level(), Some(Red));
    let state = p.snapshot();
    let mut q = PointAlarm::restore(s.clone(), state);
    assert!(q.evaluate(20 * S, None, &timeout()).is_empty());
    let e = good(&mut q, 21 * S, 49.0);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].condition, e[0].kind), (Condition::CommLoss, Clear));
    assert_eq!(q.condition(Condition::Limit), Some(Red));
    assert!(good(&mut q, 22 * S, 60.0).is_empty());
}

#[test]
fn restore_under_changed_settings() {
    let s = AlarmSpec {
        sensor_fault: Some(Yellow),
        ..leak()
    };
    let mut p = PointAlarm::new(s.clone());
    let fault = Quality::bad(Reason::SensorFault, "fault");
    p.evaluate(0, None, &fault);
    p.evaluate(2 * S, None, &fault);
    good(&mut p, 3 * S, 60.0);
    good(&mut p, 5 * S, 60.0);
    assert_eq!(p.condition(Condition::Limit), Some(Red));
    assert_eq!(p.condition(Condition::SensorFault), Some(Yellow));
    // Sensor fault no longer configured; the red limit moved from 50 to 55.
    let changed = AlarmSpec {
        sensor_fault: None,
        ..spec(vec![
            lim(Direction::Above, 25.0, Yellow, ""),
            lim(Direction::Above, 55.0, Red, ""),
        ])
    };
    let changed = AlarmSpec {
        deadband: 2.0,
        ..changed
    };
    let mut q = PointAlarm::restore(changed, p.snapshot());
    let e = good(&mut q, 6 * S, 54.0);
    // The fault clears; 54 is within the deadband of the new red: red stays.
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].condition, e[0].kind), (Condition::SensorFault, Clear));
    assert_eq!(q.condition(Condition::Limit), Some(Red));
    let e = good(&mut q, 7 * S, 52.0);
    assert_eq!(
        ev(&e[0]),
        (
            Deescalate,
            Some(Red),
            Some(Yellow),
            Some(52.0),
            Some(25.0),
            7 * S
        )
    );

    // Restored under another ladder with the value already normal: it clears after
    // the off-delay, like any other fall.
    let mut p = PointAlarm::new(leak());
    good(&mut p, 0, 30.0);
    good(&mut p, 2 * S, 30.0);
    good(&mut p, 3 * S, 0.0);
    let other = AlarmSpec {
        deadband: 1.0,
        ..leak()
    };
    let mut q = PointAlarm::restore(other, p.snapshot());
    assert!(good(&mut q, 10 * S, 0.0).is_empty());
    assert!(good(&mut q, 14 * S, 0.0).is_empty());
    let e = good(&mut q, 15 * S, 0.0);
    assert_eq!(
        ev(&e[0]),
        (Clear, Some(Yellow), None, Some(0.0), Some(25.0), 15 * S)
    );
}

#[test]
fn no_allocation_when_nothing_changes() {
    let mut p = PointAlarm::new(AlarmSpec {
        comm_loss: Some((Duration::from_secs(10), Orange)),
        sensor_fault: Some(Yellow),
        ..pond()
    });
    for t in 0..100 {
        let e = good(&mut p, t * S, 10.0 + (t % 3) as f64 * 0.01);
        assert_eq!(e.capacity(), 0);
    }
}

#[test]
fn serde_names() {
    let t = Transition {
        condition: Condition::CommLoss,
        kind: Deescalate,
        previous: Some(Red),
        level: Some(Yellow),
        value: None,
        crossed: None,
        limit: None,
        label: None,
        ts: 1,
        opened: 1,
    };
    let j = serde_json::to_value(&t).unwrap();
    assert_eq!(j["condition"], "comm_loss");
    assert_eq!(j["kind"], "deescalate");
    assert_eq!(j["previous"], "red");
}

/// An event reports both the value at emission and the value that crossed: after the
/// 5 s off-delay the deescalate to yellow says 4.8 %LEL now, and 47 where it fell out of
/// red (below 50 less the deadband of 2).
#[test]
fn an_event_carries_the_value_that_crossed_and_the_value_at_emission() {
    let mut p = PointAlarm::new(leak());
    let mut all = Vec::new();
    for (t, v) in [
        (0, 10.0),
        (1, 55.0),
        (2, 56.0),
        (3, 57.0),
        (4, 58.0),
        (5, 47.0),
    ] {
        all.extend(good(&mut p, t * S, v));
    }
    for t in 6..=12 {
        all.extend(good(&mut p, t * S, 4.8));
    }
    let raise = all.iter().find(|t| t.kind == Raise).unwrap();
    assert_eq!(raise.crossed, Some(55.0), "crossed at 55: {raise:?}");
    let down = all.iter().find(|t| t.kind == Deescalate).unwrap();
    assert_eq!(down.value, Some(4.8), "{down:?}");
    assert_eq!(down.crossed, Some(47.0), "{down:?}");
}

/// AQ 1029: calibration readings are never judged; a calibration that outlasts its
/// allowance is an alarm of its own, cleared once the sensor is back in service.
#[test]
fn a_calibration_that_lasts_too_long_is_an_alarm() {
    let mut p = PointAlarm::new(AlarmSpec {
        calibration: Some(firmware_config::alarm::Calibration {
            max: Duration::from_secs(10),
            level: Yellow,
            input: None,
        }),
        ..leak()
    });
    good(&mut p, 0, 5.0);
    let mut all = Vec::new();
    for t in 1..=12 {
        all.extend(p.evaluate_calibrating(t * S, t * S));
    }
    let conds: Vec<_> = all.iter().map(|t| (t.condition, t.kind)).collect();
    assert_eq!(
        conds,
        [(Condition::Calibration, Raise)],
        "only the overdue calibration"
    );
    assert_eq!(all[0].ts, 11 * S, "10 s after it began at 1 s");
    let e = good(&mut p, 13 * S, 5.0);
    assert_eq!(
        e.iter().map(|t| (t.condition, t.kind)).collect::<Vec<_>>(),
        [(Condition::Calibration, Clear)]
    );
}

/// AQ 1029 false data: a stuck value is judged and alarmed as equipment; an impossible
/// jump is not judged (no process alarm) but alarmed as equipment; both clear with the
/// first reading without the flag (after the off-delay).
#[test]
fn false_data_flags_raise_equipment_alarms() {
    use firmware_config::alarm::{Jump, Stuck};
    let stuck = Flagged {
        stuck: true,
        ..Flagged::default()
    };
    let jump = Flagged {
        jump: true,
        ..Flagged::default()
    };
    let calm = Flagged::default();
    // (what, flags of each reading (value, flags), conditions and kinds expected)
    #[allow(clippy::type_complexity)]
    let rows: &[(&str, &[(f64, Flagged)], &[(Condition, EventKind)])] = &[
        (
            "stuck below the limit: only the equipment alarm",
            &[(5.0, calm), (5.0, stuck), (5.0, stuck), (6.0, calm)],
            &[
                (Condition::StuckValue, Raise),
                (Condition::StuckValue, Clear),
            ],
        ),
        (
            "stuck above the limit is still judged",
            &[(30.0, calm), (30.0, stuck), (30.0, stuck)],
            &[(Condition::Limit, Raise), (Condition::StuckValue, Raise)],
        ),
        (
            "an impossible spike raises no process alarm",
            &[(5.0, calm), (90.0, jump), (5.0, calm)],
            &[
                (Condition::ImpossibleJump, Raise),
                (Condition::ImpossibleJump, Clear),
            ],
        ),
        (
            "a confirmed step is judged",
            &[(5.0, calm), (90.0, jump), (91.0, calm)],
            &[
                (Condition::ImpossibleJump, Raise),
                (Condition::Limit, Raise),
                (Condition::ImpossibleJump, Clear),
            ],
        ),
    ];
    for (what, readings, want) in rows {
        let mut p = PointAlarm::new(AlarmSpec {
            on_delay: Duration::ZERO,
            off_delay: Duration::ZERO,
            stuck: Some(Stuck {
                samples: 2,
                level: Blue,
            }),
            jump: Some(Jump {
                change: 10.0,
                per: Duration::from_secs(1),
                level: Blue,
            }),
            ..leak()
        });
        let mut got = Vec::new();
        for (i, (v, f)) in readings.iter().enumerate() {
            let t = i as i64 * S;
            got.extend(p.evaluate_flagged(t, t, Some(*v), &Quality::Good, *f));
        }
        let got: Vec<_> = got.iter().map(|t| (t.condition, t.kind)).collect();
        assert_eq!(got, *want, "{what}");
    }
}
