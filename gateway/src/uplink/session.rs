//! One connection to the broker at a time. A record leaves the store only when the broker
//! acknowledged the message that carried it; after any reconnect everything unacknowledged
//! is sent again from the store, alarms first, then live telemetry, with the backlog behind
//! it on a bounded share of the in-flight window.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use hazgate_wire::{Health, Presence, StoreHealth, TopicKind};

use hazgate_common::{Backoff, MAX_PACKET};

use super::settings::UplinkSettings;
use super::UplinkError;
use crate::metrics::Metrics;
use crate::store::task::{Place, StoreHandle};
use crate::store::{Lane, Record};

/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a clean shutdown waits for the last acknowledgements.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Records fetched from the store at once per queue.
const FETCH: usize = 32;
/// A connection counts as working (and the backoff starts over) once it has stayed up
/// this long or the broker acknowledged something on it.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Runs the uplink until `stop` turns true: connects, sends, reconnects with backoff.
pub async fn run(
    settings: UplinkSettings,
    store: StoreHandle,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    // Capped at 30 s: jitter still spreads thousands of gateways over 15 to 30 s, and alarms
    // wait at most that long after the broker returns.
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut connections = 0u64;
    let mut failures = 0u32;
    let mut settings = settings;
    metrics
        .disconnected_since_mono_ms
        .store(crate::clock::mono_ms(), Ordering::Relaxed);
    loop {
        if *stop.borrow() {
            return;
        }
        match Session::connect(&settings).await {
            Ok(mut session) => {
                connections += 1;
                if connections > 1 {
                    metrics.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                info!(broker = %settings.uplink.broker.host, port = settings.uplink.broker.port, "connected to the broker");
                metrics.connected.store(1, Ordering::Relaxed);
                metrics
                    .disconnected_since_mono_ms
                    .store(0, Ordering::Relaxed);
                let up = Instant::now();
                let ended = session
                    .serve(&mut settings, &store, &metrics, &mut stop)
                    .await;
                metrics.connected.store(0, Ordering::Relaxed);
                metrics.inflight.store(0, Ordering::Relaxed);
                metrics
                    .disconnected_since_mono_ms
                    .store(crate::clock::mono_ms(), Ordering::Relaxed);
                // A broker that takes the connection and drops it at once (a bad ACL, a
                // full session store) must not be hammered: only a connection that held
                // or delivered something resets the backoff.
                if session.delivered || up.elapsed() >= STABLE_AFTER {
                    backoff.reset();
                    failures = 0;
                }
                match ended {
                    Ok(()) => return,
                    Err(e) => warn!("connection to the broker lost: {e}; unacknowledged messages stay in the store"),
                }
            }
            Err(e) => {
                failures += 1;
                // Say it once, then now and then: an outage must not flood the log.
                if failures == 1 || failures.is_power_of_two() {
                    warn!(attempts = failures, "cannot connect to the broker: {e}");
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => {}
        }
    }
}

/// A message on the command topic: applied if it is a command for this gateway, else
/// refused in the log.
async fn on_command(settings: &UplinkSettings, topic: &str, payload: &[u8]) {
    let Some(pipeline) = &settings.pipeline else {
        return;
    };
    if topic != settings.command_topic() {
        warn!(
            topic,
            "a message on a topic this gateway did not subscribe to: ignored"
        );
        return;
    }
    match super::command::read(payload, &settings.origin) {
        Ok(c) => pipeline.command(c).await,
        Err(e) => warn!(topic, "command refused: {e}"),
    }
}

/// Which queue a message came from, for the backlog's bounded share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Alarm,
    Live,
    Backlog,
}

struct Sent {
    place: Place,
    id: u64,
    class: Class,
    at: Instant,
}

/// Records waiting to be sent from one part of the store.
struct Queue {
    place: Place,
    after: Option<u64>,
    /// Exclusive upper bound of ids this queue takes (the backlog ends where live begins).
    until: Option<u64>,
    records: VecDeque<Record>,
    /// The store may hold more than was fetched.
    more: bool,
}

impl Queue {
    fn new(place: Place, after: Option<u64>, until: Option<u64>) -> Self {
        Self {
            place,
            after,
            until,
            records: VecDeque::new(),
            more: true,
        }
    }

    async fn next(&mut self, store: &StoreHandle) -> Result<Option<Record>, UplinkError> {
        if self.records.is_empty() && self.more {
            let fetched = store.unsent(self.place, self.after, FETCH).await?;
            self.more = fetched.len() == FETCH;
            for r in fetched {
                if self.until.is_some_and(|u| r.id >= u) {
                    self.more = false;
                    break;
                }
                self.after = Some(r.id);
                self.records.push_back(r);
            }
        }
        Ok(self.records.pop_front())
    }
}

struct Session {
    client: AsyncClient,
    events: mpsc::Receiver<Result<Event, ConnectionError>>,
    driver: tokio::task::JoinHandle<()>,
    /// The broker acknowledged at least one of our messages on this connection.
    delivered: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    /// A fresh client per connection: rumqttc's own queue of a dead connection is dropped
    /// with it, so no old request can be taken for a new one.
    async fn connect(settings: &UplinkSettings) -> Result<Session, UplinkError> {
        let will_seq = settings.seqs.take(TopicKind::Status);
        let options = settings.mqtt_options(will_seq)?;
        let (client, mut eventloop) = AsyncClient::new(options, settings.window + 16);
        let (tx, mut events) = mpsc::channel(1024);
        let driver = tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await;
                let failed = event.is_err();
                if tx.send(event).await.is_err() || failed {
                    return; // never let rumqttc retry at once: the caller backs off
                }
            }
        });
        let connack = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                match events.recv().await {
                    None => return Err(UplinkError::Broker("connection closed".into())),
                    Some(Err(e)) => {
                        return Err(UplinkError::Broker(hazgate_common::broker::describe(&e)))
                    }
                    Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok(()),
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        let session = Session {
            client,
            events,
            driver,
            delivered: false,
        };
        match connack {
            Ok(Ok(())) => Ok(session),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(UplinkError::Broker(format!(
                "no CONNACK within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Sends until the connection fails (an error) or `stop` turns true (a clean end).
    async fn serve(
        &mut self,
        settings: &mut UplinkSettings,
        store: &StoreHandle,
        metrics: &Metrics,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), UplinkError> {
        store.connected().await;
        let live_from = store.next_id(Lane::Telemetry).await?;
        let mut queues = Queues {
            alarms: Queue::new(Place::Disk(Lane::Alarm), None, None),
            held_alarms: Queue::new(Place::Held(Lane::Alarm), None, None),
            live: Queue::new(Place::Disk(Lane::Telemetry), live_from.checked_sub(1), None),
            held_telemetry: Queue::new(Place::Held(Lane::Telemetry), None, None),
            backlog: Queue::new(Place::Disk(Lane::Telemetry), None, Some(live_from)),
        };
        let mut state = Flight {
            awaiting: VecDeque::new(),
            inflight: HashMap::new(),
            backlog_inflight: 0,
        };
        // Commands from the central side (acknowledgements, resets). A clean session holds
        // none while we are away: the central side sends again what we have not confirmed.
        if settings.pipeline.is_some() {
            self.client
                .subscribe(settings.command_topic(), QoS::AtLeastOnce)
                .await
                .map_err(|e| UplinkError::Broker(format!("the connection's queue closed: {e}")))?;
        }
        // Birth, then the current state: a regulator connecting later sees the situation,
        // and a broker that lost its retained messages gets them back.
        self.publish_status(settings, &mut state, Presence::Online, None)
            .await?;
        settings.state.mark_changed();
        settings.master.mark_changed();
        settings.status.mark_unchanged();
        let mut health = tokio::time::interval(settings.health_interval);
        health.tick().await;
        loop {
            self.fill(settings, store, metrics, &mut state, &mut queues)
                .await?;
            tokio::select! {
                event = self.events.recv() => self.on_event(event, settings, store, metrics, &mut state).await?,
                _ = store.ready.notified() => queues.wake(),
                changed = settings.state.changed() => {
                    if changed.is_ok() {
                        let latest = settings.state.borrow_and_update().clone();
                        if let Some(latest) = latest {
                            self.publish_retained(settings, &mut state, TopicKind::State, latest.payload.clone()).await?;
                        }
                    }
                }
                changed = settings.master.changed() => {
                    if changed.is_ok() {
                        let master = settings.master.borrow_and_update().clone();
                        let seq = settings.seqs.take(TopicKind::Site);
                        let payload = super::master::encode(&master, settings.origin.envelope(seq), crate::clock::wall_ms());
                        self.publish_retained(settings, &mut state, TopicKind::Site, payload).await?;
                    }
                }
                changed = settings.status.changed() => {
                    if changed.is_ok() {
                        settings.status.borrow_and_update();
                        let report = health_report(store, metrics, settings).await;
                        self.publish_status(settings, &mut state, Presence::Online, Some(report)).await?;
                    }
                }
                _ = health.tick() => {
                    let report = health_report(store, metrics, settings).await;
                    self.publish_status(settings, &mut state, Presence::Online, Some(report)).await?;
                }
                _ = stop.changed() => return self.close(settings, store, metrics, &mut state).await,
            }
        }
    }

    /// Publishes as many records as the window allows, in priority order: alarms (from
    /// disk, then from memory), live telemetry (disk, then memory), then the backlog.
    async fn fill(
        &mut self,
        settings: &UplinkSettings,
        store: &StoreHandle,
        metrics: &Metrics,
        state: &mut Flight,
        q: &mut Queues,
    ) -> Result<(), UplinkError> {
        let backlog_share = (settings.window / 2).max(1);
        while state.inflight_count() < settings.window {
            let (record, class, place) = if let Some(r) = q.alarms.next(store).await? {
                (r, Class::Alarm, q.alarms.place)
            } else if let Some(r) = q.held_alarms.next(store).await? {
                (r, Class::Alarm, q.held_alarms.place)
            } else if let Some(r) = q.live.next(store).await? {
                (r, Class::Live, q.live.place)
            } else if let Some(r) = q.held_telemetry.next(store).await? {
                (r, Class::Live, q.held_telemetry.place)
            } else if state.backlog_inflight < backlog_share {
                match q.backlog.next(store).await? {
                    Some(r) => (r, Class::Backlog, q.backlog.place),
                    None => break,
                }
            } else {
                break;
            };
            let kind = TopicKind::from_code(record.topic).unwrap_or(TopicKind::Telemetry);
            let topic = settings.topic(kind);
            if record.payload.len() + topic.len() + 16 > MAX_PACKET {
                // The broker would refuse it and close the connection, at every reconnect:
                // report it once and let it go.
                metrics.too_large.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    seq = record.seq,
                    bytes = record.payload.len(),
                    "a {kind} message is over the packet limit of {MAX_PACKET} bytes; skipped"
                );
                store.ack(place, record.id).await;
                continue;
            }
            self.client
                .publish(topic, QoS::AtLeastOnce, kind.retained(), record.payload)
                .await
                .map_err(|e| UplinkError::Broker(format!("the connection's queue closed: {e}")))?;
            store.published(place, record.id).await;
            if class == Class::Backlog {
                state.backlog_inflight += 1;
            }
            state.awaiting.push_back(Some(Sent {
                place,
                id: record.id,
                class,
                at: Instant::now(),
            }));
            metrics.published.fetch_add(1, Ordering::Relaxed);
            metrics
                .inflight
                .store(state.inflight_count() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn on_event(
        &mut self,
        event: Option<Result<Event, ConnectionError>>,
        settings: &UplinkSettings,
        store: &StoreHandle,
        metrics: &Metrics,
        state: &mut Flight,
    ) -> Result<(), UplinkError> {
        match event {
            None => Err(UplinkError::Broker("connection closed".into())),
            Some(Err(e)) => Err(UplinkError::Broker(hazgate_common::broker::describe(&e))),
            // rumqttc gives no packet id at publish(); its Outgoing events come in the
            // order of our publishes, which is how a PUBACK finds its record.
            Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                if let Some(Some(sent)) = state.awaiting.pop_front() {
                    state.inflight.insert(pkid, sent);
                }
                Ok(())
            }
            Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                if let Some(sent) = state.inflight.remove(&ack.pkid) {
                    if sent.class == Class::Backlog {
                        state.backlog_inflight -= 1;
                    }
                    store.ack(sent.place, sent.id).await;
                    self.delivered = true;
                    metrics.acked.fetch_add(1, Ordering::Relaxed);
                    metrics
                        .broker_rtt_ms
                        .store(sent.at.elapsed().as_millis() as u64, Ordering::Relaxed);
                    metrics
                        .inflight
                        .store(state.inflight_count() as u64, Ordering::Relaxed);
                }
                Ok(())
            }
            Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                on_command(settings, &p.topic, &p.payload).await;
                Ok(())
            }
            Some(Ok(_)) => Ok(()),
        }
    }

    async fn publish_status(
        &mut self,
        settings: &UplinkSettings,
        state: &mut Flight,
        presence: Presence,
        health: Option<Health>,
    ) -> Result<(), UplinkError> {
        let seq = settings.seqs.take(TopicKind::Status);
        let payload = settings.status_message(seq, presence, health);
        self.publish_retained(settings, state, TopicKind::Status, payload)
            .await
    }

    /// A retained message that the store does not keep (status, state): the newest
    /// replaces the older at the broker, so it is published, not tracked.
    async fn publish_retained(
        &mut self,
        settings: &UplinkSettings,
        state: &mut Flight,
        kind: TopicKind,
        payload: Vec<u8>,
    ) -> Result<(), UplinkError> {
        self.client
            .publish(settings.topic(kind), QoS::AtLeastOnce, true, payload)
            .await
            .map_err(|e| UplinkError::Broker(format!("the connection's queue closed: {e}")))?;
        state.awaiting.push_back(None);
        Ok(())
    }

    /// A clean end: wait briefly for outstanding acknowledgements, say `offline` (a clean
    /// disconnect does not fire the will), and disconnect.
    async fn close(
        &mut self,
        settings: &UplinkSettings,
        store: &StoreHandle,
        metrics: &Metrics,
        state: &mut Flight,
    ) -> Result<(), UplinkError> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !state.inflight.is_empty() || state.awaiting.iter().any(Option::is_some) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(event) => {
                    self.on_event(event, settings, store, metrics, state)
                        .await?
                }
                Err(_) => break,
            }
        }
        self.publish_status(settings, state, Presence::Offline, None)
            .await?;
        let _ = self.client.disconnect().await;
        // Let the event loop write the last packets out.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(event)) = self.events.recv().await {
                if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

/// The queues a connection sends from.
struct Queues {
    alarms: Queue,
    held_alarms: Queue,
    live: Queue,
    held_telemetry: Queue,
    backlog: Queue,
}

impl Queues {
    /// New records are ready: look again where new records arrive.
    fn wake(&mut self) {
        for q in [
            &mut self.alarms,
            &mut self.held_alarms,
            &mut self.live,
            &mut self.held_telemetry,
        ] {
            q.more = true;
        }
    }
}

struct Flight {
    /// Our publishes whose packet id rumqttc has not told yet; `None` for status messages.
    awaiting: VecDeque<Option<Sent>>,
    inflight: HashMap<u16, Sent>,
    backlog_inflight: usize,
}

impl Flight {
    fn inflight_count(&self) -> usize {
        self.inflight.len() + self.awaiting.iter().filter(|s| s.is_some()).count()
    }
}

async fn health_report(
    store: &StoreHandle,
    metrics: &Metrics,
    settings: &UplinkSettings,
) -> Health {
    let now = crate::clock::wall_ms();
    let lane = |l: &crate::store::LaneStats| StoreHealth {
        depth: l.records,
        bytes: l.bytes,
        oldest_unsent_age_ms: l
            .oldest_unacked_ts
            .map(|ts| (now - ts).max(0) as u64)
            .unwrap_or(0),
        evicted: l.evicted_records_total,
    };
    let stats = store.stats().await.ok();
    let disk = stats.as_ref().and_then(|s| s.store.as_ref());
    let mut telemetry = disk.map(|s| lane(&s.telemetry)).unwrap_or_default();
    let mut alarm = disk.map(|s| lane(&s.alarm)).unwrap_or_default();
    if let Some(s) = &stats {
        telemetry.depth += s.held_telemetry as u64;
        alarm.depth += s.held_alarm as u64;
    }
    Health {
        telemetry,
        alarm,
        poll_errors: metrics.poll_errors(),
        overruns: metrics.overruns.load(Ordering::Relaxed),
        broker_rtt_ms: Some(metrics.broker_rtt_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0),
        store_failed: stats.as_ref().is_some_and(|s| s.failed),
        clock_steps: settings.clock.steps(),
    }
}
