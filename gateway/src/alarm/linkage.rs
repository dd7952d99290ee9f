//! Linkage outputs: on a level, write a coil or register (beacon, siren, shut-off valve,
//! fan, power cut), and release it as the site's safety design says. Each linkage rule
//! (one point's `linkage` entry) has its own state machine:
//!
//! - by default it is released when its point falls below its level (after the state
//!   machine's hysteresis and delays, so chattering never toggles an output);
//! - with `release_below` / `release_above` only once the value is on the safe side of its
//!   own release threshold (AQ 1029: methane power restored below 1.0 %, not at the cut
//!   threshold less a deadband); a point without a value is never "safe";
//! - with `latch` never by itself: a reset (the configured input turning on, or a command)
//!   releases it once the condition is gone;
//! - with `fail_safe` (故障闭锁) it also operates while its point is in comm loss or
//!   sensor fault. Otherwise rules follow process conditions only (limits, rate): a
//!   detector that merely stops answering operates nothing by itself.
//!
//! An output (one coil or register) is operated while any of its rules is: a beacon that
//! several detectors drive stays on until the last of them releases it, and no rule ever
//! switches off what another holds on.
//!
//! A position `feedback` (a valve's limit switch) must confirm every operation and release
//! within its time; a missing confirmation, like a write that fails, is a `linkage_failed`
//! alarm until it is right. Each output has its own task and sees only the latest level
//! and value of its points: a change is never dropped, and one dead module never delays
//! another output. A write goes through its device's bus task, one request at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;
use tracing::{info, warn};

use firmware_config::alarm::{Feedback, Linkage};
use firmware_config::{RegisterKind, SiteConfig};
use hazgate_wire::{
    AlarmEvent, Condition, Envelope, EventKind, Level, OutputRule, OutputState, Reading,
};

use super::ProcessLevel;
use crate::pipeline::PipelineHandle;
use crate::poll::modbus::{ModbusError, Request};

/// How often a failed write is tried again, and feedback looked at.
const RETRY: Duration = Duration::from_secs(2);

/// A write for a bus task to carry out between its polls.
pub struct WriteRequest {
    pub unit: u8,
    pub request: Request,
    pub reply: oneshot::Sender<Result<(), ModbusError>>,
}

/// Where each bus takes its writes, by bus index.
pub type BusWriters = HashMap<usize, mpsc::Sender<WriteRequest>>;

/// (device, point).
type PointKey = (Arc<str>, Arc<str>);

/// What a rule knows of the point it follows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Seen {
    /// Its process level (limits and rate).
    pub level: Option<Level>,
    /// Its latest value; `None` when the reading had none.
    pub value: Option<f64>,
    /// An equipment condition that a fail-safe rule acts on: comm loss or sensor fault.
    pub fault: bool,
    /// Its process alarm is acknowledged: a `silence_on_ack` rule (a siren) lets go.
    pub acknowledged: bool,
}

/// A watch and the output task it wakes.
struct Feed<T> {
    tx: watch::Sender<T>,
    wake: Arc<Notify>,
}

/// Where the pipeline tells outputs what their points do. Never waits, never loses a
/// change: each rule sees the latest. Dropping it ends the output tasks.
#[derive(Default)]
pub struct LinkageHandle {
    sources: HashMap<PointKey, Vec<Feed<Seen>>>,
    /// Feedback and reset inputs, by the point they read.
    inputs: HashMap<PointKey, Vec<Feed<Option<f64>>>>,
    /// Reset commands, by output: a count that grows with each one.
    resets: HashMap<PointKey, Feed<u64>>,
    wakes: Vec<Arc<Notify>>,
}

impl Drop for LinkageHandle {
    fn drop(&mut self) {
        // The senders are gone once this returns; wake every task to see it.
        self.sources.clear();
        self.inputs.clear();
        self.resets.clear();
        for w in &self.wakes {
            w.notify_one();
        }
    }
}

impl LinkageHandle {
    /// Level changes (at start: every point's level, values not yet known).
    pub fn set(&self, changes: &[ProcessLevel]) {
        for c in changes {
            if let Some(feeds) = self.sources.get(&(c.device.clone(), c.point.clone())) {
                for f in feeds {
                    f.tx.send_modify(|s| {
                        s.level = c.level;
                        s.acknowledged = c.acknowledged;
                    });
                    f.wake.notify_one();
                }
            }
        }
    }

    /// A reset command for an output (the operator's reset from the central side): latched
    /// rules whose condition is gone let go. `false` when there is no such output.
    pub fn reset(&self, device: &str, point: &str) -> bool {
        match self.resets.get(&(device.into(), point.into())) {
            Some(f) => {
                f.tx.send_modify(|n| *n += 1);
                f.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// A reading of a point that a rule follows or an output reads back; `state` gives
    /// the point's process level after the reading was evaluated, and whether it is in
    /// comm loss or sensor fault.
    pub fn observe(&self, r: &Reading, state: impl Fn() -> (Option<Level>, bool)) {
        if self.sources.is_empty() && self.inputs.is_empty() {
            return;
        }
        let key = (r.device.clone(), r.point.clone());
        let value = r
            .value
            .as_ref()
            .and_then(|v| v.as_f64())
            .filter(|_| !matches!(r.quality, hazgate_wire::Quality::Bad { .. }))
            // Test gas on the sensor, or an impossible value, tells nothing about the plant:
            // not a value to release on.
            .filter(|_| !r.flags.iter().any(|f| f.withholds_judgement()));
        if let Some(feeds) = self.sources.get(&key) {
            let (level, fault) = state();
            for f in feeds {
                // The acknowledgement comes with level changes (`set`), not with readings.
                let seen = Seen {
                    level,
                    value,
                    fault,
                    acknowledged: f.tx.borrow().acknowledged,
                };
                if f.tx
                    .send_if_modified(|s| std::mem::replace(s, seen) != seen)
                {
                    f.wake.notify_one();
                }
            }
        }
        if let Some(feeds) = self.inputs.get(&key) {
            for f in feeds {
                if f.tx
                    .send_if_modified(|s| std::mem::replace(s, value) != value)
                {
                    f.wake.notify_one();
                }
            }
        }
    }

    /// One feed per key (a reset counter per output).
    fn feed_one(
        map: &mut HashMap<PointKey, Feed<u64>>,
        device: &str,
        point: &str,
        wake: &Arc<Notify>,
    ) -> watch::Receiver<u64> {
        let (tx, rx) = watch::channel(0);
        map.insert(
            (device.into(), point.into()),
            Feed {
                tx,
                wake: wake.clone(),
            },
        );
        rx
    }

    fn feed<T: Default>(
        map: &mut HashMap<PointKey, Vec<Feed<T>>>,
        device: &str,
        point: &str,
        wake: &Arc<Notify>,
    ) -> watch::Receiver<T> {
        let (tx, rx) = watch::channel(T::default());
        map.entry((device.into(), point.into()))
            .or_default()
            .push(Feed {
                tx,
                wake: wake.clone(),
            });
        rx
    }
}

/// One point's linkage entry onto an output, and its state machine.
struct Rule {
    /// The point it follows.
    device: Arc<str>,
    point: Arc<str>,
    spec: Linkage,
    seen: watch::Receiver<Seen>,
    reset: Option<watch::Receiver<Option<f64>>>,
    reset_was_on: bool,
    operated: bool,
    latched: bool,
}

impl Rule {
    /// The state machine: operate at the level (or, fail-safe, on a fault); release by
    /// level, by value past the release threshold, or by a reset when latched.
    fn step(&mut self, seen: Seen, reset: bool) {
        // A siren silenced by an acknowledgement; a new or higher alarm sounds it again
        // (an escalation asks for a new acknowledgement).
        if self.spec.silence_on_ack && seen.acknowledged {
            self.operated = false;
            return;
        }
        let at_level = seen.level >= Some(self.spec.level) || (self.spec.fail_safe && seen.fault);
        if at_level {
            self.operated = true;
            self.latched |= self.spec.latch;
            return;
        }
        let safe = match self.spec.release {
            Some(r) => r.released(seen.value),
            None => true,
        };
        if reset && safe {
            self.latched = false;
        }
        if self.operated && safe && !self.latched {
            self.operated = false;
        }
    }

    /// Takes what its watches say now. A reset is the input turning on (a push-button),
    /// not its staying on, or a reset command (`commanded`).
    fn update(&mut self, commanded: bool) {
        let seen = *self.seen.borrow_and_update();
        let reset_on = self
            .reset
            .as_mut()
            .is_some_and(|r| r.borrow_and_update().is_some_and(|v| v != 0.0));
        let edge = reset_on && !self.reset_was_on;
        self.reset_was_on = reset_on;
        self.step(seen, edge || commanded);
    }

    /// The pipeline dropped the handle.
    fn closed(&self) -> bool {
        self.seen.has_changed().is_err()
    }
}

/// One output (a coil or register) and the rules that drive it.
struct Output {
    device: String,
    point: String,
    unit: u8,
    write: fn(u16, f64) -> Request,
    address: u16,
    on: f64,
    off: f64,
    rules: Vec<Rule>,
    /// Reset commands: the count grows with each.
    resets: watch::Receiver<u64>,
    feedback: Option<(Feedback, watch::Receiver<Option<f64>>)>,
    applied: Option<f64>,
    /// When the value now desired was written (for the feedback's time).
    written_at: Option<Instant>,
    write_error: Option<String>,
    feedback_missing: bool,
    /// A `linkage_failed` alarm is raised for this output.
    alarmed: bool,
}

impl Output {
    fn target(&self) -> String {
        format!("{}.{}", self.device, self.point)
    }

    fn operated(&self) -> bool {
        self.rules.iter().any(|r| r.operated)
    }

    fn desired(&self) -> f64 {
        if self.operated() {
            self.on
        } else {
            self.off
        }
    }

    fn feedback_value(&mut self) -> Option<f64> {
        self.feedback
            .as_mut()
            .and_then(|(_, rx)| *rx.borrow_and_update())
    }

    fn state(&self, feedback: Option<f64>) -> OutputState {
        let operated = self.operated();
        OutputState {
            device: self.device.as_str().into(),
            point: self.point.as_str().into(),
            operated,
            latched: self.rules.iter().any(|r| r.latched),
            written: self.applied == Some(self.desired()),
            confirmed: self.feedback.as_ref().map(|_| {
                feedback.is_some_and(|f| (f != 0.0) == operated)
                    && self.applied == Some(self.desired())
            }),
            rules: self
                .rules
                .iter()
                .map(|r| OutputRule {
                    device: r.device.clone(),
                    point: r.point.clone(),
                    level: r.spec.level,
                    operated: r.operated,
                    latched: r.latched,
                })
                .collect(),
        }
    }
}

fn coil(address: u16, v: f64) -> Request {
    Request::WriteCoil {
        address,
        on: v != 0.0,
    }
}

fn register(address: u16, v: f64) -> Request {
    Request::WriteRegister {
        address,
        value: v.round().clamp(0.0, 65535.0) as u16,
    }
}

/// Starts one task per output, so a dead relay module never holds up the shut-off valve
/// on another bus. Failures, confirmations and state go to the pipeline.
pub fn spawn(site: &SiteConfig, writers: BusWriters, alarms: PipelineHandle) -> LinkageHandle {
    let mut handle = LinkageHandle::default();
    let mut outputs: BTreeMap<(String, String), Output> = BTreeMap::new();
    let mut wakes: BTreeMap<(String, String), Arc<Notify>> = BTreeMap::new();
    let mut buses: BTreeMap<(String, String), Option<mpsc::Sender<WriteRequest>>> = BTreeMap::new();
    for ap in site.alarmed_points() {
        let (d, alarm) = (ap.device, ap.alarm);
        {
            for l in &alarm.linkage {
                let Some(target) = site.device(&l.device) else {
                    continue;
                };
                let Some(tp) = target.points.iter().find(|t| t.id == l.point) else {
                    continue;
                };
                let key = (l.device.clone(), l.point.clone());
                let wake = wakes.entry(key.clone()).or_default().clone();
                let output = outputs.entry(key.clone()).or_insert_with(|| {
                    buses.insert(key.clone(), writers.get(&target.bus).cloned());
                    let resets =
                        LinkageHandle::feed_one(&mut handle.resets, &l.device, &l.point, &wake);
                    Output {
                        device: l.device.clone(),
                        point: l.point.clone(),
                        unit: target.unit,
                        write: if tp.kind == RegisterKind::Coil {
                            coil
                        } else {
                            register
                        },
                        address: tp.address,
                        on: l.on,
                        off: l.off,
                        rules: Vec::new(),
                        resets,
                        feedback: None,
                        applied: None,
                        written_at: None,
                        write_error: None,
                        feedback_missing: false,
                        alarmed: false,
                    }
                });
                if let (Some(f), None) = (&l.feedback, &output.feedback) {
                    let rx =
                        LinkageHandle::feed(&mut handle.inputs, &f.at.device, &f.at.point, &wake);
                    output.feedback = Some((f.clone(), rx));
                }
                let seen = LinkageHandle::feed(&mut handle.sources, &d.id, ap.point, &wake);
                let reset = l
                    .reset
                    .as_ref()
                    .map(|r| LinkageHandle::feed(&mut handle.inputs, &r.device, &r.point, &wake));
                output.rules.push(Rule {
                    device: d.id.as_str().into(),
                    point: ap.point.into(),
                    spec: l.clone(),
                    seen,
                    reset,
                    reset_was_on: false,
                    operated: false,
                    latched: false,
                });
            }
        }
    }
    for (key, output) in outputs {
        let wake = wakes.remove(&key).unwrap_or_default();
        let bus = buses.remove(&key).flatten();
        handle.wakes.push(wake.clone());
        tokio::spawn(drive(output, wake, bus, alarms.clone()));
    }
    handle
}

/// Drives one output until the pipeline drops the handle.
async fn drive(
    mut o: Output,
    wake: Arc<Notify>,
    bus: Option<mpsc::Sender<WriteRequest>>,
    alarms: PipelineHandle,
) {
    let mut retry = tokio::time::interval(RETRY);
    let mut last_state = None;
    loop {
        if o.rules.iter().any(Rule::closed) {
            return;
        }
        let was = o.operated();
        let commanded = o.resets.has_changed().unwrap_or(false);
        if commanded {
            o.resets.borrow_and_update();
            info!(output = %o.target(), "reset command");
        }
        for r in &mut o.rules {
            r.update(commanded);
        }
        if o.operated() != was {
            info!(output = %o.target(), operated = o.operated(), "linkage output {}", if o.operated() { "operated" } else { "released" });
        }
        let desired = o.desired();
        if o.applied != Some(desired) {
            match write(&o, &bus, desired).await {
                Ok(()) => {
                    o.applied = Some(desired);
                    o.written_at = Some(Instant::now());
                    o.write_error = None;
                }
                Err(e) => {
                    if o.write_error.is_none() {
                        warn!(output = %o.target(), "linkage output could not be written: {e}; retrying every {}s", RETRY.as_secs());
                    }
                    o.write_error = Some(e.to_string());
                }
            }
        }
        let fb = o.feedback_value();
        if let (Some((spec, _)), Some(at)) = (&o.feedback, o.written_at) {
            let agrees = fb.is_some_and(|f| (f != 0.0) == o.operated());
            o.feedback_missing = !agrees && at.elapsed() >= spec.within;
        }
        report(&mut o, &alarms).await;
        let state = o.state(fb);
        if last_state.as_ref() != Some(&state) {
            alarms.output_state(state.clone()).await;
            last_state = Some(state);
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = retry.tick() => {}
        }
    }
}

async fn write(
    o: &Output,
    bus: &Option<mpsc::Sender<WriteRequest>>,
    value: f64,
) -> Result<(), ModbusError> {
    let Some(w) = bus else {
        return Err(ModbusError::Lost("the device's bus is not polled".into()));
    };
    let (reply, rx) = oneshot::channel();
    let request = WriteRequest {
        unit: o.unit,
        request: (o.write)(o.address, value),
        reply,
    };
    w.send(request)
        .await
        .map_err(|_| ModbusError::Lost("the bus stopped".into()))?;
    rx.await
        .unwrap_or_else(|_| Err(ModbusError::Lost("the bus stopped".into())))
}

/// Raises `linkage_failed` when the write fails or the feedback does not confirm, and
/// clears it when both are right again.
async fn report(o: &mut Output, alarms: &PipelineHandle) {
    let why = match (&o.write_error, o.feedback_missing) {
        (Some(e), _) => Some(format!("cannot write {}: {e}", o.target())),
        (None, true) => Some(format!(
            "{} {}: no position feedback from {}",
            o.target(),
            if o.operated() { "operated" } else { "released" },
            o.feedback
                .as_ref()
                .map(|(f, _)| format!("{}.{}", f.at.device, f.at.point))
                .unwrap_or_default()
        )),
        (None, false) => None,
    };
    match (why, o.alarmed) {
        (Some(why), false) => {
            warn!(output = %o.target(), "{why}");
            o.alarmed = true;
            let event = failure_event(o, EventKind::Raise, Some(why));
            alarms.external_alarm(event, o.target()).await;
        }
        (None, true) => {
            o.alarmed = false;
            info!(output = %o.target(), "linkage output confirmed again");
            let event = failure_event(o, EventKind::Clear, None);
            alarms.external_alarm(event, o.target()).await;
        }
        _ => {}
    }
}

/// A linkage that failed is an alarm at the most severe level of the output's rules, on
/// the point of the first rule (the label names the output).
fn failure_event(o: &Output, kind: EventKind, why: Option<String>) -> AlarmEvent {
    let raised = kind == EventKind::Raise;
    let level = o
        .rules
        .iter()
        .map(|r| r.spec.level)
        .max()
        .unwrap_or(Level::Red);
    let first = o.rules.first();
    AlarmEvent {
        envelope: Envelope {
            v: hazgate_wire::VERSION,
            site: Arc::from(""),
            gateway: Arc::from(""),
            seq: 0,
        },
        event: kind,
        condition: Condition::LinkageFailed,
        device: first.map(|r| r.device.clone()),
        point: first.map(|r| r.point.clone()),
        hazard_source: None,
        level: raised.then_some(level),
        previous: (!raised).then_some(level),
        value: None,
        crossed: None,
        limit: None,
        unit: None,
        label: Some(why.unwrap_or_else(|| format!("{} written and confirmed again", o.target()))),
        ts: crate::clock::wall_ms(),
        // The pipeline names the occurrence (it keeps the gateway's equipment alarms).
        occurrence: None,
        ack: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_config::alarm::Release;
    use Level::*;

    fn rule(release: Option<Release>, latch: bool) -> Rule {
        let (_tx, seen) = watch::channel(Seen::default());
        Rule {
            device: "CH4-01".into(),
            point: "CH4".into(),
            spec: Linkage {
                level: Red,
                device: "RO-01".into(),
                point: "DO5".into(),
                on: 1.0,
                off: 0.0,
                release,
                latch,
                reset: None,
                feedback: None,
                fail_safe: false,
                silence_on_ack: false,
            },
            seen,
            reset: None,
            reset_was_on: false,
            operated: false,
            latched: false,
        }
    }

    fn seen(level: Option<Level>, value: f64) -> Seen {
        Seen {
            level,
            value: Some(value),
            fault: false,
            acknowledged: false,
        }
    }

    /// A siren (`silence_on_ack`) lets go when its alarm is acknowledged and sounds again
    /// on a new alarm; a beacon on the same alarm stays on until it clears.
    #[test]
    fn an_acknowledgement_silences_only_a_siren() {
        let mut siren = rule(None, false);
        siren.spec.silence_on_ack = true;
        let mut beacon = rule(None, false);
        let acked = Seen {
            acknowledged: true,
            ..seen(Some(Red), 60.0)
        };
        for (r, want) in [(&mut siren, false), (&mut beacon, true)] {
            r.step(seen(Some(Red), 60.0), false);
            assert!(r.operated);
            r.step(acked, false);
            assert_eq!(r.operated, want);
            r.step(seen(Some(Red), 61.0), false);
            assert!(r.operated, "not acknowledged any more: operated again");
        }
    }

    /// AQ 1029 at a coal face: cut at 1.5 %CH4, stay cut at 1.2, restore below 1.0.
    #[test]
    fn methane_power_is_restored_only_below_its_release_threshold() {
        let mut r = rule(Some(Release::Below(1.0)), false);
        let ramp = [
            (None, 0.8, false),
            (Some(Yellow), 1.2, false),
            (Some(Red), 1.6, true),
            (Some(Yellow), 1.2, true),
            (Some(Yellow), 1.0, true),
            (None, 0.9, false),
        ];
        for (level, value, operated) in ramp {
            r.step(seen(level, value), false);
            assert_eq!(r.operated, operated, "at {value}");
        }
        // No value (a failed sensor) is never safe: stays operated.
        let mut r = rule(Some(Release::Below(1.0)), false);
        r.step(seen(Some(Red), 1.6), false);
        r.step(Seen::default(), false);
        assert!(r.operated);
    }

    #[test]
    fn without_a_release_threshold_it_follows_the_level() {
        let mut r = rule(None, false);
        r.step(seen(Some(Red), 60.0), false);
        assert!(r.operated);
        r.step(seen(Some(Yellow), 40.0), false);
        assert!(!r.operated);
    }

    #[test]
    fn a_latched_rule_waits_for_a_reset_once_the_condition_is_gone() {
        let mut r = rule(None, true);
        r.step(seen(Some(Red), 60.0), false);
        r.step(seen(None, 5.0), false);
        assert!(r.operated && r.latched, "stays closed after the clear");
        // A reset while still red does nothing.
        let mut p = rule(None, true);
        p.step(seen(Some(Red), 60.0), true);
        assert!(p.operated && p.latched);
        r.step(seen(None, 5.0), true);
        assert!(!r.operated && !r.latched, "released by the reset");
    }

    /// 故障闭锁: a fail-safe power cut acts on a failed or silent sensor too; a plain one
    /// does not (a detector that merely stops answering operates nothing by itself).
    #[test]
    fn a_fail_safe_rule_acts_on_a_failed_sensor() {
        let silent = Seen {
            level: None,
            value: None,
            fault: true,
            acknowledged: false,
        };
        let mut plain = rule(Some(Release::Below(1.0)), false);
        plain.step(silent, false);
        assert!(!plain.operated);
        let mut safe = rule(Some(Release::Below(1.0)), false);
        safe.spec.fail_safe = true;
        safe.step(silent, false);
        assert!(safe.operated, "cut while the sensor is silent");
        safe.step(seen(None, 0.3), false);
        assert!(!safe.operated, "restored once it answers with a safe value");
    }

    /// A beacon two detectors drive stays on until the last one releases it.
    #[test]
    fn an_output_is_operated_while_any_of_its_rules_is() {
        let mut o = Output {
            device: "RO-01".into(),
            point: "DO1".into(),
            unit: 1,
            write: coil,
            address: 0,
            on: 1.0,
            off: 0.0,
            rules: vec![rule(None, false), rule(None, false)],
            resets: watch::channel(0).1,
            feedback: None,
            applied: None,
            written_at: None,
            write_error: None,
            feedback_missing: false,
            alarmed: false,
        };
        o.rules[0].step(seen(Some(Red), 60.0), false);
        o.rules[1].step(seen(Some(Red), 60.0), false);
        assert_eq!(o.desired(), 1.0);
        o.rules[0].step(seen(None, 5.0), false);
        assert_eq!(o.desired(), 1.0, "the other detector still holds it");
        o.rules[1].step(seen(None, 5.0), false);
        assert_eq!(o.desired(), 0.0);
    }
}
