//! The task that owns the store: turns readings into telemetry messages at every sync
//! tick, appends and syncs them, reports evictions as gap messages, and serves the uplink's
//! reads and acknowledgements. One owner means no lock around the files, and polling only
//! ever hands readings over a channel: it never waits on the disk.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::MissedTickBehavior;
use tracing::{error, warn};

use hazgate_wire::{Envelope, Gap, Message, Reading, Telemetry, TopicKind, VERSION};
use tracing::info;

use crate::alarm::{snapshot, AlarmEngine};

use super::{Lane, Record, Store, StoreError, StoreStats};
use crate::metrics::Metrics;

/// Readings per telemetry message: about 60 KB of JSON, well under broker packet limits.
pub const MAX_BATCH: usize = 500;

/// Who the messages are from.
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

pub enum Command {
    Unsent {
        lane: Lane,
        after: Option<u64>,
        max_records: usize,
        reply: oneshot::Sender<Result<Vec<Record>, StoreError>>,
    },
    Ack {
        lane: Lane,
        id: u64,
    },
    /// The id the next record of a lane will get: where "live" starts after a reconnect.
    NextId {
        lane: Lane,
        reply: oneshot::Sender<u64>,
    },
    Stats {
        reply: oneshot::Sender<StoreStats>,
    },
    /// The retained state message as of now (published at every birth).
    CurrentState {
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    /// A reloaded config: the alarm engine is rebuilt, keeping every point's state.
    Reconfigure {
        site: Box<firmware_config::SiteConfig>,
    },
    /// An alarm from outside the engine (a linkage output that cannot be written).
    ExternalAlarm(Box<hazgate_wire::AlarmEvent>),
    /// Where level changes go for linkage outputs; it is told every level at once.
    SetLinkage(mpsc::Sender<Vec<crate::alarm::ProcessLevel>>),
}

/// The store task's address, for the uplink.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Command>,
    /// Woken whenever new records are ready to send.
    pub ready: Arc<Notify>,
}

impl StoreHandle {
    pub async fn unsent(
        &self,
        lane: Lane,
        after: Option<u64>,
        max_records: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Unsent {
                lane,
                after,
                max_records,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn ack(&self, lane: Lane, id: u64) {
        let _ = self.tx.send(Command::Ack { lane, id }).await;
    }

    pub async fn next_id(&self, lane: Lane) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::NextId { lane, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    pub async fn current_state(&self) -> Option<Vec<u8>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::CurrentState { reply }).await.ok()?;
        rx.await.ok().flatten()
    }

    pub async fn external_alarm(&self, event: hazgate_wire::AlarmEvent) {
        let _ = self.tx.send(Command::ExternalAlarm(Box::new(event))).await;
    }

    pub async fn set_linkage(&self, linkage: mpsc::Sender<Vec<crate::alarm::ProcessLevel>>) {
        let _ = self.tx.send(Command::SetLinkage(linkage)).await;
    }

    pub async fn reconfigure(&self, site: firmware_config::SiteConfig) {
        let _ = self
            .tx
            .send(Command::Reconfigure {
                site: Box::new(site),
            })
            .await;
    }

    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Stats { reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }
}

pub struct StoreTask {
    store: Store,
    alarms: AlarmEngine,
    /// The latest alarm snapshot, for the snapshot writer (taken at shutdown).
    snapshots: Option<tokio::sync::watch::Sender<Option<Arc<snapshot::Snapshot>>>>,
    snapshot_writer: Option<tokio::task::JoinHandle<()>>,
    linkage: Option<mpsc::Sender<Vec<crate::alarm::ProcessLevel>>>,
    origin: Origin,
    next_seq: BTreeMap<u8, u64>,
    pending: Vec<Reading>,
    metrics: Arc<Metrics>,
    ready: Arc<Notify>,
}

/// Starts the store task. Readings arrive on `readings`; when that channel closes (all
/// pollers stopped), the task writes what it holds, syncs, and ends.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    store: Store,
    alarms: AlarmEngine,
    dir: std::path::PathBuf,
    max_seq_by_topic: BTreeMap<u8, u64>,
    origin: Origin,
    readings: mpsc::Receiver<Vec<Reading>>,
    sync_interval: Duration,
    metrics: Arc<Metrics>,
) -> (StoreHandle, tokio::task::JoinHandle<()>) {
    let (tx, commands) = mpsc::channel(256);
    let ready = Arc::new(Notify::new());
    let next_seq = max_seq_by_topic
        .into_iter()
        .map(|(t, s)| (t, s + 1))
        .collect();
    let (snapshots, snapshot_writer) = spawn_snapshot_writer(dir.clone(), metrics.clone());
    let task = StoreTask {
        store,
        alarms,
        snapshots: Some(snapshots),
        snapshot_writer: Some(snapshot_writer),
        linkage: None,
        origin,
        next_seq,
        pending: Vec::new(),
        metrics,
        ready: ready.clone(),
    };
    let join = tokio::spawn(task.run(readings, commands, sync_interval));
    (StoreHandle { tx, ready }, join)
}

/// Writes alarm snapshots as they come, newest first: while one is being written, newer
/// ones replace each other and only the last is written next.
type SnapshotWriter = (
    tokio::sync::watch::Sender<Option<Arc<snapshot::Snapshot>>>,
    tokio::task::JoinHandle<()>,
);

fn spawn_snapshot_writer(dir: std::path::PathBuf, metrics: Arc<Metrics>) -> SnapshotWriter {
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<Arc<snapshot::Snapshot>>>(None);
    let writer = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some(snap) = rx.borrow_and_update().clone() else {
                continue;
            };
            let dir = dir.clone();
            match tokio::task::spawn_blocking(move || snapshot::save(&dir, &snap)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    error!("alarm state could not be saved: {e}");
                }
                Err(e) => error!("alarm state writer failed: {e}"),
            }
        }
    });
    (tx, writer)
}

/// Runs blocking file work without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl StoreTask {
    async fn run(
        mut self,
        mut readings: mpsc::Receiver<Vec<Reading>>,
        mut commands: mpsc::Receiver<Command>,
        sync_interval: Duration,
    ) {
        let mut tick = tokio::time::interval(sync_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut commands_open = true;
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => commands_open = false,
                },
                batch = readings.recv() => match batch {
                    Some(batch) => {
                        self.evaluate(&batch);
                        self.pending.extend(batch);
                    }
                    None => {
                        self.flush();
                        // Polling has stopped: end the linkage task, which holds a handle
                        // to this one and would otherwise keep it alive.
                        self.linkage = None;
                        // Keep answering the uplink until it is done with its last messages.
                        while let Some(cmd) = commands.recv().await {
                            self.handle(cmd);
                        }
                        // The writer finishes the newest snapshot, then ends.
                        self.snapshots = None;
                        if let Some(w) = self.snapshot_writer.take() {
                            let _ = w.await;
                        }
                        return;
                    }
                },
                _ = tick.tick() => self.flush(),
            }
        }
    }

    fn seq(&mut self, topic: TopicKind) -> u64 {
        let next = self.next_seq.entry(topic.code()).or_insert(1);
        let seq = *next;
        *next += 1;
        seq
    }

    /// Runs the alarm engine over fresh readings. Every event, and the new state, goes into
    /// the alarm lane, which syncs before it returns: an alarm is on disk before anything
    /// reports it, and the uplink is woken at once, not at the next tick.
    fn evaluate(&mut self, batch: &[Reading]) {
        if self.alarms.is_empty() {
            return;
        }
        let events = self.alarms.evaluate(batch);
        if events.is_empty() {
            return;
        }
        let changes = self.alarms.take_changes();
        if let (Some(linkage), false) = (&self.linkage, changes.is_empty()) {
            if linkage.try_send(changes).is_err() {
                error!("linkage outputs are not keeping up; level changes dropped");
            }
        }
        for event in events {
            self.record_alarm(event);
        }
        // The events are synced: the uplink may send them now, while the rest is written.
        self.ready.notify_one();
        if let Some((seq, ts, payload)) = self.state_message() {
            self.append_alarm_lane(TopicKind::State, seq, ts, &payload);
        }
        self.ready.notify_one();
        // The snapshot goes to its own writer: its fsyncs must not hold up the next alarm.
        if let Some(s) = &self.snapshots {
            let _ = s.send(Some(Arc::new(self.alarms.snapshot())));
        }
    }

    /// Gives an alarm event its seq, logs it, and writes it to the synced alarm lane.
    fn record_alarm(&mut self, mut event: hazgate_wire::AlarmEvent) {
        let seq = self.seq(TopicKind::Alarm);
        event.envelope = self.origin.envelope(seq);
        let what = match (&event.device, &event.point, &event.hazard_source) {
            (Some(d), Some(p), _) => format!("{d}.{p}"),
            (_, _, Some(h)) => format!("hazard source {h}"),
            _ => "site".to_string(),
        };
        info!(event = ?event.event, condition = ?event.condition, level = ?event.level, previous = ?event.previous, value = ?event.value, limit = ?event.limit, "ALARM {what}");
        let ts = event.ts;
        let payload = Message::Alarm(event).to_json();
        self.append_alarm_lane(TopicKind::Alarm, seq, ts, &payload);
    }

    fn state_message(&mut self) -> Option<(u64, i64, Vec<u8>)> {
        if self.alarms.is_empty() {
            return None;
        }
        let seq = self.seq(TopicKind::State);
        let ts = crate::poll::cycle::now_ms();
        Some((
            seq,
            ts,
            Message::State(self.alarms.state(self.origin.envelope(seq), ts)).to_json(),
        ))
    }

    fn append_alarm_lane(&mut self, topic: TopicKind, seq: u64, ts: i64, payload: &[u8]) {
        let store = &mut self.store;
        if let Err(e) = blocking(|| store.append(Lane::Alarm, topic.code(), seq, ts, ts, payload)) {
            self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            error!("{topic} message could not be stored: {e}");
        }
    }

    /// Pending readings become telemetry messages, everything is synced, evictions are
    /// reported, and the uplink is woken.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(MAX_BATCH) {
            let (min_ts, max_ts) = chunk.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
                (lo.min(r.ts), hi.max(r.ts))
            });
            let seq = self.seq(TopicKind::Telemetry);
            let payload = Message::Telemetry(Telemetry {
                envelope: self.origin.envelope(seq),
                readings: chunk.to_vec(),
            })
            .to_json();
            let store = &mut self.store;
            if let Err(e) = blocking(|| {
                store.append(
                    Lane::Telemetry,
                    TopicKind::Telemetry.code(),
                    seq,
                    min_ts,
                    max_ts,
                    &payload,
                )
            }) {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                error!(
                    "telemetry of {} readings could not be stored: {e}",
                    chunk.len()
                );
            }
        }
        let store = &mut self.store;
        if let Err(e) = blocking(|| store.sync()) {
            self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            error!("store sync failed: {e}");
        }
        let gaps = self.store.take_gaps();
        for gap in gaps {
            let seq = self.seq(TopicKind::Telemetry);
            warn!(
                from_ts = gap.from_ts,
                to_ts = gap.to_ts,
                messages = gap.records,
                "store full: oldest telemetry dropped, reporting the gap"
            );
            let payload = Message::Gap(Gap {
                envelope: self.origin.envelope(seq),
                from_ts: gap.from_ts,
                to_ts: gap.to_ts,
                first_seq: gap.first_seq,
                last_seq: gap.last_seq,
                messages: gap.records,
            })
            .to_json();
            // The alarm lane: never evicted and sent first, so the gap report itself survives.
            let store = &mut self.store;
            if let Err(e) = blocking(|| {
                store.append(
                    Lane::Alarm,
                    TopicKind::Telemetry.code(),
                    seq,
                    gap.from_ts,
                    gap.to_ts,
                    &payload,
                )
            }) {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                error!("gap report could not be stored: {e}");
            }
        }
        self.update_metrics();
        self.ready.notify_one();
    }

    fn update_metrics(&self) {
        let s = self.store.stats();
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
            .min();
        let age = oldest
            .map(|ts| (crate::poll::cycle::now_ms() - ts).max(0) as u64)
            .unwrap_or(0);
        m.store_oldest_unsent_age_ms.store(age, Ordering::Relaxed);
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Unsent {
                lane,
                after,
                max_records,
                reply,
            } => {
                let store = &mut self.store;
                let _ = reply.send(blocking(|| {
                    store.unsent(lane, after, max_records, usize::MAX)
                }));
            }
            Command::Ack { lane, id } => self.store.ack(lane, id),
            Command::NextId { lane, reply } => {
                let _ = reply.send(self.store.next_id(lane));
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.store.stats());
            }
            Command::CurrentState { reply } => {
                let _ = reply.send(self.state_message().map(|(_, _, payload)| payload));
            }
            Command::ExternalAlarm(event) => {
                self.record_alarm(*event);
                self.ready.notify_one();
            }
            Command::SetLinkage(linkage) => {
                let _ = linkage.try_send(self.alarms.process_levels());
                self.linkage = Some(linkage);
            }
            Command::Reconfigure { site } => {
                self.alarms = AlarmEngine::new(&site, Some(self.alarms.snapshot()));
            }
        }
    }
}
