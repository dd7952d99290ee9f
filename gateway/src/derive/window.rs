//! A time window of samples on the monotonic clock, thinned to a bounded count: enough to
//! find the value at the window's start to within 1/512 of the window.

use std::collections::VecDeque;

/// Samples kept per window, at most (plus the one at or before its start).
const RESOLUTION: i64 = 512;

#[derive(Debug, Clone)]
pub struct Window {
    over: i64,
    /// Samples closer together than this replace each other (the newer stays).
    bucket: i64,
    samples: VecDeque<(i64, f64)>,
}

/// The sample a window's result is measured from, and whether it lies inside the window
/// (the history does not reach back to its start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Start {
    pub clock: i64,
    pub value: f64,
    pub partial: bool,
}

impl Window {
    pub fn new(over_ms: i64) -> Self {
        Window {
            over: over_ms.max(1),
            bucket: (over_ms / RESOLUTION).max(1),
            samples: VecDeque::new(),
        }
    }

    pub fn over_ms(&self) -> i64 {
        self.over
    }

    /// Adds a sample taken at `clock` (not before the last one).
    pub fn push(&mut self, clock: i64, value: f64) {
        let n = self.samples.len();
        if n >= 2 && clock - self.samples[n - 2].0 < self.bucket {
            self.samples[n - 1] = (clock, value);
        } else if self.samples.back().is_none_or(|&(t, _)| clock >= t) {
            self.samples.push_back((clock, value));
        }
        // Keep one sample at or before the window's start.
        let start = clock - self.over;
        while self.samples.len() >= 2 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
    }

    /// Where the window that ends at `clock` starts.
    pub fn start(&self, clock: i64) -> Option<Start> {
        let &(t, v) = self.samples.front()?;
        Some(Start {
            clock: t,
            value: v,
            partial: t > clock - self.over,
        })
    }

    /// The newest sample's value.
    pub fn last(&self) -> Option<f64> {
        self.samples.back().map(|&(_, v)| v)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_value_at_the_start_and_stays_bounded() {
        let mut w = Window::new(3_600_000);
        for s in 0..=7200 {
            w.push(s * 1000, s as f64);
        }
        let start = w.start(7_200_000).unwrap();
        assert!(!start.partial);
        // Within one bucket (1/512 h ≈ 7 s) of 3600 s.
        assert!((3593.0..=3600.0).contains(&start.value), "{start:?}");
        assert!(w.len() <= RESOLUTION as usize + 8, "{}", w.len());
    }

    #[test]
    fn a_short_history_is_partial() {
        let mut w = Window::new(60_000);
        w.push(0, 1.0);
        w.push(10_000, 2.0);
        assert_eq!(
            w.start(10_000),
            Some(Start {
                clock: 0,
                value: 1.0,
                partial: true
            })
        );
        assert_eq!(Window::new(1000).start(0), None);
    }
}
