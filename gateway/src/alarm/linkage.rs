//! Linkage outputs: on a level, write a coil or register (beacon, siren, shut-off valve,
//! fan), release it when the point falls below that level. Outputs follow the process
//! conditions (limits and rate) after the state machine's hysteresis and delays, so
//! chattering never toggles them. A write goes through its device's bus task, one request
//! at a time on the line; a failed write is retried until it succeeds and raised as its own
//! alarm meanwhile. Each output has its own task and sees only the latest level of its
//! point: a change is never dropped, and one dead module never delays another output.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use firmware_config::{RegisterKind, SiteConfig};
use hazgate_wire::{AlarmEvent, Condition, Envelope, EventKind, Level};

use super::ProcessLevel;
use crate::pipeline::PipelineHandle;
use crate::poll::modbus::{ModbusError, Request};

/// How often a failed write is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// A write for a bus task to carry out between its polls.
pub struct WriteRequest {
    pub unit: u8,
    pub request: Request,
    pub reply: oneshot::Sender<Result<(), ModbusError>>,
}

/// Where each bus takes its writes, by bus index.
pub type BusWriters = HashMap<usize, mpsc::Sender<WriteRequest>>;

struct Output {
    device: Arc<str>,
    point: Arc<str>,
    level: Level,
    unit: u8,
    target: String,
    write: fn(u16, f64) -> Request,
    address: u16,
    on: f64,
    off: f64,
    applied: Option<f64>,
    failing: bool,
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

/// Where the pipeline sets the process levels that outputs follow. Setting never waits
/// and never loses a change: each output sees the latest level of its point.
#[derive(Default)]
pub struct LinkageHandle {
    outputs: HashMap<PointKey, Vec<watch::Sender<Option<Level>>>>,
}

/// (device, point) of the point an output follows.
type PointKey = (Arc<str>, Arc<str>);

impl LinkageHandle {
    pub fn set(&self, changes: &[ProcessLevel]) {
        for c in changes {
            if let Some(outputs) = self.outputs.get(&(c.device.clone(), c.point.clone())) {
                for o in outputs {
                    o.send_replace(c.level);
                }
            }
        }
    }
}

/// Starts one task per output, so a dead relay module never holds up the shut-off valve
/// on another bus. Failure and recovery of writes go to the pipeline as alarm events.
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
                    level: l.level,
                    unit: target.unit,
                    target: format!("{}.{}", l.device, l.point),
                    write,
                    address: tp.address,
                    on: l.on,
                    off: l.off,
                    applied: None,
                    failing: false,
                };
                let (tx, rx) = watch::channel(None);
                handle
                    .outputs
                    .entry((output.device.clone(), output.point.clone()))
                    .or_default()
                    .push(tx);
                let bus = writers.get(&target.bus).cloned();
                tokio::spawn(drive(output, rx, bus, alarms.clone()));
            }
        }
    }
    handle
}

/// Drives one output: writes what its point's level asks for, retries a failed write
/// every [`RETRY`], and ends when the pipeline drops the handle.
async fn drive(
    mut o: Output,
    mut level: watch::Receiver<Option<Level>>,
    bus: Option<mpsc::Sender<WriteRequest>>,
    alarms: PipelineHandle,
) {
    let mut retry = tokio::time::interval(RETRY);
    loop {
        let desired = if *level.borrow_and_update() >= Some(o.level) {
            o.on
        } else {
            o.off
        };
        if o.applied != Some(desired) {
            let result = match &bus {
                Some(w) => {
                    let (reply, rx) = oneshot::channel();
                    let request = WriteRequest {
                        unit: o.unit,
                        request: (o.write)(o.address, desired),
                        reply,
                    };
                    match w.send(request).await {
                        Ok(()) => rx
                            .await
                            .unwrap_or_else(|_| Err(ModbusError::Lost("the bus stopped".into()))),
                        Err(_) => Err(ModbusError::Lost("the bus stopped".into())),
                    }
                }
                None => Err(ModbusError::Lost("the device's bus is not polled".into())),
            };
            match result {
                Ok(()) => {
                    info!(output = %o.target, value = desired, "linkage output written for {}.{}", o.device, o.point);
                    o.applied = Some(desired);
                    if o.failing {
                        o.failing = false;
                        alarms
                            .external_alarm(failure_event(&o, EventKind::Clear, None))
                            .await;
                    }
                }
                Err(e) => {
                    if !o.failing {
                        o.failing = true;
                        warn!(output = %o.target, "linkage output could not be written: {e}; retrying every {}s", RETRY.as_secs());
                        alarms
                            .external_alarm(failure_event(
                                &o,
                                EventKind::Raise,
                                Some(e.to_string()),
                            ))
                            .await;
                    }
                }
            }
        }
        tokio::select! {
            changed = level.changed() => if changed.is_err() { return },
            _ = retry.tick() => {}
        }
    }
}

/// A linkage that failed is an alarm at the linkage's own level.
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
        level: raised.then_some(o.level),
        previous: (!raised).then_some(o.level),
        value: None,
        limit: None,
        unit: None,
        label: Some(match why {
            Some(w) => format!("cannot write {}: {w}", o.target),
            None => format!("{} written again", o.target),
        }),
        ts: crate::clock::wall_ms(),
    }
}
