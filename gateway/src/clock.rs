//! The two clocks of the gateway. The wall clock only stamps readings and events; every
//! duration (alarm delays, comm loss, rate windows, scheduling, backoff) runs on monotonic
//! time, so a wall-clock step (NTP catching up, an operator setting the date) neither
//! delays nor hastens an alarm. A wall clock that is implausible is detected and reported,
//! and the readings it stamps are flagged, never refused.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// When this binary was built (ms UTC): no reading of it can be older.
pub const BUILD_MS: i64 = parse_ms(env!("HAZGATE_BUILD_MS"));
/// A wall clock more than this far past the build is taken as wrong too.
const FUTURE_MS: i64 = 30 * 365 * 24 * 3_600_000;
/// Slack below the build time, for a build machine whose clock ran ahead.
const BUILD_SLACK_MS: i64 = 24 * 3_600_000;
/// A wall clock that moved this much against monotonic time has stepped.
const STEP_MS: i64 = 2_000;

const fn parse_ms(s: &str) -> i64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: i64 = 0;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as i64;
        i += 1;
    }
    n
}

struct Anchor {
    wall_ms: i64,
    at: Instant,
}

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor {
        wall_ms: wall_ms(),
        at: Instant::now(),
    })
}

/// The wall clock, ms UTC: for stamping only (the same clock as hazingest's).
pub fn wall_ms() -> i64 {
    hazgate_common::now_ms()
}

/// Monotonic ms, on the wall clock's scale as it was when the process started: it never
/// steps, and it stays close to wall time, so times an alarm state saved still mean
/// something to the next run.
pub fn mono_ms() -> i64 {
    let a = anchor();
    a.wall_ms + a.at.elapsed().as_millis() as i64
}

/// A wall time no correct clock of a running gateway shows: before this binary was built,
/// or decades after.
pub fn plausible(wall_ms: i64) -> bool {
    (BUILD_MS - BUILD_SLACK_MS..=BUILD_MS.saturating_add(FUTURE_MS)).contains(&wall_ms)
}

/// Watches the wall clock against monotonic time: counts steps, says whether the clock is
/// plausible now. Shared by the pipeline (which flags readings) and the status reports.
#[derive(Debug, Default)]
pub struct ClockWatch {
    /// wall - mono at the last look; 0 before the first.
    offset: AtomicI64,
    steps: AtomicU64,
    implausible: std::sync::atomic::AtomicBool,
}

/// What one look at the clock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockLook {
    pub wall_ms: i64,
    pub mono_ms: i64,
    pub plausible: bool,
    /// The wall clock moved by this much against monotonic time since the last look.
    pub stepped_ms: Option<i64>,
}

impl ClockWatch {
    pub fn look(&self) -> ClockLook {
        let (wall, mono) = (wall_ms(), mono_ms());
        let offset = wall - mono;
        let before = self.offset.swap(offset, Ordering::Relaxed);
        let stepped = (before != 0 && (offset - before).abs() >= STEP_MS).then(|| offset - before);
        if stepped.is_some() {
            self.steps.fetch_add(1, Ordering::Relaxed);
        }
        let plausible = plausible(wall);
        self.implausible.store(!plausible, Ordering::Relaxed);
        ClockLook {
            wall_ms: wall,
            mono_ms: mono,
            plausible,
            stepped_ms: stepped,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// As of the last look (plausible until the first).
    pub fn is_plausible(&self) -> bool {
        !self.implausible.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_time_is_recorded_and_judges_clocks() {
        const { assert!(BUILD_MS > 1_700_000_000_000, "built after 2023") };
        assert!(plausible(wall_ms()));
        assert!(!plausible(0), "an unset clock at 1970");
        assert!(!plausible(BUILD_MS - 2 * BUILD_SLACK_MS));
        assert!(!plausible(BUILD_MS + 2 * FUTURE_MS));
    }

    #[test]
    fn monotonic_time_starts_at_the_wall_clock_and_grows() {
        let (a, w) = (mono_ms(), wall_ms());
        assert!((a - w).abs() < 5_000);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(mono_ms() >= a + 5);
    }

    #[test]
    fn a_steady_clock_has_no_steps() {
        let w = ClockWatch::default();
        assert_eq!(w.look().stepped_ms, None);
        assert_eq!(w.look().stepped_ms, None);
        assert_eq!(w.steps(), 0);
        assert!(w.is_plausible());
    }
}
