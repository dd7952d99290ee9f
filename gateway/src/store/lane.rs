//! One lane on disk: its segments (oldest first), the in-memory index, the acknowledged
//! watermark and the out-of-order acks above it, whole-segment deletion and eviction.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::ledger::LaneLedger;
use super::record::Header;
use super::segment::{self, Entry, ScanDamage, Segment};
use super::{Gap, Lane, LaneRecovery, Record};

pub struct LaneLog {
    lane: Lane,
    dir: PathBuf,
    segments: VecDeque<Segment>,
    segment_size: u64,
    /// Alarm lane: every append is synced before it returns.
    sync_each: bool,
    pub next_id: u64,
    /// Records up to this id are durable: the watermark never passes it, so a power cut
    /// cannot leave a watermark above records that were lost with the page cache (their
    /// ids would be reused and the new records taken for acknowledged ones).
    synced_id: u64,
    /// Every record up to this id is acknowledged (or gone).
    pub watermark: u64,
    /// Acknowledged ids above the watermark (PUBACKs arrive out of order).
    acked: BTreeSet<u64>,
    /// Ids handed to the broker and not acknowledged yet, with the connection that sent
    /// them: evicted, they may still have arrived.
    sent: BTreeMap<u64, u64>,
    pub evicted_records_total: u64,
    pub evicted_bytes_total: u64,
    pub corrupt_records_total: u64,
}

/// A segment taken out by eviction, to be deleted once the gap it makes is persisted.
pub struct Evicted {
    pub segment: Segment,
    /// Records never sent, and records sent on an earlier connection without an
    /// acknowledgement, as gaps (the latter unconfirmed).
    pub gaps: Vec<Gap>,
    /// Records sent on the current connection whose acknowledgement may still come.
    pub awaiting: Vec<Entry>,
}

impl LaneLog {
    /// Scans the lane's folder (creating it if needed). Damaged data is cut and counted in
    /// `rec`; only I/O errors (unreadable folder, read-only disk) fail.
    pub fn open(
        lane: Lane,
        dir: PathBuf,
        segment_size: u64,
        ledger: &LaneLedger,
        rec: &mut LaneRecovery,
        max_seq: &mut BTreeMap<u8, u64>,
        doubts: &mut Vec<Gap>,
    ) -> Result<LaneLog, StoreError> {
        super::create_dir_synced(&dir)?;
        let mut files = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let item = item.map_err(StoreError::io("list", &dir))?;
            let path = item.path();
            if let Some(n) = segment::parse_name(&path) {
                files.push((n, path));
            }
        }
        files.sort();
        let mut segments = VecDeque::new();
        let mut prev = 0;
        for (_, path) in files {
            let mut damage = ScanDamage::default();
            let seg = match Segment::recover(path.clone(), prev, &mut damage) {
                Ok(seg) => seg,
                Err(e) => {
                    // One bad sector must not keep the gateway from starting: set the file
                    // aside and report what it held as lost (times from its neighbours).
                    tracing::error!(
                        "{e}: the segment is set aside and its records reported as a gap"
                    );
                    let aside = path.with_extension("unreadable");
                    let _ = std::fs::rename(&path, &aside);
                    rec.unreadable_segments += 1;
                    let ts = segments
                        .back()
                        .and_then(|s: &Segment| s.entries.last().map(|e| e.max_ts))
                        .unwrap_or_else(crate::clock::wall_ms);
                    doubts.push(Gap {
                        lane,
                        first_id: prev + 1,
                        last_id: prev + 1,
                        first_seq: 0,
                        last_seq: 0,
                        records: 0,
                        from_ts: ts,
                        to_ts: crate::clock::wall_ms().max(ts),
                        stats_only: false,
                        unconfirmed: false,
                    });
                    continue;
                }
            };
            rec.corrupt_records += damage.corrupt_records;
            rec.truncated_bytes += damage.truncated_bytes;
            let Some(last) = seg.last_id() else {
                seg.remove();
                continue;
            };
            prev = last;
            rec.records += seg.entries.len() as u64;
            for e in &seg.entries {
                let m = max_seq.entry(e.topic).or_insert(e.seq);
                *m = (*m).max(e.seq);
            }
            segments.push_back(seg);
        }
        let n = segments.len();
        for s in segments.iter_mut().take(n.saturating_sub(1)) {
            s.close_writer();
        }
        // Only the head can hold data written but not synced before a crash.
        if let Some(head) = segments.back_mut() {
            head.sync()?;
        }
        let mut log = LaneLog {
            lane,
            dir,
            segments,
            segment_size,
            sync_each: lane == Lane::Alarm,
            // Above every id present, and above the watermark: an id reused at or below
            // it would count as acknowledged. A cut record's id may be reused: it was
            // never acknowledged, or the watermark would cover it.
            next_id: ledger.next_id.max(prev + 1).max(ledger.watermark + 1),
            synced_id: prev,
            watermark: ledger.watermark,
            acked: BTreeSet::new(),
            sent: BTreeMap::new(),
            evicted_records_total: ledger.evicted_records_total,
            evicted_bytes_total: ledger.evicted_bytes_total,
            corrupt_records_total: ledger.corrupt_records_total + rec.corrupt_records,
        };
        log.drop_acked_segments();
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of the lane's segments, including telemetry not yet written.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(Segment::len).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends a record; on error nothing of it stays and its id is not used.
    pub fn append(
        &mut self,
        topic: u8,
        seq: u64,
        min_ts: i64,
        max_ts: i64,
        payload: &[u8],
    ) -> Result<u64, StoreError> {
        let id = self.next_id;
        let size = (super::record::HEADER_LEN + payload.len()) as u64;
        let roll = match self.segments.back() {
            None => true,
            Some(s) => !s.is_writable() || (s.len() > 0 && s.len() + size > self.segment_size),
        };
        if roll {
            if let Some(old) = self.segments.back_mut() {
                if old.is_writable() {
                    old.seal()?;
                    self.synced_id = self.synced_id.max(old.last_id().unwrap_or(0));
                }
            }
            self.segments.push_back(Segment::create(&self.dir, id)?);
        }
        let Some(seg) = self.segments.back_mut() else {
            return Ok(id); // unreachable: a head was just ensured
        };
        let h = Header {
            topic,
            len: payload.len() as u32,
            id,
            seq,
            min_ts,
            max_ts,
        };
        seg.push(&h, payload);
        // Telemetry is written to the file (the page cache) at once, so it can be sent
        // before it is synced and survives a crash of the process; only a power cut can
        // take what the last sync did not reach.
        let written = if self.sync_each {
            seg.sync()
        } else {
            seg.flush()
        };
        if let Err(e) = written {
            seg.undo_last();
            return Err(e);
        }
        self.next_id = id + 1;
        if self.sync_each {
            self.synced_id = id;
        }
        Ok(id)
    }

    /// Makes every appended record durable, and lets the watermark pass over the ones
    /// acknowledged meanwhile. Returns whether the watermark moved.
    pub fn sync(&mut self) -> Result<bool, StoreError> {
        if let Some(head) = self.segments.back_mut() {
            head.sync()?;
        }
        self.synced_id = self.next_id - 1;
        Ok(self.advance())
    }

    /// Position of the first record with an id above `x`.
    fn first_after(&self, x: u64) -> Option<(usize, usize)> {
        let mut si = self
            .segments
            .partition_point(|s| s.last_id().is_some_and(|l| l <= x));
        while let Some(s) = self.segments.get(si) {
            let ei = s.entries.partition_point(|e| e.id <= x);
            if ei < s.entries.len() {
                return Some((si, ei));
            }
            si += 1;
        }
        None
    }

    /// Records with an id above `x`, oldest first.
    fn entries_after(&self, x: u64) -> impl Iterator<Item = (usize, &Entry)> + '_ {
        let (si, ei) = self.first_after(x).unwrap_or((self.segments.len(), 0));
        self.segments
            .iter()
            .enumerate()
            .skip(si)
            .flat_map(move |(i, s)| {
                let from = if i == si { ei } else { 0 };
                s.entries[from..].iter().map(move |e| (i, e))
            })
    }

    /// Records an acknowledgement (of a record synced or not). Returns whether the
    /// watermark moved: only over synced records.
    pub fn ack(&mut self, id: u64) -> bool {
        if id <= self.watermark || id >= self.next_id {
            return false;
        }
        self.acked.insert(id);
        self.sent.remove(&id);
        self.advance()
    }

    /// Record `id` went to the broker on `connection`.
    pub fn published(&mut self, id: u64, connection: u64) {
        if id > self.watermark && id < self.next_id && !self.acked.contains(&id) {
            self.sent.insert(id, connection);
        }
    }

    /// Moves the watermark over acknowledged records and deletes whole segments below it.
    fn advance(&mut self) -> bool {
        let before = self.watermark;
        while let Some((si, ei)) = self.first_after(self.watermark) {
            let id = self.segments[si].entries[ei].id;
            if id > self.synced_id || !self.acked.remove(&id) {
                break;
            }
            self.watermark = id;
        }
        if self.watermark == before {
            return false;
        }
        self.forget_below_watermark();
        self.drop_acked_segments();
        true
    }

    fn forget_below_watermark(&mut self) {
        self.acked = self.acked.split_off(&(self.watermark + 1));
        self.sent = self.sent.split_off(&(self.watermark + 1));
    }

    /// Deletes leading segments whose records are all acknowledged; the head stays (it
    /// keeps the highest id on disk).
    fn drop_acked_segments(&mut self) {
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .and_then(Segment::last_id)
                .is_some_and(|l| l <= self.watermark)
        {
            if let Some(s) = self.segments.pop_front() {
                s.remove();
            }
        }
    }

    fn is_unacked(&self, e: &Entry) -> bool {
        e.id > self.watermark && !self.acked.contains(&e.id)
    }

    /// Written, unacknowledged records with ids above `after`, oldest first, at most
    /// `max_records` and `max_bytes` of payload (at least one record if any). Records
    /// whose bytes no longer check out are returned apart, as lost.
    pub fn unsent(
        &self,
        after: Option<u64>,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(Vec<Record>, Vec<Entry>), StoreError> {
        let start = after.unwrap_or(0).max(self.watermark);
        let mut out = Vec::new();
        let mut lost = Vec::new();
        let mut bytes = 0usize;
        let mut reader: Option<(usize, std::fs::File)> = None;
        for (si, e) in self.entries_after(start) {
            if out.len() >= max_records {
                break;
            }
            if self.acked.contains(&e.id) {
                continue;
            }
            if !out.is_empty() && bytes + e.len as usize > max_bytes {
                break;
            }
            let seg = &self.segments[si];
            let file = match reader {
                Some((i, ref f)) if i == si => f,
                _ => &reader.insert((si, seg.reader()?)).1,
            };
            match seg.read(file, e)? {
                Some(payload) => {
                    bytes += payload.len();
                    out.push(Record {
                        id: e.id,
                        topic: e.topic,
                        seq: e.seq,
                        min_ts: e.min_ts,
                        max_ts: e.max_ts,
                        payload,
                    });
                }
                None => lost.push(*e),
            }
        }
        Ok((out, lost))
    }

    /// Records that could no longer be read are counted, treated as delivered (they
    /// cannot be), and turned into gaps for telemetry.
    pub fn mark_lost(&mut self, lost: &[Entry]) -> Vec<Gap> {
        for e in lost {
            self.acked.insert(e.id);
            self.corrupt_records_total += 1;
        }
        self.advance();
        lost.iter()
            .filter_map(|e| Gap::of(self.lane, [e.into()], false))
            .collect()
    }

    /// Takes the oldest segment out (acknowledged or not), moving the watermark past it.
    /// The caller persists the gaps, then deletes the segment. Records sent on
    /// `connection` and not acknowledged yet are returned apart: their acknowledgement
    /// may still come, and then nothing was lost.
    pub fn evict_oldest(&mut self, connection: u64) -> Option<Evicted> {
        let segment = self.segments.pop_front()?;
        let mut gaps = Vec::new();
        let mut awaiting = Vec::new();
        // Runs of records alike (never sent, or sent before this connection) make one gap.
        let mut run: Vec<&Entry> = Vec::new();
        let mut run_unconfirmed = false;
        let (mut lost, mut lost_bytes) = (0u64, 0u64);
        for e in segment.entries.iter().filter(|e| self.is_unacked(e)) {
            lost += 1;
            lost_bytes += e.size();
            let unconfirmed = match self.sent.get(&e.id) {
                Some(c) if *c == connection => {
                    awaiting.push(*e);
                    continue;
                }
                Some(_) => true,
                None => false,
            };
            if unconfirmed != run_unconfirmed {
                gaps.extend(Gap::of(
                    self.lane,
                    run.drain(..).map(Into::into),
                    run_unconfirmed,
                ));
                run_unconfirmed = unconfirmed;
            }
            run.push(e);
        }
        gaps.extend(Gap::of(
            self.lane,
            run.into_iter().map(Into::into),
            run_unconfirmed,
        ));
        if let Some(last) = segment.last_id() {
            self.watermark = self.watermark.max(last);
            self.forget_below_watermark();
            self.advance();
        }
        self.evicted_records_total += lost;
        self.evicted_bytes_total += lost_bytes;
        Some(Evicted {
            segment,
            gaps,
            awaiting,
        })
    }

    /// The oldest record not yet acknowledged (synced or not).
    pub fn oldest_unacked(&self) -> Option<Entry> {
        self.entries_after(self.watermark)
            .map(|(_, e)| e)
            .find(|e| !self.acked.contains(&e.id))
            .copied()
    }

    pub fn unacked_count(&self) -> u64 {
        let above: u64 = self.entries_after(self.watermark).count() as u64;
        above.saturating_sub(self.acked.len() as u64)
    }

    pub fn ledger(&self) -> LaneLedger {
        LaneLedger {
            next_id: self.next_id,
            watermark: self.watermark,
            evicted_records_total: self.evicted_records_total,
            evicted_bytes_total: self.evicted_bytes_total,
            corrupt_records_total: self.corrupt_records_total,
        }
    }
}
