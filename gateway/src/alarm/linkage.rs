//! Linkage outputs: on a level, write a coil or register (beacon, siren, shut-off valve,
//! fan), release it when the point falls below that level. Outputs follow the process
//! conditions (limits and rate) after the state machine's hysteresis and delays, so
//! chattering never toggles them. A write goes through its device's bus task, one request
//! at a time on the line; a failed write is retried until it succeeds and raised as its own
//! alarm meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use firmware_config::{RegisterKind, SiteConfig};
use hazgate_wire::{AlarmEvent, Condition, Envelope, EventKind, Level};

use super::ProcessLevel;
use crate::poll::modbus::{ModbusError, Request};
use crate::store::task::StoreHandle;

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
    bus: usize,
    unit: u8,
    target: String,
    write: fn(u16, f64) -> Request,
    address: u16,
    on: f64,
    off: f64,
    desired: Option<f64>,
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

/// Starts the linkage task; returns where to send level changes. Failure and recovery of
/// writes go to the store's alarm lane as alarm events.
pub fn spawn(
    site: &SiteConfig,
    writers: BusWriters,
    events: StoreHandle,
) -> mpsc::Sender<Vec<ProcessLevel>> {
    let mut outputs = Vec::new();
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
                outputs.push(Output {
                    device: d.id.as_str().into(),
                    point: p.id.as_str().into(),
                    level: l.level,
                    bus: target.bus,
                    unit: target.unit,
                    target: format!("{}.{}", l.device, l.point),
                    write,
                    address: tp.address,
                    on: l.on,
                    off: l.off,
                    desired: None,
                    applied: None,
                    failing: false,
                });
            }
        }
    }
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(run(outputs, writers, rx, events));
    tx
}

async fn run(
    mut outputs: Vec<Output>,
    writers: BusWriters,
    mut changes: mpsc::Receiver<Vec<ProcessLevel>>,
    events: StoreHandle,
) {
    let mut retry = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            batch = changes.recv() => {
                let Some(batch) = batch else { return };
                for change in batch {
                    for o in outputs.iter_mut().filter(|o| o.device == change.device && o.point == change.point) {
                        o.desired = Some(if change.level >= Some(o.level) { o.on } else { o.off });
                    }
                }
            }
            _ = retry.tick() => {}
        }
        for o in outputs.iter_mut() {
            let Some(desired) = o.desired else { continue };
            if o.applied == Some(desired) {
                continue;
            }
            let result = match writers.get(&o.bus) {
                Some(w) => {
                    let (reply, rx) = oneshot::channel();
                    let sent = w
                        .send(WriteRequest {
                            unit: o.unit,
                            request: (o.write)(o.address, desired),
                            reply,
                        })
                        .await;
                    match sent {
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
                        events
                            .external_alarm(failure_event(o, EventKind::Clear, None))
                            .await;
                    }
                }
                Err(e) => {
                    if !o.failing {
                        o.failing = true;
                        warn!(output = %o.target, "linkage output could not be written: {e}; retrying every {}s", RETRY.as_secs());
                        events
                            .external_alarm(failure_event(o, EventKind::Raise, Some(e.to_string())))
                            .await;
                    }
                }
            }
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
        ts: crate::poll::cycle::now_ms(),
    }
}
