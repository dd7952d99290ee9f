//! Five-minute statistics per point (samples, good samples, min, max and mean of the good
//! values), from every poll, before report by exception thins the readings out. A period
//! is closed a little after it ends, so readings still on their way are counted in it;
//! one that arrives later still (a stalled pipeline, a wall clock stepped back) is left
//! out rather than sent as a second, partial statistic of a period already reported.

use std::collections::BTreeMap;
use std::sync::Arc;

use hazgate_wire::{PointStats, Quality, Reading, Value, STATS_PERIOD_MS};

use super::point_map::PointMap;

/// How long after its end a period still takes readings.
pub const GRACE_MS: i64 = 10_000;

#[derive(Debug)]
struct Acc {
    unit: Option<Arc<str>>,
    samples: u32,
    good: u32,
    numeric: u32,
    min: f64,
    max: f64,
    sum: f64,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            unit: None,
            samples: 0,
            good: 0,
            numeric: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }

    fn add(&mut self, r: &Reading) {
        self.samples = self.samples.saturating_add(1);
        // The unit read from the device may change; the same one is not copied again.
        if let Some(u) = &r.unit {
            if !self.unit.as_ref().is_some_and(|s| Arc::ptr_eq(s, u)) {
                self.unit = Some(Arc::clone(u));
            }
        }
        if r.quality != Quality::Good {
            return;
        }
        self.good = self.good.saturating_add(1);
        if let Some(Value::Number(x)) = r.value {
            if x.is_finite() {
                self.numeric += 1;
                self.min = self.min.min(x);
                self.max = self.max.max(x);
                self.sum += x;
            }
        }
    }

    fn finish(self, device: Arc<str>, point: Arc<str>) -> PointStats {
        let some = self.numeric > 0;
        PointStats {
            device,
            point,
            unit: self.unit,
            samples: self.samples,
            good: self.good,
            min: some.then_some(self.min),
            max: some.then_some(self.max),
            // Six significant digits, more than any transmitter resolves (and what compresses);
            // clamped so that rounding never puts the mean outside min..max.
            mean: some
                .then(|| significant(self.sum / self.numeric as f64, 6).clamp(self.min, self.max)),
        }
    }
}

fn period(r: &Reading) -> i64 {
    r.ts.div_euclid(STATS_PERIOD_MS) * STATS_PERIOD_MS
}

/// `x` rounded to `digits` significant digits.
fn significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// The open periods, by start (ms UTC).
#[derive(Debug, Default)]
pub struct PeriodStats {
    open: BTreeMap<i64, PointMap<Acc>>,
    /// Periods up to this start are reported; later readings for them are left out.
    closed_through: Option<i64>,
    /// Readings left out because their period was already reported.
    pub late: u64,
}

impl PeriodStats {
    pub fn add(&mut self, readings: &[Reading]) {
        // A batch is one device's poll: one period and one device to find, mostly.
        let same = |a: &Reading, b: &Reading| a.device == b.device && period(a) == period(b);
        for run in readings.chunk_by(same) {
            let period = period(&run[0]);
            if self.closed_through.is_some_and(|c| period <= c) {
                self.late += run.len() as u64;
                continue;
            }
            let points = self.open.entry(period).or_default().device(&run[0].device);
            for r in run {
                points.slot(&r.point, Acc::new).add(r);
            }
        }
    }

    /// The periods over by `wall_ms` (and their grace), oldest first: start and points.
    pub fn close_due(&mut self, wall_ms: i64) -> Vec<(i64, Vec<PointStats>)> {
        let mut out = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            let start = *entry.key();
            if start + STATS_PERIOD_MS + GRACE_MS > wall_ms {
                break;
            }
            let points = entry.remove();
            self.closed_through = Some(start);
            let mut list: Vec<PointStats> = points
                .into_entries()
                .map(|(d, p, a)| a.finish(d, p))
                .collect();
            list.sort_by(|a, b| (&a.device, &a.point).cmp(&(&b.device, &b.point)));
            out.push((start, list));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazgate_wire::Reason;

    fn r(point: &str, ts: i64, v: Option<f64>, good: bool) -> Reading {
        Reading {
            device: "D".into(),
            point: point.into(),
            ts,
            value: v.map(Value::Number),
            unit: Some("m".into()),
            quality: if good {
                Quality::Good
            } else {
                Quality::bad(Reason::Timeout, "no reply")
            },
            flags: Vec::new(),
        }
    }

    #[test]
    fn every_poll_counted_per_period_and_closed_after_grace() {
        let mut s = PeriodStats::default();
        let base = 1_700_000_100_000 / STATS_PERIOD_MS * STATS_PERIOD_MS;
        s.add(&[
            r("A", base + 1000, Some(2.0), true),
            r("A", base + 2000, Some(4.0), true),
            r("A", base + 3000, None, false),
            r("B", base + 1000, None, false),
            r("A", base + STATS_PERIOD_MS + 1, Some(9.0), true),
        ]);
        assert!(
            s.close_due(base + STATS_PERIOD_MS + GRACE_MS - 1)
                .is_empty(),
            "still in its grace"
        );
        // A reading stamped in the period, arriving late but within the grace.
        s.add(&[r("A", base + STATS_PERIOD_MS - 1, Some(3.0), true)]);
        let closed = s.close_due(base + STATS_PERIOD_MS + GRACE_MS);
        assert_eq!(closed.len(), 1);
        let (start, points) = &closed[0];
        assert_eq!(*start, base);
        let a = &points[0];
        assert_eq!((a.samples, a.good), (4, 3));
        assert_eq!((a.min, a.max, a.mean), (Some(2.0), Some(4.0), Some(3.0)));
        assert_eq!(super::significant(21.07857142857138, 6), 21.0786);
        assert_eq!(super::significant(0.000123456789, 6), 0.000123457);
        let b = &points[1];
        assert_eq!((b.samples, b.good, b.min, b.mean), (1, 0, None, None));
        // Too late now: left out, not reported twice.
        s.add(&[r("A", base + 5, Some(1.0), true)]);
        assert_eq!(s.late, 1);
        let next = s.close_due(base + 2 * STATS_PERIOD_MS + GRACE_MS);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1[0].samples, 1);
    }
}
