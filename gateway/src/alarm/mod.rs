//! The alarm engine at the edge: every point with alarm settings has its own state machine
//! (`point`); their levels roll up to hazard sources and the site (`rollup`); the state
//! survives a restart (`snapshot`). The engine runs in the store task, so an alarm event
//! is in the synced alarm lane before anything reports it.

pub mod abnormal;
pub mod linkage;
pub mod plausibility;
pub mod point;
pub mod rollup;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::Arc;

use firmware_config::site::HazardSource;
use firmware_config::SiteConfig;
use hazgate_wire::{
    Acknowledgement, ActiveAlarm, AlarmEvent, Condition, Envelope, EventKind, Level, Reading,
    SourceLevel, State,
};

use plausibility::Plausibility;
use point::{Active, Flagged, PointAlarm, Transition};
use snapshot::Snapshot;

/// The level a point's process conditions are at; linkage outputs follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessLevel {
    pub device: Arc<str>,
    pub point: Arc<str>,
    pub level: Option<Level>,
    /// Every process condition at that level is acknowledged: outputs that silence on
    /// acknowledgement (a siren) are released.
    pub acknowledged: bool,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    /// Applied: the `ack` event to record.
    Applied(Box<Event>),
    /// The occurrence was acknowledged already: nothing changes.
    Already,
    /// No such occurrence here (it cleared, or belongs elsewhere).
    Unknown,
}

/// An event as the engine makes it; the store task gives it its envelope (and seq).
pub type Event = AlarmEvent;

struct Tracked {
    alarm: PointAlarm,
    /// Stuck values and impossible jumps, judged before the alarm sees the reading.
    plausibility: Plausibility,
    /// The switch that says the sensor is being calibrated, if one is wired.
    calibration_input: Option<PointKey>,
    device: Arc<str>,
    point: Arc<str>,
    unit: Option<Arc<str>>,
    /// The monitored item the GB 39496 roll-up counts the point in.
    item: Option<Arc<str>>,
    /// The last reading came in another unit than the limits (logged once per episode).
    unit_mismatch: bool,
    source: Option<usize>,
    source_id: Option<Arc<str>>,
}

type PointKey = (Arc<str>, Arc<str>);

pub struct AlarmEngine {
    points: Vec<Tracked>,
    /// Calibration switches (by point) and whether each last read on.
    switches: HashMap<PointKey, bool>,
    /// Points whose process level (limits and rate) changed since the last `take_changes`.
    changed: Vec<usize>,
    index: HashMap<(Arc<str>, Arc<str>), usize>,
    sources: Vec<HazardSource>,
    source_ids: Vec<Arc<str>>,
    source_levels: Vec<Option<Level>>,
    site_level: Option<Level>,
}

fn kind(previous: Option<Level>, level: Option<Level>) -> Option<EventKind> {
    match (previous, level) {
        (None, Some(_)) => Some(EventKind::Raise),
        (Some(_), None) => Some(EventKind::Clear),
        (Some(a), Some(b)) if b > a => Some(EventKind::Escalate),
        (Some(a), Some(b)) if b < a => Some(EventKind::Deescalate),
        _ => None,
    }
}

impl AlarmEngine {
    /// An engine for every point of the site with alarm settings, restored from a snapshot
    /// where one is given (after a restart mid-alarm: no spurious clear, no second raise).
    pub fn new(site: &SiteConfig, restored: Option<Snapshot>) -> Self {
        let mut restored = restored.unwrap_or_default();
        let mut points = Vec::new();
        let mut index = HashMap::new();
        let mut switches = HashMap::new();
        for ap in site.alarmed_points() {
            let (d, spec) = (ap.device, ap.alarm);
            {
                let key = snapshot::key(&d.id, ap.point);
                let alarm = match restored.points.remove(&key) {
                    Some(state) => PointAlarm::restore(spec.clone(), state),
                    None => PointAlarm::new(spec.clone()),
                };
                let device: Arc<str> = d.id.as_str().into();
                let point: Arc<str> = ap.point.into();
                let calibration_input = spec
                    .calibration
                    .as_ref()
                    .and_then(|c| c.input.as_ref())
                    .map(|i| -> PointKey { (i.device.as_str().into(), i.point.as_str().into()) });
                if let Some(key) = &calibration_input {
                    switches.insert(key.clone(), false);
                }
                index.insert((device.clone(), point.clone()), points.len());
                let source_id = d
                    .hazard_source
                    .map(|s| site.hazard_sources[s].id.as_str().into());
                points.push(Tracked {
                    plausibility: Plausibility::new(spec),
                    calibration_input,
                    alarm,
                    device,
                    point,
                    unit: ap.unit.map(Into::into),
                    item: ap.item.map(Into::into),
                    unit_mismatch: false,
                    source: d.hazard_source,
                    source_id,
                });
            }
        }
        let sources = site.hazard_sources.clone();
        let source_ids = sources.iter().map(|s| s.id.as_str().into()).collect();
        let source_levels = sources
            .iter()
            .map(|s| restored.sources.get(&s.id).copied().flatten())
            .collect();
        AlarmEngine {
            points,
            switches,
            changed: Vec::new(),
            index,
            sources,
            source_ids,
            source_levels,
            site_level: restored.site,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Feeds readings to their points' state machines; returns the events they cause,
    /// point events first, then the roll-ups they change.
    /// `clock`: the monotonic time the readings were taken at (see [`crate::clock`]);
    /// durations run on it, events carry the readings' wall times.
    /// Readings are flagged here (calibration by a switch input, stuck values, impossible
    /// jumps) before they go on to the store.
    pub fn evaluate(&mut self, clock: i64, readings: &mut [Reading]) -> Vec<Event> {
        let mut events: Vec<Event> = Vec::new();
        if !self.switches.is_empty() {
            for r in readings.iter() {
                if let Some(on) = self.switches.get_mut(&(r.device.clone(), r.point.clone())) {
                    *on = !matches!(r.quality, hazgate_wire::Quality::Bad { .. })
                        && r.value
                            .as_ref()
                            .and_then(|v| v.as_f64())
                            .is_some_and(|v| v != 0.0);
                }
            }
        }
        for r in readings.iter_mut() {
            let Some(&i) = self.index.get(&(r.device.clone(), r.point.clone())) else {
                continue;
            };
            let t = &mut self.points[i];
            let value = r.value.as_ref().and_then(|v| v.as_f64());
            let switched = t
                .calibration_input
                .as_ref()
                .is_some_and(|k| self.switches.get(k) == Some(&true));
            if switched && !r.flags.contains(&hazgate_wire::Flag::Calibration) {
                r.flags.push(hazgate_wire::Flag::Calibration);
            }
            let mut flagged = Flagged {
                calibration: r.flags.contains(&hazgate_wire::Flag::Calibration),
                ..Flagged::default()
            };
            let usable = value.filter(|v| {
                v.is_finite() && !matches!(r.quality, hazgate_wire::Quality::Bad { .. })
            });
            if let (false, Some(v), false) = (flagged.calibration, usable, t.plausibility.is_off())
            {
                let verdict = t.plausibility.judge(clock, v);
                flagged.stuck = verdict.stuck;
                flagged.jump = verdict.jump;
                if verdict.stuck {
                    r.flags.push(hazgate_wire::Flag::StuckValue);
                }
                if verdict.jump {
                    r.flags.push(hazgate_wire::Flag::ImpossibleJump);
                }
            }
            // A device that reports another unit than its limits are in (a unit-code
            // register) cannot be judged against them: for the alarm, a sensor fault.
            let mismatch = match (&t.alarm.spec().unit, &r.unit) {
                (Some(limits), Some(reported)) if **reported != **limits => {
                    Some(hazgate_wire::Quality::bad(
                        hazgate_wire::Reason::UnknownUnit,
                        format!("the device reports {reported}, the limits are in {limits}"),
                    ))
                }
                _ => None,
            };
            if mismatch.is_some() && !t.unit_mismatch {
                tracing::warn!(device = %t.device, point = %t.point, unit = r.unit.as_deref().unwrap_or("none"), limits = t.alarm.spec().unit.as_deref().unwrap_or("none"), "the device reports another unit than the point's limits are in: not judged against them, raised as a sensor fault");
            }
            t.unit_mismatch = mismatch.is_some();
            let quality = mismatch.as_ref().unwrap_or(&r.quality);
            // AQ 1029: a reading taken with test gas on the sensor, or an impossible one, is
            // flagged and never judged: no process alarm, and the device did answer.
            let transitions = t
                .alarm
                .evaluate_flagged(r.ts, clock, value, quality, flagged);
            if transitions
                .iter()
                .any(|tr| matches!(tr.condition, Condition::Limit | Condition::Rate))
            {
                self.changed.push(i);
            }
            for tr in transitions {
                events.push(point_event(t, tr, r.unit.clone().or(t.unit.clone())));
            }
        }
        if !events.is_empty() {
            let ts = readings.iter().map(|r| r.ts).max().unwrap_or(0);
            self.roll_up(ts, &mut events);
        }
        events
    }

    /// Only process conditions (limits, rate) set colours: a silent or faulty sensor is an
    /// alarm of its own and never turns a hazard source or the site a colour.
    fn roll_up(&mut self, ts: i64, events: &mut Vec<Event>) {
        for s in 0..self.sources.len() {
            let source = &self.sources[s];
            let level = rollup::roll_up_source(
                source.rollup,
                source.cross_item,
                self.points
                    .iter()
                    .filter(|p| p.source == Some(s))
                    .map(|p| rollup::PointLevel {
                        item: p.item.as_deref(),
                        level: process(&p.alarm),
                    }),
            );
            if let Some(k) = kind(self.source_levels[s], level) {
                let (previous, id) = (self.source_levels[s], self.source_ids[s].clone());
                events.push(rollup_event(k, Some(id), previous, level, ts));
            }
            self.source_levels[s] = level;
        }
        let loose = self
            .points
            .iter()
            .filter(|p| p.source.is_none())
            .map(|p| process(&p.alarm));
        let site = rollup::highest(self.source_levels.iter().copied().chain(loose));
        if let Some(k) = kind(self.site_level, site) {
            events.push(rollup_event(k, None, self.site_level, site, ts));
        }
        self.site_level = site;
    }

    /// Process levels (limits and rate: what linkage outputs follow) of the points that
    /// changed since the last call, as (device, point, level).
    pub fn take_changes(&mut self) -> Vec<ProcessLevel> {
        let mut changed = std::mem::take(&mut self.changed);
        changed.dedup();
        changed.into_iter().map(|i| self.process_level(i)).collect()
    }

    /// A point's process level now (`None` also for a point without alarm settings), and
    /// whether it is in comm loss or sensor fault (what a fail-safe output acts on).
    pub fn linkage_view(&self, device: &Arc<str>, point: &Arc<str>) -> (Option<Level>, bool) {
        let Some(&i) = self.index.get(&(device.clone(), point.clone())) else {
            return (None, false);
        };
        let a = &self.points[i].alarm;
        let fault = a.condition(Condition::CommLoss).is_some()
            || a.condition(Condition::SensorFault).is_some();
        (process(a), fault)
    }

    /// Devices with a point in a process alarm (limits, rate).
    pub fn abnormal_devices(&self) -> std::collections::HashSet<Arc<str>> {
        self.points
            .iter()
            .filter(|p| process(&p.alarm).is_some())
            .map(|p| p.device.clone())
            .collect()
    }

    /// Every point's process level, to set linkage outputs right at start.
    pub fn process_levels(&self) -> Vec<ProcessLevel> {
        (0..self.points.len())
            .map(|i| self.process_level(i))
            .collect()
    }

    fn process_level(&self, i: usize) -> ProcessLevel {
        let p = &self.points[i];
        let level = process(&p.alarm);
        let at_level: Vec<Active> = p
            .alarm
            .active()
            .into_iter()
            .filter(|a| matches!(a.condition, Condition::Limit | Condition::Rate))
            .filter(|a| Some(a.level) == level)
            .collect();
        ProcessLevel {
            device: p.device.clone(),
            point: p.point.clone(),
            level,
            acknowledged: !at_level.is_empty() && at_level.iter().all(|a| a.ack.is_some()),
        }
    }

    /// Acknowledges one occurrence by its id (预警叫应).
    pub fn acknowledge(&mut self, occurrence: &str, ack: &Acknowledgement) -> AckOutcome {
        for i in 0..self.points.len() {
            let t = &self.points[i];
            let found = t.alarm.active().into_iter().find(|a| {
                hazgate_wire::occurrence_id(&t.device, &t.point, a.condition, a.opened)
                    == occurrence
            });
            let Some(a) = found else { continue };
            let t = &mut self.points[i];
            return match t.alarm.acknowledge(a.condition, a.opened, ack) {
                Some(true) => {
                    if matches!(a.condition, Condition::Limit | Condition::Rate) {
                        self.changed.push(i);
                    }
                    AckOutcome::Applied(Box::new(ack_event(t, &a, ack)))
                }
                Some(false) => AckOutcome::Already,
                None => AckOutcome::Unknown,
            };
        }
        AckOutcome::Unknown
    }

    /// Acknowledges every occurrence not yet acknowledged (the edge's button): the
    /// `ack` events to record.
    pub fn acknowledge_all(&mut self, ack: &Acknowledgement) -> Vec<Event> {
        let open: Vec<String> = self
            .points
            .iter()
            .flat_map(|t| {
                t.alarm
                    .active()
                    .into_iter()
                    .filter(|a| a.ack.is_none())
                    .map(|a| {
                        hazgate_wire::occurrence_id(&t.device, &t.point, a.condition, a.opened)
                    })
            })
            .collect();
        open.iter()
            .filter_map(|o| match self.acknowledge(o, ack) {
                AckOutcome::Applied(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    /// The retained state: the site's level, each source's, every active alarm.
    pub fn state(&self, envelope: Envelope, ts: i64) -> State {
        let hazard_sources = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| SourceLevel {
                id: self.source_ids[i].clone(),
                name: s.name.clone(),
                grade: s.grade,
                level: self.source_levels[i],
            })
            .collect();
        let mut alarms = Vec::new();
        for p in &self.points {
            for a in p.alarm.active() {
                alarms.push(ActiveAlarm {
                    device: p.device.clone(),
                    point: p.point.clone(),
                    hazard_source: p.source_id.clone(),
                    condition: a.condition,
                    level: a.level,
                    since: a.since,
                    value: a.value,
                    crossed: a.crossed.filter(|c| Some(*c) != a.value),
                    limit: a.limit,
                    unit: p.unit.clone(),
                    label: a.label.clone(),
                    occurrence: Some(
                        hazgate_wire::occurrence_id(&p.device, &p.point, a.condition, a.opened)
                            .into(),
                    ),
                    acknowledged: a.ack.clone(),
                });
            }
        }
        State {
            envelope,
            ts,
            level: self.site_level,
            hazard_sources,
            alarms,
            alarms_omitted: 0,
            outputs: Vec::new(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            format: snapshot::FORMAT,
            points: self
                .points
                .iter()
                .map(|p| (snapshot::key(&p.device, &p.point), p.alarm.snapshot()))
                .collect(),
            sources: self
                .sources
                .iter()
                .zip(&self.source_levels)
                .map(|(s, l)| (s.id.clone(), *l))
                .collect(),
            site: self.site_level,
        }
    }
}

/// A point's process level: its limits and rate, the conditions that set colours and
/// drive linkage.
fn process(alarm: &PointAlarm) -> Option<Level> {
    alarm
        .condition(Condition::Limit)
        .max(alarm.condition(Condition::Rate))
}

/// Placeholder envelope; the store task replaces it when it assigns the seq.
fn unsent() -> Envelope {
    Envelope {
        v: hazgate_wire::VERSION,
        site: Arc::from(""),
        gateway: Arc::from(""),
        seq: 0,
    }
}

/// The `ack` event of an active occurrence.
fn ack_event(t: &Tracked, a: &Active, ack: &Acknowledgement) -> Event {
    AlarmEvent {
        envelope: unsent(),
        event: EventKind::Ack,
        condition: a.condition,
        device: Some(t.device.clone()),
        point: Some(t.point.clone()),
        hazard_source: t.source_id.clone(),
        level: Some(a.level),
        previous: None,
        value: a.value,
        crossed: None,
        limit: a.limit,
        unit: t.unit.clone(),
        label: a.label.clone(),
        ts: crate::clock::wall_ms(),
        occurrence: Some(
            hazgate_wire::occurrence_id(&t.device, &t.point, a.condition, a.opened).into(),
        ),
        ack: Some(ack.clone()),
    }
}

fn point_event(t: &Tracked, tr: Transition, unit: Option<Arc<str>>) -> Event {
    let occurrence = hazgate_wire::occurrence_id(&t.device, &t.point, tr.condition, tr.opened);
    AlarmEvent {
        occurrence: Some(occurrence.into()),
        ack: None,
        envelope: unsent(),
        event: tr.kind,
        condition: tr.condition,
        device: Some(t.device.clone()),
        point: Some(t.point.clone()),
        hazard_source: t.source_id.clone(),
        level: tr.level,
        previous: tr.previous,
        value: tr.value,
        crossed: tr.crossed.filter(|c| Some(*c) != tr.value),
        limit: tr.limit,
        unit,
        label: tr.label,
        ts: tr.ts,
    }
}

fn rollup_event(
    kind: EventKind,
    source: Option<Arc<str>>,
    previous: Option<Level>,
    level: Option<Level>,
    ts: i64,
) -> Event {
    AlarmEvent {
        envelope: unsent(),
        event: kind,
        condition: Condition::Rollup,
        device: None,
        point: None,
        hazard_source: source,
        level,
        previous,
        value: None,
        crossed: None,
        limit: None,
        unit: None,
        label: None,
        ts,
        occurrence: None,
        ack: None,
    }
}
