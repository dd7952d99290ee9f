//! The task that owns the store, and nothing else: it appends what the pipeline hands it,
//! syncs, reports evictions as gap messages, and serves the uplink's reads and
//! acknowledgements. One owner means no lock around the files.
//!
//! When the disk fails (full, read-only, an I/O error, or a store that cannot even open),
//! nothing is dropped: records go to memory ([`Held`]), the uplink sends them from there,
//! the task retries the disk every sync and reopens the store every few seconds, and
//! `failed` says so until the disk has taken everything again. The pipeline turns that
//! into the gateway's own `store_failed` alarm.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;
use tracing::{error, info, warn};

use hazgate_wire::{Gap as GapMessage, Message, TopicKind};

use super::held::Held;
use super::{Gap, Lane, Record, Store, StoreError, StoreOptions, StoreStats};
use crate::envelope::{Origin, Seqs};
use crate::metrics::Metrics;

/// How often a store that cannot open is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(5);
/// Memory for alarm-lane records (alarm events, gap reports) the disk refused: far more
/// than any outage produces; only past it would the oldest be dropped, counted and logged.
const HELD_ALARMS_MAX: usize = 256 << 20;
/// Memory for telemetry the disk refused; what is pushed out is reported as a data gap.
const HELD_TELEMETRY_MAX: usize = 16 << 20;

/// Where a record waits: on disk in a lane, or in memory because the disk refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    Disk(Lane),
    Held(Lane),
}

pub enum Command {
    Append {
        lane: Lane,
        topic: TopicKind,
        seq: u64,
        min_ts: i64,
        max_ts: i64,
        payload: Vec<u8>,
    },
    /// Make everything appended durable, report gaps, retry a failed disk.
    Sync,
    Unsent {
        place: Place,
        after: Option<u64>,
        max_records: usize,
        reply: oneshot::Sender<Result<Vec<Record>, StoreError>>,
    },
    Ack {
        place: Place,
        id: u64,
    },
    /// A record went to the broker (its acknowledgement may still come if it is evicted).
    Published {
        place: Place,
        id: u64,
    },
    /// A new connection to the broker: nothing sent on the last one is awaited any more.
    Connected,
    /// The id the next record of a lane will get: where "live" starts after a reconnect.
    NextId {
        lane: Lane,
        reply: oneshot::Sender<u64>,
    },
    Stats {
        reply: oneshot::Sender<Stats>,
    },
}

/// The store's figures, with what memory holds and whether the disk fails.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// `None` while the store cannot open.
    pub store: Option<StoreStats>,
    pub held_alarm: usize,
    pub held_telemetry: usize,
    pub oldest_held_ts: Option<i64>,
    pub failed: bool,
}

/// The store task's address.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Command>,
    /// Woken whenever new records are ready to send.
    pub ready: Arc<Notify>,
    /// `true` while the disk refuses records (held in memory meanwhile).
    pub failed: watch::Receiver<bool>,
}

impl StoreHandle {
    /// Hands a record over; the task appends it (an alarm-lane record is synced before the
    /// uplink is woken for it). Waits only while the task is far behind.
    pub async fn append(
        &self,
        lane: Lane,
        topic: TopicKind,
        seq: u64,
        (min_ts, max_ts): (i64, i64),
        payload: Vec<u8>,
    ) {
        let _ = self
            .tx
            .send(Command::Append {
                lane,
                topic,
                seq,
                min_ts,
                max_ts,
                payload,
            })
            .await;
    }

    pub async fn sync(&self) {
        let _ = self.tx.send(Command::Sync).await;
    }

    pub async fn unsent(
        &self,
        place: Place,
        after: Option<u64>,
        max_records: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Unsent {
                place,
                after,
                max_records,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn ack(&self, place: Place, id: u64) {
        let _ = self.tx.send(Command::Ack { place, id }).await;
    }

    pub async fn published(&self, place: Place, id: u64) {
        let _ = self.tx.send(Command::Published { place, id }).await;
    }

    pub async fn connected(&self) {
        let _ = self.tx.send(Command::Connected).await;
    }

    pub async fn next_id(&self, lane: Lane) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::NextId { lane, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Stats { reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }
}

struct StoreTask {
    store: Option<Store>,
    options: StoreOptions,
    /// Alarm, telemetry.
    held: [Held; 2],
    origin: Origin,
    seqs: Arc<Seqs>,
    /// Gaps already held in memory, so a gap that goes back to the store's queue after a
    /// failed append is not held twice (lane, first id).
    held_gaps: HashSet<(Lane, u64)>,
    failed: watch::Sender<bool>,
    reopen_at: Instant,
    metrics: Arc<Metrics>,
    ready: Arc<Notify>,
}

/// Starts the store task with a store, or with none when it could not open (it is retried
/// every few seconds). The task ends when every handle is dropped, after a checkpoint.
pub fn spawn(
    store: Option<Store>,
    options: StoreOptions,
    origin: Origin,
    seqs: Arc<Seqs>,
    metrics: Arc<Metrics>,
) -> (StoreHandle, tokio::task::JoinHandle<()>) {
    let (tx, commands) = mpsc::channel(1024);
    let ready = Arc::new(Notify::new());
    let (failed, failed_rx) = watch::channel(store.is_none());
    let task = StoreTask {
        store,
        options,
        held: [Held::new(HELD_ALARMS_MAX), Held::new(HELD_TELEMETRY_MAX)],
        origin,
        seqs,
        held_gaps: HashSet::new(),
        failed,
        reopen_at: Instant::now() + REOPEN_EVERY,
        metrics,
        ready: ready.clone(),
    };
    let join = tokio::spawn(task.run(commands));
    (
        StoreHandle {
            tx,
            ready,
            failed: failed_rx,
        },
        join,
    )
}

/// Runs blocking file work without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn index(lane: Lane) -> usize {
    match lane {
        Lane::Alarm => 0,
        Lane::Telemetry => 1,
    }
}

impl StoreTask {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        if self.store.is_none() {
            self.set_failed("the store could not open");
        }
        while let Some(cmd) = commands.recv().await {
            self.handle(cmd);
        }
        if let Some(store) = &mut self.store {
            if let Err(e) = blocking(|| store.checkpoint()) {
                error!("the store could not be checkpointed at shutdown: {e}");
            }
        }
        let held = self.held[0].len() + self.held[1].len();
        if held > 0 {
            error!(
                records = held,
                "stopping with records the disk never took; they were not delivered"
            );
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Append {
                lane,
                topic,
                seq,
                min_ts,
                max_ts,
                payload,
            } => {
                let record = Record {
                    id: 0,
                    topic: topic.code(),
                    seq,
                    min_ts,
                    max_ts,
                    payload,
                };
                self.append(lane, record);
                // Alarms synced, telemetry written (or either held): the uplink sends it
                // now, not at the next sync.
                self.ready.notify_one();
            }
            Command::Sync => self.sync(),
            Command::Unsent {
                place,
                after,
                max_records,
                reply,
            } => {
                let result = match place {
                    Place::Held(lane) => Ok(self.held[index(lane)].unsent(after, max_records)),
                    Place::Disk(lane) => match &mut self.store {
                        Some(store) => {
                            blocking(|| store.unsent(lane, after, max_records, usize::MAX))
                        }
                        None => Ok(Vec::new()),
                    },
                };
                if let Err(e) = &result {
                    self.fail(&format!("cannot read unsent records: {e}"));
                }
                let _ = reply.send(result);
            }
            Command::Ack { place, id } => match place {
                Place::Held(lane) => self.held[index(lane)].ack(id),
                Place::Disk(lane) => {
                    if let Some(store) = &mut self.store {
                        store.ack(lane, id);
                    }
                }
            },
            Command::Published {
                place: Place::Disk(lane),
                id,
            } => {
                if let Some(store) = &mut self.store {
                    store.published(lane, id);
                }
            }
            // Memory keeps a record until it is acknowledged; nothing to track there.
            Command::Published { .. } => {}
            Command::Connected => {
                if let Some(store) = &mut self.store {
                    store.connected();
                }
            }
            Command::NextId { lane, reply } => {
                let _ = reply.send(self.store.as_ref().map_or(1, |s| s.next_id(lane)));
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
        }
    }

    /// Appends to disk, or holds in memory when the disk refuses.
    fn append(&mut self, lane: Lane, record: Record) {
        // While the disk fails, telemetry would only pile up unseen in a segment's write
        // buffer: hold it where the uplink can send it, within a bounded budget.
        let bypass = lane == Lane::Telemetry && *self.failed.borrow();
        if let (Some(store), false) = (&mut self.store, bypass) {
            let r = &record;
            match blocking(|| store.append(lane, r.topic, r.seq, r.min_ts, r.max_ts, &r.payload)) {
                Ok(_) => return,
                Err(StoreError::TooLarge { len, max }) => {
                    // It could never be stored nor sent: say so, never retry it forever.
                    self.metrics.too_large.fetch_add(1, Ordering::Relaxed);
                    error!(
                        len,
                        max,
                        "a {} record is too large to store and send; skipped",
                        lane.dir_name()
                    );
                    return;
                }
                Err(e) => self.fail(&format!(
                    "{} record could not be stored: {e}",
                    lane.dir_name()
                )),
            }
        }
        self.hold(lane, record);
    }

    fn hold(&mut self, lane: Lane, record: Record) {
        let pushed_out = self.held[index(lane)].push(record);
        match lane {
            Lane::Telemetry => {
                if let Some(gap) =
                    Gap::of(Lane::Telemetry, pushed_out.iter().map(Into::into), false)
                {
                    warn!(
                        messages = gap.records,
                        "telemetry held in memory exceeds its budget: the oldest becomes a data gap"
                    );
                    self.report_gap_held(gap);
                }
            }
            Lane::Alarm => {
                for r in pushed_out {
                    self.metrics.alarms_dropped.fetch_add(1, Ordering::Relaxed);
                    error!(
                        seq = r.seq,
                        "alarm-lane record dropped: the disk has refused records for so long that memory is full"
                    );
                }
            }
        }
        self.update_held_metrics();
    }

    /// A gap message for records lost, held in memory (the disk is failing).
    fn report_gap_held(&mut self, gap: Gap) {
        let record = self.gap_record(&gap);
        self.hold(Lane::Alarm, record);
    }

    fn gap_record(&self, gap: &Gap) -> Record {
        let seq = self.seqs.take(TopicKind::Telemetry);
        let payload = Message::Gap(GapMessage {
            envelope: self.origin.envelope(seq),
            from_ts: gap.from_ts,
            to_ts: gap.to_ts,
            first_seq: gap.first_seq,
            last_seq: gap.last_seq,
            messages: gap.records,
            unconfirmed: gap.unconfirmed,
        })
        .to_json();
        Record {
            id: 0,
            topic: TopicKind::Telemetry.code(),
            seq,
            min_ts: gap.from_ts,
            max_ts: gap.to_ts,
            payload,
        }
    }

    /// Every sync interval: make telemetry durable, report gaps, and retry a failed disk.
    fn sync(&mut self) {
        if self.store.is_none() && Instant::now() >= self.reopen_at {
            self.reopen();
        }
        if let Some(store) = &mut self.store {
            if let Err(e) = blocking(|| store.sync()) {
                self.fail(&format!("store sync failed: {e}"));
            }
        }
        self.report_gaps();
        if let Err(e) = blocking(|| self.seqs.extend_reservations(&self.options.dir)) {
            // Half a block is still left; the disk's trouble shows in the store's own errors.
            warn!("cannot move the reserved seq ceiling up: {e}; retried at the next sync");
        }
        if *self.failed.borrow() {
            self.retry_held();
        }
        self.update_metrics();
        self.ready.notify_one();
    }

    /// Gaps the store queued (evictions, unreadable records) become gap messages in the
    /// alarm lane: never evicted and sent first. A gap leaves the store's queue only once
    /// its message is on disk; until then it is also held in memory, so it is sent anyway.
    fn report_gaps(&mut self) {
        let Some(store) = &mut self.store else { return };
        let gaps = store.take_gaps();
        let mut failed = Vec::new();
        for gap in gaps {
            warn!(
                from_ts = gap.from_ts,
                to_ts = gap.to_ts,
                messages = gap.records,
                "telemetry lost before delivery (store full or unreadable): reporting the gap"
            );
            let record = self.gap_record(&gap);
            let store = self.store.as_mut().expect("checked above");
            let r = &record;
            match blocking(|| {
                store.append(Lane::Alarm, r.topic, r.seq, r.min_ts, r.max_ts, &r.payload)
            }) {
                Ok(_) => {
                    self.held_gaps.remove(&(gap.lane, gap.first_id));
                }
                Err(e) => {
                    self.fail(&format!("gap report could not be stored: {e}"));
                    if self.held_gaps.insert((gap.lane, gap.first_id)) {
                        self.hold(Lane::Alarm, record);
                    }
                    failed.push(gap);
                }
            }
        }
        if let (Some(store), false) = (&mut self.store, failed.is_empty()) {
            store.requeue_gaps(failed);
        }
    }

    fn reopen(&mut self) {
        self.reopen_at = Instant::now() + REOPEN_EVERY;
        let options = self.options.clone();
        match blocking(|| Store::open(options)) {
            Ok((store, recovery)) => {
                for (topic, max) in &recovery.max_seq_by_topic {
                    if let Some(kind) = TopicKind::from_code(*topic) {
                        self.seqs.raise_above(kind, *max);
                    }
                }
                info!(dir = %self.options.dir.display(), "the store opened again");
                self.store = Some(store);
            }
            Err(e) => warn!("the store still cannot open: {e}; alarms and telemetry are held in memory and sent directly"),
        }
    }

    /// Moves held records to disk, oldest first, once the disk works again: first a sync
    /// must succeed (it also writes what a failed sync left in a segment's buffer), then
    /// alarm records go (each synced), then telemetry (synced together). A telemetry
    /// append alone proves nothing (it is only buffered), hence the sync first. Once
    /// memory is empty and the disk took everything, the failure is over.
    fn retry_held(&mut self) {
        let Some(store) = &mut self.store else { return };
        if blocking(|| store.sync()).is_err() {
            return;
        }
        for lane in Lane::ALL {
            let held = &mut self.held[index(lane)];
            while let Some(r) = held.front() {
                match blocking(|| {
                    store.append(lane, r.topic, r.seq, r.min_ts, r.max_ts, &r.payload)
                }) {
                    Ok(_) | Err(StoreError::TooLarge { .. }) => {
                        held.pop_front();
                    }
                    Err(_) => return,
                }
            }
        }
        if blocking(|| store.sync()).is_err() {
            return;
        }
        self.held_gaps.clear();
        info!("the store writes again: every held record is on disk");
        let _ = self.failed.send(false);
        self.metrics.store_failed.store(0, Ordering::Relaxed);
        self.update_held_metrics();
    }

    fn fail(&mut self, what: &str) {
        self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
        if !*self.failed.borrow() {
            error!("{what}; holding records in memory and sending them directly until the disk takes them again");
        }
        self.set_failed(what);
    }

    fn set_failed(&mut self, _what: &str) {
        let _ = self.failed.send(true);
        self.metrics.store_failed.store(1, Ordering::Relaxed);
    }

    fn stats(&self) -> Stats {
        Stats {
            store: self.store.as_ref().map(Store::stats),
            held_alarm: self.held[0].len(),
            held_telemetry: self.held[1].len(),
            oldest_held_ts: self.held.iter().filter_map(Held::oldest_ts).min(),
            failed: *self.failed.borrow(),
        }
    }

    fn update_held_metrics(&self) {
        let m = &self.metrics;
        m.held_records.store(
            (self.held[0].len() + self.held[1].len()) as u64,
            Ordering::Relaxed,
        );
    }

    fn update_metrics(&self) {
        let Some(store) = &self.store else {
            self.update_held_metrics();
            return;
        };
        let s = store.stats();
        let m = &self.metrics;
        m.store_depth_telemetry
            .store(s.telemetry.records, Ordering::Relaxed);
        m.store_depth_alarm
            .store(s.alarm.records, Ordering::Relaxed);
        m.store_bytes
            .store(s.telemetry.bytes + s.alarm.bytes, Ordering::Relaxed);
        m.store_evicted
            .store(s.telemetry.evicted_records_total, Ordering::Relaxed);
        let oldest = [s.telemetry.oldest_unacked_ts, s.alarm.oldest_unacked_ts]
            .into_iter()
            .flatten()
            .chain(self.held.iter().filter_map(Held::oldest_ts))
            .min();
        let age = oldest
            .map(|ts| (crate::clock::wall_ms() - ts).max(0) as u64)
            .unwrap_or(0);
        m.store_oldest_unsent_age_ms.store(age, Ordering::Relaxed);
        self.update_held_metrics();
    }
}
