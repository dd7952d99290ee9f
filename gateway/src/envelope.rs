//! Who the gateway's messages are from, and their seqs: one counter per topic, growing
//! across restarts, shared by everything that makes messages (the pipeline's telemetry,
//! alarms and state, the store's gap reports).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hazgate_wire::{Envelope, TopicKind, VERSION};

use crate::store::seq_block;

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

/// The next seq of each topic, and the durable ceiling reserved for it
/// ([`crate::store::seq_block`]; `u64::MAX` while nothing is reserved).
#[derive(Debug)]
pub struct Seqs {
    next: [AtomicU64; TopicKind::ALL.len()],
    ceiling: [AtomicU64; TopicKind::ALL.len()],
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
        Seqs {
            next,
            ceiling: unreserved(),
        }
    }

    /// When nothing of the earlier runs can be read (the store cannot open): seqs start
    /// from the wall clock (ms × 1000), above any counter an earlier run can have reached,
    /// so none is reused.
    pub fn from_clock(wall_ms: i64) -> Seqs {
        let base = (wall_ms.max(0) as u64).saturating_mul(1000);
        Seqs {
            next: TopicKind::ALL.map(|_| AtomicU64::new(base.max(1))),
            ceiling: unreserved(),
        }
    }

    /// Reserves a durable block per topic in `dir` at start: counting continues above
    /// whatever an earlier run may have sent, even what a power cut took from the store
    /// (see [`seq_block`]). Where the block cannot be written, counting goes on from the
    /// clock.
    pub fn reserve(&self, dir: &Path) {
        let same_boot = seq_block::same_boot(dir);
        for kind in TopicKind::ALL {
            let i = index(kind);
            let floor = self.next[i].load(Ordering::Relaxed);
            // The store keeps these: within one boot it knows the last seq used.
            let resume = same_boot && !kind.retained();
            match seq_block::reserve(dir, kind.name(), floor, resume) {
                Ok(first) => {
                    self.raise_above(kind, first.saturating_sub(1));
                    self.ceiling[i]
                        .store(first.saturating_add(seq_block::BLOCK), Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot reserve {kind} seqs in {}: {e}; counting from the clock",
                        dir.display()
                    );
                    let floor = Seqs::from_clock(crate::clock::wall_ms()).take(kind);
                    self.raise_above(kind, floor);
                }
            }
        }
    }

    /// Moves a ceiling up once half its block is used (call it at every sync). Returns an
    /// error when the file cannot be written; it is tried again at the next call.
    pub fn extend_reservations(&self, dir: &Path) -> std::io::Result<()> {
        for kind in TopicKind::ALL {
            let i = index(kind);
            let ceiling = self.ceiling[i].load(Ordering::Relaxed);
            let next = self.next[i].load(Ordering::Relaxed);
            if ceiling == u64::MAX || next.saturating_add(seq_block::BLOCK / 2) < ceiling {
                continue;
            }
            let raised = next.saturating_add(seq_block::BLOCK);
            seq_block::extend(dir, kind.name(), raised)?;
            self.ceiling[i].store(raised, Ordering::Relaxed);
        }
        Ok(())
    }

    pub fn take(&self, topic: TopicKind) -> u64 {
        self.next[index(topic)].fetch_add(1, Ordering::Relaxed)
    }

    /// Never hand out a seq at or below `max` again (the store reopened and recovered it).
    pub fn raise_above(&self, topic: TopicKind, max: u64) {
        self.next[index(topic)].fetch_max(max.saturating_add(1), Ordering::Relaxed);
    }
}

fn unreserved() -> [AtomicU64; TopicKind::ALL.len()] {
    TopicKind::ALL.map(|_| AtomicU64::new(u64::MAX))
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

    /// What a power cut takes from the store's tail was perhaps sent already: the next run
    /// must not count those seqs again, whatever the store recovered.
    #[test]
    fn a_restart_never_reuses_a_seq_the_last_run_may_have_sent() {
        let dir = tempfile::tempdir().unwrap();
        let first = Seqs::after(&BTreeMap::new());
        first.reserve(dir.path());
        let sent: Vec<u64> = (0..1000)
            .map(|_| first.take(TopicKind::Telemetry))
            .collect();
        // Within one boot (a crash), the store's own last seq is where the next run goes on.
        let resumed = Seqs::after(&BTreeMap::from([(TopicKind::Telemetry.code(), 1000)]));
        resumed.reserve(dir.path());
        assert_eq!(
            resumed.take(TopicKind::Telemetry),
            1001,
            "no hole after a crash"
        );
        // A reboot: the store lost everything after seq 10 (a power cut before the sync).
        std::fs::write(dir.path().join("boot_id"), "another boot\n").unwrap();
        let second = Seqs::after(&BTreeMap::from([(TopicKind::Telemetry.code(), 10)]));
        second.reserve(dir.path());
        let next = second.take(TopicKind::Telemetry);
        assert!(next > *sent.last().unwrap(), "{next}");
        // Running past half a block moves the ceiling, durably.
        second.raise_above(TopicKind::Telemetry, next + seq_block::BLOCK / 2 + 5);
        second.extend_reservations(dir.path()).unwrap();
        let used = second.take(TopicKind::Telemetry);
        std::fs::write(dir.path().join("boot_id"), "yet another boot\n").unwrap();
        let third = Seqs::after(&BTreeMap::new());
        third.reserve(dir.path());
        assert!(third.take(TopicKind::Telemetry) > used);
    }
}
