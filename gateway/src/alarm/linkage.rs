//! Linkage outputs: on a level, write a coil or register (beacon, siren, shut-off valve,
//! fan, power cut), and release it as the site's safety design says:
//!
//! - by default when the point falls below that level (after the state machine's
//!   hysteresis and delays, so chattering never toggles an output);
//! - with `release_below` / `release_above` only once the value is on the safe side of its
//!   own release threshold (AQ 1029: methane power restored below 1.0 %, not at the cut
//!   threshold less a deadband); a point without a value is never "safe";
//! - with `latch` never by itself: a reset (the configured input reading on, or a command)
//!   releases it once the condition is gone.
//!
//! A position `feedback` (a valve's limit switch) must confirm every operation and release
//! within its time; a missing confirmation, like a write that fails, is a `linkage_failed`
//! alarm until it is right. Outputs follow process conditions only (limits, rate): a
//! detector that merely stops answering does not operate one by itself.
//!
//! Each output has its own task and sees only the latest level and value of its point: a
//! change is never dropped, and one dead module never delays another output. A write goes
//! through its device's bus task, one request at a time on the line.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use firmware_config::alarm::Linkage;
use firmware_config::{RegisterKind, SiteConfig};
use hazgate_wire::{AlarmEvent, Condition, Envelope, EventKind, Level, OutputState, Reading};

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

/// What an output knows of the point it follows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Seen {
    /// Its process level (limits and rate).
    pub level: Option<Level>,
    /// Its latest value; `None` when the reading had none.
    pub value: Option<f64>,
    /// An equipment condition that a fail-safe output acts on: comm loss or sensor fault.
    pub fault: bool,
}

/// Where the pipeline tells outputs what their points do. Never waits, never loses a
/// change: each output sees the latest.
#[derive(Default)]
pub struct LinkageHandle {
    sources: HashMap<PointKey, Vec<watch::Sender<Seen>>>,
    /// Feedback and reset inputs, by the point they read.
    inputs: HashMap<PointKey, Vec<watch::Sender<Option<f64>>>>,
}

impl LinkageHandle {
    /// Level changes (at start: every point's level, values not yet known).
    pub fn set(&self, changes: &[ProcessLevel]) {
        for c in changes {
            if let Some(outputs) = self.sources.get(&(c.device.clone(), c.point.clone())) {
                for o in outputs {
                    o.send_modify(|s| s.level = c.level);
                }
            }
        }
    }

    /// A reading of a point that an output follows or reads back; `state` gives the
    /// point's process level after the reading was evaluated, and whether it is in comm
    /// loss or sensor fault.
    pub fn observe(&self, r: &Reading, state: impl Fn() -> (Option<Level>, bool)) {
        if self.sources.is_empty() && self.inputs.is_empty() {
            return;
        }
        let key = (r.device.clone(), r.point.clone());
        let value = r
            .value
            .as_ref()
            .and_then(|v| v.as_f64())
            .filter(|_| !is_bad(r));
        if let Some(outputs) = self.sources.get(&key) {
            let (level, fault) = state();
            let seen = Seen {
                level,
                value,
                fault,
            };
            for o in outputs {
                o.send_if_modified(|s| std::mem::replace(s, seen) != seen);
            }
        }
        if let Some(inputs) = self.inputs.get(&key) {
            for i in inputs {
                i.send_replace(value);
            }
        }
    }

    fn input(&mut self, device: &str, point: &str) -> watch::Receiver<Option<f64>> {
        let (tx, rx) = watch::channel(None);
        self.inputs
            .entry((device.into(), point.into()))
            .or_default()
            .push(tx);
        rx
    }
}

fn is_bad(r: &Reading) -> bool {
    matches!(r.quality, hazgate_wire::Quality::Bad { .. })
}

/// One output and its state machine.
struct Output {
    /// The point it follows.
    device: Arc<str>,
    point: Arc<str>,
    spec: Linkage,
    unit: u8,
    write: fn(u16, f64) -> Request,
    address: u16,
    /// Operated: `on` is what it should be.
    operated: bool,
    latched: bool,
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
        format!("{}.{}", self.spec.device, self.spec.point)
    }

    /// The state machine: operate at the level; release by level, by value past the
    /// release threshold, or by a reset when latched.
    fn step(&mut self, seen: Seen, reset: bool) {
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

    fn desired(&self) -> f64 {
        if self.operated {
            self.spec.on
        } else {
            self.spec.off
        }
    }

    fn state(&self, feedback: Option<f64>) -> OutputState {
        let confirmed = self.spec.feedback.as_ref().map(|_| {
            feedback.is_some_and(|f| (f != 0.0) == self.operated)
                && self.applied == Some(self.desired())
        });
        OutputState {
            device: self.spec.device.as_str().into(),
            point: self.spec.point.as_str().into(),
            source_device: self.device.clone(),
            source_point: self.point.clone(),
            level: self.spec.level,
            operated: self.operated,
            latched: self.latched,
            written: self.applied == Some(self.desired()),
            confirmed,
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
    for d in &site.devices {
        for p in &d.points {
            let Some(alarm) = &p.alarm else { continue };
            for l in &alarm.linkage {
                let Some(target) = site.device(&l.device) else {
                    continue;
                };
                let Some(tp) = target.points.iter().find(|t| t.id == l.point) else {
                    continue;
                };
                let write: fn(u16, f64) -> Request = if tp.kind == RegisterKind::Coil {
                    coil
                } else {
                    register
                };
                let output = Output {
                    device: d.id.as_str().into(),
                    point: p.id.as_str().into(),
                    spec: l.clone(),
                    unit: target.unit,
                    write,
                    address: tp.address,
                    operated: false,
                    latched: false,
                    applied: None,
                    written_at: None,
                    write_error: None,
                    feedback_missing: false,
                    alarmed: false,
                };
                let (tx, rx) = watch::channel(Seen::default());
                handle
                    .sources
                    .entry((output.device.clone(), output.point.clone()))
                    .or_default()
                    .push(tx);
                let feedback = l
                    .feedback
                    .as_ref()
                    .map(|f| handle.input(&f.at.device, &f.at.point));
                let reset = l.reset.as_ref().map(|r| handle.input(&r.device, &r.point));
                let bus = writers.get(&target.bus).cloned();
                tokio::spawn(drive(output, rx, feedback, reset, bus, alarms.clone()));
            }
        }
    }
    handle
}

/// A watch that may be absent: waits forever where there is none.
async fn changed(rx: &mut Option<watch::Receiver<Option<f64>>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Drives one output until the pipeline drops the handle.
async fn drive(
    mut o: Output,
    mut source: watch::Receiver<Seen>,
    mut feedback: Option<watch::Receiver<Option<f64>>>,
    mut reset: Option<watch::Receiver<Option<f64>>>,
    bus: Option<mpsc::Sender<WriteRequest>>,
    alarms: PipelineHandle,
) {
    let mut retry = tokio::time::interval(RETRY);
    let mut last_state = None;
    let mut reset_was_on = false;
    loop {
        let seen = *source.borrow_and_update();
        // A reset is the input turning on (a push-button), not its staying on.
        let reset_on = reset
            .as_mut()
            .is_some_and(|r| r.borrow_and_update().is_some_and(|v| v != 0.0));
        let reset_edge = reset_on && !reset_was_on;
        reset_was_on = reset_on;
        let was = o.operated;
        o.step(seen, reset_edge);
        if o.operated != was {
            info!(output = %o.target(), operated = o.operated, latched = o.latched, "linkage output {} for {}.{}", if o.operated { "operated" } else { "released" }, o.device, o.point);
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
        let fb = feedback.as_mut().map(|f| *f.borrow_and_update());
        if let (Some(spec), Some(at)) = (&o.spec.feedback, o.written_at) {
            let agrees = fb.flatten().is_some_and(|f| (f != 0.0) == o.operated);
            o.feedback_missing = !agrees && at.elapsed() >= spec.within;
        }
        report(&mut o, &alarms).await;
        let state = o.state(fb.flatten());
        if last_state.as_ref() != Some(&state) {
            alarms.output_state(state.clone()).await;
            last_state = Some(state);
        }
        tokio::select! {
            c = source.changed() => if c.is_err() { return },
            c = changed(&mut feedback) => if !c { feedback = None },
            c = changed(&mut reset) => if !c { reset = None },
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
            if o.operated { "operated" } else { "released" },
            o.spec
                .feedback
                .as_ref()
                .map(|f| format!("{}.{}", f.at.device, f.at.point))
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

/// A linkage that failed is an alarm at the linkage's own level, on the point it follows.
fn failure_event(o: &Output, kind: EventKind, why: Option<String>) -> AlarmEvent {
    let raised = kind == EventKind::Raise;
    AlarmEvent {
        envelope: Envelope {
            v: hazgate_wire::VERSION,
            site: Arc::from(""),
            gateway: Arc::from(""),
            seq: 0,
        },
        event: kind,
        condition: Condition::LinkageFailed,
        device: Some(o.device.clone()),
        point: Some(o.point.clone()),
        hazard_source: None,
        level: raised.then_some(o.spec.level),
        previous: (!raised).then_some(o.spec.level),
        value: None,
        limit: None,
        unit: None,
        label: Some(why.unwrap_or_else(|| format!("{} written and confirmed again", o.target()))),
        ts: crate::clock::wall_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_config::alarm::{Feedback, Release};
    use Level::*;

    fn output(release: Option<Release>, latch: bool) -> Output {
        Output {
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
                feedback: None::<Feedback>,
                fail_safe: false,
            },
            unit: 1,
            write: coil,
            address: 4,
            operated: false,
            latched: false,
            applied: None,
            written_at: None,
            write_error: None,
            feedback_missing: false,
            alarmed: false,
        }
    }

    fn seen(level: Option<Level>, value: f64) -> Seen {
        Seen {
            level,
            value: Some(value),
            fault: false,
        }
    }

    /// 故障闭锁: a fail-safe power cut acts on a failed or silent sensor too; a plain one
    /// does not (a detector that merely stops answering operates nothing by itself).
    #[test]
    fn a_fail_safe_output_acts_on_a_failed_sensor() {
        let silent = Seen {
            level: None,
            value: None,
            fault: true,
        };
        let mut plain = output(Some(Release::Below(1.0)), false);
        plain.step(silent, false);
        assert!(!plain.operated);
        let mut safe = output(Some(Release::Below(1.0)), false);
        safe.spec.fail_safe = true;
        safe.step(silent, false);
        assert!(safe.operated, "cut while the sensor is silent");
        safe.step(seen(None, 0.3), false);
        assert!(!safe.operated, "restored once it answers with a safe value");
    }

    /// AQ 1029 at a coal face: cut at 1.5 %CH4, stay cut at 1.2, restore below 1.0.
    #[test]
    fn methane_power_is_restored_only_below_its_release_threshold() {
        let mut o = output(Some(Release::Below(1.0)), false);
        let ramp = [
            (None, 0.8, false),
            (Some(Yellow), 1.2, false),
            (Some(Red), 1.6, true),
            (Some(Yellow), 1.2, true),
            (Some(Yellow), 1.0, true),
            (None, 0.9, false),
        ];
        for (level, value, operated) in ramp {
            o.step(seen(level, value), false);
            assert_eq!(o.operated, operated, "at {value}");
        }
        // No value (a failed sensor) is never safe: stays operated.
        let mut o = output(Some(Release::Below(1.0)), false);
        o.step(seen(Some(Red), 1.6), false);
        o.step(
            Seen {
                level: None,
                value: None,
                fault: false,
            },
            false,
        );
        assert!(o.operated);
    }

    #[test]
    fn without_a_release_threshold_it_follows_the_level() {
        let mut o = output(None, false);
        o.step(seen(Some(Red), 60.0), false);
        assert!(o.operated);
        o.step(seen(Some(Yellow), 40.0), false);
        assert!(!o.operated);
    }

    #[test]
    fn a_latched_output_waits_for_a_reset_once_the_condition_is_gone() {
        let mut o = output(None, true);
        o.step(seen(Some(Red), 60.0), false);
        o.step(seen(None, 5.0), false);
        assert!(o.operated && o.latched, "stays closed after the clear");
        // A reset while still red does nothing.
        let mut p = output(None, true);
        p.step(seen(Some(Red), 60.0), true);
        assert!(p.operated && p.latched);
        o.step(seen(None, 5.0), true);
        assert!(!o.operated && !o.latched, "released by the reset");
    }
}
