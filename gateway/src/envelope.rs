//! Who the gateway's messages are from, and their seqs: one counter per topic, growing
//! across restarts, shared by everything that makes messages (the pipeline's telemetry,
//! alarms and state, the store's gap reports).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hazgate_wire::{Envelope, TopicKind, VERSION};

#[derive(Debug, Clone)]
pub struct Origin {
    pub site: Arc<str>,
    pub gateway: Arc<str>,
}

impl Origin {
    pub fn envelope(&self, seq: u64) -> Envelope {
        Envelope {
            v: VERSION,
            site: self.site.clone(),
            gateway: self.gateway.clone(),
            seq,
        }
    }
}

/// The next seq of each topic.
#[derive(Debug)]
pub struct Seqs {
    next: [AtomicU64; TopicKind::ALL.len()],
}

impl Seqs {
    /// Continues above the highest seq per topic code that an earlier run used.
    pub fn after(max_by_topic: &BTreeMap<u8, u64>) -> Seqs {
        let next = TopicKind::ALL.map(|k| {
            AtomicU64::new(
                max_by_topic
                    .get(&k.code())
                    .map_or(1, |m| m.saturating_add(1)),
            )
        });
        Seqs { next }
    }

    /// When nothing of the earlier runs can be read (the store cannot open): seqs start
    /// from the wall clock (ms × 1000), above any counter an earlier run can have reached,
    /// so none is reused.
    pub fn from_clock(wall_ms: i64) -> Seqs {
        let base = (wall_ms.max(0) as u64).saturating_mul(1000);
        Seqs {
            next: TopicKind::ALL.map(|_| AtomicU64::new(base.max(1))),
        }
    }

    pub fn take(&self, topic: TopicKind) -> u64 {
        self.next[index(topic)].fetch_add(1, Ordering::Relaxed)
    }

    /// Never hand out a seq at or below `max` again (the store reopened and recovered it).
    pub fn raise_above(&self, topic: TopicKind, max: u64) {
        self.next[index(topic)].fetch_max(max.saturating_add(1), Ordering::Relaxed);
    }
}

fn index(topic: TopicKind) -> usize {
    TopicKind::ALL.iter().position(|k| *k == topic).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_above_the_last_run_and_never_goes_back() {
        let s = Seqs::after(&BTreeMap::from([(TopicKind::Telemetry.code(), 41)]));
        assert_eq!(s.take(TopicKind::Telemetry), 42);
        assert_eq!(s.take(TopicKind::Alarm), 1);
        s.raise_above(TopicKind::Telemetry, 10);
        assert_eq!(s.take(TopicKind::Telemetry), 43);
        s.raise_above(TopicKind::Telemetry, 99);
        assert_eq!(s.take(TopicKind::Telemetry), 100);
        let c = Seqs::from_clock(1_760_000_000_000);
        assert!(c.take(TopicKind::Alarm) > 1_000_000_000_000_000);
    }
}
