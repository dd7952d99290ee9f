//! Turns an input into a sum that only grows, so a window's total is a difference: a
//! counter's increments (a reset or wrap loses that one step, and is remembered as a
//! gap), or a rate per time integrated by the trapezoid rule (a silence longer than the
//! input's allowance is not bridged, and is a gap).

#[derive(Debug, Clone)]
pub enum Kind {
    Counter,
    /// The input is an amount per `per_ms` (mm/h: per 3 600 000 ms).
    Integral {
        per_ms: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Cumulative {
    kind: Kind,
    /// Longest silence bridged (integrals only; a counter carries its own sum).
    max_gap: i64,
    last: Option<(i64, f64)>,
    sum: f64,
    /// Monotonic time of the latest step that could not be counted.
    pub gap_at: Option<i64>,
}

impl Cumulative {
    pub fn new(kind: Kind, max_gap_ms: i64) -> Self {
        Cumulative {
            kind,
            max_gap: max_gap_ms,
            last: None,
            sum: 0.0,
            gap_at: None,
        }
    }

    /// Takes the input's value at `clock`; returns the sum so far.
    pub fn add(&mut self, clock: i64, value: f64) -> f64 {
        if let Some((t, v)) = self.last {
            let dt = clock - t;
            match self.kind {
                Kind::Counter if value >= v => self.sum += value - v,
                Kind::Counter => self.gap_at = Some(clock),
                Kind::Integral { .. } if dt > self.max_gap => self.gap_at = Some(clock),
                Kind::Integral { per_ms } => {
                    // A negative rate (noise around zero) adds nothing.
                    self.sum += ((v + value) / 2.0).max(0.0) * dt as f64 / per_ms
                }
            }
        }
        self.last = Some((clock, value));
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_sums_its_increments_and_survives_a_reset() {
        let mut c = Cumulative::new(Kind::Counter, 0);
        assert_eq!(c.add(0, 100.0), 0.0);
        assert_eq!(c.add(1, 102.0), 2.0);
        assert_eq!(c.add(2, 1.0), 2.0, "reset: that step is lost");
        assert_eq!(c.gap_at, Some(2));
        assert_eq!(c.add(3, 4.0), 5.0);
    }

    #[test]
    fn a_rate_integrates_and_a_long_silence_is_a_gap() {
        // 36 mm/h for 100 s = 1 mm.
        let mut c = Cumulative::new(
            Kind::Integral {
                per_ms: 3_600_000.0,
            },
            600_000,
        );
        c.add(0, 36.0);
        let s = c.add(100_000, 36.0);
        assert!((s - 1.0).abs() < 1e-9, "{s}");
        assert_eq!(c.gap_at, None);
        let mut c = Cumulative::new(
            Kind::Integral {
                per_ms: 3_600_000.0,
            },
            60_000,
        );
        c.add(0, 36.0);
        assert_eq!(c.add(100_000, 36.0), 0.0, "not bridged");
        assert_eq!(
            c.gap_at,
            Some(100_000),
            "100 s is longer than the 60 s allowance"
        );
    }
}
