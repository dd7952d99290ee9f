//! Durable store-and-forward: two lanes of append-only segment logs on disk (DESIGN.md,
//! "Store and delivery guarantees").
//!
//! - Alarm lane: each record is written and fdatasync'ed before `append` returns, so an
//!   alarm is durable before it is reported; never evicted; the caller sends it first.
//! - Telemetry lane: written to the file (the page cache) at append, so it can be sent at
//!   once and a crash of the process loses none of it; synced by [`Store::sync`] (the
//!   caller calls it every `sync_interval`, 1 s by default: no sync per reading, for eMMC
//!   wear), so a power cut loses at most that interval; bounded by `max_size` by dropping
//!   its oldest segments, each loss queued as a [`Gap`].
//! - A record leaves only after [`Store::ack`] (the PUBACK of the message carrying it)
//!   and a sync; the watermark of acknowledged ids is persisted lazily in a small ledger,
//!   so a crash resends at most the acknowledgements of the last second: duplicates,
//!   never losses.
//! - On start every record's CRC is checked; a torn or corrupt tail is cut and counted in
//!   [`Recovery`]. Damaged bytes never stop the store from opening.
//!
//! The API is synchronous: run it on a dedicated thread or in `spawn_blocking`.
//! The design (segment log rather than an embedded database) was chosen by measurement:
//! see the `store` section of BENCHMARKS.md.

mod error;
pub mod format;
mod gap;
pub mod held;
mod lane;
mod ledger;
mod record;
mod segment;
pub mod seq_block;
pub mod task;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use error::StoreError;
pub use gap::{Gap, Lost};
pub use ledger::LedgerState;
pub use record::{HEADER_LEN, MAX_PAYLOAD};

use lane::LaneLog;

/// A moved watermark is persisted at most this often (at a sync or an ack), so steady
/// acknowledgements cost one small ledger write per second, not one per sync.
const LEDGER_EVERY: Duration = Duration::from_secs(1);

/// Where the store lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    pub dir: PathBuf,
    /// Bound of telemetry + alarm bytes on disk. Telemetry is evicted to keep it; alarms
    /// alone may exceed it (they are never evicted).
    pub max_size: u64,
    /// Segments are rolled at this size; eviction and deletion work by whole segments.
    pub segment_size: u64,
    /// Free space to keep on the filesystem: telemetry is evicted to keep it too, so the
    /// disk does not fill up under the alarms (other programs write there as well).
    pub min_free: u64,
}

impl StoreOptions {
    /// Segment size max_size / 16, within 256 KiB ..= 64 MiB: eviction then frees about
    /// 1/16 of the budget at a time, with few files.
    pub fn new(dir: impl Into<PathBuf>, max_size: u64) -> StoreOptions {
        StoreOptions {
            dir: dir.into(),
            max_size,
            segment_size: (max_size / 16).clamp(256 << 10, 64 << 20),
            min_free: 0,
        }
    }

    pub fn with_min_free(mut self, min_free: u64) -> StoreOptions {
        self.min_free = min_free;
        self
    }
}

/// The two lanes of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Lane {
    Alarm,
    Telemetry,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Alarm, Lane::Telemetry];

    fn index(self) -> usize {
        match self {
            Lane::Alarm => 0,
            Lane::Telemetry => 1,
        }
    }

    /// The lane's folder under the store's folder.
    pub fn dir_name(self) -> &'static str {
        match self {
            Lane::Alarm => "alarm",
            Lane::Telemetry => "telemetry",
        }
    }
}

/// One stored message, as appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Assigned by the store: lane-local, strictly increasing, also across restarts.
    pub id: u64,
    /// The caller's message kind; opaque to the store.
    pub topic: u8,
    /// The caller's message seq; opaque, recorded so it can be recovered.
    pub seq: u64,
    /// Acquisition time range of the readings in the message, ms UTC.
    pub min_ts: i64,
    pub max_ts: i64,
    pub payload: Vec<u8>,
}

/// A record's index entry: what is known without reading its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    pub id: u64,
    pub topic: u8,
    pub seq: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub len: u32,
}

/// What opening found in one lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneRecovery {
    /// Valid records kept (acknowledged ones included until their segment is deleted).
    pub records: u64,
    /// Bytes cut from segment ends.
    pub truncated_bytes: u64,
    /// Bad records found: each skipped record, and each place where a file was cut.
    pub corrupt_records: u64,
    /// Segment files that could not be read at all (a bad sector): set aside as
    /// `*.unreadable` and reported as a gap.
    pub unreadable_segments: u64,
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Alarm, telemetry; see [`Recovery::lane`].
    pub lanes: [LaneRecovery; 2],
    /// Highest seq per topic seen in the records or the ledger: continue above it.
    pub max_seq_by_topic: BTreeMap<u8, u64>,
    pub ledger: LedgerState,
}

impl Recovery {
    pub fn lane(&self, lane: Lane) -> &LaneRecovery {
        &self.lanes[lane.index()]
    }
}

/// Figures of one lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Records not yet acknowledged.
    pub records: u64,
    /// Bytes of the lane's segments (telemetry: including what is not yet synced).
    pub bytes: u64,
    pub segments: usize,
    /// `min_ts` of the oldest unacknowledged record.
    pub oldest_unacked_ts: Option<i64>,
    pub acked_watermark: u64,
    pub evicted_records_total: u64,
    pub evicted_bytes_total: u64,
    pub corrupt_records_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    pub alarm: LaneStats,
    pub telemetry: LaneStats,
    pub total_bytes: u64,
    pub max_size: u64,
    /// Alarms alone take more than `max_size` (kept anyway: they are never evicted).
    pub alarms_over_budget: bool,
    pub pending_gaps: usize,
}

impl StoreStats {
    pub fn lane(&self, lane: Lane) -> &LaneStats {
        match lane {
            Lane::Alarm => &self.alarm,
            Lane::Telemetry => &self.telemetry,
        }
    }
}

/// The store. See the module documentation.
pub struct Store {
    opts: StoreOptions,
    lanes: [LaneLog; 2],
    max_seq_by_topic: BTreeMap<u8, u64>,
    gaps: Vec<Gap>,
    /// Evicted records sent on the current connection, one gap each, that become gaps
    /// unless their acknowledgement comes before the connection ends.
    awaiting: Vec<Gap>,
    /// Counts connections to the broker: what was sent on an earlier one and never
    /// acknowledged will not be acknowledged any more.
    connection: u64,
    /// The watermark moved: written lazily (`LEDGER_EVERY`).
    ledger_dirty: bool,
    /// Gaps or counters changed: written at the next sync.
    ledger_urgent: bool,
    ledger_written: Instant,
}

impl Store {
    /// Opens (or creates) the store, checking every record. Damaged data is cut and
    /// counted, never a reason to fail; only I/O errors fail (e.g. a read-only disk).
    pub fn open(opts: StoreOptions) -> Result<(Store, Recovery), StoreError> {
        if opts.max_size == 0 || opts.segment_size == 0 {
            return Err(StoreError::Options(format!(
                "max_size ({}) and segment_size ({}) must be above zero",
                opts.max_size, opts.segment_size
            )));
        }
        create_dir_synced(&opts.dir)?;
        format::check_or_write(&opts.dir)?;
        let (ledger, ledger_state) = ledger::load(&opts.dir);
        let mut doubts = Vec::new();
        let mut max_seq = ledger.max_seq_by_topic.clone();
        let mut rec = [LaneRecovery::default(); 2];
        let mut open_lane = |lane: Lane| {
            LaneLog::open(
                lane,
                opts.dir.join(lane.dir_name()),
                opts.segment_size,
                &ledger.lanes[lane.index()],
                &mut rec[lane.index()],
                &mut max_seq,
                &mut doubts,
            )
        };
        let lanes = [open_lane(Lane::Alarm)?, open_lane(Lane::Telemetry)?];
        if ledger_state == LedgerState::Corrupt {
            // Whatever gaps the ledger still had to report are unknown now: report the
            // doubt, up to the oldest record present, rather than stay silent.
            let to_ts = lanes
                .iter()
                .filter_map(|l| l.oldest_unacked().map(|e| e.min_ts))
                .min()
                .unwrap_or_else(crate::clock::wall_ms);
            doubts.push(Gap {
                lane: Lane::Telemetry,
                first_id: 0,
                last_id: 0,
                first_seq: 0,
                last_seq: max_seq
                    .get(&hazgate_wire::TopicKind::Telemetry.code())
                    .copied()
                    .unwrap_or(0),
                records: 0,
                from_ts: to_ts,
                to_ts,
                stats_only: false,
                unconfirmed: false,
            });
        }
        // Records awaiting an acknowledgement when the gateway stopped will never get it.
        let mut gaps = ledger.gaps;
        gaps.extend(ledger.awaiting);
        gaps.extend(doubts);
        let mut store = Store {
            opts,
            lanes,
            max_seq_by_topic: max_seq,
            gaps,
            awaiting: Vec::new(),
            connection: 0,
            ledger_dirty: true,
            ledger_urgent: true,
            ledger_written: Instant::now(),
        };
        // max_size may have been lowered since the last run.
        store.make_room(0);
        store.save_ledger()?;
        let recovery = Recovery {
            lanes: rec,
            max_seq_by_topic: store.max_seq_by_topic.clone(),
            ledger: ledger_state,
        };
        Ok((store, recovery))
    }

    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    fn lane(&self, lane: Lane) -> &LaneLog {
        &self.lanes[lane.index()]
    }

    /// Appends a record and returns its id. Alarm: durable on return. Telemetry: buffered,
    /// written to the file and visible to [`Store::unsent`] at once, durable after the next
    /// [`Store::sync`]. On error
    /// (disk full, I/O) nothing is stored and the caller may retry.
    pub fn append(
        &mut self,
        lane: Lane,
        topic: u8,
        seq: u64,
        min_ts: i64,
        max_ts: i64,
        payload: &[u8],
    ) -> Result<u64, StoreError> {
        let size = (HEADER_LEN + payload.len()) as u64;
        if payload.len() > MAX_PAYLOAD || (lane == Lane::Telemetry && size > self.opts.max_size) {
            let max = match lane {
                Lane::Telemetry => (self.opts.max_size as usize)
                    .saturating_sub(HEADER_LEN)
                    .min(MAX_PAYLOAD),
                Lane::Alarm => MAX_PAYLOAD,
            };
            return Err(StoreError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        self.make_room(size);
        let id = self.lanes[lane.index()].append(topic, seq, min_ts, max_ts, payload)?;
        let m = self.max_seq_by_topic.entry(topic).or_insert(seq);
        *m = (*m).max(seq);
        Ok(id)
    }

    fn total_bytes(&self) -> u64 {
        self.lanes.iter().map(LaneLog::bytes).sum()
    }

    /// Evicts the oldest telemetry segments until `incoming` more bytes fit. The gaps are
    /// persisted before the segments are deleted, so a crash in between reports a loss
    /// that did not happen rather than hiding one that did.
    fn make_room(&mut self, incoming: u64) {
        let mut evicted = Vec::new();
        let short_of_space = |store: &Store| {
            store.opts.min_free > 0
                && free_space(&store.opts.dir)
                    .is_some_and(|free| free < store.opts.min_free.saturating_add(incoming))
        };
        while self.total_bytes() + incoming > self.opts.max_size || short_of_space(self) {
            match self.lanes[Lane::Telemetry.index()].evict_oldest(self.connection) {
                Some(e) => evicted.push(e),
                None => break,
            }
        }
        if evicted.is_empty() {
            return;
        }
        let mut segments = Vec::with_capacity(evicted.len());
        for e in evicted {
            for g in e.gaps {
                self.push_gap(g);
            }
            self.awaiting.extend(
                e.awaiting
                    .iter()
                    .filter_map(|a| Gap::of(Lane::Telemetry, [a.into()], true)),
            );
            segments.push(e.segment);
        }
        self.ledger_urgent = true;
        // If this fails the gaps stay queued in memory and the ledger is retried (and its
        // error returned) at the next sync; the space is freed regardless.
        let _ = self.save_ledger();
        for s in segments {
            s.remove();
        }
    }

    /// Queues a gap, merged with the previous one when it follows on.
    fn push_gap(&mut self, g: Gap) {
        if !self.gaps.last_mut().is_some_and(|last| last.absorb(&g)) {
            self.gaps.push(g);
        }
    }

    /// Flushes and fdatasyncs telemetry, and writes the ledger if gaps changed or the
    /// watermark moved more than a second after the last write. Call it every sync
    /// interval; records appended before it are then durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        for lane in &mut self.lanes {
            if lane.sync()? {
                self.ledger_dirty = true;
            }
        }
        if self.ledger_urgent
            || (self.ledger_dirty && self.ledger_written.elapsed() >= LEDGER_EVERY)
        {
            self.save_ledger()?;
        }
        Ok(())
    }

    /// [`Store::sync`], and the ledger written now if anything changed: for a clean
    /// shutdown, so no acknowledged record is sent again after it.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        for lane in &mut self.lanes {
            if lane.sync()? {
                self.ledger_dirty = true;
            }
        }
        if self.ledger_urgent || self.ledger_dirty {
            self.save_ledger()?;
        }
        Ok(())
    }

    fn save_ledger(&mut self) -> Result<(), StoreError> {
        let l = ledger::Ledger {
            lanes: [self.lanes[0].ledger(), self.lanes[1].ledger()],
            max_seq_by_topic: self.max_seq_by_topic.clone(),
            gaps: self.gaps.clone(),
            awaiting: self.awaiting.clone(),
        };
        ledger::save(&self.opts.dir, &l)?;
        self.ledger_dirty = false;
        self.ledger_urgent = false;
        self.ledger_written = Instant::now();
        Ok(())
    }

    /// Synced, unacknowledged records of `lane` with ids above `after` (and above the
    /// watermark), oldest first: at most `max_records`, and at most `max_bytes` of payload
    /// unless the first record alone is larger. Payloads are read from disk.
    /// `unsent(lane, None, ..)` after a reconnect re-delivers everything unacknowledged.
    pub fn unsent(
        &mut self,
        lane: Lane,
        after: Option<u64>,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let log = &mut self.lanes[lane.index()];
        let (records, lost) = log.unsent(after, max_records, max_bytes)?;
        if !lost.is_empty() {
            for g in log.mark_lost(&lost) {
                self.push_gap(g);
            }
            self.ledger_urgent = true;
        }
        Ok(records)
    }

    /// The broker acknowledged the message carrying record `id`. Any order is fine;
    /// unknown or repeated ids are ignored. The watermark reaches the ledger at most a
    /// second later (here or at a sync; errors of a write here surface at the next sync).
    pub fn ack(&mut self, lane: Lane, id: u64) {
        let awaited = self
            .awaiting
            .iter()
            .position(|g| g.lane == lane && g.first_id == id);
        if let Some(i) = awaited {
            // Evicted while in flight, and delivered after all.
            self.awaiting.remove(i);
            self.ledger_urgent = true;
        } else if self.lanes[lane.index()].ack(id) {
            self.ledger_dirty = true;
            if self.ledger_written.elapsed() >= LEDGER_EVERY {
                let _ = self.save_ledger();
            }
        }
    }

    /// Record `id` of `lane` went to the broker on the current connection.
    pub fn published(&mut self, lane: Lane, id: u64) {
        self.lanes[lane.index()].published(id, self.connection);
    }

    /// A new connection to the broker: records evicted while awaiting an acknowledgement
    /// on the last one will not get it, and are reported as unconfirmed gaps.
    pub fn connected(&mut self) {
        self.connection += 1;
        for g in std::mem::take(&mut self.awaiting) {
            self.push_gap(g);
            self.ledger_urgent = true;
        }
    }

    /// The oldest unacknowledged record of `lane` (synced or not), e.g. to rewind a send
    /// cursor after a reconnect.
    pub fn oldest_unacked(&self, lane: Lane) -> Option<RecordInfo> {
        self.lane(lane).oldest_unacked().map(|e| RecordInfo {
            id: e.id,
            topic: e.topic,
            seq: e.seq,
            min_ts: e.min_ts,
            max_ts: e.max_ts,
            len: e.len,
        })
    }

    /// The id the next record appended to `lane` will get.
    pub fn next_id(&self, lane: Lane) -> u64 {
        self.lane(lane).next_id
    }

    /// Every record of `lane` up to this id is acknowledged (or gone).
    pub fn watermark(&self, lane: Lane) -> u64 {
        self.lane(lane).watermark
    }

    /// Hands over the queued gaps. The store forgets them at the next ledger write, so
    /// the caller should make its report durable (e.g. append it to the alarm lane)
    /// before the next sync.
    pub fn take_gaps(&mut self) -> Vec<Gap> {
        if !self.gaps.is_empty() {
            self.ledger_urgent = true;
        }
        std::mem::take(&mut self.gaps)
    }

    /// Gaps taken with [`Store::take_gaps`] whose report could not be made durable: queued
    /// again, ahead of newer ones, and kept in the ledger.
    pub fn requeue_gaps(&mut self, mut gaps: Vec<Gap>) {
        gaps.append(&mut self.gaps);
        self.gaps = gaps;
        self.ledger_urgent = true;
    }

    /// The queued gaps, without taking them.
    pub fn pending_gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Highest seq per topic appended or recovered.
    pub fn max_seq_by_topic(&self) -> &BTreeMap<u8, u64> {
        &self.max_seq_by_topic
    }

    pub fn stats(&self) -> StoreStats {
        let lane = |l: Lane| {
            let log = self.lane(l);
            LaneStats {
                records: log.unacked_count(),
                bytes: log.bytes(),
                segments: log.segment_count(),
                oldest_unacked_ts: log.oldest_unacked().map(|e| e.min_ts),
                acked_watermark: log.watermark,
                evicted_records_total: log.evicted_records_total,
                evicted_bytes_total: log.evicted_bytes_total,
                corrupt_records_total: log.corrupt_records_total,
            }
        };
        let (alarm, telemetry) = (lane(Lane::Alarm), lane(Lane::Telemetry));
        StoreStats {
            total_bytes: alarm.bytes + telemetry.bytes,
            alarms_over_budget: alarm.bytes > self.opts.max_size,
            max_size: self.opts.max_size,
            pending_gaps: self.gaps.len(),
            alarm,
            telemetry,
        }
    }

    /// The folder of a lane's segments.
    pub fn lane_dir(&self, lane: Lane) -> &Path {
        self.lane(lane).dir()
    }
}

/// Creates a folder (and its parents) so that it survives a power cut: the new entry is
/// synced in its parent, as a file's data would be.
pub(crate) fn create_dir_synced(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(StoreError::io("create the folder", dir))?;
    segment::sync_dir(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => segment::sync_dir(parent),
        _ => Ok(()),
    }
}

/// Bytes available to an unprivileged writer on the filesystem holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Drop for Store {
    /// A clean shutdown checkpoints, so only a crash loses the last interval or resends
    /// the last second's acknowledged records.
    fn drop(&mut self) {
        let _ = self.checkpoint();
    }
}
