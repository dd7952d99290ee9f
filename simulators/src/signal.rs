//! What a point's engineering value does over simulated time: the profile's signal
//! (baseline, noise, daily cycle, counter), or what a scenario or operator imposes.

use firmware_config::profile::Simulate;
use rand::Rng;

/// Seconds in the daily cycle.
const DAY: f64 = 86_400.0;

/// What drives a point right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Drive {
    /// The profile's `simulate` signal.
    Profile,
    /// The profile's signal around another baseline (`normal = X`).
    Baseline(f64),
    /// A fixed value (`set`).
    Hold(f64),
    /// A straight line from `from` at `start` to `to` at `start + over`, then held.
    Ramp {
        from: f64,
        to: f64,
        start: f64,
        over: f64,
    },
}

/// A point's value model.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub simulate: Simulate,
    pub drive: Drive,
    /// Helper registers (status, unit code, decimals) hold their baseline exactly: a
    /// noisy decimals register would make the value jump by powers of ten.
    pub constant: bool,
}

impl Signal {
    pub fn new(simulate: Simulate, constant: bool) -> Self {
        Signal {
            simulate,
            drive: Drive::Profile,
            constant,
        }
    }

    /// The value at `t` simulated seconds since start.
    pub fn value(&self, t: f64, rng: &mut impl Rng) -> f64 {
        let baseline = match self.drive {
            Drive::Hold(v) => return v,
            Drive::Ramp {
                from,
                to,
                start,
                over,
            } => {
                let f = if over <= 0.0 {
                    1.0
                } else {
                    ((t - start) / over).clamp(0.0, 1.0)
                };
                return from + (to - from) * f;
            }
            Drive::Profile => self.simulate.normal,
            Drive::Baseline(v) => v,
        };
        if self.constant {
            return baseline;
        }
        let s = &self.simulate;
        let mut v = baseline + s.per_second * t;
        if s.daily != 0.0 {
            v += s.daily * (std::f64::consts::TAU * t / DAY).sin();
        }
        if s.noise > 0.0 {
            v += s.noise * gaussian(rng);
        }
        v
    }
}

/// A standard normal sample (Box–Muller): rand 0.9 has no distributions of its own and
/// this is all the noise model needs.
pub fn gaussian(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln stays finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    fn sim(normal: f64, noise: f64, daily: f64, per_second: f64) -> Simulate {
        Simulate {
            normal,
            noise,
            daily,
            per_second,
            follows: None,
        }
    }

    #[test]
    fn profile_signal() {
        let mut rng = SmallRng::seed_from_u64(1);
        let s = Signal::new(sim(10.0, 0.0, 2.0, 0.5), false);
        assert_eq!(s.value(0.0, &mut rng), 10.0);
        assert!((s.value(DAY / 4.0, &mut rng) - (10.0 + 2.0 + 0.5 * DAY / 4.0)).abs() < 1e-9);
        let noisy = Signal::new(sim(0.0, 1.0, 0.0, 0.0), false);
        let n = 2000;
        let mean = (0..n).map(|_| noisy.value(0.0, &mut rng)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.1, "mean {mean}");
    }

    #[test]
    fn drives() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut s = Signal::new(sim(5.0, 1.0, 0.0, 0.0), true);
        assert_eq!(s.value(100.0, &mut rng), 5.0);
        s.drive = Drive::Ramp {
            from: 0.0,
            to: 60.0,
            start: 10.0,
            over: 40.0,
        };
        assert_eq!(s.value(0.0, &mut rng), 0.0);
        assert_eq!(s.value(30.0, &mut rng), 30.0);
        assert_eq!(s.value(1000.0, &mut rng), 60.0);
        s.drive = Drive::Hold(12.5);
        assert_eq!(s.value(1.0, &mut rng), 12.5);
        s.drive = Drive::Baseline(7.0);
        assert_eq!(s.value(1.0, &mut rng), 7.0);
    }
}
