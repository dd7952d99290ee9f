//! One persistent MQTT session (clean session off, a stable client id), so the broker keeps
//! what arrives while this instance is down or not keeping up. Messages are acknowledged
//! by hand: state and status once the view has them, telemetry and alarms only after the
//! store took them (see `write`). Memory stays bounded: past `max_pending` bytes taken and
//! not written, this loop waits, and the broker holds the rest.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, Publish, QoS, SubscribeReasonCode};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tracing::{error, info, warn};

use firmware_config::site::Uplink;
use hazgate_common::{connect_options, Backoff, ConnectError, MAX_PACKET};
use hazgate_wire::Message;

use super::AckToken;
use crate::intake::{inspect, subscriptions, triage, IntakeRules, RejectCounter};
use crate::ops::Metrics;
use crate::quarantine::{Entry, Quarantine};
use crate::view::View;
use crate::write::{line, LineCounts};

/// Lines of one message on their way to the store, with what releases the message.
#[derive(Debug)]
pub struct Pending {
    pub lines: Vec<u8>,
    pub counts: LineCounts,
    /// Alarm events, for the supervision database once the lines are written.
    pub events: Vec<hazgate_wire::AlarmEvent>,
    pub ack: AckToken,
    /// Its share of `max_pending`, given back when the message is acknowledged.
    pub permit: OwnedSemaphorePermit,
}

pub struct SubscribeContext {
    pub mqtt: Uplink,
    pub group: String,
    pub rules: IntakeRules,
    pub pending_limit: Arc<Semaphore>,
    pub view: Arc<View>,
    pub metrics: Arc<Metrics>,
    pub rejects: Arc<RejectCounter>,
    /// Told of gateway births (it sends them what they have not confirmed).
    pub supervision: Option<Arc<crate::supervise::Supervision>>,
    pub quarantine: Arc<Quarantine>,
}

/// Messages taken and not yet acknowledged, at most; beyond, the session waits and the
/// broker holds the rest (as it does past `max_pending` bytes).
const MAX_UNACKED: usize = 4000;
/// Requests queued towards the broker: every outstanding acknowledgement, and the
/// subscriptions, always fit.
const REQUEST_QUEUE: usize = MAX_UNACKED + 64;

/// Runs until `stop` and then `drained` (the writer acknowledged all it could): from
/// `stop` on, nothing new is taken (the broker sends it again next session) and `sink` is
/// dropped, so the batcher flushes and the writer finishes.
pub async fn run(
    ctx: SubscribeContext,
    sink: mpsc::Sender<Pending>,
    mut stop: watch::Receiver<bool>,
    mut drained: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<crate::supervise::Outgoing>,
) {
    let mut sink = Some(sink);
    let slots = Arc::new(Semaphore::new(MAX_UNACKED));
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut stopping = false;
    loop {
        let options = match options(&ctx) {
            Ok(o) => o,
            Err(e) => {
                error!("cannot connect to the broker: {e}");
                if stopping {
                    return;
                }
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
        for filter in subscriptions(&ctx.rules.prefix, &ctx.group) {
            let _ = client.subscribe(filter, QoS::AtLeastOnce).await;
        }
        let mut session = Session {
            ctx: &ctx,
            client: &client,
            slots: &slots,
        };
        loop {
            tokio::select! {
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(c))) => {
                        ctx.metrics.set_connected(true);
                        backoff.reset();
                        info!(session_present = c.session_present, "connected to the broker");
                    }
                    Ok(Event::Incoming(Packet::SubAck(s))) => {
                        if s.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                            error!("the broker refused a subscription; check its ACL, and that it supports shared subscriptions ($share/...)");
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(sink) = sink.as_ref().filter(|_| !stopping) {
                            session.take(p, sink).await;
                        }
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        ctx.metrics.set_connected(false);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        ctx.metrics.set_connected(false);
                        warn!("broker connection lost: {e}");
                        break;
                    }
                },
                Some(c) = commands.recv() => {
                    // Never waits: a command that does not fit goes out with the resend.
                    if let Err(e) = client.try_publish(c.topic.clone(), QoS::AtLeastOnce, false, c.payload) {
                        warn!(topic = %c.topic, "command not published now ({e}); it is sent again later");
                    } else {
                        info!(topic = %c.topic, "command published");
                    }
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    sink = None;
                }
                _ = drained.changed() => {
                    if *drained.borrow() {
                        let _ = client.try_disconnect();
                    }
                }
            }
        }
        if stopping && *drained.borrow() {
            return;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn options(ctx: &SubscribeContext) -> Result<rumqttc::MqttOptions, ConnectError> {
    let mut o = connect_options(&ctx.mqtt)?;
    o.set_clean_session(false);
    o.set_manual_acks(true);
    // Larger messages than the intake limit still have to be read to be refused (and
    // acknowledged); a message rumqttc cannot read at all would come back forever.
    let incoming = ctx.rules.max_message_size.saturating_mul(2) + (64 << 10);
    o.set_max_packet_size(incoming, MAX_PACKET);
    Ok(o)
}

struct Session<'a> {
    ctx: &'a SubscribeContext,
    client: &'a AsyncClient,
    slots: &'a Arc<Semaphore>,
}

impl Session<'_> {
    async fn take(&mut self, p: Publish, sink: &mpsc::Sender<Pending>) {
        let ctx = self.ctx;
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let ack = AckToken::new(self.client, &p, slot);
        let topic = p.topic.as_str();
        let received = crate::now_ms();
        let message = match inspect(&ctx.rules, topic, &p.payload) {
            Ok(m) => m,
            Err(rejection) => {
                ctx.rejects.record(topic, &rejection);
                let entry = Entry::message(topic, &rejection, &p.payload, received);
                if self.quarantine(vec![entry]).await {
                    ack.ack();
                }
                return;
            }
        };
        ctx.metrics.count_message(&message);
        ctx.view.seen(message.envelope());
        let triaged = triage(message, received);
        let (kind, seq) = (
            record_kind(&triaged.message),
            triaged.message.envelope().seq,
        );
        let held: Vec<Entry> = triaged
            .held
            .into_iter()
            .map(|h| Entry::record(topic, seq, kind, h, received))
            .collect();
        // Kept before anything is acknowledged; if it cannot be kept, the message is not
        // acknowledged at all and comes again on the next connection.
        if !self.quarantine(held).await {
            return;
        }
        let mut lines = Vec::new();
        let mut counts = LineCounts::default();
        let mut events = Vec::new();
        match triaged.message {
            Message::State(s) => {
                ctx.view.state(s);
                ack.ack();
                return;
            }
            Message::Site(m) => {
                ctx.view.master(m);
                ack.ack();
                return;
            }
            Message::Status(s) => {
                // A birth (online, no health yet): the gateway gets what it missed.
                if let (Some(sup), hazgate_wire::Presence::Online, None) =
                    (&ctx.supervision, s.state, &s.health)
                {
                    sup.birth(&s.envelope.site, &s.envelope.gateway);
                }
                ctx.view.status(s);
                ack.ack();
                return;
            }
            Message::Alarm(a) => {
                if triaged.store {
                    counts.alarms += line::alarm(&mut lines, &a) as u64;
                    if ctx.supervision.is_some() {
                        events.push(a.clone());
                    }
                }
                ctx.view.alarm(a);
            }
            Message::Telemetry(t) => counts.readings += line::telemetry(&mut lines, &t) as u64,
            Message::Gap(g) => {
                if triaged.store {
                    counts.gaps += line::gap(&mut lines, &g) as u64;
                }
            }
            Message::Stats(s) => {
                if triaged.store {
                    counts.stats += line::stats(&mut lines, &s) as u64;
                }
            }
        }
        if lines.is_empty() {
            ack.ack();
            return;
        }
        let weight = p.payload.len().clamp(1, u32::MAX as usize) as u32;
        let Ok(permit) = ctx.pending_limit.clone().acquire_many_owned(weight).await else {
            return;
        };
        let _ = sink
            .send(Pending {
                lines,
                counts,
                events,
                ack,
                permit,
            })
            .await;
    }

    /// Writes to the quarantine off the async threads; whether it is on disk.
    async fn quarantine(&self, entries: Vec<Entry>) -> bool {
        if entries.is_empty() {
            return true;
        }
        let q = self.ctx.quarantine.clone();
        matches!(
            tokio::task::spawn_blocking(move || q.put(entries)).await,
            Ok(Ok(()))
        )
    }
}

/// What one held record of a message is, by the message's kind.
fn record_kind(m: &Message) -> &'static str {
    match m {
        Message::Telemetry(_) => "reading",
        Message::Alarm(_) => "alarm",
        Message::Gap(_) => "gap",
        Message::State(_) => "state",
        Message::Status(_) => "status",
        Message::Site(_) => "site",
        Message::Stats(_) => "stats",
    }
}
