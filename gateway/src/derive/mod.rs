//! Derived points (freeboard, rainfall totals, displacement magnitude and rate): computed
//! from the readings of each acquisition, right after it and before alarms, so a derived
//! point is judged, stored and sent like any other. Which points and how is the site's
//! `derived` table (`firmware_config::site::derived`).
//!
//! A derived reading is computed when one of its inputs has a new reading. It takes the
//! latest reading of every input, so inputs on other devices need no common schedule; its
//! quality is the worst of theirs, it has no value when an input has none, and it carries
//! their flags that keep a reading from being judged (calibration, impossible jump).
//! Totals and rates keep their window in memory: after a start, or across a silence of
//! the input, they cover less than their window and say so (`partial_window`).

mod cumulative;
mod window;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use firmware_config::alarm::PointAt;
use firmware_config::site::derived::{Derived, DerivedOp, Operand};
use firmware_config::SiteConfig;
use hazgate_wire::{Flag, Quality, Reading, Reason, Value};

use cumulative::{Cumulative, Kind};
use window::Window;

type PointKey = (Arc<str>, Arc<str>);

fn point_key(at: &PointAt) -> PointKey {
    (at.device.as_str().into(), at.point.as_str().into())
}

/// The latest reading of an input.
#[derive(Debug, Clone)]
struct Latest {
    ts: i64,
    value: Option<f64>,
    quality: Quality,
    flags: Vec<Flag>,
}

impl Latest {
    fn of(r: &Reading) -> Self {
        let value = match &r.quality {
            Quality::Bad { .. } => None,
            _ => r
                .value
                .as_ref()
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite()),
        };
        Latest {
            ts: r.ts,
            value,
            quality: r.quality.clone(),
            flags: r
                .flags
                .iter()
                .copied()
                .filter(|f| f.withholds_judgement())
                .collect(),
        }
    }
}

/// What a windowed operation remembers.
#[derive(Debug, Clone)]
enum Memory {
    None,
    Total { sum: Cumulative, window: Window },
    Rate { window: Window, per_ms: f64 },
}

struct Point {
    spec: Derived,
    key: PointKey,
    inputs: Vec<PointKey>,
    unit: Option<Arc<str>>,
    memory: Memory,
}

#[derive(Default)]
pub struct Deriver {
    points: Vec<Point>,
    /// Every point some derived point reads.
    watched: HashSet<PointKey>,
    latest: HashMap<PointKey, Latest>,
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Deriver {
    /// The site's derived points, keeping the windows of those that `previous` computed
    /// the same way (a reload does not restart a 24 h total).
    pub fn new(site: &SiteConfig, previous: Option<Deriver>) -> Self {
        let mut kept: HashMap<PointKey, Point> = previous
            .map(|p| p.points.into_iter().map(|p| (p.key.clone(), p)).collect())
            .unwrap_or_default();
        let poll_of = |device: &str| site.device(device).map_or(60_000, |d| ms(d.poll).max(1000));
        let points: Vec<Point> = site
            .derived
            .iter()
            .map(|spec| {
                let key: PointKey = (
                    site.devices[spec.device].id.as_str().into(),
                    spec.id.as_str().into(),
                );
                if let Some(old) = kept.remove(&key).filter(|o| o.spec.op == spec.op) {
                    return Point {
                        spec: spec.clone(),
                        ..old
                    };
                }
                let memory = match &spec.op {
                    DerivedOp::Total { of, over, per } => {
                        let kind = match per {
                            Some(p) => Kind::Integral {
                                per_ms: ms(*p) as f64,
                            },
                            None => Kind::Counter,
                        };
                        // An integral does not bridge more than five missed polls.
                        let sum = Cumulative::new(kind, 5 * poll_of(&of.device));
                        Memory::Total {
                            sum,
                            window: Window::new(ms(*over)),
                        }
                    }
                    DerivedOp::Rate { over, per, .. } => Memory::Rate {
                        window: Window::new(ms(*over)),
                        per_ms: ms(*per) as f64,
                    },
                    _ => Memory::None,
                };
                Point {
                    inputs: spec.op.inputs().into_iter().map(point_key).collect(),
                    unit: spec.unit.as_deref().map(Into::into),
                    spec: spec.clone(),
                    key,
                    memory,
                }
            })
            .collect();
        let watched = points.iter().flat_map(|p| p.inputs.clone()).collect();
        Deriver {
            points,
            watched,
            latest: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Appends the derived readings one acquisition (at monotonic `clock`) gives.
    pub fn apply(&mut self, clock: i64, readings: &mut Vec<Reading>) {
        if self.points.is_empty() {
            return;
        }
        let mut fresh: HashSet<PointKey> = HashSet::new();
        for r in readings.iter() {
            let k = (r.device.clone(), r.point.clone());
            if self.watched.contains(&k) {
                self.latest.insert(k.clone(), Latest::of(r));
                fresh.insert(k);
            }
        }
        if fresh.is_empty() {
            return;
        }
        for i in 0..self.points.len() {
            if !self.points[i].inputs.iter().any(|k| fresh.contains(k)) {
                continue;
            }
            let Some(r) = self.compute(i, clock) else {
                continue;
            };
            let k = self.points[i].key.clone();
            if self.watched.contains(&k) {
                self.latest.insert(k.clone(), Latest::of(&r));
                fresh.insert(k);
            }
            readings.push(r);
        }
    }

    fn compute(&mut self, i: usize, clock: i64) -> Option<Reading> {
        let p = &mut self.points[i];
        let inputs: Vec<(&PointKey, &Latest)> = p
            .inputs
            .iter()
            .map(|k| self.latest.get(k).map(|l| (k, l)))
            .collect::<Option<_>>()?;
        let ts = inputs.iter().map(|(_, l)| l.ts).max()?;
        let mut quality = Quality::Good;
        let mut flags: Vec<Flag> = Vec::new();
        for (k, l) in &inputs {
            quality = quality.worst(match &l.quality {
                Quality::Good => Quality::Good,
                Quality::Uncertain { reason, detail } => {
                    Quality::uncertain(*reason, format!("{}.{}: {detail}", k.0, k.1))
                }
                Quality::Bad { reason, detail } => {
                    Quality::bad(*reason, format!("{}.{}: {detail}", k.0, k.1))
                }
            });
            if l.value.is_none() && quality.is_good() {
                quality = Quality::bad(
                    Reason::SensorFault,
                    format!("{}.{} has no number to compute with", k.0, k.1),
                );
            }
            for f in &l.flags {
                if !flags.contains(f) {
                    flags.push(*f);
                }
            }
        }
        let values: Option<Vec<f64>> = inputs.iter().map(|(_, l)| l.value).collect();
        let withheld = !flags.is_empty();
        let value = match (&p.spec.op, values) {
            (_, None) => None,
            (DerivedOp::Difference(a, b), Some(v)) => {
                let mut it = v.into_iter();
                let mut take = |o: &Operand| match o {
                    Operand::Constant(x) => Some(*x),
                    Operand::Point(_) => it.next(),
                };
                let a = take(a)?;
                Some(a - take(b)?)
            }
            (DerivedOp::Magnitude(_), Some(v)) => Some(v.iter().map(|x| x * x).sum::<f64>().sqrt()),
            (DerivedOp::Total { over, .. }, Some(v)) => {
                let Memory::Total { sum, window } = &mut p.memory else {
                    return None;
                };
                // Test gas or an impossible value is no rain: not counted, the window
                // goes on from the last sum.
                let total = if withheld {
                    let last = window.last()?;
                    window.push(clock, last);
                    last
                } else {
                    let s = sum.add(clock, v[0]);
                    window.push(clock, s);
                    s
                };
                let start = window.start(clock)?;
                let gap = sum.gap_at.is_some_and(|g| g > clock - window.over_ms());
                if start.partial || gap {
                    quality = quality.worst(partial(clock - start.clock, ms(*over), gap));
                }
                Some(total - start.value)
            }
            (DerivedOp::Rate { over, .. }, Some(v)) => {
                let Memory::Rate { window, per_ms } = &mut p.memory else {
                    return None;
                };
                if !withheld {
                    window.push(clock, v[0]);
                }
                let start = window.start(clock)?;
                let span = clock - start.clock;
                if span <= 0 {
                    // One sample: no rate yet.
                    return None;
                }
                if start.partial {
                    quality = quality.worst(partial(span, ms(*over), false));
                }
                Some((v[0] - start.value) / span as f64 * *per_ms)
            }
        };
        let value = value.filter(|v| v.is_finite());
        if value.is_none() && !matches!(quality, Quality::Bad { .. }) {
            quality = Quality::bad(Reason::SensorFault, "the result is not a finite number");
        }
        Some(Reading {
            device: p.key.0.clone(),
            point: p.key.1.clone(),
            ts,
            value: value.map(Value::Number),
            unit: p.unit.clone(),
            quality,
            flags,
        })
    }
}

fn partial(covered_ms: i64, over_ms: i64, gap: bool) -> Quality {
    let f = |ms: i64| {
        firmware_config::quantity::format_duration(std::time::Duration::from_millis(
            ms.max(0) as u64
        ))
    };
    Quality::uncertain(
        Reason::PartialWindow,
        if gap {
            format!(
                "the input was silent or reset within the last {}: the total misses that part",
                f(over_ms)
            )
        } else {
            format!(
                "covers {} of {}: the gateway has not been running that long",
                f(covered_ms),
                f(over_ms)
            )
        },
    )
}

#[cfg(test)]
mod tests;
