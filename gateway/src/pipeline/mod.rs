//! The pipeline: readings as acquired → derived points → alarms → five-minute statistics →
//! report by exception → store. One task, in
//! that order, so a derived point is judged like any other, an alarm event is handed to the store (which syncs it before the uplink may send it)
//! before the telemetry that caused it, and linkage outputs hear of a level change at once.
//!
//! It also keeps what is not a stream: the latest retained state (bounded, coalesced:
//! never a history of states) for the uplink to publish at every connection and change,
//! the alarm snapshot for restarts, and the gateway's own equipment alarms (the store
//! failing, a linkage output that cannot be written) in the state.

pub mod content;
mod encode;
mod point_map;
pub mod report;
pub mod state;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tracing::{error, info};

use firmware_config::SiteConfig;
use hazgate_wire::{
    Acknowledgement, Action, ActiveAlarm, AlarmEvent, Condition, EventKind, Level, Message,
    OutputState, Quality, Reading, Reason, Stats, Telemetry, TopicKind, STATS_PERIOD_MS,
};

use crate::alarm::linkage::LinkageHandle;
use crate::alarm::{snapshot, AckOutcome, AlarmEngine};
use crate::clock::ClockWatch;
use crate::derive::Deriver;
use crate::envelope::{Origin, Seqs};
use crate::metrics::Metrics;
use crate::poll::Acquired;
use crate::store::task::StoreHandle;
use crate::store::Lane;

/// Readings per telemetry message: about 60 KB of JSON, well under broker packet limits.
pub const MAX_BATCH: usize = 500;
/// How long a telemetry message waits for more device cycles before it is written and
/// sent: a burst of devices becomes one message, and latency stays a few milliseconds.
pub const LINGER: Duration = Duration::from_millis(5);
/// The level of the gateway's own `store_failed` alarm: it must reach people, and as an
/// equipment alarm it never colours a hazard source or the site.
const STORE_FAILED_LEVEL: Level = Level::Orange;

/// Who acknowledges with the edge's push-button.
pub const LOCAL_OPERATOR: &str = "本地操作员 (local operator)";

/// The site's acknowledge push-button and whether it last read on.
struct AckButton {
    device: Arc<str>,
    point: Arc<str>,
    was_on: bool,
}

fn ack_button(site: &SiteConfig) -> Option<AckButton> {
    site.site.ack_button.as_ref().map(|b| AckButton {
        device: b.device.as_str().into(),
        point: b.point.as_str().into(),
        was_on: false,
    })
}

/// The `ack` event of one of the gateway's own equipment alarms.
fn equipment_ack_event(a: &ActiveAlarm, ack: &Acknowledgement) -> AlarmEvent {
    AlarmEvent {
        envelope: hazgate_wire::Envelope {
            v: hazgate_wire::VERSION,
            site: Arc::from(""),
            gateway: Arc::from(""),
            seq: 0,
        },
        event: EventKind::Ack,
        condition: a.condition,
        device: Some(a.device.clone()),
        point: Some(a.point.clone()),
        hazard_source: a.hazard_source.clone(),
        level: Some(a.level),
        previous: None,
        value: a.value,
        crossed: None,
        limit: a.limit,
        unit: a.unit.clone(),
        label: a.label.clone(),
        ts: crate::clock::wall_ms(),
        occurrence: a.occurrence.clone(),
        ack: Some(ack.clone()),
    }
}

/// The latest retained state, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMessage {
    pub seq: u64,
    pub payload: Vec<u8>,
}

enum Command {
    /// A reloaded config: the alarm engine is rebuilt, keeping every point's state.
    Reconfigure(Box<SiteConfig>),
    /// An alarm from outside the engine (a linkage output that cannot be written or is not
    /// confirmed), with what tells it apart in the state (the output).
    ExternalAlarm(Box<AlarmEvent>, String),
    /// A linkage output's state changed.
    OutputState(Box<OutputState>),
    /// Where level changes go for linkage outputs; it is told every level at once.
    SetLinkage(LinkageHandle),
    /// A command from the central side, already checked to be for this gateway.
    Remote(Box<hazgate_wire::Command>),
}

/// The pipeline's address.
#[derive(Clone)]
pub struct PipelineHandle {
    tx: mpsc::Sender<Command>,
}

impl PipelineHandle {
    pub async fn external_alarm(&self, event: AlarmEvent, key: String) {
        let _ = self
            .tx
            .send(Command::ExternalAlarm(Box::new(event), key))
            .await;
    }

    pub async fn output_state(&self, state: OutputState) {
        let _ = self.tx.send(Command::OutputState(Box::new(state))).await;
    }

    pub async fn set_linkage(&self, linkage: LinkageHandle) {
        let _ = self.tx.send(Command::SetLinkage(linkage)).await;
    }

    /// Where the uplink hands commands from the central side. It does not keep the
    /// pipeline alive: at shutdown the pipeline ends with its last real handle.
    pub fn command_sink(&self) -> CommandSink {
        CommandSink {
            tx: self.tx.downgrade(),
        }
    }

    pub async fn reconfigure(&self, site: SiteConfig) {
        let _ = self.tx.send(Command::Reconfigure(Box::new(site))).await;
    }
}

/// Takes commands from the central side (acknowledgements, resets) to the pipeline while
/// it runs.
#[derive(Clone)]
pub struct CommandSink {
    tx: mpsc::WeakSender<Command>,
}

impl CommandSink {
    /// A command already checked to be for this gateway; dropped if the pipeline has
    /// ended (the central side sends it again after the next start).
    pub async fn command(&self, command: hazgate_wire::Command) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Command::Remote(Box::new(command))).await;
        }
    }
}

/// What the pipeline needs.
pub struct Parts {
    pub site: SiteConfig,
    pub restored: Option<snapshot::Snapshot>,
    pub origin: Origin,
    pub seqs: Arc<Seqs>,
    pub store: StoreHandle,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<ClockWatch>,
    /// Where the pollers learn which devices are abnormal (faster polling).
    pub abnormal: Arc<crate::alarm::abnormal::Abnormal>,
}

struct Pipeline {
    derive: Deriver,
    alarms: AlarmEngine,
    /// Equipment alarms of the gateway itself and of linkage outputs, for the state, by
    /// what raised them.
    equipment: BTreeMap<String, ActiveAlarm>,
    /// Linkage outputs by "device.point", for the state.
    outputs: BTreeMap<String, OutputState>,
    linkage: Option<LinkageHandle>,
    pending: Vec<Reading>,
    origin: Origin,
    seqs: Arc<Seqs>,
    store: StoreHandle,
    state: watch::Sender<Option<Arc<StateMessage>>>,
    snapshots: watch::Sender<Option<Arc<snapshot::Snapshot>>>,
    clock: Arc<ClockWatch>,
    abnormal: Arc<crate::alarm::abnormal::Abnormal>,
    metrics: Arc<Metrics>,
    /// The gateway's store_failed alarm is raised.
    store_failed: bool,
    clock_ok: bool,
    /// Readings repaired to pass the content rules (logged now and then).
    repaired: u64,
    /// The acknowledge push-button and whether it last read on.
    ack_button: Option<AckButton>,
    /// Which readings go on the wire.
    report: report::ReportFilter,
    /// Five-minute statistics of every poll.
    stats: stats::PeriodStats,
    /// Telemetry and statistics payloads: JSON, or compressed.
    encoder: encode::Encoder,
}

/// Starts the pipeline on `readings`. It ends when that channel closes (polling stopped)
/// and every handle is gone, after handing the store everything it holds.
pub fn spawn(
    parts: Parts,
    readings: mpsc::Receiver<Acquired>,
    sync_interval: Duration,
) -> (
    PipelineHandle,
    watch::Receiver<Option<Arc<StateMessage>>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, commands) = mpsc::channel(256);
    let (state, state_rx) = watch::channel(None);
    let (snapshots, snapshot_writer) =
        spawn_snapshot_writer(parts.site.store.dir.clone(), parts.metrics.clone());
    let pipeline = Pipeline {
        derive: Deriver::new(&parts.site, None),
        alarms: AlarmEngine::new(&parts.site, parts.restored),
        equipment: BTreeMap::new(),
        outputs: BTreeMap::new(),
        linkage: None,
        pending: Vec::new(),
        origin: parts.origin,
        seqs: parts.seqs,
        store: parts.store,
        state,
        snapshots,
        clock: parts.clock,
        abnormal: parts.abnormal,
        metrics: parts.metrics,
        store_failed: false,
        clock_ok: true,
        repaired: 0,
        ack_button: ack_button(&parts.site),
        report: report::ReportFilter::new(&parts.site),
        stats: stats::PeriodStats::default(),
        encoder: encode::Encoder::for_site(&parts.site),
    };
    let join = tokio::spawn(async move {
        pipeline.run(readings, commands, sync_interval).await;
        let _ = snapshot_writer.await;
    });
    (PipelineHandle { tx }, state_rx, join)
}

/// Writes alarm snapshots as they come, newest first: while one is being written, newer
/// ones replace each other and only the last is written next. Ends when the sender goes.
fn spawn_snapshot_writer(
    dir: std::path::PathBuf,
    metrics: Arc<Metrics>,
) -> (
    watch::Sender<Option<Arc<snapshot::Snapshot>>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = watch::channel::<Option<Arc<snapshot::Snapshot>>>(None);
    let writer = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some(snap) = rx.borrow_and_update().clone() else {
                continue;
            };
            let dir = dir.clone();
            match tokio::task::spawn_blocking(move || snapshot::save(&dir, &snap)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    metrics
                        .store_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    error!("alarm state could not be saved: {e}");
                }
                Err(e) => error!("alarm state writer failed: {e}"),
            }
        }
    });
    (tx, writer)
}

impl Pipeline {
    async fn run(
        mut self,
        mut readings: mpsc::Receiver<Acquired>,
        mut commands: mpsc::Receiver<Command>,
        sync_interval: Duration,
    ) {
        let mut tick = tokio::time::interval(sync_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut store_failed = self.store.failed.clone();
        let mut commands_open = true;
        // A new site shows its level (calm) at once, not at its first alarm; a restored
        // alarm keeps its device on the faster poll.
        self.publish_state();
        self.abnormal.set(self.alarms.abnormal_devices());
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => commands_open = false,
                },
                changed = store_failed.changed() => {
                    if changed.is_ok() {
                        let failed = *store_failed.borrow_and_update();
                        self.on_store_failed(failed).await;
                    }
                }
                batch = readings.recv() => match batch {
                    Some(batch) => {
                        self.take(batch).await;
                        // Devices polled together (a whole bus every second) arrive within
                        // milliseconds of each other: what comes within LINGER goes in the
                        // same message, then it is written and sent at once, not at the
                        // next sync. Alarms were judged on arrival either way.
                        let until = tokio::time::Instant::now() + LINGER;
                        while self.pending.len() < MAX_BATCH {
                            match tokio::time::timeout_at(until, readings.recv()).await {
                                Ok(Some(batch)) => self.take(batch).await,
                                _ => break,
                            }
                        }
                        self.write_pending().await;
                    }
                    None => break,
                },
                _ = tick.tick() => self.sync().await,
            }
        }
        self.sync().await;
        // Polling has stopped: linkage tasks end with their handle.
        self.linkage = None;
        // Linkage failures still on their way are recorded until the last handle goes.
        while let Some(cmd) = commands.recv().await {
            self.handle(cmd).await;
        }
        self.store.sync().await;
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::ExternalAlarm(mut event, key) => {
                self.track_equipment(&mut event, key);
                self.record_alarm(*event).await;
                self.publish_state();
            }
            Command::OutputState(state) => {
                let key = format!("{}.{}", state.device, state.point);
                self.outputs.insert(key, *state);
                self.publish_state();
            }
            Command::SetLinkage(linkage) => {
                linkage.set(&self.alarms.process_levels());
                self.linkage = Some(linkage);
            }
            Command::Remote(c) => self.on_command(*c).await,
            Command::Reconfigure(site) => {
                self.ack_button = ack_button(&site);
                self.report.reconfigure(&site);
                self.encoder = encode::Encoder::for_site(&site);
                let previous = std::mem::take(&mut self.derive);
                self.derive = Deriver::new(&site, Some(previous));
                self.alarms = AlarmEngine::new(&site, Some(self.alarms.snapshot()));
                self.abnormal.set(self.alarms.abnormal_devices());
                self.publish_state();
            }
        }
    }

    /// One device cycle's readings: flagged if the wall clock is implausible, evaluated
    /// for alarms (on monotonic time), then queued for the next telemetry message.
    async fn take(&mut self, mut batch: Acquired) {
        let look = self.clock.look();
        if let Some(step) = look.stepped_ms {
            tracing::warn!(step_ms = step, "the wall clock stepped; alarm timing is unaffected (monotonic), readings keep their wall time");
        }
        if look.plausible != self.clock_ok {
            self.clock_ok = look.plausible;
            if look.plausible {
                info!("the wall clock is plausible again");
            } else {
                error!(wall_ms = look.wall_ms, "the wall clock is implausible (before this build, or decades ahead): readings are flagged with reason clock until it is set");
            }
        }
        if !look.plausible {
            for r in &mut batch.readings {
                let q = std::mem::replace(&mut r.quality, Quality::Good);
                r.quality = q.worst(Quality::uncertain(
                    Reason::Clock,
                    "the gateway's clock is implausible; the time stamp is not to be trusted",
                ));
            }
        }
        self.derive.apply(batch.clock, &mut batch.readings);
        for r in &mut batch.readings {
            if let Some(problem) = content::repair_reading(r) {
                self.repaired += 1;
                if self.repaired.is_power_of_two() {
                    tracing::warn!(device = %r.device, point = %r.point, repaired = self.repaired, "a reading broke the content rules and was repaired before sending: {problem}");
                }
            }
        }
        self.evaluate(&mut batch).await;
        self.watch_ack_button(&batch.readings).await;
        // Statistics count every poll; readings stamped by an implausible clock would
        // land in a period they do not belong to.
        if look.plausible {
            self.stats.add(&batch.readings);
        }
        self.report.retain(batch.clock, &mut batch.readings);
        self.pending.append(&mut batch.readings);
    }

    /// The acknowledge push-button turning on acknowledges, as the local operator, every
    /// alarm not yet acknowledged.
    async fn watch_ack_button(&mut self, readings: &[Reading]) {
        let Some(button) = &mut self.ack_button else {
            return;
        };
        let Some(r) = readings
            .iter()
            .rev()
            .find(|r| r.device == button.device && r.point == button.point)
        else {
            return;
        };
        let on = !matches!(r.quality, Quality::Bad { .. })
            && r.value
                .as_ref()
                .and_then(|v| v.as_f64())
                .is_some_and(|v| v != 0.0);
        let pressed = on && !button.was_on;
        button.was_on = on;
        if !pressed {
            return;
        }
        let ack = Acknowledgement {
            by: LOCAL_OPERATOR.to_string(),
            at: crate::clock::wall_ms(),
            note: None,
            command: None,
        };
        let mut events = self.alarms.acknowledge_all(&ack);
        for a in self
            .equipment
            .values_mut()
            .filter(|a| a.acknowledged.is_none())
        {
            a.acknowledged = Some(ack.clone());
            events.push(equipment_ack_event(a, &ack));
        }
        info!(alarms = events.len(), "acknowledge button pressed");
        self.after_acknowledgements(events).await;
    }

    /// A command from the central side: an acknowledgement or an output reset.
    async fn on_command(&mut self, c: hazgate_wire::Command) {
        match c.action {
            Action::Ack { occurrence, note } => {
                let ack = Acknowledgement {
                    by: c.by,
                    at: c.ts,
                    note,
                    command: Some(c.id.clone()),
                };
                let outcome = match self.alarms.acknowledge(&occurrence, &ack) {
                    AckOutcome::Unknown => self.acknowledge_equipment(&occurrence, &ack),
                    known => known,
                };
                match outcome {
                    AckOutcome::Applied(event) => {
                        info!(occurrence = %occurrence, by = %ack.by, command = %c.id, "alarm acknowledged");
                        self.after_acknowledgements(vec![*event]).await;
                    }
                    AckOutcome::Already => {
                        info!(occurrence = %occurrence, command = %c.id, "acknowledged already; nothing to do")
                    }
                    AckOutcome::Unknown => {
                        tracing::warn!(occurrence = %occurrence, command = %c.id, "acknowledgement of an alarm this gateway does not have (cleared already?): ignored")
                    }
                }
            }
            Action::Reset { device, point } => {
                let known = self
                    .linkage
                    .as_ref()
                    .is_some_and(|l| l.reset(&device, &point));
                if known {
                    info!(output = %format!("{device}.{point}"), by = %c.by, command = %c.id, "reset command applied");
                } else {
                    tracing::warn!(output = %format!("{device}.{point}"), command = %c.id, "reset of an output this gateway does not drive: ignored");
                }
            }
        }
    }

    fn acknowledge_equipment(&mut self, occurrence: &str, ack: &Acknowledgement) -> AckOutcome {
        let Some(a) = self
            .equipment
            .values_mut()
            .find(|a| a.occurrence.as_deref() == Some(occurrence))
        else {
            return AckOutcome::Unknown;
        };
        if a.acknowledged.is_some() {
            return AckOutcome::Already;
        }
        a.acknowledged = Some(ack.clone());
        AckOutcome::Applied(Box::new(equipment_ack_event(a, ack)))
    }

    /// Acknowledgements applied: their events recorded, outputs that silence on them
    /// told, the state and the snapshot renewed.
    async fn after_acknowledgements(&mut self, events: Vec<AlarmEvent>) {
        if events.is_empty() {
            return;
        }
        let changes = self.alarms.take_changes();
        if let (Some(linkage), false) = (&self.linkage, changes.is_empty()) {
            linkage.set(&changes);
        }
        for e in events {
            self.record_alarm(e).await;
        }
        self.publish_state();
        let _ = self.snapshots.send(Some(Arc::new(self.alarms.snapshot())));
    }

    /// Every event goes to the store's alarm lane (synced there before it is sent), the
    /// level changes to linkage, the new state to the uplink and the snapshot writer.
    async fn evaluate(&mut self, batch: &mut Acquired) {
        if self.alarms.is_empty() {
            return;
        }
        let events = self.alarms.evaluate(batch.clock, &mut batch.readings);
        // Outputs see every value of the points they follow (release thresholds) and read
        // back (feedback, reset inputs), not only level changes.
        if let Some(linkage) = &self.linkage {
            for r in &batch.readings {
                linkage.observe(r, || self.alarms.linkage_view(&r.device, &r.point));
            }
        }
        if events.is_empty() {
            return;
        }
        let changes = self.alarms.take_changes();
        if !changes.is_empty() {
            self.abnormal.set(self.alarms.abnormal_devices());
        }
        if let (Some(linkage), false) = (&self.linkage, changes.is_empty()) {
            linkage.set(&changes);
        }
        for event in events {
            self.record_alarm(event).await;
        }
        self.publish_state();
        let _ = self.snapshots.send(Some(Arc::new(self.alarms.snapshot())));
    }

    /// Gives an alarm event its seq, logs it, keeps equipment alarms for the state, and
    /// hands it to the store's alarm lane.
    async fn record_alarm(&mut self, mut event: AlarmEvent) {
        let seq = self.seqs.take(TopicKind::Alarm);
        event.envelope = self.origin.envelope(seq);
        if let Some(problem) = content::repair_event(&mut event) {
            tracing::warn!("alarm event repaired before sending: {problem}");
        }
        let what = match (&event.device, &event.point, &event.hazard_source) {
            (Some(d), Some(p), _) => format!("{d}.{p}"),
            (_, _, Some(h)) => format!("hazard source {h}"),
            _ => "site".to_string(),
        };
        info!(event = %wire_name(&event.event), condition = %wire_name(&event.condition), level = %wire_name(&event.level), previous = %wire_name(&event.previous), value = %wire_name(&event.value), limit = %wire_name(&event.limit), "ALARM {what}");
        let ts = event.ts;
        self.store
            .append(
                Lane::Alarm,
                TopicKind::Alarm,
                seq,
                (ts, ts),
                Message::Alarm(event).to_json(),
            )
            .await;
    }

    /// Keeps the gateway's own equipment alarms for the state, and names their
    /// occurrences: opened at the raise, the same until the clear.
    fn track_equipment(&mut self, event: &mut AlarmEvent, key: String) {
        let (Some(device), Some(point)) = (&event.device, &event.point) else {
            return;
        };
        match event.level {
            Some(level) if event.event != EventKind::Clear => {
                let kept = self.equipment.get(&key);
                let occurrence: Arc<str> =
                    kept.and_then(|a| a.occurrence.clone()).unwrap_or_else(|| {
                        hazgate_wire::occurrence_id(device, point, event.condition, event.ts).into()
                    });
                let acknowledged = kept.and_then(|a| a.acknowledged.clone());
                event.occurrence = Some(occurrence.clone());
                self.equipment.insert(
                    key,
                    ActiveAlarm {
                        occurrence: Some(occurrence),
                        acknowledged,
                        device: device.clone(),
                        point: point.clone(),
                        hazard_source: event.hazard_source.clone(),
                        condition: event.condition,
                        level,
                        since: event.ts,
                        value: event.value,
                        crossed: event.crossed,
                        limit: event.limit,
                        unit: event.unit.clone(),
                        label: event.label.clone(),
                    },
                );
            }
            _ => {
                if let Some(a) = self.equipment.remove(&key) {
                    event.occurrence = a.occurrence;
                }
            }
        }
    }

    /// The store fails or recovers: the gateway's own equipment alarm, raised or cleared.
    async fn on_store_failed(&mut self, failed: bool) {
        if failed == self.store_failed {
            return;
        }
        self.store_failed = failed;
        let event = AlarmEvent {
            envelope: self.origin.envelope(0),
            event: if failed {
                EventKind::Raise
            } else {
                EventKind::Clear
            },
            condition: Condition::StoreFailed,
            device: Some(self.origin.gateway.clone()),
            point: Some("store".into()),
            hazard_source: None,
            level: failed.then_some(STORE_FAILED_LEVEL),
            previous: (!failed).then_some(STORE_FAILED_LEVEL),
            value: None,
            crossed: None,
            limit: None,
            unit: None,
            label: Some(if failed {
                "存储故障：数据暂存内存 (store failed: held in memory)".to_string()
            } else {
                "存储恢复 (store writes again)".to_string()
            }),
            ts: crate::clock::wall_ms(),
            occurrence: None,
            ack: None,
        };
        let mut event = event;
        self.track_equipment(&mut event, "store".into());
        self.record_alarm(event).await;
        self.publish_state();
    }

    /// The newest state replaces any not yet published: the uplink publishes only the
    /// latest, at every change and every connection.
    fn publish_state(&mut self) {
        let seq = self.seqs.take(TopicKind::State);
        let ts = crate::clock::wall_ms();
        let mut state = self.alarms.state(self.origin.envelope(seq), ts);
        state.alarms.extend(self.equipment.values().cloned());
        state.outputs = self.outputs.values().cloned().collect();
        let payload = state::encode(state, state::MAX_STATE_BYTES);
        self.state
            .send_replace(Some(Arc::new(StateMessage { seq, payload })));
    }

    /// Pending readings become telemetry messages, written to the store (and so sent).
    async fn write_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(MAX_BATCH) {
            let range = chunk.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
                (lo.min(r.ts), hi.max(r.ts))
            });
            let seq = self.seqs.take(TopicKind::Telemetry);
            let payload = self.encoder.encode(Message::Telemetry(Telemetry {
                envelope: self.origin.envelope(seq),
                readings: chunk.to_vec(),
            }));
            self.store
                .append(Lane::Telemetry, TopicKind::Telemetry, seq, range, payload)
                .await;
        }
    }

    /// Statistics of the periods that are over, as `stats` messages.
    async fn write_stats(&mut self) {
        for (from_ts, points) in self.stats.close_due(crate::clock::wall_ms()) {
            let to_ts = from_ts + STATS_PERIOD_MS;
            for chunk in points.chunks(MAX_BATCH) {
                let seq = self.seqs.take(TopicKind::Stats);
                let payload = self.encoder.encode(Message::Stats(Stats {
                    envelope: self.origin.envelope(seq),
                    from_ts,
                    to_ts,
                    points: chunk.to_vec(),
                }));
                self.store
                    .append(
                        Lane::Telemetry,
                        TopicKind::Stats,
                        seq,
                        (from_ts, to_ts - 1),
                        payload,
                    )
                    .await;
            }
        }
    }

    /// Every sync interval: the store makes what was written durable and reports gaps.
    async fn sync(&mut self) {
        self.write_pending().await;
        self.write_stats().await;
        self.store.sync().await;
        self.metrics.last_flush_mono_ms.store(
            crate::clock::mono_ms(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// A field of an event as the log shows it: its name on the wire (`red`, `raise`), a
/// number, or `none`, never Rust's `Some(Red)`.
fn wire_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) => "none".into(),
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}
