//! Records the disk could not take (full, read-only, failing), held in memory until the
//! disk takes them again or the broker acknowledges them. Never silently dropped: alarm
//! records are bounded only by a large memory budget, telemetry by a small one, and any
//! telemetry pushed out of it is returned to be reported as a data gap.

use std::collections::VecDeque;

use super::Record;

/// Held records of one lane, with ids of their own (not the disk's).
#[derive(Debug)]
pub struct Held {
    records: VecDeque<Record>,
    next_id: u64,
    bytes: usize,
    max_bytes: usize,
}

impl Held {
    pub fn new(max_bytes: usize) -> Held {
        Held {
            records: VecDeque::new(),
            next_id: 1,
            bytes: 0,
            max_bytes,
        }
    }

    /// Holds a record (its `id` is replaced); returns what had to leave to stay within the
    /// budget, oldest first. The newest record always stays.
    pub fn push(&mut self, mut record: Record) -> Vec<Record> {
        record.id = self.next_id;
        self.next_id += 1;
        self.bytes += record.payload.len();
        self.records.push_back(record);
        let mut out = Vec::new();
        while self.bytes > self.max_bytes && self.records.len() > 1 {
            if let Some(r) = self.records.pop_front() {
                self.bytes -= r.payload.len();
                out.push(r);
            }
        }
        out
    }

    /// Held records with ids above `after`, oldest first.
    pub fn unsent(&self, after: Option<u64>, max: usize) -> Vec<Record> {
        let after = after.unwrap_or(0);
        self.records
            .iter()
            .filter(|r| r.id > after)
            .take(max)
            .cloned()
            .collect()
    }

    /// The broker took it: it need not be kept any more.
    pub fn ack(&mut self, id: u64) {
        if let Some(i) = self.records.iter().position(|r| r.id == id) {
            if let Some(r) = self.records.remove(i) {
                self.bytes -= r.payload.len();
            }
        }
    }

    pub fn front(&self) -> Option<&Record> {
        self.records.front()
    }

    pub fn pop_front(&mut self) -> Option<Record> {
        let r = self.records.pop_front()?;
        self.bytes -= r.payload.len();
        Some(r)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn oldest_ts(&self) -> Option<i64> {
        self.records.iter().map(|r| r.min_ts).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: usize, seq: u64) -> Record {
        Record {
            id: 0,
            topic: 1,
            seq,
            min_ts: seq as i64,
            max_ts: seq as i64,
            payload: vec![b'x'; len],
        }
    }

    #[test]
    fn holds_within_its_budget_and_hands_back_the_oldest() {
        let mut h = Held::new(250);
        assert!(h.push(record(100, 1)).is_empty());
        assert!(h.push(record(100, 2)).is_empty());
        let out = h.push(record(100, 3));
        assert_eq!(out.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
        assert_eq!(h.len(), 2);
        let unsent = h.unsent(None, 10);
        assert_eq!(unsent.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        h.ack(unsent[0].id);
        assert_eq!(h.unsent(None, 10).len(), 1);
        assert_eq!(h.unsent(Some(unsent[1].id), 10).len(), 0);
        assert!(
            h.push(record(1000, 4)).len() == 1,
            "an oversized record still stays alone"
        );
        assert_eq!(h.len(), 1);
    }
}
