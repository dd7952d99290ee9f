//! Gaps: records lost before delivery (evicted when full, unreadable, or pushed out of
//! memory), described so the central side reports exactly which acquisition times are
//! missing.

use serde::{Deserialize, Serialize};

use hazgate_wire::TopicKind;

use super::segment::Entry;
use super::{Lane, Record};

/// Which ids and seqs were lost, and the time range of their readings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub lane: Lane,
    pub first_id: u64,
    pub last_id: u64,
    /// Lowest and highest seq lost, of readings messages (of statistics when only those
    /// were lost).
    pub first_seq: u64,
    pub last_seq: u64,
    pub records: u64,
    pub from_ts: i64,
    pub to_ts: i64,
    /// Only statistics were lost: the span is their periods, not acquisition times.
    #[serde(default)]
    pub stats_only: bool,
    /// The records had gone to the broker without an acknowledgement: some may have
    /// arrived.
    #[serde(default)]
    pub unconfirmed: bool,
}

/// What a gap needs of one lost record.
#[derive(Debug, Clone, Copy)]
pub struct Lost {
    pub id: u64,
    pub topic: u8,
    pub seq: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl From<&Entry> for Lost {
    fn from(e: &Entry) -> Lost {
        Lost {
            id: e.id,
            topic: e.topic,
            seq: e.seq,
            min_ts: e.min_ts,
            max_ts: e.max_ts,
        }
    }
}

impl From<&Record> for Lost {
    fn from(r: &Record) -> Lost {
        Lost {
            id: r.id,
            topic: r.topic,
            seq: r.seq,
            min_ts: r.min_ts,
            max_ts: r.max_ts,
        }
    }
}

impl Gap {
    /// The gap `lost` records (in id order) leave; `None` when there are none. A
    /// statistics message spans five minutes of readings that travel in other messages,
    /// so it sets the span and seqs only when nothing else was lost.
    pub fn of(lane: Lane, lost: impl IntoIterator<Item = Lost>, unconfirmed: bool) -> Option<Gap> {
        let lost: Vec<Lost> = lost.into_iter().collect();
        let (first, last) = (lost.first()?, lost.last()?);
        let is_stats = |l: &&Lost| l.topic == TopicKind::Stats.code();
        let stats_only = lost.iter().all(|l| is_stats(&l));
        let span = || lost.iter().filter(move |l| stats_only || !is_stats(l));
        Some(Gap {
            lane,
            first_id: first.id,
            last_id: last.id,
            first_seq: span().map(|l| l.seq).min().unwrap_or(first.seq),
            last_seq: span().map(|l| l.seq).max().unwrap_or(last.seq),
            records: lost.len() as u64,
            from_ts: span().map(|l| l.min_ts).min().unwrap_or(first.min_ts),
            to_ts: span().map(|l| l.max_ts).max().unwrap_or(last.max_ts),
            stats_only,
            unconfirmed,
        })
    }

    /// Takes in `next` when it follows on (the next ids, alike in confirmation), so a long
    /// outage makes one gap rather than one per segment. Returns whether it did.
    pub fn absorb(&mut self, next: &Gap) -> bool {
        if self.lane != next.lane
            || self.unconfirmed != next.unconfirmed
            || self.last_id + 1 != next.first_id
        {
            return false;
        }
        self.last_id = next.last_id;
        self.records += next.records;
        if self.stats_only && !next.stats_only {
            // Readings lost set the span from now on.
            (self.first_seq, self.last_seq) = (next.first_seq, next.last_seq);
            (self.from_ts, self.to_ts) = (next.from_ts, next.to_ts);
            self.stats_only = false;
        } else if self.stats_only == next.stats_only {
            self.first_seq = self.first_seq.min(next.first_seq);
            self.last_seq = self.last_seq.max(next.last_seq);
            self.from_ts = self.from_ts.min(next.from_ts);
            self.to_ts = self.to_ts.max(next.to_ts);
        }
        true
    }
}
