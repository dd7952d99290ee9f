//! False data (AQ 1029 伪数据标注) a point's own history shows: a value that never moves
//! (a frozen sensor or converter) and a value that moves faster than the plant can. The
//! verdict becomes flags on the reading; the point's alarm turns them into equipment
//! alarms. Kept in memory only: after a restart the counts start again.

use firmware_config::alarm::{AlarmSpec, Jump, Stuck};

/// What one reading looks like against the point's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    pub stuck: bool,
    pub jump: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Plausibility {
    stuck: Option<(Stuck, Repeats)>,
    jump: Option<(Jump, Steps)>,
}

#[derive(Debug, Clone, Default)]
struct Repeats {
    last: Option<f64>,
    /// Readings in a row with exactly `last`.
    count: u32,
}

#[derive(Debug, Clone, Default)]
struct Steps {
    /// The last accepted value and its monotonic time.
    accepted: Option<(f64, i64)>,
    /// A value that jumped: accepted if the next reading confirms it.
    candidate: Option<(f64, i64)>,
}

impl Plausibility {
    pub fn new(spec: &AlarmSpec) -> Self {
        Plausibility {
            stuck: spec.stuck.map(|s| (s, Repeats::default())),
            jump: spec.jump.map(|j| (j, Steps::default())),
        }
    }

    pub fn is_off(&self) -> bool {
        self.stuck.is_none() && self.jump.is_none()
    }

    /// Judges a usable value taken at monotonic time `clock` (ms).
    pub fn judge(&mut self, clock: i64, value: f64) -> Verdict {
        let mut verdict = Verdict::default();
        if let Some((rule, r)) = &mut self.stuck {
            if r.last == Some(value) {
                r.count = r.count.saturating_add(1);
            } else {
                r.last = Some(value);
                r.count = 1;
            }
            verdict.stuck = r.count >= rule.samples;
        }
        if let Some((rule, s)) = &mut self.jump {
            let jumped_from = |(from, at): (f64, i64)| rule.exceeded(from, value, clock - at);
            let confirms = s.candidate.is_some_and(|c| !jumped_from(c));
            if s.accepted.is_some_and(jumped_from) && !confirms {
                verdict.jump = true;
                s.candidate = Some((value, clock));
            } else {
                s.accepted = Some((value, clock));
                s.candidate = None;
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_config::alarm::Level;
    use std::time::Duration;

    fn spec(stuck: Option<u32>, jump: Option<f64>) -> AlarmSpec {
        AlarmSpec {
            unit: None,
            limits: vec![],
            deadband: 0.0,
            on_delay: Duration::ZERO,
            off_delay: Duration::ZERO,
            rate: None,
            comm_loss: None,
            sensor_fault: None,
            out_of_range: None,
            calibration: None,
            stuck: stuck.map(|samples| Stuck {
                samples,
                level: Level::Blue,
            }),
            jump: jump.map(|change| Jump {
                change,
                per: Duration::from_secs(1),
                level: Level::Blue,
            }),
            linkage: vec![],
        }
    }

    /// Feeds (seconds, value) pairs; returns the verdicts as "s" (stuck), "j" (jump), ".".
    fn run(p: &mut Plausibility, samples: &[(i64, f64)]) -> String {
        samples
            .iter()
            .map(|&(t, v)| match p.judge(t * 1000, v) {
                Verdict { jump: true, .. } => 'j',
                Verdict { stuck: true, .. } => 's',
                _ => '.',
            })
            .collect()
    }

    #[test]
    fn rules_table() {
        // (what, stuck samples, jump change per s, readings, verdicts)
        #[allow(clippy::type_complexity)]
        let rows: &[(&str, Option<u32>, Option<f64>, &[(i64, f64)], &str)] = &[
            (
                "a moving value is never stuck",
                Some(3),
                None,
                &[(0, 1.0), (1, 1.1), (2, 1.0), (3, 1.1)],
                "....",
            ),
            (
                "the third equal sample in a row is stuck",
                Some(3),
                None,
                &[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)],
                "..ss",
            ),
            (
                "a change ends it at once",
                Some(3),
                None,
                &[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.2), (4, 1.2)],
                "..s..",
            ),
            (
                "slow moves are no jump",
                None,
                Some(5.0),
                &[(0, 0.0), (1, 4.0), (2, 8.5), (3, 4.0)],
                "....",
            ),
            (
                "a lone spike is flagged, the return accepted",
                None,
                Some(5.0),
                &[(0, 0.0), (1, 60.0), (2, 0.5), (3, 0.4)],
                ".j..",
            ),
            (
                "a step confirmed by the next reading is accepted",
                None,
                Some(5.0),
                &[(0, 0.0), (1, 60.0), (2, 61.0), (3, 62.0)],
                ".j..",
            ),
            (
                "the allowance grows with the time since the last accepted value",
                None,
                Some(5.0),
                &[(0, 0.0), (20, 60.0)],
                "..",
            ),
            (
                "a downward jump counts too",
                None,
                Some(5.0),
                &[(0, 50.0), (1, 0.0), (2, 50.0)],
                ".j.",
            ),
            (
                "a second spike is measured from the accepted value",
                None,
                Some(5.0),
                &[(0, 0.0), (1, 60.0), (2, 0.0), (3, -60.0), (4, 0.0)],
                ".j.j.",
            ),
        ];
        for (what, stuck, jump, readings, want) in rows {
            let mut p = Plausibility::new(&spec(*stuck, *jump));
            assert_eq!(run(&mut p, readings), *want, "{what}");
        }
    }

    #[test]
    fn off_without_rules() {
        assert!(Plausibility::new(&spec(None, None)).is_off());
        assert!(!Plausibility::new(&spec(Some(2), None)).is_off());
    }
}
