//! Reconnect and retry delays: exponential with jitter, so thousands of gateways do not
//! hammer a central broker (nor instances of hazingest a store) the moment it comes back.

use rand::Rng;
use std::time::Duration;

/// Delays from `base` doubling up to `max`, each with equal jitter; `reset` after success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt: half of the current step fixed, half random
    /// ("equal jitter"), so there is always some wait and attempts spread out.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .base
            .saturating_mul(1 << self.attempt.min(20))
            .min(self.max);
        self.attempt += 1;
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        for _ in 0..10 {
            b.next_delay();
        }
        let late = b.next_delay();
        assert!(
            late >= Duration::from_secs(30) && late <= Duration::from_secs(60),
            "{late:?}"
        );
        let spread: std::collections::HashSet<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(spread.len() > 10, "delays are jittered");
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
