//! The wall clock, for stamping what happened when. Durations belong on a monotonic clock
//! (the gateway keeps its own in `hazgate::clock`); this is only "now" as the calendar says.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, ms since the Unix epoch (UTC); 0 if the clock is set before 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_after_2020() {
        assert!(super::now_ms() > 1_577_836_800_000);
    }
}
