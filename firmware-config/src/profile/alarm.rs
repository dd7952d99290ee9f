//! Alarm settings as written (`[point.alarm]` in a profile, or a site's override) and their
//! checks: a ladder must climb in severity the way its direction goes, so "red" can never
//! trip before "yellow".

use serde::Deserialize;
use toml::Spanned;

use crate::alarm::{
    AlarmSpec, Calibration, Direction, Feedback, Jump, Level, Limit, Linkage, PointAt, RateLimit,
    Release, Stuck,
};
use crate::error::Diagnostics;
use crate::serde_types::Interval;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub level: Level,
    pub label: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub change: f64,
    pub within: Interval,
    /// `rising`, `falling` or `both` (the default).
    #[serde(default)]
    pub direction: crate::alarm::RateDirection,
    pub level: Level,
    pub label: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommLoss {
    pub after: Interval,
    pub level: Level,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLinkage {
    pub level: Level,
    pub device: String,
    pub point: String,
    pub on: Option<f64>,
    pub off: Option<f64>,
    pub release_below: Option<f64>,
    pub release_above: Option<f64>,
    #[serde(default)]
    pub latch: bool,
    pub reset: Option<RawPointAt>,
    pub feedback: Option<RawFeedback>,
    #[serde(default)]
    pub fail_safe: bool,
    #[serde(default)]
    pub silence_on_ack: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPointAt {
    pub device: String,
    pub point: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeedback {
    pub device: String,
    pub point: String,
    pub within: Interval,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlarm {
    /// The unit the limits are in; the point's own unit when not given.
    pub unit: Option<Spanned<String>>,
    #[serde(default)]
    pub limits: Vec<RawLimit>,
    pub deadband: Option<f64>,
    pub on_delay: Option<Interval>,
    pub off_delay: Option<Interval>,
    pub rate: Option<RawRate>,
    pub comm_loss: Option<RawCommLoss>,
    pub sensor_fault: Option<Level>,
    pub out_of_range: Option<Level>,
    pub calibration: Option<RawCalibration>,
    pub stuck: Option<Spanned<RawStuck>>,
    pub jump: Option<Spanned<RawJump>>,
    #[serde(default)]
    pub linkage: Vec<RawLinkage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalibration {
    /// How long a calibration may last before it is an alarm.
    pub max: Interval,
    pub level: Level,
    /// A switch input that reads on while the sensor is being calibrated.
    pub input: Option<RawPointAt>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStuck {
    /// Samples in a row with exactly the same value.
    pub samples: i64,
    pub level: Level,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJump {
    /// The most the value can physically move per `per`.
    pub change: f64,
    pub per: Interval,
    pub level: Level,
}

const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(3600);

pub fn resolve_alarm(
    raw: &Spanned<RawAlarm>,
    diag: &mut Diagnostics,
    label: &str,
) -> Option<AlarmSpec> {
    let at = Some(raw.span());
    let a = raw.get_ref();
    let field = |f: &str| format!("{label}.alarm.{f}");
    let before = diag.errors.len();
    let mut limits = Vec::new();
    for (i, l) in a.limits.iter().enumerate() {
        let (direction, value) = match (l.above, l.below) {
            (Some(v), None) => (Direction::Above, v),
            (None, Some(v)) => (Direction::Below, v),
            _ => {
                diag.error(
                    at.clone(),
                    field(&format!("limits[{i}]")),
                    "give exactly one of `above` or `below`",
                );
                continue;
            }
        };
        if !value.is_finite() {
            diag.error(
                at.clone(),
                field(&format!("limits[{i}]")),
                "the limit must be a finite number",
            );
            continue;
        }
        let label = checked_label(&l.label, &field(&format!("limits[{i}].label")), diag);
        limits.push(Limit {
            direction,
            value,
            level: l.level,
            label,
        });
    }
    limits.sort_by_key(|l| l.level);
    for direction in [Direction::Above, Direction::Below] {
        let ladder: Vec<&Limit> = limits.iter().filter(|l| l.direction == direction).collect();
        for w in ladder.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let climbs = match direction {
                Direction::Above => hi.value > lo.value,
                Direction::Below => hi.value < lo.value,
            };
            if lo.level == hi.level {
                diag.error(
                    at.clone(),
                    field("limits"),
                    format!(
                        "two `{}` limits at {}: one level per direction",
                        lo.level, hi.value
                    ),
                );
            } else if !climbs {
                let side = if direction == Direction::Above {
                    "above"
                } else {
                    "below"
                };
                diag.error(at.clone(), field("limits"), format!("the {} limit ({}) must lie {side} the {} one ({}): a more severe level is further from normal", hi.level, hi.value, lo.level, lo.value));
            }
        }
    }
    let deadband = a.deadband.unwrap_or(0.0);
    if !deadband.is_finite() || deadband < 0.0 {
        diag.error(
            at.clone(),
            field("deadband"),
            "must be 0 or more, in the point's unit",
        );
    }
    let mut delay = |v: Option<Interval>, f: &str| {
        let d = v.map(|i| i.0).unwrap_or_default();
        if d > MAX_DELAY {
            diag.error(
                at.clone(),
                field(f),
                "longer than an hour: an alarm that late is no alarm",
            );
        }
        d
    };
    let on_delay = delay(a.on_delay, "on_delay");
    let off_delay = delay(a.off_delay, "off_delay");
    let rate = a.rate.as_ref().and_then(|r| {
        if !(r.change.is_finite() && r.change > 0.0) || r.within.0.is_zero() {
            diag.error(at.clone(), field("rate"), "write { change = 5.0, within = \"1min\", level = \"orange\" } with a change above 0");
            return None;
        }
        let label = checked_label(&r.label, &field("rate.label"), diag);
        Some(RateLimit {
            change: r.change,
            window: r.within.0,
            direction: r.direction,
            level: r.level,
            label,
        })
    });
    let comm_loss = a.comm_loss.as_ref().map(|c| (c.after.0, c.level));
    let calibration = a.calibration.as_ref().map(|c| {
        if c.max.0.is_zero() || c.max.0 > std::time::Duration::from_secs(86_400) {
            diag.error(
                at.clone(),
                field("calibration.max"),
                "use more than 0 and at most a day, e.g. \"30min\"",
            );
        }
        Calibration {
            max: c.max.0,
            level: c.level,
            input: c.input.as_ref().map(|i| PointAt {
                device: i.device.clone(),
                point: i.point.clone(),
            }),
        }
    });
    let stuck = a.stuck.as_ref().map(|s| {
        let (at, s) = (Some(s.span()), s.get_ref());
        if !(2..=100_000).contains(&s.samples) {
            diag.error(
                at,
                field("stuck.samples"),
                "use 2 to 100000 samples in a row, e.g. 60",
            );
        }
        Stuck {
            samples: s.samples.clamp(2, 100_000) as u32,
            level: s.level,
        }
    });
    let jump = a.jump.as_ref().map(|j| {
        let (at, j) = (Some(j.span()), j.get_ref());
        if !(j.change.is_finite() && j.change > 0.0) {
            diag.error(
                at.clone(),
                field("jump.change"),
                "the largest physical change must be a positive number",
            );
        }
        if j.per.0.is_zero() {
            diag.error(at, field("jump.per"), "use a duration, e.g. \"1s\"");
        }
        Jump {
            change: j.change,
            per: j.per.0,
            level: j.level,
        }
    });
    let linkage = a
        .linkage
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let field = |f: &str| field(&format!("linkage[{i}].{f}"));
            let release = match (l.release_below, l.release_above) {
                (Some(_), Some(_)) => {
                    diag.error(
                        at.clone(),
                        field("release_below"),
                        "give `release_below` or `release_above`, not both",
                    );
                    None
                }
                (Some(x), None) => Some(Release::Below(x)),
                (None, Some(x)) => Some(Release::Above(x)),
                (None, None) => None,
            };
            if let Some(r) = release {
                check_release(r, l.level, &limits, &at, &field("release_below"), diag);
            }
            if l.silence_on_ack && l.latch {
                diag.error(
                    at.clone(),
                    field("silence_on_ack"),
                    "a latched output is released by its reset, not by an acknowledgement; use one or the other",
                );
            }
            if l.reset.is_some() && !l.latch {
                diag.error(
                    at.clone(),
                    field("reset"),
                    "a reset input only means something with `latch = true`",
                );
            }
            let feedback = l.feedback.as_ref().map(|f| {
                if f.within.0.is_zero() || f.within.0 > MAX_DELAY {
                    diag.error(
                        at.clone(),
                        field("feedback.within"),
                        "use more than 0 and at most an hour, e.g. \"5s\"",
                    );
                }
                Feedback {
                    at: PointAt {
                        device: f.device.clone(),
                        point: f.point.clone(),
                    },
                    within: f.within.0,
                }
            });
            Linkage {
                level: l.level,
                device: l.device.clone(),
                point: l.point.clone(),
                on: l.on.unwrap_or(1.0),
                off: l.off.unwrap_or(0.0),
                release,
                latch: l.latch,
                reset: l.reset.as_ref().map(|r| PointAt {
                    device: r.device.clone(),
                    point: r.point.clone(),
                }),
                feedback,
                fail_safe: l.fail_safe,
                silence_on_ack: l.silence_on_ack,
            }
        })
        .collect();
    if diag.errors.len() > before {
        return None;
    }
    Some(AlarmSpec {
        unit: a.unit.as_ref().map(|u| u.get_ref().clone()),
        limits,
        deadband,
        on_delay,
        off_delay,
        rate,
        comm_loss,
        sensor_fault: a.sensor_fault,
        out_of_range: a.out_of_range,
        calibration,
        stuck,
        jump,
        linkage,
    })
}

/// [`resolve_alarm`] for a point in `point_unit`: limits are numbers in a unit, so a
/// ladder stated in another unit than the point's is refused, one stated in none takes
/// the point's.
pub fn resolve_alarm_in_unit(
    raw: &Spanned<RawAlarm>,
    point_unit: Option<&str>,
    diag: &mut Diagnostics,
    label: &str,
) -> Option<AlarmSpec> {
    let mut spec = resolve_alarm(raw, diag, label)?;
    match (&spec.unit, point_unit) {
        (Some(theirs), Some(ours)) if theirs != ours => {
            let span = raw
                .get_ref()
                .unit
                .as_ref()
                .map(|u| u.span())
                .unwrap_or(raw.span());
            diag.error(
                Some(span),
                format!("{label}.alarm.unit"),
                format!("the limits are in \"{theirs}\" but the point reports \"{ours}\"; state the limits in \"{ours}\" (override the point's `alarm` as a whole)"),
            );
        }
        (None, Some(ours)) => spec.unit = Some(ours.to_string()),
        _ => {}
    }
    Some(spec)
}

/// A release threshold must lie on the safe side of the limit that operates the output:
/// `release_below` at or under an `above` limit at that level (methane at a coal face:
/// cut at 1.5, restore below 1.0; in a return airway: cut at 1.0, restore below 1.0),
/// `release_above` at or over a `below` limit.
fn check_release(
    release: Release,
    level: Level,
    limits: &[Limit],
    at: &Option<std::ops::Range<usize>>,
    field: &str,
    diag: &mut Diagnostics,
) {
    let operating: Vec<&Limit> = limits.iter().filter(|l| l.level >= level).collect();
    let wrong = match release {
        Release::Below(x) => {
            !x.is_finite()
                || operating
                    .iter()
                    .any(|l| l.direction == Direction::Below || x > l.value)
        }
        Release::Above(x) => {
            !x.is_finite()
                || operating
                    .iter()
                    .any(|l| l.direction == Direction::Above || x < l.value)
        }
    };
    if wrong {
        diag.error(
            at.clone(),
            field,
            "the release threshold must lie on the safe side of every limit that operates the output (`release_below` under `above` limits, `release_above` over `below` limits)",
        );
    }
}

/// A label travels in alarm events and state, and becomes a store tag and page text: it
/// is judged by the same rule as the central ingest, which would refuse the alarm event.
fn checked_label(
    label: &Option<Spanned<String>>,
    field: &str,
    diag: &mut Diagnostics,
) -> Option<String> {
    let l = label.as_ref()?;
    if let Err(e) = hazgate_wire::validate::label(l.get_ref()) {
        diag.error(Some(l.span()), field, e.to_string());
    }
    Some(l.get_ref().clone())
}
