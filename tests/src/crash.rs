//! What SIGKILLs under load cost, judged from what a subscriber received: per device, the
//! acquisition times of its readings should follow the poll interval without a hole,
//! except across each kill. There, only the polls between the device's last reading and
//! the kill can have been lost: read from the device but not yet written by the gateway
//! (in flight in the process). Telemetry written before the kill is in the page cache
//! and must all arrive.

use std::collections::BTreeMap;

/// The verdict over every device and kill.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CrashLoss {
    /// Polls missing while the gateway was running: never acceptable.
    pub missing_while_running: u64,
    /// Polls lost just before a kill, over all devices and kills.
    pub lost_at_kills: u64,
    /// The most lost by one device at one kill.
    pub worst_at_one_kill: u64,
    /// Readings received, after removing duplicates (a crash resends the in-flight window).
    pub received: u64,
}

/// `times` holds every reading's acquisition time per device (any order, duplicates
/// allowed); `kills` the wall-clock ms of each SIGKILL.
pub fn judge(times: &BTreeMap<String, Vec<i64>>, poll_ms: i64, kills: &[i64]) -> CrashLoss {
    let mut loss = CrashLoss::default();
    // A poll cycle's readings of one device share their block's time; jitter of a loaded
    // machine is allowed up to half an interval.
    let late = poll_ms + poll_ms / 2;
    for ts in times.values() {
        let mut ts = ts.clone();
        ts.sort_unstable();
        ts.dedup();
        loss.received += ts.len() as u64;
        for w in ts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b - a <= late {
                continue;
            }
            match kills.iter().find(|&&k| k >= a && k <= b) {
                Some(&k) => {
                    // Polls due after `a` and before the kill.
                    let lost = ((k - a - 1).max(0) / poll_ms) as u64;
                    loss.lost_at_kills += lost;
                    loss.worst_at_one_kill = loss.worst_at_one_kill.max(lost);
                }
                None => loss.missing_while_running += ((b - a + poll_ms / 2) / poll_ms - 1) as u64,
            }
        }
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_told_apart_from_kills() {
        let mut t = BTreeMap::new();
        // Every 100 ms. Kill at 1040, right after the poll at 1000: nothing lost; back at
        // 2000. A hole at 3000..3300 with no kill: two polls missing. The last reading
        // before the kill at 5250 is 5000: the polls of 5100 and 5200 were lost.
        let mut a: Vec<i64> = (0..=10).map(|i| i * 100).collect();
        a.extend((20..=30).map(|i| i * 100));
        a.extend((33..=50).map(|i| i * 100));
        a.extend((60..=65).map(|i| i * 100));
        a.push(500); // a duplicate (resent after the crash)
        t.insert("A".to_string(), a);
        let l = judge(&t, 100, &[1040, 5250]);
        assert_eq!(l.missing_while_running, 2, "{l:?}");
        assert_eq!(l.lost_at_kills, 2, "{l:?}");
        assert_eq!(l.worst_at_one_kill, 2);
        assert_eq!(l.received, 11 + 11 + 18 + 6);
    }
}
